"""PaInvRL's three modules and the pipelines that chain them (method.md §2-§5).

* ``environments.py`` (:mod:`painvrl.environments`): module (i), heterogeneous
  environment identification.
* ``mask.py``: module (ii), invariant-mask learning with the ERM / IRM weighting.
* ``convert.py`` (:mod:`painvrl.convert`): module (iii), the convert module of
  the final recommender.
* ``pipeline.py`` (:mod:`painvrl.pipeline`): :class:`InvRL` and :class:`PaInvRL`.
"""
from .convert import ConvertGradient, attention_weights, convert_item_vectors, convert_loss_grad
from .environments import (EnvironmentSplit, estimate_memory, identify_environments,
                           random_environments)
from .mask import (MaskResult, MaskStep, learn_mask, mask_step, mask_step_workspace, mgda_weight,
                   pair_weight, ultragcn_betas)
from .pipeline import InvRL, PaInvRL

__all__ = ["MaskStep", "MaskResult", "mask_step", "mask_step_workspace", "learn_mask",
           "mgda_weight", "pair_weight", "ultragcn_betas",
           "EnvironmentSplit", "estimate_memory", "identify_environments", "random_environments",
           "ConvertGradient", "attention_weights", "convert_item_vectors", "convert_loss_grad",
           "InvRL", "PaInvRL"]
