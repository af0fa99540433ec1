"""A Europe-sized registry on a Dask LocalCluster of 1 and 2 workers, beside one machine.

Builds once (cached in ``--data``) a synthetic registry with the project's generator
(:func:`clustermap.make_registry`) on a square grid of 10 km cells in EPSG:3035 (default
20 million establishments over 99 856 cells, closed and dirty rows included), written as
partitioned Parquet, one file per generated part. Then, each in a fresh process:

* ``single``: ``read_registry(folder)`` → ``aggregate`` → ``detect_clusters``, no Dask;
* ``dask-1`` / ``dask-2``: the same calls with ``client=`` on a LocalCluster of 1 or 2
  worker processes of one thread each.

Prints the median time of each stage over ``--repeat`` runs, the peak resident memory of
the process (single) or of each worker and of the client process (Dask), and checks that
every configuration gives the same reject counts, the same table and the same clusters.

Usage, from the repository root (needs ``pip install -e ".[dask]"``)::

    python benchmarks/bench_dask.py [--establishments 20000000] [--repeat 1] [--data DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

PART = 500_000  # active establishments per generated part (one Parquet file each)
SIDE_M = 3_160_000  # the grid's side: 316 x 316 cells of 10 km, about Europe's extent


def grid():
    import geopandas as gpd
    from shapely.geometry import box

    import clustermap as cm

    area = gpd.GeoSeries([box(0, 0, SIDE_M, SIDE_M)], crs=3035)
    return cm.make_grid(area, cell_size=10_000)


def _make_part(args: tuple) -> int:
    """One part of the registry: the generator's rows, ids made unique over all parts."""
    import pandas as pd

    import clustermap as cm

    index, folder, clusters = args
    units = grid()
    reg, _ = cm.make_registry(
        units,
        n_establishments=PART,
        clusters=clusters,
        random_state=1000 + index,
        html_names=False,
        dirty=True,
    )
    # the generator numbers ids per call: renumber them over the whole registry, keeping
    # the planted duplicates (a copy of an earlier row of the part) duplicated
    codes, _ = pd.factorize(reg["siret"])
    reg["siret"] = [f"{index:04d}{c:010d}" for c in codes]
    reg["siren"] = reg["siret"].str[:9]
    reg = reg.astype(str).where(reg.notna(), None)
    reg.to_parquet(folder / f"part.{index}.parquet", index=False)
    return len(reg)


def build(folder: Path, n_establishments: int) -> None:
    import clustermap as cm

    parts = max(1, round(n_establishments / PART))
    if folder.exists() and len(list(folder.glob("part.*.parquet"))) == parts:
        return
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    # the planted clusters' centres, fixed once so that every part plants the same clusters
    _, key = cm.make_registry(grid(), n_establishments=PART, random_state=1000, html_names=False)
    clusters = key[key["kind"] == "planted"][["name", "naf", "radius_km", "extra", "centre"]]
    with ProcessPoolExecutor(os.cpu_count()) as pool:
        rows = sum(pool.map(_make_part, [(i, folder, clusters) for i in range(parts)]))
    print(f"built {rows:,} rows in {parts} files in {time.perf_counter() - start:.0f} s")


def one_run(folder: Path, workers: int) -> dict:
    """One configuration in this (fresh) process; returns timings, memory and checksums."""
    import warnings

    import numpy as np

    import clustermap as cm

    client = None
    if workers:
        from distributed import Client, LocalCluster

        client = Client(
            LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
            )
        )
    units = grid()
    out: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        west, south, east, north = units.to_crs(4326).total_bounds
        box = (west - 1, south - 1, east + 1, north + 1)  # the grid's area, in degrees
        reg = cm.read_registry(folder, format="sirene", options={"bounds": box}, client=client)
        t1 = time.perf_counter()
        table = cm.aggregate(reg, units, sparse=True, client=client)
        t2 = time.perf_counter()
        res = cm.detect_clusters(table, units, level=None, random_state=1, client=client)
        t3 = time.perf_counter()
    out["read_registry"] = t1 - t0
    out["aggregate"] = t2 - t1
    out.update({f"detect: {k}": v for k, v in res.parameters["timings"].items()})
    out["detect_clusters (total)"] = t3 - t2
    out["whole run"] = t3 - t0
    counts = table.sparse.to_coo().tocsr()
    digest = hashlib.sha256()
    for arr in (counts.indptr, counts.indices, counts.data):
        digest.update(np.ascontiguousarray(arr).tobytes())
    clusters = res.clusters[["cluster_id", "n_units", "establishments", "lq", "p_value"]]
    out["check"] = {
        "rejects": reg.summary_dict()["rejects"],
        "kept": len(reg),
        "table": digest.hexdigest()[:16],
        "table outside_units": len(table.attrs["rejects"]),
        "clusters": hashlib.sha256(clusters.to_csv().encode()).hexdigest()[:16],
        "n clusters": len(res.clusters),
    }
    mem = [resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2]
    if client is not None:
        peaks = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2)
        mem += list(peaks.values())
        client.close()
    out["peak GB"] = mem
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--establishments", type=int, default=20_000_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "cm_europe")
    parser.add_argument("--configs", default="single,dask-1,dask-2")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    folder = args.data / f"registry_{args.establishments}"
    if args.child is not None:
        workers = 0 if args.child == "single" else int(args.child.split("-")[1])
        print(json.dumps(one_run(folder, workers)))
        return
    build(folder, args.establishments)
    import numpy as np

    runs: dict[str, list[dict]] = {}
    for config in args.configs.split(","):
        for _ in range(args.repeat):
            cmd = [sys.executable, __file__, "--child", config, "--data", str(args.data)]
            cmd += ["--establishments", str(args.establishments)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode:
                sys.exit(proc.stderr[-3000:])
            runs.setdefault(config, []).append(json.loads(proc.stdout.strip().splitlines()[-1]))
    configs = list(runs)
    first = runs[configs[0]][0]
    n_files = len(list(folder.glob("part.*.parquet")))
    print(
        f"{first['check']['kept']:,} establishments kept of a {n_files}-file registry, "
        f"{len(grid()):,} cells, {os.cpu_count()} CPUs, median of {args.repeat} run(s)"
    )
    print(f"{'stage':<30}" + "".join(f"{c:>12}" for c in configs))
    keys = [k for k in first if k not in ("check", "peak GB")]
    for key in keys:
        vals = [np.median([r[key] for r in runs[c]]) for c in configs]
        print(f"{key:<30}" + "".join(f"{v:>10.1f} s" for v in vals))
    base = np.median([r["whole run"] for r in runs[configs[0]]])
    print(
        f"{'speed-up vs ' + configs[0]:<30}"
        + "".join(f"{base / np.median([r['whole run'] for r in runs[c]]):>11.2f}x" for c in configs)
    )
    for c in configs:
        peaks = max((r["peak GB"] for r in runs[c]), key=lambda p: max(p))
        text = f"{peaks[0]:.2f} GB" + (
            f" (client); workers: {', '.join(f'{p:.2f}' for p in peaks[1:])} GB"
            if len(peaks) > 1
            else ""
        )
        print(f"peak memory {c:<18}{text}")
    checks = {c: runs[c][0]["check"] for c in configs}
    same = all(checks[c] == checks[configs[0]] for c in configs)
    print(f"identical rejects, table and clusters in every configuration: {same}")
    print(json.dumps(checks[configs[0]]))


if __name__ == "__main__":
    main()
