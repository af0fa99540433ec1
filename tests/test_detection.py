"""Tests of clustermap.detection.detect_clusters.

Small planted lattices checked against hand computations (scipy's Poisson and chi-square
distributions, the queen neighbours of a square grid), then the bundled demo and the
synthetic national registry with their answer keys (planted clusters found, null sectors
clean, clusters kept near their planted centre).
"""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats
from shapely.geometry import Point, box

import clustermap as cm
from clustermap.detect.result import CLUSTER_COLUMNS
from clustermap.detect.window import bh_reject as _bh_reject
from clustermap.errors import ClustermapWarning, SchemaError
from conftest import shared_file

SIDE = 20  # 20 x 20 lattice of 5 km squares
CELL = 5_000.0
BLOCK = [(r, c) for r in range(3, 6) for c in range(3, 6)]  # planted 3 x 3 block
ART_BLOCK = [(r, c) for r in range(14, 16) for c in range(14, 17)]  # head offices


def _uid(r: int, c: int) -> str:
    return f"u{r:02d}{c:02d}"


@pytest.fixture(scope="module")
def lattice():
    """Units and a counts table with a planted 25.62A block and a planted 70.10Z block."""
    ids = [_uid(r, c) for r in range(SIDE) for c in range(SIDE)]
    units = gpd.GeoDataFrame(
        {"name": [f"Commune {i}" for i in ids]},
        geometry=[
            box(c * CELL, r * CELL, (c + 1) * CELL, (r + 1) * CELL)
            for r in range(SIDE)
            for c in range(SIDE)
        ],
        index=pd.Index(ids, name="unit_id"),
        crs=2154,
    )
    rng = np.random.default_rng(42)
    size = rng.integers(100, 600, len(ids)).astype(float)
    shares = {"25.62A": 0.01, "10.71C": 0.05, "70.10Z": 0.01, "47.11B": 0.3}
    counts = pd.DataFrame(
        {s: rng.poisson(size * sh) for s, sh in shares.items()}, index=units.index
    )
    for r, c in BLOCK:
        counts.loc[_uid(r, c), "25.62A"] += 25
    for r, c in ART_BLOCK:
        counts.loc[_uid(r, c), "70.10Z"] += 20
    counts["other"] = rng.poisson(size)
    return units, counts


@pytest.fixture(scope="module")
def lattice_result(lattice):
    units, counts = lattice
    return cm.detect_clusters(counts, units, random_state=7)


def test_planted_block_found_and_null_sector_clean(lattice_result):
    res = lattice_result
    assert list(res.clusters.columns[: len(CLUSTER_COLUMNS)]) == list(CLUSTER_COLUMNS)
    found = res.clusters[res.clusters["sector"] == "25.62A"]
    assert len(found) == 1
    units_found = set(found.iloc[0]["unit_ids"])
    block = {_uid(r, c) for r, c in BLOCK}
    assert block <= units_found
    # no sprawl: every unit is in the block or in its first ring
    ring = {_uid(r + dr, c + dc) for r, c in BLOCK for dr in (-1, 0, 1) for dc in (-1, 0, 1)}
    assert units_found <= ring
    assert (res.clusters["sector"] != "10.71C").all()
    assert (res.clusters["sector"] != "47.11B").all()
    assert found.iloc[0]["sector_label"] == "Décolletage"
    assert found.iloc[0]["cluster_id"] == "25.62A-1"
    sectors = res.sectors.set_index("sector")
    assert sectors.loc["25.62A", "clusters"] == 1
    assert sectors.loc["25.62A", "share_in_clusters"] == pytest.approx(
        found.iloc[0]["establishments"] / sectors.loc["25.62A", "establishments"]
    )
    # traded first, each type by rank_score
    order = res.clusters["sector_type"].map({"traded": 0, "local": 1})
    assert order.is_monotonic_increasing
    for _, grp in res.clusters.groupby(["sector_type", "artefact"]):
        assert grp["rank_score"].is_monotonic_decreasing


def _region_sums(counts, ids, sector):
    o = counts.loc[ids, sector].sum()
    n_r = counts.loc[ids].to_numpy().sum()
    n_s = counts[sector].sum()
    total = counts.to_numpy().sum()
    sum_e2 = ((counts.loc[ids].to_numpy().sum(axis=1) * n_s / total) ** 2).sum()
    return o, n_r, n_s, n_r * n_s / total, sum_e2


