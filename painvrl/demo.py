"""The newcomer's demo: PaInvRL against InvRL and the backbone, in and out of distribution.

``python -m painvrl`` (or ``python -m painvrl demo``) runs :func:`run` and prints
:func:`summary_table`; this module holds its pieces so they can be used and
tested on their own:

1. :func:`build_split` makes one seed's data: train / val / IID test from the
   environments seen in training, and an OOD test of held-out environments
   (:func:`painvrl.splits.hold_out_environments`, method.md §6.2, our
   construction of the paper's cross-environment test).
2. :func:`run_seed` fits the backbone (early stopping on validation), then InvRL
   and PaInvRL from that same backbone as their pre-trained stage, and scores all
   three on both tests by full ranking, training items excluded.
3. :func:`run` repeats it over seeds; :func:`summary_table`, :func:`verdict` and
   :func:`plot` turn the runs into the table (mean ± std over seeds), a few
   plain sentences and a PNG.

Two data sets:

* ``"planted"`` (default, generated, no download):
  :func:`painvrl.datasets.make_spurious` with three planted environments whose
  spurious effects are +1, -1, -1 and weights 3 : 1 : 1.  The last one is held out
  as the OOD test, so training sees a spurious preference that is positive on
  balance and the OOD test flips it: a model leaning on the spurious feature
  columns loses there.  The pipelines identify their own environments on the
  training data; they never see the planted labels.  The construction and the
  schedule are those of ``benchmarks/planted_pareto.py``.
* ``"lastfm"``: Last.fm 2K with real text and audio features
  (:func:`painvrl.datasets.load_lastfm`).  Per seed, every interaction is
  labelled by environment identification (§2.1) on all pairs pooled, and the two
  environments farthest from the rest are held out as the OOD test (the
  construction of ``benchmarks/lastfm_results.py``), with a shorter schedule.
"""
from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

import painvrl

__all__ = ["Schedule", "SCHEDULES", "DemoResult", "build_split", "load_data", "fit_models",
           "run_seed", "run", "summary_table", "verdict", "plot", "describe", "format_seconds",
           "MODELS", "SPLITS", "COLUMNS"]

MODELS = ("backbone", "InvRL", "PaInvRL")
SPLITS = {"iid": "IID", "ood": "OOD"}
METRICS = ("recall", "ndcg")
KS = (10, 20)
COLUMNS = ("Recall@10", "Recall@20", "NDCG@10", "NDCG@20")


@dataclass(frozen=True)
class Schedule:
    """Data and training schedule of one demo data set.

    Parameters
    ----------
    dataset : {"planted", "lastfm"}
    data : dict
        ``"planted"``: keyword arguments of
        :func:`painvrl.datasets.make_spurious` (its ``seed`` is the run's seed).
        ``"lastfm"``: keyword arguments of :func:`painvrl.identify_environments`
        for the labels the OOD split is built from.
    holdout : dict
        Keyword arguments of :func:`painvrl.splits.hold_out_environments`.
    backbone : dict
        Keyword arguments of :class:`painvrl.Backbone` (the baseline and the
        pipelines' stage 0).
    pipeline : dict
        Keyword arguments shared by :class:`painvrl.InvRL` and
        :class:`painvrl.PaInvRL`.
    n_threads : int or None
        Default threads of the C kernels (None: all cores).  The planted data
        are so small that one thread is fastest: a parallel region per batch
        costs more than it saves, and far more when other processes share the
        cores.
    """

    dataset: str
    data: Dict[str, Any]
    holdout: Dict[str, Any]
    backbone: Dict[str, Any]
    pipeline: Dict[str, Any]
    n_threads: Optional[int] = None

    def with_overrides(self, *, max_epochs: Optional[int] = None, reg: Optional[str] = None,
                       scale: Optional[float] = None) -> "Schedule":
        """A copy with the maximum epochs, the L2 scope or the planted data's size changed.

        Parameters
        ----------
        max_epochs : int, optional
            Maximum epochs of the backbone and of the pipelines' final models.
        reg : {"full", "batch"}, optional
            L2 scope of every stage (see :class:`painvrl.Backbone`).
        scale : float, optional
            Planted data only: multiply its users, items and interactions by
            ``scale`` (the schedule stays as it is).

        Returns
        -------
        Schedule
        """
        extra = {k: v for k, v in (("max_epochs", max_epochs), ("reg", reg)) if v is not None}
        data = dict(self.data)
        if reg is not None and self.dataset == "lastfm":
            data["reg"] = reg
        if scale is not None:
            if self.dataset != "planted":
                raise ValueError("with_overrides: scale applies to the planted data only")
            if not scale > 0:
                raise ValueError(f"with_overrides: scale must be > 0, got {scale!r}")
            for key in ("n_users", "n_items", "n_interactions"):
                data[key] = max(1, int(round(data[key] * scale)))
        return dataclasses.replace(self, data=data, backbone={**self.backbone, **extra},
                                   pipeline={**self.pipeline, **extra})


