"""Invariant-mask learning (PaInvRL module ii; method.md §3).

The mask step of InvRL with hand-derived gradients (no autograd) and the
PaInvRL weighting of the ERM and IRM objectives, computed by the C core.

Provenance of each piece (method.md §0 tags):

* [InvRL-code] the model of the mask step (frozen ``U``, ``V``; trainable
  projection ``W`` without bias and gate parameters ``mu``; stochastic gates
  ``z = clamp(mu + sigma * eps + 0.5, 0, 1)``), the UltraGCN-weighted BCE
  loss, ``L_ERM``, the gate-weighted gradient-variance penalty ``L_IRM``,
  ``L_reg = sum(mu**2)``, the optimiser (Adam, lr 1e-3 on ``W`` and ``mu``)
  and ``weighting="fixed"`` (``L_ERM + alpha L_IRM + lam L_reg``).
* [inferred] ``weighting="mgda"`` (the default: two-objective MGDA min-norm
  weight over ``theta = (W, mu)`` each step, Sener & Koltun's closed form),
  its normalisation options, and ``weighting="pair"`` (PAIR's EPO linear
  program with a preference vector).  The PaInvRL paper's full text could not
  be read; these are reconstructions of "adaptively weighted IRM and ERM
  losses ... Pareto-optimal" (method.md §3.5, §8 rows 1-3).
* Library rules (method.md §10.2, §10.7): every step draws a full batch from
  every non-empty environment (samplers restart when exhausted), an epoch is
  ``ceil(max_e |D_e| / batch_size)`` steps, environments with no pairs take no
  part, and reported losses exclude the constant regularisers of the frozen
  tables.

The parameter vector is ``theta = [W.ravel() (row-major, d_c x D); mu]``.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from .. import _core
from .._util.validation import (as_float_array, as_index_array, check_choice, check_distinct_pairs,
                                check_dtype, check_int, check_real, check_seed, check_weights,
                                resolve_threads)
from ..models.functional import _loss_weights, loss_weights

__all__ = [
    "MaskStep",
    "MaskResult",
    "mask_step",
    "mask_step_workspace",
    "learn_mask",
    "mgda_weight",
    "pair_weight",
    "ultragcn_betas",
]

_WEIGHTING = {"mgda": 0, "fixed": 1, "pair": 2}
_NORMALIZE = {None: 0, "none": 0, "loss": 1, "l2": 2}
_APPLY = {"normalized": 0, "raw": 1}
_SCOPE = ("all", "mu")
_PAIR_MOVES = {0: None, 1: "balance", 2: "descent", 3: "infeasible"}
# preference=None: plain MGDA (the vectors unscaled), PAIR's own default r (its code's),
# and anything for "fixed", which ignores it.
DEFAULT_PREFERENCE = {"mgda": (0.5, 0.5), "pair": (1e-8, 1 - 1e-8), "fixed": (0.5, 0.5)}


# --------------------------------------------------------------------------- validation
def _float_array(x, name: str, dtype, ndim: int, func: str) -> np.ndarray:
    return as_float_array(x, name, ndim=ndim, dtype=dtype, func=func)


def _id_array(x, name: str, ndim: Optional[int], high: int, func: str) -> np.ndarray:
    return as_index_array(x, name, high=high, ndim=ndim, func=func)


def _weighting_args(weighting, normalize, mgda_apply, grad_scope, alpha, preference,
                    pair_eps, *, func: str, d_c: Optional[int] = None,
                    D: Optional[int] = None, eps_name: str = "pair_eps") -> dict:
    check_choice(weighting, "weighting", tuple(_WEIGHTING), func=func)
    check_choice(normalize, "normalize", tuple(_NORMALIZE), func=func)
    check_choice(mgda_apply, "mgda_apply", tuple(_APPLY), func=func)
    check_choice(grad_scope, "grad_scope", _SCOPE, func=func)
    if preference is None:
        preference = DEFAULT_PREFERENCE[weighting]
    r0, r1 = check_weights(preference, "preference", n=2, minimum=0.0, func=func)
    if r0 + r1 <= 0.0:
        raise ValueError(f"{func}: preference must not be all zeros, got {(r0, r1)}")
    if weighting == "mgda" and min(r0, r1) <= 0.0:
        raise ValueError(f"{func}: with weighting='mgda' both preference entries must be > 0 "
                         f"(the vectors are divided by them), got {(r0, r1)}")
    scope = 0 if grad_scope == "all" or d_c is None else d_c * D
    return dict(weighting=_WEIGHTING[weighting], normalize=_NORMALIZE[normalize],
                apply_raw=bool(_APPLY[mgda_apply]), scope_offset=scope,
                alpha=check_real(alpha, "alpha", minimum=0.0, func=func), pref_erm=r0,
                pref_irm=r1, pair_eps=check_real(pair_eps, eps_name, minimum=0.0, func=func))


def _pair_vectors(a, b, func: str) -> Tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a)
    dtype = np.float32 if a.dtype == np.float32 else np.float64
    a = _float_array(a, "a", dtype, 1, func)
    b = _float_array(b, "b", dtype, 1, func)
    if a.shape != b.shape:
        raise ValueError(f"{func}: a and b must have the same shape, got {a.shape} and {b.shape}")
    return a, b


# --------------------------------------------------------------------------- weighting
def mgda_weight(a, b, normalize: Optional[str] = None, *,
                losses: Optional[Sequence[float]] = None,
                preference: Sequence[float] = (0.5, 0.5)) -> float:
    """Two-objective MGDA weight on the ERM gradient [inferred, method.md §3.5].

    The weight ``gamma`` of the min-norm point ``gamma a + (1 - gamma) b`` of the
    segment between ``a`` and ``b``, by Sener & Koltun's two-vector rule
    (``min_norm_solvers._min_norm_element_from2``): 0.999 if ``a.b >= a.a``,
    0.001 if ``a.b >= b.b``, else ``(b.b - a.b) / (a.a + b.b - 2 a.b)``
    (interior values are not clipped).  Gram products are taken in float64.

    Parameters
    ----------
    a, b : array_like, shape (n,)
        Gradients of ``L_ERM`` and ``L_IRM`` (float32 or float64).
    normalize : {None, "loss", "l2"}
        ``"loss"`` divides ``a`` by ``L_ERM`` and ``b`` by ``L_IRM`` first (a zero
        loss leaves its vector unscaled); ``"l2"`` uses unit vectors, which makes
        ``gamma`` 0.5 whenever ``a`` and ``b`` differ in direction.
    losses : (L_ERM, L_IRM), optional
        Required when ``normalize="loss"``.
    preference : (r_ERM, r_IRM), both > 0
        [inferred] After normalisation the vectors are divided by ``2 r_ERM`` and
        ``2 r_IRM`` (``r`` rescaled to sum to 1).  The min-norm point leans toward the
        shorter vector, so a larger share moves it toward that objective; (0.5, 0.5)
        is plain MGDA.  Sweeping it traces the ERM/IRM front
        (:func:`painvrl.pareto_front`).

    Returns
    -------
    float
        ``gamma``, the weight on ``a`` (of the normalised, preference-scaled vectors).
    """
    a, b = _pair_vectors(a, b, "mgda_weight")
    args = _weighting_args("mgda", normalize, "normalized", "all", 1.0, preference, 1e-4,
                           func="mgda_weight")
    if normalize == "loss" and losses is None:
        raise ValueError("mgda_weight: losses = (L_ERM, L_IRM) is required when "
                         "normalize='loss', got None")
    l_erm, l_irm = (0.0, 0.0) if losses is None else _two_losses(losses, "mgda_weight")
    gamma, _, _, _ = _core.mask_weigh(a, b, l_erm, l_irm, **args)
    return gamma


def _two_losses(losses, func: str) -> Tuple[float, float]:
    """(L_ERM, L_IRM): two finite non-negative numbers."""
    return check_weights(losses, "losses", n=2, minimum=0.0, func=func)


def pair_weight(a, b, losses: Sequence[float], preference: Sequence[float] = (1e-8, 1 - 1e-8),
                eps: float = 1e-4, *, return_move: bool = False):
    """PAIR/EPO weight on the ERM objective [inferred, method.md §3.5].

    PAIR's EPO linear program (``LFhase/PAIR``, ``PAIR/pair.py``) for two
    objectives, solved exactly as a 1-D LP in ``alpha_ERM`` in [0, 1].  With
    ``r`` the normalised preference, ``l_hat = r l / sum(r l)``,
    ``mu_r = sum l_hat log(2 l_hat)`` and ``adj = r (log(2 l_hat) - mu_r)``,
    ``C`` the 2x2 Gram matrix of (a, b):

    * ``mu_r > eps`` (balance): maximise ``alpha.C adj`` subject to
      ``(C alpha)_j >= 0`` for ``j = argmax r l`` and ``(C alpha)_j >= (C adj)_j``
      for the other ``j`` with ``(C adj)_j <= 0``;
    * else (descent): maximise ``sum(C alpha)`` subject to ``C alpha >= 0`` and
      ``alpha.C adj >= min(max(C adj), 0)``.

    An infeasible LP returns the normalised preference, as PAIR's optimiser does
    when its solver fails.  Ties (a flat objective) take the feasible point
    nearest the preference.  ``l_hat = 0`` is floored at the smallest normal
    double inside the logarithm.

    Parameters
    ----------
    a, b : array_like, shape (n,)
        Gradients of ``L_ERM`` and ``L_IRM``.
    losses : (L_ERM, L_IRM)
        Non-negative loss values.
    preference : (r_ERM, r_IRM)
        Non-negative, not both zero; PAIR's default is ``(1e-8, 1 - 1e-8)``.
    eps : float
        Threshold on ``mu_r`` between the balance and descent steps.
    return_move : bool
        Also return ``"balance"``, ``"descent"`` or ``"infeasible"``.

    Returns
    -------
    float or (float, str)
        ``alpha_ERM`` (the IRM weight is ``1 - alpha_ERM``).
    """
    a, b = _pair_vectors(a, b, "pair_weight")
    l_erm, l_irm = _two_losses(losses, "pair_weight")
    args = _weighting_args("pair", None, "normalized", "all", 1.0, preference, eps,
                           func="pair_weight", eps_name="eps")
    alpha, _, _, move = _core.mask_weigh(a, b, l_erm, l_irm, **args)
    return (alpha, _PAIR_MOVES[move]) if return_move else alpha


# --------------------------------------------------------------------------- one step
@dataclass(frozen=True)
class MaskStep:
    """Losses, gradients and weighting of one mask step.

    Attributes
    ----------
    loss_env : ndarray of float64, shape (E,)
        ``L_e`` per environment (recommendation loss + ``wd2 ||W||^2``).
    erm_loss, irm_loss, reg_loss : float
        ``L_ERM = mean_e L_e``, ``L_IRM``, ``L_reg = sum(mu**2)``.
    grad_erm, grad_irm : ndarray, shape (d_c * D + D,)
        ``a`` and ``b``: gradients of ``L_ERM`` and ``L_IRM`` over ``theta``.
    gamma : float
        The weight reported for the step (see :func:`mask_step`).
    w_erm, w_irm : float
        Coefficients of ``a`` and ``b`` in ``direction``.
    direction : ndarray, shape (d_c * D + D,)
        ``w_erm a + w_irm b + lam * grad L_reg``: what the optimiser receives.
    pair_move : str or None
        For ``weighting="pair"``: ``"balance"``, ``"descent"`` or ``"infeasible"``.
    d_c, D : int
    """

    loss_env: np.ndarray
    erm_loss: float
    irm_loss: float
    reg_loss: float
    grad_erm: np.ndarray
    grad_irm: np.ndarray
    gamma: float
    w_erm: float
    w_irm: float
    direction: np.ndarray
    pair_move: Optional[str]
    d_c: int
    D: int

    def split(self, theta: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Split a theta-shaped vector into its ``W`` (d_c, D) and ``mu`` (D,) parts."""
        k = self.d_c * self.D
        return theta[:k].reshape(self.d_c, self.D), theta[k:]


