"""The dataset object shared by every model, and its validation.

A :class:`Dataset` is built once (from a DataFrame, from dense arrays, or by a
loader, see :mod:`painvrl.data.loaders`) and handed to every model.  It is
immutable: its arrays are read-only and its attributes cannot be reassigned.
"""
from __future__ import annotations

import operator
import os
import types
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd

from .._util.validation import find_duplicate_pairs as _find_duplicates
from .csr import UserItemCSR

__all__ = ["Dataset"]

_SPLITS = ("train", "val", "test")
_DEFAULT_SPLIT_VALUES = types.MappingProxyType({"train": 0, "val": 1, "test": 2})
_INT64_MAX = np.iinfo(np.int64).max
_MAX_IDS = np.iinfo(np.int32).max  # users / items per dataset (the kernels' int32 slots)

PairsLike = Union[np.ndarray, Sequence[Sequence[int]], UserItemCSR]
FeaturesLike = Union[None, np.ndarray, pd.DataFrame, Mapping[str, Any]]


# --------------------------------------------------------------------------- helpers

def _readonly(arr: np.ndarray) -> np.ndarray:
    """A read-only view of ``arr`` that cannot be made writeable again.

    ``arr`` itself is flagged read-only and the view reads it through a read-only
    buffer, so ``view.flags.writeable = True`` raises ``ValueError`` (on a plain
    read-only array that owns its memory, NumPy lets anyone turn the flag back on).
    This is what lets a :class:`Dataset` stay trusted after it is built.  Arrays
    that cannot export a buffer (object or datetime ids) are only flagged.
    """
    arr.flags.writeable = False
    if arr.dtype.hasobject or not arr.flags.c_contiguous:
        return arr
    try:
        view = np.frombuffer(memoryview(arr), dtype=arr.dtype)
    except (TypeError, ValueError, BufferError):  # dtypes without a buffer format
        return arr
    return view.reshape(arr.shape)


def _show(values) -> list:
    """Plain Python values for error messages (no ``np.int64(3)`` reprs)."""
    return [v.item() if isinstance(v, np.generic) else v for v in values]


def _as_count(value: Any, param: str) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{param} must be an integer, got {value!r}")
    try:
        n = operator.index(value)
    except TypeError:
        raise TypeError(f"{param} must be an integer, got {type(value).__name__}") from None
    if n < 1:
        raise ValueError(f"{param} must be at least 1, got {n}")
    return n


def _as_pairs(obj: Any, param: str) -> np.ndarray:
    """Validate one split as a fresh C-contiguous (n, 2) int64 array (ids >= 0, not range-checked)."""
    if obj is None:
        return np.empty((0, 2), dtype=np.int64)
    if isinstance(obj, UserItemCSR):
        return np.ascontiguousarray(obj.to_pairs(), dtype=np.int64)
    if isinstance(obj, (pd.DataFrame, pd.Series)):
        raise TypeError(f"{param} must be an (n, 2) integer array of dense (user, item) ids, got a "
                        f"{type(obj).__name__}; use Dataset.from_dataframe for raw ids")
    arr = np.asarray(obj)
    if arr.size == 0 and (arr.ndim == 1 or (arr.ndim == 2 and arr.shape[1] in (0, 2))):
        return np.empty((0, 2), dtype=np.int64)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{param} must hold integer ids, got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{param} must have shape (n, 2) of (user, item) pairs, got shape {arr.shape}")
    if arr.dtype.kind == "u" and arr.dtype.itemsize >= 8 and int(arr.max()) > _INT64_MAX:
        raise ValueError(f"{param} contains an id larger than the int64 maximum")
    out = np.array(arr, dtype=np.int64, order="C", copy=True)
    neg = np.flatnonzero((out < 0).any(axis=1))
    if neg.size:
        r = int(neg[0])
        what = "user" if out[r, 0] < 0 else "item"
        raise ValueError(f"{param} contains a negative {what} id: row {r} is "
                         f"({out[r, 0]}, {out[r, 1]})")
    return out


def _check_range(pairs: np.ndarray, param: str, n_users: int, n_items: int) -> None:
    for col, what, n in ((0, "user", n_users), (1, "item", n_items)):
        if pairs.shape[0] == 0:
            continue
        bad = np.flatnonzero(pairs[:, col] >= n)
        if bad.size:
            r = int(bad[0])
            raise ValueError(f"{param} contains {what} id {pairs[r, col]} (row {r}), out of range "
                             f"for n_{what}s={n}")


