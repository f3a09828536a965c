import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def shared_data_dir():
    """../shared/data beside the repository (CI lays shared/ next to the clone)."""
    env = os.environ.get("PAINVRL_DATA")
    if env:
        return env
    return os.path.join(os.path.dirname(REPO), "shared", "data")


def pytest_configure(config):
    """A run that names the build it tests (./dev.sh test's ASan run sets PAINVRL_EXPECT_CORE
    to build/asan/lib/painvrl) stops unless painvrl._core really comes from there."""
    want = os.environ.get("PAINVRL_EXPECT_CORE")
    if want:
        from painvrl import _core

        got = os.path.dirname(_core.__file__)
        if not os.path.samefile(got, want):
            raise pytest.UsageError(f"painvrl._core was imported from {got}, not from {want}")


@pytest.fixture(autouse=True)
def _single_blas_thread():
    """Tests run with one BLAS thread unless they set their own limits.

    This hides any dependence of the C core on BLAS's thread count: once the core holds
    its own BLAS calls to one thread (as the README's determinism promise needs), the
    fixture only spares the rest of the suite from threaded BLAS and should go, so that
    the whole suite runs the way users do.  tests/test_determinism.py does not rely on
    it: each of its runs sets BLAS to the thread count under test, and one case raises
    BLAS to 4 threads."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture
def python_sigint():
    """Python's own SIGINT handler (KeyboardInterrupt) for the test, whatever the process
    inherited: a runner started in the background without job control has SIGINT
    ignored, and Python then keeps it ignored."""
    import signal

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
