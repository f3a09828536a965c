"""Ranking metrics against hand-computed cases and a slow Python reference."""
import math

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from painvrl import _core
from painvrl.data import UserItemCSR
from painvrl.evaluation.metrics import METRICS, evaluate, ranking_metrics, topk


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(1, "blas"):
        yield


L3 = 1 / math.log2(3)   # 0.6309297535714575, discount of rank 1
L4 = 1 / math.log2(4)   # 0.5, rank 2
L5 = 1 / math.log2(5)   # 0.43067655807339306, rank 3
L6 = 1 / math.log2(6)   # 0.38685280723454163, rank 4

# Five users, 10 items, top-5 lists (kmax = 5), ks = (1, 3, 5).
TOPK = np.array([
    [3, 0, 7, 9, 1],       # u0: test {1, 3, 7}: hits at ranks 0, 2, 4
    [0, 1, 2, 3, 4],       # u1: no test items -> NaN, dropped from means
    [0, 1, 2, 3, 4],       # u2: test {4}: hit at rank 4 only (K=5 > |T|=1)
    [5, 2, -1, -1, -1],    # u3: test {2, 5}: hits at ranks 0, 1, then padding
    [9, 0, 8, 7, 6],       # u4: test {0..5}: hit at rank 1 only
], np.int64)
TEST = UserItemCSR.from_pairs(
    [0, 0, 0, 2, 3, 3] + [4] * 6, [1, 3, 7, 4, 2, 5] + list(range(6)), n_users=5, n_items=10)

# Expected per user, per K (1, 3, 5), written by hand:
# (precision, recall, ndcg standard, ndcg invrl, hit_rate, map)
EXPECTED = {
    0: {
        # K=1: 1 hit. DCG = 1; IDCG std over min(3,1)=1 -> 1; invrl over min(1,1)=1 -> 1;
        #      MAP = (1/min(3,1)) * P@1 = 1
        1: (1, 1 / 3, 1, 1, 1, 1),
        # K=3: hits at r=0, 2. DCG = 1 + 1/log2(4) = 1.5;
        #      IDCG std over 3 = 1 + L3 + 0.5 = 2.1309; invrl over 2 = 1 + L3 = 1.6309;
        #      MAP = (1/3) * (1/1 + 2/3) = 5/9
        3: (2 / 3, 2 / 3, 1.5 / (1 + L3 + L4), 1.5 / (1 + L3), 1, 5 / 9),
        # K=5: hits at r=0, 2, 4. DCG = 1.5 + L6; IDCG std = invrl = over 3 positions;
        #      MAP = (1/3) * (1 + 2/3 + 3/5)
        5: (3 / 5, 1, (1.5 + L6) / (1 + L3 + L4), (1.5 + L6) / (1 + L3 + L4), 1,
            (1 + 2 / 3 + 3 / 5) / 3),
    },
    2: {
        1: (0, 0, 0, 0, 0, 0),
        3: (0, 0, 0, 0, 0, 0),
        # K=5 > |T| = 1: hit at r=4. DCG = L6; IDCG std over min(1,5)=1 -> 1;
        #      invrl over 1 -> 1; MAP = (1/1) * (1/5)
        5: (1 / 5, 1, L6, L6, 1, 1 / 5),
    },
    3: {
        # K=1: hit at r=0; IDCG std over min(2,1)=1; MAP = (1/1) * 1
        1: (1, 1 / 2, 1, 1, 1, 1),
        # K=3: hits at r=0, 1; DCG = 1 + L3 = IDCG over min(2,3)=2 -> 1; MAP = (1/2)(1 + 1)
        3: (2 / 3, 1, 1, 1, 1, 1),
        # K=5: same hits; padding (-1) never hits
        5: (2 / 5, 1, 1, 1, 1, 1),
    },
    4: {
        1: (0, 0, 0, 0, 0, 0),
        # K=3: hit at r=1. DCG = L3; IDCG std over min(6,3)=3 = 1 + L3 + L4;
        #      invrl over 1 -> 1 (so invrl NDCG = L3, much larger); MAP = (1/3) * (1/2)
        3: (1 / 3, 1 / 6, L3 / (1 + L3 + L4), L3, 1, 1 / 6),
        # K=5: IDCG std over 5 = 1 + L3 + L4 + L5 + L6; MAP = (1/5) * (1/2)
        5: (1 / 5, 1 / 6, L3 / (1 + L3 + L4 + L5 + L6), L3, 1, 1 / 10),
    },
}
COLS = ("precision", "recall", "ndcg", "ndcg_invrl", "hit_rate", "map")


