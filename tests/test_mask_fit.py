"""A whole mask-learning run (method.md §3.2-3.3, §10.2): reproducibility for a seed at
1 and 2 threads, the objective decreases, the epoch rule, empty environments, the
initialisation and input validation."""
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from painvrl.invariance import learn_mask, ultragcn_betas


def make_data(seed=0, n_users=120, n_items=200, D=32, d_c=8, d_id=8, n_pairs=2400, n_env=4):
    rng = np.random.default_rng(seed)
    U = rng.normal(0, 0.3, (n_users, d_id + d_c)).astype(np.float32)
    V = rng.normal(0, 0.3, (n_items, d_id)).astype(np.float32)
    X = rng.normal(0, 0.3, (n_items, D)).astype(np.float32)
    # Planted preferences: each user picks, from 10 random candidates, the item its
    # content vector scores highest under a hidden projection, so W has signal to learn.
    W_true = rng.normal(0, 1.0, (d_c, D))
    users = rng.integers(0, n_users, n_pairs)
    cand = rng.integers(0, n_items, (n_pairs, 10))
    s = np.einsum("nk,kd,ncd->nc", U[users, d_id:], W_true, X[cand])
    items = cand[np.arange(n_pairs), np.argmax(s, axis=1)]
    env = rng.integers(0, n_env, n_pairs)
    # learn_mask takes distinct (user, item) pairs: keep each pair's first occurrence.
    _, first = np.unique(users * n_items + items, return_index=True)
    keep = np.sort(first)
    return dict(users=users[keep], items=items[keep], env=env[keep], U=U, V=V, X=X)


def fields(r):
    return (r.W, r.mu, r.mask, r.erm_loss, r.irm_loss, r.gamma, r.gamma_steps)


def test_reproducible_for_a_seed_at_one_and_two_threads():
    # Big enough that the step kernel and the negative draws (>= 65536) use 2 threads.
    d = make_data(1, n_users=300, n_items=600, D=160, d_c=16, n_pairs=6000, n_env=5)
    kw = dict(epochs=2, batch_size=260, n_neg=50, seed=42)
    with threadpool_limits(1):
        r1 = learn_mask(**d, **kw, n_threads=1)
        r2 = learn_mask(**d, **kw, n_threads=2)
        r3 = learn_mask(**d, **kw, n_threads=2)
        r4 = learn_mask(**d, **dict(kw, seed=43), n_threads=2)
    for x, y, z in zip(fields(r1), fields(r2), fields(r3)):
        assert np.array_equal(x, y) and np.array_equal(y, z)
    assert not np.array_equal(r1.W, r4.W)


def test_same_bits_at_one_and_two_threads_without_blas_limits():
    # learn_mask holds BLAS to one thread itself, so the caller need not.
    d = make_data(9, n_users=300, n_items=600, D=160, d_c=16, n_pairs=6000, n_env=5)
    kw = dict(epochs=1, batch_size=260, n_neg=50, seed=5)
    r1 = learn_mask(**d, **kw, n_threads=1)
    r2 = learn_mask(**d, **kw, n_threads=2)
    for x, y in zip(fields(r1), fields(r2)):
        assert np.array_equal(x, y)


@pytest.mark.parametrize("weighting", ["fixed", "mgda"])
def test_erm_plus_irm_decreases(weighting):
    d = make_data(2)
    r = learn_mask(**d, epochs=12, batch_size=64, n_neg=8, lr=1e-2, lr_mu=1e-2,
                   weighting=weighting, n_threads=1, seed=7)
    total = r.erm_loss + r.irm_loss
    assert np.all(np.isfinite(total))
    assert total[-1] < 0.95 * total[0]
    assert total[-3:].mean() < total[:3].mean()
    if weighting == "fixed":
        assert np.all(r.gamma == 0.5)                  # alpha = 1: ERM share 1 / (1 + 1)
    else:
        assert np.all((r.gamma_steps > 0) & (r.gamma_steps < 1))


def test_epoch_rule_empty_environments_and_mask():
    d = make_data(3, n_pairs=1000, n_env=3)
    env = d["env"].copy()
    env[env == 1] = 2                                  # environment 1 empty
    d["env"] = env
    counts = np.bincount(env, minlength=5)
    r = learn_mask(**d, n_envs=5, epochs=3, batch_size=100, n_neg=4, n_threads=1)
    assert r.n_envs_used == 2
    assert r.empty_envs.tolist() == [1, 3, 4]
    assert r.env_counts.tolist() == counts.tolist()
    assert r.steps_per_epoch == int(np.ceil(counts.max() / 100))
    assert r.gamma_steps.shape == (3 * r.steps_per_epoch,)
    assert r.erm_loss.shape == r.irm_loss.shape == r.gamma.shape == (3,)
    np.testing.assert_allclose(r.gamma, r.gamma_steps.reshape(3, -1).mean(axis=1), rtol=1e-12)
    np.testing.assert_array_equal(r.mask, np.clip(r.mu + np.float32(0.5), 0, 1))
    assert r.W.dtype == np.float32 and r.W.shape == (8, 32)


def test_single_environment_has_no_irm_signal():
    d = make_data(4, n_pairs=500)
    d["env"] = np.zeros(d["users"].size, np.int64)
    r = learn_mask(**d, epochs=2, batch_size=50, n_neg=3, n_threads=1)
    assert np.all(r.irm_loss == 0.0)                   # one environment: G_e == Gbar
    assert np.all(r.gamma_steps == 0.001)              # b = 0 is the min-norm end


