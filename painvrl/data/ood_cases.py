"""The three OOD cases of the project, each with an OOD validation set distinct from its OOD test
(re-exported by :mod:`painvrl.datasets`).

Every function returns a split with ``dataset`` (train / val / IID test),
``ood_val``, ``ood_test`` and ``splits()`` / ``validation_splits()``, so a
benchmark, the demo or a test treats the three alike and makes every choice on
``validation_splits()`` only:

* :func:`planted_ood_split`: planted data with known truth, four planted
  environments, one held out for OOD validation and another for the OOD test;
* :func:`coat_ood_split`: Coat's real random-exposure test
  (:func:`painvrl.splits.exposure_holdout`);
* :func:`lastfm_ood_split`: Last.fm with identified environments, the two
  farthest from the rest held out as the OOD test and the next one as OOD
  validation.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from . import splits
from .coat import load_coat
from .dataset import Dataset
from .synthetic import make_spurious

__all__ = ["PLANTED_OOD", "LASTFM_IDENTIFY", "planted_ood_split", "coat_ood_split",
           "lastfm_ood_split"]

PLANTED_OOD = dict(n_users=600, n_items=400, n_interactions=28_800, n_envs=4,
                   spurious_effect=(1.0, -1.0, -1.0, -1.0), env_weights=(3, 1, 1, 1))
"""``make_spurious`` arguments of :func:`planted_ood_split`."""

LASTFM_IDENTIFY = dict(n_envs=10, epochs=10, max_rounds=3, reg="batch")
"""``identify_environments`` arguments for :func:`lastfm_ood_split`'s labels (those of
``benchmarks/lastfm_results.py``)."""


def planted_ood_split(seed: int = 0, *, return_truth: bool = False, **make_spurious_params):
    """Planted data whose OOD validation and OOD test environments differ.

    :func:`~painvrl.datasets.make_spurious` with four planted environments, spurious
    effects +1, -1, -1, -1 and weights 3 : 1 : 1 : 1 (:data:`PLANTED_OOD`).
    Environment 3 is the OOD test and environment 2 the OOD validation set;
    environments 0 and 1 are split 8:1:1 per user into train / val / IID test.
    Training therefore sees the same mixture as the demo's three-environment
    construction (+1 and -1 at 3 : 1; the two kept environments hold about
    19,200 of the 28,800 pairs, as they hold of the demo's 24,000), and
    model selection sees the flipped spurious effect on environment 2 without
    ever scoring environment 3.  The planted labels only build the split; the
    pipelines identify their own environments.

    Parameters
    ----------
    seed : int
        Seeds the data and the per-user split.
    return_truth : bool, default False
        Also return the :class:`~painvrl.datasets.SpuriousTruth` (its column
        kinds, e.g. to score a learned mask).
    **make_spurious_params
        Overrides of :data:`PLANTED_OOD` (e.g. smaller sizes in tests).  With
        another ``n_envs``, the last environment is the test and the one before
        it the validation environment.

    Returns
    -------
    EnvironmentHoldout, or (EnvironmentHoldout, SpuriousTruth)

    Examples
    --------
    >>> h = planted_ood_split(0, n_users=60, n_items=50, n_interactions=2000)
    >>> h.held_out, h.val_held_out, sorted(h.validation_splits())
    ((3,), (2,), ['iid_val', 'ood_val'])
    """
    params = {**PLANTED_OOD, **make_spurious_params}
    ds, truth = make_spurious(seed=seed, **params)
    n_envs = int(params["n_envs"])
    if n_envs < 3:
        raise ValueError(f"planted_ood_split: n_envs must be at least 3 (one trained on, one "
                         f"for OOD validation, one for the OOD test), got {n_envs}")
    labels = np.concatenate([truth.train_env, truth.val_env, truth.test_env])
    holdout = splits.hold_out_environments(ds, labels, holdout=[n_envs - 1],
                                           val_holdout=[n_envs - 2], seed=seed)
    return (holdout, truth) if return_truth else holdout


def coat_ood_split(seed: int = 0, data: Optional[Dataset] = None) -> splits.ExposureHoldout:
    """Coat's self-selected positives split into train / val / IID test, its random-exposure
    positives into a fixed OOD validation set (10 %) and the OOD test.

    Parameters
    ----------
    seed : int
        Seeds the per-user split of the self-selected positives; the OOD
        validation draw does not depend on it (see
        :func:`painvrl.splits.exposure_holdout`).
    data : Dataset, optional
        :func:`~painvrl.datasets.load_coat`'s dataset (default: loaded with its
        defaults).

    Returns
    -------
    ExposureHoldout
    """
    return splits.exposure_holdout(load_coat() if data is None else data, seed=seed)


def lastfm_ood_split(data: Dataset, labels, seed: int = 0) -> splits.EnvironmentHoldout:
    """Last.fm's environment-held-out split with an OOD validation environment.

    The two environments farthest from the rest (Jensen-Shannon divergence of
    their item distributions) are the OOD test, as in
    ``benchmarks/lastfm_results.py``; the next farthest is the OOD validation
    set; the others are split 8:1:1 per user into train / val / IID test.

    Parameters
    ----------
    data : Dataset
        :func:`~painvrl.datasets.load_lastfm`'s dataset.
    labels : array_like of int or EnvironmentSplit
        The environment of every pooled pair.  The data layer does not run
        identification itself; get them with
        ``painvrl.identify_environments(splits.pooled(data), seed=seed,
        **LASTFM_IDENTIFY)``.
    seed : int
        Seeds the per-user split.

    Returns
    -------
    EnvironmentHoldout
    """
    return splits.hold_out_environments(data, labels, holdout=2, val_holdout=1, which="farthest",
                                        seed=seed)
