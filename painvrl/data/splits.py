"""Train / validation / test splits, including the out-of-distribution (OOD) tests of method.md §6.2.

Every function takes the interactions of a :class:`~painvrl.data.Dataset` (all
three of its splits pooled, see :func:`pooled_pairs`) or raw pairs, and
returns a **new** :class:`~painvrl.data.Dataset` in the same id space (same
``n_users``, ``n_items``, raw ids and item features), so that one model's
vectors can be scored on every split.  No pair is lost or duplicated: the
output's train, val, test (and OOD test, where there is one) partition the
input's pooled pairs.

* :func:`given`: the dataset's own split (the released GRCN/MMGCN splits).
* :func:`random_per_user`: each user's interactions split 8:1:1 at random,
  the convention of this line of work (method.md §6.2, unverified).
* :func:`temporal`: by time, when timestamps exist.
* :func:`hold_out_environments`: the OOD ("cross-environment") construction
  recommended in method.md §6.2 [inferred: the paper's own definition is
  unknown]: the pairs of some environments form the OOD test, the others
  are split 8:1:1 into train / val / IID test.
* :func:`popularity_shift`: a second OOD kind (our construction): a test set
  made only of long-tail items' interactions, next to an IID test.
* :func:`exposure_holdout`: data with a real random-exposure test (Coat):
  the self-selected positives split into train / val / IID test, the
  random-exposure ones into a fixed OOD validation set and the OOD test.

:class:`EnvironmentHoldout` (with ``val_holdout``) and :class:`ExposureHoldout`
carry an **OOD validation set** disjoint from the OOD test, so that every choice
(early stopping, a weighting, a point on a Pareto front) can be made on
validation data only: ``.splits()`` gives the tests, ``.validation_splits()``
their validation counterparts.

The per-user rounding rule (shared by :func:`random_per_user`,
:func:`temporal` and the splits built on them): a user with ``n`` pairs gives
``floor(r_val * n + 0.5)`` to val and ``floor(r_test * n + 0.5)`` to test
(``r`` the ratios normalised to sum 1) and the rest to train; if that leaves
fewer than ``min_train`` training pairs, test and then val give pairs back
until train has ``min(min_train, n)``.  Small users therefore keep slightly
more than ``r_train`` of their pairs in train whenever rounding is tight.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd

from .csr import UserItemCSR
from .._util.validation import check_choice, check_int, check_real
from .dataset import Dataset

__all__ = ["pooled_pairs", "pooled", "given", "random_per_user", "temporal",
           "hold_out_environments", "popularity_shift", "exposure_holdout", "EnvironmentHoldout",
           "ExposureHoldout", "PopularityShift", "OOD_VAL_SEED"]

_WHICH = ("smallest", "largest", "random", "farthest")


# --------------------------------------------------------------------------- helpers

def _check_ratios(ratios, func: str) -> Tuple[float, float, float]:
    try:
        r = tuple(float(x) for x in ratios)
    except (TypeError, ValueError):
        raise TypeError(f"{func}: ratios must be three numbers (train, val, test), "
                        f"got {ratios!r}") from None
    if len(r) != 3:
        raise ValueError(f"{func}: ratios must be three numbers (train, val, test), got {ratios!r}")
    if not all(math.isfinite(x) and x >= 0 for x in r) or r[0] <= 0:
        raise ValueError(f"{func}: ratios must be finite and >= 0 with a positive train share, "
                         f"got {ratios!r}")
    top = max(r)                  # scale first: the sum of huge ratios could overflow to inf
    r = tuple(x / top for x in r)
    s = sum(r)
    return (r[0] / s, r[1] / s, r[2] / s)


def _check_share(value, name: str, func: str) -> float:
    v = check_real(value, name, minimum=0.0, maximum=1.0, func=func)
    if not (0.0 < v < 1.0):
        raise ValueError(f"{func}: {name} must lie strictly between 0 and 1, got {v}")
    return v


def _check_dataset(dataset, func: str, name: str = "dataset") -> Dataset:
    if not isinstance(dataset, Dataset):
        raise TypeError(f"{func}: {name} must be a painvrl Dataset, got {type(dataset).__name__}")
    return dataset


def _csr(pairs: np.ndarray, ds: Dataset) -> UserItemCSR:
    return UserItemCSR.from_pairs(pairs[:, 0], pairs[:, 1], ds.n_users, ds.n_items)


def _suffix(name: Optional[str], tag: str) -> Optional[str]:
    return None if name is None else f"{name}[{tag}]"


def _rebuild(ds: Dataset, train: np.ndarray, val: np.ndarray, test: np.ndarray,
             tag: str, func: str) -> Dataset:
    """A Dataset with new pairs but ``ds``'s id space, raw ids and (already prepared) features."""
    if train.shape[0] == 0:
        raise ValueError(f"{func}: the split must leave at least one training pair, got none")
    feats = ({m: ds.features[:, sl] for m, sl in ds.modalities.items()}
             if ds.modalities else None)
    return Dataset(train, val, test, feats, n_users=ds.n_users, n_items=ds.n_items,
                   user_ids=ds.user_ids, item_ids=ds.item_ids, name=_suffix(ds.name, tag),
                   normalize=False, feature_names=ds.feature_names)


