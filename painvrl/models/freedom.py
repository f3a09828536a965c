"""FREEDOM (Zhou and Shen, ACM MM 2023): freezing and denoising graph structures.

A frozen item-item graph from the item features (top-k cosine neighbours per
modality, :func:`painvrl.models.graph.knn_graph`), LightGCN propagation over a
user-item graph pruned afresh each epoch by degree-sensitive edge dropout, BPR
plus the modality alignment loss.  Loss, gradients and the Adam steps run in C
(``pv_freedom.c``), one call per epoch; batches come from the shared BPR epoch.
"""
from __future__ import annotations

import time
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from .. import _core
from .._util.validation import (check_nonneg_float, check_positive_int, check_real,
                                resolve_threads)
from .base import _EpochTrainer, _validation_score
from .graph import knn_graph, normalised_graph, propagate, pruned_pairs, transpose

__all__ = ["FREEDOM"]


class FREEDOM(_EpochTrainer):
    """FREEDOM, as MMRec's implementation trains it.

    Parameters
    ----------
    dim : int
        Embedding size (MMRec: 64).
    n_ui_layers, n_ii_layers : int
        Layers of the user-item propagation (layer mean) and of the item-item
        convolution (plain power) (MMRec: 2 and 1).
    knn_k : int
        Neighbours per item in each modality's item-item graph (MMRec: 10).
    modality_weights : sequence of float, optional
        Weight of each modality's graph in ``S`` (MMRec, image and text: 0.1, 0.9);
        default equal weights summing to 1, in the dataset's modality order.
    dropout : float in [0, 1)
        Share of user-item edges pruned each epoch (MMRec searches 0.8, 0.9).
    align : float
        Weight of the alignment losses (MMRec's ``reg_weight``; searched in
        0, 1e-5, ..., 0.1).
    lr, batch_size, max_epochs, eval_every, patience, monitor, init_std, seed, n_threads, progress
        As :class:`~painvrl.models.LightGCN` (MMRec: lr 1e-3, batch 2048; Xavier
        initialisation, here N(0, init_std^2)).

    Attributes
    ----------
    embeddings_ : ndarray (n_users + n_items, dim)
        Layer-0 embeddings, users then items.
    projections_ : ndarray (dim, n_feat)
        The modalities' projections side by side (columns of each modality).
    history_, best_epoch_, best_score_, n_epochs_, seen_
        As :class:`~painvrl.models.Backbone`.

    Notes
    -----
    Scoring uses the full (unpruned) user-item graph, as MMRec's inference does.
    Negatives are uniform over all items (the shared sampler), not redrawn when
    they hit a training item as MMRec's sampler does.
    """

    def __init__(self, *, dim: int = 64, n_ui_layers: int = 2, n_ii_layers: int = 1,
                 knn_k: int = 10, modality_weights: Optional[Sequence[float]] = None,
                 dropout: float = 0.8, align: float = 1e-3, lr: float = 1e-3,
                 batch_size: int = 2048, max_epochs: int = 1000, eval_every: int = 5,
                 patience: int = 10, monitor: str = "ndcg@10", init_std: float = 0.1,
                 seed: int = 999, n_threads=None, progress: bool = True):
        self.dim = dim
        self.n_ui_layers = n_ui_layers
        self.n_ii_layers = n_ii_layers
        self.knn_k = knn_k
        self.modality_weights = modality_weights
        self.dropout = dropout
        self.align = align
        self.lr = lr
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
        f = "FREEDOM"
        n_mod = len(dataset.modalities)
        if n_mod == 0:
            raise ValueError(f"{f}.fit: the dataset has no item features (FREEDOM needs at "
                             f"least one modality)")
        p = dict(self._common_params(),
                 dim=check_positive_int(self.dim, "dim", func=f),
                 n_ui_layers=check_positive_int(self.n_ui_layers, "n_ui_layers", minimum=0,
                                                func=f),
                 n_ii_layers=check_positive_int(self.n_ii_layers, "n_ii_layers", minimum=0,
                                                func=f),
                 knn_k=check_positive_int(self.knn_k, "knn_k", func=f),
                 dropout=check_real(self.dropout, "dropout", minimum=0.0, func=f),
                 align=check_nonneg_float(self.align, "align", func=f))
        if p["dropout"] >= 1.0:
            raise ValueError(f"{f}: dropout must be < 1, got {p['dropout']!r}")
        if p["knn_k"] > dataset.n_items:
            raise ValueError(f"{f}: knn_k must be <= n_items = {dataset.n_items}, got "
                             f"{p['knn_k']}")
        if self.modality_weights is None:
            p["weights"] = [1.0 / n_mod] * n_mod
        else:
            w = np.asarray(self.modality_weights, dtype=np.float64) \
                if not isinstance(self.modality_weights, str) else np.array([np.nan])
            if w.shape != (n_mod,) or not np.all(np.isfinite(w)) or np.any(w < 0):
                raise ValueError(f"{f}: modality_weights must hold {n_mod} finite values >= 0 "
                                 f"(one per modality), got {self.modality_weights!r}")
            p["weights"] = [float(x) for x in w]
        return p

    def _init_state(self, dataset, p) -> None:
        rng = np.random.default_rng(self.seed)
        n_nodes = dataset.n_users + dataset.n_items
        std = p["init_std"]
        E0 = (rng.standard_normal((n_nodes, p["dim"])) * std).astype(np.float32)
        W = (rng.standard_normal((p["dim"], dataset.features.shape[1])) * std
             ).astype(np.float32)
        self._live = {"E0": E0, "W": W}
        self._adam = (np.zeros_like(E0), np.zeros_like(E0), np.zeros_like(W), np.zeros_like(W))

    def _prepare(self, dataset, p) -> None:
        if self._live["E0"].shape[1] != p["dim"]:
            raise ValueError(f"FREEDOM.fit: resume=True needs the dim the model was fitted with")
        slices = list(dataset.modalities.values())
        self._ii = knn_graph(dataset.features, slices, p["weights"], p["knn_k"], p["n_threads"])
        self._ii_t = transpose(self._ii)
        self._cols = np.array([0] + [s.stop for s in slices], dtype=np.int64)
        self._features = dataset.features
        self._graph = normalised_graph(dataset.train_csr)
        self._vectors_cache = None

    def _run_epoch(self, p, dataset, users, items) -> dict:
        start = time.perf_counter()
        metric, k = p["monitor"]
        ui = normalised_graph(pruned_pairs(dataset.train_csr, p["dropout"], int(self.seed),
                                           self.n_epochs_))
        loss, n_batches, self.step_ = _core.freedom_epoch(
            (ui.indptr, ui.indices, ui.values), self._ii.as_tuple(), self._ii_t.as_tuple(),
            self._live["E0"], self._live["W"], self._cols, self._features, dataset.n_users,
            p["n_ui_layers"], p["n_ii_layers"], self._adam, users, items, p["lr"], p["align"],
            p["batch_size"], int(self.seed), self.n_epochs_, self.step_,
            n_threads=p["n_threads"])
        self._vectors_cache = None

        def validate():
            E = self._vectors_of(self._live["E0"], p["n_threads"])
            n_users = dataset.n_users
            return _validation_score(E[:n_users], E[n_users:], dataset, metric, k,
                                     p["n_threads"])

        return self._close_epoch({"loss": loss / max(n_batches, 1)}, start, p["eval_every"],
                                 p["patience"], validate)

    def _vectors_of(self, E0: np.ndarray, n_threads: int) -> np.ndarray:
        """Scoring vectors of all nodes: user-item layer mean on the full graph, plus
        the item-item convolution on the item rows."""
        E = propagate(self._graph, E0, int(self.n_ui_layers), n_threads)
        n_users = self._graph.n_users
        E[n_users:] += propagate(self._ii, np.ascontiguousarray(E0[n_users:]),
                                 int(self.n_ii_layers), n_threads, mean=False)
        return E

    def _show(self, tensors):
        self.embeddings_ = tensors["E0"]
        self.projections_ = tensors["W"]
        self._vectors_cache = None

    # ------------------------------------------------------------------ vectors
    def _propagated(self) -> np.ndarray:
        self._check_fitted()
        if self._vectors_cache is None:
            if getattr(self, "_ii", None) is None:  # a loaded model: the vectors saved with it
                return self.node_vectors_
            self._vectors_cache = self._vectors_of(
                self.embeddings_, resolve_threads(self.n_threads, func="FREEDOM"))
        return self._vectors_cache

    def user_vectors(self) -> np.ndarray:
        """Users' scoring vectors (n_users, dim)."""
        return self._propagated()[:self.seen_.n_users]

    def item_vectors(self) -> np.ndarray:
        """Items' scoring vectors, graph part plus item-item part (n_items, dim)."""
        return self._propagated()[self.seen_.n_users:]

    # ------------------------------------------------------------------ persistence
    def _to_parts(self) -> Tuple[Dict[str, Any], Dict[str, np.ndarray]]:
        self._check_fitted()
        arrays = {**self._tensor_arrays(), "node_vectors": self._propagated()}
        arrays.update({f"adam_{q}": a for q, a in enumerate(self._adam)})
        params = dict(self.get_params())
        if params["modality_weights"] is not None:
            params["modality_weights"] = [float(x) for x in params["modality_weights"]]
        return {**self._state_meta(), "params": params}, arrays

    @classmethod
    def _from_parts(cls, meta: Dict[str, Any], a: Dict[str, np.ndarray]) -> "FREEDOM":
        model = cls(**meta["params"])
        model._restore_state(meta, a, ("E0", "W"))
        model._adam = tuple(a[f"adam_{q}"] for q in range(4))
        model.node_vectors_ = a["node_vectors"]
        model._vectors_cache = None
        model._publish()
        return model
