"""Benchmark: one mask step (method.md §3.3-3.4) at TikTok-like size, float32.

10 environments x 512 positives x 50 negatives, D = 384 features, d_c = 64,
d_id = 64, 36,656 users and 76,085 items (random tables of that size).  Times the
C kernel (median of many steps, reused workspace) at 1 and 2 threads and prints
beside it, from the same run:

* a straightforward NumPy implementation of the same step (every pair's item
  projected through W, as the reference code does; float32, a few steps), with the
  largest relative difference of its losses and gradients from the C kernel's;
* PyTorch autograd with double backward, if ``import torch`` works (not a
  dependency; skipped otherwise).

--quick: 4,000 users, 8,000 items, 10 environments x 32 positives x 50 negatives (same D
and widths, same code path), 5 C steps and 1 NumPy step, in seconds.

Then the growth in D: the same step at D = 384, 1,024, 2,048 and 2,276 (the widths of
TikTok, Last.fm, Kwai and MovieLens; --widths), C at 1 and 2 threads beside one NumPy step.

Usage: python benchmarks/bench_mask.py [--steps 30] [--numpy-steps 3] [--widths ...] [--quick]
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from _common import header, parser, run_sizes, size_option  # noqa: E402
from painvrl import _core  # noqa: E402

D, D_C, D_ID = 384, 64, 64
FULL = dict(n_users=36656, n_items=76085, n_envs=10, batch=512, n_neg=50, steps=30,
            numpy_steps=3)
QUICK = dict(n_users=4000, n_items=8000, n_envs=10, batch=32, n_neg=50, steps=5,
             numpy_steps=1)
SIGMA, W4, WD2 = 0.01, (1.0, 1.0, 1.0, 1.0), 0.01


def make_tables(rng, n_users, n_items, D=D):
    U = rng.normal(0, 0.1, (n_users, D_ID + D_C)).astype(np.float32)
    V = rng.normal(0, 0.1, (n_items, D_ID)).astype(np.float32)
    X = np.empty((n_items, D), np.float32)
    cuts = np.linspace(0, D, 4).astype(int)
    for a, b in zip(cuts[:-1], cuts[1:]):   # three L2-normalised modalities (128-d at D=384)
        m = rng.normal(size=(n_items, b - a)).astype(np.float32)
        X[:, a:b] = m / np.linalg.norm(m, axis=1, keepdims=True)
    W = rng.normal(0, 0.05, (D_C, D)).astype(np.float32)
    mu = rng.normal(0, 0.05, D).astype(np.float32)
    deg_u = rng.integers(1, 60, n_users)
    deg_i = rng.integers(0, 40, n_items)
    beta_u = (np.sqrt(deg_u + 1.0) / deg_u).astype(np.float32)
    beta_i = (1.0 / np.sqrt(deg_i + 1.0)).astype(np.float32)
    return U, V, X, W, mu, beta_u, beta_i


def make_batch(rng, n_users, n_items, n_envs, batch, n_neg, D=D):
    users = rng.integers(0, n_users, (n_envs, batch))
    items = rng.integers(0, n_items, (n_envs, batch, 1 + n_neg))
    eps = rng.normal(size=(n_envs, D)).astype(np.float32)
    return eps, users, items


def numpy_step(U, V, X, W, mu, eps, users, items, beta_u, beta_i, sigma, w, wd2):
    """The straightforward algorithm: project every pair's gated item through W."""
    dt = X.dtype
    n1 = items.shape[2]
    n_neg = n1 - 1
    v = mu[None, :] + dt.type(sigma) * eps + dt.type(0.5)
    z = np.clip(v, 0, 1)
    ind = ((v >= 0) & (v <= 1)).astype(dt)
    Ls, Gs, keep = [], [], []
    for e in range(users.shape[0]):
        u, it = users[e], items[e]
        p = U[u, D_ID:]                                        # (B, d_c)
        xg = X[it]                                             # (B, n1, D)
        q = xg * z[e]
        proj = q @ W.T                                         # (B, n1, d_c): item projection
        s = np.einsum("bk,bck->bc", U[u, :D_ID], V[it]) + np.einsum("bk,bck->bc", p, proj)
        bb = beta_u[u][:, None] * beta_i[it]
        om = np.empty_like(s)
        om[:, 0] = w[0] + w[1] * bb[:, 0]
        om[:, 1:] = (w[2] + w[3] * bb[:, 1:]) / n_neg
        y = np.zeros_like(s)
        y[:, 0] = 1
        sig = 1 / (1 + np.exp(-s))
        loss = np.sum(om[:, 0] * np.logaddexp(0, -s[:, 0])) + np.sum(
            om[:, 1:] * np.logaddexp(0, s[:, 1:])) + wd2 * np.sum(W.astype(np.float64) ** 2)
        r = om * (sig - y)
        rp = om * sig * (1 - sig)
        G = p.T @ np.einsum("bc,bcd->bd", r, q) + dt.type(2 * wd2) * W
        h = p @ W                                              # (B, D)
        gz = np.einsum("bc,bd,bcd->d", r, h, xg)
        Ls.append(loss)
        Gs.append(G)
        keep.append((p, xg, q, r, rp, h, gz))
    Gs = np.array(Gs)
    Gbar = Gs.mean(0)
    P = np.sum((Gs - Gbar) ** 2, axis=0)
    c = (mu + dt.type(0.5)) ** 2
    irm = float(np.sum((P.astype(np.float64) * (mu + 0.5)) ** 2))
    a_W = Gbar
    a_mu = np.mean([ind[e] * keep[e][6] for e in range(len(keep))], axis=0)
    b_W = np.zeros_like(W)
    b_mu = 2 * (mu + dt.type(0.5)) * np.sum(P * P, axis=0)
    for e, (p, xg, q, r, rp, h, gz) in enumerate(keep):
        M = 4 * (Gs[e] - Gbar) * P * c
        t = np.einsum("bk,bck->bc", p, q @ M.T)                # p^T M q for every pair
        b_W += p.T @ np.einsum("bc,bcd->bd", rp * t, q)
        k = p @ M
        b_mu += ind[e] * (np.einsum("bc,bd,bcd->d", rp * t, h, xg)
                          + np.einsum("bc,bd,bcd->d", r, k, xg))
    ga = np.concatenate([a_W.ravel(), a_mu])
    gb = np.concatenate([b_W.ravel(), b_mu])
    return float(np.mean(Ls)), irm, ga, gb


