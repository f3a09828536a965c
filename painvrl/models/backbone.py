"""The multimodal backbone estimator (method.md §1).

It follows scikit-learn's conventions (see :mod:`painvrl.models.base`).  Training
runs in C (``painvrl._core.train_epoch``), one call per epoch, with the GIL released.
"""
from __future__ import annotations

import time
import warnings
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from .. import _core
from .._util.validation import (as_float_array, as_mask, check_choice, check_nonneg_float,
                                check_positive_int, check_seed, check_weights, resolve_threads)
from ..data.dataset import Dataset
from .base import _EpochTrainer, _parse_monitor, _validation_score
from .functional import _loss_weights

__all__ = ["Backbone"]


# Trainable tensors, by short name, and the public attribute each one is shown as.
_PUBLIC = {"U": "user_embeddings_", "V": "item_embeddings_", "W": "projection_", "b": "bias_",
           "A": "attention_matrix_", "c": "attention_bias_", "q": "attention_query_",
           "omega": "fusion_logits_", "Wv": "variant_projection_", "bv": "variant_bias_"}
_STATE_NAMES = ("U_m", "U_v", "V_m", "V_v", "W_m", "W_v", "b_m", "b_v")
_CONVERT_STATE_NAMES = ("A_m", "A_v", "c_m", "c_v", "q_m", "q_v", "omega_m", "omega_v",
                        "Wv_m", "Wv_v", "bv_m", "bv_v")
_FUSIONS = (None, "attention", "global", "invariant")
_PROJECTIONS = ("separate", "shared")
# Tensors the fusion's own L2 (attention_l2) applies to; the rest of the projection side
# (W, b, W_var, b_var) takes wd2.
_FUSION_TENSORS = ("A", "c", "q", "omega")


