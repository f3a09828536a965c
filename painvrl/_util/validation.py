"""Input checks shared by the Python API: clear errors that name the function and the parameter.

Every check raises the same exception types in the same message style:

* ``TypeError`` when a value has the wrong kind (not an integer, not a real
  number, an array of the wrong dtype kind);
* ``ValueError`` when the kind is right but the value is not (out of range,
  NaN or inf, wrong shape, empty, a duplicate (user, item) pair);

with the message ``"<func>: <param> must be ..., got ..."`` (the ``<func>: ``
prefix is left out when a check is called without ``func``).
"""
from __future__ import annotations

import numbers
import operator
from typing import Optional, Sequence, Tuple

import numpy as np

_INT64_MAX = np.iinfo(np.int64).max


def _where(name: str, func: Optional[str]) -> str:
    """``"func: name"`` (or ``name`` alone)."""
    return f"{func}: {name}" if func else name


def _show(value) -> str:
    """A short repr for messages (numpy scalars shown as plain Python values)."""
    if isinstance(value, np.generic):
        value = value.item()
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --------------------------------------------------------------------------- scalars

def check_int(value, name: str, *, minimum: Optional[int] = None, maximum: Optional[int] = None,
              maximum_name: str = "", func: Optional[str] = None) -> int:
    """An integer (Python or NumPy, not bool) in ``[minimum, maximum]``."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{_where(name, func)} must be an integer, got {value!r}")
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{_where(name, func)} must be an integer, got {type(value).__name__} "
                        f"{_show(value)}") from None
    if (minimum is not None and v < minimum) or (maximum is not None and v > maximum):
        if maximum is None:
            allowed = f">= {minimum}"
        elif minimum is None:
            allowed = f"<= {maximum}"
        else:
            allowed = f"in [{minimum}, {maximum_name + ' = ' if maximum_name else ''}{maximum}]"
        raise ValueError(f"{_where(name, func)} must be {allowed}, got {v}")
    return int(v)


def check_positive_int(value, name: str, *, minimum: int = 1, func: Optional[str] = None) -> int:
    """An integer ``>= minimum`` (default 1)."""
    return check_int(value, name, minimum=minimum, func=func)


def check_seed(value, name: str = "seed", *, bits: int = 64, func: Optional[str] = None) -> int:
    """A seed or counter: an integer in ``[0, 2**bits)``."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{_where(name, func)} must be an integer in [0, 2**{bits}), got {value!r}")
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{_where(name, func)} must be an integer in [0, 2**{bits}), got "
                        f"{type(value).__name__} {_show(value)}") from None
    if not 0 <= v < 2 ** bits:
        raise ValueError(f"{_where(name, func)} must be an integer in [0, 2**{bits}), got {v}")
    return int(v)