def torch_step(torch, T, eps, users, items, sigma, w, wd2):
    """Autograd with double backward (create_graph) for the per-environment G_e."""
    U, V, X, W, mu, beta_u, beta_i = T
    eps = torch.from_numpy(eps)
    users = torch.from_numpy(users)
    items = torch.from_numpy(items)
    n_neg = items.shape[2] - 1
    z = torch.clamp(mu + sigma * eps + 0.5, 0, 1)
    Ls, Gs = [], []
    for e in range(users.shape[0]):
        u, it = users[e], items[e]
        emb = torch.cat([V[it], (X[it] * z[e]) @ W.T], dim=-1)
        s = torch.einsum("bk,bck->bc", U[u], emb)
        bb = beta_u[u][:, None] * beta_i[it]
        loss = torch.sum((w[0] + w[1] * bb[:, 0]) * torch.nn.functional.softplus(-s[:, 0]))
        loss = loss + torch.sum((w[2] + w[3] * bb[:, 1:]) / n_neg
                                * torch.nn.functional.softplus(s[:, 1:]))
        loss = loss + wd2 * torch.sum(W * W)
        (G,) = torch.autograd.grad(loss, W, create_graph=True)
        Ls.append(loss)
        Gs.append(G)
    Gs = torch.stack(Gs)
    P = torch.sum((Gs - Gs.mean(0)) ** 2, dim=0)
    erm = torch.stack(Ls).mean()
    irm = torch.sum((P * (mu + 0.5)) ** 2)
    a = torch.autograd.grad(erm, [W, mu], retain_graph=True)
    b = torch.autograd.grad(irm, [W, mu])
    return erm, irm, a, b


