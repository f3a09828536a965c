"""Generated datasets that need no files (re-exported by :mod:`painvrl.datasets`).

* :func:`make_multimodal` generates a small dataset whose item content carries
  real signal about the users' preferences (the default data of ``python -m painvrl``).
* :func:`make_tiktok_like` generates data with the shape of the TikTok benchmark
  (36,656 users, 76,085 items, 3 x 128-d features) for timing at realistic size.
* :func:`make_spurious` generates data with planted invariant, spurious and noise
  feature columns and planted environments (:class:`SpuriousTruth`), to check
  the mask and environment identification against a known answer.
"""
from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .csr import UserItemCSR
from .dataset import Dataset

__all__ = ["SpuriousTruth", "make_multimodal", "make_spurious", "make_tiktok_like"]

DEFAULT_MODALITIES = types.MappingProxyType({"visual": 32, "acoustic": 32, "textual": 32})


# --------------------------------------------------------------------------- generators

def _activity_counts(rng: np.random.Generator, n_users: int, total: int, minimum: int,
                     maximum: int, sigma: float) -> np.ndarray:
    """Per-user interaction counts: ``minimum`` each plus a lognormal-weighted multinomial share.

    Sums exactly to ``total``; no count exceeds ``maximum``.
    """
    if total < n_users * minimum:
        raise ValueError(f"n_interactions={total} is below n_users * {minimum} (every user gets at "
                         f"least {minimum})")
    if total > n_users * maximum:
        raise ValueError(f"n_interactions={total} is more than n_users * {maximum} "
                         f"(the most each user can have)")
    w = rng.lognormal(0.0, sigma, size=n_users)
    counts = np.full(n_users, minimum, dtype=np.int64)
    counts += rng.multinomial(total - n_users * minimum, w / w.sum())
    while True:  # move any excess above the cap to users below it (terminates: capacity suffices)
        over = counts > maximum
        if not over.any():
            return counts
        excess = int((counts[over] - maximum).sum())
        counts[over] = maximum
        room = np.where(counts < maximum, w, 0.0)
        counts += rng.multinomial(excess, room / room.sum())


def _split_per_user(rng: np.random.Generator, users: np.ndarray, items: np.ndarray,
                    fractions: Tuple[float, float, float]) -> List[np.ndarray]:
    """Random per-user split; val/test get ``floor(f * n_u + 0.5)`` each, train the rest (>= 1)."""
    n = users.shape[0]
    order = np.lexsort((rng.random(n), users))  # random order within each user
    users, items = users[order], items[order]
    counts = np.bincount(users)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.arange(n) - np.repeat(starts, counts)
    n_u = np.repeat(counts, counts)
    n_val = np.floor(fractions[1] * n_u + 0.5).astype(np.int64)
    n_test = np.floor(fractions[2] * n_u + 0.5).astype(np.int64)
    over = n_val + n_test >= n_u  # always keep one training item
    n_test = np.where(over, np.maximum(n_u - 1 - n_val, 0), n_test)
    n_val = np.where(over, np.minimum(n_val, n_u - 1 - n_test), n_val)
    which = np.where(rank < n_test, 2, np.where(rank < n_test + n_val, 1, 0))
    out = []
    for s in range(3):
        m = which == s
        pairs = np.stack([users[m], items[m]], axis=1)
        out.append(pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))])
    return out


def _check_fractions(split) -> Tuple[float, float, float]:
    f = tuple(float(x) for x in split)
    if len(f) != 3 or min(f) < 0 or f[0] <= 0 or abs(sum(f) - 1.0) > 1e-9:
        raise ValueError(f"split must be three non-negative fractions (train, val, test) summing to 1 "
                         f"with train > 0, got {split}")
    return f


def _modality_dims(modalities: Mapping[str, int]) -> Dict[str, int]:
    if not isinstance(modalities, Mapping) or not modalities:
        raise ValueError("modalities must be a non-empty mapping name -> dimension")
    out = {}
    for k, d in modalities.items():
        if not isinstance(d, (int, np.integer)) or isinstance(d, bool) or d < 1:
            raise ValueError(f"modalities[{k!r}] must be a positive integer dimension, got {d!r}")
        out[str(k)] = int(d)
    return out


def _noise_levels(feature_noise, names) -> Dict[str, float]:
    if isinstance(feature_noise, Mapping):
        missing = [m for m in names if m not in feature_noise]
        if missing:
            raise ValueError(f"feature_noise has no level for modalities {missing}")
        levels = {m: float(feature_noise[m]) for m in names}
    else:
        levels = {m: float(feature_noise) for m in names}
    for m, v in levels.items():
        if not np.isfinite(v) or v < 0:
            raise ValueError(f"feature_noise[{m!r}] must be finite and >= 0, got {v}")
    return levels


