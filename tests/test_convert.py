"""The convert-module batch kernel (method.md §4.2) against NumPy float64 and finite differences."""
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from painvrl import _core
from painvrl.invariance import (attention_weights, convert_item_vectors, convert_loss_grad,
                                mask_cancellation)
from painvrl.models.functional import loss_weights, rec_loss_grad
from _convert_ref import convert_items_ref, convert_loss_ref
from reference import finite_difference
from test_train_convert import convert_grad_ref

FUSIONS = ["attention", "global", "invariant"]
PROJECTIONS = ["separate", "shared"]
PARAMS = ["U", "V", "W", "b", "A", "c", "q", "mask"]


def problem(rng, nu=9, ni=13, d_id=3, d_c=4, d_a=5, D=6, B=7, n_neg=4, bias=True,
            projection="shared"):
    """A small random batch; projection="separate" adds the variant W_var, b_var."""
    U = rng.normal(size=(nu, d_id + d_c))
    V = rng.normal(size=(ni, d_id))
    W = rng.normal(size=(d_c, D)) * 0.7
    b = rng.normal(size=d_c) if bias else None
    A = rng.normal(size=(d_a, d_c)) * 0.7
    c = rng.normal(size=d_a)
    q = rng.normal(size=d_a) * 1.5
    mask = rng.uniform(0.0, 1.0, size=D)
    X = rng.normal(size=(ni, D))
    users = rng.integers(0, nu, B)
    items = rng.integers(0, ni, (B, 1 + n_neg))
    beta_u, beta_i = loss_weights(rng.integers(1, 9, nu), rng.integers(0, 9, ni), np.float64)
    p = dict(U=U, V=V, W=W, b=b, A=A, c=c, q=q, mask=mask, X=X, users=users, items=items,
             beta_u=beta_u, beta_i=beta_i)
    if projection == "separate":
        p["W_var"] = rng.normal(size=(d_c, D)) * 0.7
        p["b_var"] = rng.normal(size=d_c) if bias else None
    return p


OMEGA = np.array([0.4, -0.3])
W_SETS = [(1, 1, 1, 1), (0.5, 2.0, 1.5, 0.25)]


def items_args(p):
    return [p[k] for k in ("W", "b", "A", "c", "q", "mask", "X")]


def variant(p):
    """The variant projection's keyword arguments of a problem (empty when shared)."""
    return {k: p[k] for k in ("W_var", "b_var") if k in p}


