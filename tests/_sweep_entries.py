"""Entry points for tests/test_sweep.py, in their own module so Dask workers can import them.

``held_backbone`` announces that it runs (a file naming its cell and its process id),
then waits for a release file before it fits: the test can kill the worker process
while the task is certainly running.
"""
import os
import time

from painvrl import Backbone
from painvrl.evaluation.compare import compare

TINY = dict(d_id=8, d_content=8, n_neg=5, batch_size=256, eval_every=1, progress=False)


def held_backbone(dataset, split, *, seed, epochs, markers, n_threads=1):
    """Fit a tiny Backbone for ``epochs`` epochs once ``markers/release`` exists."""
    name = os.path.join(markers, f"{seed}-{epochs}-{os.getpid()}.started")
    with open(name, "w"):
        pass
    deadline = time.monotonic() + 60
    while not os.path.exists(os.path.join(markers, "release")):
        if time.monotonic() > deadline:
            raise TimeoutError("held_backbone: never released")
        time.sleep(0.02)
    model = Backbone(max_epochs=epochs, seed=seed, n_threads=n_threads, **TINY).fit(dataset)
    return compare({"held": model}, split.splits(), ks=(10,), metrics=("recall",))


class Front:
    """An entry point's result object with a ``.frame`` (as ``pareto_front`` returns)."""

    def __init__(self, frame):
        self.frame = frame


def front_of_seeds(dataset, split, *, seeds, preference=0.5, **pipeline_params):
    """Takes ``seeds`` (a list) and **kwargs (as ``pareto_front``), returns an object with
    ``.frame`` holding a seed column."""
    assert not pipeline_params, pipeline_params
    import pandas as pd

    return Front(pd.DataFrame({"seed": seeds * 2, "model": ["a", "b"],
                               "preference": [preference] * 2,
                               "value": [float(dataset.n_users), preference]}))


def fails_on_flag(dataset, split, *, seed, flags):
    """Raises while the file ``flags/fail-<seed>`` exists; else one row."""
    import pandas as pd

    if os.path.exists(os.path.join(flags, f"fail-{seed}")):
        raise RuntimeError(f"flagged to fail for seed {seed}")
    return pd.DataFrame({"value": [float(seed)]})


def threads_seen(dataset, split, *, seed, n_threads):
    """The C-core threads it was given and the BLAS threads threadpoolctl reports inside."""
    import pandas as pd
    from threadpoolctl import threadpool_info

    blas = {info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"}
    return pd.DataFrame({"what": ["n_threads", "blas"], "value": [n_threads, max(blas)]})
