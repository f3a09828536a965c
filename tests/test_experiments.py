"""pareto_front and ablations (painvrl.experiments): the two-objective tools against
hand-computed cases, the sweep's structure and its validation-only flag on small
planted data, shared stages that change nothing, and bad input."""
import numpy as np
import pytest

from painvrl import (InvRL, PaInvRL, UserItemCSR, ablations, datasets, pareto_front, splits)
from painvrl.experiments import ABLATIONS, hypervolume_2d, non_dominated

SMALL = dict(n_envs=2, n_outer=1, env_epochs=2, env_rounds=1, mask_epochs=3, max_epochs=5,
             patience=1, final_patience=1, eval_every=5, d_id=8, d_content=8, n_neg=5,
             batch_size=256, n_threads=1, backbone_params=dict(emb_lr=1e-2, proj_lr=1e-2))


@pytest.fixture(scope="module")
def planted():
    """Small planted data, the last planted environment held out; its pairs split at
    random into an OOD validation and an OOD test set (enough for these tests)."""
    ds, truth = datasets.make_spurious(n_users=120, n_items=90, n_interactions=3000, n_envs=3,
                                       spurious_effect=(1.0, -1.0, -1.0),
                                       env_weights=(3, 1, 1), seed=0)
    env = np.concatenate([truth.train_env, truth.val_env, truth.test_env])
    h = splits.hold_out_environments(ds, env, holdout=[2], seed=0)
    pairs = h.ood_test.to_pairs()
    val = np.random.default_rng(0).random(len(pairs)) < 0.3
    csr = lambda p: UserItemCSR.from_pairs(p[:, 0], p[:, 1], ds.n_users, ds.n_items)
    return h.dataset, {"ood_val": csr(pairs[val]), "ood_test": csr(pairs[~val])}


# --------------------------------------------------------------------------- front tools
def test_non_dominated_hand_cases():
    pts = np.array([[1, 5], [2, 4], [2, 3], [0, 0], [3, 1], [2, 4]], float)
    # (2,3) is dominated by (2,4); (0,0) by everything; duplicates of (2,4) both kept
    np.testing.assert_array_equal(non_dominated(pts), [1, 1, 0, 0, 1, 1])
    with pytest.raises(ValueError, match="shape"):
        non_dominated(np.zeros((3, 3)))


def test_hypervolume_hand_computed():
    # rectangles [0,2]x[0,1] and [0,1]x[0,2]: union area 2 + 1 = 3
    assert hypervolume_2d([[2, 1], [1, 2]], (0, 0)) == pytest.approx(3.0)
    # a dominated point and one below the reference add nothing
    assert hypervolume_2d([[2, 1], [1, 2], [1, 1], [5, -1]], (0, 0)) == pytest.approx(3.0)
    # shifted reference: [0.5,2]x[0.5,1] + [0.5,1]x[1,2] = 0.75 + 0.5
    assert hypervolume_2d([[2, 1], [1, 2]], (0.5, 0.5)) == pytest.approx(1.25)
    assert hypervolume_2d([[0.1, 0.1]], (1, 1)) == 0.0


# --------------------------------------------------------------------------- pareto_front
@pytest.fixture(scope="module")
def front(planted):
    ds, split = planted
    return pareto_front(ds, split, preferences=(0.25, 0.5), alphas=(1.0,), seeds=(0, 1, 2),
                        per_user=True, progress=False, **SMALL)


def test_front_frame_has_every_point_and_seed(front):
    f = front.frame
    # backbone + 2 PaInvRL preferences (0.5 is the default point) + 1 InvRL alpha, x 2 seeds
    assert len(f) == 4 * 3 and f.point.nunique() == 4
    assert sorted(f.seed.unique()) == [0, 1, 2]
    assert f[f.adaptive].preference.unique().tolist() == [0.5]
    for col in ("iid_val_recall@20", "ood_val_recall@20", "iid_test_ndcg@10",
                "ood_test_recall@10", "gamma_mean", "pareto", "fit_seconds"):
        assert col in f.columns
    assert f[f.model == "InvRL"].gamma_mean.unique().tolist() == [0.5]   # alpha 1: 1/(1+1)
    assert f[f.model == "backbone"].gamma_mean.isna().all()
    # a mask per pipeline fit, none for the backbone
    assert len(front.masks) == 3 * 3 and all(k[0] != 0 for k in front.masks)


