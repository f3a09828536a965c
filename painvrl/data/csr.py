"""UserItemCSR: a user -> items sparse set in CSR form (no SciPy needed).

Used for training items to exclude from ranking and for the ground truth of
evaluation.  Row ``u`` holds the sorted, distinct item ids of user ``u``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._util.validation import as_index_array, check_int


@dataclass(frozen=True)
class UserItemCSR:
    """Distinct items per user, rows sorted.

    Attributes
    ----------
    indptr : ndarray of int64, shape (n_users + 1,)
    indices : ndarray of int64, shape (nnz,)
        Item ids; ``indices[indptr[u]:indptr[u + 1]]`` are user ``u``'s items, ascending.
    n_users, n_items : int
    """

    indptr: np.ndarray
    indices: np.ndarray
    n_users: int
    n_items: int

    def __post_init__(self):
        object.__setattr__(self, "n_users", check_int(self.n_users, "n_users", minimum=0,
                                                      func="UserItemCSR"))
        object.__setattr__(self, "n_items", check_int(self.n_items, "n_items", minimum=0,
                                                      func="UserItemCSR"))
        indptr = np.ascontiguousarray(self.indptr, dtype=np.int64)
        indices = np.ascontiguousarray(self.indices, dtype=np.int64)
        if indptr.ndim != 1 or indptr.shape[0] != self.n_users + 1:
            raise ValueError(f"indptr must have shape ({self.n_users + 1},), got {indptr.shape}")
        if indptr[0] != 0 or indptr[-1] != indices.shape[0] or np.any(np.diff(indptr) < 0):
            raise ValueError("indptr must start at 0, be non-decreasing and end at len(indices)")
        if indices.size and (indices.min() < 0 or indices.max() >= self.n_items):
            raise ValueError(f"item ids must lie in [0, {self.n_items}), got "
                             f"[{indices.min()}, {indices.max()}]")
        if indices.size > 1:
            # each row strictly increasing (sorted, distinct): a repeated item would be
            # counted twice as relevant, or excluded twice, by the metric kernels
            bad = indices[1:] <= indices[:-1]
            starts = indptr[:-1][np.diff(indptr) > 0]
            bad[starts[starts > 0] - 1] = False
            if bad.any():
                k = int(np.flatnonzero(bad)[0]) + 1
                u = int(np.searchsorted(indptr, k, side="right") - 1)
                raise ValueError(f"UserItemCSR: row {u} must hold sorted, distinct item ids, got "
                                 f"{indices[k - 1]} then {indices[k]}; build it with "
                                 f"UserItemCSR.from_pairs")
        object.__setattr__(self, "indptr", indptr)
        object.__setattr__(self, "indices", indices)

    @classmethod
    def from_pairs(cls, users, items, n_users: int, n_items: int) -> "UserItemCSR":
        """Build from parallel id arrays; duplicate pairs are kept once.

        Repeats are allowed here on purpose: the CSR is a set of pairs (e.g. the
        union of train and val to exclude), and a set holds a pair once.
        """
        n_users = check_int(n_users, "n_users", minimum=0, func="UserItemCSR.from_pairs")
        n_items = check_int(n_items, "n_items", minimum=0, func="UserItemCSR.from_pairs")
        if n_users * n_items > np.iinfo(np.int64).max:
            raise ValueError(f"UserItemCSR.from_pairs: n_users x n_items = {n_users} x {n_items} "
                             f"must fit in int64")
        f = "UserItemCSR.from_pairs"
        # integer ids only: float ids used to be truncated silently by the int64 cast
        users = as_index_array(users, "users", high=n_users, ndim=None, func=f).ravel()
        items = as_index_array(items, "items", high=n_items, ndim=None, func=f).ravel()
        if users.shape != items.shape:
            raise ValueError(f"{f}: users and items must have the same length, got "
                             f"{users.shape[0]} and {items.shape[0]}")
        return cls(*_pairs_to_csr(users, items, n_users, n_items), n_users, n_items)

    @classmethod
    def _trusted(cls, indptr: np.ndarray, indices: np.ndarray, n_users: int,
                 n_items: int) -> "UserItemCSR":
        """A CSR from arrays already in canonical form (int64, C-contiguous, rows sorted
        and distinct, ids in range), without the O(nnz) checks of ``__init__``.

        Only for arrays built from a :class:`~painvrl.data.Dataset`'s own (validated)
        pairs; anything from outside goes through ``UserItemCSR(...)`` or
        :meth:`from_pairs`.
        """
        obj = cls.__new__(cls)
        for name, value in (("indptr", indptr), ("indices", indices),
                            ("n_users", int(n_users)), ("n_items", int(n_items))):
            object.__setattr__(obj, name, value)
        return obj

    @classmethod
    def _from_trusted_pairs(cls, users: np.ndarray, items: np.ndarray, n_users: int,
                            n_items: int) -> "UserItemCSR":
        """:meth:`from_pairs` for int64 ids already known to lie in range (a Dataset's)."""
        return cls._trusted(*_pairs_to_csr(users, items, n_users, n_items), n_users, n_items)

    @property
    def nnz(self) -> int:
        return int(self.indices.shape[0])

    def row(self, u: int) -> np.ndarray:
        return self.indices[self.indptr[u]:self.indptr[u + 1]]

    def row_lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    def to_pairs(self) -> np.ndarray:
        """(nnz, 2) int64 array of (user, item) pairs, in row order."""
        users = np.repeat(np.arange(self.n_users, dtype=np.int64), self.row_lengths())
        return np.stack([users, self.indices], axis=1)


def _pairs_to_csr(users: np.ndarray, items: np.ndarray, n_users: int,
                  n_items: int):
    """(indptr, indices) of the set of (user, item) pairs: int64 ids in range."""
    key = np.unique(users * np.int64(n_items) + items)
    u, i = np.divmod(key, np.int64(n_items))
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(u, minlength=n_users), out=indptr[1:])
    return indptr, i
