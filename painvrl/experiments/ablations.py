"""The ablations of method.md §6.5 in one call: each PaInvRL component switched off in
turn, from one shared backbone per seed, scored IID and OOD on validation and test."""
from __future__ import annotations

import time
from typing import Any, Dict, Sequence

import pandas as pd

from .._util.progress import progress_bar
from .._util.validation import check_seed
from ..invariance.pipeline import InvRL, PaInvRL
from .pareto import pretraining_backbone
from .targets import evaluation_splits, gamma_summary, score

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
    ks, metrics
        Scored on IID/OOD validation and test.
    **pipeline_params
        Passed to every pipeline (schedule, sizes, ``n_threads``, ...).

    Returns
    -------
    pandas.DataFrame
        One row per (variant, seed): ``variant``, ``seed``, ``gamma_mean``,
        ``gamma_last``, ``fit_seconds`` and one column per
        ``{iid,ood}_{val,test}_{metric}@{k}``.
    """
    f = "ablations"
    targets = evaluation_splits(dataset, split, f)
    seeds = [check_seed(s, f"seeds[{i}]", func=f) for i, s in enumerate(seeds)]
    if not seeds:
        raise ValueError(f"{f}: seeds must name at least one seed")
    variants = list(variants)
    unknown = [v for v in variants if v not in ABLATIONS]
    if unknown or not variants:
        raise ValueError(f"{f}: variants must be a non-empty subset of {list(ABLATIONS)}, "
                         f"got unknown {unknown}" if unknown else f"{f}: variants is empty")
    fixed = sorted(set(pipeline_params) & {"seed", "progress", "identification", "fusion"})
    if fixed:
        raise ValueError(f"{f}: {fixed} are set per variant; remove them")
    unknown = sorted(set(pipeline_params) - set(PaInvRL._param_names()))
    if unknown:
        raise TypeError(f"{f}: unknown pipeline parameters {unknown}")
    rows = []
    with progress_bar(progress, total=len(seeds) * (len(variants) + 1), desc=f) as bar:
        for seed in seeds:
            start = time.perf_counter()
            backbone = pretraining_backbone(pipeline_params, seed).fit(dataset)
            rows.append(_row("backbone", seed, backbone, start, targets, ks, metrics))
            bar.update()
            for name in variants:
                cls, switch = ABLATIONS[name]
                params = dict(pipeline_params, **switch, seed=seed, progress=False)
                if cls is InvRL:
                    params = {k: v for k, v in params.items() if k in InvRL._param_names()}
                start = time.perf_counter()
                model = cls(**params).fit(dataset, pretrained=backbone)
                rows.append(_row(name, seed, model, start, targets, ks, metrics))
                bar.update()
    return pd.DataFrame(rows)


def _row(name: str, seed: int, model, start: float, targets, ks, metrics) -> Dict[str, Any]:
    return dict(variant=name, seed=seed, **gamma_summary(model),
                fit_seconds=time.perf_counter() - start, **score(model, targets, ks, metrics))
