"""compare() with outside models: score(users) and recommend(users, k), and the cornac and
implicit adapters (skipped when those libraries are not installed)."""
import numpy as np
import pandas as pd
import pytest

from painvrl import datasets
from painvrl.evaluation import paired_test
from painvrl.evaluation.compare import compare
from painvrl.models import CornacModel, ImplicitModel, NotFittedError, Popularity


@pytest.fixture(scope="module")
def data():
    return datasets.make_multimodal(n_users=60, n_items=50, n_interactions=1500, seed=0)


@pytest.fixture(scope="module")
def vectors(data):
    # Small integers: every score is exact in float32 and many tie, so the tie rule
    # (lower id first) is exercised, and the C top-k and a NumPy sort must agree exactly.
    rng = np.random.default_rng(1)
    U = rng.integers(-2, 3, (data.n_users, 3)).astype(np.float32)
    V = rng.integers(-2, 3, (data.n_items, 3)).astype(np.float32)
    return U, V


class Scores:
    """An outside model that only gives dense score rows (float64)."""

    def __init__(self, U, V):
        self.U, self.V = U.astype(np.float64), V.astype(np.float64)

    def score(self, users):
        return self.U[users] @ self.V.T


class Ranked:
    """An outside model that only gives ranked ids, training items included, as most
    libraries do without their own filter; ``width`` caps how many it returns."""

    def __init__(self, U, V, width=None):
        self.scores = U.astype(np.float64) @ V.T.astype(np.float64)
        self.width = width

    def recommend(self, users, k):
        order = np.argsort(-self.scores[users], axis=1, kind="stable")
        ids = order[:, :min(k, self.width or k)]
        return ids, np.take_along_axis(self.scores[users], ids, axis=1)


@pytest.mark.parametrize("exclude", ["train", "train+val", "none"])
def test_score_and_recommend_models_equal_the_vector_path(data, vectors, exclude):
    U, V = vectors
    sp = {"test": (data, "test"), "val": (data, "val")}
    kw = dict(ks=(1, 5, 10), metrics=("recall", "ndcg", "precision", "map"), exclude=exclude,
              per_user=True)
    df = compare({"vec": (U, V), "score": Scores(U, V), "rec": Ranked(U, V)}, sp, **kw)
    ref = df[df.model == "vec"].drop(columns="model").reset_index(drop=True)
    for name in ("score", "rec"):
        got = df[df.model == name].drop(columns="model").reset_index(drop=True)
        pd.testing.assert_frame_equal(got, ref)


def test_mask_value_is_honoured_by_score_models(data, vectors):
    U, V = vectors
    kw = dict(ks=(5, 20), mask_value=1e-5, ndcg="invrl", per_user=True)
    a = compare({"m": (U, V)}, {"t": data}, **kw)
    b = compare({"m": Scores(U, V)}, {"t": data}, **kw)
    pd.testing.assert_frame_equal(a, b)
    with pytest.raises(ValueError, match=r"models\['m'\] only gives recommend.*mask_value"):
        compare({"m": Ranked(U, V)}, {"t": data}, mask_value=1e-5)


def test_short_rankings_leave_empty_slots_not_lower_items(data, vectors):
    """A recommend model that returns fewer items than asked: its missing slots count as
    misses, by hand: the hits of the first 3 unexcluded items only."""
    U, V = vectors
    model = Ranked(U, V, width=3)
    df = compare({"m": model}, {"t": data}, ks=10, metrics="recall", per_user=True,
                 exclude="none")
    test = data.test
    for _, row in df.iterrows():
        u = int(row.user)
        top = model.recommend(np.array([u]), 3)[0][0]
        hits = len(set(top) & set(test.row(u)))
        assert row["recall@10"] == pytest.approx(hits / len(test.row(u)))


def test_paired_test_between_an_outside_and_an_own_model(data, vectors):
    """The per-user frames of an outside and an own model pair user by user: the test
    on the frames equals the test on the values aligned by hand."""
    U, V = vectors
    pop = Popularity().fit(data)
    df = compare({"pop": pop, "outside": Scores(U, V)}, {"t": data}, ks=10, metrics="recall",
                 per_user=True)
    a, b = df[df.model == "pop"], df[df.model == "outside"]
    res = paired_test(a, b, metric="recall@10", test="t")
    assert res.n == len(a) == len(b) and res.n_dropped == 0
    by_hand = paired_test(a.set_index("user")["recall@10"].to_numpy(),
                          b.set_index("user").loc[a.user, "recall@10"].to_numpy(), test="t")
    assert res.statistic == by_hand.statistic and res.pvalue == by_hand.pvalue


