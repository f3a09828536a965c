"""Last.fm 2K (HetRec 2011) with its real text and audio features (re-exported by
:mod:`painvrl.datasets`).

* :func:`load_lastfm` finds and loads Last.fm 2K with its real text and audio features.
* :func:`find_lastfm` returns the folder it is read from.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from ._find import find_data_folder
from .dataset import Dataset
from .loaders import load_mmrec

__all__ = ["find_lastfm", "load_lastfm"]

LASTFM_FOLDER = "lastfm2k-multimodal"
_LASTFM_MODALITIES = {"textual": "all-MiniLM-L6-v2.npy",
                      "acoustic_vggish": "vggish.npy",
                      "acoustic_whisper": "whisper.npy"}


# --------------------------------------------------------------------------- Last.fm

def find_lastfm(path: Optional[Union[str, os.PathLike]] = None) -> Path:
    """The Last.fm 2K folder (holding ``lfm2k.inter``), searched as :func:`load_lastfm` does.

    Raises
    ------
    FileNotFoundError
        Naming every place that was looked at.
    """
    return find_data_folder(path, LASTFM_FOLDER, "lfm2k.inter", "Last.fm 2K")


def load_lastfm(path: Optional[Union[str, os.PathLike]] = None, *,
                modalities: Optional[Sequence[str]] = None, original_ids: bool = True) -> Dataset:
    """Last.fm 2K (HetRec 2011) with real multimodal artist features.

    1,858 users, 1,425 artists, 44,327 / 4,799 / 7,219 train / val / test
    interactions (the MMRec release's own split), and three modalities:
    ``textual`` (384-d MiniLM embedding of the artist's tags), ``acoustic_vggish``
    (128-d VGGish) and ``acoustic_whisper`` (512-d Whisper encoder), each
    L2-normalised per row.  The data are for non-commercial research only.

    Parameters
    ----------
    path : str or PathLike, optional
        The ``lastfm2k-multimodal`` folder or a folder containing it.  If None,
        looked for in ``$PAINVRL_DATA/lastfm2k-multimodal``, then
        ``../shared/data/lastfm2k-multimodal`` relative to the repository
        holding this package, then relative to the current directory.
    modalities : sequence of str, optional
        A subset of ``("textual", "acoustic_vggish", "acoustic_whisper")``, in the
        order wanted; default all three.
    original_ids : bool, default True
        Set ``user_ids`` / ``item_ids`` to the original HetRec userID / artistID
        (read from ``lfm2k_og_ids.inter``, which lists the same rows), so
        results can be joined to ``hetrec2011-original/artists.dat``.  False
        keeps the MMRec ids (equal to the dense ids).

    Returns
    -------
    Dataset

    Raises
    ------
    FileNotFoundError
        If the folder is not found (the message lists where it looked).
    """
    folder = find_lastfm(path)
    if modalities is None:
        mods = dict(_LASTFM_MODALITIES)
    else:
        if isinstance(modalities, str):
            modalities = [modalities]
        unknown = [m for m in modalities if m not in _LASTFM_MODALITIES]
        if unknown:
            raise ValueError(f"modalities: unknown {unknown}; choose from {list(_LASTFM_MODALITIES)}")
        mods = {m: _LASTFM_MODALITIES[m] for m in modalities}
    ds = load_mmrec(folder, "lfm2k", mods)
    if not original_ids:
        return ds
    import pandas as pd
    dense = pd.read_csv(folder / "lfm2k.inter", sep="\t", usecols=["userID", "itemID"])
    og = pd.read_csv(folder / "lfm2k_og_ids.inter", sep="\t", usecols=["userID", "itemID"])
    if len(og) != len(dense):
        raise ValueError(f"{folder}: lfm2k_og_ids.inter and lfm2k.inter differ in length")
    ids = []
    for col, n in (("userID", ds.n_users), ("itemID", ds.n_items)):
        m = pd.DataFrame({"d": dense[col].to_numpy(), "o": og[col].to_numpy()}).drop_duplicates()
        if len(m) != n or m["d"].nunique() != n or m["o"].nunique() != n:
            raise ValueError(f"{folder}: lfm2k_og_ids.inter does not map {col} one to one")
        out = np.empty(n, dtype=np.int64)
        out[m["d"].to_numpy()] = m["o"].to_numpy()
        ids.append(out)
    return _with_ids(ds, ids[0], ids[1])


def _with_ids(ds: Dataset, user_ids: np.ndarray, item_ids: np.ndarray) -> Dataset:
    """A copy of ``ds`` with other raw ids (no re-validation of the data)."""
    state = {k: getattr(ds, k) for k in ("n_users", "n_items", "train", "val", "test", "features",
                                         "name", "feature_names")}
    state.update(modalities=dict(ds.modalities), user_ids=user_ids, item_ids=item_ids)
    out = Dataset.__new__(Dataset)
    out._set_fields(**state)
    return out
