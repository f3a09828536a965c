"""VBPR: the C batch loss and gradient against a float64 NumPy reference and finite
differences, thread-count determinism, bad input, and the scoring vectors.  The
estimator contract: tests/test_baselines.py."""
import numpy as np
import pytest

from painvrl import VBPR, _core, datasets

EPS32 = float(np.finfo(np.float32).eps)
NAMES = ("gamma_u", "theta_u", "gamma_i", "bias", "E", "beta")


def vbpr_ref(t, X, users, pos, neg, lam, lam_b, lam_e):
    """Loss and exact gradients of pv_vbpr.h's batch loss, float64."""
    gu, tu, gi, b, E, beta = t
    B = len(users)
    delta = X[pos] - X[neg]
    P = delta @ E.T
    x = (b[pos] - b[neg] + (gu[users] * (gi[pos] - gi[neg])).sum(1) + (tu[users] * P).sum(1)
         + delta @ beta)
    loss = (np.logaddexp(0.0, -x).mean()
            + lam / (2 * B) * ((gu[users] ** 2).sum() + (tu[users] ** 2).sum()
                               + (gi[pos] ** 2).sum() + (gi[neg] ** 2).sum())
            + lam_b / (2 * B) * ((b[pos] ** 2).sum() + (b[neg] ** 2).sum())
            + lam_e / 2 * ((E ** 2).sum() + (beta ** 2).sum()))
    c = -1.0 / (1.0 + np.exp(x)) / B
    g = [np.zeros_like(a) for a in t]
    np.add.at(g[0], users, c[:, None] * (gi[pos] - gi[neg]) + lam / B * gu[users])
    np.add.at(g[1], users, c[:, None] * P + lam / B * tu[users])
    np.add.at(g[2], pos, c[:, None] * gu[users] + lam / B * gi[pos])
    np.add.at(g[2], neg, -c[:, None] * gu[users] + lam / B * gi[neg])
    np.add.at(g[3], pos, c + lam_b / B * b[pos])
    np.add.at(g[3], neg, -c + lam_b / B * b[neg])
    g[4] = (c[:, None] * tu[users]).T @ delta + lam_e * E
    g[5] = delta.T @ c + lam_e * beta
    return loss, g


def case(rng, nu=5, ni=7, k=3, k2=2, nf=6):
    t = (rng.standard_normal((nu, k)), rng.standard_normal((nu, k2)),
         rng.standard_normal((ni, k)), rng.standard_normal(ni), rng.standard_normal((k2, nf)),
         rng.standard_normal(nf))
    t = tuple((a * 0.5).astype(np.float32) for a in t)
    X = rng.random((ni, nf)).astype(np.float32)
    users = np.array([0, 2, 2, 4, 0, 1], np.int64)
    pos = np.array([1, 3, 3, 6, 0, 2], np.int64)
    neg = np.array([4, 3, 5, 0, 6, 2], np.int64)  # repeats and pos == neg included
    return t, X, users, pos, neg


REG = (0.1, 0.05, 0.02)


def test_batch_matches_float64_reference(rng):
    t, X, users, pos, neg = case(rng)
    loss, grads = _core.vbpr_batch(t, X, users, pos, neg, *REG, n_threads=1)
    ref_loss, ref = vbpr_ref([a.astype(np.float64) for a in t], X.astype(np.float64), users,
                             pos, neg, *REG)
    # float32 sums of at most n_feat + k + k2 products of O(1) terms per score; the E
    # gradient sums B of them (derived bound, with a factor 4 of headroom)
    terms = X.shape[1] + t[0].shape[1] + t[1].shape[1] + len(users)
    tol = 4 * terms * EPS32 * max(1.0, max(float(np.abs(a).max()) for a in t)) ** 2
    assert loss == pytest.approx(ref_loss, abs=tol)
    for name, got, want in zip(NAMES, grads, ref):
        np.testing.assert_allclose(got, want, rtol=0, atol=tol, err_msg=name)


