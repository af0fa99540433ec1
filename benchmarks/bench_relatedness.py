"""Benchmark: relatedness of every pair of NAF sous-classes over the 35 357 communes.

    python benchmarks/bench_relatedness.py [--repeat N]

Needs ../shared/datasets (synthetic_france_v2/registry.csv.gz and
france_boundaries/communes_2018_simplified.parquet) beside the repository. Prints the median
wall time of each measure over ``--repeat`` runs, of ``cm.relatedness`` end to end (registry
-> units x sectors table -> graph -> the three measures), and the ratio of the sparse
coagglomeration and correlation against their dense NumPy formulations (``numpy.corrcoef``
and the EGK sum over a dense share matrix) in the same run. Goal: all pairs in <= 10 s.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

import numpy as np

import clustermap as cm
from clustermap.core.schema import ESTABLISHMENTS
from clustermap.detect.regions import adjacency
from clustermap.detect.relatedness import _colocation, coagglomeration, locational_correlation
from clustermap.table import OTHER, registry_table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import median_time

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"
REGISTRY = SHARED / "synthetic_france_v2" / "registry.csv.gz"
COMMUNES = SHARED / "france_boundaries" / "communes_2018_simplified.parquet"


def _dense_egk(x: np.ndarray) -> np.ndarray:
    share_m = x.sum(axis=1) / x.sum()
    d = x / x.sum(axis=0) - share_m[:, None]
    return d.T @ d / (1 - share_m @ share_m)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not (REGISTRY.exists() and COMMUNES.exists()):
        print(f"skipped: needs {REGISTRY} and {COMMUNES}")
        return 0
    warnings.simplefilter("ignore", cm.errors.ClustermapWarning)
    registry = cm.read_registry(REGISTRY, format="sirene")
    units = cm.read_units(COMMUNES, unit_id="code_insee", name="nom")
    table = registry_table(registry, units, "subclass", unmapped="other", warn=False)
    x = table.measures[ESTABLISHMENTS].tocsr().astype(float)
    cols = np.flatnonzero(np.asarray(table.sectors != OTHER))
    xs = x[:, cols]
    graph = cm.build_graph(units.loc[table.unit_ids], "queen", islands="knn")
    adj = adjacency(graph, table.unit_ids)
    n_units, n_sec = xs.shape
    print(
        f"{n_units} communes x {n_sec} sous-classes = {n_sec * (n_sec - 1) // 2} pairs; "
        f"{os.cpu_count()} cores; median of {args.repeat}"
    )

    t_egk, egk = median_time(lambda: coagglomeration(xs), args.repeat)
    t_cor, cor = median_time(lambda: locational_correlation(xs), args.repeat)
    t_col, _ = median_time(lambda: _colocation(x, adj, 0.001), args.repeat)
    dense = xs.toarray()
    t_egk_ref, egk_ref = median_time(lambda: _dense_egk(dense), args.repeat)
    t_cor_ref, cor_ref = median_time(lambda: np.corrcoef(dense, rowvar=False), args.repeat)
    assert np.allclose(egk, egk_ref, atol=1e-12) and np.allclose(cor, cor_ref, atol=1e-10)
    t_all, rel = median_time(lambda: cm.relatedness(registry, units), args.repeat)

    rows = [
        ("coagglomeration (EGK)", t_egk, f"dense NumPy {t_egk_ref:.2f} s", t_egk_ref / t_egk),
        ("locational correlation", t_cor, f"numpy.corrcoef {t_cor_ref:.2f} s", t_cor_ref / t_cor),
        ("colocation (NB window tests + cosine)", t_col, "-", None),
        ("cm.relatedness end to end (table, graph, all measures)", t_all, "-", None),
    ]
    width = max(len(r[0]) for r in rows)
    for name, t, ref, ratio in rows:
        extra = f"   reference: {ref}, ratio {ratio:.1f}x" if ratio else ""
        print(f"{name:{width}s}  {t:6.2f} s{extra}")
    print(
        f"goal <= 10 s for all pairs: {'met' if t_all <= 10 else 'NOT met'} "
        f"({len(rel.pairs())} pairs)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
