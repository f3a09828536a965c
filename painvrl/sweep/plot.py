"""Plots of a sweep: a metric against a parameter, and IID-vs-OOD fronts (needs matplotlib)."""
from __future__ import annotations

from typing import Optional, Tuple

import pandas as pd

from .results import PARAM_PREFIX

__all__ = ["plot_metric", "plot_front"]


def _axes(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(5, 3.5))
    return ax


def _select(df: pd.DataFrame, split: str, metric: str, k: int, func: str) -> pd.DataFrame:
    for col in ("split", "metric", "k", "value", "seed", "dataset", "model"):
        if col not in df.columns:
            raise ValueError(f"{func}: df lacks the column {col!r} (pass load_sweep output)")
    sub = df[(df["split"] == split) & (df["metric"] == metric) & (df["k"] == k)]
    if sub.empty:
        raise ValueError(f"{func}: no rows with split={split!r}, metric={metric!r}, k={k}")
    return sub


def plot_metric(df: pd.DataFrame, param: str, *, split: str = "ood", metric: str = "recall",
                k: int = 20, ax=None):
    """One metric against one parameter: a line per (dataset, model), mean ± std over seeds.

    Parameters
    ----------
    df : DataFrame
        :func:`painvrl.sweep.load_sweep` output.
    param : str
        A parameter name (its ``param_<name>`` column; numeric values for a line).
    split, metric, k
        The row set to plot.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
    """
    col = PARAM_PREFIX + param
    if col not in df.columns:
        raise ValueError(f"plot_metric: no parameter {param!r} in df (columns "
                         f"{[c for c in df.columns if c.startswith(PARAM_PREFIX)]})")
    sub = _select(df, split, metric, k, "plot_metric").dropna(subset=[col])
    ax = _axes(ax)
    for (dataset, model), g in sub.groupby(["dataset", "model"], sort=False):
        stats = g.groupby(col)["value"].agg(["mean", "std"]).sort_index()
        ax.errorbar(stats.index, stats["mean"], yerr=stats["std"].fillna(0.0), marker="o",
                    capsize=3, label=f"{model} ({dataset})")
    ax.set_xlabel(param)
    ax.set_ylabel(f"{split} {metric}@{k} (mean ± std over seeds)")
    ax.legend(fontsize="small")
    return ax


def plot_front(df: pd.DataFrame, *, x: Tuple[str, str, int] = ("iid", "recall", 20),
               y: Tuple[str, str, int] = ("ood", "recall", 20), label: Optional[str] = None,
               ax=None):
    """Each (dataset, model, setting) as a point: mean ``x`` metric against mean ``y`` metric.

    The fronts of a Pareto sweep: with PaInvRL swept over preferences (or an entry
    point's ``variant`` rows), the points trace its IID/OOD trade-off beside the
    other models.

    Parameters
    ----------
    df : DataFrame
        :func:`painvrl.sweep.load_sweep` output.
    x, y : (split, metric, k)
    label : str, optional
        Column naming each point (default: the model, with ``variant`` and the
        parameter setting when they vary).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
    """
    keys = ["dataset", "model", "params"] + (["variant"] if "variant" in df.columns else [])
    means = []
    for axis, (split, metric, k) in (("x", x), ("y", y)):
        sub = _select(df, split, metric, k, "plot_front")
        means.append(sub.groupby(keys, dropna=False)["value"].mean().rename(axis))
    points = pd.concat(means, axis=1).dropna().reset_index()
    ax = _axes(ax)
    for model, g in points.groupby("model", sort=False):
        g = g.sort_values("x")
        ax.plot(g["x"], g["y"], marker="o", label=model)
        for row in g.itertuples(index=False):
            text = getattr(row, label) if label else (
                getattr(row, "variant", "") or (row.params if row.params != "{}" else ""))
            if text:
                ax.annotate(str(text), (row.x, row.y), fontsize="x-small")
    ax.set_xlabel(f"{x[0]} {x[1]}@{x[2]}")
    ax.set_ylabel(f"{y[0]} {y[1]}@{y[2]}")
    ax.legend(fontsize="small")
    return ax