def test_region_measures_match_hand_computation(lattice):
    """Poisson model: exact Garwood interval and Poisson tail, by hand."""
    units, counts = lattice
    res = cm.detect_clusters(
        counts, units, random_state=7, local_statistic=None, options={"dispersion": "poisson"}
    )
    row = res.clusters.set_index("cluster_id").loc["25.62A-1"]
    ids = row["unit_ids"]
    o, n_r, n_s, e, _ = _region_sums(counts, ids, "25.62A")
    assert row["dispersion"] == 0
    assert row["establishments"] == o
    assert row["lq"] == pytest.approx(o / e)
    assert row["lq_low"] == pytest.approx(stats.chi2.ppf(0.025, 2 * o) / (2 * e))
    assert row["lq_high"] == pytest.approx(stats.chi2.ppf(0.975, 2 * o + 2) / (2 * e))
    assert row["p_value"] == pytest.approx(stats.poisson.sf(o - 1, e), rel=1e-6, abs=1e-300)
    assert row["share_of_sector"] == pytest.approx(o / n_s)
    assert row["focus"] == pytest.approx(o / n_r)
    assert row["strength"] == pytest.approx(o * np.log(o / e) - (o - e))
    low = stats.chi2.ppf(0.025, 2 * o) / (2 * e)
    assert row["rank_score"] == pytest.approx(low * low * e / n_s)
    assert row["n_units"] == len(ids)
    assert row.geometry.area == pytest.approx(len(ids) * CELL**2)
    assert row["place"].split(", ")[0] in {f"Commune {_uid(r, c)}" for r, c in BLOCK}


def test_region_measures_under_overdispersion_match_scipy_nbinom(lattice):
    """With alpha, the region count is NB with variance E + alpha sum E_i²: scipy's nbinom."""
    units, counts = lattice
    alpha = 0.2
    res = cm.detect_clusters(
        counts, units, random_state=7, local_statistic=None, options={"dispersion": alpha}
    )
    row = res.clusters.set_index("cluster_id").loc["25.62A-1"]
    o, _, n_s, e, sum_e2 = _region_sums(counts, row["unit_ids"], "25.62A")
    size = e**2 / (alpha * sum_e2)  # NB size; it does not change when the mean is scaled
    assert row["dispersion"] == alpha
    assert row["p_value"] == pytest.approx(
        stats.nbinom.sf(o - 1, size, size / (size + e)), rel=1e-6, abs=1e-300
    )

    def tail(theta, upper):
        p = size / (size + theta * e)
        return stats.nbinom.cdf(o, size, p) if upper else stats.nbinom.sf(o - 1, size, p)

    low = optimize.brentq(lambda t: tail(t, False) - 0.025, 1e-6, o / e)
    high = optimize.brentq(lambda t: tail(t, True) - 0.025, o / e, 1e4)
    assert row["lq_low"] == pytest.approx(low, rel=1e-8)
    assert row["lq_high"] == pytest.approx(high, rel=1e-8)
    assert row["rank_score"] == pytest.approx(low * low * e / n_s, rel=1e-8)
    # wider than the Poisson interval
    assert low < stats.chi2.ppf(0.025, 2 * o) / (2 * e)


def test_window_test_matches_scipy_and_queen_neighbours(lattice, lattice_result):
    _, counts = lattice
    table = lattice_result.table
    n_i = counts.sum(axis=1)
    n_s = counts.sum(axis=0)
    total = n_s.sum()
    for r, c in [(4, 4), (3, 6), (10, 10)]:
        window = [
            _uid(r + dr, c + dc)
            for dr in (-1, 0, 1)
            for dc in (-1, 0, 1)
            if 0 <= r + dr < SIDE and 0 <= c + dc < SIDE
        ]
        o_w = counts.loc[window, "25.62A"].sum()
        e_w = n_i[window].sum() * n_s["25.62A"] / total
        cell = table[(table.unit_id == _uid(r, c)) & (table.sector == "25.62A")].iloc[0]
        assert cell["window_observed"] == o_w
        assert cell["window_expected"] == pytest.approx(e_w)
        # negative binomial with the sector's alpha: variance E_W + alpha sum_j E_j²
        alpha = lattice_result.sectors.set_index("sector").loc["25.62A", "dispersion"]
        sum_e2 = ((n_i[window] * n_s["25.62A"] / total) ** 2).sum()
        if alpha > 0:
            size = e_w**2 / (alpha * sum_e2)
            expected_p = stats.nbinom.sf(o_w - 1, size, size / (size + e_w))
        else:
            expected_p = stats.poisson.sf(o_w - 1, e_w)
        expected_p = expected_p if o_w > e_w else 1.0
        assert cell["p_value"] == pytest.approx(expected_p, rel=1e-8, abs=1e-300)
        assert cell["lq"] == pytest.approx(
            counts.loc[_uid(r, c), "25.62A"] / (n_i[_uid(r, c)] * n_s["25.62A"] / total)
        )


