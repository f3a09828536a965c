"""Property-based tests (hypothesis): random shapes, dtypes, layouts and values never crash the
process; a call either returns the reference result or raises the documented exception, and
never modifies its inputs."""
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from painvrl.models.functional import rec_loss_grad
from reference import rec_loss

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def rec_problems(draw):
    nu = draw(st.integers(1, 6))
    ni = draw(st.integers(1, 7))
    d_id = draw(st.integers(0, 3))
    d_c = draw(st.integers(0, 3))
    D = draw(st.integers(0, 5))
    B = draw(st.integers(0, 5))
    C = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    scale = draw(st.sampled_from([1e-3, 1.0, 30.0]))
    p = dict(U=rng.normal(size=(nu, d_id + d_c)) * scale, V=rng.normal(size=(ni, d_id)) * scale,
             W=rng.normal(size=(d_c, D)), b=draw(st.sampled_from([None, rng.normal(size=d_c)])),
             g=draw(st.sampled_from([None, rng.uniform(size=D)])), X=rng.normal(size=(ni, D)),
             users=rng.integers(0, nu, B), items=rng.integers(0, ni, (B, C)),
             beta_u=rng.uniform(0.1, 2, nu), beta_i=rng.uniform(0.1, 2, ni))
    layout = draw(st.sampled_from(["C", "F", "strided"]))
    if layout == "F":
        p["X"] = np.asfortranarray(p["X"])
    elif layout == "strided" and ni > 0:
        p["V"] = np.repeat(p["V"], 2, axis=0)[::2]
    corrupt = draw(st.sampled_from([None, "nan", "id", "dtype", "shape"]))
    expect = None
    if corrupt == "nan" and p["X"].size:
        p["X"] = p["X"].copy()
        p["X"].flat[0] = np.nan
        expect = ValueError
    elif corrupt == "id" and B:
        p["items"] = p["items"].copy()
        p["items"][0, 0] = ni + draw(st.integers(0, 5))
        expect = ValueError
    elif corrupt == "dtype" and B:  # an empty float array is accepted as "no ids"
        p["users"] = p["users"].astype(np.float64) + 0.5
        expect = TypeError
    elif corrupt == "shape":
        p["beta_i"] = p["beta_i"][:-1]
        expect = ValueError
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return p, dtype, expect


@SETTINGS
@given(rec_problems())
def test_rec_loss_grad_never_crashes_and_is_right(problem):
    p, dtype, expect = problem
    before = {k: None if v is None else v.copy() for k, v in p.items()}
    try:
        out = rec_loss_grad(**p, dtype=dtype)
    except Exception as exc:
        assert expect is not None and isinstance(exc, expect), repr(exc)
    else:
        assert expect is None
        want = rec_loss(**{k: v for k, v in p.items()})
        tol = 1e-4 if dtype == np.float32 else 1e-10
        assert abs(out.loss - want) <= tol * max(1.0, abs(want))
    for k, v in p.items():
        if v is not None:
            np.testing.assert_array_equal(v, before[k])
