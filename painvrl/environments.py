"""Heterogeneous environment identification (method.md §2): module (i) of InvRL and PaInvRL.

:func:`identify_environments` splits the training interactions of a
:class:`~painvrl.Dataset` into environments, k-means style, with one backbone
recommender per environment playing the centroid: every round trains a fresh
model on each environment's interactions, scores every training pair under
every model, and moves each pair to the environment whose model scores it
highest.  The work runs in C (``painvrl._core.identify``), one environment
model per thread.

Rules marked **[InvRL-code]** follow the InvRL reference code exactly; those
marked **[library]** are this library's choices where the reference code does
something unintended (method.md §10).
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from . import _core
from ._validation import (check_choice, check_nonneg_float, check_positive_int,
                          resolve_threads)
from .data import Dataset
from .functional import loss_weights

__all__ = ["EnvironmentSplit", "identify_environments"]


@dataclass(frozen=True)
class EnvironmentSplit:
    """The result of :func:`identify_environments`.

    Attributes
    ----------
    labels : ndarray of int64, shape (n_train,)
        The environment of each training pair, in the dataset's stored order
        (``labels[k]`` belongs to ``dataset.train[k]``).  Read-only.
    changes : ndarray of int64, shape (n_rounds,)
        How many labels changed in each round.
    sizes : ndarray of int64, shape (n_rounds, n_envs)
        Environment sizes after each round.
    n_rounds : int
        Rounds run.
    converged : bool
        Whether the last round changed at most ``tol_changes`` labels (False:
        stopped at ``max_rounds``).
    empty : tuple of int
        Environments left without interactions (they take no part in later
        rounds and stay empty).
    n_envs : int
    tol_changes : int
        ``floor(tol * n_train)``: the change count at or below which rounds stop.
    initial_sizes : ndarray of int64, shape (n_envs,)
        Environment sizes before the first round.
    """

    labels: np.ndarray
    changes: np.ndarray
    sizes: np.ndarray
    n_rounds: int
    converged: bool
    empty: Tuple[int, ...]
    n_envs: int
    tol_changes: int
    initial_sizes: np.ndarray

    @property
    def n_pairs(self) -> int:
        """Number of labelled training pairs."""
        return int(self.labels.shape[0])

    def to_frame(self) -> pd.DataFrame:
        """A tidy DataFrame with one row per (round, environment).

        Columns: ``round`` (1-based; round 0 holds the initial labels),
        ``environment``, ``size``, ``share`` (size / n_pairs), ``changes`` and
        ``changed_fraction`` (the round's values, repeated on each of its rows;
        0 for round 0).
        """
        sizes = np.vstack([self.initial_sizes[None, :], self.sizes])
        changes = np.concatenate(([0], self.changes))
        n_r, E = sizes.shape
        return pd.DataFrame({
            "round": np.repeat(np.arange(n_r), E),
            "environment": np.tile(np.arange(E), n_r),
            "size": sizes.ravel(),
            "share": sizes.ravel() / self.n_pairs,
            "changes": np.repeat(changes, E),
            "changed_fraction": np.repeat(changes, E) / self.n_pairs,
        })

    def __repr__(self) -> str:
        status = "converged" if self.converged else "not converged"
        last = self.sizes[-1] if self.n_rounds else self.initial_sizes
        return (f"EnvironmentSplit(n_pairs={self.n_pairs}, n_envs={self.n_envs}, "
                f"n_rounds={self.n_rounds} ({status}), sizes={last.tolist()}, "
                f"empty={list(self.empty)})")


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def _check_int(value, name: str, minimum: int) -> int:
    return check_positive_int(value, name, minimum=minimum)


def _check_lr(value, name: str) -> float:
    return check_nonneg_float(value, name, strictly_positive=True)


def _check_mask(mask, n_features: int) -> Optional[np.ndarray]:
    if mask is None:
        return None
    arr = np.asarray(mask)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"mask must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != 1 or arr.shape[0] != n_features:
        raise ValueError(f"mask must have shape ({n_features},) (one gate per feature column of "
                         f"the dataset), got shape {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError("mask contains NaN or inf")
    if arr.size and (arr.min() < 0 or arr.max() > 1):
        raise ValueError(f"mask must lie in [0, 1], got values in [{arr.min()}, {arr.max()}]")
    return np.ascontiguousarray(arr, dtype=np.float32)


def _check_labels(labels, n_pairs: int, n_envs: int) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"labels must hold integer environment ids, got dtype {arr.dtype}")
    if arr.ndim != 1 or arr.shape[0] != n_pairs:
        raise ValueError(f"labels must have shape ({n_pairs},) (one per training pair), got shape "
                         f"{arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() >= n_envs):
        raise ValueError(f"labels must lie in [0, n_envs={n_envs}), got values in "
                         f"[{arr.min()}, {arr.max()}]")
    return np.array(arr, dtype=np.int64, order="C", copy=True)


def identify_environments(dataset: Dataset, *, mask=None, n_envs: int = 10, epochs: int = 20,
                          max_rounds: int = 10, tol: float = 0.01,
                          labels: Optional[Sequence[int]] = None, seed: int = 2233,
                          n_threads: Optional[int] = None, d_id: int = 64, d_content: int = 64,
                          n_neg: int = 50, batch_size: int = 512, emb_lr: float = 1e-3,
                          proj_lr: float = 1e-3, wd1: float = 1e-4, wdi: float = 2.0,
                          wd2: float = 0.01, l1: Optional[float] = None, reg: str = "full",
                          w: Sequence[float] = (1.0, 1.0, 1.0, 1.0), init_std: float = 0.01,
                          progress: bool = False) -> EnvironmentSplit:
    """Split the training interactions into environments (method.md §2.1).

    The procedure **[InvRL-code]** (``InvRL.frontend``): start from a label per
    training pair; then, each round, for every environment ``e`` train a fresh
    backbone (MF + linear content projection, method §1) on the pairs labelled
    ``e`` for ``epochs`` epochs (minibatches of ``batch_size`` positives with
    ``n_neg`` uniform negatives each; Adagrad(``emb_lr``) on the user and item
    tables, Adam(``proj_lr``) on the projection ``W`` and its bias), with loss

        L_rec + wd1 (||U||^2 + wdi ||V||^2) + wd2 (||W||^2 + ||b||^2)
              + l1 * mean_{k,d} |W[k, d] * mask[d]|

    (the last term pushes the models off the columns that the previous mask
    marked invariant, so environments split on the variant ones); score every
    training pair under every model, and give each pair the environment whose
    model scores it highest (argmax score = argmin BCE of a positive: the
    environment that fits it best).  Stop when at most ``floor(tol * n_train)``
    labels change, or after ``max_rounds`` rounds.  All models of all rounds
    start from the same initial weights (the reference re-seeds every model),
    and the loss-weight degrees come from the whole training set.

    Library rules **[library]** (method §10):

    * an environment that has no interactions takes no part in the argmax
      (the reference lets its untrained model score every pair 0); it is
      reported in :attr:`EnvironmentSplit.empty` (§10.4);
    * scores always use the current parameters (§10.3), and small data
      (fewer than 512 pairs) is scored like any other (§10.5);
    * every random draw (initial weights, epoch shuffles, negatives) comes
      from a counter-based Philox stream keyed by ``seed`` and the epoch, not
      by the round: a round is a pure function of the labels it starts from,
      so labels that reproduce themselves are a fixed point (0 changes), and
      resuming from returned ``labels`` continues the same trajectory.
      Results are bit-identical for any ``n_threads`` (set the BLAS threads
      with ``threadpoolctl`` as well: the scoring GEMM runs on BLAS).

    Parameters
    ----------
    dataset : Dataset
        Its training pairs (in stored order), item features and degrees are used.
    mask : array_like of float, shape (D,), optional
        The mask of the previous outer iteration, in [0, 1], for the L1 term.
        None (the first outer iteration, where the mask is 0) turns it off.
    n_envs : int, default 10
        Number of environments E **[InvRL-code]**.
    epochs : int, default 20
        Epochs per environment model per round (``f_epoch``) **[InvRL-code]**.
    max_rounds : int, default 10
        At most this many rounds (``f_max``) **[InvRL-code]**.
    tol : float, default 0.01
        Stop when at most ``floor(tol * n_train)`` labels change in a round
        (1 %) **[InvRL-code]**.  In [0, 1].
    labels : array_like of int, shape (n_train,), optional
        Initial labels, e.g. those of a previous split (the reference's
        ``reuse``).  Default: uniform random labels drawn with
        ``numpy.random.default_rng(seed).integers(0, n_envs, n_train)``, fresh
        at every call (``reuse = 0``) **[InvRL-code]**.  Not modified.
    seed : int, default 2233
        Seed of the initial labels and of the models' random streams.
    n_threads : int, optional
        OpenMP threads (one environment model each); None: the OpenMP default.
    d_id, d_content : int, default 64
        Sizes of the item ID embedding and of the content projection (user
        rows have ``d_id + d_content`` entries) **[InvRL-code]**.
    n_neg : int, default 50
        Uniform negatives per positive (with replacement, not filtered).
    batch_size : int, default 512
        Positives per minibatch.
    emb_lr, proj_lr : float, default 1e-3
        Learning rates of Adagrad (U, V) and Adam (W, b) **[InvRL-code]**.
    wd1, wdi, wd2 : float, default 1e-4, 2.0, 0.01
        L2 weights **[InvRL-code]**.
    l1 : float, optional
        Weight of the L1 term on ``W * mask``; None uses ``wd2``, as the
        reference does.
    reg : {"full", "batch", "none"}, default "full"
        L2 over every row each step (the reference) or only over the rows a
        batch touches (faster, lazily; see :func:`painvrl.functional.rec_loss_grad`).
    w : 4 floats, default (1, 1, 1, 1)
        Loss weights w1..w4 (method §1).
    init_std : float, default 0.01
        Standard deviation of the initial weights (bias starts at 0).
    progress : bool, default False
        Show a progress bar over rounds (tqdm).

    Returns
    -------
    EnvironmentSplit
        Labels per training pair, per-round changes and sizes, convergence.

    Raises
    ------
    TypeError, ValueError
        On invalid input; the message names the parameter.

    Notes
    -----
    One round costs ``n_envs`` models times ``epochs`` epochs over
    ``1 / n_envs`` of the data each, i.e. about ``epochs`` full-data epochs,
    plus scoring every pair under every model; with ``reg="full"`` each step
    also sweeps the whole embedding tables, as the reference does.

    The score is bilinear (user row times item row) with no item bias, so a
    model favours an item only through each user's own row: what the rounds
    find reliably is, *within each user*, which of their interactions behave
    alike; whether environment ``e`` means the same thing for every user
    depends on how much the users' rows share (see ``tests/test_environments.py``).

    Examples
    --------
    >>> from painvrl.datasets import make_spurious
    >>> from painvrl.environments import identify_environments
    >>> ds, truth = make_spurious(n_users=100, n_items=80, n_interactions=2000, seed=0)
    >>> split = identify_environments(ds, n_envs=2, epochs=2, max_rounds=2, seed=0)
    >>> split.labels.shape == (ds.n_train,)
    True
    >>> bool((split.sizes.sum(axis=1) == ds.n_train).all())
    True
    """
    if not isinstance(dataset, Dataset):
        raise TypeError(f"dataset must be a painvrl.Dataset, got {type(dataset).__name__}")
    n_pairs = dataset.n_train
    n_envs = _check_int(n_envs, "n_envs", 1)
    epochs = _check_int(epochs, "epochs", 1)
    max_rounds = _check_int(max_rounds, "max_rounds", 1)
    n_neg = _check_int(n_neg, "n_neg", 0)
    batch_size = _check_int(batch_size, "batch_size", 1)
    d_id = _check_int(d_id, "d_id", 0)
    d_content = _check_int(d_content, "d_content", 0)
    if d_id + d_content < 1:
        raise ValueError("d_id + d_content must be >= 1, got 0")
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not 0 <= float(tol) <= 1:
        raise ValueError(f"tol must be a fraction of the pairs in [0, 1], got {tol!r}")
    tol_changes = int(np.floor(float(tol) * n_pairs))
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not \
            0 <= seed < 2**64:
        raise ValueError(f"seed must be an integer in [0, 2**64), got {seed!r}")
    seed = int(seed)
    emb_lr = _check_lr(emb_lr, "emb_lr")
    proj_lr = _check_lr(proj_lr, "proj_lr")
    wd1 = check_nonneg_float(wd1, "wd1")
    wdi = check_nonneg_float(wdi, "wdi")
    wd2 = check_nonneg_float(wd2, "wd2")
    l1 = wd2 if l1 is None else check_nonneg_float(l1, "l1")
    init_std = check_nonneg_float(init_std, "init_std")
    check_choice(reg, "reg", ("full", "batch", "none"))
    w = tuple(w)
    if len(w) != 4:
        raise ValueError(f"w must hold 4 weights w1..w4, got {len(w)}")
    w = tuple(check_nonneg_float(v, f"w[{k}]") for k, v in enumerate(w))
    threads = resolve_threads(n_threads)
    mask32 = _check_mask(mask, dataset.n_features)
    if labels is None:
        current = np.random.default_rng(seed).integers(0, n_envs, n_pairs, dtype=np.int64)
    else:
        current = _check_labels(labels, n_pairs, n_envs)
    initial_sizes = np.bincount(current, minlength=n_envs).astype(np.int64)

    users = np.ascontiguousarray(dataset.train[:, 0], dtype=np.int64)
    items = np.ascontiguousarray(dataset.train[:, 1], dtype=np.int64)
    beta_u, beta_i = loss_weights(dataset.user_degree, dataset.item_degree)
    X = np.ascontiguousarray(dataset.features, dtype=np.float32)
    kwargs = dict(n_users=dataset.n_users, n_envs=n_envs, tol_changes=tol_changes, d_id=d_id,
                  d_c=d_content, emb_opt="adagrad", emb_lr=emb_lr, proj_lr=proj_lr, reg=reg,
                  wd1=wd1, wdi=wdi, wd2=wd2, l1=l1, mask_prev=mask32, bias=True,
                  init_std=init_std, batch_size=batch_size, n_neg=n_neg, epochs=epochs, w=w,
                  seed=seed, n_threads=threads)

    # One round per call: a round depends only on the labels it starts from, so
    # this is the same computation as one call with max_rounds, with a progress bar.
    from tqdm.auto import tqdm

    changes, sizes = [], []
    converged = False
    with tqdm(total=max_rounds, disable=not progress, desc="environments", unit="round",
              leave=False) as bar:
        for _ in range(max_rounds):
            ch, sz, _ = _core.identify(users, items, current, X, beta_u, beta_i, max_rounds=1,
                                       **kwargs)
            changes.append(int(ch[0]))
            sizes.append(sz[0])
            bar.update(1)
            bar.set_postfix(changed=f"{ch[0] / n_pairs:.2%}")
            if ch[0] <= tol_changes:
                converged = True
                break
    sizes_arr = np.vstack(sizes).astype(np.int64)
    return EnvironmentSplit(
        labels=_readonly(current), changes=_readonly(np.asarray(changes, dtype=np.int64)),
        sizes=_readonly(sizes_arr), n_rounds=len(changes), converged=converged,
        empty=tuple(int(e) for e in np.flatnonzero(sizes_arr[-1] == 0)), n_envs=n_envs,
        tol_changes=tol_changes, initial_sizes=_readonly(initial_sizes))
