"""Mask step (method.md §3.3-3.4): forward losses against a NumPy float64 reference,
both gradient vectors against central finite differences, clamp indicators, float32 vs
float64, thread independence and input validation."""
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from painvrl import _core, invariance
from _mask_ref import fd_gradients, random_problem, step_losses

W4 = (1.0, 0.7, 1.3, 0.4)


def run_core(p, sigma, w=W4, wd2=0.02, dtype=np.float64, n_threads=0):
    f = {k: (np.asarray(v, dtype) if np.asarray(v).dtype.kind == "f" else v)
         for k, v in p.items()}
    return _core.mask_step(f["U"], f["V"], f["X"], f["W"], f["mu"], f["eps"], f["users"],
                           f["items"], f["beta_u"], f["beta_i"], sigma=sigma, w=w, wd2=wd2,
                           n_threads=n_threads)


def assert_grad_close(got, want, rtol=2e-6):
    scale = max(np.abs(want).max(), 1e-12)
    np.testing.assert_allclose(got, want, rtol=0, atol=rtol * scale)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_forward_losses_match_reference(seed):
    p = random_problem(np.random.default_rng(seed))
    Le, erm, irm, reg = step_losses(**p, sigma=0.05, w=W4, wd2=0.02)
    loss_env, erm_c, irm_c, reg_c, _, _ = run_core(p, 0.05)
    np.testing.assert_allclose(loss_env, Le, rtol=1e-12)
    np.testing.assert_allclose([erm_c, irm_c, reg_c], [erm, irm, reg], rtol=1e-11)
    assert irm > 0 and reg > 0


@pytest.mark.parametrize("seed", [0, 3, 4])
def test_gradients_match_finite_differences(seed):
    # E=3, B=4, N_neg=3, D=7, d_c=5, d_id=3: every term of L_IRM, including the
    # second-order ones through r'_n, enters b.
    p = random_problem(np.random.default_rng(seed))
    *_, a, b = run_core(p, 0.05)
    fa, fb = fd_gradients(**p, sigma=0.05, w=W4, wd2=0.02)
    assert_grad_close(a, fa)
    assert_grad_close(b, fb)
    assert np.abs(fb).max() > 1e-3      # the IRM gradient is not trivially small


def test_gradients_without_negatives_and_other_weights():
    p = random_problem(np.random.default_rng(7), E=2, B=5, n_neg=0, D=6, d_c=4, d_id=2)
    *_, a, b = run_core(p, 0.1, w=(0.5, 2.0, 0.0, 0.0), wd2=0.0)
    fa, fb = fd_gradients(**p, sigma=0.1, w=(0.5, 2.0, 0.0, 0.0), wd2=0.0)
    assert_grad_close(a, fa)
    assert_grad_close(b, fb)


def test_clamped_gates_use_the_per_environment_indicator():
    rng = np.random.default_rng(5)
    p = random_problem(rng)
    D = p["mu"].size
    sigma = 0.1
    p["eps"][:] = rng.choice([-1.0, 1.0], size=p["eps"].shape)
    p["mu"][0] = 0.9         # z = 1.4 +- 0.1: clamped at 1 in every environment
    p["mu"][1] = -0.95       # z = -0.45 +- 0.1: clamped at 0 in every environment
    p["mu"][2] = 0.5         # z = 1.0 +- 0.1: clamped in some environments only
    p["eps"][:, 2] = [1.0, -1.0, -1.0]
    p["mu"][3] = -0.5        # z = 0.0 +- 0.1: clamped at 0 where eps < 0
    p["eps"][:, 3] = [-1.0, 1.0, -1.0]
    *_, a, b = run_core(p, sigma)
    fa, fb = fd_gradients(**p, sigma=sigma, w=W4, wd2=0.02)
    assert_grad_close(a, fa)
    assert_grad_close(b, fb)
    dcD = p["W"].size
    # Fully clamped gates: no ERM gradient on mu, only the direct term of L_IRM.
    assert a[dcD + 0] == 0.0 and a[dcD + 1] == 0.0
    assert b[dcD + 0] != 0.0 and D == 7


