"""The item-popularity baseline (the usual sanity check of a recommender)."""
from __future__ import annotations

import numpy as np

from .base import _RecommenderMixin

__all__ = ["Popularity"]


class Popularity(_RecommenderMixin):
    """Rank items by their number of training users (the usual sanity baseline)."""

    def fit(self, dataset) -> "Popularity":
        self.item_popularity_ = np.bincount(dataset.train[:, 1], minlength=dataset.n_items)
        self.seen_ = dataset.train_csr
        return self

    def user_vectors(self) -> np.ndarray:
        self._check_fitted()
        return np.ones((self.seen_.n_users, 1), dtype=np.float32)

    def item_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.item_popularity_.astype(np.float32)[:, None]
