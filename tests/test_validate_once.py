"""Validate once: a Dataset is checked when it is built, never again by the stages of a fit.

Every validation helper of painvrl (``as_float_array``, ``as_index_array``,
``as_mask``, the duplicate-pair and id-range checks, ``loss_weights``,
``ultragcn_betas``, ``UserItemCSR``'s own checks) and ``numpy.isfinite`` are wrapped,
in every painvrl module that imported them, while a fit runs on a Dataset built
beforehand.  No call may receive an array of the dataset (or a view of one), no
``np.isfinite`` may run over the feature table, and the pair checks must not run at
all.  The public functions handed raw arrays still reject NaN, out-of-range ids and
repeated pairs, and the dataset's arrays cannot be made writeable again (which is
what makes trusting them sound).
"""
import copy
import functools
import pickle
import sys
import types

import numpy as np
import pytest

import painvrl
from painvrl import Backbone, UserItemCSR, datasets, topk
from painvrl.data.dataset import Dataset
from painvrl.evaluation import compare
from painvrl.evaluation.metrics import ranking_metrics
from painvrl.invariance import InvRL, PaInvRL, identify_environments
from painvrl.invariance.convert import attention_weights, convert_item_vectors, convert_loss_grad
from painvrl.invariance.mask import _learn_mask_dataset, learn_mask, mask_step, ultragcn_betas
from painvrl.models.functional import loss_weights, rec_loss_grad

HELPERS = ("as_float_array", "as_index_array", "as_mask", "check_distinct_pairs",
           "find_duplicate_pairs", "_find_duplicates", "_check_range", "_dedupe_splits",
           "_prepare_features", "loss_weights", "ultragcn_betas")
# Checks that only ever concern the pairs of a dataset: a fit must not run them at all.
PAIR_CHECKS = ("check_distinct_pairs", "find_duplicate_pairs", "_find_duplicates",
               "_check_range", "_dedupe_splits", "ultragcn_betas", "UserItemCSR.from_pairs",
               "UserItemCSR.__post_init__")

TINY = dict(d_id=8, d_content=8, n_neg=4, batch_size=128, seed=0, n_threads=1, progress=False)


@pytest.fixture(scope="module")
def ds():
    return datasets.make_spurious(n_users=80, n_items=60, n_interactions=1500, seed=0)[0]