def test_gates_on_the_boundary_pass_the_gradient():
    # torch's clamp lets the gradient through at min and max: with sigma = 0 and
    # mu + 0.5 exactly 1 (or 0), the kernel's derivative equals the one-sided
    # difference taken from inside [0, 1].
    p = random_problem(np.random.default_rng(9))
    dcD = p["W"].size
    p["mu"][1] = 0.5
    p["mu"][4] = -0.5
    side = np.zeros(dcD + p["mu"].size, int)
    side[dcD + 1] = -1
    side[dcD + 4] = +1
    *_, a, b = run_core(p, 0.0)
    fa, fb = fd_gradients(**p, sigma=0.0, w=W4, wd2=0.02, side=side, h=1e-7)
    assert abs(a[dcD + 1]) > 1e-3 and abs(a[dcD + 4]) > 1e-3
    assert_grad_close(a, fa, rtol=1e-5)
    assert_grad_close(b, fb, rtol=1e-5)


def test_float32_agrees_with_float64():
    p = random_problem(np.random.default_rng(11), E=4, B=16, n_neg=8, D=40, d_c=12, d_id=6,
                       n_users=50, n_items=90, scale=0.4)
    le64, e64, i64, r64, a64, b64 = run_core(p, 0.05)
    le32, e32, i32, r32, a32, b32 = run_core(p, 0.05, dtype=np.float32)
    assert a32.dtype == np.float32 and b32.dtype == np.float32
    np.testing.assert_allclose(le32, le64, rtol=1e-5)
    np.testing.assert_allclose([e32, i32, r32], [e64, i64, r64], rtol=2e-4)
    assert np.linalg.norm(a32 - a64) <= 1e-4 * np.linalg.norm(a64)
    assert np.linalg.norm(b32 - b64) <= 1e-3 * np.linalg.norm(b64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_thread_count_does_not_change_bits(dtype):
    # Big enough that the kernel really uses 2 threads (work >= 2^21 multiply-adds).
    p = random_problem(np.random.default_rng(13), E=4, B=64, n_neg=10, D=200, d_c=16,
                       d_id=8, n_users=300, n_items=500, scale=0.3)
    with threadpool_limits(1):
        r1 = run_core(p, 0.01, dtype=dtype, n_threads=1)
        r2 = run_core(p, 0.01, dtype=dtype, n_threads=2)
    for x, y in zip(r1, r2):
        assert np.array_equal(x, y)


def test_reused_workspace_gives_the_same_bits():
    p = random_problem(np.random.default_rng(19), E=3, B=8, n_neg=5, D=30, d_c=6, d_id=4)
    ref = invariance.mask_step(**{k: p[k] for k in p}, sigma=0.05, n_threads=2)
    work = invariance.mask_step_workspace(3, 8, 5, 30, 6, dtype=np.float64, n_threads=2)
    for _ in range(2):
        st = invariance.mask_step(**{k: p[k] for k in p}, sigma=0.05, n_threads=2,
                                  workspace=work)
        assert np.array_equal(st.grad_erm, ref.grad_erm)
        assert np.array_equal(st.grad_irm, ref.grad_irm)
    small = invariance.mask_step_workspace(3, 4, 5, 30, 6, dtype=np.float64, n_threads=2)
    with pytest.raises(ValueError, match="'work'"):
        invariance.mask_step(**{k: p[k] for k in p}, n_threads=2, workspace=small)
    with pytest.raises(TypeError, match="'work'"):
        invariance.mask_step(**{k: p[k] for k in p}, workspace=np.zeros(10**6))


def test_python_mask_step_direction_and_split():
    p = random_problem(np.random.default_rng(17))
    st = invariance.mask_step(p["U"], p["V"], p["X"], p["W"], p["mu"], p["eps"], p["users"],
                              p["items"], p["beta_u"], p["beta_i"], sigma=0.05, w=W4,
                              wd2=0.02, lam=0.3)
    assert st.grad_erm.dtype == np.float64
    want = st.w_erm * st.grad_erm + st.w_irm * st.grad_irm
    want[p["W"].size:] += 0.3 * 2 * p["mu"]
    np.testing.assert_allclose(st.direction, want, rtol=1e-14, atol=1e-300)
    gW, gmu = st.split(st.grad_erm)
    assert gW.shape == p["W"].shape and gmu.shape == p["mu"].shape
    Le, erm, irm, reg = step_losses(**p, sigma=0.05, w=W4, wd2=0.02)
    np.testing.assert_allclose([st.erm_loss, st.irm_loss, st.reg_loss], [erm, irm, reg],
                               rtol=1e-11)
    # MGDA without normalisation: w_erm = gamma, w_irm = 1 - gamma.
    assert st.w_erm == st.gamma and st.w_irm == pytest.approx(1 - st.gamma)
    st32 = invariance.mask_step(*(p[k].astype(np.float32) if p[k].dtype.kind == "f" else p[k]
                                  for k in ("U", "V", "X", "W", "mu", "eps", "users", "items",
                                            "beta_u", "beta_i")), sigma=0.05)
    assert st32.grad_irm.dtype == np.float32 and st32.direction.dtype == np.float32


# ---------------------------------------------------------------- input validation
@pytest.fixture
def prob():
    return random_problem(np.random.default_rng(21))


def call_py(p, **over):
    args = {k: p[k] for k in ("U", "V", "X", "W", "mu", "eps", "users", "items", "beta_u",
                              "beta_i")}
    args.update(over)
    return invariance.mask_step(**args)


def test_python_validation_names_the_parameter(prob):
    p = prob
    with pytest.raises(TypeError, match="mask_step: users"):
        call_py(p, users=p["users"].astype(float))
    with pytest.raises(ValueError, match="mask_step: items"):
        bad = p["items"].copy()
        bad[1, 2, 3] = p["X"].shape[0]
        call_py(p, items=bad)
    with pytest.raises(ValueError, match="mask_step: users"):
        bad = p["users"].copy()
        bad[0, 0] = -1
        call_py(p, users=bad)
    with pytest.raises(ValueError, match="mask_step: X.*NaN"):
        X = p["X"].copy()
        X[3, 2] = np.nan
        call_py(p, X=X)
    with pytest.raises(ValueError, match="mask_step: U"):
        call_py(p, U=p["U"][:, :-1])
    with pytest.raises(ValueError, match="mask_step: eps"):
        call_py(p, eps=p["eps"][:, :-1])
    with pytest.raises(ValueError, match="mask_step: users"):
        call_py(p, users=p["users"][:2])
    with pytest.raises(ValueError, match="mask_step: items"):
        call_py(p, items=p["items"][:, :3])
    with pytest.raises(ValueError, match="mask_step: eps"):
        call_py(p, eps=p["eps"][:0], users=p["users"][:0], items=p["items"][:0])
    with pytest.raises(ValueError, match="mask_step: sigma"):
        call_py(p, sigma=-1.0)
    with pytest.raises(ValueError, match="mask_step: weighting"):
        call_py(p, weighting="bogus")
    with pytest.raises(ValueError, match="mask_step: normalize"):
        call_py(p, normalize="max")
    with pytest.raises(ValueError, match="mask_step: w"):
        call_py(p, w=(1.0, 1.0))
    with pytest.raises(ValueError, match="mask_step: beta_i"):
        call_py(p, beta_i=p["beta_i"][:-1])
    with pytest.raises(TypeError, match="mask_step: dtype"):
        call_py(p, dtype=np.int32)


def test_binding_validation_names_the_parameter(prob):
    p = prob
    f = dict(sigma=0.01, w=W4, wd2=0.01)
    args = [p[k] for k in ("U", "V", "X", "W", "mu", "eps", "users", "items", "beta_u",
                           "beta_i")]
    with pytest.raises(TypeError, match="mask_step\\(\\).*'X'.*float64"):
        bad = list(args)
        bad[2] = args[2].astype(np.float32)
        _core.mask_step(*bad, **f)
    with pytest.raises(ValueError, match="mask_step\\(\\).*'U'"):
        bad = list(args)
        bad[0] = args[0][:, :-1]
        _core.mask_step(*bad, **f)
    with pytest.raises(IndexError, match="mask_step\\(\\).*'items'"):
        bad = list(args)
        bad[7] = args[7] + 1000
        _core.mask_step(*bad, **f)
    with pytest.raises(ValueError, match="'wd2'"):
        _core.mask_step(*args, sigma=0.01, w=W4, wd2=float("nan"))
    with pytest.raises(ValueError, match="'n_threads'"):
        _core.mask_step(*args, **f, n_threads=-2)
