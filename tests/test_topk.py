"""painvrl.metrics.topk / _core.topk against a float64 NumPy reference."""
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from painvrl import _core
from painvrl.data import UserItemCSR
from painvrl.evaluation.metrics import plan_blocks, topk


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(1, "blas"):
        yield


def random_exclusion(rng, n_users, n_items, density):
    mask = rng.random((n_users, n_items)) < density
    u, i = np.nonzero(mask)
    return UserItemCSR.from_pairs(u, i, n_users, n_items)


def reference_scores(U, V, exclude=None, mask_value=-np.inf):
    """float64 scores with excluded entries replaced (mask in float32, as the kernel)."""
    S = np.asarray(U, np.float64) @ np.asarray(V, np.float64).T
    if exclude is not None:
        pairs = exclude.to_pairs()
        S[pairs[:, 0], pairs[:, 1]] = np.float64(np.float32(mask_value))
    return S


EPS32 = float(np.finfo(np.float32).eps)


def score_tolerance(U, V, exclude=None):
    """Per-entry bound on |kernel score - exact score| for float32 U, V (n_users, n_items).

    A float32 dot product of length dim, in any order or blocking (sgemm), is within
    dim * u * sum_k |U_uk V_ik| of the exact value (u = EPS32 / 2, Higham ch. 3); we allow
    dim * EPS32 * sum_k |U_uk V_ik|, twice that, which also covers the float64 reference's
    own error (dim * eps64 * the same sum).  Excluded entries are the float32 mask value
    itself in both: 0."""
    T = U.shape[1] * EPS32 * (np.abs(np.asarray(U, np.float64))
                              @ np.abs(np.asarray(V, np.float64)).T)
    if exclude is not None:
        pairs = exclude.to_pairs()
        T[pairs[:, 0], pairs[:, 1]] = 0.0
    return T


def exact_topk(S, k):
    """Exact reference: descending score, ties by ascending id, -inf never returned."""
    n_users, n_items = S.shape
    ids = np.full((n_users, k), -1, np.int64)
    scores = np.full((n_users, k), -np.inf)
    for u in range(n_users):
        order = np.lexsort((np.arange(n_items), -S[u]))
        order = order[np.isfinite(S[u, order])][:k]
        ids[u, :order.size] = order
        scores[u, :order.size] = S[u, order]
    return ids, scores


def check_against_reference(ids, scores, S, k, T):
    """Tie-aware comparison with float64 scores S (same masking as the kernel), T the
    per-entry bound on the kernel's score error (score_tolerance): items whose scores are
    within their bounds of each other may come in either order."""
    n_users, n_items = S.shape
    assert ids.shape == scores.shape == (n_users, k)
    assert ids.dtype == np.int64 and scores.dtype == np.float32
    for u in range(n_users):
        cand = np.flatnonzero(np.isfinite(S[u]))
        m = min(k, cand.size)
        got, got_s = ids[u, :m], scores[u, :m].astype(np.float64)
        # padding: exactly the slots that have no candidate
        assert np.all(ids[u, m:] == -1) and np.all(scores[u, m:] == -np.inf)
        assert np.all(got >= 0) and np.unique(got).size == m
        assert np.all(np.isfinite(S[u, got])), "an excluded (-inf) item was returned"
        # each returned score is the item's score; rows are sorted best first (so the order
        # of the true scores S[u, got] is right up to T[u, got[i]] + T[u, got[j]])
        assert np.all(np.abs(got_s - S[u, got]) <= T[u, got])
        assert np.all(np.diff(got_s) <= 0)
        # the multiset of returned scores is the true top-m: the j-th largest of values
        # each moved by at most max T moves by at most max T
        best = np.sort(S[u, cand])[::-1][:m]
        assert np.all(np.abs(got_s - best) <= T[u, cand].max(initial=0.0))
        # nothing left out beats the worst returned item (beyond rounding)
        rest = np.setdiff1d(cand, got)
        if rest.size and m:
            assert (S[u, rest] - T[u, rest]).max() <= (S[u, got] + T[u, got]).min()
        # equal float32 scores come by ascending id
        same = got_s[1:] == got_s[:-1]
        assert np.all(got[1:][same] > got[:-1][same])