class Spy:
    """Records every validation-helper call (name, array arguments) while ``on``."""

    def __init__(self):
        self.on = False
        self.calls = []          # (helper, [ndarray args])
        self.isfinite = []       # shapes np.isfinite was called on

    def wrap(self, name, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            if self.on:
                arrays = [a for a in list(args) + list(kwargs.values())
                          if isinstance(a, np.ndarray)]
                self.calls.append((name, arrays))
            return fn(*args, **kwargs)
        return wrapper

    def names(self):
        return [name for name, _ in self.calls]


@pytest.fixture
def spy(monkeypatch):
    s = Spy()
    for mod in [m for n, m in list(sys.modules.items()) if n.startswith("painvrl")]:
        for name in HELPERS:
            fn = getattr(mod, name, None) if isinstance(mod, types.ModuleType) else None
            if callable(fn) and getattr(fn, "__module__", "").startswith("painvrl"):
                monkeypatch.setattr(mod, name, s.wrap(name, fn))
    monkeypatch.setattr(UserItemCSR, "__post_init__",
                        s.wrap("UserItemCSR.__post_init__", UserItemCSR.__post_init__))
    monkeypatch.setattr(UserItemCSR, "from_pairs", classmethod(
        s.wrap("UserItemCSR.from_pairs", UserItemCSR.from_pairs.__func__)))
    isfinite = np.isfinite

    def counted(x, *args, **kwargs):
        if s.on:
            s.isfinite.append(np.shape(x))
        return isfinite(x, *args, **kwargs)

    monkeypatch.setattr(np, "isfinite", counted)
    return s


def dataset_arrays(ds):
    """Every array a Dataset holds (built ones included), to spot re-checks of any of them."""
    arrays = [ds.train, ds.features, ds.user_degree, ds.item_degree, *ds._train_columns()]
    for csr in (ds.train_csr, ds.val, ds.test):
        arrays += [csr.indptr, csr.indices]
    return arrays


def assert_not_rechecked(spy, ds):
    ran = [n for n in spy.names() if n in PAIR_CHECKS]
    assert not ran, f"pair checks re-ran on a trusted Dataset: {ran}"
    owned = dataset_arrays(ds)
    for name, arrays in spy.calls:
        for a in arrays:
            hit = [k for k, d in enumerate(owned) if np.may_share_memory(a, d)]
            assert not hit, f"{name} re-checked an array of the Dataset (shape {a.shape})"
    assert ds.features.shape not in spy.isfinite, "np.isfinite scanned the feature table"


def run(spy, fn):
    spy.on = True
    try:
        return fn()
    finally:
        spy.on = False


# --------------------------------------------------------------------------- no re-checks

def tiny_pipeline(cls, **kw):
    params = dict(n_envs=2, n_outer=1, env_epochs=1, env_rounds=1, mask_epochs=1,
                  max_epochs=2, eval_every=1, patience=1, final_patience=1, **TINY)
    return cls(**{**params, **kw})


FITS = {
    "Backbone": lambda ds: Backbone(max_epochs=2, eval_every=1, **TINY).fit(ds),
    "Backbone gate": lambda ds: Backbone(max_epochs=2, eval_every=1,
                                         gate=np.full(ds.n_features, 0.5), **TINY).fit(ds),
    "Backbone attention": lambda ds: Backbone(max_epochs=2, eval_every=1, fusion="attention",
                                              mask=np.full(ds.n_features, 0.5),
                                              **TINY).fit(ds),
    "InvRL": lambda ds: tiny_pipeline(InvRL).fit(ds),
    "PaInvRL": lambda ds: tiny_pipeline(PaInvRL).fit(ds),
    "identify_environments": lambda ds: identify_environments(
        ds, mask=np.full(ds.n_features, 0.5), n_envs=2, epochs=1, max_rounds=2, d_id=8,
        d_content=8, n_neg=4, seed=0, n_threads=1),
}


def test_the_spy_sees_the_checks_of_raw_arrays(ds, spy):
    """Control: the same arrays handed to the public function as raw arrays are checked."""
    rng = np.random.default_rng(0)
    U = rng.normal(size=(ds.n_users, 12)).astype(np.float32)
    V = rng.normal(size=(ds.n_items, 6)).astype(np.float32)
    run(spy, lambda: learn_mask(ds.train[:, 0], ds.train[:, 1], np.zeros(ds.n_train, int), U,
                                V, ds.features, epochs=1, n_neg=2))
    assert {"check_distinct_pairs", "ultragcn_betas", "as_index_array"} <= set(spy.names())
    assert ds.features.shape in spy.isfinite
    with pytest.raises(AssertionError, match="re-ran|re-checked|scanned"):
        assert_not_rechecked(spy, ds)


@pytest.mark.parametrize("stage", list(FITS))
def test_a_fit_does_not_recheck_the_dataset(ds, spy, stage):
    fresh = Dataset(ds.train, ds.val, ds.test, ds.features, ds.n_users, ds.n_items,
                    normalize=False)       # nothing cached yet: the fit starts from scratch
    run(spy, lambda: FITS[stage](fresh))
    assert_not_rechecked(spy, fresh)


def test_no_feature_scan_at_all_during_a_pipeline(ds, spy):
    """The strong form: zero full-table np.isfinite passes and zero pair checks per fit
    (InvRL's reference code would need one per outer iteration and one per validation)."""
    run(spy, lambda: tiny_pipeline(PaInvRL, n_outer=2).fit(ds))
    assert spy.isfinite.count(ds.features.shape) == 0
    assert not [n for n in spy.names() if n in PAIR_CHECKS]
    assert "loss_weights" not in spy.names()  # the degrees of a Dataset are not re-checked


def test_evaluation_of_a_dataset_split_does_not_recheck(ds, spy):
    model = tiny_pipeline(PaInvRL).fit(ds)

    def evaluate_all():
        for exclude in ("train", "train+val", "none"):
            model.evaluate(ds, "test", ks=(5,), exclude=exclude)
        model.attention_weights(ds)
        model.final_.item_vectors()
        compare.compare({"m": model}, {"s": (ds, "test")}, ks=(5,), exclude="train+val")
    run(spy, evaluate_all)
    assert_not_rechecked(spy, ds)


def test_trusted_paths_compute_what_the_checked_ones_do(ds):
    rng = np.random.default_rng(0)
    U = rng.normal(size=(ds.n_users, 12)).astype(np.float32)
    V = rng.normal(size=(ds.n_items, 6)).astype(np.float32)
    env = rng.integers(0, 3, ds.n_train)
    kw = dict(n_envs=3, epochs=2, batch_size=64, n_neg=3, seed=5)
    public = learn_mask(ds.train[:, 0], ds.train[:, 1], env, U, V, ds.features, **kw)
    bu, bi = ultragcn_betas(ds.train[:, 0], ds.train[:, 1], ds.n_users, ds.n_items)
    for trusted in (_learn_mask_dataset(ds, env, U, V, **kw),
                    _learn_mask_dataset(ds, env, U, V, beta_u=bu, beta_i=bi, **kw)):
        for field in ("mask", "W", "mu", "erm_loss", "irm_loss", "gamma", "gamma_steps",
                      "env_counts", "empty_envs"):
            np.testing.assert_array_equal(getattr(trusted, field), getattr(public, field))
    with pytest.raises(TypeError, match=r"learn_mask\(\) got an unexpected keyword"):
        _learn_mask_dataset(ds, env, U, V, no_such_option=1)
    with pytest.raises(ValueError, match="env must have one label per pair"):
        _learn_mask_dataset(ds, env[:-1], U, V)
    with pytest.raises(ValueError, match="U and V must have one row per user and item"):
        _learn_mask_dataset(ds, env, U[:-1], V)
    with pytest.raises(ValueError, match="U contains NaN"):   # not the dataset's: checked
        _learn_mask_dataset(ds, env, np.where(U > 2, np.nan, U), V)
    model = Backbone(max_epochs=1, fusion="attention", mask=np.full(ds.n_features, 0.3),
                     **TINY).fit(ds)
    np.testing.assert_array_equal(model.item_vectors(), model.item_vectors(ds.features))
    np.testing.assert_array_equal(model.item_vectors(),
                                  model.item_vectors(ds.features.astype(np.float64)))
    pairs = np.concatenate([ds.train, ds.val.to_pairs()])
    trusted, checked = ds._train_val_csr(), UserItemCSR.from_pairs(
        pairs[:, 0], pairs[:, 1], ds.n_users, ds.n_items)
    np.testing.assert_array_equal(trusted.indptr, checked.indptr)
    np.testing.assert_array_equal(trusted.indices, checked.indices)


def test_train_columns_are_made_once(ds):
    users, items = ds._train_columns()
    assert ds._train_columns()[0] is users
    np.testing.assert_array_equal(users, ds.train[:, 0])
    np.testing.assert_array_equal(items, ds.train[:, 1])
    assert users.dtype == np.int64 and users.flags.c_contiguous and not users.flags.writeable


# --------------------------------------------------------------------------- read-only

def owned_arrays(ds):
    return {"train": ds.train, "features": ds.features, "user_degree": ds.user_degree,
            "item_degree": ds.item_degree, "user_ids": ds.user_ids, "item_ids": ds.item_ids,
            "train_csr.indptr": ds.train_csr.indptr, "train_csr.indices": ds.train_csr.indices,
            "val.indptr": ds.val.indptr, "val.indices": ds.val.indices,
            "test.indptr": ds.test.indptr, "test.indices": ds.test.indices,
            "users column": ds._train_columns()[0], "items column": ds._train_columns()[1],
            "train[:, 0]": ds.train[:, 0], "modality": ds.modality("features")}


@pytest.mark.parametrize("how", ["built", "pickled", "copied"])
def test_dataset_arrays_cannot_be_made_writeable(ds, how):
    d = {"built": lambda: ds, "pickled": lambda: pickle.loads(pickle.dumps(ds)),
         "copied": lambda: copy.deepcopy(ds)}[how]()
    for name, arr in owned_arrays(d).items():
        assert not arr.flags.writeable, name
        with pytest.raises(ValueError, match="WRITEABLE"):
            arr.flags.writeable = True
        with pytest.raises(ValueError, match="read-only"):
            arr[...] = 0
    assert d.features.flags.c_contiguous and d.train.flags.c_contiguous


def test_raw_ids_of_any_dtype_stay_readonly():
    d = Dataset.from_arrays([[0, 1], [1, 0]], user_ids=np.array(["ann", "bob"], dtype=object),
                            item_ids=np.array(["x", "y"]))
    for arr in (d.user_ids, d.item_ids):
        assert not arr.flags.writeable
    assert d.user_ids.tolist() == ["ann", "bob"] and d.item_ids.tolist() == ["x", "y"]


# --------------------------------------------------------------------------- raw input

@pytest.fixture(scope="module")
def raw(ds):
    rng = np.random.default_rng(1)
    U = rng.normal(size=(ds.n_users, 12)).astype(np.float32)
    V = rng.normal(size=(ds.n_items, 6)).astype(np.float32)
    X = np.array(ds.features)
    users, items = np.array(ds.train[:, 0]), np.array(ds.train[:, 1])
    return types.SimpleNamespace(U=U, V=V, X=X, users=users, items=items,
                                 env=rng.integers(0, 2, ds.n_train))


def nan_at(a, index=(0, 0)):
    a = np.array(a, dtype=np.float64)
    a[index] = np.nan
    return a


def out_of_range(ids, high):
    ids = np.array(ids)
    ids[3] = high
    return ids


def repeat_first(ids):
    ids = np.array(ids)
    ids[1] = ids[0]
    return ids


def raw_cases(r, ds, pipeline):
    fitted_attention = Backbone(max_epochs=1, fusion="attention",
                                mask=np.full(ds.n_features, 0.5), **TINY).fit(ds)
    W = np.zeros((8, ds.n_features), np.float32)
    A, c, q = np.zeros((4, 8), np.float32), np.zeros(4, np.float32), np.zeros(4, np.float32)
    m = np.full(ds.n_features, 0.5, np.float32)
    lm = lambda **kw: learn_mask(**{**dict(users=r.users, items=r.items, env=r.env,  # noqa
                                           U=r.U, V=r.V, X=r.X, epochs=1), **kw})
    batch_items = np.stack([r.items[:4], r.items[4:8]], axis=1)
    bu, bi = loss_weights(ds.user_degree, ds.item_degree)
    Ux = np.zeros((ds.n_users, 16), np.float32)
    Vx = np.zeros((ds.n_items, 8), np.float32)
    return {
        "learn_mask NaN X": (lambda: lm(X=nan_at(r.X)), ValueError, "X contains NaN"),
        "learn_mask user id": (lambda: lm(users=out_of_range(r.users, ds.n_users)),
                               ValueError, "users must lie in"),
        "learn_mask item id": (lambda: lm(items=out_of_range(r.items, ds.n_items)),
                               ValueError, "items must lie in"),
        "learn_mask repeat": (lambda: lm(users=repeat_first(r.users),
                                         items=repeat_first(r.items)),
                              ValueError, "distinct"),
        "learn_mask float ids": (lambda: lm(users=r.users.astype(float)), TypeError,
                                 "integer ids"),
        "loss_weights NaN": (lambda: loss_weights(nan_at(ds.user_degree, 0), ds.item_degree),
                             ValueError, "contains NaN"),
        "ultragcn_betas id": (lambda: ultragcn_betas(out_of_range(r.users, ds.n_users),
                                                     r.items, ds.n_users, ds.n_items),
                              ValueError, "must lie in"),
        "convert_item_vectors NaN X": (
            lambda: convert_item_vectors(W, None, A, c, q, m, nan_at(r.X)), ValueError,
            "X contains NaN"),
        "attention_weights NaN X": (
            lambda: attention_weights(W, None, A, c, q, m, nan_at(r.X)), ValueError,
            "X contains NaN"),
        "item_vectors(features) NaN": (
            lambda: fitted_attention.item_vectors(nan_at(r.X)), ValueError, "X contains NaN"),
        "PaInvRL.attention_weights duck": (
            lambda: pipeline.attention_weights(
                types.SimpleNamespace(features=nan_at(r.X))), ValueError, "X contains NaN"),
        "topk NaN": (lambda: topk(nan_at(r.U), r.U[:5], 2), ValueError, "contains NaN"),
        "ranking_metrics id": (lambda: ranking_metrics(np.full((ds.n_users, 2), ds.n_items),
                                                       ds.test, ks=1),
                               ValueError, "topk_ids must lie in"),
        "mask_step NaN": (lambda: mask_step(
            np.zeros((ds.n_users, 14)), r.V, r.X, nan_at(W), m, np.zeros((1, ds.n_features)),
            r.users[None, :4], batch_items[None, :4, :1], bu, bi), ValueError,
            "W contains NaN"),
        "rec_loss_grad id": (lambda: rec_loss_grad(
            Ux, Vx, W, None, None, r.X, r.users[:4],
            out_of_range(np.zeros((4, 2), np.int64), ds.n_items), bu, bi),
            ValueError, "items must lie in"),
        "convert_loss_grad id": (lambda: convert_loss_grad(
            Ux, Vx, W, None, A, c, q, m, r.X, out_of_range(r.users[:4], ds.n_users),
            batch_items[:4], bu, bi), ValueError, "users must lie in"),
        "from_pairs id": (lambda: UserItemCSR.from_pairs([0, 5], [0, 0], 2, 3), ValueError,
                          "must lie in"),
        "UserItemCSR unsorted": (lambda: UserItemCSR([0, 2], [1, 0], 1, 2), ValueError,
                                 "sorted, distinct"),
        "Backbone.fit duck": (lambda: Backbone(**TINY).fit(_duck(ds)), TypeError,
                              "dataset must be a painvrl.Dataset"),
        "PaInvRL.fit duck": (lambda: tiny_pipeline(PaInvRL).fit(_duck(ds)), TypeError,
                             "dataset must be a painvrl.Dataset"),
        "identify_environments duck": (lambda: identify_environments(_duck(ds)), TypeError,
                                       "dataset must be a painvrl.Dataset"),
        "Dataset NaN features": (lambda: Dataset(ds.train, features=nan_at(r.X)), ValueError,
                                 "contains NaN"),
        "Dataset repeat": (lambda: Dataset(np.concatenate([ds.train, ds.train[:1]])),
                           ValueError, "duplicate"),
    }


def _duck(ds):
    """Something with a Dataset's attributes that is not one: not trusted."""
    return types.SimpleNamespace(**{k: getattr(ds, k) for k in Dataset.__slots__
                                    if not k.startswith("_")})


CASES = ["learn_mask NaN X", "learn_mask user id", "learn_mask item id", "learn_mask repeat",
         "learn_mask float ids", "loss_weights NaN", "ultragcn_betas id",
         "convert_item_vectors NaN X", "attention_weights NaN X", "item_vectors(features) NaN",
         "PaInvRL.attention_weights duck", "topk NaN", "ranking_metrics id", "mask_step NaN",
         "rec_loss_grad id", "convert_loss_grad id", "from_pairs id", "UserItemCSR unsorted",
         "Backbone.fit duck", "PaInvRL.fit duck", "identify_environments duck",
         "Dataset NaN features", "Dataset repeat"]


@pytest.fixture(scope="module")
def cases(raw, ds):
    return raw_cases(raw, ds, tiny_pipeline(PaInvRL).fit(ds))


@pytest.mark.parametrize("case", CASES)
def test_public_functions_still_check_raw_arrays(cases, case):
    fn, exc, match = cases[case]
    with pytest.raises(exc, match=match):
        fn()


def test_every_case_is_listed(cases):
    assert sorted(cases) == sorted(CASES)
