"""Tests of the standalone HTML report (string level; the browser tests are in test_browser)."""

from __future__ import annotations

import base64
import hashlib
import html
import re

import geopandas as gpd
import pandas as pd
import pytest
from test_maps import XSS_IMG, XSS_SCRIPT, make_result

import clustermap as cm
from clustermap.viz.offline import inline_script_hashes

NBSP = "\u00a0"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    result = make_result()
    path = tmp_path_factory.mktemp("report") / "rapport.html"
    out = cm.write_report(result, path, date="2026-01-31")
    return result, out.read_text(encoding="utf-8")


def _table_rows(page: str, table_id: str) -> list[list[str]]:
    body = re.search(rf'id="{table_id}".*?<tbody>(.*?)</tbody>', page, re.DOTALL).group(1)
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.DOTALL)
    return [
        [html.unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<td[^>]*>(.*?)</td>", r)]
        for r in rows
    ]


def test_cluster_table_has_one_row_per_cluster_with_values(report):
    result, page = report
    rows = _table_rows(page, "cm-cluster-table")
    assert len(rows) == len(result.clusters) == 3
    assert rows[0] == [
        "1",
        "25.62A",
        "Décolletage",
        "Commune 0, Commune 1",
        f"1{NBSP}234",
        f"5{NBSP}000",
        "2,5 [2,1 – 3]",
        f"12{NBSP}%",
        f"30{NBSP}%",
        "★★★",
        "oui",
        f"<{NBSP}0,001",
    ]
    # registry text shows as text: the label holding a script tag is escaped in the cell,
    # and the artefact sector (third cluster) carries the warning sign with its explanation
    assert rows[2][2] == f"Boulangerie {XSS_SCRIPT} ⚠"
    assert [r[2].endswith("⚠") for r in rows] == result.clusters["artefact"].tolist()
    assert page.count('class="cm-artefact" title="Secteur sujet aux artefacts du registre"') == 1
    assert "sièges sociaux 70.10Z" in page
    # sortable: numeric cells carry their raw value for the sort script
    assert 'data-v="1234.0"' in page
    headers = re.findall(r'<th scope="col" data-type="(\w+)"', page)
    assert headers[:5] == ["num", "text", "text", "text", "num"]


def test_what_was_analysed_and_rejects_by_reason(report):
    _, page = report
    summary = re.search(r'id="cm-analysed">(.*?)</section>', page, re.DOTALL).group(1)
    text = re.sub(r"[ \t\n]+", " ", html.unescape(re.sub(r"<[^>]+>", " ", summary)))
    assert "Fichier source registre_<i>test<i>&.csv" in text  # the file name only
    assert "Date du rapport 2026-01-31" in text
    assert f"Lignes lues 1{NBSP}000" in text
    assert "Établissements retenus 990" in text
    assert "Lignes écartées 10" in text
    rejects = _table_rows(page, "cm-rejects")
    assert rejects == [
        ["coordonnées manquantes missing_coordinates", "6"],
        ["identifiant en double duplicated_id", "4"],
    ]
    params = _table_rows(page, "cm-parameters")
    assert params == [["0.05"], ["999"], ["7"]]


def test_leading_cluster_sections_list_largest_establishments_as_text(report):
    _, page = report
    articles = re.findall(r'<article class="cm-leading" data-cluster="([^"]+)">', page)
    assert articles == ["25.62A-1", "25.62A-2", "10.71C-1"]
    first = re.search(r'data-cluster="25.62A-1"><h3>(.*?)</h3>(.*?)</article>', page, re.DOTALL)
    assert html.unescape(first.group(1)) == "1. 25.62A — Décolletage — Commune 0, Commune 1"
    items = [html.unescape(i) for i in re.findall(r"<li>(.*?)</li>", first.group(2))]
    assert items == [
        f"{XSS_SCRIPT} (≈{NBSP}150 salariés)",
        f"{XSS_IMG} (≈{NBSP}75 salariés)",
        f"Dupont SA (≈{NBSP}20 salariés)",
    ]
    # the artefact sector is flagged in its section
    assert "Secteur sujet aux artefacts du registre" in page


def test_no_registry_markup_and_no_cdn(report):
    _, page = report
    for raw in (XSS_SCRIPT, XSS_IMG, "<i>test<i>", "onerror=alert(1)>"):
        assert raw not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert not re.search(r"<script[^>]*\ssrc=", page)
    assert not re.search(r"<link[^>]*href=[\"']?https?:", page)
    for cdn in ("cdn.jsdelivr", "code.jquery", "bootstrapcdn", "cdnjs.cloudflare", "unpkg"):
        assert cdn not in page
    assert "L.map(" in page and "Leaflet 1.9.4" in page
    assert "url(images/" not in page  # Leaflet's icons are inlined as data: URIs
    from clustermap.viz import offline, report

    own_code = (offline.leaflet_assets()[1], report._SORT_JS)
    data = page
    for code in own_code:
        data = data.replace(code, "")
    assert not re.search(r"\bNaN\b", data)


def test_content_security_policy_lists_exactly_the_page_scripts(report):
    _, page = report
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page).group(1)
    assert page.index("Content-Security-Policy") < page.index("<script>")
    script_src = re.search(r"script-src ([^;]+);", policy).group(1).split()
    bodies = re.findall(r"<script>(.*?)</script>", page, re.DOTALL)
    expected = {
        "'sha256-" + base64.b64encode(hashlib.sha256(b.encode()).digest()).decode() + "'"
        for b in bodies
    }
    assert set(script_src) == expected == set(inline_script_hashes(page))
    assert "'unsafe-inline'" not in script_src
    assert "default-src 'none'" in policy