def test_front_flag_is_non_domination_on_validation_means(front):
    means = front.frame.groupby("point")[["iid_val_recall@20", "ood_val_recall@20"]].mean()
    want = non_dominated(means.to_numpy())
    got = front.frame.groupby("point").pareto.first().to_numpy()
    np.testing.assert_array_equal(got, want)
    assert got.any()


def test_front_hypervolume_defaults_to_the_backbone_reference(front):
    pts = front.points()
    base = pts[pts.model == "backbone"].iloc[0]
    hv = front.hypervolume()
    assert set(hv.index) == {"PaInvRL", "InvRL", "all"}
    want = hypervolume_2d(pts[pts.model == "PaInvRL"][["iid", "ood"]].to_numpy(),
                          (base.iid, base.ood))
    assert hv["PaInvRL"] == pytest.approx(want)
    assert hv["all"] >= max(hv["PaInvRL"], hv["InvRL"]) - 1e-15


def test_front_paired_tests_over_seeds_and_users(front):
    stats = pytest.importorskip("scipy.stats")
    res = front.paired_test("adaptive", "backbone", split="ood_test")
    f = front.frame
    a = f[f.point == front.point_id("adaptive")].sort_values("seed")["ood_test_recall@20"]
    b = f[f.model == "backbone"].sort_values("seed")["ood_test_recall@20"]
    assert res.p_seeds == pytest.approx(stats.ttest_rel(a.to_numpy(), b.to_numpy()).pvalue,
                                        rel=1e-6)
    pu = front.per_user[front.per_user.split == "ood_test"]
    ua = pu[pu.point == front.point_id("adaptive")].sort_values(["seed", "user"])
    ub = pu[pu.point == 0].sort_values(["seed", "user"])
    want = stats.wilcoxon(ua["recall@20"].to_numpy(), ub["recall@20"].to_numpy(),
                          zero_method="wilcox", correction=False, method="approx").pvalue
    assert res.p_users == pytest.approx(want, rel=1e-6)
    assert res.n_user_seeds == len(ua)
    with pytest.raises(ValueError, match="no point"):
        front.paired_test("nonsense", "backbone")
    one = type(front)(frame=front.frame[front.frame.seed == 0],
                      per_user=front.per_user[front.per_user.seed == 0])
    single = one.paired_test("adaptive", "backbone")
    assert np.isnan(single.p_seeds) and single.n_seeds == 1 and 0 <= single.p_users <= 1


def test_fronts_of_other_seeds_combine(planted, front):
    ds, split = planted
    more = pareto_front(ds, split, preferences=(0.25, 0.5), alphas=(1.0,), seeds=(5,),
                        per_user=True, progress=False, **SMALL)
    both = type(front).combine([front, more])
    assert sorted(both.frame.seed.unique()) == [0, 1, 2, 5]
    assert len(both.per_user) == len(front.per_user) + len(more.per_user)
    assert len(both.masks) == len(front.masks) + len(more.masks)
    means = both.frame.groupby("point")[list(both.objectives)].mean()
    np.testing.assert_array_equal(both.frame.groupby("point").pareto.first().to_numpy(),
                                  non_dominated(means.to_numpy()))
    with pytest.raises(ValueError, match="more than one front"):
        type(front).combine([front, front])


def test_front_plot_draws(front):
    mpl = pytest.importorskip("matplotlib")
    mpl.use("Agg")
    ax = front.plot()
    assert ax.get_xlabel().startswith("IID") and ax.get_ylabel().startswith("OOD")
    import matplotlib.pyplot as plt
    plt.close(ax.figure)


