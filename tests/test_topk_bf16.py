"""topk(prefilter="bf16"): bfloat16 estimates, exact float32 rescoring (pv_topk_bf16.c).

The random shapes of test_topk.py run with the prefilter too.  The prefilter may only
skip items its error bound proves cannot reach the top k, so the
result must be the exact top-k of float32 scores: equal to the float64 ranking wherever
that ranking is unambiguous at float32 precision, whatever the blocks, the thread count
and the estimator (AMX or the portable loop).  The adversarial cases put many items
within bf16 resolution of each other (and of the k-th place), where a prefilter that
trusted its estimates would get the order wrong.
"""
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from painvrl import _core
from painvrl.evaluation.metrics import evaluate, topk
from painvrl.data import UserItemCSR
from test_topk import (check_against_reference, exact_topk, random_exclusion,
                       reference_scores, score_tolerance)

PREFILTERS = ["bf16", "bf16-avx512", "bf16-portable"]
BF16_U = 2.0 ** -8      # unit roundoff of bfloat16


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(1, "blas"):
        yield


def test_backend_is_reported():
    assert _core.topk_bf16_backend() in ("amx", "avx512bf16", "portable")


def near_ties(rng, n_users, n_items, dim, n_close, gap):
    """Per user, n_close items (random ids) with scores 1 + gap * rank (exactly, in real
    arithmetic, up to float32 rounding of the vectors): gaps far below bf16 resolution
    (BF16_U ~ 4e-3 relative) and far above float32's.  The other items score 0.9-0.99
    with comparable norms.  Returns U, V (float32)."""
    U = rng.standard_normal((n_users, dim))
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    V = rng.standard_normal((n_items, dim))
    V -= np.outer(V @ U[0], U[0])                 # orthogonal to user 0 ...
    V *= 0.1 / np.linalg.norm(V, axis=1, keepdims=True)
    target = rng.uniform(0.9, 0.99, n_items)
    close = rng.choice(n_items, n_close, replace=False)
    target[close] = 1.0 + gap * rng.permutation(n_close)
    V += np.outer(target, U[0])                   # ... plus the target score along U[0]
    # the other users: near copies of user 0 (score shifts << gap), same near-ties
    U[1:] = U[0] + 1e-6 * rng.standard_normal((n_users - 1, dim))
    return U.astype(np.float32), V.astype(np.float32)


@pytest.mark.parametrize("prefilter", PREFILTERS)
@pytest.mark.parametrize("dim,gap", [(128, 1e-4), (64, 1e-4), (200, 2e-4), (7, 1e-4)])
def test_adversarial_near_ties_ranked_exactly(prefilter, dim, gap):
    rng = np.random.default_rng(dim)
    n_users, n_items, k = 40, 3000, 10
    U, V = near_ties(rng, n_users, n_items, dim, n_close=300, gap=gap)
    S = reference_scores(U, V)
    T = score_tolerance(U, V)
    ref_ids, _ = exact_topk(S, k + 1)
    # The reference is unambiguous at float32 precision: consecutive top-(k + 1) scores
    # are further apart than both their float32 error bounds (so this test can fail).
    rows = np.arange(n_users)[:, None]
    top = S[rows, ref_ids]
    assert np.all(-np.diff(top, axis=1) > T[rows, ref_ids][:, 1:] + T[rows, ref_ids][:, :-1])
    # ... and far inside bf16 resolution: dozens of items within it of the k-th place.
    within = (S >= top[:, [k - 1]] - 2 * BF16_U * np.abs(top[:, [k - 1]])).sum(axis=1)
    assert within.min() >= 30
    ids, scores = topk(U, V, k, prefilter=prefilter)
    np.testing.assert_array_equal(ids, ref_ids[:, :k])
    ids_f32, _ = topk(U, V, k)   # the sgemm path agrees where ties are unambiguous
    np.testing.assert_array_equal(ids, ids_f32)
    assert np.all(np.abs(scores - S[rows, ids]) <= T[rows, ids])


