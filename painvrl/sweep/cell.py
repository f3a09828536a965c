"""One cell, run in the current process: threads pinned, timed, measured, labelled.

:func:`run_cell` is the whole of a sweep's task; called directly, one cell after
another, it is the serial (no Dask) run that a sweep's stored rows equal bit for bit.
"""
from __future__ import annotations

import functools
import os
import subprocess
import time
from typing import Optional

import pandas as pd

from .entries import fit_and_score
from .grid import Cell
from .sources import load

__all__ = ["run_cell", "RUNNER_COLUMNS", "MEASURED_COLUMNS", "PROVENANCE_COLUMNS"]

#: Columns the runner puts first in every row.
RUNNER_COLUMNS = ("cell", "dataset", "model", "params", "seed")
#: Columns that measure the run rather than its result (they differ between runs).
MEASURED_COLUMNS = ("fit_seconds", "load_seconds", "cell_seconds", "cpu_seconds", "peak_rss_mb")
#: Columns naming the code that produced the rows.
PROVENANCE_COLUMNS = ("painvrl_version", "git_hash")


@functools.lru_cache(maxsize=1)
def git_hash() -> str:
    """The painvrl source's commit (``+dirty`` with uncommitted changes), or ``""`` outside git."""
    here = os.path.dirname(os.path.abspath(__file__))

    def git(*args: str) -> Optional[str]:
        try:
            out = subprocess.run(["git", *args], cwd=here, capture_output=True, text=True,
                                 timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    sha = git("rev-parse", "HEAD")
    if not sha:
        return ""
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return sha + ("+dirty" if dirty else "")


def _reset_peak_rss() -> bool:
    """Restart the kernel's peak-RSS counter of this process (Linux >= 4.0); False if it cannot."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_mb() -> float:
    """Peak resident memory (MiB): since the last reset on Linux, else since the process started."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _label(frame: pd.DataFrame, cell: Cell) -> pd.DataFrame:
    """Runner columns first; an entry point's own clashing columns renamed, never lost."""
    frame = frame.copy()
    if "seed" in frame.columns and (frame["seed"] == cell.seed).all():
        frame = frame.drop(columns="seed")
    taken = set(RUNNER_COLUMNS) | set(MEASURED_COLUMNS) | set(PROVENANCE_COLUMNS)
    frame = frame.rename(columns={c: ("variant" if c == "model" else f"entry_{c}")
                                  for c in frame.columns if c in taken})
    for i, (name, value) in enumerate((("cell", cell.key), ("dataset", cell.dataset.name),
                                       ("model", cell.model.name),
                                       ("params", cell.params_json), ("seed", cell.seed))):
        frame.insert(i, name, value)
    return frame


def run_cell(cell: Cell, n_threads: int = 1) -> pd.DataFrame:
    """Run one cell here and return its tidy rows.

    The dataset comes from this process's cache (loaded on first use); BLAS is held
    at ``n_threads`` threads (threadpoolctl) and the C core runs ``n_threads``.

    Parameters
    ----------
    cell : Cell
        From :func:`painvrl.sweep.parse_grid` (``grid.cells``).
    n_threads : int, default 1

    Returns
    -------
    pandas.DataFrame
        ``cell``, ``dataset``, ``model``, ``params`` (canonical JSON), ``seed``, the
        model's tidy result (``split``, ``metric``, ``k``, ``value``, ``n_users`` for
        an estimator), then ``fit_seconds`` (the fit, or the entry point's call),
        ``load_seconds`` (the data and split: ~0 when this process had them cached),
        ``cell_seconds`` (all of it, scoring included), ``cpu_seconds`` (CPU time of
        this process over the cell, every thread), ``peak_rss_mb`` (this cell's
        peak on Linux), ``painvrl_version`` and ``git_hash``.
    """
    from threadpoolctl import threadpool_limits

    from .. import __version__

    start, cpu = time.perf_counter(), time.process_time()
    with threadpool_limits(limits=n_threads, user_api="blas"):
        _reset_peak_rss()
        dataset, split = load(cell.dataset, cell.seed, n_threads)
        loaded = time.perf_counter() - start
        frame, seconds = fit_and_score(cell.model, dataset, split, seed=cell.seed,
                                       params=cell.params, n_threads=n_threads,
                                       loader_id=cell.dataset.loader_id)
        peak = _peak_rss_mb()
    frame = _label(frame, cell)
    frame["fit_seconds"] = seconds
    frame["load_seconds"] = loaded
    frame["cell_seconds"] = time.perf_counter() - start
    frame["cpu_seconds"] = time.process_time() - cpu
    frame["peak_rss_mb"] = peak
    frame["painvrl_version"] = __version__
    frame["git_hash"] = git_hash()
    return frame