def test_outside_model_errors(data, vectors):
    U, V = vectors

    class Wrong:
        def __init__(self, out):
            self.out = out

        def score(self, users):
            return self.out(users)

    sp = {"t": data}
    with pytest.raises(ValueError, match=r"models\['w'\]\.score\(users\) must return shape"):
        compare({"w": Wrong(lambda u: np.zeros((len(u), 3)))}, sp)
    with pytest.raises(ValueError, match=r"models\['w'\]\.score\(users\) returned NaN"):
        compare({"w": Wrong(lambda u: np.full((len(u), data.n_items), np.nan))}, sp)

    class BadIds:
        def recommend(self, users, k):
            return np.full((len(users), k), data.n_items)

    with pytest.raises(ValueError, match=r"models\['b'\]\.recommend returned ids outside"):
        compare({"b": BadIds()}, sp)

    class FloatIds:
        def recommend(self, users, k):
            return np.zeros((len(users), k))

    with pytest.raises(ValueError, match=r"models\['f'\]\.recommend\(users, k\) must return"):
        compare({"f": FloatIds()}, sp)
    with pytest.raises(TypeError, match=r"score\(users\) or recommend\(users, k\)"):
        compare({"x": object()}, sp)


def test_own_models_score_is_their_dot_product(data):
    pop = Popularity().fit(data)
    s = pop.score([0, 3])
    assert s.shape == (2, data.n_items)
    np.testing.assert_array_equal(s[1], pop.item_vectors()[:, 0])


# --------------------------------------------------------------------------- adapters

def test_cornac_adapter_maps_ids(data):
    cornac = pytest.importorskip("cornac")
    model = CornacModel(cornac.models.BPR(k=4, max_iter=3, seed=1, verbose=False), seed=1)
    with pytest.raises(NotFittedError):
        model.score([0])
    model.fit(data)
    inner = model.model
    users = np.array([0, 7, 21])
    got = model.score(users)
    train = inner.train_set
    for row, u in enumerate(users):
        ref = inner.score(train.uid_map[int(u)])
        for raw, j in train.iid_map.items():
            assert got[row, raw] == ref[j]
    unknown = np.setdiff1d(np.arange(data.n_items), data.train[:, 1])
    assert np.all(np.isneginf(got[:, unknown]))
    df = compare({"cornac": model}, {"t": data}, ks=10)
    assert set(df.metric) == {"recall", "ndcg"} and df.value.between(0, 1).all()
    with pytest.raises(TypeError, match="CornacModel.fit: dataset must be a painvrl.Dataset"):
        CornacModel(inner).fit(data.train)


def test_implicit_adapter_maps_ids(data):
    pytest.importorskip("implicit")
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    model = ImplicitModel(BayesianPersonalizedRanking(factors=7, iterations=3, random_state=1,
                                                      num_threads=1)).fit(data)
    users = np.array([2, 9])
    ids, scores = model.recommend(users, 6)
    assert ids.shape == (2, 6) and ids.dtype == np.int64
    # implicit scores its own factors: recompute them on painvrl's ids
    f_u, f_i = model.model.user_factors, model.model.item_factors
    np.testing.assert_allclose(scores, np.take_along_axis(f_u[users] @ f_i.T, ids, axis=1),
                               rtol=1e-5, atol=1e-6)
    df = compare({"implicit": model}, {"t": data}, ks=(5, 10), per_user=True)
    assert len(df) == int((data.test.row_lengths() > 0).sum())
    with pytest.raises(ValueError, match="ImplicitModel: users"):
        model.recommend([data.n_users], 3)



def test_one_table_with_every_baseline_and_an_outside_model(data):
    """The table the issue asks for, at small size: painvrl's backbone and baselines and a
    cornac model on one split, each own model's rows equal to its own evaluate(), and a
    paired test between two of them on the per-user frame."""
    from painvrl import FREEDOM, VBPR, Backbone, LightGCN

    common = dict(max_epochs=4, eval_every=2, progress=False, n_threads=1, seed=0)
    own = {"backbone": Backbone(d_id=8, d_content=8, reg="batch", **common),
           "LightGCN": LightGCN(dim=8, batch_size=128, **common),
           "VBPR": VBPR(k=4, k2=4, batch_size=128, **common),
           "FREEDOM": FREEDOM(dim=8, knn_k=3, batch_size=128, **common)}
    models = {name: m.fit(data) for name, m in own.items()}
    cornac = pytest.importorskip("cornac")
    models["cornac BPR"] = CornacModel(cornac.models.BPR(k=8, max_iter=20, seed=1,
                                                         verbose=False), seed=1).fit(data)
    df = compare(models, {"test": data}, ks=(10, 20))
    assert df.model.unique().tolist() == list(models) and len(df) == len(models) * 4
    for name, m in own.items():
        ref = m.evaluate(data, "test", ks=(10, 20), metrics=("recall", "ndcg"))
        got = df[df.model == name].drop(columns=["model", "split"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(got, ref)
    per_user = compare(models, {"test": data}, ks=20, metrics="recall", per_user=True)
    res = paired_test(per_user[per_user.model == "FREEDOM"],
                      per_user[per_user.model == "cornac BPR"], metric="recall@20")
    assert res.n == int((data.test.row_lengths() > 0).sum())


def test_cornac_adapter_hands_over_the_item_features_in_cornac_order(data):
    cornac = pytest.importorskip("cornac")
    pytest.importorskip("torch")  # cornac's VBPR trains with PyTorch
    model = CornacModel(cornac.models.VBPR(k=3, k2=3, n_epochs=1, batch_size=64, verbose=False,
                                           seed=1), seed=1, item_features=True).fit(data)
    train = model.model.train_set
    np.testing.assert_array_equal(train.item_image.features[:train.num_items],
                                  data.features[model.item_of_inner_])
