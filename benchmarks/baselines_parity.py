"""Parity and speed of painvrl's baselines against reference implementations, in one run.

On the Last.fm 2K split (MMRec's own train / val / test, real text + audio features),
each pair is trained for the same number of epochs with matched hyperparameters, then
scored by the same code (``painvrl.compare``: full ranking, training items excluded,
standard NDCG) and printed side by side with the time per epoch:

* BPR-MF: painvrl ``LightGCN(n_layers=0)`` (LightGCN without propagation is BPR-MF;
  minibatch Adam, batch 256, lr 1e-2) vs ``cornac.models.BPR`` (Cython, one SGD step per
  pair, lr 0.01): the same model and loss under different optimisers, so at equal epochs
  the accuracy gap is the optimisers'.
* VBPR: painvrl ``VBPR`` vs ``cornac.models.VBPR`` (PyTorch, Adam on a summed loss:
  painvrl's mean loss with lam = lambda_w, lam_b = lambda_b, lam_e = lambda_e / B is the
  same objective up to Adam's epsilon, except that cornac weighs the negative item's
  bias L2 by 1/10).  Both get the same features.
* LightGCN: painvrl ``LightGCN`` vs **a minimal PyTorch reimplementation written here**
  (``TorchLightGCN`` below, following the authors' LightGCN-PyTorch: normal(0, 0.1)
  init, symmetric normalised graph, layer mean, BPR + reg/(2B) on the layer-0 rows,
  Adam, uniform negatives).  It is NOT the authors' code, which this repository does
  not hold; its numbers are those of this reimplementation.
* FREEDOM: painvrl only; the reference (MMRec) is not run here.

Each model runs on one thread (``n_threads=1``, ``torch.set_num_threads(1)``, cornac
BPR ``num_threads=1``) so that other processes on the shared machine perturb both sides
alike.  Time per epoch is CPU time of the training call divided by its epochs (wall
time in brackets); accuracy comes from the last epoch (no early stopping, the same for
both sides), mean ± std over ``--seeds`` seeds, and a paired t-test over seeds of each
painvrl model against its reference (Recall@20 and NDCG@20).

--quick: generated data (make_multimodal: 300 users, 400 items), 2 epochs, one seed.

Usage:
    python benchmarks/baselines_parity.py                 # Last.fm, 25 epochs, 5 seeds
    python benchmarks/baselines_parity.py --epochs 50 --seeds 5
    python benchmarks/baselines_parity.py --quick
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
from _common import header, parser, run_sizes, size_option  # noqa: E402

from painvrl import FREEDOM, VBPR, CornacModel, LightGCN, datasets  # noqa: E402
from painvrl.evaluation.compare import compare, paired_test, summarize  # noqa: E402
from painvrl.models.graph import normalised_graph  # noqa: E402

FULL = dict(epochs=25, seeds=5)
QUICK = dict(epochs=2, seeds=1)
DIM, BATCH, LR, REG = 64, 2048, 1e-3, 1e-4
BPR_BATCH, BPR_LR = 256, 1e-2  # cornac's BPR takes one SGD step per pair: smaller batches here
VBPR_K, VBPR_BATCH, VBPR_LR, VBPR_LAM = 32, 1024, 1e-3, 1e-2


class TorchLightGCN:
    """A minimal PyTorch LightGCN, written for this benchmark (a reimplementation of
    the authors' LightGCN-PyTorch, not their code).  Exposes ``score(users)``."""

    def __init__(self, epochs: int, seed: int, n_layers: int = 3):
        self.epochs, self.seed, self.n_layers = epochs, seed, n_layers

    def fit(self, ds):
        import torch

        torch.manual_seed(self.seed)
        g = normalised_graph(ds.train_csr)
        n = ds.n_users + ds.n_items
        rows = np.repeat(np.arange(n), np.diff(g.indptr))
        A = torch.sparse_coo_tensor(np.vstack([rows, g.indices]), torch.from_numpy(g.values),
                                    (n, n)).coalesce()
        E0 = torch.nn.Parameter(torch.randn(n, DIM) * 0.1)
        opt = torch.optim.Adam([E0], lr=LR)
        pairs = torch.from_numpy(ds.train.astype(np.int64))
        gen = torch.Generator().manual_seed(self.seed)
        nu = ds.n_users
        for _ in range(self.epochs):
            order = torch.randperm(len(pairs), generator=gen)
            for lo in range(0, len(pairs), BATCH):
                b = pairs[order[lo:lo + BATCH]]
                u, i = b[:, 0], b[:, 1] + nu
                j = torch.randint(0, ds.n_items, (len(b),), generator=gen) + nu
                E = self._propagate(A, E0)
                x = (E[u] * (E[i] - E[j])).sum(1)
                reg = (E0[u].pow(2).sum() + E0[i].pow(2).sum() + E0[j].pow(2).sum()) / 2
                loss = torch.nn.functional.softplus(-x).mean() + REG * reg / len(b)
                opt.zero_grad()
                loss.backward()
                opt.step()
        with torch.no_grad():
            self.E = self._propagate(A, E0).numpy()
        self.nu = nu
        return self

    def _propagate(self, A, E0):
        import torch

        layers, cur = [E0], E0
        for _ in range(self.n_layers):
            cur = torch.sparse.mm(A, cur)
            layers.append(cur)
        return torch.stack(layers).mean(0)

    def score(self, users):
        return self.E[users] @ self.E[self.nu:].T


def timed(fit):
    cpu, wall = time.process_time(), time.perf_counter()
    model = fit()
    return model, time.process_time() - cpu, time.perf_counter() - wall


def pairs_for(seed: int, epochs: int):
    """(name, ours, reference or None): unfitted, matched hyperparameters."""
    common = dict(max_epochs=epochs, eval_every=10**9, progress=False, n_threads=1, seed=seed)
    out = []
    try:
        import cornac
    except ImportError:
        cornac = None
    bpr_ref = None if cornac is None else (lambda: CornacModel(cornac.models.BPR(
        k=DIM, max_iter=epochs, learning_rate=0.01, lambda_reg=0.01, num_threads=1, seed=seed,
        verbose=False), seed=seed))
    out.append(("BPR-MF", lambda: LightGCN(dim=DIM, n_layers=0, lr=BPR_LR, reg=REG,
                                           batch_size=BPR_BATCH, **common), bpr_ref))
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        torch = None
    vbpr_ref = None if (cornac is None or torch is None) else (lambda: CornacModel(
        cornac.models.VBPR(k=VBPR_K, k2=VBPR_K, n_epochs=epochs, batch_size=VBPR_BATCH,
                           learning_rate=VBPR_LR, lambda_w=VBPR_LAM, lambda_b=VBPR_LAM,
                           lambda_e=0.0, verbose=False, seed=seed),
        seed=seed, item_features=True))
    out.append(("VBPR", lambda: VBPR(k=VBPR_K, k2=VBPR_K, lr=VBPR_LR, lam=VBPR_LAM,
                                     lam_b=VBPR_LAM, lam_e=0.0, normalize=False,
                                     batch_size=VBPR_BATCH, **common), vbpr_ref))
    out.append(("LightGCN", lambda: LightGCN(dim=DIM, n_layers=3, lr=LR, reg=REG,
                                             batch_size=BATCH, **common),
                None if torch is None else (lambda: TorchLightGCN(epochs, seed))))
    out.append(("FREEDOM", lambda: FREEDOM(dim=DIM, lr=LR, batch_size=BATCH, **common), None))
    return out


def main():
    p = parser(__doc__)
    size_option(p, "epochs", FULL, QUICK, "training epochs of every model")
    size_option(p, "seeds", FULL, QUICK, "seeds (0, 1, ...)")
    args = p.parse_args()
    s = run_sizes(args, FULL, QUICK)
    header("baselines_parity", args.quick)
    ds = (datasets.make_multimodal(n_users=300, n_items=400, n_interactions=12_000, seed=0)
          if args.quick else datasets.load_lastfm())
    print(f"data: {ds.name}, {ds.n_users} users x {ds.n_items} items, {len(ds.train)} training "
          f"pairs, features {ds.features.shape[1]}-d; {s.epochs} epochs, seeds 0..{s.seeds - 1}")
    runs, times = [], []
    for seed in range(s.seeds):
        models = {}
        for name, ours, ref in pairs_for(seed, s.epochs):
            for side, make in (("painvrl", ours), ("reference", ref)):
                if make is None:
                    continue
                model, cpu, wall = timed(lambda: make().fit(ds))
                models[f"{name} / {side}"] = model
                times.append((name, side, seed, cpu / s.epochs, wall / s.epochs))
        df = compare(models, {"test": ds}, ks=(10, 20), n_threads=1)
        runs.append(df)
    table = summarize(runs, wide=True)
    t = pd.DataFrame(times, columns=["model", "side", "seed", "cpu", "wall"])
    per_epoch = t.groupby(["model", "side"], sort=False)[["cpu", "wall"]].median()
    table["cpu s/epoch (wall)"] = [
        "{:.3f} ({:.3f})".format(*per_epoch.loc[tuple(m.split(" / "))]) for m in table["model"]]
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.to_string(index=False))
    print("time per epoch: median over seeds of (CPU time of fit) / epochs; fit includes "
          "building the graphs; validation is off (eval_every beyond the run)")
    if s.seeds > 1:
        print_paired(pd.concat(runs, keys=range(s.seeds), names=["seed"]).reset_index(0))


def print_paired(df):
    """painvrl vs reference, paired over seeds (t-test on the per-seed means)."""
    for metric, k in (("recall", 20), ("ndcg", 20)):
        rows = df[(df.metric == metric) & (df.k == k)]
        for name in dict.fromkeys(m.split(" / ")[0] for m in rows.model):
            ours = rows[rows.model == f"{name} / painvrl"].sort_values("seed")["value"]
            ref = rows[rows.model == f"{name} / reference"].sort_values("seed")["value"]
            if ref.empty:
                continue
            r = paired_test(ours.to_numpy(), ref.to_numpy(), test="t")
            print(f"paired t over {r.n} seeds, {metric}@{k}, {name}: painvrl - reference = "
                  f"{r.mean_diff:+.4f} ({100 * r.mean_diff / r.mean_b:+.1f} %), "
                  f"p = {r.pvalue:.3g}")


if __name__ == "__main__":
    main()