def check_real(value, name: str, *, minimum: Optional[float] = None,
               maximum: Optional[float] = None, strict: bool = False,
               func: Optional[str] = None) -> float:
    """A finite real (not bool), ``>= minimum`` (``> minimum`` if ``strict``), ``<= maximum``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{_where(name, func)} must be a real number, got {type(value).__name__} "
                        f"{_show(value)}")
    v = float(value)
    bad = not np.isfinite(v)
    if minimum is not None:
        bad = bad or v < minimum or (strict and v == minimum)
    if maximum is not None:
        bad = bad or v > maximum
    if bad:
        if minimum is not None and maximum is not None:
            bound = f" in [{minimum}, {maximum}]"
        elif minimum is not None:
            bound = f" and {'>' if strict else '>='} {minimum}"
        elif maximum is not None:
            bound = f" and <= {maximum}"
        else:
            bound = ""
        raise ValueError(f"{_where(name, func)} must be finite{bound}, got {v}")
    return v


def check_nonneg_float(value, name: str, *, strictly_positive: bool = False,
                       func: Optional[str] = None) -> float:
    """A finite real ``>= 0`` (``> 0`` with ``strictly_positive``)."""
    return check_real(value, name, minimum=0, strict=strictly_positive, func=func)


def check_choice(value, name: str, choices, *, func: Optional[str] = None):
    """One of ``choices`` (compared with ``==``; unhashable values are simply not among them)."""
    try:
        found = value in choices
    except (TypeError, ValueError):  # unhashable in a dict, or an array compared elementwise
        found = False
    if not found or isinstance(value, np.ndarray):
        shown = ", ".join(map(repr, choices))
        raise ValueError(f"{_where(name, func)} must be one of {shown}, got {_show(value)}")
    return value


def check_weights(w, name: str = "w", *, n: int = 4, minimum: Optional[float] = None,
                  func: Optional[str] = None) -> Tuple[float, ...]:
    """``n`` finite real numbers (each ``>= minimum`` when given)."""
    if isinstance(w, (str, bytes)):
        raise TypeError(f"{_where(name, func)} must be {n} real numbers, got {_show(w)}")
    try:
        vals = tuple(np.asarray(w, dtype=object).ravel()) if isinstance(w, np.ndarray) else tuple(w)
    except TypeError:
        raise TypeError(f"{_where(name, func)} must be {n} real numbers, got "
                        f"{type(w).__name__}") from None
    if len(vals) != n:
        raise ValueError(f"{_where(name, func)} must hold {n} numbers, got {len(vals)}")
    return tuple(check_real(v, f"{name}[{k}]", minimum=minimum, func=func)
                 for k, v in enumerate(vals))


def resolve_threads(n_threads, *, func: Optional[str] = None) -> int:
    """None -> 0 (the C core then uses OpenMP's default); otherwise an integer >= 1."""
    if n_threads is None:
        return 0
    return check_int(n_threads, "n_threads", minimum=1, func=func)


def check_dtype(dtype, *, name: str = "dtype", func: Optional[str] = None) -> np.dtype:
    """A compute precision: float32 or float64 (TypeError otherwise)."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{_where(name, func)} must be float32 or float64, got "
                        f"{_show(dtype)}") from None
    if dt not in (np.float32, np.float64):
        raise TypeError(f"{_where(name, func)} must be float32 or float64, got {dt}")
    return dt


# --------------------------------------------------------------------------- arrays

def as_float_array(x, name: str, *, ndim: int, dtype=np.float32, shape=None,
                   allow_empty: bool = True, func: Optional[str] = None) -> np.ndarray:
    """C-contiguous float array of ``ndim`` dimensions with only finite values.

    Any real dtype is accepted (bool, integers, floats); values that overflow
    ``dtype`` are reported as inf.  ``shape`` entries of None mean any size.
    """
    where = _where(name, func)
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged sequences and the like
        raise TypeError(f"{where} must be array-like, got {type(x).__name__}") from exc
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{where} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != ndim:
        raise ValueError(f"{where} must be {ndim}-dimensional, got shape {arr.shape}")
    if shape is not None:
        for axis, (got, want) in enumerate(zip(arr.shape, shape)):
            if want is not None and got != want:
                raise ValueError(f"{where} must have {want} entries on axis {axis}, "
                                 f"got shape {arr.shape}")
    if not allow_empty and arr.size == 0:
        raise ValueError(f"{where} must not be empty, got shape {arr.shape}")
    converted = arr.dtype != np.dtype(dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        arr = np.ascontiguousarray(arr, dtype=dtype)
    if not np.all(np.isfinite(arr)):
        after = f" after conversion to {np.dtype(dtype)}" if converted else ""
        raise ValueError(f"{where} contains NaN or inf{after}")
    return arr


def as_index_array(x, name: str, *, high: int, ndim: Optional[int] = 1,
                   func: Optional[str] = None) -> np.ndarray:
    """C-contiguous int64 ids, each in [0, high).  An empty float array counts as no ids."""
    where = _where(name, func)
    arr = np.asarray(x)
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and arr.size and np.all(np.mod(arr, 1) == 0):
            raise TypeError(f"{where} must hold integer ids, got dtype {arr.dtype} "
                            f"(convert with .astype(np.int64))")
        if arr.size or arr.dtype.kind not in "f":
            raise TypeError(f"{where} must hold integer ids, got dtype {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{where} must be {ndim}-dimensional, got shape {arr.shape}")
    if arr.dtype.kind == "u" and arr.size and int(arr.max()) > _INT64_MAX:
        raise ValueError(f"{where} must lie in [0, {high}), got values up to {int(arr.max())}")
    arr = np.ascontiguousarray(arr, dtype=np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= high):
        raise ValueError(f"{where} must lie in [0, {high}), got values in "
                         f"[{arr.min()}, {arr.max()}]")
    return arr


def as_mask(mask, name: str, n_features: int, *, dtype=np.float32,
            func: Optional[str] = None) -> np.ndarray:
    """A feature mask: shape (n_features,), finite values in [0, 1] (bool allowed)."""
    arr = as_float_array(mask, name, ndim=1, dtype=np.float64, shape=(n_features,), func=func)
    if arr.size and (arr.min() < 0 or arr.max() > 1):
        raise ValueError(f"{_where(name, func)} must lie in [0, 1], got values in "
                         f"[{arr.min()}, {arr.max()}]")
    return np.ascontiguousarray(arr, dtype=dtype)


# --------------------------------------------------------------------------- pairs

def find_duplicate_pairs(users: np.ndarray, items: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Positions of repeated (user, item) pairs (every occurrence after the first) and of
    their first occurrence, both sorted by the position of the repeat."""
    order = np.lexsort((items, users))  # stable: equal pairs stay in input order
    us, its = users[order], items[order]
    same = (us[1:] == us[:-1]) & (its[1:] == its[:-1])
    if not same.any():
        empty = np.empty(0, dtype=np.intp)
        return empty, empty
    pos = np.arange(order.size)
    is_start = np.concatenate(([True], ~same))
    start = np.maximum.accumulate(np.where(is_start, pos, 0))
    dup_sorted = np.flatnonzero(~is_start)
    dup = order[dup_sorted]
    first = order[start[dup_sorted]]
    o = np.argsort(dup, kind="stable")
    return dup[o], first[o]


def check_distinct_pairs(users: np.ndarray, items: np.ndarray, name: str, *,
                         func: Optional[str] = None) -> None:
    """ValueError naming ``name`` if a (user, item) pair occurs twice or there is none."""
    if users.shape[0] == 0:
        raise ValueError(f"{_where(name, func)} must not be empty: there are no (user, item) "
                         f"pairs")
    dup, first = find_duplicate_pairs(users, items)
    if dup.size:
        d, f = int(dup[0]), int(first[0])
        raise ValueError(f"{_where(name, func)} must hold distinct (user, item) pairs, got "
                         f"({users[d]}, {items[d]}) at positions {f} and {d} ({dup.size} "
                         f"repeat(s) in all); drop the repeats first")


__all__: Sequence[str] = (
    "as_float_array", "as_index_array", "as_mask", "check_choice",
    "check_distinct_pairs", "check_dtype", "check_int", "check_nonneg_float",
    "check_positive_int", "check_real", "check_seed", "check_weights", "find_duplicate_pairs",
    "resolve_threads")
