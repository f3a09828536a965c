"""NumPy float64 reference of the convert module's batch loss (method.md §4.2).

It projects every item the straightforward way (no distinct-item tricks), so the C
kernel is checked against the maths and not against its own shortcuts.
"""
import numpy as np

from reference import softplus


def projections_ref(W, b, mask, X, W_var=None, b_var=None):
    """h_inv = W (m x) + b and h_var = W_var ((1 - m) x) + b_var (W, b when W_var is None)."""
    W, X, m = (np.asarray(a, np.float64) for a in (W, X, mask))
    bias = np.zeros(W.shape[0]) if b is None else np.asarray(b, np.float64)
    Wv = W if W_var is None else np.asarray(W_var, np.float64)
    bias_v = bias if W_var is None or b_var is None else np.asarray(b_var, np.float64)
    return (X * m) @ W.T + bias, (X * (1.0 - m)) @ Wv.T + bias_v


def convert_items_ref(W, b, A, c, q, mask, X, fusion="attention", omega=None, W_var=None,
                      b_var=None):
    """h (n_items, d_c) and a_inv (n_items,) of every item."""
    X = np.asarray(X, np.float64)
    h_inv, h_var = projections_ref(W, b, mask, X, W_var, b_var)
    if fusion == "invariant":
        return h_inv, np.ones(X.shape[0])
    if fusion == "global":
        om = np.asarray(omega, np.float64)
        e = np.exp(om - om.max())
        a = np.full(X.shape[0], e[0] / e.sum())
    else:
        A, c, q = (np.asarray(t, np.float64) for t in (A, c, q))
        k_inv = np.tanh(h_inv @ A.T + c) @ q
        k_var = np.tanh(h_var @ A.T + c) @ q
        kk = np.stack([k_inv, k_var], axis=1)
        e = np.exp(kk - kk.max(axis=1, keepdims=True))
        a = e[:, 0] / e.sum(axis=1)
    return a[:, None] * h_inv + (1.0 - a)[:, None] * h_var, a


def convert_loss_ref(U, V, W, b, A, c, q, mask, X, users, items, beta_u, beta_i,
                     w=(1, 1, 1, 1), fusion="attention", omega=None, W_var=None, b_var=None):
    """The UltraGCN-weighted BCE of one batch with e_i = [V_i ; h_i]."""
    U, V = np.asarray(U, np.float64), np.asarray(V, np.float64)
    H, _ = convert_items_ref(W, b, A, c, q, mask, X, fusion, omega, W_var, b_var)
    E = np.concatenate([V, H], axis=1)
    s = np.einsum("bk,bck->bc", U[users], E[items])
    bu = np.asarray(beta_u, np.float64)[users][:, None]
    bi = np.asarray(beta_i, np.float64)[items]
    n_neg = items.shape[1] - 1
    loss = np.sum((w[0] + w[1] * bu[:, 0] * bi[:, 0]) * softplus(-s[:, 0]))
    if n_neg:
        loss += np.sum((w[2] + w[3] * bu * bi[:, 1:]) / n_neg * softplus(s[:, 1:]))
    return loss