_SMALL = dict(d_id=16, d_content=16, n_neg=10, batch_size=256, eval_every=5)
_FAST_LR = dict(emb_lr=1e-2, proj_lr=1e-2)

SCHEDULES: Dict[str, Schedule] = {
    # benchmarks/planted_pareto.py's data, split and schedule (tests/test_pareto_claim.py
    # pins its result); make_spurious's default size: 600 users, 400 items, 24,000 pairs.
    "planted": Schedule(
        dataset="planted",
        data=dict(n_users=600, n_items=400, n_interactions=24_000, n_envs=3,
                  spurious_effect=(1.0, -1.0, -1.0), env_weights=(3, 1, 1)),
        holdout=dict(holdout=[2]),
        backbone=dict(max_epochs=100, patience=3, **_FAST_LR, **_SMALL),
        pipeline=dict(n_envs=2, n_outer=2, env_epochs=5, env_rounds=3, mask_epochs=20,
                      max_epochs=100, patience=3, final_patience=4, backbone_params=_FAST_LR,
                      **_SMALL),
        n_threads=1),
    # benchmarks/lastfm_results.py's construction, with a shorter schedule: one outer
    # iteration instead of two, identification 2 rounds x 5 epochs (split: 2 x 5),
    # 5 mask epochs, patience 3 checks.
    "lastfm": Schedule(
        dataset="lastfm",
        data=dict(n_envs=10, epochs=5, max_rounds=2, reg="batch"),
        holdout=dict(holdout=2, which="farthest"),
        backbone=dict(reg="batch", max_epochs=200, patience=3, eval_every=5),
        pipeline=dict(n_envs=10, n_outer=1, env_epochs=5, env_rounds=2, mask_epochs=5,
                      max_epochs=200, patience=3, final_patience=3, eval_every=5,
                      reg="batch")),
}


@dataclass
class DemoResult:
    """What :func:`run` returns.

    Attributes
    ----------
    runs : pandas.DataFrame
        Tidy metrics: one row per (seed, model, split, metric, k), columns
        ``seed``, ``model``, ``split``, ``metric``, ``k``, ``value``, ``n_users``.
    per_user : pandas.DataFrame
        Per-user values (``seed``, ``model``, ``split``, ``user``, then one
        column per ``"metric@k"``), for paired tests.
    seconds : pandas.DataFrame
        Wall time per (seed, stage).
    schedule : Schedule
    seeds : list of int
    """

    runs: pd.DataFrame
    per_user: pd.DataFrame
    seconds: pd.DataFrame
    schedule: Schedule
    seeds: List[int] = field(default_factory=list)


# --------------------------------------------------------------------------- data

def load_data(schedule: Schedule, path: Optional[str] = None):
    """The data shared by every seed: the Last.fm Dataset, or None for planted data.

    Parameters
    ----------
    schedule : Schedule
    path : str, optional
        Folder holding ``lastfm2k-multimodal`` (see
        :func:`painvrl.datasets.load_lastfm`).

    Returns
    -------
    painvrl.Dataset or None
        Planted data are generated per seed by :func:`build_split`.
    """
    if schedule.dataset == "lastfm":
        return painvrl.datasets.load_lastfm(path)
    return None


