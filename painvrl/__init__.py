"""painvrl: Pareto Invariant Representation Learning for multimedia recommendation.

Heavy computation runs in the C extension ``painvrl._core``; this package is
its Python API, in four subpackages: ``data`` (the Dataset, readers, datasets,
splits), ``models`` (the estimators), ``invariance`` (PaInvRL's modules and
pipelines) and ``evaluation`` (metrics, comparison, significance tests).
"""
from ._blas import import_core

_core = import_core()  # first: a missing build or BLAS fails here, clearly

from . import data, evaluation, experiments, invariance, models
from ._util.modelfile import ModelFileError
from .data import Dataset, UserItemCSR, datasets, load_mmgcn, load_mmrec, splits
from .evaluation import compare, evaluate, metrics, ranking_metrics, topk
from .invariance import (ConvertGradient, EnvironmentSplit, InvRL, MaskResult, MaskStep, PaInvRL,
                         attention_weights, convert, convert_item_vectors, convert_loss_grad,
                         environments, identify_environments, learn_mask, mask_step, mgda_weight,
                         pair_weight, pipeline)
from .experiments import ParetoFront, ablations, pareto_front
from .models import (FREEDOM, VBPR, Backbone, CornacModel, ImplicitModel, LightGCN, NotFittedError,
                     Popularity, functional)

__version__ = "0.1.0"
__all__ = ["Backbone", "ConvertGradient", "CornacModel", "Dataset", "EnvironmentSplit",
           "FREEDOM", "ImplicitModel", "InvRL", "LightGCN", "MaskResult", "MaskStep",
           "ModelFileError", "NotFittedError", "PaInvRL", "ParetoFront", "Popularity",
           "UserItemCSR", "VBPR", "ablations", "attention_weights", "compare", "convert",
           "convert_item_vectors", "convert_loss_grad", "data", "datasets", "environments",
           "evaluate", "experiments", "functional", "identify_environments", "invariance",
           "learn_mask", "load_mmgcn", "load_mmrec", "mask_step", "metrics", "mgda_weight",
           "pair_weight", "pareto_front", "pipeline", "ranking_metrics", "splits", "topk",
           "__version__"]
