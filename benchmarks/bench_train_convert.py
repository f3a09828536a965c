"""Final-recommender training (method.md §4.2): one C epoch of the convert model
(fusion "attention" and "global", separate or shared projection, reg "batch" and "full")
on TikTok-shaped data, beside, from the same run, the backbone epoch (fusion=None) it
extends.  With --attention-stats, the attention the final model learns (issue #11).

Default size: make_tiktok_like(scale=1) (36,656 users, 76,085 items, 564,000 training
pairs, D = 384), the whole epoch (1,102 batches of 512 positives x 50 negatives),
d_id = d_c = d_a = 64, a fixed random mask.  --quick: scale 0.02 and the first 4
batches, the same code path in seconds.  The separate projection runs with the new
default attention L2 (0); the shared one with the earlier L2 of the projection (0.1).

--attention-stats: pre-train a backbone (reg "batch", --pretrain-epochs), then train the
final model (fusion "attention", reg "batch", the final stage's L2 wd1 1e-4, wdi 2,
wd2 0.1) for --stat-epochs epochs twice: with the new defaults (separate projections
started from the pre-trained W, b; attention_l2 0) and with the earlier configuration
(shared projection, fresh start, attention L2 0.1); print, for each, a_inv over items
(mean, std, min, max), the norms of A, c, q, the time per epoch, and the coupling
s = ||d^2 L / dq_j dA_j|| of one batch at the symmetric point (A = 0, q = 0): with Adam and
an L2 weight l2 on A, q, that point attracts the attention exactly when 2 l2 > s.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_train_convert.py
    ... bench_train_convert.py --fusions attention --regs batch --projections separate
    ... bench_train_convert.py --batches 40   # a shorter "epoch" over the first 40 * 512
                                              # pairs (per-step times in less time)
    ... bench_train_convert.py --attention-stats --regs batch --fusions attention
"""
import time
import warnings

import numpy as np
from _common import header, parser, run_sizes, size_option
from painvrl import Backbone, _core
from painvrl.data.datasets import make_tiktok_like
from painvrl.invariance import convert_loss_grad
from painvrl.models.functional import loss_weights

D_ID = D_C = D_A = 64
BATCH, N_NEG = 512, 50
FULL = dict(scale=1.0, batches=0, pretrain_epochs=3, stat_epochs=3)  # batches=0: whole epoch
QUICK = dict(scale=0.02, batches=4, pretrain_epochs=1, stat_epochs=1)
# The L2 of the fusion's parameters per projection: the new default, and the earlier one
# (the final model's projection L2, method.md §5.2 p_ctx).
FUSION_L2 = {"separate": 0.0, "shared": 0.1}
FINAL = dict(wd1=1e-4, wdi=2.0, wd2=0.1)


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
                omega=np.zeros(2, np.float32),
                W_var=f32(rng.standard_normal((D_C, D)) * 0.01),
                b_var=np.zeros(D_C, np.float32))


def c_epoch(fusion, reg, projection, users, items, X, beta_u, beta_i, mask):
    P = init(beta_u.shape[0], beta_i.shape[0], X.shape[1])
    z = np.zeros_like
    state = tuple(z(P[k]) for k in ("U", "U", "V", "V", "W", "W", "b", "b"))
    kw = {}
    if fusion is not None:
        names = ("A", "A", "c", "c", "q", "q", "omega", "omega")
        if projection == "separate":
            names += ("W_var", "W_var", "b_var", "b_var")
            kw.update(W_var=P["W_var"], b_var=P["b_var"])
        kw.update(fusion=fusion, mask=mask, A=P["A"], c=P["c"], q=P["q"], omega=P["omega"],
                  convert_state=tuple(z(P[k]) for k in names),
                  fusion_l2=FUSION_L2[projection])
    start = time.perf_counter()
    loss, n_batches, _ = _core.train_epoch(P["U"], P["V"], P["W"], P["b"], None, X, beta_u,
                                           beta_i, users, items, state, reg=reg, batch_size=BATCH,
                                           n_neg=N_NEG, seed=1, epoch=0, **FINAL, **kw)
    return time.perf_counter() - start, loss / n_batches


