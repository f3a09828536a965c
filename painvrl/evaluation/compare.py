"""Comparing fitted models over several splits, and seed summaries.

* :func:`compare` scores every model on every split with
  :func:`painvrl.metrics.evaluate` (so its numbers are those of
  ``model.evaluate``) and returns one tidy DataFrame.
  Models from other libraries enter through ``score(users)`` or
  ``recommend(users, k)`` (:mod:`painvrl.evaluation.outside`).
* :func:`summarize` turns runs over several seeds into ``mean ± std``.

The paired tests (:func:`paired_test`, :class:`PairedTestResult`, :func:`betainc`,
:func:`student_t_cdf`) live in :mod:`painvrl.evaluation.stats` and are
re-exported here.
"""
from __future__ import annotations

import numbers
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd

from ..data.csr import UserItemCSR
from ..data.dataset import Dataset
from .metrics import _check_ks, ranking_metrics
from .metrics import evaluate as evaluate_vectors
from .outside import outside_topk
from .stats import PairedTestResult, betainc, paired_test, student_t_cdf

__all__ = ["compare", "paired_test", "PairedTestResult", "summarize", "betainc",
           "student_t_cdf"]

_EXCLUDE = ("train", "train+val", "none")


# --------------------------------------------------------------------------- compare

def _kind(model, name: str) -> str:
    """How a model is scored: ``"vectors"`` (exact dot products in the C top-k),
    ``"score"`` (a dense score row per user) or ``"recommend"`` (ranked ids)."""
    if isinstance(model, tuple):
        if len(model) != 2:
            raise ValueError(f"compare: models[{name!r}]: a tuple must be "
                             f"(user_vecs, item_vecs)")
        return "vectors"
    if callable(getattr(model, "user_vectors", None)) and \
            callable(getattr(model, "item_vectors", None)):
        return "vectors"
    if callable(getattr(model, "score", None)):
        return "score"
    if callable(getattr(model, "recommend", None)):
        return "recommend"
    raise TypeError(f"compare: models[{name!r}] must be a fitted model with user_vectors() and "
                    f"item_vectors(), score(users) or recommend(users, k), a (user_vecs, "
                    f"item_vecs) tuple, or a dict split name -> model; got {type(model).__name__}")


def _vectors(model) -> Tuple[np.ndarray, np.ndarray]:
    return model if isinstance(model, tuple) else (model.user_vectors(), model.item_vectors())


def _split_entry(entry, name: str) -> Tuple[Dataset, UserItemCSR]:
    if isinstance(entry, Dataset):
        entry = (entry, "test")
    if not isinstance(entry, tuple) or len(entry) != 2:
        raise TypeError(f"compare: splits[{name!r}] must be (dataset, 'test' | 'val' | "
                        f"UserItemCSR) or a Dataset, got {type(entry).__name__}")
    ds, truth = entry
    if not isinstance(ds, Dataset):
        raise TypeError(f"compare: splits[{name!r}][0] must be a painvrl Dataset, got "
                        f"{type(ds).__name__}")
    if isinstance(truth, str):
        if truth not in ("test", "val"):
            raise ValueError(f"compare: splits[{name!r}][1] must be 'test', 'val' or a UserItemCSR, "
                             f"got {truth!r}")
        truth = getattr(ds, truth)
    elif not isinstance(truth, UserItemCSR):
        raise TypeError(f"compare: splits[{name!r}][1] must be 'test', 'val' or a UserItemCSR, got "
                        f"{type(truth).__name__}")
    if truth.nnz == 0:
        raise ValueError(f"compare: splits[{name!r}] must have at least one test (user, item) "
                         f"pair, got none")
    if (truth.n_users, truth.n_items) != (ds.n_users, ds.n_items):
        raise ValueError(f"compare: splits[{name!r}]: the test set has {truth.n_users} users x "
                         f"{truth.n_items} items but the dataset has {ds.n_users} x {ds.n_items}")
    return ds, truth


def _exclusion(ds: Dataset, exclude: str) -> Optional[UserItemCSR]:
    if exclude == "train":
        return ds.train_csr
    if exclude == "train+val":  # the same construction as models._RecommenderMixin.evaluate
        return ds._train_val_csr()
    return None


def _score_vectors(vectors, mname, sname, ds, truth, exclude, mask_value, options):
    U, V = vectors
    nu, ni = np.shape(U)[0], np.shape(V)[0]
    if (nu, ni) != (ds.n_users, ds.n_items):
        raise ValueError(f"compare: models[{mname!r}] has {nu} users x {ni} items but split "
                         f"{sname!r} has {ds.n_users} x {ds.n_items}")
    return evaluate_vectors(U, V, truth, exclude=_exclusion(ds, exclude), mask_value=mask_value,
                            **options)