SHAPES = [
    # n_users, n_items, dim, k, user_chunk, item_tile
    (1, 1, 1, 1, None, None),
    (7, 50, 5, 3, 3, 11),        # chunk and tile divide nothing
    (33, 257, 16, 10, 8, 64),
    (33, 257, 16, 10, 1000, 1000),  # blocks larger than the data
    (20, 130, 8, 130, 6, 17),    # k == n_items
    (64, 300, 32, 65, 64, 300),  # k > scan block, single tile
]


@pytest.mark.parametrize("prefilter", [None, "bf16", "bf16-avx512", "bf16-portable"])
@pytest.mark.parametrize("n_users,n_items,dim,k,uc,it", SHAPES)
@pytest.mark.parametrize("mode", ["none", "-inf", "1e-5"])
def test_matches_float64_reference(n_users, n_items, dim, k, uc, it, mode, prefilter):
    rng = np.random.default_rng(n_users * 1000 + n_items + dim)
    U = rng.standard_normal((n_users, dim)).astype(np.float32)
    V = rng.standard_normal((n_items, dim)).astype(np.float32)
    exclude, mask = None, -np.inf
    if mode != "none":
        exclude = random_exclusion(rng, n_users, n_items, 0.3)
        mask = -np.inf if mode == "-inf" else 1e-5
    ids, scores = topk(U, V, k, exclude=exclude, mask_value=mask, user_chunk=uc, item_tile=it,
                       prefilter=prefilter)
    S = reference_scores(U, V, exclude, mask)
    check_against_reference(ids, scores, S, k, score_tolerance(U, V, exclude))


@pytest.mark.parametrize("uc,it", [(1, 1), (2, 3), (5, 7), (64, 1024)])
@pytest.mark.parametrize("mode", ["none", "-inf", "1e-5"])
def test_exact_ties_lower_id_first(uc, it, mode):
    # Small integers: float32 dot products are exact, so the reference is exact and
    # there are many exact ties (scores in -12..12 over 90 items).
    rng = np.random.default_rng(1)
    n_users, n_items, k = 9, 90, 25
    U = rng.integers(-2, 3, (n_users, 3)).astype(np.float32)
    V = rng.integers(-2, 3, (n_items, 3)).astype(np.float32)
    exclude = None if mode == "none" else random_exclusion(rng, n_users, n_items, 0.4)
    mask = 1e-5 if mode == "1e-5" else -np.inf
    ids, scores = topk(U, V, k, exclude=exclude, mask_value=mask, user_chunk=uc, item_tile=it)
    ref_ids, ref_scores = exact_topk(reference_scores(U, V, exclude, mask), k)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_array_equal(scores, ref_scores.astype(np.float32))


def test_padding_when_fewer_candidates_than_k():
    rng = np.random.default_rng(2)
    U = rng.standard_normal((3, 4)).astype(np.float32)
    V = rng.standard_normal((6, 4)).astype(np.float32)
    # user 0 keeps 2 items, user 1 keeps none, user 2 keeps all 6
    exclude = UserItemCSR.from_pairs([0, 0, 0, 0] + [1] * 6, [0, 2, 3, 5] + list(range(6)), 3, 6)
    ids, scores = topk(U, V, 4, exclude=exclude, item_tile=4)
    assert sorted(ids[0, :2]) == [1, 4] and np.all(ids[0, 2:] == -1)
    assert np.all(scores[0, 2:] == -np.inf) and np.all(np.isfinite(scores[0, :2]))
    np.testing.assert_array_equal(ids[1], [-1, -1, -1, -1])
    assert np.all(scores[1] == -np.inf)
    # the order of the kept items against float64, ties within rounding either way
    check_against_reference(ids, scores, reference_scores(U, V, exclude), 4,
                            score_tolerance(U, V, exclude))


def test_finite_mask_lets_excluded_items_rank():
    # All true scores are negative: items masked with 1e-5 outrank every other item
    # (the InvRL reference behaviour); with -inf they are never returned.
    U = np.array([[1.0, 1.0]], np.float32)
    V = -np.array([[1, 0], [2, 0], [3, 0], [4, 0], [5, 0]], np.float32)  # scores -1..-5
    exclude = UserItemCSR.from_pairs([0, 0], [3, 1], 1, 5)
    ids, scores = topk(U, V, 3, exclude=exclude, mask_value=1e-5)
    np.testing.assert_array_equal(ids, [[1, 3, 0]])   # 1e-5 tie: lower id first, then -1
    np.testing.assert_array_equal(scores, np.array([[1e-5, 1e-5, -1]], np.float32))
    ids, scores = topk(U, V, 3, exclude=exclude)
    np.testing.assert_array_equal(ids, [[0, 2, 4]])
    np.testing.assert_array_equal(scores, [[-1, -3, -5]])


