"""FREEDOM: the item-item kNN graph and the edge pruning against NumPy, the C batch loss and
gradients against a dense float64 reference and finite differences, thread-count
determinism, bad input, and the item graph's effect.  The estimator contract:
tests/test_baselines.py."""
import numpy as np
import pytest

from painvrl import FREEDOM, LightGCN, _core, datasets
from painvrl.data import UserItemCSR
from painvrl.models.graph import knn_graph, normalised_graph, pruned_pairs, transpose
from _graph_ref import dense, layer_mean

EPS32 = float(np.finfo(np.float32).eps)


def test_knn_graph_matches_a_numpy_reference(rng):
    X = rng.standard_normal((30, 7)).astype(np.float32)
    mods = [slice(0, 3), slice(3, 7)]
    g = knn_graph(X, mods, [0.25, 0.75], k=4, n_threads=1)
    ref = np.zeros((30, 30))
    for sl, w in zip(mods, [0.25, 0.75]):
        Z = X[:, sl] / np.linalg.norm(X[:, sl], axis=1, keepdims=True)
        sim = Z.astype(np.float64) @ Z.T.astype(np.float64)
        for r in range(30):
            ref[r, np.argsort(-sim[r], kind="stable")[:4]] += w / 4
    np.testing.assert_allclose(dense(g, 30), ref, rtol=4 * EPS32, atol=0)
    assert np.all(np.diag(dense(g, 30)) > 0)  # an item is its own nearest neighbour
    np.testing.assert_array_equal(dense(transpose(g), 30), dense(g, 30).T)


def test_pruning_keeps_the_share_and_favours_low_degree_edges():
    rng = np.random.default_rng(0)
    u = rng.integers(0, 200, 6000)
    i = np.where(rng.random(6000) < 0.5, rng.integers(0, 5, 6000), rng.integers(5, 400, 6000))
    train = UserItemCSR.from_pairs(u, i, 200, 400)
    kept = pruned_pairs(train, 0.8, seed=3, epoch=1)
    assert kept.nnz == int(train.nnz * 0.2)
    pairs, all_pairs = kept.to_pairs(), train.to_pairs()
    assert set(map(tuple, pairs)) <= set(map(tuple, all_pairs))
    # items 0..4 are popular: their edges weigh less (1 / sqrt(d_u d_i)) and are kept less
    share_pop = np.mean(pairs[:, 1] < 5) / np.mean(all_pairs[:, 1] < 5)
    assert share_pop < 0.8
    again = pruned_pairs(train, 0.8, seed=3, epoch=1)
    np.testing.assert_array_equal(again.indices, kept.indices)
    assert not np.array_equal(pruned_pairs(train, 0.8, seed=3, epoch=2).indices, kept.indices)
    assert pruned_pairs(train, 0.0, seed=3, epoch=1) is train


def freedom_ref(E0, W, A, S, nu, X, cols, users, pos, neg, L_ui, L_ii, align):
    """Loss and exact gradients of pv_freedom.h's batch loss, float64, dense."""
    P = layer_mean(A, L_ui)
    Sp = np.linalg.matrix_power(S, L_ii)
    E = P @ E0
    h = Sp @ E0[nu:]
    eu = E[users]
    fi, fj = E[nu + pos] + h[pos], E[nu + neg] + h[neg]
    B = len(users)
    x = (eu * (fi - fj)).sum(1)
    loss = np.logaddexp(0, -x).mean()
    c = -1 / (1 + np.exp(x)) / B
    gE = np.zeros_like(E)
    np.add.at(gE, users, c[:, None] * (fi - fj))
    np.add.at(gE, nu + pos, c[:, None] * eu)
    np.add.at(gE, nu + neg, -c[:, None] * eu)
    gW = np.zeros_like(W)
    delta = X[pos] - X[neg]
    for q in range(len(cols) - 1):
        sl = slice(cols[q], cols[q + 1])
        Q = delta[:, sl] @ W[:, sl].T
        xa = (eu * Q).sum(1)
        loss += align * np.logaddexp(0, -xa).mean()
        ca = -align / (1 + np.exp(xa)) / B
        np.add.at(gE, users, ca[:, None] * Q)
        gW[:, sl] = (ca[:, None] * eu).T @ delta[:, sl]
    gE0 = P.T @ gE
    gE0[nu:] += Sp.T @ gE[nu:]
    return loss, gE0, gW


def batch_case(rng, nu=5, ni=7, d=3):
    R = rng.random((nu, ni)) < 0.4
    R[0, 0] = True
    train = UserItemCSR.from_pairs(*np.nonzero(R), nu, ni)
    ui = normalised_graph(train)
    X = rng.standard_normal((ni, 5)).astype(np.float32)
    cols = np.array([0, 2, 5], np.int64)
    ii = knn_graph(X, [slice(0, 2), slice(2, 5)], [0.3, 0.7], k=3, n_threads=1)
    E0 = (rng.standard_normal((nu + ni, d)) * 0.5).astype(np.float32)
    W = (rng.standard_normal((d, 5)) * 0.5).astype(np.float32)
    users = np.array([0, 1, 1, 4, 0], np.int64)
    pos = np.array([0, 2, 2, 6, 3], np.int64)
    neg = np.array([3, 2, 5, 0, 6], np.int64)
    return ui, ii, X, cols, E0, W, users, pos, neg


