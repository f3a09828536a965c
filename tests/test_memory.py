"""The binding keeps references and memory in balance (bottleneck's memory_test idea)."""
import gc
import sys

import numpy as np
import pytest

from painvrl import _core
from painvrl.models.functional import loss_weights


def rss_kib():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    pytest.skip("no /proc/self/status")


@pytest.fixture
def batch(rng):
    nu, ni, d_id, d_c, D = 20, 30, 4, 4, 12
    users = rng.integers(0, nu, 50).astype(np.int64)
    items = rng.integers(0, ni, 50).astype(np.int64)
    bu, bi = loss_weights(np.bincount(users, minlength=nu), np.bincount(items, minlength=ni))
    return dict(U=rng.normal(size=(nu, d_id + d_c)).astype(np.float32),
                V=rng.normal(size=(ni, d_id)).astype(np.float32),
                W=rng.normal(size=(d_c, D)).astype(np.float32),
                b=np.zeros(d_c, np.float32), X=rng.normal(size=(ni, D)).astype(np.float32),
                bu=bu, bi=bi, users=users, items=items)


def calls(p):
    rows = np.stack([p["items"][:10], p["items"][10:20]], axis=1)
    state = tuple(np.zeros_like(a) for a in (p["U"], p["U"], p["V"], p["V"], p["W"], p["W"],
                                             p["b"], p["b"]))
    labels = (np.arange(50) % 2).astype(np.int64)
    return {
        "rec_loss_grad": lambda: _core.rec_loss_grad(p["U"], p["V"], p["W"], p["b"], None, p["X"],
                                                     p["users"][:10], rows, p["bu"], p["bi"],
                                                     reg="full", wd1=0.1),
        "train_epoch": lambda: _core.train_epoch(p["U"], p["V"], p["W"], p["b"], None, p["X"],
                                                 p["bu"], p["bi"], p["users"], p["items"], state,
                                                 batch_size=16, n_neg=2, emb_lr=1e-6,
                                                 proj_lr=1e-6),
        "identify": lambda: _core.identify(p["users"], p["items"], labels.copy(), p["X"],
                                           p["bu"], p["bi"], n_users=20, n_envs=2, d_id=4,
                                           d_c=4, epochs=1, max_rounds=1, batch_size=16,
                                           n_neg=2),
        "uniform_ints": lambda: _core.uniform_ints(100, 7, 1, 2, 3),
        "error path": lambda: _core.rec_loss_grad(p["U"], p["V"], p["W"], p["b"], None, p["X"],
                                                  p["users"][:10], rows + 10**6, p["bu"],
                                                  p["bi"]),
    }


@pytest.mark.parametrize("name", ["rec_loss_grad", "train_epoch", "identify", "uniform_ints",
                                  "error path"])
def test_no_reference_leak(batch, name):
    fn = calls(batch)[name]
    tracked = list(batch.values())
    before = [sys.getrefcount(a) for a in tracked]
    for _ in range(200):
        try:
            fn()
        except IndexError:
            pass
    gc.collect()
    assert [sys.getrefcount(a) for a in tracked] == before


def test_repeated_calls_do_not_grow_memory(batch):
    fns = calls(batch)
    for fn in fns.values():  # warm up allocator pools
        try:
            fn()
        except IndexError:
            pass
    start = rss_kib()
    for _ in range(300):
        for fn in fns.values():
            try:
                fn()
            except IndexError:
                pass
    gc.collect()
    # 1,500 calls: a leak of 1 KiB per call would add 1.5 MiB.
    assert rss_kib() - start < 1024