def test_k_equals_n_items_is_a_full_sort():
    rng = np.random.default_rng(3)
    U = rng.standard_normal((4, 6)).astype(np.float32)
    V = rng.standard_normal((40, 6)).astype(np.float32)
    ids, scores = topk(U, V, 40, item_tile=9)
    for u in range(4):
        assert sorted(ids[u]) == list(range(40))
    # NumPy's own sgemv (another BLAS build, another kernel) may round V @ U[u] 1 ulp away
    # from our sgemm: compare with float64 within the derived bound instead, and the order
    # tie-aware (scores within their bounds may come either way)
    check_against_reference(ids, scores, reference_scores(U, V), 40, score_tolerance(U, V))


def test_thread_count_does_not_change_a_bit():
    rng = np.random.default_rng(4)
    U = rng.standard_normal((301, 24)).astype(np.float32)
    V = rng.standard_normal((1003, 24)).astype(np.float32)
    exclude = random_exclusion(rng, 301, 1003, 0.05)
    one = topk(U, V, 17, exclude=exclude, user_chunk=37, item_tile=129, n_threads=1)
    two = topk(U, V, 17, exclude=exclude, user_chunk=37, item_tile=129, n_threads=2)
    np.testing.assert_array_equal(one[0], two[0])
    assert one[1].tobytes() == two[1].tobytes()


@pytest.mark.parametrize("n_users", [1, 3, 65, 301])
def test_default_blocks_bit_identical_across_thread_counts(n_users):
    # Few users: the chunking rule must not depend on the thread count (OpenBLAS
    # takes other code paths, with other rounding, for sgemm with m < 4).
    rng = np.random.default_rng(8)
    U = rng.standard_normal((n_users, 40)).astype(np.float32)
    V = rng.standard_normal((777, 40)).astype(np.float32)
    one = topk(U, V, 9, n_threads=1)
    two = topk(U, V, 9, n_threads=2)
    np.testing.assert_array_equal(one[0], two[0])
    assert one[1].tobytes() == two[1].tobytes()


def test_friendly_inputs_are_converted_and_left_unchanged():
    rng = np.random.default_rng(5)
    U64 = rng.standard_normal((10, 7))
    V64 = np.asfortranarray(rng.standard_normal((30, 7)))
    U_copy, V_copy = U64.copy(), V64.copy()
    ids, scores = topk(U64[:, :], V64, 5)
    ref = topk(U64.astype(np.float32), np.ascontiguousarray(V64, np.float32), 5)
    np.testing.assert_array_equal(ids, ref[0])    # the same float32 input: the same bits
    np.testing.assert_array_equal(scores, ref[1])
    np.testing.assert_array_equal(U64, U_copy)
    np.testing.assert_array_equal(V64, V_copy)
    # strided (every other row) and integer lists work too; half the users make an sgemm of
    # another shape, so its ranking is compared tie-aware, not bit for bit
    U32, V32 = U64[::2].astype(np.float32), V64.astype(np.float32)
    ids2, scores2 = topk(U64[::2], V64, 5)
    check_against_reference(ids2, scores2, reference_scores(U32, V32), 5,
                            score_tolerance(U32, V32))
    ids3, _ = topk([[1, 0]], [[0, 1], [2, 0], [1, 0]], 2)
    np.testing.assert_array_equal(ids3, [[1, 2]])


def test_no_users_gives_empty_outputs():
    ids, scores = topk(np.zeros((0, 3), np.float32), np.ones((5, 3), np.float32), 2)
    assert ids.shape == (0, 2) and scores.shape == (0, 2)