def mask_step(U, V, X, W, mu, eps, users, items, beta_u, beta_i, *, sigma: float = 0.01,
              w: Sequence[float] = (1.0, 1.0, 1.0, 1.0), wd2: float = 0.01, lam: float = 0.1,
              weighting: str = "mgda", normalize: Optional[str] = None,
              mgda_apply: str = "normalized", grad_scope: str = "all", alpha: float = 1.0,
              preference: Optional[Sequence[float]] = None, pair_eps: float = 1e-4,
              dtype=None, n_threads: Optional[int] = None,
              workspace: Optional[np.ndarray] = None) -> MaskStep:
    """One mask step: losses, both gradient vectors and the ERM/IRM weighting.

    For researchers who want to check the closed-form gradients of method.md §3.4
    or the weighting rules of §3.5 on their own batches.  [InvRL-code] losses;
    gradients derived by hand from them (checked against finite differences);
    [inferred] ``mgda`` and ``pair`` weighting.

    Parameters
    ----------
    U : array_like, shape (n_users, d_id + d_c)
        Frozen user table ``[U_id ; U_c]``.
    V : array_like, shape (n_items, d_id)
        Frozen item-id table.
    X : array_like, shape (n_items, D)
        Item features.
    W : array_like, shape (d_c, D)
        Content projection (no bias in the mask step).
    mu : array_like, shape (D,)
        Gate parameters.
    eps : array_like, shape (E, D)
        Gate noise per environment: ``z_e = clamp(mu + sigma * eps[e] + 0.5, 0, 1)``.
    users : array_like of int, shape (E, B)
    items : array_like of int, shape (E, B, 1 + n_neg)
        Column 0 holds the positive item of each row, the others its negatives.
    beta_u : array_like, shape (n_users,)
    beta_i : array_like, shape (n_items,)
        Loss-weight factors (see :func:`ultragcn_betas`).
    sigma : float
        Gate noise scale (InvRL: 0.01).
    w : (w1, w2, w3, w4)
        ``w+ = w1 + w2 beta_u beta_i`` on the positive and
        ``(w3 + w4 beta_u beta_j) / n_neg`` on each negative.
    wd2 : float
        ``R = wd2 ||W||^2`` inside every ``L_e`` (InvRL: 0.01).
    lam : float
        Weight of ``L_reg`` in ``direction``.
    weighting : {"mgda", "fixed", "pair"}
        ``mgda`` [inferred]: ``gamma`` by the min-norm rule (see :func:`mgda_weight`),
        direction ``gamma a' + (1 - gamma) b'`` with ``a', b'`` the (normalised)
        vectors.  ``fixed`` [InvRL-code]: ``a + alpha b``; ``gamma`` reports the
        ERM share ``1 / (1 + alpha)``.  ``pair`` [inferred]: ``alpha_ERM`` from
        :func:`pair_weight`, direction ``alpha_ERM a + (1 - alpha_ERM) b``.
    normalize : {None, "loss", "l2"}
        MGDA gradient normalisation (method.md §8 row 2).
    mgda_apply : {"normalized", "raw"}
        ``"normalized"`` (method.md §3.5): the direction combines the normalised
        vectors; ``"raw"`` (Sener & Koltun's training script): ``gamma`` weights the
        raw gradients.  Identical when ``normalize`` is None.
    grad_scope : {"all", "mu"}
        Gram products over all of ``theta`` or over ``mu`` only (method.md §8 row 3).
        ``"mu"`` is our MGDA-UB: the min-norm rule on the gradients with respect to
        the gate, the one representation both objectives share (the projection ``W``
        is refitted per outer iteration) [inferred].
    alpha : float
        IRM weight of ``weighting="fixed"``.
    preference : (r_ERM, r_IRM), optional
        ``mgda``: see :func:`mgda_weight` (default (0.5, 0.5), plain MGDA);
        ``pair``: see :func:`pair_weight` (default PAIR's ``(1e-8, 1 - 1e-8)``).
    pair_eps
        See :func:`pair_weight`.
    dtype : {None, numpy.float32, numpy.float64}
        Precision of the computation; None takes ``W``'s dtype if it is float32,
        else float64.
    n_threads : int, optional
        Threads of the C kernel (default: OpenMP's default).  Results do not
        depend on it.
    workspace : ndarray of uint8, optional
        From :func:`mask_step_workspace` with the same sizes, dtype and
        ``n_threads``; reusing it across calls saves allocating (and page-faulting)
        the kernel's scratch memory every step.

    Returns
    -------
    MaskStep

    Raises
    ------
    TypeError
        Non-integer ids, a non-numeric array or hyperparameter, a dtype other
        than float32/float64, or a workspace that is not uint8.
    ValueError
        Wrong shapes (including ``E = 0`` or ``B = 0``), NaN or inf, ids out of
        range, an unknown option, or a workspace of the wrong size.

    Notes
    -----
    ``users``/``items`` are one sampled batch per environment: the same
    (user, item) row may appear more than once (the reference's samplers draw
    with replacement), and each occurrence counts.
    """
    f = "mask_step"
    if dtype is None:
        dtype = np.float32 if np.asarray(W).dtype == np.float32 else np.float64
    dtype = check_dtype(dtype, func=f)
    V = _float_array(V, "V", dtype, 2, f)
    W = _float_array(W, "W", dtype, 2, f)
    U = _float_array(U, "U", dtype, 2, f)
    X = _float_array(X, "X", dtype, 2, f)
    mu = _float_array(mu, "mu", dtype, 1, f)
    eps = _float_array(eps, "eps", dtype, 2, f)
    n_items, d_id = V.shape
    d_c, D = W.shape
    if d_c < 1 or D < 1:
        raise ValueError(f"{f}: W must have shape (d_c >= 1, D >= 1), got {W.shape}")
    if U.shape[1] != d_id + d_c:
        raise ValueError(f"{f}: U must have d_id + d_c = {d_id} + {d_c} columns "
                         f"(from V and W), got {U.shape[1]}")
    n_users = U.shape[0]
    if X.shape != (n_items, D):
        raise ValueError(f"{f}: X must have shape (n_items, D) = {(n_items, D)}, got {X.shape}")
    if mu.shape != (D,):
        raise ValueError(f"{f}: mu must have shape ({D},), got {mu.shape}")
    if eps.shape[1] != D or eps.shape[0] < 1:
        raise ValueError(f"{f}: eps must have shape (E >= 1, {D}), got {eps.shape}")
    E = eps.shape[0]
    users = _id_array(users, "users", 2, n_users, f)
    items = _id_array(items, "items", 3, n_items, f)
    if users.shape[0] != E or users.shape[1] < 1:
        raise ValueError(f"{f}: users must have shape (E, B) = ({E}, B >= 1) to match eps, "
                         f"got {users.shape}")
    if items.shape[:2] != users.shape or items.shape[2] < 1:
        raise ValueError(f"{f}: items must have shape (E, B, 1 + n_neg) = "
                         f"{users.shape + ('>=1',)}, got {items.shape}")
    beta_u = _float_array(beta_u, "beta_u", dtype, 1, f)
    beta_i = _float_array(beta_i, "beta_i", dtype, 1, f)
    if beta_u.shape != (n_users,):
        raise ValueError(f"{f}: beta_u must have shape ({n_users},), got {beta_u.shape}")
    if beta_i.shape != (n_items,):
        raise ValueError(f"{f}: beta_i must have shape ({n_items},), got {beta_i.shape}")
    sigma = check_real(sigma, "sigma", minimum=0.0, func=f)
    wd2 = check_real(wd2, "wd2", minimum=0.0, func=f)
    lam = check_real(lam, "lam", minimum=0.0, func=f)
    w4 = check_weights(w, "w", func=f)
    wargs = _weighting_args(weighting, normalize, mgda_apply, grad_scope, alpha, preference,
                            pair_eps, func=f, d_c=d_c, D=D)
    nt = resolve_threads(n_threads, func=f)
    loss_env, erm, irm, reg, ga, gb = _core.mask_step(
        U, V, X, W, mu, eps, users, items, beta_u, beta_i, sigma=sigma, w=w4, wd2=wd2,
        n_threads=nt, work=workspace)
    gamma, w_erm, w_irm, move = _core.mask_weigh(ga, gb, erm, irm, **wargs)
    direction = (w_erm * ga.astype(np.float64) + w_irm * gb.astype(np.float64))
    direction[d_c * D:] += lam * 2.0 * mu.astype(np.float64)
    return MaskStep(loss_env=loss_env, erm_loss=erm, irm_loss=irm, reg_loss=reg, grad_erm=ga,
                    grad_irm=gb, gamma=gamma, w_erm=w_erm, w_irm=w_irm,
                    direction=direction.astype(dtype), pair_move=_PAIR_MOVES[move], d_c=d_c,
                    D=D)


