"""painvrl: Pareto Invariant Representation Learning for multimedia recommendation.

Heavy computation runs in the C extension ``painvrl._core``; this package is
its Python API.
"""
from ._blas import import_core

_core = import_core()  # first: a missing build or BLAS fails here, clearly
from . import (compare, convert, data, datasets, environments, functional, invariance, metrics,
               pipeline, splits)
from .metrics import evaluate, ranking_metrics, topk
from ._csr import UserItemCSR
from ._io import ModelFileError
from .convert import ConvertGradient, attention_weights, convert_item_vectors, convert_loss_grad
from .data import Dataset, load_mmgcn, load_mmrec
from .environments import EnvironmentSplit, identify_environments
from .invariance import MaskResult, MaskStep, learn_mask, mask_step, mgda_weight, pair_weight
from .models import Backbone, NotFittedError, Popularity
from .pipeline import InvRL, PaInvRL

__version__ = "0.1.0"
__all__ = ["Backbone", "ConvertGradient", "Dataset", "EnvironmentSplit", "InvRL",
           "MaskResult", "MaskStep", "ModelFileError", "NotFittedError", "PaInvRL", "Popularity",
           "UserItemCSR", "attention_weights", "compare", "convert", "convert_item_vectors",
           "convert_loss_grad", "data", "datasets", "environments", "evaluate", "functional",
           "identify_environments", "invariance", "learn_mask", "load_mmgcn", "load_mmrec",
           "mask_step", "metrics", "mgda_weight", "pair_weight", "pipeline", "ranking_metrics",
           "splits", "topk", "__version__"]