def test_plan_blocks_and_memory_budget(monkeypatch):
    monkeypatch.setattr(_core, "DEFAULT_THREADS", 2)
    # clamped to the data: item_tile <= n_items, user_chunk <= max(64, ceil(n_users / 16))
    assert plan_blocks(100, 50) == (64, 50, 0, 2 * 64 * 208)
    assert plan_blocks(10, 50) == (10, 50, 0, 10 * 208)   # one chunk: one thread
    assert plan_blocks(10, 50, user_chunk=4) == (4, 50, 0, 2 * 4 * 208)
    assert plan_blocks(5000, 50, n_threads=1) == (313, 50, 1, 313 * 208)
    assert plan_blocks(10, 50, n_threads=2) == (10, 50, 2, 10 * 208)   # one chunk: one tile
    # budget 40,000 bytes, rows of 4 * 1000 + 8 bytes -> 9 rows -> 4 per default thread;
    # the chunk does not depend on n_threads, only the thread count does
    assert plan_blocks(10_000, 10_000, item_tile=1000, memory_budget=40_000) == \
        (4, 1000, 2, 2 * 4 * 4008)
    assert plan_blocks(10_000, 10_000, item_tile=1000, memory_budget=40_000, n_threads=1) == \
        (4, 1000, 1, 4 * 4008)
    assert plan_blocks(10_000, 10_000, item_tile=1000, memory_budget=40_000, n_threads=4) == \
        (4, 1000, 2, 2 * 4 * 4008)
    assert plan_blocks(10_000, 10_000, user_chunk=3, item_tile=1000, memory_budget=40_000,
                       n_threads=2) == (3, 1000, 2, 2 * 3 * 4008)
    # room for one row only: one thread
    assert plan_blocks(10_000, 10_000, item_tile=1000, memory_budget=4008) == \
        (1, 1000, 1, 4008)
    with pytest.raises(ValueError, match="memory_budget=4007 bytes cannot hold one row"):
        plan_blocks(10, 10_000, item_tile=1000, memory_budget=4007)
    rng = np.random.default_rng(6)
    U = rng.standard_normal((20, 4)).astype(np.float32)
    V = rng.standard_normal((100, 4)).astype(np.float32)
    small = topk(U, V, 5, item_tile=10, memory_budget=3 * 48, n_threads=2)   # 3 rows in all
    big = topk(U, V, 5)
    # other block shapes are other sgemm calls, which BLAS may round differently: both
    # rankings are right against float64 (tie-aware, within the derived score bound)
    for ids, scores in (small, big):
        check_against_reference(ids, scores, reference_scores(U, V), 5, score_tolerance(U, V))
    with pytest.raises(ValueError, match="memory_budget"):
        topk(U, V, 5, item_tile=10, memory_budget=47)


# ----------------------------------------------------------------------- bad input

U0 = np.ones((3, 4), np.float32)
V0 = np.ones((6, 4), np.float32)


@pytest.mark.parametrize("k", [0, -1, 7])
def test_k_out_of_range(k):
    with pytest.raises(ValueError, match=r"k must be in \[1, n_items = 6\]"):
        topk(U0, V0, k)
    with pytest.raises(ValueError, match=r"topk\(\): 'k' must be in \[1, n_items\]"):
        _core.topk(U0, V0, k)


def test_bad_python_inputs():
    with pytest.raises(TypeError, match="k must be an integer"):
        topk(U0, V0, 2.0)
    with pytest.raises(ValueError, match="same number of columns"):
        topk(U0, np.ones((6, 5)), 2)
    with pytest.raises(ValueError, match="user_vecs must be 2-dimensional"):
        topk(np.ones(4), V0, 2)
    with pytest.raises(TypeError, match="item_vecs must hold real numbers"):
        topk(U0, V0.astype(complex), 2)
    bad = U0.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="user_vecs contains NaN or inf"):
        topk(bad, V0, 2)
    bad = V0.astype(np.float64)
    bad[0, 0] = 1e300   # finite in float64, inf in float32
    with pytest.raises(ValueError, match="item_vecs contains NaN or inf after conversion"):
        topk(U0, bad, 2)
    with pytest.raises(ValueError, match="mask_value must be finite or -inf"):
        topk(U0, V0, 2, mask_value=np.inf)
    with pytest.raises(ValueError, match="mask_value must be finite or -inf"):
        topk(U0, V0, 2, mask_value=np.nan)
    with pytest.raises(ValueError, match="n_threads must be >= 1"):
        topk(U0, V0, 2, n_threads=0)
    with pytest.raises(ValueError, match="user_chunk must be >= 1"):
        topk(U0, V0, 2, user_chunk=0)
    with pytest.raises(TypeError, match="exclude must be a painvrl UserItemCSR"):
        topk(U0, V0, 2, exclude=[[0]])
    with pytest.raises(ValueError, match="exclude has 2 users but user_vecs has 3 rows"):
        topk(U0, V0, 2, exclude=UserItemCSR.from_pairs([0], [0], 2, 6))
    with pytest.raises(ValueError, match="exclude has 7 items but item_vecs has 6 rows"):
        topk(U0, V0, 2, exclude=UserItemCSR.from_pairs([0], [0], 3, 7))
    with pytest.raises(ValueError, match="item_vecs must have at least one row"):
        topk(U0, np.ones((0, 4)), 1)