def _score_outside(model, kind, mname, ds, truth, exclude, mask_value, options):
    """An outside model's metrics: its top-k lists of the users with a test item (the
    users ``evaluate`` ranks), scored by the same metric kernel."""
    ks = _check_ks(options["ks"], ds.n_items, "n_items", "compare")
    users = np.flatnonzero(truth.row_lengths() > 0).astype(np.int64)
    ids = outside_topk(model, kind, mname, users, ds.n_items, ks[-1],
                       exclude=_exclusion(ds, exclude), mask_value=mask_value)
    return ranking_metrics(ids, truth, users=users, **options)


def compare(models: Mapping[str, Any], splits: Mapping[str, Any], *,
            ks: Union[int, Sequence[int]] = (10, 20),
            metrics: Union[str, Sequence[str]] = ("recall", "ndcg"), exclude: str = "train",
            per_user: bool = False, ndcg: str = "standard", mask_value: float = -np.inf,
            n_threads: Optional[int] = None) -> pd.DataFrame:
    """Full-ranking metrics of several fitted models on several splits.

    Parameters
    ----------
    models : dict of str to model
        Each value is one of

        * a fitted model with ``user_vectors()`` and ``item_vectors()``
          (:class:`~painvrl.models.Backbone`, :class:`~painvrl.models.Popularity`,
          ...), scored on every split;
        * a ``(user_vecs, item_vecs)`` tuple;
        * any other object with ``score(users)`` (a dense ``(len(users),
          n_items)`` score block) or ``recommend(users, k)`` (ranked ids, or
          ``(ids, scores)``), in the dataset's dense ids: a model from another
          library, e.g. through :class:`painvrl.models.CornacModel` or
          :class:`painvrl.models.ImplicitModel`.  It is ranked under the same
          rules (excluded items never rank, ties to the lower id; see
          :mod:`painvrl.evaluation.outside`) and scored by the same metric code,
          so its rows, per-user values included, pair with the others';
        * a dict split name -> one of the above, for models fitted per split
          (e.g. on each split's own training data); it must have an entry for
          every split in ``splits``.
    splits : dict of str to (Dataset, str or UserItemCSR)
        The ground truth of each split: ``(dataset, "test")``,
        ``(dataset, "val")``, ``(dataset, csr)`` (e.g. an OOD test, see
        :meth:`painvrl.splits.EnvironmentHoldout.splits`) or a bare Dataset
        (its test).  ``dataset`` supplies the items to exclude.
    ks : int or sequence of int, default (10, 20)
    metrics : str or sequence of str, default ("recall", "ndcg")
        See :data:`painvrl.metrics.METRICS`.
    exclude : {"train", "train+val", "none"}, default "train"
        Items masked out of each user's ranking, from the split's dataset (as
        ``model.evaluate``).
    per_user : bool, default False
        Return per-user values instead of means (see Returns).
    ndcg, mask_value
        Passed to :func:`painvrl.metrics.evaluate`.
    n_threads : int, optional
        Threads of the C kernels; results do not depend on it.

    Returns
    -------
    pandas.DataFrame
        ``per_user=False``: tidy, one row per (model, split, metric, k), with
        columns ``model``, ``split``, ``metric``, ``k``, ``value`` (mean over
        the split's users with a test item) and ``n_users``; models in the
        order given, then splits.  The values are exactly those of
        ``model.evaluate(dataset, split, ks=ks, exclude=exclude)``.
        ``per_user=True``: one row per (model, split, ranked user), columns
        ``model``, ``split``, ``user`` then one column per ``"metric@k"``
        (the layout of ``evaluate(..., per_user=True)``); select one model
        and split and pass it to :func:`paired_test`.

    Raises
    ------
    TypeError
        ``models`` or ``splits`` empty or of the wrong kind.
    ValueError
        A split whose ground truth holds no pair, sizes that do not match, or
        the errors of :func:`painvrl.metrics.evaluate`.

    Examples
    --------
    >>> from painvrl import datasets, models
    >>> ds = datasets.make_multimodal(n_users=50, n_items=40, n_interactions=800, seed=0)
    >>> pop = models.Popularity().fit(ds)
    >>> df = compare({"pop": pop}, {"given": (ds, "test")}, ks=10, metrics="recall")
    >>> list(df.columns)
    ['model', 'split', 'metric', 'k', 'value', 'n_users']
    """
    if not isinstance(models, Mapping) or not models:
        raise TypeError("compare: models must be a non-empty dict name -> fitted model")
    if not isinstance(splits, Mapping) or not splits:
        raise TypeError("compare: splits must be a non-empty dict name -> (dataset, test)")
    if exclude not in _EXCLUDE:
        raise ValueError(f"compare: exclude must be one of {_EXCLUDE}, got {exclude!r}")
    if not isinstance(per_user, (bool, np.bool_)):
        raise TypeError(f"compare: per_user must be True or False, got {per_user!r}")
    entries = {str(s): _split_entry(e, str(s)) for s, e in splits.items()}
    cache: Dict[int, Tuple[Any, Tuple[np.ndarray, np.ndarray]]] = {}
    frames = []
    for mname, mval in models.items():
        mname = str(mname)
        for sname, (ds, truth) in entries.items():
            model = mval
            if isinstance(mval, Mapping):
                if sname not in mval:
                    raise ValueError(f"compare: models[{mname!r}] is a dict per split but has no "
                                     f"entry for split {sname!r}")
                model = mval[sname]
            options = dict(ks=ks, metrics=metrics, ndcg=ndcg, per_user=per_user,
                           n_threads=n_threads)
            kind = _kind(model, mname)
            if kind == "vectors":
                key = id(model)
                if key not in cache:  # keep the model referenced so its id stays unique
                    cache[key] = (model, _vectors(model))
                df = _score_vectors(cache[key][1], mname, sname, ds, truth, exclude,
                                    mask_value, options)
            else:
                df = _score_outside(model, kind, mname, ds, truth, exclude, mask_value, options)
            df.insert(0, "split", sname)
            df.insert(0, "model", mname)
            frames.append(df)
    return pd.concat(frames, ignore_index=True)


