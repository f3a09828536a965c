"""The backbone batch kernel against NumPy float64 and central finite differences."""
import numpy as np
import pytest

from painvrl import _core
from painvrl.models.functional import loss_weights, rec_loss_grad
from reference import finite_difference, rec_grad, rec_loss


def problem(rng, nu=9, ni=13, d_id=3, d_c=4, D=6, B=7, n_neg=4, bias=True, gate=True):
    U = rng.normal(size=(nu, d_id + d_c))
    V = rng.normal(size=(ni, d_id))
    W = rng.normal(size=(d_c, D))
    b = rng.normal(size=d_c) if bias else None
    g = rng.uniform(0.1, 1.0, size=D) if gate else None
    X = rng.normal(size=(ni, D))
    users = rng.integers(0, nu, B)
    items = rng.integers(0, ni, (B, 1 + n_neg))
    beta_u, beta_i = loss_weights(rng.integers(1, 9, nu), rng.integers(0, 9, ni), np.float64)
    return dict(U=U, V=V, W=W, b=b, g=g, X=X, users=users, items=items, beta_u=beta_u,
                beta_i=beta_i)


W_SETS = [(1, 1, 1, 1), (0.5, 2.0, 1.5, 0.25)]


@pytest.mark.parametrize("w", W_SETS)
@pytest.mark.parametrize("bias,gate", [(True, True), (False, False), (True, False)])
def test_loss_and_gradient_match_numpy_float64(rng, w, bias, gate):
    p = problem(rng, bias=bias, gate=gate)
    out = rec_loss_grad(**p, w=w)
    assert out.loss == pytest.approx(rec_loss(**p, w=w), rel=1e-12)
    ref = rec_grad(**p, w=w)
    for got, want in zip(out[1:], ref):
        if got is not None:
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    assert (out.db is None) == (not bias) and (out.dg is None) == (not gate)


@pytest.mark.parametrize("reg", ["none", "full", "batch"])
def test_gradient_matches_central_finite_differences(rng, reg):
    p = problem(rng)
    kw = dict(w=(1.0, 0.7, 1.3, 0.4), reg=reg, wd1=0.05, wdi=2.0, wd2=0.2)
    out = rec_loss_grad(**p, **kw)
    for name, got in zip(["U", "V", "W", "b", "g"], out[1:]):
        num = finite_difference(lambda: rec_loss(**p, **kw), p[name])
        np.testing.assert_allclose(got, num, rtol=1e-6, atol=1e-7, err_msg=name)


def test_float32_agrees_with_float64(rng):
    p = problem(rng, nu=30, ni=50, d_id=8, d_c=8, D=40, B=32, n_neg=10)
    p64 = rec_loss_grad(**p)
    p32 = rec_loss_grad(**p, dtype=np.float32)
    assert p32.dU.dtype == np.float32
    assert p32.loss == pytest.approx(p64.loss, rel=1e-5)
    for a, b in zip(p32[1:], p64[1:]):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)


def test_no_negatives_and_empty_batch(rng):
    p = problem(rng, n_neg=0)
    out = rec_loss_grad(**p)
    assert out.loss == pytest.approx(rec_loss(**p), rel=1e-12)
    p["users"] = p["users"][:0]
    p["items"] = p["items"][:0]
    out = rec_loss_grad(**p, reg="full", wd1=0.1)
    assert out.loss == pytest.approx(0.1 * np.sum(p["U"] ** 2) + 0.1 * np.sum(p["V"] ** 2))


def test_extreme_scores_stay_finite(rng):
    p = problem(rng)
    p["U"] *= 1e3  # logits of order 1e4: softplus/sigmoid must not overflow
    out = rec_loss_grad(**p)
    assert np.isfinite(out.loss) and all(np.all(np.isfinite(a)) for a in out[1:])
    assert out.loss == pytest.approx(rec_loss(**p), rel=1e-9)


def test_result_does_not_depend_on_thread_count(rng):
    p = problem(rng, nu=40, ni=60, d_id=8, d_c=8, D=33, B=64, n_neg=20)
    one = rec_loss_grad(**p, dtype=np.float32, n_threads=1)
    two = rec_loss_grad(**p, dtype=np.float32, n_threads=2)
    assert one.loss == two.loss
    for a, b in zip(one[1:], two[1:]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("field,value,exc,match", [
    ("users", np.array([0, 99, 1, 2, 3, 4, 5]), ValueError, "users must lie in"),
    ("items", -np.ones((7, 5), np.int64), ValueError, "items must lie in"),
    ("X", "nan", ValueError, "X contains NaN"),
    ("W", np.zeros((4, 5)), ValueError, "X must have 5 entries on axis 1"),
    ("users", np.zeros(7, np.float64), TypeError, "users must hold integer ids"),
    ("b", np.zeros(3), ValueError, "b must have 4 entries"),
])
def test_bad_input_raises_naming_the_parameter(rng, field, value, exc, match):
    p = problem(rng)
    if isinstance(value, str):
        p[field] = p[field].copy()
        p[field][0, 0] = np.nan
    else:
        p[field] = value
    with pytest.raises(exc, match=match):
        rec_loss_grad(**p)


def test_core_checks_again_without_the_python_layer(rng):
    p = problem(rng)
    args = [p[k] for k in ("U", "V", "W", "b", "g", "X", "users", "items", "beta_u", "beta_i")]
    bad = list(args)
    bad[7] = p["items"].copy()
    bad[7][0, 0] = 10**6
    with pytest.raises(IndexError, match="rec_loss_grad"):
        _core.rec_loss_grad(*bad)
    bad = list(args)
    bad[5] = p["X"].astype(np.float32)
    with pytest.raises(TypeError, match="'X' must have dtype float64"):
        _core.rec_loss_grad(*bad)
    with pytest.raises(ValueError, match="'reg' must be"):
        _core.rec_loss_grad(*args, reg="sometimes")
