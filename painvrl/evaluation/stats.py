"""Comparing fitted models over several splits, paired significance tests, and seed summaries.

* :func:`compare` scores every model on every split with
  :func:`painvrl.metrics.evaluate` (so its numbers are those of
  ``model.evaluate``) and returns one tidy DataFrame.
* :func:`paired_test` tests whether two models differ on the same users:
  the paired t-test or the Wilcoxon signed-rank test, both written in NumPy
  (SciPy is not a dependency).  The Student t distribution is computed from
  the regularized incomplete beta function (:func:`betainc`, a continued
  fraction in the style of Numerical Recipes' ``betacf``).
* :func:`summarize` turns runs over several seeds into ``mean ± std``.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd

from ..data.csr import UserItemCSR
from ..data.dataset import Dataset
from .metrics import evaluate as evaluate_vectors

__all__ = ["compare", "paired_test", "PairedTestResult", "summarize", "betainc",
           "student_t_cdf"]

_EXCLUDE = ("train", "train+val", "none")
_TESTS = ("wilcoxon", "t")
_ALTERNATIVES = ("two-sided", "greater", "less")


# --------------------------------------------------------------------------- compare

def _vectors(model, name: str) -> Tuple[np.ndarray, np.ndarray]:
    if isinstance(model, tuple):
        if len(model) != 2:
            raise ValueError(f"compare: models[{name!r}]: a tuple must be "
                             f"(user_vecs, item_vecs)")
        return model
    if not (callable(getattr(model, "user_vectors", None))
            and callable(getattr(model, "item_vectors", None))):
        raise TypeError(f"compare: models[{name!r}] must be a fitted model with user_vectors() "
                        f"and item_vectors(), a (user_vecs, item_vecs) tuple, or a dict split name -> "
                        f"model; got {type(model).__name__}")
    return model.user_vectors(), model.item_vectors()


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
        pairs = np.concatenate([ds.train, ds.val.to_pairs()])
        return UserItemCSR.from_pairs(pairs[:, 0], pairs[:, 1], ds.n_users, ds.n_items)
    return None


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
            key = id(model)
            if key not in cache:  # keep the model referenced so its id stays unique
                cache[key] = (model, _vectors(model, mname))
            U, V = cache[key][1]
            nu, ni = np.shape(U)[0], np.shape(V)[0]
            if (nu, ni) != (ds.n_users, ds.n_items):
                raise ValueError(f"compare: models[{mname!r}] has {nu} users x {ni} items but split "
                                 f"{sname!r} has {ds.n_users} x {ds.n_items}")
            df = evaluate_vectors(U, V, truth, exclude=_exclusion(ds, exclude), ks=ks,
                                  metrics=metrics, ndcg=ndcg, mask_value=mask_value,
                                  per_user=per_user, n_threads=n_threads)
            df.insert(0, "split", sname)
            df.insert(0, "model", mname)
            frames.append(df)
    return pd.concat(frames, ignore_index=True)


# --------------------------------------------------------------------------- special functions

_FPMIN = 1e-300
_EPS = 1e-16
_MAXIT = 100_000


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz, Numerical Recipes §6.4)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    if abs(d) < _FPMIN:
        d = _FPMIN
    d = 1.0 / d
    h = d
    for m in range(1, _MAXIT + 1):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        if abs(d) < _FPMIN:
            d = _FPMIN
        c = 1.0 + aa / c
        if abs(c) < _FPMIN:
            c = _FPMIN
        d = 1.0 / d
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        if abs(d) < _FPMIN:
            d = _FPMIN
        c = 1.0 + aa / c
        if abs(c) < _FPMIN:
            c = _FPMIN
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            return h
    raise RuntimeError(f"betainc: the continued fraction did not converge (a={a}, b={b}, x={x})")


def _betainc(a: float, b: float, x: float, xc: float) -> float:
    """I_x(a, b) with ``xc = 1 - x`` supplied exactly by the caller."""
    if x <= 0.0:
        return 0.0
    if xc <= 0.0:
        return 1.0
    log_bt = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
              + a * math.log(x) + b * math.log(xc))
    bt = math.exp(log_bt)
    if x < (a + 1.0) / (a + b + 2.0):
        return bt * _betacf(a, b, x) / a
    return 1.0 - bt * _betacf(b, a, xc) / b


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function ``I_x(a, b)``.

    Evaluated from its continued fraction (modified Lentz; the scheme of
    Numerical Recipes' ``betai``/``betacf``), using the symmetry
    ``I_x(a, b) = 1 - I_{1-x}(b, a)`` where the fraction converges faster.

    Parameters
    ----------
    a, b : float
        Positive shape parameters.
    x : float
        In ``[0, 1]``.

    Examples
    --------
    >>> round(betainc(2.0, 3.0, 0.4), 12)  # 1 - (1-x)^4 - 4x(1-x)^3 = 0.5248
    0.5248
    """
    a, b, x = float(a), float(b), float(x)
    if not (a > 0 and b > 0 and math.isfinite(a) and math.isfinite(b)):
        raise ValueError(f"betainc: a and b must be positive and finite, got a={a}, b={b}")
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"betainc: x must lie in [0, 1], got {x}")
    return _betainc(a, b, x, 1.0 - x)


