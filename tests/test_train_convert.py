"""The C epoch trainer of the final recommender (convert module, method.md §4.2)
against a NumPy float64 replay of the same batches."""
import gc
import sys

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from painvrl import _core
from _convert_ref import convert_items_ref, convert_loss_ref, projections_ref
from reference import adam, finite_difference, sigmoid
from test_train import epoch_batches, fresh_state
from test_train import setup as backbone_setup

FUSIONS = ["attention", "global", "invariant"]
# The parameters each fusion trains besides U, V, W, b (and W_var, b_var when separate).
TRAINED = {"attention": ("A", "c", "q"), "global": ("omega",), "invariant": ()}
CONVERT = ("A", "c", "q", "omega")
VARIANT = ("W_var", "b_var")


def trained(fusion, separate):
    """The convert parameters an epoch trains."""
    return TRAINED[fusion] + (VARIANT if separate and fusion != "invariant" else ())


def setup(rng, d_a=3, **kw):
    users, items, params, X, beta_u, beta_i = backbone_setup(rng, **kw)
    d_c, D = params["W"].shape
    params.update(
        A=(rng.normal(size=(d_a, d_c)) * 0.5).astype(np.float32),
        c=(rng.normal(size=d_a) * 0.3).astype(np.float32),
        q=(rng.normal(size=d_a)).astype(np.float32),
        omega=np.array([0.3, -0.2], np.float32),
        W_var=(params["W"] + rng.normal(size=(d_c, D)) * 0.1).astype(np.float32),
        b_var=(rng.normal(size=d_c) * 0.1).astype(np.float32))
    mask = rng.uniform(0, 1, D).astype(np.float32)
    mask[0], mask[-1] = 0.0, 1.0
    return users, items, params, mask, X, beta_u, beta_i


def convert_grad_ref(U, V, W, b, A, c, q, mask, X, users, items, beta_u, beta_i,
                     w=(1, 1, 1, 1), fusion="attention", omega=None, W_var=None, b_var=None):
    """Exact gradient of convert_loss_ref, float64, all items projected (dense); with
    W_var the invariant and variant projections' gradients are W, b and W_var, b_var,
    without it W, b get both (shared)."""
    U, V, X, m = (np.asarray(t, np.float64) for t in (U, V, X, mask))
    Xi, Xv = X * m, X * (1.0 - m)
    h_inv, h_var = projections_ref(W, b, mask, X, W_var, b_var)
    H, a = convert_items_ref(W, b, A, c, q, mask, X, fusion, omega, W_var, b_var)
    d_id = V.shape[1]
    E = np.concatenate([V, H], axis=1)
    s = np.einsum("bk,bck->bc", U[users], E[items])
    bu = np.asarray(beta_u, np.float64)[users][:, None]
    bi = np.asarray(beta_i, np.float64)[items]
    n_neg = items.shape[1] - 1
    ds = np.empty_like(s)
    ds[:, 0] = -(w[0] + w[1] * bu[:, 0] * bi[:, 0]) * sigmoid(-s[:, 0])
    if n_neg:
        ds[:, 1:] = (w[2] + w[3] * bu * bi[:, 1:]) / n_neg * sigmoid(s[:, 1:])
    dU = np.zeros_like(U)
    np.add.at(dU, users, np.einsum("bc,bck->bk", ds, E[items]))
    dE = np.zeros_like(E)
    np.add.at(dE, items.ravel(), (ds[:, :, None] * U[users][:, None, :]).reshape(-1, E.shape[1]))
    dV, dH = dE[:, :d_id], dE[:, d_id:]
    g = {"U": dU, "V": dV}
    if fusion == "invariant":
        dh_inv, dh_var = dH, np.zeros_like(dH)
    else:
        dh_inv, dh_var = a[:, None] * dH, (1.0 - a)[:, None] * dH
        dkappa = np.sum(dH * (h_inv - h_var), axis=1) * a * (1.0 - a)  # d/d(k_inv - k_var)
        if fusion == "global":
            g["omega"] = np.array([dkappa.sum(), -dkappa.sum()])
        else:
            A, c, q = (np.asarray(t, np.float64) for t in (A, c, q))
            g["A"], g["c"], g["q"] = np.zeros_like(A), np.zeros_like(c), np.zeros_like(q)
            for h, dk, dh in ((h_inv, dkappa, dh_inv), (h_var, -dkappa, dh_var)):
                T = np.tanh(h @ A.T + c)
                g["q"] += T.T @ dk
                dZ = dk[:, None] * q[None, :] * (1.0 - T * T)
                g["A"] += dZ.T @ h
                g["c"] += dZ.sum(axis=0)
                dh += dZ @ A
    if W_var is None:
        g["W"] = dh_inv.T @ Xi + dh_var.T @ Xv
        g["b"] = None if b is None else (dh_inv + dh_var).sum(axis=0)
    else:
        g["W"], g["W_var"] = dh_inv.T @ Xi, dh_var.T @ Xv
        g["b"] = None if b is None else dh_inv.sum(axis=0)
        g["b_var"] = None if b is None else dh_var.sum(axis=0)
    return g


