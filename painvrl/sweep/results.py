"""Reading a sweep back: ``load_sweep`` (rows) and ``summarise`` (mean ± std, paired tests).

``summarise`` is :func:`painvrl.compare.summarize` applied per (dataset, params) group,
and its tests are :func:`painvrl.compare.paired_test` with seeds as the pairing unit.
"""
from __future__ import annotations

import json
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from .cell import MEASURED_COLUMNS, PROVENANCE_COLUMNS
from .store import SweepStore

__all__ = ["load_sweep", "summarise", "PARAM_PREFIX"]

PARAM_PREFIX = "param_"


def load_sweep(store="results.parquet") -> pd.DataFrame:
    """Every stored row of a sweep, one column per parameter added.

    Parameters
    ----------
    store : path
        A :func:`run_sweep` store.

    Returns
    -------
    pandas.DataFrame
        The rows of :func:`painvrl.sweep.run_cell` for every stored cell (sorted
        by cell key; the measured and provenance columns last), plus one
        ``param_<name>`` column per parameter found in the ``params`` JSON (None
        where a cell does not set it).
    """
    df = SweepStore(store).read()
    tail = [c for c in (*MEASURED_COLUMNS, *PROVENANCE_COLUMNS) if c in df.columns]
    df = df[[c for c in df.columns if c not in tail] + tail]  # cells may add their own columns
    parsed = [json.loads(p) for p in df["params"]]
    names = sorted({k for p in parsed for k in p})
    for name in names:
        df[PARAM_PREFIX + name] = [p.get(name) for p in parsed]
    return df


def summarise(df: pd.DataFrame, *, reference: Optional[str] = None, test: str = "t",
              by: Sequence[str] = (), digits: int = 4) -> pd.DataFrame:
    """Mean ± std over seeds per (dataset, model, params), and paired tests against a model.

    Parameters
    ----------
    df : DataFrame
        :func:`load_sweep` output (estimator rows: ``split``, ``metric``, ``k``,
        ``value``).
    reference : str, optional
        A model name: every other (model, params) is tested against it, per
        (dataset, split, metric, k), paired on seed (the reference must have one
        setting per dataset; filter ``df`` first otherwise).
    test : {"t", "wilcoxon"}, default "t"
        The test of :func:`painvrl.compare.paired_test` (two-sided).
    by : sequence of str
        Extra columns that split a cell's rows into groups (e.g. an entry point's
        ``variant`` or ``preference``); ``variant`` is used whenever present.
    digits : int
        Decimals of the ``text`` column.

    Returns
    -------
    pandas.DataFrame
        ``dataset``, ``params``, the ``by`` columns, then the columns of
        :func:`painvrl.compare.summarize` (``model``, ``split``, ``metric``, ``k``,
        ``mean``, ``std``, ``n_seeds``, ``text``); with ``reference`` also
        ``diff`` (mean difference to the reference over paired seeds), ``pvalue``
        and ``n_pairs`` (NaN for the reference itself and when fewer than 2 seeds pair).
    """
    from ..evaluation.compare import summarize

    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"summarise: df must be a DataFrame (load_sweep output), got "
                        f"{type(df).__name__}")
    by = list(by) + (["variant"] if "variant" in df.columns and "variant" not in by else [])
    missing = [c for c in ["dataset", "model", "params", "seed", "metric", "k", "value", *by]
               if c not in df.columns]
    if missing:
        raise ValueError(f"summarise: df lacks the column(s) {missing}")
    groups = ["dataset", "params", *by]
    parts = []
    for values, sub in df.groupby(groups, sort=False, dropna=False):
        out = summarize(sub, digits=digits)
        for i, (name, value) in enumerate(zip(groups, values)):
            out.insert(i, name, value)
        parts.append(out)
    table = pd.concat(parts, ignore_index=True)
    if reference is not None:
        table = _paired(df, table, reference, test, by)
    return table


def _paired(df, table, reference: str, test: str, by) -> pd.DataFrame:
    """``diff``, ``pvalue``, ``n_pairs`` of each row against ``reference``, seeds paired."""
    from ..evaluation.stats import paired_test

    if reference not in set(df["model"]):
        raise ValueError(f"summarise: reference {reference!r} is not a model of df "
                         f"({sorted(set(df['model']))})")
    split = ["split"] if "split" in df.columns else []
    ref = df[df["model"] == reference]
    settings = ref.groupby("dataset")["params"].nunique()
    if (settings > 1).any():
        raise ValueError(f"summarise: reference {reference!r} has several parameter settings on "
                         f"{list(settings[settings > 1].index)}; filter df to one first")
    cell_keys = ["dataset", "model", "params", *by, *split, "metric", "k"]
    ref_keys = ["dataset", *split, "metric", "k"]
    ref_series = {key: sub.set_index("seed")["value"] for key, sub in ref.groupby(ref_keys)}
    diffs, pvalues, pairs = [], [], []
    for row in table.itertuples(index=False):
        r = row._asdict()
        other = ref_series.get(tuple(r[c] for c in ref_keys))
        mine = df.loc[np.logical_and.reduce([df[c] == r[c] for c in cell_keys]),
                      ["seed", "value"]].set_index("seed")["value"]
        if r["model"] == reference or other is None \
                or len(mine.index.intersection(other.index)) < 2:
            diffs.append(np.nan), pvalues.append(np.nan), pairs.append(0)
            continue
        res = paired_test(mine, other, test=test)
        diffs.append(res.mean_diff), pvalues.append(res.pvalue), pairs.append(res.n)
    return table.assign(diff=diffs, pvalue=pvalues, n_pairs=pairs)