def test_bh_on_sparse_pvalues_matches_adjust_pvalues():
    rng = np.random.default_rng(5)
    m = 500
    p_full = np.concatenate([rng.uniform(0, 1, m - 40), rng.uniform(0, 2e-3, 40)])
    adjusted = cm.adjust_pvalues(p_full, method="fdr_bh")
    expected = adjusted <= 0.05
    keep = p_full < 0.3  # the sparse representation drops large p-values
    got = _bh_reject(p_full[keep], np.zeros(keep.sum(), dtype=int), np.array([m]), 0.05)
    np.testing.assert_array_equal(got, expected[keep])
    assert not expected[~keep].any()
    # two columns with different families
    p2 = np.r_[p_full[keep], p_full[keep]]
    cols = np.r_[np.zeros(keep.sum(), int), np.ones(keep.sum(), int)]
    got2 = _bh_reject(p2, cols, np.array([m, 10 * m]), 0.05)
    exp2 = cm.adjust_pvalues(np.r_[p_full, np.ones(9 * m)], method="fdr_bh")[:m] <= 0.05
    np.testing.assert_array_equal(got2[keep.sum() :], exp2[keep])


def test_artefact_sectors_flagged_or_excluded(lattice, lattice_result):
    units, counts = lattice
    art = lattice_result.clusters[lattice_result.clusters["sector"] == "70.10Z"]
    assert len(art) == 1 and bool(art.iloc[0]["artefact"])
    assert not lattice_result.clusters.loc[
        lattice_result.clusters["sector"] == "25.62A", "artefact"
    ].any()
    res = cm.detect_clusters(
        counts, units, options={"exclude_artefacts": True}, local_statistic=None
    )
    assert (res.clusters["sector"] != "70.10Z").all()
    sectors = res.sectors.set_index("sector")
    assert not sectors.loc["70.10Z", "analysed"] and sectors.loc["70.10Z", "artefact"]


def test_group_mapping_level(lattice):
    units, counts = lattice
    mapping = {"25.62A": "Mécanique", "70.10Z": "Sièges", "10.71C": "Commerce alimentaire"}
    res = cm.detect_clusters(counts, units, level=mapping, local_statistic=None)
    assert set(res.clusters["sector"]) == {"Mécanique", "Sièges"}
    # codes outside the mapping still count in the totals, in the "(other)" bucket
    assert res.parameters["outside_level"]["codes"] == ["47.11B", "other"]
    other = res.sectors.set_index("sector").loc["(other)"]
    assert other["establishments"] == counts[["47.11B", "other"]].to_numpy().sum()
    assert not other["analysed"]
    row = res.clusters.set_index("sector").loc["Mécanique"]
    direct = cm.detect_clusters(counts, units, local_statistic=None)
    assert row["lq"] == pytest.approx(direct.clusters.set_index("sector").loc["25.62A", "lq"])
    row = res.clusters.set_index("sector").loc["Sièges"]
    assert row["sector_label"] == "Sièges" and bool(row["artefact"])


