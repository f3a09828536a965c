"""Top-k lists of models that are not dot products: the outside models of ``compare``.

A model from another library (cornac, implicit, RecBole, your own) gives either
``score(users)``, one dense score row over the whole catalogue per user, or
``recommend(users, k)``, ranked item ids.  Both are turned into the top-k lists
:func:`painvrl.metrics.ranking_metrics` scores, under the rules of
:func:`painvrl.metrics.evaluate`, so their numbers mean the same as those of
painvrl's own models:

* training items (``exclude``) never rank, and with ``mask_value=-inf`` they
  leave a slot empty (``-1``) rather than let a lower item in, as the C top-k;
* ties are broken by the lower item id (a stable sort on the scores);
* a ``recommend`` model is asked for ``k`` plus the largest number of excluded
  items of a user, so that ``k`` items remain once the excluded ones are dropped.
"""
from __future__ import annotations

import numpy as np

from ..data.csr import UserItemCSR

__all__ = ["outside_topk"]

# Users scored per score() call: bounds the dense (chunk x n_items) score block.
_SCORE_CHUNK = 256


def _excluded_block(exclude: UserItemCSR, users: np.ndarray, n_items: int) -> np.ndarray:
    """Dense boolean (len(users), n_items): True where the item is excluded."""
    block = np.zeros((users.size, n_items), dtype=bool)
    for row, u in enumerate(users):
        block[row, exclude.row(u)] = True
    return block


def _first_kept(order: np.ndarray, dropped: np.ndarray, k: int) -> np.ndarray:
    """Per row, the first ``k`` entries of ``order`` whose ``dropped`` is False, -1 padded."""
    # A stable sort on the dropped flag moves kept entries to the front in their order.
    front = np.argsort(dropped, axis=1, kind="stable")[:, :k]
    ids = np.take_along_axis(order, front, axis=1)
    ids[np.take_along_axis(dropped, front, axis=1)] = -1
    if ids.shape[1] < k:
        ids = np.concatenate([ids, np.full((ids.shape[0], k - ids.shape[1]), -1, ids.dtype)],
                             axis=1)
    return ids


def _from_scores(model, name: str, users: np.ndarray, n_items: int, k: int,
                 exclude, mask_value: float) -> np.ndarray:
    out = np.empty((users.size, k), dtype=np.int64)
    for lo in range(0, users.size, _SCORE_CHUNK):
        chunk = users[lo:lo + _SCORE_CHUNK]
        scores = np.array(model.score(chunk), dtype=np.float64)  # a copy: masked below
        if scores.shape != (chunk.size, n_items):
            raise ValueError(f"compare: models[{name!r}].score(users) must return shape "
                             f"(len(users), n_items) = ({chunk.size}, {n_items}), got "
                             f"{scores.shape}")
        if np.isnan(scores).any():
            raise ValueError(f"compare: models[{name!r}].score(users) returned NaN")
        dropped = np.zeros(scores.shape, dtype=bool)
        if exclude is not None:
            excluded = _excluded_block(exclude, chunk, n_items)
            if mask_value == -np.inf:
                dropped = excluded
            scores[excluded] = mask_value
        order = np.argsort(-scores, axis=1, kind="stable")
        out[lo:lo + chunk.size] = _first_kept(order, np.take_along_axis(dropped, order, axis=1),
                                              k)
    return out


def _from_recommend(model, name: str, users: np.ndarray, n_items: int, k: int,
                    exclude) -> np.ndarray:
    extra = 0 if exclude is None else int(exclude.row_lengths()[users].max(initial=0))
    want = min(k + extra, n_items)
    got = model.recommend(users, want)
    ids = np.asarray(got[0] if isinstance(got, tuple) else got)
    if ids.dtype.kind not in "iu" or ids.ndim != 2 or ids.shape[0] != users.size:
        raise ValueError(f"compare: models[{name!r}].recommend(users, k) must return integer ids "
                         f"of shape (len(users), <= k) (or a tuple (ids, scores)), got "
                         f"{ids.dtype} {ids.shape}")
    ids = ids[:, :want].astype(np.int64)
    if ids.size and (ids.min() < -1 or ids.max() >= n_items):
        raise ValueError(f"compare: models[{name!r}].recommend returned ids outside "
                         f"[-1, {n_items}) (-1: no item)")
    dropped = ids < 0
    if exclude is not None:
        for row, u in enumerate(users):
            dropped[row] |= np.isin(ids[row], exclude.row(u))
    return _first_kept(ids, dropped, k)


def outside_topk(model, kind: str, name: str, users: np.ndarray, n_items: int, k: int,
                 exclude=None, mask_value: float = -np.inf) -> np.ndarray:
    """Top-``k`` item ids (best first, ``-1`` padded) of ``users`` by an outside model.

    Parameters
    ----------
    model : object
        With ``score(users) -> (len(users), n_items)`` (``kind="score"``) or
        ``recommend(users, k) -> ids`` or ``(ids, scores)`` (``kind="recommend"``),
        in the dataset's dense ids.
    kind : {"score", "recommend"}
    name : str
        The model's key in ``compare``'s ``models`` (for error messages).
    users : ndarray of int64
        Dense user ids to rank.
    n_items, k : int
    exclude : UserItemCSR, optional
        Items that must not rank, per user.
    mask_value : float
        Score of excluded items (``-inf``: they never rank); only a ``score``
        model can honour another value.

    Returns
    -------
    ndarray of int64, shape (len(users), k)
    """
    if kind == "score":
        return _from_scores(model, name, users, n_items, k, exclude, mask_value)
    if mask_value != -np.inf:
        raise ValueError(f"compare: models[{name!r}] only gives recommend(users, k), so its "
                         f"excluded items cannot take mask_value={mask_value!r}; use -inf")
    return _from_recommend(model, name, users, n_items, k, exclude)
