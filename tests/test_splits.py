"""Splits: partitions of the pooled pairs, ratios, determinism, min_train, OOD constructions."""
import numpy as np
import pandas as pd
import pytest

from painvrl import datasets, splits
from painvrl.data import Dataset


@pytest.fixture(scope="module")
def mm():
    return datasets.make_multimodal(n_users=200, n_items=300, n_interactions=6000, seed=5)


@pytest.fixture(scope="module")
def sp():
    ds, truth = datasets.make_spurious(n_users=150, n_items=120, n_interactions=4000, n_envs=4,
                                       seed=1)
    env = np.concatenate([truth.train_env, truth.val_env, truth.test_env])
    return ds, truth, env


def _keys(pairs, n_items):
    return pairs[:, 0].astype(np.int64) * n_items + pairs[:, 1]


def _all_parts(ds, extra=()):
    return [ds.train, ds.val.to_pairs(), ds.test.to_pairs()] + [c.to_pairs() for c in extra]


def _assert_partition(parts, original, n_items):
    """The parts are disjoint and together hold exactly the original pairs."""
    got = np.concatenate([_keys(p, n_items) for p in parts])
    assert got.size == np.unique(got).size, "a pair is duplicated"
    np.testing.assert_array_equal(np.sort(got), np.sort(_keys(original, n_items)))


def _assert_same_space(new, old):
    assert (new.n_users, new.n_items) == (old.n_users, old.n_items)
    np.testing.assert_array_equal(new.features, old.features)
    assert dict(new.modalities) == dict(old.modalities)
    np.testing.assert_array_equal(new.item_ids, old.item_ids)


# --------------------------------------------------------------------------- pooled / given

def test_pooled_pairs_order():
    ds = Dataset([[1, 0], [0, 1]], val=[[1, 2]], test=[[0, 2], [0, 0]])
    pairs, src = splits.pooled_pairs(ds, return_source=True)
    assert pairs.tolist() == [[1, 0], [0, 1], [1, 2], [0, 0], [0, 2]]
    assert src.tolist() == [0, 0, 1, 2, 2]
    p = splits.pooled(ds)
    np.testing.assert_array_equal(p.train, pairs)
    assert p.val.nnz == 0 and p.test.nnz == 0


def test_pooled_pairs_matches_spurious_truth_alignment(sp):
    ds, truth, env = sp
    pairs = splits.pooled_pairs(ds)
    n_tr, n_va = ds.train.shape[0], ds.val.nnz
    for e in range(truth.n_envs):
        np.testing.assert_array_equal(pairs[:n_tr][env[:n_tr] == e], truth.env_pairs(ds, "train", e))
        np.testing.assert_array_equal(pairs[n_tr + n_va:][env[n_tr + n_va:] == e],
                                      truth.env_pairs(ds, "test", e))


def test_given_is_identity(mm):
    assert splits.given(mm) is mm
    with pytest.raises(TypeError, match="dataset"):
        splits.given(np.zeros((3, 2), dtype=int))


# --------------------------------------------------------------------------- random_per_user

def test_random_per_user_partition_ratios_determinism(mm):
    a = splits.random_per_user(mm, seed=3)
    _assert_partition(_all_parts(a), splits.pooled_pairs(mm), mm.n_items)
    _assert_same_space(a, mm)
    n = splits.pooled_pairs(mm).shape[0]
    assert abs(a.train.shape[0] / n - 0.8) < 0.03
    assert abs(a.val.nnz / n - 0.1) < 0.02 and abs(a.test.nnz / n - 0.1) < 0.02
    b = splits.random_per_user(mm, seed=3)
    np.testing.assert_array_equal(a.train, b.train)
    np.testing.assert_array_equal(a.test.indices, b.test.indices)
    c = splits.random_per_user(mm, seed=4)
    assert not np.array_equal(_keys(np.sort(c.train, axis=0), mm.n_items),
                              _keys(np.sort(a.train, axis=0), mm.n_items))
    # training pairs keep their pooled order
    pk = _keys(splits.pooled_pairs(mm), mm.n_items)
    pos = np.searchsorted(np.sort(pk), _keys(a.train, mm.n_items))
    rank = np.argsort(np.argsort(pk))
    inv = np.empty_like(rank)
    inv[rank] = np.arange(rank.size)
    assert np.all(np.diff(inv[pos]) > 0)


