"""Backbone vs InvRL vs PaInvRL on Last.fm 2K (real text + audio features):
in-distribution (IID) and cross-environment (OOD) test, Recall/NDCG@10 and @20,
mean ± std over seeds.  The README's results table is this script's output.

    .venv/bin/python benchmarks/lastfm_results.py                 # 3 seeds, ~15 min on 2 cores
    .venv/bin/python benchmarks/lastfm_results.py --seeds 0 1 2 3 4 --out results.csv

Per seed (method.md §6.2, our construction where the paper is silent):
1. label every interaction (train, val and test pooled) with an environment by
   the identification of §2.1 (``identify_environments`` on ``splits.pooled``);
2. hold out the two environments farthest from the rest (Jensen-Shannon
   divergence of their item distributions) as the OOD test, and split the others
   8:1:1 per user into train / val / IID test (``splits.hold_out_environments``);
3. fit the backbone on that train set (early stopping on val), then InvRL and
   PaInvRL, both starting from that same backbone as their pre-trained stage;
4. score every model on both tests by full ranking, training items excluded.

The pipelines run a reduced schedule (``PIPELINE`` below: 2 outer iterations,
identification of 3 rounds x 10 epochs, 10 mask epochs, patience 5 checks for the
final model) to fit the time budget; the reference schedule is 5 outer
iterations, up to 10 rounds x 20 epochs, 40 mask epochs and patience 40.
Everything uses ``reg="batch"``.  The data are read with ``datasets.load_lastfm`` (--data,
else ``$PAINVRL_DATA`` or ``../shared/data``); InvRL and the backbone are the references
printed beside PaInvRL, from the same run and seeds.
"""
import time

import pandas as pd

from _common import header, parser
from painvrl import Backbone, InvRL, PaInvRL, datasets, identify_environments, splits
from painvrl.evaluation import summarize
from painvrl.evaluation.compare import compare

BACKBONE = dict(reg="batch", max_epochs=200, patience=5, eval_every=5, progress=False)
PIPELINE = dict(n_envs=10, n_outer=2, env_epochs=10, env_rounds=3, mask_epochs=10,
                max_epochs=200, patience=5, final_patience=5, eval_every=5, reg="batch",
                progress=False)
SPLIT_ENVS = dict(n_envs=10, epochs=10, max_rounds=3, reg="batch", progress=False)


def ood_split(data, seed):
    """Steps 1-2: environments of all interactions, two held out as the OOD test."""
    labels = identify_environments(splits.pooled(data), seed=seed, **SPLIT_ENVS).labels
    return splits.hold_out_environments(data, labels, holdout=2, which="farthest", seed=seed)


def one_seed(data, seed, log):
    start = time.perf_counter()
    holdout = ood_split(data, seed)
    ds = holdout.dataset
    log(f"seed {seed}: split {holdout.sizes}, held out {holdout.held_out} "
        f"({time.perf_counter() - start:.0f} s)")
    models, seconds = {}, {}
    start = time.perf_counter()
    models["backbone"] = Backbone(seed=seed, **BACKBONE).fit(ds)
    seconds["backbone"] = time.perf_counter() - start
    for name, cls in (("InvRL", InvRL), ("PaInvRL", PaInvRL)):
        start = time.perf_counter()
        models[name] = cls(seed=seed, **PIPELINE).fit(ds, pretrained=models["backbone"])
        seconds[name] = time.perf_counter() - start
        stages = models[name].stage_seconds_.groupby("stage", sort=False).seconds.sum()
        log(f"seed {seed}: {name} {seconds[name]:.0f} s "
            f"({', '.join(f'{k} {v:.0f} s' for k, v in stages.items() if v > 0)})")
    log(f"seed {seed}: backbone {seconds['backbone']:.0f} s")
    table = compare(models, holdout.splits())
    table.insert(0, "seed", seed)
    pa = models["PaInvRL"]
    extra = {"seed": seed, "mask_mean_InvRL": float(models["InvRL"].mask_.mean()),
             "mask_mean_PaInvRL": float(pa.mask_.mean()),
             "gamma_mean_PaInvRL": float(pa.mask_history().gamma.mean()),
             "attention_inv_mean": float(pa.attention_weights(ds).mean()),
             **{f"seconds_{k}": v for k, v in seconds.items()}}
    return table, extra


def main(argv=None):
    p = parser(__doc__, quick=False)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="default 0 1 2")
    p.add_argument("--data", default=None, help="folder holding lastfm2k-multimodal")
    p.add_argument("--out", default=None, help="also write the per-seed rows to this CSV")
    args = p.parse_args(argv)

    t0 = time.perf_counter()
    log = lambda msg: print(f"[{time.perf_counter() - t0:6.0f} s] {msg}", flush=True)  # noqa: E731
    header("lastfm_results")
    data = datasets.load_lastfm(args.data)
    log(f"{data}")
    tables, extras = [], []
    for seed in args.seeds:
        table, extra = one_seed(data, seed, log)
        tables.append(table)
        extras.append(extra)
    runs = pd.concat(tables, ignore_index=True)
    if args.out:
        runs.to_csv(args.out, index=False)
    wide = summarize(runs, wide=True)
    print(f"\nLast.fm 2K, {len(args.seeds)} seeds {args.seeds}, mean ± std "
          f"(total {time.perf_counter() - t0:.0f} s)\n")
    print(markdown(wide))
    print()
    print(pd.DataFrame(extras).round(3).to_string(index=False))
    summary = summarize(runs)
    for split in ("iid", "ood"):
        for metric, k in (("recall", 20), ("ndcg", 20)):
            row = summary[(summary.split == split) & (summary.metric == metric) &
                          (summary.k == k)].set_index("model")["mean"]
            best = row.idxmax()
            print(f"{split} {metric}@{k}: best {best} ({row[best]:.4f}); PaInvRL "
                  f"{row['PaInvRL'] - row['backbone']:+.4f} vs backbone, "
                  f"{row['PaInvRL'] - row['InvRL']:+.4f} vs InvRL")


def markdown(frame):
    """A DataFrame as a Markdown table (for the README)."""
    head = [str(c) for c in frame.columns]
    rows = [[str(v) for v in row] for row in frame.itertuples(index=False)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


if __name__ == "__main__":
    main()
