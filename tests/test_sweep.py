"""painvrl.sweep: grids on Dask, resumable Parquet store, bad grids, results.

The Dask tests share one LocalCluster of 2 worker processes with 1 thread each;
the data are small planted data and the schedules a few epochs, so each cell takes
a fraction of a second.
"""
import glob
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("distributed")
pytest.importorskip("pyarrow")

from _sweep_entries import (TINY, fails_on_flag, front_of_seeds, held_backbone,  # noqa: E402
                            threads_seen)
from painvrl import Backbone, Popularity  # noqa: E402
from painvrl.evaluation.compare import summarize  # noqa: E402
from painvrl.evaluation.stats import paired_test  # noqa: E402
from painvrl.sweep import (load_sweep, parse_grid, plot_front, plot_metric, run_cell,  # noqa: E402
                           run_sweep, summarise)
from painvrl.sweep import runner  # noqa: E402
from painvrl.sweep.cell import MEASURED_COLUMNS  # noqa: E402
from painvrl.sweep.store import SweepStore  # noqa: E402

SMALL = ("planted", {"n_users": 200, "n_items": 150, "n_interactions": 6000})


def grid_of(markers):
    """2 models x 2 settings x 2 seeds: a Backbone class and an entry point that can be held."""
    return {"datasets": {"small": SMALL},
            "models": {"Backbone": Backbone, "held": held_backbone},
            "seeds": [0, 1],
            "params": {"Backbone": {"max_epochs": [2, 3], **TINY},
                       "held": {"epochs": [1, 2], "markers": str(markers)}}}


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster) as c:
        yield c


def _values(df):
    """The rows without the columns that measure the run, in a fixed order."""
    df = df.drop(columns=list(MEASURED_COLUMNS))
    return df.sort_values(["cell", *[c for c in ("split", "metric", "k") if c in df]],
                          kind="stable").reset_index(drop=True)


