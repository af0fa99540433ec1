"""Tests of the ``clustermap`` command line (in-process through ``main`` and as a script)."""

from __future__ import annotations

import html
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from test_maps import make_result

import clustermap as cm
from clustermap import cli


def run(argv, capsys):
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_version(capsys):
    code, out, _ = run(["--version"], capsys)
    assert code == 0
    assert out.strip() == f"clustermap {cm.__version__}"


def test_console_script_entry_point():
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from clustermap.cli import main; sys.exit(main())",
            "--version",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"clustermap {cm.__version__}"


def test_no_command_and_usage_errors(capsys):
    code, out, _ = run([], capsys)
    assert code == 2 and "detect" in out and "demo" in out
    code, _, err = run(["bogus"], capsys)
    assert code == 2 and "invalid choice" in err
    code, _, err = run(["detect"], capsys)  # REGISTRY missing
    assert code == 2 and "registry" in err


def _one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_missing_registry_file(capsys, tmp_path):
    code, out, err = run(["detect", str(tmp_path / "absent.csv"), "--quiet"], capsys)
    assert code == 2 and out == ""
    line = _one_line_error(err)
    assert line.startswith("clustermap: erreur : Registry file not found")
    assert "absent.csv" in line


def test_missing_units_file_and_unit_id_without_units(capsys, tmp_path):
    registry = tmp_path / "r.csv"
    registry.write_text("a,b\n1,2\n", encoding="utf-8")
    code, _, err = run(["detect", str(registry), "--units", str(tmp_path / "u.gpkg")], capsys)
    assert code == 2 and "Units file not found" in _one_line_error(err)
    code, _, err = run(["detect", str(registry), "--unit-id", "code", "--lang", "en"], capsys)
    line = _one_line_error(err)
    assert code == 2 and line.startswith("clustermap: error: --unit-id needs --units")


def test_output_folder_must_exist(capsys, tmp_path):
    code, _, err = run(["demo", "--out", str(tmp_path / "no" / "r.html"), "-q"], capsys)
    assert code == 2 and "n'existe pas" in _one_line_error(err)


def test_registry_with_unknown_columns_is_a_user_error(capsys, tmp_path):
    pytest.importorskip("clustermap.io")
    registry = tmp_path / "wrong.csv"
    registry.write_text("foo,bar\n1,2\n3,4\n", encoding="utf-8")
    code, _, err = run(["detect", str(registry), "--quiet"], capsys)
    line = _one_line_error(err)
    assert code == 2
    assert line.startswith("clustermap: erreur : ")
    assert "foo" in line  # the message lists the columns found


def test_unknown_crs_is_a_user_error(capsys, tmp_path):
    pytest.importorskip("clustermap.io")
    registry = tmp_path / "pts.csv"
    registry.write_text("id,sector,x,y\n1,25.62A,1,2\n", encoding="utf-8")
    code, _, err = run(["detect", str(registry), "--crs", "EPSG:999999", "-q"], capsys)
    assert code == 2
    _one_line_error(err)


def test_unexpected_errors_exit_1_with_a_hint(capsys, monkeypatch, tmp_path):
    def boom(*args, **kwargs):
        raise RuntimeError("kernel exploded")

    monkeypatch.setattr(cm, "load_demo", lambda: _FakeDemo())
    monkeypatch.setattr(cm, "detect_clusters", boom)
    code, _, err = run(["demo", "--out", str(tmp_path / "r.html"), "-q"], capsys)
    assert code == 1
    line = _one_line_error(err)
    assert "RuntimeError" in line and "kernel exploded" in line and "--debug" in line
    code, _, err = run(["demo", "--out", str(tmp_path / "r.html"), "-q", "--debug"], capsys)
    assert code == 1 and "Traceback" in err


class _FakeDemo:
    registry = "registry"
    units = None


