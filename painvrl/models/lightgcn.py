"""LightGCN (He et al., SIGIR 2020): the graph collaborative-filtering baseline.

Layer-0 embeddings of users and items are smoothed over the normalised
user-item graph (:mod:`painvrl.models.graph`) and averaged over layers; the
model is trained with BPR.  Propagation, loss, gradient and the Adam step run
in C (``pv_graph.c``, ``pv_lgcn.c``), one call per epoch, with the GIL released.
"""
from __future__ import annotations

import time
from typing import Any, Dict, Optional, Tuple

import numpy as np

from .. import _core
from .._util.validation import check_nonneg_float, check_positive_int, resolve_threads
from .base import _EpochTrainer, _validation_score
from .graph import normalised_graph, propagate

__all__ = ["LightGCN"]


class _NodeModel(_EpochTrainer):
    """What the graph models (LightGCN, FREEDOM) share: layer-0 embeddings of users then
    items (``_live["E0"]``), scoring vectors ``_vectors_of(E0, n_threads)`` of all nodes
    (cached; saved in the model file, which a loaded model scores with), validation on
    them, and their model file (:meth:`_EpochTrainer._to_parts`)."""

    _TENSORS: Tuple[str, ...] = ("E0",)

    def _start_graph(self, dataset, p) -> None:
        """The full normalised user-item graph of this fit (a resumed fit keeps ``dim``)."""
        if self._live["E0"].shape[1] != p["dim"]:
            raise ValueError(f"{type(self).__name__}.fit: resume=True needs "
                             f"dim={self._live['E0'].shape[1]}, the model's, got {p['dim']}")
        self._graph = normalised_graph(dataset.train_csr)
        self._vectors_cache = None

    def _close_node_epoch(self, loss: float, start: float, p, dataset) -> dict:
        self._vectors_cache = None
        metric, k = p["monitor"]

        def validate():
            E = self._vectors_of(self._live["E0"], p["n_threads"])
            n_users = dataset.n_users
            return _validation_score(E[:n_users], E[n_users:], dataset, metric, k,
                                     p["n_threads"])

        return self._close_epoch({"loss": loss}, start, p["eval_every"], p["patience"],
                                 validate)

    def _show(self, tensors):
        self.embeddings_ = tensors["E0"]
        self._vectors_cache = None

    def _propagated(self) -> np.ndarray:
        self._check_fitted()
        if self._vectors_cache is None:
            if getattr(self, "_graph", None) is None:  # loaded: the vectors saved with it
                return self.node_vectors_
            self._vectors_cache = self._vectors_of(
                self.embeddings_, resolve_threads(self.n_threads, func=type(self).__name__))
        return self._vectors_cache

    def user_vectors(self) -> np.ndarray:
        """Users' scoring vectors (n_users, dim)."""
        return self._propagated()[:self.seen_.n_users]

    def item_vectors(self) -> np.ndarray:
        """Items' scoring vectors (n_items, dim)."""
        return self._propagated()[self.seen_.n_users:]

    def _saved_vectors(self) -> Dict[str, np.ndarray]:
        return {"node_vectors": self._propagated()}

    def _restore_vectors(self, a: Dict[str, np.ndarray]) -> None:
        self.node_vectors_ = a["node_vectors"]
        self._vectors_cache = None


class LightGCN(_NodeModel):
    """LightGCN with BPR, as the authors' code (LightGCN-PyTorch) trains it.

    Parameters
    ----------
    dim : int
        Embedding size (authors: 64).
    n_layers : int
        Propagation layers L; the scoring vectors average layers 0..L (authors: 3).
    lr : float
        Adam learning rate (authors: 1e-3).
    reg : float
        L2 weight on the batch's layer-0 rows: ``reg / (2B) sum ||E0_row||^2``
        over each triple's user, positive and negative (authors' ``decay``: 1e-4).
    batch_size : int
        Training pairs per Adam step (authors: 2048).
    max_epochs, eval_every, patience : int
        Train at most ``max_epochs`` epochs; validate every ``eval_every`` epochs on
        ``monitor`` and stop after more than ``patience`` checks without improvement;
        the best check's parameters are kept.
    monitor : str
        Validation metric, e.g. ``"ndcg@10"``.
    init_std : float
        Layer-0 embeddings start N(0, init_std^2) (authors: 0.1).
    seed : int
        Fixes initialisation, shuffling and negatives.
    n_threads : int or None
        Threads of the C kernels (None: OpenMP's default); results do not depend on it.
    progress : bool
        Show a progress bar.

    Attributes
    ----------
    embeddings_ : ndarray (n_users + n_items, dim)
        Layer-0 embeddings, users then items (the parameters).
    history_ : pandas.DataFrame
        One row per epoch: loss (mean batch loss, L2 term included), seconds, and
        the validation metric where it was computed.
    best_epoch_, best_score_, n_epochs_, seen_
        As :class:`~painvrl.models.Backbone`.

    Notes
    -----
    One difference from the authors' code: negatives are drawn uniformly over
    all items (the backbone's Philox sampler), not redrawn when they hit one of
    the user's training items; on sparse data this changes few triples.
    """

    def __init__(self, *, dim: int = 64, n_layers: int = 3, lr: float = 1e-3,
                 reg: float = 1e-4, batch_size: int = 2048, max_epochs: int = 1000,
                 eval_every: int = 5, patience: int = 10, monitor: str = "ndcg@10",
                 init_std: float = 0.1, seed: int = 2020, n_threads: Optional[int] = None,
                 progress: bool = True):
        self._keep(locals())

    def _validated(self, dataset) -> Dict[str, Any]:
        f = "LightGCN"
        return dict(self._common_params(),
                    dim=check_positive_int(self.dim, "dim", func=f),
                    n_layers=check_positive_int(self.n_layers, "n_layers", minimum=0, func=f),
                    reg=check_nonneg_float(self.reg, "reg", func=f))

    def _init_state(self, dataset, p) -> None:
        rng = np.random.default_rng(self.seed)
        n_nodes = dataset.n_users + dataset.n_items
        E0 = (rng.standard_normal((n_nodes, p["dim"])) * p["init_std"]).astype(np.float32)
        self._live = {"E0": E0}
        self._adam = (np.zeros_like(E0), np.zeros_like(E0))

    def _prepare(self, dataset, p) -> None:
        self._start_graph(dataset, p)

    def _run_epoch(self, p, dataset, users, items) -> dict:
        start = time.perf_counter()
        g = self._graph
        loss, n_batches, self.step_ = _core.lgcn_epoch(
            g.indptr, g.indices, g.values, self._live["E0"], self._adam[0], self._adam[1],
            g.n_users, p["n_layers"], users, items, p["lr"], p["reg"], p["batch_size"],
            int(self.seed), self.n_epochs_, self.step_, n_threads=p["n_threads"])
        return self._close_node_epoch(loss / max(n_batches, 1), start, p, dataset)

    def _vectors_of(self, E0: np.ndarray, n_threads: int) -> np.ndarray:
        return propagate(self._graph, E0, int(self.n_layers), n_threads)
