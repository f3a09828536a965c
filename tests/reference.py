"""Plain NumPy float64 references for the C kernels (bottleneck's ``slow`` idea)."""
import numpy as np


def softplus(x):
    return np.logaddexp(0.0, x)


def sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def rec_loss(U, V, W, b, g, X, users, items, beta_u, beta_i, w=(1, 1, 1, 1),
             reg="none", wd1=0.0, wdi=1.0, wd2=0.0):
    """Backbone batch loss (method.md §1), projecting every item as the reference code does."""
    U, V, W, X = (np.asarray(a, dtype=np.float64) for a in (U, V, W, X))
    gate = np.ones(X.shape[1]) if g is None else np.asarray(g, np.float64)
    bias = np.zeros(W.shape[0]) if b is None else np.asarray(b, np.float64)
    E = np.concatenate([V, (X * gate) @ W.T + bias], axis=1)    # all items projected
    s = np.einsum("bk,bck->bc", U[users], E[items])
    bu = np.asarray(beta_u, np.float64)[users][:, None]
    bi = np.asarray(beta_i, np.float64)[items]
    n_neg = items.shape[1] - 1
    loss = np.sum((w[0] + w[1] * bu[:, 0] * bi[:, 0]) * softplus(-s[:, 0]))
    if n_neg:
        loss += np.sum((w[2] + w[3] * bu * bi[:, 1:]) / n_neg * softplus(s[:, 1:]))
    if reg == "full":
        loss += wd1 * (np.sum(U**2) + wdi * np.sum(V**2)) + wd2 * (np.sum(W**2) + np.sum(bias**2))
    elif reg == "batch":
        uu, ii = np.unique(users), np.unique(items)
        loss += wd1 * (np.sum(U[uu] ** 2) + wdi * np.sum(V[ii] ** 2)) + wd2 * (
            np.sum(W**2) + np.sum(bias**2))
    return loss


def rec_grad(U, V, W, b, g, X, users, items, beta_u, beta_i, w=(1, 1, 1, 1)):
    """Analytic gradient of :func:`rec_loss` without L2 (float64, scatter with np.add.at)."""
    U, V, W, X = (np.asarray(a, dtype=np.float64) for a in (U, V, W, X))
    d_id = V.shape[1]
    gate = np.ones(X.shape[1]) if g is None else np.asarray(g, np.float64)
    bias = np.zeros(W.shape[0]) if b is None else np.asarray(b, np.float64)
    E = np.concatenate([V, (X * gate) @ W.T + bias], axis=1)
    s = np.einsum("bk,bck->bc", U[users], E[items])
    bu = np.asarray(beta_u, np.float64)[users][:, None]
    bi = np.asarray(beta_i, np.float64)[items]
    n_neg = items.shape[1] - 1
    wt = np.empty_like(s)
    wt[:, 0] = w[0] + w[1] * bu[:, 0] * bi[:, 0]
    if n_neg:
        wt[:, 1:] = (w[2] + w[3] * bu * bi[:, 1:]) / n_neg
    y = np.zeros_like(s)
    y[:, 0] = 1
    r = wt * (sigmoid(s) - y)
    dU = np.zeros_like(U)
    np.add.at(dU, users, np.einsum("bc,bck->bk", r, E[items]))
    dE = np.zeros_like(E)
    np.add.at(dE, items.ravel(), (r[:, :, None] * U[users][:, None, :]).reshape(-1, E.shape[1]))
    dV = dE[:, :d_id]
    dH = dE[:, d_id:]
    dW = dH.T @ (X * gate)
    db = dH.sum(axis=0)
    dg = np.sum((dH @ W) * X, axis=0)
    return dU, dV, dW, db, dg


def adam(p, grad, m, v, t, lr, b1=0.9, b2=0.999, eps=1e-8):
    """torch.optim.Adam's update, in place, float64."""
    m *= b1
    m += (1 - b1) * grad
    v *= b2
    v += (1 - b2) * grad * grad
    step = lr / (1 - b1**t)
    p -= step * m / (np.sqrt(v) / np.sqrt(1 - b2**t) + eps)


def adagrad(p, grad, s, lr, eps=1e-10):
    """torch.optim.Adagrad's update, in place, float64."""
    s += grad * grad
    p -= lr * grad / (np.sqrt(s) + eps)


def finite_difference(f, x, h=1e-6):
    """Central differences of the scalar f() with respect to every entry of x (in place)."""
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + h
        up = f()
        x[idx] = old - h
        down = f()
        x[idx] = old
        grad[idx] = (up - down) / (2 * h)
    return grad
