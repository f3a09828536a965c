"""Stateless functions over the C kernels, for researchers who want the maths without estimators.

Every function validates its input, converts it to the canonical layout the C
core needs, and calls it with the GIL released.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np

from .. import _core
from .._util.validation import (as_float_array, as_index_array, check_choice, check_dtype,
                                check_int, check_nonneg_float, check_seed, check_weights,
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

    Parameters
    ----------
    user_degree, item_degree : array_like, shape (n_users,) and (n_items,)
        Non-negative, finite degrees (any real dtype; may be empty).
    dtype : float32 or float64

    Returns
    -------
    beta_u, beta_i : ndarray of ``dtype``

    Raises
    ------
    TypeError
        Non-numeric degrees, or a ``dtype`` other than float32/float64.
    ValueError
        Degrees that are not 1-D, negative, NaN or inf.
    """
    f = "loss_weights"
    dtype = check_dtype(dtype, func=f)
    du = as_float_array(user_degree, "user_degree", ndim=1, dtype=np.float64, func=f)
    di = as_float_array(item_degree, "item_degree", ndim=1, dtype=np.float64, func=f)
    for name, d in (("user_degree", du), ("item_degree", di)):
        if d.size and d.min() < 0:
            raise ValueError(f"{f}: {name} must be >= 0, got values down to {d.min()}")
    return _loss_weights(du, di, dtype)


def _loss_weights(user_degree: np.ndarray, item_degree: np.ndarray, dtype=np.float32):
    """:func:`loss_weights` without the checks, for degrees known to be valid (a
    Dataset's ``user_degree`` / ``item_degree``: non-negative integers)."""
    du = np.maximum(np.asarray(user_degree, dtype=np.float64), 1e-10)
    di = np.asarray(item_degree, dtype=np.float64)
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

    Raises
    ------
    TypeError
        Non-integer ids, a non-numeric array or weight, or a ``dtype`` other
        than float32/float64.
    ValueError
        Wrong shapes, NaN or inf, ids out of range, or an unknown ``reg``.

    Notes
    -----
    A batch is a sample: a (user, item) row may repeat (the trainer's sampler
    draws negatives with replacement) and each occurrence counts.  An empty
    batch (``B = 0``) is valid: zero loss (plus the ``"full"`` L2 term) and
    zero data gradients.
    """
    f = "rec_loss_grad"
    if dtype is None:
        dtype = np.float64 if np.asarray(U).dtype == np.float64 else np.float32
    dtype = check_dtype(dtype, func=f)
    U = as_float_array(U, "U", ndim=2, dtype=dtype, func=f)
    V = as_float_array(V, "V", ndim=2, dtype=dtype, func=f)
    n_users, n_items = U.shape[0], V.shape[0]
    W = as_float_array(W, "W", ndim=2, dtype=dtype, func=f)
    X = as_float_array(X, "X", ndim=2, dtype=dtype, shape=(n_items, W.shape[1]), func=f)
    if U.shape[1] != V.shape[1] + W.shape[0]:
        raise ValueError(f"{f}: U must have d_id + d_c = {V.shape[1]} + {W.shape[0]} columns, "
                         f"got {U.shape[1]}")
    b = None if b is None else as_float_array(b, "b", ndim=1, dtype=dtype, shape=(W.shape[0],),
                                              func=f)
    g = None if g is None else as_float_array(g, "g", ndim=1, dtype=dtype, shape=(W.shape[1],),
                                              func=f)
    users = as_index_array(users, "users", high=n_users, func=f)
    items = as_index_array(items, "items", high=n_items, ndim=2, func=f)
    if items.shape[0] != users.shape[0]:
        raise ValueError(f"{f}: items must have one row per user ({users.shape[0]}), "
                         f"got {items.shape[0]}")
    beta_u = as_float_array(beta_u, "beta_u", ndim=1, dtype=dtype, shape=(n_users,), func=f)
    beta_i = as_float_array(beta_i, "beta_i", ndim=1, dtype=dtype, shape=(n_items,), func=f)
    check_choice(reg, "reg", ("none", "full", "batch"), func=f)
    w = check_weights(w, "w", func=f)
    out = _core.rec_loss_grad(
        U, V, W, b, g, X, users, items, beta_u, beta_i, w=w, reg=reg,
        wd1=check_nonneg_float(wd1, "wd1", func=f), wdi=check_nonneg_float(wdi, "wdi", func=f),
        wd2=check_nonneg_float(wd2, "wd2", func=f), n_threads=resolve_threads(n_threads, func=f))
    return RecGradient(*out)


def sample_negatives(n_items: int, n_neg: int, seed: int, epoch: int, position: int) -> np.ndarray:
    """The negatives the C trainer draws for the pair at ``position`` of ``epoch``.

    Uniform over all items, with replacement, positives not filtered (the
    reference's sampler), from a Philox4x32-10 stream keyed by ``seed``: the same
    numbers whatever the thread count.

    Parameters
    ----------
    n_items : int
        Catalogue size, in ``[1, 2**63)``.
    n_neg : int
        Negatives to draw, in ``[0, 2**63)``.
    seed : int
        In ``[0, 2**64)``.
    epoch : int
        In ``[0, 2**32)`` (the trainer's epoch counter is 32-bit).
    position : int
        The pair's position in the epoch, in ``[0, 2**63)``.

    Returns
    -------
    ndarray of int64, shape (n_neg,)
        Item ids in ``[0, n_items)``.

    Raises
    ------
    TypeError
        An argument that is not an integer (bool included).
    ValueError
        An argument out of its range.
    MemoryError
        If ``n_neg`` ids do not fit in memory.
    """
    f = "sample_negatives"
    top = np.iinfo(np.int64).max        # the C core's sizes and positions are int64
    return _core.epoch_negatives(check_int(n_items, "n_items", minimum=1, maximum=top, func=f),
                                 check_int(n_neg, "n_neg", minimum=0, maximum=top, func=f),
                                 check_seed(seed, func=f),
                                 check_seed(epoch, "epoch", bits=32, func=f),
                                 check_int(position, "position", minimum=0, maximum=top, func=f))