def _content(rng: np.random.Generator, latent: np.ndarray, dims: Mapping[str, int],
             noise: Mapping[str, float]) -> Dict[str, np.ndarray]:
    """Per modality: ``latent @ A_m + noise_m * eps`` with ``A_m ~ N(0, 1/k)``, float32."""
    n, k = latent.shape
    out = {}
    for m, d in dims.items():
        a = (rng.standard_normal((k, d), dtype=np.float32) / np.float32(np.sqrt(k)))
        x = latent.astype(np.float32) @ a
        x += np.float32(noise[m]) * rng.standard_normal((n, d), dtype=np.float32)
        out[m] = x
    return out


def make_multimodal(n_users: int = 1500, n_items: int = 1000, n_interactions: int = 50_000,
                    modalities: Mapping[str, int] = DEFAULT_MODALITIES, *, n_factors: int = 16,
                    affinity: float = 3.0, popularity: float = 1.0,
                    feature_noise: Union[float, Mapping[str, float]] = 1.0,
                    min_user_interactions: int = 5, activity_sigma: float = 0.7,
                    split: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0,
                    name: str = "multimodal") -> Dataset:
    """Generate a multimodal implicit-feedback dataset whose item content carries signal.

    The generative model (all draws from ``numpy.random.default_rng(seed)``):

    1. latent factors ``p_u, q_i ~ N(0, I_k)`` for users and items (``k = n_factors``);
    2. a power-law base popularity: item ``i`` gets a random rank ``r_i`` in
       ``1..n_items`` and log-weight ``b_i = -popularity * log(r_i)``;
    3. user ``u`` has affinity ``s_ui = affinity * p_u . q_i / sqrt(k) + b_i`` for every item;
    4. user ``u``'s number of interactions ``n_u`` is ``min_user_interactions`` plus a
       multinomial share (weights lognormal with ``activity_sigma``) of the rest, so
       activity is skewed and the total is exactly ``n_interactions``;
    5. user ``u`` picks ``n_u`` distinct items by sampling without replacement from
       ``softmax(s_u)`` (Gumbel top-k);
    6. item features per modality ``m`` (dimension ``d_m``) are
       ``q_i A_m + sigma_m eps_i`` with a random ``A_m`` (k x d_m, entries
       N(0, 1/k)) and ``eps_i ~ N(0, I)``: each modality is a noisy linear view
       of the same item factors that drive the choices, so content predicts
       preferences (and items rarely chosen can still be ranked by content);
    7. each user's interactions are split at random ``split`` (8:1:1): val and
       test get ``round(f * n_u)`` each, train the rest and at least one.

    The defaults train in seconds, and a model that uses the features beats
    popularity by a wide margin (``tests/test_datasets.py`` checks this with a
    closed-form content model).

    Parameters
    ----------
    n_users, n_items, n_interactions : int
        Sizes; ``n_interactions`` counts all splits.
    modalities : mapping of str to int
        Modality names and dimensions, in concatenation order.
    n_factors : int
        Latent dimension k.
    affinity : float
        Weight of the user-item affinity against popularity (0 = popularity only).
    popularity : float
        Power-law exponent of the base popularity (0 = uniform).
    feature_noise : float or mapping of str to float
        Noise standard deviation per modality (the signal has unit variance per
        entry); a mapping gives one level per modality.
    min_user_interactions : int
        Every user gets at least this many interactions (all splits).
    activity_sigma : float
        Log-scale spread of user activity.
    split : (float, float, float)
        Train, val, test fractions per user.
    seed : int
        Seed of the NumPy Generator; the same seed gives the same dataset.
    name : str

    Returns
    -------
    Dataset
        Training pairs sorted by (user, item); features L2-normalised per modality.

    Examples
    --------
    >>> from painvrl.data.datasets import make_multimodal
    >>> ds = make_multimodal(n_users=200, n_items=100, n_interactions=4000, seed=1)
    >>> ds.n_train + ds.val.nnz + ds.test.nnz
    4000
    >>> list(ds.modalities), ds.n_features
    (['visual', 'acoustic', 'textual'], 96)
    """
    n_users, n_items, n_interactions = (_positive(n_users, "n_users"), _positive(n_items, "n_items"),
                                        _positive(n_interactions, "n_interactions"))
    k = _positive(n_factors, "n_factors")
    dims = _modality_dims(modalities)
    noise = _noise_levels(feature_noise, list(dims))
    fractions = _check_fractions(split)
    min_u = _positive(min_user_interactions, "min_user_interactions")
    if min_u > n_items:
        raise ValueError(f"min_user_interactions={min_u} exceeds n_items={n_items}")
    rng = np.random.default_rng(seed)

    p = rng.standard_normal((n_users, k))
    q = rng.standard_normal((n_items, k))
    rank = rng.permutation(n_items) + 1
    bias = -float(popularity) * np.log(rank)
    counts = _activity_counts(rng, n_users, n_interactions, min_u, n_items, float(activity_sigma))

    users_out, items_out = [], []
    block = max(1, 2_000_000 // n_items)  # bound the dense (block x n_items) logits
    scale = float(affinity) / np.sqrt(k)
    for lo in range(0, n_users, block):
        hi = min(n_users, lo + block)
        logits = scale * (p[lo:hi] @ q.T) + bias
        logits += rng.gumbel(size=logits.shape)
        c = counts[lo:hi]
        kmax = int(c.max())
        if kmax < n_items:
            top = np.argpartition(-logits, kmax - 1, axis=1)[:, :kmax]
        else:
            top = np.broadcast_to(np.arange(n_items), logits.shape)
        top_logits = np.take_along_axis(logits, top, axis=1)
        top = np.take_along_axis(top, np.argsort(-top_logits, axis=1, kind="stable"), axis=1)
        keep = np.arange(kmax)[None, :] < c[:, None]
        users_out.append(np.repeat(np.arange(lo, hi, dtype=np.int64), c))
        items_out.append(top[keep].astype(np.int64))
    users = np.concatenate(users_out)
    items = np.concatenate(items_out)

    feats = _content(rng, q, dims, noise)
    train, val, test = _split_per_user(rng, users, items, fractions)
    return Dataset(train, val, test, feats, n_users=n_users, n_items=n_items, name=name)


def _positive(x, param: str) -> int:
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, np.integer)):
        raise TypeError(f"{param} must be an integer, got {x!r}")
    if x < 1:
        raise ValueError(f"{param} must be at least 1, got {x}")
    return int(x)


