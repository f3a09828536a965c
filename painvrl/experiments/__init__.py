"""Experiments built from the estimators: the IID/OOD Pareto front of a weighting sweep
(:func:`pareto_front`) and the ablations of method.md §6.5 (:func:`ablations`).

* ``targets.py``: the validation and test ground truths of an OOD split, and scoring a
  fitted model on all four (IID/OOD x validation/test).
* ``front.py``: non-dominated points and the two-objective hypervolume.
* ``pareto.py``: :func:`pareto_front` and :class:`ParetoFront`.
* ``settings.py``: :func:`compare_settings`, several pipeline settings from one backbone
  per seed.
* ``ablations.py``: :func:`ablations` (method.md §6.5), settings that each switch one
  component off.

Every choice these functions make (the ``pareto`` flag, early stopping) uses validation
data only; test metrics are reported, never used to choose.
"""
from .ablations import ABLATIONS, ablations
from .front import hypervolume_2d, non_dominated
from .pareto import ParetoFront, pareto_front
from .settings import compare_settings

__all__ = ["ABLATIONS", "ParetoFront", "ablations", "compare_settings", "hypervolume_2d",
           "non_dominated", "pareto_front"]
