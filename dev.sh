#!/usr/bin/env bash
# painvrl set-up and entry points.  Usage:
#   ./dev.sh run     build into .venv, then train + evaluate the default model (the main job)
#   ./dev.sh test    build into .venv, then run the whole test suite (C kernels under
#                    AddressSanitizer + UBSan, then pytest)
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

cmd="${1:-run}"
shift || true
ensure_system
ensure_venv
case "$cmd" in
    run)   exec "$VENV/bin/python" -m painvrl "$@" ;;
    test)  make -s -C csrc/tests asan      # the C kernels alone, under ASan + UBSan
           exec "$VENV/bin/python" -m pytest "$@" ;;
    bench) for b in benchmarks/bench_*.py; do "$VENV/bin/python" "$b" "$@"; done ;;
    *)     echo "usage: ./dev.sh {run|test|bench} [args...]" >&2; exit 2 ;;
esac