def _dedupe_splits(parts: Sequence[np.ndarray], duplicates: str,
                   describe: Callable[[int, int], str]) -> list:
    """Remove repeated (user, item) pairs within and across splits (train, then val, then test).

    ``describe(split_index, row_in_split)`` names a row in error messages.
    """
    if duplicates not in ("raise", "drop"):
        raise ValueError(f"duplicates must be 'raise' or 'drop', got {duplicates!r}")
    sizes = [p.shape[0] for p in parts]
    allp = np.concatenate(parts, axis=0)
    dup, first = _find_duplicates(allp[:, 0], allp[:, 1])
    if dup.size == 0:
        return list(parts)
    offsets = np.concatenate(([0], np.cumsum(sizes)))

    def where(pos: int) -> str:
        s = int(np.searchsorted(offsets, pos, side="right") - 1)
        return describe(s, int(pos - offsets[s]))

    if duplicates == "raise":
        d, f = int(dup[0]), int(first[0])
        raise ValueError(
            f"duplicate (user, item) pair ({allp[d, 0]}, {allp[d, 1]}): {where(d)} repeats {where(f)} "
            f"({dup.size} repeated pair(s) in all); pass duplicates='drop' to keep only the first "
            f"occurrence (train before val before test)")
    keep = np.ones(allp.shape[0], dtype=bool)
    keep[dup] = False
    return [np.ascontiguousarray(allp[offsets[k]:offsets[k + 1]][keep[offsets[k]:offsets[k + 1]]])
            for k in range(len(parts))]


def _normalise_rows(x: np.ndarray, out: np.ndarray, chunk: int = 8192) -> None:
    """Write ``x`` with every row scaled to unit L2 norm into ``out`` (zero rows stay zero).

    Squares are summed in float64 (float32 and smaller inputs cannot overflow
    there); float64 rows with huge or tiny values are first divided by their
    largest magnitude so the norm neither overflows nor underflows.
    """
    if x.shape[1] == 0:
        return
    if x.dtype.kind != "f":
        x = x.astype(np.float64)
    elif x.dtype.itemsize > 8:  # long double: bring into float64 range first
        m = np.abs(x).max(axis=1, keepdims=True)
        x = (x / np.where(m > 0, m, 1)).astype(np.float64)
    for lo in range(0, x.shape[0], chunk):
        xb = x[lo:lo + chunk]
        if xb.dtype == np.float64:
            m = np.abs(xb).max(axis=1)
            nz = m[m > 0]
            if nz.size and (nz.max() > 1e150 or nz.min() < 1e-150):
                xb = xb / np.where(m > 0, m, 1.0)[:, None]
        ss = np.einsum("ij,ij->i", xb, xb, dtype=np.float64)
        inv = np.zeros_like(ss)
        np.divide(1.0, np.sqrt(ss), out=inv, where=ss > 0)
        np.multiply(xb, inv[:, None], out=out[lo:lo + chunk], casting="unsafe")


def _feature_values(value: Any, param: str, row_index: Optional[Callable[[pd.DataFrame, str],
                    np.ndarray]]) -> np.ndarray:
    if isinstance(value, pd.DataFrame):
        if row_index is None:
            raise TypeError(f"{param} is a DataFrame; DataFrame features (indexed by raw item id) are "
                            f"only accepted by Dataset.from_dataframe")
        return row_index(value, param)
    if isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{param} must be an array, got a path {value!r}")
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{param} must be a real numeric array, got dtype {arr.dtype}")
    return arr


def _prepare_features(features: FeaturesLike, n_items: Optional[int], normalize: bool,
                      row_index=None) -> Tuple[np.ndarray, Dict[str, slice], int]:
    """Validate, L2-normalise per modality and concatenate the item features.

    Returns the (n_items, D) float32 array, the modality slices and n_items
    (taken from the features when ``n_items`` is None).
    """
    if features is None:
        mods: Dict[str, Any] = {}
    elif isinstance(features, Mapping):
        mods = dict(features)
        for k in mods:
            if not isinstance(k, str) or not k:
                raise TypeError(f"features: modality names must be non-empty strings, got {k!r}")
    else:
        mods = {"features": features}
    arrays = {}
    for name, value in mods.items():
        param = f"features[{name!r}]"
        arr = _feature_values(value, param, row_index)
        if arr.dtype.kind not in "fiu":
            raise TypeError(f"{param} must be a real numeric array, got dtype {arr.dtype}")
        if arr.ndim != 2:
            raise ValueError(f"{param} must be 2-D (n_items, dim), got shape {arr.shape}")
        if n_items is None:
            n_items = arr.shape[0]
        if arr.shape[0] != n_items:
            raise ValueError(f"{param} has {arr.shape[0]} rows but there are {n_items} items "
                             f"(row i must hold item i's features; a row is missing for every item "
                             f"beyond the last row)" if arr.shape[0] < n_items else
                             f"{param} has {arr.shape[0]} rows but there are only {n_items} items")
        if arr.dtype.kind == "f":
            bad = ~np.isfinite(arr)
            if bad.any():
                r = int(np.flatnonzero(bad.any(axis=1))[0])
                raise ValueError(f"{param} contains NaN or inf (first in row {r})")
        arrays[name] = arr
    if n_items is None:  # no content and no n_items: the caller sizes the empty block
        return np.zeros((0, 0), dtype=np.float32), {}, 0
    dims = [a.shape[1] for a in arrays.values()]
    out = np.zeros((n_items, int(sum(dims))), dtype=np.float32)
    slices: Dict[str, slice] = {}
    start = 0
    for (name, arr), d in zip(arrays.items(), dims):
        sl = slice(start, start + d)
        if normalize:
            _normalise_rows(arr, out[:, sl])
        else:
            with np.errstate(over="ignore"):
                out[:, sl] = arr
            if not np.isfinite(out[:, sl]).all():
                raise ValueError(f"features[{name!r}] has values too large for float32")
        slices[name] = sl
        start += d
    return out, slices, n_items


