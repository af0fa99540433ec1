"""Regenerate the bundled demo files in this folder (run from anywhere).

    python datasets/build_demo.py [output_folder]

Writes demo_units.parquet, demo_registry.csv.gz and demo_answer_key.csv. The output is
deterministic: the CSV files are byte-identical on every run; the GeoParquet file is
byte-identical for the same versions of GEOS, pyarrow and geopandas (its metadata records
library versions).
"""

from __future__ import annotations

import sys
from pathlib import Path

from clustermap.datasets import _answer_to_csv, make_registry, make_territory, write_registry_csv

#: Parameters of the demo set: change them only together with datasets/README.md.
SEED = 2024
N_UNITS = 1500
N_ESTABLISHMENTS = 50_000


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
    }
    units.to_parquet(paths["units"], index=False, compression="zstd")
    write_registry_csv(registry, paths["registry"])
    paths["answer_key"].write_text(_answer_to_csv(answer), encoding="utf-8")
    return paths


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
    for name, path in build(out).items():
        print(f"{name:<11} {path.name:<24} {path.stat().st_size / 1e6:6.2f} MB")
