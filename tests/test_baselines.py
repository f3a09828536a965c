"""The estimator contract of the baselines LightGCN, VBPR and FREEDOM, each run through the
same tests: fit / recommend / score, quality above popularity, bit-identical results at any
thread count, persistence and resume, callback and early stopping, bad hyperparameters."""
import numpy as np
import pytest

from painvrl import FREEDOM, VBPR, LightGCN, NotFittedError, Popularity, datasets

EPS32 = float(np.finfo(np.float32).eps)
SETTINGS = {
    LightGCN: dict(dim=8, n_layers=2),
    VBPR: dict(k=6, k2=6),
    FREEDOM: dict(dim=8, dropout=0.5, align=1e-2, knn_k=5),
}
MODELS = list(SETTINGS)


@pytest.fixture(scope="module")
def small():
    return datasets.make_multimodal(n_users=200, n_items=250, n_interactions=6_000, seed=4)


def quick(model, **kw):
    base = dict(lr=1e-2, batch_size=256, max_epochs=6, eval_every=2, patience=100,
                progress=False, seed=5, n_threads=1, **SETTINGS[model])
    base.update(kw)
    return model(**base)


@pytest.mark.parametrize("model", MODELS)
def test_contract_and_quality(small, model):
    est = quick(model, max_epochs=30, eval_every=5)
    with pytest.raises(NotFittedError):
        est.recommend(0)
    assert est.fit(small) is est
    assert est.n_epochs_ == 30 and len(est.history_) == 30
    ids, scores = est.recommend([0, 5], k=7)
    assert ids.shape == (2, 7) and np.all(np.diff(scores, axis=1) <= 0)
    for row, u in zip(ids, [0, 5]):
        assert not set(row) & set(small.train_csr.row(u))
    # score() is the same dot product in NumPy: equal up to float32 rounding
    U, V = est.user_vectors(), est.item_vectors()
    tol = 4 * U.shape[1] * EPS32 * np.abs(U[0]).max() * np.abs(V).max()
    np.testing.assert_allclose(est.score([0])[0, ids[0]], scores[0], rtol=0, atol=tol)
    rec = lambda m: m.evaluate(small, "test", ks=(20,), metrics=("recall",))["value"].iloc[0]  # noqa: E731
    assert rec(est) > rec(Popularity().fit(small)) + 0.02


@pytest.mark.parametrize("model", MODELS)
def test_same_seed_same_model_any_thread_count(small, model):
    a = quick(model, n_threads=1).fit(small)
    b = quick(model, n_threads=2).fit(small)
    for name, tensor in a._live.items():
        np.testing.assert_array_equal(tensor, b._live[name], err_msg=name)
    np.testing.assert_array_equal(a.history_["loss"], b.history_["loss"])
    np.testing.assert_array_equal(a.user_vectors(), b.user_vectors())
    c = quick(model, seed=6).fit(small)
    assert not np.array_equal(a.user_vectors(), c.user_vectors())


@pytest.mark.parametrize("model", MODELS)
def test_save_load_and_resume_equal_an_uninterrupted_run(small, model, tmp_path):
    full = quick(model, max_epochs=6).fit(small)
    part = quick(model, max_epochs=3).fit(small)
    part.save(tmp_path / "m")
    loaded = model.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.recommend([1, 2])[0], part.recommend([1, 2])[0])
    loaded.set_params(max_epochs=6).fit(small, resume=True)
    assert loaded.n_epochs_ == 6 and loaded.best_epoch_ == full.best_epoch_
    for name, tensor in full._live.items():
        np.testing.assert_array_equal(loaded._live[name], tensor, err_msg=name)
    with pytest.raises(ValueError, match="holds a"):
        (LightGCN if model is not LightGCN else VBPR).load(tmp_path / "m")


@pytest.mark.parametrize("model", MODELS)
def test_callback_stops_and_early_stopping_keeps_the_best(small, model):
    seen = []
    est = quick(model).fit(small, callback=lambda m, info: seen.append(info["epoch"]) or
                           info["epoch"] == 3)
    assert seen == [1, 2, 3] and est.n_epochs_ == 3
    est = quick(model, max_epochs=40, patience=0, lr=0.3).fit(small)
    checks = est.history_.dropna(subset=["ndcg@10"])
    assert est.best_score_ == checks["ndcg@10"].max()
    assert est.best_epoch_ == int(checks.loc[checks["ndcg@10"].idxmax(), "epoch"])
    # the published vectors are the best check's, not the last epoch's
    assert est.evaluate(small, "val", ks=(10,), metrics=("ndcg",))["value"].iloc[0] == \
        pytest.approx(est.best_score_, rel=1e-6)


@pytest.mark.parametrize("model,param,value,exc,match", [
    (LightGCN, "dim", 0, ValueError, "LightGCN: dim must be >= 1"),
    (LightGCN, "n_layers", -1, ValueError, "LightGCN: n_layers must be >= 0"),
    (LightGCN, "n_layers", 1.5, TypeError, "LightGCN: n_layers must be an integer"),
    (LightGCN, "lr", 0.0, ValueError, "LightGCN: lr must be finite and > 0"),
    (LightGCN, "reg", float("nan"), ValueError, "LightGCN: reg must be finite"),
    (LightGCN, "batch_size", True, TypeError, "LightGCN: batch_size must be an integer"),
    (LightGCN, "monitor", "ndcg", ValueError, "monitor must look like"),
    (LightGCN, "seed", -1, ValueError, "LightGCN: seed"),
    (VBPR, "k", 0, ValueError, "VBPR: k must be >= 1"),
    (VBPR, "k2", 2.5, TypeError, "VBPR: k2 must be an integer"),
    (VBPR, "lam_e", -1.0, ValueError, "VBPR: lam_e must be"),
    (VBPR, "normalize", "yes", TypeError, "VBPR: normalize must be True or False"),
    (VBPR, "lr", float("inf"), ValueError, "VBPR: lr must be finite"),
    (FREEDOM, "dropout", 1.0, ValueError, "FREEDOM: dropout must be < 1"),
    (FREEDOM, "dropout", -0.1, ValueError, "FREEDOM: dropout"),
    (FREEDOM, "knn_k", 10_000, ValueError, "FREEDOM: knn_k must be <= n_items"),
    (FREEDOM, "knn_k", 0, ValueError, "FREEDOM: knn_k must be >= 1"),
    (FREEDOM, "modality_weights", [1.0], ValueError, "FREEDOM: modality_weights must hold 3"),
    (FREEDOM, "modality_weights", "abc", ValueError, "FREEDOM: modality_weights"),
    (FREEDOM, "align", float("nan"), ValueError, "FREEDOM: align must be finite"),
    (FREEDOM, "n_ii_layers", -1, ValueError, "FREEDOM: n_ii_layers must be >= 0"),
])
def test_bad_hyperparameters(small, model, param, value, exc, match):
    with pytest.raises(exc, match=match):
        quick(model, **{param: value}).fit(small)


@pytest.mark.parametrize("model", MODELS)
def test_fit_needs_a_dataset(small, model):
    with pytest.raises(TypeError, match=f"{model.__name__}.fit: dataset must be a painvrl"):
        quick(model).fit(small.train)


def test_freedom_needs_item_features(small):
    from painvrl import Dataset

    ds = Dataset(small.train, small.val.to_pairs(), small.test.to_pairs(),
                 n_users=small.n_users, n_items=small.n_items)
    with pytest.raises(ValueError, match="FREEDOM.fit: the dataset has no item features"):
        quick(FREEDOM, knn_k=3).fit(ds)
