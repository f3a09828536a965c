"""Canonical, hashable descriptions of a sweep's pieces.

A cell is identified by the SHA-256 of its full specification written as canonical
JSON (sorted keys, no whitespace, tuples as lists, NumPy scalars as Python numbers),
so the same cell gets the same key in every process, on every machine and in every
later session: that key is what makes a sweep resumable.
"""
from __future__ import annotations

import hashlib
import json
import numbers
from typing import Any

import numpy as np


def canonical(value: Any, where: str) -> Any:
    """``value`` as plain JSON data (dicts with str keys, lists, str, bool, int, float, None).

    Raises
    ------
    TypeError
        A value with no stable textual form (an array, a callable, an object),
        named by ``where``.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        if not np.isfinite(value):
            raise TypeError(f"{where} must be finite to be hashed, got {value!r}")
        return value
    if isinstance(value, (list, tuple)):
        return [canonical(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where} must have str keys, got {k!r}")
            out[k] = canonical(v, f"{where}[{k!r}]")
        return out
    raise TypeError(f"{where} must be a number, str, bool, None, or a list/tuple/dict of them "
                    f"(so the cell has a stable hash), got {type(value).__name__}")


def to_json(value: Any) -> str:
    """Canonical JSON text of already-canonical data."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def digest(value: Any, n: int = 16) -> str:
    """The first ``n`` hex digits of the SHA-256 of ``value``'s canonical JSON."""
    return hashlib.sha256(to_json(value).encode("utf-8")).hexdigest()[:n]


def qualified_name(obj: Any) -> str:
    """``module.qualname`` of a class or function (what a spec records for a callable)."""
    module = getattr(obj, "__module__", None) or "?"
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) \
        or type(obj).__qualname__
    return f"{module}.{name}"
