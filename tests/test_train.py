"""The C epoch trainer against a NumPy float64 replay of the same batches."""
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from painvrl import _core
from painvrl.models.functional import loss_weights, sample_negatives
from reference import adagrad, adam, rec_grad, rec_loss

SHUFFLE_STREAM = 1


def setup(rng, nu=12, ni=20, d_id=3, d_c=4, D=5, n_pairs=37, bias=True):
    users = rng.integers(0, nu, n_pairs).astype(np.int64)
    items = rng.integers(0, ni, n_pairs).astype(np.int64)
    params = dict(
        U=(rng.normal(size=(nu, d_id + d_c)) * 0.3).astype(np.float32),
        V=(rng.normal(size=(ni, d_id)) * 0.3).astype(np.float32),
        W=(rng.normal(size=(d_c, D)) * 0.3).astype(np.float32),
        b=(rng.normal(size=d_c) * 0.3).astype(np.float32) if bias else None)
    X = rng.normal(size=(ni, D)).astype(np.float32)
    beta_u, beta_i = loss_weights(np.bincount(users, minlength=nu),
                                  np.bincount(items, minlength=ni))
    return users, items, params, X, beta_u, beta_i


def fresh_state(params, adam_emb=True):
    z = lambda a: None if a is None else np.zeros_like(a)  # noqa: E731
    U, V, W, b = params["U"], params["V"], params["W"], params["b"]
    return (z(U), z(U) if adam_emb else None, z(V), z(V) if adam_emb else None, z(W), z(W),
            z(b), z(b))


def epoch_batches(users, items, n_items, *, batch, n_neg, seed, epoch):
    """The trainer's batches, rebuilt from its documented streams: a Philox permutation of
    the pairs, then for each row its positive and the negatives drawn for its position."""
    perm = _core.permutation(len(users), seed, SHUFFLE_STREAM, epoch)
    for lo in range(0, len(users), batch):
        rows = perm[lo:lo + batch]
        bi = np.empty((len(rows), 1 + n_neg), np.int64)
        bi[:, 0] = items[rows]
        for r in range(len(rows)):
            bi[r, 1:] = sample_negatives(n_items, n_neg, seed, epoch, lo + r)
        yield users[rows], bi


def replay(users, items, params, X, beta_u, beta_i, *, batch, n_neg, seed, epoch, reg, wd1,
           wdi, wd2, emb_opt="adam", lr=(1e-2, 2e-2), l1=0.0, l1_mask=None, w=(1, 1, 1, 1)):
    """One epoch in float64 NumPy, following the trainer's documented contract."""
    P = {k: None if v is None else v.astype(np.float64) for k, v in params.items()}
    S = {k: [np.zeros_like(v), np.zeros_like(v)] for k, v in P.items() if v is not None}
    t = 0
    total = 0.0
    for bu, bi in epoch_batches(users, items, P["V"].shape[0], batch=batch, n_neg=n_neg,
                                seed=seed, epoch=epoch):
        args = (P["U"], P["V"], P["W"], P["b"], None, X, bu, bi, beta_u, beta_i)
        total += rec_loss(*args, w=w)
        dU, dV, dW, db, _ = rec_grad(*args, w=w)
        t += 1
        uu, ii = np.unique(bu), np.unique(bi)
        if l1:
            dW = dW + l1 / dW.size * np.sign(P["W"]) * np.abs(l1_mask)
            total += l1 * np.mean(np.abs(P["W"] * l1_mask))
        dW = dW + 2 * wd2 * P["W"]
        if P["b"] is not None:
            db = db + 2 * wd2 * P["b"]
        if reg == "full":
            dU = dU + 2 * wd1 * P["U"]
            dV = dV + 2 * wd1 * wdi * P["V"]
            rows_u, rows_v = slice(None), slice(None)
        else:
            dU[uu] += 2 * wd1 * P["U"][uu]
            dV[ii] += 2 * wd1 * wdi * P["V"][ii]
            rows_u, rows_v = uu, ii
        for name, grad, sel in (("U", dU, rows_u), ("V", dV, rows_v)):
            p, (m, v) = P[name], S[name]
            if emb_opt == "adam":
                sub_p, sub_m, sub_v = p[sel], m[sel], v[sel]
                adam(sub_p, grad[sel], sub_m, sub_v, t, lr[0])
                p[sel], m[sel], v[sel] = sub_p, sub_m, sub_v
            else:
                sub_p, sub_m = p[sel], m[sel]
                adagrad(sub_p, grad[sel], sub_m, lr[0])
                p[sel], m[sel] = sub_p, sub_m
        adam(P["W"], dW, *S["W"], t, lr[1])
        if P["b"] is not None:
            adam(P["b"], db, *S["b"], t, lr[1])
    return P, total, t


