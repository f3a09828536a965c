"""Several pipeline settings side by side from one backbone per seed: the engine of
:func:`painvrl.ablations` and of any comparison of settings (weighting rules,
normalisations, fusions), scored IID and OOD on validation and test."""
from __future__ import annotations

import time
from typing import Any, Dict, Mapping, Sequence, Tuple, Type

import pandas as pd

from .._util.progress import progress_bar
from .._util.validation import check_seed
from ..invariance.pipeline import InvRL, PaInvRL
from .pareto import pretraining_backbone
from .targets import evaluation_splits, gamma_summary, score

__all__ = ["compare_settings"]

Setting = Tuple[Type[InvRL], Dict[str, Any]]


def compare_settings(dataset, split, settings: Mapping[str, Setting], *,
                     seeds: Sequence[int] = (0, 1, 2, 3, 4), ks: Sequence[int] = (10, 20),
                     metrics: Sequence[str] = ("recall", "ndcg"), progress: bool = True,
                     func: str = "compare_settings", **pipeline_params) -> pd.DataFrame:
    """Fit every setting on every seed from that seed's backbone and score it.

    Parameters
    ----------
    dataset, split
        As :func:`painvrl.pareto_front`: the dataset and an object holding
        ``ood_val`` and ``ood_test``.
    settings : dict name -> (InvRL or PaInvRL, dict of parameters)
        The parameters override ``pipeline_params`` for that setting only.
    seeds, ks, metrics, progress
    **pipeline_params
        Shared by every setting (schedule, sizes, ``n_threads``, ...); they also
        define the backbone (the pipelines' pre-training stage), fitted once per seed.

    Returns
    -------
    pandas.DataFrame
        One row per (setting, seed), the backbone first as "backbone": ``variant``,
        ``seed``, ``gamma_mean``, ``gamma_last``, ``fit_seconds`` and one column per
        ``{iid,ood}_{val,test}_{metric}@{k}``.
    """
    f = func
    targets = evaluation_splits(dataset, split, f)
    seeds = [check_seed(s, f"seeds[{i}]", func=f) for i, s in enumerate(seeds)]
    if not seeds:
        raise ValueError(f"{f}: seeds must name at least one seed")
    if not isinstance(settings, Mapping) or not settings:
        raise ValueError(f"{f}: settings must be a non-empty dict name -> (class, params)")
    fixed = sorted(set(pipeline_params) & {"seed", "progress"})
    if fixed:
        raise ValueError(f"{f}: {fixed} are set per seed; remove them")
    for name, (cls, params) in settings.items():
        if cls not in (InvRL, PaInvRL):
            raise TypeError(f"{f}: settings[{name!r}] must use InvRL or PaInvRL, got {cls!r}")
        unknown = sorted((set(params) | set(pipeline_params)) - set(cls._param_names()))
        if unknown:
            raise TypeError(f"{f}: unknown parameters {unknown} for settings[{name!r}] "
                            f"({cls.__name__})")
    rows = []
    with progress_bar(progress, total=len(seeds) * (len(settings) + 1), desc=f) as bar:
        for seed in seeds:
            start = time.perf_counter()
            backbone = pretraining_backbone(pipeline_params, seed).fit(dataset)
            rows.append(_row("backbone", seed, backbone, start, targets, ks, metrics))
            bar.update()
            for name, (cls, params) in settings.items():
                start = time.perf_counter()
                model = cls(**dict(pipeline_params, **params, seed=seed, progress=False))
                model.fit(dataset, pretrained=backbone)
                rows.append(_row(name, seed, model, start, targets, ks, metrics))
                bar.update()
    return pd.DataFrame(rows)


def _row(name: str, seed: int, model, start: float, targets, ks, metrics) -> Dict[str, Any]:
    return dict(variant=name, seed=seed, **gamma_summary(model),
                fit_seconds=time.perf_counter() - start, **score(model, targets, ks, metrics))
