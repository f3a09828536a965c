#!/usr/bin/env bash
# painvrl set-up and entry points.  Usage:
#   ./dev.sh run     build into .venv, then train + evaluate the default model (the main job)
#   ./dev.sh test    build into .venv, then run the whole test suite: the C kernels alone
#                    under AddressSanitizer + UBSan, pytest, then pytest again (tests marked
#                    slow left out) against painvrl._core built with ASan + UBSan into
#                    build/asan/lib (a copy of the package; the normal build is untouched)
#   ./dev.sh bench   build into .venv, then run the benchmarks
# Everything it needs (OpenBLAS from Debian, a virtual environment, Python
# packages from PyPI) it installs itself; a second call reuses them.
set -euo pipefail
cd "$(dirname "$0")"
VENV="${PAINVRL_VENV:-.venv}"

ensure_system() {
    local need=()
    if [ ! -d "/usr/lib/$(gcc -print-multiarch)/openblas-openmp" ] && ! pkg-config --exists openblas 2>/dev/null \
        && [ -z "${PAINVRL_BLAS_LIBS:-}" ]; then
        need+=(libopenblas-openmp-dev)
    fi
    command -v pkg-config >/dev/null || need+=(pkg-config)
    command -v make >/dev/null || need+=(make)
    [ ${#need[@]} -eq 0 ] && return
    echo "dev.sh: installing ${need[*]} (Debian packages)" >&2
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
}

ensure_venv() {
    if [ ! -x "$VENV/bin/python" ]; then
        python3 -m venv "$VENV"
    fi
    "$VENV/bin/python" -m pip install -q --upgrade pip "setuptools>=77" wheel
    "$VENV/bin/python" -m pip install -q "numpy>=1.24" "pandas>=1.5" "tqdm>=4.60" "threadpoolctl>=3.1" \
        "pytest>=7" "hypothesis>=6" "scipy>=1.9" "nbclient>=0.7" "nbformat>=5.1" "ipykernel>=6" "matplotlib>=3.5"
    PAINVRL_WERROR=1 "$VENV/bin/python" -m pip install -q --no-build-isolation -e .
}

# pytest against painvrl._core built with -fsanitize=address,undefined into build/asan/lib.
# - CPython is not instrumented, so libasan is preloaded (it must come first).
# - The console script pytest, not `python -m pytest`, whose sys.path[0] would be the
#   repository and its normal build; PAINVRL_EXPECT_CORE makes conftest.py check the build.
# - PYTHONMALLOC=malloc: ASan sees Python's small allocations too, not only NumPy's.
# - detect_leaks=0: CPython and NumPy keep memory alive until exit, so LeakSanitizer would
#   report thousands of their blocks (csrc/tests checks the kernels for leaks,
#   tests/test_memory.py the binding).
# - The first report aborts (non-zero status; pytest's faulthandler names the test), and
#   --capture=sys lets the report, written by C to fd 2, through pytest's capture.
# - Tests marked slow (model quality on real or planted data) run the same kernels as the
#   others, at sizes that take minutes under ASan.
asan_pytest() {
    local lib="$PWD/build/asan/lib"
    PAINVRL_SANITIZE=1 PAINVRL_WERROR=1 "$VENV/bin/python" setup.py -q build \
        --build-base build/asan --build-lib "$lib" >/dev/null
    PYTHONPATH="$lib" PAINVRL_EXPECT_CORE="$lib/painvrl" PYTHONMALLOC=malloc \
        LD_PRELOAD="$(gcc -print-file-name=libasan.so)" \
        ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
        UBSAN_OPTIONS=print_stacktrace=1:abort_on_error=1 \
        "$VENV/bin/pytest" -p no:cacheprovider --capture=sys -m "not slow" "$@"
}

cmd="${1:-run}"
shift || true
ensure_system
ensure_venv
case "$cmd" in
    run)   exec "$VENV/bin/python" -m painvrl "$@" ;;
    test)  make -s -C csrc/tests asan      # the C kernels alone, under ASan + UBSan
           "$VENV/bin/python" -m pytest "$@"
           echo "dev.sh: pytest again, against the ASan + UBSan build in build/asan" >&2
           asan_pytest "$@" ;;
    bench) for b in benchmarks/bench_*.py; do "$VENV/bin/python" "$b" "$@"; done ;;
    *)     echo "usage: ./dev.sh {run|test|bench} [args...]" >&2; exit 2 ;;
esac