def pooled_pairs(dataset: Dataset, *, return_source: bool = False):
    """All interactions of a dataset, in the order environment labels are aligned with.

    The order is: ``dataset.train`` in its stored order, then
    ``dataset.val.to_pairs()``, then ``dataset.test.to_pairs()`` (the last two
    sorted by user, then item).  This is also the order of
    :class:`~painvrl.datasets.SpuriousTruth`'s ``train_env``, ``val_env``,
    ``test_env`` concatenated, and the training order of :func:`pooled`.

    Parameters
    ----------
    dataset : Dataset
    return_source : bool, default False
        Also return which split each pair came from (0 train, 1 val, 2 test).

    Returns
    -------
    pairs : ndarray of int64, shape (n_train + n_val + n_test, 2)
    source : ndarray of int8, shape (n,)
        Only with ``return_source=True``.

    Examples
    --------
    >>> from painvrl.data import Dataset
    >>> ds = Dataset([[1, 0], [0, 1]], val=[[1, 2]], test=[[0, 2], [0, 0]])
    >>> pooled_pairs(ds).tolist()
    [[1, 0], [0, 1], [1, 2], [0, 0], [0, 2]]
    """
    _check_dataset(dataset, "pooled_pairs")
    parts = [dataset.train, dataset.val.to_pairs(), dataset.test.to_pairs()]
    pairs = np.ascontiguousarray(np.concatenate(parts, axis=0), dtype=np.int64)
    if not return_source:
        return pairs
    source = np.repeat(np.arange(3, dtype=np.int8), [p.shape[0] for p in parts])
    return pairs, source


def pooled(dataset: Dataset) -> Dataset:
    """The dataset with every interaction in train (in :func:`pooled_pairs` order), no val/test.

    Method.md §6.2 step 1 runs environment identification on all
    interactions: ``identify_environments(pooled(ds)).labels`` is then aligned
    with :func:`pooled_pairs` and can be passed to
    :func:`hold_out_environments`.
    """
    _check_dataset(dataset, "pooled")
    empty = np.empty((0, 2), dtype=np.int64)
    return _rebuild(dataset, pooled_pairs(dataset), empty, empty, "pooled", "pooled")


