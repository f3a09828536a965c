"""The estimator contract shared by painvrl's recommenders.

They follow scikit-learn's conventions: hyperparameters are keyword arguments
stored unchanged by ``__init__``, ``fit`` returns ``self``, learned state ends
in ``_``.  On top of a fitted model's ``user_vectors()`` and ``item_vectors()``,
:class:`_RecommenderMixin` gives ``recommend``, ``score`` and ``evaluate``; using a model
before ``fit`` raises :class:`NotFittedError`.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from .._util.interrupt import deferred_interrupt
from .._util.modelfile import load_model_file, save_model_file
from .._util.progress import progress_bar
from .._util.validation import (as_index_array, check_choice, check_nonneg_float,
                                check_positive_int, check_seed, resolve_threads)
from ..data.csr import UserItemCSR
from ..data.dataset import Dataset
from ..evaluation.metrics import evaluate as evaluate_vectors
from ..evaluation.metrics import topk

__all__ = ["NotFittedError"]


class NotFittedError(RuntimeError):
    """The estimator was used before ``fit``."""


def _parse_monitor(monitor: str) -> Tuple[str, int]:
    try:
        name, k = monitor.split("@")
        return name, int(k)
    except ValueError:
        raise ValueError(f"monitor must look like 'ndcg@10', got {monitor!r}") from None


class _RecommenderMixin:
    """recommend / evaluate on top of ``user_vectors()`` and ``item_vectors()``."""

    def _check_fitted(self):
        if not hasattr(self, "seen_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit() first")

    def recommend(self, users, k: int = 10, *, exclude_seen: bool = True,
                  n_threads: Optional[int] = None):
        """Top-``k`` items for each user, by full ranking over the catalogue.

        Parameters
        ----------
        users : int or array of int
            Dense user ids.
        k : int
            Items per user; at most the number of items.
        exclude_seen : bool
            Leave out each user's training items.

        Returns
        -------
        ids : ndarray of int64, shape (n, k)
            Best first; ``-1`` pads rows with fewer than k unseen items.
        scores : ndarray of float32, shape (n, k)
        """
        self._check_fitted()
        scalar = np.isscalar(users)
        users = as_index_array(np.atleast_1d(users), "users", high=self.seen_.n_users)
        exclude = None
        if exclude_seen:
            exclude = _subset_rows(self.seen_, users)
        ids, scores = topk(self.user_vectors()[users], self.item_vectors(), k, exclude=exclude,
                           n_threads=n_threads)
        return (ids[0], scores[0]) if scalar else (ids, scores)

    def score(self, users) -> np.ndarray:
        """Scores of every item for each of ``users``: ``(len(users), n_items)`` float32
        (training items included; :meth:`recommend` excludes them)."""
        self._check_fitted()
        users = as_index_array(np.atleast_1d(users), "users", high=self.seen_.n_users)
        return self.user_vectors()[users] @ self.item_vectors().T

    def evaluate(self, dataset, split: str = "test", *, ks: Sequence[int] = (10, 20),
                 exclude: str = "train", per_user: bool = False, **kwargs) -> pd.DataFrame:
        """Full-ranking metrics of the fitted model on a split of ``dataset``.

        Parameters
        ----------
        dataset : painvrl.data.Dataset
        split : {"test", "val"} or UserItemCSR
            The ground truth.
        exclude : {"train", "train+val", "none"}
            Which known items are masked out of each user's ranking.
        **kwargs
            Passed to :func:`painvrl.metrics.evaluate` (``metrics``, ``ndcg``,
            ``mask_value``, ...).
        """
        self._check_fitted()
        truth = split if isinstance(split, UserItemCSR) else getattr(dataset, split)
        check_choice(exclude, "exclude", ("train", "train+val", "none"))
        mask = None
        if exclude == "train":
            mask = dataset.train_csr
        elif exclude == "train+val":
            if isinstance(dataset, Dataset):  # trusted: its pairs are not checked again
                mask = dataset._train_val_csr()
            else:
                pairs = np.concatenate([dataset.train, dataset.val.to_pairs()])
                mask = UserItemCSR.from_pairs(pairs[:, 0], pairs[:, 1], dataset.n_users,
                                              dataset.n_items)
        return evaluate_vectors(self.user_vectors(), self.item_vectors(), truth, exclude=mask,
                                ks=ks, per_user=per_user, **kwargs)


def _subset_rows(csr: UserItemCSR, users: np.ndarray) -> UserItemCSR:
    lengths = csr.indptr[users + 1] - csr.indptr[users]
    indptr = np.zeros(users.shape[0] + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    indices = (np.concatenate([csr.row(u) for u in users]) if users.size
               else np.zeros(0, np.int64))
    return UserItemCSR(indptr, indices, users.shape[0], csr.n_items)


class _EpochTrainer(_RecommenderMixin):
    """What every estimator trained epoch by epoch shares: hyperparameters as keyword
    arguments, the training loop (progress bar, Ctrl-C held until an epoch is recorded,
    callback), early stopping on a validation metric, and model files.

    A subclass keeps its trainable arrays in ``self._live`` (name -> array, None
    allowed) and shows a set of them as public attributes in ``_show(tensors)``.
    :meth:`fit` calls its hooks ``_validated(dataset)`` (checked hyperparameters),
    ``_init_state(dataset, p)`` (fresh tensors and optimiser state), ``_prepare``
    (per-fit data such as a graph) and ``_run_epoch(p, dataset, users, items)`` (one
    epoch, closed by :meth:`_close_epoch`).  The model file (:meth:`_to_parts`)
    needs ``_TENSORS`` (the names in ``_live``), ``_adam`` (a flat tuple of optimiser
    moments), ``_saved_vectors()`` and ``_restore_vectors(arrays)``; the Backbone
    writes its own on top of :meth:`_state_meta` / :meth:`_restore_state`.
    """

    @classmethod
    def _param_names(cls) -> Tuple[str, ...]:
        return tuple(cls.__init__.__kwdefaults__)

    def _keep(self, values: Dict[str, Any]) -> None:
        """The body of ``__init__``: store every hyperparameter unchanged (scikit-learn's
        rule; they are checked by ``fit``).  Called with ``locals()``."""
        for name in self._param_names():
            setattr(self, name, values[name])

    def get_params(self) -> Dict[str, Any]:
        return {k: getattr(self, k) for k in self._param_names()}

    def set_params(self, **params):
        for k, v in params.items():
            if k not in self._param_names():
                raise ValueError(f"unknown parameter {k!r}")
            setattr(self, k, v)
        return self

    # ------------------------------------------------------------------ training
    def fit(self, dataset, *, callback: Optional[Callable[[Any, dict], Any]] = None,
            resume: bool = False):
        """Train on ``dataset.train``, selecting the epoch by ``dataset.val``.

        Parameters
        ----------
        dataset : painvrl.data.Dataset
        callback : callable, optional
            ``callback(model, info)`` after every epoch, ``info`` being the epoch's
            history row (``epoch``, ``loss``, ``seconds``, ... and on validation epochs
            the monitored metric); returning ``True`` stops training.
        resume : bool
            Continue a fitted (or loaded) model from its last completed epoch, with
            its optimiser state: the result equals an uninterrupted run.

        Returns
        -------
        self

        Raises
        ------
        TypeError
            ``dataset`` is not a :class:`~painvrl.data.Dataset`, or a hyperparameter
            of the wrong kind.
        ValueError
            A hyperparameter out of range, or ``resume=True`` on another dataset.

        Notes
        -----
        The dataset was validated when it was built; its arrays go to the C core
        as they are.
        """
        dataset = self._check_dataset(dataset)
        p = self._validated(dataset)
        if resume:
            self._check_fitted()
            if (self.seen_.n_users, self.seen_.n_items) != (dataset.n_users, dataset.n_items):
                raise ValueError(f"{type(self).__name__}.fit: resume=True needs the dataset "
                                 f"the model was fitted on")
        else:
            self._init_state(dataset, p)
            self._reset_training(dataset)
        self._prepare(dataset, p)
        self._show(self._live)  # during training the public attributes are the live tensors
        self._dataset_val = dataset.val if dataset.val.nnz else None
        users, items = dataset._train_columns()
        self._train_loop(p["max_epochs"], lambda: self._run_epoch(p, dataset, users, items),
                         callback)
        return self

    def _common_params(self) -> Dict[str, Any]:
        """The checked hyperparameters every epoch-trained baseline has."""
        f = type(self).__name__
        p = dict(
            lr=check_nonneg_float(self.lr, "lr", strictly_positive=True, func=f),
            batch_size=check_positive_int(self.batch_size, "batch_size", func=f),
            max_epochs=check_positive_int(self.max_epochs, "max_epochs", minimum=0, func=f),
            eval_every=check_positive_int(self.eval_every, "eval_every", func=f),
            patience=check_positive_int(self.patience, "patience", minimum=0, func=f),
            init_std=check_nonneg_float(self.init_std, "init_std", func=f),
            n_threads=resolve_threads(self.n_threads, func=f),
            monitor=_parse_monitor(self.monitor),
        )
        check_seed(self.seed, func=f)
        return p

    def _reset_training(self, dataset) -> None:
        self.step_ = 0
        self.n_epochs_ = 0
        self._history = []
        self._best = None
        self.best_epoch_ = None
        self.best_score_ = -math.inf
        self._bad_checks = 0
        self._stopped = False
        self.seen_ = dataset.train_csr

    def _check_dataset(self, dataset) -> Dataset:
        if not isinstance(dataset, Dataset):
            raise TypeError(f"{type(self).__name__}.fit: dataset must be a painvrl.Dataset, "
                            f"got {type(dataset).__name__}")
        return dataset

    def _train_loop(self, max_epochs: int, run_epoch: Callable[[], dict],
                    callback: Optional[Callable[[Any, dict], Any]]) -> None:
        """Epochs until ``max_epochs``, early stopping or the callback's ``True``."""
        bar = progress_bar(self.progress, total=max_epochs, initial=self.n_epochs_,
                           desc=type(self).__name__, leave=False)
        try:
            while self.n_epochs_ < max_epochs and not self._stopped:
                # The epoch writes the tables in place: its counters, validation and
                # history go with it, so Ctrl-C waits until they are recorded.
                with deferred_interrupt():
                    info = run_epoch()
                bar.update(1)
                bar.set_postfix({k_: f"{v:.4g}" for k_, v in info.items()
                                 if k_ not in ("epoch", "seconds")})
                if callback is not None and callback(self, dict(info)) is True:
                    break
        finally:
            # Ctrl-C is held until an epoch is recorded (deferred_interrupt), so the state
            # below is always that of the last completed epoch.
            bar.close()
            self.history_ = pd.DataFrame(self._history)
            self._publish()

    def _close_epoch(self, info: dict, start: float, eval_every: int, patience: int,
                     validate: Callable[[], float]) -> dict:
        """Count the epoch, validate it when due, and record its history row."""
        self.n_epochs_ += 1
        info = {"epoch": self.n_epochs_, **info, "seconds": time.perf_counter() - start}
        if self._dataset_val is not None and self.n_epochs_ % eval_every == 0:
            score = validate()
            info[self.monitor] = score
            self._record_check(score, patience)
        self._history.append(info)
        return info

    def _record_check(self, score: float, patience: int):
        if score > self.best_score_:
            self.best_score_ = score
            self.best_epoch_ = self.n_epochs_
            self._bad_checks = 0
            self._best = {n: None if a is None else a.copy() for n, a in self._live.items()}
        else:
            self._bad_checks += 1
            if self._bad_checks > patience:
                self._stopped = True

    def _publish(self):
        """Show the best validated parameters (the reference's model selection), or the
        last epoch's when nothing was validated.  Training itself goes on from ``_live``."""
        self._show(self._best if self._best is not None else self._live)

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> None:
        """Write everything needed to recommend and to resume training to ``path``
        (atomically; see :mod:`painvrl._util.modelfile`)."""
        meta, arrays = self._to_parts()
        save_model_file(path, meta, arrays)

    @classmethod
    def load(cls, path):
        """Read a model written by :meth:`save`."""
        meta, arrays = load_model_file(path)
        if meta.get("class") != cls.__name__:
            raise ValueError(f"{path} holds a {meta.get('class')}, not a {cls.__name__}")
        return cls._from_parts(meta, arrays)

    def _to_parts(self) -> Tuple[Dict[str, Any], Dict[str, np.ndarray]]:
        """The model file of a baseline: its tensors (``_TENSORS``), the flat tuple of
        optimiser moments ``_adam``, the scoring vectors of ``_saved_vectors()``, the
        training counters and the hyperparameters (sequences as lists, for JSON)."""
        self._check_fitted()
        arrays = {**self._tensor_arrays(), **self._saved_vectors()}
        arrays.update({f"adam_{q}": a for q, a in enumerate(self._adam)})
        params = {k: [float(x) for x in v] if isinstance(v, (list, tuple, np.ndarray)) else v
                  for k, v in self.get_params().items()}
        return {**self._state_meta(), "params": params}, arrays

    @classmethod
    def _from_parts(cls, meta: Dict[str, Any], a: Dict[str, np.ndarray]):
        model = cls(**meta["params"])
        model._restore_state(meta, a, cls._TENSORS)
        n_adam = sum(1 for name in a if name.startswith("adam_"))
        model._adam = tuple(a[f"adam_{q}"] for q in range(n_adam))
        model._restore_vectors(a)
        model._publish()
        return model

    def _tensor_arrays(self) -> Dict[str, np.ndarray]:
        """The live and best tensors and the training items, as model-file arrays."""
        arrays = {"seen_indptr": self.seen_.indptr, "seen_indices": self.seen_.indices}
        for prefix, tensors in (("live_", self._live), ("best_", self._best or {})):
            arrays.update({prefix + n: a for n, a in tensors.items() if a is not None})
        return arrays

    def _state_meta(self) -> Dict[str, Any]:
        """The training counters and history, as model-file metadata."""
        return {"class": type(self).__name__,
                "state": {"n_epochs": self.n_epochs_, "step": self.step_,
                          "best_epoch": self.best_epoch_,
                          "best_score": None if self.best_score_ == -math.inf
                          else self.best_score_,
                          "bad_checks": self._bad_checks, "stopped": self._stopped,
                          "n_users": self.seen_.n_users, "n_items": self.seen_.n_items},
                "history": self.history_.to_dict(orient="list")}

    def _restore_state(self, meta: Dict[str, Any], a: Dict[str, np.ndarray],
                       names: Sequence[str]) -> None:
        """Inverse of :meth:`_state_meta` and :meth:`_tensor_arrays` for tensors ``names``."""
        st = meta["state"]
        self._live = {n: a.get("live_" + n) for n in names}
        self._best = ({n: a.get("best_" + n) for n in names}
                      if "best_" + names[0] in a else None)
        self.seen_ = UserItemCSR(a["seen_indptr"], a["seen_indices"], st["n_users"],
                                 st["n_items"])
        self.n_epochs_ = st["n_epochs"]
        self.step_ = st["step"]
        self.best_epoch_ = st["best_epoch"]
        self.best_score_ = -math.inf if st["best_score"] is None else st["best_score"]
        self._bad_checks = st["bad_checks"]
        self._stopped = st["stopped"]
        self._history = pd.DataFrame(meta["history"]).to_dict(orient="records")
        self.history_ = pd.DataFrame(self._history)


def _validation_score(user_vecs: np.ndarray, item_vecs: np.ndarray, dataset, metric: str,
                      k: int, n_threads) -> float:
    """The monitored metric on ``dataset.val``, training items excluded."""
    table = evaluate_vectors(user_vecs, item_vecs, dataset.val, exclude=dataset.train_csr,
                             ks=(k,), metrics=(metric,), n_threads=n_threads)
    return float(table.loc[(table["metric"] == metric) & (table["k"] == k), "value"].iloc[0])