def median_ms(fn, n):
    ts = []
    for k in range(n):
        t = time.perf_counter()
        fn(k)
        ts.append(time.perf_counter() - t)
    return 1e3 * float(np.median(ts)), 1e3 * float(np.min(ts))


def growth_in_d(s, widths, steps):
    """The step at each width D (C at 1 and 2 threads, NumPy once), ms and ms per 100 columns."""
    print(f"\ngrowth in D (same E, B, n_neg and tables; C: median of {steps} steps, NumPy: "
          f"1 step; ms per 100 columns constant = linear in D):")
    print(f"  {'D':>5} {'C 1 thread':>11} {'C 2 threads':>12} {'NumPy':>9} "
          f"{'C 2t / 100 cols':>16} {'NumPy / C 2t':>13} {'C 1t CPU':>12} "
          f"{'CPU / 100 cols':>16}")
    for width in widths:
        rng = np.random.default_rng(width)
        U, V, X, W, mu, beta_u, beta_i = make_tables(rng, s.n_users, s.n_items, width)
        batches = [make_batch(rng, s.n_users, s.n_items, s.n_envs, s.batch, s.n_neg, width)
                   for _ in range(4)]
        ms = {}
        with threadpool_limits(1, user_api="blas"):
            for nt in (1, 2):
                work = _core.mask_step_workspace(s.n_envs, s.batch, s.n_neg, width, D_C,
                                                 n_threads=nt)

                def c_step(k, nt=nt, work=work):
                    eps, users, items = batches[k % len(batches)]
                    return _core.mask_step(U, V, X, W, mu, eps, users, items, beta_u, beta_i,
                                           sigma=SIGMA, w=W4, wd2=WD2, n_threads=nt, work=work)

                c_step(0)
                ms[nt] = median_ms(c_step, steps)[0]
                if nt == 1:   # CPU time: what a loaded machine does not inflate much
                    cpu = []
                    for k in range(steps):
                        c0 = time.process_time()
                        c_step(k)
                        cpu.append(1e3 * (time.process_time() - c0))
        eps, users, items = batches[0]
        t0 = time.perf_counter()
        numpy_step(U, V, X, W, mu, eps, users, items, beta_u, beta_i, SIGMA, W4, WD2)
        t_np = 1e3 * (time.perf_counter() - t0)
        c1 = float(np.median(cpu))
        print(f"  {width:5d} {ms[1]:8.1f} ms {ms[2]:9.1f} ms {t_np:6.0f} ms "
              f"{100 * ms[2] / width:13.2f} ms {t_np / ms[2]:12.0f}x {c1:9.1f} ms "
              f"{100 * c1 / width:13.2f} ms", flush=True)
        del U, V, X


