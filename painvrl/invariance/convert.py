"""The convert module of PaInvRL's final recommender (method.md §4.2), over the C core.

``x_inv = m * x`` and ``x_var = (1 - m) * x`` go through their own projections,
``h_inv = W x_inv + b`` and ``h_var = W_var x_var + b_var`` (method.md §4.2 and its
erratum; ``W_var=None`` shares ``W, b`` between both, the earlier reading); an attention
(or two global logits, or nothing) fuses them, ``h = a_inv h_inv + a_var h_var``, and the
item vector is ``e_i = [V_i ; h_i]``.

With a shared projection and ``a_inv = a_var = 1/2`` the mask cancels:
``h = W x / 2 + b`` whatever the mask (see :class:`painvrl.MaskCancelledWarning`).

Cost: ``fusion="attention"`` projects the batch's distinct items (two GEMMs of
n_distinct x D x 2 d_c per batch); ``"global"`` and ``"invariant"`` are linear in x,
``h = W_e x + b_e`` (shared: ``W_e = W diag(a_inv m + a_var (1 - m))``), and run the
backbone kernel of :func:`painvrl.functional.rec_loss_grad` (no projection).
Results do not depend on the thread count.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np

from .. import _core
from .._util.validation import (as_float_array, as_index_array, as_mask, check_choice, check_dtype,
                                check_weights, resolve_threads)

__all__ = ["ConvertGradient", "MaskCancelledWarning", "attention_weights",
           "convert_item_vectors", "convert_loss_grad", "mask_cancellation"]

FUSIONS = ("attention", "global", "invariant")
# |a_inv - 1/2| at most this for every item counts as the symmetric point: the effective
# per-feature gate a_inv m + a_var (1 - m) of a shared projection then differs from the
# constant 1/2 by at most this much, whatever the mask.
SYMMETRIC_TOL = 1e-3


class MaskCancelledWarning(UserWarning):
    """The convert module's output does not depend on the mask (method.md §4.2 erratum).

    With equal invariant and variant projections (``projection="shared"``, or separate
    ones that are still identical) ``h = a_inv W (m x) + a_var W ((1 - m) x) + b``; at
    ``a_inv = a_var = 1/2`` (attention or global weights at their symmetric point) or with
    ``m = 1/2`` everywhere this is ``W x / 2 + b`` for every mask: the final model is the
    backbone at half scale.  See :func:`mask_cancellation`.
    """


class ConvertGradient(NamedTuple):
    """Loss and exact gradients of one batch of the final recommender (method.md §4.2).

    Gradients of parameters the fusion does not use are None (``dA``, ``dc``, ``dq``
    unless ``fusion="attention"``, ``domega`` unless ``"global"``, ``db`` without ``b``,
    ``dW_var`` and ``db_var`` without ``W_var``; zeros with ``"invariant"``, which does not
    read the variant projection).  ``dW`` and ``db`` are those of the invariant projection
    (of the shared one when ``W_var`` is None).  ``attention`` is ``a_inv`` of each
    (row, item) pair of the batch, shaped like ``items``.
    """

    loss: float
    dU: np.ndarray
    dV: np.ndarray
    dW: np.ndarray
    db: Optional[np.ndarray]
    dA: Optional[np.ndarray]
    dc: Optional[np.ndarray]
    dq: Optional[np.ndarray]
    domega: Optional[np.ndarray]
    dmask: np.ndarray
    attention: np.ndarray
    dW_var: Optional[np.ndarray] = None
    db_var: Optional[np.ndarray] = None


def _resolve_dtype(dtype, like, func: str):
    if dtype is None:
        dtype = np.float64 if np.asarray(like).dtype == np.float64 else np.float32
    return check_dtype(dtype, func=func)


def _fusion_params(W, b, A, c, q, mask, X, fusion, omega, dtype, func: str, n_items=None, *,
                   W_var=None, b_var=None, trusted_X: bool = False):
    """Checked (W, b, A, c, q, omega, mask, X, W_var, b_var) for the C core.

    ``trusted_X``: X is a Dataset's feature table (finite, C-contiguous float32 by
    construction), used without scanning it again when it already has the layout
    asked for (only its shape is compared, O(1)).
    """
    f = func
    check_choice(fusion, "fusion", FUSIONS, func=f)
    W = as_float_array(W, "W", ndim=2, dtype=dtype, func=f)
    d_c, D = W.shape
    if not (trusted_X and X.dtype == dtype and X.ndim == 2 and X.flags.c_contiguous):
        X = as_float_array(X, "X", ndim=2, dtype=dtype, shape=(n_items, D), func=f)
    elif X.shape[1] != D or (n_items is not None and X.shape[0] != n_items):
        raise ValueError(f"{f}: X must have {D} columns (W's) and "
                         f"{'any number of' if n_items is None else n_items} rows, got shape "
                         f"{X.shape}")
    mask = as_mask(mask, "mask", D, dtype=dtype, func=f)
    b = None if b is None else as_float_array(b, "b", ndim=1, dtype=dtype, shape=(d_c,), func=f)
    if fusion == "attention":
        for name, val in (("A", A), ("c", c), ("q", q)):
            if val is None:
                raise ValueError(f"{f}: {name} must be given with fusion='attention', got None")
        A = as_float_array(A, "A", ndim=2, dtype=dtype, shape=(None, d_c), func=f)
        c = as_float_array(c, "c", ndim=1, dtype=dtype, shape=(A.shape[0],), func=f)
        q = as_float_array(q, "q", ndim=1, dtype=dtype, shape=(A.shape[0],), func=f)
    else:
        A = c = q = None
    if fusion == "global":
        if omega is None:
            raise ValueError(f"{f}: omega (the two logits) must be given with fusion='global', "
                             f"got None")
        omega = as_float_array(omega, "omega", ndim=1, dtype=dtype, shape=(2,), func=f)
    else:
        omega = None
    if W_var is not None:
        W_var = as_float_array(W_var, "W_var", ndim=2, dtype=dtype, shape=W.shape, func=f)
        if (b_var is None) != (b is None):
            raise ValueError(f"{f}: b_var must be given exactly when b is (with W_var), got "
                             f"b {'None' if b is None else 'given'}, b_var "
                             f"{'None' if b_var is None else 'given'}")
        if b_var is not None:
            b_var = as_float_array(b_var, "b_var", ndim=1, dtype=dtype, shape=(d_c,), func=f)
    elif b_var is not None:
        raise ValueError(f"{f}: b_var needs W_var (the variant projection), got W_var=None")
    return W, b, A, c, q, omega, mask, X, W_var, b_var


def convert_loss_grad(U, V, W, b, A, c, q, mask, X, users, items, beta_u, beta_i, *,
                      w=(1.0, 1.0, 1.0, 1.0), fusion: str = "attention", omega=None,
                      W_var=None, b_var=None, dtype=None,
                      n_threads: Optional[int] = None) -> ConvertGradient:
    """Loss and exact gradient of one mini-batch of the final recommender (method.md §4.2).

    ``h_inv = W (m * x) + b`` and ``h_var = W_var ((1 - m) * x) + b_var`` (``W, b`` when
    ``W_var`` is None: a shared projection); with
    ``fusion="attention"`` each item gets ``kappa_k = q . tanh(A h_k + c)`` and
    ``(a_inv, a_var) = softmax(kappa_inv, kappa_var)``; ``"global"`` uses
    ``softmax(omega)`` for every item; ``"invariant"`` uses ``h = h_inv`` (InvRL's final
    model, the same as :func:`painvrl.functional.rec_loss_grad` with ``g = mask``).
    ``s_ui = U_u . [V_i ; a_inv h_inv + a_var h_var]``, and the loss is the
    UltraGCN-weighted BCE summed over the batch (no L2 term: add it in the trainer).

    Parameters
    ----------
    U : array (n_users, d_id + d_c)
    V : array (n_items, d_id)
    W : array (d_c, D)
        Invariant projection (shared by both parts when ``W_var`` is None).
    b : array (d_c,) or None
    A : array (d_a, d_c) or None
    c, q : arrays (d_a,) or None
        Attention parameters (needed for ``fusion="attention"`` only).
    mask : array (D,)
        The fixed invariant mask, in [0, 1].
    X : array (n_items, D)
    users : int array (B,)
    items : int array (B, 1 + N)
        Column 0 is each row's positive, the rest its negatives.
    beta_u, beta_i : arrays (n_users,), (n_items,)
    w : 4 floats
    fusion : {"attention", "global", "invariant"}
    omega : array (2,), optional
        The global logits ``(omega_inv, omega_var)`` for ``fusion="global"``.
    W_var : array (d_c, D), optional
        Variant projection (None: ``W`` is shared).
    b_var : array (d_c,), optional
        Variant bias, given exactly when ``W_var`` and ``b`` are.
    dtype : float32 or float64, optional
        Compute precision; defaults to U's dtype if it is float64, else float32.
    n_threads : int, optional
        OpenMP threads (None: the library default).  Results do not depend on it.

    Returns
    -------
    ConvertGradient

    Raises
    ------
    TypeError
        Non-integer ids, a non-numeric array or weight, or a ``dtype`` other
        than float32/float64.
    ValueError
        Wrong shapes, NaN or inf, ids out of range, a mask outside [0, 1], an
        unknown ``fusion``, or a parameter the fusion needs given as None.

    Notes
    -----
    As in :func:`painvrl.functional.rec_loss_grad`, rows of a batch may repeat
    (sampled with replacement; each counts) and an empty batch has zero loss.
    """
    f = "convert_loss_grad"
    dtype = _resolve_dtype(dtype, U, f)
    U = as_float_array(U, "U", ndim=2, dtype=dtype, func=f)
    V = as_float_array(V, "V", ndim=2, dtype=dtype, func=f)
    n_users, n_items = U.shape[0], V.shape[0]
    W, b, A, c, q, omega, mask, X, W_var, b_var = _fusion_params(
        W, b, A, c, q, mask, X, fusion, omega, dtype, f, n_items, W_var=W_var, b_var=b_var)
    if U.shape[1] != V.shape[1] + W.shape[0]:
        raise ValueError(f"{f}: U must have d_id + d_c = {V.shape[1]} + {W.shape[0]} columns, "
                         f"got {U.shape[1]}")
    users = as_index_array(users, "users", high=n_users, func=f)
    items = as_index_array(items, "items", high=n_items, ndim=2, func=f)
    if items.shape[0] != users.shape[0]:
        raise ValueError(f"{f}: items must have one row per user ({users.shape[0]}), "
                         f"got {items.shape[0]}")
    if items.shape[1] < 1:
        raise ValueError(f"{f}: items must have at least one column (the positives), "
                         f"got shape {items.shape}")
    beta_u = as_float_array(beta_u, "beta_u", ndim=1, dtype=dtype, shape=(n_users,), func=f)
    beta_i = as_float_array(beta_i, "beta_i", ndim=1, dtype=dtype, shape=(n_items,), func=f)
    w = check_weights(w, "w", func=f)
    out = _core.convert_loss_grad(U, V, W, b, A, c, q, omega, mask, X, users, items, beta_u,
                                  beta_i, w=w, fusion=fusion,
                                  n_threads=resolve_threads(n_threads, func=f), W_var=W_var,
                                  b_var=b_var)
    return ConvertGradient(*out)


def convert_item_vectors(W, b, A, c, q, mask, X, *, fusion: str = "attention", omega=None,
                         W_var=None, b_var=None, items=None, dtype=None,
                         n_threads: Optional[int] = None, _func: str = "convert_item_vectors"):
    """Fused content vectors ``h_i`` and invariant weights ``a_inv`` of items.

    ``e_i = [V_i ; h_i]`` is the item vector the final recommender scores with
    ``U_u . e_i`` (e.g. for full-ranking evaluation).

    Parameters
    ----------
    W, b, A, c, q, mask, X, fusion, omega, W_var, b_var
        As in :func:`convert_loss_grad`.
    items : int array (n,), optional
        Which items (default: every row of X), in any order; an item may be
        listed more than once (its row is then repeated) and an empty list
        gives empty outputs.
    dtype : float32 or float64, optional
        Defaults to W's dtype if it is float64, else float32.

    Returns
    -------
    h : ndarray (n, d_c)
    a_inv : ndarray (n,)

    Raises
    ------
    TypeError, ValueError
        As :func:`convert_loss_grad`.
    """
    return _item_vectors(W, b, A, c, q, mask, X, fusion=fusion, omega=omega, W_var=W_var,
                         b_var=b_var, items=items, dtype=dtype, n_threads=n_threads, func=_func)


def _item_vectors(W, b, A, c, q, mask, X, *, fusion, omega=None, W_var=None, b_var=None,
                  items=None, dtype=None, n_threads=None, func: str = "convert_item_vectors",
                  trusted_X: bool = False):
    """:func:`convert_item_vectors`; ``trusted_X=True`` when X is a Dataset's features (the
    model's parameters are still checked, the feature table is not scanned again)."""
    f = func
    dtype = _resolve_dtype(dtype, W, f)
    W, b, A, c, q, omega, mask, X, W_var, b_var = _fusion_params(
        W, b, A, c, q, mask, X, fusion, omega, dtype, f, W_var=W_var, b_var=b_var,
        trusted_X=trusted_X)
    if items is not None:
        items = as_index_array(items, "items", high=X.shape[0], func=f)
    return _core.convert_items(W, b, A, c, q, omega, mask, X, items=items, fusion=fusion,
                               n_threads=resolve_threads(n_threads, func=f), W_var=W_var,
                               b_var=b_var)


