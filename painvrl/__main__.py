"""``python -m painvrl [demo]``: PaInvRL against InvRL and the backbone, in and out of distribution.

The work is done by :mod:`painvrl.demo`; this is its command-line front end.
"""
from __future__ import annotations

import argparse
import sys
import textwrap
import time
from typing import List, Optional

DESCRIPTION = """\
PaInvRL (Pareto Invariant Representation Learning, ACM MM 2023) learns item
representations that keep working when the distribution of interactions shifts.
This demo fits the backbone recommender, InvRL and PaInvRL (both starting from
that backbone) over several seeds and scores each in distribution (IID test:
held-back pairs of the environments seen in training) and out of distribution
(OOD test: every pair of environments held out of training). It prints one table,
Recall and NDCG @10 and @20 as mean ± std over seeds (full ranking, training
items excluded; early stopping on validation data only), and writes a PNG of IID
against OOD Recall@20 per model.

datasets:
  planted  (default, generated, no download) painvrl.datasets.make_spurious:
           planted invariant, spurious and noise feature columns; three planted
           environments with spurious effect +1, -1, -1 (weights 3:1:1); the
           last is held out, so the OOD test flips the spurious preference seen
           in training. The pipelines find their own environments. Schedule of
           benchmarks/planted_pareto.py: backbone <= 100 epochs (patience 3
           checks), pipelines 2 outer iterations x (identification 3 rounds x 5
           epochs, 20 mask epochs), final model patience 4; 600 users, 400
           items, 24,000 pairs. About 15 s of CPU time for the 5 seeds.
  lastfm   Last.fm 2K with real text and audio features (../shared/data, or
           --data). Per seed: environments identified on all pairs pooled
           (10 environments, 2 rounds x 5 epochs), the two farthest from the
           rest held out as the OOD test (benchmarks/lastfm_results.py). Reduced
           schedule (the benchmark's in brackets, the reference's after): 1
           outer iteration [2; 5], identification 2 rounds x 5 epochs [3 x 10;
           10 x 20], 5 mask epochs [10; 40], patience 3 checks [5; 40],
           reg="batch". About 3 minutes of CPU time per seed.
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m painvrl [demo]``."""
    p = argparse.ArgumentParser(
        prog="python -m painvrl", usage="python -m painvrl [demo] [options]",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=("planted", "lastfm"), default="planted",
                   help="data set (default: planted; see above)")
    p.add_argument("--data", default=None, metavar="DIR",
                   help="folder holding lastfm2k-multimodal (default: $PAINVRL_DATA, then "
                        "../shared/data)")
    p.add_argument("--seeds", type=int, default=5, metavar="N",
                   help="number of seeds (default 5); mean ± std is over them")
    p.add_argument("--seed", type=int, default=0, metavar="S",
                   help="first seed (default 0): the run uses seeds S, S+1, ..., S+N-1")
    p.add_argument("--scale", type=float, default=None, metavar="F",
                   help="planted data F times larger: users, items and interactions (default "
                        "1: 600, 400, 24,000); the schedule stays the same")
    p.add_argument("--epochs", type=int, default=None, metavar="E",
                   help="maximum epochs of the backbone and the final models (default: the "
                        "schedule's, 100 planted / 200 lastfm; early stopping usually ends "
                        "sooner)")
    p.add_argument("--reg", choices=("full", "batch"), default=None,
                   help="L2 on the whole embedding tables every step (full, the reference "
                        "code) or only on the rows a batch touches (batch, faster); default: "
                        "full planted, batch lastfm")
    p.add_argument("--threads", type=int, default=None, metavar="T",
                   help="threads of the C kernels, 0 for all cores (default: 1 planted, whose "
                        "kernels are too small to gain from threads; all cores lastfm); "
                        "results do not depend on it")
    p.add_argument("--plot", default="painvrl-demo.png", metavar="PATH",
                   help="PNG to write (default: painvrl-demo.png in the current directory; "
                        "needs matplotlib)")
    p.add_argument("--no-plot", action="store_true", help="do not write the plot")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse ``argv`` (default ``sys.argv[1:]``); a leading ``demo`` is optional."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["demo"]:
        argv = argv[1:]
    args = build_parser().parse_args(argv)
    if args.seeds < 1:
        build_parser().error(f"--seeds must be at least 1, got {args.seeds}")
    if args.scale is not None and (args.dataset != "planted" or not args.scale > 0):
        build_parser().error("--scale takes a number > 0 and applies to --dataset planted only")
    if args.threads is not None and args.threads < 0:
        build_parser().error(f"--threads must be 0 (all cores) or more, got {args.threads}")
    return args


def _wrap(line: str) -> str:
    """A long line wrapped at 92 columns, continuation lines indented."""
    return textwrap.fill(line, width=92, subsequent_indent="    ")


def main(argv: Optional[List[str]] = None) -> int:
    """Run the demo; returns the exit status."""
    args = parse_args(argv)
    from . import demo

    wall, cpu = time.perf_counter(), time.process_time()
    schedule = demo.SCHEDULES[args.dataset].with_overrides(max_epochs=args.epochs, reg=args.reg,
                                                           scale=args.scale)
    seeds = list(range(args.seed, args.seed + args.seeds))
    threads = schedule.n_threads if args.threads is None else (args.threads or None)
    print("painvrl demo: PaInvRL against InvRL and the backbone, in and out of distribution\n")
    print(DESCRIPTION.split("\n\n")[0], flush=True)
    try:
        data = demo.load_data(schedule, args.data)
    except FileNotFoundError as exc:
        print(f"python -m painvrl: {exc}", file=sys.stderr)
        return 1
    result = demo.run(schedule, seeds, data=data, n_threads=threads, progress=not args.quiet,
                      log=lambda line: print("\n" + _wrap(f"data: {line}"), flush=True))
    print(f"\nFull ranking, training items excluded; mean ± std over seeds {seeds}:\n")
    print(demo.summary_table(result.runs).to_string(index=False))
    print()
    for line in demo.verdict(result):
        print(_wrap(line))
    if not args.no_plot:
        path = demo.plot(result, args.plot)
        print(f"\nplot: {path}" if path else
              "\nplot skipped: the plot needs matplotlib (pip install matplotlib)")
    print(f"\ntime: {time.perf_counter() - wall:.0f} s wall, {time.process_time() - cpu:.0f} s "
          f"CPU ({demo.format_seconds(result.seconds)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
