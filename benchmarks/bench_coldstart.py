"""Benchmark: compilation on an empty numba cache (what a new machine pays once).

    python benchmarks/bench_coldstart.py

Each step runs in a fresh process with ``NUMBA_CACHE_DIR`` pointing to a new empty folder,
and numba's compile events are recorded (top-level compilations only: a kernel's callees
are part of its time). Steps:

1. the README's first command, ``clustermap demo`` (counts: the uint8 storage group);
2. local Moran of continuous values (the float64-as-float32 group), then of mixed counts
   (uint8 + uint16 groups), in the same process as step 1's cache;
3. the distance kernels (Kd exact and binned, M, on the demo's 25.62A establishments);
4. the space-time scan (a small panel).

Prints, per step, the wall time and the compile time per kernel family. Goals (issue "Speed
where users feel it"): the first command compiles in <= 20 s in total, the distance kernels
in <= 15 s when first used.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time

RECORDER = textwrap.dedent(
    """
    import json, sys, time
    from collections import defaultdict
    from numba.core import event

    FAMILIES = {"_kernels": "local statistics", "_distance_kernels": "distance",
                "_scan_kernels": "space-time scan"}
    totals = defaultdict(float)
    stack = []

    class Recorder(event.Listener):
        def on_start(self, ev):
            stack.append(time.perf_counter())

        def on_end(self, ev):
            start = stack.pop()
            if not stack:  # top level: its callees are inside its time
                module = ev.data["dispatcher"].py_func.__module__.rsplit(".", 1)[-1]
                totals[FAMILIES.get(module, "other")] += time.perf_counter() - start

    event.register("numba:compile", Recorder())
    wall = time.perf_counter()
    exec(compile(sys.argv[1], "step", "exec"))
    print("RESULT" + json.dumps({"wall": time.perf_counter() - wall, **totals}))
    """
)

STEPS = {
    "1. clustermap demo (README's first command)": """
import tempfile, pathlib
from clustermap.cli import main
assert main(["demo", "--out", str(pathlib.Path(tempfile.mkdtemp()) / "demo.html"),
             "--quiet"]) == 0
""",
    "2. local Moran, continuous values, then mixed counts": """
import numpy as np, pandas as pd, geopandas as gpd, clustermap as cm
rng = np.random.default_rng(0)
pts = gpd.GeoSeries.from_xy(*rng.uniform(0, 1e5, (2, 3000)))
g = cm.build_graph(pts, method="knn", k=8, transform="r")
cm.local_moran(pd.DataFrame(rng.gamma(2.0, 1.5, (3000, 5))), g, permutations=99)
mixed = np.column_stack([rng.poisson(0.4, (3000, 3)), rng.integers(300, 2000, (3000, 2))])
cm.local_moran(pd.DataFrame(mixed.astype(float)), g, permutations=99)
""",
    "3. distance kernels (Kd, exact and binned, and M)": """
import clustermap as cm
est = cm.load_demo().registry.establishments
cm.k_density(est, "25.62A", simulations=9, random_state=1)
cm.k_density(est, "25.62A", simulations=9, random_state=1, options={"method": "binned"})
cm.m_function(est, "25.62A", simulations=9, random_state=1)
""",
    "4. space-time scan": """
import numpy as np, pandas as pd, geopandas as gpd, scipy.sparse as sp, clustermap as cm
from shapely.geometry import Point
from clustermap.table import StockPanel
rng = np.random.default_rng(0)
ids = pd.Index([f"u{i}" for i in range(200)])
units = gpd.GeoDataFrame(geometry=[Point(*p) for p in rng.uniform(0, 1e5, (200, 2))],
                         index=ids, crs=2154)
tables = {f"{y}-12-31": sp.csr_matrix(rng.poisson(0.5, (200, 3)).astype(float))
          for y in (2015, 2020, 2025)}
cm.space_time_scan(StockPanel(list(tables), ids, pd.Index(["a", "b", "c"]), tables, {},
                              "created", units), n_permutations=9)
""",
}


def run(code: str, cache: str) -> dict:
    env = {**os.environ, "NUMBA_CACHE_DIR": cache, "CLUSTERMAP_PROGRESS": "0"}
    proc = subprocess.run(
        [sys.executable, "-c", RECORDER, code], env=env, capture_output=True, text=True
    )
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT")]
    if proc.returncode or not line:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(line[-1][len("RESULT") :])


def main() -> int:
    print(f"{os.cpu_count()} cores; each step in a new process, numba cache emptied first")
    print("| step | wall | compile: local statistics | distance | space-time scan | other |")
    print("| --- | --- | --- | --- | --- | --- |")
    start = time.perf_counter()
    for name, code in STEPS.items():
        with tempfile.TemporaryDirectory() as cache:
            r = run(code, cache)
        cells = [r.get(k, 0.0) for k in ("local statistics", "distance", "space-time scan",
                                          "other")]  # fmt: skip
        print(f"| {name} | {r['wall']:.1f} s | " + " | ".join(f"{c:.1f} s" for c in cells) + " |")
    print(f"total {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
