"""InvRL's whole pipeline (method.md §5.1) on planted-truth data, kept small."""
import warnings

import numpy as np
import pandas as pd
import pytest

from painvrl import NotFittedError, datasets
from painvrl.invariance import InvRL


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
    assert list(history.columns) == ["outer", "epoch", "erm_loss", "irm_loss", "gamma",
                                     "erm_share"]
    # InvRL: the raw coefficients are 1 and alpha (x1.05 per outer iteration)
    np.testing.assert_allclose(history.erm_share[history.outer == 0], 1 / 2, rtol=1e-12)
    np.testing.assert_allclose(history.erm_share[history.outer == 1], 1 / 2.05, rtol=1e-12)
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
    from painvrl.invariance import PaInvRL

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
    np.testing.assert_array_equal(loaded.variant_projection_, part.variant_projection_)
    loaded.set_params(max_epochs=4).fit(ds, resume=True)
    np.testing.assert_array_equal(loaded.attention_matrix_, full.attention_matrix_)
    np.testing.assert_array_equal(loaded.variant_projection_, full.variant_projection_)
    np.testing.assert_array_equal(loaded.variant_bias_, full.variant_bias_)
    np.testing.assert_array_equal(loaded.user_embeddings_, full.user_embeddings_)
    with pytest.raises(ValueError, match="needs mask"):
        Backbone(fusion="global").fit(ds)
    with pytest.raises(ValueError, match="gate must be None with fusion"):
        Backbone(fusion="global", mask=mask, gate=mask).fit(ds)


def small_painvrl(**kw):
    from painvrl.invariance import PaInvRL

    own = {k: kw.pop(k) for k in ("projection", "attention_l2", "warm_start") if k in kw}
    params = {k: v for k, v in small_pipeline(**kw).get_params().items() if k != "weighting"}
    return PaInvRL(attention_size=8, **own, **params)


def assert_same_pipeline(a, b):
    np.testing.assert_array_equal(a.mask_, b.mask_)
    for ea, eb in zip(a.environments_, b.environments_, strict=True):
        np.testing.assert_array_equal(ea.labels, eb.labels)
        np.testing.assert_array_equal(ea.sizes, eb.sizes)
    pd.testing.assert_frame_equal(a.mask_history(), b.mask_history())
    for name in ("user_embeddings_", "item_embeddings_", "projection_"):
        np.testing.assert_array_equal(getattr(a.final_, name), getattr(b.final_, name))
        np.testing.assert_array_equal(getattr(a.pretrained_, name),
                                      getattr(b.pretrained_, name))
    assert a.final_.n_epochs_ == b.final_.n_epochs_


def test_pipeline_saves_loads_and_recommends_the_same(planted, tmp_path):
    ds, _ = planted
    model = small_painvrl().fit(ds)
    model.save(tmp_path / "p")
    loaded = type(model).load(tmp_path / "p")
    assert loaded.get_params() == model.get_params()
    assert_same_pipeline(loaded, model)
    assert loaded.environments_[0].empty == model.environments_[0].empty
    np.testing.assert_array_equal(loaded.recommend([0, 1, 2], k=5)[0],
                                  model.recommend([0, 1, 2], k=5)[0])
    np.testing.assert_array_equal(loaded.attention_weights(ds), model.attention_weights(ds))
    pd.testing.assert_frame_equal(loaded.stage_seconds_, model.stage_seconds_)
    with pytest.raises(ValueError, match="holds a PaInvRL, not a InvRL"):
        InvRL.load(tmp_path / "p")
    with pytest.raises(NotFittedError):
        small_pipeline().save(tmp_path / "q")


@pytest.mark.parametrize("stop_after", [("pretrain", None), ("environments", 0),
                                        ("mask", 1)])
def test_interrupted_pipeline_resumes_from_its_checkpoint(planted, tmp_path, stop_after):
    ds, _ = planted
    full = small_pipeline().fit(ds)

    def interrupt(stage, info):
        if (stage, info["outer"]) == stop_after:
            raise KeyboardInterrupt

    part = small_pipeline()
    with pytest.raises(KeyboardInterrupt):
        part.fit(ds, callback=interrupt, checkpoint=tmp_path / "ckpt")
    with pytest.raises(NotFittedError):
        part.recommend(0)
    resumed = InvRL.load(tmp_path / "ckpt").fit(ds, resume=True)
    assert_same_pipeline(resumed, full)
    assert list(resumed.stage_seconds_["stage"]) == list(full.stage_seconds_["stage"])


