"""ERM/IRM weighting of the mask step (method.md §3.5): the MGDA min-norm rule against a
brute-force grid, the PAIR/EPO 1-D LP against a brute-force constrained search, the
fixed (InvRL) weights and the normalisation options."""
import numpy as np
import pytest

from painvrl import _core
from painvrl.invariance import mgda_weight, pair_weight

GRID = np.linspace(0.0, 1.0, 400001)


def norms_on_grid(a, b):
    aa, ab, bb = a @ a, a @ b, b @ b
    g = GRID
    return g * g * aa + 2 * g * (1 - g) * ab + (1 - g) ** 2 * bb   # ||g a + (1-g) b||^2


def random_pairs(n_cases, seed, dim=6):
    rng = np.random.default_rng(seed)
    for _ in range(n_cases):
        a = rng.normal(size=dim) * rng.uniform(0.1, 10)
        b = rng.normal(size=dim) * rng.uniform(0.1, 10) + rng.uniform(-1, 1) * a
        yield a, b


def test_mgda_matches_brute_force_min_norm():
    n_interior = 0
    for a, b in random_pairs(300, 0):
        gamma = mgda_weight(a, b)
        sq = norms_on_grid(a, b)
        k = int(np.argmin(sq))
        aa, ab, bb = a @ a, a @ b, b @ b
        if ab >= aa:
            assert gamma == 0.999 and GRID[k] == 1.0
        elif ab >= bb:
            assert gamma == 0.001 and GRID[k] == 0.0
        else:
            n_interior += 1
            assert abs(gamma - GRID[k]) <= 2.5e-6
            at = gamma * gamma * aa + 2 * gamma * (1 - gamma) * ab + (1 - gamma) ** 2 * bb
            assert at <= sq[k] * (1 + 1e-12) + 1e-300
    assert n_interior > 50


def test_mgda_end_cases_and_equal_vectors():
    a = np.array([1.0, 2.0, 3.0])
    assert mgda_weight(a, a) == 0.999                   # a.b >= a.a covers a == b
    assert mgda_weight(a, 2 * a) == 0.999               # a is the min-norm end
    assert mgda_weight(2 * a, a) == 0.001               # b is the min-norm end
    assert mgda_weight(a, np.zeros(3)) == 0.001         # zero IRM gradient
    # float32 input: Gram products in float64 give the same rule.
    a32, b32 = np.float32([1, 0, 0]), np.float32([0, 2, 0])
    assert mgda_weight(a32, b32) == pytest.approx(0.8)


def test_mgda_normalisations():
    rng = np.random.default_rng(1)
    for _ in range(50):
        a, b = rng.normal(size=5) * 30, rng.normal(size=5) * 0.01
        la, lb = rng.uniform(1, 1000), rng.uniform(1e-6, 1)
        assert mgda_weight(a, b, "loss", losses=(la, lb)) == pytest.approx(
            mgda_weight(a / la, b / lb), rel=1e-12)
        g = mgda_weight(a, b, "l2")
        assert g == pytest.approx(0.5, abs=1e-12)       # unit vectors: equal angles
    with pytest.raises(ValueError, match="mgda_weight: losses"):
        mgda_weight(a, b, "loss")
    with pytest.raises(ValueError, match="mgda_weight: normalize"):
        mgda_weight(a, b, "max")


def test_mgda_preference_scales_the_vectors_before_the_min_norm_rule():
    rng = np.random.default_rng(7)
    for _ in range(50):
        a, b = rng.normal(size=5) * 3, rng.normal(size=5)
        la, lb = rng.uniform(1, 100), rng.uniform(1e-3, 1)
        r = rng.uniform(0.05, 0.95)
        pref = (3 * (1 - r), 3 * r)                       # any scale: rescaled to sum 1
        # the definition: a / (2 r_ERM), b / (2 r_IRM) after normalisation
        want = mgda_weight(a / (2 * (1 - r)), b / (2 * r))
        assert mgda_weight(a, b, preference=pref) == pytest.approx(want, rel=1e-12)
        want = mgda_weight(a / la / (2 * (1 - r)), b / lb / (2 * r))
        got = mgda_weight(a, b, "loss", losses=(la, lb), preference=pref)
        assert got == pytest.approx(want, rel=1e-12)
    assert mgda_weight(a, b, preference=(0.5, 0.5)) == mgda_weight(a, b)