def run_c(users, items, params, X, beta_u, beta_i, *, emb_opt="adam", n_threads=1, **kw):
    params = {k: None if v is None else v.copy() for k, v in params.items()}
    state = fresh_state(params, emb_opt == "adam")
    lr = kw.pop("lr", (1e-2, 2e-2))
    out = _core.train_epoch(params["U"], params["V"], params["W"], params["b"], None, X, beta_u,
                            beta_i, users, items, state, emb_opt=emb_opt, emb_lr=lr[0],
                            proj_lr=lr[1], n_threads=n_threads, **kw)
    return params, out, state


@pytest.mark.parametrize("reg", ["full", "batch"])
@pytest.mark.parametrize("emb_opt", ["adam", "adagrad"])
def test_epoch_matches_numpy_replay(rng, reg, emb_opt):
    users, items, params, X, bu, bi = setup(rng)
    kw = dict(batch_size=8, n_neg=3, seed=7, epoch=2, reg=reg, wd1=0.01, wdi=2.0, wd2=0.05)
    got, (loss, n_batches, step), _ = run_c(users, items, params, X, bu, bi, emb_opt=emb_opt,
                                            **kw)
    want, want_loss, t = replay(users, items, params, X, bu, bi, batch=8, n_neg=3, seed=7,
                                epoch=2, reg=reg, wd1=0.01, wdi=2.0, wd2=0.05, emb_opt=emb_opt)
    assert (n_batches, step) == (t, t) == (5, 5)
    assert loss == pytest.approx(want_loss, rel=1e-5)
    for k in ("U", "V", "W", "b"):
        np.testing.assert_allclose(got[k], want[k], rtol=1e-4, atol=2e-5, err_msg=k)


def test_l1_term_of_environment_models(rng):
    users, items, params, X, bu, bi = setup(rng, bias=False)
    mask = rng.uniform(0, 1, X.shape[1]).astype(np.float32)
    kw = dict(batch_size=10, n_neg=2, seed=3, epoch=0, reg="batch", wd1=1e-3, wdi=1.0, wd2=0.01)
    got, (loss, _, _), _ = run_c(users, items, params, X, bu, bi, emb_opt="adagrad", l1=0.5,
                                 l1_mask=mask, **kw)
    want, want_loss, _ = replay(users, items, params, X, bu, bi, batch=10, n_neg=2, seed=3,
                                epoch=0, reg="batch", wd1=1e-3, wdi=1.0, wd2=0.01,
                                emb_opt="adagrad", l1=0.5, l1_mask=mask)
    assert loss == pytest.approx(want_loss, rel=1e-5)
    np.testing.assert_allclose(got["W"], want["W"], rtol=1e-4, atol=2e-5)


def test_batch_mode_leaves_untouched_rows_alone(rng):
    users, items, params, X, bu, bi = setup(rng, ni=40)
    got, _, state = run_c(users, items, params, X, bu, bi, batch_size=64, n_neg=0, seed=1,
                          reg="batch", wd1=0.1)
    untouched = np.setdiff1d(np.arange(40), items)
    assert untouched.size > 0
    np.testing.assert_array_equal(got["V"][untouched], params["V"][untouched])
    assert np.all(state[2][untouched] == 0)
    got_full, _, _ = run_c(users, items, params, X, bu, bi, batch_size=64, n_neg=0, seed=1,
                           reg="full", wd1=0.1)
    assert np.all(got_full["V"][untouched] != params["V"][untouched])