def build_split(schedule: Schedule, seed: int, data=None, *, n_threads: Optional[int] = None,
                progress: bool = False):
    """One seed's train / val / IID test and held-out-environment OOD test.

    Parameters
    ----------
    schedule : Schedule
    seed : int
        Seeds the planted data (or the Last.fm identification) and the split.
    data : painvrl.Dataset, optional
        The Last.fm data (from :func:`load_data`); ignored for planted data.
    n_threads : int, optional
        Threads of the identification (Last.fm).
    progress : bool
        Show the identification's progress bar (Last.fm).

    Returns
    -------
    painvrl.splits.EnvironmentHoldout
        ``.dataset`` holds train / val / IID test, ``.ood_test`` the OOD pairs.
    """
    if schedule.dataset == "planted":
        ds, truth = painvrl.datasets.make_spurious(seed=seed, **schedule.data)
        labels = np.concatenate([truth.train_env, truth.val_env, truth.test_env])
    elif schedule.dataset == "lastfm":
        if data is None:
            raise ValueError("build_split: the Last.fm schedule needs data=load_data(schedule)")
        ds = data
        labels = painvrl.identify_environments(painvrl.splits.pooled(data), seed=seed,
                                               n_threads=n_threads, progress=progress,
                                               **schedule.data).labels
    else:
        raise ValueError(f"build_split: unknown dataset {schedule.dataset!r}")
    return painvrl.splits.hold_out_environments(ds, labels, seed=seed, **schedule.holdout)


def describe(schedule: Schedule, holdout) -> str:
    """One line on the data and the split, for the demo's header.

    Parameters
    ----------
    schedule : Schedule
    holdout : painvrl.splits.EnvironmentHoldout

    Returns
    -------
    str
    """
    ds, s = holdout.dataset, holdout.sizes
    held = ", ".join(str(e) for e in holdout.held_out)
    if schedule.dataset == "planted":
        effects = ", ".join(f"{c:+g}" for c in schedule.data.get("spurious_effect", ()))
        what = (f"planted invariant + spurious features, {schedule.data.get('n_envs', 2)} "
                f"planted environments (spurious effect {effects}), environment {held} held out")
    else:
        what = (f"Last.fm 2K text + audio features, identified environments {held} held out "
                f"(farthest from the rest)")
    return (f"{what}; {ds.n_users:,} users, {ds.n_items:,} items, {ds.features.shape[1]} "
            f"feature columns; train {s['train']:,} / val {s['val']:,} / IID test "
            f"{s['iid_test']:,} / OOD test {s['ood_test']:,} pairs")


# --------------------------------------------------------------------------- models

class _StageBar:
    """A bar over every stage of every seed; its label names the stage running now."""

    def __init__(self, total: int, show: bool):
        self.bar = None
        if show:
            from tqdm.auto import tqdm
            self.bar = tqdm(total=total, desc="demo", unit="stage", leave=True)

    def start(self, label: str) -> None:
        if self.bar is not None:
            self.bar.set_description(label)

    def done(self, label: Optional[str] = None) -> None:
        if self.bar is not None:
            self.bar.update(1)
            if label:
                self.bar.set_description(label)

    def write(self, log: Callable[[str], None], line: str) -> None:
        """``log(line)`` with the bars cleared first and redrawn after."""
        if self.bar is None:
            log(line)
        else:
            with self.bar.external_write_mode():
                log(line)

    def close(self) -> None:
        if self.bar is not None:
            if self.bar.n >= self.bar.total:
                self.bar.set_description("demo: done")
            self.bar.close()


def _stages_per_seed(schedule: Schedule) -> int:
    """split + backbone + two pipelines (identification and mask per outer, final) + eval."""
    return 3 + 2 * (2 * schedule.pipeline.get("n_outer", 5) + 1)


def _pipeline_callback(name: str, n_outer: int, prefix: str, bar: _StageBar):
    """``fit(callback=...)`` that moves ``bar`` on and names the next stage."""

    def callback(stage: str, info: Dict[str, Any]) -> None:
        outer = info.get("outer")
        if stage == "pretrain":
            nxt = f"environments 1/{n_outer}" if n_outer else "final model"
            bar.start(f"{prefix}{name}: {nxt}")
            return
        if stage == "environments":
            nxt = f"mask {outer + 1}/{n_outer}"
        elif stage == "mask":
            nxt = (f"environments {outer + 2}/{n_outer}" if outer + 1 < n_outer
                   else "final model")
        else:
            nxt = "done"
        bar.done(f"{prefix}{name}: {nxt}")

    return callback