def test_mgda_preference_moves_the_direction_toward_the_preferred_objective():
    # Orthogonal unit vectors: gamma = r_ERM^2 / (r_ERM^2 + r_IRM^2) (min-norm point of
    # a / 2r_E and b / 2r_I), so the ERM share grows with the ERM preference.
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    shares = []
    for r_irm in (0.1, 0.3, 0.5, 0.7, 0.9):
        r_erm = 1 - r_irm
        g = mgda_weight(a, b, "l2", preference=(r_erm, r_irm))
        assert g == pytest.approx(r_erm ** 2 / (r_erm ** 2 + r_irm ** 2), rel=1e-12)
        shares.append(g)
    assert all(x > y for x, y in zip(shares, shares[1:]))


def test_mgda_preference_must_be_positive():
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    with pytest.raises(ValueError, match="mgda_weight: with weighting='mgda' both preference"):
        mgda_weight(a, b, preference=(0.0, 1.0))
    with pytest.raises(ValueError, match="MGDA's preference"):
        _core.mask_weigh(a, b, 1.0, 1.0, weighting=0, pref_erm=0.0, pref_irm=1.0)


def test_weigh_coefficients_for_each_mode():
    a = np.array([3.0, 0.0, 1.0])
    b = np.array([0.0, 0.5, -0.2])
    la, lb = 40.0, 0.02
    g, wa, wb, move = _core.mask_weigh(a, b, la, lb, weighting=0, normalize=1)
    assert (wa, wb, move) == (pytest.approx(g / la), pytest.approx((1 - g) / lb), 0)
    g2, wa2, wb2, _ = _core.mask_weigh(a, b, la, lb, weighting=0, normalize=1, apply_raw=True)
    assert (g2, wa2, wb2) == (g, g, pytest.approx(1 - g))
    g3, wa3, wb3, _ = _core.mask_weigh(a, b, la, lb, weighting=1, alpha=2.5)
    assert (g3, wa3, wb3) == (pytest.approx(1 / 3.5), 1.0, 2.5)
    # grad_scope "mu": the Gram products cover a[scope_offset:] only.
    g4, *_ = _core.mask_weigh(a, b, la, lb, weighting=0, scope_offset=1)
    assert g4 == mgda_weight(a[1:], b[1:])
    with pytest.raises(ValueError, match="'scope_offset'"):
        _core.mask_weigh(a, b, la, lb, scope_offset=4)
    with pytest.raises(ValueError, match="'alpha'"):
        _core.mask_weigh(a, b, la, lb, weighting=1, alpha=-1.0)
    with pytest.raises(ValueError, match="'weighting'"):
        _core.mask_weigh(a, b, la, lb, weighting=5)
    with pytest.raises(TypeError, match="'b'"):
        _core.mask_weigh(a, b.astype(np.float32), la, lb)


# ---------------------------------------------------------------- PAIR / EPO
def pair_brute_force(losses, C, pref, eps, grid):
    """Best objective over a grid of alpha_ERM, from the LP as method.md §3.5 states it."""
    l = np.asarray(losses, float)
    r = np.asarray(pref, float) / np.sum(pref)
    rl = r * l
    lh = rl / rl.sum()
    keep = lh > np.finfo(float).eps
    mur = np.sum(lh[keep] * np.log(2 * lh[keep]))
    adj = r * (np.log(2 * np.maximum(lh, np.finfo(float).tiny)) - mur)
    Ca = C @ adj
    alphas = np.stack([grid, 1 - grid])                 # (2, G)
    Calpha = C @ alphas
    # Feasibility tolerance relative to each constraint's own scale.
    tol_c = 1e-9 * np.abs(C).max()
    tol_a = 1e-9 * np.abs(Ca).max()
    if mur > eps:
        feas = np.ones(grid.size, bool)
        star = rl == rl.max()
        for j in range(2):
            if star[j]:
                feas &= Calpha[j] >= -tol_c
            elif Ca[j] <= 0:
                feas &= Calpha[j] >= Ca[j] - tol_c
        obj = Ca @ alphas
        move = "balance"
        tol = tol_a
    else:
        feas = np.all(Calpha >= -tol_c, axis=0) & (Ca @ alphas >= min(Ca.max(), 0) - tol_a)
        obj = Calpha.sum(axis=0)
        move = "descent"
        tol = tol_c
    return obj, feas, move, tol


