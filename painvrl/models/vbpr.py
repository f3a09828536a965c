"""VBPR (He and McAuley, AAAI 2016): the classic multimodal BPR baseline.

The paper's visual branch takes every modality here: an item's content is its
row of ``dataset.features`` (all modalities side by side).  Loss, gradient and
the Adam steps run in C (``pv_vbpr.c``), one call per epoch, with the GIL
released; batches come from the BPR epoch the graph models share (``pv_bpr.c``).
"""
from __future__ import annotations

import time
from typing import Any, Dict, Tuple

import numpy as np

from .. import _core
from .._util.validation import check_nonneg_float, check_positive_int
from .base import _EpochTrainer, _validation_score

__all__ = ["VBPR"]

# The six trainable tables, in the order of the C core's tuples.
_TABLES = ("gamma_u", "theta_u", "gamma_i", "bias", "E", "beta")


class VBPR(_EpochTrainer):
    """VBPR: ``s_ui = b_i + <gamma_u, gamma_i> + <theta_u, E f_i> + <beta', f_i>``.

    Parameters
    ----------
    k, k2 : int
        Sizes of the latent (``gamma``) and content (``theta``, rows of ``E``)
        factors (paper: K = K' = 20; cornac: 10, 10).
    lr : float
        Adam learning rate.
    lam : float
        L2 weight of the batch's ``gamma_u``, ``theta_u``, ``gamma_i``, ``gamma_j``
        rows (cornac's ``lambda_w``), as ``lam / (2B) sum ||row||^2``.
    lam_b : float
        L2 weight of the batch's item biases (cornac's ``lambda_b``).
    lam_e : float
        L2 weight of ``E`` and ``beta'``, ``lam_e / 2 (||E||^2 + ||beta'||^2)`` per
        batch (cornac's ``lambda_e``).
    normalize : bool
        Divide the features by their largest absolute value before training (the
        scale the projection then starts from; raw Last.fm audio features reach 246).
    batch_size, max_epochs, eval_every, patience, monitor, init_std, seed, n_threads, progress
        As :class:`~painvrl.models.LightGCN`.

    Attributes
    ----------
    user_factors_, user_content_factors_ : ndarray (n_users, k), (n_users, k2)
        ``gamma_u`` and ``theta_u``.
    item_factors_, item_bias_ : ndarray (n_items, k), (n_items,)
    projection_, content_bias_ : ndarray (k2, n_feat), (n_feat,)
        ``E`` and ``beta'``.
    history_, best_epoch_, best_score_, n_epochs_, seen_
        As :class:`~painvrl.models.Backbone`.
    """

    _TENSORS = _TABLES

    def __init__(self, *, k: int = 32, k2: int = 32, lr: float = 1e-3, lam: float = 1e-2,
                 lam_b: float = 1e-2, lam_e: float = 0.0, normalize: bool = True,
                 batch_size: int = 1024, max_epochs: int = 500, eval_every: int = 5,
                 patience: int = 10, monitor: str = "ndcg@10", init_std: float = 0.01,
                 seed: int = 2016, n_threads=None, progress: bool = True):
        self._keep(locals())

    def _validated(self, dataset) -> Dict[str, Any]:
        f = "VBPR"
        if not isinstance(self.normalize, (bool, np.bool_)):
            raise TypeError(f"{f}: normalize must be True or False, got {self.normalize!r}")
        return dict(self._common_params(),
                    k=check_positive_int(self.k, "k", func=f),
                    k2=check_positive_int(self.k2, "k2", func=f),
                    lam=check_nonneg_float(self.lam, "lam", func=f),
                    lam_b=check_nonneg_float(self.lam_b, "lam_b", func=f),
                    lam_e=check_nonneg_float(self.lam_e, "lam_e", func=f))

    def _init_state(self, dataset, p) -> None:
        rng = np.random.default_rng(self.seed)
        nu, ni, nf = dataset.n_users, dataset.n_items, dataset.features.shape[1]
        shapes = {"gamma_u": (nu, p["k"]), "theta_u": (nu, p["k2"]), "gamma_i": (ni, p["k"]),
                  "bias": (ni,), "E": (p["k2"], nf), "beta": (nf,)}
        self._live = {n: (rng.standard_normal(shapes[n]) * p["init_std"]).astype(np.float32)
                      if n not in ("bias", "beta") else np.zeros(shapes[n], np.float32)
                      for n in _TABLES}
        # Adam's first moments of the six tables, then their second moments
        self._adam = tuple(np.zeros_like(self._live[n]) for _ in range(2) for n in _TABLES)

    def _prepare(self, dataset, p) -> None:
        for n in ("gamma_u", "theta_u"):
            want = p["k"] if n == "gamma_u" else p["k2"]
            if self._live[n].shape[1] != want:
                raise ValueError("VBPR.fit: resume=True needs the k and k2 the model was "
                                 "fitted with")
        self._features = self._scaled(dataset.features)

    def _scaled(self, X: np.ndarray) -> np.ndarray:
        if not self.normalize:
            return X
        top = float(np.abs(X).max()) if X.size else 0.0
        return X if top == 0.0 else np.ascontiguousarray(X / np.float32(top), dtype=np.float32)

    def _run_epoch(self, p, dataset, users, items) -> dict:
        start = time.perf_counter()
        metric, k = p["monitor"]
        params = tuple(self._live[n] for n in _TABLES)
        loss, n_batches, self.step_ = _core.vbpr_epoch(
            params, self._adam[:6], self._adam[6:], self._features, users, items, p["lr"],
            p["lam"], p["lam_b"], p["lam_e"], p["batch_size"], int(self.seed), self.n_epochs_,
            self.step_, n_threads=p["n_threads"])

        def validate():
            U, V = _vectors(self._live, self._features)
            return _validation_score(U, V, dataset, metric, k, p["n_threads"])

        return self._close_epoch({"loss": loss / max(n_batches, 1)}, start, p["eval_every"],
                                 p["patience"], validate)

    def _show(self, tensors):
        self.user_factors_ = tensors["gamma_u"]
        self.user_content_factors_ = tensors["theta_u"]
        self.item_factors_ = tensors["gamma_i"]
        self.item_bias_ = tensors["bias"]
        self.projection_ = tensors["E"]
        self.content_bias_ = tensors["beta"]
        self._shown = tensors

    # ------------------------------------------------------------------ vectors
    def user_vectors(self) -> np.ndarray:
        """``[gamma_u, theta_u, 1]`` (n_users, k + k2 + 1): dot products with
        :meth:`item_vectors` are the scores."""
        self._check_fitted()
        return _vectors(self._shown, None)[0]

    def item_vectors(self) -> np.ndarray:
        """``[gamma_i, E f_i, b_i + <beta', f_i>]`` (n_items, k + k2 + 1)."""
        self._check_fitted()
        features = getattr(self, "_features", None)
        if features is None:  # a loaded model: the vectors saved with it
            return self.item_vectors_
        return _vectors(self._shown, features)[1]

    # ------------------------------------------------------------------ persistence
    def _saved_vectors(self) -> Dict[str, np.ndarray]:
        return {"item_vectors": self.item_vectors()}

    def _restore_vectors(self, a: Dict[str, np.ndarray]) -> None:
        self.item_vectors_ = a["item_vectors"]


def _vectors(t: Dict[str, np.ndarray], X) -> Tuple[np.ndarray, np.ndarray]:
    """User and item scoring vectors of the tables ``t`` (items need the features ``X``)."""
    U = np.concatenate([t["gamma_u"], t["theta_u"],
                        np.ones((t["gamma_u"].shape[0], 1), np.float32)], axis=1)
    if X is None:
        return np.ascontiguousarray(U), None
    content = X @ t["E"].T
    offset = t["bias"] + X @ t["beta"]
    V = np.concatenate([t["gamma_i"], content, offset[:, None]], axis=1)
    return np.ascontiguousarray(U), np.ascontiguousarray(V, dtype=np.float32)
