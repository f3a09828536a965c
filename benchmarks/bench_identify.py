"""Environment identification: one round (10 models x 20 epochs over a tenth of the data each,
then every pair scored under every model) on TikTok-shaped data with the reference
hyperparameters (reg="full"), beside 20 backbone epochs on the full data from the same run.

Target: one identification round <= 1.5 x the 20 backbone epochs (both do the same number
of optimiser steps; identification adds the scoring and runs its models one per thread).

    .venv/bin/python benchmarks/bench_identify.py
    PAINVRL_BENCH_EPOCHS=4 .venv/bin/python benchmarks/bench_identify.py   # scaled down

With PAINVRL_BENCH_EPOCHS=k < 20, both sides run k epochs and the training part is scaled
by 20 / k (the scoring part, timed on its own, is not); the output says so.
"""
import os
import platform
import subprocess
import sys
import time

import numpy as np
from threadpoolctl import threadpool_info

from painvrl import _core
from painvrl.data.datasets import make_tiktok_like
from painvrl.models.functional import loss_weights

N_ENVS, EPOCHS, BATCH, N_NEG, D_ID, D_C = 10, 20, 512, 50, 64, 64
HYPER = dict(emb_lr=1e-3, proj_lr=1e-3, wd1=1e-4, wdi=2.0, wd2=0.01, reg="full")


def git_sha():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, cwd=os.path.dirname(__file__)).stdout.strip()
    except OSError:
        return "?"


def identify_round(ds, beta_u, beta_i, epochs, seed=2233):
    users = np.ascontiguousarray(ds.train[:, 0])
    items = np.ascontiguousarray(ds.train[:, 1])
    labels = np.random.default_rng(seed).integers(0, N_ENVS, ds.n_train)
    start = time.perf_counter()
    changes, sizes, _ = _core.identify(users, items, labels, ds.features, beta_u, beta_i,
                                       n_users=ds.n_users, n_envs=N_ENVS, max_rounds=1,
                                       d_id=D_ID, d_c=D_C, l1=0.01, batch_size=BATCH,
                                       n_neg=N_NEG, epochs=epochs, seed=seed, **HYPER)
    return time.perf_counter() - start, int(changes[0]), sizes[0]


def backbone_epochs(ds, beta_u, beta_i, epochs, seed=2233):
    """The same backbone and optimisers as an environment model, on all the data."""
    rng = np.random.default_rng(seed)
    D = ds.n_features
    U = (rng.standard_normal((ds.n_users, D_ID + D_C)) * 0.01).astype(np.float32)
    V = (rng.standard_normal((ds.n_items, D_ID)) * 0.01).astype(np.float32)
    W = (rng.standard_normal((D_C, D)) * 0.01).astype(np.float32)
    b = np.zeros(D_C, np.float32)
    # Adagrad on U, V (one state each), Adam on W, b
    state = (np.zeros_like(U), None, np.zeros_like(V), None, np.zeros_like(W), np.zeros_like(W),
             np.zeros_like(b), np.zeros_like(b))
    users = np.ascontiguousarray(ds.train[:, 0])
    items = np.ascontiguousarray(ds.train[:, 1])
    step, losses = 0, []
    start = time.perf_counter()
    for ep in range(epochs):
        loss, n_batches, step = _core.train_epoch(
            U, V, W, b, None, ds.features, beta_u, beta_i, users, items, state,
            emb_opt="adagrad", batch_size=BATCH, n_neg=N_NEG, seed=seed, epoch=ep, step=step,
            **HYPER)
        losses.append(loss / n_batches)
    return time.perf_counter() - start, losses


def main():
    epochs = int(os.environ.get("PAINVRL_BENCH_EPOCHS", EPOCHS))
    if not 1 <= epochs <= EPOCHS:
        raise SystemExit(f"PAINVRL_BENCH_EPOCHS must be in [1, {EPOCHS}], got {epochs}")
    print(f"painvrl {git_sha()}; machine: {platform.machine()}, {os.cpu_count()} cores, "
          f"{platform.processor() or platform.platform()}; python {platform.python_version()}; "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '(unset)')}")
    for info in threadpool_info():
        print(f"  {info['internal_api']} {info.get('version')} threads={info['num_threads']} "
              f"({os.path.basename(info['filepath'])})")
    t0 = time.perf_counter()
    ds = make_tiktok_like(seed=0)
    beta_u, beta_i = loss_weights(ds.user_degree, ds.item_degree)
    print(f"data: make_tiktok_like(seed=0) in {time.perf_counter() - t0:.1f} s: {ds.n_users} "
          f"users, {ds.n_items} items, {ds.n_train} training pairs, D={ds.n_features}; batch "
          f"{BATCH}, {N_NEG} negatives, d_id = d_c = {D_ID}, reg=full, Adagrad(U, V) + Adam(W, b)")
    scale = EPOCHS / epochs
    if epochs < EPOCHS:
        print(f"SCALED RUN: {epochs} epochs per side instead of {EPOCHS}; training times "
              f"below are extrapolated x{scale:g} to {EPOCHS} epochs")

    t_score, _, _ = identify_round(ds, beta_u, beta_i, epochs=0)
    t_round, changed, sizes = identify_round(ds, beta_u, beta_i, epochs=epochs)
    t_back, losses = backbone_epochs(ds, beta_u, beta_i, epochs)

    t_round_full = t_score + (t_round - t_score) * scale
    t_back_full = t_back * scale
    print(f"identification round, {N_ENVS} models x {epochs} epochs: {t_round:8.1f} s measured "
          f"(of which scoring {N_ENVS} x {ds.n_train} pairs: {t_score:.1f} s; {changed} labels "
          f"changed, sizes {sizes.min()}..{sizes.max()})")
    print(f"backbone, {epochs} epochs on all data:           {t_back:8.1f} s measured "
          f"(mean batch loss {losses[0]:.1f} -> {losses[-1]:.1f})")
    print(f"{EPOCHS} epochs: identification round {t_round_full:.1f} s vs backbone "
          f"{t_back_full:.1f} s: ratio {t_round_full / t_back_full:.2f} (target <= 1.5)"
          + (" [extrapolated]" if epochs < EPOCHS else ""))
    print("note: timings on a machine shared with other jobs vary from run to run")


if __name__ == "__main__":
    sys.exit(main())