def c_batch(case, L_ui, L_ii, align, E0=None, W=None, n_threads=1):
    ui, ii, X, cols, E0_, W_, users, pos, neg = case
    return _core.freedom_batch((ui.indptr, ui.indices, ui.values), ii.as_tuple(),
                               transpose(ii).as_tuple(), E0_ if E0 is None else E0,
                               W_ if W is None else W, cols, X, ui.n_users, L_ui, L_ii, users,
                               pos, neg, align, n_threads=n_threads)


@pytest.mark.parametrize("L_ui,L_ii,align", [(0, 0, 0.0), (2, 1, 0.1), (1, 2, 1.0)])
def test_batch_matches_dense_float64_reference(rng, L_ui, L_ii, align):
    case = batch_case(rng)
    ui, ii, X, cols, E0, W, users, pos, neg = case
    nu, n = ui.n_users, E0.shape[0]
    ref = freedom_ref(E0.astype(np.float64), W.astype(np.float64), dense(ui, n),
                      dense(ii, n - nu), nu, X.astype(np.float64), cols, users, pos, neg, L_ui,
                      L_ii, align)
    got = c_batch(case, L_ui, L_ii, align)
    # float32: sums of <= max degree terms per layer, d- and F-term dot products
    scale = max(1.0, float(np.abs(E0).max()), float(np.abs(W).max()),
                float(np.abs(X).max())) ** 3
    tol = 64 * (L_ui + L_ii + 2) * EPS32 * scale
    assert got[0] == pytest.approx(ref[0], abs=tol)
    np.testing.assert_allclose(got[1], ref[1], rtol=0, atol=tol)
    np.testing.assert_allclose(got[2], ref[2], rtol=0, atol=tol)


def test_reference_gradient_matches_central_differences(rng):
    ui, ii, X, cols, E0, W, users, pos, neg = batch_case(rng)
    nu, n = ui.n_users, E0.shape[0]
    A, S = dense(ui, n), dense(ii, n - nu)
    args = (A, S, nu, X.astype(np.float64), cols, users, pos, neg, 2, 1, 0.3)
    E, Wd = E0.astype(np.float64), W.astype(np.float64)
    _, gE, gW = freedom_ref(E, Wd, *args)
    h = 1e-6
    for target, grad in ((E, gE), (Wd, gW)):
        fd = np.zeros_like(target)
        for idx in np.ndindex(*target.shape):
            keep = target[idx]
            target[idx] = keep + h
            lp = freedom_ref(E, Wd, *args)[0]
            target[idx] = keep - h
            lm = freedom_ref(E, Wd, *args)[0]
            target[idx] = keep
            fd[idx] = (lp - lm) / (2 * h)
        np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-9)


def test_c_gradient_matches_central_differences_of_the_c_loss(rng):
    case = batch_case(rng)
    E0, W = case[4], case[5]
    _, gE, gW = c_batch(case, 2, 1, 0.3)
    h = 1e-2
    for which, idx in (("E", (0, 0)), ("E", (7, 2)), ("W", (1, 3)), ("W", (2, 0))):
        base = E0 if which == "E" else W
        p, m = base.copy(), base.copy()
        p[idx] += h
        m[idx] -= h
        kw = (lambda a: {"E0": a}) if which == "E" else (lambda a: {"W": a})
        fd = (c_batch(case, 2, 1, 0.3, **kw(p))[0] - c_batch(case, 2, 1, 0.3, **kw(m))[0]) / (2 * h)
        grad = gE if which == "E" else gW
        assert grad[idx] == pytest.approx(fd, abs=2e-4)


def test_batch_is_bit_identical_across_thread_counts(rng):
    case = batch_case(rng)
    a = c_batch(case, 2, 1, 0.3, n_threads=1)
    b = c_batch(case, 2, 1, 0.3, n_threads=2)
    assert a[0] == b[0]
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[2], b[2])


# --------------------------------------------------------------------------- estimator

@pytest.fixture(scope="module")
def small():
    return datasets.make_multimodal(n_users=200, n_items=250, n_interactions=6_000, seed=4)


def quick(**kw):
    base = dict(dim=8, lr=1e-2, batch_size=256, max_epochs=6, eval_every=2, patience=100,
                dropout=0.5, align=1e-2, knn_k=5, progress=False, seed=5, n_threads=1)
    base.update(kw)
    return FREEDOM(**base)


def test_the_item_graph_helps_on_content_driven_data(small):
    model = quick(max_epochs=30, eval_every=5).fit(small)
    assert model.projections_.shape == (8, small.features.shape[1])
    rec = lambda m: m.evaluate(small, "test", ks=(20,), metrics=("recall",))["value"].iloc[0]  # noqa: E731
    lgcn = LightGCN(dim=8, lr=1e-2, batch_size=256, max_epochs=30, eval_every=5, patience=100,
                    progress=False, seed=5, n_threads=1).fit(small)
    # the planted data's items are described by their features: the item-item graph helps
    assert rec(model) > rec(lgcn)


def test_bad_input_to_the_kernel(rng):
    case = batch_case(rng)
    ui, ii, X, cols, E0, W, users, pos, neg = case
    with pytest.raises(ValueError, match=r"freedom_batch\(\): 'cols' must rise from 0 to"):
        _core.freedom_batch((ui.indptr, ui.indices, ui.values), ii.as_tuple(), ii.as_tuple(),
                            E0, W, np.array([0, 4], np.int64), X, 5, 1, 1, users, pos, neg, 0.1)
    with pytest.raises(TypeError, match=r"freedom_batch\(\): 'ii' must be a tuple"):
        _core.freedom_batch((ui.indptr, ui.indices, ui.values), ii.indptr, ii.as_tuple(),
                            E0, W, cols, X, 5, 1, 1, users, pos, neg, 0.1)
