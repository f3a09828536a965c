"""Model files: versioned, checksummed, written atomically.

A model file is a NumPy ``.npz`` archive with one extra member, ``__meta__``: a
JSON document holding the format name and version, the estimator's class and
hyperparameters, and a SHA-256 of every array.  Writing goes to a temporary
file in the destination folder, is fsync'ed, then renamed over the target, so
an interrupted save never leaves a half-written file where a good one was.
"""
from __future__ import annotations

import hashlib
import json
import os
import zipfile
from typing import Any, Dict, Tuple

import numpy as np

from .atomic import write_atomic

FORMAT_NAME = "painvrl-model"
FORMAT_VERSION = 1


class ModelFileError(ValueError):
    """A model file is truncated, corrupted, foreign or of an unknown version."""


def _digest(arr: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(str(arr.dtype).encode())
    h.update(str(arr.shape).encode())
    h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def save_model_file(path, meta: Dict[str, Any], arrays: Dict[str, np.ndarray]) -> None:
    """Write ``arrays`` and ``meta`` to ``path`` atomically."""
    path = os.fspath(path)
    doc = {"format": FORMAT_NAME, "version": FORMAT_VERSION, **meta,
           "sha256": {k: _digest(v) for k, v in arrays.items()}}
    def write(fh) -> None:
        payload = dict(arrays)
        payload["__meta__"] = np.frombuffer(json.dumps(doc).encode(), dtype=np.uint8)
        np.savez(fh, **payload)

    write_atomic(path, write, prefix=".painvrl-", suffix=".tmp")


def load_model_file(path) -> Tuple[Dict[str, Any], Dict[str, np.ndarray]]:
    """Read a file written by :func:`save_model_file`, verifying version and checksums."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as npz:
            if "__meta__" not in npz.files:
                raise ModelFileError(f"{path} is not a painvrl model file (no metadata)")
            doc = json.loads(npz["__meta__"].tobytes().decode())
            arrays = {k: npz[k] for k in npz.files if k != "__meta__"}
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError,
            json.JSONDecodeError, UnicodeDecodeError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ModelFileError(f"{path} is truncated, corrupted or not a painvrl model file "
                             f"({type(exc).__name__}: {exc})") from exc
    if doc.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{path} is not a painvrl model file")
    if doc.get("version") != FORMAT_VERSION:
        raise ModelFileError(f"{path} has format version {doc.get('version')}; this painvrl "
                             f"reads version {FORMAT_VERSION}")
    sums = doc.get("sha256", {})
    if set(sums) != set(arrays):
        raise ModelFileError(f"{path}: the arrays do not match the metadata")
    for name, arr in arrays.items():
        if _digest(arr) != sums[name]:
            raise ModelFileError(f"{path}: checksum mismatch in array {name!r}")
    return doc, arrays