@pytest.mark.parametrize("fusion", FUSIONS)
def test_reference_gradient_matches_finite_differences(rng, fusion):
    users, items, params, mask, X, bu, bi = setup(rng, nu=5, ni=7, n_pairs=6)
    P = {k: v.astype(np.float64) for k, v in params.items()}
    neg = rng.integers(0, 7, (6, 3))
    batch = np.concatenate([items[:, None], neg], axis=1)
    w = (1.0, 0.7, 1.3, 0.4)

    def loss():
        return convert_loss_ref(P["U"], P["V"], P["W"], P["b"], P["A"], P["c"], P["q"], mask,
                                X, users, batch, bu, bi, w, fusion, P["omega"])

    g = convert_grad_ref(P["U"], P["V"], P["W"], P["b"], P["A"], P["c"], P["q"], mask, X,
                         users, batch, bu, bi, w, fusion, P["omega"])
    for name in ("U", "V", "W", "b") + TRAINED[fusion]:
        np.testing.assert_allclose(g[name], finite_difference(loss, P[name]), rtol=1e-6,
                                   atol=1e-8, err_msg=name)


def replay(users, items, params, mask, X, beta_u, beta_i, *, fusion, batch, n_neg, seed,
           epoch, reg, wd1, wdi, wd2, lr=(1e-2, 2e-2), w=(1, 1, 1, 1), separate=False,
           fusion_l2=None):
    """One epoch of the final recommender in float64 NumPy, following the trainer's contract:
    the backbone's shuffle, negatives, reg modes and Adam on U, V (see test_train.replay),
    and a dense Adam step with L2 weight wd2 on W, b (and W_var, b_var when separate) and
    fusion_l2 (None: wd2) on the fusion's parameters."""
    P = {k: None if v is None else v.astype(np.float64) for k, v in params.items()}
    variant = {k: P[k] for k in VARIANT} if separate else {}
    S = {k: [np.zeros_like(v), np.zeros_like(v)] for k, v in P.items() if v is not None}
    l2u, l2v, l2p = (0.0, 0.0, 0.0) if reg == "none" else (wd1, wd1 * wdi, wd2)
    l2f = 0.0 if reg == "none" else wd2 if fusion_l2 is None else fusion_l2
    t = 0
    total = 0.0
    for bu, bi in epoch_batches(users, items, P["V"].shape[0], batch=batch, n_neg=n_neg,
                                seed=seed, epoch=epoch):
        args = (P["U"], P["V"], P["W"], P["b"], P["A"], P["c"], P["q"], mask, X, bu, bi,
                beta_u, beta_i, w, fusion, P["omega"])
        total += convert_loss_ref(*args, **variant)
        g = convert_grad_ref(*args, **variant)
        t += 1
        if reg == "full":
            sel = {"U": slice(None), "V": slice(None)}
        else:
            sel = {"U": np.unique(bu), "V": np.unique(bi)}
        for name, l2 in (("U", l2u), ("V", l2v)):
            rows_k = sel[name]
            p, (m, v) = P[name], S[name]
            sub_p, sub_m, sub_v = p[rows_k], m[rows_k], v[rows_k]
            adam(sub_p, g[name][rows_k] + 2 * l2 * sub_p, sub_m, sub_v, t, lr[0])
            p[rows_k], m[rows_k], v[rows_k] = sub_p, sub_m, sub_v
        for name in ("W", "b") + trained(fusion, separate):
            if P[name] is not None:
                l2 = l2f if name in CONVERT else l2p
                adam(P[name], g[name] + 2 * l2 * P[name], *S[name], t, lr[1])
    return P, S, total, t


