"""datasets.load_coat on the real files, and Coat's OOD split (splits.exposure_holdout)."""
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import shared_data_dir
from painvrl import datasets, splits
from painvrl.data import Dataset
from painvrl.data._find import data_candidates, find_data_folder

COAT = Path(shared_data_dir()) / "coat"
needs_coat = pytest.mark.skipif(not (COAT / "train.ascii").is_file(),
                                reason=f"Coat data not found at {COAT} (expected "
                                       f"<clone>/../shared/data or $PAINVRL_DATA)")


@pytest.fixture(scope="module")
def coat():
    return datasets.load_coat(COAT)


def _pairs(csr):
    return {tuple(p) for p in csr.to_pairs().tolist()}


# --------------------------------------------------------------------------- loader

@needs_coat
def test_load_coat_counts_against_the_raw_files(coat):
    raw_train = np.loadtxt(COAT / "train.ascii", dtype=int)
    raw_test = np.loadtxt(COAT / "test.ascii", dtype=int)
    # the README's counts at threshold 4
    assert (raw_train >= 4).sum() == 1905 and (raw_test >= 4).sum() == 860
    both = (raw_train >= 4) & (raw_test >= 4)
    assert (coat.n_users, coat.n_items) == (290, 300)
    assert coat.n_train == 1905 and coat.val.nnz == 0
    # doubly rated positives stay in train and leave the random-exposure test
    assert coat.test.nnz == 860 - both.sum() == 769
    assert {tuple(p) for p in coat.train.tolist()} == {tuple(p) for p in np.argwhere(raw_train >= 4)}
    assert _pairs(coat.test) == {tuple(p) for p in np.argwhere((raw_test >= 4) & ~both)}


@needs_coat
def test_load_coat_attributes_named_and_unnormalised(coat):
    raw = np.loadtxt(COAT / "user_item_features" / "item_features.ascii")
    assert coat.features.shape == (300, 33)
    # one-hot blocks have unit norm, so the per-modality L2 normalisation leaves them 0/1
    np.testing.assert_array_equal(coat.features, raw.astype(np.float32))
    assert {m: (s.start, s.stop) for m, s in coat.modalities.items()} == {
        "gender": (0, 2), "type": (2, 18), "colour": (18, 31), "front_page": (31, 33)}
    assert coat.feature_names[:2] == ("gender:men", "gender:women")
    assert coat.feature_names[31:] == ("onfrontpage:yes", "onfrontpage:no")
    front = coat.modality("front_page")
    assert front[:, 0].sum() == 16 and front[:, 1].sum() == 284   # README: on front page yes 16
    table = coat.feature_frame(mask=np.arange(33.0))
    assert table.loc[31, ["modality", "feature", "mask"]].tolist() == ["front_page",
                                                                       "onfrontpage:yes", 31.0]
    assert pickle.loads(pickle.dumps(coat)).feature_names == coat.feature_names


@needs_coat
def test_load_coat_threshold(coat):
    raw_train = np.loadtxt(COAT / "train.ascii", dtype=int)
    assert datasets.load_coat(COAT, threshold=5).n_train == (raw_train == 5).sum() == 630
    assert datasets.load_coat(COAT, threshold=1).n_train == 6960       # every rating
    for bad in (0, 6, -1):
        with pytest.raises(ValueError, match=r"load_coat: threshold must be in \[1, 5\]"):
            datasets.load_coat(COAT, threshold=bad)
    for bad in (3.5, "4", True):
        with pytest.raises(TypeError, match="load_coat: threshold must be an integer"):
            datasets.load_coat(COAT, threshold=bad)


@needs_coat
def test_find_coat_search_order(monkeypatch):
    assert datasets.find_coat(COAT) == COAT.resolve()
    assert datasets.find_coat(COAT.parent) == COAT.resolve()      # a folder containing it
    monkeypatch.setenv("PAINVRL_DATA", str(COAT.parent))
    assert datasets.find_coat() == COAT.resolve()