class Backbone(_EpochTrainer):
    """The multimodal recommender backbone of InvRL/PaInvRL (method.md §1).

    Matrix factorisation plus a linear projection of the item features,
    trained with UltraGCN's constraint-weighted BCE (the InvRL reference code
    calls this model "UltraGCN"; its item-item graph loss is not part of it):
    ``s_ui = U_u . [V_i ; W (g * x_i) + b]``.

    Parameters
    ----------
    d_id, d_content : int
        Sizes of the ID embedding of items and of the projected content; user
        vectors have ``d_id + d_content`` entries (reference: 64, 64).
    n_neg : int
        Uniform negatives per positive (reference: 50).
    batch_size : int
        Positives per step (reference: 512).
    loss_weights : 4 floats
        w1..w4 of the UltraGCN weighting (reference: 1, 1, 1, 1).
    emb_lr, proj_lr : float
        Adam learning rates of the embeddings (U, V) and of the projection (W, b).
    emb_optimizer : {"adam", "adagrad"}
        Optimiser of U and V (the environment models of §2.1 use Adagrad).
    wd1, wdi, wd2 : float
        L2: ``wd1 (||U||^2 + wdi ||V||^2) + wd2 (||W||^2 + ||b||^2)``
        (pre-training reference: 1e-4, 1, 0.01).
    reg : {"full", "batch"}
        ``"full"`` (default, the reference code): the L2 term covers whole tables
        every step, so every row of U and V moves every step. ``"batch"``: only the
        rows a batch touches are penalised and updated (lazy Adam), much faster;
        rows of users and items absent from a batch keep their values and moments.
    bias : bool
        Learn the projection bias b.
    gate : array (D,) or None
        Fixed feature gate g (None: all ones, as in pre-training; a mask m gives
        InvRL's final model of §4.1).
    fusion : {None, "attention", "global", "invariant"}
        None: the plain backbone. Otherwise PaInvRL's convert module (§4.2, our
        reading [inferred]): invariant ``mask * x`` and variant ``(1 - mask) * x``
        features through their projections (``projection``), fused per item by
        additive attention (``"attention"``), by two learned global weights
        (``"global"``), or the invariant part only (``"invariant"``, InvRL). The fusion's
        parameters join the projection's optimiser with their own L2 (``attention_l2``).
    mask : array (D,) in [0, 1], optional
        The invariant mask the convert module splits features with (needs ``fusion``).
    attention_size : int
        Hidden size of the additive attention (64).
    projection : {"separate", "shared"}
        With ``fusion="attention"`` or ``"global"``: ``"separate"`` (default, §4.2
        erratum) gives the variant part its own projection, ``h_var = W_var ((1 - mask) *
        x) + b_var`` (``variant_projection_``, ``variant_bias_``); ``"shared"`` reuses
        ``W, b`` (the earlier reading). With a shared projection and the fusion at
        ``a_inv = a_var = 1/2`` the mask cancels, ``h = W x / 2 + b``; :meth:`fit` warns
        (:class:`~painvrl.MaskCancelledWarning`) when that happens.
    attention_l2 : float
        L2 weight of the fusion's parameters (A, c, q or the two logits): ``attention_l2 *
        ||theta||^2`` per batch. Default 0: with Adam, any L2 weight above half the
        loss's bilinear coupling between q and A at the symmetric point (q = 0, A = 0,
        every ``a_inv = 1/2``) makes that point an attractor, and the coupling shrinks as
        the model fits, so no positive default is safe (README, "The convert module");
        the fusion is bounded anyway (tanh, softmax). The reference projection L2
        (``wd2 = 0.1`` in the final model) drove the attention to about 1e-18.
    max_epochs, eval_every, patience : int
        Train at most ``max_epochs`` epochs; every ``eval_every`` epochs compute the
        validation metric ``monitor`` and stop after more than ``patience``
        consecutive checks without improvement (reference: 500, 5, 10). The
        parameters of the best check are kept.
    monitor : str
        Validation metric for model selection (reference: "ndcg@10").
    init_std : float
        Embeddings and W start N(0, init_std^2); b starts at 0.
    seed : int
        Fixes initialisation, shuffling and negatives (reference: 2233).
    n_threads : int or None
        Threads of the C kernels (None: OpenMP's default).
    progress : bool
        Show a progress bar.

    Attributes
    ----------
    user_embeddings_ : ndarray (n_users, d_id + d_content)
    item_embeddings_ : ndarray (n_items, d_id)
    projection_ : ndarray (d_content, D)
    bias_ : ndarray (d_content,) or None
    attention_matrix_, attention_bias_, attention_query_ : ndarrays or None
        A (attention_size, d_content), c and q of ``fusion="attention"``.
    fusion_logits_ : ndarray (2,) or None
        The two logits of ``fusion="global"`` (invariant, variant).
    variant_projection_, variant_bias_ : ndarrays or None
        ``W_var`` (d_content, D) and ``b_var`` of ``projection="separate"`` (None
        otherwise); ``projection_`` and ``bias_`` are then the invariant part's.
    history_ : pandas.DataFrame
        One row per epoch: loss (mean batch L_rec), reg (L2 at the end of the
        epoch), seconds, and the validation metric where it was computed.
    best_epoch_, best_score_ : int, float
    n_epochs_ : int
        Epochs completed.
    seen_ : UserItemCSR
        Training items per user (excluded from recommendations).
    """

    def __init__(self, *, d_id: int = 64, d_content: int = 64, n_neg: int = 50,
                 batch_size: int = 512, loss_weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0),
                 emb_lr: float = 1e-3, proj_lr: float = 1e-3, emb_optimizer: str = "adam",
                 wd1: float = 1e-4, wdi: float = 1.0, wd2: float = 0.01, reg: str = "full",
                 bias: bool = True, gate: Optional[np.ndarray] = None,
                 fusion: Optional[str] = None, mask: Optional[np.ndarray] = None,
                 attention_size: int = 64, projection: str = "separate",
                 attention_l2: float = 0.0, max_epochs: int = 500,
                 eval_every: int = 5, patience: int = 10, monitor: str = "ndcg@10",
                 init_std: float = 0.01, seed: int = 2233, n_threads: Optional[int] = None,
                 progress: bool = True):
        self.d_id = d_id
        self.d_content = d_content
        self.n_neg = n_neg
        self.batch_size = batch_size
        self.loss_weights = loss_weights
        self.emb_lr = emb_lr
        self.proj_lr = proj_lr
        self.emb_optimizer = emb_optimizer
        self.wd1 = wd1
        self.wdi = wdi
        self.wd2 = wd2
        self.reg = reg
        self.bias = bias
        self.gate = gate
        self.fusion = fusion
        self.mask = mask
        self.attention_size = attention_size
        self.projection = projection
        self.attention_l2 = attention_l2
        self.max_epochs = max_epochs
        self.eval_every = eval_every
        self.patience = patience
        self.monitor = monitor
        self.init_std = init_std
        self.seed = seed
        self.n_threads = n_threads
        self.progress = progress

    # ------------------------------------------------------------------ params
    def _validated(self, dataset) -> Dict[str, Any]:
        f = "Backbone"
        n_feat = dataset.features.shape[1]
        p = dict(
            d_id=check_positive_int(self.d_id, "d_id", minimum=0, func=f),
            d_content=check_positive_int(self.d_content, "d_content", minimum=0, func=f),
            n_neg=check_positive_int(self.n_neg, "n_neg", minimum=0, func=f),
            batch_size=check_positive_int(self.batch_size, "batch_size", func=f),
            emb_lr=check_nonneg_float(self.emb_lr, "emb_lr", strictly_positive=True, func=f),
            proj_lr=check_nonneg_float(self.proj_lr, "proj_lr", strictly_positive=True, func=f),
            emb_optimizer=check_choice(self.emb_optimizer, "emb_optimizer", ("adam", "adagrad"),
                                       func=f),
            wd1=check_nonneg_float(self.wd1, "wd1", func=f),
            wdi=check_nonneg_float(self.wdi, "wdi", func=f),
            wd2=check_nonneg_float(self.wd2, "wd2", func=f),
            reg=check_choice(self.reg, "reg", ("full", "batch"), func=f),
            max_epochs=check_positive_int(self.max_epochs, "max_epochs", minimum=0, func=f),
            eval_every=check_positive_int(self.eval_every, "eval_every", func=f),
            patience=check_positive_int(self.patience, "patience", minimum=0, func=f),
            init_std=check_nonneg_float(self.init_std, "init_std", func=f),
            n_threads=resolve_threads(self.n_threads, func=f),
        )
        if p["d_id"] + p["d_content"] == 0:
            raise ValueError(f"{f}: d_id + d_content must be > 0, got 0")
        p["loss_weights"] = check_weights(self.loss_weights, "loss_weights", func=f)
        p["monitor"] = _parse_monitor(self.monitor)
        if self.gate is not None:
            p["gate"] = as_float_array(self.gate, "gate", ndim=1, shape=(n_feat,), func=f)
        else:
            p["gate"] = None
        p["fusion"] = check_choice(self.fusion, "fusion", _FUSIONS, func=f)
        p["attention_size"] = check_positive_int(self.attention_size, "attention_size", func=f)
        p["projection"] = check_choice(self.projection, "projection", _PROJECTIONS, func=f)
        p["attention_l2"] = check_nonneg_float(self.attention_l2, "attention_l2", func=f)
        # the variant projection exists only where the variant part is read
        p["separate"] = p["projection"] == "separate" and self.fusion in ("attention", "global")
        p["mask"] = None
        if p["fusion"] is not None:
            if self.gate is not None:
                raise ValueError(f"{f}: gate must be None with fusion: the convert module builds "
                                 f"its own gates from mask")
            if self.mask is None:
                raise ValueError(f"{f}: fusion={p['fusion']!r} needs mask (one value in [0, 1] "
                                 f"per feature column)")
            p["mask"] = as_mask(self.mask, "mask", n_feat, func=f)
        elif self.mask is not None:
            raise ValueError(f"{f}: mask is only used with fusion ('attention', 'global' or "
                             f"'invariant'); for InvRL's gated model pass gate=mask")
        check_seed(self.seed, func=f)
        return p

    # ------------------------------------------------------------------ fit
    def fit(self, dataset, *, callback: Optional[Callable[["Backbone", dict], Any]] = None,
            resume: bool = False,
            init: Optional[Mapping[str, Optional[np.ndarray]]] = None) -> "Backbone":
        """Train on ``dataset.train``, selecting the epoch by ``dataset.val``.

        Parameters
        ----------
        dataset : painvrl.data.Dataset
        callback : callable, optional
            ``callback(model, info)`` after every epoch; ``info`` holds ``epoch``,
            ``loss``, ``reg``, ``seconds`` and, on validation epochs, the monitored
            metric. Returning ``True`` stops training.
        resume : bool
            Continue a fitted (or loaded) model from its last completed epoch with
            its optimiser state, instead of starting afresh. The result equals an
            uninterrupted run with the same settings.
        init : dict, optional
            Starting values instead of random ones for a fresh fit: any of ``"U"``,
            ``"V"``, ``"W"``, ``"b"`` (shaped like the parameters; copied). With
            ``projection="separate"`` ``"W"`` and ``"b"`` start both the invariant and the
            variant projection (method.md §4.2: both from the pre-trained W), e.g.
            ``init={"W": pre.projection_, "b": pre.bias_}`` of a fitted backbone ``pre``.

        Returns
        -------
        self

        Warns
        -----
        MaskCancelledWarning
            With ``fusion`` "attention" or "global", when the item vectors provably do not
            depend on the mask: at the start (equal projections and a mask of 1/2 in every
            column) or at the end (equal projections and every item's ``a_inv`` within
            1e-3 of 1/2); see :func:`painvrl.invariance.mask_cancellation`.

        Raises
        ------
        TypeError
            ``dataset`` is not a :class:`~painvrl.data.Dataset`, or a hyperparameter
            of the wrong kind.
        ValueError
            A hyperparameter out of range, ``resume=True`` on another dataset, or an
            ``init`` entry of an unknown name or the wrong shape (or with ``resume``).

        Notes
        -----
        The dataset was validated when it was built: its arrays (pairs, degrees,
        features, validation split) go to the C core as they are, without being
        scanned again.
        """
        if resume and init is not None:
            raise ValueError(f"{type(self).__name__}.fit: init is only for a fresh fit, "
                             f"not with resume=True")
        self._fit_init = init   # read by _init_state (a fresh fit)
        try:
            super().fit(dataset, callback=callback, resume=resume)
        finally:
            del self._fit_init
        public = {name: getattr(self, attr) for name, attr in _PUBLIC.items()}
        self._warn_if_mask_cancels(self._validated(dataset), dataset.features, public)
        return self

    def _warn_if_mask_cancels(self, p, features, tensors) -> None:
        """MaskCancelledWarning when the fusion provably ignores the mask (method.md §4.2
        erratum): on ``tensors`` (names of ``_live``), with every item's a_inv when
        ``features`` is given (computed only when the projections are equal, the only case
        it matters; from the published tensors)."""
        if p["fusion"] not in ("attention", "global"):
            return
        from ..invariance.convert import (MaskCancelledWarning, _projections_equal,
                                          mask_cancellation)
        W, b, Wv, bv = (tensors[n] for n in ("W", "b", "Wv", "bv"))
        a_inv = None
        if features is not None and _projections_equal(W, b, Wv, bv):
            a_inv = self._attention_of(features, trusted=True)
        reason = mask_cancellation(p["mask"], fusion=p["fusion"], W=W, b=b, W_var=Wv, b_var=bv,
                                   a_inv=a_inv)
        if reason is not None:
            warnings.warn(f"{type(self).__name__}: {reason}", MaskCancelledWarning,
                          stacklevel=3)

    # fit(dataset, callback=None, resume=False): _EpochTrainer.fit, with the hooks below.

    def _prepare(self, dataset, p) -> None:
        # A Dataset is trusted (validated when built, read-only): no re-checks here.
        self._features = dataset.features
        self._betas = _loss_weights(dataset.user_degree, dataset.item_degree)

    def _run_epoch(self, p, dataset, users, items):
        """One epoch in C, then its bookkeeping; returns the epoch's history row."""
        start = time.perf_counter()
        metric, k = p["monitor"]
        features, (beta_u, beta_i) = self._features, self._betas
        live = self._live
        loss, n_batches, step = _core.train_epoch(
            live["U"], live["V"], live["W"], live["b"], p["gate"], features, beta_u,
            beta_i, users, items, self._opt_state, **self._convert_args(p),
            w=p["loss_weights"], emb_opt=p["emb_optimizer"], emb_lr=p["emb_lr"],
            proj_lr=p["proj_lr"], reg=p["reg"], wd1=p["wd1"], wdi=p["wdi"],
            wd2=p["wd2"], batch_size=p["batch_size"], n_neg=p["n_neg"],
            seed=int(self.seed), epoch=self.n_epochs_, step=self.step_,
            n_threads=p["n_threads"])
        self.step_ = step
        return self._close_epoch(
            {"loss": loss / max(n_batches, 1), "reg": self._reg_value(p)}, start,
            p["eval_every"], p["patience"], lambda: _validation_score(
                self._live["U"], self._item_vectors_from(self._live, dataset.features,
                                                         trusted=True),
                dataset, metric, k, self.n_threads))

    def _init_state(self, dataset, p):
        rng = np.random.default_rng(self.seed)
        std = p["init_std"]
        n_feat = dataset.features.shape[1]
        self.user_embeddings_ = (rng.standard_normal(
            (dataset.n_users, p["d_id"] + p["d_content"])) * std).astype(np.float32)
        self.item_embeddings_ = (rng.standard_normal((dataset.n_items, p["d_id"])) * std
                                 ).astype(np.float32)
        self.projection_ = (rng.standard_normal((p["d_content"], n_feat)) * std
                            ).astype(np.float32)
        self.bias_ = np.zeros(p["d_content"], dtype=np.float32) if self.bias else None
        # The arrays the C trainer updates; the public attributes show them during training
        # and the best validated copy once training ends (_publish).
        self._live = {"U": self.user_embeddings_, "V": self.item_embeddings_,
                      "W": self.projection_, "b": self.bias_, "A": None, "c": None, "q": None,
                      "omega": None, "Wv": None, "bv": None}
        self._convert_state = None
        if p["fusion"] is not None:
            d_a = p["attention_size"]
            if p["fusion"] == "attention":
                self._live["A"] = (rng.standard_normal((d_a, p["d_content"])) * std
                                   ).astype(np.float32)
                self._live["c"] = np.zeros(d_a, dtype=np.float32)
                self._live["q"] = (rng.standard_normal(d_a) * std).astype(np.float32)
            elif p["fusion"] == "global":
                self._live["omega"] = np.zeros(2, dtype=np.float32)  # equal weights (§4.2)
            if p["separate"]:  # drawn last: the shared model's draws stay as they were
                self._live["Wv"] = (rng.standard_normal(self.projection_.shape) * std
                                    ).astype(np.float32)
                self._live["bv"] = None if self.bias_ is None else np.zeros_like(self.bias_)
            self._convert_state = tuple(
                None if self._live[n] is None else np.zeros_like(self._live[n])
                for n in ("A", "A", "c", "c", "q", "q", "omega", "omega", "Wv", "Wv", "bv",
                          "bv"))
        self._apply_init(getattr(self, "_fit_init", None))
        self._warn_if_mask_cancels(p, None, self._live)
        adam = p["emb_optimizer"] == "adam"
        owners = [self.user_embeddings_, self.user_embeddings_, self.item_embeddings_,
                  self.item_embeddings_, self.projection_, self.projection_, self.bias_,
                  self.bias_]
        needed = [True, adam, True, adam, True, True, self.bias, self.bias]
        self._opt_state = tuple(np.zeros_like(o) if need else None
                                for o, need in zip(owners, needed))

    def _apply_init(self, init) -> None:
        """Copy the ``init`` tensors of :meth:`fit` into the fresh live state; W and b also
        start the variant projection."""
        if init is None:
            return
        f = f"{type(self).__name__}.fit"
        if not isinstance(init, Mapping):
            raise TypeError(f"{f}: init must be a dict of arrays, got {type(init).__name__}")
        live = self._live
        for name, value in init.items():
            if name not in ("U", "V", "W", "b"):
                raise ValueError(f"{f}: init keys must be 'U', 'V', 'W' or 'b', got {name!r}")
            if value is None or live[name] is None:
                if (value is None) != (live[name] is None):
                    raise ValueError(f"{f}: init[{name!r}] is "
                                     f"{'None' if value is None else 'given'} but this model "
                                     f"{'has' if live[name] is not None else 'has no'} {name}")
                continue
            value = as_float_array(value, f"init[{name!r}]", ndim=live[name].ndim,
                                   shape=live[name].shape, func=f)
            targets = [name] + (["Wv" if name == "W" else "bv"]
                                if name in ("W", "b") and live["Wv"] is not None else [])
            for t in targets:
                live[t][...] = value

    def _reg_value(self, p) -> float:
        live = self._live
        U, V = live["U"], live["V"]
        proj = [a for n, a in live.items()
                if n not in ("U", "V") + _FUSION_TENSORS and a is not None]
        fuse = [live[n] for n in _FUSION_TENSORS if live[n] is not None]
        # einsum, not np.dot: a threaded BLAS call from NumPy's own OpenBLAS would leave its
        # threads spinning against the C core's OpenMP threads.
        sq = lambda a: float(np.einsum("i,i->", a.ravel(), a.ravel(), dtype=np.float64))  # noqa: E731
        return (p["wd1"] * (sq(U) + p["wdi"] * sq(V)) + p["wd2"] * sum(sq(a) for a in proj)
                + p["attention_l2"] * sum(sq(a) for a in fuse))

    def _show(self, tensors):
        for name, attr in _PUBLIC.items():
            setattr(self, attr, tensors[name])

    def _convert_args(self, p) -> Dict[str, Any]:
        """The convert module's part of a train_epoch call (method.md §4.2)."""
        if p["fusion"] is None:
            return {}
        live = self._live
        state = self._convert_state
        if state is not None and not p["separate"]:
            state = state[:8]  # (A, c, q, omega moments); the variant ones are for W_var
        return dict(fusion=p["fusion"], mask=p["mask"], A=live["A"], c=live["c"], q=live["q"],
                    omega=live["omega"], W_var=live["Wv"] if p["separate"] else None,
                    b_var=live["bv"] if p["separate"] else None,
                    fusion_l2=p["attention_l2"], convert_state=state)

    # ------------------------------------------------------------------ vectors
    def user_vectors(self) -> np.ndarray:
        """Users as scoring vectors ``U_u`` (n_users, d_id + d_content)."""
        self._check_fitted()
        return self.user_embeddings_

    def item_vectors(self, features: Optional[np.ndarray] = None) -> np.ndarray:
        """Items as scoring vectors ``[V_i ; W (g * x_i) + b]`` (n_items, d_id + d_content)."""
        self._check_fitted()
        trusted = features is None  # the fitted dataset's own (validated) features
        if features is None:
            features = getattr(self, "_features", None)
            if features is None:  # a loaded model: the vectors saved with it
                return self.item_vectors_
        return self._item_vectors_from({n: getattr(self, a) for n, a in _PUBLIC.items()},
                                       features, trusted=trusted)

    def _convert_of(self, t, features, *, trusted: bool = False, func=None):
        """(h, a_inv) of every item under the convert tensors ``t``."""
        # imported here, not at the top: painvrl.invariance imports painvrl.models
        from ..invariance.convert import _item_vectors
        mask = np.ascontiguousarray(self.mask, dtype=np.float32)
        separate = self.fusion in ("attention", "global")
        return _item_vectors(t["W"], t["b"], t["A"], t["c"], t["q"], mask, features,
                             fusion=self.fusion, omega=t["omega"],
                             W_var=t["Wv"] if separate else None,
                             b_var=t["bv"] if separate else None, n_threads=self.n_threads,
                             trusted_X=trusted, **({} if func is None else {"func": func}))

    def attention_weights(self, dataset) -> np.ndarray:
        """Invariant weight ``a_inv`` of every item of ``dataset`` (``a_var = 1 - a_inv``)
        under the fitted convert module (``fusion`` set; 1 for ``"invariant"``).

        Parameters
        ----------
        dataset : Dataset, or anything with a ``features`` array (n_items, D)
            A :class:`~painvrl.data.Dataset`'s features are used as they are; others are
            checked.

        Returns
        -------
        ndarray (n_items,)
        """
        self._check_fitted()
        if self.fusion is None:
            raise ValueError(f"{type(self).__name__}.attention_weights: the model has no "
                             f"convert module (fusion=None)")
        return self._attention_of(dataset.features, trusted=isinstance(dataset, Dataset),
                                  func="convert_item_vectors")

    def _attention_of(self, features, *, trusted: bool = False, func=None) -> np.ndarray:
        """``a_inv`` of every item under the published parameters (``fusion`` set)."""
        t = {n: getattr(self, a) for n, a in _PUBLIC.items()}
        return self._convert_of(t, features, trusted=trusted, func=func)[1]

    def _item_vectors_from(self, t, features, *, trusted: bool = False) -> np.ndarray:
        """``trusted``: ``features`` is a Dataset's table (not checked again)."""
        if self.fusion is not None:
            content, _ = self._convert_of(t, features, trusted=trusted)
        else:
            X = features if self.gate is None else features * np.asarray(self.gate, np.float32)
            content = X @ t["W"].T
            if t["b"] is not None:
                content += t["b"]
        return np.ascontiguousarray(np.concatenate([t["V"], content], axis=1),
                                    dtype=np.float32)

    # ------------------------------------------------------------------ persistence
    def _to_parts(self) -> Tuple[Dict[str, Any], Dict[str, np.ndarray]]:
        """The model as (JSON-able metadata, named arrays): the content of a model file."""
        self._check_fitted()
        arrays = {"item_vectors": self.item_vectors(), **self._tensor_arrays()}
        for name in ("gate", "mask"):
            if getattr(self, name) is not None:
                arrays[name] = np.asarray(getattr(self, name), np.float32)
        states = list(zip(_STATE_NAMES, self._opt_state))
        if self._convert_state is not None:
            states += list(zip(_CONVERT_STATE_NAMES, self._convert_state))
        arrays.update({"opt_" + n: a for n, a in states if a is not None})
        params = {k: v for k, v in self.get_params().items() if k not in ("gate", "mask")}
        params["loss_weights"] = list(params["loss_weights"])
        return {**self._state_meta(), "params": params}, arrays

    @classmethod
    def _from_parts(cls, meta: Dict[str, Any], a: Dict[str, np.ndarray]) -> "Backbone":
        params = dict(meta["params"])
        if params.get("fusion") is not None and "projection" not in params:
            # a file from before separate projections: shared W, fusion L2 = wd2
            params.update(projection="shared", attention_l2=params["wd2"])
        params["gate"] = a.get("gate")
        params["mask"] = a.get("mask")
        params["loss_weights"] = tuple(params["loss_weights"])
        model = cls(**params)
        model._restore_state(meta, a, tuple(_PUBLIC))
        model.item_vectors_ = a["item_vectors"]
        model._opt_state = tuple(a.get("opt_" + n) for n in _STATE_NAMES)
        model._convert_state = (None if model.fusion is None else
                                tuple(a.get("opt_" + n) for n in _CONVERT_STATE_NAMES))
        model._publish()
        return model
