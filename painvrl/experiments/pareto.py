"""The IID/OOD Pareto front of the ERM/IRM trade-off (method.md §3.5).

:func:`pareto_front` fits, per seed, the backbone once, then PaInvRL over a sweep of
ERM/IRM preferences, PaInvRL with its default (adaptive) weighting, and InvRL over a
sweep of its fixed IRM weight alpha, all from that one backbone and the first outer
iteration's environments (identified once per seed: with the mask at 0 and the same
seed, it is the same for every point).  Each fitted model is scored on IID and OOD
validation and test data.  The ``pareto`` flag marks the points that no other point
dominates on VALIDATION Recall@20 (IID, OOD); test metrics are only reported.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from .._util.progress import progress_bar
from .._util.validation import check_choice, check_real, check_seed
from ..evaluation.stats import paired_test
from ..invariance.pipeline import PRETRAIN, InvRL, PaInvRL
from ..models.backbone import Backbone
from .front import hypervolume_2d, non_dominated
from .targets import evaluation_splits, gamma_summary, score, score_per_user

__all__ = ["ParetoFront", "pareto_front"]

DEFAULT_PREFERENCES = (0.1, 0.25, 0.5, 0.75, 0.9)
DEFAULT_ALPHAS = (0.1, 0.3, 1.0, 3.0, 10.0)
# The columns that name a point of the sweep.
_POINT_KEYS = ("model", "weighting", "preference", "alpha", "adaptive")


@dataclass
class ParetoFront:
    """The result of :func:`pareto_front`.

    Attributes
    ----------
    frame : pandas.DataFrame
        One row per fitted model and seed: ``point`` (0 the backbone, then one id
        per setting), ``model`` ("backbone", "InvRL",
        "PaInvRL"), ``weighting``, ``preference`` (the IRM share r_IRM of the
        preference vector, NaN where none), ``alpha`` (InvRL's IRM weight, NaN
        elsewhere), ``adaptive`` (PaInvRL at its default weighting), ``seed``,
        ``gamma_mean`` / ``gamma_last`` (the weighting's per-step gamma),
        ``erm_share_mean`` (the mean share of the raw ERM gradient in the steps,
        comparable across rules: InvRL's ``1 / (1 + alpha)``), ``fit_seconds``,
        one column per ``{iid,ood}_{val,test}_{metric}@{k}``, and ``pareto``: the
        point (its mean over seeds) is not dominated on validation
        (``iid_val_recall@20``, ``ood_val_recall@20`` by default) by any other point.
    objectives : (str, str)
        The two validation columns the ``pareto`` flag was computed on.
    per_user : pandas.DataFrame or None
        With ``pareto_front(..., per_user=True)``: per-user test values, one row per
        (point, seed, split, user), for :meth:`paired_test`.
    masks : dict (point, seed) -> ndarray (D,)
        The final mask of every pipeline fit, e.g. to read per named feature.
    """

    frame: pd.DataFrame
    objectives: tuple = ("iid_val_recall@20", "ood_val_recall@20")
    per_user: Optional[pd.DataFrame] = None
    masks: Dict[Tuple[int, int], np.ndarray] = field(default_factory=dict)

    @classmethod
    def combine(cls, fronts: Sequence["ParetoFront"]) -> "ParetoFront":
        """One front from fronts of the same sweep run on other seeds (e.g. one process
        or machine per seed); the ``pareto`` flag is recomputed over all seeds."""
        fronts = list(fronts)
        if not fronts or not all(isinstance(f, ParetoFront) for f in fronts):
            raise TypeError("ParetoFront.combine: give a non-empty sequence of ParetoFront")
        keys = ["point", *_POINT_KEYS]
        first = fronts[0].frame[keys].drop_duplicates().reset_index(drop=True)
        seeds = set()
        for f in fronts:
            same = f.frame[keys].drop_duplicates().reset_index(drop=True)
            if not same.equals(first) or f.objectives != fronts[0].objectives:
                raise ValueError("ParetoFront.combine: the fronts sweep different points")
            if seeds & set(f.frame.seed):
                raise ValueError(f"ParetoFront.combine: seeds {sorted(seeds & set(f.frame.seed))} "
                                 f"appear in more than one front")
            seeds |= set(f.frame.seed)
        frame = pd.concat([f.frame for f in fronts], ignore_index=True)
        frame["pareto"] = _flag_pareto(frame, fronts[0].objectives)
        users = [f.per_user for f in fronts]
        per_user = (pd.concat(users, ignore_index=True) if all(u is not None for u in users)
                    else None)
        masks = {k: v for f in fronts for k, v in f.masks.items()}
        return cls(frame=frame, objectives=fronts[0].objectives, per_user=per_user, masks=masks)

    def point_id(self, which) -> int:
        """A point's id: an int, or "backbone", "adaptive" (PaInvRL's default
        weighting) or "InvRL" (InvRL at its default alpha, 1)."""
        f = self.frame
        if isinstance(which, (int, np.integer)) and which in set(f.point):
            return int(which)
        sel = {"backbone": f.model == "backbone", "adaptive": f.adaptive,
               "InvRL": (f.model == "InvRL") & (f.alpha == 1.0)}.get(which)
        if sel is None or not sel.any():
            raise ValueError(f"ParetoFront: no point {which!r}; give a point id "
                             f"{sorted(set(f.point))} or 'backbone', 'adaptive', 'InvRL' "
                             f"(InvRL needs alpha 1 in the sweep)")
        return int(f.point[sel].iloc[0])

    def paired_test(self, a, b, *, split: str = "ood_test", metric: str = "recall@20",
                    alternative: str = "two-sided") -> pd.Series:
        """Point ``a`` against point ``b`` on a test split, paired two ways: over
        seeds (paired t-test on the per-seed means) and over users (Wilcoxon
        signed-rank on per-user values, each user of each seed one pair, as
        :func:`painvrl.compare.paired_test`).  Needs ``per_user=True``; ``p_seeds`` is NaN
        with a single seed."""
        if self.per_user is None:
            raise ValueError("ParetoFront.paired_test needs pareto_front(..., per_user=True)")
        check_choice(split, "split", ("iid_test", "ood_test"), func="ParetoFront.paired_test")
        ia, ib = self.point_id(a), self.point_id(b)
        col = f"{split}_{metric}"
        fa = self.frame[self.frame.point == ia].set_index("seed")[col]
        fb = self.frame[self.frame.point == ib].set_index("seed")[col]
        common = fa.index.intersection(fb.index)
        if len(common) < 2:   # one seed: no test over seeds
            seeds = None
        else:
            seeds = paired_test(fa, fb, test="t", alternative=alternative)
        pu = self.per_user[self.per_user.split == split]
        key = lambda d: d.assign(user=d.seed.astype(np.int64) * 10**9 + d.user)
        users = paired_test(key(pu[pu.point == ia]), key(pu[pu.point == ib]), metric=metric,
                            alternative=alternative)
        return pd.Series({"a": ia, "b": ib, "mean_a": float(fa[common].mean()),
                          "mean_b": float(fb[common].mean()),
                          "diff": float((fa[common] - fb[common]).mean()),
                          "p_seeds": np.nan if seeds is None else seeds.pvalue,
                          "n_seeds": len(common), "p_users": users.pvalue,
                          "n_user_seeds": users.n}, name=f"{split} {metric}")

    def points(self, split: str = "test", metric: str = "recall@20") -> pd.DataFrame:
        """Mean and std over seeds of the (IID, OOD) pair per point, with its flags."""
        check_choice(split, "split", ("val", "test"), func="ParetoFront.points")
        x, y = f"iid_{split}_{metric}", f"ood_{split}_{metric}"
        for col in (x, y):
            if col not in self.frame.columns:
                raise ValueError(f"ParetoFront.points: no column {col!r}; the front has "
                                 f"{[c for c in self.frame.columns if '@' in c]}")
        g = self.frame.groupby("point", sort=True)
        out = g.agg(model=("model", "first"), weighting=("weighting", "first"),
                    preference=("preference", "first"), alpha=("alpha", "first"),
                    adaptive=("adaptive", "first"), iid=(x, "mean"), iid_std=(x, "std"),
                    ood=(y, "mean"), ood_std=(y, "std"), gamma_mean=("gamma_mean", "mean"),
                    erm_share=("erm_share_mean", "mean"),
                    pareto=("pareto", "first"), n_seeds=("seed", "nunique"))
        return out.reset_index()

    def hypervolume(self, reference=None, *, split: str = "test",
                    metric: str = "recall@20") -> pd.Series:
        """Hypervolume of each method's front of mean (IID, OOD) points, and of all
        points together ("all"), above ``reference`` (default: the backbone's mean
        point): how much of the IID/OOD plane beyond the backbone the method reaches.

        Each method's front is its own non-dominated points on ``split`` (descriptive:
        the flag that chooses points, ``pareto``, uses validation data)."""
        pts = self.points(split, metric)
        if reference is None:
            base = pts[pts.model == "backbone"]
            if base.empty:
                raise ValueError("ParetoFront.hypervolume: no backbone point; give reference")
            reference = (float(base.iid.iloc[0]), float(base.ood.iloc[0]))
        out = {}
        for model in [m for m in pts.model.unique() if m != "backbone"] + ["all"]:
            sel = pts if model == "all" else pts[pts.model == model]
            out[model] = hypervolume_2d(sel[["iid", "ood"]].to_numpy(), reference)
        return pd.Series(out, name=f"hypervolume ({split} {metric})")

    def plot(self, ax=None, *, split: str = "test", metric: str = "recall@20"):
        """IID against OOD ``metric`` per point (mean ± std over seeds): PaInvRL's
        preference sweep and InvRL's alpha sweep each joined along its own
        non-dominated points, the adaptive PaInvRL point and the backbone marked, the
        points flagged ``pareto`` on validation ringed.  Needs matplotlib."""
        import matplotlib.pyplot as plt

        pts = self.points(split, metric)
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4.5))
        styles = {"PaInvRL": ("tab:red", "o"), "InvRL": ("tab:blue", "s"),
                  "backbone": ("black", "X")}
        for model, sub in pts.groupby("model", sort=False):
            color, marker = styles.get(model, ("tab:gray", "^"))
            # the sweep: every point with a setting (the default point may be one of them)
            sweep = sub[~sub.adaptive | np.isfinite(sub.preference)]
            ax.errorbar(sweep.iid, sweep.ood, xerr=sweep.iid_std.fillna(0),
                        yerr=sweep.ood_std.fillna(0), fmt=marker, color=color, alpha=0.8,
                        label=model if model != "PaInvRL" else "PaInvRL (preference sweep)",
                        capsize=2, ms=6)
            if model != "backbone" and len(sweep) > 1:
                front = sweep[non_dominated(sweep[["iid", "ood"]].to_numpy())]
                front = front.sort_values("iid")
                ax.plot(front.iid, front.ood, "-", color=color, alpha=0.6)
            for row in sweep.itertuples():
                label = (f"r={row.preference:g}" if np.isfinite(row.preference)
                         else f"α={row.alpha:g}" if np.isfinite(row.alpha) else "")
                if label:
                    ax.annotate(label, (row.iid, row.ood), fontsize=7, xytext=(3, 3),
                                textcoords="offset points", color=color)
            adaptive = sub[sub.adaptive]
            if len(adaptive):
                ax.errorbar(adaptive.iid, adaptive.ood, xerr=adaptive.iid_std.fillna(0),
                            yerr=adaptive.ood_std.fillna(0), fmt="*", color=color, ms=14,
                            capsize=2, label=f"{model} (default weighting)")
        chosen = pts[pts.pareto]
        ax.scatter(chosen.iid, chosen.ood, s=160, facecolors="none", edgecolors="green",
                   label="not dominated on validation")
        ax.set_xlabel(f"IID {metric} ({split})")
        ax.set_ylabel(f"OOD {metric} ({split})")
        ax.legend(fontsize=7, loc="best")
        ax.grid(alpha=0.3)
        return ax


def _check_values(values, name: str, func: str, *, low: float, high: Optional[float],
                  open_low: bool = True) -> List[float]:
    values = [check_real(v, f"{name}[{i}]", minimum=low, maximum=high, func=func)
              for i, v in enumerate(np.atleast_1d(values))]
    if open_low and any(v <= low for v in values):
        raise ValueError(f"{func}: every {name} entry must be > {low}, got {values}")
    if high is not None and any(v >= high for v in values):
        raise ValueError(f"{func}: every {name} entry must be < {high}, got {values}")
    return values


def _points(preferences, alphas, weighting, adaptive: bool, params) -> List[Dict[str, Any]]:
    """The sweep's (model, settings) points, backbone excluded.  PaInvRL's default
    point is the sweep's r = 0.5 when that is the same model (MGDA's default
    preference is (0.5, 0.5)); otherwise it is fitted on its own."""
    default = PaInvRL(**params)
    same = default.weighting == weighting == "mgda" and default.preference is None
    pts = [dict(model="PaInvRL", weighting=weighting, preference=p, alpha=np.nan,
                adaptive=bool(adaptive and same and p == 0.5)) for p in preferences]
    if adaptive and not any(pt["adaptive"] for pt in pts):
        pts.append(dict(model="PaInvRL", weighting=default.weighting, preference=np.nan,
                        alpha=np.nan, adaptive=True))
    pts += [dict(model="InvRL", weighting="fixed", preference=np.nan, alpha=a, adaptive=False)
            for a in alphas]
    return pts


def _flag_pareto(frame: pd.DataFrame, objectives) -> pd.Series:
    """Per row: is its point's mean over seeds non-dominated on ``objectives``?"""
    means = frame.groupby("point", sort=False)[list(objectives)].mean()
    flag = pd.Series(non_dominated(means.to_numpy()), index=means.index)
    return frame["point"].map(flag).astype(bool)


