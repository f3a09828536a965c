"""painvrl: Pareto Invariant Representation Learning for multimedia recommendation.

Heavy computation runs in the C extension ``painvrl._core``; this package is
its Python API, in six subpackages: ``data`` (the Dataset, readers, datasets,
splits), ``models`` (the estimators), ``invariance`` (PaInvRL's modules and
pipelines), ``evaluation`` (metrics, comparison, significance tests),
``experiments`` (the IID/OOD Pareto front, ablations) and ``sweep`` (grids of runs
on Dask; Dask and pyarrow are imported only when used).
"""
from ._blas import import_core

_core = import_core()  # first: a missing build or BLAS fails here, clearly

from . import data, evaluation, experiments, invariance, models, sweep
from ._util.modelfile import ModelFileError
from .data import Dataset, UserItemCSR, datasets, load_mmgcn, load_mmrec, splits
from .evaluation import compare, evaluate, metrics, ranking_metrics, topk
from .invariance import (ConvertGradient, EnvironmentSplit, InvRL, MaskCancelledWarning,
                         MaskResult, MaskStep, PaInvRL, attention_weights, convert,
                         convert_item_vectors, convert_loss_grad, environments,
                         identify_environments, learn_mask, mask_cancellation, mask_step,
                         mgda_weight, pair_weight, pipeline)
from .experiments import ParetoFront, ablations, pareto_front
from .models import (FREEDOM, VBPR, Backbone, CornacModel, ImplicitModel, LightGCN, NotFittedError,
                     Popularity, functional)
from .sweep import load_sweep, run_sweep, summarise

__version__ = "0.1.0"
__all__ = ["ablations", "attention_weights", "Backbone", "compare", "convert",
           "convert_item_vectors", "convert_loss_grad", "ConvertGradient", "CornacModel",
           "data", "Dataset", "datasets", "environments", "EnvironmentSplit", "evaluate",
           "experiments", "FREEDOM", "functional", "identify_environments", "ImplicitModel",
           "invariance", "InvRL", "learn_mask", "LightGCN", "load_mmgcn", "load_mmrec",
           "load_sweep", "mask_cancellation", "mask_step", "MaskCancelledWarning", "MaskResult",
           "MaskStep", "metrics", "mgda_weight", "ModelFileError", "NotFittedError", "PaInvRL",
           "pair_weight", "pareto_front", "ParetoFront", "pipeline", "Popularity",
           "ranking_metrics", "run_sweep", "splits", "summarise", "sweep", "topk",
           "UserItemCSR", "VBPR", "__version__"]
