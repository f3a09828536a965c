"""Property-based tests (hypothesis) of the public API beyond rec_loss_grad.

Random shapes (including 0-sized), dtypes, layouts (Fortran order, strided and
negative-stride views, read-only arrays) and values (NaN/inf, out-of-range and
negative ids, duplicate pairs, k <= 0, k > n_items): every call either returns
the right answer (a small NumPy reference where that is cheap, invariants
otherwise) or raises the exception type its docstring names, and never modifies
its inputs.  Each example draws at most one corruption, so the expected
exception is known.
"""
import copy
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from painvrl import convert, environments, functional, invariance, metrics, splits
from painvrl.data import Dataset, UserItemCSR
from _convert_ref import convert_items_ref, convert_loss_ref
from _mask_ref import step_losses

SETTINGS = settings(max_examples=40, deadline=None, derandomize=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
FEW = settings(SETTINGS, max_examples=15)

REAL_DTYPES = [np.float16, np.float32, np.float64, np.int32, np.int64, np.bool_]
LAYOUTS = ["C", "F", "strided", "readonly", "negative"]


# --------------------------------------------------------------------------- helpers

def relayout(a: np.ndarray, kind: str) -> np.ndarray:
    """The same values in another memory layout."""
    a = np.asarray(a)
    if kind == "F":
        return np.asfortranarray(a)
    if kind == "strided" and a.ndim and a.shape[0]:
        return np.repeat(a, 2, axis=0)[::2]
    if kind == "readonly":
        b = a.copy()
        b.flags.writeable = False
        return b
    if kind == "negative" and a.ndim:
        return np.flip(np.flip(a, 0).copy(), 0)
    return a


@st.composite
def arrays_like(draw, values: np.ndarray, dtypes=REAL_DTYPES):
    """``values`` cast to a drawn dtype and laid out in a drawn layout."""
    dtype = draw(st.sampled_from(dtypes))
    with np.errstate(invalid="ignore", over="ignore"):
        a = np.asarray(values).astype(dtype)
    return relayout(a, draw(st.sampled_from(LAYOUTS)))


def snapshot(obj):
    """A deep copy of every array-like reachable from a dict/list/tuple of arguments."""
    if isinstance(obj, np.ndarray):
        return obj.copy()
    if isinstance(obj, UserItemCSR):
        return (obj.indptr.copy(), obj.indices.copy())
    if isinstance(obj, (pd.DataFrame, pd.Series)):
        return obj.copy(deep=True)
    if isinstance(obj, dict):
        return {k: snapshot(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(snapshot(v) for v in obj)
    return copy.deepcopy(obj)


def assert_unchanged(before, after):
    if isinstance(after, np.ndarray):
        assert after.dtype == before.dtype
        np.testing.assert_array_equal(after, before)
    elif isinstance(after, UserItemCSR):
        np.testing.assert_array_equal(after.indptr, before[0])
        np.testing.assert_array_equal(after.indices, before[1])
    elif isinstance(after, pd.DataFrame):
        pd.testing.assert_frame_equal(after, before)
    elif isinstance(after, dict):
        for k in after:
            assert_unchanged(before[k], after[k])
    elif isinstance(after, (list, tuple)):
        for b, a in zip(before, after):
            assert_unchanged(b, a)


def call(fn, kwargs, expect):
    """Run ``fn(**kwargs)``: the documented exception when ``expect`` is set, else the result.

    Returns (result or None, raised exception or None); inputs must be unchanged."""
    before = snapshot(kwargs)
    out = exc = None
    try:
        out = fn(**kwargs)
    except (TypeError, ValueError, IndexError, MemoryError, FloatingPointError) as e:
        exc = e
    assert_unchanged(before, kwargs)
    if expect is None:
        assert exc is None, f"unexpected {exc!r}"
    else:
        assert exc is not None, f"expected {expect.__name__}, got a result"
        assert isinstance(exc, expect), f"expected {expect.__name__}, got {exc!r}"
        assert str(exc), "the message must say what is wrong"
    return out, exc


def random_csr(rng, n_users, n_items, density):
    m = rng.random((n_users, n_items)) < density
    u, i = np.nonzero(m)
    return UserItemCSR.from_pairs(u, i, n_users, n_items)


# --------------------------------------------------------------------------- references

def topk_ref(U, V, k, exclude, mask_value):
    """Best-first ids and scores: score desc, then id asc; -inf masking drops items."""
    S = np.asarray(U, np.float64) @ np.asarray(V, np.float64).T
    ids = np.full((S.shape[0], k), -1, np.int64)
    sc = np.full((S.shape[0], k), -np.inf)
    for u in range(S.shape[0]):
        s = S[u].copy()
        if exclude is not None:
            s[exclude.row(u)] = mask_value
        cand = np.arange(S.shape[1])
        if mask_value == -np.inf:
            cand = cand[np.isfinite(s)]
        order = cand[np.lexsort((cand, -s[cand]))][:k]
        ids[u, :order.size] = order
        sc[u, :order.size] = s[order]
    return ids, sc


def metrics_ref(ids, truth_rows, ks, ndcg="standard"):
    """Per-row dict metric -> array over ks; rows without truth give NaN."""
    out = {m: np.full((len(truth_rows), len(ks)), np.nan) for m in metrics.METRICS}
    for r, T in enumerate(truth_rows):
        T = set(int(x) for x in T)
        if not T:
            continue
        rel = np.array([int(i) in T for i in ids[r]], dtype=float)
        for j, K in enumerate(ks):
            h = rel[:K]
            hits = h.sum()
            disc = 1.0 / np.log2(np.arange(K) + 2)
            dcg = float((h * disc[:h.size]).sum())
            n_ideal = min(len(T), K) if ndcg == "standard" else int(min(hits, K))
            idcg = float(disc[:n_ideal].sum())
            out["precision"][r, j] = hits / K
            out["recall"][r, j] = hits / len(T)
            out["ndcg"][r, j] = dcg / idcg if idcg > 0 else 0.0
            out["hit_rate"][r, j] = float(hits > 0)
            prec = np.cumsum(h) / np.arange(1, h.size + 1)
            out["map"][r, j] = float((prec * h).sum()) / min(len(T), K)
    return out


# --------------------------------------------------------------------------- top-k / metrics

@st.composite
def ranking_problems(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    nu, ni, dim = draw(st.integers(0, 5)), draw(st.integers(1, 6)), draw(st.integers(1, 3))
    # small integers: exact dot products in every float dtype, so ties are real ties
    Uv = rng.integers(-2, 3, (nu, dim))
    Vv = rng.integers(-2, 3, (ni, dim))
    U = draw(arrays_like(Uv))
    V = draw(arrays_like(Vv))
    exclude = draw(st.sampled_from([None, "csr"]))
    exclude = None if exclude is None else random_csr(rng, nu, ni, 0.3)
    mask_value = draw(st.sampled_from([-np.inf, 0.5, -3.0]))
    k = draw(st.integers(1, ni))
    corrupt = draw(st.sampled_from([None, None, "nan", "k0", "kbig", "kfloat", "object", "dim0",
                                    "ni0", "mismatch", "exclude_shape", "overflow", "mask_inf"]))
    expect = None
    if corrupt == "nan" and U.size:
        U = U.astype(np.float64)
        U.flat[rng.integers(U.size)] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        expect = ValueError
    elif corrupt == "k0":
        k, expect = draw(st.integers(-3, 0)), ValueError
    elif corrupt == "kbig":
        k, expect = ni + draw(st.integers(1, 3)), ValueError
    elif corrupt == "kfloat":
        k, expect = float(k), TypeError
    elif corrupt == "object":
        V, expect = np.asarray(Vv, dtype=object), TypeError
    elif corrupt == "dim0":
        U, V, expect = np.zeros((nu, 0)), np.zeros((ni, 0)), ValueError
    elif corrupt == "ni0":
        V, exclude, expect = np.zeros((0, dim)), None, ValueError
    elif corrupt == "mismatch":
        V, expect = np.zeros((ni, dim + 1)), ValueError
    elif corrupt == "exclude_shape":
        exclude, expect = random_csr(rng, nu + 1, ni, 0.3), ValueError
    elif corrupt == "overflow":
        V, expect = np.full((ni, dim), 1e300), ValueError     # finite float64, inf in float32
    elif corrupt == "mask_inf":
        mask_value, expect = draw(st.sampled_from([np.inf, np.nan])), ValueError
    return (dict(user_vecs=U, item_vecs=V, k=k, exclude=exclude, mask_value=mask_value), expect,
            corrupt)


@SETTINGS
@given(ranking_problems())
def test_topk_is_the_head_of_a_stable_sort(problem):
    kw, expect, _ = problem
    out, _ = call(metrics.topk, kw, expect)
    if expect is None:
        ids, scores = out
        want_ids, want_sc = topk_ref(kw["user_vecs"], kw["item_vecs"], kw["k"], kw["exclude"],
                                     kw["mask_value"])
        np.testing.assert_array_equal(ids, want_ids)
        np.testing.assert_array_equal(scores, want_sc.astype(np.float32))
        assert ids.dtype == np.int64 and scores.dtype == np.float32
        assert np.all(scores[:, 1:] <= scores[:, :-1])                    # best first


@st.composite
def evaluation_problems(draw):
    kw, expect, corrupt = draw(ranking_problems())
    if corrupt in ("k0", "kbig", "kfloat"):      # evaluate has no k
        expect = None
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    nu = np.shape(kw["user_vecs"])[0]
    ni = np.shape(kw["item_vecs"])[0]
    kw.pop("k")
    kw["test"] = random_csr(rng, nu, max(ni, 1), 0.4) if ni else random_csr(rng, nu, 1, 0.4)
    kw["ks"] = draw(st.lists(st.integers(1, max(ni, 1)), min_size=1, max_size=3))
    kw["ndcg"] = draw(st.sampled_from(["standard", "invrl"]))
    extra = draw(st.sampled_from([None, None, "ks_empty", "ks_big", "metric", "test_empty"]))
    if expect is None:
        if extra == "ks_empty":
            kw["ks"], expect = [], ValueError
        elif extra == "ks_big":
            kw["ks"], expect = [ni + 1], ValueError
        elif extra == "metric":
            kw["metrics"], expect = ["auc"], ValueError
        elif extra == "test_empty":
            kw["test"], expect = UserItemCSR.from_pairs([], [], nu, ni), ValueError
        elif kw["test"].nnz == 0:
            expect = ValueError                                   # nothing to evaluate
    return kw, expect


@SETTINGS
@given(evaluation_problems())
def test_evaluate_matches_the_reference(problem):
    kw, expect = problem
    if expect is None and kw["test"].n_items != np.shape(kw["item_vecs"])[0]:
        expect = ValueError
    out, _ = call(metrics.evaluate, kw, expect)
    if expect is not None:
        return
    ks = sorted(set(kw["ks"]))
    test = kw["test"]
    users = np.flatnonzero(test.row_lengths() > 0)
    sub = None
    if kw["exclude"] is not None:
        sub = UserItemCSR.from_pairs(*_rows_pairs(kw["exclude"], users), users.size,
                                     test.n_items)
    ids, _ = topk_ref(np.asarray(kw["user_vecs"], np.float64)[users], kw["item_vecs"], ks[-1],
                      sub, kw["mask_value"])
    want = metrics_ref(ids, [test.row(u) for u in users], ks, kw["ndcg"])
    for row in out.itertuples():
        j = ks.index(row.k)
        assert row.n_users == users.size
        assert row.value == pytest.approx(np.mean(want[row.metric][:, j]), abs=1e-9)
        assert 0.0 <= row.value <= 1.0


def _rows_pairs(csr, users):
    """(row index, item) pairs of ``csr``'s rows ``users`` renumbered 0..len(users)-1."""
    r = np.repeat(np.arange(users.size), [csr.row(u).size for u in users])
    i = np.concatenate([csr.row(u) for u in users]) if users.size else np.zeros(0, np.int64)
    return r, i


@st.composite
def ranking_metric_problems(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_rows, ni = draw(st.integers(1, 5)), draw(st.integers(1, 6))
    kmax = draw(st.integers(1, ni))
    ids = np.stack([rng.permutation(ni)[:kmax] for _ in range(n_rows)])
    holes = rng.random(ids.shape) < 0.2
    ids[holes] = -1
    test = random_csr(rng, n_rows, ni, 0.4)
    ks = draw(st.lists(st.integers(1, kmax), min_size=1, max_size=3))
    expect = None
    corrupt = draw(st.sampled_from([None, None, "dup", "range", "float", "k0", "rows"]))
    if corrupt == "dup" and kmax > 1:
        ids[0, 1] = ids[0, 0] = max(ids[0, 0], 0)
        expect = ValueError
    elif corrupt == "range":
        ids[-1, -1] = draw(st.sampled_from([-2, ni, ni + 5]))
        expect = ValueError
    elif corrupt == "float":
        ids, expect = ids.astype(np.float64), TypeError
    elif corrupt == "k0":
        ks, expect = [0], ValueError
    elif corrupt == "rows":
        ids, expect = ids[:0], ValueError
    ids = draw(arrays_like(ids, [ids.dtype, np.int32] if ids.dtype.kind == "i" else [ids.dtype]))
    return dict(topk_ids=ids, test=test, ks=ks, ndcg=draw(st.sampled_from(["standard", "invrl"])),
                per_user=True), expect


@SETTINGS
@given(ranking_metric_problems())
def test_ranking_metrics_match_the_reference(problem):
    kw, expect = problem
    out, _ = call(metrics.ranking_metrics, kw, expect)
    if expect is not None:
        return
    ks = sorted(set(kw["ks"]))
    want = metrics_ref(np.asarray(kw["topk_ids"]), [kw["test"].row(u)
                                                    for u in range(kw["test"].n_users)],
                       ks, kw["ndcg"])
    for m in metrics.METRICS:
        for j, k in enumerate(ks):
            np.testing.assert_allclose(out[f"{m}@{k}"].to_numpy(), want[m][:, j], atol=1e-12)


# --------------------------------------------------------------------------- mask step / learn_mask

@st.composite
def mask_step_problems(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    E, B, n_neg = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(0, 2))
    D, d_c, d_id = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(0, 2))
    nu, ni = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    vals = dict(U=rng.normal(0, 0.6, (nu, d_id + d_c)), V=rng.normal(0, 0.6, (ni, d_id)),
                X=rng.normal(0, 0.6, (ni, D)), W=rng.normal(0, 0.6, (d_c, D)),
                mu=rng.normal(0, 0.1, D), eps=rng.normal(0, 1, (E, D)),
                beta_u=rng.uniform(0.2, 1.5, nu), beta_i=rng.uniform(0.2, 1.0, ni))
    kw = {k: draw(arrays_like(v, [np.float32, np.float64, np.float16, np.int64]))
          for k, v in vals.items()}
    kw["users"] = draw(arrays_like(rng.integers(0, nu, (E, B)), [np.int64, np.int32, np.uint16]))
    kw["items"] = draw(arrays_like(rng.integers(0, ni, (E, B, 1 + n_neg)),
                                   [np.int64, np.int32]))
    kw["dtype"] = draw(st.sampled_from([None, np.float32, np.float64]))
    kw["weighting"] = draw(st.sampled_from(["mgda", "fixed", "pair"]))
    expect = None
    corrupt = draw(st.sampled_from([None, None, "nan", "id", "neg_id", "float_ids", "E0", "B0",
                                    "shape", "dtype", "weighting", "sigma", "w", "object"]))
    if corrupt == "nan":
        kw["X"] = np.array(kw["X"], dtype=np.float64)
        kw["X"].flat[0] = np.nan
        expect = ValueError
    elif corrupt == "id":
        kw["items"] = np.array(kw["items"], dtype=np.int64)
        kw["items"][0, 0, 0] = ni + draw(st.integers(0, 3))
        expect = ValueError
    elif corrupt == "neg_id":
        kw["users"] = np.array(kw["users"], dtype=np.int64)
        kw["users"][-1, -1] = -1
        expect = ValueError
    elif corrupt == "float_ids":
        kw["users"], expect = np.asarray(kw["users"], np.float64), TypeError
    elif corrupt == "E0":
        kw["eps"], kw["users"], kw["items"] = (np.asarray(kw[k])[:0] for k in
                                               ("eps", "users", "items"))
        expect = ValueError
    elif corrupt == "B0":
        kw["users"], kw["items"] = np.asarray(kw["users"])[:, :0], np.asarray(kw["items"])[:, :0]
        expect = ValueError
    elif corrupt == "shape":
        kw["beta_i"], expect = np.asarray(kw["beta_i"])[:-1], ValueError
    elif corrupt == "dtype":
        kw["dtype"], expect = draw(st.sampled_from([np.int32, np.float16, "foo"])), TypeError
    elif corrupt == "weighting":
        kw["weighting"], expect = draw(st.sampled_from(["bogus", ["mgda"], None])), ValueError
    elif corrupt == "sigma":
        kw["sigma"], expect = draw(st.sampled_from([-1.0, np.nan])), ValueError
    elif corrupt == "w":
        kw["w"] = draw(st.sampled_from([(1, 1, 1), (1, 1, 1, np.nan), "abcd"]))
        expect = TypeError if isinstance(kw["w"], str) else ValueError
    elif corrupt == "object":
        kw["mu"], expect = np.asarray(vals["mu"], dtype=object), TypeError
    return kw, expect


@SETTINGS
@given(mask_step_problems())
def test_mask_step_matches_the_reference(problem):
    kw, expect = problem
    out, _ = call(invariance.mask_step, kw, expect)
    if expect is not None:
        return
    f64 = {k: np.asarray(kw[k], np.float64) for k in ("U", "V", "X", "W", "mu", "eps",
                                                       "beta_u", "beta_i")}
    L, erm, irm, reg = step_losses(f64["U"], f64["V"], f64["X"], f64["W"], f64["mu"], f64["eps"],
                                   np.asarray(kw["users"]), np.asarray(kw["items"]),
                                   f64["beta_u"], f64["beta_i"], 0.01, (1, 1, 1, 1), 0.01)
    single = out.direction.dtype == np.float32
    tol = 2e-3 if single else 1e-9
    np.testing.assert_allclose(out.loss_env, L, rtol=tol, atol=tol)
    assert out.erm_loss == pytest.approx(erm, rel=tol, abs=tol)
    assert out.irm_loss == pytest.approx(irm, rel=10 * tol, abs=10 * tol)
    assert np.all(np.isfinite(out.direction))
    assert 0.0 <= out.gamma <= 1.0


@st.composite
def learn_mask_problems(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    nu, ni = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    d_id, d_c, D = draw(st.integers(0, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 3))
    key = rng.permutation(nu * ni)[:draw(st.integers(1, nu * ni))]
    users, items = key // ni, key % ni
    n_envs = draw(st.integers(1, 3))
    env = rng.integers(0, n_envs, users.size)
    kw = dict(users=draw(arrays_like(users, [np.int64, np.int32, np.uint8])),
              items=draw(arrays_like(items, [np.int64, np.int32])),
              env=draw(arrays_like(env, [np.int64, np.int16])),
              U=draw(arrays_like(rng.normal(0, 0.3, (nu, d_id + d_c)))),
              V=draw(arrays_like(rng.normal(0, 0.3, (ni, d_id)))),
              X=draw(arrays_like(rng.normal(0, 0.3, (ni, D)))),
              n_envs=n_envs, epochs=1, batch_size=draw(st.integers(1, 4)),
              n_neg=draw(st.integers(0, 2)), seed=draw(st.integers(0, 2**64 - 1)), n_threads=1,
              weighting=draw(st.sampled_from(["mgda", "fixed", "pair"])))
    expect = None
    corrupt = draw(st.sampled_from([None, None, "dup", "empty", "env_range", "env_float",
                                    "nan", "lr", "seed", "length"]))
    if corrupt == "dup":
        for k in ("users", "items", "env"):
            a = np.asarray(kw[k])
            kw[k] = np.concatenate([a, a[:1]])
        expect = ValueError
    elif corrupt == "empty":
        for k in ("users", "items", "env"):
            kw[k] = np.asarray(kw[k])[:0]
        expect = ValueError
    elif corrupt == "env_range":
        kw["env"] = np.asarray(kw["env"], np.int64) + n_envs
        expect = ValueError
    elif corrupt == "env_float":
        kw["env"], expect = np.asarray(kw["env"], np.float64), TypeError
    elif corrupt == "nan":
        kw["X"] = np.array(kw["X"], np.float64)
        kw["X"].flat[-1] = np.nan
        expect = ValueError
    elif corrupt == "lr":
        kw["lr"], expect = draw(st.sampled_from([0.0, -1.0, np.inf])), ValueError
    elif corrupt == "seed":
        kw["seed"] = draw(st.sampled_from([-1, 2**64, 1.5]))
        expect = TypeError if isinstance(kw["seed"], float) else ValueError
    elif corrupt == "length":
        kw["items"], expect = np.asarray(kw["items"])[:-1], ValueError
    return kw, expect


@FEW
@given(learn_mask_problems())
def test_learn_mask_invariants(problem):
    kw, expect = problem
    r, _ = call(invariance.learn_mask, kw, expect)
    if expect is not None:
        return
    counts = np.bincount(np.asarray(kw["env"], np.int64), minlength=kw["n_envs"])
    np.testing.assert_array_equal(r.env_counts, counts)
    np.testing.assert_array_equal(r.empty_envs, np.flatnonzero(counts == 0))
    assert r.n_envs_used == int((counts > 0).sum())
    assert r.steps_per_epoch == math.ceil(counts.max() / kw["batch_size"])
    np.testing.assert_array_equal(r.mask, np.clip(r.mu + 0.5, 0, 1))
    assert r.mask.shape == (np.shape(kw["X"])[1],) and np.all((r.mask >= 0) & (r.mask <= 1))
    assert np.all(np.isfinite(r.erm_loss)) and np.all(np.isfinite(r.irm_loss))


# --------------------------------------------------------------------------- identify_environments

@st.composite
def identify_problems(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    nu, ni, D = draw(st.integers(1, 4)), draw(st.integers(1, 5)), draw(st.integers(0, 3))
    key = rng.permutation(nu * ni)[:draw(st.integers(1, nu * ni))]
    feats = rng.normal(size=(ni, D)) if D else None
    ds = Dataset(np.stack([key // ni, key % ni], 1), features=feats, n_users=nu, n_items=ni)
    n_envs = draw(st.integers(1, 3))
    d_id = draw(st.integers(0, 2))
    kw = dict(dataset=ds, n_envs=n_envs, epochs=1, max_rounds=draw(st.integers(1, 2)),
              d_id=d_id, d_content=draw(st.integers(1 if d_id == 0 else 0, 2)),
              batch_size=draw(st.integers(1, 8)), n_neg=draw(st.integers(0, 2)),
              seed=draw(st.integers(0, 2**64 - 1)), n_threads=draw(st.sampled_from([None, 1, 2])),
              tol=draw(st.sampled_from([0.0, 0.01, 1.0])))
    if draw(st.booleans()):
        kw["labels"] = draw(arrays_like(rng.integers(0, n_envs, ds.n_train),
                                        [np.int64, np.int32, np.uint8]))
    if D and draw(st.booleans()):
        kw["mask"] = draw(arrays_like(rng.uniform(size=D), [np.float64, np.float32]))
    expect = None
    corrupt = draw(st.sampled_from([None, None, "labels_range", "labels_float", "labels_len",
                                    "mask_len", "mask_range", "n_envs", "tol", "budget",
                                    "dataset", "w"]))
    if corrupt == "labels_range":
        kw["labels"], expect = np.full(ds.n_train, draw(st.sampled_from([-1, n_envs]))), ValueError
    elif corrupt == "labels_float":
        kw["labels"], expect = np.zeros(ds.n_train), TypeError
    elif corrupt == "labels_len":
        kw["labels"], expect = np.zeros(ds.n_train + 1, np.int64), ValueError
    elif corrupt == "mask_len":
        kw["mask"], expect = np.ones(D + 1), ValueError
    elif corrupt == "mask_range" and D:
        kw["mask"], expect = np.full(D, draw(st.sampled_from([1.5, -0.1, np.nan]))), ValueError
    elif corrupt == "n_envs":
        kw["n_envs"], expect = draw(st.sampled_from([0, -2])), ValueError
    elif corrupt == "tol":
        kw["tol"], expect = draw(st.sampled_from([1.5, -0.1, np.nan])), ValueError
    elif corrupt == "budget":
        kw["memory_budget"], expect = draw(st.integers(1, 64)), ValueError
    elif corrupt == "dataset":
        kw["dataset"], expect = ds.train, TypeError
    elif corrupt == "w":
        kw["w"], expect = (1, 1, 1, -1), ValueError
    return kw, expect


@FEW
@given(identify_problems())
def test_identify_environments_invariants(problem):
    kw, expect = problem
    split, _ = call(environments.identify_environments, kw, expect)
    if expect is not None:
        return
    ds, E = kw["dataset"], kw["n_envs"]
    labels = split.labels
    assert labels.shape == (ds.n_train,) and labels.dtype == np.int64
    assert labels.min() >= 0 and labels.max() < E
    assert split.sizes.shape == (split.n_rounds, E) and split.changes.shape == (split.n_rounds,)
    np.testing.assert_array_equal(split.sizes.sum(axis=1), ds.n_train)
    np.testing.assert_array_equal(split.sizes[-1], np.bincount(labels, minlength=E))
    assert split.converged == bool(split.changes[-1] <= split.tol_changes)
    if "labels" in kw:
        np.testing.assert_array_equal(split.initial_sizes,
                                      np.bincount(np.asarray(kw["labels"], np.int64),
                                                  minlength=E))


# --------------------------------------------------------------------------- convert

@st.composite
def convert_problems(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    nu, ni, d_id, d_c = (draw(st.integers(1, 4)), draw(st.integers(1, 5)), draw(st.integers(0, 2)),
                         draw(st.integers(1, 3)))
    D, da, B, n_neg = (draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(0, 3)),
                       draw(st.integers(0, 2)))
    fusion = draw(st.sampled_from(convert.FUSIONS))
    vals = dict(U=rng.normal(0, 0.5, (nu, d_id + d_c)), V=rng.normal(0, 0.5, (ni, d_id)),
                W=rng.normal(0, 0.5, (d_c, D)), b=rng.normal(0, 0.1, d_c),
                A=rng.normal(0, 0.5, (da, d_c)), c=rng.normal(0, 0.1, da),
                q=rng.normal(0, 0.5, da), mask=rng.uniform(size=D), X=rng.normal(0, 0.5, (ni, D)),
                beta_u=rng.uniform(0.2, 1.5, nu), beta_i=rng.uniform(0.2, 1.0, ni))
    kw = {k: draw(arrays_like(v, [np.float32, np.float64, np.float16])) for k, v in vals.items()}
    if draw(st.booleans()):
        kw["b"] = None
    kw.update(users=draw(arrays_like(rng.integers(0, nu, B), [np.int64, np.int32])),
              items=draw(arrays_like(rng.integers(0, ni, (B, 1 + n_neg)), [np.int64, np.int32])),
              fusion=fusion, omega=rng.normal(size=2) if fusion == "global" else None,
              dtype=draw(st.sampled_from([None, np.float32, np.float64])))
    expect = None
    corrupt = draw(st.sampled_from([None, None, "mask", "nan", "missing", "id", "float_ids",
                                    "dtype", "w", "fusion"]))
    if corrupt == "mask":
        kw["mask"] = np.array(vals["mask"]) + draw(st.sampled_from([1.01, -1.01]))  # outside [0, 1]
        expect = ValueError
    elif corrupt == "nan":
        kw["W"] = np.array(kw["W"], np.float64)
        kw["W"].flat[0] = np.inf
        expect = ValueError
    elif corrupt == "missing":
        if fusion == "attention":
            kw["q"], expect = None, ValueError
        elif fusion == "global":
            kw["omega"], expect = None, ValueError
    elif corrupt == "id" and B:
        kw["items"] = np.array(kw["items"], np.int64)
        kw["items"][0, -1] = draw(st.sampled_from([-1, ni]))
        expect = ValueError
    elif corrupt == "float_ids" and B:
        kw["items"], expect = np.asarray(kw["items"], np.float64) + 0.5, TypeError
    elif corrupt == "dtype":
        kw["dtype"], expect = np.int64, TypeError
    elif corrupt == "w":
        kw["w"], expect = (1.0, np.nan, 1.0, 1.0), ValueError
    elif corrupt == "fusion":
        kw["fusion"], expect = "sum", ValueError
    # convert_item_vectors takes no batch: only the corruptions of its own arguments count
    vec_expect = None if corrupt in ("id", "float_ids", "w") else expect
    return kw, expect, vec_expect


@SETTINGS
@given(convert_problems())
def test_convert_matches_the_reference(problem):
    kw, expect, vec_expect = problem
    out, _ = call(convert.convert_loss_grad, kw, expect)
    item_kw = {k: kw[k] for k in ("W", "b", "A", "c", "q", "mask", "X", "fusion", "omega",
                                  "dtype")}
    vecs, _ = call(convert.convert_item_vectors, item_kw, vec_expect)
    a_inv, _ = call(convert.attention_weights, item_kw, vec_expect)
    if expect is not None:
        return
    f = {k: None if kw[k] is None else np.asarray(kw[k], np.float64) for k in item_kw
         if k not in ("fusion", "dtype")}
    H, a = convert_items_ref(f["W"], f["b"], f["A"], f["c"], f["q"], f["mask"], f["X"],
                             kw["fusion"], f["omega"])
    single = vecs[0].dtype == np.float32
    tol = 1e-4 if single else 1e-10
    np.testing.assert_allclose(vecs[0], H, rtol=tol, atol=tol)
    np.testing.assert_allclose(a_inv, a, rtol=tol, atol=tol)
    want = convert_loss_ref(np.asarray(kw["U"], np.float64), np.asarray(kw["V"], np.float64),
                            f["W"], f["b"], f["A"], f["c"], f["q"], f["mask"], f["X"],
                            np.asarray(kw["users"]), np.asarray(kw["items"]),
                            np.asarray(kw["beta_u"], np.float64),
                            np.asarray(kw["beta_i"], np.float64), fusion=kw["fusion"],
                            omega=f["omega"])
    loss_single = (kw["dtype"] or (np.float64 if np.asarray(kw["U"]).dtype == np.float64
                                   else np.float32)) == np.float32
    ltol = 1e-3 if loss_single else 1e-9
    assert out.loss == pytest.approx(want, rel=ltol, abs=ltol)


# --------------------------------------------------------------------------- Dataset

@st.composite
def dataset_problems(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    nu, ni = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    n = draw(st.integers(1, nu * ni))
    key = rng.permutation(nu * ni)[:n]
    pairs = np.stack([key // ni, key % ni], 1)
    n_val = draw(st.integers(0, n - 1))
    train, val = pairs[n_val:], pairs[:n_val]
    kw = dict(train=draw(arrays_like(train, [np.int64, np.int32, np.uint16, np.int8])),
              val=draw(arrays_like(val, [np.int64, np.int32])) if n_val else None)
    D = draw(st.integers(0, 3))
    if D:
        kw["features"] = draw(arrays_like(rng.normal(size=(ni, D)) * 10,
                                          [np.float16, np.float32, np.float64, np.int32]))
        kw["n_items"] = ni
    expect = None
    corrupt = draw(st.sampled_from([None, None, "dup", "dup_drop", "neg", "float", "object",
                                    "empty", "shape", "feat_nan", "feat_rows", "n_users"]))
    if corrupt in ("dup", "dup_drop"):
        kw["train"] = np.concatenate([np.asarray(kw["train"]), np.asarray(kw["train"])[:1]])
        if corrupt == "dup_drop":
            kw["duplicates"] = "drop"
        else:
            expect = ValueError
    elif corrupt == "neg":
        kw["train"] = np.array(kw["train"], np.int64)
        kw["train"][-1, draw(st.integers(0, 1))] = -1
        expect = ValueError
    elif corrupt == "float":
        kw["train"], expect = np.asarray(kw["train"], np.float64), TypeError
    elif corrupt == "object":
        kw["train"], expect = np.asarray(kw["train"], dtype=object), TypeError
    elif corrupt == "empty":
        kw["train"], expect = np.zeros((0, 2), np.int64), ValueError
    elif corrupt == "shape":
        kw["train"], expect = np.zeros((2, 3), np.int64), ValueError
    elif corrupt == "feat_nan" and D:
        kw["features"] = np.array(kw["features"], np.float64)
        kw["features"][0, 0] = np.nan
        expect = ValueError
    elif corrupt == "feat_rows" and D:
        kw["features"], expect = np.asarray(kw["features"])[:-1], ValueError
    elif corrupt == "n_users":
        kw["n_users"] = draw(st.sampled_from([0, 2.5, True]))
        expect = ValueError if kw["n_users"] == 0 and not isinstance(kw["n_users"], bool) \
            else TypeError
    return kw, expect


@SETTINGS
@given(dataset_problems())
def test_dataset_from_arrays(problem):
    kw, expect = problem
    ds, _ = call(Dataset.from_arrays, kw, expect)
    if expect is not None:
        return
    train = np.asarray(kw["train"], np.int64)
    if kw.get("duplicates") == "drop":
        _, first = np.unique(train, axis=0, return_index=True)
        train = train[np.sort(first)]
    np.testing.assert_array_equal(ds.train, train)
    parts = [train] + ([np.asarray(kw["val"], np.int64)] if kw["val"] is not None else [])
    allp = np.concatenate(parts)
    assert ds.n_users == allp[:, 0].max() + 1
    np.testing.assert_array_equal(ds.user_degree, np.bincount(train[:, 0], minlength=ds.n_users))
    np.testing.assert_array_equal(ds.item_degree, np.bincount(train[:, 1], minlength=ds.n_items))
    assert ds.val.nnz == (0 if kw["val"] is None else len(kw["val"]))
    if "features" in kw:
        F = np.asarray(kw["features"], np.float64)
        norms = np.linalg.norm(F, axis=1, keepdims=True)
        np.testing.assert_allclose(ds.features, np.divide(F, norms, out=np.zeros_like(F),
                                                          where=norms > 0), atol=1e-6)
    assert not ds.train.flags.writeable


@st.composite
def dataframe_problems(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.integers(1, 8))
    users = rng.choice(np.array(["ann", "bob", "cy", "dee"], dtype=object), n)
    items = rng.integers(100, 106, n)
    df = pd.DataFrame({"user": users, "item": items, "split": rng.integers(0, 3, n)})
    df = df.drop_duplicates(["user", "item"]).reset_index(drop=True)
    df.loc[0, "split"] = 0                                       # at least one training row
    kw = dict(df=df, split_col=draw(st.sampled_from([None, "split"])))
    expect = None
    corrupt = draw(st.sampled_from([None, None, "dup", "nan", "split", "col", "empty"]))
    if corrupt == "dup":
        kw["df"], expect = pd.concat([df, df.iloc[:1]], ignore_index=True), ValueError
    elif corrupt == "nan":
        bad = df.copy()
        bad["user"] = bad["user"].astype(object)
        bad.loc[len(bad) - 1, "user"] = None
        kw["df"], expect = bad, ValueError
    elif corrupt == "split":
        bad = df.copy()
        bad.loc[len(bad) - 1, "split"] = 7
        kw["df"], kw["split_col"], expect = bad, "split", ValueError
    elif corrupt == "col":
        kw["user_col"], expect = "customer", ValueError
    elif corrupt == "empty":
        kw["df"], expect = df.iloc[:0], ValueError
    return kw, expect


@SETTINGS
@given(dataframe_problems())
def test_dataset_from_dataframe(problem):
    kw, expect = problem
    ds, _ = call(Dataset.from_dataframe, kw, expect)
    if expect is not None:
        return
    df = kw["df"]
    is_train = np.ones(len(df), bool) if kw["split_col"] is None else (df["split"] == 0).to_numpy()
    rows = df[is_train]
    np.testing.assert_array_equal(ds.user_ids[ds.train[:, 0]], rows["user"].to_numpy())
    np.testing.assert_array_equal(ds.item_ids[ds.train[:, 1]], rows["item"].to_numpy())
    assert list(ds.item_ids) == sorted(set(df["item"]))
    assert ds.n_train + ds.val.nnz + ds.test.nnz == len(df)


# --------------------------------------------------------------------------- splits

def pair_set(*parts):
    rows = [tuple(r) for p in parts for r in np.asarray(p).tolist()]
    return sorted(rows)


@st.composite
def raw_pairs(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    nu, ni = draw(st.integers(1, 5)), draw(st.integers(1, 6))
    key = rng.permutation(nu * ni)[:draw(st.integers(1, nu * ni))]
    pairs = np.stack([key // ni, key % ni], 1)
    expect = None
    corrupt = draw(st.sampled_from([None, None, "dup", "neg", "empty", "float", "object"]))
    if corrupt == "dup":
        pairs, expect = np.concatenate([pairs, pairs[-1:]]), ValueError
    elif corrupt == "neg":
        pairs = pairs.copy()
        pairs[0, 1] = -3
        expect = ValueError
    elif corrupt == "empty":
        pairs, expect = pairs[:0], ValueError
    elif corrupt == "float":
        pairs, expect = pairs.astype(np.float64), TypeError
    elif corrupt == "object":
        pairs, expect = pairs.astype(object), TypeError
    if expect is None or corrupt in ("dup", "empty"):
        pairs = draw(arrays_like(pairs, [np.int64, np.int32, np.uint16]))
    elif corrupt == "neg":
        pairs = draw(arrays_like(pairs, [np.int64, np.int32, np.int8]))
    return pairs, expect, rng


RATIOS = st.sampled_from([(0.8, 0.1, 0.1), (1, 0, 0), (1, 1, 1), (0.5, 0, 0.5), (1e308, 1e308, 1)])


@SETTINGS
@given(raw_pairs(), RATIOS, st.integers(0, 3), st.integers(0, 2**70))
def test_random_per_user_partitions_each_user(problem, ratios, min_train, seed):
    pairs, expect, _ = problem
    kw = dict(dataset_or_pairs=pairs, ratios=ratios, min_train=min_train, seed=seed)
    if expect is None and min_train == 0:
        try:                      # min_train=0 may leave no training pair: documented ValueError
            splits.random_per_user(**kw)
        except ValueError as e:
            assert "at least one training pair" in str(e)
            return
    ds, _ = call(splits.random_per_user, kw, expect)
    if expect is not None:
        return
    assert pair_set(ds.train, ds.val.to_pairs(), ds.test.to_pairs()) == pair_set(pairs)
    n_u = np.bincount(np.asarray(pairs)[:, 0].astype(np.int64), minlength=ds.n_users)
    np.testing.assert_array_less(np.minimum(min_train, n_u) - 1,
                                 np.bincount(ds.train[:, 0], minlength=ds.n_users))


@SETTINGS
@given(raw_pairs(), RATIOS, st.booleans(), st.sampled_from(["float", "int", "datetime", "nan",
                                                              "short", "object"]))
def test_temporal_keeps_time_order(problem, ratios, per_user, kind):
    pairs, expect, rng = problem
    n = len(pairs)
    t = rng.integers(0, 4, n)                               # ties on purpose
    if kind == "float":
        t = t + 0.25
    elif kind == "datetime":
        t = t.astype("datetime64[D]")
    elif expect is None and kind == "nan" and n:
        t = t.astype(float)
        t[0] = np.nan
        expect = ValueError
    elif expect is None and kind == "short":
        t, expect = t[:-1], ValueError
    elif expect is None and kind == "object" and n:
        t, expect = t.astype(object), TypeError
    kw = dict(df_or_arrays=pairs, timestamps=t, ratios=ratios, per_user=per_user)
    before = snapshot(kw)
    try:
        ds = splits.temporal(**kw)
    except (TypeError, ValueError) as e:
        assert_unchanged(before, kw)
        # a global cut may leave no training pair: the documented ValueError
        if expect is None and not per_user and "at least one training pair" in str(e):
            return
        assert expect is not None and isinstance(e, expect), repr(e)
        return
    assert_unchanged(before, kw)
    assert expect is None
    P = np.asarray(pairs, np.int64)
    pos = {tuple(p): k for k, p in enumerate(P.tolist())}
    key = np.asarray(t).astype(np.int64) if np.asarray(t).dtype.kind == "M" else np.asarray(t)
    parts = [ds.train, ds.val.to_pairs(), ds.test.to_pairs()]
    assert pair_set(*parts) == pair_set(P)
    # time (then input position) never goes backwards from train to val to test
    order = [[(key[pos[tuple(p)]], pos[tuple(p)]) for p in part.tolist()] for part in parts]
    for a, b in ((0, 1), (1, 2), (0, 2)):
        for u in (range(ds.n_users) if per_user else [None]):
            left = [x for x, p in zip(order[a], parts[a].tolist()) if u is None or p[0] == u]
            right = [x for x, p in zip(order[b], parts[b].tolist()) if u is None or p[0] == u]
            if left and right:
                assert max(left) < min(right)


@st.composite
def holdout_problems(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    nu, ni = draw(st.integers(1, 5)), draw(st.integers(2, 6))
    key = rng.permutation(nu * ni)[:draw(st.integers(2, nu * ni))]
    ds = Dataset(np.stack([key // ni, key % ni], 1), n_users=nu, n_items=ni)
    n = ds.n_train
    n_env = draw(st.integers(1, 4))
    scale = draw(st.sampled_from([1, 7, 10**12]))            # sparse environment ids are fine
    lab = rng.integers(0, n_env, n) * scale
    n_present = np.unique(lab).size
    holdout = draw(st.one_of(st.integers(-1, 4), st.lists(st.integers(0, n_env) .map(
        lambda e: e * scale), min_size=0, max_size=3)))
    which = draw(st.sampled_from(["smallest", "largest", "random", "farthest"]))
    kw = dict(dataset=ds, labels=draw(arrays_like(lab, [np.int64, np.uint64])), holdout=holdout,
              which=which, seed=draw(st.integers(0, 99)))
    if isinstance(holdout, int):
        expect = None if 1 <= holdout < n_present else ValueError
    else:
        present = set(np.unique(lab).tolist())
        ok = (holdout and len(set(holdout)) == len(holdout) and set(holdout) <= present
              and len(holdout) < n_present)
        expect = None if ok else ValueError
    corrupt = draw(st.sampled_from([None, None, "float", "neg", "short", "2d"]))
    if corrupt == "float":
        kw["labels"], expect = lab.astype(float), TypeError
    elif corrupt == "neg":
        kw["labels"], expect = lab - scale * n_env - 1, ValueError
    elif corrupt == "short":
        kw["labels"], expect = lab[:-1], ValueError
    elif corrupt == "2d" and expect is None:
        kw["holdout"], expect = [[int(lab[0])]], ValueError
    return kw, expect


@SETTINGS
@given(holdout_problems())
def test_hold_out_environments_partitions_by_label(problem):
    kw, expect = problem
    h, _ = call(splits.hold_out_environments, kw, expect)
    if expect is not None:
        return
    ds = kw["dataset"]
    lab = np.asarray(kw["labels"], np.int64)
    P = splits.pooled_pairs(ds)
    held = np.isin(lab, h.held_out)
    assert pair_set(h.ood_test.to_pairs()) == pair_set(P[held])
    d = h.dataset
    assert pair_set(d.train, d.val.to_pairs(), d.test.to_pairs()) == pair_set(P[~held])
    lookup = {tuple(p): e for p, e in zip(P.tolist(), lab.tolist())}
    assert [lookup[tuple(p)] for p in d.train.tolist()] == h.train_env.tolist()
    assert sum(h.sizes.values()) == len(P)


@SETTINGS
@given(raw_pairs(), st.sampled_from([0.05, 0.1, 0.3, 0.0, 1 / 3, np.nan]),
       st.sampled_from([0.5, 0.8, 1e-9, 1.0]), st.integers(0, 2))
def test_popularity_shift_takes_only_tail_pairs(problem, share, tail, min_train):
    pairs, expect, _ = problem
    if expect is not None:
        return                                  # raw-pair errors are covered above
    ds = Dataset(pairs)
    if not (0 < share < 1 / 3) or not (0 < tail < 1):
        expect = ValueError
    kw = dict(dataset=ds, test_share=share, tail_fraction=tail, min_train=min_train)
    before = snapshot(kw)
    try:
        r = splits.popularity_shift(**kw)
    except ValueError:
        # out-of-range shares, or a tail too small for the OOD test: both documented
        assert_unchanged(before, kw)
        return
    assert expect is None
    P = splits.pooled_pairs(ds)
    d = r.dataset
    assert pair_set(d.train, d.val.to_pairs(), d.test.to_pairs(), r.ood_test.to_pairs()) == \
        pair_set(P)
    assert np.isin(r.ood_test.to_pairs()[:, 1], r.tail_items).all()
    assert r.sizes["ood_test"] == r.ood_test.nnz > 0


# --------------------------------------------------------------------------- functional

INTS = st.one_of(st.integers(-3, 10), st.sampled_from([2**32, 2**63, 2**64, 2**64 - 1, True, 1.0,
                                                        None, "3"]))


@SETTINGS
@given(INTS, INTS, INTS, INTS, INTS)
def test_sample_negatives_range_and_determinism(n_items, n_neg, seed, epoch, position):
    def expected(v, low, high=None):
        if isinstance(v, bool) or not isinstance(v, int):
            return TypeError
        if v < low or (high is not None and v >= high):
            return ValueError
        return None
    # a valid n_neg of 2**32 would allocate 32 GiB: draw it only when another argument is bad
    checks = [expected(n_items, 1, 2**63), expected(n_neg, 0, 2**63), expected(seed, 0, 2**64),
              expected(epoch, 0, 2**32), expected(position, 0, 2**63)]
    assume(not (n_neg in (2**32, 2**64 - 1) and all(c is None for c in checks)))
    expect = next((e for e in checks if e is TypeError), None) or \
        next((e for e in checks if e is not None), None)
    kw = dict(n_items=n_items, n_neg=n_neg, seed=seed, epoch=epoch, position=position)
    if expect is not None:
        # the first bad argument decides; any bad one gives TypeError or ValueError
        with pytest.raises((TypeError, ValueError)):
            functional.sample_negatives(**kw)
        return
    a = functional.sample_negatives(**kw)
    b = functional.sample_negatives(**kw)
    assert a.shape == (n_neg,) and a.dtype == np.int64
    assert np.array_equal(a, b)
    assert np.all((a >= 0) & (a < n_items))


@SETTINGS
@given(st.integers(0, 5), st.integers(0, 5), st.sampled_from(REAL_DTYPES),
       st.sampled_from([None, "neg", "nan", "inf", "object", "2d", "dtype"]),
       st.sampled_from(LAYOUTS))
def test_loss_weights_formula(nu, ni, dtype, corrupt, layout):
    rng = np.random.default_rng(nu * 7 + ni)
    du = relayout(rng.integers(0, 9, nu).astype(dtype), layout)
    di = relayout(rng.integers(0, 9, ni).astype(dtype), layout)
    kw = dict(user_degree=du, item_degree=di)
    expect = None
    if corrupt == "neg" and nu and np.dtype(dtype).kind in "if":
        kw["user_degree"], expect = -np.ones(nu), ValueError
    elif corrupt in ("nan", "inf") and ni:
        kw["item_degree"], expect = np.full(ni, np.nan if corrupt == "nan" else np.inf), ValueError
    elif corrupt == "object":
        kw["item_degree"], expect = np.array(["a"] * ni, dtype=object), TypeError
    elif corrupt == "2d":
        kw["user_degree"], expect = np.ones((2, 2)), ValueError
    elif corrupt == "dtype":
        kw["dtype"], expect = np.int32, TypeError
    out, _ = call(functional.loss_weights, kw, expect)
    if expect is not None:
        return
    d_u = np.maximum(np.asarray(du, np.float64), 1e-10)
    np.testing.assert_allclose(out[0], np.sqrt(d_u + 1) / d_u, rtol=1e-6)
    np.testing.assert_allclose(out[1], 1 / np.sqrt(np.asarray(di, np.float64) + 1), rtol=1e-6)
    assert out[0].dtype == np.float32 and out[1].dtype == np.float32


# --------------------------------------------------------------------------- baseline estimators

from painvrl import FREEDOM, VBPR, LightGCN, datasets  # noqa: E402

_BASELINE_PARAMS = {
    LightGCN: ["dim", "n_layers", "lr", "reg", "batch_size", "eval_every", "patience",
               "init_std"],
    VBPR: ["k", "k2", "lr", "lam", "lam_b", "lam_e", "batch_size", "eval_every", "init_std"],
    FREEDOM: ["dim", "n_ui_layers", "n_ii_layers", "knn_k", "dropout", "align", "lr",
              "batch_size", "init_std"],
}
_BAD_VALUES = st.one_of(st.integers(-5, -1), st.just(float("nan")), st.just(float("inf")),
                        st.just(-0.5), st.text(max_size=3), st.none(), st.just([1]))


@pytest.fixture(scope="module")
def tiny_multimodal():
    return datasets.make_multimodal(n_users=30, n_items=40, n_interactions=600, seed=2)


@settings(FEW, max_examples=40)
@given(model=st.sampled_from(list(_BASELINE_PARAMS)), data=st.data())
def test_baseline_hyperparameters_are_checked_before_training(tiny_multimodal, model, data):
    """A wrong kind or value of any numeric hyperparameter of LightGCN, VBPR or FREEDOM
    raises TypeError/ValueError naming the model and the parameter, before anything is
    trained (so the model stays unfitted), and leaves the dataset as it was."""
    param = data.draw(st.sampled_from(_BASELINE_PARAMS[model]))
    value = data.draw(_BAD_VALUES)
    est = model(max_epochs=1, progress=False, n_threads=1, **{param: value})
    before = snapshot(tiny_multimodal.train)
    with pytest.raises((TypeError, ValueError), match=f"{model.__name__}: {param}"):
        est.fit(tiny_multimodal)
    assert not hasattr(est, "seen_")
    assert_unchanged(before, tiny_multimodal.train)


@settings(FEW, max_examples=20)
@given(model=st.sampled_from(list(_BASELINE_PARAMS)),
       users=st.one_of(st.just([-1]), st.just([30]), st.just([0.5]), st.just([[0, 1]])),
       k=st.one_of(st.just(0), st.just(41), st.just(2)))
def test_baseline_recommend_rejects_bad_users_and_k(tiny_multimodal, fitted_baselines, model,
                                                    users, k):
    est = fitted_baselines[model]
    with pytest.raises((TypeError, ValueError), match="users|k"):
        est.recommend(users, k=k)


@pytest.fixture(scope="module")
def fitted_baselines(tiny_multimodal):
    return {m: m(max_epochs=1, progress=False, n_threads=1, batch_size=64,
                 **({"knn_k": 3} if m is FREEDOM else {})).fit(tiny_multimodal)
            for m in _BASELINE_PARAMS}
