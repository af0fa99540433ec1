"""The public API: its names, its docstrings, and the README example that uses it.

- ``clustermap.__all__`` is pinned: adding or removing a public name is a deliberate change
  that must update this list, the README's API table and the changelog.
- Every public callable carries a numpydoc docstring with an ``Examples`` section holding
  at least one ``>>>`` line (the examples themselves run as doctests through
  ``--doctest-modules``).
- The README's first Python block runs as written (in a temporary folder) and gives the
  figures of the demo's answer key.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import io
import os
import re
import shlex
import warnings
from pathlib import Path

import pytest

import clustermap as cm

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

PUBLIC_NAMES = [
    "ClusterResult",
    "GlobalResult",
    "LocalResult",
    "Registry",
    "TrendResult",
    "__version__",
    "adjust_pvalues",
    "aggregate",
    "assign_units",
    "build_graph",
    "cluster_categories",
    "cluster_trends",
    "datasets",
    "derive_categories",
    "detect_clusters",
    "errors",
    "explore_clusters",
    "explore_establishments",
    "explore_local",
    "explore_lq",
    "global_moran",
    "k_density",
    "load_demo",
    "local_geary",
    "local_getis_ord",
    "local_moran",
    "location_quotient",
    "m_function",
    "make_grid",
    "make_registry",
    "normalize_codes",
    "read_count_panel",
    "read_counts",
    "read_registry",
    "read_units",
    "relatedness",
    "resolve_territory",
    "roll_up",
    "sector_labels",
    "sector_types",
    "set_progress",
    "shift_share",
    "space_time_scan",
    "star_rating",
    "stock_at_dates",
    "strong_cluster_flags",
    "taxonomy",
    "units_from_registry",
    "write_report",
]

# modules whose __all__ is public (the submodules users import from)
PUBLIC_MODULES = [
    "cli",
    "datasets",
    "detect.pipeline",
    "detect.scores",
    "graph",
    "io",
    "io.counts",
    "io.registry",
    "io.units",
    "stats.autocorrelation",
    "stats.distance",
    "stats.inference",
    "stats.lq",
    "table",
    "taxonomy",
    "units",
    "viz.maps",
    "viz.report",
]

# the two commands of the README opening: the project's contract with CI, kept verbatim
README_COMMANDS = [
    "python3 -m venv .venv && .venv/bin/pip install -q -e . && "
    ".venv/bin/clustermap demo --out clustermap_demo.html",
    'python3 -m venv .venv && .venv/bin/pip install -q -e ".[test,dask]" && '
    ".venv/bin/python -m pytest",
]


def _callables() -> list[str]:
    return [name for name in PUBLIC_NAMES if name not in cm._SUBMODULES and name != "__version__"]


def _has_examples(obj: object) -> tuple[bool, str]:
    doc = inspect.getdoc(obj) or ""
    has_section = re.search(r"^Examples\n-{8,}$", doc, flags=re.MULTILINE) is not None
    has_prompt = re.search(r"^\s*>>> ", doc, flags=re.MULTILINE) is not None
    return has_section and has_prompt, doc


def test_all_is_pinned() -> None:
    assert sorted(cm.__all__) == PUBLIC_NAMES
    assert set(cm.__all__) == {*cm._EXPORTS, *cm._SUBMODULES, "__version__"}


def test_dir_lists_the_public_names() -> None:
    assert sorted(dir(cm)) == PUBLIC_NAMES


@pytest.mark.parametrize("name", _callables())
def test_public_name_resolves_to_its_module(name: str) -> None:
    obj = getattr(cm, name)
    module = importlib.import_module(f"clustermap.{cm._EXPORTS[name]}")
    assert getattr(module, name) is obj
    assert callable(obj)


def test_version_matches_the_package_metadata() -> None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version("clustermap")
    except PackageNotFoundError:  # pragma: no cover - running from a plain source tree
        pytest.skip("clustermap is not installed (pip install -e .)")
    assert cm.__version__ == installed


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'detect_cluster'"):
        cm.detect_cluster  # noqa: B018


@pytest.mark.parametrize("name", _callables())
def test_public_callable_has_examples(name: str) -> None:
    ok, doc = _has_examples(getattr(cm, name))
    assert doc, f"clustermap.{name} has no docstring"
    assert ok, (
        f"clustermap.{name}: the docstring needs a numpydoc 'Examples' section with at "
        "least one '>>>' example (it runs as a doctest)"
    )


def _module_callables() -> list[tuple[str, str]]:
    out = []
    for mod in PUBLIC_MODULES:
        module = importlib.import_module(f"clustermap.{mod}")
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if cm._EXPORTS.get(name) == mod:
                continue  # checked with the top-level names above
            if callable(obj) and getattr(obj, "__module__", "").startswith("clustermap"):
                out.append((mod, name))
    return out


@pytest.mark.parametrize(("module", "name"), _module_callables())
def test_module_public_callable_has_examples(module: str, name: str) -> None:
    obj = getattr(importlib.import_module(f"clustermap.{module}"), name)
    ok, doc = _has_examples(obj)
    assert doc, f"clustermap.{module}.{name} has no docstring"
    assert ok, f"clustermap.{module}.{name}: add an 'Examples' section with '>>>' lines"


@pytest.mark.parametrize("module", ["clustermap", *(f"clustermap.{m}" for m in PUBLIC_MODULES)])
def test_public_module_declares_all(module: str) -> None:
    mod = importlib.import_module(module)
    assert isinstance(getattr(mod, "__all__", None), list | tuple), module
    assert mod.__doc__, f"{module} has no module docstring"
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.__all__ names {name!r}, which is not defined"


# --------------------------------------------------------------------------- README


def _readme() -> str:
    if not README.is_file():  # pragma: no cover - the README ships with the sources
        pytest.skip("README.md is not there (installed package without sources)")
    return README.read_text(encoding="utf-8")


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_readme_keeps_the_two_commands() -> None:
    text = _readme()
    bash = re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL)
    assert bash, "README has no bash block"
    lines = [ln.strip() for ln in bash[0].splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines == README_COMMANDS


def test_readme_api_table_lists_every_public_name() -> None:
    text = _readme()
    api = text.split("## Public API", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `(?:cm\.)?([A-Za-z_]+)", api, flags=re.MULTILINE))
    expected = set(_callables())
    assert expected <= listed, f"missing from the README API table: {sorted(expected - listed)}"
    assert listed <= set(PUBLIC_NAMES), f"not public: {sorted(listed - set(PUBLIC_NAMES))}"


@pytest.mark.slow
def test_readme_example_runs(tmp_path: Path) -> None:
    blocks = _python_blocks(_readme())
    assert blocks, "README has no ```python block"
    code = blocks[0]
    assert len([ln for ln in code.splitlines() if ln.strip()]) <= 12, "keep it short"
    out = io.StringIO()
    namespace: dict[str, object] = {"__name__": "__readme__"}
    cwd = os.getcwd()
    os.chdir(tmp_path)  # the example writes its report and GeoPackage here
    try:
        with contextlib.redirect_stdout(out), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exec(compile(code, str(README), "exec"), namespace)
    finally:
        os.chdir(cwd)
    printed = out.getvalue()

    # what the demo's answer key says: 51 950 rows, 1 500 closed, 250 without coordinates,
    # 100 invalid codes, 50 duplicates dropped, 50 swapped repaired: 50 050 kept
    assert "51,950 data rows; 50,050 establishments kept" in printed
    assert "closed_establishments     1,500" in printed
    result = namespace["result"]
    assert isinstance(result, cm.ClusterResult)
    assert repr(result) in printed
    key = namespace["demo"].answer_key
    planted = set(key.loc[key["kind"] == "planted", "naf"])
    # the six planted clusters lead the list (traded, specialised and a large share)
    top = result.clusters.head(len(planted))
    assert set(top["sector"]) == planted
    decolletage = result.clusters[result.clusters["sector"] == "25.62A"].iloc[0]
    assert "D1387" in decolletage["unit_ids"]  # ... and covers its planted centre
    nulls = key.loc[key["kind"] == "null_sector", "name"]
    assert not result.clusters["sector"].isin(nulls).any()
    assert (tmp_path / "clusters.html").stat().st_size > 10_000
    assert (tmp_path / "clusters.gpkg").is_file()
    import geopandas as gpd

    back = gpd.read_file(tmp_path / "clusters.gpkg", layer="clusters")
    assert back["cluster_id"].tolist() == result.clusters["cluster_id"].tolist()


@pytest.mark.slow
def test_readme_cli_example_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from clustermap.cli import main

    section = _readme().split("## Command line", 1)[1].split("\n## ", 1)[0]
    bash = re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL)[0]
    lines = bash.replace("\\\n", " ").splitlines()
    command = next(ln.split("#")[0] for ln in lines if ln.startswith("clustermap detect"))
    argv = shlex.split(command)[1:]
    # the demo files are given relative to the repository root
    argv = [str(ROOT / a) if a.startswith("datasets/") else a for a in argv]
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            code = main([*argv, "--quiet"])
    finally:
        os.chdir(cwd)
    assert code == 0, capsys.readouterr().err
    import geopandas as gpd

    clusters = gpd.read_file(tmp_path / "clusters.gpkg", layer="clusters")
    # --level class: the sectors are NAF classes, and the planted classes lead
    assert clusters["sector"].str.fullmatch(r"\d\d\.\d\d").all()
    planted = {"25.62", "22.29", "11.02", "25.71", "20.42", "62.01"}
    assert set(clusters["sector"].head(6)) == planted
    page = (tmp_path / "rapport.html").read_text(encoding="utf-8")
    assert "demo_registry.csv.gz" in page