def attention_weights(W, b, A, c, q, mask, X, *, fusion: str = "attention", omega=None,
                      W_var=None, b_var=None, items=None, dtype=None,
                      n_threads: Optional[int] = None) -> np.ndarray:
    """``a_inv`` of each item (``a_var = 1 - a_inv``): how much each item leans on its
    invariant representation.  Arguments as in :func:`convert_item_vectors`."""
    return convert_item_vectors(W, b, A, c, q, mask, X, fusion=fusion, omega=omega,
                                W_var=W_var, b_var=b_var, items=items, dtype=dtype,
                                n_threads=n_threads, _func="attention_weights")[1]


def mask_cancellation(mask, *, fusion: str, W, b=None, W_var=None, b_var=None, a_inv=None,
                      tol: float = SYMMETRIC_TOL) -> Optional[str]:
    """Why the convert module's item vectors cannot depend on the mask, or None.

    The mask provably cancels (method.md §4.2 erratum) when the invariant and variant
    projections are equal (``W_var`` None, or equal to ``W`` with ``b_var`` equal to
    ``b``) and either the mask is 1/2 in every column (then ``x_inv = x_var``), or every
    item's invariant weight ``a_inv`` is within ``tol`` of 1/2 (then ``h = W x / 2 + b``
    up to a gate that differs from 1/2 by at most ``tol``).  ``fusion="invariant"`` never
    reads the variant part, so its mask never cancels.

    Parameters
    ----------
    mask : array (D,)
    fusion : {"attention", "global", "invariant"}
    W, b, W_var, b_var : arrays
        The projections (``W_var=None``: shared).
    a_inv : array, optional
        The invariant weight of every item (not checked when None).
    tol : float

    Returns
    -------
    str or None
        The reason, worded for a warning.
    """
    if fusion == "invariant" or not _projections_equal(W, b, W_var, b_var):
        return None
    what = ("the projection is shared" if W_var is None else
            "the invariant and variant projections are equal")
    mask = np.asarray(mask)
    if mask.size and np.all(mask == 0.5):
        return (f"{what} and the mask is 1/2 in every column, so x_inv = x_var and "
                f"h = W x / 2 + b whatever the fusion: the final model is the backbone")
    if a_inv is not None and np.size(a_inv) and np.max(np.abs(np.asarray(a_inv) - 0.5)) <= tol:
        return (f"{what} and every item's invariant weight a_inv is within {tol:g} of 1/2 "
                f"(the fusion's symmetric point), so h = W x / 2 + b up to {tol:g}: the mask "
                f"cancels (method.md §4.2 erratum); use projection='separate' and a small "
                f"attention_l2")
    return None


def _projections_equal(W, b, W_var, b_var) -> bool:
    """The invariant and variant projections are one map (shared, or equal arrays)."""
    return W_var is None or (np.array_equal(W, W_var) and
                             (b is None or b_var is None or np.array_equal(b, b_var)))
