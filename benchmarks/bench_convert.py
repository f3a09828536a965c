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

Usage: python benchmarks/bench_convert.py [--reps 10]
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from painvrl import _core  # noqa: E402
from painvrl.invariance import convert_loss_grad  # noqa: E402
from painvrl.models.functional import rec_loss_grad  # noqa: E402

N_USERS, N_ITEMS, D, D_C, D_ID, D_A = 36656, 76085, 384, 64, 64, 64
B, N_NEG = 512, 50


def numpy_loss(U, V, W, b, A, c, q, mask, X, users, items, beta_u, beta_i):
    h_inv = (X * mask) @ W.T + b
    h_var = (X * (1 - mask)) @ W.T + b
    k_inv = np.tanh(h_inv @ A.T + c) @ q
    k_var = np.tanh(h_var @ A.T + c) @ q
    a = 1 / (1 + np.exp(k_var - k_inv))
    E = np.concatenate([V, a[:, None] * h_inv + (1 - a)[:, None] * h_var], axis=1)
    s = np.einsum("bk,bck->bc", U[users], E[items])
    bu, bi = beta_u[users][:, None], beta_i[items]
    loss = np.sum((1 + bu[:, 0] * bi[:, 0]) * np.logaddexp(0, -s[:, 0]))
    return loss + np.sum((1 + bu * bi[:, 1:]) / N_NEG * np.logaddexp(0, s[:, 1:]))


def median_time(f, reps):
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=10)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    f32 = np.float32
    U = rng.normal(0, 0.1, (N_USERS, D_ID + D_C)).astype(f32)
    V = rng.normal(0, 0.1, (N_ITEMS, D_ID)).astype(f32)
    X = rng.normal(size=(N_ITEMS, D)).astype(f32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    W = rng.normal(0, 0.05, (D_C, D)).astype(f32)
    b = np.zeros(D_C, f32)
    A = rng.normal(0, 0.1, (D_A, D_C)).astype(f32)
    c = np.zeros(D_A, f32)
    q = rng.normal(0, 0.1, D_A).astype(f32)
    mask = rng.uniform(0, 1, D).astype(f32)
    beta_u = (1 / np.sqrt(rng.integers(1, 60, N_USERS) + 1.0)).astype(f32)
    beta_i = (1 / np.sqrt(rng.integers(0, 40, N_ITEMS) + 1.0)).astype(f32)
    users = rng.integers(0, N_USERS, B)
    items = rng.integers(0, N_ITEMS, (B, 1 + N_NEG))
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs (shared machine)")
    print(f"# BLAS: {[(i.get('internal_api'), i.get('num_threads')) for i in threadpool_info()]}")
    print(f"# batch {B} x (1 + {N_NEG}), distinct items {len(np.unique(items))}, D={D}, "
          f"d_c={D_C}, d_a={D_A}, float32, median of {args.reps}")
    kw = dict(U=U, V=V, W=W, b=b, A=A, c=c, q=q, mask=mask, X=X, users=users, items=items,
              beta_u=beta_u, beta_i=beta_i)
    core_args = [U, V, W, b, A, c, q, np.zeros(2, f32), mask, X, users, items, beta_u, beta_i]
    for nt in (1, 2):
        with threadpool_limits(nt, "blas"):
            for fusion in ("attention", "global", "invariant"):
                t = median_time(lambda: convert_loss_grad(**kw, fusion=fusion,
                                                          omega=np.zeros(2, f32),
                                                          n_threads=nt), args.reps)
                tc = median_time(lambda: _core.convert_loss_grad(*core_args, fusion=fusion,
                                                                 n_threads=nt), args.reps)
                print(f"convert_loss_grad fusion={fusion:9s} threads={nt}: {t * 1e3:8.1f} ms"
                      f"   (core {tc * 1e3:8.1f} ms)")
            t = median_time(lambda: rec_loss_grad(U, V, W, b, mask, X, users, items, beta_u,
                                                  beta_i, n_threads=nt), args.reps)
            print(f"rec_loss_grad (backbone, gate=mask)  threads={nt}: {t * 1e3:8.1f} ms")
    with threadpool_limits(1, "blas"):
        t0 = time.perf_counter()
        ref = numpy_loss(**kw)
        t = time.perf_counter() - t0
    got = convert_loss_grad(**kw).loss
    print(f"NumPy forward only (all items projected), 1 BLAS thread: {t * 1e3:8.1f} ms; "
          f"loss rel. diff from C: {abs(got - ref) / abs(ref):.2e}")


if __name__ == "__main__":
    main()
