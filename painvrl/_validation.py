"""Input checks shared by the Python API: clear errors that name the parameter."""
from __future__ import annotations

import numbers

import numpy as np


def as_float_array(x, name: str, *, ndim: int, dtype=np.float32, shape=None,
                   allow_empty: bool = True) -> np.ndarray:
    """C-contiguous float array of ``ndim`` dimensions with only finite values."""
    try:
        arr = np.asarray(x)
    except Exception as exc:  # pragma: no cover - numpy's own message is clear enough
        raise TypeError(f"{name} must be array-like, got {type(x).__name__}") from exc
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {arr.shape}")
    if shape is not None:
        for axis, (got, want) in enumerate(zip(arr.shape, shape)):
            if want is not None and got != want:
                raise ValueError(f"{name} must have {want} entries on axis {axis}, "
                                 f"got shape {arr.shape}")
    if not allow_empty and arr.size == 0:
        raise ValueError(f"{name} is empty")
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def as_index_array(x, name: str, *, high: int, ndim: int = 1) -> np.ndarray:
    """C-contiguous int64 ids, each in [0, high)."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and arr.size and np.all(np.mod(arr, 1) == 0):
            raise TypeError(f"{name} must hold integer ids, got dtype {arr.dtype} "
                            f"(convert with .astype(np.int64))")
        if arr.size or arr.dtype.kind not in "f":
            raise TypeError(f"{name} must hold integer ids, got dtype {arr.dtype}")
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= high):
        raise ValueError(f"{name} must lie in [0, {high}), got values in "
                         f"[{arr.min()}, {arr.max()}]")
    return arr


def check_positive_int(value, name: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_nonneg_float(value, name: str, *, strictly_positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value) or value < 0 or (strictly_positive and value == 0):
        bound = "> 0" if strictly_positive else ">= 0"
        raise ValueError(f"{name} must be finite and {bound}, got {value}")
    return value


def check_choice(value, name: str, choices) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def resolve_threads(n_threads) -> int:
    """None or 0 -> the library default (OpenMP's), otherwise a positive count."""
    if n_threads is None or n_threads == 0:
        return 0
    return check_positive_int(n_threads, "n_threads")
