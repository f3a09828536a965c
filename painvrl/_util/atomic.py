"""Atomic file writes: a reader sees the old file, the whole new file, or no file; never half."""
from __future__ import annotations

import os
import tempfile
from typing import BinaryIO, Callable


def _umask() -> int:
    """The process's umask, read without changing it (Linux), else the usual 0o022."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def write_atomic(path, write: Callable[[BinaryIO], None], *, prefix: str = ".tmp-",
                 suffix: str = "") -> None:
    """Write ``path`` through ``write(fh)`` into a temporary file beside it, then rename.

    The temporary file (``prefix`` + random + ``suffix``, in the same directory so the
    rename stays on one file system) is flushed to disk (fsync), renamed over ``path``
    (``os.replace``, atomic on POSIX) and the directory synced so the rename survives a
    crash.  The file gets the permissions ``open()`` would give it (0o666 less the
    umask), not ``mkstemp``'s 0o600.  On any error, Ctrl-C included, the temporary file
    is removed and the error re-raised; a killed process can leave only the temporary file.
    """
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o666 & ~_umask())
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
