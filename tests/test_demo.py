"""The newcomer's demo (painvrl/demo.py, python -m painvrl) at a tiny size: seconds."""
import dataclasses
import os
import subprocess
import sys

import pytest

import painvrl
from painvrl import demo
from painvrl.__main__ import main, parse_args

TINY_MODEL = dict(d_id=8, d_content=8, n_neg=5, batch_size=128, eval_every=1)


def tiny_schedule():
    """The planted demo shrunk to a few epochs on a few hundred pairs."""
    base = demo.SCHEDULES["planted"]
    return dataclasses.replace(
        base,
        data={**base.data, "n_users": 60, "n_items": 50, "n_interactions": 1500},
        backbone={**base.backbone, **TINY_MODEL, "max_epochs": 3, "patience": 1},
        pipeline={**base.pipeline, **TINY_MODEL, "n_outer": 1, "env_epochs": 1,
                  "env_rounds": 1, "mask_epochs": 1, "max_epochs": 2, "patience": 1,
                  "final_patience": 1})


@pytest.fixture(scope="module")
def result():
    return demo.run(tiny_schedule(), [0, 1], n_threads=1, progress=False)


def test_run_scores_every_model_seed_and_split(result):
    runs = result.runs
    assert set(runs.seed) == {0, 1}
    assert list(dict.fromkeys(runs.model)) == list(demo.MODELS)
    assert set(runs.split) == {"iid", "ood"}
    assert len(runs) == 2 * 3 * 2 * 4  # seeds x models x splits x (Recall, NDCG) @ (10, 20)
    assert runs.value.between(0, 1).all()
    assert {"seed", "model", "split", "user", "recall@20"} <= set(result.per_user.columns)
    assert set(result.seconds.stage) == {"split", "backbone", "InvRL", "PaInvRL", "evaluation"}


def test_summary_table_has_one_row_per_model_and_split(result):
    table = demo.summary_table(result.runs)
    assert list(table.columns) == ["model", "split", *demo.COLUMNS]
    assert list(zip(table.model, table.split)) == [
        (m, s) for s in ("IID", "OOD") for m in demo.MODELS]
    assert all(" ± " in v for v in table["Recall@20"])  # two seeds: mean ± std
    expect = painvrl.compare.summarize(result.runs).set_index(["model", "split", "metric", "k"])
    iid = table.set_index(["model", "split"]).loc[("PaInvRL", "IID"), "NDCG@10"]
    assert iid == expect.loc[("PaInvRL", "iid", "ndcg", 10), "text"]


def test_verdict_names_both_splits(result):
    lines = demo.verdict(result)
    assert lines[0].startswith("IID Recall@20: PaInvRL is")
    assert lines[1].startswith("OOD Recall@20: PaInvRL is")
    assert lines[2].startswith("Best out of distribution:")


def test_plot_writes_a_png(result, tmp_path):
    pytest.importorskip("matplotlib")
    path = demo.plot(result, str(tmp_path / "demo.png"))
    assert path == str(tmp_path / "demo.png")
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_returns_none(result, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    assert demo.plot(result, str(tmp_path / "demo.png")) is None
    assert not (tmp_path / "demo.png").exists()


def test_build_split_holds_out_the_last_planted_environment():
    holdout = demo.build_split(tiny_schedule(), 0)
    assert holdout.held_out == (2,)
    assert holdout.ood_test.nnz == holdout.sizes["ood_test"] > 0
    assert "environment 2 held out" in demo.describe(tiny_schedule(), holdout)


def test_with_overrides_reaches_every_model():
    s = demo.SCHEDULES["lastfm"].with_overrides(max_epochs=7, reg="full")
    assert s.backbone["max_epochs"] == s.pipeline["max_epochs"] == 7
    assert s.backbone["reg"] == s.pipeline["reg"] == s.data["reg"] == "full"
    assert demo.SCHEDULES["lastfm"].backbone["reg"] == "batch"  # the preset is unchanged
    big = demo.SCHEDULES["planted"].with_overrides(scale=2)
    assert (big.data["n_users"], big.data["n_items"], big.data["n_interactions"]) == (
        1200, 800, 48_000)
    with pytest.raises(ValueError, match="planted data only"):
        demo.SCHEDULES["lastfm"].with_overrides(scale=2)


def test_main_prints_the_table_and_writes_the_plot(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(demo.SCHEDULES, "planted", tiny_schedule())
    png = tmp_path / "out.png"
    assert main(["demo", "--seeds", "2", "--quiet", "--threads", "1", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    for name in ("Recall@10", "Recall@20", "NDCG@10", "NDCG@20", "backbone", "InvRL",
                 "PaInvRL", "IID", "OOD", "seeds [0, 1]"):
        assert name in out
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "pip install matplotlib" in out
    else:
        assert png.exists() and f"plot: {png}" in out


def test_main_without_matplotlib_still_prints_the_table(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(demo.SCHEDULES, "planted", tiny_schedule())
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["--seeds", "1", "--quiet", "--plot", str(tmp_path / "x.png")]) == 0
    out = capsys.readouterr().out
    assert "PaInvRL" in out and "needs matplotlib (pip install matplotlib)" in out


def test_parse_args_takes_an_optional_demo_subcommand():
    assert parse_args(["demo", "--seeds", "5"]).seeds == 5
    assert parse_args(["--seed", "4"]).seed == 4
    with pytest.raises(SystemExit):
        parse_args(["--seeds", "0"])
    with pytest.raises(SystemExit):
        parse_args(["--dataset", "lastfm", "--scale", "2"])


def test_help_exits_0_and_documents_every_option():
    # the painvrl this test imported (the ASan run of ./dev.sh test puts its build first)
    here = os.path.dirname(os.path.dirname(os.path.abspath(painvrl.__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [here] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    for argv in (["--help"], ["demo", "--help"]):
        proc = subprocess.run([sys.executable, "-m", "painvrl", *argv], capture_output=True,
                              text=True, env=env, timeout=120)
        assert proc.returncode == 0, proc.stderr
        for option in ("--dataset", "--seeds", "--seed", "--threads", "--plot", "--quiet",
                       "lastfm", "planted"):
            assert option in proc.stdout
