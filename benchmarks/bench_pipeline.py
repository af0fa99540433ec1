"""Whole-pipeline benchmark on the synthetic national registry.

read_registry (read + validate ~600 000 rows) -> read_units (35 357 communes) ->
detect_clusters (assign establishments to communes, aggregate all ~730 NAF sous-classes,
queen graph, exact Poisson window tests with BH, regions, CMP/ECO scores, Gi* with 999
permutations for the sectors with clusters, or for all ~730 sectors with
``--all-sectors``). Prints the median time of each stage over
``--repeat`` runs (each run in a fresh process, so the numba JIT compile is included once
per run, as a user meets it) and the peak resident memory.

Goal (issue 4): under 90 s in all and under 4 GB peak memory on a 2-core machine.

Usage, from the repository root::

    python benchmarks/bench_pipeline.py [--repeat 3] [--no-local-statistic] [--all-sectors]

Needs ../shared/datasets (synthetic_france, france_boundaries) beside the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CLUSTERMAP_SHARED_DATASETS", ROOT.parent / "shared" / "datasets"))
REGISTRY = SHARED / "synthetic_france" / "registry.csv.gz"
COMMUNES = SHARED / "france_boundaries" / "communes_2018_simplified.parquet"


def one_run(local_statistic: bool, all_sectors: bool = False) -> dict[str, float]:
    import warnings

    import clustermap as cm

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        registry = cm.read_registry(REGISTRY, format="sirene")
        t1 = time.perf_counter()
        units = cm.read_units(COMMUNES, unit_id="code_insee", name="nom")
        t2 = time.perf_counter()
        res = cm.detect_clusters(
            registry,
            units,
            local_statistic="getis_ord" if local_statistic else None,
            local_sectors="all" if all_sectors else "clusters",
        )
    t3 = time.perf_counter()
    out = {"read_registry": t1 - t0, "read_units": t2 - t1}
    out.update({f"detect: {k}": v for k, v in res.parameters["timings"].items()})
    out["detect_clusters (total)"] = t3 - t2
    out["whole pipeline"] = t3 - t0
    out["clusters found"] = float(len(res.clusters))
    out["max RSS (GB)"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-local-statistic", action="store_true")
    parser.add_argument(
        "--all-sectors", action="store_true", help="Gi* (999 permutations) for every sector"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not REGISTRY.exists() or not COMMUNES.exists():
        sys.exit(f"needs {REGISTRY} and {COMMUNES} (the shared datasets folder)")
    if args.child:
        print(json.dumps(one_run(not args.no_local_statistic, args.all_sectors)))
        return
    runs = []
    for _ in range(args.repeat):
        cmd = [sys.executable, __file__, "--child"]
        if args.no_local_statistic:
            cmd.append("--no-local-statistic")
        if args.all_sectors:
            cmd.append("--all-sectors")
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    import numpy as np

    keys = list(runs[0])
    scope = "all sectors" if args.all_sectors else "sectors with clusters"
    print(
        f"clustermap pipeline on {REGISTRY.name}, {args.repeat} run(s), {os.cpu_count()} CPUs, "
        f"Gi* for {scope}"
    )
    print(f"{'stage':<32}{'median':>10}{'min':>10}{'max':>10}")
    for key in keys:
        vals = np.array([r.get(key, np.nan) for r in runs])
        unit = "" if key in ("clusters found", "max RSS (GB)") else " s"
        print(
            f"{key:<32}{np.median(vals):>9.2f}{unit:2}{vals.min():>8.2f}{unit:2}"
            f"{vals.max():>8.2f}{unit:2}"
        )
    total = np.median([r["whole pipeline"] for r in runs])
    rss = max(r["max RSS (GB)"] for r in runs)
    print(f"goal: < 90 s and < 4 GB -> {'met' if total < 90 and rss < 4 else 'NOT met'}")


if __name__ == "__main__":
    main()
