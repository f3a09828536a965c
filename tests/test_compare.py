"""compare(), paired_test(), summarize() and the special functions behind the t-test."""
import math

import numpy as np
import pandas as pd
import pytest

from painvrl import datasets, splits
from painvrl.evaluation import evaluate, paired_test, summarize
from painvrl.evaluation.compare import compare
from painvrl.evaluation.stats import betainc, student_t_cdf
from painvrl.models import Backbone, Popularity


@pytest.fixture(scope="module")
def setup():
    ds, truth = datasets.make_spurious(n_users=150, n_items=120, n_interactions=4000, n_envs=3,
                                       seed=2)
    env = np.concatenate([truth.train_env, truth.val_env, truth.test_env])
    h = splits.hold_out_environments(ds, env, holdout=1)
    pop = Popularity().fit(h.dataset)
    bb = Backbone(max_epochs=2, eval_every=1, progress=False, d_id=8, d_content=8, reg="batch",
                  seed=1).fit(h.dataset)
    return ds, h, pop, bb


# --------------------------------------------------------------------------- compare

@pytest.mark.parametrize("exclude", ["train", "train+val", "none"])
def test_compare_equals_model_evaluate(setup, exclude):
    ds, h, pop, bb = setup
    sp = {**h.splits(), "val": (h.dataset, "val")}
    df = compare({"pop": pop, "bb": bb}, sp, ks=(5, 10), metrics=("recall", "ndcg", "precision"),
                 exclude=exclude)
    assert list(df.columns) == ["model", "split", "metric", "k", "value", "n_users"]
    assert df.model.tolist()[:1] == ["pop"] and len(df) == 2 * 3 * 3 * 2
    for mname, model in (("pop", pop), ("bb", bb)):
        for sname, (d, truth) in sp.items():
            ref = model.evaluate(d, truth, ks=(5, 10), exclude=exclude,
                                 metrics=("recall", "ndcg", "precision"))
            got = df[(df.model == mname) & (df.split == sname)].reset_index(drop=True)
            pd.testing.assert_frame_equal(got.drop(columns=["model", "split"]), ref)


def test_compare_per_user_and_tuple_and_per_split_models(setup):
    ds, h, pop, bb = setup
    U, V = bb.user_vectors(), bb.item_vectors()
    df = compare({"vecs": (U, V), "split_models": {"iid": bb, "ood": pop}}, h.splits(),
                 ks=10, metrics="recall", per_user=True)
    assert list(df.columns) == ["model", "split", "user", "recall@10"]
    ref_iid = evaluate(U, V, h.dataset.test, exclude=h.dataset.train_csr, ks=10, metrics="recall",
                       per_user=True)
    got = df[(df.model == "vecs") & (df.split == "iid")].reset_index(drop=True)
    pd.testing.assert_frame_equal(got.drop(columns=["model", "split"]), ref_iid)
    ref_ood = pop.evaluate(h.dataset, h.ood_test, ks=10, metrics="recall", per_user=True)
    got = df[(df.model == "split_models") & (df.split == "ood")].reset_index(drop=True)
    pd.testing.assert_frame_equal(got.drop(columns=["model", "split"]), ref_ood)
    # a bare Dataset means its test split
    a = compare({"bb": bb}, {"d": h.dataset}, ks=10)
    b = compare({"bb": bb}, {"d": (h.dataset, "test")}, ks=10)
    pd.testing.assert_frame_equal(a, b)


