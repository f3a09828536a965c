"""Full-ranking top-10 at TikTok size: painvrl's C evaluator vs a plain NumPy reference.

Shape (method.md §6.3, TikTok): 36,656 users x 76,085 items, 128-d vectors
(user = [id embedding 64; content 64], item = [id embedding 64; projected
content 64]), ~564,000 training interactions with power-law item popularity
excluded from the ranking (-inf mask), top-10 of every user.

Each measurement runs in a fresh subprocess that loads the same inputs, resets
its peak-RSS counter (``/proc/self/clear_refs``), runs the evaluator once and
reports the wall time and VmHWM - VmRSS(before): the extra peak memory of the
call, C mallocs and BLAS buffers included (tracemalloc would miss them).

painvrl is timed twice per repeat, alternating: scores by sgemm (the default) and
with ``prefilter="bf16"`` (bfloat16 estimates, AMX where present, exact float32
rescoring of the items the error bound keeps); their rankings are compared.

The NumPy reference (scores = U @ V.T per chunk of users, mask, argpartition,
sort the top 10) is timed on a subset of users and extrapolated linearly to
all users; the output says so.  Its ids are compared with painvrl's on that
subset.

--quick: 4,000 users x 8,000 items, 60,000 training and 8,000 test pairs, the NumPy
reference on 1,024 users (same code path, subprocesses included), in seconds.

Usage:
    python benchmarks/bench_eval.py                  # default blocks, reference on 4096 users
    python benchmarks/bench_eval.py --tune           # also sweep user_chunk x item_tile
    python benchmarks/bench_eval.py --repeat 3       # best of 3 for the C evaluator
    python benchmarks/bench_eval.py --quick          # small sizes, in seconds
Timings on a shared machine are noisy: use --repeat and read the minimum.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

DIM, K = 128, 10
FULL = dict(n_users=36_656, n_items=76_085, n_train=564_000, n_test=72_600, subset=4096)
QUICK = dict(n_users=4_000, n_items=8_000, n_train=60_000, n_test=8_000, subset=1024)
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from _common import header, parser, run_sizes, size_option  # noqa: E402


# ------------------------------------------------------------------- data (seeded)

def make_data(s, seed: int = 0):
    """TikTok-shaped synthetic model of sizes ``s``: vectors and a power-law training set."""
    n_users, n_items, n_train, n_test = s.n_users, s.n_items, s.n_train, s.n_test
    rng = np.random.default_rng(seed)
    half = DIM // 2
    # item popularity ~ Zipf(0.9) over a random permutation of ids
    pop = 1.0 / np.arange(1, n_items + 1) ** 0.9
    pop = pop[rng.permutation(n_items)]
    pop /= pop.sum()
    # user activity: heavy-tailed too (log-normal), at least one interaction each
    act = rng.lognormal(0.0, 1.0, n_users)
    act /= act.sum()
    users = rng.choice(n_users, size=int((n_train + n_test) * 1.1), p=act)
    items = rng.choice(n_items, size=users.size, p=pop)
    key = rng.permutation(np.unique(users.astype(np.int64) * n_items + items))
    train = np.divmod(key[:n_train], n_items)
    test = np.divmod(key[n_train:n_train + n_test], n_items)
    # vectors: id parts ~ N(0, 0.1); content 128-d features projected to 64 by W;
    # a popularity direction makes popular items score high for most users, as
    # trained models do (this is what stresses the heap: many early inserts).
    uid = rng.normal(0, 0.1, (n_users, half))
    ucontent = rng.normal(0, 0.1, (n_users, half))
    vid = rng.normal(0, 0.1, (n_items, half))
    x = rng.normal(0, 1.0, (n_items, 128))
    W = rng.normal(0, 1.0 / np.sqrt(128), (half, 128)) * 0.1
    vproj = x @ W.T
    vid[:, 0] += 0.3 * np.log(pop * n_items)
    uid[:, 0] = np.abs(uid[:, 0]) + 0.2
    U = np.concatenate([uid, ucontent], axis=1).astype(np.float32)
    V = np.concatenate([vid, vproj], axis=1).astype(np.float32)
    return U, V, train, test


# ------------------------------------------------------------------- workers

def _status():
    d = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmHWM", "VmRSS")):
                d[line.split(":")[0]] = int(line.split()[1]) * 1024
    return d


def _reset_peak():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def numpy_topk(U, V, train, k, chunk):
    """Straightforward NumPy full ranking (float32 GEMM, -inf mask, argpartition)."""
    out = np.empty((U.shape[0], k), np.int64)
    VT = V.T
    for a in range(0, U.shape[0], chunk):
        b = min(a + chunk, U.shape[0])
        S = U[a:b] @ VT
        lens = train.indptr[a + 1:b + 1] - train.indptr[a:b]
        rows = np.repeat(np.arange(b - a), lens)
        S[rows, train.indices[train.indptr[a]:train.indptr[b]]] = -np.inf
        part = np.argpartition(S, -k, axis=1)[:, -k:]
        top = np.take_along_axis(S, part, axis=1)
        # descending score, ties by ascending id (painvrl's rule)
        order = np.lexsort((part, -top), axis=1)
        out[a:b] = np.take_along_axis(part, order, axis=1)
    return out


def worker(args):
    from painvrl.data import UserItemCSR
    d = args.data
    U = np.load(os.path.join(d, "U.npy"))
    V = np.load(os.path.join(d, "V.npy"))
    n_users, n_items = U.shape[0], V.shape[0]
    tr = np.load(os.path.join(d, "train.npz"))
    train = UserItemCSR(tr["indptr"], tr["indices"], n_users, n_items)
    res = {}
    if args.worker == "evaluate":
        from painvrl import metrics
        te = np.load(os.path.join(d, "test.npz"))
        test = UserItemCSR(te["indptr"], te["indices"], n_users, n_items)
        before = _status()["VmRSS"]
        _reset_peak()
        metrics.topk(U[:64], V, K, exclude=None)
        t = time.perf_counter()
        df = metrics.evaluate(U, V, test, exclude=train, ks=(10, 20))
        res["times"] = [time.perf_counter() - t]
        res["peak_extra"] = _status()["VmHWM"] - before
        res["frame"] = df.pivot(index="metric", columns="k", values="value").to_string()
        res["n_users"] = int(df["n_users"].iloc[0])
        print(json.dumps(res))
        return
    if args.worker == "painvrl":
        from painvrl import metrics
        # Peak is measured from here: BLAS buffers and the warm-up call count too.
        before = _status()["VmRSS"]
        _reset_peak()
        metrics.topk(U[:64], V, K, exclude=None)  # warm BLAS threads and buffers
        times, cpu = [], []
        for _ in range(args.repeat):
            t, c = time.perf_counter(), time.process_time()
            ids, scores = metrics.topk(U, V, K, exclude=train, user_chunk=args.user_chunk,
                                       item_tile=args.item_tile, n_threads=args.n_threads,
                                       prefilter=args.prefilter)
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
            del scores
        res["cpu"] = cpu
        res["peak_extra"] = _status()["VmHWM"] - before
        res["times"] = times
        np.save(os.path.join(d, f"ids_{os.getpid()}.npy"), ids)
        res["ids_file"] = f"ids_{os.getpid()}.npy"
    else:
        n = args.subset
        sub = UserItemCSR(train.indptr[:n + 1], train.indices[:train.indptr[n]], n, n_items)
        before = _status()["VmRSS"]
        _reset_peak()
        numpy_topk(U[:64], V, UserItemCSR(train.indptr[:65], train.indices[:train.indptr[64]],
                                          64, n_items), K, 64)
        t = time.perf_counter()
        ids = numpy_topk(U[:n], V, sub, K, args.numpy_chunk)
        res["times"] = [time.perf_counter() - t]
        res["peak_extra"] = _status()["VmHWM"] - before
        np.save(os.path.join(d, "ids_numpy.npy"), ids)
        res["ids_file"] = "ids_numpy.npy"
    print(json.dumps(res))


def run_worker(data, kind, **kw):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", kind, "--data", data]
    for key, val in kw.items():
        if val is not None:
            cmd += [f"--{key.replace('_', '-')}", str(val)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"bench_eval: the {kind} worker failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------- main

def _core_backend() -> str:
    from painvrl import _core
    return _core.topk_bf16_backend()


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--worker", choices=["painvrl", "numpy", "evaluate"],
                   help=argparse.SUPPRESS)  # internal: one measurement in a subprocess
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--repeat", type=int, default=1, help="runs of the C evaluator (best "
                   "printed; default 1)")
    size_option(p, "subset", FULL, QUICK, "users for the NumPy reference")
    p.add_argument("--numpy-chunk", type=int, default=1024,
                   help="users per NumPy GEMM (default 1024)")
    p.add_argument("--user-chunk", type=int, help="painvrl's user_chunk (default its own)")
    p.add_argument("--item-tile", type=int, help="painvrl's item_tile (default its own)")
    p.add_argument("--n-threads", type=int, help="painvrl's n_threads (default its own)")
    p.add_argument("--tune", action="store_true", help="also sweep user_chunk x item_tile")
    p.add_argument("--prefilter", choices=["bf16"], help=argparse.SUPPRESS)  # worker only
    args = p.parse_args(argv)
    if args.worker:
        return worker(args)

    from painvrl import metrics
    header("bench_eval", args.quick)
    s = run_sizes(args, FULL, QUICK)
    t = time.perf_counter()
    U, V, tr, te = make_data(s)
    from painvrl.data import UserItemCSR
    train = UserItemCSR.from_pairs(tr[0], tr[1], s.n_users, s.n_items)
    test = UserItemCSR.from_pairs(te[0], te[1], s.n_users, s.n_items)
    print(f"data: {s.n_users} users x {s.n_items} items, dim {DIM}, {train.nnz} training pairs "
          f"excluded, top-{K}  (made in {time.perf_counter() - t:.1f} s)")
    with tempfile.TemporaryDirectory() as d:
        np.save(os.path.join(d, "U.npy"), U)
        np.save(os.path.join(d, "V.npy"), V)
        np.savez(os.path.join(d, "train.npz"), indptr=train.indptr, indices=train.indices)
        np.savez(os.path.join(d, "test.npz"), indptr=test.indptr, indices=test.indices)
        del U, V

        uc = args.user_chunk or metrics.DEFAULT_USER_CHUNK
        it = args.item_tile or metrics.DEFAULT_ITEM_TILE
        # The sgemm path and the bf16 prefilter alternate, one run each per repeat.
        runs = {None: [], "bf16": []}
        for _ in range(args.repeat):
            for pf in runs:
                runs[pf].append(run_worker(d, "painvrl", repeat=1, user_chunk=args.user_chunk,
                                           item_tile=args.item_tile, n_threads=args.n_threads,
                                           prefilter=pf))
        backend = _core_backend()
        for pf, rs in runs.items():
            ts, cpu = [r["times"][0] for r in rs], [r["cpu"][0] for r in rs]
            what = ("sgemm scores" if pf is None else
                    f"prefilter='bf16' ({backend}), exact float32 rescoring")
            print(f"painvrl.metrics.topk, all {s.n_users} users, {what}, user_chunk={uc} "
                  f"item_tile={it}: {min(ts):.2f} s wall (runs: "
                  f"{', '.join(f'{x:.2f}' for x in ts)}; CPU time of all threads "
                  f"{min(cpu):.2f} s), peak extra memory "
                  f"{max(r['peak_extra'] for r in rs) / 2**20:.0f} MiB")
        res = runs[None][-1]
        a_all = np.load(os.path.join(d, res["ids_file"]))
        c_all = np.load(os.path.join(d, runs["bf16"][-1]["ids_file"]))
        print(f"prefilter='bf16' vs sgemm path, all {s.n_users} users: identical rows "
              f"{np.mean(np.all(a_all == c_all, axis=1)):.4f} (differences = float32 "
              f"rounding ties)")
        ref = run_worker(d, "numpy", subset=s.subset, numpy_chunk=args.numpy_chunk)
        tn = ref["times"][0]
        print(f"NumPy reference (U @ V.T per {args.numpy_chunk} users, mask, argpartition): "
              f"{tn:.2f} s for {s.subset} users -> {tn * s.n_users / s.subset:.1f} s "
              f"extrapolated to all {s.n_users} users; peak extra memory "
              f"{ref['peak_extra'] / 2**20:.0f} MiB")
        a = a_all[:s.subset]
        b = np.load(os.path.join(d, ref["ids_file"]))
        same_rows = np.mean(np.all(a == b, axis=1))
        same_sets = np.mean([np.intersect1d(x, y).size == K for x, y in zip(a, b)])
        print(f"agreement on the {s.subset} reference users: identical rows {same_rows:.4f}, "
              f"identical top-{K} sets {same_sets:.4f} (differences = float32 rounding ties)")

        ev = run_worker(d, "evaluate")
        print(f"painvrl.metrics.evaluate (top-20 of the {ev['n_users']} users with test items "
              f"among {test.nnz} test pairs, 5 metrics at K=10, 20): {ev['times'][0]:.2f} s, "
              f"peak extra memory {ev['peak_extra'] / 2**20:.0f} MiB")
        print("  " + ev["frame"].replace("\n", "\n  "))

        if args.tune:
            print("\ntuning (best of 2 each; seconds, peak extra MiB):")
            for uc in (256, 512, 1024, 2048):
                for it in (1024, 2048, 4096, 8192):
                    r = run_worker(d, "painvrl", repeat=2, subset=1, user_chunk=uc,
                                   item_tile=it)
                    print(f"  user_chunk={uc:5d} item_tile={it:5d}: {min(r['times']):6.2f} s  "
                          f"{r['peak_extra'] / 2**20:5.0f} MiB", flush=True)


if __name__ == "__main__":
    main()
