"""painvrl.datasets: Last.fm discovery, and the generated datasets."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from painvrl.data.datasets import find_lastfm, load_lastfm, make_multimodal, make_tiktok_like

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
LASTFM = SHARED / "lastfm2k-multimodal"
needs_lastfm = pytest.mark.skipif(not (LASTFM / "lfm2k.inter").is_file(),
                                  reason=f"real data not found at {LASTFM} "
                                         f"(expected <clone>/../shared/data)")


def same(a, b):
    for k in ("train", "features", "user_ids", "item_ids"):
        if not np.array_equal(getattr(a, k), getattr(b, k)):
            return False
    return (a.val.to_pairs().tolist() == b.val.to_pairs().tolist()
            and a.test.to_pairs().tolist() == b.test.to_pairs().tolist())


# --------------------------------------------------------------------------- Last.fm

@needs_lastfm
class TestLastfm:
    def test_load(self):
        ds = load_lastfm(LASTFM)
        assert ds.name == "lfm2k" and (ds.n_users, ds.n_items) == (1858, 1425)
        assert (ds.n_train, ds.val.nnz, ds.test.nnz) == (44327, 4799, 7219)
        assert {k: v.stop - v.start for k, v in ds.modalities.items()} == {
            "textual": 384, "acoustic_vggish": 128, "acoustic_whisper": 512}
        # raw ids are the original HetRec ids, row-aligned with lfm2k_og_ids.inter
        dense = pd.read_csv(LASTFM / "lfm2k.inter", sep="\t")
        og = pd.read_csv(LASTFM / "lfm2k_og_ids.inter", sep="\t")
        k = np.flatnonzero(dense.x_label.to_numpy() == 0)[[0, 100, -1]]
        for row in k:
            u, i = dense.userID[row], dense.itemID[row]
            assert ds.user_ids[u] == og.userID[row] and ds.item_ids[i] == og.itemID[row]
        plain = load_lastfm(LASTFM, original_ids=False)
        np.testing.assert_array_equal(plain.item_ids, np.arange(1425))
        np.testing.assert_array_equal(plain.train, ds.train)

    def test_path_forms_and_env(self, monkeypatch):
        assert find_lastfm(LASTFM) == LASTFM.resolve()
        assert find_lastfm(SHARED) == LASTFM.resolve()  # a folder containing it
        monkeypatch.setenv("PAINVRL_DATA", str(SHARED))
        assert find_lastfm() == LASTFM.resolve()
        monkeypatch.delenv("PAINVRL_DATA")
        assert find_lastfm() == LASTFM.resolve()  # ../shared/data relative to the repository

    def test_modalities_subset(self):
        ds = load_lastfm(LASTFM, modalities=["acoustic_whisper", "textual"])
        assert list(ds.modalities) == ["acoustic_whisper", "textual"] and ds.n_features == 896
        with pytest.raises(ValueError, match=r"modalities: unknown \['visual'\]"):
            load_lastfm(LASTFM, modalities=["visual"])


def test_lastfm_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"(?s)not found; looked in:.*" + str(tmp_path)):
        load_lastfm(tmp_path)


def test_lastfm_not_found_lists_env(tmp_path, monkeypatch):
    monkeypatch.setenv("PAINVRL_DATA", str(tmp_path))
    try:
        find_lastfm()
    except FileNotFoundError as exc:  # only when no ../shared/data copy exists either
        assert str(tmp_path / "lastfm2k-multimodal") in str(exc) and "PAINVRL_DATA" in str(exc)
    else:
        assert (LASTFM / "lfm2k.inter").is_file()


# --------------------------------------------------------------------------- make_multimodal

def recall_at_k(scores, ds, k=10):
    """Mean test recall@k (hits / min(|test|, k)) with training items excluded."""
    s = np.array(scores, dtype=np.float64)
    s[ds.train[:, 0], ds.train[:, 1]] = -np.inf
    top = np.argpartition(-s, k, axis=1)[:, :k]
    out = []
    for u in range(ds.n_users):
        t = ds.test.row(u)
        if t.size:
            out.append(np.isin(top[u], t).sum() / min(t.size, k))
    return float(np.mean(out))


def content_scores(ds, lam=10.0):
    """A closed-form content model: user profile = ridge regression of their row on item features,
    plus log-popularity (each part standardised)."""
    r = np.zeros((ds.n_users, ds.n_items))
    r[ds.train[:, 0], ds.train[:, 1]] = 1.0
    x = ds.features.astype(np.float64)
    content = r @ x @ np.linalg.inv(x.T @ x + lam * np.eye(x.shape[1])) @ x.T
    logpop = np.log1p(ds.item_degree.astype(np.float64))
    return content / content.std() + 0.5 * logpop / logpop.std()


@pytest.fixture(scope="module")
def default_multimodal():
    return make_multimodal()


class TestMakeMultimodal:
    @pytest.fixture
    def ds(self, default_multimodal):
        return default_multimodal

    def test_shape_and_defaults(self, ds):
        assert (ds.n_users, ds.n_items) == (1500, 1000) and ds.name == "multimodal"
        assert ds.n_train + ds.val.nnz + ds.test.nnz == 50_000
        assert {k: v.stop - v.start for k, v in ds.modalities.items()} == {
            "visual": 32, "acoustic": 32, "textual": 32}
        for m in ds.modalities:
            np.testing.assert_allclose(np.linalg.norm(ds.modality(m), axis=1), 1.0, rtol=1e-5)
        assert ds.train.tolist() == sorted(ds.train.tolist())  # sorted by (user, item)

    def test_split_per_user(self, ds):
        n_u = ds.user_degree + ds.val.row_lengths() + ds.test.row_lengths()
        assert n_u.min() >= 5 and (ds.user_degree >= 1).all()
        expected = np.floor(0.1 * n_u + 0.5)
        np.testing.assert_array_equal(ds.val.row_lengths(), expected)
        np.testing.assert_array_equal(ds.test.row_lengths(), expected)
        assert 0.78 < ds.n_train / 50_000 < 0.82

    def test_skewed_popularity_and_activity(self, ds):
        deg = np.sort(ds.item_degree)[::-1]
        assert deg[:100].sum() > 0.25 * ds.n_train  # top 10% of items: well over 10% of pairs
        assert deg[0] > 5 * np.median(deg)
        act = ds.user_degree
        assert act.max() > 3 * np.median(act)

    def test_deterministic(self, ds):
        assert same(ds, make_multimodal(seed=0))
        other = make_multimodal(seed=1)
        assert not np.array_equal(other.train, ds.train)

    def test_content_beats_popularity(self, ds):
        pop = recall_at_k(np.broadcast_to(ds.item_degree.astype(float), (ds.n_users, ds.n_items)), ds)
        model = recall_at_k(content_scores(ds), ds)
        assert model > 1.6 * pop, (model, pop)

    def test_noise_only_content_does_not(self):
        # control: the same check fails when the features are pure noise
        ds = make_multimodal(feature_noise=1e4)
        pop = recall_at_k(np.broadcast_to(ds.item_degree.astype(float), (ds.n_users, ds.n_items)), ds)
        model = recall_at_k(content_scores(ds), ds)
        assert model < 1.2 * pop, (model, pop)

    def test_options(self):
        ds = make_multimodal(200, 150, 3000, {"image": 8, "text": 4}, seed=3,
                             feature_noise={"image": 0.1, "text": 3.0}, split=(0.6, 0.2, 0.2),
                             name="small")
        assert (ds.n_users, ds.n_items, ds.name) == (200, 150, "small")
        assert list(ds.modalities) == ["image", "text"] and ds.n_features == 12
        assert ds.n_train + ds.val.nnz + ds.test.nnz == 3000
        assert 0.55 < ds.n_train / 3000 < 0.65
        uniform = make_multimodal(300, 200, 6000, popularity=0.0, affinity=0.0, seed=2)
        assert uniform.item_degree.max() < 3 * uniform.item_degree.mean()

    @pytest.mark.parametrize("kwargs, exc, msg", [
        (dict(n_interactions=1000), ValueError, r"n_interactions=1000 is below n_users \* 5"),
        (dict(n_users=10, n_items=10, n_interactions=200), ValueError, "more than n_users"),
        (dict(n_users=0), ValueError, "n_users must be at least 1"),
        (dict(n_items=10.0), TypeError, "n_items must be an integer"),
        (dict(modalities={}), ValueError, "modalities must be a non-empty mapping"),
        (dict(modalities={"v": 0}), ValueError, r"modalities\['v'\] must be a positive integer"),
        (dict(feature_noise={"visual": 1.0}), ValueError, "feature_noise has no level for"),
        (dict(feature_noise=-1.0), ValueError, r"feature_noise\['visual'\] must be finite and >= 0"),
        (dict(split=(0.5, 0.5)), ValueError, "split must be three non-negative fractions"),
        (dict(split=(0.8, 0.1, 0.2)), ValueError, "split must be three"),
        (dict(min_user_interactions=2000), ValueError, "min_user_interactions=2000 exceeds n_items"),
    ])
    def test_errors(self, kwargs, exc, msg):
        with pytest.raises(exc, match=msg):
            make_multimodal(**kwargs)


# --------------------------------------------------------------------------- make_tiktok_like

class TestTiktokLike:
    def test_full_size_shape(self):
        ds = make_tiktok_like()
        assert (ds.n_users, ds.n_items) == (36_656, 76_085)
        assert ds.n_train == 564_000 and ds.n_train + ds.val.nnz + ds.test.nnz == 726_065
        assert {k: v.stop - v.start for k, v in ds.modalities.items()} == {
            "visual": 128, "acoustic": 128, "textual": 128}
        assert (ds.user_degree >= 1).all()
        deg = np.sort(ds.item_degree)[::-1]
        # power-law popularity: a heavy head and a long tail of rare items
        assert deg[0] > 200 * max(np.median(deg), 1)
        assert deg[: deg.size // 100].sum() > 0.15 * ds.n_train

    def test_scaled_and_deterministic(self):
        a = make_tiktok_like(seed=5, scale=0.05)
        assert (a.n_users, a.n_items) == (1833, 3804)
        assert a.n_train == 28_200 and a.n_train + a.val.nnz + a.test.nnz == 36_303
        assert same(a, make_tiktok_like(seed=5, scale=0.05))
        assert not np.array_equal(a.train, make_tiktok_like(seed=6, scale=0.05).train)
        np.testing.assert_allclose(np.linalg.norm(a.modality("textual"), axis=1), 1.0, rtol=1e-5)

    def test_topics_make_content_informative(self):
        # items sharing a user are more alike in content than random pairs of items
        ds = make_tiktok_like(seed=0, scale=0.05)
        u, i = ds.train[:, 0], ds.train[:, 1]
        starts = np.searchsorted(u, np.arange(ds.n_users))
        j = i[starts]  # first training item of each user, paired with their other items
        other = ds.train[u.searchsorted(u) != np.arange(u.size)]
        x = ds.modality("visual")
        sim_user = np.einsum("ij,ij->i", x[other[:, 1]], x[j[other[:, 0]]])
        rng = np.random.default_rng(0)
        a, b = rng.integers(0, ds.n_items, (2, sim_user.size))
        sim_random = np.einsum("ij,ij->i", x[a], x[b])
        assert sim_user.mean() > sim_random.mean() + 0.04, (sim_user.mean(), sim_random.mean())

    def test_focused_users_still_get_their_counts(self):
        # one topic per user and no popularity draws: heavy users exhaust their topic and
        # must fall back to other items
        ds = make_tiktok_like(seed=1, scale=0.005, n_topics=64, topic_concentration=1e-3,
                              popularity_share=0.0)
        assert ds.n_train == 2820 and ds.n_train + ds.val.nnz + ds.test.nnz == 3630
        assert (ds.user_degree >= 1).all()

    @pytest.mark.parametrize("kwargs, msg", [
        (dict(scale=0.0), "scale must be a positive number"),
        (dict(scale=float("nan")), "scale must be a positive number"),
        (dict(scale=1e-4), "too small"),
        (dict(popularity_share=1.5), r"popularity_share must lie in \[0, 1\]"),
    ])
    def test_errors(self, kwargs, msg):
        with pytest.raises(ValueError, match=msg):
            make_tiktok_like(**kwargs)