def convert_state(params, fusion, separate=False):
    z = np.zeros_like
    if fusion == "invariant":
        return None
    names = CONVERT + (VARIANT if separate else ())
    st = [None] * (2 * len(names))
    for k, name in enumerate(names):
        if name in trained(fusion, separate) and params[name] is not None:
            st[2 * k], st[2 * k + 1] = z(params[name]), z(params[name])
    return tuple(st)


def run_c(users, items, params, mask, X, beta_u, beta_i, *, fusion, n_threads=1,
          separate=False, **kw):
    params = {k: None if v is None else v.copy() for k, v in params.items()}
    state = fresh_state(params)
    cstate = convert_state(params, fusion, separate)
    lr = kw.pop("lr", (1e-2, 2e-2))
    variant = dict(W_var=params["W_var"], b_var=params["b_var"]) if separate else {}
    out = _core.train_epoch(params["U"], params["V"], params["W"], params["b"], None, X, beta_u,
                            beta_i, users, items, state, emb_lr=lr[0], proj_lr=lr[1],
                            n_threads=n_threads, fusion=fusion, mask=mask, A=params["A"],
                            c=params["c"], q=params["q"], omega=params["omega"],
                            convert_state=cstate, **variant, **kw)
    return params, out, state, cstate


CASES = ([(f, r, False) for f in FUSIONS for r in ("full", "batch")] + [("attention", "none", False)]
         + [(f, r, True) for f in FUSIONS for r in ("full", "batch")])


@pytest.mark.parametrize("fusion,reg,separate", CASES)
def test_epoch_matches_numpy_replay(rng, fusion, reg, separate):
    """Shared projection with the fusion's L2 = wd2 (fusion_l2 not given: the earlier
    behaviour); separate projections with the fusion's own L2 (0.3, apart from wd2)."""
    users, items, params, mask, X, bu, bi = setup(rng)
    kw = dict(batch_size=8, n_neg=3, seed=7, epoch=2, reg=reg, wd1=0.01, wdi=2.0, wd2=0.05)
    if separate:
        kw["fusion_l2"] = 0.3
    mask_before = mask.copy()
    got, (loss, n_batches, step), state, cstate = run_c(users, items, params, mask, X, bu, bi,
                                                        fusion=fusion, separate=separate, **kw)
    want, want_state, want_loss, t = replay(users, items, params, mask, X, bu, bi,
                                            fusion=fusion, separate=separate,
                                            **{k.replace("batch_size", "batch"): v
                                               for k, v in kw.items()})
    assert (n_batches, step) == (t, t) == (5, 5)
    assert loss == pytest.approx(want_loss, rel=1e-5)
    np.testing.assert_array_equal(mask, mask_before)
    for k in ("U", "V", "W", "b") + trained(fusion, separate):
        np.testing.assert_allclose(got[k], want[k], rtol=1e-4, atol=2e-5, err_msg=k)
        assert not np.array_equal(got[k], params[k]), k
    for k in set(CONVERT + VARIANT) - set(trained(fusion, separate)):
        np.testing.assert_array_equal(got[k], params[k], err_msg=k)  # not trained
    for k, name in enumerate(CONVERT + (VARIANT if separate else ())):
        if name in trained(fusion, separate):
            np.testing.assert_allclose(cstate[2 * k], want_state[name][0], rtol=1e-4,
                                       atol=1e-6, err_msg=name + "_m")
            np.testing.assert_allclose(cstate[2 * k + 1], want_state[name][1], rtol=1e-4,
                                       atol=1e-9, err_msg=name + "_v")


@pytest.mark.parametrize("reg", ["full", "batch"])
def test_invariant_fusion_is_the_backbone_gated_by_the_mask(rng, reg):
    """fusion='invariant' is InvRL's final model: h = W (m o x) + b, i.e. the backbone
    with g = mask; both paths give the same bits."""
    users, items, params, mask, X, bu, bi = setup(rng)
    kw = dict(batch_size=8, n_neg=3, seed=4, epoch=1, reg=reg, wd1=0.01, wdi=2.0, wd2=0.05)
    got, out, state, _ = run_c(users, items, params, mask, X, bu, bi, fusion="invariant", **kw)
    back = {k: params[k].copy() for k in ("U", "V", "W", "b")}
    bstate = fresh_state(back)
    bout = _core.train_epoch(back["U"], back["V"], back["W"], back["b"], mask, X, bu, bi, users,
                             items, bstate, emb_lr=1e-2, proj_lr=2e-2, n_threads=1, **kw)
    assert out == bout
    for k in back:
        np.testing.assert_array_equal(got[k], back[k], err_msg=k)


