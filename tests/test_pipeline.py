"""InvRL's whole pipeline (method.md §5.1) on planted-truth data, kept small."""
import numpy as np
import pytest

from painvrl import NotFittedError, datasets
from painvrl.pipeline import InvRL


@pytest.fixture(scope="module")
def planted():
    return datasets.make_spurious(seed=0)


def small_pipeline(**kw):
    params = dict(n_envs=2, n_outer=2, env_epochs=3, env_rounds=2, mask_epochs=10,
                  max_epochs=10, patience=2, final_patience=2, eval_every=5, d_id=16,
                  d_content=16, n_neg=10, batch_size=256, seed=1, n_threads=1, progress=False,
                  backbone_params=dict(emb_lr=1e-2, proj_lr=1e-2))
    params.update(kw)
    return InvRL(**params)


def test_pipeline_runs_every_stage_and_recommends(planted):
    ds, truth = planted
    stages = []
    model = small_pipeline().fit(ds, callback=lambda s, info: stages.append((s, info["outer"])))
    assert stages == [("pretrain", None), ("environments", 0), ("mask", 0),
                      ("environments", 1), ("mask", 1), ("final", None)]
    assert len(model.environments_) == 2 and len(model.mask_results_) == 2
    assert model.mask_.shape == (ds.features.shape[1],)
    assert np.all((model.mask_ >= 0) & (model.mask_ <= 1))
    np.testing.assert_array_equal(model.final_.gate, model.mask_)
    history = model.mask_history()
    assert list(history.columns) == ["outer", "epoch", "erm_loss", "irm_loss", "gamma"]
    assert len(history) == 2 * 10
    assert set(model.stage_seconds_["stage"]) == {"pretrain", "environments", "mask", "final"}
    ids, _ = model.recommend([0, 1], k=5)
    assert ids.shape == (2, 5)
    table = model.evaluate(ds, "test", ks=(10,), metrics=("recall",))
    assert 0 <= table["value"].iloc[0] <= 1


def test_pipeline_is_reproducible(planted):
    ds, _ = planted
    a = small_pipeline(n_outer=1).fit(ds)
    b = small_pipeline(n_outer=1).fit(ds)
    np.testing.assert_array_equal(a.mask_, b.mask_)
    np.testing.assert_array_equal(a.final_.user_embeddings_, b.final_.user_embeddings_)


def test_pipeline_contract(planted):
    ds, _ = planted
    with pytest.raises(NotFittedError):
        small_pipeline().recommend(0)
    with pytest.raises(ValueError, match="weighting must be one of"):
        small_pipeline(weighting="sometimes").fit(ds)


@pytest.mark.parametrize("fusion", ["attention", "global", "invariant"])
def test_painvrl_final_model_uses_the_convert_module(planted, fusion):
    from painvrl.pipeline import PaInvRL

    ds, truth = planted
    model = PaInvRL(fusion=fusion, attention_size=8, **{
        k: v for k, v in small_pipeline(n_outer=1).__dict__.items() if k != "weighting"})
    model.fit(ds)
    assert model.weighting == "mgda"
    final = model.final_
    assert final.fusion == fusion
    np.testing.assert_array_equal(final.mask, model.mask_)
    a_inv = model.attention_weights(ds)
    assert a_inv.shape == (ds.n_items,) and np.all((a_inv > 0) & (a_inv <= 1))
    if fusion == "attention":
        assert final.attention_matrix_.shape == (8, 16)
    if fusion == "global":
        assert final.fusion_logits_.shape == (2,)
        assert np.allclose(a_inv, a_inv[0])  # one weight for every item
    if fusion == "invariant":
        assert np.all(a_inv == 1)
    ids, _ = model.recommend([0, 1], k=5)
    assert ids.shape == (2, 5)


def test_convert_backbone_saves_and_resumes(planted, tmp_path):
    from painvrl import Backbone

    ds, _ = planted
    mask = np.linspace(0, 1, ds.features.shape[1]).astype(np.float32)
    kw = dict(fusion="attention", mask=mask, attention_size=8, d_id=8, d_content=8, n_neg=5,
              batch_size=256, eval_every=2, patience=100, progress=False, seed=3, n_threads=1)
    full = Backbone(max_epochs=4, **kw).fit(ds)
    part = Backbone(max_epochs=2, **kw).fit(ds)
    part.save(tmp_path / "m")
    loaded = Backbone.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.item_vectors(), part.item_vectors())
    loaded.set_params(max_epochs=4).fit(ds, resume=True)
    np.testing.assert_array_equal(loaded.attention_matrix_, full.attention_matrix_)
    np.testing.assert_array_equal(loaded.user_embeddings_, full.user_embeddings_)
    with pytest.raises(ValueError, match="needs mask"):
        Backbone(fusion="global").fit(ds)
    with pytest.raises(ValueError, match="gate must be None with fusion"):
        Backbone(fusion="global", mask=mask, gate=mask).fit(ds)
