"""Build painvrl._core: C99 kernels + a thin CPython/NumPy binding, linked to CBLAS.

BLAS comes from PyPI by default: the ``scipy-openblas32`` wheel (the OpenBLAS that
NumPy and SciPy build against), a build and run-time dependency, so ``pip install .``
needs no root and no system BLAS.  Its symbols carry the prefix ``scipy_``
(``-DPV_BLAS_PREFIX=scipy_``).  The extension finds the library at run time through
an rpath relative to itself (``$ORIGIN/../scipy_openblas32/lib``, the layout of an
installed wheel); ``painvrl/_blas.py`` loads it for the other layouts (an in-place
or sanitizer build tree).

``PAINVRL_BLAS_LIBS`` (with ``PAINVRL_BLAS_CFLAGS``) opts into another CBLAS, e.g. a
system OpenBLAS: ``PAINVRL_BLAS_LIBS="-lopenblas"``.  Whatever the provider, painvrl
calls BLAS with one thread inside its own fixed partition of the work, so results
do not depend on the BLAS kernel's thread split (README, Determinism).

``PAINVRL_WERROR=1`` turns warnings into errors. ``PAINVRL_SANITIZE=1`` builds with
AddressSanitizer + UndefinedBehaviorSanitizer (-O1 -g, UB is fatal); such a build
refuses to go in place, so it cannot replace the normal extension: build it with
``setup.py build --build-base build/asan --build-lib build/asan/lib`` and import it
from there with libasan preloaded (``./dev.sh test`` does both).
"""
import glob
import os
import shlex

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def find_blas():
    """Return (compile_args, link_args) for the CBLAS provider."""
    if os.environ.get("PAINVRL_BLAS_LIBS"):
        return (shlex.split(os.environ.get("PAINVRL_BLAS_CFLAGS", "")),
                shlex.split(os.environ["PAINVRL_BLAS_LIBS"]))
    try:
        import scipy_openblas32
    except ImportError:
        raise SystemExit(
            "setup.py: painvrl links the scipy-openblas32 wheel (a build requirement in "
            "pyproject.toml: pip installs it); without build isolation, install it first "
            "(pip install scipy-openblas32), or set PAINVRL_BLAS_LIBS to use another CBLAS")
    cflags = ["-I" + scipy_openblas32.get_include_dir(), "-DPV_BLAS_PREFIX=scipy_"]
    libs = ["-L" + scipy_openblas32.get_lib_dir(), "-l" + scipy_openblas32.get_library(),
            "-Wl,-rpath,$ORIGIN/../scipy_openblas32/lib"]
    return cflags, libs


class BuildExt(build_ext):
    def finalize_options(self):
        super().finalize_options()
        import numpy  # resolved late so metadata-only commands need no numpy

        blas_cflags, blas_libs = find_blas()
        warn = ["-Wall", "-Wextra", "-Wshadow", "-Wstrict-prototypes",
                "-Wmissing-prototypes", "-Wno-unused-parameter"]
        if os.environ.get("PAINVRL_WERROR") == "1":
            warn.append("-Werror")
        opt = ["-O3", "-fno-math-errno", "-fopenmp"]
        link = ["-fopenmp"]
        if os.environ.get("PAINVRL_SANITIZE") == "1":
            if self.inplace:
                raise SystemExit("setup.py: PAINVRL_SANITIZE=1 builds must not go in place "
                                 "(they would replace painvrl/_core); use --build-lib")
            sanitize = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
                        "-fno-omit-frame-pointer"]
            opt = ["-O1", "-g", "-fno-math-errno", "-fopenmp"] + sanitize
            link += sanitize
        for ext in self.extensions:
            ext.include_dirs.insert(0, numpy.get_include())
            ext.extra_compile_args = ["-std=gnu11"] + opt + warn + blas_cflags
            ext.extra_link_args = link + blas_libs


sources = sorted(glob.glob("csrc/kernels/*.c") + glob.glob("csrc/binding/*.c"))
headers = sorted(glob.glob("csrc/**/*.h", recursive=True))

setup(
    ext_modules=[Extension("painvrl._core", sources=sources, depends=headers,
                           libraries=["m"])],
    cmdclass={"build_ext": BuildExt},
)