# --------------------------------------------------------------------------- seeds

_KEYS = ("model", "split", "metric", "k")


def summarize(frames: Union[pd.DataFrame, Sequence[pd.DataFrame], Mapping[Any, pd.DataFrame]], *,
              digits: int = 4, ddof: int = 1, wide: bool = False) -> pd.DataFrame:
    """Mean and standard deviation over seeds of :func:`compare` (or ``evaluate``) results.

    Parameters
    ----------
    frames : DataFrame, sequence of DataFrames, or dict seed -> DataFrame
        One tidy result per seed (columns ``metric``, ``k``, ``value`` and
        optionally ``model``, ``split``), or one DataFrame holding all runs
        (e.g. concatenated, with a ``seed`` column that is ignored).
    digits : int, default 4
        Decimals of the ``text`` column.
    ddof : int, default 1
        Delta degrees of freedom of the standard deviation (1: sample std).
    wide : bool, default False
        Return the ``text`` column pivoted: one row per model (and split),
        one column per ``metric@k``, ready to paste into a table.

    Returns
    -------
    pandas.DataFrame
        Columns ``model``, ``split`` (when present), ``metric``, ``k``,
        ``mean``, ``std``, ``n_seeds`` and ``text`` (``"0.1234 ± 0.0056"``;
        just the mean when ``std`` is undefined, i.e. a single seed).

    Examples
    --------
    >>> import pandas as pd
    >>> runs = [pd.DataFrame({"model": ["m"], "metric": ["recall"], "k": [10], "value": [v]})
    ...         for v in (0.10, 0.12, 0.14)]
    >>> summarize(runs)[["model", "metric", "k", "mean", "n_seeds", "text"]]
      model  metric   k  mean  n_seeds             text
    0     m  recall  10  0.12        3  0.1200 ± 0.0200
    """
    if isinstance(frames, pd.DataFrame):
        df = frames
    else:
        if isinstance(frames, Mapping):
            frames = list(frames.values())
        try:
            frames = list(frames)
        except TypeError:
            raise TypeError(f"frames must be a DataFrame or a sequence of DataFrames, got "
                            f"{type(frames).__name__}") from None
        if not frames:
            raise ValueError("frames is empty")
        for i, f in enumerate(frames):
            if not isinstance(f, pd.DataFrame):
                raise TypeError(f"frames[{i}] must be a DataFrame, got {type(f).__name__}")
        df = pd.concat(frames, ignore_index=True)
    if isinstance(digits, (bool, np.bool_)) or not isinstance(digits, numbers.Integral) \
            or digits < 0:
        raise ValueError(f"digits must be a non-negative integer, got {digits!r}")
    missing = [c for c in ("metric", "k", "value") if c not in df.columns]
    if missing:
        raise ValueError(f"frames lack the column(s) {missing} (expected compare() or evaluate() "
                         f"output with per_user=False)")
    if df.empty:
        raise ValueError("frames hold no rows")
    keys = [c for c in _KEYS if c in df.columns]
    g = df.groupby(keys, sort=False)["value"]
    out = g.agg(mean="mean", n_seeds="count").reset_index()
    out.insert(len(keys) + 1, "std", g.std(ddof=ddof).to_numpy())
    out["n_seeds"] = out["n_seeds"].astype(np.int64)

    def fmt(m: float, s: float) -> str:
        return f"{m:.{digits}f}" if not np.isfinite(s) else f"{m:.{digits}f} ± {s:.{digits}f}"

    out["text"] = [fmt(m, s) for m, s in zip(out["mean"], out["std"])]
    if not wide:
        return out
    index = [c for c in ("model", "split") if c in keys]
    col = out["metric"].astype(str) + "@" + out["k"].astype(str)
    table = out.assign(column=col).pivot(index=index or None, columns="column", values="text")
    table = table[list(dict.fromkeys(col))]  # metric@k in first-seen order
    table.columns.name = None
    return table.reset_index() if index else table