def test_compare_errors(setup):
    ds, h, pop, bb = setup
    sp = {"iid": (h.dataset, "test")}
    with pytest.raises(ValueError, match="exclude"):
        compare({"pop": pop}, sp, exclude="val")
    with pytest.raises(TypeError, match="models"):
        compare([pop], sp)
    with pytest.raises(TypeError, match="splits"):
        compare({"pop": pop}, {})
    with pytest.raises(TypeError, match=r"models\['x'\]"):
        compare({"x": object()}, sp)
    with pytest.raises(ValueError, match=r"splits\['iid'\]\[1\]"):
        compare({"pop": pop}, {"iid": (h.dataset, "train")})
    with pytest.raises(TypeError, match=r"splits\['iid'\]\[0\]"):
        compare({"pop": pop}, {"iid": (None, "test")})
    with pytest.raises(ValueError, match=r"models\['pop'\] is a dict per split.*'iid'"):
        compare({"pop": {"ood": pop}}, sp)
    with pytest.raises(ValueError, match=r"models\['small'\] has 3 users"):
        compare({"small": (np.ones((3, 2)), np.ones((h.dataset.n_items, 2)))}, sp)
    with pytest.raises(TypeError, match="per_user"):
        compare({"pop": pop}, sp, per_user="yes")
    with pytest.raises(ValueError, match="metric"):
        compare({"pop": pop}, sp, metrics="auc")


# --------------------------------------------------------------------------- special functions

def test_betainc_closed_forms():
    for x in (0.0, 1e-8, 0.1, 0.37, 0.5, 0.9, 0.999999, 1.0):
        for a in (0.5, 1.0, 2.5, 40.0):
            assert betainc(a, 1.0, x) == pytest.approx(x ** a, rel=1e-13, abs=1e-300)
            assert betainc(1.0, a, x) == pytest.approx(-math.expm1(a * math.log1p(-x)) if x < 1 else 1.0,
                                                      rel=1e-12, abs=1e-15)
        # I_x(2, 3) = 6x^2 - 8x^3 + 3x^4 (hand-integrated polynomial)
        assert betainc(2.0, 3.0, x) == pytest.approx(6 * x**2 - 8 * x**3 + 3 * x**4, abs=1e-14)
        # I_x(1/2, 1/2) = (2/pi) asin(sqrt(x))
        assert betainc(0.5, 0.5, x) == pytest.approx(2 / math.pi * math.asin(math.sqrt(x)), abs=1e-13)
    assert betainc(3.0, 7.0, 0.3) == pytest.approx(1.0 - betainc(7.0, 3.0, 0.7), abs=1e-14)


def test_student_t_cdf_known_values():
    for t in (-30.0, -2.5, -1.0, -0.1, 0.0, 0.3, 1.0, 4.0, 100.0):
        assert student_t_cdf(t, 1) == pytest.approx(0.5 + math.atan(t) / math.pi, abs=1e-14)
        assert student_t_cdf(t, 2) == pytest.approx(0.5 + t / (2 * math.sqrt(2 + t * t)), abs=1e-14)
        s3 = math.sqrt(3.0)
        ref3 = 0.5 + (t / (s3 * (1 + t * t / 3)) + math.atan(t / s3)) / math.pi
        assert student_t_cdf(t, 3) == pytest.approx(ref3, abs=1e-14)
    # textbook table quantiles: t_{0.975, 10} = 2.228138852, t_{0.995, 30} = 2.749995654
    assert student_t_cdf(2.228138852, 10) == pytest.approx(0.975, abs=1e-9)
    assert student_t_cdf(2.749995654, 30) == pytest.approx(0.995, abs=1e-9)
    # large df: the normal distribution
    for t in (-3.0, 0.5, 2.0):
        assert student_t_cdf(t, 1e7) == pytest.approx(0.5 * math.erfc(-t / math.sqrt(2)), abs=1e-7)
    # far tails keep their relative accuracy (forms without cancellation)
    for t in (-1e3, -1e6, -1e9):
        assert student_t_cdf(t, 1) == pytest.approx(math.atan(-1.0 / t) / math.pi, rel=1e-12)
        r = math.sqrt(2 + t * t)
        assert student_t_cdf(t, 2) == pytest.approx(1.0 / (r * (r - t)), rel=1e-12)
    assert student_t_cdf(math.inf, 5) == 1.0 and student_t_cdf(-math.inf, 5) == 0.0


