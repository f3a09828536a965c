"""The three OOD cases of the evidence scripts, each with its split and schedule.

* ``planted``: ``datasets.planted_ood_split(0)``: planted invariant and spurious
  columns, four planted environments (+1, -1, -1, -1 at 3 : 1 : 1 : 1), environment 2
  the OOD validation set and environment 3 the OOD test.
* ``coat``: ``datasets.coat_ood_split(0)``: real self-selected training ratings, the
  real random-exposure ratings as the OOD test, a fixed 10 % of them as OOD validation;
  the 33 item attributes as features.
* ``lastfm``: ``datasets.lastfm_ood_split``: Last.fm 2K with real text and audio
  features, environments identified on all pairs (seed 0), the two farthest held out
  as the OOD test and the next as OOD validation.

The split is fixed per case (split seed 0); the seeds of the evidence scripts are the
models' seeds.  The schedules are reduced (see each dict) to fit a 2-core machine.
"""
from painvrl import datasets, identify_environments, splits

SMALL = dict(d_id=16, d_content=16, n_neg=10, batch_size=256, eval_every=5,
             backbone_params=dict(emb_lr=1e-2, proj_lr=1e-2))
SCHEDULES = {
    # the planted demo's schedule (benchmarks/planted_pareto.py)
    "planted": dict(n_envs=2, n_outer=2, env_epochs=5, env_rounds=3, mask_epochs=20,
                    max_epochs=100, patience=3, final_patience=4, **SMALL),
    "coat": dict(n_envs=2, n_outer=2, env_epochs=5, env_rounds=3, mask_epochs=20,
                 max_epochs=200, patience=5, final_patience=5, **SMALL),
    # benchmarks/lastfm_results.py's schedule with one outer iteration
    "lastfm": dict(n_envs=10, n_outer=1, env_epochs=10, env_rounds=3, mask_epochs=10,
                   max_epochs=200, patience=5, final_patience=5, eval_every=5, reg="batch"),
}
QUICK = dict(n_envs=2, n_outer=1, env_epochs=1, env_rounds=1, mask_epochs=2, max_epochs=5,
             patience=1, final_patience=1, eval_every=5, d_id=8, d_content=8, n_neg=5,
             batch_size=256)
# The sweep of each case (Last.fm: fewer points, for time).
FRONTS = {
    "planted": dict(preferences=(0.1, 0.25, 0.5, 0.75, 0.9), alphas=(0.1, 0.3, 1.0, 3.0, 10.0)),
    "coat": dict(preferences=(0.1, 0.25, 0.5, 0.75, 0.9), alphas=(0.1, 0.3, 1.0, 3.0, 10.0)),
    "lastfm": dict(preferences=(0.25, 0.5, 0.75), alphas=(0.3, 1.0, 3.0)),
}
CASES = tuple(SCHEDULES)


def build_case(name, quick=False):
    """(dataset, split, pipeline parameters, extra) of a case; ``quick``: tiny data and
    schedule, only to check that a script runs."""
    extra = {"front": FRONTS[name]}
    if name == "planted":
        size = dict(n_users=80, n_items=60, n_interactions=2400) if quick else {}
        split = datasets.planted_ood_split(0, **size)
    elif name == "coat":
        data = datasets.load_coat()
        split = datasets.coat_ood_split(0, data)
        extra["feature_names"] = list(data.feature_names)
    elif name == "lastfm":
        data = datasets.load_lastfm()
        if quick:
            labels = identify_environments(splits.pooled(data), n_envs=4, epochs=1,
                                           max_rounds=1, reg="batch", seed=0).labels
        else:
            labels = identify_environments(splits.pooled(data), seed=0,
                                           **datasets.LASTFM_IDENTIFY).labels
        split = datasets.lastfm_ood_split(data, labels, seed=0)
    else:
        raise ValueError(f"unknown case {name!r}; one of {CASES}")
    params = dict(QUICK if quick else SCHEDULES[name])
    if quick:
        extra["front"] = dict(preferences=(0.25, 0.5), alphas=(1.0,))
    return split.dataset, split, params, extra
