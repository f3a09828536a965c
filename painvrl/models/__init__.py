"""Estimators: the multimodal backbone (method.md §1) and the baselines it is compared with.

* ``base.py``: the estimator contract (``recommend`` / ``evaluate`` on top of
  ``user_vectors()`` / ``item_vectors()``) and :class:`NotFittedError`.
* ``popularity.py``: :class:`Popularity`.
* ``backbone.py``: :class:`Backbone`.
* ``lightgcn.py``: :class:`LightGCN` over the user-item graph of ``graph.py``.
* ``freedom.py``: :class:`FREEDOM` (frozen item-item graph, pruned user-item graph).
* ``vbpr.py``: :class:`VBPR` (BPR with a content branch over every modality).
* ``adapters.py``: :class:`CornacModel`, :class:`ImplicitModel` (models of other
  libraries on a painvrl Dataset, for ``compare``).
* :mod:`painvrl.functional` (``functional.py``): the backbone's batch loss and
  gradients as stateless functions.
"""
from .adapters import CornacModel, ImplicitModel
from .backbone import Backbone
from .base import NotFittedError
from .freedom import FREEDOM
from .lightgcn import LightGCN
from .popularity import Popularity
from .vbpr import VBPR

__all__ = ["Backbone", "Popularity", "LightGCN", "VBPR", "FREEDOM", "NotFittedError", "CornacModel",
           "ImplicitModel"]
