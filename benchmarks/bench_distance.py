"""Benchmark: Kd / Kemp / M and their envelopes against the dbmss 2.11 timings.

    python benchmarks/bench_distance.py [--repeat N] [--quick]

Needs ../shared/datasets/reference_dbmss/points_01_39_74.csv (15 438 establishments) beside
the repository for the dbmss comparisons. The dbmss figures are **constants copied from
../shared/datasets/reference_dbmss/README.md §6** (dbmss 2.11-0, R 4.2.2, serial, median of 3
runs on the same kind of 2-core machine); dbmss is not run here.

Targets: KdEnvelope and MEnvelope (100 simulations) >= 10x faster than dbmss; Kd of all
15 438 points as one type (119 M pairs, exact) >= 10x faster; a sector of 20 000
establishments among 600 000 sites with 100 simulations in under 60 s.

dbmss's "exact" Kd (Approximate = 0) is clustermap's method="binned" (same algorithm, same
numbers to 1e-11); clustermap's method="exact" (the default) evaluates the Gaussian sums
without binning and is shown too. First-call JIT compilation is measured separately in a
fresh process with an empty NUMBA_CACHE_DIR.
"""

from __future__ import annotations

import os

# numba's OpenMP layer spin-waits between parallel regions by default; on a shared machine the
# spinning threads steal CPU from the working ones (measured 3x slower with 2 threads under a
# load of ~3). Passive waiting changes nothing on a quiet machine. Set before numba loads.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numba
import numpy as np
import pandas as pd

import clustermap as cm

ROOT = Path(__file__).resolve().parents[1]
POINTS = ROOT.parent / "shared" / "datasets" / "reference_dbmss" / "points_01_39_74.csv"
R_KD = np.arange(0, 60.0001, 0.5)
R_M = np.array([0, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 40, 50.0])
KW = {"columns": {"x": "x_km", "y": "y_km", "weight": "weight"}}

# dbmss 2.11-0 medians (s), from reference_dbmss/README.md §6 (constants, not measured here)
DBMSS = {
    "Kdhat 25.62A (398 pts)": 0.007,
    "KdEnvelope 25.62A, 100 sims": 1.02,
    "MEnvelope 25.62A, 100 sims": 7.16,
    "Kdhat all 15 438 pts as one type": 16.9,
}


def _timed(func, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _first_call_seconds() -> float:
    """JIT compile + first run of k_density and m_function in a fresh process and cache."""
    code = (
        "import time, numpy as np, pandas as pd, clustermap as cm\n"
        "rng = np.random.default_rng(0)\n"
        "df = pd.DataFrame({'x': rng.uniform(0, 10, 50), 'y': rng.uniform(0, 10, 50),\n"
        "                   'sector': ['A'] * 20 + ['B'] * 30})\n"
        "t = time.perf_counter()\n"
        "for m in ('exact', 'binned'):\n"
        "    cm.k_density(df, 'A', r=np.linspace(0, 5, 11), options={'method': m}, simulations=2)\n"
        "cm.m_function(df, 'A', r=[1.0, 2.0], simulations=2)\n"
        "print(time.perf_counter() - t)\n"
    )
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, NUMBA_CACHE_DIR=tmp, PYTHONWARNINGS="ignore")
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
    return float(out.stdout.strip().splitlines()[-1])


def _large_pattern(n_sites=600_000, n_sector=20_000, seed=0) -> pd.DataFrame:
    """600 000 sites over a 1 000 x 1 000 km square: 70 % in 300 'towns', 30 % uniform."""
    rng = np.random.default_rng(seed)
    n_town = int(0.7 * n_sites)
    centres = rng.uniform(0, 1000, size=(300, 2))
    sizes = rng.pareto(1.2, 300) + 1
    which = rng.choice(300, n_town, p=sizes / sizes.sum())
    town = centres[which] + rng.normal(0, 1, (n_town, 2)) * rng.uniform(2, 12, 300)[which, None]
    xy = np.vstack([town, rng.uniform(0, 1000, size=(n_sites - n_town, 2))])
    sector = np.full(n_sites, "other", dtype=object)
    sector[rng.choice(n_sites, n_sector, replace=False)] = "S"
    return pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "sector": sector})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="skip the 600 000-site case")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    warnings.simplefilter("ignore", cm.errors.ClustermapWarning)
    print(
        f"numba threads: {numba.get_num_threads()} ("
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}); repeat: {args.repeat} (medians)"
    )
    print(f"first call (JIT compile, empty cache, fresh process): {_first_call_seconds():.1f} s")
    rows = []
    if POINTS.exists():
        pts = pd.read_csv(POINTS, dtype={"siret": str})
        # warm the kernels (cache=True: compiled code is loaded from disk after the first run)
        cm.k_density(pts, "25.62A", r=R_KD, simulations=2, options={"method": "binned"}, **KW)
        cm.k_density(pts, "25.62A", r=R_KD, simulations=2, **KW)
        cm.m_function(pts, "25.62A", r=R_M, simulations=2, weighted=True, **KW)
        for method in ("binned", "exact"):
            rows.append((
                "Kdhat 25.62A (398 pts)", method,
                _timed(lambda m=method: cm.k_density(
                    pts, "25.62A", r=R_KD, simulations=0, options={"method": m}, **KW),
                    args.repeat),
            ))  # fmt: skip
            rows.append((
                "KdEnvelope 25.62A, 100 sims", method,
                _timed(lambda m=method: cm.k_density(
                    pts, "25.62A", r=R_KD, simulations=100, options={"method": m},
                    random_state=1, **KW),
                    args.repeat),
            ))  # fmt: skip
        rows.append((
            "MEnvelope 25.62A, 100 sims", "weighted",
            _timed(lambda: cm.m_function(
                pts, "25.62A", r=R_M, simulations=100, weighted=True, random_state=1, **KW),
                args.repeat),
        ))  # fmt: skip
        one = pts.assign(sector="ALL")
        for method in ("binned", "exact"):
            rows.append((
                "Kdhat all 15 438 pts as one type", method,
                _timed(lambda m=method: cm.k_density(
                    one, "ALL", r=R_KD, simulations=0, options={"method": m}, **KW), args.repeat),
            ))  # fmt: skip
    else:
        print(f"skipped the dbmss comparisons: {POINTS} is absent")
    if not args.quick:
        big = _large_pattern()
        r = np.arange(0, 50.0001, 0.5)
        for method in ("binned", "exact"):
            rows.append((
                "20 000 of 600 000 sites, 100 sims", method,
                _timed(lambda m=method: cm.k_density(
                    big, "S", r=r, simulations=100, options={"method": m}, random_state=1), 1),
            ))  # fmt: skip
    print()
    print(f"{'task':<36} {'variant':<8} {'clustermap s':>12} {'dbmss s*':>9} {'speed-up':>9}")
    for task, variant, sec in rows:
        ref = DBMSS.get(task)
        ratio = f"{ref / sec:8.1f}x" if ref else "       -"
        refs = f"{ref:9.3f}" if ref else "        -"
        print(f"{task:<36} {variant:<8} {sec:12.3f} {refs} {ratio}")
    print(
        "\n* dbmss 2.11-0 medians are constants from reference_dbmss/README.md §6 (not run here);"
        "\n  dbmss Approximate = 0 corresponds to clustermap method='binned'. Target for the"
        "\n  600 000-site case: < 60 s (one run)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
