"""Sweeps: grids of datasets x models x settings x seeds, one Dask task per cell.

* ``grid.py``: the grid, its checks and its cells (``parse_grid``); ``spec.py``: the
  canonical JSON and hashes that identify a cell.
* ``sources.py``: datasets (loader names, callables, a per-worker cache);
  ``entries.py``: models (estimator classes, entry points).
* ``cell.py``: one cell run in the current process (``run_cell``); ``runner.py``:
  ``run_sweep`` on a Dask cluster; ``store.py``: the Parquet store.
* ``results.py``: ``load_sweep`` and ``summarise``; ``plot.py``: ``plot_metric``,
  ``plot_front``.

Dask (``distributed``) and pyarrow are imported only when a sweep runs or is read, so
``import painvrl`` works without them (``pip install "painvrl[sweep]"``).
"""
from .cell import run_cell
from .entries import MODELS, register_model
from .grid import Cell, Grid, parse_grid
from .plot import plot_front, plot_metric
from .results import load_sweep, summarise
from .runner import SweepRun, run_sweep
from .sources import LOADERS, register_dataset

__all__ = ["run_sweep", "load_sweep", "summarise", "plot_metric", "plot_front", "parse_grid",
           "run_cell", "Cell", "Grid", "SweepRun", "MODELS", "LOADERS", "register_model",
           "register_dataset"]