def test_local_statistic_is_reported_and_does_not_change_clusters(lattice, lattice_result):
    units, counts = lattice
    plain = cm.detect_clusters(counts, units, local_statistic=None)
    pd.testing.assert_series_equal(
        plain.clusters["cluster_id"], lattice_result.clusters["cluster_id"]
    )
    table = lattice_result.table
    sub = table[table.sector == "25.62A"].set_index("unit_id")
    assert sub["statistic"].notna().all()
    # reference: Gi* of the EB-smoothed LQ through the public API
    eb = cm.location_quotient(counts, smooth=True)
    graph = cm.build_graph(units, "queen", islands="knn")
    gi = cm.local_getis_ord(
        eb[["25.62A"]], graph, permutations=999, random_state=7, early_stop=0.05
    )
    np.testing.assert_allclose(
        sub["statistic"], gi.statistic["25.62A"].reindex(sub.index), rtol=1e-10
    )
    centre = _uid(4, 4)
    assert sub.loc[centre, "label"] == "hot"
    assert sub.loc[centre, "statistic_p_value"] <= 0.05
    # the table marks the cluster's cells
    assert set(sub.index[sub["cluster_id"] == "25.62A-1"]) == set(
        lattice_result.clusters.set_index("cluster_id").loc["25.62A-1", "unit_ids"]
    )


def test_score_units_comparison_zoning(lattice):
    units, counts = lattice
    quads = gpd.GeoDataFrame(
        geometry=[
            box(x0, y0, x0 + 10 * CELL, y0 + 10 * CELL)
            for x0 in (0, 10 * CELL)
            for y0 in (0, 10 * CELL)
        ],
        crs=2154,
    )
    res = cm.detect_clusters(counts, units, options={"score_units": quads}, local_statistic=None)
    row = res.clusters.set_index("cluster_id").loc["25.62A-1"]
    # reference: the quadrants' own table, scored with the public functions
    quad_of = [(r >= 10) * 1 + (c >= 10) * 2 for r in range(SIDE) for c in range(SIDE)]
    q = counts.groupby(np.array(quad_of)).sum()
    q_lq = cm.location_quotient(q)
    ref = pd.DataFrame(
        {
            "sector": "25.62A",
            "lq": q_lq["25.62A"],
            "employees": q["25.62A"],
            "establishments": q["25.62A"],
            "focus": q["25.62A"] / q.sum(axis=1),
        }
    )
    probe = pd.DataFrame(
        {
            "sector": ["25.62A"],
            "lq": [row["lq"]],
            "employees": [row["establishments"]],
            "establishments": [row["establishments"]],
            "focus": [row["focus"]],
        }
    )
    flags = cm.strong_cluster_flags(probe, reference=ref)
    stars = cm.star_rating(probe, reference=ref)
    assert row["strong_cluster"] == flags.loc[0, "strong_cluster"]
    assert row["stars"] == stars.loc[0, "stars"]
    assert res.parameters["score_units"] == 4


def test_registry_input_keeps_establishments_with_units_and_clusters(lattice):
    units, counts = lattice
    rng = np.random.default_rng(3)
    pts, sectors = [], []
    for uid, row in counts.iterrows():
        r, c = int(uid[1:3]), int(uid[3:5])
        for sector in ("25.62A", "10.71C", "other"):
            for _ in range(int(row[sector])):
                pts.append(Point((c + rng.uniform()) * CELL, (r + rng.uniform()) * CELL))
                sectors.append(sector)
    pts.append(Point(-50_000, -50_000))  # outside every unit
    sectors.append("25.62A")
    est = gpd.GeoDataFrame(
        {
            "sector": sectors,
            "name": [f"E{i}" for i in range(len(pts))],
            "employees": 3.0,
            "employees_low": 1.0,
            "employees_high": 5.0,
        },
        geometry=pts,
        crs=2154,
    )
    with pytest.warns(ClustermapWarning, match="outside every unit"):
        res = cm.detect_clusters(est, units, level=None, local_statistic=None)
    assert res.parameters["dropped"] == {"outside_units": 1}
    row = res.clusters.set_index("cluster_id").loc["25.62A-1"]
    in_cluster = res.establishments[res.establishments["cluster_id"] == "25.62A-1"]
    assert len(in_cluster) == row["establishments"]
    assert set(in_cluster["unit_id"]) == set(row["unit_ids"])
    assert row["employees"] == 3.0 * row["establishments"]
    assert row["employees_low"] == row["establishments"]
    assert row["employees_high"] == 5.0 * row["establishments"]
    # every establishment has the same band: all rules give the establishment LQ
    assert row["lq_employees"] == pytest.approx(row["lq"])
    assert row["lq_employees_low"] == pytest.approx(row["lq"])
    assert row["lq_employees_high"] == pytest.approx(row["lq"])
    assert res.establishments["unit_id"].isna().sum() == 1


