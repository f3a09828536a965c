"""Benchmark: one batch of the final recommender's convert module (method.md §4.2).

TikTok-like size, float32: 512 positives x 50 negatives, D = 384, d_c = d_id = d_a = 64,
36,656 users and 76,085 items (random tables).  Times ``convert_loss_grad`` (dense
dU/dV outputs, so zeroing the full gradient tables is included) for each fusion at 1
and 2 threads, twice: through the Python API (whose input checks scan the whole 117 MB
feature table for NaN on every call) and through the C core alone (``core``, the
kernel plus the dense outputs; the trainer calls the kernel with compact slot rows),
and prints beside it, from the same run:

* the backbone batch ``rec_loss_grad`` (gate = mask) on the same batch, the sibling
  kernel that needs no item projection;
* the NumPy float32 forward (loss only) that projects every item through W and the
  attention, as a straightforward implementation would, with its relative difference
  from the C loss.

--quick: 4,000 users, 8,000 items, batch 128 x (1 + 50), 3 repetitions (same D and
widths, same code path), in seconds.

Usage: python benchmarks/bench_convert.py [--reps 10] [--quick]
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from _common import header, parser, run_sizes, size_option  # noqa: E402
from painvrl import _core  # noqa: E402
from painvrl.invariance import convert_loss_grad  # noqa: E402
from painvrl.models.functional import rec_loss_grad  # noqa: E402

D, D_C, D_ID, D_A = 384, 64, 64, 64
FULL = dict(n_users=36656, n_items=76085, batch=512, n_neg=50, reps=10)
QUICK = dict(n_users=4000, n_items=8000, batch=128, n_neg=50, reps=3)


def numpy_loss(U, V, W, b, A, c, q, mask, X, users, items, beta_u, beta_i):
    h_inv = (X * mask) @ W.T + b
    h_var = (X * (1 - mask)) @ W.T + b
    k_inv = np.tanh(h_inv @ A.T + c) @ q
    k_var = np.tanh(h_var @ A.T + c) @ q
    n_neg = items.shape[1] - 1
    a = 1 / (1 + np.exp(k_var - k_inv))
    E = np.concatenate([V, a[:, None] * h_inv + (1 - a)[:, None] * h_var], axis=1)
    s = np.einsum("bk,bck->bc", U[users], E[items])
    bu, bi = beta_u[users][:, None], beta_i[items]
    loss = np.sum((1 + bu[:, 0] * bi[:, 0]) * np.logaddexp(0, -s[:, 0]))
    return loss + np.sum((1 + bu * bi[:, 1:]) / n_neg * np.logaddexp(0, s[:, 1:]))


def median_time(f, reps):
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main(argv=None):
    ap = parser(__doc__)
    size_option(ap, "reps", FULL, QUICK, "timed calls per measurement, whose median is printed")
    args = ap.parse_args(argv)
    s = run_sizes(args, FULL, QUICK)
    header("bench_convert", args.quick)
    rng = np.random.default_rng(0)
    f32 = np.float32
    U = rng.normal(0, 0.1, (s.n_users, D_ID + D_C)).astype(f32)
    V = rng.normal(0, 0.1, (s.n_items, D_ID)).astype(f32)
    X = rng.normal(size=(s.n_items, D)).astype(f32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    W = rng.normal(0, 0.05, (D_C, D)).astype(f32)
    b = np.zeros(D_C, f32)
    A = rng.normal(0, 0.1, (D_A, D_C)).astype(f32)
    c = np.zeros(D_A, f32)
    q = rng.normal(0, 0.1, D_A).astype(f32)
    mask = rng.uniform(0, 1, D).astype(f32)
    beta_u = (1 / np.sqrt(rng.integers(1, 60, s.n_users) + 1.0)).astype(f32)
    beta_i = (1 / np.sqrt(rng.integers(0, 40, s.n_items) + 1.0)).astype(f32)
    users = rng.integers(0, s.n_users, s.batch)
    items = rng.integers(0, s.n_items, (s.batch, 1 + s.n_neg))
    print(f"# {s.n_users} users, {s.n_items} items, batch {s.batch} x (1 + {s.n_neg}), "
          f"distinct items {len(np.unique(items))}, D={D}, d_c={D_C}, d_a={D_A}, float32, "
          f"median of {s.reps}")
    kw = dict(U=U, V=V, W=W, b=b, A=A, c=c, q=q, mask=mask, X=X, users=users, items=items,
              beta_u=beta_u, beta_i=beta_i)
    core_args = [U, V, W, b, A, c, q, np.zeros(2, f32), mask, X, users, items, beta_u, beta_i]
    for nt in (1, 2):
        with threadpool_limits(nt, "blas"):
            for fusion in ("attention", "global", "invariant"):
                t = median_time(lambda: convert_loss_grad(**kw, fusion=fusion,
                                                          omega=np.zeros(2, f32),
                                                          n_threads=nt), s.reps)
                tc = median_time(lambda: _core.convert_loss_grad(*core_args, fusion=fusion,
                                                                 n_threads=nt), s.reps)
                print(f"convert_loss_grad fusion={fusion:9s} threads={nt}: {t * 1e3:8.1f} ms"
                      f"   (core {tc * 1e3:8.1f} ms)")
            t = median_time(lambda: rec_loss_grad(U, V, W, b, mask, X, users, items, beta_u,
                                                  beta_i, n_threads=nt), s.reps)
            print(f"rec_loss_grad (backbone, gate=mask)  threads={nt}: {t * 1e3:8.1f} ms")
    with threadpool_limits(1, "blas"):
        t0 = time.perf_counter()
        ref = float(numpy_loss(**kw))  # a float32 scalar would round the difference too
        t = time.perf_counter() - t0
    got = convert_loss_grad(**kw).loss
    print(f"NumPy forward only (all items projected), 1 BLAS thread: {t * 1e3:8.1f} ms; "
          f"loss rel. diff from C: {abs(got - ref) / abs(ref):.2e}")


if __name__ == "__main__":
    main()