def mask_step_workspace(n_envs: int, batch_size: int, n_neg: int, D: int, d_c: int, *,
                        dtype=np.float32, n_threads: Optional[int] = None) -> np.ndarray:
    """Scratch memory for repeated :func:`mask_step` calls of one size.

    Parameters
    ----------
    n_envs, batch_size, n_neg, D, d_c : int
        ``E``, ``B``, negatives per positive, feature and projection sizes.
    dtype : {numpy.float32, numpy.float64}
    n_threads : int, optional
        Must match the ``n_threads`` given to :func:`mask_step`.

    Returns
    -------
    ndarray of uint8
    """
    f = "mask_step_workspace"
    dtype = check_dtype(dtype, func=f)
    return _core.mask_step_workspace(
        check_int(n_envs, "n_envs", minimum=1, func=f),
        check_int(batch_size, "batch_size", minimum=1, func=f),
        check_int(n_neg, "n_neg", minimum=0, func=f), check_int(D, "D", minimum=1, func=f),
        check_int(d_c, "d_c", minimum=1, func=f), double=dtype == np.float64,
        n_threads=resolve_threads(n_threads, func=f))


# --------------------------------------------------------------------------- a whole run
@dataclass(frozen=True)
class MaskResult:
    """Outcome of :func:`learn_mask`.

    Attributes
    ----------
    mask : ndarray of float32, shape (D,)
        ``clamp(mu + 0.5, 0, 1)``, continuous in [0, 1] (never binarised).
    W : ndarray of float32, shape (d_c, D)
    mu : ndarray of float32, shape (D,)
    erm_loss, irm_loss, gamma : ndarray of float64, shape (epochs,)
        Per-epoch means of ``L_ERM``, ``L_IRM`` and the step weight ``gamma``.
    gamma_steps : ndarray of float64, shape (epochs * steps_per_epoch,)
    n_envs_used : int
        ``E_eff``, the non-empty environments (used in the 1/E averages).
    empty_envs : ndarray of int64
        Labels in ``range(n_envs)`` with no training pair (they took no part).
    env_counts : ndarray of int64, shape (n_envs,)
    steps_per_epoch : int
    """

    mask: np.ndarray
    W: np.ndarray
    mu: np.ndarray
    erm_loss: np.ndarray
    irm_loss: np.ndarray
    gamma: np.ndarray
    gamma_steps: np.ndarray
    n_envs_used: int
    empty_envs: np.ndarray
    env_counts: np.ndarray
    steps_per_epoch: int