def fit_models(dataset, schedule: Schedule, seed: int, *, n_threads: Optional[int] = None,
               progress: bool = False, bar: Optional[_StageBar] = None,
               prefix: str = "") -> Tuple[Dict[str, Any], Dict[str, float]]:
    """Fit the backbone, then InvRL and PaInvRL from it, on ``dataset``.

    Model selection (early stopping) uses ``dataset.val`` only.

    Parameters
    ----------
    dataset : painvrl.Dataset
    schedule : Schedule
    seed : int
    n_threads : int, optional
        Threads of the C kernels (results do not depend on it).
    progress : bool
        Show the estimators' own progress bars.
    bar : _StageBar, optional
        Moved on after every stage.
    prefix : str
        Label prefix of ``bar`` (e.g. ``"seed 0 "``).

    Returns
    -------
    models : dict of str to fitted model
        ``"backbone"``, ``"InvRL"``, ``"PaInvRL"``.
    seconds : dict of str to float
        Wall time of each model's fit.
    """
    bar = bar or _StageBar(0, False)
    common = dict(seed=seed, n_threads=n_threads, progress=progress)
    models, seconds = {}, {}
    bar.start(f"{prefix}backbone")
    start = time.perf_counter()
    models["backbone"] = painvrl.Backbone(**schedule.backbone, **common).fit(dataset)
    seconds["backbone"] = time.perf_counter() - start
    bar.done()
    n_outer = schedule.pipeline.get("n_outer", 5)
    for name, cls in (("InvRL", painvrl.InvRL), ("PaInvRL", painvrl.PaInvRL)):
        start = time.perf_counter()
        models[name] = cls(**schedule.pipeline, **common).fit(
            dataset, pretrained=models["backbone"],
            callback=_pipeline_callback(name, n_outer, prefix, bar))
        seconds[name] = time.perf_counter() - start
    return models, seconds


def run_seed(schedule: Schedule, seed: int, data=None, *, n_threads: Optional[int] = None,
             progress: bool = False, bar: Optional[_StageBar] = None,
             log: Optional[Callable[[str], None]] = None):
    """One seed: build the split, fit the three models, score them on IID and OOD.

    Parameters
    ----------
    schedule : Schedule
    seed : int
    data : painvrl.Dataset, optional
        From :func:`load_data` (Last.fm).
    n_threads : int, optional
    progress : bool
        Show the estimators' progress bars.
    bar : _StageBar, optional
    log : callable, optional
        Called with :func:`describe`'s line once the split is built.

    Returns
    -------
    table : pandas.DataFrame
        :func:`painvrl.compare.compare` output (model, split, metric, k, value,
        n_users) with a ``seed`` column first.
    per_user : pandas.DataFrame
        The same per user.
    seconds : dict of str to float
        Wall time of the split, of each model and of the evaluation.
    holdout : painvrl.splits.EnvironmentHoldout
    """
    bar = bar or _StageBar(0, False)
    prefix = f"seed {seed} "
    bar.start(f"{prefix}split")
    start = time.perf_counter()
    holdout = build_split(schedule, seed, data, n_threads=n_threads, progress=progress)
    seconds = {"split": time.perf_counter() - start}
    bar.done()
    if log is not None:
        bar.write(log, describe(schedule, holdout))
    models, fit_seconds = fit_models(holdout.dataset, schedule, seed, n_threads=n_threads,
                                     progress=progress, bar=bar, prefix=prefix)
    seconds.update(fit_seconds)
    bar.start(f"{prefix}evaluation")
    start = time.perf_counter()
    kw = dict(ks=KS, metrics=METRICS, n_threads=n_threads)
    table = painvrl.compare.compare(models, holdout.splits(), **kw)
    per_user = painvrl.compare.compare(models, holdout.splits(), per_user=True, **kw)
    seconds["evaluation"] = time.perf_counter() - start
    bar.done()
    table.insert(0, "seed", seed)
    per_user.insert(0, "seed", seed)
    return table, per_user, seconds, holdout


