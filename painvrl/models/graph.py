"""The user-item graph of the graph models (LightGCN; He et al. 2020, eq. 7-8).

Nodes are the users ``0..n_users-1`` followed by the items; an edge joins a
user and each of their training items, weighted ``1 / sqrt(|N_u| |N_i|)``
(the symmetric normalisation ``D^-1/2 A D^-1/2``).  The matrix is symmetric,
so the C propagation (``_core.propagate``, ``pv_graph.h``) is also its own
transpose, which the backward pass relies on.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import _core
from ..data.csr import UserItemCSR

__all__ = ["Graph", "normalised_graph", "propagate"]


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


def propagate(graph: Graph, E0: np.ndarray, n_layers: int, n_threads: int = 0) -> np.ndarray:
    """LightGCN's layer combination ``1/(L+1) sum_l A^l E0`` (float32, in C)."""
    return _core.propagate(graph.indptr, graph.indices, graph.values, E0, n_layers,
                           n_threads=n_threads)