def test_bad_input_errors(lattice):
    units, counts = lattice
    with pytest.raises(SchemaError, match="need units"):
        cm.detect_clusters(counts)
    with pytest.raises(SchemaError, match="not in the data"):
        cm.detect_clusters(counts, units, sectors=["99.99Z"])
    with pytest.raises(ValueError, match="alpha"):
        cm.detect_clusters(counts, units, alpha=5)
    with pytest.raises(SchemaError, match="registry"):
        cm.detect_clusters([1, 2, 3], units)


def test_to_file_round_trip(lattice_result, tmp_path):
    path = lattice_result.to_file(tmp_path / "clusters.gpkg")
    back = gpd.read_file(path, layer="clusters")
    assert list(back["cluster_id"]) == list(lattice_result.clusters["cluster_id"])


# ----------------------------------------------------------------------------- answer keys
def _check_answer_key(res, planted, nulls, centroids, min_null_clean):
    clusters = res.clusters
    for _, row in planted.iterrows():
        core = set(row["core"])
        found = None
        for _, cl in clusters[clusters["sector"] == row["naf"]].iterrows():
            ids = set(cl["unit_ids"])
            if row["centre"] in ids or len(ids & core) >= len(core) / 2:
                found = cl
                break
        assert found is not None, f"planted cluster {row['naf']} at {row['centre']} not found"
        dist = centroids.loc[found["unit_ids"]].distance(centroids.loc[row["centre"]]) / 1000
        share = float((dist <= float(row["radius_km"]) + 10).mean())
        assert share >= 0.8, (row["naf"], share)
    with_clusters = set(clusters["sector"]) & set(nulls)
    assert len(nulls) - len(with_clusters) >= min_null_clean, with_clusters


def test_demo_answer_key():
    demo = cm.load_demo()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClustermapWarning)
        res = cm.detect_clusters(demo.registry, demo.units)
    key = demo.answer_key
    planted = key[key["kind"] == "planted"]
    nulls = list(key.loc[key["kind"] == "null_sector", "naf"])
    centroids = demo.units.to_crs(2154).geometry.centroid
    _check_answer_key(res, planted, nulls, centroids, min_null_clean=len(nulls))
    assert res.registry_summary["kept"] == len(demo.registry.establishments)
    assert res.establishments["cluster_id"].str.len().gt(0).any()


def _national_run(folder, **kwargs):
    registry_path = shared_file(folder, "registry.csv.gz")
    key_path = shared_file(folder, "answer_key.csv")
    communes = shared_file("france_boundaries", "communes_2018_simplified.parquet")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClustermapWarning)
        registry = cm.read_registry(registry_path, format="sirene")
        units = cm.read_units(communes, unit_id="code_insee", name="nom")
        # default settings; Gi* is reported only and does not change the clusters (see
        # test_local_statistic_is_reported_and_does_not_change_clusters), so skip its cost
        res = cm.detect_clusters(registry, units, local_statistic=None, **kwargs)
    key = pd.read_csv(key_path, dtype=str, keep_default_na=False)
    key["core"] = key["core"].str.split(";")
    return res, key, units.to_crs(2154).geometry.centroid


@pytest.mark.shared
@pytest.mark.slow
def test_synthetic_france_answer_key():
    res, key, centroids = _national_run("synthetic_france")
    planted = key[key["kind"] == "planted"]
    nulls = list(key.loc[key["kind"] == "null_sector", "naf"])
    assert len(planted) == 8 and len(nulls) == 40
    _check_answer_key(res, planted, nulls, centroids, min_null_clean=40)
    assert res.registry_summary["rejects"]["closed_establishments"] == 47921
    # the planted clusters lead the traded list
    assert set(res.clusters["sector"].head(8)) == set(planted["naf"])
    assert (res.clusters["sector_type"].head(8) == "traded").all()