def test_ctrl_c_inside_final_training_resumes_to_the_same_result(planted, monkeypatch,
                                                               python_sigint):
    import signal

    from painvrl.models import backbone as models

    ds, _ = planted
    full = small_pipeline().fit(ds)
    real = models._core.train_epoch
    calls = []

    def sigint_in_final_training(*args, **kwargs):
        out = real(*args, **kwargs)
        calls.append(1)
        if len(calls) == full.pretrained_.n_epochs_ + 2:  # second epoch of the final model
            signal.raise_signal(signal.SIGINT)
        return out

    monkeypatch.setattr(models._core, "train_epoch", sigint_in_final_training)
    part = small_pipeline()
    with pytest.raises(KeyboardInterrupt):
        part.fit(ds)
    assert part.final_.n_epochs_ == 2 and not hasattr(part, "seen_")
    monkeypatch.setattr(models._core, "train_epoch", real)
    part.fit(ds, resume=True)
    assert_same_pipeline(part, full)


def test_pipeline_reuses_a_pretrained_backbone(planted):
    from painvrl import Backbone

    ds, _ = planted
    full = small_pipeline(n_outer=1).fit(ds)
    backbone = full.pretrained_
    before = backbone.user_embeddings_.copy()
    reused = small_pipeline(n_outer=1).fit(ds, pretrained=backbone)
    assert reused.pretrained_ is backbone
    np.testing.assert_array_equal(backbone.user_embeddings_, before)
    assert_same_pipeline(reused, full)
    with pytest.raises(ValueError, match="d_id=16"):
        small_pipeline(d_id=8).fit(ds, pretrained=backbone)
    with pytest.raises(ValueError, match="plain backbone"):
        small_pipeline().fit(ds, pretrained=full.final_)
    with pytest.raises(TypeError, match="fitted Backbone"):
        small_pipeline().fit(ds, pretrained=full)
    with pytest.raises(ValueError, match="resume=True needs"):
        small_pipeline().fit(ds, resume=True)
    assert isinstance(backbone, Backbone)


def test_painvrl_attention_share_differs_across_items_and_from_half(planted):
    """§4.2 erratum, on planted data with the small schedule: the default final model
    (separate projections from the pre-trained one, attention L2 0) gives items different
    invariant shares, away from 1/2; the earlier configuration (shared projection, the
    projection's L2 of 0.1 on the attention, fresh start) decays to a_inv = 1/2 for every
    item, where the mask cancels, and fit says so."""
    from painvrl import MaskCancelledWarning

    ds, _ = planted
    model = small_painvrl(n_outer=1).fit(ds)
    a_inv = model.attention_weights(ds)
    # measured 0.74 +- 0.16 (min 0.50, max 1.00) when this test was written
    assert a_inv.std() > 0.05
    assert abs(a_inv.mean() - 0.5) > 0.05
    final = model.final_
    assert not np.array_equal(final.variant_projection_, final.projection_)
    with pytest.warns(MaskCancelledWarning, match="within 0.001 of 1/2"):
        old = small_painvrl(n_outer=1, projection="shared", attention_l2=0.1,
                            warm_start="none").fit(ds)
    assert np.max(np.abs(old.attention_weights(ds) - 0.5)) <= 1e-3
    assert old.final_.variant_projection_ is None


