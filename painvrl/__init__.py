"""painvrl: Pareto Invariant Representation Learning for multimedia recommendation.

Heavy computation runs in the C extension ``painvrl._core``; this package is
its Python API.
"""
from . import _core, data, datasets, functional, metrics
from .metrics import evaluate, ranking_metrics, topk
from ._csr import UserItemCSR
from ._io import ModelFileError
from .data import Dataset, load_mmgcn, load_mmrec
from .models import Backbone, NotFittedError, Popularity

__version__ = "0.1.0"
__all__ = ["Backbone", "Dataset", "ModelFileError", "NotFittedError", "Popularity",
           "UserItemCSR", "data", "datasets", "functional", "load_mmgcn", "load_mmrec",
           "evaluate", "metrics", "ranking_metrics", "topk", "__version__"]