# TikTok as used by GRCN / InvRL (method §6.3): 36,656 users, 76,085 items,
# 726,065 interactions of which 564,000 train.
_TIKTOK = dict(n_users=36_656, n_items=76_085, n_total=726_065, n_train=564_000)


def make_tiktok_like(seed: int = 0, scale: float = 1.0, *, n_topics: int = 64,
                     n_factors: int = 32, popularity: float = 0.7, topic_concentration: float = 0.03,
                     popularity_share: float = 0.2,
                     feature_noise: Union[float, Mapping[str, float]] = 1.0,
                     name: str = "tiktok-like") -> Dataset:
    """Generate data with the shape of the TikTok benchmark, for timing at realistic size.

    At ``scale=1``: 36,656 users, 76,085 items, 726,065 distinct interactions of
    which exactly 564,000 are training pairs (the rest split in half between
    val and test), and 128-d ``visual``, ``acoustic`` and ``textual`` features
    (the real TikTok text feature is learned from word ids; here it is a fixed
    128-d vector like the others).  ``scale`` multiplies the numbers of users,
    items and interactions.  Takes a few seconds (vectorised NumPy).

    The generative model (``numpy.random.default_rng(seed)``):

    * items belong to ``n_topics`` topics; an item's latent vector is its topic's
      centre plus item noise, and its features per modality are a noisy random
      linear map of that vector (as in :func:`make_multimodal`);
    * item popularity is a power law: the item of random rank ``r`` has weight
      ``r ** -popularity``;
    * each user has sparse topic preferences (Dirichlet with
      ``topic_concentration``) and a skewed activity (at least 5 interactions);
      each interaction picks, with probability ``1 - popularity_share``, a topic
      from the user's preferences and then an item of that topic by popularity,
      otherwise an item by global popularity;
    * repeated (user, item) draws are redrawn until every user has their count
      (a user whose topics run out of items gets the rest by popularity);
    * each user's first interaction is a training pair (so nobody lacks
      training data); the rest are split at random with exact counts.

    Parameters
    ----------
    seed : int
    scale : float
        Size multiplier (> 0); e.g. 0.1 for a tenth of the data.
    n_topics, n_factors : int
        Number of topics and latent dimension.
    popularity : float
        Power-law exponent of item popularity.
    topic_concentration : float
        Dirichlet concentration of user topic preferences (small = focused users).
    popularity_share : float
        Share of interactions drawn by global popularity, ignoring topics.
    feature_noise : float or mapping of str to float
        Noise standard deviation per modality.
    name : str

    Returns
    -------
    Dataset
        Training pairs sorted by (user, item).
    """
    scale = float(scale)
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale must be a positive number, got {scale}")
    n_users = max(1, int(round(_TIKTOK["n_users"] * scale)))
    n_items = max(1, int(round(_TIKTOK["n_items"] * scale)))
    n_total = int(round(_TIKTOK["n_total"] * scale))
    n_train = int(round(_TIKTOK["n_train"] * scale))
    min_u = 5
    if n_items < 100:
        raise ValueError(f"scale={scale} is too small for this generator")
    T = _positive(n_topics, "n_topics")
    k = _positive(n_factors, "n_factors")
    if not 0.0 <= popularity_share <= 1.0:
        raise ValueError(f"popularity_share must lie in [0, 1], got {popularity_share}")
    dims = {"visual": 128, "acoustic": 128, "textual": 128}
    noise = _noise_levels(feature_noise, list(dims))
    rng = np.random.default_rng(seed)

    # items: topic, popularity weight, latent vector
    topic = rng.integers(0, T, size=n_items)
    weight = (rng.permutation(n_items) + 1.0) ** -float(popularity)
    by_topic = np.argsort(topic, kind="stable")
    t_sorted = topic[by_topic]
    w_sorted = weight[by_topic]
    cum = np.cumsum(w_sorted)
    t_start = np.searchsorted(t_sorted, np.arange(T))
    t_end = np.searchsorted(t_sorted, np.arange(T), side="right")
    t_mass = np.bincount(t_sorted, weights=w_sorted, minlength=T)
    # within-topic cumulative weights scaled to [0, 1) and shifted by the topic index
    before = np.where(t_start > 0, cum[np.maximum(t_start - 1, 0)], 0.0)
    within = (cum - before[t_sorted]) / np.maximum(t_mass[t_sorted], 1e-300)
    within_key = t_sorted + np.minimum(within, 1.0 - 1e-12)
    global_cum = cum / cum[-1]  # global draws index the same topic-sorted order

    # users: topic preferences (only topics that have items), activity
    alpha = np.where(t_end > t_start, float(topic_concentration), 0.0)
    pref = rng.gamma(np.broadcast_to(alpha, (n_users, T)))
    pref[:, alpha > 0] += 1e-12
    pref /= pref.sum(axis=1, keepdims=True)
    pref_key = np.cumsum(pref, axis=1)
    pref_key = np.minimum(pref_key, 1.0 - 1e-12) + np.arange(n_users)[:, None]
    counts = _activity_counts(rng, n_users, n_total, min_u, n_items // 2, 1.0)

    need = counts.copy()
    kept = np.empty(0, dtype=np.int64)  # accepted keys user * n_items + item, sorted
    for round_ in range(100):
        m = int(need.sum())
        if m == 0:
            break
        draw_n = int(m * 1.1) + 16  # a few extra draws for users in need, to cover repeats
        u = np.concatenate([np.repeat(np.arange(n_users, dtype=np.int64), need),
                            rng.choice(np.flatnonzero(need > 0), draw_n - m)])
        r = rng.random(draw_n)
        # a user still short after 10 rounds has exhausted their topics: draw by popularity,
        # and after 30 rounds uniformly (this ends: nobody needs more than half the items)
        by_pop = rng.random(draw_n) < (popularity_share if round_ < 10 else 1.0)
        if round_ >= 30:
            r = (rng.integers(0, n_items, draw_n) + 0.5) / n_items
            global_cum = np.arange(1, n_items + 1) / n_items
        t = np.searchsorted(pref_key.ravel(), u + rng.random(draw_n), side="right") - u * T
        t = np.minimum(t, T - 1)
        pos = np.where(by_pop, np.searchsorted(global_cum, r, side="right"),
                       np.searchsorted(within_key, t + r, side="right"))
        key = u * n_items + by_topic[np.minimum(pos, n_items - 1)]
        # first draw of each new pair, in draw order; then at most need[u] per user
        order = np.argsort(key, kind="stable")
        ks = key[order]
        firsts = np.concatenate(([True], ks[1:] != ks[:-1]))
        if kept.size:
            at = np.minimum(np.searchsorted(kept, ks), kept.size - 1)
            firsts &= kept[at] != ks
        new = np.sort(order[firsts])
        key, uu = key[new], u[new]
        ok = _rank_within(uu) < need[uu]
        key, uu = key[ok], uu[ok]
        need -= np.bincount(uu, minlength=n_users)
        kept = np.sort(np.concatenate([kept, key]))
    else:
        raise RuntimeError("make_tiktok_like: could not draw enough distinct pairs")
    users, items = np.divmod(kept, n_items)

    # split: each user's first pair is train; the rest at random with exact counts
    order = np.lexsort((rng.random(users.size), users))
    users, items = users[order], items[order]
    first = np.concatenate(([True], users[1:] != users[:-1]))
    rest = np.flatnonzero(~first)
    rest = rest[rng.permutation(rest.size)]
    n_extra_train = n_train - int(first.sum())
    if n_extra_train < 0:
        raise ValueError(f"scale={scale}: fewer training pairs than users")
    n_val = (n_total - n_train) // 2
    which = np.zeros(users.size, dtype=np.int8)
    which[rest[n_extra_train:n_extra_train + n_val]] = 1
    which[rest[n_extra_train + n_val:]] = 2
    parts = []
    for s in range(3):
        mask = which == s
        pairs = np.stack([users[mask], items[mask]], axis=1)
        parts.append(pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))])

    centres = rng.standard_normal((T, k))
    latent = centres[topic] + 0.5 * rng.standard_normal((n_items, k))
    feats = _content(rng, latent, dims, noise)
    return Dataset(parts[0], parts[1], parts[2], feats, n_users=n_users, n_items=n_items, name=name)