def test_random_per_user_per_user_counts_and_min_train():
    # user u has u + 1 pairs (1..12), ratios 6:2:2 -> every count follows the documented rule
    pairs = np.array([[u, i] for u in range(12) for i in range(u + 1)])
    for min_train in (1, 3):
        ds = splits.random_per_user(pairs, ratios=(6, 2, 2), seed=0, min_train=min_train)
        tr = np.bincount(ds.train[:, 0], minlength=12)
        va, te = ds.val.row_lengths(), ds.test.row_lengths()
        for u in range(12):
            n = u + 1
            v, t = int(np.floor(0.2 * n + 0.5)), int(np.floor(0.2 * n + 0.5))
            short = max(min(min_train, n) - (n - v - t), 0)
            gt = min(short, t)
            t -= gt
            v -= min(short - gt, v)
            assert (tr[u], va[u], te[u]) == (n - v - t, v, t), u
            assert tr[u] >= min(min_train, n)
        _assert_partition(_all_parts(ds), pairs, ds.n_items)


def test_random_per_user_min_train_on_generated(mm):
    ds = splits.random_per_user(mm, ratios=(0.5, 0.25, 0.25), min_train=4, seed=2)
    n_u = np.bincount(splits.pooled_pairs(mm)[:, 0], minlength=mm.n_users)
    assert np.all(ds.user_degree >= np.minimum(4, n_u))


def test_random_per_user_bad_input(mm):
    with pytest.raises(ValueError, match="ratios"):
        splits.random_per_user(mm, ratios=(0, 0.5, 0.5))
    with pytest.raises(ValueError, match="ratios"):
        splits.random_per_user(mm, ratios=(0.8, 0.2))
    with pytest.raises(ValueError, match="ratios"):
        splits.random_per_user(mm, ratios=(0.8, np.nan, 0.1))
    with pytest.raises(ValueError, match="min_train"):
        splits.random_per_user(mm, min_train=-1)
    with pytest.raises(TypeError, match="seed"):
        splits.random_per_user(mm, seed=1.5)
    with pytest.raises(ValueError, match="dataset_or_pairs"):
        splits.random_per_user(np.zeros((0, 2), dtype=int))
    with pytest.raises(ValueError, match="dataset_or_pairs"):
        splits.random_per_user(np.array([[0, -1]]))
    with pytest.raises(TypeError, match="dataset_or_pairs"):
        splits.random_per_user(pd.DataFrame({"user": [0], "item": [0]}))
    with pytest.raises(ValueError, match="n_users"):
        splits.random_per_user(mm, n_users=10)


# --------------------------------------------------------------------------- temporal

def test_temporal_per_user_latest_go_to_test():
    rng = np.random.default_rng(0)
    pairs = np.array([[u, i] for u in range(20) for i in range(10)])
    t = rng.permutation(pairs.shape[0]).astype(float)
    ds = splits.temporal(pairs, t)
    _assert_partition(_all_parts(ds), pairs, ds.n_items)
    tmap = {(int(u), int(i)): tt for (u, i), tt in zip(pairs, t)}
    for u in range(20):
        tr = [tmap[(u, int(i))] for i in ds.train[ds.train[:, 0] == u][:, 1]]
        va = [tmap[(u, int(i))] for i in ds.val.row(u)]
        te = [tmap[(u, int(i))] for i in ds.test.row(u)]
        assert (len(tr), len(va), len(te)) == (8, 1, 1)
        assert max(tr) < min(va) and max(va) < min(te)
    # training pairs stay in input order
    assert np.all(np.diff(_keys(ds.train, ds.n_items)) > 0)


def test_temporal_global_and_dataframe():
    df = pd.DataFrame({"user": ["a", "a", "b", "b", "c", "a", "b", "c", "c", "a"],
                       "item": [10, 20, 10, 30, 20, 30, 20, 10, 30, 40],
                       "ts": pd.to_datetime(np.arange(10) * 86400, unit="s")})
    ds = splits.temporal(df, "ts", per_user=False)
    assert ds.train.shape[0] == 8 and ds.val.nnz == 1 and ds.test.nnz == 1
    # the last row (a, 40) is the latest: test; row 8 (c, 30) val
    assert ds.test.to_pairs().tolist() == [[0, 3]]
    assert ds.val.to_pairs().tolist() == [[2, 2]]
    assert ds.user_ids.tolist() == ["a", "b", "c"] and ds.item_ids.tolist() == [10, 20, 30, 40]


def test_temporal_on_dataset_aligned_with_pooled_pairs(mm):
    pairs = splits.pooled_pairs(mm)
    t = np.arange(pairs.shape[0])[::-1]  # pooled order reversed: the first pairs are the latest
    ds = splits.temporal(mm, t)
    _assert_partition(_all_parts(ds), pairs, mm.n_items)
    _assert_same_space(ds, mm)


