"""Benchmark: the stock of the synthetic_france_v2 registry at 20 dates, over the communes.

    python benchmarks/bench_stock.py [--repeat N]

Needs ../shared/datasets (synthetic_france_v2/registry.csv.gz and the 2018 commune polygons).
Prints the median wall time of ``cm.stock_at_dates`` (one pass: the rows are placed once, then
each date is a mask) for 20 dates, and the same with one ``aggregate`` call per date as the
reference (the obvious way). Goal: <= 5 s for the 20 dates.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import median_time

import clustermap as cm

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"
REGISTRY = SHARED / "synthetic_france_v2" / "registry.csv.gz"
COMMUNES = SHARED / "france_boundaries" / "communes_2018_simplified.parquet"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not (REGISTRY.exists() and COMMUNES.exists()):
        print(f"skipped: needs {REGISTRY} and {COMMUNES}")
        return 0
    warnings.simplefilter("ignore", cm.errors.ClustermapWarning)
    registry = cm.read_registry(REGISTRY, options={"include_closed": True})
    units = cm.read_units(COMMUNES, unit_id="code_insee", name="nom")
    dates = list(range(2006, 2026))
    t_one, panel = median_time(lambda: cm.stock_at_dates(registry, units, dates), args.repeat)
    est = registry.establishments

    def per_date():
        out = []
        for year in dates:
            key = f"{year}-12-31"
            alive = (est["dateCreationEtablissement"] <= key) & (
                (est["etatAdministratifEtablissement"] == "A") | (est["dateDebut"] > key)
            )
            out.append(cm.aggregate(est[alive], units))
        return out

    t_ref, ref = median_time(per_date, 1)
    assert [int(t.to_numpy().sum()) for t in ref] == panel.totals().tolist()
    print(
        f"{len(est)} establishments, {len(units)} communes, {len(dates)} dates; "
        f"{os.cpu_count()} cores"
    )
    print(f"stock_at_dates (one pass): {t_one:.2f} s (median of {args.repeat})")
    print(f"aggregate per date (reference, 1 run): {t_ref:.2f} s; ratio {t_ref / t_one:.1f}x")
    print(f"goal <= 5 s: {'met' if t_one <= 5 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
