"""Issue #4's target on planted-truth data (benchmarks/planted_pareto.py, same settings):
PaInvRL's OOD Recall@20 above the backbone's and InvRL's, its IID Recall@20 within 2 % of
the backbone's, on the mean over six seeds.  The margins are small (see the README); this
pins them so a change that loses the ordering is noticed."""
import importlib.util
import pathlib

import pytest

from painvrl.evaluation import summarize

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "planted_pareto.py"


@pytest.fixture(scope="module")
def planted_pareto():
    spec = importlib.util.spec_from_file_location("planted_pareto", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_painvrl_trades_no_iid_accuracy_for_better_ood_on_planted_data(planted_pareto):
    runs, _, masks = planted_pareto.run(seeds=range(6))
    mean = summarize(runs).set_index(["model", "split"])["mean"]
    assert mean["PaInvRL", "ood"] > mean["backbone", "ood"]
    assert mean["PaInvRL", "ood"] > mean["InvRL", "ood"]
    assert mean["PaInvRL", "iid"] >= 0.98 * mean["backbone", "iid"]
    # Both masks rank the planted invariant columns above the spurious ones.
    by_model = masks.groupby("model")[["invariant", "spurious"]].mean()
    assert (by_model["invariant"] > by_model["spurious"]).all()