def main(argv=None):
    ap = parser(__doc__)
    size_option(ap, "steps", FULL, QUICK, "C steps timed per thread count, whose median is "
                "printed")
    size_option(ap, "numpy-steps", FULL, QUICK, "NumPy (and PyTorch) steps timed")
    ap.add_argument("--widths", type=int, nargs="*",
                    help="feature widths D of the growth table (default 384 1024 2048 2276; "
                    "384 1024 with --quick; none: skip it)")
    args = ap.parse_args(argv)
    s = run_sizes(args, FULL, QUICK)
    if args.widths is None:
        args.widths = [384, 1024] if args.quick else [384, 1024, 2048, 2276]
    header("bench_mask", args.quick)
    print(f"step: E={s.n_envs} x B={s.batch} positives x {s.n_neg} negatives, D={D}, d_c={D_C}, "
          f"d_id={D_ID}, {s.n_users} users, {s.n_items} items, float32")
    rng = np.random.default_rng(0)
    U, V, X, W, mu, beta_u, beta_i = make_tables(rng, s.n_users, s.n_items)
    batches = [make_batch(rng, s.n_users, s.n_items, s.n_envs, s.batch, s.n_neg)
               for _ in range(8)]

    with threadpool_limits(1, user_api="blas"):
        for nt in (1, 2):
            work = _core.mask_step_workspace(s.n_envs, s.batch, s.n_neg, D, D_C, n_threads=nt)

            def c_step(k, nt=nt, work=work):
                eps, users, items = batches[k % len(batches)]
                return _core.mask_step(U, V, X, W, mu, eps, users, items, beta_u, beta_i,
                                       sigma=SIGMA, w=W4, wd2=WD2, n_threads=nt, work=work)

            c_step(0)
            med, best = median_ms(c_step, s.steps)
            cpu0 = time.process_time()
            c_step(1)
            cpu = 1e3 * (time.process_time() - cpu0)
            print(f"C kernel, {nt} thread(s): median {med:8.1f} ms  (min {best:.1f} ms, "
                  f"one step's CPU time {cpu:.1f} ms) over {s.steps} steps")
        out_c = c_step(0)

    eps, users, items = batches[0]
    t0 = time.perf_counter()
    for _ in range(s.numpy_steps):
        erm_n, irm_n, ga_n, gb_n = numpy_step(U, V, X, W, mu, eps, users, items, beta_u, beta_i,
                                              SIGMA, W4, WD2)
    t_np = 1e3 * (time.perf_counter() - t0) / s.numpy_steps
    _, erm_c, irm_c, _, ga_c, gb_c = out_c
    rel = lambda x, y: float(np.linalg.norm(x - y) / max(np.linalg.norm(y), 1e-30))  # noqa
    print(f"NumPy float32, straightforward: {t_np:8.1f} ms per step (mean of "
          f"{s.numpy_steps}; NumPy's own BLAS threads)")
    print(f"  agreement with C: L_ERM {abs(erm_n - erm_c) / abs(erm_c):.1e}, "
          f"L_IRM {abs(irm_n - irm_c) / max(abs(irm_c), 1e-30):.1e}, "
          f"||a_np - a_c||/||a_c|| {rel(ga_n, ga_c):.1e}, "
          f"||b_np - b_c||/||b_c|| {rel(gb_n, gb_c):.1e}")
    try:
        import torch
    except ImportError:
        print("PyTorch autograd (double backward): skipped, torch is not installed")
        torch = None
    if torch is None:
        growth_in_d(s, args.widths, max(3, s.steps // 3))
        return
    T = [torch.from_numpy(a) for a in (U, V, X)]
    Wt = torch.from_numpy(W.copy()).requires_grad_(True)
    mut = torch.from_numpy(mu.copy()).requires_grad_(True)
    T = (T[0], T[1], T[2], Wt, mut, torch.from_numpy(beta_u), torch.from_numpy(beta_i))
    torch_step(torch, T, eps, users, items, SIGMA, W4, WD2)
    t0 = time.perf_counter()
    for _ in range(s.numpy_steps):
        erm_t, irm_t, a_t, b_t = torch_step(torch, T, eps, users, items, SIGMA, W4, WD2)
    t_t = 1e3 * (time.perf_counter() - t0) / s.numpy_steps
    ga_t = np.concatenate([a_t[0].detach().numpy().ravel(), a_t[1].detach().numpy()])
    gb_t = np.concatenate([b_t[0].detach().numpy().ravel(), b_t[1].detach().numpy()])
    print(f"PyTorch {torch.__version__} autograd, double backward: {t_t:8.1f} ms per step "
          f"({torch.get_num_threads()} threads); ||a_t - a_c||/||a_c|| {rel(ga_t, ga_c):.1e}, "
          f"||b_t - b_c||/||b_c|| {rel(gb_t, gb_c):.1e}")
    growth_in_d(s, args.widths, max(3, s.steps // 3))


if __name__ == "__main__":
    main()
