"""Build painvrl._core: C99 kernels + a thin CPython/NumPy binding, linked to CBLAS.

BLAS is found with pkg-config, trying Debian's OpenMP build of OpenBLAS first
(its threads share the OpenMP pool of our kernels and run single-threaded
inside our parallel regions), then any ``openblas``, ``cblas`` or ``blas``.
``PAINVRL_BLAS_CFLAGS`` / ``PAINVRL_BLAS_LIBS`` override the search.
``PAINVRL_WERROR=1`` turns warnings into errors. ``PAINVRL_SANITIZE=1`` builds with
AddressSanitizer + UndefinedBehaviorSanitizer (-O1 -g, UB is fatal); such a build
refuses to go in place, so it cannot replace the normal extension: build it with
``setup.py build --build-base build/asan --build-lib build/asan/lib`` and import it
from there with libasan preloaded (``./dev.sh test`` does both).
"""
import glob
import os
import shlex
import subprocess
import sysconfig

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def _pkg_config(name, env):
    try:
        out = subprocess.run(
            ["pkg-config", "--cflags", "--libs", name],
            check=True, capture_output=True, text=True, env=env,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return shlex.split(out)


def find_blas():
    """Return (compile_args, link_args) for a CBLAS provider."""
    if os.environ.get("PAINVRL_BLAS_LIBS"):
        return (shlex.split(os.environ.get("PAINVRL_BLAS_CFLAGS", "")),
                shlex.split(os.environ["PAINVRL_BLAS_LIBS"]))
    multiarch = sysconfig.get_config_var("MULTIARCH") or ""
    omp_pc = f"/usr/lib/{multiarch}/openblas-openmp/pkgconfig"
    candidates = []
    if multiarch and os.path.isdir(omp_pc):
        env = dict(os.environ, PKG_CONFIG_PATH=omp_pc)
        candidates.append(("openblas", env))
    for name in ("openblas", "cblas", "blas"):
        candidates.append((name, None))
    for name, env in candidates:
        flags = _pkg_config(name, env)
        if flags is None:
            continue
        cflags = [f for f in flags if f.startswith("-I")]
        libs = [f for f in flags if not f.startswith("-I")]
        # Pin the run-time library to the directory we compiled against, so the
        # system's BLAS alternative cannot swap in another threading model.
        libs += [f"-Wl,-rpath,{f[2:]}" for f in flags if f.startswith("-L")]
        return cflags, libs
    raise RuntimeError(
        "painvrl needs a CBLAS library (OpenBLAS). On Debian/Ubuntu: "
        "apt-get install libopenblas-openmp-dev; or set PAINVRL_BLAS_LIBS.")


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
