"""Backbone training: one epoch in C (reg="batch" and reg="full") on TikTok-shaped data,
beside the reference algorithm in NumPy (all items projected every batch, dense Adam).

Default size: make_tiktok_like(scale=1) (36,656 users, 76,085 items, 564,000 training
pairs, D = 384), batch 512, 50 negatives, d_id = d_c = 64.  The NumPy reference runs
3 steps on the same data in the same run and is extrapolated to the epoch's number of
steps (the output says so).  --quick: scale 0.02, the same code path in seconds.

    ./dev.sh bench            or     .venv/bin/python benchmarks/bench_train.py [--quick]
"""
import time

import numpy as np
from _common import header, parser, run_sizes, size_option
from painvrl import _core
from painvrl.data.datasets import make_tiktok_like
from painvrl.models.functional import loss_weights

D_ID = D_C = 64
BATCH, N_NEG = 512, 50
FULL = dict(scale=1.0, ref_steps=3)
QUICK = dict(scale=0.02, ref_steps=3)


def init(n_users, n_items, D, seed=2233):
    rng = np.random.default_rng(seed)
    U = (rng.standard_normal((n_users, D_ID + D_C)) * 0.01).astype(np.float32)
    V = (rng.standard_normal((n_items, D_ID)) * 0.01).astype(np.float32)
    W = (rng.standard_normal((D_C, D)) * 0.01).astype(np.float32)
    b = np.zeros(D_C, np.float32)
    return U, V, W, b


def c_epoch(reg, users, items, X, beta_u, beta_i):
    U, V, W, b = init(beta_u.shape[0], beta_i.shape[0], X.shape[1])
    state = tuple(np.zeros_like(a) for a in (U, U, V, V, W, W, b, b))
    start = time.perf_counter()
    loss, n_batches, _ = _core.train_epoch(U, V, W, b, None, X, beta_u, beta_i, users, items,
                                           state, reg=reg, wd1=1e-4, wdi=1.0, wd2=0.01,
                                           batch_size=BATCH, n_neg=N_NEG, seed=1, epoch=0)
    return time.perf_counter() - start, loss / n_batches


def numpy_reference_step(P, S, t, X, users, items, beta_u, beta_i, rng):
    """The reference code's step: project every item, score, BCE, dense L2 and dense Adam."""
    U, V, W, b = P
    n = users.shape[0]
    neg = rng.integers(0, V.shape[0], (n, N_NEG))
    E = np.concatenate([V, X @ W.T + b], axis=1)             # all the items, every step
    cols = np.concatenate([items[:, None], neg], axis=1)
    s = np.einsum("bk,bck->bc", U[users], E[cols])
    wt = np.empty_like(s)
    wt[:, 0] = 1 + beta_u[users] * beta_i[items]
    wt[:, 1:] = (1 + beta_u[users][:, None] * beta_i[neg]) / N_NEG
    y = np.zeros_like(s)
    y[:, 0] = 1
    r = wt * (1 / (1 + np.exp(-s)) - y)
    gU = np.zeros_like(U)
    np.add.at(gU, users, np.einsum("bc,bck->bk", r, E[cols]))
    gE = np.zeros_like(E)
    np.add.at(gE, cols.ravel(), (r[:, :, None] * U[users][:, None, :]).reshape(-1, E.shape[1]))
    grads = [gU + 2e-4 * U, gE[:, :D_ID] + 2e-4 * V, gE[:, D_ID:].T @ X + 0.02 * W,
             gE[:, D_ID:].sum(0) + 0.02 * b]
    for p, g, (m, v) in zip(P, grads, S):
        m *= 0.9
        m += 0.1 * g
        v *= 0.999
        v += 0.001 * g * g
        p -= 1e-3 / (1 - 0.9**t) * m / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)


def main(argv=None):
    p = parser(__doc__)
    size_option(p, "scale", FULL, QUICK, "make_tiktok_like scale", type=float)
    size_option(p, "ref-steps", FULL, QUICK, "NumPy reference steps timed")
    args = p.parse_args(argv)
    s = run_sizes(args, FULL, QUICK)
    n_ref_steps = s.ref_steps
    header("bench_train", args.quick)
    ds = make_tiktok_like(scale=s.scale)
    users, items, X = ds.train[:, 0].copy(), ds.train[:, 1].copy(), ds.features
    beta_u, beta_i = loss_weights(ds.user_degree, ds.item_degree)
    print(f"data (make_tiktok_like, scale {s.scale:g}): {ds.n_users} users, {ds.n_items} items, "
          f"{ds.n_train} training pairs, D={X.shape[1]}, batch {BATCH}, {N_NEG} negatives, "
          f"d_id = d_c = {D_ID}")
    n_batches = -(-ds.n_train // BATCH)
    for reg in ("batch", "full"):
        secs, loss = c_epoch(reg, users, items, X, beta_u, beta_i)
        print(f"painvrl C   reg={reg:<5}  epoch {secs:7.2f} s   ({secs / n_batches * 1e3:.2f} "
              f"ms/step, mean batch loss {loss:.1f})")
    P = list(init(ds.n_users, ds.n_items, X.shape[1]))
    S = [(np.zeros_like(p), np.zeros_like(p)) for p in P]
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for t in range(1, n_ref_steps + 1):
        sl = slice((t - 1) * BATCH, t * BATCH)
        numpy_reference_step(P, S, t, X, users[sl], items[sl], beta_u, beta_i, rng)
    per_step = (time.perf_counter() - start) / n_ref_steps
    print(f"NumPy ref   reg=full   epoch {per_step * n_batches:7.1f} s   ({per_step * 1e3:.0f} "
          f"ms/step over {n_ref_steps} steps, extrapolated to {n_batches} steps)")


if __name__ == "__main__":
    main()
