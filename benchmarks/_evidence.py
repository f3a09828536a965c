"""What the evidence scripts share (weighting_evidence.py, pareto_evidence.py): the
three cases with their schedules, the weighting candidates of issue #11, the rule that
picks PaInvRL's default from validation results, and table formatting."""
import numpy as np
import pandas as pd

from painvrl import InvRL, PaInvRL

# The weighting rules compared for PaInvRL's default (method.md §3.5, §8 rows 2-3).
CANDIDATES = {
    "mgda": dict(weighting="mgda"),                        # raw gradients
    "mgda-loss": dict(weighting="mgda", normalize="loss"),  # a / L_ERM, b / L_IRM
    "mgda-l2": dict(weighting="mgda", normalize="l2"),      # unit vectors (equal angle)
    "mgda-ub": dict(weighting="mgda", grad_scope="mu"),     # gate gradients only
    "pair": dict(weighting="pair"),                         # EPO, PAIR's preference
}

VAL = ("iid_val_recall@20", "ood_val_recall@20")
TEST_COLS = ["iid_test_recall@10", "iid_test_recall@20", "iid_test_ndcg@10", "iid_test_ndcg@20",
             "ood_test_recall@10", "ood_test_recall@20", "ood_test_ndcg@10", "ood_test_ndcg@20"]


def candidate_settings():
    """compare_settings' input: every candidate as a PaInvRL setting, and InvRL."""
    settings = {name: (PaInvRL, params) for name, params in CANDIDATES.items()}
    settings["InvRL"] = (InvRL, {})
    return settings


def mean_std(df: pd.DataFrame, by: str, cols) -> pd.DataFrame:
    """'mean ± std' text per group, in the groups' first-seen order."""
    g = df.groupby(by, sort=False)[list(cols)]
    m, s = g.mean(), g.std()
    return m.round(4).astype(str) + " ± " + s.round(4).astype(str)


def choose_default(tables):
    """PaInvRL's default weighting from VALIDATION results only.

    ``tables``: case -> compare_settings frame with the candidates.  Per case, the
    candidates' (IID, OOD) validation Recall@20 means; a candidate scores one per
    case where no other candidate dominates it, and the most such cases wins; ties go
    to the larger mean OOD validation gain over the case's backbone, relative to it
    (so that no case's scale dominates).  Returns (name, per-case DataFrame)."""
    rows = []
    for case, df in tables.items():
        means = df.groupby("variant", sort=False)[list(VAL)].mean()
        base = means.loc["backbone"]
        cand = means.loc[[c for c in CANDIDATES if c in means.index]]
        p = cand.to_numpy()
        dominated = [bool(np.any(np.all(p >= p[i], axis=1) & np.any(p > p[i], axis=1)))
                     for i in range(len(p))]
        for name, dom in zip(cand.index, dominated):
            rows.append(dict(case=case, candidate=name, non_dominated=not dom,
                             iid_val_gain=(cand.loc[name, VAL[0]] / base[VAL[0]] - 1),
                             ood_val_gain=(cand.loc[name, VAL[1]] / base[VAL[1]] - 1)))
    table = pd.DataFrame(rows)
    score = table.groupby("candidate").agg(cases=("non_dominated", "sum"),
                                           ood_gain=("ood_val_gain", "mean"))
    best = score.sort_values(["cases", "ood_gain"], ascending=False).index[0]
    return best, table, score
