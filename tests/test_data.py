"""painvrl.data: the Dataset container, its validation, and the MMRec / MMGCN loaders."""
import pickle
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from painvrl.data import Dataset, UserItemCSR, load_mmgcn, load_mmrec

# Real data lives next to the clone: <clone>/../shared/data (never inside the repository).
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
LASTFM = SHARED / "lastfm2k-multimodal"
MOVIELENS = SHARED / "mmgcn-movielens-clcrec"
needs_lastfm = pytest.mark.skipif(not (LASTFM / "lfm2k.inter").is_file(),
                                  reason=f"real data not found at {LASTFM} "
                                         f"(expected <clone>/../shared/data)")
needs_movielens = pytest.mark.skipif(not (MOVIELENS / "val_full.npy").is_file(),
                                     reason=f"real data not found at {MOVIELENS}")


def l2_rows(x):
    """Float64 reference: each row divided by its L2 norm, zero rows kept."""
    x = np.asarray(x, dtype=np.float64)
    n = np.sqrt((x * x).sum(axis=1, keepdims=True))
    return np.divide(x, n, out=np.zeros_like(x), where=n > 0)


TRAIN = np.array([[0, 1], [2, 0], [0, 3], [1, 1], [2, 2]])


def small(**kw):
    args = dict(val=np.array([[0, 2]]), test=np.array([[1, 3], [2, 1]]))
    args.update(kw)
    return Dataset.from_arrays(TRAIN, **args)


# --------------------------------------------------------------------------- from_arrays

