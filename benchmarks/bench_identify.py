"""Environment identification: one round (10 models x 20 epochs over a tenth of the data each,
then every pair scored under every model) on TikTok-shaped data with the reference
hyperparameters (reg="full"), beside 20 backbone epochs on the full data from the same run.

Target: one identification round <= 1.5 x the 20 backbone epochs (both do the same number
of optimiser steps; identification adds the scoring and runs its models one per thread).

Default size: make_tiktok_like(scale=1) (36,656 users, 76,085 items, 564,000 training
pairs, D = 384), batch 512, 50 negatives, d_id = d_c = 64, 20 epochs per side (many
minutes).  --quick: scale 0.02 and 1 epoch per side (scaled as --epochs 1), in seconds.

    .venv/bin/python benchmarks/bench_identify.py
    .venv/bin/python benchmarks/bench_identify.py --epochs 4   # scaled down

With --epochs k < 20, both sides run k epochs and the training part is scaled by 20 / k
(the scoring part, timed on its own, is not); the output says so.
"""
import time

import numpy as np
from _common import header, parser, run_sizes, size_option
from painvrl import _core
from painvrl.data.datasets import make_tiktok_like
from painvrl.models.functional import loss_weights

N_ENVS, EPOCHS, BATCH, N_NEG, D_ID, D_C = 10, 20, 512, 50, 64, 64
HYPER = dict(emb_lr=1e-3, proj_lr=1e-3, wd1=1e-4, wdi=2.0, wd2=0.01, reg="full")
FULL = dict(scale=1.0, epochs=EPOCHS)
QUICK = dict(scale=0.02, epochs=1)


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


def main(argv=None):
    p = parser(__doc__)
    size_option(p, "scale", FULL, QUICK, "make_tiktok_like scale", type=float)
    size_option(p, "epochs", FULL, QUICK, f"epochs per side, in [1, {EPOCHS}]; fewer are "
                f"extrapolated to {EPOCHS}")
    args = p.parse_args(argv)
    s = run_sizes(args, FULL, QUICK)
    epochs = s.epochs
    if not 1 <= epochs <= EPOCHS:
        p.error(f"--epochs must be in [1, {EPOCHS}], got {epochs}")
    header("bench_identify", args.quick)
    t0 = time.perf_counter()
    ds = make_tiktok_like(seed=0, scale=s.scale)
    beta_u, beta_i = loss_weights(ds.user_degree, ds.item_degree)
    print(f"data: make_tiktok_like(seed=0, scale={s.scale:g}) in {time.perf_counter() - t0:.1f} s: "
          f"{ds.n_users} users, {ds.n_items} items, {ds.n_train} training pairs, "
          f"D={ds.n_features}; batch {BATCH}, {N_NEG} negatives, d_id = d_c = {D_ID}, reg=full, "
          f"Adagrad(U, V) + Adam(W, b)")
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
    main()