def run(schedule: Schedule, seeds: Sequence[int], *, data=None, n_threads: Optional[int] = None,
        progress: bool = True, log: Optional[Callable[[str], None]] = None) -> DemoResult:
    """:func:`run_seed` for every seed.

    Parameters
    ----------
    schedule : Schedule
    seeds : sequence of int
    data : painvrl.Dataset, optional
        From :func:`load_data` (Last.fm).
    n_threads : int, optional
    progress : bool
        Show progress bars (one over all stages, and the estimators' own).
    log : callable, optional
        Called with a line on the data (:func:`describe`) once the first seed's
        split is built.

    Returns
    -------
    DemoResult
    """
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("run: seeds must name at least one seed")
    bar = _StageBar(len(seeds) * _stages_per_seed(schedule), progress)
    tables, users, times = [], [], []
    try:
        for seed in seeds:
            table, per_user, seconds, _ = run_seed(
                schedule, seed, data, n_threads=n_threads, progress=progress, bar=bar,
                log=log if seed == seeds[0] else None)
            tables.append(table)
            users.append(per_user)
            times.extend({"seed": seed, "stage": k, "seconds": v}
                         for k, v in seconds.items())
    finally:
        bar.close()
    return DemoResult(runs=pd.concat(tables, ignore_index=True),
                      per_user=pd.concat(users, ignore_index=True),
                      seconds=pd.DataFrame(times), schedule=schedule, seeds=seeds)


# --------------------------------------------------------------------------- report