def test_kernel_per_user_values_by_hand():
    out = _core.ranking_metrics(TOPK, TEST.indptr, TEST.indices, np.array([1, 3, 5]), 10)
    assert out.shape == (5, 3, 6) and out.dtype == np.float64
    assert np.all(np.isnan(out[1]))
    for u, per_k in EXPECTED.items():
        for j, k in enumerate((1, 3, 5)):
            np.testing.assert_allclose(out[u, j], per_k[k], rtol=1e-12, atol=1e-15,
                                       err_msg=f"user {u}, K={k}")


@pytest.mark.parametrize("ndcg", ["standard", "invrl"])
def test_means_drop_users_without_test_items(ndcg):
    df = ranking_metrics(TOPK, TEST, ks=[5, 1, 3, 3], ndcg=ndcg)
    assert list(df.columns) == ["metric", "k", "value", "n_users"]
    assert df["n_users"].eq(4).all()                       # u1 is dropped
    assert list(df["metric"]) == [m for m in METRICS for _ in range(3)]
    assert list(df["k"]) == [1, 3, 5] * 5                  # deduplicated and sorted
    col = {m: COLS.index("ndcg_invrl" if m == "ndcg" and ndcg == "invrl" else m) for m in METRICS}
    for row in df.itertuples():
        want = np.mean([EXPECTED[u][row.k][col[row.metric]] for u in (0, 2, 3, 4)])
        assert row.value == pytest.approx(want, rel=1e-12, abs=1e-15), (row.metric, row.k)


def test_invrl_ndcg_is_larger_than_standard_here():
    # u0 at K=3: standard 1.5 / 2.1309 = 0.7039 vs invrl 1.5 / 1.6309 = 0.9197
    std = ranking_metrics(TOPK, TEST, ks=3, metrics="ndcg", per_user=True)
    inv = ranking_metrics(TOPK, TEST, ks=3, metrics="ndcg", ndcg="invrl", per_user=True)
    assert std.loc[0, "ndcg@3"] == pytest.approx(0.7039180890341347, rel=1e-12)
    assert inv.loc[0, "ndcg@3"] == pytest.approx(0.9197207891481876, rel=1e-12)


def test_per_user_frame():
    df = ranking_metrics(TOPK, TEST, ks=(1, 5), metrics=("recall", "map"), per_user=True)
    assert list(df.columns) == ["user", "recall@1", "recall@5", "map@1", "map@5"]
    assert df["user"].tolist() == [0, 1, 2, 3, 4]
    assert df.loc[1].drop("user").isna().all()
    np.testing.assert_allclose(df["recall@5"].to_numpy()[[0, 2, 3, 4]], [1, 1, 1, 1 / 6])
    np.testing.assert_allclose(df["map@5"].to_numpy()[[0, 2, 3, 4]],
                               [(1 + 2 / 3 + 3 / 5) / 3, 1 / 5, 1, 1 / 10])


def test_users_argument_maps_rows_to_users():
    # rows for users 4 and 0 only, in that order
    df = ranking_metrics(TOPK[[4, 0]], TEST, ks=3, users=[4, 0], metrics="precision",
                         per_user=True)
    assert df["user"].tolist() == [4, 0]
    np.testing.assert_allclose(df["precision@3"], [1 / 3, 2 / 3])


def slow_metrics(ids, test_rows, k, ndcg):
    """Straight transcription of the definitions (method.md §6.1), one user."""
    out = []
    for row, t in zip(ids, test_rows):
        t = set(t)
        if not t:
            continue
        hit = [int(x) in t for x in row[:k]]
        h = sum(hit)
        dcg = sum(1 / math.log2(r + 2) for r in range(k) if hit[r])
        n_ideal = min(len(t), k) if ndcg == "standard" else min(h, k)
        idcg = sum(1 / math.log2(r + 2) for r in range(n_ideal))
        ap = sum(sum(hit[:r + 1]) / (r + 1) for r in range(k) if hit[r]) / min(len(t), k)
        out.append((h / k, h / len(t), dcg / idcg if idcg > 0 else 0.0, float(h > 0), ap))
    return np.mean(out, axis=0)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("ndcg", ["standard", "invrl"])
def test_random_cases_match_slow_reference(seed, ndcg):
    rng = np.random.default_rng(seed)
    n_users, n_items, kmax = 60, 40, 12
    ids = np.stack([rng.permutation(n_items)[:kmax] for _ in range(n_users)])
    ids[rng.random(ids.shape) < 0.1] = -1   # empty slots (-1 may repeat, items may not)
    n_test = rng.integers(0, 8, n_users)
    test_rows = [rng.choice(n_items, n, replace=False) for n in n_test]
    users = np.repeat(np.arange(n_users), n_test)
    test = UserItemCSR.from_pairs(users, np.concatenate(test_rows), n_users, n_items)
    df = ranking_metrics(ids, test, ks=(1, 4, 12), ndcg=ndcg, n_threads=2)
    for k in (1, 4, 12):
        want = slow_metrics(ids, test_rows, k, ndcg)
        got = df[df.k == k].set_index("metric").loc[list(METRICS), "value"].to_numpy()
        np.testing.assert_allclose(got, want, rtol=1e-12)
        assert np.all((got >= 0) & (got <= 1))
    one = _core.ranking_metrics(ids, test.indptr, test.indices, np.array([4]), n_items,
                                n_threads=1)
    two = _core.ranking_metrics(ids, test.indptr, test.indices, np.array([4]), n_items,
                                n_threads=2)
    assert one.tobytes() == two.tobytes()


