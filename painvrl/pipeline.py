"""The invariant-learning pipelines of method.md §5.1 as estimators.

``InvRL`` runs the InvRL reference pipeline on the C core:

0. pre-train the backbone (gate all ones) with early stopping on validation;
1. start from the mask ``m = 0``, ``lam = 0.1``, ``alpha = 1``;
2. ``n_outer`` times: identify environments with the previous mask (§2.1), learn a
   new mask on them with the pre-trained user and item tables frozen (§3), then
   ``lam *= 1.05`` and ``alpha *= 1.05``;
3. train the final recommender on all training data with the mask as a fixed
   feature gate (§4.1), selecting the epoch on validation.

``PaInvRL`` runs the same stages with the Pareto (MGDA) weighting of ERM and IRM
in the mask step (§3.5) and the convert module in the final recommender (§4.2):
invariant and variant representations fused by attention.  Both PaInvRL pieces
are our reading of the paper, whose full text was not available [inferred].
"""
from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import pandas as pd

from ._validation import check_choice, check_positive_int
from .convert import convert_item_vectors
from .environments import EnvironmentSplit, identify_environments
from .invariance import MaskResult, learn_mask
from .models import Backbone, _RecommenderMixin

__all__ = ["InvRL", "PaInvRL"]

# Reference hyperparameters (method.md §5.2), per stage.
PRETRAIN = dict(wd1=1e-4, wdi=1.0, wd2=0.01)
FINAL = dict(wd1=1e-4, wdi=2.0, wd2=0.1)


class InvRL(_RecommenderMixin):
    """InvRL (Du et al., ACM MM 2022): environments, a learned invariant feature mask and
    a final recommender on the invariant features only (method.md §2-§4.1, §5.1).

    Parameters
    ----------
    n_envs, n_outer : int
        Environments E (reference 10) and outer iterations ``ite`` (reference 5).
    env_epochs, env_rounds, env_tol : int, int, float
        Identification: epochs per environment model (20), rounds (10), and the
        share of changed labels that stops it (0.01).
    mask_epochs : int
        Mask-learning epochs per outer iteration (``b_epoch``, 40).
    weighting : {"fixed", "mgda", "pair"}
        ERM/IRM weighting of the mask step; InvRL's is ``"fixed"`` (alpha, x1.05 per
        outer iteration). ``"mgda"`` is PaInvRL's adaptive weighting (§3.5).
    lam, alpha : float
        Initial weights of sum(mu^2) and of the IRM penalty (0.1, 1.0), both grown
        x1.05 after every outer iteration.
    max_epochs, patience, eval_every : int
        Pre-training and final training (500, 10 / 40, 5 in the reference; the final
        stage uses ``final_patience``).
    final_patience : int
        Early-stopping patience of the final model (reference: 40).
    d_id, d_content, n_neg, batch_size, reg, seed, n_threads, progress
        As in :class:`painvrl.Backbone`; ``reg`` applies to every stage.
    backbone_params : dict, optional
        Extra keyword arguments for every :class:`Backbone` the pipeline trains.

    Attributes
    ----------
    pretrained_ : Backbone
    environments_ : list of EnvironmentSplit
        One per outer iteration.
    mask_results_ : list of MaskResult
        One per outer iteration (mask, per-epoch ERM/IRM losses and weights).
    mask_ : ndarray (D,)
        The final mask.
    final_ : Backbone
        The recommender trained with ``gate=mask_``; recommend/evaluate use it.
    stage_seconds_ : pandas.DataFrame
        Wall time per stage.
    """

    def __init__(self, *, n_envs: int = 10, n_outer: int = 5, env_epochs: int = 20,
                 env_rounds: int = 10, env_tol: float = 0.01, mask_epochs: int = 40,
                 weighting: str = "fixed", lam: float = 0.1, alpha: float = 1.0,
                 max_epochs: int = 500, patience: int = 10, final_patience: int = 40,
                 eval_every: int = 5, d_id: int = 64, d_content: int = 64, n_neg: int = 50,
                 batch_size: int = 512, reg: str = "full", seed: int = 2233,
                 n_threads: Optional[int] = None, progress: bool = True,
                 backbone_params: Optional[Dict[str, Any]] = None):
        self.n_envs = n_envs
        self.n_outer = n_outer
        self.env_epochs = env_epochs
        self.env_rounds = env_rounds
        self.env_tol = env_tol
        self.mask_epochs = mask_epochs
        self.weighting = weighting
        self.lam = lam
        self.alpha = alpha
        self.max_epochs = max_epochs
        self.patience = patience
        self.final_patience = final_patience
        self.eval_every = eval_every
        self.d_id = d_id
        self.d_content = d_content
        self.n_neg = n_neg
        self.batch_size = batch_size
        self.reg = reg
        self.seed = seed
        self.n_threads = n_threads
        self.progress = progress
        self.backbone_params = backbone_params

    def _backbone(self, patience: int, hyper: Dict[str, float], **extra) -> Backbone:
        params = dict(d_id=self.d_id, d_content=self.d_content, n_neg=self.n_neg,
                      batch_size=self.batch_size, reg=self.reg, max_epochs=self.max_epochs,
                      eval_every=self.eval_every, patience=patience, seed=self.seed,
                      n_threads=self.n_threads, progress=self.progress, **hyper, **extra)
        params.update(self.backbone_params or {})
        return Backbone(**params)

    def _final_model(self, mask: np.ndarray) -> Backbone:
        """InvRL's final recommender: the mask as a fixed feature gate (§4.1)."""
        return self._backbone(self.final_patience, FINAL, gate=mask)

    def fit(self, dataset, *, callback: Optional[Callable[[str, Dict[str, Any]], Any]] = None
            ) -> "InvRL":
        """Run the whole pipeline on ``dataset`` (train; val selects epochs).

        ``callback(stage, info)`` is called after every stage ("pretrain",
        "environments", "mask", "final") with what it produced.
        """
        check_positive_int(self.n_outer, "n_outer", minimum=0)
        check_positive_int(self.n_envs, "n_envs")
        check_choice(self.weighting, "weighting", ("fixed", "mgda", "pair"))
        seconds: List[Dict[str, Any]] = []

        def stage(name, outer, start, result):
            seconds.append({"stage": name, "outer": outer,
                            "seconds": time.perf_counter() - start})
            if callback is not None:
                callback(name, {"outer": outer, "result": result})

        start = time.perf_counter()
        self.pretrained_ = self._backbone(self.patience, PRETRAIN).fit(dataset)
        stage("pretrain", None, start, self.pretrained_)
        U, V = self.pretrained_.user_embeddings_, self.pretrained_.item_embeddings_
        n_feat = dataset.features.shape[1]
        mask = np.zeros(n_feat, dtype=np.float32)
        lam, alpha = float(self.lam), float(self.alpha)
        self.environments_: List[EnvironmentSplit] = []
        self.mask_results_: List[MaskResult] = []
        users, items = dataset.train[:, 0], dataset.train[:, 1]
        for outer in range(self.n_outer):
            start = time.perf_counter()
            split = identify_environments(
                dataset, mask=mask, n_envs=self.n_envs, epochs=self.env_epochs,
                max_rounds=self.env_rounds, tol=self.env_tol, seed=self.seed + outer,
                n_threads=self.n_threads, d_id=self.d_id, d_content=self.d_content,
                n_neg=self.n_neg, batch_size=self.batch_size, reg=self.reg,
                progress=self.progress)
            self.environments_.append(split)
            stage("environments", outer, start, split)
            start = time.perf_counter()
            result = learn_mask(users, items, split.labels, U, V, dataset.features,
                                n_envs=self.n_envs, epochs=self.mask_epochs,
                                batch_size=self.batch_size, n_neg=self.n_neg, lam=lam,
                                alpha=alpha, weighting=self.weighting, seed=self.seed + outer,
                                n_threads=self.n_threads)
            self.mask_results_.append(result)
            mask = result.mask
            stage("mask", outer, start, result)
            lam *= 1.05
            alpha *= 1.05
        self.mask_ = mask
        start = time.perf_counter()
        self.final_ = self._final_model(mask).fit(dataset)
        stage("final", None, start, self.final_)
        self.seen_ = self.final_.seen_
        self.stage_seconds_ = pd.DataFrame(seconds)
        return self

    def user_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.final_.user_vectors()

    def item_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.final_.item_vectors()

    def mask_history(self) -> pd.DataFrame:
        """Per outer iteration and epoch: ERM and IRM losses and the ERM weight gamma."""
        self._check_fitted()
        rows = []
        for outer, res in enumerate(self.mask_results_):
            for epoch, (erm, irm, gamma) in enumerate(zip(res.erm_loss, res.irm_loss,
                                                          res.gamma)):
                rows.append({"outer": outer, "epoch": epoch + 1, "erm_loss": float(erm),
                             "irm_loss": float(irm), "gamma": float(gamma)})
        return pd.DataFrame(rows)


