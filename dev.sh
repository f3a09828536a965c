#!/usr/bin/env bash
# painvrl set-up and entry points.  Usage:
#   ./dev.sh run [args]     build into .venv, then run the main job: `python -m painvrl`
#                           (backbone, InvRL and PaInvRL in and out of distribution)
#   ./dev.sh test [args]    build an sdist and a wheel into dist/, install the wheel into a
#                           fresh venv (build/test-venv) and test the installed package: the
#                           C kernels alone under AddressSanitizer + UBSan, pytest, then pytest
#                           again (tests marked slow left out) against painvrl._core built
#                           with ASan + UBSan into build/asan/lib
#   ./dev.sh bench [--quick] [args]   build into .venv, then run every benchmarks/bench_*.py
# Everything comes from PyPI (OpenBLAS too: the scipy-openblas32 wheel), so no root and no
# system BLAS are needed: Python >= 3.9 with venv, a C compiler with OpenMP, and make.
# A second call reuses .venv.
set -euo pipefail
cd "$(dirname "$0")"
VENV="${PAINVRL_VENV:-.venv}"
TEST_VENV="$PWD/build/test-venv"

need_tools() {
    local tool
    for tool in python3 gcc make; do
        command -v "$tool" >/dev/null || { echo "dev.sh: $tool is required" >&2; exit 2; }
    done
}

# The build requirements of pyproject.toml, one per line.
build_requires() {
    "$VENV/bin/python" -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))'
}

# .venv: the development environment, painvrl installed in place (editable).
ensure_venv() {
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip build
    build_requires | "$VENV/bin/python" -m pip install -q -r /dev/stdin
    PAINVRL_WERROR=1 "$VENV/bin/python" -m pip install -q --no-build-isolation -e ".[test,plot]"
}

# dist/: an sdist, and a wheel built from that sdist (so the sdist is proven complete).
build_dist() {
    rm -rf dist
    PAINVRL_WERROR=1 "$VENV/bin/python" -m build --no-isolation --outdir dist . >/dev/null
}

# build/test-venv: a fresh environment holding only the wheel and its test extra.
fresh_test_venv() {
    rm -rf "$TEST_VENV"
    python3 -m venv "$TEST_VENV"
    "$TEST_VENV/bin/python" -m pip install -q --upgrade pip
    local wheel
    wheel=$(ls dist/painvrl-*.whl)
    "$TEST_VENV/bin/python" -m pip install -q "${wheel}[test]"
}

# The installed painvrl package of the test venv.
installed_package() {
    (cd /tmp && "$TEST_VENV/bin/python" -c 'import os, painvrl; print(os.path.dirname(painvrl.__file__))')
}

# pytest against painvrl._core built with -fsanitize=address,undefined into build/asan/lib.
# - CPython is not instrumented, so libasan is preloaded (it must come first), and libstdc++
#   with it: a C++ extension loaded later (matplotlib's kiwisolver) that throws would
#   otherwise find ASan's __cxa_throw interceptor unresolved and abort the run.
# - The console script pytest, not `python -m pytest`, whose sys.path[0] would be the
#   repository's own painvrl/; PAINVRL_EXPECT_CORE makes conftest.py check the build.
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
        LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libstdc++.so)" \
        ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
        UBSAN_OPTIONS=print_stacktrace=1:abort_on_error=1 \
        "$TEST_VENV/bin/pytest" -p no:cacheprovider --capture=sys -m "not slow" "$@"
}

cmd="${1:-run}"
shift || true
need_tools
ensure_venv
case "$cmd" in
    run)   exec "$VENV/bin/python" -m painvrl "$@" ;;
    test)  build_dist
           fresh_test_venv
           make -s -C csrc/tests asan PYTHON="$PWD/$VENV/bin/python"  # the C kernels alone
           echo "dev.sh: pytest against the installed wheel in $TEST_VENV" >&2
           PAINVRL_EXPECT_CORE="$(installed_package)" "$TEST_VENV/bin/pytest" -p no:cacheprovider "$@"
           echo "dev.sh: pytest again, against the ASan + UBSan build in build/asan" >&2
           asan_pytest "$@" ;;
    bench) for b in benchmarks/bench_*.py; do
               echo "== $b" >&2
               "$VENV/bin/python" "$b" "$@"
           done ;;
    *)     echo "usage: ./dev.sh {run|test|bench} [args...]" >&2; exit 2 ;;
esac
