"""Benchmark clustermap.read_registry.

1. Read and validate the synthetic national registry
   (../shared/datasets/synthetic_france/registry.csv.gz, 602 053 rows): median of
   --repeat runs, against a plain pyarrow read of the same file without validation
   (the lower bound for any CSV reader) and pandas.read_csv(dtype=str).
2. Opt-in (--big): write a registry of --rows rows (default 10 million) to a temporary
   folder in chunks, read it in a child process and report its peak RSS next to the memory
   of what it returns, to show that memory is bounded by the kept rows, not the file.

Usage (from the repository root)::

    .venv/bin/python benchmarks/bench_registry.py            # part 1, about 30 s
    .venv/bin/python benchmarks/bench_registry.py --big      # + 10 million rows, minutes
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import median_time

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"
REGISTRY = SHARED / "synthetic_france" / "registry.csv.gz"


def part_national(repeat: int) -> None:
    import pandas as pd
    import pyarrow.csv as pacsv

    import clustermap as cm

    if not REGISTRY.exists():
        print(f"skipped: {REGISTRY.relative_to(ROOT.parent)} is absent")
        return
    cm.read_registry(REGISTRY)  # warm-up: NAF tables, pyproj, imports
    t_cm, reg = median_time(lambda: cm.read_registry(REGISTRY), repeat)
    t_pa, table = median_time(lambda: pacsv.read_csv(REGISTRY), repeat)
    t_pd, _ = median_time(lambda: pd.read_csv(REGISTRY, dtype=str), repeat)
    rows = reg.n_rows
    print(f"\nread_registry on synthetic_france/registry.csv.gz ({rows:,} rows)")
    print(f"median of {repeat} runs")
    print(f"{'reader':<44}{'median s':>10}{'rows/s':>12}{'ratio':>8}")
    for label, t in [
        ("clustermap.read_registry (read + validate)", t_cm),
        ("pyarrow.csv.read_csv (read only)", t_pa),
        ("pandas.read_csv(dtype=str) (read only)", t_pd),
    ]:
        print(f"{label:<44}{t:>10.2f}{rows / t:>12,.0f}{t / t_cm:>8.2f}")
    print(f"kept {len(reg):,}; rejects {reg.summary_dict()['rejects']}; goal < 10 s")
    del table


def write_big(path: Path, n_rows: int) -> None:
    """Write n_rows SIRENE-format rows by repeating the synthetic registry with new ids."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    base = pacsv.read_csv(
        REGISTRY, convert_options=pacsv.ConvertOptions(column_types={"siret": pa.string()})
    )
    base = base.cast(pa.schema([pa.field(f.name, pa.string()) for f in base.schema]))
    written = 0
    copy = 0
    with pacsv.CSVWriter(path, base.schema) as writer:
        while written < n_rows:
            part = base.slice(0, min(len(base), n_rows - written))
            siret = pc.binary_join_element_wise(part["siret"], pa.scalar(f"{copy:03d}"), "")
            part = part.set_column(part.schema.get_field_index("siret"), "siret", siret)
            writer.write_table(part)
            written += len(part)
            copy += 1


def child(path: str) -> None:
    import clustermap as cm

    start = time.perf_counter()
    reg = cm.read_registry(path)
    elapsed = time.perf_counter() - start
    kept_bytes = int(reg.establishments.memory_usage(deep=True).sum())
    kept_bytes += 16 * len(reg)  # points: two float64 coordinates each, at least
    rejects_bytes = int(reg.rejects.memory_usage(deep=True).sum())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(
        json.dumps(
            {
                "seconds": elapsed,
                "rows": reg.n_rows,
                "kept": len(reg),
                "kept_bytes": kept_bytes,
                "rejects_bytes": rejects_bytes,
                "peak_rss": peak,
            }
        )
    )


def part_big(n_rows: int) -> None:
    if not REGISTRY.exists():
        print(f"skipped: {REGISTRY.relative_to(ROOT.parent)} is absent")
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big_registry.csv"
        start = time.perf_counter()
        write_big(path, n_rows)
        size = path.stat().st_size
        print(
            f"\nwrote {n_rows:,} rows ({size / 1e9:.2f} GB CSV) in "
            f"{time.perf_counter() - start:.0f} s"
        )
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(path)],
            check=True,
            capture_output=True,
            text=True,
        )
        res = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"{'measure':<44}{'value':>14}")
    print(f"{'read_registry seconds':<44}{res['seconds']:>14.1f}")
    print(f"{'rows read / kept':<44}{res['rows']:>7,} / {res['kept']:,}")
    print(f"{'CSV size (GB)':<44}{size / 1e9:>14.2f}")
    print(f"{'returned establishments (GB, deep)':<44}{res['kept_bytes'] / 1e9:>14.2f}")
    print(f"{'returned rejects (GB, deep)':<44}{res['rejects_bytes'] / 1e9:>14.2f}")
    print(f"{'peak RSS of the reading process (GB)':<44}{res['peak_rss'] / 1e9:>14.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--big", action="store_true", help="also run the 10M-row memory check")
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    print("machine: this run's CPU count is", __import__("os").cpu_count())
    part_national(args.repeat)
    if args.big:
        part_big(args.rows)


if __name__ == "__main__":
    main()