def test_options_reach_detect_clusters_under_their_names(capsys, monkeypatch, tmp_path):
    """Wiring: the command passes its options to the API and writes report and GeoPackage."""
    seen = {}
    result = make_result()

    def fake_detect(
        data, units=None, level="subclass", *, alpha=0.05, permutations=999, random_state=None
    ):
        seen.update(
            data=data,
            units=units,
            level=level,
            alpha=alpha,
            permutations=permutations,
            random_state=random_state,
        )
        return result

    monkeypatch.setattr(cm, "load_demo", lambda: _FakeDemo())
    monkeypatch.setattr(cm, "detect_clusters", fake_detect)
    out_html, out_gpkg = tmp_path / "r.html", tmp_path / "c.gpkg"
    argv = [
        "demo",
        "--out",
        str(out_html),
        "--gpkg",
        str(out_gpkg),
        "--level",
        "class",
        "--alpha",
        "0.01",
        "--permutations",
        "99",
        "--seed",
        "5",
        "--lang",
        "en",
    ]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    assert seen == {
        "data": "registry",
        "units": None,
        "level": "class",
        "alpha": 0.01,
        "permutations": 99,
        "random_state": 5,
    }
    # progress: one line per stage with its duration, then the total
    stages = re.findall(r"^\[(\d)/4\] (.+?) … (\d+\.\d) s$", err, re.MULTILINE)
    assert [s[1] for s in stages] == [
        "Loading the demo data",
        "Detecting clusters",
        "Writing the report",
        "Writing the GeoPackage",
    ]
    assert re.search(r"^Done in \d+\.\d s$", err, re.MULTILINE)
    # summary
    assert out.splitlines()[0] == "3 cluster(s) found in 2 sector(s)"
    assert "990 establishments kept, 10 rows dropped" in out
    assert "  1. 25.62A Décolletage — Commune 0, Commune 1 (LQ 2.5, 1,234 establishments)" in out
    assert f"Report: {out_html}" in out
    assert "Table of clusters" in out_html.read_text(encoding="utf-8")
    written = gpd.read_file(out_gpkg, layer="clusters")
    assert written["cluster_id"].tolist() == result.clusters["cluster_id"].tolist()


def test_option_unknown_to_detect_clusters_is_refused(monkeypatch):
    import argparse

    def narrow(data, units=None):
        return None

    args = argparse.Namespace(level=None, permutations=None, seed=3, alpha=None)
    with pytest.raises(ValueError, match="--seed"):
        cli._detect_kwargs(narrow, args, "en")