def _t_tail(t: float, df: float) -> float:
    """P(T > |t|) for Student's t with ``df`` degrees of freedom."""
    if math.isinf(t):
        return 0.0
    t2 = t * t
    return 0.5 * _betainc(0.5 * df, 0.5, df / (df + t2), t2 / (df + t2))


def student_t_cdf(t: float, df: float) -> float:
    """The CDF ``P(T <= t)`` of Student's t distribution with ``df`` degrees of freedom.

    ``P(|T| > |t|) = I_{df / (df + t^2)}(df / 2, 1 / 2)`` (:func:`betainc`).

    Examples
    --------
    >>> round(student_t_cdf(1.0, 1), 12)   # Cauchy: 1/2 + atan(1)/pi
    0.75
    """
    t, df = float(t), float(df)
    if not (df > 0 and math.isfinite(df)):
        raise ValueError(f"student_t_cdf: df must be positive and finite, got {df}")
    if math.isnan(t):
        return math.nan
    tail = _t_tail(t, df)
    return 1.0 - tail if t > 0 else tail


def _norm_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))


# --------------------------------------------------------------------------- paired tests

@dataclass(frozen=True)
class PairedTestResult:
    """The result of :func:`paired_test`.

    Attributes
    ----------
    metric, test, alternative : str
    n : int
        Users compared (present in both inputs with finite values).
    mean_a, mean_b : float
        The two models' means over those users.
    mean_diff : float
        ``mean(a - b)``.
    statistic : float
        t-test: the t statistic.  Wilcoxon: ``min(R+, R-)`` for a two-sided
        test, ``R+`` (rank sum of positive ``a - b``) for a one-sided one,
        as SciPy reports it.
    pvalue : float
    df : float or None
        t-test: ``n - 1``.
    z : float or None
        Wilcoxon: the normal-approximation z of ``statistic``.
    n_zero : int
        Users with ``a == b`` (Wilcoxon drops them).
    n_dropped : int
        Users left out: present in only one input, or NaN in either.
    note : str
        What was dropped, or "".
    """

    metric: str
    test: str
    alternative: str
    n: int
    mean_a: float
    mean_b: float
    mean_diff: float
    statistic: float
    pvalue: float
    df: Optional[float]
    z: Optional[float]
    n_zero: int
    n_dropped: int
    note: str