@pytest.mark.parametrize("separate", [False, True])
@pytest.mark.parametrize("fusion", ["attention", "global"])
def test_bit_identical_for_one_two_and_four_threads(rng, fusion, separate):
    users, items, params, mask, X, bu, bi = setup(rng, d_a=8, nu=200, ni=300, d_id=8, d_c=8,
                                                  D=48, n_pairs=3000)
    results = []
    for n in (1, 2, 4):
        with threadpool_limits(limits=n, user_api="blas"):
            results.append(run_c(users, items, params, mask, X, bu, bi, fusion=fusion,
                                 n_threads=n, batch_size=256, n_neg=10, seed=5, reg="full",
                                 separate=separate, fusion_l2=1e-3))
    g1, o1, s1, c1 = results[0]
    for g2, o2, s2, c2 in results[1:]:
        assert o1 == o2
        for k in g1:
            if g1[k] is not None:
                np.testing.assert_array_equal(g1[k], g2[k], err_msg=k)
        for a, b in zip(s1 + c1, s2 + c2):
            np.testing.assert_array_equal(a, b)


def test_two_epochs_continue_the_step_count(rng):
    users, items, params, mask, X, bu, bi = setup(rng)
    kw = dict(batch_size=8, n_neg=3, seed=7, reg="full", wd1=0.01, wdi=2.0, wd2=0.05,
              fusion="attention", mask=mask)
    p = {k: v.copy() for k, v in params.items()}
    state, cstate = fresh_state(p), convert_state(p, "attention")
    _, _, step = _core.train_epoch(p["U"], p["V"], p["W"], p["b"], None, X, bu, bi, users,
                                   items, state, epoch=0, A=p["A"], c=p["c"], q=p["q"],
                                   convert_state=cstate, **kw)
    _, _, step = _core.train_epoch(p["U"], p["V"], p["W"], p["b"], None, X, bu, bi, users,
                                   items, state, epoch=1, step=step, A=p["A"], c=p["c"],
                                   q=p["q"], convert_state=cstate, **kw)
    assert step == 10
    assert np.all(np.isfinite(p["A"])) and not np.array_equal(p["A"], params["A"])