def _rank_within(sorted_or_grouped: np.ndarray) -> np.ndarray:
    """Occurrence number of each value among the earlier equal values (stable)."""
    u = sorted_or_grouped
    order = np.argsort(u, kind="stable")
    us = u[order]
    start = np.concatenate(([True], us[1:] != us[:-1]))
    pos = np.arange(us.size)
    first = np.maximum.accumulate(np.where(start, pos, 0))
    rank = np.empty_like(pos)
    rank[order] = pos - first
    return rank


# --------------------------------------------------------------------------- planted truth

@dataclass(frozen=True)
class SpuriousTruth:
    """The planted truth of a :func:`make_spurious` dataset.

    Attributes
    ----------
    invariant, spurious, noise : ndarray of bool, shape (D,)
        Which feature columns drive clicks the same way in every environment,
        which drive them with an environment-dependent sign or strength, and
        which do not drive them at all.  Exactly one is True per column.
    spurious_effect : ndarray of float64, shape (n_envs,)
        The multiplier ``c_e`` of the spurious effect in each environment.
    invariant_direction : ndarray of float64, shape (n_invariant,)
        The population-mean user preference ``a`` over the invariant columns.
    user_invariant : ndarray of float64, shape (n_users, n_invariant)
        Each user's invariant preference ``theta_u`` (``a`` plus a user deviation).
    spurious_direction : ndarray of float64, shape (n_spurious,)
        The direction ``phi`` that the spurious columns act through (shared by all users).
    env_weights : ndarray of float64, shape (n_envs,)
        The probability ``pi_e`` that an interaction happens in environment ``e``.
    item_popularity : ndarray of float64, shape (n_items,)
        The items' popularity log-weights ``b_i``.
    item_style : ndarray of float64, shape (n_items,)
        Each item's style ``s_i`` (+1 or -1), its side of the spurious direction.
    train_env : ndarray of int64, shape (n_train,)
        Planted environment of each training pair, aligned with ``Dataset.train``.
    val_env, test_env : ndarray of int64
        Planted environment of each validation / test pair, aligned with
        ``Dataset.val.to_pairs()`` / ``Dataset.test.to_pairs()`` (user, then item order).
    n_users, n_items : int
    """

    invariant: np.ndarray
    spurious: np.ndarray
    noise: np.ndarray
    spurious_effect: np.ndarray
    invariant_direction: np.ndarray
    user_invariant: np.ndarray
    spurious_direction: np.ndarray
    env_weights: np.ndarray
    item_popularity: np.ndarray
    item_style: np.ndarray
    train_env: np.ndarray
    val_env: np.ndarray
    test_env: np.ndarray
    n_users: int
    n_items: int

    @property
    def n_envs(self) -> int:
        """Number of planted environments."""
        return int(self.spurious_effect.shape[0])

    def env_pairs(self, dataset: Dataset, split: str, env: int) -> np.ndarray:
        """The (n, 2) (user, item) pairs of one split that were planted in environment ``env``.

        Parameters
        ----------
        dataset : Dataset
            The dataset returned together with this truth.
        split : {"train", "val", "test"}
        env : int
            In ``[0, n_envs)``.
        """
        if split not in ("train", "val", "test"):
            raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
        if isinstance(env, (bool, np.bool_)) or not isinstance(env, (int, np.integer)) \
                or not 0 <= env < self.n_envs:
            raise ValueError(f"env must be an integer in [0, {self.n_envs}), got {env!r}")
        pairs = dataset.train if split == "train" else getattr(dataset, split).to_pairs()
        labels = getattr(self, f"{split}_env")
        if pairs.shape[0] != labels.shape[0] or (dataset.n_users, dataset.n_items) != (
                self.n_users, self.n_items):
            raise ValueError("dataset is not the one generated with this truth")
        return np.ascontiguousarray(pairs[labels == env])

    def env_csr(self, dataset: Dataset, split: str, env: int) -> UserItemCSR:
        """:meth:`env_pairs` as a :class:`~painvrl.UserItemCSR` (one environment's test set)."""
        p = self.env_pairs(dataset, split, env)
        return UserItemCSR.from_pairs(p[:, 0], p[:, 1], self.n_users, self.n_items)


