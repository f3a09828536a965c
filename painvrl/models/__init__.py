"""Estimators: the multimodal backbone (method.md §1) and an item-popularity baseline.

* ``base.py``: the estimator contract (``recommend`` / ``evaluate`` on top of
  ``user_vectors()`` / ``item_vectors()``) and :class:`NotFittedError`.
* ``popularity.py``: :class:`Popularity`.
* ``backbone.py``: :class:`Backbone`.
* ``adapters.py``: :class:`CornacModel`, :class:`ImplicitModel` (models of other
  libraries on a painvrl Dataset, for ``compare``).
* :mod:`painvrl.functional` (``functional.py``): the backbone's batch loss and
  gradients as stateless functions.
"""
from .adapters import CornacModel, ImplicitModel
from .backbone import Backbone
from .base import NotFittedError
from .popularity import Popularity

__all__ = ["Backbone", "Popularity", "NotFittedError", "CornacModel", "ImplicitModel"]