def summary_table(runs: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """Mean ± std over seeds: one row per (split, model), one column per metric@K.

    Parameters
    ----------
    runs : pandas.DataFrame
        :attr:`DemoResult.runs`.
    digits : int
        Decimals.

    Returns
    -------
    pandas.DataFrame
        Columns ``model``, ``split`` (``"IID"``, ``"OOD"``) and
        :data:`COLUMNS`; IID rows first, models in :data:`MODELS` order.
    """
    wide = painvrl.compare.summarize(runs, digits=digits, wide=True)
    wide = wide.rename(columns={f"{m}@{k}": f"{'NDCG' if m == 'ndcg' else m.capitalize()}@{k}"
                                for m in METRICS for k in KS})
    order = {(s, m): i for i, (s, m) in enumerate((s, m) for s in SPLITS for m in MODELS)}
    wide = wide.assign(_order=[order.get((s, m), len(order))
                               for s, m in zip(wide["split"], wide["model"])])
    wide = wide.sort_values("_order", kind="stable").drop(columns="_order")
    wide["split"] = wide["split"].map(SPLITS).fillna(wide["split"])
    return wide[["model", "split", *COLUMNS]].reset_index(drop=True)


def _means(runs: pd.DataFrame, metric: str, k: int) -> pd.DataFrame:
    """Mean and std over seeds of one metric, indexed by (model, split)."""
    sel = runs[(runs.metric == metric) & (runs.k == k)]
    return sel.groupby(["model", "split"])["value"].agg(["mean", "std"])


def verdict(result: DemoResult, metric: str = "recall", k: int = 20) -> List[str]:
    """Plain sentences on the table: does PaInvRL beat InvRL and the backbone?

    For each split, PaInvRL's mean minus each other model's, and a paired
    two-sided Wilcoxon test over users (pooled over seeds) with
    :func:`painvrl.compare.paired_test`.

    Parameters
    ----------
    result : DemoResult
    metric : str
    k : int

    Returns
    -------
    list of str
    """
    col = f"{metric}@{k}"
    label = f"{'NDCG' if metric == 'ndcg' else metric.capitalize()}@{k}"
    means = _means(result.runs, metric, k)
    users = result.per_user.assign(user=result.per_user.seed * 10**7 + result.per_user.user)
    lines = []
    for split, name in SPLITS.items():
        parts = []
        for other in ("InvRL", "backbone"):
            diff = means.loc[("PaInvRL", split), "mean"] - means.loc[(other, split), "mean"]
            a = users[(users.model == "PaInvRL") & (users.split == split)]
            b = users[(users.model == other) & (users.split == split)]
            p = painvrl.compare.paired_test(a, b, metric=col).pvalue
            word = "above" if diff > 0 else "below" if diff < 0 else "equal to"
            sig = "significant" if p < 0.05 else "not significant"
            parts.append(f"{word} {other} by {abs(diff):.4f} (paired Wilcoxon p = {p:.2g}, "
                         f"{sig} at 5 %)")
        lines.append(f"{name} {label}: PaInvRL is " + "; ".join(parts) + ".")
    ood = means.xs("ood", level="split")["mean"]
    best = ood.idxmax()
    lines.append(f"Best out of distribution: {best} ({ood[best]:.4f})"
                 + ("." if best == "PaInvRL" else "; PaInvRL does not beat it on this data."))
    return lines


def plot(result: DemoResult, path: str, *, metric: str = "recall", k: int = 20) -> Optional[str]:
    """IID and OOD ``metric@k`` per model: mean ± std over seeds, and each seed.

    Two panels, in distribution and out of distribution, each with its own
    y axis (the OOD values are much lower); thin grey lines join the models of
    one seed, so a paired difference shows even when the seeds spread more
    than the models.

    Parameters
    ----------
    result : DemoResult
    path : str
        PNG to write.
    metric : str
    k : int

    Returns
    -------
    str or None
        The absolute path written, or None when matplotlib is not installed
        (then nothing is written).
    """
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    label = f"{'NDCG' if metric == 'ndcg' else metric.capitalize()}@{k}"
    sel = result.runs[(result.runs.metric == metric) & (result.runs.k == k)]
    names = [m for m in MODELS if m in set(sel.model)]
    means = _means(result.runs, metric, k)
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 4.6), dpi=120)
    for ax, (split, title) in zip(axes, (("iid", "in distribution (IID test)"),
                                         ("ood", "out of distribution (held-out environments)"))):
        _plot_split(ax, sel[sel.split == split], means.xs(split, level="split"), names)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(f"{label} ({SPLITS[split]} test)")
    n = len(result.seeds)
    data = "planted data" if result.schedule.dataset == "planted" else "Last.fm 2K"
    fig.suptitle(f"{data}: {label}, mean ± std over {n} seed{'s' if n != 1 else ''} "
                 f"(higher is better)", fontsize=11)
    handles, labels = axes[1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=9,
               frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    path = os.path.abspath(path)
    fig.savefig(path)
    plt.close(fig)
    return path


_COLOURS = {"backbone": "#7f7f7f", "InvRL": "#1f77b4", "PaInvRL": "#d62728"}
_MARKERS = {"backbone": "s", "InvRL": "^", "PaInvRL": "o"}


def _plot_split(ax, sel: pd.DataFrame, means: pd.DataFrame, names: Sequence[str]) -> None:
    """One panel of :func:`plot`: seeds as grey lines, models as mean ± std."""
    x = np.arange(len(names))
    per_seed = sel.pivot_table(index="seed", columns="model", values="value")[names]
    for i, (_, row) in enumerate(per_seed.iterrows()):
        ax.plot(x, row.to_numpy(), color="0.6", linewidth=0.8, marker=".", markersize=5,
                alpha=0.7, zorder=1, label="one seed" if i == 0 else None)
    for j, name in enumerate(names):
        m, s = means.loc[name, "mean"], np.nan_to_num(means.loc[name, "std"])
        ax.errorbar(j, m, yerr=s, color=_COLOURS[name], marker=_MARKERS[name], markersize=9,
                    capsize=5, linewidth=2, markeredgecolor="white", zorder=3,
                    label=f"{name} (mean ± std)")
        ax.annotate(f"{m:.3f}", (j, m), xytext=(10, 0), textcoords="offset points",
                    va="center", fontsize=9, color=_COLOURS[name])
    ax.set_xticks(x)
    ax.set_xticklabels(names)
    ax.set_xlim(-0.5, len(names) - 0.3)
    ax.grid(True, axis="y", alpha=0.3)


def format_seconds(seconds: pd.DataFrame) -> str:
    """Wall time per stage summed over seeds, e.g. ``"split 1 s, backbone 4 s, ..."``.

    Parameters
    ----------
    seconds : pandas.DataFrame
        :attr:`DemoResult.seconds`.

    Returns
    -------
    str
    """
    total = seconds.groupby("stage", sort=False)["seconds"].sum()
    return ", ".join(f"{k} {v:.0f} s" for k, v in total.items())