def _random_signs(rng: np.random.Generator, n: int) -> np.ndarray:
    """n entries +-1/sqrt(n), as many + as - (the extra one, for odd n, random)."""
    s = np.where(np.arange(n) < n // 2, 1.0, -1.0)
    if n % 2:
        s[-1] = rng.choice((-1.0, 1.0))
    return rng.permutation(s) / np.sqrt(max(n, 1))


def make_spurious(n_users: int = 600, n_items: int = 400, n_interactions: int = 24_000,
                  n_envs: int = 2, n_invariant: int = 8, n_spurious: int = 8, n_noise: int = 16,
                  seed: int = 0, *, spurious_effect: Optional[Sequence[float]] = None,
                  env_weights: Optional[Sequence[float]] = None,
                  invariant_strength: float = 3.0, spurious_strength: float = 2.0,
                  spurious_separation: float = 2.0, user_spread: float = 0.3,
                  popularity: float = 1.0,
                  min_user_interactions: int = 5, activity_sigma: float = 0.5,
                  split: Sequence[float] = (0.8, 0.1, 0.1),
                  name: str = "spurious") -> Tuple[Dataset, SpuriousTruth]:
    """Generate a multimodal dataset with planted invariant, spurious and noise features.

    Clicks depend on the *invariant* feature columns in the same way in every
    environment, and on the *spurious* columns with an effect whose sign or
    strength changes from one environment to the next; the *noise* columns do
    not affect clicks.  Every interaction carries the environment it was
    generated in, so both modules of the method can be checked against the
    truth: a mask learner should keep the invariant columns and drop the
    spurious ones, and environment identification should recover the planted
    environments (they differ in which items users pick).

    The generative model (all draws from ``numpy.random.default_rng(seed)``),
    with ``D = n_invariant + n_spurious + n_noise``:

    1. directions: ``a`` (invariant) and ``phi`` (spurious) have entries
       ``+-1/sqrt(n)`` with random signs, half of each sign (unit norm);
    2. item content: ``x_i ~ N(0, I_D)``, plus ``spurious_separation * s_i * phi``
       on the spurious columns, where ``s_i = +-1`` is the item's random
       "style": along ``phi`` the items form two groups, so the spurious
       direction is the most salient one in the content (a style, a watermark,
       a thumbnail look).  The dataset stores the row-normalised
       ``x_i / ||x_i||`` as one modality ``"features"``, and the effects below
       act on ``z_i = sqrt(D) x_i / ||x_i||`` (the stored features times
       ``sqrt(D)``), so they are exactly linear in the stored features.
       Columns ``[0, n_invariant)`` are invariant, the next ``n_spurious``
       spurious, the last ``n_noise`` noise;
    3. user ``u``'s invariant preference is ``theta_u = a + user_spread * g_u /
       sqrt(n_invariant)`` with ``g_u ~ N(0, I)``;
    4. item popularity: the item of random rank ``r_i`` has log-weight
       ``b_i = -popularity * log(r_i)``;
    5. user ``u`` has ``n_u`` interactions (``min_user_interactions`` plus a
       lognormal-weighted multinomial share of the rest, total exactly
       ``n_interactions``); each is placed in environment ``e`` with probability
       ``env_weights[e]`` (the user's counts per environment are multinomial);
    6. an interaction of user ``u`` in environment ``e`` picks item ``i`` with
       probability proportional to ``exp(l_uei)``, where

           l_uei = invariant_strength * theta_u . z_i[inv]
                   + spurious_strength * c_e * phi . z_i[sp] + b_i

       and ``c_e = spurious_effect[e]``.  A user's items are distinct: their
       environments pick in turn (in a random order per block of users), each
       by Gumbel top-k among the items the user has not picked yet;
    7. each user's interactions are split at random into train / val / test
       (``split``, as :func:`make_multimodal`: val and test get
       ``round(f * n_u)`` each, train the rest and at least one); every pair
       keeps its environment.

    So in environment ``e`` the clicked items' spurious columns lean towards
    ``sign(c_e) * phi`` (mostly items of style ``sign(c_e)``), and their
    invariant columns towards ``a`` whatever the environment; the noise
    columns carry nothing.  Users share most of their invariant preference
    (``user_spread`` small) and all like popular items, so their embeddings
    share a common direction, and the environment effect is the same for
    every user (an environment-specific popularity of each style).

    With the default ``c = (+1, -1)`` the two environments prefer
    opposite ends of the spurious direction: pooled over environments, the
    spurious columns carry little signal, but each environment's gradients on
    them disagree (what an IRM penalty measures), and the pairs of one
    environment concentrate on items the other rarely picks (what
    identification can find).  Use e.g. ``spurious_effect=(1.0, 0.5, -1.0)`` for
    training environments that agree on the sign and a held-out one that flips it.

    Parameters
    ----------
    n_users, n_items, n_interactions : int
        Sizes; ``n_interactions`` counts all splits.
    n_envs : int
        Number of planted environments.
    n_invariant, n_spurious, n_noise : int
        Numbers of feature columns of each kind (``n_invariant`` and
        ``n_spurious`` >= 1, ``n_noise`` >= 0).
    seed : int
        Seed of the NumPy Generator; the same arguments give the same data.
    spurious_effect : sequence of float, length n_envs, optional
        ``c_e`` per environment.  Default: evenly spaced from +1 to -1
        (``(+1, -1)`` for two environments; ``(1,)`` for one).
    env_weights : sequence of float, length n_envs, optional
        Probability of each environment (normalised); default uniform.
    invariant_strength, spurious_strength : float
        Logit scales of the two effects (>= 0).
    spurious_separation : float
        Distance of the two item styles from 0 along ``phi`` (>= 0; 0 gives
        isotropic Gaussian content).
    user_spread : float
        Spread of the users' invariant preferences around ``a`` (>= 0).
    popularity : float
        Power-law exponent of item popularity (>= 0; 0 = none).
    min_user_interactions : int
        Every user gets at least this many interactions (all splits).
    activity_sigma : float
        Log-scale spread of user activity.
    split : (float, float, float)
        Train, val, test fractions per user.
    name : str

    Returns
    -------
    dataset : Dataset
        Training pairs sorted by (user, item); one modality ``"features"`` of
        width D, rows of unit norm.
    truth : SpuriousTruth
        Column masks, effects, and the planted environment of every pair.

    Examples
    --------
    >>> from painvrl.data.datasets import make_spurious
    >>> ds, truth = make_spurious(n_users=200, n_items=150, n_interactions=4000, seed=1)
    >>> ds.n_features, int(truth.invariant.sum()), int(truth.spurious.sum())
    (32, 8, 8)
    >>> truth.train_env.shape == (ds.n_train,)
    True
    """
    n_users = _positive(n_users, "n_users")
    n_items = _positive(n_items, "n_items")
    n_interactions = _positive(n_interactions, "n_interactions")
    E = _positive(n_envs, "n_envs")
    n_inv = _positive(n_invariant, "n_invariant")
    n_sp = _positive(n_spurious, "n_spurious")
    if isinstance(n_noise, (bool, np.bool_)) or not isinstance(n_noise, (int, np.integer)):
        raise TypeError(f"n_noise must be an integer, got {n_noise!r}")
    if n_noise < 0:
        raise ValueError(f"n_noise must be >= 0, got {n_noise}")
    n_noise = int(n_noise)
    D = n_inv + n_sp + n_noise
    if spurious_effect is None:
        c = np.linspace(1.0, -1.0, E) if E > 1 else np.ones(1)
    else:
        c = np.asarray(spurious_effect, dtype=np.float64).ravel()
        if c.shape[0] != E or not np.all(np.isfinite(c)):
            raise ValueError(f"spurious_effect must hold {E} finite numbers (one per environment), "
                             f"got {spurious_effect!r}")
    if env_weights is None:
        pi = np.full(E, 1.0 / E)
    else:
        pi = np.asarray(env_weights, dtype=np.float64).ravel()
        if pi.shape[0] != E or not np.all(np.isfinite(pi)) or np.any(pi < 0) or pi.sum() <= 0:
            raise ValueError(f"env_weights must hold {E} finite non-negative numbers with a "
                             f"positive sum, got {env_weights!r}")
        pi = pi / pi.sum()
    strengths = {}
    for param, v in (("invariant_strength", invariant_strength),
                     ("spurious_strength", spurious_strength),
                     ("spurious_separation", spurious_separation), ("user_spread", user_spread),
                     ("popularity", popularity), ("activity_sigma", activity_sigma)):
        v = float(v)
        if not np.isfinite(v) or v < 0:
            raise ValueError(f"{param} must be finite and >= 0, got {v}")
        strengths[param] = v
    fractions = _check_fractions(split)
    min_u = _positive(min_user_interactions, "min_user_interactions")
    if min_u > n_items:
        raise ValueError(f"min_user_interactions={min_u} exceeds n_items={n_items}")
    rng = np.random.default_rng(seed)

    # 1-4: content, directions, user preferences, popularity
    x = rng.standard_normal((n_items, D))
    style = rng.choice((-1.0, 1.0), size=n_items)
    inv_cols = np.arange(n_inv)
    sp_cols = np.arange(n_inv, n_inv + n_sp)
    a = _random_signs(rng, n_inv)
    phi = _random_signs(rng, n_sp)
    x[:, sp_cols] += strengths["spurious_separation"] * style[:, None] * phi
    feats = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    z = feats.astype(np.float64) * np.sqrt(D)
    theta = a + strengths["user_spread"] * rng.standard_normal((n_users, n_inv)) / np.sqrt(n_inv)
    rank = rng.permutation(n_items) + 1
    bias = -strengths["popularity"] * np.log(rank)
    item_inv = z[:, inv_cols]                                   # (n_items, n_inv)
    item_sp = strengths["spurious_strength"] * (z[:, sp_cols] @ phi)   # (n_items,)

    # 5: activity and environments
    counts = _activity_counts(rng, n_users, n_interactions, min_u, n_items,
                              strengths["activity_sigma"])
    per_env = np.stack([rng.multinomial(int(n), pi) for n in counts]) if n_users else \
        np.zeros((0, E), dtype=np.int64)

    # 6: distinct items per user; environments pick in turn
    users_out, items_out, envs_out = [], [], []
    block = max(1, 2_000_000 // n_items)
    for lo in range(0, n_users, block):
        hi = min(n_users, lo + block)
        base = strengths["invariant_strength"] * (theta[lo:hi] @ item_inv.T) + bias
        taken = np.zeros((hi - lo, n_items), dtype=bool)
        rows = np.arange(hi - lo)[:, None]
        for e in rng.permutation(E):
            k = per_env[lo:hi, e]
            kmax = int(k.max(initial=0))
            if kmax == 0:
                continue
            logits = base + c[e] * item_sp
            logits += rng.gumbel(size=logits.shape)
            logits[taken] = -np.inf
            top = np.argpartition(-logits, kmax - 1, axis=1)[:, :kmax]
            top = np.take_along_axis(top, np.argsort(-np.take_along_axis(logits, top, axis=1),
                                                     axis=1, kind="stable"), axis=1)
            keep = np.arange(kmax)[None, :] < k[:, None]
            taken[np.broadcast_to(rows, top.shape)[keep], top[keep]] = True
            users_out.append(np.repeat(np.arange(lo, hi, dtype=np.int64), k))
            items_out.append(top[keep].astype(np.int64))
            envs_out.append(np.full(int(k.sum()), e, dtype=np.int64))
    users = np.concatenate(users_out)
    items = np.concatenate(items_out)
    envs = np.concatenate(envs_out)

    # 7: split per user, environments travel with their pairs
    order = np.lexsort((rng.random(users.size), users))
    users, items, envs = users[order], items[order], envs[order]
    cnt = np.bincount(users, minlength=n_users)
    starts = np.concatenate(([0], np.cumsum(cnt)[:-1]))
    rnk = np.arange(users.size) - np.repeat(starts, cnt)
    n_u = np.repeat(cnt, cnt)
    n_val = np.floor(fractions[1] * n_u + 0.5).astype(np.int64)
    n_test = np.floor(fractions[2] * n_u + 0.5).astype(np.int64)
    over = n_val + n_test >= n_u
    n_test = np.where(over, np.maximum(n_u - 1 - n_val, 0), n_test)
    n_val = np.where(over, np.minimum(n_val, n_u - 1 - n_test), n_val)
    which = np.where(rnk < n_test, 2, np.where(rnk < n_test + n_val, 1, 0))
    parts, part_envs = [], []
    for s in range(3):
        m = which == s
        o = np.lexsort((items[m], users[m]))
        parts.append(np.stack([users[m][o], items[m][o]], axis=1))
        part_envs.append(envs[m][o])
    ds = Dataset(parts[0], parts[1], parts[2], {"features": feats}, n_users=n_users,
                 n_items=n_items, name=name, normalize=False)
    inv_mask = np.zeros(D, dtype=bool)
    inv_mask[inv_cols] = True
    sp_mask = np.zeros(D, dtype=bool)
    sp_mask[sp_cols] = True
    truth = SpuriousTruth(
        invariant=_readonly_copy(inv_mask), spurious=_readonly_copy(sp_mask),
        noise=_readonly_copy(~(inv_mask | sp_mask)), spurious_effect=_readonly_copy(c),
        invariant_direction=_readonly_copy(a), user_invariant=_readonly_copy(theta),
        spurious_direction=_readonly_copy(phi), env_weights=_readonly_copy(pi),
        item_popularity=_readonly_copy(bias), item_style=_readonly_copy(style),
        train_env=_readonly_copy(part_envs[0]), val_env=_readonly_copy(part_envs[1]),
        test_env=_readonly_copy(part_envs[2]), n_users=n_users, n_items=n_items)
    return ds, truth


def _readonly_copy(a: np.ndarray) -> np.ndarray:
    out = np.array(a, copy=True)
    out.flags.writeable = False
    return out
