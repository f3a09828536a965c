"""Benchmark: the input-validation passes of one fit on a Dataset ("validate once").

Wraps painvrl's validation helpers (``as_float_array``, ``as_index_array``,
``as_mask``, ``check_distinct_pairs``, ``find_duplicate_pairs``, the Dataset's own
pair checks, ``loss_weights``, ``ultragcn_betas``, ``UserItemCSR.from_pairs`` and its
``__post_init__`` checks) in every painvrl module that imported them, and
``numpy.isfinite``, then runs one ``Backbone.fit`` and one ``PaInvRL.fit`` with a
short schedule and prints, per fit, every validation pass: where it came from (the
painvrl function that called the helper), what it checked (parameter, elements),
how many times and how long in all.  Only the outermost helper of a nest is timed
(``as_mask`` calls ``as_float_array``: one pass).  Copies made by ``np.ascontiguousarray`` outside the helpers, of at least
``n_train`` elements, are listed too (the strided ``dataset.train[:, 0]`` columns
made contiguous for the C core).  "full-table scans" are the
``np.isfinite`` calls over an array shaped like the feature table ``(n_items, D)``.

The Dataset is built before the counters start: its constructor's own checks are
the one validation the design keeps.

Default size: ``make_tiktok_like(scale=0.3)`` (10,997 users, 22,826 items, 169,200
training pairs, D = 384); --quick: ``make_spurious()`` (600 users, 400 items,
D = 32).  Schedule: Backbone 2 epochs validated every epoch; PaInvRL 1 outer
iteration (1 identification round of 1 epoch, 1 mask epoch), 2 pre-training and 2
final epochs, validated every epoch; 4 environments.

``--repeat N`` runs each fit N times and reports the median of fit times.
``--json PATH`` also writes the numbers (for comparing two trees).
``--passes REPS`` only times each validation pass of the former code on its own
(best of REPS calls), through the public helpers, and exits.

Usage: python benchmarks/bench_validate_once.py [--quick] [--scale 0.3] [--repeat 1]
"""
from __future__ import annotations

import collections
import functools
import json
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from _common import header, parser  # noqa: E402
import painvrl  # noqa: E402
from painvrl.data import datasets  # noqa: E402

HELPERS = ("as_float_array", "as_index_array", "as_mask", "check_distinct_pairs",
           "find_duplicate_pairs", "_find_duplicates", "_as_pairs", "_check_range",
           "_dedupe_splits", "_prepare_features", "loss_weights", "ultragcn_betas",
           "_check_labels")


class Recorder:
    """Counts and times the outermost validation helper calls, by caller and parameter."""

    def __init__(self, table_shape, n_train: int):
        self.table_shape = tuple(table_shape)
        self.n_train = n_train
        self.depth = 0
        self.on = False
        self.calls = collections.OrderedDict()   # key -> [calls, elements, seconds]
        self.full_scans = 0
        self.isfinite_calls = 0

    def reset(self):
        self.calls.clear()
        self.full_scans = 0
        self.isfinite_calls = 0

    def record(self, key, elements, seconds):
        row = self.calls.setdefault(key, [0, 0, 0.0])
        row[0] += 1
        row[1] += elements
        row[2] += seconds

    def seconds(self) -> float:
        return sum(r[2] for r in self.calls.values())


def _elements(args, kwargs) -> int:
    n = 0
    for a in list(args) + list(kwargs.values()):
        if isinstance(a, np.ndarray):
            n += a.size
        elif isinstance(a, (list, tuple)) and a and isinstance(a[0], np.ndarray):
            n += sum(x.size for x in a if isinstance(x, np.ndarray))
    return n


_THIN = ("wrapper", "__init__", "_float_array", "_id_array", "_as_vectors", "_vectors_pair",
         "_fusion_params", "_build", "_create")


def _caller() -> str:
    """The two innermost painvrl functions (outer>inner) that called the helper."""
    chain = []
    fr = sys._getframe(2)
    while fr is not None and len(chain) < 2:
        mod = fr.f_globals.get("__name__", "")
        fn = fr.f_code.co_name
        if mod.startswith("painvrl") and fn not in HELPERS + _THIN:
            chain.append(fn)
        fr = fr.f_back
    return ">".join(reversed(chain)) or "?"


