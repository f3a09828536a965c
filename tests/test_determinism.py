"""Bit-identical results at any thread count (README "Determinism").

Every estimator and stochastic entry point is fitted or run at n_threads = 1, 2 and 4 with
the same seed on a small planted dataset, and everything it returns or learns must be the
same bits: losses and histories, every learned array (the best check's and the last
epoch's, and the optimiser moments), masks, environment labels, rankings and metrics.

Each run sets BLAS to the thread count under test (threadpool_limits(n, "blas")), the way
a user's program may have it: the C core must not depend on BLAS's threads (it has to hold
its own BLAS calls to one thread), so these tests must not lean on conftest's autouse
fixture, which limits BLAS to one thread for the rest of the suite.
test_blas_threads_raised_by_the_user_change_no_bit runs with BLAS at 4 threads and the
C core at 1 and 2 against a run with BLAS at 1.

Sizes are chosen so that the thread counts really change the work split: several
batches per epoch, 4 environments (identification runs one per thread), mask steps
above the 65536 negative draws and the 2^20 multiply-adds per thread at which
learn_mask and mask_step go parallel, and top-k over more user chunks than threads.
"""
import dataclasses
import struct

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

import painvrl
from painvrl import datasets

THREADS = (1, 2, 4)


# --------------------------------------------------------------------------- comparison

def assert_bit_identical(a, b, where="result"):
    """a and b hold the same bits: arrays byte for byte (so -0.0 != 0.0 and NaN payloads
    count), frames column by column, dataclasses field by field, floats by their bytes."""
    if isinstance(a, pd.DataFrame) or isinstance(b, pd.DataFrame):
        assert isinstance(a, pd.DataFrame) and isinstance(b, pd.DataFrame), where
        assert list(a.columns) == list(b.columns), f"{where}: columns differ"
        assert_bit_identical(a.index.to_numpy(), b.index.to_numpy(), f"{where}.index")
        for col in a.columns:
            assert_bit_identical(a[col].to_numpy(), b[col].to_numpy(), f"{where}[{col!r}]")
    elif isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray), where
        assert (a.dtype, a.shape) == (b.dtype, b.shape), f"{where}: {a.dtype}{a.shape} vs " \
                                                         f"{b.dtype}{b.shape}"
        if a.dtype == object:
            for k, (x, y) in enumerate(zip(a.ravel(), b.ravel())):
                assert_bit_identical(x, y, f"{where}[{k}]")
        elif np.ascontiguousarray(a).tobytes() != np.ascontiguousarray(b).tobytes():
            differ = np.ascontiguousarray(a).view(np.uint8).reshape(a.size, -1) != \
                np.ascontiguousarray(b).view(np.uint8).reshape(b.size, -1)
            n_diff = int(np.count_nonzero(differ.any(axis=1)))
            detail = ""
            if a.dtype.kind == "f":
                detail = f", max |a - b| = {np.nanmax(np.abs(a.astype(np.float64) - b)):.3g}"
            raise AssertionError(f"{where}: {n_diff} of {a.size} entries differ{detail}")
    elif dataclasses.is_dataclass(a):
        assert type(a) is type(b), where
        for f in dataclasses.fields(a):
            assert_bit_identical(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), f"{where}: keys differ"
        for k in a:
            assert_bit_identical(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), f"{where}: lengths differ"
        for k, (x, y) in enumerate(zip(a, b)):
            assert_bit_identical(x, y, f"{where}[{k}]")
    elif isinstance(a, (float, np.floating)):
        assert isinstance(b, (float, np.floating)), where
        assert struct.pack("<d", a) == struct.pack("<d", b), f"{where}: {a!r} vs {b!r}"
    else:
        assert type(a) is type(b) and a == b, f"{where}: {a!r} vs {b!r}"


def across_threads(run, threads=THREADS):
    """run(n) at each thread count, BLAS held to n threads too; all equal to the first."""
    results = []
    for n in threads:
        with threadpool_limits(limits=n, user_api="blas"):
            results.append(run(n))
    for n, got in zip(threads[1:], results[1:]):
        assert_bit_identical(results[0], got, f"n_threads={n} vs {threads[0]}")
    return results[0]