@pytest.mark.shared
@pytest.mark.slow
def test_overdispersed_registry_keeps_null_sectors_clean():
    """synthetic_france_v2 has a Gamma frailty (variance 1/3) on every commune × sector: the
    Poisson test gives clusters to null sectors, the negative-binomial test does not, and
    every planted cluster present at the snapshot date is still found and leads."""
    res, key, centroids = _national_run("synthetic_france_v2")
    nulls = list(key.loc[key["kind"] == "null_sector", "naf"])
    # planted single-code clusters, and the emerging one (fully there at 2025-12-31); the
    # declining one ends in 2021 by design (answer key: active_until) and the related-industry
    # groups are weak per code by design (they are found at level="cluster_category")
    present = key[key["kind"].isin(["planted", "emerging"])]
    assert len(nulls) == 40 and len(present) == 9
    _check_answer_key(res, present, nulls, centroids, min_null_clean=39)
    assert set(res.clusters["sector"].head(9)) == set(present["naf"])
    # the null sectors' dispersion is measured near the planted 1/3
    alpha = res.sectors.set_index("sector").loc[nulls, "dispersion"]
    assert 0.2 <= float(alpha.median()) <= 0.6
    # the Poisson model (clustermap 0.1) is fooled by the frailty
    poisson, _, _ = _national_run("synthetic_france_v2", options={"dispersion": "poisson"})
    assert len(set(poisson.clusters["sector"]) & set(nulls)) >= 2


@pytest.mark.shared
def test_urssaf_pre_aggregated_detection_keeps_employment():
    path = shared_file("urssaf", "urssaf_commune_x_ape_ze_rouen_2006_2022.csv.gz")
    communes = shared_file("france_boundaries", "communes_2018_simplified.parquet")
    tables = cm.read_counts(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClustermapWarning)
        units = cm.read_units(communes, unit_id="code_insee", name="nom")
    units = units[units.index.isin(tables.establishments.index)]
    res = cm.detect_clusters(tables, units, local_statistic=None)
    assert len(res.clusters) > 0
    est, emp = tables.establishments, tables.employees
    for _, row in res.clusters.head(5).iterrows():
        ids, sector = row["unit_ids"], row["sector"]
        assert row["establishments"] == est.loc[ids, sector].sum()
        assert row["employees"] == pytest.approx(emp.loc[ids, sector].sum())
        # no size bands in URSSAF data: the range collapses to the count
        assert row["employees_low"] == row["employees_high"] == row["employees"]
        region_emp = emp.loc[ids].to_numpy().sum()
        lq_emp = (row["employees"] / region_emp) / (emp[sector].sum() / emp.to_numpy().sum())
        assert row["lq_employees"] == pytest.approx(lq_emp)
    assert res.establishments is None and res.registry_summary is None


def test_demo_with_commune_points_when_no_polygons():
    demo = cm.load_demo()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClustermapWarning)
        res = cm.detect_clusters(demo.registry, None, local_statistic=None)
    assert res.parameters["graph"] == "knn k=8"
    key = demo.answer_key
    planted = key[key["kind"] == "planted"]
    nulls = list(key.loc[key["kind"] == "null_sector", "naf"])
    points = res.units.to_crs(2154).geometry
    _check_answer_key(res, planted, nulls, points, min_null_clean=len(nulls))
    assert res.clusters.geom_type.isin(["Polygon", "LineString", "Point"]).all()


def test_score_units_auto_uses_departements_for_commune_codes():
    from clustermap.detect.profile import membership as _membership

    ids = ["01001", "01002", "2A004", "2B010", "97411", "97101", "74081"]
    units = gpd.GeoDataFrame(
        geometry=[box(i, 0, i + 1, 1) for i in range(len(ids))],
        index=pd.Index(ids, name="unit_id"),
        crs=2154,
    )
    member, rule = _membership(units, "auto")
    assert rule.startswith("départements")
    # zones sorted: 01, 2A, 2B, 74, 971, 974
    dense = member.toarray()
    assert dense.shape == (6, 7)
    assert dense[0].tolist() == [1, 1, 0, 0, 0, 0, 0]
    assert dense[1].tolist() == [0, 0, 1, 0, 0, 0, 0]
    assert dense[4].tolist() == [0, 0, 0, 0, 0, 1, 0]
    assert dense[5].tolist() == [0, 0, 0, 0, 1, 0, 0]


def test_score_units_auto_squares_hold_about_50_units(lattice):
    from clustermap.detect.profile import AUTO_ZONE_UNITS
    from clustermap.detect.profile import membership as _membership

    units, _ = lattice
    member, rule = _membership(units, "auto")
    assert rule.startswith("squares of")
    sizes = np.asarray(member.sum(axis=1)).ravel()
    assert sizes.sum() == len(units)
    # squares of side sqrt(50) cells: interior squares hold about 50 units
    assert abs(np.median(sizes) - AUTO_ZONE_UNITS) <= 15


