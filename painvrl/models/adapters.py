"""Models of other libraries (cornac, implicit) on a painvrl Dataset, for ``compare``.

Each adapter fits the wrapped model on the dataset's training pairs and answers
in the dataset's dense ids, so :func:`painvrl.compare.compare` scores it on the
same split, with the same metrics and exclusions, as painvrl's own models.
Both libraries are optional (``pip install "painvrl[baselines]"``); they are
imported when an adapter is fitted.
"""
from __future__ import annotations

import numpy as np

from .._util.validation import as_index_array
from ..data.dataset import Dataset
from .base import NotFittedError

__all__ = ["CornacModel", "ImplicitModel"]


def _check_dataset(dataset, owner: str) -> Dataset:
    if not isinstance(dataset, Dataset):
        raise TypeError(f"{owner}.fit: dataset must be a painvrl.Dataset, got "
                        f"{type(dataset).__name__}")
    return dataset


class _Adapter:
    """The shared part: the wrapped model, fitted state and the user check."""

    def __init__(self, model):
        self.model = model

    def _users(self, users) -> np.ndarray:
        if not hasattr(self, "n_items_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit() first")
        return as_index_array(np.atleast_1d(users), "users", high=self.n_users_,
                              func=f"{type(self).__name__}")


class CornacModel(_Adapter):
    """A cornac recommender (``cornac.models.BPR``, ``VBPR``, ``EASE``, ...) on painvrl ids.

    Parameters
    ----------
    model : cornac.models.Recommender
        Unfitted; ``fit`` trains it on the dataset's training pairs (rating 1).
    seed : int, optional
        Seed of cornac's training-set construction.
    item_features : bool
        Hand cornac the dataset's item features (all modalities side by side) as its
        ``item_image`` modality, which VBPR and other content models read.

    Notes
    -----
    cornac numbers users and items in order of first appearance; the adapter
    keeps both maps and returns scores in the dataset's ids.  Items without a
    training pair are unknown to cornac and score ``-inf``; a user without one
    scores ``-inf`` everywhere.
    """

    def __init__(self, model, *, seed=None, item_features: bool = False):
        super().__init__(model)
        self.seed = seed
        self.item_features = item_features

    def fit(self, dataset) -> "CornacModel":
        """Train the cornac model on ``dataset.train``; returns ``self``."""
        import cornac

        ds = _check_dataset(dataset, "CornacModel")
        triples = [(int(u), int(i), 1.0) for u, i in ds.train]
        train = cornac.data.Dataset.from_uir(triples, seed=self.seed)
        if self.item_features:
            image = cornac.data.ImageModality(features=np.asarray(ds.features, np.float32),
                                              ids=np.arange(ds.n_items))
            image.build(id_map=train.iid_map)  # rows reordered to cornac's item ids
            train.add_modalities(item_image=image)
        self.model.fit(train)
        self.user_inner_ = np.full(ds.n_users, -1, dtype=np.int64)  # painvrl id -> cornac id
        for raw, inner in train.uid_map.items():
            self.user_inner_[raw] = inner
        self.item_of_inner_ = np.empty(train.num_items, dtype=np.int64)  # cornac id -> painvrl
        for raw, inner in train.iid_map.items():
            self.item_of_inner_[inner] = raw
        self.n_users_, self.n_items_ = ds.n_users, ds.n_items
        return self

    def score(self, users) -> np.ndarray:
        """Scores of every item, ``(len(users), n_items)`` float64, in painvrl ids."""
        users = self._users(users)
        out = np.full((users.size, self.n_items_), -np.inf)
        for row, u in enumerate(users):
            inner = self.user_inner_[u]
            if inner >= 0:
                out[row, self.item_of_inner_] = self.model.score(int(inner))
        return out


class ImplicitModel(_Adapter):
    """An implicit recommender (``implicit.cpu.bpr.BayesianPersonalizedRanking``,
    ``implicit.nearest_neighbours.CosineRecommender``, ALS, ...) on painvrl ids.

    ``fit`` hands implicit the training pairs as a (n_users x n_items) CSR of
    ones, so ids are the dataset's; ``recommend`` asks implicit for its ranking
    without its own filtering (``compare`` excludes the training items).
    """

    def fit(self, dataset) -> "ImplicitModel":
        """Train the implicit model on ``dataset.train``; returns ``self``."""
        import scipy.sparse

        ds = _check_dataset(dataset, "ImplicitModel")
        csr = ds.train_csr
        self.user_items_ = scipy.sparse.csr_matrix(
            (np.ones(csr.nnz, dtype=np.float32), csr.indices, csr.indptr),
            shape=(ds.n_users, ds.n_items))
        self.model.fit(self.user_items_, show_progress=False)
        self.n_users_, self.n_items_ = ds.n_users, ds.n_items
        return self

    def recommend(self, users, k: int = 10):
        """Top-``k`` ids (``-1`` where implicit has fewer) and scores, training items included."""
        users = self._users(users)
        ids, scores = self.model.recommend(users, self.user_items_[users], N=int(k),
                                           filter_already_liked_items=False)
        return np.asarray(ids, dtype=np.int64), np.asarray(scores)