def _param(name, args, kwargs) -> str:
    if name in ("as_float_array", "as_index_array", "as_mask"):
        p = args[1] if len(args) > 1 else kwargs.get("name", "?")
        return str(p)
    if name == "check_distinct_pairs":
        return "users, items"
    if name == "__post_init__":
        return "indptr, indices"
    return "-"


def wrap(rec: Recorder, name: str, fn):
    if getattr(fn, "_bench_wrapped", False):
        return fn

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if not rec.on or rec.depth:
            rec.depth += 1
            try:
                return fn(*args, **kwargs)
            finally:
                rec.depth -= 1
        key = (_caller(), name, _param(name, args, kwargs))
        rec.depth += 1
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            rec.record(key, _elements(args, kwargs), time.perf_counter() - t)
            rec.depth -= 1

    wrapper._bench_wrapped = True
    return wrapper


def instrument(rec: Recorder) -> None:
    for mod in list(sys.modules.values()):
        if not getattr(mod, "__name__", "").startswith("painvrl"):
            continue
        for name in HELPERS:
            fn = mod.__dict__.get(name)
            if callable(fn) and not isinstance(fn, type):
                setattr(mod, name, wrap(rec, name, fn))
    from painvrl.data.csr import UserItemCSR
    UserItemCSR.__post_init__ = wrap(rec, "__post_init__", UserItemCSR.__post_init__)
    UserItemCSR.from_pairs = classmethod(wrap(rec, "UserItemCSR.from_pairs",
                                              UserItemCSR.from_pairs.__func__))
    isfinite = np.isfinite

    def counted_isfinite(x, *a, **k):
        if rec.on:
            rec.isfinite_calls += 1
            if np.shape(x) == rec.table_shape:
                rec.full_scans += 1
        return isfinite(x, *a, **k)

    np.isfinite = counted_isfinite
    ascontiguousarray = np.ascontiguousarray

    def counted_ascontiguousarray(a, *args, **kwargs):
        if not rec.on or rec.depth:
            return ascontiguousarray(a, *args, **kwargs)
        t = time.perf_counter()
        out = ascontiguousarray(a, *args, **kwargs)
        seconds = time.perf_counter() - t
        if out.size >= rec.n_train and not (isinstance(a, np.ndarray) and
                                            np.shares_memory(a, out)):
            rec.record((_caller(), "ascontiguousarray", "(a copy)"), out.size, seconds)
        return out

    np.ascontiguousarray = counted_ascontiguousarray


def fits(quick: bool):
    common = dict(d_id=64, d_content=64, n_neg=10, batch_size=512, reg="batch", seed=0,
                  n_threads=None, progress=False)
    backbone = lambda: painvrl.Backbone(max_epochs=2, eval_every=1, **common)  # noqa: E731
    pipeline = lambda: painvrl.PaInvRL(  # noqa: E731
        n_envs=4, n_outer=1, env_epochs=1, env_rounds=1, mask_epochs=1, max_epochs=2,
        eval_every=1, **common)
    return {"Backbone.fit": backbone, "PaInvRL.fit": pipeline}


