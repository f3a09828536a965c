"""Which ERM/IRM weighting should PaInvRL use by default?  Every candidate rule of
method.md §3.5 / §8 on the three cases, over seeds, chosen on VALIDATION data only.

    .venv/bin/python benchmarks/weighting_evidence.py                 # 5 seeds, 3 cases
    .venv/bin/python benchmarks/weighting_evidence.py --cases planted coat --seeds 0 1 2
    # one process per case, then the choice from their rows:
    .venv/bin/python benchmarks/weighting_evidence.py --cases coat --out coat.csv
    .venv/bin/python benchmarks/weighting_evidence.py --combine planted.csv coat.csv ...

Candidates (``_evidence.CANDIDATES``): raw MGDA; MGDA after loss normalisation
(a / L_ERM, b / L_IRM); MGDA on unit vectors (equal angle: gamma 0.5, not adaptive);
our MGDA-UB (the min-norm rule on the gate's gradients only); PAIR's EPO step with
PAIR's preference.  InvRL (fixed alpha = 1) and the backbone are printed beside them
from the same run, every pipeline of a seed starting from that seed's backbone.

Rule (``_evidence.choose_default``): per case, the candidates' mean (IID, OOD)
validation Recall@20; a candidate scores one per case where no other candidate
dominates it; most cases wins, ties to the larger mean relative OOD validation gain
over the backbone.  Test metrics are printed and never used to choose.
"""
import time

import pandas as pd

from _cases import CASES, build_case
from _common import header, parser
from _evidence import VAL, candidate_settings, choose_default, mean_std
from painvrl.experiments import compare_settings


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--out", default=None, help="write every row to this CSV")
    p.add_argument("--combine", nargs="+", default=None,
                   help="choose from the rows of earlier --out runs instead of fitting")
    args = p.parse_args(argv)
    header("weighting_evidence", args.quick)
    start = time.perf_counter()
    tables = {}
    if args.combine:
        rows = pd.concat([pd.read_csv(path) for path in args.combine], ignore_index=True)
        tables = {case: df for case, df in rows.groupby("case", sort=False)}
        args.cases = []
    for case in args.cases:
        ds, split, params, _ = build_case(case, quick=args.quick)
        df = compare_settings(ds, split, candidate_settings(), seeds=args.seeds,
                              progress=False, **params)
        tables[case] = df.assign(case=case)
        print(f"\n== {case}: {ds}  ({time.perf_counter() - start:.0f} s so far)")
        cols = list(VAL) + ["ood_test_recall@20", "iid_test_recall@20", "erm_share_mean"]
        print(mean_std(df, "variant", cols).to_string())
    for case, df in tables.items():
        if args.combine:
            print(f"\n== {case}, seeds {sorted(int(x) for x in df.seed.unique())}")
            cols = [c for c in list(VAL) + ["ood_test_recall@20", "iid_test_recall@20",
                                            "erm_share_mean", "gamma_mean"] if c in df]
            print(mean_std(df, "variant", cols).to_string())
    best, table, score = choose_default(tables)
    print("\nper case, validation only (gain relative to the backbone):")
    print(table.round(4).to_string(index=False))
    print("\nscore:")
    print(score.round(4).to_string())
    print(f"\nchosen default: {best}")
    if args.out:
        pd.concat(tables.values(), ignore_index=True).to_csv(args.out, index=False)
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
