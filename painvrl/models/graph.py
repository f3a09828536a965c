"""The graphs of the graph models: LightGCN (He et al. 2020, eq. 7-8) and FREEDOM
(Zhou and Shen 2023).

User-item graph: nodes are the users ``0..n_users-1`` followed by the items; an
edge joins a user and each of their training items, weighted
``1 / sqrt(|N_u| |N_i|)`` (the symmetric normalisation ``D^-1/2 A D^-1/2``).
The matrix is symmetric, so the C propagation (``_core.propagate``,
``pv_graph.h``) is also its own transpose, which the backward pass relies on.
FREEDOM prunes its edges each epoch (:func:`pruned_pairs`) and adds a frozen
item-item k-nearest-neighbour graph (:func:`knn_graph`), which is not
symmetric, so its transpose is built too (:func:`transpose`).
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from .. import _core
from ..data.csr import UserItemCSR
from ..evaluation.metrics import topk

__all__ = ["Graph", "normalised_graph", "propagate", "knn_graph", "transpose", "pruned_pairs",
           "CSR"]


class Graph(NamedTuple):
    """A square CSR matrix over the ``n_users + n_items`` nodes (float32 weights)."""

    indptr: np.ndarray
    indices: np.ndarray
    values: np.ndarray
    n_users: int
    n_items: int


def normalised_graph(train: UserItemCSR) -> Graph:
    """``D^-1/2 A D^-1/2`` of the bipartite graph of ``train`` (a trusted CSR)."""
    n_users, n_items = train.n_users, train.n_items
    users = np.repeat(np.arange(n_users, dtype=np.int64), train.row_lengths())
    items = train.indices.astype(np.int64)
    deg_u = train.row_lengths().astype(np.float64)
    deg_i = np.bincount(items, minlength=n_items).astype(np.float64)
    weight = (1.0 / np.sqrt(deg_u[users] * deg_i[items])).astype(np.float32)
    by_item = np.argsort(items, kind="stable")  # item rows list their users in id order
    item_ends = train.nnz + np.cumsum(np.bincount(items, minlength=n_items), dtype=np.int64)
    indptr = np.concatenate([train.indptr.astype(np.int64), item_ends])
    indices = np.concatenate([n_users + items, users[by_item]])
    values = np.concatenate([weight, weight[by_item]])
    return Graph(indptr, indices, values, n_users, n_items)


def propagate(graph, E0: np.ndarray, n_layers: int, n_threads: int = 0, *,
              mean: bool = True) -> np.ndarray:
    """LightGCN's layer combination ``1/(L+1) sum_l A^l E0`` (float32, in C), or the
    plain power ``A^L E0`` with ``mean=False``."""
    return _core.propagate(graph.indptr, graph.indices, graph.values, E0, n_layers,
                           mean=mean, n_threads=n_threads)


class CSR(NamedTuple):
    """A square float32 CSR matrix (the item-item graph and its transpose)."""

    indptr: np.ndarray
    indices: np.ndarray
    values: np.ndarray

    def as_tuple(self):
        return (self.indptr, self.indices, self.values)


def _from_coo(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, n: int) -> CSR:
    """Sorted CSR of an n x n COO matrix; repeated (row, col) entries are summed."""
    key = rows.astype(np.int64) * n + cols
    uniq, inverse = np.unique(key, return_inverse=True)
    summed = np.zeros(uniq.size, dtype=np.float64)
    np.add.at(summed, inverse, vals)
    r, c = np.divmod(uniq, n)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(r, minlength=n), out=indptr[1:])
    return CSR(indptr, c.astype(np.int64), summed.astype(np.float32))


def knn_graph(features: np.ndarray, modalities: Sequence[slice], weights: Sequence[float],
              k: int, n_threads: int = 0) -> CSR:
    """FREEDOM's frozen item-item graph ``S = sum_m w_m S_m`` (MMRec's FREEDOM).

    ``S_m`` links each item to its ``k`` most cosine-similar items in modality
    ``m`` (itself included), by the C top-k (blocked, memory bounded), and
    normalises the binary graph by ``D^-1/2 S D^-1/2`` with row sums ``k``,
    i.e. every edge weighs ``1 / k``.
    """
    n = features.shape[0]
    rows, cols, vals = [], [], []
    for sl, w in zip(modalities, weights):
        X = np.asarray(features[:, sl], dtype=np.float32)
        norms = np.linalg.norm(X, axis=1, keepdims=True)
        X = np.ascontiguousarray(X / np.where(norms > 0, norms, 1.0), dtype=np.float32)
        ids, _ = topk(X, X, k, n_threads=n_threads or None)
        rows.append(np.repeat(np.arange(n, dtype=np.int64), k))
        cols.append(ids.ravel())
        vals.append(np.full(n * k, w / k))
    return _from_coo(np.concatenate(rows), np.concatenate(cols), np.concatenate(vals), n)


def transpose(g: CSR) -> CSR:
    """The transpose of a square CSR matrix, sorted."""
    n = g.indptr.size - 1
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(g.indptr))
    return _from_coo(g.indices, rows, g.values.astype(np.float64), n)


def pruned_pairs(train: UserItemCSR, dropout: float, seed: int, epoch: int) -> UserItemCSR:
    """FREEDOM's degree-sensitive edge pruning: keep ``floor((1 - dropout) nnz)``
    training pairs, drawn without replacement with probability proportional to
    ``1 / sqrt(|N_u| |N_i|)`` (as ``torch.multinomial``; here by the equivalent
    exponential-keys method of Efraimidis and Spirakis), from a generator keyed by
    ``(seed, epoch)``."""
    if dropout <= 0.0:
        return train
    users = np.repeat(np.arange(train.n_users, dtype=np.int64), train.row_lengths())
    items = train.indices.astype(np.int64)
    deg_i = np.bincount(items, minlength=train.n_items).astype(np.float64)
    weight = 1.0 / np.sqrt(train.row_lengths()[users] * deg_i[items])
    keep = int(train.nnz * (1.0 - dropout))
    rng = np.random.default_rng([seed, epoch])
    keys = np.log(rng.random(train.nnz)) / weight  # the `keep` largest keys are the draw
    chosen = np.sort(np.argpartition(-keys, keep - 1)[:keep]) if keep > 0 else np.zeros(0, int)
    return UserItemCSR.from_pairs(users[chosen], items[chosen], train.n_users, train.n_items)