def _within_user_rank(users: np.ndarray, key: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(order, rank): ``order`` sorts by (user, key, position); rank of each sorted pair within its user."""
    n = users.shape[0]
    order = np.lexsort((np.arange(n), key, users))
    u = users[order]
    start = np.concatenate(([True], u[1:] != u[:-1])) if n else np.zeros(0, bool)
    pos = np.arange(n)
    first = np.maximum.accumulate(np.where(start, pos, 0)) if n else pos
    return order, pos - first


def _per_user_counts(n_u: np.ndarray, r: Tuple[float, float, float],
                     min_train: int) -> Tuple[np.ndarray, np.ndarray]:
    """Val and test counts per user under the module's rounding rule."""
    n_val = np.floor(r[1] * n_u + 0.5).astype(np.int64)
    n_test = np.floor(r[2] * n_u + 0.5).astype(np.int64)
    need = np.minimum(min_train, n_u)
    short = np.maximum(need - (n_u - n_val - n_test), 0)
    give = np.minimum(short, n_test)
    n_test -= give
    n_val -= np.minimum(short - give, n_val)
    return n_val, n_test


def _assign_per_user(users: np.ndarray, key: np.ndarray, n_users: int,
                     r: Tuple[float, float, float], min_train: int) -> np.ndarray:
    """0/1/2 (train/val/test) per pair: per user, sorted by ``key``, the first go to train, then
    val, and the last ``n_test`` to test."""
    order, rank = _within_user_rank(users, key)
    counts = np.bincount(users, minlength=n_users)
    n_val, n_test = _per_user_counts(counts, r, min_train)
    u = users[order]
    n_train_u = (counts - n_val - n_test)[u]
    which_sorted = np.where(rank < n_train_u, 0, np.where(rank < n_train_u + n_val[u], 1, 2))
    which = np.empty(users.shape[0], dtype=np.int8)
    which[order] = which_sorted
    return which


def _parts(pairs: np.ndarray, which: np.ndarray):
    return [np.ascontiguousarray(pairs[which == s]) for s in range(3)]


# --------------------------------------------------------------------------- simple splits

def given(dataset: Dataset) -> Dataset:
    """The dataset's own train / val / test (identity; for symmetry with the other splits).

    ``Dataset`` is immutable, so the same object is returned.
    """
    return _check_dataset(dataset, "given")


def _pairs_input(data, n_users, n_items, param: str, func: str) -> Dataset:
    """A Dataset (pooled later) from a Dataset or an (n, 2) array of dense pairs."""
    if isinstance(data, Dataset):
        if n_users is not None or n_items is not None:
            raise ValueError(f"{func}: n_users / n_items must be None with a Dataset (they are "
                             f"taken from it); pass them only with raw pairs")
        return data
    if isinstance(data, (pd.DataFrame, pd.Series)):
        raise TypeError(f"{func}: {param} must be a Dataset or an (n, 2) array of dense (user, "
                        f"item) ids, got a {type(data).__name__}")
    arr = np.asarray(data)
    if arr.size == 0:
        raise ValueError(f"{func}: {param} must hold at least one interaction, got none")
    # Dataset rejects repeated (user, item) pairs (a split of an interaction set) and
    # negative or non-integer ids; its message names the offending rows.
    try:
        return Dataset(arr, n_users=n_users, n_items=n_items)
    except ValueError as exc:
        raise ValueError(f"{func}: {param}: {exc}") from None
    except TypeError as exc:
        raise TypeError(f"{func}: {param}: {exc}") from None


def random_per_user(dataset_or_pairs: Union[Dataset, np.ndarray], *,
                    ratios: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0,
                    min_train: int = 1, n_users: Optional[int] = None,
                    n_items: Optional[int] = None) -> Dataset:
    """Split each user's interactions at random into train / val / test.

    Parameters
    ----------
    dataset_or_pairs : Dataset or array_like of int, shape (n, 2)
        A Dataset (its train, val and test are pooled first, so an existing
        split is re-drawn) or dense (user, item) pairs (giving a Dataset
        without item content).
    ratios : three non-negative numbers, default (0.8, 0.1, 0.1)
        Train, val, test shares (normalised to sum 1; train must be > 0).
        Applied per user with the rounding rule of the module docstring.
    seed : int
        Seed of ``numpy.random.default_rng``; the split is a pure function of
        the pairs, their order and the seed.
    min_train : int, default 1
        Every user keeps at least ``min(min_train, n_u)`` training pairs.
    n_users, n_items : int, optional
        Only for raw pairs: the id space (default ``1 + max id``).

    Returns
    -------
    Dataset
        Same id space, raw ids and features; training pairs in their pooled
        order.

    Raises
    ------
    TypeError
        Pairs that are not integers, or a non-integer ``seed``/``min_train``.
    ValueError
        No pairs, a repeated (user, item) pair, a negative or out-of-range id,
        bad ``ratios``, or a split that leaves no training pair at all (only
        possible with ``min_train=0``).

    Examples
    --------
    >>> import numpy as np
    >>> pairs = np.array([[u, i] for u in range(3) for i in range(10)])
    >>> ds = random_per_user(pairs, seed=1)
    >>> ds.train.shape[0], ds.val.nnz, ds.test.nnz
    (24, 3, 3)
    """
    r = _check_ratios(ratios, "random_per_user")
    min_train = check_int(min_train, "min_train", minimum=0, func="random_per_user")
    seed = check_int(seed, "seed", minimum=0, func="random_per_user")
    ds = _pairs_input(dataset_or_pairs, n_users, n_items, "dataset_or_pairs", "random_per_user")
    pairs = pooled_pairs(ds)
    key = np.random.default_rng(seed).random(pairs.shape[0])
    which = _assign_per_user(pairs[:, 0], key, ds.n_users, r, min_train)
    tr, va, te = _parts(pairs, which)
    return _rebuild(ds, tr, va, te, "random", "random_per_user")


def temporal(df_or_arrays: Union[Dataset, np.ndarray, pd.DataFrame], timestamps: Any = None, *,
             ratios: Sequence[float] = (0.8, 0.1, 0.1), per_user: bool = True,
             min_train: int = 1, user_col: str = "user", item_col: str = "item",
             features: Any = None, n_users: Optional[int] = None,
             n_items: Optional[int] = None) -> Dataset:
    """Split interactions by time: the latest go to test, the ones before them to val.

    Parameters
    ----------
    df_or_arrays : DataFrame, Dataset or array_like of int, shape (n, 2)
        * a DataFrame with raw ids in ``user_col`` / ``item_col`` (remapped as
          :meth:`Dataset.from_dataframe` does, sorted raw ids; ``features``
          as there); ``timestamps`` may then be a column name.  Repeated
          (user, item) rows raise: drop them first (e.g. keep the latest);
        * a Dataset: ``timestamps`` are aligned with :func:`pooled_pairs`;
        * dense (user, item) pairs: ``timestamps[k]`` belongs to row ``k``.
    timestamps : str or array_like, shape (n,)
        Numeric or datetime64 times, no NaN/NaT.  Required: the GRCN/MMGCN
        releases carry none, use :func:`random_per_user` for them.
    ratios : three non-negative numbers, default (0.8, 0.1, 0.1)
        Train, val, test shares (normalised).
    per_user : bool, default True
        True: per user, with the module's rounding rule (each user's earliest
        pairs train, their latest test; every user keeps ``min_train``).
        False: one global cut: the earliest ``floor(r_train * n + 0.5)`` pairs
        train, the latest ``floor(r_test * n + 0.5)`` test, the rest val
        (users may then have no training pair).
    min_train : int, default 1
        Per-user mode only.
    user_col, item_col, features
        DataFrame input only.
    n_users, n_items : int, optional
        Array input only.

    Returns
    -------
    Dataset
        Training pairs in input order.  Equal times are ordered by input
        position (earlier rows count as earlier).

    Raises
    ------
    TypeError
        Non-integer pairs, or timestamps that are neither numeric nor datetime64.
    ValueError
        Without timestamps, when they do not match the interactions or hold
        NaN/NaT, for no pairs or a repeated (user, item) pair, bad ``ratios``,
        or a split that leaves no training pair (``per_user=False`` with a
        small ``r_train``, or ``min_train=0``).
    """
    r = _check_ratios(ratios, "temporal")
    min_train = check_int(min_train, "min_train", minimum=0, func="temporal")
    if not isinstance(per_user, (bool, np.bool_)):
        raise TypeError(f"temporal: per_user must be True or False, got {per_user!r}")
    if timestamps is None:
        raise ValueError("temporal: timestamps is required for a temporal split and none were "
                         "given (the GRCN/MMGCN files have no timestamps); use random_per_user "
                         "instead")
    if isinstance(df_or_arrays, pd.DataFrame):
        df = df_or_arrays
        if isinstance(timestamps, str):
            if timestamps not in df.columns:
                raise ValueError(f"temporal: timestamps={timestamps!r} is not a column of the "
                                 f"DataFrame; columns are {list(df.columns)}")
            timestamps = df[timestamps].to_numpy()
        ds = Dataset.from_dataframe(df, features, user_col=user_col, item_col=item_col)
    else:
        if isinstance(timestamps, str):
            raise TypeError("temporal: timestamps may be a column name only with a DataFrame "
                            "input")
        if features is not None:
            raise ValueError("temporal: features is used only with a DataFrame input; build a "
                             "Dataset with the features and pass it instead")
        ds = _pairs_input(df_or_arrays, n_users, n_items, "df_or_arrays", "temporal")
    pairs = pooled_pairs(ds)
    t = np.asarray(timestamps)
    if t.ndim != 1 or t.shape[0] != pairs.shape[0]:
        raise ValueError(f"temporal: timestamps must be 1-D with one entry per interaction "
                         f"({pairs.shape[0]}), got shape {t.shape}")
    if t.dtype.kind == "M":
        if np.isnat(t).any():
            raise ValueError("temporal: timestamps contains NaT")
        key = t.astype("datetime64[ns]").astype(np.int64)
    elif t.dtype.kind in "iuf":
        if t.dtype.kind == "f" and not np.isfinite(t).all():
            raise ValueError("temporal: timestamps contains NaN or inf")
        key = t
    else:
        raise TypeError(f"temporal: timestamps must be numeric or datetime64, got dtype {t.dtype}")
    if per_user:
        which = _assign_per_user(pairs[:, 0], key, ds.n_users, r, min_train)
    else:
        n = pairs.shape[0]
        order = np.lexsort((np.arange(n), key))
        n_train = int(math.floor(r[0] * n + 0.5))
        n_test = min(int(math.floor(r[2] * n + 0.5)), n - n_train)
        which_sorted = np.where(np.arange(n) < n_train, 0,
                                np.where(np.arange(n) >= n - n_test, 2, 1)).astype(np.int8)
        which = np.empty(n, dtype=np.int8)
        which[order] = which_sorted
    tr, va, te = _parts(pairs, which)
    return _rebuild(ds, tr, va, te, "temporal", "temporal")


# --------------------------------------------------------------------------- OOD: validation

class _OODSplits:
    """``splits()`` / ``validation_splits()`` of a result holding ``dataset``, ``ood_test`` and
    ``ood_val`` (None when no OOD validation set was drawn)."""

    def splits(self, prefix: str = "") -> Dict[str, Tuple[Dataset, Union[str, UserItemCSR]]]:
        """``{"iid": (dataset, "test"), "ood": (dataset, ood_test)}`` for :func:`painvrl.compare.compare`."""
        return {f"{prefix}iid": (self.dataset, "test"), f"{prefix}ood": (self.dataset, self.ood_test)}

    def validation_splits(self, prefix: str = "") -> Dict[str, Tuple[Dataset,
                                                                     Union[str, UserItemCSR]]]:
        """``{"iid_val": (dataset, "val"), "ood_val": (dataset, ood_val)}``: the validation
        counterparts of :meth:`splits`, for model selection (never the tests).

        Raises
        ------
        ValueError
            If the split has no OOD validation set.
        """
        if self.ood_val is None:
            raise ValueError(f"{type(self).__name__}.validation_splits: this split has no OOD "
                             f"validation set (hold_out_environments: pass val_holdout)")
        return {f"{prefix}iid_val": (self.dataset, "val"),
                f"{prefix}ood_val": (self.dataset, self.ood_val)}


# --------------------------------------------------------------------------- OOD: environments

@dataclass(frozen=True)
class EnvironmentHoldout(_OODSplits):
    """The result of :func:`hold_out_environments`.

    Attributes
    ----------
    dataset : Dataset
        Train / val / IID test drawn from the kept environments.
    ood_test : UserItemCSR
        Every pair of the held-out (test) environments.
    held_out : tuple of int
        The environment ids of the OOD test.
    kept : tuple of int
        The non-empty environments that were not held out.
    train_env : ndarray of int64, shape (n_train,)
        The environment of each of ``dataset.train``'s pairs (aligned with it).
    sizes : dict of str to int
        ``train``, ``val``, ``iid_test``, ``ood_test`` (and ``ood_val`` with
        ``val_holdout``) pair counts; they sum to the pooled input.
    env_sizes : dict of int to int
        Pairs per (non-empty) environment.
    distance : dict of int to float or None
        With ``which="farthest"``: each environment's Jensen-Shannon
        divergence (nats) to the rest; else None.
    ood_val : UserItemCSR or None
        With ``val_holdout``: every pair of the validation environments
        (disjoint from ``held_out`` and ``kept``), for OOD model selection.
    val_held_out : tuple of int
        The environment ids of ``ood_val`` (empty without ``val_holdout``).
    """

    dataset: Dataset
    ood_test: UserItemCSR
    held_out: Tuple[int, ...]
    kept: Tuple[int, ...]
    train_env: np.ndarray
    sizes: Dict[str, int]
    env_sizes: Dict[int, int]
    distance: Optional[Dict[int, float]] = field(default=None)
    ood_val: Optional[UserItemCSR] = field(default=None)
    val_held_out: Tuple[int, ...] = field(default=())


def _check_labels(labels, n: int, func: str) -> np.ndarray:
    lab = getattr(labels, "labels", labels)  # an EnvironmentSplit
    arr = np.asarray(lab)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{func}: labels must hold integer environment ids, got dtype {arr.dtype}")
    if arr.ndim != 1 or arr.shape[0] != n:
        extra = ""
        if arr.ndim == 1 and arr.shape[0] < n:
            extra = (" (labels of the training pairs only? label all interactions: run "
                     "identify_environments on splits.pooled(dataset))")
        raise ValueError(f"{func}: labels must be 1-D with one entry per pooled pair "
                         f"(pooled_pairs(dataset): {n}), got shape {arr.shape}{extra}")
    if arr.dtype.kind == "u" and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
        raise ValueError(f"{func}: labels must fit in int64, got {int(arr.max())}")
    arr = arr.astype(np.int64)
    if arr.size and arr.min() < 0:
        raise ValueError(f"{func}: labels must be >= 0, got {int(arr.min())}")
    return arr


def _js_to_rest(items: np.ndarray, labels: np.ndarray, envs: np.ndarray, n_items: int) -> np.ndarray:
    """Jensen-Shannon divergence between each environment's item distribution and the others'."""
    total = np.bincount(items, minlength=n_items).astype(np.float64)
    out = np.empty(envs.shape[0])
    for j, e in enumerate(envs):
        c = np.bincount(items[labels == e], minlength=n_items).astype(np.float64)
        rest = total - c
        p, q = c / c.sum(), rest / rest.sum()
        m = 0.5 * (p + q)
        with np.errstate(divide="ignore", invalid="ignore"):
            kl_p = np.where(p > 0, p * np.log(p / m), 0.0).sum()
            kl_q = np.where(q > 0, q * np.log(q / m), 0.0).sum()
        out[j] = 0.5 * (kl_p + kl_q)
    return out


def hold_out_environments(dataset: Dataset, labels, *, holdout: Union[int, Sequence[int]] = 2,
                          ratios: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0,
                          which: str = "smallest", min_train: int = 1,
                          val_holdout: Union[int, Sequence[int]] = 0) -> EnvironmentHoldout:
    """The OOD ("cross-environment") split of method.md §6.2 [inferred].

    Pairs of the held-out environments form the OOD test; the pairs of the
    other environments are split per user at random (:func:`random_per_user`,
    ``ratios``) into train / val / IID test.  The paper's construction is
    unknown; this is the recommended reading of method.md §6.2 and should be
    reported as such.

    Parameters
    ----------
    dataset : Dataset
        Its train, val and test are pooled (:func:`pooled_pairs`).
    labels : array_like of int, shape (n_pooled,), or EnvironmentSplit
        The environment of each pooled pair, aligned with
        :func:`pooled_pairs` (train in stored order, then val, then test pairs
        sorted by user and item).  Get them with
        ``identify_environments(pooled(dataset)).labels`` (method.md §6.2
        step 1), or for :func:`~painvrl.datasets.make_spurious` data from
        ``np.concatenate([truth.train_env, truth.val_env, truth.test_env])``.
    holdout : int or sequence of int, default 2
        How many environments to hold out (chosen by ``which``), or their ids.
        At least one non-empty environment must remain.
    ratios : three numbers, default (0.8, 0.1, 0.1)
        Train / val / IID-test shares of the kept pairs, per user.
    seed : int
        Seeds the per-user split and ``which="random"``.
    which : {"smallest", "largest", "random", "farthest"}
        With an integer ``holdout``: the environments with the fewest or most
        pairs (ties: lower id first), a random draw, or the ones whose item
        distribution is farthest from the rest of the data (largest
        Jensen-Shannon divergence between the environment's item-frequency
        distribution and that of all other pairs; our construction, a
        model-free stand-in for "the environment farthest from the rest").
    min_train : int, default 1
        Every user with kept pairs keeps ``min(min_train, n_u)`` of them in train.
    val_holdout : int or sequence of int, default 0
        Environments held out as the **OOD validation** set (``ood_val`` of the
        result), never the test environments: a count, chosen by ``which`` among
        the environments ``holdout`` left (the OOD test is the same as without
        ``val_holdout``), or their ids.  0: none (the split of earlier versions).
        Their pairs are neither trained on nor tested.

    Returns
    -------
    EnvironmentHoldout
        Users and items that occur only in the OOD pairs stay in the id space
        (no training data: cold users/items).  The OOD test is not filtered.

    Raises
    ------
    TypeError
        Labels or holdout ids that are not integers.
    ValueError
        Labels of the wrong length or negative, fewer than two non-empty
        environments, a ``holdout`` / ``val_holdout`` that names an empty
        environment, repeats one, names a test environment as validation or
        would keep none, or a split that leaves no training pair.

    Examples
    --------
    >>> import numpy as np
    >>> from painvrl.data.datasets import make_spurious
    >>> ds, truth = make_spurious(n_users=60, n_items=50, n_interactions=1500, n_envs=3, seed=0)
    >>> env = np.concatenate([truth.train_env, truth.val_env, truth.test_env])
    >>> h = hold_out_environments(ds, env, holdout=[2])
    >>> h.held_out, sum(h.sizes.values()) == env.size
    ((2,), True)
    """
    f = "hold_out_environments"
    _check_dataset(dataset, f)
    r = _check_ratios(ratios, f)
    seed = check_int(seed, "seed", minimum=0, func=f)
    min_train = check_int(min_train, "min_train", minimum=0, func=f)
    check_choice(which, "which", _WHICH, func=f)
    pairs = pooled_pairs(dataset)
    lab = _check_labels(labels, pairs.shape[0], f)
    # environment ids need not be dense: count the ones that occur
    envs, env_counts = np.unique(lab, return_counts=True)
    count_of = {int(e): int(c) for e, c in zip(envs, env_counts)}
    if envs.size < 2:
        raise ValueError(f"{f}: labels must name at least two non-empty environments (one is held "
                         f"out, one must remain), got {envs.size}")
    rng = np.random.default_rng(seed)
    distance = None
    if which == "farthest" and (_is_count(holdout) or (_is_count(val_holdout) and val_holdout > 0)):
        d = _js_to_rest(pairs[:, 1], lab, envs, dataset.n_items)
        distance = {int(e): float(x) for e, x in zip(envs, d)}
    spare = envs.size - 1  # environments that may be held out (one must remain)
    chosen = _pick_envs(holdout, "holdout", envs, env_counts, (), which, rng, distance, spare, f,
                        minimum=1)
    val_envs = _pick_envs(val_holdout, "val_holdout", envs, env_counts, chosen, which, rng,
                          distance, spare - len(chosen), f, minimum=0)
    held, val_held = tuple(sorted(chosen)), tuple(sorted(val_envs))
    is_ood, is_val = np.isin(lab, held), np.isin(lab, val_held)
    kept_mask = ~(is_ood | is_val)
    ood, ood_val = pairs[is_ood], pairs[is_val]
    kept_pairs, kept_lab = pairs[kept_mask], lab[kept_mask]
    key = np.random.default_rng(seed).random(kept_pairs.shape[0])
    w = _assign_per_user(kept_pairs[:, 0], key, dataset.n_users, r, min_train)
    tr, va, te = _parts(kept_pairs, w)
    new = _rebuild(dataset, tr, va, te, "env-holdout", f)
    train_env = kept_lab[w == 0].copy()
    train_env.flags.writeable = False
    sizes = {"train": int(tr.shape[0]), "val": int(va.shape[0]), "iid_test": int(te.shape[0]),
             "ood_test": int(ood.shape[0])}
    if val_held:
        sizes["ood_val"] = int(ood_val.shape[0])
    return EnvironmentHoldout(
        dataset=new, ood_test=_csr(ood, dataset), held_out=held,
        kept=tuple(int(e) for e in envs if int(e) not in held and int(e) not in val_held),
        train_env=train_env, sizes=sizes, env_sizes=count_of, distance=distance,
        ood_val=_csr(ood_val, dataset) if val_held else None, val_held_out=val_held)


def _is_count(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _pick_envs(spec, param: str, envs: np.ndarray, env_counts: np.ndarray, taken: Sequence[int],
               which: str, rng: np.random.Generator, distance: Optional[Dict[int, float]],
               room: int, f: str, *, minimum: int) -> Tuple[int, ...]:
    """The environments ``spec`` names: a count chosen by ``which`` among those not ``taken``,
    or explicit ids (non-empty, distinct, not ``taken``); at most ``room`` of them."""
    free = np.array([e for e in envs.tolist() if e not in taken], dtype=envs.dtype)
    if _is_count(spec):
        k = int(spec)
        if not minimum <= k <= room:
            raise ValueError(f"{f}: {param} must be in [{minimum}, {room}] (there are {envs.size} "
                             f"non-empty environments, {len(taken)} already held out, and one "
                             f"must remain), got {k}")
        if k == 0:
            return ()
        counts = env_counts[np.isin(envs, free)]
        if which == "smallest":
            out = free[np.lexsort((free, counts))[:k]]
        elif which == "largest":
            out = free[np.lexsort((free, -counts))[:k]]
        elif which == "random":
            out = rng.choice(free, size=k, replace=False)
        else:
            d = np.array([distance[int(e)] for e in free])
            out = free[np.lexsort((free, -d))[:k]]
        return tuple(int(e) for e in out)
    if isinstance(spec, (bool, np.bool_, str, bytes)):
        raise TypeError(f"{f}: {param} must be an integer or a sequence of environment ids, "
                        f"got {spec!r}")
    try:
        ids = np.asarray(list(spec))
    except TypeError:
        raise TypeError(f"{f}: {param} must be an integer or a sequence of environment ids, "
                        f"got {spec!r}") from None
    if ids.size and ids.dtype.kind not in "iu":
        raise TypeError(f"{f}: {param} must list integer environment ids, got {spec!r}")
    if ids.ndim != 1 or (minimum > 0 and ids.size == 0):
        raise ValueError(f"{f}: {param} must list at least one environment id (a flat "
                         f"sequence), got {spec!r}")
    if np.unique(ids).size != ids.size:
        raise ValueError(f"{f}: {param} must list each environment once, got {ids.tolist()}")
    present = set(envs.tolist())
    missing = [int(e) for e in ids.tolist() if int(e) not in present]
    if missing:
        raise ValueError(f"{f}: {param} names environment(s) {missing} that have no pairs; "
                         f"non-empty environments are {envs.tolist()}")
    clash = sorted(int(e) for e in ids.tolist() if int(e) in taken)
    if clash:
        raise ValueError(f"{f}: {param} names environment(s) {clash} that holdout already holds "
                         f"out as the OOD test; validation and test environments must differ")
    if ids.size > room:
        raise ValueError(f"{f}: holdout and val_holdout must keep at least one non-empty "
                         f"environment, got all {envs.size}")
    return tuple(int(e) for e in ids.tolist())


# --------------------------------------------------------------------------- OOD: popularity

@dataclass(frozen=True)
class PopularityShift:
    """The result of :func:`popularity_shift`.

    Attributes
    ----------
    dataset : Dataset
        Train / val / IID test (random per user).
    ood_test : UserItemCSR
        Interactions with long-tail items only.
    tail_items : ndarray of int64
        The long-tail items (sorted ids).
    sizes : dict of str to int
        ``train``, ``val``, ``iid_test``, ``ood_test`` pair counts.
    tail_share : dict of str to float
        Share of each part's pairs that are with tail items (``ood_test`` is 1).
    """

    dataset: Dataset
    ood_test: UserItemCSR
    tail_items: np.ndarray
    sizes: Dict[str, int]
    tail_share: Dict[str, float]

    def splits(self, prefix: str = "") -> Dict[str, Tuple[Dataset, Union[str, UserItemCSR]]]:
        """``{"iid": (dataset, "test"), "tail": (dataset, ood_test)}`` for :func:`painvrl.compare.compare`."""
        return {f"{prefix}iid": (self.dataset, "test"), f"{prefix}tail": (self.dataset, self.ood_test)}


def popularity_shift(dataset: Dataset, *, test_share: float = 0.1, tail_fraction: float = 0.8,
                     seed: int = 0, min_train: int = 1) -> PopularityShift:
    """An OOD test that over-represents long-tail items (our construction).

    The rule, on the pooled pairs (:func:`pooled_pairs`, ``N`` of them):

    1. item popularity = its number of pooled pairs; the items with at least
       one pair are ranked from least to most popular (ties in a random
       order drawn from ``seed``), and the first
       ``ceil(tail_fraction * n_active_items)`` are the **tail**, the rest
       the head (default: the 20% most popular items are the head);
    2. **OOD test**: ``round(test_share * N)`` pairs drawn uniformly at random
       from the tail items' pairs, except that a user never gives up so many
       that fewer than ``min_train`` of its pairs remain;
    3. the remaining pairs are split per user at random (the module's rule)
       into train / val / **IID test** with ratios ``(1 - 2s, s, s)``,
       ``s = test_share / (1 - test_share)``, so val and the IID test are each
       about ``test_share * N`` pairs, like the OOD test.

    The OOD test is made only of tail pairs, whereas training keeps the head
    and the rest of the tail (see ``tail_share`` of the result); the IID test
    follows the training distribution.

    Parameters
    ----------
    dataset : Dataset
    test_share : float in (0, 1/3), default 0.1
    tail_fraction : float in (0, 1), default 0.8
        Share of the (interacted) items that are the long tail.
    seed : int
    min_train : int, default 1

    Returns
    -------
    PopularityShift

    Raises
    ------
    ValueError
        If the tail does not hold ``round(test_share * N)`` removable pairs.
    """
    _check_dataset(dataset, "popularity_shift")
    s = _check_share(test_share, "test_share", "popularity_shift")
    if s >= 1 / 3:
        raise ValueError(f"popularity_shift: test_share must be below 1/3 (val, IID test and OOD "
                         f"test each take it), got {s}")
    tf = _check_share(tail_fraction, "tail_fraction", "popularity_shift")
    seed = check_int(seed, "seed", minimum=0, func="popularity_shift")
    min_train = check_int(min_train, "min_train", minimum=0, func="popularity_shift")
    rng = np.random.default_rng(seed)
    pairs = pooled_pairs(dataset)
    n = pairs.shape[0]
    pop = np.bincount(pairs[:, 1], minlength=dataset.n_items)
    active = np.flatnonzero(pop)
    tie = rng.random(active.size)
    ranked = active[np.lexsort((tie, pop[active]))]
    n_tail = int(math.ceil(tf * active.size))
    tail = np.sort(ranked[:n_tail])
    is_tail = np.zeros(dataset.n_items, dtype=bool)
    is_tail[tail] = True
    pair_tail = is_tail[pairs[:, 1]]
    n_ood = int(math.floor(s * n + 0.5))
    if n_ood == 0:
        raise ValueError(f"popularity_shift: test_share={s} of {n} pairs rounds to an empty OOD "
                         f"test; raise test_share")
    # candidates: tail pairs in a random order; a user's k-th candidate is allowed while
    # k < n_u - min_train (so at least min_train pairs stay out of the OOD test)
    cand = np.flatnonzero(pair_tail)
    cand = cand[rng.permutation(cand.size)]
    n_u = np.bincount(pairs[:, 0], minlength=dataset.n_users)
    cap = np.maximum(n_u - min_train, 0)
    cu = pairs[cand, 0]
    order, rank = _within_user_rank(cu, np.arange(cand.size))
    allowed = np.empty(cand.size, dtype=bool)
    allowed[order] = rank < cap[cu[order]]
    eligible = cand[allowed]
    if eligible.size < n_ood:
        raise ValueError(f"popularity_shift: test_share={s} asks for {n_ood} OOD pairs but the tail "
                         f"(tail_fraction={tf}: {n_tail} items) has only {eligible.size} pairs that "
                         f"can be removed; lower test_share or raise tail_fraction")
    ood_idx = np.sort(eligible[:n_ood])
    is_ood = np.zeros(n, dtype=bool)
    is_ood[ood_idx] = True
    rest = pairs[~is_ood]
    sp = s / (1.0 - s)
    key = rng.random(rest.shape[0])
    w = _assign_per_user(rest[:, 0], key, dataset.n_users, (1.0 - 2 * sp, sp, sp), min_train)
    tr, va, te = _parts(rest, w)
    new = _rebuild(dataset, tr, va, te, "popularity-shift", "popularity_shift")
    ood = pairs[is_ood]

    def share(p):
        return float(is_tail[p[:, 1]].mean()) if p.shape[0] else float("nan")

    tail.flags.writeable = False
    return PopularityShift(
        dataset=new, ood_test=_csr(ood, dataset), tail_items=tail,
        sizes={"train": int(tr.shape[0]), "val": int(va.shape[0]), "iid_test": int(te.shape[0]),
               "ood_test": int(ood.shape[0])},
        tail_share={"train": share(tr), "val": share(va), "iid_test": share(te),
                    "ood_test": share(ood)})


# --------------------------------------------------------------------------- OOD: random exposure

OOD_VAL_SEED = 2016
"""Default seed of :func:`exposure_holdout`'s OOD validation draw: a constant, independent
of the experiment seed, so every run and every seed validates and tests on the same pairs."""


@dataclass(frozen=True)
class ExposureHoldout(_OODSplits):
    """The result of :func:`exposure_holdout`.

    Attributes
    ----------
    dataset : Dataset
        Train / val / IID test from the self-selected positives.
    ood_val : UserItemCSR
        The fixed share of the random-exposure positives held out for model
        selection; never scored as a test.
    ood_test : UserItemCSR
        The other random-exposure positives.
    sizes : dict of str to int
        ``train``, ``val``, ``iid_test``, ``ood_val``, ``ood_test`` pair counts.
    """

    dataset: Dataset
    ood_val: UserItemCSR
    ood_test: UserItemCSR
    sizes: Dict[str, int]


def exposure_holdout(dataset: Dataset, *, seed: int = 0, ratios: Sequence[float] = (0.8, 0.1, 0.1),
                     ood_val_share: float = 0.1, ood_val_seed: int = OOD_VAL_SEED,
                     min_train: int = 1) -> ExposureHoldout:
    """IID and OOD tests, each with its validation set, for data with a random-exposure test.

    For data like Coat (:func:`painvrl.datasets.load_coat`) whose training
    interactions are self-selected (missing not at random) and whose test
    interactions come from a random exposure (missing at random):

    * the self-selected pairs (``dataset.train`` and ``dataset.val``, pooled) are
      split per user at random (``seed``, ``ratios``, the module's rounding
      rule) into train / val / **IID test**;
    * the random-exposure pairs (``dataset.test``) are split once into the
      **OOD validation** set and the **OOD test**: ``round(ood_val_share * n)``
      of its ``n`` pairs, drawn uniformly without replacement (a permutation
      from ``numpy.random.default_rng(ood_val_seed)`` of the pairs sorted by
      user then item), go to validation, the rest to the test.

    Why this draw: the random-exposure pairs are a uniform sample of exposures,
    so a uniform subsample keeps their distribution (a per-user quota would
    leave most Coat users, who have 1-4 such positives, with none); and
    ``ood_val_seed`` is a constant independent of ``seed``, so every run and
    every seed selects on the same OOD validation pairs and is scored on the
    same OOD test pairs (paired comparisons across seeds and models stay on
    one test).  The experiment ``seed`` only moves the self-selected split.

    Parameters
    ----------
    dataset : Dataset
        ``train`` (+ ``val``): self-selected pairs; ``test``: random-exposure pairs.
    seed : int
        Seeds the per-user split of the self-selected pairs.
    ratios : three numbers, default (0.8, 0.1, 0.1)
        Train / val / IID-test shares of the self-selected pairs, per user.
    ood_val_share : float in (0, 1), default 0.1
        Share of the random-exposure pairs held out as OOD validation.
    ood_val_seed : int, default :data:`OOD_VAL_SEED`
        Seed of that draw (keep the default to compare with other runs).
    min_train : int, default 1
        Every user keeps ``min(min_train, n_u)`` self-selected pairs in train.

    Returns
    -------
    ExposureHoldout

    Raises
    ------
    TypeError
        ``dataset`` not a Dataset; non-integer seeds.
    ValueError
        Bad ``ratios`` or ``ood_val_share``, a dataset without test pairs, or a
        share that leaves the OOD validation set or test empty.

    Examples
    --------
    >>> from painvrl.data import Dataset
    >>> ds = Dataset([[u, i] for u in range(4) for i in range(5)],
    ...              test=[[u, 5 + i] for u in range(4) for i in range(5)])
    >>> h = exposure_holdout(ds, seed=1)
    >>> h.sizes["ood_val"], h.sizes["ood_test"]
    (2, 18)
    """
    f = "exposure_holdout"
    _check_dataset(dataset, f)
    r = _check_ratios(ratios, f)
    seed = check_int(seed, "seed", minimum=0, func=f)
    ood_val_seed = check_int(ood_val_seed, "ood_val_seed", minimum=0, func=f)
    min_train = check_int(min_train, "min_train", minimum=0, func=f)
    share = _check_share(ood_val_share, "ood_val_share", f)
    exposed = dataset.test.to_pairs()  # sorted by user, then item
    n = exposed.shape[0]
    n_val = int(math.floor(share * n + 0.5))
    if not 0 < n_val < n:
        raise ValueError(f"{f}: ood_val_share={share} of the {n} random-exposure (test) pairs "
                         f"leaves the OOD validation set or test empty; the dataset's test must "
                         f"hold the random-exposure pairs")
    is_val = np.zeros(n, dtype=bool)
    is_val[np.random.default_rng(ood_val_seed).permutation(n)[:n_val]] = True
    selected = np.concatenate([dataset.train, dataset.val.to_pairs()])
    key = np.random.default_rng(seed).random(selected.shape[0])
    which = _assign_per_user(selected[:, 0], key, dataset.n_users, r, min_train)
    tr, va, te = _parts(selected, which)
    new = _rebuild(dataset, tr, va, te, "exposure-holdout", f)
    return ExposureHoldout(
        dataset=new, ood_val=_csr(exposed[is_val], dataset), ood_test=_csr(exposed[~is_val], dataset),
        sizes={"train": int(tr.shape[0]), "val": int(va.shape[0]), "iid_test": int(te.shape[0]),
               "ood_val": n_val, "ood_test": n - n_val})