def _per_user_series(x, metric: str, param: str) -> pd.Series:
    if isinstance(x, pd.DataFrame):
        for col in ("model", "split"):
            if col in x.columns and x[col].nunique() > 1:
                raise ValueError(f"{param} holds several {col}s ({sorted(map(str, x[col].unique()))}); "
                                 f"select one, e.g. df[df.{col} == ...]")
        if "user" not in x.columns:
            raise ValueError(f"{param} must have a 'user' column (evaluate(..., per_user=True) or "
                             f"compare(..., per_user=True) output)")
        if metric not in x.columns:
            cols = [c for c in x.columns if "@" in str(c)]
            raise ValueError(f"metric={metric!r} is not a column of {param}; it has {cols}")
        s = pd.Series(x[metric].to_numpy(dtype=np.float64), index=x["user"].to_numpy())
    elif isinstance(x, pd.Series):
        s = x.astype(np.float64)
    else:
        arr = np.asarray(x)
        if arr.ndim != 1 or arr.dtype.kind not in "fiub":
            raise TypeError(f"{param} must be a per-user DataFrame, a Series indexed by user or a "
                            f"1-D numeric array, got {type(x).__name__} {getattr(arr, 'shape', '')}")
        s = pd.Series(arr.astype(np.float64))
    if not s.index.is_unique:
        raise ValueError(f"{param} lists a user more than once")
    return s


