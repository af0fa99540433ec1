"""Size and render time of the national cluster map and report (synthetic French registry).

Data: ../shared/datasets/synthetic_france/registry.csv.gz (about 600 000 establishments) over
the 2018 communes (../shared/datasets/france_boundaries/communes_2018_simplified.parquet).
Clusters come from ``detect_clusters`` with default settings; with ``--answer-key`` (or when
detection is not available) every planted cluster of answer_key.csv becomes a pseudo-cluster
made of the communes that received establishments, which is said in the output.

Prints a table of medians over ``--repeat`` runs: time to build the folium map, to render it
to HTML, to write the offline report, and the sizes in MB (goal: national map < 15 MB).

Run from the repository root::

    .venv/bin/python benchmarks/bench_map_size.py [--repeat 3] [--answer-key]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

import clustermap as cm

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"
REGISTRY = SHARED / "synthetic_france" / "registry.csv.gz"
ANSWER = SHARED / "synthetic_france" / "answer_key.csv"
COMMUNES = SHARED / "france_boundaries" / "communes_2018_simplified.parquet"


def _timed(func):
    t0 = time.perf_counter()
    out = func()
    return out, time.perf_counter() - t0


def _pseudo_result(units: gpd.GeoDataFrame) -> cm.ClusterResult:
    """Planted clusters of the answer key as clusters (communes that received some)."""
    key = pd.read_csv(ANSWER, dtype=str)
    key = key[key["kind"] == "planted"]
    rows = []
    for i, r in enumerate(key.itertuples()):
        ids = [c for c in str(r.communes).split(";") if c in units.index]
        if not ids:
            continue
        names = units.loc[ids[:3], "name"].tolist() if "name" in units else ids[:3]
        rows.append(
            {
                "cluster_id": f"{r.naf}-{i}",
                "sector": r.naf,
                "sector_label": r.naf,
                "place": ", ".join(names),
                "unit_ids": ids,
                "n_units": len(ids),
                "establishments": int(r.extra),
                "lq": np.nan,
                "geometry": units.loc[ids].union_all(),
            }
        )
    clusters = gpd.GeoDataFrame(rows, geometry="geometry", crs=units.crs)
    return cm.ClusterResult(clusters=clusters, table=pd.DataFrame(), units=units)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--answer-key", action="store_true", help="use planted clusters")
    args = parser.parse_args()
    for path in (REGISTRY, ANSWER, COMMUNES):
        if not path.exists():
            print(f"needs {path.relative_to(SHARED.parent.parent)}; absent", file=sys.stderr)
            return 2

    units, t_units = _timed(lambda: cm.read_units(COMMUNES, unit_id="code_insee", name="nom"))
    print(f"units: {len(units)} communes read in {t_units:.1f} s", file=sys.stderr)
    source = "answer key (planted clusters as pseudo-clusters)"
    result = None
    if not args.answer_key:
        try:
            registry, t_read = _timed(lambda: cm.read_registry(REGISTRY))
            result, t_detect = _timed(lambda: cm.detect_clusters(registry, units))
            source = "detect_clusters (default settings)"
            print(f"read {t_read:.1f} s, detect {t_detect:.1f} s", file=sys.stderr)
        except (ImportError, AttributeError, NotImplementedError) as err:
            print(f"detection unavailable ({err}); using the answer key", file=sys.stderr)
    if result is None:
        result = _pseudo_result(units)
    n_units = sum(len(ids) for ids in result.clusters["unit_ids"])

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    build, render, report, size_map, size_report, browser = [], [], [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            m, t = _timed(lambda: cm.explore_clusters(result))
            build.append(t)
            page, t = _timed(lambda m=m: m.get_root().render())
            render.append(t)
            size_map.append(len(page.encode("utf-8")) / 1e6)
            out, t = _timed(lambda: cm.write_report(result, Path(tmp) / "report.html"))
            report.append(t)
            size_report.append(out.stat().st_size / 1e6)
            if chromium:  # wall time of a headless Chromium that loads the report and exits
                cmd = [
                    chromium,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--host-resolver-rules=MAP * ~NOTFOUND",
                    f"--user-data-dir={tmp}/p",
                    "--dump-dom",
                    out.as_uri(),
                ]
                _, t = _timed(lambda cmd=cmd: subprocess.run(cmd, capture_output=True, check=False))
                browser.append(t)

    print(f"\nNational cluster map, {source}")
    print(
        f"{len(result.clusters)} clusters covering {n_units} commune memberships, "
        f"{len(units)} communes in the context layer; median of {args.repeat} runs\n"
    )
    print(f"| {'measure':<32} | {'median':>9} |")
    print(f"| {'-' * 32} | {'-' * 9}:|")
    rows = [
        ("explore_clusters (s)", build),
        ("render map HTML (s)", render),
        ("write_report, offline (s)", report),
        ("map HTML size (MB)", size_map),
        ("report size (MB)", size_report),
    ]
    if browser:
        rows.append(("Chromium opens the report (s)", browser))
    for name, values in rows:
        print(f"| {name:<32} | {statistics.median(values):>9.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