def _as_feature_names(names: Any, n_features: int) -> Optional[Tuple[str, ...]]:
    """Validate ``feature_names``: None, or one distinct non-empty string per feature column."""
    if names is None:
        return None
    if isinstance(names, (str, bytes)) or not isinstance(names, Iterable):
        raise TypeError(f"feature_names must be a sequence of strings (one per feature column), "
                        f"got {type(names).__name__}")
    out = tuple(names)
    if len(out) != n_features:
        raise ValueError(f"feature_names must have one name per feature column ({n_features}), "
                         f"got {len(out)}")
    bad = [k for k, v in enumerate(out) if not isinstance(v, str) or not v]
    if bad:
        raise TypeError(f"feature_names must be non-empty strings; entry {bad[0]} is "
                        f"{out[bad[0]]!r}")
    if len(set(out)) != len(out):
        seen = set()
        first = next(v for v in out if v in seen or seen.add(v))
        raise ValueError(f"feature_names must be distinct; {first!r} repeats")
    return out


def _as_ids(ids: Any, n: int, param: str) -> np.ndarray:
    arr = np.asarray(ids)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{param} must be 1-D of length {n}, got shape {arr.shape}")
    if not pd.Index(arr).is_unique:
        raise ValueError(f"{param} must not contain repeated ids")
    return _readonly(arr.copy())


# --------------------------------------------------------------------------- Dataset

