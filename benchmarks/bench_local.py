"""Benchmark: batched local Moran / Gi* against esda's per-sector loop (and pygeoda).

Data: N synthetic points (half uniform over a 1e5 square, half in
40 Gaussian blobs, sigma 4e3), kNN k = 8 row-standardised, P = 999, spatially autocorrelated
variables of three kinds, each timed on its own rows (``--kinds``): dense Poisson counts
(mean 3), sparse Poisson counts (mean 0.4, like most commune x sector cells) and continuous
values (gamma, like smoothed LQs, rates or shares). ``mixed`` rotates the three in one
table (the S = 732 memory run uses it).

Prints a table of medians (seconds; clustermap: of ``--repeats`` runs up to S = 100, esda's
loop: of ``--repeats`` runs at S = 1, one run beyond), ratios against esda's loop, throughput in
unit x permutation x neighbour x sector operations per second, the machine's memory copy
bandwidth, the first-call (JIT) cost, and the peak memory (max RSS) of a full S = 732 run
in a child process.

Usage (from the repository root)::

    .venv/bin/python benchmarks/bench_local.py                 # full run (about 10 min)
    .venv/bin/python benchmarks/bench_local.py --quick         # N = 5000, S <= 50, no esda S=50
    .venv/bin/python benchmarks/bench_local.py --sizes 1 10 50 --esda-max-s 10 --no-pygeoda

On a shared machine timings are noisy: read the ratios first.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import pandas as pd

K_NEIGHBOURS = 8


def make_points(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    half = n // 2
    uni = rng.uniform(0, 1e5, size=(half, 2))
    centres = rng.uniform(0, 1e5, size=(40, 2))
    which = rng.integers(0, 40, size=n - half)
    blobs = centres[which] + rng.normal(scale=4e3, size=(n - half, 2))
    return np.vstack([uni, blobs])


def make_graph(xy: np.ndarray):
    import geopandas as gpd

    import clustermap as cm

    pts = gpd.GeoSeries.from_xy(xy[:, 0], xy[:, 1])
    return cm.build_graph(pts, method="knn", k=K_NEIGHBOURS, transform="r")


KINDS = ("dense", "sparse", "continuous")


def make_values(graph, n_sectors: int, seed: int = 1, kind: str = "mixed") -> pd.DataFrame:
    """Spatially autocorrelated variables (smoothed Gaussian fields) of one kind, or mixed."""
    rng = np.random.default_rng(seed)
    W = graph.sparse
    n = W.shape[0]
    out = np.empty((n, n_sectors))
    for c0 in range(0, n_sectors, 64):  # in chunks, to keep the peak memory low
        c1 = min(n_sectors, c0 + 64)
        field = rng.normal(size=(n, c1 - c0))
        for _ in range(3):
            field = 0.5 * field + 0.5 * (W @ field)
        field /= field.std(axis=0)
        for s in range(c0, c1):
            f = field[:, s - c0]
            this = KINDS[s % 3] if kind == "mixed" else kind
            lift = np.exp(0.5 * f)
            lift /= lift.mean()
            if this == "dense":
                out[:, s] = rng.poisson(3.0 * lift)
            elif this == "sparse":
                out[:, s] = rng.poisson(0.4 * lift)
            else:
                out[:, s] = rng.gamma(2.0, 1.5 * lift)
    cols = [f"s{s:03d}" for s in range(n_sectors)]
    return pd.DataFrame(out, index=graph.unique_ids, columns=cols)


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def copy_bandwidth() -> float:
    """GB/s of a large numpy copy (bytes read + written)."""
    a = np.ones(50_000_000)  # 400 MB
    b = np.empty_like(a)
    np.copyto(b, a)
    best = np.inf
    for _ in range(5):
        t0 = time.perf_counter()
        np.copyto(b, a)
        best = min(best, time.perf_counter() - t0)
    return 2 * a.nbytes / best / 1e9


def first_call_cost() -> dict:
    """Seconds of a first local_moran + local_getis_ord call in a fresh process.

    ``cold``: empty numba cache (compilation); ``warm``: the cache left by the cold run.
    """
    code = (
        "import time, numpy as np, pandas as pd, geopandas as gpd, clustermap as cm\n"
        "pts = gpd.GeoSeries.from_xy(np.arange(50.0), np.arange(50.0) % 7)\n"
        "g = cm.build_graph(pts, method='knn', k=4)\n"
        "y = pd.DataFrame(np.arange(100.0).reshape(50, 2) % 5, index=g.unique_ids)\n"
        "t = time.perf_counter()\n"
        "cm.local_moran(y, g, permutations=9, random_state=0)\n"
        "cm.local_getis_ord(y, g, permutations=9, random_state=0)\n"
        "print(time.perf_counter() - t)\n"
    )
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for label in ("cold", "warm"):
            res = subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
            )
            out[label] = float(res.stdout.strip().splitlines()[-1])
    return out


def child_full_run(
    n: int, n_sectors: int, permutations: int, stat: str, early_stop, kind: str
) -> dict:
    """Run one batched call in a child process; report its time and peak memory."""
    code = (
        "import json, resource, time, sys\n"
        f"sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})\n"
        "import bench_local as b, clustermap as cm\n"
        f"xy = b.make_points({n}); g = b.make_graph(xy)\n"
        f"y = b.make_values(g, {n_sectors}, kind={kind!r})\n"
        "cm.local_moran(y.iloc[:, :2], g, permutations=9, random_state=0)\n"
        "t = time.perf_counter()\n"
        f"f = cm.local_moran if {stat!r} == 'moran' else cm.local_getis_ord\n"
        f"r = f(y, g, permutations={permutations}, random_state=0, early_stop={early_stop!r})\n"
        "el = time.perf_counter() - t\n"
        "print(json.dumps({'seconds': el, "
        "'max_rss_gb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}))\n"
    )
    # twice: the table's storage groups are one kernel specialisation, whose first
    # compilation (then read from numba's on-disk cache) is not what this run measures
    for _ in range(2):
        res = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=35_000)
    ap.add_argument("--permutations", type=int, default=999)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 50, 732])
    ap.add_argument("--esda-max-s", type=int, default=50, help="largest S for the esda loop")
    ap.add_argument(
        "--esda-jobs",
        type=int,
        nargs="+",
        default=[1, -1],
        help="esda n_jobs values to run (1: serial; -1: its process pool on every core)",
    )
    ap.add_argument(
        "--esda-par-max-s", type=int, default=50, help="largest S for esda with n_jobs != 1"
    )
    ap.add_argument(
        "--kinds", nargs="+", default=list(KINDS), choices=[*KINDS, "mixed"], help="values"
    )
    ap.add_argument("--no-esda", action="store_true")
    ap.add_argument("--no-pygeoda", action="store_true")
    ap.add_argument("--no-child", action="store_true", help="skip the S=732 peak-memory run")
    ap.add_argument(
        "--in-process-large", action="store_true", help="also time S > 100 in this process"
    )
    ap.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="runs per median: clustermap up to S = 100, esda and pygeoda at S = 1",
    )
    ap.add_argument("--quick", action="store_true", help="N = 5000, S in (1, 10, 50)")
    args = ap.parse_args()
    if args.quick:
        args.n, args.sizes, args.esda_max_s, args.esda_par_max_s = 5000, [1, 10, 50], 10, 1
    import numba

    import clustermap as cm

    n, P = args.n, args.permutations
    print(f"# bench_local: N = {n}, kNN k = {K_NEIGHBOURS} (row-standardised), P = {P}")
    print(
        f"# numba threads available: {numba.config.NUMBA_NUM_THREADS}; cpu_count {os.cpu_count()}"
    )
    bw = copy_bandwidth()
    print(f"# numpy copy bandwidth: {bw:.1f} GB/s (read + write)")
    fc = first_call_cost()
    print(
        f"# first call (local_moran + local_getis_ord, tiny input): {fc['cold']:.1f} s with an "
        f"empty numba cache, {fc['warm']:.1f} s with the on-disk cache"
    )
    t0 = time.perf_counter()
    xy = make_points(n)
    graph = make_graph(xy)
    print(f"# build_graph(knn) on {n} points: {time.perf_counter() - t0:.2f} s")
    smax = max(args.sizes)
    rows = []
    # (values, stat, S) -> serial esda loop seconds
    esda_times: dict[tuple[str, str, int], float] = {}
    esda_warm: set[tuple[str, int]] = set()
    W = graph.to_W()
    W.transform = "r"
    for kind, S in [(kind, S) for kind in args.kinds for S in sorted(args.sizes)]:
        if S > 100 and not args.in_process_large:
            continue  # measured in a child process below (time and peak memory)
        if min(args.sizes) == S:  # a new kind of values; warm its kernel (JIT)
            print(f"# values: {kind}", flush=True)
            Y = make_values(graph, min(smax, 100) if not args.in_process_large else smax, kind=kind)
            cm.local_moran(Y.iloc[:, :2], graph, permutations=9)
            cm.local_getis_ord(Y.iloc[:, :2], graph, permutations=9)
        y = Y.iloc[:, :S]
        reps = args.repeats if S == 1 else 1  # esda's loop takes minutes at S = 50
        # clustermap's runs take seconds: a median of several up to S = 100 (one run of a
        # shared VM can be 40 % off)
        reps_cm = args.repeats if S <= 100 else 1
        for stat in ("moran", "gstar"):
            fn = cm.local_moran if stat == "moran" else cm.local_getis_ord
            for n_jobs in (1, -1):
                if S > 100 and n_jobs == 1:
                    continue
                for es in (None, 0.1) if S >= 50 and n_jobs == -1 else (None,):
                    sec = timed(
                        lambda fn=fn, y=y, n_jobs=n_jobs, es=es: fn(
                            y, graph, permutations=P, random_state=0, n_jobs=n_jobs, early_stop=es
                        ),
                        reps_cm,
                    )
                    ops = n * P * K_NEIGHBOURS * S / sec
                    rows.append(
                        {
                            "engine": "clustermap",
                            "values": kind,
                            "stat": stat,
                            "S": S,
                            "n_jobs": n_jobs,
                            "early_stop": es,
                            "seconds": sec,
                            "gops": ops / 1e9,
                        }
                    )
                    print(
                        f"  clustermap {kind:10s} {stat:6s} S={S:4d} n_jobs={n_jobs:2d} "
                        f"early_stop={es}: {sec:8.2f} s  "
                        f"({ops / 1e9:.2f} G unit*perm*nbr*sector/s)",
                        flush=True,
                    )
            for esda_jobs in args.esda_jobs:
                limit = args.esda_max_s if esda_jobs == 1 else args.esda_par_max_s
                if args.no_esda or limit < S:
                    continue
                import esda

                def esda_loop(stat=stat, y=y, esda_jobs=esda_jobs):
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        for c in y.columns:
                            v = y[c].to_numpy()
                            if stat == "moran":
                                esda.Moran_Local(
                                    v,
                                    W,
                                    permutations=P,
                                    n_jobs=esda_jobs,
                                    seed=1,
                                    keep_simulations=False,
                                )
                            else:
                                esda.G_Local(
                                    v,
                                    W,
                                    transform="R",
                                    star=True,
                                    permutations=P,
                                    n_jobs=esda_jobs,
                                    seed=1,
                                    keep_simulations=False,
                                )

                if (stat, esda_jobs) not in esda_warm:
                    esda_loop(stat, Y.iloc[:, :1])
                    esda_warm.add((stat, esda_jobs))
                sec = timed(esda_loop, reps)
                if esda_jobs == 1:
                    esda_times[(kind, stat, S)] = sec
                rows.append(
                    {
                        "engine": "esda loop",
                        "values": kind,
                        "stat": stat,
                        "S": S,
                        "n_jobs": esda_jobs,
                        "early_stop": None,
                        "seconds": sec,
                        "gops": n * P * K_NEIGHBOURS * S / sec / 1e9,
                    }
                )
                print(
                    f"  esda       {kind:10s} {stat:6s} S={S:4d} n_jobs={esda_jobs:2d}: "
                    f"{sec:8.2f} s",
                    flush=True,
                )
        if not args.no_pygeoda and S <= 50:
            try:
                import geopandas as gpd
                import pygeoda
            except ImportError:
                args.no_pygeoda = True
            else:
                gdf = gpd.GeoDataFrame(
                    y.reset_index(drop=True), geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1])
                )
                gda = pygeoda.open(gdf)
                gw = pygeoda.knn_weights(gda, K_NEIGHBOURS)
                cols = list(y.columns)

                def geoda_batch(cols=cols, gda=gda, gw=gw, y=y):
                    data = [y[c].to_numpy(dtype=float).tolist() for c in cols]
                    pygeoda.batch_local_moran(gw, data, permutations=P, cpu_threads=2, seed=1)

                try:
                    sec = timed(geoda_batch, reps)
                except Exception as err:  # report and go on: pygeoda is only a reference
                    print(f"  pygeoda batch_local_moran failed: {err!r}")
                    args.no_pygeoda = True
                    continue
                rows.append(
                    {
                        "engine": "pygeoda batch",
                        "values": kind,
                        "stat": "moran",
                        "S": S,
                        "n_jobs": 2,
                        "early_stop": None,
                        "seconds": sec,
                        "gops": n * P * K_NEIGHBOURS * S / sec / 1e9,
                    }
                )
                print(
                    f"  pygeoda batch_local_moran S={S:4d} cpu_threads=2: {sec:8.2f} s", flush=True
                )

    table = pd.DataFrame(rows)
    # esda's loop is linear in S (one independent call per sector): for S above
    # --esda-max-s the reference time is extrapolated from the largest measured S (marked *)
    extrapolated = set()

    def esda_ref(kind: str, stat: str, S: int) -> float:
        if (kind, stat, S) in esda_times:
            return esda_times[(kind, stat, S)]
        measured = [s for (k, st, s) in esda_times if st == stat and k == kind]
        if not measured:
            return np.nan
        base = max(measured)
        extrapolated.add((kind, stat, S))
        return esda_times[(kind, stat, base)] * S / base

    table["vs_esda"] = [
        esda_ref(r.values, r.stat, r.S) / r.seconds for r in table.itertuples()
    ]  # esda's serial loop (n_jobs=1) on the same values is the reference, as in the issue
    table["esda_ref"] = [
        "extrapolated*" if (r.values, r.stat, r.S) in extrapolated else "measured"
        for r in table.itertuples()
    ]
    pd.set_option("display.width", 140)
    print("\n## medians (seconds); vs_esda = esda loop time / this time (same stat and S)")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print(
        f"\nthroughput is N*P*k*S / seconds; copy bandwidth {bw:.1f} GB/s moves "
        f"{bw * 1e9 / 8 / 1e9:.2f} G float64/s (each op reads one float64 of a neighbour row)"
    )
    if not args.no_child and smax > 100:
        for kind in ("continuous", "mixed"):  # the hard kind alone, and the three together
            res = child_full_run(n, smax, P, "moran", None, kind)
            print(
                f"child run: local_moran S={smax} P={P} {kind} values: {res['seconds']:.1f} s, "
                f"max RSS {res['max_rss_gb']:.2f} GB"
            )
    print(
        f"# peak RSS of this process: "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB"
    )


if __name__ == "__main__":
    main()
