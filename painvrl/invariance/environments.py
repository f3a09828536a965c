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

from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from .. import _core
from .._util.progress import progress_bar
from .._util.validation import (as_index_array, as_mask, check_choice, check_int, check_real,
                                check_seed, check_weights, resolve_threads)
from ..data.dataset import Dataset
from ..models.functional import _loss_weights

__all__ = ["EnvironmentSplit", "estimate_memory", "identify_environments", "random_environments"]


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


_FUNC = "identify_environments"


def _check_labels(labels, n_pairs: int, n_envs: int) -> np.ndarray:
    """A fresh int64 copy (the C core updates it in place) of the initial labels."""
    arr = as_index_array(labels, "labels", high=n_envs, ndim=None, func=_FUNC)
    if arr.shape != (n_pairs,):
        raise ValueError(f"{_FUNC}: labels must have shape ({n_pairs},) (one per training pair), "
                         f"got shape {arr.shape}")
    return np.array(arr, dtype=np.int64, order="C", copy=True)


def _threads_used(n_threads: int, n_envs: int) -> int:
    """The thread count pv_identify runs with (one environment model per thread)."""
    threads = n_threads if n_threads > 0 else max(int(_core.DEFAULT_THREADS), 1)
    return max(1, min(threads, n_envs))


def _footprint(n_pairs: int, n_users: int, n_items: int, n_features: int, *, n_envs: int,
               d_id: int, d_content: int, batch_size: int, n_neg: int,
               threads: int) -> Dict[str, int]:
    """Bytes :func:`identify_environments` allocates at its peak, by part.

    Mirrors the allocations of ``pv_identify`` (csrc/kernels/pv_identify.c),
    of ``alloc_space`` in ``pv_train_epoch`` (csrc/kernels/pv_train.c, one
    epoch workspace per running environment model) and of this module; sizes
    in bytes, float32 = 4, int64 = 8.  Upper bounds: an environment model's
    pairs are bounded by all ``n_pairs`` where a per-environment size is
    needed, and the environments a team trains at once hold ``n_pairs`` pairs
    at most between them.
    """
    N, E, T = n_pairs, n_envs, threads
    du = d_id + d_content
    nU, nV, nW, nb = n_users * du, n_items * d_id, d_content * n_features, d_content
    # pv_identify: sizes_of() with Adagrad (one state per table entry) and a bias.
    model_floats = (nU + nV) * 2 + (nW + nb) * 3 + n_items * du
    B = min(batch_size, N)
    C = 1 + n_neg
    # alloc_space(): the parts whose size does not depend on the environment's pairs ...
    per_thread = (8 * B * 2 + 8 * B * C * 2                 # users, user_list, items, item_list
                  + 4 * n_users * 2 + 4 * n_items * 2 + 8         # slots and done counters
                  + 4 * (B * du + 1) + 4 * (B * C * d_id + 1)     # gU, gV
                  + 4 * (nW + 1) + 4 * (nb + 1)                   # gW, gb
                  + 4 * (B * (du + 3 * n_features + C + 3 + d_id + d_content) + 1)  # work
                  + 8)                                            # coefs' spare entry
    # ... and those that do (perm: 8 per pair, coefs: 8 per step <= 8 per pair).
    per_pair_running = 8 + 8
    return {
        "scores": 4 * E * N,                                  # n_envs x n_pairs float32
        "models": 4 * (model_floats + 1) * T,                 # one model block per thread
        "initial_weights": 4 * (nU + nV + nW + 1),
        "pair_lists": 8 * 2 * N * T + 8 * N,                  # sub (per thread) and next
        "epoch_workspace": per_thread * T + per_pair_running * N,
        "python": 8 * 3 * N + 4 * (n_users + n_items) + 8 * (n_users + n_items) + 12 * E,
    }


def estimate_memory(dataset: Dataset, *, n_envs: int = 10, d_id: int = 64, d_content: int = 64,
                    n_neg: int = 50, batch_size: int = 512,
                    n_threads: Optional[int] = None) -> int:
    """Peak bytes :func:`identify_environments` allocates for these sizes (an upper bound).

    The parts: the ``n_envs x n_train`` float32 score table, one environment
    model (parameters, Adagrad/Adam states and projected item table) per
    thread, the shared initial weights, per-thread lists of an environment's
    pairs, each running model's epoch workspace, and the int64 copies of the
    pairs and labels made in Python.  The dataset itself and BLAS's own
    buffers are not counted.

    Parameters
    ----------
    dataset : Dataset
    n_envs, d_id, d_content, n_neg, batch_size, n_threads
        As in :func:`identify_environments` (``n_threads=None``: the OpenMP
        default; at most ``n_envs`` threads run).

    Returns
    -------
    int
        Bytes.
    """
    f = "estimate_memory"
    if not isinstance(dataset, Dataset):
        raise TypeError(f"{f}: dataset must be a painvrl.Dataset, got {type(dataset).__name__}")
    n_envs = check_int(n_envs, "n_envs", minimum=1, func=f)
    parts = _footprint(dataset.n_train, dataset.n_users, dataset.n_items, dataset.n_features,
                       n_envs=n_envs, d_id=check_int(d_id, "d_id", minimum=0, func=f),
                       d_content=check_int(d_content, "d_content", minimum=0, func=f),
                       batch_size=check_int(batch_size, "batch_size", minimum=1, func=f),
                       n_neg=check_int(n_neg, "n_neg", minimum=0, func=f),
                       threads=_threads_used(resolve_threads(n_threads, func=f), n_envs))
    return int(sum(parts.values()))