@pytest.mark.parametrize("eps", [0.0, 1e-4, 10.0])
def test_pair_lp_matches_brute_force(eps):
    rng = np.random.default_rng(int(eps * 10) + 3)
    grid = np.linspace(0.0, 1.0, 200001)
    n_checked = 0
    for a, b in random_pairs(200, int(eps * 7) + 11, dim=4):
        losses = (rng.uniform(0.0, 5.0), rng.uniform(0.0, 5.0))
        pref = tuple(rng.uniform(0.05, 1.0, 2)) if rng.random() < 0.7 else (1e-8, 1 - 1e-8)
        alpha, move = pair_weight(a, b, losses, pref, eps, return_move=True)
        C = np.array([[a @ a, a @ b], [a @ b, b @ b]])
        obj, feas, want_move, tol = pair_brute_force(losses, C, pref, eps, grid)
        if move == "infeasible":
            assert not feas.any()
            assert alpha == pytest.approx(pref[0] / sum(pref))
            continue
        assert move == want_move
        assert 0.0 <= alpha <= 1.0
        # The LP's answer is feasible and at least as good as every feasible grid point.
        o_lp, f_lp, *_ = pair_brute_force(losses, C, pref, eps, np.array([alpha]))
        assert f_lp[0]
        if feas.any():
            slope = abs(obj[-1] - obj[0])
            assert o_lp[0] >= obj[feas].max() - 1e-12 * abs(obj).max() - tol
            assert o_lp[0] <= obj[feas].max() + slope * (grid[1] - grid[0]) + tol
        n_checked += 1
    assert n_checked > 100


def test_pair_descent_and_balance_cases_by_hand():
    # Equal weighted losses (mu_r = 0 <= eps): descent, maximise sum(C alpha).
    a, b = np.array([1.0, 0.0]), np.array([0.0, 2.0])
    alpha, move = pair_weight(a, b, (1.0, 1.0), (0.5, 0.5), 1e-4, return_move=True)
    # sum(C alpha) = t + 4 (1 - t) is largest at t = 0; C alpha >= 0 holds everywhere.
    assert (alpha, move) == (0.0, "descent")
    # ERM loss much larger under an ERM-heavy preference: balance step towards ERM.
    alpha, move = pair_weight(a, b, (10.0, 0.1), (0.5, 0.5), 1e-4, return_move=True)
    assert move == "balance" and alpha == 1.0


def test_pair_alpha_core_and_validation():
    alpha, move = _core.pair_alpha(1.0, 1.0, 1.0, 0.0, 4.0, 0.5, 0.5, 1e-4)
    assert (alpha, move) == (0.0, 2)
    alpha, move = _core.pair_alpha(0.0, 0.0, 1.0, 0.0, 4.0, 0.25, 0.75, 1e-4)
    assert (alpha, move) == (0.25, 3)                   # undefined LP: the preference
    with pytest.raises(ValueError, match="pair_alpha"):
        _core.pair_alpha(-1.0, 1.0, 1.0, 0.0, 4.0, 0.5, 0.5, 1e-4)
    a, b = np.ones(3), np.zeros(3)
    with pytest.raises(ValueError, match="pair_weight: preference"):
        pair_weight(a, b, (1.0, 1.0), (-1.0, 1.0))
    with pytest.raises(ValueError, match="pair_weight: preference"):
        pair_weight(a, b, (1.0, 1.0), (0.0, 0.0))
    with pytest.raises(ValueError, match="pair_weight: losses"):
        pair_weight(a, b, (-1.0, 1.0))
    with pytest.raises(ValueError, match="pair_weight: eps"):
        pair_weight(a, b, (1.0, 1.0), eps=-1.0)
    with pytest.raises(ValueError, match="pair_weight: a and b must have the same shape"):
        pair_weight(a, np.zeros(4), (1.0, 1.0))
    with pytest.raises(ValueError, match="pair_weight: a.*NaN"):
        pair_weight(np.array([np.nan, 1, 1]), b, (1.0, 1.0))
