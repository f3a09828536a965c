"""Loaders for the field's two file formats; each returns a :class:`~painvrl.data.Dataset`.

Two on-disk formats are read:

* **MMRec** (:func:`load_mmrec`): one tab-separated ``<name>.inter`` file with
  ``userID``, ``itemID`` and a split label ``x_label`` (0/1/2 = train/val/test),
  plus one ``.npy`` per modality whose row ``i`` is item ``i``.
* **MMGCN / GRCN / CLCRec** (:func:`load_mmgcn`): ``train.npy`` pairs or a pickled
  ``user -> items`` dict, ``val_full.npy`` / ``test_full.npy`` rows
  ``[user, item, item, ...]``, and optional ``feat_v/a/t.npy``; item ids are
  numbered after the users (node id = ``n_users + item``).
"""
from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

import numpy as np
import pandas as pd

from .dataset import _SPLITS, Dataset, _as_count, _show

__all__ = ["load_mmrec", "load_mmgcn"]


# --------------------------------------------------------------------------- MMRec

def _resolve_feature_files(folder: Path, modalities, param: str) -> Dict[str, Path]:
    if modalities is None:
        files = sorted(folder.glob("*.npy"))
        return {f.stem: f for f in files}
    if isinstance(modalities, Mapping):
        pairs = list(modalities.items())
    elif isinstance(modalities, (str, os.PathLike)):
        raise TypeError(f"{param} must be a list of file names or a dict name -> file name, got a "
                        f"single string {modalities!r}")
    else:
        pairs = []
        for m in modalities:
            p = Path(m)
            pairs.append((p.stem if p.suffix == ".npy" else p.name, m))
    out: Dict[str, Path] = {}
    for name, fname in pairs:
        p = Path(fname)
        if not p.is_absolute():
            p = folder / p
        if not p.exists() and p.suffix != ".npy" and p.with_name(p.name + ".npy").exists():
            p = p.with_name(p.name + ".npy")
        if not p.is_file():
            raise FileNotFoundError(f"{param}: feature file for modality {name!r} not found: {p}")
        out[str(name)] = p
    return out


def load_mmrec(path: Union[str, os.PathLike], name: Optional[str] = None, modalities=None, *,
               inter_file: Optional[Union[str, os.PathLike]] = None, user_col: str = "userID",
               item_col: str = "itemID", split_col: str = "x_label",
               duplicates: str = "raise") -> Dataset:
    """Load a dataset in the MMRec format.

    The folder holds a tab-separated interaction file with a header (``userID``,
    ``itemID``, optionally ``rating`` and other columns, which are ignored, and
    ``x_label``: 0 = train, 1 = val, 2 = test) and one ``.npy`` array per modality
    whose row ``i`` holds item ``i``'s features.

    MMRec ids are already dense, so they are used as they are: user ``u`` of the
    file is dense user ``u`` (``user_ids = arange(n_users)``), ``n_users`` is
    ``1 + max userID``, and ``n_items`` is the number of feature rows (or
    ``1 + max itemID`` without features).  Ids that never occur are users /
    items without data.

    Parameters
    ----------
    path : str or PathLike
        The dataset folder.
    name : str, optional
        The dataset name; the interactions are read from ``<name>.inter``.  If
        neither ``name`` nor ``inter_file`` is given, the folder's only ``.inter``
        file is used (or ``<folder name>.inter``); with several candidates pass
        one of them.
    modalities : list of str, or dict of str to str, optional
        Feature files.  A list of file names (``.npy`` may be left off) names each
        modality after its file stem; a dict maps modality names to file names.
        Order is kept.  Default: every ``.npy`` in the folder, sorted by name.
        Pass ``[]`` for no content.
    inter_file : str or PathLike, optional
        The interaction file, relative to ``path`` or absolute.
    user_col, item_col, split_col : str
        Header names of the id and split columns.
    duplicates : {"raise", "drop"}
        See :class:`Dataset`.

    Returns
    -------
    Dataset
        Features L2-normalised per modality; training pairs in file order.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"path: MMRec folder not found: {folder}")
    if inter_file is not None:
        inter = Path(inter_file)
        if not inter.is_absolute():
            inter = folder / inter
    elif name is not None:
        inter = folder / f"{name}.inter"
    else:
        candidates = sorted(folder.glob("*.inter"))
        default = folder / f"{folder.name}.inter"
        if default.exists():
            inter = default
        elif len(candidates) == 1:
            inter = candidates[0]
        elif not candidates:
            raise FileNotFoundError(f"path: no .inter file in {folder}")
        else:
            raise ValueError(f"path: several .inter files in {folder} "
                             f"({', '.join(c.name for c in candidates)}); pass name= or inter_file=")
    if not inter.is_file():
        raise FileNotFoundError(f"inter_file: interaction file not found: {inter}")
    if name is None:
        name = inter.stem
    df = pd.read_csv(inter, sep="\t")
    for param, col in (("user_col", user_col), ("item_col", item_col), ("split_col", split_col)):
        if col not in df.columns:
            raise ValueError(f"{inter.name}: no column {col!r} ({param}); the header is "
                             f"{list(df.columns)}")
    files = _resolve_feature_files(folder, modalities, "modalities")
    feats = {m: np.load(f, allow_pickle=False) for m, f in files.items()}
    split_map = {"train": 0, "val": 1, "test": 2}
    split = df[split_col].to_numpy()
    if split.dtype.kind not in "iu" or not np.isin(split, (0, 1, 2)).all():
        bad = pd.unique(df[split_col][~df[split_col].isin((0, 1, 2))])[:5]
        raise ValueError(f"{inter.name}: column {split_col!r} must hold 0/1/2 (train/val/test), found "
                         f"{_show(bad)}")
    pairs = []
    for col in (user_col, item_col):
        v = df[col].to_numpy()
        if v.dtype.kind not in "iu":
            raise TypeError(f"{inter.name}: column {col!r} must hold integer ids, got {v.dtype}")
        pairs.append(v)
    uv = np.stack(pairs, axis=1).astype(np.int64)
    parts = [uv[split == split_map[s]] for s in _SPLITS]
    n_items = None if feats else 1 + int(uv[:, 1].max(initial=-1))
    rows = [np.flatnonzero(split == split_map[s]) for s in _SPLITS]

    def describe(s: int, r: int) -> str:
        return f"{inter.name} line {int(rows[s][r]) + 2} ({_SPLITS[s]})"

    if uv.shape[0] == 0:
        raise ValueError(f"{inter.name}: no interactions")
    for m, f in files.items():
        a = feats[m]
        if a.ndim == 2 and a.shape[0] <= int(uv[:, 1].max()):
            raise ValueError(f"modalities: {f.name} has {a.shape[0]} rows but {inter.name} has item "
                             f"id {int(uv[:, 1].max())}; row i must hold item i, so rows are missing")
    return Dataset._create(parts[0], parts[1], parts[2], feats if feats else None,
                           1 + int(uv[:, 0].max()), n_items, user_ids=None, item_ids=None,
                           name=name, duplicates=duplicates, normalize=True, describe=describe)


# --------------------------------------------------------------------------- MMGCN / GRCN / CLCRec

_MMGCN_FEATURES = (("visual", "feat_v.npy"), ("acoustic", "feat_a.npy"), ("textual", "feat_t.npy"))


def _load_pickled(path: Path) -> Any:
    """np.load with allow_pickle=True: only ever called on the format's known object files."""
    obj = np.load(path, allow_pickle=True)
    if isinstance(obj, np.ndarray) and obj.dtype == object and obj.ndim == 0:
        obj = obj.item()
    return obj