@pytest.mark.parametrize("projection", PROJECTIONS)
@pytest.mark.parametrize("fusion", FUSIONS)
@pytest.mark.parametrize("w", W_SETS)
@pytest.mark.parametrize("bias", [True, False])
def test_loss_matches_numpy_float64(rng, fusion, w, bias, projection):
    p = problem(rng, bias=bias, projection=projection)
    out = convert_loss_grad(**p, w=w, fusion=fusion, omega=OMEGA)
    assert out.loss == pytest.approx(convert_loss_ref(**p, w=w, fusion=fusion, omega=OMEGA),
                                     rel=1e-12)
    h_ref, a_ref = convert_items_ref(*items_args(p), fusion, OMEGA, **variant(p))
    h, a = convert_item_vectors(*items_args(p), fusion=fusion, omega=OMEGA, **variant(p))
    np.testing.assert_allclose(h, h_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(a, a_ref, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(out.attention, a_ref[p["items"]], rtol=1e-12, atol=1e-14)
    assert out.attention.shape == p["items"].shape
    assert (out.db is None) == (not bias)
    assert (out.dA is None) == (fusion != "attention")
    assert (out.domega is None) == (fusion != "global")
    assert (out.dW_var is None) == (projection == "shared")
    assert (out.db_var is None) == (projection == "shared" or not bias)


@pytest.mark.parametrize("projection", PROJECTIONS)
@pytest.mark.parametrize("fusion", FUSIONS)
def test_gradient_matches_central_finite_differences(rng, fusion, projection):
    """Every gradient (W, W_var, b, b_var, A, c, q, omega, mask, U, V) against central
    differences of the float64 reference loss."""
    p = problem(rng, projection=projection)
    omega = OMEGA.copy()
    kw = dict(w=(1.0, 0.7, 1.3, 0.4), fusion=fusion)
    out = convert_loss_grad(**p, omega=omega, **kw)

    def loss():
        return convert_loss_ref(**p, omega=omega, **kw)

    names = PARAMS + (["omega"] if fusion == "global" else []) + list(variant(p))
    for name in names:
        got = getattr(out, "d" + name)
        if fusion != "attention" and name in ("A", "c", "q"):
            assert got is None
            continue
        num = finite_difference(loss, omega if name == "omega" else p[name])
        np.testing.assert_allclose(got, num, rtol=1e-6, atol=1e-7, err_msg=name)
    if fusion == "global":
        assert out.domega[0] == -out.domega[1]


def test_attention_weights_are_a_convex_combination(rng):
    p = problem(rng, ni=40)
    p["q"] *= 4  # make the weights spread over (0, 1)
    h, a = convert_item_vectors(*items_args(p))
    assert np.all((a > 0) & (a < 1)) and a.std() > 0.05
    W, b, m, X = p["W"], p["b"], p["mask"], p["X"]
    h_inv, h_var = (X * m) @ W.T + b, (X * (1 - m)) @ W.T + b
    # h = a h_inv + (1 - a) h_var: the kernel's two weights sum to 1
    np.testing.assert_allclose(h, a[:, None] * h_inv + (1 - a)[:, None] * h_var,
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(attention_weights(*items_args(p)), a)
    sub = np.array([5, 0, 39, 5])
    hs, as_ = convert_item_vectors(*items_args(p), items=sub)
    # A subset is projected by a GEMM of another shape, which BLAS may round differently:
    # both results lie within the float64 rounding bound of the exact h and a_inv
    # (_items_error_bound), so they agree within twice it.
    bound = _items_error_bound(p, np.float64)
    assert np.all(np.abs(hs - h[sub]) <= 2 * bound["h_err"][sub])
    assert np.all(np.abs(as_ - a[sub]) <= 2 * bound["a_err"][sub])
    g = attention_weights(*items_args(p), fusion="global", omega=OMEGA)
    np.testing.assert_allclose(g, np.exp(OMEGA[0]) / np.exp(OMEGA).sum(), rtol=1e-14)
    assert np.all(attention_weights(*items_args(p), fusion="invariant") == 1)


@pytest.mark.parametrize("bias", [True, False])
def test_invariant_fusion_is_the_backbone_with_the_mask_as_gate(rng, bias):
    p = problem(rng, bias=bias)
    w = (1.0, 0.7, 1.3, 0.4)
    out = convert_loss_grad(**p, w=w, fusion="invariant")
    rec = rec_loss_grad(p["U"], p["V"], p["W"], p["b"], p["mask"], p["X"], p["users"],
                        p["items"], p["beta_u"], p["beta_i"], w=w)
    assert out.loss == pytest.approx(rec.loss, rel=1e-12)
    for got, want in [(out.dU, rec.dU), (out.dV, rec.dV), (out.dW, rec.dW), (out.db, rec.db),
                      (out.dmask, rec.dg)]:
        if want is None:
            assert got is None
        else:
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("projection", PROJECTIONS)
@pytest.mark.parametrize("fusion", FUSIONS)
def test_float32_agrees_with_float64(rng, fusion, projection):
    p = problem(rng, nu=30, ni=50, d_id=8, d_c=8, d_a=6, D=40, B=32, n_neg=10,
                projection=projection)
    p["W"] *= 0.3
    if projection == "separate":
        p["W_var"] *= 0.3
    p64 = convert_loss_grad(**p, fusion=fusion, omega=OMEGA)
    p32 = convert_loss_grad(**p, fusion=fusion, omega=OMEGA, dtype=np.float32)
    assert p32.dU.dtype == np.float32
    assert p32.loss == pytest.approx(p64.loss, rel=1e-5)
    for name, a, b in zip(p64._fields[1:], p32[1:], p64[1:]):
        if b is None:
            assert a is None
        else:
            scale = np.max(np.abs(b)) + 1e-3
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-5 * scale, err_msg=name)


@pytest.mark.parametrize("projection", PROJECTIONS)
@pytest.mark.parametrize("fusion", ["attention", "global"])
def test_result_does_not_depend_on_thread_count(rng, fusion, projection):
    # several slot tiles (S > 64), feature tiles (D > 64) and d_c tiles (d_c > 64)
    p = problem(rng, nu=80, ni=400, d_id=8, d_c=70, d_a=16, D=150, B=48, n_neg=12,
                projection=projection)
    for k in ("W", "A", "U", "W_var"):
        if k in p:
            p[k] = p[k] * 0.2
    runs = []
    for n in (1, 2, 4):
        with threadpool_limits(n, "blas"):
            runs.append((convert_loss_grad(**p, fusion=fusion, omega=OMEGA, dtype=np.float32,
                                           n_threads=n),
                         convert_item_vectors(*items_args(p), fusion=fusion, omega=OMEGA,
                                              dtype=np.float32, n_threads=n, **variant(p))))
    assert len(np.unique(p["items"])) > 64
    (one, h1) = runs[0]
    for other, h_other in runs[1:]:
        assert one.loss == other.loss
        for name, a, b in zip(one._fields[1:], one[1:], other[1:]):
            if a is not None:
                np.testing.assert_array_equal(a, b, err_msg=name)
        for a, b in zip(h1, h_other):
            np.testing.assert_array_equal(a, b)


def test_many_segments_of_several_chunks(rng):
    """Wide feature rows make the attention batch's chunks short (about 256 KB of
    gathered rows: 32 slots in float64, 59 in float32 at D = 1100), so its ~1000 slots
    fall into 16 segments of two chunks each: the sums over chunks (GEMMs with beta = 1)
    and over segments against the float64 reference, float32 against float64, and 1
    against 2 threads bitwise."""
    p = problem(rng, nu=50, ni=3000, d_id=3, d_c=5, d_a=4, D=1100, B=40, n_neg=30)
    p["X"] /= np.linalg.norm(p["X"], axis=1, keepdims=True)
    p["q"] *= 3
    S = len(np.unique(p["items"]))
    assert 16 * 59 < S < 16 * 64  # seg_len = ceil(S / 16) in (59, 64]: two chunks each
    out = convert_loss_grad(**p)
    assert out.loss == pytest.approx(convert_loss_ref(**p), rel=1e-12)
    ref = convert_grad_ref(**p)
    for name in ("U", "V", "W", "b", "A", "c", "q"):
        scale = np.max(np.abs(ref[name]))
        np.testing.assert_allclose(getattr(out, "d" + name), ref[name], rtol=1e-9,
                                   atol=1e-12 * scale, err_msg=name)
    a = out.attention.ravel()
    assert a.std() > 0.01  # the attention is not flat
    for d in rng.choice(p["X"].shape[1], 4, replace=False):
        mask = p["mask"]
        e = 1e-6
        hi, lo = mask.copy(), mask.copy()
        hi[d] += e
        lo[d] -= e
        num = (convert_loss_ref(**{**p, "mask": hi}) - convert_loss_ref(**{**p, "mask": lo})) / (
            2 * e)
        assert out.dmask[d] == pytest.approx(num, rel=1e-5, abs=1e-9)
    runs = []
    for n in (1, 2):
        with threadpool_limits(n, "blas"):
            runs.append(convert_loss_grad(**p, dtype=np.float32, n_threads=n))
    assert runs[0].loss == runs[1].loss
    assert runs[0].loss == pytest.approx(out.loss, rel=1e-5)
    for name, one, two, f64 in zip(out._fields[1:], runs[0][1:], runs[1][1:], out[1:]):
        if f64 is None:
            continue
        np.testing.assert_array_equal(one, two, err_msg=name)
        np.testing.assert_allclose(one, f64, rtol=1e-3, atol=1e-4 * np.max(np.abs(f64)),
                                   err_msg=name)


def _attention_term_ratios(p):
    """Per used item: max_k |(A^T dz)_k| / min_k |dH_k| for the invariant half, i.e. the
    size of the attention's part of the projection gradient against the rest (float64,
    the reference's maths, w = 1)."""
    W, b, A, c, q, m, X = (p[k] for k in ("W", "b", "A", "c", "q", "mask", "X"))
    h_inv, h_var = (X * m) @ W.T + b, (X * (1 - m)) @ W.T + b
    t_inv = np.tanh(h_inv @ A.T + c)
    a = 1 / (1 + np.exp(np.tanh(h_var @ A.T + c) @ q - t_inv @ q))
    E = np.concatenate([p["V"], a[:, None] * h_inv + (1 - a)[:, None] * h_var], axis=1)
    users, items = p["users"], p["items"]
    s = np.einsum("bk,bck->bc", p["U"][users], E[items])
    wt = 1 + p["beta_u"][users][:, None] * p["beta_i"][items]
    wt[:, 1:] /= items.shape[1] - 1
    ds = wt * np.where(np.arange(items.shape[1]) == 0, -1 / (1 + np.exp(s)),
                       1 / (1 + np.exp(-s)))
    dE = np.zeros_like(E)
    np.add.at(dE, items.ravel(), (ds[:, :, None] * p["U"][users][:, None, :]).reshape(
        -1, E.shape[1]))
    used = np.unique(items)
    dh = dE[used, p["V"].shape[1]:]
    au = a[used]
    dk = np.sum(dh * (h_inv - h_var)[used], axis=1) * au * (1 - au)
    dz = dk[:, None] * q * (1 - t_inv[used] ** 2)
    return np.max(np.abs(dz @ A), axis=1) / np.min(np.abs(au[:, None] * dh), axis=1)


EPS32 = float(np.finfo(np.float32).eps)   # 2**-23: twice float32's unit roundoff
EPS64 = float(np.finfo(np.float64).eps)
# Absolute errors of the kernel's tanh and sigmoid: float32 tanh is cv_tanh_rows_f32
# (csrc/kernels/pv_convert.c: below 4e-7), float64 tanh is libm's (within 2 ulp); the
# sigmoid is 1 / (1 + exp(-x)) with exp within 1 ulp, 4 eps covers it and its roundings.
TANH_ABS = {np.float32: 4e-7, np.float64: 4 * EPS64}
SIGMOID_ABS = {np.float32: 4 * EPS32, np.float64: 4 * EPS64}


def _items_error_bound(p, dtype):
    """First-order bound on |kernel - exact| of the fused item vectors h (n_items, d_c) and
    of a_inv (n_items,) for fusion="attention", in the given dtype (float64 NumPy).

    The standard rounding-error model (Higham, Accuracy and Stability of Numerical
    Algorithms, ch. 3): a sum of n products, in any order or blocking, is within
    n * eps * (the same sum of |products|) of its exact value, with eps = 2u (twice the
    classical gamma_n: room for rounding float32 inputs and for second-order terms).
    Errors already in an operand are carried through linearly:
      h_inv, h_var = (X o m) W^T + b, (X o (1-m)) W^T + b: D products, +6 roundings (inputs,
        W o m, 1 - m, the bias);
      t = tanh(A h + c): d_c + 3 roundings, carried error |A| dh, plus TANH_ABS (tanh' <= 1);
      k = q . t: d_a + 2;  a = sigmoid(k_inv - k_var): (dk_inv + dk_var) / 4 + SIGMOID_ABS;
      h = a h_inv + (1 - a) h_var: da (|h_inv| + |h_var|) + a dh_inv + (1 - a) dh_var + 3
        roundings of |h_inv| + |h_var|.
    Returns a dict of the exact (float64) a, h, the halves and their |.| sums, and the
    bounds h_err, a_err."""
    eps = float(np.finfo(dtype).eps)
    W, A, c, q, m, X = (np.asarray(p[k], np.float64) for k in ("W", "A", "c", "q", "mask", "X"))
    b = np.zeros(W.shape[0]) if p["b"] is None else np.asarray(p["b"], np.float64)
    D, d_c, d_a = X.shape[1], W.shape[0], A.shape[0]
    aX, aW, aA, aq = np.abs(X), np.abs(W), np.abs(A), np.abs(q)
    halves, half_abs, half_err, k_half, k_err = [], [], [], [], []
    for mm in (m, 1.0 - m):
        h = (X * mm) @ W.T + b
        ha = (aX * mm) @ aW.T + np.abs(b)
        he = (D + 6) * eps * ha
        t = np.tanh(h @ A.T + c)
        t_err = he @ aA.T + (d_c + 3) * eps * (ha @ aA.T + np.abs(c)) + TANH_ABS[dtype]
        halves.append(h), half_abs.append(ha), half_err.append(he), k_half.append(t @ q)
        k_err.append(t_err @ aq + (d_a + 2) * eps * (np.abs(t) @ aq))
    a = 1.0 / (1.0 + np.exp(k_half[1] - k_half[0]))
    v = 1.0 - a
    a_err = (k_err[0] + k_err[1]) / 4 + SIGMOID_ABS[dtype]
    h_err = (a_err[:, None] * (np.abs(halves[0]) + np.abs(halves[1])) + a[:, None] * half_err[0]
             + v[:, None] * half_err[1] + 3 * eps * (half_abs[0] + half_abs[1]))
    return dict(a=a, h=a[:, None] * halves[0] + v[:, None] * halves[1], halves=halves,
                half_abs=half_abs, h_abs=a[:, None] * half_abs[0] + v[:, None] * half_abs[1],
                h_err=h_err, a_err=a_err)


def _attention_f32_error_bound(p):
    """First-order bound on |float32 kernel - exact| of dU, dV, dW, db, dmask and attention
    for fusion="attention" and w = (1, 1, 1, 1), entry by entry (float64 NumPy).

    The model of _items_error_bound, continued through the batch:
      s = U_u . [V_i ; h_i]: du + 2;  r = omega (sigmoid(s) - y): omega (ds / 4 + SIGMOID_ABS)
        + 4 roundings (omega, the difference);
      dU_u, dE_i = sums of r E and r U over the pairs of the user / item: n_pairs + 2;
      dH_inv, dH_var = a dh, (1 - a) dh (+ the attention's dZ A term, allowed 3 times its
        magnitude bound a (1 - a) |dh| . (|h_inv| + |h_var|) |q| |A|, since tanh' <= 1);
      G_inv, G_var = dH^T X over the S distinct items of the batch: S + 2;
      dW = G_inv o m + G_var o (1 - m): +3;  db = sum of dH_inv + dH_var: 2S + 2;
      dmask = sum_k W_k o (G_inv,k - G_var,k): d_c + 2.
    Only tight when the attention's backward term is small (as with decayed A, c, q):
    otherwise its allowance dominates."""
    fw = _items_error_bound(p, np.float32)
    a, a_err = fw["a"], fw["a_err"]
    v = 1.0 - a
    U, V, A, q, m, X = (np.asarray(p[k], np.float64) for k in ("U", "V", "A", "q", "mask", "X"))
    aW = np.abs(np.asarray(p["W"], np.float64))
    users, items = p["users"], p["items"]
    bu, bi = np.asarray(p["beta_u"], np.float64), np.asarray(p["beta_i"], np.float64)
    n_items, d_c, d_id = X.shape[0], aW.shape[0], V.shape[1]
    du = d_id + d_c
    C = items.shape[1]
    E = np.concatenate([V, fw["h"]], 1)
    E_abs = np.concatenate([np.abs(V), fw["h_abs"]], 1)
    E_err = np.concatenate([EPS32 * np.abs(V), fw["h_err"]], 1)
    # the pairs: scores and residuals
    Ub = U[users]
    aUb = np.abs(Ub)
    s = np.einsum("bk,bck->bc", Ub, E[items])
    s_err = (np.einsum("bk,bck->bc", aUb, E_err[items])
             + (du + 2) * EPS32 * np.einsum("bk,bck->bc", aUb, E_abs[items]))
    omega = 1.0 + bu[users][:, None] * bi[items]
    omega[:, 1:] /= max(C - 1, 1)
    r = omega * (1.0 / (1.0 + np.exp(-s)) - (np.arange(C) == 0))
    r_err = omega * (s_err / 4 + SIGMOID_ABS[np.float32]) + 4 * EPS32 * np.abs(r)
    # backward: user rows and item rows, sums over their pairs
    n_u = np.bincount(users, minlength=U.shape[0]) * C
    dU_err, dU_abs = np.zeros_like(U), np.zeros_like(U)
    np.add.at(dU_err, users, np.einsum("bc,bck->bk", r_err, E_abs[items])
              + np.einsum("bc,bck->bk", np.abs(r), E_err[items]))
    np.add.at(dU_abs, users, np.einsum("bc,bck->bk", np.abs(r), E_abs[items]))
    dU_err += (n_u[:, None] + 2) * EPS32 * dU_abs
    n_i = np.bincount(items.ravel(), minlength=n_items)
    dE, dE_err, dE_abs = (np.zeros((n_items, du)) for _ in range(3))
    pairs = items.ravel()
    np.add.at(dE, pairs, (r[:, :, None] * Ub[:, None, :]).reshape(-1, du))
    np.add.at(dE_err, pairs, (r_err[:, :, None] * aUb[:, None, :]).reshape(-1, du))
    np.add.at(dE_abs, pairs, (np.abs(r)[:, :, None] * aUb[:, None, :]).reshape(-1, du))
    dE_err += (n_i[:, None] + 2) * EPS32 * dE_abs
    dh, dh_err, dh_abs = dE[:, d_id:], dE_err[:, d_id:], dE_abs[:, d_id:]
    dza = 3 * (a * v * np.sum(dh_abs * (fw["half_abs"][0] + fw["half_abs"][1]), axis=1))[
        :, None] * (np.abs(q) @ np.abs(A))
    S = int(np.count_nonzero(n_i))
    aX = np.abs(X)
    G_err, G_abs, db_err, db_abs = [], [], 0.0, 0.0
    for wt in (a, v):
        dH_err = a_err[:, None] * np.abs(dh) + wt[:, None] * (dh_err + EPS32 * dh_abs) + dza
        dH_abs = wt[:, None] * dh_abs + dza
        G_abs.append(dH_abs.T @ aX)
        G_err.append(dH_err.T @ aX + (S + 2) * EPS32 * G_abs[-1])
        db_err, db_abs = db_err + dH_err.sum(0), db_abs + dH_abs.sum(0)
    return dict(
        dU=dU_err, dV=dE_err[:, :d_id], attention=a_err[items],
        dW=G_err[0] * m + G_err[1] * (1 - m) + 3 * EPS32 * (G_abs[0] * m + G_abs[1] * (1 - m)),
        db=db_err + (2 * S + 2) * EPS32 * db_abs,
        dmask=np.sum(aW * (G_err[0] + G_err[1]), 0)
        + (d_c + 2) * EPS32 * np.sum(aW * (G_abs[0] + G_abs[1]), 0))


def test_decayed_attention_parameters(rng):
    """A, c, q of order 1e-20 (the TikTok benchmark's weight decay takes them there within
    an epoch): the dZ A part of dH is then far below half an ulp of dH, and its GEMM, whose
    products would be subnormal, may be skipped; the results stay those of the maths."""
    p = problem(rng, nu=30, ni=300, d_id=4, d_c=8, d_a=6, D=20, B=40, n_neg=10)
    for k in ("A", "c", "q"):
        p[k] = p[k] * 1e-20
    assert np.median(_attention_term_ratios(p)) < 1e-30
    out = convert_loss_grad(**p)
    ref = convert_grad_ref(**p)
    for name in ("U", "V", "W", "b", "A", "c", "q"):
        np.testing.assert_allclose(getattr(out, "d" + name), ref[name], rtol=1e-9,
                                   atol=1e-12 * np.max(np.abs(ref[name])), err_msg=name)
    runs = []
    for n in (1, 2):
        with threadpool_limits(n, "blas"):
            runs.append(convert_loss_grad(**p, dtype=np.float32, n_threads=n))
    # float32 against float64, entry by entry, within the first-order rounding bound of the
    # float32 computation (_attention_f32_error_bound).  a_inv = a_var = 1/2 here, so the
    # exact dmask is ~1e-20 and the float64 one exactly 0: float32's dmask is the rounding
    # error of sum_k W_k o (G_inv,k - G_var,k), two separately rounded sums over the batch's
    # items, and only a bound scaled by sum_k |W_k| o (|G_inv,k| + |G_var,k|) can hold it.
    # The float64 result's own error is this bound with eps64 in place of EPS32: the factor
    # (1 + 2**-29) covers it.
    bound = _attention_f32_error_bound(p)
    for name, one, two, f64 in zip(out._fields[1:], runs[0][1:], runs[1][1:], out[1:]):
        if f64 is None:
            continue
        np.testing.assert_array_equal(one, two, err_msg=name)
        # float32's tanh is accurate to 4e-7 absolute, not relative: the attention's own
        # gradients (dA, dc, dq ~ 1e-19 here) are below what float32 resolves
        if name not in ("dA", "dc", "dq"):
            err = np.abs(one.astype(np.float64) - f64)
            tol = bound[name] * (1 + 2.0**-29)
            assert np.all(err <= tol), (name, np.max(err - tol))


@pytest.mark.parametrize("scale", [1e-4, 1e-3])
def test_small_attention_term_is_kept(rng, scale):
    """A and q small enough that dZ A is a small part of dH, but far above float64's half
    ulp: the kernel must add it (float64 against the reference at 1e-10)."""
    p = problem(rng, nu=30, ni=300, d_id=4, d_c=8, d_a=6, D=20, B=40, n_neg=10)
    p["A"] = p["A"] * scale
    p["q"] = p["q"] * scale
    r = _attention_term_ratios(p)
    assert np.median(r) < 1e-3 and np.max(r) > 1e-9
    out = convert_loss_grad(**p)
    ref = convert_grad_ref(**p)
    for name in ("W", "b"):
        np.testing.assert_allclose(getattr(out, "d" + name), ref[name], rtol=1e-10,
                                   atol=1e-13 * np.max(np.abs(ref[name])), err_msg=name)


def test_no_negatives_and_empty_batch(rng):
    p = problem(rng, n_neg=0)
    out = convert_loss_grad(**p)
    assert out.loss == pytest.approx(convert_loss_ref(**p), rel=1e-12)
    p["users"] = p["users"][:0]
    p["items"] = p["items"][:0]
    out = convert_loss_grad(**p)
    assert out.loss == 0.0
    for a in (out.dU, out.dV, out.dW, out.db, out.dA, out.dc, out.dq, out.dmask):
        assert not np.any(a)
    assert out.attention.shape == (0, 1)


def test_extreme_scores_stay_finite(rng):
    p = problem(rng)
    p["U"] *= 1e3
    p["q"] *= 1e3  # saturated attention: one weight ~ 0
    out = convert_loss_grad(**p)
    assert np.isfinite(out.loss) and all(np.all(np.isfinite(a)) for a in out[1:] if a is not None)
    assert out.loss == pytest.approx(convert_loss_ref(**p), rel=1e-9)


@pytest.mark.parametrize("change,exc,match", [
    (dict(users=np.array([0, 99, 1, 2, 3, 4, 5])), ValueError, "users must lie in"),
    (dict(items=-np.ones((7, 5), np.int64)), ValueError, "items must lie in"),
    (dict(X="nan"), ValueError, "X contains NaN"),
    (dict(mask=np.ones(5)), ValueError, "mask must have 6 entries"),
    (dict(A=np.ones((5, 3))), ValueError, "A must have 4 entries on axis 1"),
    (dict(q=np.ones(4)), ValueError, "q must have 5 entries"),
    (dict(c=None), ValueError, "c must be given with fusion=.attention."),
    (dict(b=np.zeros(3)), ValueError, "b must have 4 entries"),
    (dict(users=np.zeros(7)), TypeError, "users must hold integer ids"),
    (dict(fusion="sum"), ValueError, "fusion must be one of"),
    (dict(fusion="global"), ValueError, "omega .the two logits. must be given with "
                                        "fusion=.global."),
    (dict(omega=np.zeros(3), fusion="global"), ValueError, "omega must have 2 entries"),
    (dict(W_var=np.ones((4, 5)), b_var=np.zeros(4)), ValueError,
     "W_var must have 6 entries on axis 1"),
    (dict(W_var=np.ones((4, 6))), ValueError, "b_var must be given exactly when b is"),
    (dict(b_var=np.zeros(4)), ValueError, "b_var needs W_var"),
    (dict(W_var=np.ones((4, 6)), b_var=np.zeros(3)), ValueError, "b_var must have 4 entries"),
])
def test_bad_input_raises_naming_the_parameter(rng, change, exc, match):
    p = problem(rng)
    kw = {}
    for k, v in change.items():
        if k in ("fusion", "omega"):
            kw[k] = v
        elif isinstance(v, str):
            p[k] = p[k].copy()
            p[k][0, 0] = np.nan
        else:
            p[k] = v
    with pytest.raises(exc, match=match):
        convert_loss_grad(**p, **kw)


def test_core_checks_again_without_the_python_layer(rng):
    p = problem(rng)
    core_args = [p[k] for k in ("W", "b", "A", "c", "q")] + [None, p["mask"], p["X"]]
    with pytest.raises(ValueError, match="convert_items.*'W_var' has length"):
        _core.convert_items(*core_args, W_var=np.ones((4, 5)), b_var=np.zeros(4))
    with pytest.raises(ValueError, match="convert_items.*'b_var' must be given exactly"):
        _core.convert_items(*core_args, W_var=np.ones((4, 6)))
    args = [p[k] for k in ("U", "V", "W", "b", "A", "c", "q")] + [None] + [
        p[k] for k in ("mask", "X", "users", "items", "beta_u", "beta_i")]
    bad = list(args)
    bad[11] = p["items"].copy()
    bad[11][0, 0] = 10**6
    with pytest.raises(IndexError, match="convert_loss_grad"):
        _core.convert_loss_grad(*bad)
    bad = list(args)
    bad[9] = p["X"].astype(np.float32)
    with pytest.raises(TypeError, match="'X' must have dtype float64"):
        _core.convert_loss_grad(*bad)
    with pytest.raises(ValueError, match="'fusion' must be"):
        _core.convert_loss_grad(*args, fusion="sum")
    with pytest.raises(ValueError, match="needs 'omega'"):
        _core.convert_loss_grad(*args, fusion="global")
    bad = list(args)
    bad[4] = None
    with pytest.raises(ValueError, match="needs 'A', 'c' and 'q'"):
        _core.convert_loss_grad(*bad)
    with pytest.raises(IndexError, match="convert_items"):
        _core.convert_items(*items_args(p)[:5], None, p["mask"], p["X"],
                            items=np.array([0, 13]))


def test_no_reference_leaks_and_inputs_unchanged(rng):
    import sys

    p = problem(rng)
    copies = {k: (v.copy() if v is not None else None) for k, v in p.items()}
    before = {k: sys.getrefcount(v) for k, v in p.items() if v is not None}
    for _ in range(50):
        out = convert_loss_grad(**p, fusion="attention")
        _core.convert_items(*items_args(p)[:5], None, p["mask"], p["X"])
    after = {k: sys.getrefcount(v) for k, v in p.items() if v is not None}
    assert before == after
    dU = out.dU
    del out
    assert sys.getrefcount(dU) == 2  # only dU and the call's argument: no leaked reference
    for k, v in p.items():
        if v is not None:
            np.testing.assert_array_equal(v, copies[k])


@pytest.mark.parametrize("bias", [True, False])
def test_flat_attention_equals_equal_global_logits(rng, bias):
    """q = 0 gives a_inv = a_var = 1/2 for every item: the projecting (attention) path
    must then agree with the global path, which runs the backbone kernel with a gate."""
    p = problem(rng, bias=bias)
    p["q"] = np.zeros_like(p["q"])
    att = convert_loss_grad(**p, fusion="attention")
    glo = convert_loss_grad(**p, fusion="global", omega=np.array([0.7, 0.7]))
    assert np.all(att.attention == 0.5)
    assert att.loss == pytest.approx(glo.loss, rel=1e-12)
    for name in ("dU", "dV", "dW", "db", "dmask"):
        a, g = getattr(att, name), getattr(glo, name)
        if g is None:
            assert a is None
        else:
            np.testing.assert_allclose(a, g, rtol=1e-10, atol=1e-12, err_msg=name)


# ---- the trainer-facing C API (compact slots), called through ctypes ----

def _c_api():
    import ctypes as ct

    lib = ct.CDLL(_core.__file__)
    P = ct.POINTER(ct.c_double)
    idx = ct.c_ssize_t

    class Dims(ct.Structure):
        _fields_ = [(n, idx) for n in ("n_users", "n_items", "d_id", "d_c", "d_a", "n_feat")]

    class Model(ct.Structure):
        _fields_ = ([("dims", Dims), ("fusion", ct.c_int)]
                    + [(n, P) for n in ("U", "V", "W", "b", "A", "c", "q", "omega", "mask", "X",
                                        "beta_u", "beta_i")]
                    + [("w", ct.c_double * 4), ("W_var", P), ("b_var", P)])

    class Grad(ct.Structure):
        _fields_ = ([(n, P) for n in ("gU", "gV", "gW", "gb", "gA", "gc", "gq", "gomega",
                                      "gmask", "attn")]
                    + [("user_slot", ct.POINTER(ct.c_int32)), ("item_slot", ct.POINTER(ct.c_int32)),
                       ("item_list", ct.POINTER(ct.c_int64)), ("n_user_slots", idx),
                       ("n_item_slots", idx), ("gW_var", P), ("gb_var", P)])

    lib.pv_convert_workspace_f64.restype = idx
    lib.pv_convert_workspace_f64.argtypes = [idx, idx, idx, Dims]
    lib.pv_convert_batch_f64.restype = ct.c_int
    lib.pv_convert_batch_f64.argtypes = [ct.POINTER(Model), idx, idx, ct.POINTER(ct.c_int64),
                                         ct.POINTER(ct.c_int64), ct.POINTER(Grad), P,
                                         ct.POINTER(ct.c_double), ct.c_int]
    return ct, lib, Dims, Model, Grad


@pytest.mark.parametrize("projection", PROJECTIONS)
@pytest.mark.parametrize("fusion", FUSIONS)
def test_compact_slot_api_matches_the_dense_gradients(rng, fusion, projection):
    """Slots in first-appearance order plus an unused slot, gU/gV rows ADDED to."""
    ct, lib, Dims, Model, Grad = _c_api()
    p = problem(rng, projection=projection)
    dense = convert_loss_grad(**p, fusion=fusion, omega=OMEGA)
    users, items = p["users"], p["items"].ravel()
    nu, ni = p["U"].shape[0], p["V"].shape[0]
    d_c, D = p["W"].shape
    d_id, d_a = p["V"].shape[1], p["A"].shape[0]
    uslot = np.full(nu, -1, np.int32)
    islot = np.full(ni, -1, np.int32)
    ulist, ilist = [], []
    for u in users:
        if uslot[u] < 0:
            uslot[u] = len(ulist)
            ulist.append(u)
    spare = next(i for i in range(ni) if i not in set(items))
    for i in list(items) + [spare]:
        if islot[i] < 0:
            islot[i] = len(ilist)
            ilist.append(i)
    ilist = np.array(ilist, np.int64)
    S = len(ilist)
    gU = np.full((len(ulist), d_id + d_c), 0.25)
    gV = np.full((S, d_id), -0.5)
    outs = {k: np.full(shape, np.nan) for k, shape in
            [("gW", (d_c, D)), ("gb", d_c), ("gA", (d_a, d_c)), ("gc", d_a), ("gq", d_a),
             ("gomega", 2), ("gmask", D), ("attn", S), ("gW_var", (d_c, D)), ("gb_var", d_c)]}
    P = ct.POINTER(ct.c_double)

    def ptr(a):
        return None if a is None else a.ctypes.data_as(P)

    dims = Dims(nu, ni, d_id, d_c, d_a, D)
    model = Model(dims, FUSIONS.index(fusion), *[ptr(p[k]) for k in (
        "U", "V", "W", "b", "A", "c", "q")], ptr(OMEGA), ptr(p["mask"]), ptr(p["X"]),
        ptr(p["beta_u"]), ptr(p["beta_i"]), (ct.c_double * 4)(1, 1, 1, 1), ptr(p.get("W_var")),
        ptr(p.get("b_var")))
    grad = Grad(ptr(gU), ptr(gV), *[ptr(outs[k]) for k in (
        "gW", "gb", "gA", "gc", "gq", "gomega", "gmask", "attn")],
        uslot.ctypes.data_as(ct.POINTER(ct.c_int32)), islot.ctypes.data_as(ct.POINTER(ct.c_int32)),
        ilist.ctypes.data_as(ct.POINTER(ct.c_int64)), len(ulist), S, ptr(outs["gW_var"]),
        ptr(outs["gb_var"]))
    work = np.empty(lib.pv_convert_workspace_f64(len(users), p["items"].shape[1], S, dims))
    loss = ct.c_double()
    users64, items64 = np.ascontiguousarray(users, np.int64), np.ascontiguousarray(items, np.int64)
    st = lib.pv_convert_batch_f64(ct.byref(model), len(users), p["items"].shape[1],
                                  users64.ctypes.data_as(ct.POINTER(ct.c_int64)),
                                  items64.ctypes.data_as(ct.POINTER(ct.c_int64)),
                                  ct.byref(grad), work.ctypes.data_as(P), ct.byref(loss), 2)
    assert st == 0
    assert loss.value == pytest.approx(dense.loss, rel=1e-13)
    np.testing.assert_allclose(gU - 0.25, dense.dU[ulist], rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(gV + 0.5, dense.dV[ilist], rtol=1e-12, atol=1e-13)
    assert np.all(gV[islot[spare]] == -0.5)
    for key, name in [("gW", "dW"), ("gb", "db"), ("gA", "dA"), ("gc", "dc"), ("gq", "dq"),
                      ("gomega", "domega"), ("gmask", "dmask"), ("gW_var", "dW_var"),
                      ("gb_var", "db_var")]:
        want = getattr(dense, name)
        if want is not None:
            np.testing.assert_allclose(outs[key], want, rtol=1e-12, atol=1e-13, err_msg=key)
    np.testing.assert_allclose(outs["attn"][islot[items]], dense.attention.ravel(), rtol=1e-14)
    # a slot that does not name its item is refused
    ilist[0], ilist[1] = ilist[1], ilist[0]
    st = lib.pv_convert_batch_f64(ct.byref(model), len(users), p["items"].shape[1],
                                  users64.ctypes.data_as(ct.POINTER(ct.c_int64)),
                                  items64.ctypes.data_as(ct.POINTER(ct.c_int64)),
                                  ct.byref(grad), work.ctypes.data_as(P), ct.byref(loss), 1)
    assert st == 5  # PV_EINDEX


def test_float32_tanh_is_accurate_over_its_whole_range():
    """With D = d_c = d_a = 1, W = A = q = 1 and m = 1: a_inv = sigmoid(tanh(x) - tanh(0)),
    so the float32 attention exposes the kernel's vectorised tanh at every x."""
    x = np.concatenate([np.linspace(-30, 30, 20001), np.geomspace(1e-8, 1, 2000),
                        -np.geomspace(1e-8, 1, 2000), [0.0, 9.0, 10.0, 20.0, 25.0, 88.0]])
    X = x.astype(np.float32)[:, None]
    one = np.ones((1, 1), np.float32)
    a = attention_weights(one, None, one, np.zeros(1, np.float32), np.ones(1, np.float32),
                          np.ones(1, np.float32), X)
    assert a.dtype == np.float32
    want = 1 / (1 + np.exp(-np.tanh(X[:, 0].astype(np.float64))))
    assert np.max(np.abs(a - want)) < 3e-7


# ---- the mask must survive the convert module (method.md §4.2 erratum) ----

SYMMETRIC = {  # (projection, attention at its symmetric point q = 0)
    "separate": ("separate", True),
    "separate-trained": ("separate", False),
    "shared-trained": ("shared", False),
    # the earlier default after the reference L2 had decayed the attention (issue #11)
    "shared-symmetric": pytest.param(("shared", True), marks=pytest.mark.xfail(
        strict=True, reason="the mask cancels: h = W x / 2 + b")),
}


@pytest.mark.parametrize("config", list(SYMMETRIC.values()), ids=list(SYMMETRIC))
@pytest.mark.parametrize("fusion", ["attention", "global"])
def test_predictions_change_when_the_mask_changes(rng, fusion, config):
    """Scores under two masks differ by more than rounding, except (xfail) with the shared
    projection at the symmetric point, where h = W x / 2 + b whatever the mask."""
    projection, symmetric = config
    p = problem(rng, ni=40, projection=projection)
    omega = np.zeros(2) if symmetric else OMEGA
    if symmetric:
        p["q"] = np.zeros_like(p["q"])
    other = rng.uniform(0.0, 1.0, p["mask"].shape)
    scores = []
    for mask in (p["mask"], other):
        h, a = convert_item_vectors(p["W"], p["b"], p["A"], p["c"], p["q"], mask, p["X"],
                                    fusion=fusion, omega=omega, **variant(p))
        assert symmetric == np.all(a == 0.5)
        E = np.concatenate([p["V"], h], axis=1)
        scores.append(p["U"] @ E.T)
    # float64: anything above 1e-9 of the score scale is not rounding
    scale = np.max(np.abs(scores[0]))
    assert np.max(np.abs(scores[0] - scores[1])) > 1e-9 * scale


def test_mask_cancellation_names_the_cases_that_cancel(rng):
    p = problem(rng, projection="separate")
    W, b, Wv, bv, m = p["W"], p["b"], p["W_var"], p["b_var"], p["mask"]
    half = np.full_like(m, 0.5)
    sym = np.full(13, 0.5 + 1e-4)
    # shared projection: a mask of 1/2, or every a_inv within tol of 1/2
    assert "1/2 in every column" in mask_cancellation(half, fusion="attention", W=W, b=b)
    assert "within 0.001 of 1/2" in mask_cancellation(m, fusion="global", W=W, b=b, a_inv=sym)
    assert mask_cancellation(m, fusion="attention", W=W, b=b, a_inv=sym + 2e-3) is None
    assert mask_cancellation(m, fusion="attention", W=W, b=b) is None
    # separate projections that are equal (e.g. both just started from one W) cancel too
    assert "projections are equal" in mask_cancellation(half, fusion="attention", W=W, b=b,
                                                        W_var=W.copy(), b_var=b.copy())
    # ... and do not once they differ, nor does InvRL's invariant fusion ever
    assert mask_cancellation(half, fusion="attention", W=W, b=b, W_var=Wv, b_var=bv,
                             a_inv=sym) is None
    assert mask_cancellation(half, fusion="invariant", W=W, b=b, a_inv=sym) is None
    # the cases it names do cancel: the item vectors do not depend on the mask
    q0 = np.zeros_like(p["q"])
    h1, _ = convert_item_vectors(W, b, p["A"], p["c"], q0, m, p["X"])
    h2, _ = convert_item_vectors(W, b, p["A"], p["c"], q0, 1 - m, p["X"])
    np.testing.assert_allclose(h1, h2, rtol=1e-12, atol=1e-12)