def _rank_abs(v: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Average ranks (1-based) of ``v`` and the sizes of its tie groups."""
    order = np.argsort(v, kind="mergesort")
    s = v[order]
    n = s.size
    start = np.concatenate(([True], s[1:] != s[:-1]))
    gid = np.cumsum(start) - 1
    counts = np.bincount(gid)
    first = np.flatnonzero(start)
    avg = first + (counts + 1) / 2.0        # mean of positions first+1 .. first+count
    ranks = np.empty(n)
    ranks[order] = avg[gid]
    return ranks, counts


def _wilcoxon(d: np.ndarray, alternative: str) -> Tuple[float, float, float, int]:
    nz = d[d != 0]
    n_zero = int(d.size - nz.size)
    n = nz.size
    if n == 0:
        return 0.0, math.nan, math.nan, n_zero
    ranks, ties = _rank_abs(np.abs(nz))
    r_plus = float(ranks[nz > 0].sum())
    r_minus = float(ranks[nz < 0].sum())
    mn = n * (n + 1) / 4.0
    var = n * (n + 1) * (2 * n + 1) / 24.0 - float((ties ** 3 - ties).sum()) / 48.0
    if alternative == "two-sided":
        stat = min(r_plus, r_minus)
    else:
        stat = r_plus
    if var <= 0:
        return stat, math.nan, math.nan, n_zero
    z = (stat - mn) / math.sqrt(var)
    if alternative == "two-sided":
        p = min(1.0, 2.0 * _norm_sf(abs(z)))
    elif alternative == "greater":
        p = _norm_sf(z)
    else:
        p = _norm_sf(-z)
    return stat, z, p, n_zero


def _ttest(d: np.ndarray, alternative: str) -> Tuple[float, float, float]:
    n = d.size
    df = float(n - 1)
    mean = float(d.mean())
    sd = float(d.std(ddof=1))
    if sd == 0.0:
        if mean == 0.0:
            return math.nan, df, math.nan
        t = math.copysign(math.inf, mean)
    else:
        t = mean / (sd / math.sqrt(n))
    tail = _t_tail(t, df)  # P(T > |t|)
    if alternative == "two-sided":
        p = 2.0 * tail
    elif alternative == "greater":
        p = tail if t > 0 else 1.0 - tail
    else:
        p = tail if t < 0 else 1.0 - tail
    return t, df, min(p, 1.0)


def paired_test(per_user_a, per_user_b, *, metric: str = "recall@20", test: str = "wilcoxon",
                alternative: str = "two-sided") -> PairedTestResult:
    """Paired significance test between two models on the same users.

    Parameters
    ----------
    per_user_a, per_user_b : DataFrame, Series or 1-D array
        Per-user values of models A and B: the output of
        ``evaluate(..., per_user=True)`` / ``model.evaluate(..., per_user=True)``
        or of ``compare(..., per_user=True)`` restricted to one model and one
        split (columns ``user`` and ``metric``); a Series indexed by user; or
        arrays aligned by position (same length).  Users are aligned on their
        ids; users present in only one input, or with a NaN value, are
        dropped and counted in ``n_dropped`` / ``note``.
    metric : str, default "recall@20"
        The column to test (DataFrame inputs).
    test : {"wilcoxon", "t"}, default "wilcoxon"
        * ``"t"``: paired t-test on ``d = a - b``: ``t = mean(d) / (sd(d) /
          sqrt(n))`` (``sd`` with ``n - 1``), ``n - 1`` degrees of freedom,
          p-value from the Student t distribution (:func:`student_t_cdf`).
          All differences equal: ``t = +-inf`` and p = 0, or NaN if they are
          all 0 (as SciPy's ``ttest_rel``).
        * ``"wilcoxon"``: signed-rank test with the normal approximation,
          following SciPy's ``wilcoxon(a, b, zero_method="wilcox",
          correction=False, method="approx")``: zero differences are dropped,
          ``|d|`` ranked with average ranks for ties, ``z = (T - n(n+1)/4) /
          sqrt(n(n+1)(2n+1)/24 - sum(t^3 - t)/48)`` over tie groups of size
          ``t``, no continuity correction.  Only the normal approximation is
          implemented (SciPy uses an exact distribution for small samples by
          default); with per-user metrics ``n`` is usually large.
    alternative : {"two-sided", "greater", "less"}
        ``"greater"``: A's values tend to be larger than B's.

    Returns
    -------
    PairedTestResult

    Examples
    --------
    >>> r = paired_test([0.5, 0.2, 0.9, 0.4], [0.1, 0.2, 0.6, 0.5], test="t")
    >>> r.n, round(r.mean_diff, 3), round(r.statistic, 4), round(r.pvalue, 4)
    (4, 0.15, 1.2603, 0.2967)
    """
    if test not in _TESTS:
        raise ValueError(f"test must be one of {_TESTS}, got {test!r}")
    if alternative not in _ALTERNATIVES:
        raise ValueError(f"alternative must be one of {_ALTERNATIVES}, got {alternative!r}")
    if not isinstance(metric, str):
        raise TypeError(f"metric must be a string like 'recall@20', got {metric!r}")
    a = _per_user_series(per_user_a, metric, "per_user_a")
    b = _per_user_series(per_user_b, metric, "per_user_b")
    arrays = not isinstance(per_user_a, (pd.DataFrame, pd.Series)) and \
        not isinstance(per_user_b, (pd.DataFrame, pd.Series))
    if arrays and a.size != b.size:
        raise ValueError(f"per_user_a and per_user_b are arrays of different lengths ({a.size} and "
                         f"{b.size}); pass DataFrames or Series with user ids to align them")
    common = a.index.intersection(b.index, sort=False)
    only_a, only_b = a.size - common.size, b.size - common.size
    va = a.loc[common].to_numpy()
    vb = b.loc[common].to_numpy()
    finite = np.isfinite(va) & np.isfinite(vb)
    n_nan = int((~finite).sum())
    va, vb = va[finite], vb[finite]
    notes = []
    if only_a or only_b:
        notes.append(f"dropped {only_a} user(s) only in per_user_a and {only_b} only in per_user_b")
    if n_nan:
        notes.append(f"dropped {n_nan} user(s) with a NaN or infinite value")
    n = int(va.size)
    if n < 2:
        raise ValueError(f"paired_test needs at least 2 users present in both inputs, got {n}")
    d = va - vb
    t_df = z = None
    if test == "t":
        stat, t_df, p = _ttest(d, alternative)
        n_zero = int((d == 0).sum())
    else:
        stat, z, p, n_zero = _wilcoxon(d, alternative)
        if n_zero:
            notes.append(f"{n_zero} zero difference(s) left out of the ranks (zero_method='wilcox')")
        if n_zero == n:
            notes.append("all differences are zero: no test possible")
    return PairedTestResult(metric=metric, test=test, alternative=alternative, n=n,
                            mean_a=float(va.mean()), mean_b=float(vb.mean()),
                            mean_diff=float(d.mean()), statistic=float(stat), pvalue=float(p),
                            df=t_df, z=None if z is None else float(z), n_zero=n_zero,
                            n_dropped=int(only_a + only_b + n_nan), note="; ".join(notes))


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
