"""The estimator contract shared by painvrl's recommenders.

They follow scikit-learn's conventions: hyperparameters are keyword arguments
stored unchanged by ``__init__``, ``fit`` returns ``self``, learned state ends
in ``_``.  On top of a fitted model's ``user_vectors()`` and ``item_vectors()``,
:class:`_RecommenderMixin` gives ``recommend``, ``score`` and ``evaluate``; using a model
before ``fit`` raises :class:`NotFittedError`.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from .._util.validation import as_index_array, check_choice
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