def test_local_sectors_all_adds_gi_for_every_sector(lattice, lattice_result):
    units, counts = lattice
    res = cm.detect_clusters(counts, units, random_state=7, options={"local_sectors": "all"})
    # same clusters: Gi* is reported, not part of the rule
    assert res.clusters["cluster_id"].tolist() == lattice_result.clusters["cluster_id"].tolist()
    from clustermap.detect.pipeline import OTHER

    analysed = sorted(set(res.table["sector"]) - {OTHER})
    assert sorted(res.parameters["local_statistic_sectors"]) == analysed
    # the null sector 10.71C has no cluster but now has Gi* in every cell with establishments
    null = res.table[res.table["sector"] == "10.71C"]
    assert null["statistic"].notna().all()
    assert (
        lattice_result.table.loc[lattice_result.table["sector"] == "10.71C", "statistic"]
        .isna()
        .all()
    )
    # the cluster sector's Gi* is the same as in the default run (one stream per unit)
    key = ["unit_id", "sector"]
    a = res.table[res.table["sector"] == "25.62A"].set_index(key)["statistic"]
    b = lattice_result.table[lattice_result.table["sector"] == "25.62A"].set_index(key)
    np.testing.assert_allclose(a, b["statistic"].reindex(a.index), rtol=1e-12)
    with pytest.raises(ValueError, match="local_sectors"):
        cm.detect_clusters(counts, units, options={"local_sectors": "some"})


def test_old_keywords_still_work_with_a_future_warning_and_give_the_same_result(lattice):
    units, counts = lattice
    new = cm.detect_clusters(
        counts, units, local_statistic=None, options={"link_order": 1, "min_unit_lq": 2.0}
    )
    with pytest.warns(FutureWarning, match=r"options=\{'link_order'"):
        old = cm.detect_clusters(counts, units, local_statistic=None, link_order=1, min_unit_lq=2.0)
    pd.testing.assert_frame_equal(
        old.clusters.drop(columns="geometry"), new.clusters.drop(columns="geometry")
    )
    assert old.parameters["link_order"] == new.parameters["link_order"] == 1
    with pytest.raises(TypeError, match="unexpected keyword argument 'link_ordre'"):
        cm.detect_clusters(counts, units, link_ordre=1)
    with pytest.raises(ValueError, match="link_order must be 1 or 2"):
        cm.detect_clusters(counts, units, options={"link_order": 3})


@pytest.mark.shared
@pytest.mark.slow
def test_outlines_and_assignment_on_detailed_departements_equal_the_general_union():
    """Coverage union of the members equals shapely.union_all (areas within 1e-6); the
    polygon-side assignment gives every establishment the same département as a point test."""
    import shapely

    from clustermap.detect.profile import outline

    registry = cm.read_registry(shared_file("synthetic_france", "registry.csv.gz"))
    deps = cm.read_units(shared_file("france_boundaries", "departements_2018.parquet"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClustermapWarning)
        # the Poisson model keeps many clusters, so many outlines are checked
        res = cm.detect_clusters(
            registry, deps, local_statistic=None, options={"dispersion": "poisson"}
        )
    assert len(res.clusters) > 100
    for ids, geom in zip(res.clusters["unit_ids"], res.clusters.geometry):
        reference = shapely.union_all(deps.geometry.loc[ids].to_numpy())
        assert abs(geom.area - reference.area) <= 1e-6 * reference.area
        assert shapely.symmetric_difference(geom, reference).area <= 1e-6 * reference.area
        assert outline(deps.geometry.loc[ids].to_numpy()).equals(geom)
    # assignment: the département of each establishment is the one containing it
    pts = registry.establishments.geometry.to_crs(deps.crs)
    sample = np.random.default_rng(0).choice(len(pts), 2000, replace=False)
    assigned = cm.assign_units(registry.establishments.iloc[sample], deps)
    for point, unit in zip(pts.iloc[sample], assigned):
        holder = deps.index[deps.geometry.intersects(point)]
        assert (unit in holder) if len(holder) else pd.isna(unit)
        if len(holder):
            assert unit == holder[0]  # the first unit in row order wins on a border


def test_a_one_sector_extract_says_why_it_shows_no_cluster(lattice):
    units, counts = lattice
    one = counts.copy()
    one["47.11B"] = one["47.11B"] * 50  # nearly every establishment in one sector
    share = one["47.11B"].sum() / one.to_numpy().sum()
    assert share > 0.8
    with pytest.warns(ClustermapWarning, match=rf"{100 * share:.1f}% .* one sector \(47\.11B\)"):
        cm.detect_clusters(one, units, local_statistic=None)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ClustermapWarning)
        cm.detect_clusters(counts, units, local_statistic=None)  # a registry: no warning