@pytest.mark.parametrize("prefilter", PREFILTERS)
@pytest.mark.parametrize("dim", [128, 33])
def test_items_that_bf16_cannot_tell_apart(prefilter, dim):
    # Items c_j * (1, ..., 1) with 60 distinct c_j in [1 + 2^-9, 1 + 2^-8): bf16 rounds every
    # one of them to (1, ..., 1), so all their estimates are equal and below their exact
    # scores; the exact scores step by dim * 2^-15, far above float32 rounding.  A filter
    # trusting the estimates keeps the first k ids it meets and skips the rest.
    rng = np.random.default_rng(dim)
    n_items, k = 700, 10
    c = rng.uniform(0.5, 0.99, n_items)
    close = rng.choice(n_items, 60, replace=False)
    c[close] = 1 + 2.0 ** -9 + 2.0 ** -15 * rng.permutation(60)
    V = (c[:, None] * np.ones(dim)).astype(np.float32)
    U = (2.0 ** np.arange(-3, 4))[:, None] * np.ones((7, dim), np.float32)
    ids, scores = topk(U, V, k, prefilter=prefilter)
    ref_ids, _ = exact_topk(reference_scores(U, V), k)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_array_equal(ids, topk(U, V, k)[0])


@pytest.mark.parametrize("prefilter", PREFILTERS)
@pytest.mark.parametrize("mode", ["none", "-inf", "1e-5"])
def test_exact_ties_lower_id_first(prefilter, mode):
    # Quarter-integers: exact in bf16 and float32, so estimates equal the exact scores and
    # there are many exact ties (the bound must not drop an item that only ties thr).
    rng = np.random.default_rng(1)
    n_users, n_items, k = 9, 300, 25
    U = (rng.integers(-3, 4, (n_users, 40)) / 4).astype(np.float32)
    V = (rng.integers(-3, 4, (n_items, 40)) / 4).astype(np.float32)
    V[100:200] = V[0]     # identical vectors: identical scores, ids must ascend
    exclude = None if mode == "none" else random_exclusion(rng, n_users, n_items, 0.4)
    mask = 1e-5 if mode == "1e-5" else -np.inf
    for uc, it in [(1, 1), (5, 40), (None, None)]:
        ids, scores = topk(U, V, k, exclude=exclude, mask_value=mask, user_chunk=uc,
                           item_tile=it, prefilter=prefilter)
        ref_ids, ref_scores = exact_topk(reference_scores(U, V, exclude, mask), k)
        np.testing.assert_array_equal(ids, ref_ids)
        np.testing.assert_array_equal(scores, ref_scores.astype(np.float32))


@pytest.mark.parametrize("scale", [1e-39, 1e-20, 1e18, 1e37])
def test_tiny_and_huge_magnitudes(scale):
    # Subnormal entries (flushed to zero by AMX, covered by the bound's absolute term)
    # and entries near the float32 limit (>= 2^126: every item rescored).
    rng = np.random.default_rng(3)
    U = rng.standard_normal((6, 48)).astype(np.float32)
    V = (rng.standard_normal((500, 48)) * scale).astype(np.float32)
    if scale > 1e30:
        U *= np.float32(1e-37)
    S = reference_scores(U, V)
    T = score_tolerance(U, V)
    for prefilter in PREFILTERS:
        ids, scores = topk(U, V, 7, prefilter=prefilter)
        check_against_reference(ids, scores, S, 7, T)


@pytest.mark.parametrize("prefilter", PREFILTERS)
def test_user_entries_beyond_bf16_range(prefilter):
    # 3.4e38 rounds to inf in bf16 (max 3.39e38): that user's items are all rescored, and
    # an overflowed estimate must not pass for an excluded item.
    rng = np.random.default_rng(7)
    U = rng.standard_normal((4, 20)).astype(np.float32)
    U[1, 0] = 3.4e38
    U[1, 1:] = 0
    V = (0.01 * rng.standard_normal((300, 20))).astype(np.float32)
    exclude = random_exclusion(rng, 4, 300, 0.1)
    ids, scores = topk(U, V, 6, exclude=exclude, prefilter=prefilter)
    S = reference_scores(U, V, exclude)
    check_against_reference(ids, scores, S, 6, score_tolerance(U, V, exclude))


