"""LightGCN's kernels: the normalised graph, propagation, batch loss and gradient against
dense float64 references and finite differences, thread-count determinism, the epoch
kernel against its pieces, bad input.  The estimator: tests/test_baselines.py."""
import numpy as np
import pytest

from painvrl import _core
from painvrl.data import UserItemCSR
from painvrl.models.graph import normalised_graph, propagate
from _graph_ref import dense, layer_mean

EPS32 = float(np.finfo(np.float32).eps)


def random_train(rng, n_users, n_items, density=0.35):
    R = rng.random((n_users, n_items)) < density
    R[0, 0] = True
    R[:, -1] = False  # an item without users: no edge, its row stays E0 / (L + 1)
    u, i = np.nonzero(R)
    return UserItemCSR.from_pairs(u, i, n_users, n_items), R.astype(np.float64)


def dense_adjacency(R):
    nu, ni = R.shape
    A = np.zeros((nu + ni, nu + ni))
    A[:nu, nu:], A[nu:, :nu] = R, R.T
    deg = A.sum(1)
    inv = np.divide(1.0, np.sqrt(deg), out=np.zeros_like(deg), where=deg > 0)
    return inv[:, None] * A * inv[None, :]


def bpr_ref(E0, P, nu, users, pos, neg, reg):
    """Loss and exact gradient of the LightGCN batch loss (pv_lgcn.h), float64."""
    E = P @ E0
    eu, ei, ej = E[users], E[nu + pos], E[nu + neg]
    x = (eu * (ei - ej)).sum(1)
    B = len(users)
    rows = np.concatenate([users, nu + pos, nu + neg])
    loss = np.logaddexp(0.0, -x).mean() + reg / (2 * B) * (E0[rows] ** 2).sum()
    c = -1.0 / (1.0 + np.exp(x)) / B
    gE = np.zeros_like(E)
    np.add.at(gE, users, c[:, None] * (ei - ej))
    np.add.at(gE, nu + pos, c[:, None] * eu)
    np.add.at(gE, nu + neg, -c[:, None] * eu)
    g = P.T @ gE
    np.add.at(g, rows, reg / B * E0[rows])
    return loss, g


@pytest.fixture
def graph_case(rng):
    train, R = random_train(rng, 6, 8)
    return train, R, normalised_graph(train)


def test_graph_is_the_symmetric_normalisation(graph_case):
    train, R, g = graph_case
    ref = dense_adjacency(R)
    got = dense(g, g.n_users + g.n_items)
    np.testing.assert_allclose(got, ref, rtol=2 * EPS32, atol=0)
    np.testing.assert_array_equal(got, got.T)  # the backward pass relies on A^T = A
    for r in range(len(g.indptr) - 1):  # CSR rows are sorted
        assert np.all(np.diff(g.indices[g.indptr[r]:g.indptr[r + 1]]) > 0)


@pytest.mark.parametrize("L", [0, 1, 3])
def test_propagation_matches_dense_reference(graph_case, rng, L):
    train, R, g = graph_case
    E0 = rng.standard_normal((14, 5)).astype(np.float32)
    P = layer_mean(dense_adjacency(R), L)
    ref = P @ E0.astype(np.float64)
    got = propagate(g, E0, L, 1)
    # Each layer's row is a float32 sum of at most max_deg terms (|A| <= 1 row-wise in
    # the normalised graph), so the error grows like L * (max_deg + 1) * eps * max|E0|.
    max_deg = int(np.diff(g.indptr).max())
    tol = 2 * (L + 1) * (max_deg + 1) * EPS32 * np.abs(E0).max()
    np.testing.assert_allclose(got, ref, rtol=0, atol=tol)


def batch_case(rng, nu=6, ni=8):
    train, R = random_train(rng, nu, ni)
    g = normalised_graph(train)
    E0 = (rng.standard_normal((nu + ni, 4)) * 0.5).astype(np.float32)
    # repeated users and items, and a negative equal to the positive, exercise the scatter
    users = np.array([0, 1, 1, 5, 0], np.int64)
    pos = np.array([0, 2, 2, 7, 3], np.int64)
    neg = np.array([3, 2, 6, 0, 7], np.int64)
    return g, R, E0, users, pos, neg


def c_batch(g, E0, users, pos, neg, L, reg, n_threads=1):
    return _core.lgcn_batch(g.indptr, g.indices, g.values, E0, g.n_users, L, users, pos, neg,
                            reg, n_threads=n_threads)


@pytest.mark.parametrize("L,reg", [(0, 0.0), (2, 0.1), (3, 1e-4)])
def test_batch_loss_and_gradient_match_float64_reference(rng, L, reg):
    g, R, E0, users, pos, neg = batch_case(rng)
    P = layer_mean(dense_adjacency(R), L)
    loss_ref, grad_ref = bpr_ref(E0.astype(np.float64), P, g.n_users, users, pos, neg, reg)
    loss, grad = c_batch(g, E0, users, pos, neg, L, reg)
    # float32 scores (d = 4 products, L layers of <= max_deg terms) and float32 gradients
    scale = 1.0 + float(np.abs(E0).max()) ** 2
    tol = 64 * (L + 1) * EPS32 * scale
    assert loss == pytest.approx(loss_ref, rel=0, abs=tol)
    np.testing.assert_allclose(grad, grad_ref, rtol=0, atol=tol / len(users))


