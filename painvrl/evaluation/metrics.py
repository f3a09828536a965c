"""Full-ranking evaluation: top-k by dot product and ranking metrics.

Every user is scored against the whole catalogue (method.md §6.1).  The C
kernel cuts the users into chunks of ``user_chunk`` rows, ranks each chunk on
one OpenMP thread (one single-threaded sgemm per tile of ``item_tile`` items
into that thread's own score tile) and keeps a bounded heap of the ``k`` best
items per user, so memory stays at ``threads * user_chunk * item_tile`` floats
plus the ``(n_users, k)`` outputs whatever the catalogue size.  Results do not
depend on the number of threads.

Defaults follow painvrl's decisions: training items are excluded with a score
of ``-inf`` and NDCG uses the standard ideal DCG over ``min(|test_u|, K)``
positions.  ``mask_value=1e-5`` together with ``ndcg="invrl"`` reproduces the
InvRL reference code's numbers (its masked items can still rank, and its IDCG
runs over ``min(hits, K)`` positions, which inflates NDCG).

Metric definitions, for a user ``u`` with relevant (test) items ``T_u`` and
``hits`` = number of the top ``K`` that are in ``T_u``:

* ``precision@K = hits / K``
* ``recall@K = hits / |T_u|``
* ``ndcg@K = DCG / IDCG`` with ``DCG = sum over hit ranks r < K of 1 / log2(r + 2)``;
  ``ndcg="standard"``: IDCG sums the first ``min(|T_u|, K)`` discounts;
  ``ndcg="invrl"``: the first ``min(hits, K)`` (and 0 when there is no hit)
* ``hit_rate@K = 1`` if ``hits > 0``
* ``map@K = (1 / min(|T_u|, K)) * sum over hit ranks r < K of precision@(r + 1)``

Users without test items are not ranked (``evaluate``) or get NaN and are
left out of the means (``ranking_metrics``).  Means are plain averages over
users.
"""
from __future__ import annotations

import math
import numbers
from typing import Iterable, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd

from .. import _core
from ..data.csr import UserItemCSR
from .._util.validation import (as_float_array, as_index_array, check_choice, check_int,
                                resolve_threads)

__all__ = ["METRICS", "topk", "evaluate", "ranking_metrics", "plan_blocks", "BlockPlan"]

#: Metric names accepted by ``metrics=`` (also the default: all of them).
METRICS: Tuple[str, ...] = ("precision", "recall", "ndcg", "hit_rate", "map")

# Column order of the kernel's per-user output (pv_metrics.h).
_KERNEL_COLUMNS = ("precision", "recall", "ndcg", "ndcg_invrl", "hit_rate", "map")

#: Default block of each thread's score tile (users x items), tuned on the
#: TikTok shape (36,656 x 76,085, 128-d) on 2 cores: 4 MiB of float32 per
#: thread; anything from 256 x 1024 to 1024 x 4096 ran within noise of it.
DEFAULT_USER_CHUNK = 512
DEFAULT_ITEM_TILE = 2048
# The kernel caps user_chunk at max(_MIN_CHUNK, ceil(n_users / _SPLIT)) (pv_topk.h).
_MIN_CHUNK, _SPLIT = 64, 16

_NDCG_MODES = ("standard", "invrl")
_PREFILTERS = (None, "bf16", "bf16-avx512", "bf16-portable")


# --------------------------------------------------------------------------- checks

def _as_vectors(x, name: str, func: str) -> np.ndarray:
    arr = as_float_array(x, name, ndim=2, dtype=np.float32, func=func)
    if arr.shape[1] < 1:
        raise ValueError(f"{func}: {name} must have at least one column, got shape {arr.shape}")
    return arr


def _vectors_pair(user_vecs, item_vecs, func: str) -> Tuple[np.ndarray, np.ndarray]:
    U = _as_vectors(user_vecs, "user_vecs", func)
    V = _as_vectors(item_vecs, "item_vecs", func)
    if U.shape[1] != V.shape[1]:
        raise ValueError(f"{func}: user_vecs and item_vecs must have the same number of columns, "
                         f"got {U.shape[1]} and {V.shape[1]}")
    if V.shape[0] < 1:
        raise ValueError(f"{func}: item_vecs must have at least one row, got shape {V.shape}")
    return U, V