# --------------------------------------------------------------------------- data, snapshots

@pytest.fixture(scope="module")
def planted():
    # 300 users, 400 items, ~4800 training pairs, 32 feature columns (8 invariant,
    # 8 spurious, 16 noise), two planted environments.
    return datasets.make_spurious(n_users=300, n_items=400, n_interactions=6000, seed=0)


BACKBONE = dict(d_id=32, d_content=32, n_neg=16, batch_size=1024, max_epochs=3, eval_every=1,
                patience=10, emb_lr=1e-2, proj_lr=1e-2, attention_size=16, seed=7,
                progress=False)
LEARNED = ("user_embeddings_", "item_embeddings_", "projection_", "bias_", "attention_matrix_",
           "attention_bias_", "attention_query_", "fusion_logits_", "variant_projection_",
           "variant_bias_")


def backbone_state(model):
    """Everything a fitted Backbone learned or recorded, but wall time."""
    state = {"history": model.history_.drop(columns="seconds"), "n_epochs": model.n_epochs_,
             "best_epoch": model.best_epoch_, "best_score": model.best_score_,
             "step": model.step_}
    state.update({name: getattr(model, name) for name in LEARNED})
    # the public tensors are the best check's; training goes on from these
    state["last_epoch"] = model._live
    state["optimiser"] = model._opt_state
    state["convert_optimiser"] = model._convert_state
    return state


def rankings(model, ds, n):
    """Recommendations for every user and per-user test metrics, at n threads."""
    ids, scores = model.recommend(np.arange(ds.n_users), k=10, n_threads=n)
    return {"ids": ids, "scores": scores,
            "metrics": model.evaluate(ds, "test", ks=(5, 20), per_user=True, n_threads=n)}


def mask_for(ds):
    return np.linspace(0.0, 1.0, ds.n_features).astype(np.float32)


# --------------------------------------------------------------------------- estimators

@pytest.mark.parametrize("fusion", [None, "attention", "global", "invariant"])
@pytest.mark.parametrize("reg", ["batch", "full"])
def test_backbone(planted, reg, fusion):
    ds, _ = planted
    extra = {} if fusion is None else dict(fusion=fusion, mask=mask_for(ds))

    def run(n):
        model = painvrl.Backbone(reg=reg, n_threads=n, **BACKBONE, **extra).fit(ds)
        return {"model": backbone_state(model), **rankings(model, ds, n)}

    across_threads(run)


def test_popularity(planted):
    ds, _ = planted

    def run(n):
        model = painvrl.Popularity().fit(ds)
        return {"popularity": model.item_popularity_, **rankings(model, ds, n)}

    across_threads(run)


PIPELINE = dict(n_envs=4, n_outer=1, env_epochs=2, env_rounds=2, mask_epochs=2, max_epochs=2,
                patience=1, final_patience=1, eval_every=1, d_id=16, d_content=16, n_neg=16,
                batch_size=1024, seed=3, progress=False,
                backbone_params=dict(emb_lr=1e-2, proj_lr=1e-2))


def pipeline_state(model, ds, n):
    state = {"mask": model.mask_, "environments": model.environments_,
             "mask_results": model.mask_results_, "mask_history": model.mask_history(),
             "pretrained": backbone_state(model.pretrained_),
             "final": backbone_state(model.final_), **rankings(model, ds, n)}
    if isinstance(model, painvrl.PaInvRL):
        state["attention"] = model.attention_weights(ds)
    return state


@pytest.mark.parametrize("cls", [painvrl.InvRL, painvrl.PaInvRL])
def test_pipelines(planted, cls):
    ds, _ = planted
    kw = dict(PIPELINE, attention_size=8) if cls is painvrl.PaInvRL else PIPELINE

    def run(n):
        return pipeline_state(cls(n_threads=n, **kw).fit(ds), ds, n)

    across_threads(run)


# --------------------------------------------------------------------------- functions

