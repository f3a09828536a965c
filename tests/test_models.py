"""The Backbone estimator: API contract, reproducibility, persistence, resume, real data."""
import os

import numpy as np
import pytest

from painvrl import Backbone, ModelFileError, NotFittedError, Popularity, datasets
from conftest import shared_data_dir


@pytest.fixture(scope="module")
def small():
    return datasets.make_multimodal(n_users=300, n_items=400, n_interactions=12_000, seed=3)


def quick(**kw):
    base = dict(d_id=8, d_content=8, n_neg=8, batch_size=256, max_epochs=6, eval_every=2,
                patience=100, emb_lr=1e-2, proj_lr=1e-2, progress=False, seed=11, n_threads=1)
    base.update(kw)
    return Backbone(**base)


def test_contract(small):
    model = quick()
    assert model.get_params()["d_id"] == 8
    with pytest.raises(NotFittedError):
        model.recommend(0)
    assert model.fit(small) is model
    for attr in ("user_embeddings_", "item_embeddings_", "projection_", "bias_", "history_",
                 "n_epochs_", "best_epoch_"):
        assert hasattr(model, attr)
    assert model.n_epochs_ == 6 and len(model.history_) == 6
    assert model.user_embeddings_.shape == (small.n_users, 16)
    ids, scores = model.recommend([0, 5], k=7)
    assert ids.shape == (2, 7) and np.all(np.diff(scores, axis=1) <= 0)
    for row, u in zip(ids, [0, 5]):
        assert not set(row) & set(small.train_csr.row(u))


def test_beats_popularity_on_generated_data(small):
    model = quick(max_epochs=30, eval_every=5).fit(small)
    pop = Popularity().fit(small)
    rec = lambda m: m.evaluate(small, "test", ks=(20,), metrics=("recall",))["value"].iloc[0]  # noqa: E731
    assert rec(model) > rec(pop) + 0.02


def test_same_seed_same_model_any_thread_count(small):
    from threadpoolctl import threadpool_limits

    a = quick(n_threads=1).fit(small)
    with threadpool_limits(limits=2, user_api="blas"):
        b = quick(n_threads=2).fit(small)
    np.testing.assert_array_equal(a.user_embeddings_, b.user_embeddings_)
    np.testing.assert_array_equal(a.projection_, b.projection_)
    c = quick(seed=12).fit(small)
    assert not np.array_equal(a.user_embeddings_, c.user_embeddings_)


def test_callback_can_stop_and_interrupt_leaves_last_epoch(small):
    seen = []
    model = quick().fit(small, callback=lambda m, info: seen.append(info["epoch"]) or
                        info["epoch"] == 3)
    assert seen == [1, 2, 3] and model.n_epochs_ == 3

    def interrupt(m, info):
        if info["epoch"] == 4:
            raise KeyboardInterrupt

    model = quick()
    with pytest.raises(KeyboardInterrupt):
        model.fit(small, callback=interrupt)
    assert model.n_epochs_ == 4 and len(model.history_) == 4
    model.recommend(0)  # usable


def test_save_load_and_resume_equal_an_uninterrupted_run(small, tmp_path):
    full = quick(max_epochs=6).fit(small)
    part = quick(max_epochs=3).fit(small)
    path = tmp_path / "m.painvrl"
    part.save(path)
    loaded = Backbone.load(path)
    np.testing.assert_array_equal(loaded.recommend([1, 2])[0], part.recommend([1, 2])[0])
    loaded.set_params(max_epochs=6).fit(small, resume=True)
    assert loaded.n_epochs_ == 6
    np.testing.assert_array_equal(loaded.user_embeddings_, full.user_embeddings_)
    np.testing.assert_array_equal(loaded.item_embeddings_, full.item_embeddings_)
    assert loaded.best_epoch_ == full.best_epoch_


def test_broken_model_files_are_refused(small, tmp_path, monkeypatch):
    model = quick(max_epochs=1).fit(small)
    path = tmp_path / "m.painvrl"
    model.save(path)
    data = path.read_bytes()
    (tmp_path / "trunc").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="truncated, corrupted"):
        Backbone.load(tmp_path / "trunc")
    flipped = bytearray(data)
    flipped[len(flipped) // 3] ^= 0xFF
    (tmp_path / "flip").write_bytes(bytes(flipped))
    with pytest.raises(ModelFileError):
        Backbone.load(tmp_path / "flip")
    np.savez(tmp_path / "foreign.npz", a=np.zeros(3))
    with pytest.raises(ModelFileError, match="not a painvrl model file"):
        Backbone.load(tmp_path / "foreign.npz")
    # A save that fails part-way (here: the disk refuses the flush) leaves the previous file.
    def failing_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == data
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".painvrl-")]


@pytest.mark.parametrize("param,value,exc,match", [
    ("reg", "sometimes", ValueError, "reg must be one of"),
    ("batch_size", 0, ValueError, "batch_size must be >= 1"),
    ("emb_lr", float("nan"), ValueError, "emb_lr must be finite"),
    ("monitor", "ndcg", ValueError, "monitor must look like"),
    ("gate", np.ones(3), ValueError, "Backbone: gate must have"),
    ("loss_weights", (1, 1, 1), ValueError, "Backbone: loss_weights must hold 4"),
    ("n_neg", 2.5, TypeError, "n_neg must be an integer"),
])
def test_bad_hyperparameters(small, param, value, exc, match):
    with pytest.raises(exc, match=match):
        quick(**{param: value}).fit(small)


LASTFM = os.path.join(shared_data_dir(), "lastfm2k-multimodal")


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir(LASTFM), reason=f"real data not found at {LASTFM}")
def test_lastfm_real_features_beat_popularity():
    data = datasets.load_lastfm(shared_data_dir())
    pop = Popularity().fit(data)
    model = Backbone(reg="batch", max_epochs=60, eval_every=5, patience=3, emb_lr=5e-3,
                     proj_lr=5e-3, progress=False, seed=2233).fit(data)
    recall = {name: m.evaluate(data, "test", ks=(20,), metrics=("recall",))["value"].iloc[0]
              for name, m in (("pop", pop), ("model", model))}
    # Popularity reaches ~0.2 on this set; the trained backbone must clearly beat it.
    assert recall["model"] > recall["pop"] + 0.03, recall


def test_ctrl_c_during_the_c_epoch_keeps_parameters_and_counters_together(small, monkeypatch, python_sigint):
    """A real Ctrl-C arrives while the C trainer runs (GIL released) and is raised when
    it returns, after the tables moved on: the epoch must still be recorded."""
    import signal

    from painvrl.models import backbone as models

    real = models._core.train_epoch
    calls = []

    def epoch_then_sigint(*args, **kwargs):
        out = real(*args, **kwargs)
        calls.append(1)
        if len(calls) == 3:
            signal.raise_signal(signal.SIGINT)
        return out

    monkeypatch.setattr(models._core, "train_epoch", epoch_then_sigint)
    model = quick(max_epochs=6)
    with pytest.raises(KeyboardInterrupt):
        model.fit(small)
    assert model.n_epochs_ == 3 and len(model.history_) == 3
    monkeypatch.setattr(models._core, "train_epoch", real)
    model.fit(small, resume=True)
    full = quick(max_epochs=6).fit(small)
    np.testing.assert_array_equal(model.user_embeddings_, full.user_embeddings_)
    np.testing.assert_array_equal(model.projection_, full.projection_)
    assert model.step_ == full.step_