# ------------------------------------------------------------------------- evaluate

def test_evaluate_tie_and_exclusion_by_hand():
    # user 0 = [1, 0]: scores of items 0..3 = 1, 1, 0, 2; item 3 is a training item.
    #   -inf mask: ranking [0, 1, 2] (0 and 1 tie at 1 -> lower id first), slot 4 empty
    #   test {1}: hit at rank 1 -> recall@1 = 0, ndcg@2 = L3 / 1
    # user 1 = [0, 1]: scores 0, 0, 1, -1; no exclusion; ranking [2, 0, 1, 3]
    #   test {0, 3}: hits at ranks 1 and 3 -> recall@2 = 1/2, ndcg@2 = L3 / (1 + L3)
    # user 2 has no test item: not ranked.
    U = np.array([[1, 0], [0, 1], [1, 1]], np.float32)
    V = np.array([[1, 0], [1, 0], [0, 1], [2, -1]], np.float32)
    train = UserItemCSR.from_pairs([0], [3], 3, 4)
    test = UserItemCSR.from_pairs([0, 1, 1], [1, 0, 3], 3, 4)
    df = evaluate(U, V, test, exclude=train, ks=(1, 2), metrics=("recall", "ndcg"))
    got = df.set_index(["metric", "k"])["value"]
    assert df["n_users"].eq(2).all()
    assert got["recall", 1] == 0                                # (0 + 0) / 2
    assert got["recall", 2] == pytest.approx((1 + 1 / 2) / 2)
    assert got["ndcg", 1] == 0
    assert got["ndcg", 2] == pytest.approx((L3 + L3 / (1 + L3)) / 2)
    # InvRL mode: item 3 gets 1e-5 and ranks for user 0 between score 1 and score 0:
    #   user 0 ranking [0, 1, 3, 2] -> same hits at K <= 2; invrl IDCG over min(hits, K):
    #   user 0 ndcg@2 = L3 / 1, user 1 ndcg@2 = L3 / 1 (one hit) -> mean L3
    inv = evaluate(U, V, test, exclude=train, ks=2, metrics="ndcg", ndcg="invrl",
                   mask_value=1e-5)
    assert inv["value"].iloc[0] == pytest.approx(L3)
    per = evaluate(U, V, test, exclude=train, ks=4, mask_value=1e-5, metrics="precision",
                   per_user=True)
    assert per["user"].tolist() == [0, 1]
    np.testing.assert_allclose(per["precision@4"], [1 / 4, 2 / 4])


def test_evaluate_equals_topk_then_ranking_metrics():
    rng = np.random.default_rng(7)
    n_users, n_items, d = 80, 150, 12
    # evaluate scores in other blocks (its own user subset, user_chunk=7, item_tile=33)
    # than topk's defaults, i.e. other sgemm shapes, which BLAS may round differently.
    # Entries k / 8 with |k| <= 16: every product is a multiple of 1/64 of size <= 4 and every
    # partial sum one of size <= 48, exact in float32 in any order, so both rankings (ties by
    # ascending id) are the same under any BLAS and the frames can be compared exactly.
    U = rng.integers(-16, 17, (n_users, d)) / 8
    V = rng.integers(-16, 17, (n_items, d)) / 8
    pairs = rng.integers(0, [n_users, n_items], (1500, 2))
    train = UserItemCSR.from_pairs(pairs[:1000, 0], pairs[:1000, 1], n_users, n_items)
    test = UserItemCSR.from_pairs(pairs[1000:, 0], pairs[1000:, 1], n_users, n_items)
    df = evaluate(U, V, test, exclude=train, ks=(5, 20), user_chunk=7, item_tile=33)
    ids, _ = topk(U, V, 20, exclude=train)
    ref = ranking_metrics(ids, test, ks=(5, 20))
    pd.testing.assert_frame_equal(df, ref)
    wide = df.pivot(index="metric", columns="k", values="value")
    assert wide.shape == (5, 2)


def test_evaluate_memory_budget_raises_before_allocating():
    U = np.ones((4, 2))
    V = np.ones((1000, 2))
    test = UserItemCSR.from_pairs([0], [1], 4, 1000)
    with pytest.raises(ValueError, match="memory_budget=100 bytes cannot hold one row"):
        evaluate(U, V, test, memory_budget=100, item_tile=1000)
    df = evaluate(U, V, test, memory_budget=4008, item_tile=1000, ks=1)   # one row
    assert df["n_users"].eq(1).all()