def test_identical_for_any_blocks_threads_and_estimator():
    rng = np.random.default_rng(4)
    U = rng.standard_normal((301, 96)).astype(np.float32)
    V = rng.standard_normal((2500, 96)).astype(np.float32)
    exclude = random_exclusion(rng, 301, 2500, 0.02)
    ref = topk(U, V, 12, exclude=exclude, prefilter="bf16", n_threads=1)
    for prefilter, uc, it, nt in [("bf16", None, None, 2), ("bf16", 7, 33, 3),
                                  ("bf16-portable", 64, 1000, 2), ("bf16-avx512", 5, 64, 2),
                                  ("bf16", 1, 1, 1)]:
        got = topk(U, V, 12, exclude=exclude, prefilter=prefilter, user_chunk=uc,
                   item_tile=it, n_threads=nt)
        np.testing.assert_array_equal(got[0], ref[0])
        np.testing.assert_array_equal(got[1], ref[1])


def test_evaluate_takes_the_prefilter():
    rng = np.random.default_rng(5)
    U = rng.standard_normal((50, 16)).astype(np.float32)
    V = rng.standard_normal((400, 16)).astype(np.float32)
    pairs = rng.integers(0, [50, 400], (900, 2))
    train = UserItemCSR.from_pairs(pairs[:600, 0], pairs[:600, 1], 50, 400)
    test = UserItemCSR.from_pairs(pairs[600:, 0], pairs[600:, 1], 50, 400)
    a = evaluate(U, V, test, exclude=train, prefilter="bf16")
    b = evaluate(U, V, test, exclude=train)
    np.testing.assert_allclose(a["value"], b["value"])


def test_bad_prefilter():
    U = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"topk.*prefilter.*'bf16'"):
        topk(U, U, 1, prefilter="fp8")
    with pytest.raises(TypeError, match=r"topk: prefilter must be None or a str"):
        topk(U, U, 1, prefilter=16)
    with pytest.raises(ValueError, match=r"evaluate.*prefilter"):
        evaluate(U, U, UserItemCSR.from_pairs([0], [0], 2, 2), ks=1, prefilter="BF16")
    with pytest.raises(ValueError, match=r"topk\(\): 'prefilter' must be None, 'bf16', "):
        _core.topk(U, U, 1, prefilter="int8")
    with pytest.raises(ValueError, match=r"NaN or inf"):
        topk(U, np.full((2, 3), np.inf, np.float32), 1, prefilter="bf16")


def test_memory_budget_counts_the_bf16_item_copy():
    rng = np.random.default_rng(6)
    U = rng.standard_normal((10, 64)).astype(np.float32)
    V = rng.standard_normal((5000, 64)).astype(np.float32)     # bf16 copy: 640,000 bytes
    with pytest.raises(ValueError, match=r"topk: memory_budget=600000 bytes cannot hold the "
                                         r"buffers of prefilter='bf16'"):
        topk(U, V, 5, prefilter="bf16", memory_budget=600_000)
    ids, _ = topk(U, V, 5, prefilter="bf16", memory_budget=2_000_000, n_threads=2)
    np.testing.assert_array_equal(ids, topk(U, V, 5, prefilter="bf16")[0])
    pairs = rng.integers(0, [10, 5000], (30, 2))
    test = UserItemCSR.from_pairs(pairs[:, 0], pairs[:, 1], 10, 5000)
    with pytest.raises(ValueError, match=r"evaluate: memory_budget"):
        evaluate(U, V, test, prefilter="bf16", memory_budget=600_000)
