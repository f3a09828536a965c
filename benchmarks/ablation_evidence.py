"""The ablations of method.md §6.5 on one case of the evidence protocol: PaInvRL at its
defaults with one component removed at a time, InvRL and the backbone, over seeds.

    .venv/bin/python benchmarks/ablation_evidence.py --case planted     # or coat, lastfm

Variants (``painvrl.experiments.ABLATIONS``): random environments instead of identified
ones, InvRL's fixed alpha instead of the Pareto weighting, the invariant part only
(InvRL's convert), two global fusion weights instead of per-item attention.  Every
variant of a seed starts from that seed's backbone; test metrics are reported, not used
to choose.
"""
import time

from _cases import CASES, build_case
from _common import header, parser
from _evidence import mean_std
from painvrl import ablations


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--case", choices=list(CASES), required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--out", default=None, help="write every row to this CSV")
    args = p.parse_args(argv)
    header(f"ablation_evidence --case {args.case}", args.quick)
    start = time.perf_counter()
    ds, split, params, _ = build_case(args.case, quick=args.quick)
    print(ds)
    df = ablations(ds, split, seeds=args.seeds, progress=False, **params)
    cols = ["iid_val_recall@20", "ood_val_recall@20", "iid_test_recall@20", "ood_test_recall@20",
            "erm_share_mean"]
    print(f"\nmean ± std over seeds {args.seeds}:")
    print(mean_std(df, "variant", cols).to_string())
    if args.out:
        df.to_csv(args.out, index=False)
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