def test_special_functions_against_scipy():
    special = pytest.importorskip("scipy.special")
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for _ in range(200):
        a, b = np.exp(rng.uniform(-2, 9, 2))
        x = rng.uniform()
        assert betainc(a, b, x) == pytest.approx(special.betainc(a, b, x), rel=1e-9, abs=1e-14)
    for df in (1, 2, 5, 29, 149, 4999, 36655):
        for t in (-8.0, -2.0, -0.4, 0.0, 1.3, 3.1, 6.0):
            ref = stats.t.cdf(t, df)
            assert student_t_cdf(t, df) == pytest.approx(ref, rel=1e-9, abs=1e-15)


def test_special_function_errors():
    with pytest.raises(ValueError, match="x must lie"):
        betainc(1.0, 1.0, 1.5)
    with pytest.raises(ValueError, match="a and b"):
        betainc(0.0, 1.0, 0.5)
    with pytest.raises(ValueError, match="df"):
        student_t_cdf(1.0, 0)


# --------------------------------------------------------------------------- paired tests

def test_paired_t_hand_computed():
    # d = [0.4, 0, 0.3, -0.1]: mean 0.15, sd = sqrt(0.17 / 3), t = 0.15 / (sd / 2), df = 3
    r = paired_test([0.5, 0.2, 0.9, 0.4], [0.1, 0.2, 0.6, 0.5], test="t")
    t = 0.15 / (math.sqrt(0.17 / 3) / 2)
    s3 = math.sqrt(3.0)
    cdf = 0.5 + (t / (s3 * (1 + t * t / 3)) + math.atan(t / s3)) / math.pi
    assert (r.n, r.df, r.n_dropped, r.note) == (4, 3.0, 0, "")
    assert r.mean_diff == pytest.approx(0.15) and r.statistic == pytest.approx(t, rel=1e-12)
    assert r.pvalue == pytest.approx(2 * (1 - cdf), rel=1e-10)
    g = paired_test([0.5, 0.2, 0.9, 0.4], [0.1, 0.2, 0.6, 0.5], test="t", alternative="greater")
    le = paired_test([0.5, 0.2, 0.9, 0.4], [0.1, 0.2, 0.6, 0.5], test="t", alternative="less")
    assert g.pvalue == pytest.approx(1 - cdf, rel=1e-10) and le.pvalue == pytest.approx(cdf)
    # constant differences: t = inf, p = 0; all zero: NaN
    c = paired_test([1.0, 2.0, 3.0], [0.5, 1.5, 2.5], test="t")
    assert c.statistic == math.inf and c.pvalue == 0.0
    z = paired_test([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], test="t")
    assert math.isnan(z.statistic) and math.isnan(z.pvalue)


def test_wilcoxon_hand_computed():
    # d = [1, 0, 2, -1, 4, 5, 6.5]; the zero is dropped, n = 6; |d| ranks 1.5, 3, 1.5, 4, 5, 6
    a = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.5])
    b = a - np.array([1.0, 0.0, 2.0, -1.0, 4.0, 5.0, 6.5])
    r = paired_test(a, b, test="wilcoxon")
    var = 6 * 7 * 13 / 24 - (2 ** 3 - 2) / 48  # one tie group of size 2
    z = (1.5 - 6 * 7 / 4) / math.sqrt(var)
    assert (r.n, r.n_zero) == (7, 1) and "zero difference" in r.note
    assert r.statistic == 1.5 and r.z == pytest.approx(z, rel=1e-12)
    assert r.pvalue == pytest.approx(math.erfc(abs(z) / math.sqrt(2)), rel=1e-12)
    g = paired_test(a, b, test="wilcoxon", alternative="greater")
    zg = (19.5 - 10.5) / math.sqrt(var)
    assert g.statistic == 19.5 and g.pvalue == pytest.approx(0.5 * math.erfc(zg / math.sqrt(2)))
    same = paired_test(a, a)
    assert math.isnan(same.pvalue) and "all differences are zero" in same.note


