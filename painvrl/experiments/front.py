"""Two-objective Pareto tools (both objectives maximised): the non-dominated points and
the hypervolume they enclose above a reference point."""
from __future__ import annotations

import numpy as np


def non_dominated(points) -> np.ndarray:
    """Boolean mask of the points no other point dominates (>= in both objectives and
    > in one).  ``points``: array (n, 2); duplicates of a non-dominated point are all
    kept."""
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"non_dominated: points must have shape (n, 2), got {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError("non_dominated: points must be finite")
    ge = (p[None, :, 0] >= p[:, None, 0]) & (p[None, :, 1] >= p[:, None, 1])
    gt = (p[None, :, 0] > p[:, None, 0]) | (p[None, :, 1] > p[:, None, 1])
    return ~np.any(ge & gt, axis=1)   # row i: does some j dominate i?


def hypervolume_2d(points, reference) -> float:
    """Area dominated by ``points`` (n, 2) and dominating ``reference`` (2,): the
    union of the rectangles [ref_x, x] x [ref_y, y].  Points that do not beat the
    reference in both objectives add nothing; 0 for none."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    ref = np.asarray(reference, dtype=np.float64)
    if ref.shape != (2,) or not np.all(np.isfinite(ref)) or not np.all(np.isfinite(p)):
        raise ValueError("hypervolume_2d: reference must be 2 finite numbers and points finite")
    p = p[(p[:, 0] > ref[0]) & (p[:, 1] > ref[1])]
    if p.shape[0] == 0:
        return 0.0
    p = p[non_dominated(p)]
    p = p[np.argsort(-p[:, 0], kind="stable")]          # x descending, so y ascending
    area, y_done = 0.0, ref[1]
    for x, y in p:
        if y > y_done:
            area += (x - ref[0]) * (y - y_done)
            y_done = y
    return float(area)