def ultragcn_betas(users, items, n_users: int, n_items: int) -> Tuple[np.ndarray, np.ndarray]:
    """Loss-weight factors of method.md §1 from the training pairs [InvRL-code].

    ``beta_u = sqrt(d_u + 1) / d_u`` (``d_u`` floored at 1e-10) and
    ``beta_i = 1 / sqrt(d_i + 1)``, with degrees counting each distinct
    (user, item) pair once (method.md §10.1).

    Parameters
    ----------
    users, items : array_like of int, shape (n_pairs,)
        Training pairs.  Repeated pairs are allowed and count once: the
        degrees are those of the distinct training set, whatever sampler or
        concatenation produced the arrays.  Must not be empty.
    n_users, n_items : int
        Sizes of the id spaces (>= 1).

    Returns
    -------
    beta_u : ndarray of float64, shape (n_users,)
    beta_i : ndarray of float64, shape (n_items,)

    Raises
    ------
    TypeError
        Non-integer ids or sizes.
    ValueError
        Ids out of range, arrays of different lengths, or no pair at all.
    """
    f = "ultragcn_betas"
    n_users = check_int(n_users, "n_users", minimum=1, func=f)
    n_items = check_int(n_items, "n_items", minimum=1, func=f)
    users = _id_array(users, "users", 1, n_users, f)
    items = _id_array(items, "items", 1, n_items, f)
    if users.shape != items.shape:
        raise ValueError(f"{f}: users and items must have the same length, got "
                         f"{users.shape[0]} and {items.shape[0]}")
    if users.size == 0:
        raise ValueError(f"{f}: users and items must not be empty: there are no (user, item) "
                         f"pairs")
    key = np.unique(users * np.int64(n_items) + items)
    return loss_weights(np.bincount(key // n_items, minlength=n_users),
                        np.bincount(key % n_items, minlength=n_items), dtype=np.float64)


def learn_mask(users, items, env, U, V, X, *, n_envs: Optional[int] = None, beta_u=None,
               beta_i=None, epochs: int = 40, batch_size: int = 512, n_neg: int = 50,
               sigma: float = 0.01, lr: float = 1e-3, lr_mu: float = 1e-3, lam: float = 0.1,
               weighting: str = "mgda", normalize: Optional[str] = None,
               mgda_apply: str = "normalized", grad_scope: str = "all", alpha: float = 1.0,
               preference: Optional[Sequence[float]] = None, pair_eps: float = 1e-4,
               wd2: float = 0.01, w: Sequence[float] = (1.0, 1.0, 1.0, 1.0), seed: int = 2233,
               n_threads: Optional[int] = None) -> MaskResult:
    """Learn the invariant feature mask (one outer iteration of InvRL/PaInvRL).

    [InvRL-code] ``W`` is re-initialised N(0, 0.01^2) and ``mu = 0``; ``U`` and
    ``V`` stay frozen; Adam (lr ``lr`` on ``W``, ``lr_mu`` on ``mu``, no weight
    decay) runs ``epochs`` epochs; each step takes one batch of ``batch_size``
    positives with ``n_neg`` uniform negatives each (with replacement, not
    filtered) from every environment, draws gate noise per environment, and
    returns ``m = clamp(mu + 0.5, 0, 1)``.  [inferred] the default
    ``weighting="mgda"`` replaces InvRL's fixed ``alpha`` by a per-step Pareto
    weight (method.md §3.5); ``weighting="fixed"`` is InvRL's
    ``L_ERM + alpha L_IRM + lam L_reg`` (the caller grows ``alpha`` and ``lam``
    by 1.05 per outer iteration).  Runs in float32 in the C core; the random
    draws are Philox counters, so a seed fixes the result for any thread count.

    Parameters
    ----------
    users, items : array_like of int, shape (n_pairs,)
        Training interactions: distinct (user, item) pairs, at least one.
    env : array_like of int, shape (n_pairs,)
        Environment label of each pair, in ``[0, n_envs)``.
    U : array_like, shape (n_users, d_id + d_c)
        Pre-trained user table ``[U_id ; U_c]`` (frozen).
    V : array_like, shape (n_items, d_id)
        Pre-trained item-id table (frozen).
    X : array_like, shape (n_items, D)
        Item features (row-normalised per modality and concatenated, method.md §1).
    n_envs : int, optional
        Number of environment labels (default ``env.max() + 1``).  Environments
        without pairs take no part and are listed in ``MaskResult.empty_envs``.
    beta_u, beta_i : array_like, optional
        Loss-weight factors; computed from (users, items) by :func:`ultragcn_betas`
        when omitted (pass them when the training set is larger than these pairs).
    epochs, batch_size, n_neg : int
        InvRL: 40, 512, 50.  An epoch is ``ceil(max_e |D_e| / batch_size)`` steps.
    sigma : float
        Gate noise scale (0.01).
    lr, lr_mu : float
        Adam learning rates of ``W`` and ``mu`` (1e-3 each).
    lam : float
        Weight of ``L_reg = sum(mu**2)`` (0.1 at the first outer iteration).
    weighting, normalize, mgda_apply, grad_scope, alpha, preference, pair_eps
        See :func:`mask_step`.
    wd2 : float
        ``wd2 ||W||^2`` inside every environment loss (0.01).
    w : (w1, w2, w3, w4)
        Loss weights of method.md §1 (all 1).
    seed : int
        Philox key (InvRL's seed is 2233).  Use a different seed per outer iteration.
    n_threads : int, optional
        Threads of the C core (default: OpenMP's default).

    Returns
    -------
    MaskResult

    Raises
    ------
    TypeError
        An argument of the wrong kind (non-integer ids or labels, a non-numeric
        array or hyperparameter).
    ValueError
        Wrong shapes, NaN or inf, ids or labels out of range, an unknown option,
        no training pair, or a (user, item) pair given twice (each training
        interaction is one pair; drop repeats first).
    FloatingPointError
        If training produced a non-finite loss (e.g. a learning rate far too large).
    """
    f = "learn_mask"
    U, V = _mask_tables(U, V, f)
    n_items, n_users = V.shape[0], U.shape[0]
    X = _float_array(X, "X", np.float32, 2, f)
    if X.shape[0] != n_items or X.shape[1] < 1:
        raise ValueError(f"{f}: X must have shape (n_items, D >= 1) with n_items = {n_items}, "
                         f"got {X.shape}")
    users = _id_array(users, "users", 1, n_users, f)
    items = _id_array(items, "items", 1, n_items, f)
    if users.shape != items.shape:
        raise ValueError(f"{f}: users and items must have the same length, got "
                         f"{users.shape[0]} and {items.shape[0]}")
    check_distinct_pairs(users, items, "users and items", func=f)
    env_arr, n_envs = _mask_env(env, users.shape, n_envs, f)
    if beta_u is None or beta_i is None:
        if beta_u is not None or beta_i is not None:
            raise ValueError(f"{f}: beta_u and beta_i must be given both, or neither")
        beta_u, beta_i = ultragcn_betas(users, items, n_users, n_items)
    beta_u, beta_i = _mask_betas(beta_u, beta_i, n_users, n_items, f)
    return _mask_fit(users, items, env_arr, n_envs, U, V, X, beta_u, beta_i, func=f,
                     epochs=epochs, batch_size=batch_size, n_neg=n_neg, sigma=sigma, lr=lr,
                     lr_mu=lr_mu, lam=lam, weighting=weighting, normalize=normalize,
                     mgda_apply=mgda_apply, grad_scope=grad_scope, alpha=alpha,
                     preference=preference, pair_eps=pair_eps, wd2=wd2, w=w, seed=seed,
                     n_threads=n_threads)


_LEARN_MASK_SIGNATURE = inspect.signature(learn_mask)


def _learn_mask_dataset(dataset, env, U, V, **kwargs) -> MaskResult:
    """:func:`learn_mask` on a :class:`~painvrl.data.Dataset`'s training pairs and features,
    for the pipelines (one outer iteration of InvRL/PaInvRL).

    The same computation, bit for bit, as ``learn_mask(dataset.train[:, 0],
    dataset.train[:, 1], env, U, V, dataset.features, **kwargs)``, but the dataset
    is trusted (validated when it was built, read-only): its pairs are not
    range-checked or searched for repeats again, its features are not scanned for
    NaN, and the loss-weight factors come from its degrees instead of re-counting
    the pairs.  ``env``, ``U``, ``V`` (not the dataset's) and every keyword
    argument (those of :func:`learn_mask`) are checked as :func:`learn_mask` does.
    """
    f = "learn_mask"
    try:
        bound = _LEARN_MASK_SIGNATURE.bind(None, None, env, U, V, None, **kwargs)
    except TypeError as exc:
        raise TypeError(f"{f}() {exc}") from None
    bound.apply_defaults()
    args = dict(bound.arguments)
    for name in ("users", "items", "env", "U", "V", "X"):
        del args[name]
    n_envs, beta_u, beta_i = args.pop("n_envs"), args.pop("beta_u"), args.pop("beta_i")
    U, V = _mask_tables(U, V, f)
    n_items, n_users = V.shape[0], U.shape[0]
    if (n_users, n_items) != (dataset.n_users, dataset.n_items):
        raise ValueError(f"{f}: U and V must have one row per user and item of the dataset "
                         f"({dataset.n_users} and {dataset.n_items}), got {n_users} and "
                         f"{n_items}")
    X = dataset.features
    if X.shape[1] < 1:
        raise ValueError(f"{f}: X must have shape (n_items, D >= 1) with n_items = {n_items}, "
                         f"got {X.shape}")
    users, items = dataset._train_columns()
    env_arr, n_envs = _mask_env(env, users.shape, n_envs, f)
    if beta_u is None and beta_i is None:
        # ultragcn_betas counts each distinct pair once: the dataset's degrees already do.
        beta_u, beta_i = (b.astype(np.float32) for b in _loss_weights(
            dataset.user_degree, dataset.item_degree, dtype=np.float64))
    else:
        if beta_u is None or beta_i is None:
            raise ValueError(f"{f}: beta_u and beta_i must be given both, or neither")
        beta_u, beta_i = _mask_betas(beta_u, beta_i, n_users, n_items, f)
    return _mask_fit(users, items, env_arr, n_envs, U, V, X, beta_u, beta_i, func=f, **args)


def _mask_tables(U, V, f: str) -> Tuple[np.ndarray, np.ndarray]:
    """The frozen user and item tables of :func:`learn_mask`, checked (float32, finite)."""
    V = _float_array(V, "V", np.float32, 2, f)
    U = _float_array(U, "U", np.float32, 2, f)
    d_id = V.shape[1]
    if U.shape[1] <= d_id:
        raise ValueError(f"{f}: U must have more columns than V (U = [U_id ; U_c] with "
                         f"d_id = {d_id}), got {U.shape[1]}")
    if U.shape[0] < 1 or V.shape[0] < 1:
        raise ValueError(f"{f}: U and V must not be empty, got shapes {U.shape} and {V.shape}")
    return U, V


def _mask_env(env, shape, n_envs, f: str) -> Tuple[np.ndarray, int]:
    """The environment labels (int64, in [0, n_envs)) and n_envs."""
    env_arr = np.asarray(env)
    if env_arr.dtype.kind not in "iu":
        raise TypeError(f"{f}: env must hold integer labels, got dtype {env_arr.dtype}")
    if env_arr.shape != shape:
        raise ValueError(f"{f}: env must have one label per pair, shape {shape}, "
                         f"got {env_arr.shape}")
    if n_envs is None:
        if env_arr.min() < 0:
            raise ValueError(f"{f}: env must be >= 0, got labels down to {env_arr.min()}")
        n_envs = int(env_arr.max()) + 1
    n_envs = check_int(n_envs, "n_envs", minimum=1, func=f)
    return _id_array(env_arr, "env", 1, n_envs, f), n_envs


def _mask_betas(beta_u, beta_i, n_users: int, n_items: int,
                f: str) -> Tuple[np.ndarray, np.ndarray]:
    beta_u = _float_array(beta_u, "beta_u", np.float32, 1, f)
    beta_i = _float_array(beta_i, "beta_i", np.float32, 1, f)
    if beta_u.shape != (n_users,):
        raise ValueError(f"{f}: beta_u must have shape ({n_users},), got {beta_u.shape}")
    if beta_i.shape != (n_items,):
        raise ValueError(f"{f}: beta_i must have shape ({n_items},), got {beta_i.shape}")
    return beta_u, beta_i


def _mask_fit(users, items, env_arr, n_envs: int, U, V, X, beta_u, beta_i, *, func: str,
              epochs, batch_size, n_neg, sigma, lr, lr_mu, lam, weighting, normalize,
              mgda_apply, grad_scope, alpha, preference, pair_eps, wd2, w, seed,
              n_threads) -> MaskResult:
    """Check the hyperparameters, run the C core on checked arrays, wrap the result."""
    f = func
    d_c, D = U.shape[1] - V.shape[1], X.shape[1]
    wargs = _weighting_args(weighting, normalize, mgda_apply, grad_scope, alpha, preference,
                            pair_eps, func=f, d_c=d_c, D=D)
    hyper = dict(
        epochs=check_int(epochs, "epochs", minimum=1, func=f),
        batch=check_int(batch_size, "batch_size", minimum=1, func=f),
        n_neg=check_int(n_neg, "n_neg", minimum=0, func=f),
        sigma=check_real(sigma, "sigma", minimum=0.0, func=f),
        lr_w=check_real(lr, "lr", minimum=0.0, strict=True, func=f),
        lr_mu=check_real(lr_mu, "lr_mu", minimum=0.0, strict=True, func=f),
        lam=check_real(lam, "lam", minimum=0.0, func=f), w=check_weights(w, "w", func=f),
        wd2=check_real(wd2, "wd2", minimum=0.0, func=f), seed=check_seed(seed, func=f),
        n_threads=resolve_threads(n_threads, func=f), **wargs)
    out = _core.mask_fit(users, items, env_arr, n_envs, U, V, X, beta_u, beta_i, **hyper)
    counts = out["env_counts"]
    return MaskResult(mask=out["mask"], W=out["W"], mu=out["mu"], erm_loss=out["erm_loss"],
                      irm_loss=out["irm_loss"], gamma=out["gamma"],
                      gamma_steps=out["gamma_steps"], n_envs_used=int(out["n_env_used"]),
                      empty_envs=np.flatnonzero(counts == 0).astype(np.int64),
                      env_counts=counts, steps_per_epoch=int(out["steps_per_epoch"]))
