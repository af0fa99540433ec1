"""Execute the analyst notebooks end to end (nbclient, kernel = this interpreter).

The notebooks are stored without outputs and hold their own checks against the demo's
answer key (``assert`` cells: planted clusters found, null sectors clean, dirty rows counted,
BH resolution trap). Here each one is executed from ``notebooks/`` and the test checks that
no cell failed, that the outputs show what the prose promises, and that nothing was written
into the repository.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
NAMES = [
    "01_quickstart.ipynb",
    "02_sirene_workflow.ipynb",
    "03_statistics.ipynb",
    "04_dynamics.ipynb",
    "05_territory.ipynb",
    "06_related_industries.ipynb",
]


def _kernel_name() -> str:
    """The ipykernel spec of this interpreter (jupyter_client runs it with sys.executable)."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:  # pragma: no cover - ipykernel always provides its native spec
        pytest.skip("no python3 kernel spec: install ipykernel in this environment")
    assert spec.argv[0] in {"python", "python3", sys.executable}, spec.argv
    return "python3"


def _written_files() -> set[str]:
    """Files a notebook could leave behind: everything under notebooks/ and the outputs
    (reports, GeoPackages, tables, images) at the repository root. Other folders are not
    watched, so files others create meanwhile in a shared checkout do not interfere."""
    found = {
        str(p.relative_to(ROOT))
        for p in NOTEBOOKS.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and ".ipynb_checkpoints" not in p.parts
    }
    suffixes = {".html", ".gpkg", ".parquet", ".csv", ".png", ".json", ".gz"}
    found |= {p.name for p in ROOT.iterdir() if p.is_file() and p.suffix in suffixes}
    return found


def _text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        data = out.get("data", {})
        parts.append(data.get("text/plain", ""))
        parts.append(data.get("text/html", ""))
    return "\n".join(parts)


def _execute(name: str) -> tuple[nbformat.NotebookNode, float]:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    env = dict(os.environ)
    env.pop("MPLBACKEND", None)  # the kernel's inline backend shows the figures as PNG
    client = nbclient.NotebookClient(
        nb,
        kernel_name=_kernel_name(),
        timeout=600,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    start = time.perf_counter()
    client.execute(env=env)
    return nb, time.perf_counter() - start


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_stored_without_outputs(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, name
    assert all(not c.outputs and c.execution_count is None for c in code), name
    # no machine paths, no network in the code cells
    source = "\n".join(c.source for c in code)
    for bad in ("/work/", "/home/", "/tmp/", "http://", "https://", "urlopen", "requests."):
        assert bad not in source, (name, bad)


def test_notebooks_match_their_builder(tmp_path: Path) -> None:
    """The stored notebooks are what notebooks/build_notebooks.py writes."""
    sys.path.insert(0, str(NOTEBOOKS))
    try:
        import build_notebooks
    finally:
        sys.path.remove(str(NOTEBOOKS))
    for path in build_notebooks.build(tmp_path):
        stored = json.loads((NOTEBOOKS / path.name).read_text(encoding="utf-8"))
        built = json.loads(path.read_text(encoding="utf-8"))
        assert stored == built, f"{path.name}: run python notebooks/build_notebooks.py"


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs(name: str) -> None:
    before = _written_files()
    nb, seconds = _execute(name)  # raises CellExecutionError with the cell on failure
    assert _written_files() == before, f"{name} wrote into the repository"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code)
    errors = [o for c in code for o in c.outputs if o.get("output_type") == "error"]
    assert not errors
    text = "\n".join(_text(c) for c in code)

    if name.startswith("01"):
        # the demo's known figures, the detection summary and an inline Leaflet map
        assert "<Demo: 50050 establishments over 1500 units, 6 planted clusters>" in text
        assert "closed_establishments     1,500" in text
        assert "clusters in null sectors: 0" in text
        maps = [
            c
            for c in code
            if any("leaflet" in o.get("data", {}).get("text/html", "").lower() for o in c.outputs)
        ]
        assert len(maps) == 1
        assert "Vallée du décolletage" in text
    elif name.startswith("02"):
        assert "demo_registry.csv.gz" in text
        assert "sirene_stock 2154 500" in text  # the stock + geolocation pair was read
        assert "1500 communes" in text
        assert "clusters" in text and "units_x_sectors" in text  # GeoPackage layers
    elif name.startswith("05"):
        assert "Vallée du décolletage -" in text
        assert "establishments to contact; 0 withheld" in text
        assert "Excel sheets: ['info', '01 25.62A-1'" in text
    elif name.startswith("04"):
        assert "planted classes recovered: True" in text
        assert "has the trends section: True" in text
        if "national data found" in text:  # issue 19's done-when, on the public data
            assert "emerging (Bordeaux e-bike assembly): ['new']" in text
            assert "declining (Vosges textiles): ['disappeared']" in text
            assert "null sectors with a followed cluster: 0 of 40" in text
            assert "created - significant sectors: ['13.20Z', '30.92Z']" in text
            assert "closed - significant sectors: ['13.20Z']" in text
            assert "components sum to the change, worst gap:" in text
        else:
            assert "the national part below is skipped" in text
    elif name.startswith("06"):
        assert "732 sous-classes; 68 categories" in text
        assert "25.62A -> Metalworking Technology (traded)" in text
        if "national data found" in text:  # the planted groups, found as one cluster each
            assert (
                "derived categories: Plastics Vallee: codes of the group in its cluster: "
                "['22.22Z', '22.29B', '25.73A', '28.96Z']" in text
            )
            assert (
                "shipped categories: Arve decolletage and mechanical subcontracting: codes of "
                "the group in its cluster: ['25.61Z', '25.62B', '25.73B', '28.41Z']" in text
            )
        else:
            assert "the national part below is skipped" in text
    else:
        # several matplotlib figures were drawn inline
        images = sum("image/png" in o.get("data", {}) for c in code for o in c.outputs)
        assert images >= 6, images
        assert "have a 95 % interval above 1" in text
    print(f"{name}: {seconds:.0f} s")  # shown with -s; the goal is about a minute each


def test_maps_as_notebooks_show_them_need_no_remote_script_or_stylesheet():
    """What a notebook displays (the map's HTML) draws without a network by default."""
    import re

    import clustermap as cm

    demo = cm.load_demo()
    result = cm.detect_clusters(demo.registry, demo.units, local_statistic=None)
    for m in (cm.explore_clusters(result), cm.explore_establishments(demo.registry)):
        page = m._repr_html_()  # the iframe Jupyter shows, with the whole page inside
        inner = __import__("html").unescape(page)
        assert not re.search(r"<script[^>]*\ssrc=[\"']?(https?:)?//", inner)
        assert not re.search(r"<link[^>]*href=[\"']?(https?:)?//", inner)
        assert "L.map(" in inner  # Leaflet itself is in the page
    cdn = cm.explore_clusters(result, map_options={"offline": False}).get_root().render()
    assert re.search(r"<script[^>]*\ssrc=[\"']?https://", cdn)  # the CDN on request
