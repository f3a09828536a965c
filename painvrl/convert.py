"""The convert module of PaInvRL's final recommender (method.md §4.2), over the C core.

``x_inv = m * x`` and ``x_var = (1 - m) * x`` go through one shared projection,
``h_k = W x_k + b``; an attention (or two global logits, or nothing) fuses them,
``h = a_inv h_inv + a_var h_var``, and the item vector is ``e_i = [V_i ; h_i]``.

Cost: ``fusion="attention"`` projects the batch's distinct items (two GEMMs of
n_distinct x D x 2 d_c per batch); ``"global"`` and ``"invariant"`` are linear in x,
``h = W (g * x) + b`` with ``g = a_inv m + a_var (1 - m)``, and run the backbone
kernel of :func:`painvrl.functional.rec_loss_grad` with that gate (no projection).
Results do not depend on the thread count.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np

from . import _core
from ._validation import as_float_array, as_index_array, check_choice, resolve_threads

__all__ = ["ConvertGradient", "attention_weights", "convert_item_vectors", "convert_loss_grad"]

FUSIONS = ("attention", "global", "invariant")


class ConvertGradient(NamedTuple):
    """Loss and exact gradients of one batch of the final recommender (method.md §4.2).

    Gradients of parameters the fusion does not use are None (``dA``, ``dc``, ``dq``
    unless ``fusion="attention"``, ``domega`` unless ``"global"``, ``db`` without ``b``).
    ``attention`` is ``a_inv`` of each (row, item) pair of the batch, shaped like ``items``.
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


def _resolve_dtype(dtype, like):
    if dtype is None:
        dtype = np.float64 if np.asarray(like).dtype == np.float64 else np.float32
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


def _fusion_params(W, b, A, c, q, mask, X, fusion, omega, dtype, n_items=None):
    """Checked (W, b, A, c, q, omega, mask, X) for the C core."""
    check_choice(fusion, "fusion", FUSIONS)
    W = as_float_array(W, "W", ndim=2, dtype=dtype)
    d_c, D = W.shape
    X = as_float_array(X, "X", ndim=2, dtype=dtype, shape=(n_items, D))
    mask = as_float_array(mask, "mask", ndim=1, dtype=dtype, shape=(D,))
    b = None if b is None else as_float_array(b, "b", ndim=1, dtype=dtype, shape=(d_c,))
    if fusion == "attention":
        for name, val in (("A", A), ("c", c), ("q", q)):
            if val is None:
                raise ValueError(f"fusion='attention' needs {name}")
        A = as_float_array(A, "A", ndim=2, dtype=dtype, shape=(None, d_c))
        c = as_float_array(c, "c", ndim=1, dtype=dtype, shape=(A.shape[0],))
        q = as_float_array(q, "q", ndim=1, dtype=dtype, shape=(A.shape[0],))
    else:
        A = c = q = None
    if fusion == "global":
        if omega is None:
            raise ValueError("fusion='global' needs omega (the two logits)")
        omega = as_float_array(omega, "omega", ndim=1, dtype=dtype, shape=(2,))
    else:
        omega = None
    return W, b, A, c, q, omega, mask, X


def convert_loss_grad(U, V, W, b, A, c, q, mask, X, users, items, beta_u, beta_i, *,
                      w=(1.0, 1.0, 1.0, 1.0), fusion: str = "attention", omega=None,
                      dtype=None, n_threads: Optional[int] = None) -> ConvertGradient:
    """Loss and exact gradient of one mini-batch of the final recommender (method.md §4.2).

    ``h_inv = W (m * x) + b`` and ``h_var = W ((1 - m) * x) + b``; with
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
        Shared projection.
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
    dtype : float32 or float64, optional
        Compute precision; defaults to U's dtype if it is float64, else float32.
    n_threads : int, optional
        OpenMP threads (None: the library default).  Results do not depend on it.

    Returns
    -------
    ConvertGradient
    """
    dtype = _resolve_dtype(dtype, U)
    U = as_float_array(U, "U", ndim=2, dtype=dtype)
    V = as_float_array(V, "V", ndim=2, dtype=dtype)
    n_users, n_items = U.shape[0], V.shape[0]
    W, b, A, c, q, omega, mask, X = _fusion_params(W, b, A, c, q, mask, X, fusion, omega,
                                                   dtype, n_items)
    if U.shape[1] != V.shape[1] + W.shape[0]:
        raise ValueError(f"U must have d_id + d_c = {V.shape[1]} + {W.shape[0]} columns, "
                         f"got {U.shape[1]}")
    users = as_index_array(users, "users", high=n_users)
    items = as_index_array(items, "items", high=n_items, ndim=2)
    if items.shape[0] != users.shape[0]:
        raise ValueError(f"items must have one row per user ({users.shape[0]}), "
                         f"got {items.shape[0]}")
    if items.shape[1] < 1:
        raise ValueError("items needs at least one column (the positives)")
    beta_u = as_float_array(beta_u, "beta_u", ndim=1, dtype=dtype, shape=(n_users,))
    beta_i = as_float_array(beta_i, "beta_i", ndim=1, dtype=dtype, shape=(n_items,))
    w = tuple(float(v) for v in w)
    if len(w) != 4:
        raise ValueError(f"w must hold 4 weights w1..w4, got {len(w)}")
    out = _core.convert_loss_grad(U, V, W, b, A, c, q, omega, mask, X, users, items, beta_u,
                                  beta_i, w=w, fusion=fusion,
                                  n_threads=resolve_threads(n_threads))
    return ConvertGradient(*out)


def convert_item_vectors(W, b, A, c, q, mask, X, *, fusion: str = "attention", omega=None,
                         items=None, dtype=None, n_threads: Optional[int] = None):
    """Fused content vectors ``h_i`` and invariant weights ``a_inv`` of items.

    ``e_i = [V_i ; h_i]`` is the item vector the final recommender scores with
    ``U_u . e_i`` (e.g. for full-ranking evaluation).

    Parameters
    ----------
    W, b, A, c, q, mask, X, fusion, omega
        As in :func:`convert_loss_grad`.
    items : int array (n,), optional
        Which items (default: every row of X).
    dtype : float32 or float64, optional
        Defaults to W's dtype if it is float64, else float32.

    Returns
    -------
    h : ndarray (n, d_c)
    a_inv : ndarray (n,)
    """
    dtype = _resolve_dtype(dtype, W)
    W, b, A, c, q, omega, mask, X = _fusion_params(W, b, A, c, q, mask, X, fusion, omega, dtype)
    if items is not None:
        items = as_index_array(items, "items", high=X.shape[0])
    return _core.convert_items(W, b, A, c, q, omega, mask, X, items=items, fusion=fusion,
                               n_threads=resolve_threads(n_threads))


def attention_weights(W, b, A, c, q, mask, X, *, fusion: str = "attention", omega=None,
                      items=None, dtype=None, n_threads: Optional[int] = None) -> np.ndarray:
    """``a_inv`` of each item (``a_var = 1 - a_inv``): how much each item leans on its
    invariant representation.  Arguments as in :func:`convert_item_vectors`."""
    return convert_item_vectors(W, b, A, c, q, mask, X, fusion=fusion, omega=omega,
                                items=items, dtype=dtype, n_threads=n_threads)[1]