def _dict_pairs(d: Any, fname: str) -> np.ndarray:
    if not isinstance(d, Mapping):
        raise ValueError(f"{fname} must hold a pickled dict user -> items, got {type(d).__name__}")
    entries = sorted((int(u), v) for u, v in d.items())
    users = [u for u, _ in entries]
    lists = [sorted(int(i) for i in v) for _, v in entries]
    lengths = np.fromiter((len(x) for x in lists), dtype=np.int64, count=len(lists))
    items = np.fromiter(itertools.chain.from_iterable(lists), dtype=np.int64, count=int(lengths.sum()))
    return np.stack([np.repeat(np.asarray(users, dtype=np.int64), lengths), items], axis=1)


def _full_rows_pairs(arr: Any, fname: str) -> np.ndarray:
    """Rows [user, item, item, ...] (object array of lists or a 2-D int array) -> (n, 2) pairs."""
    if isinstance(arr, np.ndarray) and arr.dtype.kind in "iu" and arr.ndim == 2:
        rows = arr.tolist()
    else:
        rows = list(arr)
    users, items = [], []
    for r, row in enumerate(rows):
        row = list(row)
        if len(row) == 0:
            continue
        users.append(np.full(len(row) - 1, int(row[0]), dtype=np.int64))
        try:
            items.append(np.asarray(row[1:], dtype=np.int64))
        except (TypeError, ValueError):
            raise ValueError(f"{fname}: row {r} is not [user, item, item, ...] of integers") from None
    if not users:
        return np.empty((0, 2), dtype=np.int64)
    return np.stack([np.concatenate(users), np.concatenate(items)], axis=1)