def test_identify_environments(planted):
    ds, _ = planted

    def run(n):
        return painvrl.identify_environments(
            ds, mask=mask_for(ds), n_envs=4, epochs=2, max_rounds=2, tol=0.0, d_id=8,
            d_content=8, n_neg=8, batch_size=512, seed=11, n_threads=n)

    split = across_threads(run)
    assert split.n_rounds == 2 and not split.empty   # every environment took part


def mask_inputs(ds, truth):
    rng = np.random.default_rng(5)
    return dict(users=ds.train[:, 0], items=ds.train[:, 1], env=truth.train_env,
                U=rng.normal(0, 0.3, (ds.n_users, 8 + 16)).astype(np.float32),
                V=rng.normal(0, 0.3, (ds.n_items, 8)).astype(np.float32), X=ds.features)


@pytest.mark.parametrize("weighting", ["mgda", "fixed", "pair"])
def test_learn_mask(planted, weighting):
    ds, truth = planted
    d = mask_inputs(ds, truth)
    # 2 environments x 512 rows x (1 + 63) items = 65536 negative draws per step: parallel
    kw = dict(epochs=2, batch_size=512, n_neg=63, weighting=weighting, seed=13)

    def run(n):
        return painvrl.learn_mask(**d, **kw, n_threads=n)

    result = across_threads(run)
    assert result.steps_per_epoch > 1


def ranking_inputs():
    rng = np.random.default_rng(17)
    n_users, n_items, dim = 700, 1500, 24
    U = rng.standard_normal((n_users, dim)).astype(np.float32)
    V = rng.standard_normal((n_items, dim)).astype(np.float32)
    pairs = np.unique(rng.integers(0, [n_users, n_items], (30_000, 2)), axis=0)
    train = painvrl.UserItemCSR.from_pairs(pairs[:20_000, 0], pairs[:20_000, 1], n_users,
                                           n_items)
    test = painvrl.UserItemCSR.from_pairs(pairs[20_000:, 0], pairs[20_000:, 1], n_users,
                                          n_items)
    return U, V, train, test


@pytest.mark.parametrize("blocks", [{}, dict(user_chunk=37, item_tile=129)])
def test_topk_and_evaluate(blocks):
    # default blocks: 700 users make 11 chunks of 64, more than 4 threads
    U, V, train, test = ranking_inputs()

    def run(n):
        out = {}
        for mask_value in (-np.inf, 1e-5):
            out[mask_value] = (
                painvrl.topk(U, V, 20, exclude=train, mask_value=mask_value, n_threads=n,
                             **blocks),
                painvrl.evaluate(U, V, test, exclude=train, ks=(5, 20), mask_value=mask_value,
                                 per_user=True, n_threads=n, **blocks))
        return out

    across_threads(run)


# --------------------------------------------------------------------------- batch kernels

def kernel_problem(rng, nu=80, ni=400, d_id=8, d_c=70, d_a=16, D=150, B=48, n_neg=12):
    """float32 batch inputs with several slot, feature and d_c tiles (> 64 each)."""
    f = np.float32
    beta_u, beta_i = painvrl.functional.loss_weights(rng.integers(1, 9, nu),
                                                     rng.integers(0, 9, ni))
    return dict(U=(rng.normal(size=(nu, d_id + d_c)) * 0.2).astype(f),
                V=rng.normal(size=(ni, d_id)).astype(f),
                W=(rng.normal(size=(d_c, D)) * 0.14).astype(f), b=rng.normal(size=d_c).astype(f),
                A=(rng.normal(size=(d_a, d_c)) * 0.14).astype(f), c=rng.normal(size=d_a).astype(f),
                q=(rng.normal(size=d_a) * 1.5).astype(f), mask=rng.uniform(size=D).astype(f),
                X=rng.normal(size=(ni, D)).astype(f), users=rng.integers(0, nu, B),
                items=rng.integers(0, ni, (B, 1 + n_neg)), beta_u=beta_u, beta_i=beta_i)


