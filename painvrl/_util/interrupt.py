"""Ctrl-C between units of work, never inside one (issue #5: an interrupt leaves
the estimator at its last completed epoch)."""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator


@contextlib.contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Hold SIGINT until the block ends, then deliver it to the previous handler.

    The C trainer updates the parameter tables in place with the GIL released, and
    Python can only raise KeyboardInterrupt once the call returns: after the tables
    moved on but before the epoch and step counters did.  Holding the signal until
    the block (call + bookkeeping) ends keeps parameters and counters together.  It
    adds no latency, since the interrupt could not land inside the C call anyway.
    Outside the main thread, or when SIGINT is not handled by Python, it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if not callable(previous):
        yield
        return
    held = []
    signal.signal(signal.SIGINT, lambda signum, frame: held.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if held:
            previous(signal.SIGINT, held[-1])