@pytest.mark.parametrize("warm_start", ["projection", "all", "none"])
def test_final_model_starts_from_the_pretrained_backbone(planted, warm_start):
    """warm_start: the pre-trained W, b start both projections (and U, V with "all")."""
    ds, _ = planted
    model = small_painvrl(n_outer=0, warm_start=warm_start,
                          backbone_params=dict(emb_lr=1e-2, proj_lr=1e-2))
    model.final_patience = 0
    model.fit(ds, callback=lambda stage, info: None)
    pre, init = model.pretrained_, model._final_init()
    from painvrl import Backbone

    from painvrl import MaskCancelledWarning

    start = Backbone(**model.final_.get_params()).set_params(max_epochs=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start.fit(ds, init=init)
    # untrained, both projections one W and the attention near 1/2: the mask cancels there
    # (training moves them apart, as the test above shows)
    assert any(w.category is MaskCancelledWarning for w in caught) == (warm_start != "none")
    same = {"projection": ("W", "b"), "all": ("W", "b", "U", "V"), "none": ()}[warm_start]
    pairs = {"W": (start.projection_, pre.projection_), "b": (start.bias_, pre.bias_),
             "U": (start.user_embeddings_, pre.user_embeddings_),
             "V": (start.item_embeddings_, pre.item_embeddings_)}
    for name, (got, want) in pairs.items():
        assert np.array_equal(got, want) == (name in same), name
    if warm_start != "none":
        np.testing.assert_array_equal(start.variant_projection_, pre.projection_)
        np.testing.assert_array_equal(start.variant_bias_, pre.bias_)
    with pytest.raises(ValueError, match="init keys must be"):
        Backbone(**model.final_.get_params()).fit(ds, init={"A": pre.projection_})
    with pytest.raises(ValueError, match=r"init\['W'\]"):
        Backbone(**model.final_.get_params()).fit(ds, init={"W": pre.projection_[:, :-1]})
    with pytest.raises(ValueError, match="warm_start must be one of"):
        small_painvrl(n_outer=0, warm_start="some").fit(ds)


def test_mask_of_one_half_with_equal_projections_warns_at_fit(planted):
    from painvrl import Backbone, MaskCancelledWarning

    ds, _ = planted
    half = np.full(ds.features.shape[1], 0.5, np.float32)
    kw = dict(fusion="attention", mask=half, attention_size=4, d_id=4, d_content=4, n_neg=2,
              max_epochs=0, progress=False)
    with pytest.warns(MaskCancelledWarning, match="1/2 in every column"):
        Backbone(projection="shared", **kw).fit(ds)
    W = np.ones((4, ds.features.shape[1]), np.float32)
    with pytest.warns(MaskCancelledWarning, match="projections are equal"):
        Backbone(**kw).fit(ds, init={"W": W})  # both projections start from one W
    with warnings.catch_warnings():
        warnings.simplefilter("error", MaskCancelledWarning)
        Backbone(**kw).fit(ds)  # independent random starts: they differ


def test_model_file_from_before_separate_projections_loads_as_shared(planted, tmp_path):
    from painvrl import Backbone, MaskCancelledWarning
    from painvrl._util.modelfile import save_model_file

    ds, _ = planted
    mask = np.linspace(0, 1, ds.features.shape[1]).astype(np.float32)
    with pytest.warns(MaskCancelledWarning):  # one epoch: the attention is still near 1/2
        model = Backbone(fusion="attention", mask=mask, projection="shared", attention_l2=0.01,
                         attention_size=4, d_id=4, d_content=4, n_neg=2, max_epochs=1,
                         progress=False).fit(ds)
    meta, arrays = model._to_parts()
    for key in ("projection", "attention_l2"):  # what an older file lacks
        del meta["params"][key]
    save_model_file(tmp_path / "old", meta, arrays)
    old = Backbone.load(tmp_path / "old")
    assert old.projection == "shared" and old.attention_l2 == old.wd2
    np.testing.assert_array_equal(old.item_vectors(ds.features), model.item_vectors(ds.features))


def test_pipeline_file_from_before_separate_projections_keeps_its_final_model(planted, tmp_path):
    """A PaInvRL checkpoint written before separate projections resumes as it was then."""
    from painvrl import PaInvRL
    from painvrl._util.modelfile import load_model_file, save_model_file

    ds, _ = planted
    model = small_painvrl(n_outer=0, max_epochs=1)
    model.fit(ds, callback=lambda stage, info: None)
    model.save(tmp_path / "new")
    meta, arrays = load_model_file(tmp_path / "new")
    for key in ("projection", "attention_l2", "warm_start"):
        del meta["params"][key]
    save_model_file(tmp_path / "old", meta, arrays)
    old = PaInvRL.load(tmp_path / "old")
    assert (old.projection, old.attention_l2, old.warm_start) == ("shared", 0.1, "none")
    assert PaInvRL.load(tmp_path / "new").get_params() == model.get_params()