@pytest.mark.parametrize("fusion", ["attention", "global", "invariant"])
def test_convert_kernels(fusion):
    p = kernel_problem(np.random.default_rng(19))
    omega = np.array([0.4, -0.3], np.float32)
    items = {k: p[k] for k in ("W", "b", "A", "c", "q", "mask", "X")}

    def run(n):
        return (painvrl.convert_loss_grad(**p, fusion=fusion, omega=omega, n_threads=n),
                painvrl.convert_item_vectors(**items, fusion=fusion, omega=omega, n_threads=n))

    across_threads(run)


def test_rec_loss_grad():
    p = kernel_problem(np.random.default_rng(23))
    args = {k: p[k] for k in ("U", "V", "W", "b", "X", "users", "items", "beta_u", "beta_i")}

    def run(n):
        return [painvrl.functional.rec_loss_grad(**args, g=p["mask"], reg=reg, wd1=0.01,
                                                 wd2=0.02, n_threads=n)
                for reg in ("none", "batch", "full")]

    across_threads(run)


def test_mask_step():
    rng = np.random.default_rng(29)
    E, B, n_neg, D, d_c, d_id, nu, ni = 4, 128, 10, 200, 16, 8, 300, 500
    f = np.float32
    p = dict(U=rng.normal(0, 0.3, (nu, d_id + d_c)).astype(f),
             V=rng.normal(0, 0.3, (ni, d_id)).astype(f), X=rng.normal(0, 0.3, (ni, D)).astype(f),
             W=rng.normal(0, 0.3, (d_c, D)).astype(f), mu=rng.normal(0, 0.1, D).astype(f),
             eps=rng.normal(0, 1, (E, D)).astype(f), users=rng.integers(0, nu, (E, B)),
             items=rng.integers(0, ni, (E, B, 1 + n_neg)),
             beta_u=rng.uniform(0.2, 1.5, nu).astype(f), beta_i=rng.uniform(0.2, 1.0, ni).astype(f))
    # E B (1 + n_neg) D 4 = 4.3 * 2^20 multiply-adds: 4 threads

    def run(n):
        return [painvrl.mask_step(**p, weighting=weighting, n_threads=n)
                for weighting in ("mgda", "fixed", "pair")]

    across_threads(run)


# --------------------------------------------------------------------------- BLAS threads

def _backbone_case(ds, truth, n):
    model = painvrl.Backbone(reg="batch", fusion="attention", mask=mask_for(ds), n_threads=n,
                             **BACKBONE).fit(ds)
    return {"model": backbone_state(model), **rankings(model, ds, n)}


def _topk_case(ds, truth, n):
    U, V, train, test = ranking_inputs()
    return (painvrl.topk(U, V, 20, exclude=train, n_threads=n),
            painvrl.evaluate(U, V, test, exclude=train, per_user=True, n_threads=n))


def _convert_case(ds, truth, n):
    p = kernel_problem(np.random.default_rng(19))
    return (painvrl.convert_loss_grad(**p, n_threads=n),
            painvrl.convert_item_vectors(*(p[k] for k in ("W", "b", "A", "c", "q", "mask", "X")),
                                         n_threads=n))


CASES = {
    "backbone attention": _backbone_case,
    "learn_mask": lambda ds, truth, n: painvrl.learn_mask(
        **mask_inputs(ds, truth), epochs=1, batch_size=512, n_neg=63, seed=13, n_threads=n),
    "topk and evaluate": _topk_case,
    "convert kernels": _convert_case,
}


@pytest.mark.parametrize("case", list(CASES))
def test_blas_threads_raised_by_the_user_change_no_bit(planted, case):
    """A program that raised BLAS's threads (threadpool_limits(4, "blas")) must get the
    bits of a one-thread BLAS, whatever the C core's own thread count."""
    ds, truth = planted
    with threadpool_limits(limits=1, user_api="blas"):
        want = CASES[case](ds, truth, 1)
    with threadpool_limits(limits=4, user_api="blas"):
        for n in (1, 2):
            assert_bit_identical(want, CASES[case](ds, truth, n), f"BLAS 4 threads, n_threads={n}")
