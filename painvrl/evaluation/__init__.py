"""Evaluation: full-ranking metrics, model comparison and significance tests.

* ``metrics.py`` (:mod:`painvrl.metrics`): :func:`topk`, :func:`evaluate`,
  :func:`ranking_metrics`.
* ``compare.py`` (:mod:`painvrl.compare`): :func:`compare` (every model on every
  split) and :func:`summarize` (runs over seeds as ``mean ± std``).
* ``stats.py``: :func:`paired_test` and its numerics, written in NumPy.
"""
from . import compare, metrics, stats
from .compare import summarize
from .metrics import evaluate, ranking_metrics, topk
from .stats import paired_test

# ``compare`` is the module (``compare.compare`` the function), as ``painvrl.compare`` is.
__all__ = ["compare", "metrics", "stats", "topk", "evaluate", "ranking_metrics", "paired_test",
           "summarize"]