def test_w_initialisation_and_mu_start():
    # A vanishing learning rate leaves the Philox N(0, 0.01^2) draw and mu = 0.
    d = make_data(5, D=200, d_c=40)
    r = learn_mask(**d, epochs=1, batch_size=600, n_neg=2, lr=1e-30, lr_mu=1e-30, n_threads=1)
    assert abs(r.W.std() - 0.01) < 0.0005 and abs(r.W.mean()) < 0.0005
    assert np.all(np.abs(r.mu) < 1e-20)


def test_pair_and_mu_scope_run():
    d = make_data(6)
    for kw in (dict(weighting="pair"), dict(weighting="pair", preference=(0.5, 0.5)),
               dict(grad_scope="mu"), dict(normalize="loss"), dict(normalize="l2"),
               dict(normalize="loss", mgda_apply="raw")):
        r = learn_mask(**d, epochs=2, batch_size=128, n_neg=4, n_threads=1, **kw)
        assert np.all(np.isfinite(r.erm_loss)) and np.all(np.isfinite(r.W))
        assert np.all((r.gamma_steps >= 0) & (r.gamma_steps <= 1))
    r = learn_mask(**d, epochs=1, batch_size=128, n_neg=4, normalize="l2", n_threads=1)
    assert np.allclose(r.gamma_steps, 0.5)
    # ...while the weight on the raw ERM gradient, 0.5/|a| : 0.5/|b|, moves step to step
    assert np.all((r.erm_share_steps > 0) & (r.erm_share_steps < 1))
    assert np.ptp(r.erm_share_steps) > 1e-3


def test_erm_share_is_the_raw_coefficients_share():
    d = make_data(8)
    kw = dict(epochs=2, batch_size=128, n_neg=4, n_threads=1)
    raw = learn_mask(**d, **kw)                        # raw MGDA: w = (gamma, 1 - gamma)
    np.testing.assert_allclose(raw.erm_share_steps, raw.gamma_steps, rtol=1e-12)
    fixed = learn_mask(**d, weighting="fixed", alpha=3.0, **kw)    # w = (1, alpha)
    np.testing.assert_allclose(fixed.erm_share_steps, 0.25, rtol=1e-12)
    assert raw.erm_share_steps.shape == raw.gamma_steps.shape


def test_betas_from_distinct_pairs():
    bu, bi = ultragcn_betas([0, 0, 0, 1], [1, 1, 2, 2], 3, 4)
    # user 0 has 2 distinct items, user 1 one, user 2 none (degree floored at 1e-10).
    np.testing.assert_allclose(bu[:2], [np.sqrt(3) / 2, np.sqrt(2)])
    assert bu[2] == pytest.approx(np.sqrt(1 + 1e-10) / 1e-10)
    np.testing.assert_allclose(bi, [1, 1 / np.sqrt(2), 1 / np.sqrt(3), 1])


def test_validation_names_the_parameter():
    d = make_data(8, n_pairs=300)
    with pytest.raises(ValueError, match="learn_mask: env"):
        learn_mask(**dict(d, env=d["env"] + 10), n_envs=4)
    with pytest.raises(ValueError, match="learn_mask: env"):
        learn_mask(**dict(d, env=d["env"] - 1))
    with pytest.raises(TypeError, match="learn_mask: env"):
        learn_mask(**dict(d, env=d["env"].astype(float)))
    with pytest.raises(ValueError, match="learn_mask: env"):
        learn_mask(**dict(d, env=d["env"][:-1]))
    with pytest.raises(ValueError, match="learn_mask: items"):
        learn_mask(**dict(d, items=d["items"] + 1000))
    with pytest.raises(ValueError, match="learn_mask: users and items must not be empty"):
        learn_mask(**dict(d, users=d["users"][:0], items=d["items"][:0], env=d["env"][:0]),
                   n_envs=4)
    X = d["X"].copy()
    X[0, 0] = np.inf
    with pytest.raises(ValueError, match="learn_mask: X"):
        learn_mask(**dict(d, X=X))
    with pytest.raises(ValueError, match="learn_mask: U"):
        learn_mask(**dict(d, U=d["U"][:, :8]))
    with pytest.raises(ValueError, match="learn_mask: X"):
        learn_mask(**dict(d, X=d["X"][:-1]))
    for kw, name in ((dict(epochs=0), "epochs"), (dict(batch_size=0), "batch_size"),
                     (dict(n_neg=-1), "n_neg"), (dict(lr=0.0), "lr"), (dict(sigma=-0.1), "sigma"),
                     (dict(lam=-1.0), "lam"), (dict(alpha=float("nan")), "alpha"),
                     (dict(wd2=-1.0), "wd2"), (dict(n_threads=0), "n_threads"),
                     (dict(seed=-1), "seed"), (dict(weighting="max"), "weighting"),
                     (dict(grad_scope="W"), "grad_scope"), (dict(preference=(1, 2, 3)),
                                                            "preference")):
        with pytest.raises(ValueError, match=f"learn_mask: {name}"):
            learn_mask(**d, **kw)
    with pytest.raises(TypeError, match="learn_mask: epochs"):
        learn_mask(**d, epochs=2.5)
    with pytest.raises(ValueError, match="learn_mask: beta_u"):
        learn_mask(**d, beta_u=np.ones(5), beta_i=np.ones(200))
    with pytest.raises(ValueError, match="learn_mask: beta_u and beta_i must be given both"):
        learn_mask(**d, beta_u=np.ones(120))
