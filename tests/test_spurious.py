"""painvrl.datasets.make_spurious: planted invariant / spurious / noise columns and environments."""
import numpy as np
import pytest

from painvrl import UserItemCSR
from painvrl.data.datasets import SpuriousTruth, make_spurious


@pytest.fixture(scope="module")
def planted():
    return make_spurious(seed=0)


def clicked_shift(ds, truth, env):
    """Mean of z = sqrt(D) * features over env's training items, minus the mean over all items."""
    z = ds.features.astype(np.float64) * np.sqrt(ds.n_features)
    items = ds.train[truth.train_env == env, 1]
    return z[items].mean(axis=0) - z.mean(axis=0)


def test_shapes_and_masks(planted):
    ds, truth = planted
    assert isinstance(truth, SpuriousTruth)
    assert (ds.n_users, ds.n_items, ds.n_features) == (600, 400, 32)
    assert ds.n_train + ds.val.nnz + ds.test.nnz == 24_000
    assert list(ds.modalities) == ["features"]
    np.testing.assert_allclose(np.linalg.norm(ds.features, axis=1), 1.0, rtol=1e-5)
    for m in (truth.invariant, truth.spurious, truth.noise):
        assert m.shape == (32,) and m.dtype == bool and not m.flags.writeable
    np.testing.assert_array_equal(truth.invariant.astype(int) + truth.spurious + truth.noise, 1)
    assert truth.invariant[:8].all() and truth.spurious[8:16].all() and truth.noise[16:].all()
    assert truth.n_envs == 2
    np.testing.assert_array_equal(truth.spurious_effect, [1.0, -1.0])
    np.testing.assert_allclose(truth.env_weights, [0.5, 0.5])
    assert truth.train_env.shape == (ds.n_train,) and truth.train_env.dtype == np.int64
    assert truth.val_env.shape == (ds.val.nnz,) and truth.test_env.shape == (ds.test.nnz,)
    for labels in (truth.train_env, truth.val_env, truth.test_env):
        assert set(np.unique(labels)) == {0, 1}
    assert abs(truth.train_env.mean() - 0.5) < 0.03  # uniform environment weights
    np.testing.assert_allclose(np.linalg.norm(truth.spurious_direction), 1.0)
    np.testing.assert_allclose(np.linalg.norm(truth.invariant_direction), 1.0)
    assert truth.user_invariant.shape == (600, 8)


def test_env_pairs_and_csr(planted):
    ds, truth = planted
    parts = [truth.env_pairs(ds, "test", e) for e in range(2)]
    assert sum(p.shape[0] for p in parts) == ds.test.nnz
    both = np.concatenate(parts)
    assert sorted(map(tuple, both)) == sorted(map(tuple, ds.test.to_pairs()))
    csr = truth.env_csr(ds, "test", 1)
    assert isinstance(csr, UserItemCSR) and csr.nnz == parts[1].shape[0]
    train0 = truth.env_pairs(ds, "train", 0)
    np.testing.assert_array_equal(train0, ds.train[truth.train_env == 0])
    with pytest.raises(ValueError, match="split must be"):
        truth.env_pairs(ds, "valid", 0)
    with pytest.raises(ValueError, match=r"env must be an integer in \[0, 2\)"):
        truth.env_pairs(ds, "train", 2)
    other, _ = make_spurious(n_users=50, n_items=40, n_interactions=800, seed=1)
    with pytest.raises(ValueError, match="not the one generated"):
        truth.env_pairs(other, "train", 0)


def test_deterministic():
    a, ta = make_spurious(n_users=80, n_items=60, n_interactions=1500, seed=4)
    b, tb = make_spurious(n_users=80, n_items=60, n_interactions=1500, seed=4)
    c, _ = make_spurious(n_users=80, n_items=60, n_interactions=1500, seed=5)
    np.testing.assert_array_equal(a.train, b.train)
    np.testing.assert_array_equal(a.features, b.features)
    np.testing.assert_array_equal(ta.train_env, tb.train_env)
    np.testing.assert_array_equal(ta.test_env, tb.test_env)
    assert not np.array_equal(a.train, c.train)


def test_planted_correlations_have_the_advertised_signs(planted):
    ds, truth = planted
    for e in range(2):
        shift = clicked_shift(ds, truth, e)
        # spurious columns lean towards sign(c_e) * phi, in every column
        want = np.sign(truth.spurious_effect[e] * truth.spurious_direction)
        np.testing.assert_array_equal(np.sign(shift[truth.spurious]), want)
        # invariant columns lean towards a, in every environment
        np.testing.assert_array_equal(np.sign(shift[truth.invariant]),
                                      np.sign(truth.invariant_direction))
    # and the spurious lean is strong: the clicked items of each environment are mostly of
    # its style, i.e. on its side of the spurious direction
    z = ds.features.astype(np.float64) * np.sqrt(ds.n_features)
    side = z[:, truth.spurious] @ truth.spurious_direction > 0
    for e, sign in ((0, True), (1, False)):
        items = ds.train[truth.train_env == e, 1]
        assert (side[items] == sign).mean() > 0.9


