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

import dataclasses
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
import pandas as pd

from .._util.modelfile import load_model_file, save_model_file
from .._util.validation import check_choice, check_positive_int
from ..models.backbone import Backbone
from ..models.base import NotFittedError, _RecommenderMixin
from ..data.dataset import Dataset
from .convert import _item_vectors
from .environments import EnvironmentSplit, identify_environments, random_environments
from .mask import MaskResult, _learn_mask_dataset

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
    normalize : {None, "loss", "l2"}
        Gradient normalisation before MGDA's min-norm rule (method.md §8 row 2).
    grad_scope : {"all", "mu"}
        Gradients the weighting compares: of ``(W, mu)`` or of the gate ``mu`` only
        (our MGDA-UB, method.md §8 row 3).
    preference : (r_ERM, r_IRM), optional
        Preference of ``"mgda"`` (default (0.5, 0.5)) or ``"pair"`` (default PAIR's);
        see :func:`painvrl.learn_mask`.  Sweeping it traces the IID/OOD front
        (:func:`painvrl.pareto_front`).
    identification : {"identify", "random"}
        ``"identify"``: environments by §2.1; ``"random"``: uniformly random labels
        (:func:`painvrl.environments.random_environments`), the "without
        identification" ablation of method.md §6.5.
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
    mask_params : dict, optional
        Extra keyword arguments for :func:`painvrl.invariance.learn_mask` (e.g.
        ``lr_mu``, ``sigma``, ``mgda_apply``).

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
                 weighting: str = "fixed", normalize: Optional[str] = None,
                 grad_scope: str = "all", preference: Optional[Sequence[float]] = None,
                 identification: str = "identify", lam: float = 0.1, alpha: float = 1.0,
                 max_epochs: int = 500, patience: int = 10, final_patience: int = 40,
                 eval_every: int = 5, d_id: int = 64, d_content: int = 64, n_neg: int = 50,
                 batch_size: int = 512, reg: str = "full", seed: int = 2233,
                 n_threads: Optional[int] = None, progress: bool = True,
                 backbone_params: Optional[Dict[str, Any]] = None,
                 mask_params: Optional[Dict[str, Any]] = None):
        self.n_envs = n_envs
        self.n_outer = n_outer
        self.env_epochs = env_epochs
        self.env_rounds = env_rounds
        self.env_tol = env_tol
        self.mask_epochs = mask_epochs
        self.weighting = weighting
        self.normalize = normalize
        self.grad_scope = grad_scope
        self.preference = preference
        self.identification = identification
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
        self.mask_params = mask_params

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

    def get_params(self) -> Dict[str, Any]:
        return {k: getattr(self, k) for k in self._param_names()}

    @classmethod
    def _param_names(cls) -> List[str]:
        return list(InvRL.__init__.__kwdefaults__)

    def fit(self, dataset, *, pretrained: Optional[Backbone] = None,
            environments: Optional[Sequence[EnvironmentSplit]] = None,
            callback: Optional[Callable[[str, Dict[str, Any]], Any]] = None,
            resume: bool = False, checkpoint=None) -> "InvRL":
        """Run the whole pipeline on ``dataset`` (train; val selects epochs).

        Parameters
        ----------
        dataset : painvrl.data.Dataset
        pretrained : Backbone, optional
            A fitted backbone (no gate, no fusion) on this dataset to use as stage 0
            instead of pre-training one, e.g. the backbone baseline of a comparison;
            it is used as it is, never modified.
        environments : sequence of EnvironmentSplit, optional
            The environments of the first ``len(environments)`` outer iterations,
            used instead of identifying them, e.g. shared between the points of a
            sweep (:func:`painvrl.pareto_front`): the first iteration's
            identification (mask 0, seed ``seed``) is the same for every weighting.
        callback : callable, optional
            ``callback(stage, info)`` after every stage ("pretrain", "environments",
            "mask", "final") with ``info = {"outer": i or None, "result": ...}``.
        resume : bool
            Continue an interrupted (or loaded) fit: completed stages are kept, an
            interrupted training stage goes on from its last completed epoch, an
            interrupted identification or mask stage is run again. The result equals
            an uninterrupted run.
        checkpoint : str or path, optional
            Save the pipeline there (atomically, :meth:`save`) after every stage, so
            ``InvRL.load(checkpoint).fit(dataset, resume=True)`` can finish it.

        An interrupt (KeyboardInterrupt) leaves the completed stages in place and
        the model unfitted until the final stage ends.

        The dataset was validated when it was built: no stage (pre-training,
        identification, mask learning, final training, their validation checks)
        scans its pairs or features again.

        Raises
        ------
        TypeError
            ``dataset`` is not a :class:`~painvrl.data.Dataset`, or ``pretrained``
            is not a :class:`~painvrl.Backbone`.
        ValueError
            A setting out of range, a ``pretrained`` model that does not fit the
            dataset or the pipeline, or ``resume`` without an earlier fit.
        """
        if not isinstance(dataset, Dataset):
            raise TypeError(f"{type(self).__name__}.fit: dataset must be a painvrl.Dataset, "
                            f"got {type(dataset).__name__}")
        check_positive_int(self.n_outer, "n_outer", minimum=0)
        check_positive_int(self.n_envs, "n_envs")
        check_choice(self.weighting, "weighting", ("fixed", "mgda", "pair"))
        check_choice(self.identification, "identification", ("identify", "random"))
        clash = sorted(set(self.mask_params or {}) & {"normalize", "grad_scope", "preference"})
        if clash:
            raise ValueError(f"{type(self).__name__}: give {clash} as parameters of the "
                             f"pipeline, not in mask_params")
        if resume and not hasattr(self, "_done"):
            raise ValueError("resume=True needs a pipeline that was fitted, interrupted or "
                             "loaded; call fit(dataset) first")
        if not resume:
            self._reset()
            if pretrained is not None:
                self.pretrained_ = _check_pretrained(pretrained, dataset, self)
                self._mark("pretrain", None, 0.0, self.pretrained_, callback, checkpoint)
        elif pretrained is not None or environments is not None:
            raise ValueError("pass pretrained= or environments= only to a fresh fit, not with "
                             "resume=True")
        if environments is not None:
            self.environments_.extend(_check_environments(environments, dataset, self))
        elif "final" in self._done:
            return self

        if "pretrain" not in self._done:
            start = time.perf_counter()
            self._train("pretrained_", dataset, lambda: self._backbone(self.patience, PRETRAIN))
            self._mark("pretrain", None, time.perf_counter() - start, self.pretrained_,
                       callback, checkpoint)

        U, V = self.pretrained_.user_embeddings_, self.pretrained_.item_embeddings_
        for outer in range(len(self.mask_results_), self.n_outer):
            lam, alpha = self._weights_at(outer)
            mask = (self.mask_results_[-1].mask if self.mask_results_
                    else np.zeros(dataset.features.shape[1], dtype=np.float32))
            if len(self.environments_) == outer:
                start = time.perf_counter()
                split = self._environments(dataset, mask, outer)
                self.environments_.append(split)
                self._mark("environments", outer, time.perf_counter() - start, split,
                           callback, checkpoint)
            start = time.perf_counter()
            # learn_mask on the trusted dataset: its pairs and features are not re-checked
            result = _learn_mask_dataset(
                dataset, self.environments_[outer].labels, U, V, n_envs=self.n_envs,
                epochs=self.mask_epochs, batch_size=self.batch_size, n_neg=self.n_neg,
                lam=lam, alpha=alpha, weighting=self.weighting, normalize=self.normalize,
                grad_scope=self.grad_scope, preference=self.preference, seed=self.seed + outer,
                n_threads=self.n_threads, **(self.mask_params or {}))
            self.mask_results_.append(result)
            self._mark("mask", outer, time.perf_counter() - start, result, callback,
                       checkpoint)

        self.mask_ = (self.mask_results_[-1].mask if self.mask_results_
                      else np.zeros(dataset.features.shape[1], dtype=np.float32))
        start = time.perf_counter()
        self._train("final_", dataset, lambda: self._final_model(self.mask_))
        self.seen_ = self.final_.seen_
        self._mark("final", None, time.perf_counter() - start, self.final_, callback,
                   checkpoint)
        return self

    def _environments(self, dataset, mask: np.ndarray, outer: int) -> EnvironmentSplit:
        """Module (i) of outer iteration ``outer`` (or random labels, the ablation)."""
        if self.identification == "random":
            return random_environments(dataset, n_envs=self.n_envs, seed=self.seed + outer)
        return identify_environments(
            dataset, mask=mask, n_envs=self.n_envs, epochs=self.env_epochs,
            max_rounds=self.env_rounds, tol=self.env_tol, seed=self.seed + outer,
            n_threads=self.n_threads, d_id=self.d_id, d_content=self.d_content,
            n_neg=self.n_neg, batch_size=self.batch_size, reg=self.reg, progress=self.progress)

    def _train(self, attr: str, dataset, make: Callable[[], Backbone]) -> None:
        """Fit a stage's model, or continue it when an interrupt left it part-trained.
        The model is bound before training, so an interrupt keeps its last epoch."""
        model = getattr(self, attr, None)
        if model is not None and hasattr(model, "seen_"):
            model.fit(dataset, resume=True)
            return
        model = make()
        setattr(self, attr, model)
        model.fit(dataset)

    def _reset(self):
        for name in ("pretrained_", "final_", "seen_", "mask_"):
            self.__dict__.pop(name, None)
        self.environments_: List[EnvironmentSplit] = []
        self.mask_results_: List[MaskResult] = []
        self._done: List[str] = []
        self._seconds: List[Dict[str, Any]] = []
        self.stage_seconds_ = pd.DataFrame(self._seconds, columns=["stage", "outer", "seconds"])

    def _weights_at(self, outer: int):
        """lam and alpha of outer iteration ``outer``: both grow x1.05 per iteration."""
        lam, alpha = float(self.lam), float(self.alpha)
        for _ in range(outer):
            lam *= 1.05
            alpha *= 1.05
        return lam, alpha

    def _mark(self, name, outer, seconds, result, callback, checkpoint):
        """Record a completed stage: its time, the callback, the checkpoint."""
        self._done.append(name if outer is None else f"{name}:{outer}")
        self._seconds.append({"stage": name, "outer": outer, "seconds": seconds})
        self.stage_seconds_ = pd.DataFrame(self._seconds, columns=["stage", "outer", "seconds"])
        if checkpoint is not None:
            self.save(checkpoint)
        if callback is not None:
            callback(name, {"outer": outer, "result": result})

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> None:
        """Write the pipeline, fitted or part-way, to ``path``: every stage's result
        and the trained models with their optimiser state, so a loaded pipeline can
        recommend, and :meth:`fit` with ``resume=True`` can finish an interrupted one.
        Atomic, versioned and checksummed (see :mod:`painvrl._util.modelfile`)."""
        if not hasattr(self, "_done"):
            raise NotFittedError(f"this {type(self).__name__} has nothing to save yet: "
                                 "call fit() first")
        arrays: Dict[str, np.ndarray] = {}
        models = {}
        for stage in ("pretrained", "final"):
            model = getattr(self, stage + "_", None)
            if model is not None and hasattr(model, "seen_"):
                models[stage], parts = model._to_parts()
                arrays.update({f"{stage}.{k}": v for k, v in parts.items()})
        results = {}
        for kind, items in (("environments", self.environments_),
                            ("mask_results", self.mask_results_)):
            results[kind] = []
            for i, item in enumerate(items):
                scalars, parts = _dataclass_parts(item)
                results[kind].append(scalars)
                arrays.update({f"{kind}.{i}.{k}": v for k, v in parts.items()})
        meta = {"class": type(self).__name__, "params": self.get_params(),
                "done": self._done, "seconds": self._seconds, "models": models, **results}
        save_model_file(path, meta, arrays)

    @classmethod
    def load(cls, path) -> "InvRL":
        """Read a pipeline written by :meth:`save`."""
        meta, arrays = load_model_file(path)
        if meta.get("class") != cls.__name__:
            raise ValueError(f"{path} holds a {meta.get('class')}, not a {cls.__name__}")
        model = cls(**meta["params"])
        model._reset()
        model._done = list(meta["done"])
        model._seconds = list(meta["seconds"])
        model.stage_seconds_ = pd.DataFrame(model._seconds,
                                            columns=["stage", "outer", "seconds"])
        for stage, sub in meta["models"].items():
            prefix = stage + "."
            parts = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
            setattr(model, stage + "_", Backbone._from_parts(sub, parts))
        for kind, target, kls in (("environments", model.environments_, EnvironmentSplit),
                                  ("mask_results", model.mask_results_, MaskResult)):
            for i, scalars in enumerate(meta[kind]):
                prefix = f"{kind}.{i}."
                parts = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
                scalars = {k: tuple(v) if isinstance(v, list) else v
                           for k, v in scalars.items()}
                target.append(kls(**scalars, **parts))
        if model.mask_results_:
            model.mask_ = model.mask_results_[-1].mask
        if "final" in model._done:
            model.seen_ = model.final_.seen_
        return model

    def user_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.final_.user_vectors()

    def item_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.final_.item_vectors()

    def mask_history(self, per_step: bool = False) -> pd.DataFrame:
        """Per outer iteration and epoch: ERM and IRM losses and the ERM weight gamma.

        ``per_step=True``: one row per mask step instead (outer, epoch, step, gamma),
        the trajectory of the adaptive weight."""
        self._check_fitted()
        if per_step:
            frames = []
            for outer, res in enumerate(self.mask_results_):
                n = res.gamma_steps.shape[0]
                steps = np.arange(n)
                frames.append(pd.DataFrame({
                    "outer": outer, "epoch": steps // max(res.steps_per_epoch, 1) + 1,
                    "step": steps, "gamma": res.gamma_steps}))
            return (pd.concat(frames, ignore_index=True) if frames else
                    pd.DataFrame(columns=["outer", "epoch", "step", "gamma"]))
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

    @classmethod
    def _param_names(cls) -> List[str]:
        return super()._param_names() + list(PaInvRL.__init__.__kwdefaults__)

    def _final_model(self, mask: np.ndarray) -> Backbone:
        return self._backbone(self.final_patience, FINAL, fusion=self.fusion, mask=mask,
                              attention_size=self.attention_size)

    def attention_weights(self, dataset) -> np.ndarray:
        """Weight of the invariant representation per item (1 - that is the variant's)."""
        self._check_fitted()
        f = self.final_
        # a Dataset's features are trusted; anything else with a .features is checked
        _, a_inv = _item_vectors(f.projection_, f.bias_, f.attention_matrix_,
                                 f.attention_bias_, f.attention_query_,
                                 np.ascontiguousarray(f.mask, dtype=np.float32),
                                 dataset.features, fusion=f.fusion, omega=f.fusion_logits_,
                                 n_threads=self.n_threads, func="convert_item_vectors",
                                 trusted_X=isinstance(dataset, Dataset))
        return a_inv


