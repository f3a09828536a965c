"""The README's evidence scripts run end to end (their --quick mode: tiny planted data, a
tiny schedule), so they cannot rot between the runs that make the README's tables."""
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

BENCH = Path(REPO, "benchmarks")


def run(script, *args):
    done = subprocess.run([sys.executable, script, "--quick", *args], cwd=BENCH,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
def test_weighting_evidence_chooses_among_the_candidates():
    out = run("weighting_evidence.py", "--cases", "planted", "--seeds", "0")
    assert "QUICK MODE" in out.splitlines()[0]
    chosen = [line for line in out.splitlines() if line.startswith("chosen default:")]
    assert len(chosen) == 1 and chosen[0].split(": ")[1] != "mgda, shared projection"


@pytest.mark.slow
def test_pareto_evidence_reports_and_plots(tmp_path):
    png, pkl = tmp_path / "front.png", tmp_path / "front.pkl"
    out = run("pareto_evidence.py", "--case", "planted", "--seeds", "0", "1", "--plot", str(png),
              "--save", str(pkl))
    for heading in ("IID and OOD test", "paired tests", "hypervolume", "every point"):
        assert heading in out
    assert png.stat().st_size > 10_000
    again = run("pareto_evidence.py", "--case", "planted", "--combine", str(pkl))
    assert "seeds [0, 1], 8 fits" in again


@pytest.mark.slow
def test_ablation_evidence_lists_every_variant():
    out = run("ablation_evidence.py", "--case", "planted", "--seeds", "0")
    for variant in ("backbone", "PaInvRL", "w/o identification", "w/o Pareto weighting",
                    "w/o variant part", "w/o attention", "InvRL"):
        assert variant in out