def pass_costs(ds, reps: int):
    """The cost of each validation pass one fit made before "validate once", per call
    (best of ``reps``: the machine's load inflates single timings), on ``ds``."""
    from painvrl._util.validation import as_float_array, as_index_array, check_distinct_pairs
    from painvrl.data.csr import UserItemCSR
    from painvrl.invariance.mask import ultragcn_betas
    from painvrl.models.functional import loss_weights
    u, i = ds.train[:, 0], ds.train[:, 1]
    uc, ic = np.ascontiguousarray(u), np.ascontiguousarray(i)
    labels = np.zeros(ds.n_train, np.int64)
    pairs = np.concatenate([ds.train, ds.val.to_pairs()])
    trusted = getattr(UserItemCSR, "_from_trusted_pairs", None)
    rows = [
        ("learn_mask, convert_item_vectors", "X: isfinite over the feature table",
         lambda: as_float_array(ds.features, "X", ndim=2)),
        ("learn_mask", "users, items: int64 copy + range",
         lambda: (as_index_array(u, "users", high=ds.n_users),
                  as_index_array(i, "items", high=ds.n_items))),
        ("learn_mask", "check_distinct_pairs (lexsort)", lambda: check_distinct_pairs(uc, ic, "p")),
        ("learn_mask", "ultragcn_betas (np.unique degrees)",
         lambda: ultragcn_betas(uc, ic, ds.n_users, ds.n_items)),
        ("learn_mask", "env labels: range", lambda: as_index_array(labels, "env", high=4)),
        ("Backbone.fit, identify_environments", "loss_weights(degrees): checks + maths",
         lambda: loss_weights(ds.user_degree, ds.item_degree)),
        ("Backbone.fit, identify_environments", "train[:, 0], train[:, 1] contiguous copies",
         lambda: (np.ascontiguousarray(u), np.ascontiguousarray(i))),
        ("evaluate(exclude='train+val'), compare", "from_pairs (checked) - trusted",
         lambda: UserItemCSR.from_pairs(pairs[:, 0], pairs[:, 1], ds.n_users, ds.n_items)),
    ]
    if trusted is not None:
        rows.append(("evaluate(exclude='train+val'), compare", "  the trusted build it subtracts",
                     lambda: trusted(pairs[:, 0], pairs[:, 1], ds.n_users, ds.n_items)))
    print(f"\nper-pass cost (best of {reps}), {ds.n_train:,} training pairs, features "
          f"{ds.features.shape}:")
    for where, what, fn in rows:
        best = min(_timed(fn) for _ in range(reps))
        print(f"  {where:40s} {what:44s} {best * 1e3:8.2f} ms")


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--scale", type=float, default=0.3)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--json", default=None)
    p.add_argument("--passes", type=int, default=0, metavar="REPS",
                   help="only time each former validation pass, best of REPS, and exit")
    args = p.parse_args(argv)
    header("bench_validate_once", args.quick)
    print(f"painvrl imported from {os.path.dirname(painvrl.__file__)}")
    t = time.perf_counter()
    if args.quick:
        ds, _ = datasets.make_spurious()
    else:
        ds = datasets.make_tiktok_like(scale=args.scale)
    build = time.perf_counter() - t
    print(f"{ds!r}, built in {build:.2f} s; features {ds.features.shape} "
          f"({ds.features.nbytes / 2**20:.1f} MiB)")
    if args.passes:
        pass_costs(ds, args.passes)
        return
    rec = Recorder(ds.features.shape, ds.n_train)
    instrument(rec)
    out = {}
    for label, make in fits(args.quick).items():
        times, passes = [], None
        for r in range(args.repeat):
            model = make()
            rec.reset()
            rec.on = True
            t = time.perf_counter()
            model.fit(ds)
            times.append(time.perf_counter() - t)
            rec.on = False
            if passes is None:
                passes = dict(rec.calls)
                scans, isf = rec.full_scans, rec.isfinite_calls
        val = sum(v[2] for v in passes.values())
        print(f"\n{label}: fit {statistics.median(times):.3f} s (median of {len(times)}: "
              f"{', '.join(f'{x:.3f}' for x in times)}); validation passes "
              f"{sum(v[0] for v in passes.values())} calls, {val * 1e3:.1f} ms; np.isfinite "
              f"{isf} calls, {scans} over the feature table")
        print(f"  {'caller':44s} {'helper':22s} {'param':16s} {'calls':>5s} {'elements':>12s} "
              f"{'ms':>8s}")
        for (caller, helper, param), (n, el, s) in passes.items():
            print(f"  {caller:44s} {helper:22s} {param:16s} {n:5d} {el:12,d} {s * 1e3:8.2f}")
        out[label] = {"fit_seconds": times, "validation_seconds": val,
                      "validation_calls": sum(v[0] for v in passes.values()),
                      "full_table_isfinite": scans, "isfinite_calls": isf,
                      "passes": [[*k, *v] for k, v in passes.items()]}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