def test_bad_binding_inputs():
    ptr = np.array([0, 1, 1, 2], np.int64)
    with pytest.raises(TypeError, match="'user_vecs' must have dtype float32, got float64"):
        _core.topk(U0.astype(np.float64), V0, 2)
    with pytest.raises(ValueError, match="'item_vecs' has length 5 on axis 1, expected 4"):
        _core.topk(U0, np.ones((6, 5), np.float32), 2)
    with pytest.raises(ValueError, match="both 'exclude_indptr' and 'exclude_indices'"):
        _core.topk(U0, V0, 2, ptr)
    with pytest.raises(IndexError, match="'exclude_indices' holds item id 6 in row 2"):
        _core.topk(U0, V0, 2, ptr, np.array([0, 6], np.int64))
    with pytest.raises(IndexError, match="holds item id -1"):
        _core.topk(U0, V0, 2, ptr, np.array([-1, 0], np.int64))
    with pytest.raises(ValueError, match="row 0 of 'exclude_indices' must be sorted"):
        _core.topk(U0, V0, 2, np.array([0, 2, 2, 2], np.int64), np.array([3, 1], np.int64))
    with pytest.raises(ValueError, match="'exclude_indptr' must start at 0 and end at len"):
        _core.topk(U0, V0, 2, ptr, np.array([0], np.int64))
    with pytest.raises(ValueError, match="'exclude_indptr' decreases at row 1"):
        _core.topk(U0, V0, 2, np.array([0, 2, 1, 2], np.int64), np.array([0, 1], np.int64))
    with pytest.raises(ValueError, match="'exclude_indptr' has length 3 on axis 0"):
        _core.topk(U0, V0, 2, ptr[:3], np.array([0], np.int64))
    with pytest.raises(ValueError, match="'mask_value' must be finite or -inf, got nan"):
        _core.topk(U0, V0, 2, mask_value=float("nan"))
    with pytest.raises(ValueError, match="'user_chunk' and 'item_tile' must be >= 1"):
        _core.topk(U0, V0, 2, item_tile=0)
    with pytest.raises(ValueError, match="'n_threads' must be >= 0"):
        _core.topk(U0, V0, 2, n_threads=-1)
    with pytest.raises(TypeError):
        _core.topk(U0, V0, 2, None, None, -1.0)   # mask_value is keyword-only
    nan = U0.copy()
    nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="holds NaN or inf"):
        _core.topk(nan, V0, 2)
    huge = np.full((3, 4), 1e19, np.float32)   # finite, but scores overflow float32
    with pytest.raises(ValueError, match="could overflow float32"):
        _core.topk(huge, huge, 2)


def test_no_reference_leaks():
    import sys
    rng = np.random.default_rng(9)
    U = rng.standard_normal((6, 4)).astype(np.float32)
    V = rng.standard_normal((9, 4)).astype(np.float32)
    ptr = np.array([0, 1, 1, 2, 2, 2, 2], np.int64)
    idx = np.array([3, 8], np.int64)
    bad_idx = np.array([3, 9], np.int64)
    before = [sys.getrefcount(a) for a in (U, V, ptr, idx, bad_idx)]
    for _ in range(20):
        _core.topk(U, V, 3, ptr, idx)
        with pytest.raises(IndexError):
            _core.topk(U, V, 3, ptr, bad_idx)
        ids, _ = _core.topk(U, V, 3)
        _core.ranking_metrics(ids, ptr, idx, np.array([1, 3]), 9)
        with pytest.raises(IndexError):
            _core.ranking_metrics(ids, ptr, bad_idx, np.array([1, 3]), 9)
    assert [sys.getrefcount(a) for a in (U, V, ptr, idx, bad_idx)] == before