def _kill_first_started(markers, killed, timeout=60.0):
    """Background: SIGKILL the process of the first task that announces itself, then release."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            started = glob.glob(os.path.join(markers, "*.started"))
            if started:
                name = os.path.basename(sorted(started)[0])
                pid = int(name.split("-")[2].split(".")[0])
                os.kill(pid, signal.SIGKILL)
                killed.append((name, pid))
                return
            time.sleep(0.01)
    finally:
        open(os.path.join(markers, "release"), "w").close()


# --------------------------------------------------------------------------- Dask

def test_killed_worker_every_cell_stored_once_then_nothing_new_and_equal_to_serial(
        client, tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    store = tmp_path / "results.parquet"
    grid = grid_of(markers)
    cells = parse_grid(grid).cells
    killed = []
    killer = threading.Thread(target=_kill_first_started, args=(str(markers), killed))
    killer.start()
    run = run_sweep(grid, client=client, store=store)
    killer.join()

    # A worker process died while running a held task; its task ran again elsewhere.
    assert len(killed) == 1
    name, pid = killed[0]
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    seed, epochs = name.split("-")[:2]
    reruns = glob.glob(os.path.join(markers, f"{seed}-{epochs}-*.started"))
    assert len(reruns) >= 2, "the killed task was not run again"

    # Every cell stored exactly once: one whole file per cell, its own rows, no temp file.
    keys = sorted(c.key for c in cells)
    assert sorted(run.written) == keys and run.skipped == ()
    assert sorted(SweepStore(store).stored()) == keys
    assert sorted(os.listdir(store)) == sorted(["_sweep.json"] +
                                               [f"cell-{k}.parquet" for k in keys])
    df = load_sweep(store)
    rows = df.groupby("cell").size()
    assert set(rows.index) == set(keys)
    expected_rows = {c.key: 8 if c.model.name == "Backbone" else 2 for c in cells}
    assert rows.to_dict() == expected_rows  # 2 splits x 2 metrics x 2 k; held: 2 splits x 1

    # A second call runs and stores nothing.
    mtimes = {p: os.stat(p).st_mtime_ns for p in glob.glob(str(store / "cell-*"))}
    again = run_sweep(grid, client=client, store=store)
    assert again.written == () and sorted(again.skipped) == keys
    assert {p: os.stat(p).st_mtime_ns for p in glob.glob(str(store / "cell-*"))} == mtimes

    # The same cells one after another in this process, without Dask: equal bit for bit.
    serial = pd.concat([run_cell(c) for c in cells], ignore_index=True)
    stored = _values(df.drop(columns=[c for c in df if c.startswith("param_")]))
    pd.testing.assert_frame_equal(stored, _values(serial)[list(stored.columns)], check_exact=True)


def test_failed_cell_reported_others_stored_rerun_runs_only_it(client, tmp_path):
    flags = tmp_path / "flags"
    flags.mkdir()
    (flags / "fail-1").write_text("")
    grid = {"datasets": {"small": SMALL}, "models": {"f": fails_on_flag}, "seeds": [0, 1, 2],
            "params": {"f": {"flags": str(flags)}}}
    keys = {c.seed: c.key for c in parse_grid(grid).cells}
    with pytest.raises(RuntimeError, match=r"1 of 3 cell\(s\) failed .* seed 1: RuntimeError: "
                                           r"flagged to fail for seed 1"):
        run_sweep(grid, client=client, store=tmp_path / "s")
    assert SweepStore(tmp_path / "s").stored() == {keys[0], keys[2]}
    (flags / "fail-1").unlink()
    run = run_sweep(grid, client=client, store=tmp_path / "s")
    assert run.written == (keys[1],) and sorted(run.skipped) == sorted([keys[0], keys[2]])
    assert sorted(load_sweep(tmp_path / "s")["value"]) == [0.0, 1.0, 2.0]


def test_threads_pinned_in_each_task(client, tmp_path):
    """The worker's task gets n_threads_per_task for the C core and BLAS held to as many."""
    grid = {"datasets": {"small": SMALL}, "models": {"t": threads_seen}, "seeds": [0]}
    run_sweep(grid, client=client, store=tmp_path / "s", n_threads_per_task=2)
    df = load_sweep(tmp_path / "s")
    assert df.set_index("what")["value"].to_dict() == {"n_threads": 2, "blas": 2}


def test_scheduler_address(client, tmp_path):
    """A str client is a scheduler address: connected to, used, and disconnected from."""
    grid = {"datasets": {"small": SMALL}, "models": ["Popularity"], "seeds": [0, 1]}
    run = run_sweep(grid, client=client.scheduler.address, store=tmp_path / "s")
    assert len(run.written) == 2
    assert client.status == "running"  # the test's own client is left alone


def test_auto_cluster_sized_to_cores(tmp_path, monkeypatch):
    """client=None starts a LocalCluster of cores // n_threads_per_task one-thread workers."""
    seen = {}
    real = runner._connect

    def spy(client, n_threads):
        c, to_close = real(client, n_threads)
        seen["workers"] = {w["nthreads"] for w in c.scheduler_info()["workers"].values()}
        seen["n"] = len(c.scheduler_info()["workers"])
        return c, to_close

    monkeypatch.setattr(runner, "_connect", spy)
    monkeypatch.setattr(runner, "_cores", lambda: 2)
    grid = {"datasets": {"small": SMALL}, "models": ["Popularity"], "seeds": [0]}
    run = run_sweep(grid, store=tmp_path / "s", n_threads_per_task=2)
    assert len(run.written) == 1
    assert seen == {"workers": {1}, "n": 1}
    with pytest.raises(ValueError, match="n_threads_per_task=3 exceeds"):
        run_sweep(grid, store=tmp_path / "t", n_threads_per_task=3)


# --------------------------------------------------------------------------- bad grids

