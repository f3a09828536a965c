"""Experiments built from the estimators: the IID/OOD Pareto front of a weighting sweep
(:func:`pareto_front`) and the ablations of method.md §6.5 (:func:`ablations`).

* ``targets.py``: the validation and test ground truths of an OOD split, and scoring a
  fitted model on all four (IID/OOD x validation/test).
* ``front.py``: non-dominated points and the two-objective hypervolume.
* ``pareto.py``: :func:`pareto_front` and :class:`ParetoFront`.
* ``ablations.py``: :func:`ablations`.

Every choice these functions make (the ``pareto`` flag, early stopping) uses validation
data only; test metrics are reported, never used to choose.
"""
from .ablations import ABLATIONS, ablations
from .front import hypervolume_2d, non_dominated
from .pareto import ParetoFront, pareto_front

__all__ = ["ABLATIONS", "ParetoFront", "ablations", "hypervolume_2d", "non_dominated",
           "pareto_front"]
