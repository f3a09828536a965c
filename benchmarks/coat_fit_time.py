"""What sets the fit time of InvRL and PaInvRL on Coat: the work (epochs, early stopping) or
the threads?  (Issue 11 asked why PaInvRL's fit took 2 s against InvRL's 7-9 s.)

    .venv/bin/python benchmarks/coat_fit_time.py              # seeds 0-4, 1 and 2 threads
    .venv/bin/python benchmarks/coat_fit_time.py --quick      # one seed, to check it runs

Per seed (``datasets.coat_ood_split``) and per thread count, interleaved: the backbone,
then InvRL and PaInvRL from it, on the reduced schedule of ``benchmarks/lastfm_results.py``
(2 outer iterations, identification 3 rounds x 10 epochs, 10 mask epochs, patience 5
checks, ``reg="batch"``).  Printed per run: wall and CPU seconds, the final model's epochs
and best epoch, the pre-trained backbone's best epoch, seconds per stage; then the median
seconds per final-model epoch per (model, threads), wall and CPU, and the spread of the
wall time of runs that do the same work.  Coat is tiny (about 1,500 training pairs: 3
batches per epoch), so a parallel region per batch costs more than the work in it, and
far more when other processes hold the cores.  The data are read with
``datasets.load_coat`` (``$PAINVRL_DATA`` or ``../shared/data``).
"""
import time

import pandas as pd

from _common import header, parser
from painvrl import Backbone, InvRL, PaInvRL, datasets

BACKBONE = dict(reg="batch", max_epochs=200, patience=5, eval_every=5, progress=False)
PIPELINE = dict(n_envs=10, n_outer=2, env_epochs=10, env_rounds=3, mask_epochs=10,
                max_epochs=200, patience=5, final_patience=5, eval_every=5, reg="batch",
                progress=False)


def timed(fit):
    wall, cpu = time.perf_counter(), time.process_time()
    model = fit()
    return model, time.perf_counter() - wall, time.process_time() - cpu


def one_run(ds, seed, threads):
    rows = []
    backbone, wall, cpu = timed(lambda: Backbone(seed=seed, n_threads=threads, **BACKBONE).fit(ds))
    rows.append(dict(model="backbone", wall=wall, cpu=cpu, epochs=backbone.n_epochs_,
                     best=backbone.best_epoch_))
    for name, cls in (("InvRL", InvRL), ("PaInvRL", PaInvRL)):
        model, wall, cpu = timed(lambda: cls(seed=seed, n_threads=threads, **PIPELINE).fit(
            ds, pretrained=backbone))
        stages = model.stage_seconds_.groupby("stage", sort=False).seconds.sum()
        rows.append(dict(model=name, wall=wall, cpu=cpu, epochs=model.final_.n_epochs_,
                         best=model.final_.best_epoch_, backbone_best=backbone.best_epoch_,
                         final_s=stages["final"], mask_s=stages["mask"],
                         env_s=stages["environments"]))
    return [dict(seed=seed, threads=threads, **r) for r in rows]


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="default 0 1 2 3 4")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="default 1 2")
    args = p.parse_args(argv)
    seeds = args.seeds or ([0] if args.quick else [0, 1, 2, 3, 4])
    header("coat_fit_time", quick=args.quick)
    data = datasets.load_coat()
    rows = []
    for seed in seeds:
        ds = datasets.coat_ood_split(seed, data=data).dataset
        for threads in args.threads:  # interleaved: the thread counts see the same load
            rows += one_run(ds, seed, threads)
    runs = pd.DataFrame(rows)
    pd.set_option("display.width", 200)
    print("\nper run (seconds; epochs and best epoch of the final model, or of the backbone)")
    print(runs.round(3).to_string(index=False))
    pipe = runs[runs.model != "backbone"].assign(
        wall_per_epoch=lambda f: f.final_s / f.epochs)
    print("\nfinal model, median over seeds: epochs, wall seconds per epoch (stage_seconds_), "
          "whole fit wall and CPU seconds, and the fit's wall range")
    summary = pipe.groupby(["model", "threads"]).agg(
        epochs=("epochs", "median"), wall_per_epoch=("wall_per_epoch", "median"),
        fit_wall=("wall", "median"), fit_cpu=("cpu", "median"),
        fit_wall_min=("wall", "min"), fit_wall_max=("wall", "max"))
    print(summary.round(4).to_string())
    backbones = runs[runs.model == "backbone"]
    first = sorted(set(backbones[backbones.best == BACKBONE["eval_every"]].seed))
    print(f"\nseeds whose backbone's best check is its first (epoch {BACKBONE['eval_every']}; "
          f"the same at every thread count): {first}, {len(first)} of {backbones.seed.nunique()}")


if __name__ == "__main__":
    main()