def _fit_budget(budget: int, n_threads: int, sizes: dict) -> Tuple[int, Dict[str, int]]:
    """(threads, footprint): the most threads (<= the requested ones) that fit ``budget``.

    Raises ValueError, before anything is allocated, if even one thread does not fit.
    """
    threads = _threads_used(n_threads, sizes["n_envs"])
    parts = _footprint(threads=threads, **sizes)
    while sum(parts.values()) > budget and threads > 1:
        threads -= 1
        parts = _footprint(threads=threads, **sizes)
    total = sum(parts.values())
    if total > budget:
        biggest = ", ".join(f"{k} {v / 2**20:.1f} MiB" for k, v in
                            sorted(parts.items(), key=lambda kv: -kv[1]) if v >= 0.05 * total)
        raise ValueError(
            f"{_FUNC}: memory_budget={budget} bytes ({budget / 2**20:.1f} MiB) is too small: "
            f"identification needs about {total} bytes ({total / 2**20:.1f} MiB) even with one "
            f"thread ({biggest}); raise memory_budget, or reduce n_envs (the score table is "
            f"n_envs x n_train), d_id / d_content (the model tables), or batch_size / n_neg "
            f"(the epoch workspace)")
    return threads, parts


def identify_environments(dataset: Dataset, *, mask=None, n_envs: int = 10, epochs: int = 20,
                          max_rounds: int = 10, tol: float = 0.01,
                          labels: Optional[Sequence[int]] = None, seed: int = 2233,
                          n_threads: Optional[int] = None, d_id: int = 64, d_content: int = 64,
                          n_neg: int = 50, batch_size: int = 512, emb_lr: float = 1e-3,
                          proj_lr: float = 1e-3, wd1: float = 1e-4, wdi: float = 2.0,
                          wd2: float = 0.01, l1: Optional[float] = None, reg: str = "full",
                          w: Sequence[float] = (1.0, 1.0, 1.0, 1.0), init_std: float = 0.01,
                          memory_budget: Optional[int] = None,
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
      Results are bit-identical for any ``n_threads`` and any BLAS thread
      setting (the scoring GEMM runs on BLAS, one thread inside each
      environment's task).

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
    memory_budget : int, optional
        Bytes the identification may allocate (see :func:`estimate_memory`
        for what is counted).  The footprint is estimated before anything is
        allocated; if it exceeds the budget the thread count is lowered (each
        thread holds one environment model; results do not depend on it), and
        if one thread still does not fit, ``ValueError`` is raised with the
        estimate, the budget and what to reduce.  None (default, as in
        :func:`painvrl.metrics.evaluate`): no limit.
    progress : bool, default False
        Show a progress bar over rounds (tqdm).

    Returns
    -------
    EnvironmentSplit
        Labels per training pair, per-round changes and sizes, convergence.

    Raises
    ------
    TypeError
        An argument of the wrong kind (not a Dataset, a non-integer size or
        label, a non-numeric hyperparameter); the message names the parameter.
    ValueError
        An argument out of range (sizes, rates, ``tol`` outside [0, 1], labels
        outside ``[0, n_envs)``, a mask outside [0, 1] or of the wrong length,
        NaN or inf), or a footprint above ``memory_budget``.
    FloatingPointError
        If a model's training produced a non-finite value (e.g. a learning rate
        or ``init_std`` far too large); ``labels`` are then left as they were.

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
    >>> from painvrl.data.datasets import make_spurious
    >>> from painvrl import identify_environments
    >>> ds, truth = make_spurious(n_users=100, n_items=80, n_interactions=2000, seed=0)
    >>> split = identify_environments(ds, n_envs=2, epochs=2, max_rounds=2, seed=0)
    >>> split.labels.shape == (ds.n_train,)
    True
    >>> bool((split.sizes.sum(axis=1) == ds.n_train).all())
    True
    """
    f = _FUNC
    if not isinstance(dataset, Dataset):
        raise TypeError(f"{f}: dataset must be a painvrl.Dataset, got {type(dataset).__name__}")
    n_pairs = dataset.n_train
    n_envs = check_int(n_envs, "n_envs", minimum=1, func=f)
    epochs = check_int(epochs, "epochs", minimum=1, func=f)
    max_rounds = check_int(max_rounds, "max_rounds", minimum=1, func=f)
    n_neg = check_int(n_neg, "n_neg", minimum=0, func=f)
    batch_size = check_int(batch_size, "batch_size", minimum=1, func=f)
    d_id = check_int(d_id, "d_id", minimum=0, func=f)
    d_content = check_int(d_content, "d_content", minimum=0, func=f)
    if d_id + d_content < 1:
        raise ValueError(f"{f}: d_id + d_content must be >= 1, got 0")
    tol = check_real(tol, "tol", minimum=0.0, maximum=1.0, func=f)
    tol_changes = int(np.floor(tol * n_pairs))
    seed = check_seed(seed, func=f)
    emb_lr = check_real(emb_lr, "emb_lr", minimum=0.0, strict=True, func=f)
    proj_lr = check_real(proj_lr, "proj_lr", minimum=0.0, strict=True, func=f)
    wd1 = check_real(wd1, "wd1", minimum=0.0, func=f)
    wdi = check_real(wdi, "wdi", minimum=0.0, func=f)
    wd2 = check_real(wd2, "wd2", minimum=0.0, func=f)
    l1 = wd2 if l1 is None else check_real(l1, "l1", minimum=0.0, func=f)
    init_std = check_real(init_std, "init_std", minimum=0.0, func=f)
    check_choice(reg, "reg", ("full", "batch", "none"), func=f)
    w = check_weights(w, "w", minimum=0.0, func=f)
    threads = resolve_threads(n_threads, func=f)
    if memory_budget is not None:
        budget = check_int(memory_budget, "memory_budget", minimum=1, func=f)
        sizes = dict(n_pairs=n_pairs, n_users=dataset.n_users, n_items=dataset.n_items,
                     n_features=dataset.n_features, n_envs=n_envs, d_id=d_id,
                     d_content=d_content, batch_size=batch_size, n_neg=n_neg)
        threads, _ = _fit_budget(budget, threads, sizes)
    mask32 = None if mask is None else as_mask(mask, "mask", dataset.n_features, func=f)
    if labels is None:
        current = np.random.default_rng(seed).integers(0, n_envs, n_pairs, dtype=np.int64)
    else:
        current = _check_labels(labels, n_pairs, n_envs)
    initial_sizes = np.bincount(current, minlength=n_envs).astype(np.int64)

    # The Dataset was validated when built (ids in range, distinct pairs, finite float32
    # features) and is read-only: its arrays go to the C core without re-checks.
    users, items = dataset._train_columns()
    beta_u, beta_i = _loss_weights(dataset.user_degree, dataset.item_degree)
    X = dataset.features
    kwargs = dict(n_users=dataset.n_users, n_envs=n_envs, tol_changes=tol_changes, d_id=d_id,
                  d_c=d_content, emb_opt="adagrad", emb_lr=emb_lr, proj_lr=proj_lr, reg=reg,
                  wd1=wd1, wdi=wdi, wd2=wd2, l1=l1, mask_prev=mask32, bias=True,
                  init_std=init_std, batch_size=batch_size, n_neg=n_neg, epochs=epochs, w=w,
                  seed=seed, n_threads=threads)

    # One round per call: a round depends only on the labels it starts from, so
    # this is the same computation as one call with max_rounds, with a progress bar.
    changes, sizes = [], []
    converged = False
    with progress_bar(progress, total=max_rounds, desc="environments", unit="round",
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


def random_environments(dataset: Dataset, *, n_envs: int = 10, seed: int = 2233) -> EnvironmentSplit:
    """Environments drawn uniformly at random, one label per training pair: the
    "without identification" ablation (method.md §6.5).

    The labels are what :func:`identify_environments` starts from before its first
    round, with no round run (``n_rounds = 0``): every environment is a random sample
    of the training data, so none carries a distribution shift.

    Parameters
    ----------
    dataset : Dataset
    n_envs : int
    seed : int
        Seeds NumPy's generator (``numpy.random.default_rng(seed)``).

    Returns
    -------
    EnvironmentSplit
    """
    f = "random_environments"
    if not isinstance(dataset, Dataset):
        raise TypeError(f"{f}: dataset must be a painvrl.Dataset, got {type(dataset).__name__}")
    n_envs = check_int(n_envs, "n_envs", minimum=1, func=f)
    seed = check_seed(seed, "seed", func=f)
    labels = np.random.default_rng(seed).integers(0, n_envs, size=dataset.n_train)
    labels.flags.writeable = False
    sizes = np.bincount(labels, minlength=n_envs).astype(np.int64)
    empty = tuple(int(e) for e in np.flatnonzero(sizes == 0))
    return EnvironmentSplit(labels=labels, changes=np.zeros(0, np.int64),
                            sizes=np.zeros((0, n_envs), np.int64), n_rounds=0, converged=False,
                            empty=empty, n_envs=n_envs, tol_changes=0, initial_sizes=sizes)