def test_method_note_and_offline_warning(report):
    _, page = report
    assert "Méthode et limites" in page
    assert "demande une connexion internet" in page
    assert 'lang="fr"' in page


def test_english_report(tmp_path):
    out = cm.write_report(make_result(), tmp_path / "report.html", lang="en")
    page = out.read_text(encoding="utf-8")
    assert 'lang="en"' in page
    assert "What was analysed" in page and "missing coordinates" in page
    rows = _table_rows(page, "cm-cluster-table")
    assert rows[0][4:7] == ["1,234", "5,000", "2.5 [2.1 – 3]"]


def test_report_without_clusters(tmp_path):
    result = make_result()
    empty = cm.ClusterResult(
        clusters=gpd.GeoDataFrame(result.clusters.iloc[:0]),
        table=result.table,
        units=result.units,
    )
    page = cm.write_report(empty, tmp_path / "r.html").read_text(encoding="utf-8")
    assert page.count("Aucun cluster détecté.") == 2  # table and leading sections
    assert "non précisé" in page  # no registry summary: source not given


def test_to_html_delegates_and_bad_folder(tmp_path):
    result = make_result()
    out = result.to_html(tmp_path / "via_result.html", lang="en")
    assert out.exists() and "Table of clusters" in out.read_text(encoding="utf-8")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        cm.write_report(result, tmp_path / "missing" / "r.html")


def test_report_on_the_bundled_demo(tmp_path):
    pytest.importorskip("clustermap.detect")
    demo = cm.load_demo()
    result = cm.detect_clusters(demo.registry, demo.units)
    page = cm.write_report(result, tmp_path / "demo.html").read_text(encoding="utf-8")
    rows = _table_rows(page, "cm-cluster-table")
    assert len(rows) == len(result.clusters) > 0
    assert [r[1] for r in rows] == result.clusters["sector"].astype(str).tolist()
    summary = result.registry_summary
    rejects = _table_rows(page, "cm-rejects")
    counts = [int(r[1].replace(NBSP, "")) for r in rejects]
    assert sum(counts) == sum(int(v) for v in dict(summary["rejects"]).values())
    repaired = re.search(r'<p id="cm-repairs">(.*?)</p>', page).group(1)
    n_swapped = summary["repairs"]["swapped_lat_lon"]
    assert html.unescape(repaired) == (
        f"Lignes corrigées et conservées — latitude et longitude inversées : {n_swapped}"
    )
    assert not re.search(r"<script[^>]*\ssrc=", page)
    assert pd.notna(result.clusters["lq"]).all()


