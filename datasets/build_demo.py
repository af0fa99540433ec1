"""Regenerate the bundled demo files in this folder (run from anywhere).

    python datasets/build_demo.py [output_folder]

Writes demo_units.parquet, demo_registry.csv.gz, demo_answer_key.csv and
demo_build_info.json. The output is deterministic for given library versions: the CSV files
are byte-identical on every run; the GeoParquet file is byte-identical for the same versions
of GEOS, pyarrow and geopandas (its metadata records library versions).

Other versions of the geometry and numeric libraries (GEOS's Voronoi diagram, PROJ's
Lambert-93 conversion, numpy's vectorised transcendental functions, whose SIMD code path
depends on the processor) can move vertices and
floating-point values by a few units in the last place, which can reorder units and change
every row after them. The bundled files are therefore the reference: demo_build_info.json
records the versions that made them, and the test suite checks byte identity only under
those versions, and otherwise the properties that no library version can change.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from clustermap.datasets import _answer_to_csv, make_registry, make_territory, write_registry_csv

#: Parameters of the demo set: change them only together with datasets/README.md.
SEED = 2024
N_UNITS = 1500
N_ESTABLISHMENTS = 50_000


def library_versions() -> dict[str, str]:
    """Versions of the libraries (and processor features) the generated files depend on."""
    import numpy
    import pyproj
    import shapely

    try:  # numpy picks SIMD code paths for the processor: they can differ in the last place
        from numpy._core._multiarray_umath import __cpu_features__ as features
    except ImportError:  # pragma: no cover - older numpy layout
        features = {}
    return {
        "cpu_features": " ".join(sorted(k for k, v in features.items() if v)),
        "numpy": numpy.__version__,
        "shapely": shapely.__version__,
        "geos": shapely.geos_version_string,
        "pyproj": pyproj.__version__,
        "proj": pyproj.proj_version_str,
    }


def build(folder: Path) -> dict[str, Path]:
    """Write the three demo files into ``folder`` and return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    units = make_territory(n_units=N_UNITS, random_state=SEED)
    registry, answer = make_registry(
        units, n_establishments=N_ESTABLISHMENTS, random_state=SEED, dirty=True
    )
    paths = {
        "units": folder / "demo_units.parquet",
        "registry": folder / "demo_registry.csv.gz",
        "answer_key": folder / "demo_answer_key.csv",
        "build_info": folder / "demo_build_info.json",
    }
    units.to_parquet(paths["units"], index=False, compression="zstd")
    write_registry_csv(registry, paths["registry"])
    paths["answer_key"].write_text(_answer_to_csv(answer), encoding="utf-8")
    info = json.dumps(library_versions(), indent=1, sort_keys=True) + "\n"
    paths["build_info"].write_text(info, encoding="utf-8")
    return paths


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
    for name, path in build(out).items():
        print(f"{name:<11} {path.name:<24} {path.stat().st_size / 1e6:6.2f} MB")