def test_quiet_prints_no_progress(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(cm, "load_demo", lambda: _FakeDemo())
    monkeypatch.setattr(cm, "detect_clusters", lambda data, units=None: make_result())
    code, out, err = run(["demo", "--out", str(tmp_path / "r.html"), "--quiet"], capsys)
    assert code == 0 and err == ""
    assert out.startswith("3 cluster(s) détecté(s) dans 2 secteur(s)")


def test_demo_end_to_end(capsys, tmp_path):
    pytest.importorskip("clustermap.detect")
    out_html = tmp_path / "clustermap_demo.html"
    code, out, err = run(["demo", "--out", str(out_html)], capsys)
    assert code == 0, err
    n = int(re.match(r"(\d+) cluster", out).group(1))
    demo = cm.load_demo()
    expected = cm.detect_clusters(demo.registry, demo.units)
    assert n == len(expected.clusters) > 0
    page = out_html.read_text(encoding="utf-8")
    assert page.count("<tr data-cluster=") == n
    kept = demo.registry.summary_dict()["kept"]
    assert f"{kept:,d}".replace(",", "\u00a0") + " établissements retenus" in out


def test_demo_at_the_cluster_category_level(capsys, tmp_path):
    """--level cluster_category: the summary leads with traded categories in French words,
    and each fiche lists the codes of its category with their labels and counts."""
    out_html = tmp_path / "categories.html"
    code, out, err = run(
        ["demo", "--out", str(out_html), "--level", "cluster_category", "--quiet"], capsys
    )
    assert code == 0, err
    demo = cm.load_demo()
    expected = cm.detect_clusters(demo.registry, demo.units, level="cluster_category")
    first = expected.clusters.iloc[0]
    assert "Principaux clusters exportateurs" in out
    assert f"1. {first['sector_label']} — {first['place']}" in out
    page = html.unescape(out_html.read_text(encoding="utf-8"))
    comp = expected.composition[expected.composition["cluster_id"] == first["cluster_id"]]
    top = comp.iloc[0]
    assert f"{top['code']} — {top['code_label']} : {int(top['establishments'])} " in page


def test_detect_end_to_end_with_units_file(capsys, tmp_path):
    pytest.importorskip("clustermap.detect")
    demo = cm.load_demo()
    out_html = tmp_path / "r.html"
    argv = [
        "detect",
        str(demo.registry_path),
        "--units",
        str(demo.units_path),
        "--unit-id",
        "code",
        "--unit-name",
        "nom",
        "--out",
        str(out_html),
        "-q",
    ]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    expected = cm.detect_clusters(demo.registry, demo.units)
    assert out.splitlines()[0].startswith(f"{len(expected.clusters)} cluster(s)")
    page = out_html.read_text(encoding="utf-8")
    ids = re.findall(r'<tr data-cluster="([^"]+)"', page)
    assert ids == expected.clusters["cluster_id"].astype(str).tolist()
    assert pd.notna(expected.clusters["lq"]).all()


def _long_counts(tmp_path):
    import geopandas as gpd
    from shapely.geometry import box

    ids = [f"u{i:02d}" for i in range(36)]
    units = gpd.GeoDataFrame(
        {"code": ids, "nom": [f"Ville {i}" for i in range(36)]},
        geometry=[box(i % 6, i // 6, i % 6 + 1, i // 6 + 1) for i in range(36)],
        crs=2154,
    )
    units_path = tmp_path / "units.gpkg"
    units.to_file(units_path)
    rows = []
    for i, u in enumerate(ids):
        planted = 30 if i in (0, 1, 6, 7) else 2
        rows += [(u, "25.62A", planted), (u, "47.11B", 40)]
    path = tmp_path / "comptages.csv"
    pd.DataFrame(rows, columns=["unit", "sector", "establishments"]).to_csv(path, index=False)
    return path, units_path


def test_detect_reads_a_count_file_from_its_header_and_names_it_in_the_report(capsys, tmp_path):
    path, units_path = _long_counts(tmp_path)
    out_html = tmp_path / "r.html"
    argv = ["detect", str(path), "--units", str(units_path), "--unit-id", "code"]
    code, out, err = run([*argv, "--unit-name", "nom", "--out", str(out_html)], capsys)
    assert code == 0, err
    assert "Lecture des effectifs par unité et secteur" in err
    assert out.startswith("1 cluster(s) détecté(s) dans 1 secteur(s)")
    page = out_html.read_text(encoding="utf-8")
    assert "comptages.csv" in page and "non précisé" not in page


def test_count_file_errors_speak_in_flags(capsys, tmp_path):
    path, _ = _long_counts(tmp_path)
    code, _, err = run(["detect", str(path), "--out", str(tmp_path / "r.html")], capsys)
    assert code == 2 and "comptages.csv" in err and "--units FICHIER" in err
    registry = tmp_path / "registre.csv"
    registry.write_text("siret,naf,lon,lat\n00000000000018,25.62A,6.5,46.0\n", encoding="utf-8")
    argv = ["detect", str(registry), "--out", str(tmp_path / "r.html"), "--lang", "en"]
    code, _, err = run(argv, capsys)
    assert code == 2
    assert "--sector-column naf --x-column lon" in err and "sector=" not in err
    code, _, err = run([*argv, "--year", "2020"], capsys)
    assert code == 2 and "--year applies to count files" in err


X0, Y0 = 940_000, 6_540_000  # Lambert-93 metres, in Haute-Savoie


def test_named_columns_on_the_command_line(capsys, tmp_path):
    import geopandas as gpd
    from shapely.geometry import box

    rng = np.random.default_rng(0)
    rows = []
    for i in range(400):
        cx, cy = (0.5, 0.5) if i < 60 else rng.uniform(0, 4, 2)
        others = ["47.11B", "56.10A", "25.62A"]
        naf = "25.62A" if i < 60 else rng.choice(others, p=[0.5, 0.45, 0.05])
        dx, dy = rng.uniform(-0.4, 0.4, 2)
        rows.append((f"{i:014d}", naf, X0 + 1000 * (cx + dx), Y0 + 1000 * (cy + dy)))
    registry = tmp_path / "registre.csv"
    pd.DataFrame(rows, columns=["id_etab", "code_ape", "xx", "yy"]).to_csv(registry, index=False)
    cells = gpd.GeoDataFrame(
        {"code": [f"c{i}" for i in range(16)]},
        geometry=[
            box(X0 + 1000 * (i % 4), Y0 + 1000 * (i // 4), X0 + 1000 * (i % 4 + 1),
                Y0 + 1000 * (i // 4 + 1))
            for i in range(16)
        ],
        crs=2154,
    )  # fmt: skip
    cells.to_file(tmp_path / "cells.gpkg")
    argv = [
        "detect", str(registry), "--units", str(tmp_path / "cells.gpkg"), "--unit-id", "code",
        "--sector-column", "code_ape", "--x-column", "xx", "--y-column", "yy",
        "--id-column", "id_etab", "--crs", "2154", "--out", str(tmp_path / "r.html"), "--quiet",
    ]  # fmt: skip
    code, out, err = run(argv, capsys)
    assert code == 0, err
    assert "400 établissements retenus" in out.replace("\u00a0", " ")


@pytest.mark.shared
@pytest.mark.slow
def test_detect_on_the_real_urssaf_file_with_commune_polygons(capsys, tmp_path):
    from conftest import shared_file

    path = shared_file("urssaf", "urssaf_commune_x_ape_ze_rouen_2006_2022.csv.gz")
    communes = shared_file("france_boundaries", "communes_2018_simplified.parquet")
    out_html = tmp_path / "rouen.html"
    argv = ["detect", str(path), "--units", str(communes), "--out", str(out_html), "--quiet"]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    n = int(re.match(r"(\d+) cluster", out).group(1))
    assert n > 0
    page = out_html.read_text(encoding="utf-8")
    assert page.count("<tr data-cluster=") == n and path.name in page


@pytest.mark.parametrize(
    ("compiled", "quiet", "said"),
    [(False, False, True), (True, False, False), (False, True, False)],
)
def test_first_run_says_once_that_kernels_compile(
    capsys, monkeypatch, tmp_path, compiled, quiet, said
):
    from clustermap.stats import autocorrelation

    monkeypatch.setattr(autocorrelation, "kernels_compiled", lambda: compiled)
    monkeypatch.setattr(cm, "load_demo", lambda: _FakeDemo())
    monkeypatch.setattr(cm, "detect_clusters", lambda data, units=None: make_result())
    argv = ["demo", "--out", str(tmp_path / "r.html"), "--lang", "en", *(["-q"] if quiet else [])]
    code, _, err = run(argv, capsys)
    assert code == 0
    assert ("First run on this machine" in err) is said
    assert err.count("First run") <= 1


def test_progress_bars_show_in_a_terminal_and_quiet_silences_them(monkeypatch, capsys):
    """tqdm bars on stderr inside the long steps when progress is on; --quiet and
    set_progress(False) silence them; the setting comes back after the command."""
    from clustermap.core.progress import progress_setting

    demo = cm.load_demo()
    cm.set_progress(True)
    try:
        cm.detect_clusters(demo.registry, demo.units, local_statistic=None)
        err = capsys.readouterr().err
        assert "detect_clusters" in err and "step" in err  # the tqdm bar of the stages
        cm.set_progress(False)
        cm.detect_clusters(demo.registry, demo.units, local_statistic=None)
        assert "detect_clusters" not in capsys.readouterr().err
        cm.set_progress(True)
        out = str(Path(tempfile.mkdtemp()) / "d.html")
        assert cli.main(["demo", "--out", out, "--quiet"]) == 0
        assert "detect_clusters" not in capsys.readouterr().err
        assert progress_setting() is True  # restored after the command
    finally:
        cm.set_progress(None)
