"""Full-ranking top-10 at TikTok size: painvrl's C evaluator vs a plain NumPy reference.

Shape (method.md §6.3, TikTok): 36,656 users x 76,085 items, 128-d vectors
(user = [id embedding 64; content 64], item = [id embedding 64; projected
content 64]), ~564,000 training interactions with power-law item popularity
excluded from the ranking (-inf mask), top-10 of every user.

Each measurement runs in a fresh subprocess that loads the same inputs, resets
its peak-RSS counter (``/proc/self/clear_refs``), runs the evaluator once and
reports the wall time and VmHWM - VmRSS(before): the extra peak memory of the
call, C mallocs and BLAS buffers included (tracemalloc would miss them).

The NumPy reference (scores = U @ V.T per chunk of users, mask, argpartition,
sort the top 10) is timed on a subset of users and extrapolated linearly to
all users; the output says so.  Its ids are compared with painvrl's on that
subset.

Usage:
    python benchmarks/bench_eval.py                  # default blocks, reference on 4096 users
    python benchmarks/bench_eval.py --tune           # also sweep user_chunk x item_tile
    python benchmarks/bench_eval.py --repeat 3       # best of 3 for the C evaluator
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

N_USERS, N_ITEMS, DIM, N_TRAIN, N_TEST, K = 36_656, 76_085, 128, 564_000, 72_600, 10
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


# ------------------------------------------------------------------- data (seeded)

def make_data(seed: int = 0):
    """TikTok-shaped synthetic model: vectors and a power-law training set."""
    rng = np.random.default_rng(seed)
    half = DIM // 2
    # item popularity ~ Zipf(0.9) over a random permutation of ids
    pop = 1.0 / np.arange(1, N_ITEMS + 1) ** 0.9
    pop = pop[rng.permutation(N_ITEMS)]
    pop /= pop.sum()
    # user activity: heavy-tailed too (log-normal), at least one interaction each
    act = rng.lognormal(0.0, 1.0, N_USERS)
    act /= act.sum()
    users = rng.choice(N_USERS, size=int((N_TRAIN + N_TEST) * 1.1), p=act)
    items = rng.choice(N_ITEMS, size=users.size, p=pop)
    key = rng.permutation(np.unique(users.astype(np.int64) * N_ITEMS + items))
    train = np.divmod(key[:N_TRAIN], N_ITEMS)
    test = np.divmod(key[N_TRAIN:N_TRAIN + N_TEST], N_ITEMS)
    # vectors: id parts ~ N(0, 0.1); content 128-d features projected to 64 by W;
    # a popularity direction makes popular items score high for most users, as
    # trained models do (this is what stresses the heap: many early inserts).
    uid = rng.normal(0, 0.1, (N_USERS, half))
    ucontent = rng.normal(0, 0.1, (N_USERS, half))
    vid = rng.normal(0, 0.1, (N_ITEMS, half))
    x = rng.normal(0, 1.0, (N_ITEMS, 128))
    W = rng.normal(0, 1.0 / np.sqrt(128), (half, 128)) * 0.1
    vproj = x @ W.T
    vid[:, 0] += 0.3 * np.log(pop * N_ITEMS)
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
    tr = np.load(os.path.join(d, "train.npz"))
    train = UserItemCSR(tr["indptr"], tr["indices"], N_USERS, N_ITEMS)
    res = {}
    if args.worker == "evaluate":
        from painvrl import metrics
        te = np.load(os.path.join(d, "test.npz"))
        test = UserItemCSR(te["indptr"], te["indices"], N_USERS, N_ITEMS)
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
                                       item_tile=args.item_tile, n_threads=args.n_threads)
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
            del scores
        res["cpu"] = cpu
        res["peak_extra"] = _status()["VmHWM"] - before
        res["times"] = times
        np.save(os.path.join(d, f"ids_{os.getpid()}.npy"), ids[:args.subset])
        res["ids_file"] = f"ids_{os.getpid()}.npy"
    else:
        n = args.subset
        sub = UserItemCSR(train.indptr[:n + 1], train.indices[:train.indptr[n]], n, N_ITEMS)
        before = _status()["VmRSS"]
        _reset_peak()
        numpy_topk(U[:64], V, UserItemCSR(train.indptr[:65], train.indices[:train.indptr[64]],
                                          64, N_ITEMS), K, 64)
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
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


# ------------------------------------------------------------------- main

def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--worker", choices=["painvrl", "numpy", "evaluate"])
    p.add_argument("--data")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--subset", type=int, default=4096, help="users for the NumPy reference")
    p.add_argument("--numpy-chunk", type=int, default=1024)
    p.add_argument("--user-chunk", type=int)
    p.add_argument("--item-tile", type=int)
    p.add_argument("--n-threads", type=int)
    p.add_argument("--tune", action="store_true")
    args = p.parse_args()
    if args.worker:
        return worker(args)

    from threadpoolctl import threadpool_info
    from painvrl import metrics
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE,
                             capture_output=True, text=True).stdout.strip()
    except OSError:
        sha = "?"
    load = open("/proc/loadavg").read().split()[:3]
    print(f"painvrl {sha}; {os.cpu_count()} cpus (load average {' '.join(load)}: other "
          f"processes inflate wall times); threadpools: " + ", ".join(
        f"{i['internal_api']}({i.get('threading_layer', '-')})x{i['num_threads']}"
        for i in threadpool_info()))
    t = time.perf_counter()
    U, V, tr, te = make_data()
    from painvrl.data import UserItemCSR
    train = UserItemCSR.from_pairs(tr[0], tr[1], N_USERS, N_ITEMS)
    test = UserItemCSR.from_pairs(te[0], te[1], N_USERS, N_ITEMS)
    print(f"data: {N_USERS} users x {N_ITEMS} items, dim {DIM}, {train.nnz} training pairs "
          f"excluded, top-{K}  (made in {time.perf_counter() - t:.1f} s)")
    with tempfile.TemporaryDirectory() as d:
        np.save(os.path.join(d, "U.npy"), U)
        np.save(os.path.join(d, "V.npy"), V)
        np.savez(os.path.join(d, "train.npz"), indptr=train.indptr, indices=train.indices)
        np.savez(os.path.join(d, "test.npz"), indptr=test.indptr, indices=test.indices)
        del U, V

        res = run_worker(d, "painvrl", repeat=args.repeat, subset=args.subset,
                         user_chunk=args.user_chunk, item_tile=args.item_tile,
                         n_threads=args.n_threads)
        uc = args.user_chunk or metrics.DEFAULT_USER_CHUNK
        it = args.item_tile or metrics.DEFAULT_ITEM_TILE
        ts = res["times"]
        print(f"painvrl.metrics.topk, all {N_USERS} users, user_chunk={uc} item_tile={it}: "
              f"{min(ts):.2f} s wall (runs: {', '.join(f'{x:.2f}' for x in ts)}; CPU time "
              f"of all threads {min(res['cpu']):.2f} s), "
              f"peak extra memory {res['peak_extra'] / 2**20:.0f} MiB")
        ref = run_worker(d, "numpy", subset=args.subset, numpy_chunk=args.numpy_chunk)
        tn = ref["times"][0]
        print(f"NumPy reference (U @ V.T per {args.numpy_chunk} users, mask, argpartition): "
              f"{tn:.2f} s for {args.subset} users -> {tn * N_USERS / args.subset:.1f} s "
              f"extrapolated to all {N_USERS} users; peak extra memory "
              f"{ref['peak_extra'] / 2**20:.0f} MiB")
        a = np.load(os.path.join(d, res["ids_file"]))
        b = np.load(os.path.join(d, ref["ids_file"]))
        same_rows = np.mean(np.all(a == b, axis=1))
        same_sets = np.mean([np.intersect1d(x, y).size == K for x, y in zip(a, b)])
        print(f"agreement on the {args.subset} reference users: identical rows {same_rows:.4f}, "
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
