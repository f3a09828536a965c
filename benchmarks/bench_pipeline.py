"""The whole PaInvRL pipeline (method.md §5.1) on TikTok-shaped data: wall time per
stage and peak memory, with the default (reference) schedule.

    .venv/bin/python benchmarks/bench_pipeline.py                      # default schedule: hours
    .venv/bin/python benchmarks/bench_pipeline.py --reg full
    .venv/bin/python benchmarks/bench_pipeline.py --n-outer 1 --env-rounds 2 --max-epochs 5
                                                                       # a measured slice

Every stage runs exactly as in ``PaInvRL().fit`` (it *is* that call). Options cap the
schedule (outer iterations, epochs of pre-training and final training) for a run
that fits in a session; the output then also prints each stage's cost per unit of
work (epoch, identification round, mask epoch) and the default schedule's time
extrapolated from those unit costs, marked as an extrapolation, next to the issue's
reference: the InvRL/PaInvRL PyTorch code needs about 2 hours on a datacenter GPU for
this pipeline when identification runs its 10 rounds (not measurable here: no GPU).
"""
import argparse
import os
import platform
import resource
import time

from painvrl import PaInvRL
from painvrl.data.datasets import make_tiktok_like

GPU_REFERENCE_HOURS = 2.0  # issue #4: reference code, datacenter GPU, full 10-round identification
DEFAULT = PaInvRL()        # the default schedule, read from the estimator itself


def peak_rss_gib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reg", choices=("batch", "full"), default="batch")
    p.add_argument("--fusion", choices=("attention", "global", "invariant"), default="attention")
    p.add_argument("--n-outer", type=int, default=DEFAULT.n_outer)
    p.add_argument("--max-epochs", type=int, default=DEFAULT.max_epochs,
                   help="cap on pre-training and final epochs (default: the schedule's)")
    p.add_argument("--env-rounds", type=int, default=DEFAULT.env_rounds,
                   help="cap on identification rounds per outer iteration")
    p.add_argument("--scale", type=float, default=1.0, help="make_tiktok_like scale")
    args = p.parse_args()

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}")
    start = time.perf_counter()
    data = make_tiktok_like(seed=0, scale=args.scale)
    print(f"{data} (generated in {time.perf_counter() - start:.0f} s)")
    print(f"schedule: n_outer={args.n_outer}/{DEFAULT.n_outer}, max_epochs={args.max_epochs}"
          f"/{DEFAULT.max_epochs}, env {args.env_rounds}/{DEFAULT.env_rounds} rounds x "
          f"{DEFAULT.env_epochs} "
          f"epochs, mask {DEFAULT.mask_epochs} epochs, reg={args.reg}, fusion={args.fusion}",
          flush=True)
    model = PaInvRL(reg=args.reg, fusion=args.fusion, n_outer=args.n_outer,
                    max_epochs=args.max_epochs, env_rounds=args.env_rounds, progress=False)

    def report(stage, info):
        print(f"[{time.perf_counter() - start:7.0f} s] {stage}"
              f"{'' if info['outer'] is None else ' ' + str(info['outer'])} done, "
              f"peak RSS {peak_rss_gib():.2f} GiB", flush=True)

    start = time.perf_counter()
    model.fit(data, callback=report)
    total = time.perf_counter() - start

    s = model.stage_seconds_
    per_stage = s.groupby("stage", sort=False).seconds.sum()
    units = {"pretrain": model.pretrained_.n_epochs_,
             "environments": sum(e.n_rounds for e in model.environments_),
             "mask": sum(len(r.erm_loss) for r in model.mask_results_),
             "final": model.final_.n_epochs_}
    unit_name = {"pretrain": "epoch", "environments": "round", "mask": "mask epoch",
                 "final": "epoch"}
    print(f"\n{'stage':<13}{'seconds':>9}{'units':>7}  seconds per unit")
    for stage, sec in per_stage.items():
        print(f"{stage:<13}{sec:9.1f}{units[stage]:7d}  {sec / max(units[stage], 1):8.2f} "
              f"per {unit_name[stage]}")
    print(f"{'total':<13}{total:9.1f}   peak RSS {peak_rss_gib():.2f} GiB")
    capped = (args.n_outer < DEFAULT.n_outer or args.max_epochs < DEFAULT.max_epochs
              or args.env_rounds < DEFAULT.env_rounds)
    if capped:
        rate = {k: per_stage[k] / max(units[k], 1) for k in per_stage.index}
        # Default schedule, worst case of identification (every outer iteration runs
        # its 10 rounds); pre-training and final training at the epochs this run
        # needed, or the cap when it stopped there (a lower bound then).
        full = (rate["pretrain"] * units["pretrain"]
                + rate["environments"] * DEFAULT.env_rounds * DEFAULT.n_outer
                + rate["mask"] * DEFAULT.mask_epochs * DEFAULT.n_outer
                + rate["final"] * units["final"])
        print(f"extrapolated (not measured) to {DEFAULT.n_outer} outer iterations with 10 "
              f"identification rounds each: {full / 3600:.2f} h (pre-training "
              f"{units['pretrain']} and final {units['final']} epochs as in this run)")
    print(f"reference: PyTorch code on a datacenter GPU, about {GPU_REFERENCE_HOURS:.0f} h "
          f"(issue #4; not measured here)")
    print("identification rounds per outer iteration:",
          [e.n_rounds for e in model.environments_])


if __name__ == "__main__":
    main()
