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


class LightGCN(_EpochTrainer):
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
        self.dim = dim
        self.n_layers = n_layers
        self.lr = lr
        self.reg = reg
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.eval_every = eval_every
        self.patience = patience
        self.monitor = monitor
        self.init_std = init_std
        self.seed = seed
        self.n_threads = n_threads
        self.progress = progress

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
        if self._live["E0"].shape[1] != p["dim"]:
            raise ValueError(f"LightGCN.fit: resume=True needs dim={self._live['E0'].shape[1]}, "
                             f"the model's, got {p['dim']}")
        self._graph = normalised_graph(dataset.train_csr)
        self._vectors_cache = None

    def _run_epoch(self, p, dataset, users, items) -> dict:
        start = time.perf_counter()
        metric, k = p["monitor"]
        g = self._graph
        loss, n_batches, self.step_ = _core.lgcn_epoch(
            g.indptr, g.indices, g.values, self._live["E0"], self._adam[0], self._adam[1],
            g.n_users, p["n_layers"], users, items, p["lr"], p["reg"], p["batch_size"],
            int(self.seed), self.n_epochs_, self.step_, n_threads=p["n_threads"])
        self._vectors_cache = None

        def validate():
            E = propagate(g, self._live["E0"], p["n_layers"], p["n_threads"])
            return _validation_score(E[:g.n_users], E[g.n_users:], dataset, metric, k,
                                     p["n_threads"])

        return self._close_epoch({"loss": loss / max(n_batches, 1)}, start, p["eval_every"],
                                 p["patience"], validate)

    def _show(self, tensors):
        self.embeddings_ = tensors["E0"]
        self._vectors_cache = None

    # ------------------------------------------------------------------ vectors
    def _propagated(self) -> np.ndarray:
        self._check_fitted()
        if self._vectors_cache is None:
            graph = getattr(self, "_graph", None)
            if graph is None:  # a loaded model: the graph of its training pairs
                graph = self._graph = normalised_graph(self.seen_)
            self._vectors_cache = propagate(graph, self.embeddings_, int(self.n_layers),
                                            resolve_threads(self.n_threads, func="LightGCN"))
        return self._vectors_cache

    def user_vectors(self) -> np.ndarray:
        """Users' scoring vectors: their layer combination (n_users, dim)."""
        return self._propagated()[:self.seen_.n_users]

    def item_vectors(self) -> np.ndarray:
        """Items' scoring vectors: their layer combination (n_items, dim)."""
        return self._propagated()[self.seen_.n_users:]

    # ------------------------------------------------------------------ persistence
    def _to_parts(self) -> Tuple[Dict[str, Any], Dict[str, np.ndarray]]:
        self._check_fitted()
        arrays = {**self._tensor_arrays(), "adam_m": self._adam[0], "adam_v": self._adam[1]}
        return {**self._state_meta(), "params": self.get_params()}, arrays

    @classmethod
    def _from_parts(cls, meta: Dict[str, Any], a: Dict[str, np.ndarray]) -> "LightGCN":
        model = cls(**meta["params"])
        model._restore_state(meta, a, ("E0",))
        model._adam = (a["adam_m"], a["adam_v"])
        model._vectors_cache = None
        model._publish()
        return model