# ----------------------------------------------------------------------- bad input

def test_bad_inputs():
    with pytest.raises(ValueError, match=r"every K in ks must be in \[1, topk_ids.shape\[1\]"):
        ranking_metrics(TOPK, TEST, ks=6)
    with pytest.raises(ValueError, match="every K in ks must be in"):
        ranking_metrics(TOPK, TEST, ks=(0, 1))
    with pytest.raises(ValueError, match="ks must not be empty"):
        ranking_metrics(TOPK, TEST, ks=())
    with pytest.raises(ValueError, match="every metric must be one of .*got 'auc'"):
        ranking_metrics(TOPK, TEST, ks=1, metrics="auc")
    with pytest.raises(ValueError, match="ndcg must be one of"):
        ranking_metrics(TOPK, TEST, ks=1, ndcg="ideal")
    with pytest.raises(TypeError, match="topk_ids must hold integers"):
        ranking_metrics(TOPK.astype(float), TEST, ks=1)
    dup = TOPK.copy()
    dup[2, 3] = 0
    with pytest.raises(ValueError, match="topk_ids must list each item at most once per row, "
                                         "got a repeat in row 2"):
        ranking_metrics(dup, TEST, ks=1)
    with pytest.raises(ValueError, match=r"topk_ids must lie in \[-1, 10\)"):
        ranking_metrics(TOPK + 1, TEST, ks=1)
    with pytest.raises(ValueError, match="topk_ids has 4 rows but test has 5 users"):
        ranking_metrics(TOPK[:4], TEST, ks=1)
    with pytest.raises(ValueError, match="test must hold an item of at least one ranked user"):
        ranking_metrics(TOPK[[1]], TEST, ks=1, users=[1])
    with pytest.raises(TypeError, match="test must be a painvrl UserItemCSR"):
        ranking_metrics(TOPK, {0: [1]}, ks=1)
    U, V = np.ones((5, 3)), np.ones((10, 3))
    empty = UserItemCSR.from_pairs([], [], 5, 10)
    with pytest.raises(ValueError, match="evaluate: test must hold at least one"):
        evaluate(U, V, empty, ks=5)
    with pytest.raises(ValueError, match=r"every K in ks must be in \[1, n_items = 10\]"):
        evaluate(U, V, TEST, ks=(5, 11))
    with pytest.raises(ValueError, match="test has 5 users but user_vecs has 4 rows"):
        evaluate(U[:4], V, TEST)
    with pytest.raises(ValueError, match="same number of columns"):
        evaluate(U, np.ones((10, 2)), TEST)
    bad = V.copy()
    bad[3, 1] = np.inf
    with pytest.raises(ValueError, match="item_vecs contains NaN or inf"):
        evaluate(U, bad, TEST)


def test_bad_binding_inputs():
    ks = np.array([1, 3])
    with pytest.raises(TypeError, match="'topk_ids' must have dtype int64, got int32"):
        _core.ranking_metrics(TOPK.astype(np.int32), TEST.indptr, TEST.indices, ks, 10)
    with pytest.raises(ValueError, match=r"every K in 'ks' must be in \[1, topk_ids.shape"):
        _core.ranking_metrics(TOPK, TEST.indptr, TEST.indices, np.array([6]), 10)
    with pytest.raises(ValueError, match="'ks' is empty"):
        _core.ranking_metrics(TOPK, TEST.indptr, TEST.indices, np.array([], np.int64), 10)
    with pytest.raises(IndexError, match="'topk_ids' holds id 10 at row 0"):
        bad = TOPK.copy()
        bad[0, 1] = 10
        _core.ranking_metrics(bad, TEST.indptr, TEST.indices, ks, 10)
    with pytest.raises(ValueError, match="row 0 of 'test_indices' must be strictly increasing"):
        _core.ranking_metrics(TOPK, np.array([0, 2, 2, 2, 2, 2]), np.array([3, 3]), ks, 10)
    with pytest.raises(IndexError, match="'test_indices' holds item id 10 in row 0"):
        _core.ranking_metrics(TOPK, np.array([0, 1, 1, 1, 1, 1]), np.array([10]), ks, 10)
    # the kernel itself refuses a relevant item listed twice (recall could exceed 1)
    dup = TOPK.copy()
    dup[0, 1] = 3
    with pytest.raises(ValueError, match="lists the same relevant item twice"):
        _core.ranking_metrics(dup, TEST.indptr, TEST.indices, ks, 10)
    with pytest.raises(TypeError):
        _core.ranking_metrics(TOPK, TEST.indptr, TEST.indices, ks, 10, 1)  # n_threads kw-only