def test_temporal_errors(mm):
    pairs = np.array([[0, 0], [0, 1], [1, 0]])
    with pytest.raises(ValueError, match="timestamps is required"):
        splits.temporal(pairs, None)
    with pytest.raises(ValueError, match="timestamps must be 1-D"):
        splits.temporal(pairs, [1.0, 2.0])
    with pytest.raises(ValueError, match="timestamps contains NaN"):
        splits.temporal(pairs, [1.0, np.nan, 2.0])
    with pytest.raises(TypeError, match="timestamps"):
        splits.temporal(pairs, ["x", "y", "z"])
    with pytest.raises(ValueError, match="timestamps='t'"):
        splits.temporal(pd.DataFrame({"user": [0], "item": [0]}), "t")
    with pytest.raises(TypeError, match="per_user"):
        splits.temporal(pairs, [1, 2, 3], per_user="yes")
    with pytest.raises(ValueError, match="features"):
        splits.temporal(pairs, [1, 2, 3], features=np.ones((2, 3)))


# --------------------------------------------------------------------------- hold_out_environments

@pytest.mark.parametrize("which", ["smallest", "largest", "random", "farthest"])
def test_hold_out_environments_partition(sp, which):
    ds, truth, env = sp
    h = splits.hold_out_environments(ds, env, holdout=2, which=which, seed=7)
    pairs = splits.pooled_pairs(ds)
    assert len(h.held_out) == 2 and set(h.held_out) | set(h.kept) == set(range(4))
    # the OOD test is exactly the held-out environments' pairs
    ood_expected = pairs[np.isin(env, h.held_out)]
    np.testing.assert_array_equal(np.sort(_keys(h.ood_test.to_pairs(), ds.n_items)),
                                  np.sort(_keys(ood_expected, ds.n_items)))
    _assert_partition(_all_parts(h.dataset, [h.ood_test]), pairs, ds.n_items)
    _assert_same_space(h.dataset, ds)
    assert sum(h.sizes.values()) == pairs.shape[0]
    assert h.sizes["ood_test"] == sum(h.env_sizes[e] for e in h.held_out)
    # train_env aligned with the new training pairs
    lookup = dict(zip(map(int, _keys(pairs, ds.n_items)), env))
    np.testing.assert_array_equal(h.train_env,
                                  [lookup[int(k)] for k in _keys(h.dataset.train, ds.n_items)])
    assert not np.isin(h.train_env, h.held_out).any()
    kept_n = pairs.shape[0] - h.sizes["ood_test"]
    assert abs(h.sizes["train"] / kept_n - 0.8) < 0.05
    again = splits.hold_out_environments(ds, env, holdout=2, which=which, seed=7)
    assert again.held_out == h.held_out
    np.testing.assert_array_equal(again.dataset.train, h.dataset.train)


def test_hold_out_environments_choice_rules():
    # 3 users x 6 items; environment sizes 0:5, 1:6, 2:4, 3:3 (item 5 only in env 3)
    pairs = np.array([[u, i] for u in range(3) for i in range(6)])
    env = np.array([0, 0, 0, 0, 0, 3, 1, 1, 1, 1, 1, 3, 2, 2, 2, 2, 1, 3])
    ds = Dataset(pairs)
    sm = splits.hold_out_environments(ds, env, holdout=1, which="smallest")
    assert sm.held_out == (3,) and sm.env_sizes == {0: 5, 1: 6, 2: 4, 3: 3}
    assert splits.hold_out_environments(ds, env, holdout=2, which="largest").held_out == (0, 1)
    far = splits.hold_out_environments(ds, env, holdout=1, which="farthest")
    assert far.held_out == (3,)  # its items (5, and only item 5) are not in the others' data
    assert far.distance[3] == pytest.approx(np.log(2))  # disjoint supports: JS = ln 2
    lst = splits.hold_out_environments(ds, env, holdout=[2, 0])
    assert lst.held_out == (0, 2) and lst.sizes["ood_test"] == 9