def test_paired_tests_against_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(4)
    for n in (8, 30, 200):
        a = np.round(rng.uniform(size=n), 1)  # rounding: ties and zero differences
        b = np.round(np.clip(a + rng.normal(0.05, 0.2, n), 0, 1), 1)
        for alt in ("two-sided", "greater", "less"):
            w = paired_test(a, b, test="wilcoxon", alternative=alt)
            ref = stats.wilcoxon(a, b, zero_method="wilcox", correction=False, alternative=alt,
                                 method="approx")
            assert w.statistic == pytest.approx(ref.statistic, rel=1e-12)
            assert w.pvalue == pytest.approx(ref.pvalue, rel=1e-9)
            t = paired_test(a, b, test="t", alternative=alt)
            ref = stats.ttest_rel(a, b, alternative=alt)
            assert t.statistic == pytest.approx(ref.statistic, rel=1e-10)
            assert t.pvalue == pytest.approx(ref.pvalue, rel=1e-8)


def test_paired_test_aligns_users(setup):
    ds, h, pop, bb = setup
    pu = compare({"pop": pop, "bb": bb}, {"iid": (h.dataset, "test")}, ks=10, per_user=True)
    a, b = pu[pu.model == "pop"], pu[pu.model == "bb"]
    full = paired_test(a, b, metric="recall@10", test="t")
    assert full.n == len(a) and full.n_dropped == 0
    # shuffle one side, remove users from each side: alignment is by user id
    a2 = a.sample(frac=1.0, random_state=0).iloc[3:]
    b2 = b.iloc[:-2]
    r = paired_test(a2, b2, metric="recall@10", test="t")
    common = np.intersect1d(a2.user, b2.user)
    assert r.n == common.size and r.n_dropped == len(a2) + len(b2) - 2 * common.size
    assert "only in per_user_a" in r.note
    va = a.set_index("user").loc[common, "recall@10"].to_numpy()
    vb = b.set_index("user").loc[common, "recall@10"].to_numpy()
    assert r.mean_diff == pytest.approx(float((va - vb).mean()))
    ref = paired_test(va, vb, test="t")
    assert r.statistic == ref.statistic and r.pvalue == ref.pvalue
    # Series with a NaN
    sa = pd.Series([0.1, np.nan, 0.3, 0.5], index=[7, 8, 9, 10])
    sb = pd.Series([0.2, 0.1, 0.1, 0.2], index=[10, 9, 8, 7])
    s = paired_test(sa, sb, test="t")
    assert s.n == 3 and s.n_dropped == 1 and "NaN" in s.note
    assert s.mean_diff == pytest.approx(((0.1 - 0.2) + (0.3 - 0.1) + (0.5 - 0.2)) / 3)


def test_paired_test_errors(setup):
    ds, h, pop, bb = setup
    pu = compare({"pop": pop, "bb": bb}, {"iid": (h.dataset, "test")}, ks=10, per_user=True)
    with pytest.raises(ValueError, match="test must be"):
        paired_test([1, 2], [2, 3], test="mannwhitney")
    with pytest.raises(ValueError, match="alternative"):
        paired_test([1, 2], [2, 3], alternative="bigger")
    with pytest.raises(ValueError, match="different lengths"):
        paired_test([1, 2, 3], [2, 3])
    with pytest.raises(ValueError, match="per_user_a holds several models"):
        paired_test(pu, pu[pu.model == "bb"], metric="recall@10")
    with pytest.raises(ValueError, match="metric='recall@20' is not a column"):
        paired_test(pu[pu.model == "pop"], pu[pu.model == "bb"])
    with pytest.raises(ValueError, match="at least 2 users"):
        paired_test(pd.Series([1.0], index=[0]), pd.Series([1.0], index=[1]))
    with pytest.raises(TypeError, match="per_user_b"):
        paired_test([1.0, 2.0], "ab")
    with pytest.raises(ValueError, match="per_user_a lists a user"):
        paired_test(pd.Series([1.0, 2.0], index=[0, 0]), pd.Series([1.0, 2.0], index=[0, 1]))


