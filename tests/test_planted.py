"""Modules (i) and (ii) together on planted-truth data: the learned mask keeps the invariant
feature columns and gates down the spurious ones (method.md §2-§3)."""
import numpy as np
import pytest

from painvrl import Backbone, datasets
from painvrl.invariance import identify_environments, learn_mask


def roc_auc(score, positive, negative):
    """P(score of a positive > score of a negative), ties counting one half."""
    a = score[positive][:, None]
    b = score[negative][None, :]
    return float(np.mean((a > b) + 0.5 * (a == b)))


def test_roc_auc_by_hand():
    s = np.array([0.9, 0.4, 0.4, 0.1])
    # positives {0.9, 0.4} against negatives {0.4, 0.1}: pairs > : 3, ties: 1 -> 3.5 / 4
    assert roc_auc(s, np.array([1, 1, 0, 0], bool), np.array([0, 0, 1, 1], bool)) == 0.875


def pretrained(ds, seed):
    model = Backbone(d_id=16, d_content=16, n_neg=10, batch_size=256, max_epochs=20,
                     eval_every=5, emb_lr=1e-2, proj_lr=1e-2, progress=False, seed=seed,
                     n_threads=1).fit(ds)
    return model.user_embeddings_, model.item_embeddings_


def mask_for(ds, env, U, V, seed, weighting="mgda"):
    return learn_mask(ds.train[:, 0], ds.train[:, 1], env, U, V, ds.features, epochs=40,
                      lr=1e-2, lr_mu=1e-2, n_neg=10, batch_size=256, weighting=weighting,
                      seed=seed, n_threads=1).mask


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("weighting", ["mgda", "fixed"])
def test_mask_separates_invariant_from_spurious_on_planted_environments(seed, weighting):
    ds, truth = datasets.make_spurious(seed=seed)
    U, V = pretrained(ds, seed)
    mask = mask_for(ds, truth.train_env, U, V, seed, weighting)
    assert roc_auc(mask, truth.invariant, truth.spurious) >= 0.9
    assert mask[truth.invariant].mean() > mask[truth.spurious].mean() + 0.1


@pytest.mark.slow
def test_identified_environments_lead_to_the_same_separation():
    """The whole of modules (i) + (ii): environments found by identification, not planted.
    Measured over seeds 0-5: AUC 1.0, 0.86, 1.0, 1.0, 0.98, 0.97 (planted: 1.0 each)."""
    aucs = []
    for seed in (0, 1, 2):
        ds, truth = datasets.make_spurious(seed=seed)
        U, V = pretrained(ds, seed)
        split = identify_environments(ds, n_envs=2, epochs=5, max_rounds=5, d_id=16,
                                      d_content=16, emb_lr=0.05, proj_lr=1e-2, n_neg=10,
                                      batch_size=256, seed=seed, n_threads=1)
        aucs.append(roc_auc(mask_for(ds, split.labels, U, V, seed), truth.invariant,
                            truth.spurious))
    assert min(aucs) >= 0.8 and np.mean(aucs) >= 0.9, aucs
