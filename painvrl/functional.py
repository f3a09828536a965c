"""Stateless functions over the C kernels, for researchers who want the maths without estimators.

Every function validates its input, converts it to the canonical layout the C
core needs, and calls it with the GIL released.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np

from . import _core
from ._validation import (as_float_array, as_index_array, check_choice, check_nonneg_float,
                          resolve_threads)

__all__ = ["RecGradient", "loss_weights", "rec_loss_grad", "sample_negatives"]


class RecGradient(NamedTuple):
    """Loss and exact gradients of one backbone batch (method.md §1)."""

    loss: float
    dU: np.ndarray
    dV: np.ndarray
    dW: np.ndarray
    db: Optional[np.ndarray]
    dg: Optional[np.ndarray]


def loss_weights(user_degree, item_degree, dtype=np.float32):
    """The UltraGCN factors of the loss weights (method.md §1).

    ``beta_u = sqrt(d_u + 1) / d_u`` (``d_u`` floored at 1e-10) and
    ``beta_i = 1 / sqrt(d_i + 1)``, from the degrees over the *whole* training set
    (distinct pairs, §10.1), so that ``w+ = w1 + w2 beta_u beta_i``.

    Returns
    -------
    beta_u, beta_i : ndarray
    """
    du = np.maximum(np.asarray(user_degree, dtype=np.float64), 1e-10)
    di = np.asarray(item_degree, dtype=np.float64)
    if np.any(di < 0):
        raise ValueError("item_degree must be >= 0")
    return (np.sqrt(du + 1.0) / du).astype(dtype), (1.0 / np.sqrt(di + 1.0)).astype(dtype)


def rec_loss_grad(U, V, W, b, g, X, users, items, beta_u, beta_i, *, w=(1.0, 1.0, 1.0, 1.0),
                  reg: str = "none", wd1: float = 0.0, wdi: float = 1.0, wd2: float = 0.0,
                  dtype=None, n_threads: Optional[int] = None) -> RecGradient:
    """Loss and exact gradient of one backbone mini-batch (method.md §1).

    ``s_ui = U_u . [V_i ; W (g * x_i) + b]``; the loss is the UltraGCN-weighted BCE
    summed over the batch (positives weighted ``w1 + w2 beta_u beta_i``, each of
    the N negatives ``(w3 + w4 beta_u beta_j) / N``) plus the L2 term ``reg``.

    Parameters
    ----------
    U : array (n_users, d_id + d_c)
        User rows ``[U_id ; U_c]``.
    V : array (n_items, d_id)
    W : array (d_c, D)
    b : array (d_c,) or None
    g : array (D,) or None
        Feature gate (None: all ones).
    X : array (n_items, D)
        Item features.
    users : int array (B,)
    items : int array (B, 1 + N)
        Column 0 is each row's positive, the rest its negatives.
    beta_u, beta_i : arrays (n_users,), (n_items,)
        From :func:`loss_weights`.
    w : 4 floats
        w1..w4.
    reg : {"none", "full", "batch"}
        L2 ``wd1 (||U||^2 + wdi ||V||^2) + wd2 (||W||^2 + ||b||^2)`` over every row
        ("full", the reference code), over the distinct rows the batch touches
        ("batch"), or none.
    dtype : float32 or float64, optional
        Compute precision; defaults to U's dtype if it is float64, else float32.

    Returns
    -------
    RecGradient
        ``loss`` and dense gradients shaped like their parameters (``db``/``dg`` None
        when ``b``/``g`` is None).
    """
    if dtype is None:
        dtype = np.float64 if np.asarray(U).dtype == np.float64 else np.float32
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    U = as_float_array(U, "U", ndim=2, dtype=dtype)
    V = as_float_array(V, "V", ndim=2, dtype=dtype)
    n_users, n_items = U.shape[0], V.shape[0]
    W = as_float_array(W, "W", ndim=2, dtype=dtype)
    X = as_float_array(X, "X", ndim=2, dtype=dtype, shape=(n_items, W.shape[1]))
    if U.shape[1] != V.shape[1] + W.shape[0]:
        raise ValueError(f"U must have d_id + d_c = {V.shape[1]} + {W.shape[0]} columns, "
                         f"got {U.shape[1]}")
    b = None if b is None else as_float_array(b, "b", ndim=1, dtype=dtype, shape=(W.shape[0],))
    g = None if g is None else as_float_array(g, "g", ndim=1, dtype=dtype, shape=(W.shape[1],))
    users = as_index_array(users, "users", high=n_users)
    items = as_index_array(items, "items", high=n_items, ndim=2)
    if items.shape[0] != users.shape[0]:
        raise ValueError(f"items must have one row per user ({users.shape[0]}), "
                         f"got {items.shape[0]}")
    beta_u = as_float_array(beta_u, "beta_u", ndim=1, dtype=dtype, shape=(n_users,))
    beta_i = as_float_array(beta_i, "beta_i", ndim=1, dtype=dtype, shape=(n_items,))
    check_choice(reg, "reg", ("none", "full", "batch"))
    w = tuple(float(v) for v in w)
    if len(w) != 4:
        raise ValueError(f"w must hold 4 weights w1..w4, got {len(w)}")
    out = _core.rec_loss_grad(
        U, V, W, b, g, X, users, items, beta_u, beta_i, w=w, reg=reg,
        wd1=check_nonneg_float(wd1, "wd1"), wdi=check_nonneg_float(wdi, "wdi"),
        wd2=check_nonneg_float(wd2, "wd2"), n_threads=resolve_threads(n_threads))
    return RecGradient(*out)


def sample_negatives(n_items: int, n_neg: int, seed: int, epoch: int, position: int) -> np.ndarray:
    """The negatives the C trainer draws for the pair at ``position`` of ``epoch``.

    Uniform over all items, with replacement, positives not filtered (the
    reference's sampler), from a Philox4x32-10 stream keyed by ``seed``: the same
    numbers whatever the thread count.
    """
    return _core.epoch_negatives(n_items, n_neg, seed, epoch, position)
