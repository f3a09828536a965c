"""A sweep on a LocalCluster against the same cells run one after another in one process:
backbone, InvRL and PaInvRL x 5 seeds on Last.fm 2K (IID and held-out-environment OOD test).

    .venv/bin/python benchmarks/sweep_lastfm.py                      # lastfm_results.py's schedule
    .venv/bin/python benchmarks/sweep_lastfm.py --schedule demo --seeds 0 1
    .venv/bin/python benchmarks/sweep_lastfm.py --dataset planted    # the demo's planted data
    .venv/bin/python benchmarks/sweep_lastfm.py --quick              # small planted data, seconds
    .venv/bin/python benchmarks/sweep_lastfm.py --address tcp://scheduler:8786 --no-serial

Cells: every (model, seed), each one Dask task (``painvrl.sweep.run_sweep``): the
seed's split (environment identification on all pairs pooled, the two environments
farthest from the rest held out; ``benchmarks/lastfm_results.py``'s construction), the
model's fit, and scoring.  Unlike lastfm_results.py, InvRL and PaInvRL each pre-train
their own backbone (a cell does not share a stage with another cell).  ``--schedule
results`` is lastfm_results.py's reduced schedule, ``--schedule demo`` the demo's
shorter one; ``--dataset planted`` runs the demo's planted data and schedule
(``benchmarks/planted_pareto.py``'s) instead of Last.fm.  The reference printed beside
the sweep's wall time is the same cells run with ``painvrl.sweep.run_cell`` one after
another in this process (which keeps each seed's split for the seed's next models, as a
worker does).  Not in ``./dev.sh bench`` (it runs bench_*.py): tests/test_sweep.py runs
this code path in CI.
"""
import os
import sys
import tempfile
import time

import pandas as pd

from _common import header, parser
from lastfm_results import BACKBONE, PIPELINE, SPLIT_ENVS
from painvrl.demo import SCHEDULES
from painvrl.sweep import load_sweep, parse_grid, run_cell, run_sweep, summarise
from painvrl.sweep.runner import local_cluster_size

QUICK_DATA = dict(n_users=300, n_items=200, n_interactions=9000)
QUICK_FIT = dict(d_id=16, d_content=16, n_neg=10, batch_size=256, eval_every=2, max_epochs=6,
                 patience=2, reg="batch")
QUICK_PIPELINE = dict(QUICK_FIT, n_envs=2, n_outer=1, env_epochs=2, env_rounds=2,
                      mask_epochs=3, final_patience=2)


def grid(args):
    """The sweep's grid for the chosen mode and schedule."""
    if args.quick:
        dataset, backbone, pipeline = ("planted", QUICK_DATA), QUICK_FIT, QUICK_PIPELINE
    elif args.dataset == "planted":
        planted = SCHEDULES["planted"]
        dataset, backbone, pipeline = "planted", planted.backbone, planted.pipeline
    else:
        lastfm = SCHEDULES["lastfm"]
        split_envs = SPLIT_ENVS if args.schedule == "results" else lastfm.data
        backbone = BACKBONE if args.schedule == "results" else lastfm.backbone
        pipeline = PIPELINE if args.schedule == "results" else lastfm.pipeline
        kwargs = {k: v for k, v in split_envs.items() if k != "progress"}
        dataset = ("lastfm", dict(kwargs, **({"path": args.data} if args.data else {})))
    strip = lambda p: {k: v for k, v in p.items() if k != "progress"}  # noqa: E731
    classes = {"backbone": "Backbone", "InvRL": "InvRL", "PaInvRL": "PaInvRL"}
    params = {"backbone": strip(backbone), "InvRL": strip(pipeline), "PaInvRL": strip(pipeline)}
    return {"datasets": {"planted" if args.quick else args.dataset: dataset},
            "models": {m: classes[m] for m in args.models},
            "seeds": args.seeds if not args.quick else args.seeds[:2],
            "params": {m: params[m] for m in args.models}}


def where_time_goes(df, wall, workers, label):
    """Per-cell seconds summed, and the share of workers x wall they fill."""
    cells = df.groupby("cell")[["load_seconds", "fit_seconds", "cell_seconds",
                                "cpu_seconds"]].first()
    busy = cells["cell_seconds"].sum()
    load, fit, cpu = (cells[c].sum() for c in ("load_seconds", "fit_seconds", "cpu_seconds"))
    print(f"  {label}: wall {wall:.1f} s; cells {busy:.1f} s wall, {cpu:.1f} s CPU in all "
          f"(data + split {load:.1f} s, fits {fit:.1f} s, scoring {busy - load - fit:.1f} s); "
          f"{workers} worker(s) busy {100 * busy / (workers * wall):.0f} % of the wall time")


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4],
                   help="default 0 1 2 3 4 (the first two with --quick)")
    p.add_argument("--models", nargs="+", choices=("backbone", "InvRL", "PaInvRL"),
                   default=["backbone", "InvRL", "PaInvRL"], help="default: all three")
    p.add_argument("--dataset", choices=("lastfm", "planted"), default="lastfm")
    p.add_argument("--schedule", choices=("results", "demo"), default="results",
                   help="Last.fm: lastfm_results.py's schedule or the demo's shorter one")
    p.add_argument("--data", default=None, help="folder holding lastfm2k-multimodal")
    p.add_argument("--address", default=None, help="a Dask scheduler to use instead of a "
                   "LocalCluster")
    p.add_argument("--store", default=None, help="results directory (default: a fresh temporary "
                   "one, so every cell runs)")
    p.add_argument("--no-serial", action="store_true", help="skip the one-process reference")
    args = p.parse_args(argv)
    header("sweep_lastfm", quick=args.quick)
    g = grid(args)
    cells = parse_grid(g).cells
    schedule = "quick" if args.quick else args.schedule if args.dataset == "lastfm" else "demo"
    print(f"{len(cells)} cells: {list(g['models'])} x seeds {g['seeds']} on "
          f"{list(g['datasets'])} ({schedule} schedule)", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        store = args.store or os.path.join(tmp, "results.parquet")
        cpu0 = time.process_time()
        run = run_sweep(g, client=args.address, store=store)
        df = load_sweep(store)
        workers = local_cluster_size(1) if args.address is None else None
        print(f"\nDask ({'LocalCluster' if args.address is None else args.address}): "
              f"{len(run.written)} cells run, {len(run.skipped)} already stored, "
              f"{run.seconds:.1f} s wall (client CPU {time.process_time() - cpu0:.1f} s)")
        if workers:
            where_time_goes(df[df.cell.isin(run.written)], run.seconds, workers, "sweep")
        if not args.no_serial:
            start = time.perf_counter()
            serial = pd.concat([run_cell(c) for c in cells], ignore_index=True)
            wall = time.perf_counter() - start
            print(f"\nOne process, one cell after another: {wall:.1f} s wall; speed-up of the "
                  f"sweep {wall / run.seconds:.2f}x")
            where_time_goes(serial, wall, 1, "serial")
            same = (serial.sort_values(["cell", "split", "metric", "k"])["value"].to_numpy()
                    == df.sort_values(["cell", "split", "metric", "k"])["value"].to_numpy())
            print(f"  stored values equal the serial run's bit for bit: {bool(same.all())}")
        reference = "backbone" if "backbone" in args.models else None
        tests = ", paired t-test against the backbone over seeds" if reference else ""
        print(f"\nmean ± std over seeds{tests}:")
        table = summarise(df, reference=reference)
        table = table[table.k == 20][[c for c in ("model", "split", "metric", "text", "diff",
                                                  "pvalue") if c in table]]
        print(table.round(4).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