def test_reference_gradient_matches_central_differences(rng):
    t, X, users, pos, neg = case(rng)
    t64 = [a.astype(np.float64) for a in t]
    X64 = X.astype(np.float64)
    _, grads = vbpr_ref(t64, X64, users, pos, neg, *REG)
    h = 1e-6
    for q, name in enumerate(NAMES):
        fd = np.zeros_like(t64[q])
        for idx in np.ndindex(*t64[q].shape):
            tp = [a.copy() for a in t64]
            tm = [a.copy() for a in t64]
            tp[q][idx] += h
            tm[q][idx] -= h
            fd[idx] = (vbpr_ref(tp, X64, users, pos, neg, *REG)[0] -
                       vbpr_ref(tm, X64, users, pos, neg, *REG)[0]) / (2 * h)
        np.testing.assert_allclose(grads[q], fd, rtol=1e-6, atol=1e-9, err_msg=name)


def test_c_gradient_matches_central_differences_of_the_c_loss(rng):
    """float32 loss: h = 1e-2, so the tolerance covers eps * |loss| / h plus O(h^2)."""
    t, X, users, pos, neg = case(rng)
    _, grads = _core.vbpr_batch(t, X, users, pos, neg, *REG)
    h = 1e-2
    for q in range(6):
        idx = tuple(0 for _ in t[q].shape)
        tp = [a.copy() for a in t]
        tm = [a.copy() for a in t]
        tp[q][idx] += h
        tm[q][idx] -= h
        fd = (_core.vbpr_batch(tuple(tp), X, users, pos, neg, *REG)[0] -
              _core.vbpr_batch(tuple(tm), X, users, pos, neg, *REG)[0]) / (2 * h)
        assert grads[q][idx] == pytest.approx(fd, abs=2e-4), NAMES[q]


def test_batch_is_bit_identical_across_thread_counts(rng):
    # large enough that the GEMMs take more than one block
    t, X, _, _, _ = case(rng, nu=40, ni=300, k=4, k2=70, nf=150)
    r = np.random.default_rng(1)
    users, pos, neg = r.integers(0, 40, 200), r.integers(0, 300, 200), r.integers(0, 300, 200)
    a = _core.vbpr_batch(t, X, users, pos, neg, *REG, n_threads=1)
    b = _core.vbpr_batch(t, X, users, pos, neg, *REG, n_threads=2)
    assert a[0] == b[0]
    for x, y in zip(a[1], b[1]):
        np.testing.assert_array_equal(x, y)


def test_kernel_rejects_bad_input(rng):
    t, X, users, pos, neg = case(rng)
    with pytest.raises(IndexError, match=r"vbpr_batch\(\): 'pos' must lie in \[0, 7\)"):
        _core.vbpr_batch(t, X, users, pos + 7, neg, *REG)
    with pytest.raises(ValueError, match=r"vbpr_batch\(\): 'X' has length 5 on axis 1"):
        _core.vbpr_batch(t, X[:, :5], users, pos, neg, *REG)
    with pytest.raises(TypeError, match=r"vbpr_batch\(\): 'params' must be a tuple of 6"):
        _core.vbpr_batch(t[:5], X, users, pos, neg, *REG)
    with pytest.raises(ValueError, match="lam, lam_b and lam_e must be finite"):
        _core.vbpr_batch(t, X, users, pos, neg, -1.0, 0.0, 0.0)


# --------------------------------------------------------------------------- estimator

@pytest.fixture(scope="module")
def small():
    return datasets.make_multimodal(n_users=200, n_items=250, n_interactions=6_000, seed=4)


def quick(**kw):
    base = dict(k=6, k2=6, lr=1e-2, batch_size=256, max_epochs=6, eval_every=2, patience=100,
                progress=False, seed=5, n_threads=1)
    base.update(kw)
    return VBPR(**base)


def test_scoring_vectors_give_the_vbpr_score(small):
    model = quick(max_epochs=3).fit(small)
    assert model.projection_.shape == (6, small.features.shape[1])
    ids, scores = model.recommend([3], k=5)
    assert not set(ids[0]) & set(small.train_csr.row(3))
    # the scoring vectors' dot product is VBPR's score, computed here from the tables
    X = small.features / np.abs(small.features).max()
    u, i = 3, ids[0, 0]
    s = (model.item_bias_[i] + model.user_factors_[u] @ model.item_factors_[i]
         + model.user_content_factors_[u] @ (model.projection_ @ X[i]) + model.content_bias_ @ X[i])
    assert scores[0, 0] == pytest.approx(s, rel=1e-4)