def test_reference_gradient_matches_central_differences(rng):
    """The float64 reference's gradient (which the C gradient matches above) is the
    derivative of its loss: central differences, h = 1e-6, error O(h^2)."""
    g, R, E0, users, pos, neg = batch_case(rng)
    P = layer_mean(dense_adjacency(R), 2)
    E = E0.astype(np.float64)
    _, grad = bpr_ref(E, P, g.n_users, users, pos, neg, 0.1)
    h = 1e-6
    fd = np.zeros_like(E)
    for idx in np.ndindex(*E.shape):
        Ep, Em = E.copy(), E.copy()
        Ep[idx] += h
        Em[idx] -= h
        fd[idx] = (bpr_ref(Ep, P, g.n_users, users, pos, neg, 0.1)[0] -
                   bpr_ref(Em, P, g.n_users, users, pos, neg, 0.1)[0]) / (2 * h)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-9)


def test_c_gradient_matches_central_differences_of_the_c_loss(rng):
    """Directly on the C kernel: float32 loss, so h is large and the tolerance is the
    rounding of the loss (~eps * |loss| / h) plus the O(h^2) term."""
    g, R, E0, users, pos, neg = batch_case(rng)
    _, grad = c_batch(g, E0, users, pos, neg, 2, 0.1)
    h = 1e-2
    for idx in [(0, 0), (1, 3), (g.n_users + 2, 1), (g.n_users + 7, 2)]:
        Ep, Em = E0.copy(), E0.copy()
        Ep[idx] += h
        Em[idx] -= h
        fd = (c_batch(g, Ep, users, pos, neg, 2, 0.1)[0] -
              c_batch(g, Em, users, pos, neg, 2, 0.1)[0]) / (2 * h)
        assert grad[idx] == pytest.approx(fd, abs=2e-4)


def test_batch_is_bit_identical_across_thread_counts(rng):
    g, R, E0, users, pos, neg = batch_case(rng)
    a = c_batch(g, E0, users, pos, neg, 3, 1e-3, n_threads=1)
    b = c_batch(g, E0, users, pos, neg, 3, 1e-3, n_threads=2)
    assert a[0] == b[0]
    np.testing.assert_array_equal(a[1], b[1])


def test_epoch_is_its_pieces(rng):
    """One epoch with one batch = Philox shuffle + the backbone's negatives + the batch
    gradient + one Adam step (torch.optim.Adam), recomputed here from its pieces."""
    train, R = random_train(rng, 6, 8)
    g = normalised_graph(train)
    E0 = (rng.standard_normal((14, 4)) * 0.1).astype(np.float32)
    pairs = train.to_pairs()
    n = len(pairs)
    seed, epoch, lr, reg, L = 7, 3, 1e-2, 1e-3, 2
    perm = _core.permutation(n, seed, 1, epoch)
    users, pos = pairs[perm, 0], pairs[perm, 1]
    neg = np.array([_core.epoch_negatives(8, 1, seed, epoch, p)[0] for p in range(n)])
    _, grad = c_batch(g, E0, users, pos, neg, L, reg)
    m = 0.1 * grad.astype(np.float64)
    v = 0.001 * grad.astype(np.float64) ** 2
    expected = E0 - lr / (1 - 0.9) * m / (np.sqrt(v / (1 - 0.999)) + 1e-8)
    E, m1, m2 = E0.copy(), np.zeros_like(E0), np.zeros_like(E0)
    loss, n_batches, step = _core.lgcn_epoch(g.indptr, g.indices, g.values, E, m1, m2, 6, L,
                                             pairs[:, 0].copy(), pairs[:, 1].copy(), lr, reg,
                                             n, seed, epoch, 0, n_threads=1)
    assert (n_batches, step) == (1, 1)
    assert loss == c_batch(g, E0, users, pos, neg, L, reg)[0]
    # Adam's first step moves each entry by lr * g / (|g| + eps'): float32 rounding only
    np.testing.assert_allclose(E, expected, rtol=0, atol=8 * EPS32 * (np.abs(E0).max() + lr))


def test_bad_input_to_the_kernels(rng):
    g, R, E0, users, pos, neg = batch_case(rng)
    with pytest.raises(IndexError, match=r"lgcn_batch\(\): 'neg' must lie in \[0, 8\)"):
        c_batch(g, E0, users, pos, neg + 8, 1, 0.0)
    bad = g.indices.copy()
    bad[0] = 99
    with pytest.raises(IndexError, match=r"propagate\(\): the graph must be a CSR matrix"):
        _core.propagate(g.indptr, bad, g.values, E0, 1)
    with pytest.raises(TypeError, match=r"propagate\(\): 'E0' must have dtype float32"):
        _core.propagate(g.indptr, g.indices, g.values, E0.astype(np.float64), 1)