@pytest.fixture
def no_cluster(monkeypatch):
    """Fail the test if run_sweep gets as far as connecting to a cluster."""
    def refuse(*args):
        raise AssertionError("run_sweep started a cluster for a grid it should have refused")

    monkeypatch.setattr(runner, "_connect", refuse)


def _grid(**over):
    grid = {"datasets": {"small": SMALL}, "models": ["Backbone"], "seeds": [0],
            "params": {"Backbone": {"max_epochs": [1]}}}
    grid.update(over)
    return grid


def no_seed(dataset, split, *, epochs):
    return pd.DataFrame({"value": [1.0]})


@pytest.mark.parametrize("grid, error, match", [
    (_grid(models=["Nope"]), ValueError, r"unknown model 'Nope'"),
    (_grid(params={"Backbone": {"max_epoch": [1, 2]}}), ValueError,
     r"unknown parameter\(s\) \['max_epoch'\] for model 'Backbone'"),
    (_grid(models={"h": held_backbone}, params={"h": {"epochs": 1, "bogus": 2}}), ValueError,
     r"unknown parameter\(s\) \['bogus'\]"),
    (_grid(models=["Popularity"], params={"Popularity": {"max_epochs": 3}}), ValueError,
     r"unknown parameter\(s\) \['max_epochs'\] for model 'Popularity'"),
    (_grid(params={"Backbone": {"seed": [1]}}), ValueError, r"\['seed'\] cannot be set"),
    (_grid(params={"Backbone": {"n_threads": 2}}), ValueError, r"n_threads_per_task"),
    (_grid(params={"Backbone": {"max_epochs": []}}), ValueError, r"sweep an empty list"),
    (_grid(params={"Other": {}}), ValueError, r"names model\(s\) \['Other'\]"),
    (_grid(params={"Backbone": {"gate": np.ones(3)}}), TypeError, r"stable hash"),
    (_grid(datasets=[]), ValueError, r"grid\['datasets'\] is empty"),
    (_grid(models={}), ValueError, r"grid\['models'\] is empty"),
    (_grid(seeds=[]), ValueError, r"grid\['seeds'\] must be a non-empty list"),
    (_grid(seeds=[0.5]), TypeError, r"non-negative ints"),
    (_grid(datasets=["nowhere"]), ValueError, r"unknown dataset 'nowhere'"),
    (_grid(datasets=[("planted", {"n_user": 5})]), ValueError,
     r"unknown parameter\(s\) \['n_user'\]"),
    (_grid(models={"f": no_seed}, params={}), TypeError, r"must take a keyword seed"),
    (_grid(models=[3]), TypeError, r"estimator class"),
    (_grid(extra=1), ValueError, r"unknown key\(s\) \['extra'\]"),
    ([1, 2], TypeError, r"grid must be a dict"),
])
def test_bad_grid_refused_before_any_task(no_cluster, tmp_path, grid, error, match):
    with pytest.raises(error, match=match):
        run_sweep(grid, store=tmp_path / "s")
    assert not (tmp_path / "s").exists()


def test_bad_store_refused_before_any_task(no_cluster, tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(ValueError, match="is not writable"):
        run_sweep(_grid(), store=a_file / "results.parquet")
    with pytest.raises(ValueError, match="is a file"):
        run_sweep(_grid(), store=a_file)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="holds no sweep"):
        run_sweep(_grid(), store=other)
    # A store made for another grid: its manifest, then a stray cell file of another grid.
    theirs = parse_grid(_grid(seeds=[1]))
    SweepStore(tmp_path / "theirs").open_for(theirs.sweep_id, theirs.keys)
    with pytest.raises(ValueError, match="holds another sweep"):
        run_sweep(_grid(), store=tmp_path / "theirs")
    mine = parse_grid(_grid())
    st = SweepStore(tmp_path / "mixed")
    st.open_for(mine.sweep_id, mine.keys)
    st.write("0123456789abcdef", pd.DataFrame({"value": [1.0]}))
    with pytest.raises(ValueError, match="not of this grid"):
        run_sweep(_grid(), store=tmp_path / "mixed")


