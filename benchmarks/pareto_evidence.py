"""The IID/OOD front of one case: PaInvRL over a sweep of ERM/IRM preferences, InvRL
over a sweep of alpha, the backbone; the table of the three default models over seeds
with paired p-values; the hypervolume per method; the front as a PNG.

    .venv/bin/python benchmarks/pareto_evidence.py --case planted    # or coat, lastfm
    .venv/bin/python benchmarks/pareto_evidence.py --case coat --plot front.png
    # one process per seed, then one report (a 2-core machine shared with other work):
    .venv/bin/python benchmarks/pareto_evidence.py --case lastfm --seeds 0 --save s0.pkl
    .venv/bin/python benchmarks/pareto_evidence.py --case lastfm --combine s0.pkl s1.pkl ...

Every model of a seed starts from that seed's backbone and first identification
(``painvrl.pareto_front``).  PaInvRL's default point is PaInvRL with its default
weighting; InvRL's is alpha = 1.  p-values: PaInvRL's default against InvRL and the
backbone on each test, paired over seeds (t-test on per-seed means) and over users
(Wilcoxon signed-rank, every user of every seed one pair), two-sided.  The ``pareto``
flag and every choice use validation data; the test columns are only reported.
Coat also prints the learned mask per named attribute.
"""
import pickle
import time

import numpy as np
import pandas as pd

from _cases import CASES, build_case
from _common import header, parser
from _evidence import TEST_COLS, mean_std
from painvrl import ParetoFront, pareto_front


def report(front, case, extra):
    f = front.frame
    named = f.assign(name=np.select([f.model == "backbone", f.adaptive,
                                     (f.model == "InvRL") & (f.alpha == 1.0)],
                                    ["backbone", "PaInvRL (default)", "InvRL (alpha 1)"], ""))
    table = named[named.name != ""]
    print(f"\nIID and OOD test, mean ± std over seeds {sorted(int(x) for x in f.seed.unique())}:")
    print(mean_std(table, "name", TEST_COLS).T.to_string())
    print("\npaired tests, PaInvRL (default) minus the other, two-sided:")
    rows = []
    for other in ("InvRL", "backbone"):
        for split in ("iid_test", "ood_test"):
            for metric in ("recall@20", "ndcg@20"):
                r = front.paired_test("adaptive", other, split=split, metric=metric)
                rows.append(dict(vs=other, split=split, metric=metric, diff=r["diff"],
                                 p_seeds=r.p_seeds, p_users=r.p_users))
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    print("\nhypervolume of each method's test front above the backbone (Recall@20):")
    print(front.hypervolume().to_string(float_format=lambda x: f"{x:.3g}"))
    print("\nevery point, mean over seeds (pareto: not dominated on validation):")
    cols = ["point", "model", "weighting", "preference", "alpha", "adaptive", "iid", "ood",
            "gamma_mean", "erm_share", "pareto"]
    pv = front.points("val")[["point", "iid", "ood"]].rename(columns={"iid": "iid_val",
                                                                       "ood": "ood_val"})
    pts = front.points("test")[cols].merge(pv, on="point")
    print(pts.round(4).to_string(index=False))
    names = extra.get("feature_names")
    if names is not None:
        a = front.point_id("adaptive")
        masks = np.stack([m for (p, _), m in front.masks.items() if p == a])
        inv = front.point_id("InvRL")
        inv_masks = np.stack([m for (p, _), m in front.masks.items() if p == inv])
        print("\nlearned mask per named feature, mean over seeds:")
        print(pd.DataFrame({"PaInvRL": masks.mean(0), "InvRL": inv_masks.mean(0)},
                           index=names).round(3).to_string())


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--case", choices=list(CASES), required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--plot", default=None, help="write the front plot to this PNG")
    p.add_argument("--out", default=None, help="write the front's frame to this CSV")
    p.add_argument("--save", default=None, help="pickle the front here (for --combine)")
    p.add_argument("--combine", nargs="+", default=None,
                   help="report the fronts pickled by --save runs instead of fitting")
    args = p.parse_args(argv)
    header(f"pareto_evidence --case {args.case}", args.quick)
    start = time.perf_counter()
    ds, split, params, extra = build_case(args.case, quick=args.quick)
    print(ds)
    if args.combine:
        fronts = []
        for path in args.combine:
            with open(path, "rb") as fh:
                fronts.append(pickle.load(fh))
        front = ParetoFront.combine(fronts)
    else:
        front = pareto_front(ds, split, seeds=args.seeds, per_user=True, progress=False,
                             **extra.get("front", {}), **params)
    if args.save:
        with open(args.save, "wb") as fh:
            pickle.dump(front, fh)
    print(f"\nseeds {sorted(int(x) for x in front.frame.seed.unique())}, "
          f"{len(front.frame)} fits")
    report(front, args.case, extra)
    if args.out:
        front.frame.to_csv(args.out, index=False)
    if args.plot:
        import matplotlib
        matplotlib.use("Agg")
        ax = front.plot()
        ax.set_title(f"{args.case}: IID vs OOD Recall@20, mean ± std over {len(args.seeds)} seeds",
                     fontsize=9)
        ax.figure.tight_layout()
        ax.figure.savefig(args.plot, dpi=110)
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