class TestFromArrays:
    def test_sizes_order_and_csr(self):
        ds = small()
        assert (ds.n_users, ds.n_items) == (3, 4)
        np.testing.assert_array_equal(ds.train, TRAIN)  # stored order is kept
        assert ds.train.dtype == np.int64 and ds.train.flags.c_contiguous
        assert isinstance(ds.val, UserItemCSR) and ds.val.to_pairs().tolist() == [[0, 2]]
        assert ds.test.to_pairs().tolist() == [[1, 3], [2, 1]]
        assert [ds.train_csr.row(u).tolist() for u in range(3)] == [[1, 3], [1], [0, 2]]
        np.testing.assert_array_equal(ds.user_degree, [2, 1, 2])
        np.testing.assert_array_equal(ds.item_degree, [1, 2, 1, 1])
        assert ds.user_degree.dtype == np.int64 and ds.n_train == 5
        np.testing.assert_array_equal(ds.user_ids, np.arange(3))
        np.testing.assert_array_equal(ds.item_ids, np.arange(4))

    def test_no_features_gives_empty_block(self):
        ds = small()
        assert ds.features.shape == (4, 0) and ds.features.dtype == np.float32
        assert dict(ds.modalities) == {} and ds.n_features == 0

    def test_explicit_sizes_allow_users_and_items_without_data(self):
        ds = small(n_users=5, n_items=6)
        assert (ds.n_users, ds.n_items) == (5, 6)
        np.testing.assert_array_equal(ds.user_degree, [2, 1, 2, 0, 0])
        np.testing.assert_array_equal(ds.item_degree, [1, 2, 1, 1, 0, 0])
        assert "(2 without training pairs)" in ds.summary()

    def test_val_test_only_ids_extend_sizes(self):
        ds = Dataset.from_arrays([[0, 0]], test=[[3, 5]])
        assert (ds.n_users, ds.n_items) == (4, 6)
        assert ds.user_degree[3] == 0 and ds.item_degree[5] == 0

    def test_accepts_csr_lists_and_unsigned(self):
        csr = UserItemCSR.from_pairs([0, 1], [1, 0], 2, 2)
        ds = Dataset.from_arrays(np.array([[0, 0], [1, 1]], dtype=np.uint8), val=csr, test=[])
        assert ds.val.nnz == 2 and ds.test.nnz == 0 and ds.train.dtype == np.int64
        ds2 = Dataset([[0, 0], [1, 1]])  # the constructor is from_arrays
        np.testing.assert_array_equal(ds2.train, ds.train)

    def test_features_normalised_per_modality(self):
        rng = np.random.default_rng(0)
        a = rng.normal(size=(4, 3)) * 100.0
        b = rng.normal(size=(4, 2)).astype(np.float32)
        a[2] = 0.0  # a zero row stays zero
        ds = small(features={"visual": a, "textual": b})
        assert ds.features.dtype == np.float32 and ds.features.flags.c_contiguous
        assert ds.features.shape == (4, 5)
        assert list(ds.modalities) == ["visual", "textual"]
        assert ds.modalities["visual"] == slice(0, 3) and ds.modalities["textual"] == slice(3, 5)
        np.testing.assert_allclose(ds.features[:, :3], l2_rows(a), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(ds.modality("textual"), l2_rows(b), rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(ds.features[2, :3], 0.0)
        norms = np.linalg.norm(ds.features[[0, 1, 3], :3], axis=1)
        np.testing.assert_allclose(norms, 1.0, rtol=1e-6)
        assert not np.isnan(ds.features).any()

    @pytest.mark.parametrize("scale", [1e-300, 1e-160, 1e160, 1e300])
    def test_normalisation_survives_extreme_magnitudes(self, scale):
        x = np.array([[3.0, 4.0], [0.0, 0.0], [1.0, 0.0], [-5.0, 12.0]]) * scale
        ds = small(features={"m": x})
        np.testing.assert_allclose(ds.features, l2_rows(x / scale), rtol=1e-6, atol=1e-7)

    @pytest.mark.parametrize("dtype", [np.int32, np.uint8, np.float16, np.float32, np.float64,
                                       np.longdouble])
    def test_feature_dtypes(self, dtype):
        x = np.array([[3, 4], [0, 0], [1, 0], [5, 12]]).astype(dtype)
        ds = small(features=x)
        assert list(ds.modalities) == ["features"]
        np.testing.assert_allclose(ds.features, l2_rows(x.astype(np.float64)), rtol=1e-6, atol=1e-7)

    def test_normalize_false_only_casts(self):
        x = np.arange(8, dtype=np.float64).reshape(4, 2)
        ds = small(features={"m": x}, normalize=False)
        np.testing.assert_array_equal(ds.features, x.astype(np.float32))
        with pytest.raises(ValueError, match=r"features\['m'\] has values too large for float32"):
            small(features={"m": x * 1e300}, normalize=False)

    def test_features_fix_n_items(self):
        ds = Dataset.from_arrays([[0, 0]], features={"m": np.ones((7, 2))})
        assert ds.n_items == 7 and ds.item_degree.shape == (7,)

    def test_immutable_and_copied(self):
        train = TRAIN.copy()
        feats = np.ones((4, 2))
        ds = small(features={"m": feats})
        train[0, 0] = 2
        feats[:] = 5
        assert ds.train[0, 0] == 0 and ds.features[0, 0] == np.float32(np.sqrt(0.5))
        with pytest.raises(AttributeError, match="immutable"):
            ds.n_users = 10
        with pytest.raises(AttributeError, match="immutable"):
            del ds.train
        for arr in (ds.train, ds.features, ds.user_degree, ds.item_degree, ds.user_ids,
                    ds.train_csr.indices, ds.val.indptr, ds.test.indices):
            with pytest.raises(ValueError, match="read-only"):
                arr[...] = 0
        with pytest.raises(TypeError):
            ds.modalities["x"] = slice(0, 1)
        with pytest.raises(AttributeError, match="cannot be initialised twice"):
            ds.__init__([[0, 0]])
        assert ds.n_train == 5

    def test_pickle_round_trip(self):
        ds = small(features={"a": np.eye(4)[:, :3], "b": np.ones((4, 2))}, name="toy",
                   user_ids=np.array(["u", "v", "w"], dtype=object))
        ds2 = pickle.loads(pickle.dumps(ds))
        for k in ("train", "features", "user_ids", "item_ids", "user_degree", "item_degree"):
            np.testing.assert_array_equal(getattr(ds2, k), getattr(ds, k))
        assert ds2.val.to_pairs().tolist() == ds.val.to_pairs().tolist()
        assert ds2.test.to_pairs().tolist() == ds.test.to_pairs().tolist()
        assert dict(ds2.modalities) == dict(ds.modalities) and repr(ds2) == repr(ds)
        with pytest.raises(AttributeError):
            ds2.name = "x"

    def test_repr_and_summary(self):
        ds = small(features={"visual": np.ones((4, 3))}, name="toy")
        assert repr(ds) == ("Dataset(name='toy', n_users=3, n_items=4, n_train=5, n_val=1, "
                            "n_test=2, modalities={'visual': 3})")
        s = ds.summary()
        assert "Dataset 'toy'" in s and "D = 3 (visual 3)" in s
        assert "train              5  pairs" in s and "test               2  pairs (2 users)" in s

    def test_raw_ids_kept(self):
        ds = small(user_ids=["a", "b", "c"], item_ids=[10, 20, 30, 40])
        assert ds.user_ids[ds.train[1, 0]] == "c" and ds.item_ids[ds.train[1, 1]] == 10

    def test_feature_names_kept_everywhere(self):
        from painvrl import splits
        names = ["a0", "a1", "a2", "b0", "b1"]
        ds = small(features={"a": np.eye(4)[:, :3], "b": np.ones((4, 2))}, feature_names=names)
        assert ds.feature_names == tuple(names)
        assert pickle.loads(pickle.dumps(ds)).feature_names == tuple(names)
        assert splits.random_per_user(ds, seed=1).feature_names == tuple(names)
        assert small(features={"a": np.ones((4, 2))}).feature_names is None
        frame = ds.feature_frame(mask=np.linspace(0, 1, 5))
        assert frame.modality.tolist() == ["a", "a", "a", "b", "b"]
        assert frame.feature.tolist() == names and frame["mask"].tolist() == [0, .25, .5, .75, 1]
        unnamed = small(features={"a": np.ones((4, 2))}).feature_frame()
        assert unnamed.feature.tolist() == ["a[0]", "a[1]"]
        with pytest.raises(ValueError, match=r"feature_frame: mask must be 1-D with one value per "
                                             r"feature column \(5\), got shape \(4,\)"):
            ds.feature_frame(mask=np.ones(4))

    @pytest.mark.parametrize("names, exc, msg", [
        (["a", "b"], ValueError, r"feature_names must have one name per feature column \(3\), got 2"),
        (["a", "b", "a"], ValueError, "feature_names must be distinct; 'a' repeats"),
        (["a", "", "c"], TypeError, "feature_names must be non-empty strings; entry 1 is ''"),
        (["a", 2, "c"], TypeError, "feature_names must be non-empty strings; entry 1 is 2"),
        ("abc", TypeError, "feature_names must be a sequence of strings"),
        (3, TypeError, "feature_names must be a sequence of strings"),
    ])
    def test_feature_names_checked(self, names, exc, msg):
        with pytest.raises(exc, match=msg):
            small(features=np.ones((4, 3)), feature_names=names)


class TestDuplicates:
    def test_raise_within_train(self):
        with pytest.raises(ValueError, match=r"duplicate \(user, item\) pair \(0, 1\): train row 3 "
                                             r"repeats train row 0 \(1 repeated"):
            Dataset.from_arrays([[0, 1], [1, 1], [2, 2], [0, 1]])

    def test_raise_across_splits(self):
        with pytest.raises(ValueError, match=r"pair \(1, 1\): test row 0 repeats train row 3"):
            Dataset.from_arrays(TRAIN, test=[[1, 1]])
        with pytest.raises(ValueError, match=r"pair \(0, 2\): test row 1 repeats val row 0"):
            Dataset.from_arrays(TRAIN, val=[[0, 2]], test=[[1, 0], [0, 2]])

    def test_drop_keeps_first_occurrence_in_order(self):
        train = [[2, 2], [0, 1], [2, 2], [1, 0], [0, 1], [0, 0]]
        ds = Dataset.from_arrays(train, val=[[1, 0], [1, 2], [1, 2]], test=[[0, 0], [2, 1]],
                                 duplicates="drop")
        assert ds.train.tolist() == [[2, 2], [0, 1], [1, 0], [0, 0]]
        assert ds.val.to_pairs().tolist() == [[1, 2]]  # (1, 0) is a training pair
        assert ds.test.to_pairs().tolist() == [[2, 1]]
        np.testing.assert_array_equal(ds.user_degree, [2, 1, 1])

    def test_bad_option(self):
        with pytest.raises(ValueError, match="duplicates must be 'raise' or 'drop'"):
            Dataset.from_arrays(TRAIN, duplicates="keep")


class TestValidation:
    @pytest.mark.parametrize("train, exc, msg", [
        ([[0, 1], [-1, 2]], ValueError, r"train contains a negative user id: row 1 is \(-1, 2\)"),
        ([[0, 1], [1, -2]], ValueError, r"train contains a negative item id: row 1 is \(1, -2\)"),
        (np.zeros((0, 2), dtype=np.int64), ValueError, "train is empty"),
        ([], ValueError, "train is empty"),
        (None, ValueError, "train is empty"),
        (np.array([[0.0, 1.0]]), TypeError, "train must hold integer ids, got dtype float64"),
        (np.array([[True, False]]), TypeError, "train must hold integer ids, got dtype bool"),
        (np.array([0, 1, 2]), ValueError, r"train must have shape \(n, 2\).*got shape \(3,\)"),
        (np.zeros((2, 3), dtype=int), ValueError, r"train must have shape \(n, 2\).*\(2, 3\)"),
        (np.array([[0, 2**63]], dtype=np.uint64), ValueError, "train contains an id larger"),
    ])
    def test_train(self, train, exc, msg):
        with pytest.raises(exc, match=msg):
            Dataset.from_arrays(train)

    def test_val_test_checked_too(self):
        with pytest.raises(ValueError, match="val contains a negative item id"):
            Dataset.from_arrays(TRAIN, val=[[0, -1]])
        with pytest.raises(TypeError, match="test must hold integer ids"):
            Dataset.from_arrays(TRAIN, test=np.array([[0.5, 1]]))
        with pytest.raises(TypeError, match="use Dataset.from_dataframe"):
            Dataset.from_arrays(TRAIN, test=pd.DataFrame({"u": [0], "i": [1]}))

    def test_out_of_range(self):
        with pytest.raises(ValueError, match=r"train contains user id 2 \(row 1\), out of range for "
                                             r"n_users=2"):
            Dataset.from_arrays(TRAIN, n_users=2)
        with pytest.raises(ValueError, match=r"test contains item id 3 \(row 0\), out of range for "
                                             r"n_items=3"):
            Dataset.from_arrays([[0, 0]], test=[[1, 3]], n_items=3)
        with pytest.raises(ValueError, match="train contains item id 3 .* n_items=3"):
            Dataset.from_arrays(TRAIN, features={"m": np.ones((3, 2))}, n_items=3)
        with pytest.raises(ValueError, match=r"features: the feature arrays have 3 rows but test "
                                             r"contains item id 4; .* rows are missing"):
            Dataset.from_arrays(TRAIN[:1], test=[[0, 4]], features={"m": np.ones((3, 2))})

    @pytest.mark.parametrize("value, exc, msg", [
        (2.0, TypeError, "n_users must be an integer, got float"),
        (True, TypeError, "n_users must be an integer"),
        (0, ValueError, "n_users must be at least 1, got 0"),
    ])
    def test_sizes(self, value, exc, msg):
        with pytest.raises(exc, match=msg):
            Dataset.from_arrays(TRAIN, n_users=value)

    @pytest.mark.parametrize("features, exc, msg", [
        ({"m": np.ones((3, 2))}, ValueError, r"features\['m'\] has 3 rows but there are 4 items"),
        ({"m": np.ones((5, 2))}, ValueError, r"features\['m'\] has 5 rows but there are only 4"),
        ({"m": np.ones(4)}, ValueError, r"features\['m'\] must be 2-D \(n_items, dim\)"),
        ({"m": np.array([[1.0, np.nan]] * 4)}, ValueError,
         r"features\['m'\] contains NaN or inf \(first in row 0\)"),
        ({"a": np.ones((4, 1)), "m": np.vstack([np.ones((3, 2)), [[np.inf, 0]]])}, ValueError,
         r"features\['m'\] contains NaN or inf \(first in row 3\)"),
        ({"m": np.full((4, 2), "x")}, TypeError, r"features\['m'\] must be a real numeric array"),
        ({"m": np.ones((4, 2), dtype=complex)}, TypeError, r"features\['m'\] must be a real numeric"),
        ({"m": np.ones((4, 2), dtype=bool)}, TypeError, r"features\['m'\] must be a real numeric"),
        ({"m": "feat.npy"}, TypeError, r"features\['m'\] must be an array, got a path"),
        ({"m": pd.DataFrame(np.ones((4, 2)))}, TypeError, "only accepted by Dataset.from_dataframe"),
        ({3: np.ones((4, 2))}, TypeError, "modality names must be non-empty strings"),
    ])
    def test_features(self, features, exc, msg):
        with pytest.raises(exc, match=msg):
            Dataset.from_arrays(TRAIN, features=features, n_items=4)

    def test_ids_and_name(self):
        with pytest.raises(ValueError, match=r"user_ids must be 1-D of length 3, got shape \(2,\)"):
            Dataset.from_arrays(TRAIN, user_ids=[1, 2])
        with pytest.raises(ValueError, match="item_ids must not contain repeated ids"):
            Dataset.from_arrays(TRAIN, item_ids=[1, 2, 3, 1])
        with pytest.raises(TypeError, match="name must be a string"):
            Dataset.from_arrays(TRAIN, name=3)


# --------------------------------------------------------------------------- from_dataframe

class TestFromDataFrame:
    def df(self):
        return pd.DataFrame({
            "user": ["bob", "ann", "bob", "cat", "ann", "cat", "bob"],
            "item": ["x", "z", "y", "x", "y", "z", "z"],
            "split": [0, 0, 0, 0, 2, 1, 2],
        }, index=[10, 11, 12, 13, 14, 15, 16])

    def test_remap_round_trip(self):
        df = self.df()
        ds = Dataset.from_dataframe(df, split_col="split", name="t")
        assert ds.user_ids.tolist() == ["ann", "bob", "cat"]  # sorted raw ids
        assert ds.item_ids.tolist() == ["x", "y", "z"]
        tr = df[df.split == 0]
        assert ds.user_ids[ds.train[:, 0]].tolist() == tr.user.tolist()  # df order kept
        assert ds.item_ids[ds.train[:, 1]].tolist() == tr.item.tolist()
        back = {(ds.user_ids[u], ds.item_ids[i]) for u, i in ds.test.to_pairs()}
        assert back == {("ann", "y"), ("bob", "z")}
        assert [(ds.user_ids[u], ds.item_ids[i]) for u, i in ds.val.to_pairs()] == [("cat", "z")]

    def test_integer_ids_keep_value_when_dense(self):
        df = pd.DataFrame({"user": [1, 0, 2], "item": [2, 0, 1]})
        ds = Dataset.from_dataframe(df)
        assert ds.train.tolist() == [[1, 2], [0, 0], [2, 1]]
        assert ds.val.nnz == 0 and ds.test.nnz == 0

    def test_split_strings_and_custom_values(self):
        df = self.df()
        df["split"] = df.split.map({0: "train", 1: "val", 2: "test"})
        a = Dataset.from_dataframe(df, split_col="split")
        df["s2"] = df.split.map({"train": "tr", "val": "va", "test": "te"})
        b = Dataset.from_dataframe(df, split_col="s2", split_values={"train": "tr", "val": ["va"],
                                                                      "test": ("te",)})
        c = Dataset.from_dataframe(self.df(), split_col="split")
        for ds in (a, b):
            np.testing.assert_array_equal(ds.train, c.train)
            assert ds.test.to_pairs().tolist() == c.test.to_pairs().tolist()
            assert ds.val.to_pairs().tolist() == c.val.to_pairs().tolist()

    def test_array_features_follow_item_id_order(self):
        df = self.df()
        order = ["z", "w", "y", "x"]  # includes "w", an item without interactions
        feats = np.array([[1.0, 0.0], [2.0, 2.0], [0.0, 3.0], [4.0, 3.0]])
        ds = Dataset.from_dataframe(df, {"m": feats}, split_col="split", item_id_order=order)
        assert ds.item_ids.tolist() == order and ds.n_items == 4
        assert ds.item_degree[1] == 0
        np.testing.assert_allclose(ds.features, l2_rows(feats), rtol=1e-6)
        # the training pair (bob, x) points at item 3, whose features are [4, 3] / 5
        j = ds.train[0, 1]
        assert ds.item_ids[j] == "x"
        np.testing.assert_allclose(ds.features[j], [0.8, 0.6], rtol=1e-6)

    def test_dataframe_features_matched_by_id(self):
        df = self.df()
        f = pd.DataFrame([[0.0, 5.0], [3.0, 4.0], [1.0, 0.0], [9.0, 9.0]], index=["z", "x", "y", "q"])
        ds = Dataset.from_dataframe(df, {"m": f, "n": f[[0]] * 2}, split_col="split")
        assert ds.item_ids.tolist() == ["x", "y", "z"]  # "q" is ignored
        np.testing.assert_allclose(ds.modality("m"), [[0.6, 0.8], [1, 0], [0, 1]], rtol=1e-6)
        np.testing.assert_allclose(ds.modality("n"), [[1], [1], [0]], rtol=1e-6)
        single = Dataset.from_dataframe(df, f, split_col="split")
        assert list(single.modalities) == ["features"]

    def test_user_id_order(self):
        ds = Dataset.from_dataframe(self.df(), user_id_order=["cat", "bob", "ann", "dan"],
                                    split_col="split")
        assert ds.n_users == 4 and ds.user_degree.tolist() == [1, 2, 1, 0]

    def test_duplicates_name_df_rows(self):
        df = pd.concat([self.df(), pd.DataFrame({"user": ["ann"], "item": ["z"], "split": [2]},
                                                 index=[99])])
        with pytest.raises(ValueError, match=r"df row 99 \(test\) repeats df row 11 \(train\)"):
            Dataset.from_dataframe(df, split_col="split")
        ds = Dataset.from_dataframe(df, split_col="split", duplicates="drop")
        assert ds.test.nnz == 2

    @pytest.mark.parametrize("kwargs, exc, msg", [
        (dict(user_col="uid"), ValueError, r"user_col='uid' is not a column of df"),
        (dict(split_col="fold"), ValueError, r"split_col='fold' is not a column of df"),
        (dict(split_col="split", split_values={"train": 0, "val": 1}), ValueError,
         r"split_col='split' has values that are not in split_values .*: \[2\]"),
        (dict(split_col="split", split_values={"train": 0, "dev": 1}), ValueError,
         "split_values keys must be 'train', 'val' or 'test'"),
        (dict(split_col="split", split_values={"train": 0, "val": 0, "test": 2}), ValueError,
         "maps to more than one split"),
        (dict(item_id_order=["x", "y"]), ValueError,
         r"item_col='item' has ids that are not in item_id_order: \['z'\]"),
        (dict(item_id_order=["x", "y", "z", "x"]), ValueError,
         "item_id_order must not contain repeated"),
        (dict(split_col="split", split_values={"train": 5, "val": [0, 1], "test": 2}), ValueError,
         "train is empty: no row of df is in the training split"),
    ])
    def test_errors(self, kwargs, exc, msg):
        with pytest.raises(exc, match=msg):
            Dataset.from_dataframe(self.df(), **kwargs)

    def test_feature_errors(self):
        df = self.df()
        f = pd.DataFrame([[1.0], [2.0]], index=["x", "y"])
        with pytest.raises(ValueError, match=r"features\['m'\] has no row for item id\(s\) \['z'\]"):
            Dataset.from_dataframe(df, {"m": f})
        f = pd.DataFrame([[1.0], [2.0], [3.0], [4.0]], index=["x", "y", "z", "x"])
        with pytest.raises(ValueError, match=r"features\['m'\]: the DataFrame index .* repeated"):
            Dataset.from_dataframe(df, {"m": f})
        with pytest.raises(ValueError, match=r"features\['m'\] has 2 rows but there are 3 items"):
            Dataset.from_dataframe(df, {"m": np.ones((2, 2))})
        f = pd.DataFrame({"a": ["p", "q", "r"]}, index=["x", "y", "z"])
        with pytest.raises(TypeError, match=r"features\['m'\]: columns must be numeric"):
            Dataset.from_dataframe(df, {"m": f})

    def test_input_errors(self):
        with pytest.raises(TypeError, match="df must be a pandas DataFrame"):
            Dataset.from_dataframe({"user": [0], "item": [0]})
        df = pd.DataFrame({"user": [0, None], "item": [0, 1]})
        with pytest.raises(ValueError, match=r"user_col='user' contains missing ids \(row 1\)"):
            Dataset.from_dataframe(df)
        with pytest.raises(ValueError, match="df has no rows"):
            Dataset.from_dataframe(pd.DataFrame({"user": [], "item": []}))


# --------------------------------------------------------------------------- MMRec

def write_mmrec(folder, rows, feats):
    folder.mkdir(exist_ok=True)
    name = folder.name
    pd.DataFrame(rows, columns=["userID", "itemID", "rating", "x_label"]).to_csv(
        folder / f"{name}.inter", sep="\t", index=False)
    for k, v in feats.items():
        np.save(folder / f"{k}.npy", v)
    return folder


class TestMMRec:
    rows = [[0, 1, 1, 0], [1, 0, 1, 0], [0, 2, 1, 1], [2, 2, 1, 0], [1, 1, 1, 2]]

    def test_synthetic(self, tmp_path):
        b = np.arange(8, dtype=np.float64).reshape(4, 2) + 1  # 4 items, item 3 never interacted
        a = np.eye(4, 3, dtype=np.float32) * 7
        folder = write_mmrec(tmp_path / "toy", self.rows, {"b_audio": b, "a_text": a})
        ds = load_mmrec(folder)
        assert ds.name == "toy" and (ds.n_users, ds.n_items) == (3, 4)
        assert ds.train.tolist() == [[0, 1], [1, 0], [2, 2]]
        assert ds.val.to_pairs().tolist() == [[0, 2]] and ds.test.to_pairs().tolist() == [[1, 1]]
        assert list(ds.modalities) == ["a_text", "b_audio"]  # sorted file names
        np.testing.assert_allclose(ds.modality("b_audio"), l2_rows(b), rtol=1e-6)
        ds2 = load_mmrec(folder, "toy", ["b_audio"])
        assert list(ds2.modalities) == ["b_audio"]
        ds3 = load_mmrec(folder, modalities={"audio": "b_audio.npy", "text": "a_text"})
        assert list(ds3.modalities) == ["audio", "text"]
        np.testing.assert_array_equal(ds3.modality("text"), ds.modality("a_text"))
        ds4 = load_mmrec(folder, modalities=[])
        assert ds4.n_features == 0 and ds4.n_items == 3

    def test_errors(self, tmp_path):
        folder = write_mmrec(tmp_path / "toy", self.rows, {"m": np.ones((2, 2))})
        with pytest.raises(ValueError,
                           match=r"modalities: m.npy has 2 rows but toy.inter has item id 2"):
            load_mmrec(folder)
        with pytest.raises(FileNotFoundError, match="feature file for modality 'x' not found"):
            load_mmrec(folder, modalities=["x"])
        with pytest.raises(FileNotFoundError, match="path: MMRec folder not found"):
            load_mmrec(tmp_path / "nope")
        with pytest.raises(FileNotFoundError, match="inter_file: interaction file not found"):
            load_mmrec(folder, "other")
        bad = write_mmrec(tmp_path / "bad", [[0, 0, 1, 0], [0, 1, 1, 3]], {})
        with pytest.raises(ValueError, match=r"column 'x_label' must hold 0/1/2 .*found \[3\]"):
            load_mmrec(bad)
        dup = write_mmrec(tmp_path / "dup", [[0, 0, 1, 0], [0, 1, 1, 0], [0, 0, 1, 2]], {})
        with pytest.raises(ValueError, match=r"dup.inter line 4 \(test\) repeats dup.inter line 2"):
            load_mmrec(dup)
        assert load_mmrec(dup, duplicates="drop").test.nnz == 0
        multi = tmp_path / "multi"
        multi.mkdir()
        for f in ("a.inter", "b.inter"):
            (multi / f).write_text("userID\titemID\tx_label\n0\t0\t0\n")
        with pytest.raises(ValueError, match=r"several .inter files .*a.inter, b.inter.*name="):
            load_mmrec(multi)
        assert load_mmrec(multi, inter_file="b.inter").n_train == 1  # rating column is optional
        assert load_mmrec(multi, "a").name == "a"
        empty = tmp_path / "empty"
        empty.mkdir()
        with pytest.raises(FileNotFoundError, match="path: no .inter file"):
            load_mmrec(empty)

    @needs_lastfm
    def test_lastfm(self):
        ds = load_mmrec(LASTFM, "lfm2k")
        assert (ds.n_users, ds.n_items) == (1858, 1425)
        assert (ds.n_train, ds.val.nnz, ds.test.nnz) == (44327, 4799, 7219)
        assert dict((k, v.stop - v.start) for k, v in ds.modalities.items()) == {
            "all-MiniLM-L6-v2": 384, "vggish": 128, "whisper": 512}
        assert ds.features.shape == (1425, 1024) and ds.features.dtype == np.float32
        raw = pd.read_csv(LASTFM / "lfm2k.inter", sep="\t")
        tr = raw[raw.x_label == 0]
        np.testing.assert_array_equal(ds.train, tr[["userID", "itemID"]].to_numpy())
        vgg = np.load(LASTFM / "vggish.npy")
        assert vgg.dtype == np.float64 and np.linalg.norm(vgg, axis=1).min() > 100  # raw scale
        np.testing.assert_allclose(ds.modality("vggish"), l2_rows(vgg), rtol=1e-5, atol=1e-7)
        for m in ds.modalities:
            np.testing.assert_allclose(np.linalg.norm(ds.modality(m), axis=1), 1.0, rtol=1e-5)
        assert int((ds.user_degree == 0).sum()) == 0 and int((ds.item_degree == 0).sum()) == 0

    @needs_lastfm
    def test_lastfm_needs_a_name(self):
        with pytest.raises(ValueError, match="several .inter files .*lfm2k.inter, lfm2k_og_ids.inter"):
            load_mmrec(LASTFM)


# --------------------------------------------------------------------------- MMGCN

def save_object_rows(path, rows):
    arr = np.empty(len(rows), dtype=object)
    arr[:] = rows
    np.save(path, arr, allow_pickle=True)


class TestMMGCN:
    def test_train_npy_and_features(self, tmp_path):
        nu = 3  # items are node ids 3.. (item = node - 3)
        np.save(tmp_path / "train.npy", np.array([[2, 3], [0, 4], [1, 3], [0, 5]]))
        save_object_rows(tmp_path / "val_full.npy", [[0, 3], [1, 5, 4]])
        save_object_rows(tmp_path / "test_full.npy", [[2, 6]])
        v = np.arange(8.0).reshape(4, 2) + 1
        np.save(tmp_path / "feat_v.npy", v)
        np.save(tmp_path / "feat_t.npy", np.ones((4, 3), dtype=np.float32))
        ds = load_mmgcn(tmp_path)
        assert (ds.n_users, ds.n_items) == (3, 4)
        assert ds.train.tolist() == [[2, 0], [0, 1], [1, 0], [0, 2]]  # file order
        assert ds.val.to_pairs().tolist() == [[0, 0], [1, 1], [1, 2]]
        assert ds.test.to_pairs().tolist() == [[2, 3]]
        np.testing.assert_array_equal(ds.item_ids, nu + np.arange(4))
        assert list(ds.modalities) == ["visual", "textual"]
        np.testing.assert_allclose(ds.modality("visual"), l2_rows(v), rtol=1e-6)
        ds2 = load_mmgcn(tmp_path, features={})
        assert ds2.n_features == 0
        ds3 = load_mmgcn(tmp_path, features={"img": v, "txt": "feat_t.npy"}, n_users=3)
        assert list(ds3.modalities) == ["img", "txt"] and ds3.n_features == 5
        ds4 = load_mmgcn(tmp_path, features={}, n_items=6)
        assert ds4.n_items == 6 and ds4.item_degree[4:].tolist() == [0, 0]

    def test_dict_format(self, tmp_path):
        np.save(tmp_path / "user_item_dict.npy", {1: {5, 3}, 0: [4], 2: set()}, allow_pickle=True)
        save_object_rows(tmp_path / "test_full.npy", [[2, 3, 4]])
        ds = load_mmgcn(tmp_path, name="d")
        assert ds.name == "d" and (ds.n_users, ds.n_items) == (3, 3)
        assert ds.train.tolist() == [[0, 1], [1, 0], [1, 2]]  # by user, then item
        assert ds.val.nnz == 0 and ds.test.to_pairs().tolist() == [[2, 0], [2, 1]]
        assert ds.user_degree.tolist() == [1, 2, 0]

    def test_n_items_from_larger_features(self, tmp_path):
        np.save(tmp_path / "train.npy", np.array([[0, 2], [1, 3]]))
        np.save(tmp_path / "feat_a.npy", np.ones((5, 2)))
        ds = load_mmgcn(tmp_path)
        assert (ds.n_users, ds.n_items) == (2, 5) and list(ds.modalities) == ["acoustic"]

    def test_errors(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="no train.npy, user_item_train_dict.npy"):
            load_mmgcn(tmp_path)
        np.save(tmp_path / "train.npy", np.array([[0, 2], [1, 3]]))
        with pytest.raises(ValueError, match=r"train.npy: item node id 2 is below n_users=3"):
            load_mmgcn(tmp_path, n_users=3)
        with pytest.raises(FileNotFoundError, match=r"features\['v'\]: file not found"):
            load_mmgcn(tmp_path, features={"v": "nope.npy"})
        with pytest.raises(ValueError, match=r"features\['v'\] has 1 rows but there are 2 items"):
            load_mmgcn(tmp_path, features={"v": np.ones((1, 2))})
        np.save(tmp_path / "train.npy", np.array([[0.0, 2.0]]))
        with pytest.raises(ValueError, match=r"train.npy must be an \(N, 2\) integer array"):
            load_mmgcn(tmp_path)
        (tmp_path / "train.npy").unlink()
        np.save(tmp_path / "user_item_train_dict.npy", np.array([[0, 2]], dtype=object),
                allow_pickle=True)
        with pytest.raises(ValueError, match="user_item_train_dict.npy must hold a pickled dict"):
            load_mmgcn(tmp_path)
        np.save(tmp_path / "user_item_train_dict.npy", {0: {2}, 1: {3}}, allow_pickle=True)
        save_object_rows(tmp_path / "test_full.npy", [[0, "a"]])
        with pytest.raises(ValueError, match=r"test_full.npy: row 0 is not \[user, item, item"):
            load_mmgcn(tmp_path)

    @needs_movielens
    def test_movielens(self):
        t0 = time.perf_counter()
        ds = load_mmgcn(MOVIELENS)
        elapsed = time.perf_counter() - t0
        assert ds.name == "mmgcn-movielens-clcrec"
        assert (ds.n_users, ds.n_items) == (55485, 5986)
        assert (ds.n_train, ds.val.nnz, ds.test.nnz) == (922007, 149366, 174487)
        assert ds.features.shape == (5986, 0) and dict(ds.modalities) == {}
        assert ds.item_ids[0] == 55485 and ds.item_ids[-1] == 61470
        d = np.load(MOVIELENS / "user_item_train_dict.npy", allow_pickle=True).item()
        for u in (0, 777, 55484):
            assert ds.train_csr.row(u).tolist() == sorted(i - 55485 for i in d[u])
        cold = np.load(MOVIELENS / "cold_set.npy") - 55485
        assert (ds.item_degree[cold] == 0).all() and (ds.item_degree > 0).sum() == 5986 - cold.size
        print(f"load_mmgcn(movielens) took {elapsed:.1f} s")