def load_mmgcn(path: Union[str, os.PathLike], features=None, *, n_users: Optional[int] = None,
               n_items: Optional[int] = None, name: Optional[str] = None,
               duplicates: str = "raise") -> Dataset:
    """Load a dataset in the MMGCN / GRCN / CLCRec format.

    Files read from the folder (items are numbered after the users: a file's
    item node id is ``n_users + item``):

    * training pairs: ``train.npy`` (an (N, 2) integer array of [user, item node
      id] rows, kept in file order), or else ``user_item_train_dict.npy`` or
      ``user_item_dict.npy`` (a pickled dict user -> set/list of item node ids;
      pairs ordered by user, then item);
    * ``val_full.npy`` / ``test_full.npy`` (optional): rows ``[user, item, item,
      ...]`` of item node ids, as an object array of lists;
    * ``warm_set.npy`` / ``cold_set.npy`` (optional, CLCRec): item node ids, only
      used to infer ``n_items``;
    * features: see ``features``.

    Parameters
    ----------
    path : str or PathLike
        The dataset folder.
    features : dict of str to (ndarray or str), optional
        Item features per modality, as arrays (row ``i`` = item ``i``) or file
        names relative to ``path``.  Default None: ``feat_v.npy``, ``feat_a.npy``,
        ``feat_t.npy`` that exist in the folder, as modalities ``visual``,
        ``acoustic``, ``textual``; if there are none, the dataset has no content
        features (D = 0).  Pass ``{}`` to skip features.
    n_users, n_items : int, optional
        The files do not store them.  By default ``n_users`` is the smallest item
        node id found in any file (users come first, so this is exact whenever
        item 0 occurs somewhere) and ``n_items`` is ``1 + largest node id -
        n_users`` (or the number of feature rows, if larger).  Pass them when a
        release leaves the first item or the last users out of every file.
    name : str, optional
        Default: the folder name.
    duplicates : {"raise", "drop"}
        See :class:`Dataset`.

    Returns
    -------
    Dataset
        ``user_ids`` is ``arange(n_users)`` and ``item_ids`` holds the item node
        ids of the files (``n_users + arange(n_items)``).

    Notes
    -----
    The user -> items dict and the ``*_full.npy`` rows are Python objects that
    NumPy can read only with ``allow_pickle=True``, which can run arbitrary code
    from a crafted file: load only releases you trust.  ``allow_pickle`` is used
    for those files only; ``train.npy``, the item sets and the feature files are
    read with ``allow_pickle=False``.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"path: MMGCN folder not found: {folder}")
    if (folder / "train.npy").is_file():
        fname = "train.npy"
        train = np.load(folder / fname, allow_pickle=False)
        if train.dtype.kind not in "iu" or train.ndim != 2 or train.shape[1] != 2:
            raise ValueError(f"{fname} must be an (N, 2) integer array, got {train.dtype} "
                             f"{train.shape}")
        train = train.astype(np.int64)
    else:
        for fname in ("user_item_train_dict.npy", "user_item_dict.npy"):
            if (folder / fname).is_file():
                train = _dict_pairs(_load_pickled(folder / fname), fname)
                break
        else:
            raise FileNotFoundError(f"path: no train.npy, user_item_train_dict.npy or "
                                    f"user_item_dict.npy in {folder}")
    train_file = fname
    held = {}
    for split, fname in (("val", "val_full.npy"), ("test", "test_full.npy")):
        p = folder / fname
        held[split] = (_full_rows_pairs(_load_pickled(p), fname) if p.is_file()
                       else np.empty((0, 2), dtype=np.int64))
    item_sets = [np.load(folder / f, allow_pickle=False).astype(np.int64).ravel()
                 for f in ("warm_set.npy", "cold_set.npy") if (folder / f).is_file()]
    node_items = np.concatenate([train[:, 1], held["val"][:, 1], held["test"][:, 1]] + item_sets)
    all_users = np.concatenate([train[:, 0], held["val"][:, 0], held["test"][:, 0]])
    if train.shape[0] == 0:
        raise ValueError(f"{train_file}: no training pairs")
    if n_users is None:
        n_users = int(node_items.min())
        if all_users.max() >= n_users:
            raise ValueError(f"path: a user id ({int(all_users.max())}) is not below the smallest "
                             f"item node id ({n_users}); pass n_users")
    n_users = _as_count(n_users, "n_users")
    if features is None:
        features = {m: f for m, f in _MMGCN_FEATURES if (folder / f).is_file()}
    if not isinstance(features, Mapping):
        raise TypeError(f"features must be a dict name -> array or file name, got "
                        f"{type(features).__name__}")
    feats = {}
    for m, v in features.items():
        if isinstance(v, (str, os.PathLike)):
            p = Path(v) if Path(v).is_absolute() else folder / v
            if not p.is_file():
                raise FileNotFoundError(f"features[{m!r}]: file not found: {p}")
            v = np.load(p, allow_pickle=False)
        feats[m] = v
    parts = {}
    for split, pairs, fname in (("train", train, train_file), ("val", held["val"], "val_full.npy"),
                                ("test", held["test"], "test_full.npy")):
        if pairs.shape[0]:
            bad = np.flatnonzero(pairs[:, 1] < n_users)
            if bad.size:
                raise ValueError(f"{fname}: item node id {pairs[bad[0], 1]} is below n_users="
                                 f"{n_users} (items are numbered after the users)")
        parts[split] = pairs - np.array([0, n_users], dtype=np.int64)
    if n_items is None:
        n_items = int(node_items.max()) + 1 - n_users
        rows = [np.asarray(a).shape[0] for a in feats.values() if np.ndim(a) == 2]
        if rows and max(rows) > n_items:
            n_items = max(rows)
    n_items = _as_count(n_items, "n_items")
    ds = Dataset(parts["train"], parts["val"], parts["test"], feats if feats else None,
                 n_users=n_users, n_items=n_items,
                 item_ids=n_users + np.arange(n_items, dtype=np.int64),
                 name=name if name is not None else folder.name, duplicates=duplicates)
    return ds