# --------------------------------------------------------------------------- summarize

def test_summarize_over_seeds(setup):
    ds, h, pop, bb = setup
    rng = np.random.default_rng(0)
    runs = {}
    for seed in range(3):
        U = rng.normal(size=(ds.n_users, 4))
        V = rng.normal(size=(ds.n_items, 4))
        runs[seed] = compare({"rand": (U, V), "pop": pop}, h.splits(), ks=(10, 20))
    s = summarize(runs)
    assert list(s.columns) == ["model", "split", "metric", "k", "mean", "std", "n_seeds", "text"]
    assert len(s) == 2 * 2 * 2 * 2 and (s.n_seeds == 3).all()
    allruns = pd.concat(runs.values())
    for _, row in s.iterrows():
        v = allruns[(allruns.model == row.model) & (allruns.split == row.split)
                    & (allruns.metric == row.metric) & (allruns.k == row.k)].value.to_numpy()
        assert row["mean"] == pytest.approx(v.mean()) and row["std"] == pytest.approx(v.std(ddof=1))
        assert row.text == f"{v.mean():.4f} ± {v.std(ddof=1):.4f}"
    popr = s[s.model == "pop"]
    assert (popr["std"] == 0).all()  # a deterministic model: the same numbers every seed
    w = summarize(list(runs.values()), wide=True, digits=3)
    assert list(w.columns) == ["model", "split", "recall@10", "recall@20", "ndcg@10", "ndcg@20"]
    assert len(w) == 4
    one = summarize(runs[0])
    assert one["std"].isna().all() and "±" not in one.text.iloc[0]


def test_summarize_errors():
    with pytest.raises(ValueError, match="frames is empty"):
        summarize([])
    with pytest.raises(ValueError, match="value"):
        summarize(pd.DataFrame({"metric": ["recall"], "k": [10]}))
    with pytest.raises(TypeError, match=r"frames\[1\]"):
        summarize([pd.DataFrame({"metric": ["recall"], "k": [10], "value": [0.1]}), 3])
    with pytest.raises(ValueError, match="digits"):
        summarize(pd.DataFrame({"metric": ["recall"], "k": [10], "value": [0.1]}), digits=-1)


# --------------------------------------------------------------------------- end to end

def test_identified_environments_to_ood_comparison():
    """method.md §6.2: identify environments on all interactions, hold some out, compare."""
    from painvrl import identify_environments

    ds, _ = datasets.make_spurious(n_users=120, n_items=100, n_interactions=3000, n_envs=3, seed=4)
    es = identify_environments(splits.pooled(ds), n_envs=4, epochs=2, max_rounds=2, d_id=8,
                               d_content=8)
    h = splits.hold_out_environments(ds, es, holdout=1, which="farthest")
    pairs = splits.pooled_pairs(ds)
    ood = pairs[np.isin(es.labels, h.held_out)]
    assert h.ood_test.nnz == ood.shape[0]
    np.testing.assert_array_equal(
        h.ood_test.to_pairs(), ood[np.lexsort((ood[:, 1], ood[:, 0]))])
    bb = Backbone(max_epochs=2, eval_every=1, progress=False, d_id=8, d_content=8, reg="batch",
                  seed=3).fit(h.dataset)
    df = compare({"bb": bb, "pop": Popularity().fit(h.dataset)}, h.splits(), ks=10,
                 metrics="recall")
    assert set(df.split) == {"iid", "ood"} and len(df) == 4
    ood_row = df[(df.model == "bb") & (df.split == "ood")]
    ref = bb.evaluate(h.dataset, h.ood_test, ks=10, metrics="recall")
    assert ood_row.value.item() == ref.value.item() and ood_row.n_users.item() == ref.n_users.item()