def test_shared_environments_change_nothing(planted):
    """The sweep reuses the first identification across points: a fit handed those
    environments equals a fit that identifies them itself, bit for bit."""
    ds, _ = planted
    params = dict(SMALL, seed=3, progress=False)
    own = PaInvRL(**params).fit(ds)
    other = InvRL(**params).fit(ds, pretrained=own.pretrained_)
    np.testing.assert_array_equal(other.environments_[0].labels, own.environments_[0].labels)
    shared = PaInvRL(**params).fit(ds, pretrained=own.pretrained_,
                                   environments=other.environments_[:1])
    np.testing.assert_array_equal(shared.mask_, own.mask_)
    np.testing.assert_array_equal(shared.item_vectors(), own.item_vectors())


def test_pareto_front_bad_input(planted):
    ds, split = planted
    with pytest.raises(ValueError, match="ood_val"):
        pareto_front(ds, {"ood_test": split["ood_test"]}, seeds=(0,), **SMALL)
    with pytest.raises(ValueError, match="preferences"):
        pareto_front(ds, split, preferences=(0.0, 0.5), seeds=(0,), **SMALL)
    with pytest.raises(ValueError, match="alphas"):
        pareto_front(ds, split, alphas=(-1.0,), seeds=(0,), **SMALL)
    with pytest.raises(ValueError, match="set by the sweep"):
        pareto_front(ds, split, seeds=(0,), seed=1, **SMALL)
    with pytest.raises(TypeError, match="unknown pipeline parameters"):
        pareto_front(ds, split, seeds=(0,), n_epochs=3, **SMALL)
    with pytest.raises(ValueError, match="seeds"):
        pareto_front(ds, split, seeds=(), **SMALL)
    with pytest.raises(TypeError, match="Dataset"):
        pareto_front(ds.train, split, seeds=(0,), **SMALL)


# --------------------------------------------------------------------------- ablations
def test_ablations_one_row_per_variant_and_seed(planted):
    ds, split = planted
    variants = ("PaInvRL", "w/o identification", "w/o Pareto weighting")
    df = ablations(ds, split, seeds=(0,), variants=variants, progress=False, **SMALL)
    assert df.variant.tolist() == ["backbone", *variants]
    assert df.loc[df.variant == "w/o Pareto weighting", "gamma_mean"].item() == 0.5
    assert np.isfinite(df["ood_test_recall@20"]).all()
    with pytest.raises(ValueError, match="subset of"):
        ablations(ds, split, seeds=(0,), variants=("w/o everything",), **SMALL)
    with pytest.raises(ValueError, match="set per variant"):
        ablations(ds, split, seeds=(0,), fusion="global", **SMALL)
    assert set(ABLATIONS) >= {"w/o variant part", "w/o attention", "InvRL"}


def test_random_identification_is_the_unidentified_ablation(planted):
    ds, _ = planted
    model = PaInvRL(identification="random", **dict(SMALL, progress=False)).fit(ds)
    env = model.environments_[0]
    assert env.n_rounds == 0 and env.labels.shape == (ds.n_train,)
    # uniform labels: both environments get about half the pairs
    share = np.bincount(env.labels, minlength=2) / ds.n_train
    assert np.all(np.abs(share - 0.5) < 0.05)


def test_mask_history_per_step(planted):
    ds, _ = planted
    model = PaInvRL(**dict(SMALL, progress=False)).fit(ds)
    steps = model.mask_history(per_step=True)
    res = model.mask_results_[0]
    assert len(steps) == res.gamma_steps.shape[0] == SMALL["mask_epochs"] * res.steps_per_epoch
    np.testing.assert_array_equal(steps.gamma.to_numpy(), res.gamma_steps)
    # the per-epoch gamma is the mean of that epoch's steps
    per_epoch = steps.groupby("epoch").gamma.mean().to_numpy()
    np.testing.assert_allclose(per_epoch, res.gamma, rtol=1e-12)