def test_hold_out_environments_cold_users_kept():
    # user 2 occurs only in environment 1: held out, it has no training data but stays in the space
    pairs = np.array([[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [2, 3]])
    env = np.array([0, 0, 0, 0, 0, 1])
    h = splits.hold_out_environments(Dataset(pairs), env, holdout=[1])
    assert h.dataset.n_users == 3 and h.dataset.n_items == 4
    assert h.dataset.user_degree[2] == 0 and h.ood_test.row(2).tolist() == [3]


def test_hold_out_environments_errors(sp):
    ds, truth, env = sp
    with pytest.raises(ValueError, match="labels must be 1-D.*identify_environments"):
        splits.hold_out_environments(ds, truth.train_env)
    with pytest.raises(TypeError, match="labels"):
        splits.hold_out_environments(ds, env.astype(float))
    with pytest.raises(ValueError, match="holdout must be in"):
        splits.hold_out_environments(ds, env, holdout=4)
    with pytest.raises(ValueError, match="holdout must be in"):
        splits.hold_out_environments(ds, env, holdout=0)
    with pytest.raises(ValueError, match="holdout names environment"):
        splits.hold_out_environments(ds, env, holdout=[7])
    with pytest.raises(ValueError, match="holdout must list each environment once"):
        splits.hold_out_environments(ds, env, holdout=[1, 1])
    with pytest.raises(ValueError, match="holdout must keep at least one non-empty environment"):
        splits.hold_out_environments(ds, env, holdout=[0, 1, 2, 3])
    with pytest.raises(TypeError, match="holdout"):
        splits.hold_out_environments(ds, env, holdout="2")
    with pytest.raises(ValueError, match="which"):
        splits.hold_out_environments(ds, env, which="nearest")


@pytest.mark.parametrize("which", ["smallest", "largest", "random", "farthest"])
def test_hold_out_environments_ood_validation(sp, which):
    ds, truth, env = sp
    plain = splits.hold_out_environments(ds, env, holdout=2, which=which, seed=7)
    h = splits.hold_out_environments(ds, env, holdout=2, which=which, seed=7, val_holdout=1)
    pairs = splits.pooled_pairs(ds)
    # the test environments are those of the split without validation; validation is another one
    assert h.held_out == plain.held_out and len(h.val_held_out) == 1
    assert not set(h.val_held_out) & set(h.held_out) and not set(h.val_held_out) & set(h.kept)
    assert set(h.held_out) | set(h.val_held_out) | set(h.kept) == set(range(4))
    np.testing.assert_array_equal(np.sort(_keys(h.ood_val.to_pairs(), ds.n_items)),
                                  np.sort(_keys(pairs[np.isin(env, h.val_held_out)], ds.n_items)))
    _assert_partition(_all_parts(h.dataset, [h.ood_test, h.ood_val]), pairs, ds.n_items)
    assert sum(h.sizes.values()) == pairs.shape[0]
    assert not np.isin(h.train_env, h.held_out + h.val_held_out).any()
    vals = h.validation_splits()
    assert vals["ood_val"] == (h.dataset, h.ood_val) and vals["iid_val"] == (h.dataset, "val")
    # without val_holdout nothing changes and there is no OOD validation set
    assert plain.ood_val is None and plain.val_held_out == () and "ood_val" not in plain.sizes
    with pytest.raises(ValueError, match="no OOD validation set.*val_holdout"):
        plain.validation_splits()


def test_hold_out_environments_ood_validation_rules():
    pairs = np.array([[u, i] for u in range(3) for i in range(6)])
    env = np.array([0, 0, 0, 0, 0, 3, 1, 1, 1, 1, 1, 3, 2, 2, 2, 2, 1, 3])   # sizes 5, 6, 4, 3
    ds = Dataset(pairs)
    h = splits.hold_out_environments(ds, env, holdout=1, val_holdout=2, which="smallest")
    assert h.held_out == (3,) and h.val_held_out == (0, 2) and h.kept == (1,)   # next smallest
    h = splits.hold_out_environments(ds, env, holdout=[0], val_holdout=[3])
    assert (h.held_out, h.val_held_out, h.sizes["ood_val"]) == ((0,), (3,), 3)
    h = splits.hold_out_environments(ds, env, holdout=[3], val_holdout=1, which="largest")
    assert h.val_held_out == (1,)


def test_hold_out_environments_ood_validation_errors(sp):
    ds, truth, env = sp
    with pytest.raises(ValueError, match="holdout already holds out as the OOD test"):
        splits.hold_out_environments(ds, env, holdout=[1], val_holdout=[1, 2])
    with pytest.raises(ValueError, match=r"val_holdout must be in \[0, 1\]"):
        splits.hold_out_environments(ds, env, holdout=2, val_holdout=2)
    with pytest.raises(ValueError, match="keep at least one non-empty environment"):
        splits.hold_out_environments(ds, env, holdout=[0, 1], val_holdout=[2, 3])
    with pytest.raises(ValueError, match="val_holdout names environment"):
        splits.hold_out_environments(ds, env, holdout=[0], val_holdout=[9])
    with pytest.raises(TypeError, match="val_holdout"):
        splits.hold_out_environments(ds, env, holdout=[0], val_holdout="1")
    with pytest.raises(ValueError, match="val_holdout must be in"):
        splits.hold_out_environments(ds, env, holdout=1, val_holdout=-1)


def test_lastfm_ood_split_holds_out_the_next_farthest_for_validation(sp):
    ds, truth, env = sp
    h = datasets.lastfm_ood_split(ds, env, seed=2)
    by_distance = sorted(h.distance, key=lambda e: -h.distance[e])
    assert h.held_out == tuple(sorted(by_distance[:2])) and h.val_held_out == (by_distance[2],)
    plain = splits.hold_out_environments(ds, env, holdout=2, which="farthest", seed=2)
    assert plain.held_out == h.held_out        # the test of benchmarks/lastfm_results.py


def test_planted_ood_split_distinct_validation_and_test_environments():
    small = dict(n_users=80, n_items=60, n_interactions=2400)
    h, truth = datasets.planted_ood_split(3, return_truth=True, **small)
    assert (h.held_out, h.val_held_out, h.kept) == ((3,), (2,), (0, 1))
    assert truth.spurious_effect.tolist() == [1.0, -1.0, -1.0, -1.0]
    assert h.sizes["ood_val"] == h.ood_val.nnz > 0 and h.sizes["ood_test"] == h.ood_test.nnz > 0
    assert set(np.unique(h.train_env).tolist()) == {0, 1}     # trained on +1 and -1 only
    again = datasets.planted_ood_split(3, **small)
    np.testing.assert_array_equal(again.dataset.train, h.dataset.train)
    with pytest.raises(ValueError, match="planted_ood_split: n_envs must be at least 3"):
        datasets.planted_ood_split(0, n_envs=2, spurious_effect=(1, -1), env_weights=(1, 1), **small)


# --------------------------------------------------------------------------- popularity_shift

def test_popularity_shift(mm):
    ps = splits.popularity_shift(mm, test_share=0.1, tail_fraction=0.8, seed=1)
    pairs = splits.pooled_pairs(mm)
    n = pairs.shape[0]
    _assert_partition(_all_parts(ps.dataset, [ps.ood_test]), pairs, mm.n_items)
    _assert_same_space(ps.dataset, mm)
    pop = np.bincount(pairs[:, 1], minlength=mm.n_items)
    active = np.flatnonzero(pop)
    assert ps.tail_items.size == int(np.ceil(0.8 * active.size))
    head = np.setdiff1d(active, ps.tail_items)
    assert pop[ps.tail_items].max() <= pop[head].min()  # tail = least popular
    assert np.isin(ps.ood_test.indices, ps.tail_items).all()
    assert ps.sizes["ood_test"] == int(np.floor(0.1 * n + 0.5))
    assert abs(ps.sizes["iid_test"] - 0.1 * n) < 0.02 * n and abs(ps.sizes["val"] - 0.1 * n) < 0.02 * n
    assert ps.tail_share["ood_test"] == 1.0 and ps.tail_share["train"] < 0.8
    assert abs(ps.tail_share["iid_test"] - ps.tail_share["train"]) < 0.08
    assert np.all(ps.dataset.user_degree >= 1)
    again = splits.popularity_shift(mm, test_share=0.1, tail_fraction=0.8, seed=1)
    np.testing.assert_array_equal(again.ood_test.indices, ps.ood_test.indices)
    np.testing.assert_array_equal(again.dataset.train, ps.dataset.train)
    d = ps.splits()
    assert d["iid"] == (ps.dataset, "test") and d["tail"][1] is ps.ood_test


def test_popularity_shift_errors(mm):
    with pytest.raises(ValueError, match="test_share"):
        splits.popularity_shift(mm, test_share=0.4)
    with pytest.raises(ValueError, match="test_share"):
        splits.popularity_shift(mm, test_share=0.0)
    with pytest.raises(ValueError, match="tail_fraction"):
        splits.popularity_shift(mm, tail_fraction=1.0)
    with pytest.raises(TypeError, match="tail_fraction"):
        splits.popularity_shift(mm, tail_fraction="0.8")
    with pytest.raises(ValueError, match="rounds to an empty OOD test"):
        splits.popularity_shift(Dataset([[0, 0], [0, 1], [1, 1]]), test_share=0.1)
    with pytest.raises(ValueError, match="tail_fraction=0.01"):
        splits.popularity_shift(mm, test_share=0.3, tail_fraction=0.01)
