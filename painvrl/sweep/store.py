"""A sweep's results on disk: a directory of Parquet files, one per cell.

Layout of ``store`` (a Parquet dataset that pyarrow, pandas, Dask or DuckDB read as one
table; files starting with ``_`` or ``.`` are skipped by all of them)::

    _sweep.json              the sweep's identity (its grid's digest) and cell count
    cell-<key>.parquet       one cell's rows, <key> the cell's 16-hex-digit hash
    .tmp-<random>            a file being written (never read)

Each cell file is written to a temporary file in the same directory, flushed to
disk (fsync), then renamed over its final name (``os.replace``, atomic on POSIX), and
the directory is synced: a reader sees the whole file or no file, a crash leaves at
most a temporary file, and writing a cell twice leaves one file.
"""
from __future__ import annotations

import json
import os
import uuid
from typing import Dict, Iterable, Set

import pandas as pd

from .._util.atomic import write_atomic

__all__ = ["SweepStore"]

_MANIFEST = "_sweep.json"
_PREFIX, _SUFFIX = "cell-", ".parquet"
_TMP = ".tmp-"
_FORMAT = 1


class SweepStore:
    """The Parquet store of one sweep at ``path`` (a directory, created when needed)."""

    def __init__(self, path):
        self.path = os.fspath(path)

    def cell_path(self, key: str) -> str:
        return os.path.join(self.path, f"{_PREFIX}{key}{_SUFFIX}")

    def stored(self) -> Set[str]:
        """Keys of the cells stored (whole files only)."""
        if not os.path.isdir(self.path):
            return set()
        return {name[len(_PREFIX):-len(_SUFFIX)] for name in os.listdir(self.path)
                if name.startswith(_PREFIX) and name.endswith(_SUFFIX)}

    def manifest(self) -> Dict:
        with open(os.path.join(self.path, _MANIFEST)) as f:
            return json.load(f)

    # -- opening a store for a sweep

    def open_for(self, sweep_id: str, keys: Iterable[str], func: str = "run_sweep") -> None:
        """Create or check the store for the sweep ``sweep_id`` made of the cells ``keys``.

        Raises
        ------
        ValueError
            ``path`` is a file, cannot be created or written, holds another sweep (its
            manifest or a cell file not of this grid), or holds files that are not a
            sweep's.
        """
        where = f"{func}: store {self.path!r}"
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise ValueError(f"{where} is a file; a store is a directory (e.g. results.parquet/)")
        try:
            os.makedirs(self.path, exist_ok=True)
            probe = os.path.join(self.path, f"{_TMP}probe-{uuid.uuid4().hex}")
            with open(probe, "wb"):
                pass
            os.remove(probe)
        except OSError as exc:
            raise ValueError(f"{where} is not writable: {exc}") from exc
        manifest = os.path.join(self.path, _MANIFEST)
        keys = set(keys)
        if os.path.exists(manifest):
            try:
                theirs = self.manifest().get("sweep_id")
            except (OSError, ValueError) as exc:
                raise ValueError(f"{where}: unreadable {_MANIFEST}: {exc}") from exc
            if theirs != sweep_id:
                raise ValueError(f"{where} holds another sweep (id {theirs}, this grid's is "
                                 f"{sweep_id}): a store holds one grid's cells; use a new store "
                                 f"path for a changed grid")
        else:
            foreign = sorted(n for n in os.listdir(self.path) if not n.startswith(_TMP))
            if foreign:
                raise ValueError(f"{where} is not empty and holds no sweep ({_MANIFEST} missing): "
                                 f"{foreign[:3]}{' ...' if len(foreign) > 3 else ''}")
            text = json.dumps({"format": _FORMAT, "sweep_id": sweep_id, "n_cells": len(keys)},
                              indent=1).encode()
            write_atomic(manifest, lambda fh: fh.write(text), prefix=_TMP)
        strangers = sorted(self.stored() - keys)
        if strangers:
            raise ValueError(f"{where} holds {len(strangers)} cell file(s) that are not of this "
                             f"grid (e.g. {self.cell_path(strangers[0])}); use a new store path")

    # -- writing

    def write(self, key: str, frame: pd.DataFrame) -> None:
        """Store one cell's rows atomically (a second write of the same cell replaces it whole)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame, preserve_index=False)
        write_atomic(self.cell_path(key), lambda fh: pq.write_table(table, fh), prefix=_TMP)

    def remove_temporary(self) -> int:
        """Delete temporary files left by an interrupted write; returns how many."""
        if not os.path.isdir(self.path):
            return 0
        names = [n for n in os.listdir(self.path) if n.startswith(_TMP)]
        for name in names:
            os.remove(os.path.join(self.path, name))
        return len(names)

    # -- reading

    def read(self) -> pd.DataFrame:
        """Every stored cell's rows, in cell-key order."""
        import pyarrow.parquet as pq

        keys = sorted(self.stored())
        if not keys:
            raise ValueError(f"load_sweep: store {self.path!r} holds no cell")
        return pd.concat([pq.read_table(self.cell_path(k)).to_pandas() for k in keys],
                         ignore_index=True)