def _check_ks(ks, high: int, high_name: str, func: str) -> Tuple[int, ...]:
    if isinstance(ks, (numbers.Integral, np.integer)) and not isinstance(ks, (bool, np.bool_)):
        ks = (ks,)
    if isinstance(ks, (str, bytes, bool, np.bool_)):
        raise TypeError(f"{func}: ks must be an integer or a sequence of integers, got {ks!r}")
    try:
        ks = tuple(ks)
    except TypeError:
        raise TypeError(f"{func}: ks must be an integer or a sequence of integers, "
                        f"got {ks!r}") from None
    if not ks:
        raise ValueError(f"{func}: ks must not be empty")
    out = sorted({check_int(k, "every K in ks", minimum=1, maximum=high, maximum_name=high_name,
                            func=func) for k in ks})
    return tuple(out)


def _check_metrics(metrics, func: str) -> Tuple[str, ...]:
    if isinstance(metrics, str):
        metrics = (metrics,)
    try:
        metrics = tuple(metrics)
    except TypeError:
        raise TypeError(f"{func}: metrics must be a metric name or a sequence of them, "
                        f"got {metrics!r}") from None
    if not metrics:
        raise ValueError(f"{func}: metrics must not be empty")
    for m in metrics:
        check_choice(m, "every metric", METRICS, func=func)
    return tuple(dict.fromkeys(metrics))


def _check_mask_value(mask_value, func: str) -> float:
    if isinstance(mask_value, (bool, np.bool_)) or not isinstance(mask_value, numbers.Real):
        raise TypeError(f"{func}: mask_value must be a real number, got "
                        f"{type(mask_value).__name__} {mask_value!r}")
    v = float(mask_value)
    if math.isnan(v) or v == math.inf:
        raise ValueError(f"{func}: mask_value must be finite or -inf, got {v}")
    return v


def _check_prefilter(prefilter, func: str) -> Optional[str]:
    if prefilter is not None and not isinstance(prefilter, str):
        raise TypeError(f"{func}: prefilter must be None or a str, got "
                        f"{type(prefilter).__name__} {prefilter!r}")
    return check_choice(prefilter, "prefilter", _PREFILTERS, func=func)


def _check_csr(csr, name: str, n_users: int, n_items: int, users_name: str,
               func: str) -> UserItemCSR:
    if not isinstance(csr, UserItemCSR):
        raise TypeError(f"{func}: {name} must be a painvrl UserItemCSR, got {type(csr).__name__}")
    if csr.n_users != n_users:
        raise ValueError(f"{func}: {name} has {csr.n_users} users but {users_name} has "
                         f"{n_users} rows")
    if csr.n_items != n_items:
        raise ValueError(f"{func}: {name} has {csr.n_items} items but item_vecs has "
                         f"{n_items} rows")
    return csr


