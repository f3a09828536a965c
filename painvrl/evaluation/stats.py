"""Paired significance tests between two models, and their numerics.

* :func:`paired_test` tests whether two models differ on the same users:
  the paired t-test or the Wilcoxon signed-rank test, both written in NumPy
  (SciPy is not a dependency).  The Student t distribution is computed from
  the regularized incomplete beta function (:func:`betainc`, a continued
  fraction in the style of Numerical Recipes' ``betacf``).

:mod:`painvrl.compare` re-exports these names.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
import pandas as pd

__all__ = ["paired_test", "PairedTestResult", "betainc", "student_t_cdf"]

_TESTS = ("wilcoxon", "t")
_ALTERNATIVES = ("two-sided", "greater", "less")


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