def test_trainer_rejects_bad_convert_input(rng):
    users, items, params, mask, X, bu, bi = setup(rng)
    U, V, W, b, A, c, q, om = (params[k] for k in ("U", "V", "W", "b", "A", "c", "q", "omega"))
    state = fresh_state(params)
    cst = convert_state(params, "attention")
    gst = convert_state(params, "global")

    def call(**kw):
        base = dict(fusion="attention", mask=mask, A=A, c=c, q=q, omega=om, convert_state=cst)
        base.update(kw)
        base = {k: v for k, v in base.items() if v is not _DROP}
        _core.train_epoch(U, V, W, b, None, X, bu, bi, users, items, state, **base)

    with pytest.raises(ValueError, match="'fusion' must be 'attention', 'global'"):
        call(fusion="mean")
    with pytest.raises(ValueError, match="'fusion' needs 'mask'"):
        call(mask=None)
    with pytest.raises(ValueError, match="train_epoch.*'mask' has length"):
        call(mask=mask[:-1])
    with pytest.raises(TypeError, match="'mask' must have dtype float32"):
        call(mask=mask.astype(np.float64))
    bad = mask.copy()
    bad[1] = np.nan
    with pytest.raises(ValueError, match=r"'mask' must hold values in \[0, 1\]"):
        call(mask=bad)
    with pytest.raises(ValueError, match="fusion='attention' needs 'A', 'c' and 'q'"):
        call(q=None)
    with pytest.raises(ValueError, match="'A' has length"):
        call(A=A[:, :-1].copy())
    with pytest.raises(ValueError, match="'c' has length"):
        call(c=c[:-1])
    with pytest.raises(ValueError, match="'A' is updated in place and must be writeable"):
        ro = A.copy()
        ro.flags.writeable = False
        call(A=ro)
    with pytest.raises(ValueError, match="fusion='global' needs 'omega'"):
        call(fusion="global", omega=None, convert_state=gst)
    with pytest.raises(ValueError, match="'omega' has length"):
        call(fusion="global", omega=np.zeros(3, np.float32), convert_state=gst)
    with pytest.raises(TypeError, match="'convert_state' must be a tuple of 8"):
        call(convert_state=cst[:6])
    with pytest.raises(ValueError, match=r"convert_state\[3\] \(c_v\)"):
        call(convert_state=cst[:3] + (None,) + cst[4:])
    with pytest.raises(ValueError, match=r"convert_state\[6\] \(omega_m\)"):
        call(fusion="global", convert_state=cst)
    with pytest.raises(ValueError, match=r"convert_state\[0\] \(A_m\)' has length"):
        call(convert_state=(np.zeros((1, 1), np.float32),) + cst[1:])
    with pytest.raises(ValueError, match="'g' must be None with 'fusion'"):
        _core.train_epoch(U, V, W, b, mask, X, bu, bi, users, items, state, fusion="invariant",
                          mask=mask)
    with pytest.raises(ValueError, match="need 'fusion'"):
        _core.train_epoch(U, V, W, b, None, X, bu, bi, users, items, state, mask=mask)
    Wv, bv = params["W_var"], params["b_var"]
    sst = convert_state(params, "attention", separate=True)
    with pytest.raises(TypeError, match="'convert_state' must be a tuple of 12 .*W_var_m"):
        call(W_var=Wv, b_var=bv)
    with pytest.raises(ValueError, match="'W_var' has length"):
        call(W_var=Wv[:, :-1].copy(), b_var=bv, convert_state=sst)
    with pytest.raises(ValueError, match="'b_var' must be given exactly when 'b' is"):
        call(W_var=Wv, convert_state=sst)
    with pytest.raises(ValueError, match="'b_var' needs 'W_var'"):
        call(b_var=bv)
    with pytest.raises(ValueError, match=r"convert_state\[9\] \(W_var_v\)"):
        call(W_var=Wv, b_var=bv, convert_state=sst[:9] + (None,) + sst[10:])
    with pytest.raises(ValueError, match="'fusion_l2' must be a finite number >= 0"):
        call(fusion_l2=-1.0)
    with pytest.raises(ValueError, match="need 'fusion'"):
        _core.train_epoch(U, V, W, b, None, X, bu, bi, users, items, state, W_var=Wv)
    # Parameters the fusion does not train are ignored, and 'invariant' needs no state.
    call(fusion="invariant", A=_DROP, c=_DROP, q=_DROP, omega=_DROP, convert_state=_DROP)


_DROP = object()


def test_divergence_is_reported_not_hidden(rng):
    users, items, params, mask, X, bu, bi = setup(rng)
    params["U"][:] = np.float32(1e30)
    with pytest.raises(FloatingPointError, match="non-finite"):
        run_c(users, items, params, mask, X * np.float32(1e30), bu, bi, fusion="attention",
              batch_size=8, n_neg=3)


def test_no_reference_leak(rng):
    """Every array passed in (parameters, states, mask) keeps its reference count, on
    success and on the error paths."""
    users, items, params, mask, X, bu, bi = setup(rng)
    state = fresh_state(params)
    cst = convert_state(params, "attention")
    tracked = list(params.values()) + [a for a in state + cst if a is not None] + [mask, X]
    kw = dict(batch_size=16, n_neg=2, emb_lr=1e-6, proj_lr=1e-6, mask=mask, A=params["A"],
              c=params["c"], q=params["q"], omega=params["omega"])
    bad_state = cst[:5] + (np.zeros(1, np.float32),) + cst[6:]
    before = [sys.getrefcount(a) for a in tracked]
    for _ in range(100):
        _core.train_epoch(params["U"], params["V"], params["W"], params["b"], None, X, bu, bi,
                          users, items, state, fusion="attention", convert_state=cst, **kw)
        with pytest.raises(ValueError):
            _core.train_epoch(params["U"], params["V"], params["W"], params["b"], None, X, bu,
                              bi, users, items, state, fusion="attention",
                              convert_state=bad_state, **kw)
    gc.collect()
    assert [sys.getrefcount(a) for a in tracked] == before