# --------------------------------------------------------------------------- store

def test_interrupted_write_leaves_no_half_file(tmp_path, monkeypatch):
    grid = parse_grid(_grid())
    st = SweepStore(tmp_path / "s")
    st.open_for(grid.sweep_id, grid.keys)
    key = grid.keys[0]
    frame = pd.DataFrame({"value": np.arange(1000, dtype=np.float64)})

    def crash(fd):  # the data are written to the temporary file, not yet on disk
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(os, "fsync", crash)
        with pytest.raises(KeyboardInterrupt):
            st.write(key, frame)
    assert st.stored() == set()
    assert sorted(os.listdir(st.path)) == ["_sweep.json"]

    # What a killed process leaves (a partial temporary file) is never read as a cell,
    # and the next run_sweep removes it.
    (tmp_path / "s" / ".tmp-deadbeef").write_bytes(b"PAR1 half a file")
    assert st.stored() == set()
    st.write(key, frame)
    pd.testing.assert_frame_equal(st.read(), frame)
    assert st.remove_temporary() == 1
    assert sorted(os.listdir(st.path)) == ["_sweep.json", f"cell-{key}.parquet"]
    umask = os.umask(0o022)
    os.umask(umask)
    assert os.stat(st.cell_path(key)).st_mode & 0o777 == 0o666 & ~umask  # as open() would


def test_cell_keys_are_stable_across_processes():
    """The key is a hash of canonical JSON, not of Python's per-process salted hash()."""
    code = ("from painvrl.sweep import parse_grid; from painvrl import Backbone;"
            "g = parse_grid({'datasets': {'d': ('planted', {'n_users': 9})}, "
            "'models': {'b': Backbone}, 'seeds': [3, 1], "
            "'params': {'b': {'max_epochs': [1, 2], 'loss_weights': (1.0, 2.0, 1.0, 1.0)}}});"
            "print(g.sweep_id, *g.keys)")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, env={**os.environ, "PYTHONHASHSEED": str(h)},
                           cwd=os.path.dirname(os.path.dirname(__file__))).stdout
            for h in (1, 2)}
    assert len(outs) == 1
    ids = outs.pop().split()
    assert len(ids) == 5 and len(set(ids)) == 5  # a sweep id and 4 distinct cells