class PaInvRL(InvRL):
    """PaInvRL (Huang et al., ACM MM 2023) as we read it (method.md §3.5, §4.2, §9).

    The pipeline of :class:`InvRL` with two changes [inferred]: the mask step weighs
    ERM against IRM with the two-objective MGDA weight of each step
    (``weighting="mgda"``: a Pareto-stationary direction instead of InvRL's fixed
    alpha), and the final recommender keeps both representations, invariant
    ``mask * x`` and variant ``(1 - mask) * x``, through a shared projection, fused
    per item by additive attention (``fusion="attention"``; ``"global"`` learns two
    weights for all items, ``"invariant"`` is InvRL's).

    Parameters
    ----------
    fusion : {"attention", "global", "invariant"}
    attention_size : int
        Hidden size of the attention (64).
    weighting : {"mgda", "fixed", "pair"}
        Default ``"mgda"``.
    **kwargs
        Everything :class:`InvRL` takes.

    Attributes
    ----------
    As :class:`InvRL`; ``final_.attention_matrix_`` etc. hold the attention, and
    ``attention_weights(dataset)`` gives the invariant share per item.
    """

    def __init__(self, *, fusion: str = "attention", attention_size: int = 64,
                 weighting: str = "mgda", **kwargs):
        super().__init__(weighting=weighting, **kwargs)
        self.fusion = fusion
        self.attention_size = attention_size

    def _final_model(self, mask: np.ndarray) -> Backbone:
        return self._backbone(self.final_patience, FINAL, fusion=self.fusion, mask=mask,
                              attention_size=self.attention_size)

    def attention_weights(self, dataset) -> np.ndarray:
        """Weight of the invariant representation per item (1 - that is the variant's)."""
        self._check_fitted()
        f = self.final_
        _, a_inv = convert_item_vectors(f.projection_, f.bias_, f.attention_matrix_,
                                        f.attention_bias_, f.attention_query_,
                                        np.ascontiguousarray(f.mask, dtype=np.float32),
                                        dataset.features, fusion=f.fusion,
                                        omega=f.fusion_logits_, n_threads=self.n_threads)
        return a_inv