def test_bit_identical_for_one_and_two_threads(rng):
    users, items, params, X, bu, bi = setup(rng, nu=200, ni=300, d_id=8, d_c=8, D=48,
                                            n_pairs=3000)
    results = []
    for n in (1, 2):
        with threadpool_limits(limits=n, user_api="blas"):
            got, out, state = run_c(users, items, params, X, bu, bi, n_threads=n,
                                    batch_size=256, n_neg=10, seed=5, reg="full")
        results.append((got, out, state))
    (g1, o1, s1), (g2, o2, s2) = results
    assert o1 == o2
    for k in g1:
        np.testing.assert_array_equal(g1[k], g2[k])
    for a, b in zip(s1, s2):
        np.testing.assert_array_equal(a, b)


def test_negatives_are_uniform_and_reproducible():
    draws = np.concatenate([sample_negatives(10, 50, 42, 0, p) for p in range(400)])
    assert draws.min() == 0 and draws.max() == 9
    counts = np.bincount(draws, minlength=10)
    # 20,000 draws over 10 items: each count ~ Binomial(20000, 0.1), sd ~ 42.
    assert np.all(np.abs(counts - 2000) < 250)
    np.testing.assert_array_equal(sample_negatives(10, 50, 42, 0, 3),
                                  sample_negatives(10, 50, 42, 0, 3))
    assert not np.array_equal(sample_negatives(10, 50, 42, 0, 3),
                              sample_negatives(10, 50, 42, 1, 3))


def test_permutation_is_a_permutation():
    p = _core.permutation(1000, 9, SHUFFLE_STREAM, 0)
    np.testing.assert_array_equal(np.sort(p), np.arange(1000))
    assert not np.array_equal(p, _core.permutation(1000, 9, SHUFFLE_STREAM, 1))


def test_trainer_rejects_bad_input(rng):
    users, items, params, X, bu, bi = setup(rng)
    state = fresh_state(params)
    U, V, W, b = params["U"], params["V"], params["W"], params["b"]
    bad_items = items.copy()
    bad_items[3] = 10**6
    with pytest.raises(IndexError, match="train_epoch"):
        _core.train_epoch(U, V, W, b, None, X, bu, bi, users, bad_items, state)
    with pytest.raises(ValueError, match="'U' is updated in place and must be writeable"):
        ro = U.copy()
        ro.flags.writeable = False
        _core.train_epoch(ro, V, W, b, None, X, bu, bi, users, items, state)
    with pytest.raises(ValueError, match="must be C-contiguous"):
        _core.train_epoch(np.asfortranarray(U), V, W, b, None, X, bu, bi, users, items, state)
    with pytest.raises(ValueError, match=r"state\[1\] \(U_v\)"):
        _core.train_epoch(U, V, W, b, None, X, bu, bi, users, items,
                          (state[0], None) + state[2:])
    with pytest.raises(ValueError, match="'users' and 'items' are empty"):
        _core.train_epoch(U, V, W, b, None, X, bu, bi, users[:0], items[:0], state)
    with pytest.raises(ValueError, match="'emb_opt' must be"):
        _core.train_epoch(U, V, W, b, None, X, bu, bi, users, items, state, emb_opt="sgd")
    with pytest.raises(TypeError, match="'X' must have dtype float32"):
        _core.train_epoch(U, V, W, b, None, X.astype(np.float64), bu, bi, users, items, state)


def test_divergence_is_reported_not_hidden(rng):
    users, items, params, X, bu, bi = setup(rng)
    params["U"][:] = np.float32(1e30)
    state = fresh_state(params)
    with pytest.raises(FloatingPointError, match="non-finite"):
        _core.train_epoch(params["U"], params["V"], params["W"], params["b"], None, X * 1e30, bu,
                          bi, users, items, state)
