"""BLAS threads: painvrl's kernels call BLAS with one thread inside their own partition.

Whatever threadpoolctl or the environment set, a kernel call never runs more busy
threads than the ``n_threads`` it was given (no oversubscription), and the BLAS
library painvrl links is held at one thread around every call (README, Determinism).
"""
import os
import threading
import time

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import painvrl
from painvrl import _core

LINKED = _core.blas_info()
OPENBLAS = LINKED["num_threads"] is not None


def _our_blas():
    """threadpoolctl's entry for the BLAS library painvrl links (scipy-openblas32 by default)."""
    from painvrl import _blas  # noqa: F401  (the module that may have loaded it)

    for entry in threadpool_info():
        if entry["user_api"] == "blas" and "scipy_openblas32" in entry["filepath"]:
            return entry
    return None


def _running_threads():
    """Threads of this process in state R (running or runnable), from /proc."""
    n = 0
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:  # the thread ended between listdir and open
            continue
        n += state == "R"
    return n


def _busy_during(call, settle=0.05, duration=0.5):
    """How many threads are in state R at each sample while `call` runs, repeatedly for at
    least `duration` seconds, in another thread, this one excluded (a fast machine
    finishes one call early).

    The first `settle` seconds are not sampled: OpenMP threads of an earlier call
    may still spin there before they sleep.
    """
    done = threading.Event()
    def repeat():
        end = time.perf_counter() + duration
        while time.perf_counter() < end:
            call()
        done.set()

    worker = threading.Thread(target=repeat)
    worker.start()
    start, counts = time.perf_counter(), []
    while not done.is_set():
        if time.perf_counter() - start > settle:
            counts.append(_running_threads() - 1)
        time.sleep(0.001)
    worker.join()
    return np.array(counts)


@pytest.mark.skipif(not OPENBLAS, reason="painvrl was linked against a CBLAS other than OpenBLAS")
def test_linked_openblas_is_held_at_one_thread_around_every_call(rng):
    U = rng.normal(size=(50, 8)).astype(np.float32)
    V = rng.normal(size=(70, 8)).astype(np.float32)
    with threadpool_limits(limits=4, user_api="blas"):
        painvrl.topk(U, V, 5, n_threads=2)
        assert _core.blas_info()["num_threads"] == 1
    if "scipy_" in LINKED["sgemm_symbol"]:
        entry = _our_blas()
        assert entry is not None, "threadpoolctl does not see the scipy-openblas32 library"
        assert entry["version"] and entry["internal_api"] == "openblas"


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux /proc")
@pytest.mark.parametrize("n_threads", [1, 2])
def test_a_kernel_call_runs_at_most_n_threads_busy_threads(n_threads):
    # ~10 GFLOP of sgemm in top-k: long enough to sample, about a second on one core.
    rng = np.random.default_rng(0)
    U = rng.normal(size=(6000, 64)).astype(np.float32)
    V = rng.normal(size=(12000, 64)).astype(np.float32)
    with threadpool_limits(limits=4, user_api="blas"):  # a user who raised BLAS threads
        counts = _busy_during(lambda: painvrl.topk(U, V, 10, n_threads=n_threads))
    assert counts.size > 10, "the call ended before it could be sampled: make it larger"
    # Threads that oversubscribe (BLAS threading inside the call) are busy the whole call, so
    # they show in most samples (4 busy at n_threads=1 with the hold disabled); a thread of
    # another part of the process (e.g. an earlier test's helper thread waking up) in a
    # few samples is not the call's.
    over = float(np.mean(counts > n_threads))
    assert over <= 0.1, (f"{counts.max()} busy threads during a call told to use {n_threads}, "
                         f"in {100 * over:.0f} % of {counts.size} samples")
