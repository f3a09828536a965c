"""``run_sweep``: every cell of a grid as one Dask task, results stored as they arrive.

The client process checks the grid and the store, submits the cells not yet stored,
and writes each finished cell's rows to the store itself (so workers need no shared
file system).  Dask reruns the task of a worker that dies; a cell is written only
once its task has returned, whole, so a lost worker, a Ctrl-C or a killed client
leave the store holding complete cells only, and the next call runs the rest.
"""
from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from typing import Any, List, Tuple

from .cell import run_cell
from .grid import parse_grid
from .store import SweepStore

__all__ = ["run_sweep", "SweepRun", "local_cluster_size"]


@dataclass(frozen=True)
class SweepRun:
    """What :func:`run_sweep` did.

    Attributes
    ----------
    store : str
    sweep_id : str
    written : tuple of str
        Keys of the cells run and stored by this call.
    skipped : tuple of str
        Keys of the cells already in the store (not run again).
    seconds : float
        Wall time of the call.
    """

    store: str
    sweep_id: str
    written: Tuple[str, ...]
    skipped: Tuple[str, ...]
    seconds: float


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def local_cluster_size(n_threads_per_task: int) -> int:
    """Worker processes of the automatic LocalCluster: as many as fit ``cores // threads``."""
    return max(1, _cores() // n_threads_per_task)


def _connect(client: Any, n_threads_per_task: int):
    """``(client, things to close afterwards)`` for ``run_sweep``'s ``client`` argument."""
    from distributed import Client, LocalCluster

    if isinstance(client, Client):
        return client, []
    if isinstance(client, str):
        c = Client(client)
        return c, [c]
    if client is not None:
        raise TypeError(f"run_sweep: client must be None, a dask.distributed Client or a "
                        f"scheduler address str, got {type(client).__name__}")
    # One task per worker process (threads_per_worker=1), each running the C core with
    # n_threads_per_task threads: workers x threads <= cores.  No dashboard: it needs
    # bokeh and a free port; pass your own Client to get one.
    cluster = LocalCluster(n_workers=local_cluster_size(n_threads_per_task),
                           threads_per_worker=1, processes=True, dashboard_address=":0")
    c = Client(cluster)
    return c, [c, cluster]


def run_sweep(grid, *, client=None, store="results.parquet", n_threads_per_task: int = 1
              ) -> SweepRun:
    """Run every cell of ``grid`` not yet in ``store``, one Dask task per cell.

    Parameters
    ----------
    grid : dict
        Datasets, models, seeds and parameter settings (see
        :mod:`painvrl.sweep.grid`).  A cell is one (dataset, model, setting, seed).
    client : None, dask.distributed.Client or str, optional
        None: start a ``LocalCluster`` of ``cores // n_threads_per_task`` worker
        processes with one task each, and close it at the end.  A Client: use its
        cluster as it is (give its workers one thread each, ``--nthreads 1``, so tasks
        do not share a process).  A str: the address of a scheduler to connect to.
    store : path, default "results.parquet"
        Directory of the results (see :mod:`painvrl.sweep.store`); created if absent.
        It must hold this grid's cells or nothing: a changed grid needs a new store.
        One ``run_sweep`` per store at a time.
    n_threads_per_task : int, default 1
        Threads of the C core in each task; BLAS is held to as many (threadpoolctl).
        Results do not depend on it.

    Returns
    -------
    SweepRun
        The cells written and skipped; read the rows with :func:`load_sweep`.

    Raises
    ------
    TypeError, ValueError
        A bad grid or store, before any task starts.
    RuntimeError
        Some cells failed (their error is chained); every other cell is stored,
        so a fixed grid's rerun runs only the failed ones.
    """
    start = time.perf_counter()
    if isinstance(n_threads_per_task, bool) or not isinstance(n_threads_per_task, int) \
            or n_threads_per_task < 1:
        raise ValueError(f"run_sweep: n_threads_per_task must be an int >= 1, got "
                         f"{n_threads_per_task!r}")
    if client is None and n_threads_per_task > _cores():
        raise ValueError(f"run_sweep: n_threads_per_task={n_threads_per_task} exceeds this "
                         f"machine's {_cores()} cores")
    parsed = parse_grid(grid)
    st = SweepStore(store)
    st.open_for(parsed.sweep_id, parsed.keys)
    st.remove_temporary()
    done = st.stored()
    todo = [c for c in parsed.cells if c.key not in done]
    skipped = tuple(c.key for c in parsed.cells if c.key in done)
    written: List[str] = []
    if todo:
        _run(todo, client, n_threads_per_task, st, written)
    return SweepRun(store=st.path, sweep_id=parsed.sweep_id, written=tuple(written),
                    skipped=skipped, seconds=time.perf_counter() - start)


def _run(cells, client, n_threads: int, st: SweepStore, written: List[str]) -> None:
    """Submit ``cells``, store each as it finishes; raise at the end if any failed."""
    from distributed import as_completed

    c, to_close = _connect(client, n_threads)
    futures = {}
    run = uuid.uuid4().hex[:8]  # task keys unique to this call: a cluster may remember old ones
    try:
        # Seed-major order: a worker's next task often needs the split it has just built
        # (sources.py keeps the last few), as the scheduler hands out tasks in this order.
        for cell in sorted(cells, key=lambda x: (x.dataset.name, x.seed)):
            fut = c.submit(run_cell, cell, n_threads, key=f"painvrl-cell-{cell.key}-{run}")
            futures[fut.key] = (fut, cell)
        failures = []
        for fut in as_completed([f for f, _ in futures.values()]):
            cell = futures[fut.key][1]
            if fut.status == "error":
                failures.append((cell, fut.exception()))
                continue
            st.write(cell.key, fut.result())
            written.append(cell.key)
        if failures:
            cell, exc = failures[0]
            raise RuntimeError(
                f"run_sweep: {len(failures)} of {len(cells)} cell(s) failed (the others are "
                f"stored; a rerun runs only the failed ones); first: {cell.model.name} on "
                f"{cell.dataset.name}, params {cell.params_json}, seed {cell.seed}: "
                f"{type(exc).__name__}: {exc}") from exc
    finally:
        for fut, _ in futures.values():
            if not fut.done():
                fut.cancel()
            fut.release()
        for thing in to_close:
            thing.close()
