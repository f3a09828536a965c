"""FREEDOM (Zhou and Shen, ACM MM 2023): freezing and denoising graph structures.

A frozen item-item graph from the item features (top-k cosine neighbours per
modality, :func:`painvrl.models.graph.knn_graph`), LightGCN propagation over a
user-item graph pruned afresh each epoch by degree-sensitive edge dropout, BPR
plus the modality alignment loss.  Loss, gradients and the Adam steps run in C
(``pv_freedom.c``), one call per epoch; batches come from the shared BPR epoch.
"""
from __future__ import annotations

import time
from typing import Any, Dict, Optional, Sequence

import numpy as np

from .. import _core
from .._util.validation import check_nonneg_float, check_positive_int, check_real
from .graph import knn_graph, normalised_graph, propagate, pruned_pairs, transpose
from .lightgcn import _NodeModel

__all__ = ["FREEDOM"]


class FREEDOM(_NodeModel):
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

    _TENSORS = ("E0", "W")

    def __init__(self, *, dim: int = 64, n_ui_layers: int = 2, n_ii_layers: int = 1,
                 knn_k: int = 10, modality_weights: Optional[Sequence[float]] = None,
                 dropout: float = 0.8, align: float = 1e-3, lr: float = 1e-3,
                 batch_size: int = 2048, max_epochs: int = 1000, eval_every: int = 5,
                 patience: int = 10, monitor: str = "ndcg@10", init_std: float = 0.1,
                 seed: int = 999, n_threads=None, progress: bool = True):
        self._keep(locals())

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
        self._start_graph(dataset, p)
        slices = list(dataset.modalities.values())
        self._ii = knn_graph(dataset.features, slices, p["weights"], p["knn_k"], p["n_threads"])
        self._ii_t = transpose(self._ii)
        self._cols = np.array([0] + [s.stop for s in slices], dtype=np.int64)
        self._features = dataset.features

    def _run_epoch(self, p, dataset, users, items) -> dict:
        start = time.perf_counter()
        ui = normalised_graph(pruned_pairs(dataset.train_csr, p["dropout"], int(self.seed),
                                           self.n_epochs_))
        loss, n_batches, self.step_ = _core.freedom_epoch(
            (ui.indptr, ui.indices, ui.values), self._ii.as_tuple(), self._ii_t.as_tuple(),
            self._live["E0"], self._live["W"], self._cols, self._features, dataset.n_users,
            p["n_ui_layers"], p["n_ii_layers"], self._adam, users, items, p["lr"], p["align"],
            p["batch_size"], int(self.seed), self.n_epochs_, self.step_,
            n_threads=p["n_threads"])
        return self._close_node_epoch(loss / max(n_batches, 1), start, p, dataset)

    def _vectors_of(self, E0: np.ndarray, n_threads: int) -> np.ndarray:
        """Scoring vectors of all nodes: user-item layer mean on the full graph, plus
        the item-item convolution on the item rows."""
        E = propagate(self._graph, E0, int(self.n_ui_layers), n_threads)
        n_users = self._graph.n_users
        E[n_users:] += propagate(self._ii, np.ascontiguousarray(E0[n_users:]),
                                 int(self.n_ii_layers), n_threads, mean=False)
        return E

    def _show(self, tensors):
        super()._show(tensors)
        self.projections_ = tensors["W"]