def test_environments_disagree_only_on_spurious_columns(planted):
    """What an IRM penalty sees: between-environment spread of the clicked-item means is large
    on spurious columns and small on invariant and noise columns (same user population)."""
    ds, truth = planted
    shifts = np.stack([clicked_shift(ds, truth, e) for e in range(2)])
    spread = np.abs(shifts[0] - shifts[1])
    # column by column (finite item samples give every column some chance lean) ...
    assert spread[truth.spurious].min() > 2 * spread[truth.invariant].max()
    assert spread[truth.spurious].min() > 2 * spread[truth.noise].max()
    # ... and on average
    assert spread[truth.spurious].mean() > 5 * spread[truth.invariant].mean()
    assert spread[truth.spurious].mean() > 5 * spread[truth.noise].mean()
    # the invariant lean is there, and about the same, in both environments
    lean = shifts[:, truth.invariant] @ truth.invariant_direction
    assert lean.min() > 0.5 and lean.max() < 2 * lean.min()


def test_options():
    ds, truth = make_spurious(n_users=150, n_items=120, n_interactions=4000, n_envs=3,
                              n_invariant=4, n_spurious=6, n_noise=0, seed=2,
                              spurious_effect=(1.0, 0.5, -1.0), env_weights=(2, 1, 1))
    assert ds.n_features == 10 and not truth.noise.any()
    np.testing.assert_allclose(truth.env_weights, [0.5, 0.25, 0.25])
    counts = np.bincount(truth.train_env, minlength=3) / ds.n_train
    np.testing.assert_allclose(counts, [0.5, 0.25, 0.25], atol=0.04)
    phi = truth.spurious_direction
    for e, c in enumerate((1.0, 0.5, -1.0)):
        np.testing.assert_array_equal(np.sign(clicked_shift(ds, truth, e)[truth.spurious]),
                                      np.sign(c * phi))
    # the weaker positive effect leans less than the full one
    lean = [clicked_shift(ds, truth, e)[truth.spurious] @ phi for e in range(3)]
    assert lean[0] > lean[1] > 0 > lean[2]
    # default effects for three environments: evenly spaced from +1 to -1
    _, t3 = make_spurious(n_users=60, n_items=50, n_interactions=900, n_envs=3, seed=0)
    np.testing.assert_allclose(t3.spurious_effect, [1.0, 0.0, -1.0])
    _, t1 = make_spurious(n_users=60, n_items=50, n_interactions=900, n_envs=1, seed=0)
    np.testing.assert_array_equal(t1.spurious_effect, [1.0])
    assert (t1.train_env == 0).all()


def test_no_spurious_effect_means_no_environment_difference():
    ds, truth = make_spurious(n_users=300, n_items=200, n_interactions=9000, seed=3,
                              spurious_strength=0.0)
    shifts = np.stack([clicked_shift(ds, truth, e) for e in range(2)])
    planted_ds, planted_truth = make_spurious(n_users=300, n_items=200, n_interactions=9000,
                                              seed=3)
    planted_shifts = np.stack([clicked_shift(planted_ds, planted_truth, e) for e in range(2)])
    sp = truth.spurious
    null = np.abs(shifts[0, sp] - shifts[1, sp])
    effect = np.abs(planted_shifts[0, sp] - planted_shifts[1, sp])
    assert null.mean() < 0.2 * effect.mean() and null.max() < 0.5 * effect.min()


@pytest.mark.parametrize("kwargs, exc, msg", [
    (dict(n_users=0), ValueError, "n_users"),
    (dict(n_envs=0), ValueError, "n_envs"),
    (dict(n_invariant=0), ValueError, "n_invariant"),
    (dict(n_spurious=0), ValueError, "n_spurious"),
    (dict(n_noise=-1), ValueError, "n_noise"),
    (dict(n_noise=1.5), TypeError, "n_noise"),
    (dict(spurious_effect=(1.0,)), ValueError, "spurious_effect must hold 2"),
    (dict(spurious_effect=(1.0, np.nan)), ValueError, "spurious_effect"),
    (dict(env_weights=(1.0, -1.0)), ValueError, "env_weights"),
    (dict(env_weights=(0.0, 0.0)), ValueError, "env_weights"),
    (dict(invariant_strength=-1.0), ValueError, "invariant_strength"),
    (dict(spurious_separation=np.inf), ValueError, "spurious_separation"),
    (dict(split=(0.5, 0.5)), ValueError, "split"),
    (dict(min_user_interactions=500), ValueError, "min_user_interactions"),
    (dict(n_interactions=100), ValueError, "n_interactions"),
])
def test_errors(kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        make_spurious(**{**dict(n_users=100, n_items=80, n_interactions=2000), **kwargs})