def pareto_front(dataset, split, *, preferences: Sequence[float] = DEFAULT_PREFERENCES,
                 alphas: Sequence[float] = DEFAULT_ALPHAS, seeds: Sequence[int] = (0, 1, 2, 3, 4),
                 weighting: str = "mgda", adaptive: bool = True, ks: Sequence[int] = (10, 20),
                 metrics: Sequence[str] = ("recall", "ndcg"), per_user: bool = False,
                 progress: bool = True, **pipeline_params) -> ParetoFront:
    """Trace the IID/OOD trade-off of the ERM/IRM weighting, over seeds.

    Parameters
    ----------
    dataset : Dataset
        Train, IID validation (early stopping of every model) and IID test.
    split : object or dict
        Holds ``ood_val`` and ``ood_test`` (UserItemCSR): e.g. the result of
        ``splits.hold_out_environments(..., val_holdout=1)`` or ``load_coat()``.
    preferences : sequence of float in (0, 1)
        IRM shares ``r`` of PaInvRL's preference vector ``(1 - r, r)`` (see
        :func:`painvrl.mgda_weight` and :func:`painvrl.pair_weight`).
    alphas : sequence of float > 0
        InvRL's fixed IRM weights (its default is 1).
    seeds : sequence of int
        One backbone, identification and every point per seed.
    weighting : {"mgda", "pair"}
        The rule the preference sweep uses.
    adaptive : bool
        Also fit PaInvRL with all its defaults (``pipeline_params`` apart): the
        operating point a user gets without sweeping.
    ks, metrics
        Scored on all four targets (IID/OOD x val/test).
    per_user : bool
        Keep per-user test values (:attr:`ParetoFront.per_user`) for
        :meth:`ParetoFront.paired_test`.
    progress : bool
        A bar over the fits.
    **pipeline_params
        Passed to every :class:`InvRL` / :class:`PaInvRL` (schedule, sizes,
        ``n_threads``, ...); ``seed`` comes from ``seeds``.

    Returns
    -------
    ParetoFront
    """
    f = "pareto_front"
    targets = evaluation_splits(dataset, split, f)
    check_choice(weighting, "weighting", ("mgda", "pair"), func=f)
    preferences = _check_values(preferences, "preferences", f, low=0.0, high=1.0)
    alphas = _check_values(alphas, "alphas", f, low=0.0, high=None)
    seeds = [check_seed(s, f"seeds[{i}]", func=f) for i, s in enumerate(seeds)]
    if not seeds:
        raise ValueError(f"{f}: seeds must name at least one seed")
    bad = sorted(set(pipeline_params) & {"seed", "progress", "weighting", "preference",
                                         "alpha", "identification"})
    if bad:
        raise ValueError(f"{f}: {bad} are set by the sweep; remove them from the keyword "
                         f"arguments")
    unknown = sorted(set(pipeline_params) - set(PaInvRL._param_names()))
    if unknown:
        raise TypeError(f"{f}: unknown pipeline parameters {unknown}")
    points = _points(preferences, alphas, weighting, adaptive, pipeline_params)
    rows, users, masks = [], [], {}

    def record(index, point, seed, model, start):
        rows.append(dict(point=index, **point, seed=seed, **gamma_summary(model),
                         fit_seconds=time.perf_counter() - start,
                         **score(model, targets, ks, metrics)))
        if hasattr(model, "mask_"):
            masks[index, seed] = np.array(model.mask_)
        if per_user:
            users.append(score_per_user(model, targets, ks, metrics).assign(point=index,
                                                                            seed=seed))

    with progress_bar(progress, total=len(seeds) * (len(points) + 1), desc=f) as bar:
        for seed in seeds:
            start = time.perf_counter()
            backbone = pretraining_backbone(pipeline_params, seed).fit(dataset)
            record(0, dict(model="backbone", weighting=None, preference=np.nan, alpha=np.nan,
                           adaptive=False), seed, backbone, start)
            bar.update()
            environments = None
            for index, point in enumerate(points, start=1):
                start = time.perf_counter()
                model = _fit_point(point, dataset, seed, backbone, environments, pipeline_params)
                environments = environments or model.environments_[:1]
                record(index, point, seed, model, start)
                bar.update()
    frame = pd.DataFrame(rows)
    objectives = ("iid_val_recall@20", "ood_val_recall@20")
    if not all(c in frame.columns for c in objectives):
        objectives = tuple(c for c in frame.columns if c.startswith(("iid_val_", "ood_val_")))[:2]
    frame["pareto"] = _flag_pareto(frame, objectives)
    return ParetoFront(frame=frame, objectives=objectives,
                       per_user=pd.concat(users, ignore_index=True) if per_user else None,
                       masks=masks)


def pretraining_backbone(pipeline_params, seed: int) -> Backbone:
    """The (unfitted) backbone a pipeline with these parameters would pre-train: the
    backbone baseline of a comparison, shared by every pipeline of the seed."""
    own = set(InvRL._param_names()) - {"seed", "progress"}   # PaInvRL's own do not touch it
    pipe = InvRL(**{k: v for k, v in pipeline_params.items() if k in own}, seed=seed,
                 progress=False)
    return pipe._backbone(pipe.patience, PRETRAIN)


def _fit_point(point, dataset, seed, backbone, environments, pipeline_params):
    """One point of the sweep, from the seed's backbone and first environments."""
    params = dict(pipeline_params, seed=seed, progress=False)
    if point["model"] == "InvRL":
        model = InvRL(weighting="fixed", alpha=point["alpha"], **params)
    elif not np.isfinite(point["preference"]):   # the default point, fitted on its own
        model = PaInvRL(**params)
    else:
        r = point["preference"]
        model = PaInvRL(weighting=point["weighting"], preference=(1.0 - r, r), **params)
    return model.fit(dataset, pretrained=backbone, environments=environments)
