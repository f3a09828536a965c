"""Final-recommender training (method.md §4.2): one C epoch of the convert model
(fusion "attention" and "global", reg "batch" and "full") on TikTok-shaped data,
beside, from the same run, the backbone epoch (fusion=None) it extends.

Default size: make_tiktok_like(scale=1) (36,656 users, 76,085 items, 564,000 training
pairs, D = 384), the whole epoch (1,102 batches of 512 positives x 50 negatives),
d_id = d_c = d_a = 64, a fixed random mask.  --quick: scale 0.02 and the first 4
batches, the same code path in seconds.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_train_convert.py
    ... bench_train_convert.py --fusions attention --regs batch
    ... bench_train_convert.py --batches 40   # a shorter "epoch" over the first 40 * 512
                                              # pairs (per-step times in less time)
"""
import time

import numpy as np
from _common import header, parser, run_sizes, size_option
from painvrl import _core
from painvrl.data.datasets import make_tiktok_like
from painvrl.models.functional import loss_weights

D_ID = D_C = D_A = 64
BATCH, N_NEG = 512, 50
FULL = dict(scale=1.0, batches=0)       # batches=0: the whole epoch
QUICK = dict(scale=0.02, batches=4)


def init(n_users, n_items, D, seed=2233):
    rng = np.random.default_rng(seed)
    f32 = lambda a: a.astype(np.float32)  # noqa: E731
    return dict(U=f32(rng.standard_normal((n_users, D_ID + D_C)) * 0.01),
                V=f32(rng.standard_normal((n_items, D_ID)) * 0.01),
                W=f32(rng.standard_normal((D_C, D)) * 0.01),
                b=np.zeros(D_C, np.float32),
                A=f32(rng.standard_normal((D_A, D_C)) * 0.01),
                c=np.zeros(D_A, np.float32),
                q=f32(rng.standard_normal(D_A) * 0.01),
                omega=np.zeros(2, np.float32))


def c_epoch(fusion, reg, users, items, X, beta_u, beta_i, mask):
    P = init(beta_u.shape[0], beta_i.shape[0], X.shape[1])
    z = np.zeros_like
    state = tuple(z(P[k]) for k in ("U", "U", "V", "V", "W", "W", "b", "b"))
    kw = {}
    if fusion is not None:
        cstate = tuple(z(P[k]) for k in ("A", "A", "c", "c", "q", "q", "omega", "omega"))
        kw = dict(fusion=fusion, mask=mask, A=P["A"], c=P["c"], q=P["q"], omega=P["omega"],
                  convert_state=cstate)
    start = time.perf_counter()
    loss, n_batches, _ = _core.train_epoch(P["U"], P["V"], P["W"], P["b"], None, X, beta_u,
                                           beta_i, users, items, state, reg=reg, wd1=1e-4,
                                           wdi=2.0, wd2=0.1, batch_size=BATCH, n_neg=N_NEG,
                                           seed=1, epoch=0, **kw)
    return time.perf_counter() - start, loss / n_batches


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--fusions", default="attention,global",
                   help="comma-separated fusions to time (default attention,global)")
    p.add_argument("--regs", default="batch,full",
                   help="comma-separated regularisations to time (default batch,full)")
    size_option(p, "scale", FULL, QUICK, "make_tiktok_like scale", type=float)
    size_option(p, "batches", FULL, QUICK, "time only the first N batches of the epoch (0: all)")
    args = p.parse_args(argv)
    s = run_sizes(args, FULL, QUICK)
    fusions, regs = args.fusions.split(","), args.regs.split(",")
    header("bench_train_convert", args.quick)
    ds = make_tiktok_like(scale=s.scale)
    users, items, X = ds.train[:, 0].copy(), ds.train[:, 1].copy(), ds.features
    beta_u, beta_i = loss_weights(ds.user_degree, ds.item_degree)
    mask = np.random.default_rng(5).uniform(0, 1, X.shape[1]).astype(np.float32)
    limit = s.batches
    if limit > 0:
        users, items = users[: limit * BATCH].copy(), items[: limit * BATCH].copy()
    n_batches = -(-len(users) // BATCH)
    print(f"data (make_tiktok_like, scale {s.scale:g}): {ds.n_users} users, {ds.n_items} items, "
          f"{ds.n_train} training pairs, D={X.shape[1]}, batch {BATCH}, {N_NEG} negatives, "
          f"d_id = d_c = d_a = {D_ID}, {n_batches} batches"
          + (f" (the first {len(users)} pairs only)" if limit > 0 else ""))
    for reg in regs:
        secs, loss = c_epoch(None, reg, users, items, X, beta_u, beta_i, mask)
        print(f"backbone (fusion=None)  reg={reg:<5}  epoch {secs:7.2f} s   "
              f"({secs / n_batches * 1e3:.2f} ms/step, mean batch loss {loss:.1f})", flush=True)
    for fusion in fusions:
        for reg in regs:
            secs, loss = c_epoch(fusion, reg, users, items, X, beta_u, beta_i, mask)
            print(f"convert fusion={fusion:<9} reg={reg:<5}  epoch {secs:7.2f} s   "
                  f"({secs / n_batches * 1e3:.2f} ms/step, mean batch loss {loss:.1f})",
                  flush=True)


if __name__ == "__main__":
    main()
