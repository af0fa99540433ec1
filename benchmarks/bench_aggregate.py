"""Benchmark: the national synthetic registry (about 600 000 rows) onto the 35 357 communes.

    python benchmarks/bench_aggregate.py [--repeat N] [--no-reference]

Needs ../shared/datasets (synthetic_france/registry.csv.gz and
france_boundaries/communes_2018_simplified.parquet) beside the repository. Prints the median
wall time of each step over ``--repeat`` runs, and the ratio against the obvious reference
(geopandas.sjoin + pandas.crosstab). Goal: assignment + table under 15 s.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import geopandas as gpd
import pandas as pd

import clustermap as cm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import median_time

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"
REGISTRY = SHARED / "synthetic_france" / "registry.csv.gz"
COMMUNES = SHARED / "france_boundaries" / "communes_2018_simplified.parquet"


def _reference(est: gpd.GeoDataFrame, units: gpd.GeoDataFrame) -> pd.DataFrame:
    """sjoin + crosstab, with the same rule as assign_units (first unit in row order wins)."""
    right = units[["geometry"]].assign(_pos=range(len(units)))
    joined = gpd.sjoin(est[["sector", "geometry"]], right, predicate="intersects")
    joined = joined.sort_values("_pos", kind="stable")
    joined = joined[~joined.index.duplicated()]
    return pd.crosstab(joined["unit_id"], joined["sector"]).reindex(units.index, fill_value=0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-reference", action="store_true")
    args = parser.parse_args()
    if not (REGISTRY.exists() and COMMUNES.exists()):
        print(f"skipped: needs {REGISTRY} and {COMMUNES}")
        return 0
    warnings.simplefilter("ignore", cm.errors.ClustermapWarning)

    rows = []
    t_read, registry = median_time(lambda: cm.read_registry(REGISTRY, format="sirene"), 1)
    rows.append(("read_registry (once)", t_read, None))
    t_units, units = median_time(lambda: cm.read_units(COMMUNES, unit_id="code_insee"), args.repeat)
    rows.append(("read_units communes", t_units, None))
    est = registry.establishments

    t_assign, assigned = median_time(lambda: cm.assign_units(registry, units), args.repeat)
    rows.append(("assign_units", t_assign, None))
    t_agg, table = median_time(lambda: cm.aggregate(registry, units), args.repeat)
    t_ref = None
    if not args.no_reference:
        t_ref, ref = median_time(lambda: _reference(est, units), 1)
        ref = ref.reindex(columns=table.columns, fill_value=0)
        assert (ref.to_numpy() == table.to_numpy()).all(), "reference and aggregate differ"
    rows.append(("aggregate establishments (dense)", t_agg, t_ref))
    t_sparse, _ = median_time(lambda: cm.aggregate(registry, units, sparse=True), args.repeat)
    rows.append(("aggregate establishments (sparse)", t_sparse, None))
    t_emp, _ = median_time(lambda: cm.aggregate(registry, units, measure="employees"), args.repeat)
    rows.append(("aggregate employees (dense)", t_emp, None))
    t_div, _ = median_time(lambda: cm.aggregate(registry, units, level="division"), args.repeat)
    rows.append(("aggregate division (dense)", t_div, None))

    n_out = int(assigned.isna().sum())
    print(
        f"{len(est):,} establishments kept of {registry.n_rows:,} rows; {len(units):,} communes; "
        f"table {table.shape[0]:,} x {table.shape[1]}; {n_out:,} outside every commune; "
        f"median of {args.repeat} run(s)"
    )
    print(f"{'step':<36}{'median s':>10}{'reference s':>13}{'speed-up':>10}")
    for name, t, ref in rows:
        ref_text = f"{ref:13.2f}{ref / t:9.1f}x" if ref else f"{'':13}{'':10}"
        print(f"{name:<36}{t:10.2f}{ref_text}")
    goal = t_agg
    print(f"assignment + table: {goal:.2f} s (goal < 15 s): {'OK' if goal < 15 else 'TOO SLOW'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