def _check_pretrained(model, dataset, pipeline) -> Backbone:
    """A user-supplied stage 0 must be a fitted plain backbone on this dataset."""
    if not isinstance(model, Backbone):
        raise TypeError(f"pretrained must be a fitted Backbone, got {type(model).__name__}")
    model._check_fitted()
    if model.gate is not None or model.fusion is not None:
        raise ValueError("pretrained must be a plain backbone (no gate, no fusion)")
    if model.user_embeddings_.shape[0] != dataset.n_users or \
            model.item_embeddings_.shape[0] != dataset.n_items or \
            model.projection_.shape[1] != dataset.features.shape[1]:
        raise ValueError("pretrained was fitted on another dataset (users, items or "
                         "features differ)")
    if model.d_id != pipeline.d_id or model.d_content != pipeline.d_content:
        raise ValueError(f"pretrained has d_id={model.d_id}, d_content={model.d_content}; "
                         f"this pipeline has d_id={pipeline.d_id}, "
                         f"d_content={pipeline.d_content}")
    return model


def _check_environments(environments, dataset, pipeline) -> List[EnvironmentSplit]:
    """Precomputed environments must label this dataset's training pairs."""
    environments = list(environments)
    if len(environments) > pipeline.n_outer:
        raise ValueError(f"environments: got {len(environments)} splits for "
                         f"n_outer={pipeline.n_outer} outer iterations")
    for k, split in enumerate(environments):
        if not isinstance(split, EnvironmentSplit):
            raise TypeError(f"environments[{k}] must be an EnvironmentSplit, got "
                            f"{type(split).__name__}")
        if split.n_pairs != dataset.n_train or split.n_envs != pipeline.n_envs:
            raise ValueError(f"environments[{k}] labels {split.n_pairs} pairs into "
                             f"{split.n_envs} environments; this fit needs "
                             f"{dataset.n_train} pairs and n_envs={pipeline.n_envs}")
    return environments


def _dataclass_parts(obj):
    """A result dataclass as (JSON-able scalars, arrays) for a model file."""
    scalars, arrays = {}, {}
    for field in dataclasses.fields(obj):
        value = getattr(obj, field.name)
        if isinstance(value, np.ndarray):
            arrays[field.name] = value
        else:
            if isinstance(value, tuple):
                value = [int(v) for v in value]
            scalars[field.name] = value.item() if isinstance(value, np.generic) else value
    return scalars, arrays