def test_a_small_file_over_large_units_counts_and_zooms_to_the_units_with_data(tmp_path):
    """A département's data over national units: the report counts the units holding
    establishments, and a map without clusters opens on them, not on the whole layer."""
    import re
    import warnings

    from shapely.geometry import box

    ids = [f"u{i:03d}" for i in range(100)]
    units = gpd.GeoDataFrame(
        {"name": ids},
        geometry=[box(2 + 0.1 * (i % 10), 45 + 0.1 * (i // 10), 2.1 + 0.1 * (i % 10),
                      45.1 + 0.1 * (i // 10)) for i in range(100)],
        index=pd.Index(ids, name="unit_id"),
        crs=4326,
    )  # fmt: skip
    counts = pd.DataFrame({"a": [5] * 4, "b": [5] * 4}, index=["u000", "u001", "u010", "u011"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = cm.detect_clusters(counts, units, level=None, local_statistic=None)
    assert len(result.clusters) == 0
    out = cm.write_report(result, tmp_path / "r.html", lang="en")
    page = out.read_text(encoding="utf-8")
    assert "<b>4</b>Spatial units with establishments" in page
    html = cm.explore_clusters(result).get_root().render()
    found = re.findall(  # the map's own call, after Leaflet's source
        r"fitBounds\(\s*\[\[([-\d.]+),\s*([-\d.]+)\],\s*\[([-\d.]+),\s*([-\d.]+)\]\]", html
    )
    lat0, lon0, lat1, lon1 = (float(v) for v in found[-1])
    assert (lat0, lon0) == pytest.approx((45.0, 2.0)) and (lat1, lon1) == pytest.approx((45.2, 2.2))


def test_report_of_a_count_file_names_it(tmp_path):
    import warnings

    from shapely.geometry import box

    ids = [f"u{i}" for i in range(9)]
    units = gpd.GeoDataFrame(
        {"name": ids},
        geometry=[box(i % 3, i // 3, i % 3 + 1, i // 3 + 1) for i in range(9)],
        index=pd.Index(ids, name="unit_id"),
        crs=2154,
    )
    path = tmp_path / "comptages_urssaf.csv"
    rows = [(u, "25.62A", 3) for u in ids] + [(u, "47.11B", 9) for u in ids]
    pd.DataFrame(rows, columns=["unit", "sector", "establishments"]).to_csv(path, index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = cm.detect_clusters(cm.read_counts(path), units, local_statistic=None)
    page = cm.write_report(result, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "comptages_urssaf.csv" in page and "non précisé" not in page


def test_parameters_and_method_read_for_a_council_officer(report):
    """Parameters in words and in French first (raw values in a collapsed block); the method
    text says what the code does: the exact Poisson window test, Gi* only as a second view."""
    _, page = report
    readable = re.search(r'id="cm-parameters-readable"><tbody>(.*?)</tbody>', page, re.S).group(1)
    rows = [
        [
            html.unescape(re.sub(r"<[^>]+>", "", c))
            for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", r)
        ]
        for r in re.findall(r"<tr>(.*?)</tr>", readable, re.S)
    ]
    assert rows == [
        ["Part de fausses découvertes tolérée, par secteur", f"5{NBSP}%"],
        ["Permutations de l'indicateur Gi*", "999"],
        ["Graine aléatoire (reproductibilité)", "7"],
    ]
    assert re.search(
        r"<details><summary>Paramètres techniques[^<]*</summary>\s*(<button[^>]*>[^<]*</button>)?"
        r"\s*<table id=\"cm-parameters\"",
        page,
    )
    method = html.unescape(re.search(r'id="cm-method">(.*?)</section>', page, re.S).group(1))
    assert "binomiale négative" in method and "Benjamini-Hochberg" in method
    assert "exportateurs" in method and "bornes basses" in method
    assert "tests de permutation sur les indicateurs locaux" not in method
