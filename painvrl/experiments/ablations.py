"""The ablations of method.md §6.5 in one call: each PaInvRL component switched off in
turn, from one shared backbone per seed, scored IID and OOD on validation and test."""
from __future__ import annotations

from typing import Dict, Sequence

import pandas as pd

from ..invariance.pipeline import InvRL, PaInvRL
from .settings import compare_settings

__all__ = ["ABLATIONS", "ablations"]

# variant name -> (estimator class, parameters that switch the component off)
ABLATIONS: Dict[str, tuple] = {
    "PaInvRL": (PaInvRL, {}),
    "w/o identification": (PaInvRL, {"identification": "random"}),
    "w/o Pareto weighting": (PaInvRL, {"weighting": "fixed"}),
    "w/o variant part": (PaInvRL, {"fusion": "invariant"}),
    "w/o attention": (PaInvRL, {"fusion": "global"}),
    "InvRL": (InvRL, {}),
}


def ablations(dataset, split, *, seeds: Sequence[int] = (0, 1, 2, 3, 4),
              variants: Sequence[str] = tuple(ABLATIONS), ks: Sequence[int] = (10, 20),
              metrics: Sequence[str] = ("recall", "ndcg"), progress: bool = True,
              **pipeline_params) -> pd.DataFrame:
    """PaInvRL with one component removed at a time (method.md §6.5), over seeds.

    Variants (``ABLATIONS``): the full model; "w/o identification" (uniformly random
    environments instead of §2.1's); "w/o Pareto weighting" (InvRL's fixed alpha in
    the mask step); "w/o variant part" (InvRL's convert: invariant features only);
    "w/o attention" (two global fusion weights instead of per-item attention); and
    InvRL itself.  Every variant of a seed starts from the same pre-trained backbone
    (also reported, as "backbone").

    Parameters
    ----------
    dataset, split
        As :func:`painvrl.pareto_front`: the dataset and an object holding
        ``ood_val`` and ``ood_test``.
    seeds : sequence of int
    variants : sequence of str
        A subset of ``ABLATIONS``' names.
    ks, metrics, progress
    **pipeline_params
        Passed to every pipeline (schedule, sizes, ``n_threads``, ...); PaInvRL-only
        parameters are not given to InvRL.

    Returns
    -------
    pandas.DataFrame
        As :func:`painvrl.experiments.compare_settings`: one row per (variant,
        seed), the backbone first.
    """
    f = "ablations"
    variants = list(variants)
    unknown = [v for v in variants if v not in ABLATIONS]
    if unknown or not variants:
        raise ValueError(f"{f}: variants must be a non-empty subset of {list(ABLATIONS)}"
                         + (f", got unknown {unknown}" if unknown else ", got none"))
    fixed = sorted(set(pipeline_params) & {"identification", "fusion", "weighting"})
    if fixed:
        raise ValueError(f"{f}: {fixed} are set per variant; remove them")
    shared = {k: v for k, v in pipeline_params.items() if k in InvRL._param_names()}
    own = {k: v for k, v in pipeline_params.items() if k not in shared}
    settings = {}
    for name in variants:
        cls, switch = ABLATIONS[name]
        settings[name] = (cls, dict(own, **switch) if cls is PaInvRL else dict(switch))
    return compare_settings(dataset, split, settings, seeds=seeds, ks=ks, metrics=metrics,
                            progress=progress, func=f, **shared)
