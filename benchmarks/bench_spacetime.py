"""Benchmark: the space-time permutation scan of every sector of the national registry.

    python benchmarks/bench_spacetime.py [--permutations 999] [--repeat 1] [--yearly]

Needs ../shared/datasets (synthetic_france_v2/registry.csv.gz and the 2018 commune polygons).
Scans the creations (then the closures) of every NAF sous-classe over the 34 000 communes,
with 999 replications, over five-year periods (2005 and before, 2006-2010, ..., 2021-2025);
``--yearly`` adds yearly periods (2015 and before, then 2016 ... 2025: 45 intervals of at
most five periods instead of 9, about five times the work). Prints the wall time,
the peak resident memory of the process before and after the scans, and — as the reference
in the same run — the pure-Python scan of the tests (``tests/reference_scan.py``, every
cylinder) on one sector for the observed data, against the kernel on that sector alone.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _timing import median_time
from reference_scan import scan_reference

import clustermap as cm

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"
REGISTRY = SHARED / "synthetic_france_v2" / "registry.csv.gz"
COMMUNES = SHARED / "france_boundaries" / "communes_2018_simplified.parquet"
CALENDARS = {
    "five-year periods (5)": [2005, 2010, 2015, 2020, 2025],
    "yearly periods (11)": list(range(2015, 2026)),
}


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--permutations", type=int, default=999)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--yearly", action="store_true", help="add the yearly calendar")
    args = parser.parse_args()
    if not (REGISTRY.exists() and COMMUNES.exists()):
        print(f"skipped: needs {REGISTRY} and {COMMUNES}")
        return 0
    warnings.simplefilter("ignore", cm.errors.ClustermapWarning)
    registry = cm.read_registry(REGISTRY, options={"include_closed": True})
    units = cm.read_units(COMMUNES, unit_id="code_insee", name="nom")
    print(f"{len(registry.establishments)} establishments, {len(units)} communes; "
          f"{os.cpu_count()} cores, {args.permutations} replications")  # fmt: skip
    # compile once, outside the timings
    small = cm.stock_at_dates(registry, units, [2020, 2025], measure="created")
    cm.space_time_scan(small, sectors=["30.92Z"], n_permutations=9)
    print(f"peak memory before the scans: {peak_mb():.0f} MB")
    print("| events | calendar | sectors | events scanned | time | significant (q <= 0.05) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for measure in ("created", "closed"):
        for name, dates in CALENDARS.items():
            if name.startswith("yearly") and not args.yearly:
                continue
            panel = cm.stock_at_dates(registry, units, dates, measure=measure)
            t, out = median_time(
                lambda p=panel: cm.space_time_scan(
                    p, n_permutations=args.permutations, random_state=1
                ),
                args.repeat,
            )
            sig = sorted(out.loc[out["q_value"] <= 0.05, "sector"])
            print(f"| {measure} | {name} | {len(out)} | {int(out['events'].sum())} | "
                  f"{t:.1f} s | {len(sig)}: {', '.join(sig)} |")  # fmt: skip
    print(f"peak memory after the scans: {peak_mb():.0f} MB")
    # the reference in the same run: one mid-sized sector, observed data only
    panel = cm.stock_at_dates(registry, units, CALENDARS["five-year periods (5)"],
                              measure="created")  # fmt: skip
    code = "30.92Z"
    s = panel.sectors.get_loc(code)
    counts = np.stack([t[:, s].toarray().ravel() for t in panel.tables.values()], axis=1)
    pts = units.loc[panel.unit_ids].representative_point().to_crs(2154)
    xy = np.column_stack([pts.x, pts.y])
    t_ref, ref = median_time(
        lambda: scan_reference(counts, xy, radius=50_000.0, max_units=50, max_share=0.5,
                               max_len=len(panel.dates) // 2)[0],
        1,
    )  # fmt: skip
    t_k, out = median_time(
        lambda: cm.space_time_scan(panel, sectors=[code], n_permutations=1, random_state=1),
        3,
    )
    llr = float(out["llr"].iloc[0])
    print(
        f"{code}, observed scan: pure-Python reference {t_ref:.2f} s, kernel (and one "
        f"replication) {t_k:.3f} s, ratio {t_ref / t_k:.0f}x; max LLR {llr:.6f} vs {ref:.6f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