def test_load_coat_missing_folder_names_the_path(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="Coat data") as exc:
        datasets.load_coat(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(exc.value)
    with pytest.raises(FileNotFoundError, match="PAINVRL_DATA"):   # the hint without a path
        find_data_folder(None, "coat-nowhere", "train.ascii", "Coat")
    monkeypatch.setenv("PAINVRL_DATA", str(tmp_path))
    # $PAINVRL_DATA is looked at first, before ../shared/data beside the repository
    assert data_candidates(None, "coat")[:2] == [tmp_path / "coat", tmp_path]


@needs_coat
def test_load_coat_broken_files_named(tmp_path):
    folder = tmp_path / "coat"
    shutil.copytree(COAT, folder)
    os.chmod(folder, 0o755)
    features = folder / "user_item_features" / "item_features.ascii"
    os.chmod(folder / "user_item_features", 0o755)
    os.remove(features)
    with pytest.raises(FileNotFoundError, match="item_features.ascii is missing"):
        datasets.load_coat(folder)
    os.chmod(folder / "test.ascii", 0o644)
    (folder / "test.ascii").write_text("1 2\n3 4\n")
    with pytest.raises(ValueError, match="test.ascii"):
        datasets.load_coat(folder)
    os.chmod(folder / "train.ascii", 0o644)
    (folder / "train.ascii").write_text("1 x\n")
    with pytest.raises(ValueError, match="train.ascii is not a whitespace-separated numeric"):
        datasets.load_coat(folder)


# --------------------------------------------------------------------------- OOD split

@needs_coat
def test_exposure_holdout_partitions_and_fixed_ood_validation(coat):
    runs = [splits.exposure_holdout(coat, seed=s) for s in (0, 1, 7)]
    mar = _pairs(coat.test)
    for h in runs:
        ds = h.dataset
        selected = {tuple(p) for p in ds.train.tolist()} | _pairs(ds.val) | _pairs(ds.test)
        assert selected == {tuple(p) for p in coat.train.tolist()}     # MNAR -> train/val/IID
        assert ds.n_train + ds.val.nnz + ds.test.nnz == coat.n_train
        val, test = _pairs(h.ood_val), _pairs(h.ood_test)
        assert val | test == mar and not val & test                    # MAR -> OOD val/test
        assert h.sizes["ood_val"] == len(val) == round(0.1 * 769) == 77
        assert ds.feature_names == coat.feature_names
    # the OOD validation and test pairs do not depend on the experiment seed ...
    assert all(_pairs(h.ood_val) == _pairs(runs[0].ood_val) for h in runs)
    # ... while the self-selected split does
    assert runs[0].dataset.train.tolist() != runs[1].dataset.train.tolist()
    other = splits.exposure_holdout(coat, seed=0, ood_val_seed=splits.OOD_VAL_SEED + 1)
    assert _pairs(other.ood_val) != _pairs(runs[0].ood_val)


@needs_coat
def test_ood_validation_is_never_scored_as_test(coat):
    h = datasets.coat_ood_split(3, data=coat)
    tests, vals = h.splits(), h.validation_splits()
    assert list(tests) == ["iid", "ood"] and list(vals) == ["iid_val", "ood_val"]
    scored = set()
    for ds, truth in tests.values():
        scored |= _pairs(ds.test if isinstance(truth, str) else truth)
    assert tests["iid"][1] == "test" and vals["iid_val"][1] == "val"
    assert not scored & _pairs(h.ood_val)
    assert not scored & _pairs(h.dataset.val)
    assert vals["ood_val"][1] is h.ood_val


def test_exposure_holdout_errors():
    ds = Dataset([[u, i] for u in range(4) for i in range(5)],
                 test=[[u, 5 + i] for u in range(4) for i in range(5)])
    with pytest.raises(TypeError, match="exposure_holdout: dataset must be a painvrl Dataset"):
        splits.exposure_holdout(np.zeros((3, 2), int))
    for share in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="exposure_holdout: ood_val_share"):
            splits.exposure_holdout(ds, ood_val_share=share)
    with pytest.raises(ValueError, match="leaves the OOD validation set or test empty"):
        splits.exposure_holdout(ds, ood_val_share=0.01)
    with pytest.raises(ValueError, match="leaves the OOD validation set or test empty"):
        splits.exposure_holdout(Dataset([[0, 0], [1, 1]]))     # no random-exposure pairs
    with pytest.raises(TypeError, match="exposure_holdout: ood_val_seed must be an integer"):
        splits.exposure_holdout(ds, ood_val_seed=1.5)