def timings(args, s, ds, mask):
    """One epoch (or its first batches) of each configuration, in one run."""
    users, items, X = ds.train[:, 0].copy(), ds.train[:, 1].copy(), ds.features
    beta_u, beta_i = loss_weights(ds.user_degree, ds.item_degree)
    if s.batches > 0:
        users, items = users[: s.batches * BATCH].copy(), items[: s.batches * BATCH].copy()
    n_batches = -(-len(users) // BATCH)
    print(f"{n_batches} batches" + (f" (the first {len(users)} pairs only)" if s.batches else ""))
    for reg in args.regs.split(","):
        secs, loss = c_epoch(None, reg, None, users, items, X, beta_u, beta_i, mask)
        print(f"backbone (fusion=None)  reg={reg:<5}  epoch {secs:7.2f} s   "
              f"({secs / n_batches * 1e3:.2f} ms/step, mean batch loss {loss:.1f})", flush=True)
    for fusion in args.fusions.split(","):
        for projection in args.projections.split(","):
            for reg in args.regs.split(","):
                secs, loss = c_epoch(fusion, reg, projection, users, items, X, beta_u, beta_i,
                                     mask)
                print(f"convert fusion={fusion:<9} {projection:<8} reg={reg:<5}  epoch "
                      f"{secs:7.2f} s   ({secs / n_batches * 1e3:.2f} ms/step, mean batch loss "
                      f"{loss:.1f})", flush=True)


def coupling(model, ds, mask):
    """s = ||d^2 L / dq_j dA_j|| of the first training batch at A = 0, q = 0, c = 0.

    There every a_inv is 1/2 and, to first order, dL/dq_j = A_j . v with
    v = sum_items a_inv a_var (dL/dh . (h_inv - h_var)) (h_inv - h_var); so with q = 1
    (any q: A = 0 keeps a_inv = 1/2) every row of dL/dA is v, and the Hessian block of
    (q_j, A_j) is [[0, v^T], [v, 0]] with eigenvalues +-|v|.  An L2 term l2 ||.||^2 adds
    2 l2 to both, so the point is a minimum (and attracts Adam) exactly when 2 l2 > |v|.
    """
    rng = np.random.default_rng(0)
    rows = rng.choice(ds.n_train, BATCH, replace=False)
    users = ds.train[rows, 0]
    items = np.concatenate([ds.train[rows, 1][:, None],
                            rng.integers(0, ds.n_items, (BATCH, N_NEG))], axis=1)
    beta_u, beta_i = loss_weights(ds.user_degree, ds.item_degree, np.float64)
    A = np.zeros_like(model.attention_matrix_, dtype=np.float64)
    ones = np.ones(A.shape[0])
    out = convert_loss_grad(model.user_embeddings_, model.item_embeddings_, model.projection_,
                            model.bias_, A, np.zeros_like(ones), ones, mask, ds.features, users,
                            items, beta_u, beta_i, W_var=model.variant_projection_,
                            b_var=model.variant_bias_, dtype=np.float64, n_threads=2)
    return float(np.linalg.norm(out.dA[0]))


def attention_stats(s, ds, mask):
    """The final model's attention after a few epochs, new defaults vs the earlier config."""
    kw = dict(d_id=D_ID, d_content=D_C, attention_size=D_A, n_neg=N_NEG, batch_size=BATCH,
              reg="batch", eval_every=10 ** 6, progress=False, n_threads=2)
    start = time.perf_counter()
    pre = Backbone(max_epochs=s.pretrain_epochs, **kw).fit(ds)
    print(f"pre-training: {s.pretrain_epochs} epochs in {time.perf_counter() - start:.1f} s",
          flush=True)
    configs = {"new default (separate, from pre-trained W, b; attention_l2 0)":
               (dict(projection="separate", attention_l2=0.0),
                {"W": pre.projection_, "b": pre.bias_}),
               "earlier (shared, fresh start, attention L2 0.1)":
               (dict(projection="shared", attention_l2=0.1), None)}
    for name, (params, init_) in configs.items():
        model = Backbone(fusion="attention", mask=mask, max_epochs=s.stat_epochs, **FINAL,
                         **params, **kw)
        s0 = coupling_at_start(model, ds, mask, init_)
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.fit(ds, init=init_)
        secs = (time.perf_counter() - start) / s.stat_epochs
        a = model.attention_weights(ds)
        norm = lambda t: float(np.linalg.norm(t))  # noqa: E731
        print(f"{name}: {s.stat_epochs} epochs, {secs:.1f} s per epoch\n"
              f"  a_inv over {a.size} items: mean {a.mean():.4f}  std {a.std():.4f}  "
              f"min {a.min():.4f}  max {a.max():.4f}\n"
              f"  |A| {norm(model.attention_matrix_):.3g}  |c| {norm(model.attention_bias_):.3g}"
              f"  |q| {norm(model.attention_query_):.3g}\n"
              f"  coupling s at the symmetric point: {s0:.3g} at the start, "
              f"{coupling(model, ds, mask):.3g} after training; 2 x attention L2 = "
              f"{2 * params['attention_l2']:.3g}\n"
              f"  warnings: {[str(w.message)[:60] for w in caught] or 'none'}", flush=True)


def coupling_at_start(model, ds, mask, init_):
    """The coupling of the model as fit() starts it (no epoch)."""
    start = Backbone(**model.get_params()).set_params(max_epochs=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start.fit(ds, init=init_)
    return coupling(start, ds, mask)


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--fusions", default="attention,global",
                   help="comma-separated fusions to time (default attention,global)")
    p.add_argument("--projections", default="separate,shared",
                   help="comma-separated projections to time (default separate,shared)")
    p.add_argument("--regs", default="batch,full",
                   help="comma-separated regularisations to time (default batch,full)")
    p.add_argument("--attention-stats", action="store_true",
                   help="also train the final model and print its attention statistics")
    size_option(p, "scale", FULL, QUICK, "make_tiktok_like scale", type=float)
    size_option(p, "batches", FULL, QUICK, "time only the first N batches of the epoch (0: all)")
    size_option(p, "pretrain-epochs", FULL, QUICK, "--attention-stats: backbone epochs")
    size_option(p, "stat-epochs", FULL, QUICK, "--attention-stats: final-model epochs")
    args = p.parse_args(argv)
    s = run_sizes(args, FULL, QUICK)
    header("bench_train_convert", args.quick)
    ds = make_tiktok_like(scale=s.scale)
    mask = np.random.default_rng(5).uniform(0, 1, ds.features.shape[1]).astype(np.float32)
    print(f"data (make_tiktok_like, scale {s.scale:g}): {ds.n_users} users, {ds.n_items} items, "
          f"{ds.n_train} training pairs, D={ds.features.shape[1]}, batch {BATCH}, {N_NEG} "
          f"negatives, d_id = d_c = d_a = {D_ID}, mask uniform(0, 1) (seed 5)")
    timings(args, s, ds, mask)
    if args.attention_stats:
        attention_stats(s, ds, mask)


if __name__ == "__main__":
    main()