def _gather_rows(csr: UserItemCSR, rows: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """indptr/indices of the sub-CSR made of ``csr``'s rows ``rows`` (in that order)."""
    lengths = csr.indptr[rows + 1] - csr.indptr[rows]
    indptr = np.zeros(rows.shape[0] + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    shift = np.repeat(csr.indptr[rows] - indptr[:-1], lengths)
    indices = csr.indices[np.arange(indptr[-1], dtype=np.int64) + shift]
    return indptr, np.ascontiguousarray(indices)


# --------------------------------------------------------------------------- top-k

class BlockPlan(NamedTuple):
    """How :func:`topk` cuts the work: see :func:`plan_blocks`."""

    user_chunk: int
    item_tile: int
    n_threads: int          #: 0 = the OpenMP default at call time
    workspace_bytes: int    #: score tiles + exclusion cursors of all threads


def plan_blocks(n_users: int, n_items: int, *, user_chunk: Optional[int] = None,
                item_tile: Optional[int] = None, memory_budget: Optional[int] = None,
                n_threads: Optional[int] = None, func: str = "plan_blocks") -> BlockPlan:
    """Choose the blocks of the top-k workspace (what :func:`topk` will use).

    Users are ranked in chunks of ``user_chunk`` rows, each chunk by one
    thread, against tiles of ``item_tile`` items; every thread owns one
    ``user_chunk x item_tile`` float32 score tile plus an int64 cursor per
    chunk row, so the workspace is ``threads * user_chunk * (4 * item_tile + 8)``
    bytes whatever the catalogue size.

    Parameters
    ----------
    n_users, n_items : int
        Rows to rank and catalogue size.
    user_chunk, item_tile : int, optional
        Requested block; defaults ``DEFAULT_USER_CHUNK`` / ``DEFAULT_ITEM_TILE``.
        ``item_tile`` is clamped to ``n_items``; ``user_chunk`` to
        ``max(64, ceil(n_users / 16))`` so that few users still make several
        chunks (the kernel applies the same rule).
    memory_budget : int, optional
        Bytes the workspace may use.  ``user_chunk`` is lowered so that
        ``_core.DEFAULT_THREADS`` threads fit, then the thread count is lowered
        if needed.  The chunking never depends on ``n_threads``, so the result
        stays bit-identical across thread counts.  The ``(n_users, k)`` outputs
        (12 bytes per entry) and any float32 copies of the inputs come on top.
    n_threads : int, optional
        Threads; default: the OpenMP default.
    func : str, default "plan_blocks"
        The function named in error messages (the caller's).

    Returns
    -------
    BlockPlan
        ``(user_chunk, item_tile, n_threads, workspace_bytes)``; ``n_threads``
        is 0 (the kernel's default) unless given or lowered by the budget, and
        ``workspace_bytes`` then assumes ``_core.DEFAULT_THREADS`` threads.

    Raises
    ------
    ValueError
        If even one row of the tile (``4 * item_tile + 8`` bytes) does not
        fit the budget; nothing has been allocated then.

    Examples
    --------
    >>> from painvrl.evaluation.metrics import plan_blocks
    >>> plan_blocks(36656, 76085, item_tile=2048, memory_budget=2**20, n_threads=1)
    BlockPlan(user_chunk=63, item_tile=2048, n_threads=1, workspace_bytes=516600)
    """
    f = func
    uc = (DEFAULT_USER_CHUNK if user_chunk is None
          else check_int(user_chunk, "user_chunk", minimum=1, func=f))
    it = (DEFAULT_ITEM_TILE if item_tile is None
          else check_int(item_tile, "item_tile", minimum=1, func=f))
    threads = resolve_threads(n_threads, func=f)
    n_users, n_items = max(int(n_users), 1), max(int(n_items), 1)
    default_threads = max(int(_core.DEFAULT_THREADS), 1)
    it = min(it, n_items)
    uc = min(uc, max(_MIN_CHUNK, -(-n_users // _SPLIT)), n_users)
    row_bytes = 4 * it + 8
    if memory_budget is not None:
        budget = check_int(memory_budget, "memory_budget", minimum=1, func=f)
        rows = budget // row_bytes
        if rows < 1:
            raise ValueError(
                f"{f}: memory_budget={budget} bytes cannot hold one row of the score tile "
                f"(item_tile={it}: {row_bytes} bytes); raise it or pass a smaller item_tile")
        uc = min(uc, max(rows // default_threads, 1))
        threads = min(threads or default_threads, rows // uc)
    team = min(threads or default_threads, -(-n_users // uc))
    return BlockPlan(uc, it, threads, team * uc * row_bytes)


def _check_prefilter_memory(prefilter, plan: BlockPlan, n_items: int, dim: int,
                            memory_budget, func: str) -> None:
    """Refuse, before allocating, a bf16 prefilter whose buffers exceed ``memory_budget``:
    the packed bfloat16 item copy plus per thread a bfloat16 user chunk, a 32 x 32 block,
    32 unpacked items and 20 bytes per chunk row (pv_topk_bf16.c), padded to multiples of 32."""
    if prefilter is None or memory_budget is None:
        return
    pad = lambda n: -(-n // 32) * 32  # noqa: E731
    threads = plan.n_threads or max(int(_core.DEFAULT_THREADS), 1)
    need = (2 * pad(n_items) * pad(dim)
            + threads * (2 * pad(plan.user_chunk) * pad(dim) + 128 * pad(dim) + 4096
                         + 20 * plan.user_chunk))
    if need > memory_budget:
        raise ValueError(f"{func}: memory_budget={memory_budget} bytes cannot hold the buffers "
                         f"of prefilter={prefilter!r} ({need} bytes, mostly the bfloat16 item "
                         f"copy); raise it or use prefilter=None")


def topk(user_vecs, item_vecs, k: int, *, exclude: Optional[UserItemCSR] = None,
         mask_value: float = -np.inf, user_chunk: Optional[int] = None,
         item_tile: Optional[int] = None, memory_budget: Optional[int] = None,
         n_threads: Optional[int] = None,
         prefilter: Optional[str] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Top-``k`` items per user by dot product, over the whole catalogue.

    Parameters
    ----------
    user_vecs : array_like, shape (n_users, dim)
        One row per user to rank; converted to C-contiguous float32.
    item_vecs : array_like, shape (n_items, dim)
        One row per item; converted to C-contiguous float32.
    k : int
        Items to return per user, ``1 <= k <= n_items``.
    exclude : UserItemCSR, optional
        Items per user (rows aligned with ``user_vecs``), typically the
        training items, whose score is replaced by ``mask_value``.
    mask_value : float, default -inf
        ``-inf``: excluded items are never returned; a user with fewer than
        ``k`` other items gets id ``-1`` and score ``-inf`` in the empty slots.
        A finite value (the InvRL reference uses ``1e-5``) scores excluded
        items with that value, so they may still rank.
    user_chunk, item_tile : int, optional
        Block of the score workspace; see :func:`plan_blocks`.
    memory_budget : int, optional
        Bytes the score workspace may use; see :func:`plan_blocks`.
    n_threads : int, optional
        OpenMP threads (default: OpenMP's default, which threadpoolctl's
        ``"openmp"`` limit changes).  Each thread runs its own sgemm calls
        single-threaded, so BLAS's thread setting does not matter.  The
        result does not depend on the thread count.
    prefilter : {None, "bf16", "bf16-avx512", "bf16-portable"}, default None
        ``None``: every score is a float32 sgemm product.  ``"bf16"``: every
        score is first estimated in bfloat16 (AMX-BF16 tiles where the CPU and
        OS offer them, else AVX512-BF16 dot products, else a portable loop that
        is slower than sgemm; ``painvrl._core.topk_bf16_backend()`` says which;
        ``"bf16-avx512"`` and ``"bf16-portable"`` cap the choice, with the same
        result), and only the items a proven error bound (``pv_topk.h``)
        cannot rule out are rescored in float32 (one fixed-order dot product):
        the result is exactly the top-``k`` of those float32 scores, for any
        block sizes and thread count.  Its scores may differ from the sgemm
        path's in the last bits, so float32-level near-ties may be ordered
        differently.  Extra memory: ``2 * n_items * dim`` bytes (rounded up to
        multiples of 32) for the bfloat16 item copy, counted against
        ``memory_budget`` (which refuses, before allocating, what does not fit).

    Returns
    -------
    ids : ndarray of int64, shape (n_users, k)
        Best first; equal scores are ordered by ascending item id.
    scores : ndarray of float32, shape (n_users, k)
        The (masked) scores of ``ids``.

    Raises
    ------
    TypeError
        Non-numeric vectors, a non-integer ``k`` or block size, a non-real
        ``mask_value``, or an ``exclude`` that is not a UserItemCSR.
    ValueError
        Vectors that are not 2-D, have no column, no item row, different
        widths or NaN/inf (also after conversion to float32); ``k`` outside
        ``[1, n_items]``; ``mask_value`` NaN or +inf; an ``exclude`` of the wrong
        size; a ``memory_budget`` below one tile row.

    Examples
    --------
    >>> import numpy as np
    >>> from painvrl import topk
    >>> U = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> V = np.array([[3.0, 1.0], [1.0, 2.0], [2.0, 2.0]])
    >>> ids, scores = topk(U, V, 2)
    >>> ids
    array([[0, 2],
           [1, 2]])
    >>> scores
    array([[3., 2.],
           [2., 2.]], dtype=float32)
    """
    f = "topk"
    U, V = _vectors_pair(user_vecs, item_vecs, f)
    n_users, n_items = U.shape[0], V.shape[0]
    k = check_int(k, "k", minimum=1, maximum=n_items, maximum_name="n_items", func=f)
    mask_value = _check_mask_value(mask_value, f)
    prefilter = _check_prefilter(prefilter, f)
    plan = plan_blocks(n_users, n_items, user_chunk=user_chunk, item_tile=item_tile,
                       memory_budget=memory_budget, n_threads=n_threads, func=f)
    _check_prefilter_memory(prefilter, plan, n_items, U.shape[1], memory_budget, f)
    indptr = indices = None
    if exclude is not None:
        exclude = _check_csr(exclude, "exclude", n_users, n_items, "user_vecs", f)
        indptr, indices = exclude.indptr, exclude.indices
    return _core.topk(U, V, k, indptr, indices, mask_value=mask_value,
                      user_chunk=plan.user_chunk, item_tile=plan.item_tile,
                      n_threads=plan.n_threads, prefilter=prefilter)


# --------------------------------------------------------------------------- metrics

def _summarise(values: np.ndarray, users: np.ndarray, ks: Sequence[int],
               metrics: Sequence[str], ndcg: str, per_user: bool) -> pd.DataFrame:
    """values: (n_rows, len(ks), 6) kernel output; NaN rows have no test item."""
    col = {m: _KERNEL_COLUMNS.index("ndcg_invrl" if (m == "ndcg" and ndcg == "invrl") else m)
           for m in metrics}
    if per_user:
        data = {"user": users.astype(np.int64, copy=False)}
        for m in metrics:
            for j, k in enumerate(ks):
                data[f"{m}@{k}"] = values[:, j, col[m]]
        return pd.DataFrame(data)
    valid = ~np.isnan(values[:, 0, 0])
    n_valid = int(valid.sum())
    if n_valid == 0:
        raise ValueError("ranking_metrics: test must hold an item of at least one ranked user "
                         "(users), got none: nothing to average")
    kept = values[valid]
    rows = []
    for m in metrics:
        for j, k in enumerate(ks):
            rows.append((m, k, float(kept[:, j, col[m]].mean()), n_valid))
    df = pd.DataFrame(rows, columns=["metric", "k", "value", "n_users"])
    return df.astype({"k": np.int64, "n_users": np.int64})


def ranking_metrics(topk_ids, test: UserItemCSR, ks: Union[int, Iterable[int]] = (10, 20), *,
                    users=None, metrics: Union[str, Sequence[str]] = METRICS,
                    ndcg: str = "standard", per_user: bool = False,
                    n_threads: Optional[int] = None) -> pd.DataFrame:
    """Ranking metrics of precomputed top-k lists.

    Parameters
    ----------
    topk_ids : array_like of int, shape (n_rows, kmax)
        Item ids, best first; ``-1`` marks an empty slot (never a hit).  An
        item may appear at most once per row.
    test : UserItemCSR
        Relevant items per user.
    ks : int or sequence of int, default (10, 20)
        Cut-offs, each in ``[1, kmax]``; duplicates are dropped, output sorted.
    users : array_like of int, shape (n_rows,), optional
        User id of each row of ``topk_ids``.  Default: row ``i`` is user
        ``i`` (then ``n_rows`` must equal ``test.n_users``).
    metrics : str or sequence of str, default all of :data:`METRICS`
    ndcg : {"standard", "invrl"}, default "standard"
        IDCG over ``min(|T_u|, K)`` positions, or the InvRL reference's
        ``min(hits, K)``.
    per_user : bool, default False
        Return one row per ``topk_ids`` row instead of the means.
    n_threads : int, optional
        Threads of the kernel; the result does not depend on it.

    Returns
    -------
    pandas.DataFrame
        ``per_user=False``: tidy, one row per (metric, K), columns ``metric``
        (str), ``k`` (int), ``value`` (float, mean over users with at least
        one test item) and ``n_users`` (how many users that mean is over).
        ``per_user=True``: column ``user`` then one float column per
        ``"metric@k"``; users without a test item have NaN.

    Raises
    ------
    TypeError
        Non-integer ``topk_ids`` or ``users``, or a ``test`` that is not a
        UserItemCSR.
    ValueError
        No row, ids outside ``[-1, n_items)``, an item listed twice in a row,
        ``users`` out of range or of the wrong length, a ``K`` outside
        ``[1, kmax]``, an unknown metric or ``ndcg``, or (means only) no ranked
        user with a test item.

    Examples
    --------
    >>> import numpy as np
    >>> from painvrl import UserItemCSR, ranking_metrics
    >>> test = UserItemCSR.from_pairs([0, 0, 1], [2, 5, 1], n_users=2, n_items=6)
    >>> ranking_metrics([[5, 0, 2], [3, 4, 0]], test, ks=[1, 3], metrics=["precision", "recall"])
          metric  k     value  n_users
    0  precision  1  0.500000        2
    1  precision  3  0.333333        2
    2     recall  1  0.250000        2
    3     recall  3  0.500000        2
    """
    f = "ranking_metrics"
    ids = np.asarray(topk_ids)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"{f}: topk_ids must hold integers, got dtype {ids.dtype}")
    if ids.ndim != 2 or ids.shape[1] < 1:
        raise ValueError(f"{f}: topk_ids must be 2-dimensional with at least one column, "
                         f"got shape {ids.shape}")
    if not isinstance(test, UserItemCSR):
        raise TypeError(f"{f}: test must be a painvrl UserItemCSR, got {type(test).__name__}")
    if ids.dtype.kind == "u" and ids.size and int(ids.max()) > np.iinfo(np.int64).max:
        raise ValueError(f"{f}: topk_ids must lie in [-1, {test.n_items}) (-1: empty slot), got "
                         f"{int(ids.max())}")
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    n_rows, kmax = ids.shape
    ks = _check_ks(ks, kmax, "topk_ids.shape[1]", f)
    metrics = _check_metrics(metrics, f)
    ndcg = check_choice(ndcg, "ndcg", _NDCG_MODES, func=f)
    threads = resolve_threads(n_threads, func=f)
    if users is None:
        if n_rows != test.n_users:
            raise ValueError(f"{f}: topk_ids has {n_rows} rows but test has {test.n_users} users; "
                             f"pass users= to say which user each row is")
        users = np.arange(n_rows, dtype=np.int64)
    else:
        users = as_index_array(users, "users", high=test.n_users, ndim=None, func=f)
        if users.shape != (n_rows,):
            raise ValueError(f"{f}: users must have shape ({n_rows},), got {users.shape}")
    if n_rows == 0:
        raise ValueError(f"{f}: topk_ids must have at least one row, got shape {ids.shape}")
    if ids.min() < -1 or ids.max() >= test.n_items:
        raise ValueError(f"{f}: topk_ids must lie in [-1, {test.n_items}) (-1: empty slot), got "
                         f"values in [{ids.min()}, {ids.max()}]")
    s = np.sort(ids, axis=1)
    dup = (s[:, 1:] == s[:, :-1]) & (s[:, 1:] >= 0)
    if dup.any():
        row = int(np.flatnonzero(dup.any(axis=1))[0])
        raise ValueError(f"{f}: topk_ids must list each item at most once per row, got a repeat "
                         f"in row {row}")
    indptr, indices = _gather_rows(test, users)
    values = _core.ranking_metrics(ids, indptr, indices, np.asarray(ks, dtype=np.int64),
                                   test.n_items, n_threads=threads)
    return _summarise(values, users, ks, metrics, ndcg, per_user)


def evaluate(user_vecs, item_vecs, test: UserItemCSR, *, exclude: Optional[UserItemCSR] = None,
             ks: Union[int, Iterable[int]] = (10, 20),
             metrics: Union[str, Sequence[str]] = METRICS, ndcg: str = "standard",
             mask_value: float = -np.inf, per_user: bool = False,
             memory_budget: Optional[int] = None, user_chunk: Optional[int] = None,
             item_tile: Optional[int] = None, n_threads: Optional[int] = None,
             prefilter: Optional[str] = None) -> pd.DataFrame:
    """Full-ranking evaluation of dot-product scores (method.md §6.1).

    Every user with at least one test item is scored against all items; the
    items of ``exclude`` (the training items) are masked; the top
    ``max(ks)`` are compared with ``test``.

    Parameters
    ----------
    user_vecs : array_like, shape (n_users, dim)
        All users' vectors (rows = user ids); converted to float32.
    item_vecs : array_like, shape (n_items, dim)
        All items' vectors; converted to float32.
    test : UserItemCSR
        Relevant items per user (test or validation split).
    exclude : UserItemCSR, optional
        Items to mask per user, usually the training interactions (plus the
        validation ones when scoring the test split).  May be empty (nothing
        is masked).  ``test`` and ``exclude`` hold distinct pairs by
        construction: a UserItemCSR's rows are sorted and distinct, and
        :meth:`UserItemCSR.from_pairs` keeps a repeated pair once.
    ks : int or sequence of int, default (10, 20)
        Cut-offs, each in ``[1, n_items]``; duplicates are dropped, output sorted.
    metrics : str or sequence of str, default all of :data:`METRICS`
        Any of ``"precision"``, ``"recall"``, ``"ndcg"``, ``"hit_rate"``, ``"map"``.
    ndcg : {"standard", "invrl"}, default "standard"
        See the module docstring.
    mask_value : float, default -inf
        Score given to excluded items; ``1e-5`` reproduces the InvRL code.
    per_user : bool, default False
        Return per-user values instead of means.
    memory_budget : int, optional
        Bytes the score workspace may use (see :func:`plan_blocks`); raises
        ``ValueError`` before allocating if one row does not fit.
    user_chunk, item_tile : int, optional
        Explicit block sizes (see :func:`plan_blocks`).
    n_threads : int, optional
        Threads of the C kernels; results do not depend on it.
    prefilter : {None, "bf16", "bf16-avx512", "bf16-portable"}, default None
        How the full ranking scores items; see :func:`topk`.

    Returns
    -------
    pandas.DataFrame
        ``per_user=False``: tidy, one row per (metric, K) with columns
        ``metric``, ``k``, ``value`` (mean over ranked users) and ``n_users``.
        Pivot with ``df.pivot(index="metric", columns="k", values="value")``;
        compare models with
        ``pd.concat({"a": df_a, "b": df_b}, names=["model"]).reset_index(0)``
        then ``.pivot_table(index=["metric", "k"], columns="model", values="value")``.
        ``per_user=True``: columns ``user`` then ``"metric@k"``, one row per
        ranked user (ascending id).

    Raises
    ------
    TypeError, ValueError
        As :func:`topk` for the vectors, ``mask_value`` and blocks, and as
        :func:`ranking_metrics` for ``ks``, ``metrics`` and ``ndcg``; also
        ``ValueError`` if ``test`` holds no pair at all.

    Examples
    --------
    >>> import numpy as np
    >>> from painvrl import UserItemCSR, evaluate
    >>> U = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> V = np.array([[3.0, 1.0], [1.0, 2.0], [2.0, 2.0]])
    >>> train = UserItemCSR.from_pairs([0], [0], n_users=2, n_items=3)
    >>> test = UserItemCSR.from_pairs([0, 1], [1, 1], n_users=2, n_items=3)
    >>> evaluate(U, V, test, exclude=train, ks=[1, 2], metrics=["recall", "ndcg"])
       metric  k     value  n_users
    0  recall  1  0.500000        2
    1  recall  2  1.000000        2
    2    ndcg  1  0.500000        2
    3    ndcg  2  0.815465        2
    """
    f = "evaluate"
    U, V = _vectors_pair(user_vecs, item_vecs, f)
    n_users, n_items = U.shape[0], V.shape[0]
    test = _check_csr(test, "test", n_users, n_items, "user_vecs", f)
    if exclude is not None:
        exclude = _check_csr(exclude, "exclude", n_users, n_items, "user_vecs", f)
    ks = _check_ks(ks, n_items, "n_items", f)
    metrics = _check_metrics(metrics, f)
    ndcg = check_choice(ndcg, "ndcg", _NDCG_MODES, func=f)
    mask_value = _check_mask_value(mask_value, f)
    prefilter = _check_prefilter(prefilter, f)
    threads = resolve_threads(n_threads, func=f)
    users = np.flatnonzero(test.row_lengths() > 0).astype(np.int64)
    if users.size == 0:
        raise ValueError(f"{f}: test must hold at least one (user, item) pair, got none: no "
                         f"user to evaluate")
    plan = plan_blocks(users.size, n_items, user_chunk=user_chunk, item_tile=item_tile,
                       memory_budget=memory_budget, n_threads=n_threads, func=f)
    _check_prefilter_memory(prefilter, plan, n_items, U.shape[1], memory_budget, f)
    U_sub = U if users.size == n_users else np.ascontiguousarray(U[users])
    ex_ptr = ex_idx = None
    if exclude is not None:
        ex_ptr, ex_idx = _gather_rows(exclude, users)
    kmax = ks[-1]
    ids, _ = _core.topk(U_sub, V, kmax, ex_ptr, ex_idx, mask_value=mask_value,
                        user_chunk=plan.user_chunk, item_tile=plan.item_tile,
                        n_threads=plan.n_threads, prefilter=prefilter)
    del U_sub
    t_ptr, t_idx = _gather_rows(test, users)
    values = _core.ranking_metrics(ids, t_ptr, t_idx, np.asarray(ks, dtype=np.int64), n_items,
                                   n_threads=threads)
    return _summarise(values, users, ks, metrics, ndcg, per_user)
