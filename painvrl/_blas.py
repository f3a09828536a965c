"""The OpenBLAS that ``painvrl._core`` is linked against, made loadable.

An installed wheel finds ``libscipy_openblas`` through the extension's own rpath
(``$ORIGIN/../scipy_openblas32/lib``). An in-place or sanitizer build tree has no
such neighbour, so there the library is loaded here first, with ``RTLD_LOCAL``:
the dynamic loader then matches the extension's dependency by its soname, and the
library's symbols stay out of the global namespace, where they could capture the
BLAS calls of other extensions (SciPy's wheels carry a copy of their own).
``import scipy_openblas32`` would load it with ``RTLD_GLOBAL``, so it is not used.
"""
import ctypes
import importlib.util
import os

_handle = None  # the loaded library, kept alive for the life of the process


def preload_openblas():
    """Load ``libscipy_openblas`` from the installed ``scipy_openblas32`` wheel.

    Returns True when it was found and loaded.
    """
    global _handle
    spec = importlib.util.find_spec("scipy_openblas32")
    if spec is None or not spec.submodule_search_locations:
        return False
    libdir = os.path.join(list(spec.submodule_search_locations)[0], "lib")
    names = sorted(n for n in os.listdir(libdir) if n.startswith("libscipy_openblas"))
    if not names:
        return False
    _handle = ctypes.CDLL(os.path.join(libdir, names[0]), mode=os.RTLD_LOCAL)
    return True


def import_core():
    """Import ``painvrl._core``, loading its OpenBLAS first where its rpath cannot."""
    try:
        from . import _core
    except ImportError as exc:
        if "libscipy_openblas" not in str(exc) or not preload_openblas():
            raise
        from . import _core
    return _core
