"""``python -m painvrl``: train the backbone and print a full-ranking metrics table.

By default it uses the generated multimodal dataset (no files needed); ``--dataset
lastfm`` uses the Last.fm 2K set with its real text and audio features.
"""
from __future__ import annotations

import argparse
import sys
import time

import pandas as pd


def _parse(argv):
    p = argparse.ArgumentParser(prog="python -m painvrl", description=__doc__.splitlines()[0])
    p.add_argument("--dataset", choices=("synthetic", "lastfm"), default="synthetic")
    p.add_argument("--data", default=None, help="folder holding lastfm2k-multimodal")
    p.add_argument("--epochs", type=int, default=100, help="maximum epochs (default 100)")
    p.add_argument("--reg", choices=("full", "batch"), default="full")
    p.add_argument("--seed", type=int, default=2233)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--ks", type=int, nargs="+", default=[10, 20])
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = _parse(argv)
    from . import Backbone, Popularity, datasets

    if args.dataset == "synthetic":
        data = datasets.make_multimodal(seed=0)
    else:
        data = datasets.load_lastfm(args.data)
    print(data)
    rows = []
    start = time.perf_counter()
    models = {"popularity": Popularity().fit(data)}
    backbone = Backbone(max_epochs=args.epochs, reg=args.reg, seed=args.seed,
                        n_threads=args.threads, progress=not args.quiet)
    models["backbone"] = backbone.fit(data)
    train_secs = time.perf_counter() - start
    for name, model in models.items():
        table = model.evaluate(data, "test", ks=args.ks)
        table.insert(0, "model", name)
        rows.append(table)
    table = pd.concat(rows, ignore_index=True)
    wide = table.pivot_table(index="model", columns=["metric", "k"], values="value")
    wide.columns = [f"{m}@{k}" for m, k in wide.columns]
    print(f"\nbackbone: {backbone.n_epochs_} epochs in {train_secs:.1f} s, best validation "
          f"{backbone.monitor} {backbone.best_score_:.4f} at epoch {backbone.best_epoch_}")
    print(f"test metrics (full ranking, training items excluded), {data.test.nnz} test pairs:")
    print(wide.to_string(float_format=lambda v: f"{v:.4f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
