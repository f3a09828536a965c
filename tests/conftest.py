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


@pytest.fixture(autouse=True)
def _single_blas_thread():
    """Tests run with one BLAS thread unless they set their own limits."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
