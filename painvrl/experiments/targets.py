"""The four ground truths an OOD experiment scores against, and scoring one model on them.

A split for :func:`painvrl.pareto_front` and :func:`painvrl.ablations` is the dataset
(train / IID validation / IID test) plus an object with ``ood_val`` and ``ood_test``
(UserItemCSR), as :func:`painvrl.splits.hold_out_environments` with an OOD validation
environment and :func:`painvrl.datasets.load_coat` return, or a dict with those keys.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Sequence, Tuple

import numpy as np
import pandas as pd

from ..data.csr import UserItemCSR
from ..data.dataset import Dataset
from ..evaluation.compare import compare


def _ood_part(split: Any, name: str, func: str) -> UserItemCSR:
    value = split.get(name) if isinstance(split, Mapping) else getattr(split, name, None)
    if value is None:
        hint = (" (an OOD validation set held out apart from the OOD test: "
                "splits.hold_out_environments(..., val_holdout=1) or datasets.load_coat())"
                if name == "ood_val" else "")
        raise ValueError(f"{func}: split must provide {name}{hint}; got "
                         f"{type(split).__name__} without it")
    if not isinstance(value, UserItemCSR):
        raise TypeError(f"{func}: split.{name} must be a UserItemCSR, got "
                        f"{type(value).__name__}")
    return value


def evaluation_splits(dataset: Dataset, split: Any, func: str) -> Dict[str, Tuple[Dataset, Any]]:
    """``{"iid_val": (dataset, "val"), "ood_val": ..., "iid_test": ..., "ood_test": ...}``
    for :func:`painvrl.compare.compare`, checked once."""
    if not isinstance(dataset, Dataset):
        raise TypeError(f"{func}: dataset must be a painvrl.Dataset, got "
                        f"{type(dataset).__name__}")
    own = None if isinstance(split, Mapping) else getattr(split, "dataset", None)
    if own is not None and own is not dataset:
        raise ValueError(f"{func}: split.dataset is not the dataset given; pass the split's "
                         f"own dataset (split.dataset)")
    for part in ("val", "test"):
        if getattr(dataset, part).nnz == 0:
            raise ValueError(f"{func}: dataset.{part} is empty; the IID {part} metrics need it")
    ood = {name: _ood_part(split, name, func) for name in ("ood_val", "ood_test")}
    for name, csr in ood.items():
        if (csr.n_users, csr.n_items) != (dataset.n_users, dataset.n_items):
            raise ValueError(f"{func}: split.{name} is {csr.n_users} x {csr.n_items}, the "
                             f"dataset {dataset.n_users} x {dataset.n_items}")
        if csr.nnz == 0:
            raise ValueError(f"{func}: split.{name} holds no pair")
    return {"iid_val": (dataset, "val"), "ood_val": (dataset, ood["ood_val"]),
            "iid_test": (dataset, "test"), "ood_test": (dataset, ood["ood_test"])}


def score(model, targets: Dict[str, Tuple[Dataset, Any]], ks: Sequence[int],
          metrics: Sequence[str], n_threads=None) -> Dict[str, float]:
    """``{"ood_test_recall@20": value, ...}``: one model on every target."""
    df = compare({"m": model}, targets, ks=ks, metrics=metrics, n_threads=n_threads)
    return {f"{row.split}_{row.metric}@{row.k}": float(row.value)
            for row in df.itertuples(index=False)}


def score_per_user(model, targets: Dict[str, Tuple[Dataset, Any]], ks: Sequence[int],
                   metrics: Sequence[str], n_threads=None) -> pd.DataFrame:
    """Per-user values on the two test targets (columns split, user, metric@k...)."""
    tests = {k: v for k, v in targets.items() if k.endswith("_test")}
    df = compare({"m": model}, tests, ks=ks, metrics=metrics, per_user=True,
                 n_threads=n_threads)
    return df.drop(columns="model")


def gamma_summary(model) -> Dict[str, float]:
    """Mean and last value of a pipeline's per-step weighting gamma, and the mean ERM
    share of its raw-gradient coefficients (NaN for a model with no mask stage)."""
    results = getattr(model, "mask_results_", None)
    if not results:
        return {"gamma_mean": np.nan, "gamma_last": np.nan, "erm_share_mean": np.nan}
    steps = np.concatenate([r.gamma_steps for r in results])
    shares = [r.erm_share_steps for r in results if r.erm_share_steps is not None]
    share = float(np.concatenate(shares).mean()) if shares else np.nan
    return {"gamma_mean": float(steps.mean()), "gamma_last": float(results[-1].gamma[-1]),
            "erm_share_mean": share}
