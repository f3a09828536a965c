"""TikTok-shaped synthetic data for the benchmarks (sizes of method.md §6.3)."""
import numpy as np

N_USERS, N_ITEMS, N_TRAIN, D_MODALITY = 36_656, 76_085, 564_000, 128


def tiktok_like(seed=0):
    """Training pairs with power-law item popularity and 3 x 128-d unit-norm features."""
    rng = np.random.default_rng(seed)
    pop = 1.0 / np.arange(1, N_ITEMS + 1) ** 0.9
    pop /= pop.sum()
    items = rng.permutation(N_ITEMS)[rng.choice(N_ITEMS, N_TRAIN, p=pop)].astype(np.int64)
    users = rng.integers(0, N_USERS, N_TRAIN).astype(np.int64)
    mods = []
    for _ in range(3):
        f = rng.standard_normal((N_ITEMS, D_MODALITY), dtype=np.float32)
        f /= np.linalg.norm(f, axis=1, keepdims=True)
        mods.append(f)
    return users, items, np.ascontiguousarray(np.concatenate(mods, axis=1))