class Dataset:
    """Implicit-feedback interactions with multimodal item content, in dense ids.

    Build it once and hand it to every model.  Users are ``0 .. n_users - 1`` and
    items ``0 .. n_items - 1``; :attr:`user_ids` / :attr:`item_ids` map those dense
    ids back to the raw ids they came from.  The object is immutable: arrays are
    read-only, attributes cannot be reassigned, and inputs are copied.

    ``Dataset(...)`` takes already-dense ids and is the same as
    :meth:`from_arrays`; :meth:`from_dataframe` remaps raw ids.

    Parameters
    ----------
    train : array_like of int, shape (n_train, 2), or UserItemCSR
        Training (user, item) pairs.  Must not be empty.  Their order is kept
        (environment labels are indexed by it).
    val, test : array_like of int, shape (n, 2), or UserItemCSR, optional
        Validation and test pairs; may be empty or None.
    features : ndarray, or mapping of str to ndarray, optional
        Item content.  A mapping gives one (n_items, d_m) array per modality,
        in the order the modalities are concatenated; a single array is one
        modality named ``"features"``.  Row ``i`` is item ``i``.  Any real
        dtype; NaN and inf are rejected.  None gives a dataset without content
        (``features`` of shape (n_items, 0)).
    n_users, n_items : int, optional
        Numbers of users and items.  By default ``1 + max id`` over all splits
        (for items, the number of feature rows when features are given).  Pass
        them to include users or items without any interaction.
    user_ids, item_ids : array_like, shape (n_users,) / (n_items,), optional
        Raw ids, ``user_ids[u]`` being the raw id of dense user ``u``; distinct.
        Default ``arange``.
    name : str, optional
        A label shown by ``repr`` and :meth:`summary`.
    feature_names : sequence of str, optional
        One distinct name per column of the concatenated :attr:`features`
        (e.g. named item attributes), so a learned mask can be reported per
        column (:meth:`feature_frame`).  Default None: columns are unnamed.
    duplicates : {"raise", "drop"}
        What to do with a (user, item) pair that occurs twice, within a split or
        across splits.  ``"drop"`` keeps the first occurrence, train before val
        before test (so a training pair is never also a test pair).
    normalize : bool, default True
        L2-normalise each modality per row before concatenating them (method
        §1).  Rows of zeros stay zero.  Set False only for features that are
        already prepared; they are then only cast to float32.

    Attributes
    ----------
    n_users, n_items : int
    train : ndarray of int64, shape (n_train, 2)
        Distinct (user, item) training pairs in their stored order.
    val, test : UserItemCSR
        Held-out pairs per user (possibly with no entries).
    train_csr : UserItemCSR
        The training pairs per user, e.g. to exclude seen items from a ranking.
    features : ndarray of float32, shape (n_items, D), C-contiguous
        Concatenated per-modality L2-normalised features; D = 0 without content.
    modalities : mapping of str to slice
        Ordered; ``features[:, modalities[name]]`` is one modality.
    user_ids, item_ids : ndarray
        Raw ids indexed by dense id.
    name : str or None
    feature_names : tuple of str or None
        Column names of :attr:`features`, if given.
    user_degree, item_degree : ndarray of int64
        Number of distinct training pairs per user / item (method §10.1).

    Notes
    -----
    **Validated once.**  The constructor is where the data is checked (integer
    ids in range, distinct pairs, finite features, dtypes, layout); the arrays
    are then read-only views that cannot be made writeable again (setting
    ``flags.writeable = True`` raises), so a ``Dataset`` stays valid for its
    whole life.  The stages that take a ``Dataset`` (``Backbone.fit``,
    :func:`~painvrl.invariance.identify_environments`, the ``InvRL`` /
    ``PaInvRL`` pipelines, their validation checks, ``evaluate``) therefore use
    its arrays as they are, without scanning them again; functions handed raw
    arrays (:func:`~painvrl.invariance.learn_mask`, :func:`~painvrl.topk`, ...)
    still check them.

    Users and items without training pairs are allowed (they can appear only in
    ``val``/``test``, or nowhere): their degree is 0, :meth:`summary` counts
    them, and a model learns nothing about them from interactions (item
    content still gives such items a representation).

    Examples
    --------
    >>> import numpy as np
    >>> from painvrl.data import Dataset
    >>> ds = Dataset.from_arrays(np.array([[0, 0], [0, 2], [1, 1]]), test=np.array([[1, 2]]),
    ...                          features={"visual": np.eye(3) * 5.0}, name="toy")
    >>> ds
    Dataset(name='toy', n_users=2, n_items=3, n_train=3, n_val=0, n_test=1, modalities={'visual': 3})
    >>> ds.features[0]
    array([1., 0., 0.], dtype=float32)
    >>> ds.user_degree
    array([2, 1])
    """

    __slots__ = ("n_users", "n_items", "train", "val", "test", "train_csr", "features",
                 "modalities", "user_ids", "item_ids", "name", "feature_names", "user_degree",
                 "item_degree", "_frozen", "_columns")

    def __init__(self, train: PairsLike, val: Optional[PairsLike] = None,
                 test: Optional[PairsLike] = None, features: FeaturesLike = None,
                 n_users: Optional[int] = None, n_items: Optional[int] = None, *,
                 user_ids: Any = None, item_ids: Any = None, name: Optional[str] = None,
                 duplicates: str = "raise", normalize: bool = True, feature_names: Any = None):
        self._build(train, val, test, features, n_users, n_items, user_ids=user_ids,
                    item_ids=item_ids, name=name, duplicates=duplicates, normalize=normalize,
                    feature_names=feature_names)

    @classmethod
    def _create(cls, *args, **kwargs) -> "Dataset":
        """Like ``cls(...)`` but accepts the private hooks of :meth:`_build`."""
        obj = cls.__new__(cls)
        obj._build(*args, **kwargs)
        return obj

    def _build(self, train, val, test, features, n_users, n_items, *, user_ids, item_ids, name,
               duplicates, normalize, feature_names=None, feature_rows: Optional[Callable] = None,
               describe: Optional[Callable[[int, int], str]] = None) -> None:
        """Validate everything and set the fields.

        ``feature_rows(frame, param)`` turns a DataFrame of features into rows in
        dense item order (from_dataframe); ``describe(split, row)`` names a row in
        duplicate errors.
        """
        parts = [_as_pairs(train, "train"), _as_pairs(val, "val"), _as_pairs(test, "test")]
        if parts[0].shape[0] == 0:
            raise ValueError("train is empty: a dataset needs at least one training pair")
        if n_items is not None:
            n_items = _as_count(n_items, "n_items")
        feats, slices, n_items_f = _prepare_features(features, n_items, normalize, feature_rows)
        if n_users is None:
            n_users = 1 + max(int(p[:, 0].max()) for p in parts if p.shape[0])
        else:
            n_users = _as_count(n_users, "n_users")
        if n_items is None:
            n_items = 1 + max(int(p[:, 1].max()) for p in parts if p.shape[0])
            if slices:
                if n_items > n_items_f:
                    bad = next(k for k, p in enumerate(parts)
                               if p.shape[0] and p[:, 1].max() >= n_items_f)
                    raise ValueError(
                        f"features: the feature arrays have {n_items_f} rows but {_SPLITS[bad]} "
                        f"contains item id {n_items - 1}; row i must hold item i's features, so "
                        f"rows are missing")
                n_items = n_items_f
        for count, what in ((n_users, "n_users"), (n_items, "n_items")):
            if count > _MAX_IDS:
                raise ValueError(f"{what} must be <= {_MAX_IDS} (ids are dense, 0 .. n - 1, and "
                                 f"the C kernels index them with 32-bit slots), got {count}; "
                                 f"remap raw ids with Dataset.from_dataframe")
        for p, param in zip(parts, _SPLITS):
            _check_range(p, param, n_users, n_items)
        if feats.shape[0] != n_items:  # no modality given: an empty (n_items, 0) block
            feats = np.zeros((n_items, 0), dtype=np.float32)
        if describe is None:
            def describe(s: int, r: int) -> str:
                return f"{_SPLITS[s]} row {r}"
        parts = _dedupe_splits(parts, duplicates, describe)
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a string or None, got {type(name).__name__}")
        feature_names = _as_feature_names(feature_names, feats.shape[1])
        user_ids = (np.arange(n_users, dtype=np.int64) if user_ids is None
                    else _as_ids(user_ids, n_users, "user_ids"))
        item_ids = (np.arange(n_items, dtype=np.int64) if item_ids is None
                    else _as_ids(item_ids, n_items, "item_ids"))
        self._set_fields(n_users=n_users, n_items=n_items, train=parts[0],
                         val=UserItemCSR.from_pairs(parts[1][:, 0], parts[1][:, 1], n_users, n_items),
                         test=UserItemCSR.from_pairs(parts[2][:, 0], parts[2][:, 1], n_users, n_items),
                         features=feats, modalities=slices, user_ids=user_ids, item_ids=item_ids,
                         name=name, feature_names=feature_names)

    def _set_fields(self, *, n_users, n_items, train, val, test, features, modalities,
                    user_ids, item_ids, name, feature_names=None) -> None:
        """Store already-validated fields, derive the rest, freeze."""
        if getattr(self, "_frozen", False):  # e.g. ds.__init__(...) called a second time
            raise AttributeError("Dataset is immutable: it cannot be initialised twice")
        train = np.ascontiguousarray(train, dtype=np.int64)
        train_csr = UserItemCSR.from_pairs(train[:, 0], train[:, 1], n_users, n_items)
        fields = dict(
            n_users=int(n_users), n_items=int(n_items), train=_readonly(train), val=val, test=test,
            train_csr=train_csr, features=_readonly(np.ascontiguousarray(features, np.float32)),
            modalities=types.MappingProxyType(dict(modalities)),
            user_ids=_readonly(np.asarray(user_ids)), item_ids=_readonly(np.asarray(item_ids)),
            name=name, feature_names=None if feature_names is None else tuple(feature_names),
            user_degree=_readonly(np.bincount(train[:, 0], minlength=n_users).astype(np.int64)),
            item_degree=_readonly(np.bincount(train[:, 1], minlength=n_items).astype(np.int64)),
        )
        for csr in (val, test, train_csr):  # the Dataset's own CSRs (built by from_pairs)
            object.__setattr__(csr, "indptr", _readonly(csr.indptr))
            object.__setattr__(csr, "indices", _readonly(csr.indices))
        for k, v in fields.items():
            object.__setattr__(self, k, v)
        object.__setattr__(self, "_frozen", True)

    # -- immutability and pickling
    def __setattr__(self, key, value):
        raise AttributeError(f"Dataset is immutable: cannot set {key!r}; build a new Dataset instead")

    def __delattr__(self, key):
        raise AttributeError(f"Dataset is immutable: cannot delete {key!r}")

    def __reduce__(self):
        state = {k: getattr(self, k) for k in ("n_users", "n_items", "train", "val", "test",
                                                "features", "user_ids", "item_ids", "name",
                                                "feature_names")}
        state["modalities"] = dict(self.modalities)
        return (_restore_dataset, (state,))

    # -- constructors
    @classmethod
    def from_arrays(cls, train: PairsLike, val: Optional[PairsLike] = None,
                    test: Optional[PairsLike] = None, features: FeaturesLike = None,
                    n_users: Optional[int] = None, n_items: Optional[int] = None, *,
                    user_ids: Any = None, item_ids: Any = None, name: Optional[str] = None,
                    duplicates: str = "raise", normalize: bool = True,
                    feature_names: Any = None) -> "Dataset":
        """Build a dataset from already-dense ids (same parameters as :class:`Dataset`).

        Examples
        --------
        >>> import numpy as np
        >>> ds = Dataset.from_arrays([[0, 1], [1, 0]], val=[[1, 1]], n_items=4)
        >>> ds.n_users, ds.n_items, ds.val.nnz
        (2, 4, 1)
        """
        return cls(train, val, test, features, n_users, n_items, user_ids=user_ids,
                   item_ids=item_ids, name=name, duplicates=duplicates, normalize=normalize,
                   feature_names=feature_names)

    @classmethod
    def from_dataframe(cls, df: pd.DataFrame, features: FeaturesLike = None, *,
                       user_col: str = "user", item_col: str = "item",
                       split_col: Optional[str] = None,
                       split_values: Mapping[str, Any] = _DEFAULT_SPLIT_VALUES,
                       user_id_order: Optional[Iterable] = None,
                       item_id_order: Optional[Iterable] = None,
                       duplicates: str = "raise", normalize: bool = True,
                       name: Optional[str] = None, feature_names: Any = None) -> "Dataset":
        """Build a dataset from a table of raw (user, item[, split]) ids, remapping them to dense ids.

        Parameters
        ----------
        df : pandas.DataFrame
            One row per interaction.  Other columns (ratings, timestamps) are ignored.
        features : mapping of str to (ndarray or DataFrame), ndarray or DataFrame, optional
            Item content per modality (a bare array or DataFrame is one modality
            named ``"features"``).  Rows are matched to items as follows:

            * an **array** must have exactly ``n_items`` rows and its row ``r`` is the
              item whose raw id is ``item_ids[r]`` (see below);
            * a **DataFrame** is indexed by raw item id (unique index, numeric
              columns); its rows are looked up by id, so its row order does not
              matter and rows for other ids are ignored.  Every item must have a
              row.
        user_col, item_col : str
            Columns holding the raw user and item ids (any hashable, non-null values).
        split_col : str, optional
            Column saying which split each row belongs to; None puts every row in train.
        split_values : mapping
            The value(s) of ``split_col`` for ``"train"``, ``"val"`` and ``"test"`` (a
            scalar or a list each); default ``{"train": 0, "val": 1, "test": 2}``.
            The strings ``"train"``, ``"val"`` and ``"test"`` are always accepted too.
            Any other value raises.
        user_id_order, item_id_order : sequence, optional
            The raw ids in dense-id order: ``item_id_order[r]`` becomes item ``r``.
            They may include ids that have no interaction (e.g. items known only by
            their features) and must include every id in ``df``.  By default the
            dense ids are the **sorted** distinct raw ids found in ``df`` (all
            splits), so integer ids ``0..n-1`` keep their value.
        duplicates : {"raise", "drop"}
            See :class:`Dataset`.
        normalize : bool
            See :class:`Dataset`.
        name : str, optional
        feature_names : sequence of str, optional
            See :class:`Dataset`.

        Returns
        -------
        Dataset
            ``user_ids`` / ``item_ids`` hold the raw ids; training pairs keep the
            order of their rows in ``df``.

        Examples
        --------
        >>> import pandas as pd
        >>> df = pd.DataFrame({"user": ["ann", "bob", "ann", "bob"],
        ...                    "item": [30, 10, 10, 20], "split": [0, 0, 0, 2]})
        >>> ds = Dataset.from_dataframe(df, split_col="split")
        >>> ds.item_ids.tolist(), ds.train.tolist(), ds.test.to_pairs().tolist()
        ([10, 20, 30], [[0, 2], [1, 0], [0, 0]], [[1, 1]])
        """
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
        for param, col in (("user_col", user_col), ("item_col", item_col), ("split_col", split_col)):
            if col is not None and col not in df.columns:
                raise ValueError(f"{param}={col!r} is not a column of df; columns are "
                                 f"{list(df.columns)}")
        # which split each row belongs to
        split = np.zeros(len(df), dtype=np.int8)
        if split_col is not None:
            if not isinstance(split_values, Mapping):
                raise TypeError("split_values must be a mapping from 'train'/'val'/'test' to values")
            unknown_keys = set(split_values) - set(_SPLITS)
            if unknown_keys:
                raise ValueError(f"split_values keys must be 'train', 'val' or 'test', got "
                                 f"{sorted(map(str, unknown_keys))}")
            col = df[split_col]
            assigned = np.zeros(len(df), dtype=bool)
            for s, name_s in enumerate(_SPLITS):
                v = split_values.get(name_s, [])
                vals = list(v) if isinstance(v, (list, tuple, set, frozenset, np.ndarray)) else [v]
                m = col.isin(vals + [name_s]).to_numpy()
                if (m & assigned).any():
                    raise ValueError(f"split_values: a value of split_col={split_col!r} maps to "
                                     f"more than one split")
                split[m] = s
                assigned |= m
            if not assigned.all():
                bad = pd.unique(col[~assigned])[:5]
                raise ValueError(f"split_col={split_col!r} has values that are not in split_values "
                                 f"({dict(split_values)}) nor 'train'/'val'/'test': "
                                 f"{_show(bad)}")
        # raw -> dense ids
        codes = []
        ids = []
        for param, col, order in (("user_col", user_col, user_id_order),
                                  ("item_col", item_col, item_id_order)):
            s = df[col]
            if s.isna().any():
                raise ValueError(f"{param}={col!r} contains missing ids (row "
                                 f"{int(np.flatnonzero(s.isna().to_numpy())[0])})")
            what = "user" if param == "user_col" else "item"
            if order is None:
                try:
                    c, uniq = pd.factorize(s, sort=True)
                except TypeError as exc:
                    raise TypeError(f"{param}={col!r}: raw ids cannot be sorted ({exc}); pass "
                                    f"{what}_id_order") from None
                uniq = np.asarray(uniq)
            else:
                uniq = np.asarray(list(order) if not isinstance(order, (np.ndarray, pd.Index))
                                  else order)
                if uniq.ndim != 1:
                    raise ValueError(f"{what}_id_order must be 1-D, got shape {uniq.shape}")
                index = pd.Index(uniq)
                if not index.is_unique:
                    raise ValueError(f"{what}_id_order must not contain repeated ids")
                c = index.get_indexer(s)
                if (c < 0).any():
                    missing = pd.unique(s[c < 0])[:5]
                    raise ValueError(f"{param}={col!r} has ids that are not in {what}_id_order: "
                                     f"{_show(missing)}")
            if uniq.shape[0] == 0:
                raise ValueError(f"{what}_id_order is empty" if order is not None else
                                 "df has no rows: a dataset needs at least one training pair")
            codes.append(np.asarray(c, dtype=np.int64))
            ids.append(uniq)
        users, items = codes
        user_ids, item_ids = ids
        item_index = pd.Index(item_ids)

        def rows_for_items(frame: pd.DataFrame, param: str) -> np.ndarray:
            if not frame.index.is_unique:
                raise ValueError(f"{param}: the DataFrame index (raw item id) has repeated ids")
            pos = frame.index.get_indexer(item_index)
            if (pos < 0).any():
                missing = item_index[pos < 0][:5]
                raise ValueError(f"{param} has no row for item id(s) {_show(missing)} "
                                 f"({int((pos < 0).sum())} missing)")
            try:
                values = frame.to_numpy()
            except (TypeError, ValueError) as exc:  # pragma: no cover - pandas-version dependent
                raise TypeError(f"{param}: columns must be numeric ({exc})") from None
            if values.dtype.kind not in "fiu":
                raise TypeError(f"{param}: columns must be numeric, got dtype {values.dtype}")
            return values[pos]

        positions = [np.flatnonzero(split == s) for s in range(3)]
        labels = df.index

        def describe(s: int, r: int) -> str:
            return f"df row {_show([labels[positions[s][r]]])[0]!r} ({_SPLITS[s]})"

        pairs = [np.stack([users[p], items[p]], axis=1) for p in positions]
        if pairs[0].shape[0] == 0:
            raise ValueError("train is empty: no row of df is in the training split"
                             + (f" (split_col={split_col!r})" if split_col is not None else ""))
        return cls._create(pairs[0], pairs[1], pairs[2], features, len(user_ids), len(item_ids),
                           user_ids=user_ids, item_ids=item_ids, name=name, duplicates=duplicates,
                           normalize=normalize, feature_names=feature_names,
                           feature_rows=rows_for_items, describe=describe)

    # -- derived
    def _train_columns(self) -> Tuple[np.ndarray, np.ndarray]:
        """``(users, items)``: the two columns of :attr:`train` as C-contiguous, read-only
        int64 arrays, the layout the C core takes (made once, on first use, and kept:
        the stages of a pipeline share them instead of copying ``train[:, 0]`` each)."""
        cols = getattr(self, "_columns", None)
        if cols is None:
            cols = tuple(_readonly(np.ascontiguousarray(self.train[:, k])) for k in (0, 1))
            object.__setattr__(self, "_columns", cols)
        return cols

    def _train_val_csr(self) -> UserItemCSR:
        """The training and validation pairs per user (``exclude="train+val"``), built from
        the dataset's own pairs without re-checking them."""
        pairs = np.concatenate([self.train, self.val.to_pairs()])
        return UserItemCSR._from_trusted_pairs(pairs[:, 0], pairs[:, 1], self.n_users,
                                               self.n_items)

    @property
    def n_train(self) -> int:
        """Number of training pairs."""
        return int(self.train.shape[0])

    @property
    def n_features(self) -> int:
        """Width D of :attr:`features` (0 without content)."""
        return int(self.features.shape[1])

    def modality(self, name: str) -> np.ndarray:
        """The (n_items, d) read-only block of :attr:`features` for one modality."""
        if name not in self.modalities:
            raise KeyError(f"no modality {name!r}; modalities are {list(self.modalities)}")
        return self.features[:, self.modalities[name]]

    def feature_frame(self, **columns: Any) -> pd.DataFrame:
        """One row per feature column: its modality, its name, and any per-column values.

        Parameters
        ----------
        **columns : array_like, shape (D,)
            Values to show beside each column, e.g. ``mask=model.mask_``.

        Returns
        -------
        pandas.DataFrame
            Columns ``modality``, ``feature`` (the :attr:`feature_names`, else
            ``"<modality>[<j>]"`` with ``j`` the column's index inside its
            modality), then ``columns`` in the order given.

        Raises
        ------
        ValueError
            If a value array is not 1-D of length D.

        Examples
        --------
        >>> import numpy as np
        >>> ds = Dataset.from_arrays([[0, 0], [1, 1]], features={"a": np.eye(2), "b": np.ones((2, 1))},
        ...                          feature_names=["a0", "a1", "b0"])
        >>> ds.feature_frame(mask=[0.5, 1.0, 0.0]).to_dict("list")
        {'modality': ['a', 'a', 'b'], 'feature': ['a0', 'a1', 'b0'], 'mask': [0.5, 1.0, 0.0]}
        """
        modality = [""] * self.n_features
        default = [""] * self.n_features
        for mod, sl in self.modalities.items():
            for j, col in enumerate(range(sl.start, sl.stop)):
                modality[col] = mod
                default[col] = f"{mod}[{j}]"
        frame = pd.DataFrame({"modality": modality,
                              "feature": list(self.feature_names or default)})
        for key, values in columns.items():
            arr = np.asarray(values)
            if arr.ndim != 1 or arr.shape[0] != self.n_features:
                raise ValueError(f"feature_frame: {key} must be 1-D with one value per feature "
                                 f"column ({self.n_features}), got shape {arr.shape}")
            frame[key] = arr
        return frame

    def summary(self) -> str:
        """A multi-line description of the sizes (users, items, splits, features)."""
        cold_users = int((self.user_degree == 0).sum())
        cold_items = int((self.item_degree == 0).sum())
        density = self.n_train / (self.n_users * self.n_items)
        mods = ", ".join(f"{k} {v.stop - v.start}" for k, v in self.modalities.items())
        lines = [
            f"Dataset {self.name!r}" if self.name is not None else "Dataset",
            f"  users     {self.n_users:>10,}  ({cold_users:,} without training pairs)",
            f"  items     {self.n_items:>10,}  ({cold_items:,} without training pairs)",
            f"  train     {self.n_train:>10,}  pairs (density {density:.4%})",
            f"  val       {self.val.nnz:>10,}  pairs ({_users_with_rows(self.val):,} users)",
            f"  test      {self.test.nnz:>10,}  pairs ({_users_with_rows(self.test):,} users)",
            f"  features  D = {self.n_features}" + (f" ({mods})" if mods else " (no item content)"),
        ]
        return "\n".join(lines)

    def __repr__(self) -> str:
        mods = {k: v.stop - v.start for k, v in self.modalities.items()}
        return (f"Dataset(name={self.name!r}, n_users={self.n_users}, n_items={self.n_items}, "
                f"n_train={self.n_train}, n_val={self.val.nnz}, n_test={self.test.nnz}, "
                f"modalities={mods})")


def _users_with_rows(csr: UserItemCSR) -> int:
    return int((csr.row_lengths() > 0).sum())


def _restore_dataset(state: dict) -> Dataset:
    ds = Dataset.__new__(Dataset)
    ds._set_fields(**state)
    return ds