@pytest.mark.shared
def test_the_real_bars_extract_warns_that_it_is_one_sector():
    registry = cm.read_registry(shared_file("sirene", "paca_bars_5630Z_sirene2016.csv.gz"))
    with pytest.warns(ClustermapWarning, match=r"95\.2% of the establishments .* \(56\.30Z\)"):
        res = cm.detect_clusters(registry, local_statistic=None)
    assert len(res.clusters) == 0


def test_counts_with_a_unit_on_several_rows_add_up(lattice):
    units, counts = lattice
    split = pd.concat(
        [counts.iloc[:5] // 2, counts.iloc[:5] - counts.iloc[:5] // 2, counts.iloc[5:]]
    )
    assert split.index.has_duplicates
    a = cm.detect_clusters(split, units, local_statistic=None)
    b = cm.detect_clusters(counts, units, local_statistic=None)
    pd.testing.assert_frame_equal(
        a.clusters.drop(columns="geometry"), b.clusters.drop(columns="geometry")
    )


def test_exposure_proportional_to_activity_changes_nothing_and_bad_values_are_named(lattice):
    """An exposure equal to each unit's establishments is the default model; a missing
    column or a unit without a value is refused with its name."""
    units, counts = lattice
    plain = cm.detect_clusters(counts, units, local_statistic=None)
    same = cm.detect_clusters(
        counts, units, local_statistic=None, options={"exposure": counts.sum(axis=1)}
    )
    pd.testing.assert_frame_equal(
        plain.clusters.drop(columns="geometry"), same.clusters.drop(columns="geometry")
    )
    assert same.parameters["exposure"] == "user values per unit"
    with pytest.raises(SchemaError, match="'population' is not a column of the units"):
        cm.detect_clusters(counts, units, options={"exposure": "population"})
    partial = counts.sum(axis=1).iloc[:-3]
    with pytest.raises(SchemaError, match="3 unit\\(s\\) holding establishments have no exposure"):
        cm.detect_clusters(counts, units, options={"exposure": partial})


@pytest.mark.shared
def test_bars_per_inhabitant_in_the_real_extract(capsys, tmp_path):
    """The real extract of bars (one sector, 95 %): with the population as exposure, the
    concentration of bars per inhabitant is found; its LQ equals a hand count."""
    from clustermap.cli import main

    path = shared_file("sirene", "paca_bars_5630Z_sirene2016.csv.gz")
    cog_path = shared_file("france_boundaries", "communes_cog_epci.csv.gz")
    cog = pd.read_csv(cog_path, dtype=str)
    pop = pd.to_numeric(cog.set_index("code")["population"])
    registry = cm.read_registry(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = cm.detect_clusters(registry, local_statistic=None, options={"exposure": pop})
    assert not any("one sector" in str(w.message) for w in caught)  # the remedy is applied
    top = res.clusters.iloc[0]
    assert top["sector"] == "56.30Z"
    est = registry.establishments
    units = res.units.index.astype(str)
    population = pop.groupby(level=0).first().reindex(units)
    o = int(((est["sector"] == "56.30Z") & est["commune"].isin(top["unit_ids"])).sum())
    n_bars = int((est["sector"] == "56.30Z").sum())
    e = population[top["unit_ids"]].sum() * n_bars / population.sum()
    assert top["establishments"] == o
    assert top["lq"] == pytest.approx(o / e)
    assert set(top["unit_ids"]) <= {f"132{i:02d}" for i in range(1, 17)}  # central Marseille
    code = main(
        [
            "detect",
            str(path),
            "--exposure",
            "population",
            "--cog",
            str(cog_path),
            "--out",
            str(tmp_path / "bars.html"),
            "--quiet",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "56.30Z" in out and f"{o} établissements" in out