def test_import_painvrl_without_dask_or_pyarrow():
    code = ("import sys\nfor m in ('dask', 'distributed', 'pyarrow'): sys.modules[m] = None\n"
            "import painvrl\nfrom painvrl.sweep import parse_grid\n"
            "print(len(parse_grid({'datasets': ['planted'], 'models': ['Popularity'], "
            "'seeds': [0, 1]}).cells))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(__file__)))
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["2"]


# --------------------------------------------------------------------------- contract

def test_entry_point_contract_seeds_frame_and_clashing_columns():
    """An entry taking ``seeds`` gets [seed]; a ``.frame`` is used; its own ``model``
    becomes ``variant``, its ``seed`` (equal to the cell's) is dropped."""
    cell, = parse_grid({"datasets": {"small": SMALL}, "models": {"front": front_of_seeds},
                        "seeds": [4], "params": {"front": {"preference": 0.25}}}).cells
    df = run_cell(cell)
    assert list(df.columns[:5]) == ["cell", "dataset", "model", "params", "seed"]
    assert df["seed"].tolist() == [4, 4] and df["model"].tolist() == ["front", "front"]
    assert df["variant"].tolist() == ["a", "b"]
    assert df["value"].tolist() == [200.0, 0.25]  # the dataset reached it; so did the param
    assert df["params"].iloc[0] == '{"preference":0.25}'
    assert (df["painvrl_version"] == "0.1.0").all()


def test_registered_names(monkeypatch):
    """register_model / register_dataset make names usable in a grid (as pareto_front will be)."""
    from painvrl.sweep import LOADERS, MODELS, register_dataset, register_model
    from painvrl.sweep.sources import planted

    monkeypatch.setattr("painvrl.sweep.entries.MODELS", dict(MODELS))
    monkeypatch.setattr("painvrl.sweep.sources.LOADERS", dict(LOADERS))

    def tiny(*, seed, n_users=120):
        return planted(seed=seed, n_users=n_users, n_items=90, n_interactions=3000)

    register_model("front", front_of_seeds)
    register_dataset("tiny", tiny)
    cell, = parse_grid({"datasets": [("tiny", {"n_users": 100})], "models": ["front"],
                        "seeds": [1]}).cells
    assert cell.model.obj is front_of_seeds and cell.dataset.name == "tiny"
    assert run_cell(cell)["value"].tolist() == [100.0, 0.5]
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['n_items'\]"):
        parse_grid({"datasets": [("tiny", {"n_items": 5})], "models": ["front"], "seeds": [1]})


def test_estimator_cell_equals_compare_of_the_same_fit():
    cell, = parse_grid({"datasets": {"small": SMALL}, "models": ["Popularity"],
                        "seeds": [2]}).cells
    df = run_cell(cell)
    from painvrl.sweep.sources import planted
    from painvrl.evaluation.compare import compare

    ds, holdout = planted(seed=2, **SMALL[1])
    want = compare({"Popularity": Popularity().fit(ds)}, holdout.splits())
    got = df[["model", "split", "metric", "k", "value", "n_users"]]
    pd.testing.assert_frame_equal(got, want, check_exact=True)


# --------------------------------------------------------------------------- results

def _fake_sweep():
    """Two models x 5 seeds, hand-made values (model b = a + a known per-seed shift)."""
    rows = []
    for seed in range(5):
        for model, params, shift in (("a", "{}", 0.0), ("b", '{"x":1}', 0.01 * (seed + 1))):
            for split in ("iid", "ood"):
                rows.append(dict(cell=f"{model}{seed}", dataset="d", model=model, params=params,
                                 seed=seed, split=split, metric="recall", k=20,
                                 value=0.1 + 0.02 * seed + shift))
    return pd.DataFrame(rows)


def test_summarise_is_summarize_per_group_with_seed_paired_tests():
    df = _fake_sweep()
    out = summarise(df, reference="a")
    want = summarize(df[df.model == "b"])
    got = out[out.model == "b"].reset_index(drop=True)
    pd.testing.assert_frame_equal(got[list(want.columns)], want)
    b = df[(df.model == "b") & (df.split == "ood")].set_index("seed")["value"]
    a = df[(df.model == "a") & (df.split == "ood")].set_index("seed")["value"]
    res = paired_test(b, a, test="t")
    row = got[got.split == "ood"].iloc[0]
    assert row["pvalue"] == res.pvalue and row["n_pairs"] == 5
    assert row["diff"] == pytest.approx(0.03, abs=1e-12)  # mean of 0.01 .. 0.05
    assert out[out.model == "a"]["pvalue"].isna().all()
    with pytest.raises(ValueError, match="reference 'zzz' is not a model"):
        summarise(df, reference="zzz")


def test_plots_draw_one_line_per_model(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    df = _fake_sweep().assign(param_x=lambda f: np.where(f.model == "b", 1.0, np.nan))
    ax = plot_metric(df, "x", split="ood", k=20)
    assert len(ax.lines) >= 1 and ax.get_xlabel() == "x"
    ax = plot_front(df)
    assert len(ax.lines) == 2  # a and b, each one (IID, OOD) point
    with pytest.raises(ValueError, match="no parameter 'y'"):
        plot_metric(df, "y")
    import matplotlib.pyplot as plt

    plt.close("all")
