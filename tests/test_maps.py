"""String-level tests of the Folium maps (rendered HTML, as geopandas tests explore()).

The result is built by hand (small squares, three clusters in two sectors, establishments
whose names hold script/HTML) so every expected label and number is known.
"""

from __future__ import annotations

import html
import json
import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import Point, box

import clustermap as cm
from clustermap.viz import i18n as _i18n
from clustermap.viz import maps
from clustermap.viz.offline import script_json

NBSP = "\u00a0"
XSS_SCRIPT = "<script>alert(1)</script>"
XSS_IMG = "<img src=x onerror=alert(1)>"


def make_result(with_establishments: bool = True) -> cm.ClusterResult:
    """12 square units (3 rows x 4), 3 clusters in 2 sectors, 4 establishments."""
    ids = [f"740{i:02d}" for i in range(12)]
    geoms = [
        box(6 + 0.1 * (i % 4), 46 + 0.1 * (i // 4), 6.1 + 0.1 * (i % 4), 46.1 + 0.1 * (i // 4))
        for i in range(12)
    ]
    units = gpd.GeoDataFrame(
        {"name": [f"Commune {i}" for i in range(12)]},
        geometry=geoms,
        index=pd.Index(ids, name="unit_id"),
        crs=4326,
    )
    spec = [
        ("25.62A-1", "25.62A", "Décolletage", "Commune 0, Commune 1", [ids[0], ids[1]]),
        ("25.62A-2", "25.62A", "Décolletage", "Commune 10", [ids[10]]),
        ("10.71C-1", "10.71C", f"Boulangerie {XSS_SCRIPT}", "Commune 5", [ids[5], ids[6]]),
    ]
    clusters = gpd.GeoDataFrame(
        {
            "cluster_id": [s[0] for s in spec],
            "sector": [s[1] for s in spec],
            "sector_label": [s[2] for s in spec],
            "place": [s[3] for s in spec],
            "unit_ids": [s[4] for s in spec],
            "n_units": [len(s[4]) for s in spec],
            "establishments": [1234, 56, 78],
            "employees": [5000.0, 300.0, 100.0],
            "employees_low": [4000.0, 200.0, 50.0],
            "employees_high": [6000.0, 400.0, 150.0],
            "lq": [2.5, 1.8, 1.3],
            "lq_low": [2.1, 1.2, 1.05],
            "lq_high": [3.0, 2.6, 1.6],
            "lq_employees": [3.1, 2.0, 1.1],
            "share_of_sector": [0.12, 0.01, 0.025],
            "focus": [0.3, 0.05, 0.1],
            "p_value": [1e-6, 0.004, 0.03],
            "stars": [3, 1, 0],
            "strong_cluster": [True, False, False],
            "strong_cluster_p90": [True, False, False],
            "artefact": [False, False, True],
            "strength": [3.0, 2.0, 1.0],
        },
        geometry=[units.loc[s[4]].union_all() for s in spec],
        crs=4326,
    )
    establishments = None
    if with_establishments:
        establishments = gpd.GeoDataFrame(
            {
                "establishment_id": ["1", "2", "3", "4"],
                "sector": ["25.62A", "25.62A", "10.71C", "25.62A"],
                "name": [XSS_SCRIPT, XSS_IMG, "Pain & Co", "Dupont SA"],
                "employees": [150.0, 75.0, 3.0, 20.0],
                "unit_id": [ids[0], ids[1], ids[5], ids[0]],
            },
            geometry=[
                Point(6.05, 46.05),
                Point(6.15, 46.05),
                Point(6.15, 46.15),
                Point(6.06, 46.06),
            ],
            crs=4326,
        )
    table = pd.DataFrame(
        {
            "unit_id": ids,
            "sector": "25.62A",
            "establishments": np.arange(12),
            "lq": [0.4, 0.6, 1.0, 1.5, 3.0, 5.0, np.nan, 0.5, 0.8, 1.25, 2.0, 4.0],
            "lq_low": np.linspace(0.1, 3.5, 12),
            "lq_high": np.linspace(0.7, 6.0, 12),
            "p_value": np.linspace(0.001, 0.5, 12),
            "label": ["HH", "LL", "HL", "LH"] * 3,
        }
    )
    return cm.ClusterResult(
        clusters=clusters,
        table=table,
        units=units,
        establishments=establishments,
        parameters={"alpha": 0.05, "permutations": 999, "random_state": 7},
        registry_summary={
            "source": "dossier/registre_<i>test<i>&.csv",
            "rows": 1000,
            "kept": 990,
            "rejects": {"missing_coordinates": 6, "duplicated_id": 4},
        },
    )


def calls(page: str, func: str) -> list[list]:
    """Decoded JSON arguments of every ``cmUtil.<func>(name, [name,] {...}, ...)`` call."""
    out = []
    decoder = json.JSONDecoder()
    for match in re.finditer(rf"cmUtil\.{func}\(([\w, ]*?)(?=[\[{{\"])", page):
        pos = match.end()
        args = []
        while page[pos] in '[{"':
            value, end = decoder.raw_decode(page, pos)
            args.append(value)
            pos = end
            if page[pos : pos + 2] == ", ":
                pos += 2
            else:
                break
        out.append(args)
    return out


def render(m) -> str:
    return m.get_root().render()


@pytest.fixture(scope="module")
def result() -> cm.ClusterResult:
    return make_result()


@pytest.fixture(scope="module")
def page(result) -> str:
    # the CDN page: the map's own HTML without Leaflet's source (which holds NaN)
    return render(cm.explore_clusters(result, map_options={"offline": False}))


# ------------------------------------------------------------------ number formatting


def test_french_and_english_number_formats():
    assert _i18n.fmt_int(1234) == f"1{NBSP}234"
    assert _i18n.fmt_int(1234567.4) == f"1{NBSP}234{NBSP}567"
    assert _i18n.fmt_int(1234, "en") == "1,234"
    assert _i18n.fmt_num(2.5) == "2,5"
    assert _i18n.fmt_num(2.0) == "2"
    assert _i18n.fmt_num(1234.567) == f"1{NBSP}234,57"
    assert _i18n.fmt_num(2.5, "en") == "2.5"
    assert _i18n.fmt_pct(0.125) == f"12,5{NBSP}%"
    assert _i18n.fmt_pct(0.125, "en") == "12.5%"
    assert _i18n.fmt_p(0.0004) == f"<{NBSP}0,001"
    assert _i18n.fmt_p(0.0312) == "0,031"
    assert _i18n.fmt_num(float("nan")) == "–"
    assert _i18n.fmt_stars(2) == "★★☆"
    assert _i18n.fmt_bool(True) == "oui" and _i18n.fmt_bool(False, "en") == "no"


def test_script_json_escapes_markup():
    text = script_json({"n": "</script><img src=x onerror=alert(1)> & \u2028"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"n": "</script><img src=x onerror=alert(1)> & \u2028"}
    with pytest.raises(ValueError):
        script_json({"x": float("nan")})


# ------------------------------------------------------------------ clusters map


def test_one_layer_per_sector_with_its_clusters(page):
    geo = calls(page, "geojson")
    clusters = [a for a in geo if "cm-cluster" in a[1]["cls"]]
    by_class = {a[1]["cls"]: [f["properties"]["id"] for f in a[0]["features"]] for a in clusters}
    assert by_class == {
        "cm-cluster cm-layer-25_62A": ["25.62A-1", "25.62A-2"],
        "cm-cluster cm-layer-10_71C": ["10.71C-1"],
    }
    # the unit outlines of each sector layer: the 3 communes of 25.62A, 2 of 10.71C
    units = [len(a[0]["features"]) for a in geo if a[1]["cls"] == "cm-unit"]
    assert units == [3, 2]
    # layer control: one overlay per sector, names HTML-escaped (Leaflet shows them as HTML)
    control = re.search(r"overlays :\s*{(.*?)}", page, re.DOTALL).group(1)
    keys = [json.loads(k) for k in re.findall(r'("(?:[^"\\]|\\.)*")\s*:', control)]
    assert keys == ["25.62A — Décolletage", "10.71C — " + html.escape(f"Boulangerie {XSS_SCRIPT}")]
    assert page.count("L.control.layers(") == 1


def test_fiche_holds_every_measure_in_french(page):
    geo = calls(page, "geojson")
    feat = next(a for a in geo if "cm-layer-25_62A" in a[1]["cls"])[0]["features"][0]
    fiche = feat["properties"]["p"]
    assert fiche["t"] == "25.62A — Décolletage"
    assert dict(fiche["r"]) == {
        "Secteur": "25.62A — Décolletage",
        "Principales communes": "Commune 0, Commune 1",
        "Nombre de communes": "2",
        "Établissements": f"1{NBSP}234",
        "Salariés (estimation)": f"5{NBSP}000 (fourchette 4{NBSP}000 – 6{NBSP}000)",
        "Quotient de localisation": "2,5 (intervalle à 95 % : 2,1 – 3)",
        "Quotient de localisation (emplois)": "3,1",
        "Part du secteur national": f"12{NBSP}%",
        "Poids du secteur dans la zone": f"30{NBSP}%",
        "Étoiles (Observatoire européen)": "★★★",
        "Cluster fort": "oui",
        "Valeur p": f"<{NBSP}0,001",
    }
    # largest establishments of the sector in the cluster's units, by employees
    assert fiche["lt"] == "Principaux établissements"
    assert fiche["l"] == [
        f"{XSS_SCRIPT} (≈{NBSP}150 salariés)",
        f"{XSS_IMG} (≈{NBSP}75 salariés)",
        f"Dupont SA (≈{NBSP}20 salariés)",
    ]
    assert (
        feat["properties"]["t"] == f"Décolletage — Commune 0, Commune 1 — 1{NBSP}234 établissements"
    )
    # the artefact sector gets a warning line
    art = next(a for a in geo if "cm-layer-10_71C" in a[1]["cls"])[0]["features"][0]
    assert art["properties"]["p"]["w"] == "Secteur sujet aux artefacts du registre"


def test_registry_text_never_appears_as_markup(page):
    for raw in (XSS_SCRIPT, XSS_IMG, "<img src=x", "onerror=alert(1)>"):
        assert raw not in page
    assert "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e" in page
    # popups, tooltips and legends are written with textContent, never innerHTML
    assert "innerHTML" not in maps._JS
    assert not re.search(r"\bNaN\b", page)


def test_map_furniture_and_no_bootstrap_in_offline_mode(result):
    page = render(cm.explore_clusters(result, offline=True, context=True))
    assert "L.control.layers(" in page
    assert "cmUtil.scale(" in page and "cmUtil.fullscreen(" in page
    assert calls(page, "title")[0] == ["Clusters d'entreprises"]
    legend = calls(page, "legend")[0][0]
    assert legend["title"] == "Clusters détectés, par secteur"
    assert [i[0] for i in legend["items"]] == [maps.PALETTE[0], maps.PALETTE[1]]
    for cdn in ("cdn.jsdelivr.net", "code.jquery.com", "bootstrap", "cdnjs.cloudflare.com"):
        assert cdn not in page
    assert "Leaflet 1.9.4" in page  # embedded library banner
    # context: one outline for these non-commune ids (the dissolve of all units)
    ctx = [a for a in calls(page, "geojson") if a[1]["cls"] == "cm-context"]
    assert len(ctx) == 1 and len(ctx[0][0]["features"]) == 1
    outline = shapely.geometry.shape(ctx[0][0]["features"][0]["geometry"])
    assert outline.bounds == pytest.approx((6.0, 46.0, 6.4, 46.3))


def test_english_labels(result):
    page = render(cm.explore_clusters(result, lang="en"))
    fiche = dict(calls(page, "geojson")[0][0]["features"][0]["properties"]["p"]["r"])
    assert fiche["Location quotient"] == "2.5 (95% interval: 2.1 – 3)"
    assert fiche["Establishments"] == "1,234"
    assert fiche["Strong cluster"] == "yes"
    assert calls(page, "title")[0] == ["Business clusters"]


def test_layers_added_to_an_existing_map_keep_one_layer_control_last(result):
    m = cm.explore_clusters(result)
    m2 = cm.explore_lq(result, "25.62A", m=m)
    assert m2 is m
    page = render(m)
    assert page.count("L.control.layers(") == 1
    assert page.rfind("L.control.layers(") > page.rfind("cmUtil.geojson(")
    assert page.count("cmUtil.title(") == 1  # the second view adds no second title


def test_sector_filter_and_errors(result):
    page = render(cm.explore_clusters(result, sectors=["10.71C"]))
    assert [a[1]["cls"] for a in calls(page, "geojson") if "cm-cluster" in a[1]["cls"]] == [
        "cm-cluster cm-layer-10_71C"
    ]
    with pytest.raises(ValueError, match=r"99\.99Z"):
        cm.explore_clusters(result, sectors=["99.99Z"])
    with pytest.raises(ValueError, match="lang"):
        cm.explore_clusters(result, lang="de")
    with pytest.raises(cm.errors.SchemaError, match="group"):
        cm.explore_clusters(result, color_by="group")


# ------------------------------------------------------------------ geometry


def _jagged_grid(n: int = 6, teeth: int = 40) -> gpd.GeoDataFrame:
    """n x n cells whose shared edges are zig-zags (many vertices), a valid coverage."""
    size = 0.1

    def edge(x0, y0, x1, y1, seed):
        r = np.random.default_rng(seed)
        t = np.linspace(0, 1, teeth)
        off = r.normal(0, 0.002, teeth)
        off[0] = off[-1] = 0
        nx, ny = -(y1 - y0), x1 - x0
        return [(x0 + (x1 - x0) * a + nx * o, y0 + (y1 - y0) * a + ny * o) for a, o in zip(t, off)]

    def h(i, j):  # horizontal edge at row j from column i to i+1
        return edge(i * size, j * size, (i + 1) * size, j * size, 1000 + i * 100 + j)

    def v(i, j):  # vertical edge at column i from row j to j+1
        return edge(i * size, j * size, i * size, (j + 1) * size, 5000 + i * 100 + j)

    polys, ids = [], []
    for i in range(n):
        for j in range(n):
            ring = h(i, j)[:-1] + v(i + 1, j)[:-1] + h(i, j + 1)[::-1][:-1] + v(i, j)[::-1]
            polys.append(shapely.Polygon(ring))
            ids.append(f"u{i}_{j}")
    return gpd.GeoDataFrame(geometry=polys, index=pd.Index(ids, name="unit_id"), crs=4326)


def test_display_geometry_is_simplified_without_gaps_and_rounded():
    units = _jagged_grid()
    assert shapely.coverage_is_valid(units.geometry.to_numpy())
    display = maps._display_units(units, 100)  # 100 m tolerance
    geoms = display.to_numpy()
    before = shapely.get_num_coordinates(units.geometry.to_numpy()).sum()
    after = shapely.get_num_coordinates(geoms).sum()
    assert after < 0.6 * before
    # still a coverage: no gap, no overlap between neighbours
    assert shapely.coverage_is_valid(geoms)
    union = shapely.union_all(geoms)
    assert union.area == pytest.approx(sum(g.area for g in geoms), rel=1e-6)
    assert union.area == pytest.approx(shapely.union_all(units.geometry.to_numpy()).area, rel=2e-3)
    assert union.geom_type == "Polygon" and len(union.interiors) == 0
    coords = shapely.get_coordinates(geoms)
    assert np.allclose(coords * 1e5, np.round(coords * 1e5), atol=1e-6)


def test_units_are_reprojected_to_wgs84():
    units = make_result().units.to_crs(2154)
    display = maps._display_units(maps._units_frame(units), None)
    assert display.iloc[0].bounds == pytest.approx((6.0, 46.0, 6.1, 46.1), abs=1e-5)


def test_units_without_crs_in_metres_are_refused():
    units = make_result().units.to_crs(2154).set_crs(None, allow_override=True)
    with pytest.raises(cm.errors.CRSError, match="set_crs"):
        maps._units_frame(units)


# ------------------------------------------------------------------ LQ choropleth


def test_lq_choropleth_classes_and_legend(result):
    page = render(cm.explore_lq(result, "25.62A"))
    feats = calls(page, "geojson")[0][0]["features"]
    colors = [f["properties"]["c"] for f in feats]
    # lq: 0.4 0.6 1.0 1.5 3 5 NaN 0.5 0.8 1.25 2 4 -> classes with upper bounds included
    expected = [0, 1, 2, 3, 4, 5, None, 0, 1, 2, 3, 4]
    assert colors == [maps._NO_DATA_COLOR if k is None else maps._LQ_COLORS[k] for k in expected]
    legend = calls(page, "legend")[0][0]
    assert [i[1] for i in legend["items"]] == [
        "≤ 0,5",
        "0,5 – 0,8",
        "0,8 – 1,25",
        "1,25 – 2",
        "2 – 4",
        "> 4",
        "pas de donnée",
    ]
    assert legend["note"] == "1 = même part qu'au niveau national ; 2 = deux fois plus"
    assert (
        feats[3]["properties"]["t"] == "Commune 3 (74003) — QL 1,5 [1,03 – 2,15] ; 3 établissements"
    )


def test_lq_with_a_mapclassify_scheme(result):
    import mapclassify

    page = render(cm.explore_lq(result, "25.62A", scheme="quantiles", k=4))
    lq = result.table["lq"].dropna().to_numpy()
    ref = mapclassify.Quantiles(lq, k=4)
    legend = calls(page, "legend")[0][0]
    labels = [i[1] for i in legend["items"]][:4]
    assert labels[0] == f"≤ {_i18n.fmt_num(ref.bins[0])}"
    assert labels[3] == f"{_i18n.fmt_num(ref.bins[2])} – {_i18n.fmt_num(ref.bins[3])}"
    feats = calls(page, "geojson")[0][0]["features"]
    got = [f["properties"]["c"] for f in feats if f["properties"]["c"] != maps._NO_DATA_COLOR]
    assert got == [maps._SEQ_COLORS[4][k] for k in ref.yb]


def test_lq_unknown_sector(result):
    with pytest.raises(ValueError, match="not in the table"):
        cm.explore_lq(result, "01.11Z")


# ------------------------------------------------------------------ local statistics


def _local_table():
    units = make_result().units.iloc[:4]
    table = pd.DataFrame(
        {
            "unit_id": units.index,
            "sector": "10",
            "p_value": [0.001, 0.02, 0.2, 0.04],
            "label": ["HH", "LH", "LL", 4],  # esda code 4 = HL
        }
    )
    return table, units


@pytest.mark.parametrize(
    ("correction", "expected"),
    [
        # adjusted p: none (0.001, 0.02, 0.2, 0.04); bonferroni x4 (0.004, 0.08, 0.8, 0.16);
        # BH (0.004, 0.04, 0.2, 0.0533): significant at 0.05 marked below
        (None, ["HH", "LH", "ns", "HL"]),
        ("bonferroni", ["HH", "ns", "ns", "ns"]),
        ("fdr_bh", ["HH", "LH", "ns", "ns"]),
    ],
)
def test_local_quadrants_with_corrections(correction, expected):
    table, units = _local_table()
    page = render(cm.explore_local(table, units, correction=correction))
    colors = [f["properties"]["c"] for f in calls(page, "geojson")[0][0]["features"]]
    assert colors == [maps.LOCAL_COLORS[c] for c in expected]
    legend = calls(page, "legend")[0][0]
    n_ns = expected.count("ns")
    assert [f"Non significatif ({n_ns})"] == [i[1] for i in legend["items"] if "Non sig" in i[1]]


def test_adjust_matches_hand_values():
    p = np.array([0.01, 0.04, 0.03, np.nan, 0.5])
    np.testing.assert_allclose(
        cm.adjust_pvalues(p, correction="fdr_bh"),
        [0.04, 0.0533333, 0.0533333, np.nan, 0.5],
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        cm.adjust_pvalues(p, correction="holm"), [0.04, 0.09, 0.09, np.nan, 0.5]
    )
    np.testing.assert_allclose(
        cm.adjust_pvalues(p, correction="bonferroni"), [0.04, 0.16, 0.12, np.nan, 1.0]
    )


def test_local_hot_and_cold_spots():
    table, units = _local_table()
    table["label"] = ["hot", "cold", "ns", "Hot spot"]
    page = render(cm.explore_local(table, units, correction=None, lang="en"))
    colors = [f["properties"]["c"] for f in calls(page, "geojson")[0][0]["features"]]
    assert colors == [maps.LOCAL_COLORS[c] for c in ["hot", "cold", "ns", "hot"]]
    legend = calls(page, "legend")[0][0]
    assert legend["title"].startswith("Local autocorrelation (Gi*)")
    assert legend["note"] == "Threshold 0.05, correction: none"


def test_local_from_a_local_result_uses_its_significance():
    pytest.importorskip("clustermap.stats.autocorrelation")
    units = make_result().units
    y = pd.DataFrame({"10": [9.0, 8, 7, 0, 9, 8, 1, 0, 0, 1, 0, 0]}, index=units.index)
    graph = cm.build_graph(units, method="queen")
    local = cm.local_moran(y, graph, permutations=199, random_state=3)
    page = render(cm.explore_local(local, units, alpha=0.1, correction=None))
    colors = [f["properties"]["c"] for f in calls(page, "geojson")[0][0]["features"]]
    sig = local.significant(alpha=0.1, correction=None)["10"].to_numpy()
    quad = local.quadrant["10"].to_numpy()
    expected = [maps.LOCAL_COLORS[q] if s else maps.LOCAL_COLORS["ns"] for q, s in zip(quad, sig)]
    assert colors == expected
    assert sig.any()


# ------------------------------------------------------------------ establishments


def test_establishments_layers_and_grouping(result):
    page = render(cm.explore_establishments(result))
    pts = calls(page, "points")
    assert [len(a[0]["x"]) for a in pts] == [1, 3]  # 10.71C, 25.62A (sorted codes)
    assert [a[1]["cluster"] for a in pts] == [False, False]
    tips = pts[1][0]["t"]
    assert f"{XSS_SCRIPT} — 25.62A — Salariés (estimation) : 150" in tips
    page = render(cm.explore_establishments(result, cluster_above=2))
    assert [a[1]["cluster"] for a in calls(page, "points")] == [True, True]
    assert XSS_SCRIPT not in page


def test_establishments_filters_and_limits(result):
    page = render(cm.explore_establishments(result, sectors=["25"]))
    assert [len(a[0]["x"]) for a in calls(page, "points")] == [3]
    with pytest.raises(ValueError, match="max_points"):
        cm.explore_establishments(result, max_points=2)
    with pytest.raises(ValueError, match="no establishments"):
        cm.explore_establishments(make_result(with_establishments=False))


def test_result_explore_delegates(result):
    page = render(result.explore(lang="en"))
    assert "Business clusters" in page


def test_local_from_a_cluster_result_uses_the_local_statistic_p_value():
    result = make_result()
    table = result.table.copy()
    table["label"] = ["hot", "ns", "cold"] * 4
    table["p_value"] = 0.9  # window test: never significant
    table["statistic_p_value"] = [0.001, 0.5, 0.002] * 4
    result.table = table
    page = render(cm.explore_local(result, sector="25.62A", correction=None))
    colors = [f["properties"]["c"] for f in calls(page, "geojson")[0][0]["features"]]
    assert colors == [maps.LOCAL_COLORS[c] for c in ["hot", "ns", "cold"] * 4]


@pytest.mark.shared
def test_national_map_of_planted_clusters_stays_small():
    """Planted clusters of the synthetic national registry over the real 2018 communes."""
    from conftest import shared_file

    communes = shared_file("france_boundaries", "communes_2018_simplified.parquet")
    key = pd.read_csv(shared_file("synthetic_france", "answer_key.csv"), dtype=str)
    with pytest.warns(cm.errors.ClustermapWarning):  # one commune polygon gets repaired
        units = cm.read_units(communes, unit_id="code_insee", name="nom")
    planted = key[key["kind"] == "planted"]
    rows = []
    for r in planted.itertuples():
        ids = [c for c in r.communes.split(";") if c in units.index]
        rows.append(
            {
                "cluster_id": r.naf,
                "sector": r.naf,
                "sector_label": r.name,
                "unit_ids": ids,
                "establishments": int(r.extra),
                "geometry": units.loc[ids].union_all(),
            }
        )
    clusters = gpd.GeoDataFrame(rows, crs=units.crs)
    result = cm.ClusterResult(clusters=clusters, table=pd.DataFrame(), units=units)
    page = render(cm.explore_clusters(result, context=True))
    assert len(page.encode()) < 15e6
    geo = calls(page, "geojson")
    drawn = [f for a in geo if "cm-cluster" in a[1]["cls"] for f in a[0]["features"]]
    assert len(drawn) == len(planted)
    # each drawn region covers its communes (simplification moves edges by < ~100 m)
    for feat, ids in zip(drawn, clusters["unit_ids"]):
        shape = shapely.geometry.shape(feat["geometry"])
        truth = units.loc[ids].union_all()
        assert shape.symmetric_difference(truth).area < 0.02 * truth.area
    ctx = next(a for a in geo if a[1]["cls"] == "cm-context")
    assert (
        len(ctx[0]["features"])
        == units.index.str[:2]
        .where(~units.index.str.startswith("97"), units.index.str[:3])
        .nunique()
    )
