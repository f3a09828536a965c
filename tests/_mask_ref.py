"""Plain NumPy float64 reference of the mask step (method.md §3.3) for the tests.

The straightforward algorithm: every pair's item is projected through W (no
user-side regrouping), G_e is the closed-form first derivative of §3.4, and
L_IRM is built from it.  Gradients of the C kernel are checked against central
finite differences of these functions.
"""
import numpy as np


def softplus(x):
    return np.logaddexp(0.0, x)


def sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def gates(mu, eps, sigma):
    return np.clip(mu[None, :] + sigma * eps + 0.5, 0.0, 1.0)


def env_loss_and_grad(U, V, X, W, z, users, items, beta_u, beta_i, w, wd2):
    """L_e and G_e = dL_e/dW for one environment batch (float64)."""
    d_id = V.shape[1]
    n1 = items.shape[1]
    n_neg = n1 - 1
    uid, p = U[users, :d_id], U[users, d_id:]                 # (B, d_id), (B, d_c)
    q = z[None, None, :] * X[items]                            # (B, n1, D)
    s = np.einsum("bk,bck->bc", uid, V[items]) + np.einsum("bk,kd,bcd->bc", p, W, q)
    bb = beta_u[users][:, None] * beta_i[items]                # (B, n1)
    omega = np.empty_like(s)
    omega[:, 0] = w[0] + w[1] * bb[:, 0]
    if n_neg:
        omega[:, 1:] = (w[2] + w[3] * bb[:, 1:]) / n_neg
    y = np.zeros_like(s)
    y[:, 0] = 1.0
    loss = np.sum(omega[:, 0] * softplus(-s[:, 0])) + np.sum(omega[:, 1:] * softplus(s[:, 1:]))
    loss += wd2 * np.sum(W * W)
    r = omega * (sigmoid(s) - y)
    G = np.einsum("bc,bk,bcd->kd", r, p, q) + 2.0 * wd2 * W
    return loss, G


def step_losses(U, V, X, W, mu, eps, users, items, beta_u, beta_i, sigma, w, wd2):
    """(L_e per environment, L_ERM, L_IRM, L_reg) in float64."""
    args = [np.asarray(a, np.float64) for a in (U, V, X, W, mu, eps)]
    U, V, X, W, mu, eps = args
    beta_u = np.asarray(beta_u, np.float64)
    beta_i = np.asarray(beta_i, np.float64)
    z = gates(mu, eps, sigma)
    E = eps.shape[0]
    Ls, Gs = [], []
    for e in range(E):
        L, G = env_loss_and_grad(U, V, X, W, z[e], users[e], items[e], beta_u, beta_i, w, wd2)
        Ls.append(L)
        Gs.append(G)
    Gs = np.array(Gs)
    Gbar = Gs.mean(axis=0)
    P = np.sum((Gs - Gbar) ** 2, axis=0)
    irm = np.sum((P * (mu + 0.5)[None, :]) ** 2)
    return np.array(Ls), float(np.mean(Ls)), float(irm), float(np.sum(mu * mu))


def theta_of(W, mu):
    return np.concatenate([np.ravel(W), mu])


def split_theta(theta, d_c, D):
    return theta[: d_c * D].reshape(d_c, D), theta[d_c * D:]


def fd_gradients(U, V, X, W, mu, eps, users, items, beta_u, beta_i, sigma, w, wd2, h=1e-6,
                 side=None):
    """Finite differences of (L_ERM, L_IRM) over theta = [vec(W); mu].

    side: optional int array over theta: 0 central, -1 backward (f(x) - f(x - h)) / h,
    +1 forward (f(x + h) - f(x)) / h (for gates sitting on a clamp boundary).
    """
    d_c, D = np.shape(W)
    theta0 = theta_of(np.asarray(W, np.float64), np.asarray(mu, np.float64))

    def f(theta):
        Wt, mut = split_theta(theta, d_c, D)
        _, erm, irm, _ = step_losses(U, V, X, Wt, mut, eps, users, items, beta_u, beta_i,
                                     sigma, w, wd2)
        return np.array([erm, irm])

    side = np.zeros(theta0.size, int) if side is None else np.asarray(side)
    f0 = f(theta0) if np.any(side != 0) else None
    g = np.zeros((2, theta0.size))
    for k in range(theta0.size):
        tp, tm = theta0.copy(), theta0.copy()
        tp[k] += h
        tm[k] -= h
        if side[k] < 0:
            g[:, k] = (f0 - f(tm)) / h
        elif side[k] > 0:
            g[:, k] = (f(tp) - f0) / h
        else:
            g[:, k] = (f(tp) - f(tm)) / (2 * h)
    return g[0], g[1]


def random_problem(rng, *, E=3, B=4, n_neg=3, D=7, d_c=5, d_id=3, n_users=11, n_items=13,
                   scale=0.6):
    """A small random mask-step problem (float64)."""
    U = rng.normal(0, scale, (n_users, d_id + d_c))
    V = rng.normal(0, scale, (n_items, d_id))
    X = rng.normal(0, scale, (n_items, D))
    W = rng.normal(0, scale, (d_c, D))
    mu = rng.normal(0, 0.1, D)
    eps = rng.normal(0, 1, (E, D))
    users = rng.integers(0, n_users, (E, B))
    items = rng.integers(0, n_items, (E, B, 1 + n_neg))
    beta_u = rng.uniform(0.2, 1.5, n_users)
    beta_i = rng.uniform(0.2, 1.0, n_items)
    return dict(U=U, V=V, X=X, W=W, mu=mu, eps=eps, users=users, items=items,
                beta_u=beta_u, beta_i=beta_i)
