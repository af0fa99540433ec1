"""Related industries: the coagglomeration index and the locational correlation against hand
computations and numpy, co-location and derived categories on planted groups, detection over
groups of codes (composition, within-type LQ, related sectors) and its report."""

from __future__ import annotations

import html
import re
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from shapely.geometry import box

import clustermap as cm
from clustermap.detect.relatedness import (
    Relatedness,
    coagglomeration,
    derive_categories,
    locational_correlation,
)
from clustermap.errors import ClustermapWarning
from conftest import v2_answer_key, v2_communes, v2_registry

SIDE = 20


def test_coagglomeration_equals_the_published_formula_by_hand():
    """EGK (2010) eq. 2, written as a loop over units and pairs."""
    rng = np.random.default_rng(0)
    x = rng.poisson(rng.uniform(0.2, 5, (30, 6))).astype(float)
    x[:, 5] += 50  # a large sector everywhere
    got = coagglomeration(sp.csr_matrix(x))
    share_m = x.sum(axis=1) / x.sum()
    s = x / x.sum(axis=0)
    hand = np.zeros((6, 6))
    for i in range(6):
        for j in range(6):
            num = sum((s[m, i] - share_m[m]) * (s[m, j] - share_m[m]) for m in range(30))
            hand[i, j] = num / (1 - (share_m**2).sum())
    np.testing.assert_allclose(got, hand, rtol=1e-12, atol=1e-15)


def test_coagglomeration_small_table_by_hand():
    # two units of 100 (x_m = 1/2): sectors 0, 1 in unit 0, sector 2 in unit 1
    g = coagglomeration(np.array([[10, 5, 0, 85], [0, 0, 10, 90]]))
    assert g[0, 1] == pytest.approx(1.0)
    assert g[0, 2] == pytest.approx(-1.0)
    # sector 3 (85 / 175 in unit 0): ((1 - 1/2)(85/175 - 1/2) + (0 - 1/2)(90/175 - 1/2)) / (1/2)
    assert g[0, 3] == pytest.approx(((0.5) * (85 / 175 - 0.5) + (-0.5) * (90 / 175 - 0.5)) / 0.5)


def test_locational_correlation_equals_numpy_corrcoef():
    x = sp.random(500, 40, density=0.05, random_state=2, format="csr") * 10
    x = x.floor()
    got = locational_correlation(x)
    dense = x.toarray()
    keep = dense.std(axis=0) > 0
    np.testing.assert_allclose(
        got[np.ix_(keep, keep)], np.corrcoef(dense[:, keep], rowvar=False), atol=1e-12
    )


@pytest.fixture(scope="module")
def planted_groups():
    """A 20 × 20 lattice; codes 25.62B + 25.61Z planted together in one corner, 22.29B +
    22.22Z in the opposite one, each weakly; 10.71C and 47.11B background only."""
    ids = [f"u{r:02d}{c:02d}" for r in range(SIDE) for c in range(SIDE)]
    units = gpd.GeoDataFrame(
        {"name": [f"Commune {i}" for i in ids]},
        geometry=[box(c, r, c + 1, r + 1) for r in range(SIDE) for c in range(SIDE)],
        index=pd.Index(ids, name="unit_id"),
        crs=2154,
    )
    rng = np.random.default_rng(3)
    size = rng.integers(150, 400, len(ids)).astype(float)
    shares = {
        "25.62B": 0.004,
        "25.61Z": 0.004,
        "22.29B": 0.004,
        "22.22Z": 0.004,
        "10.71C": 0.05,
        "47.11B": 0.3,
    }
    counts = pd.DataFrame({s: rng.poisson(size * sh) for s, sh in shares.items()}, index=ids)
    corner = [f"u{r:02d}{c:02d}" for r in range(2, 5) for c in range(2, 5)]
    other = [f"u{r:02d}{c:02d}" for r in range(14, 17) for c in range(14, 17)]
    for code in ("25.62B", "25.61Z"):
        counts.loc[corner, code] += 4
    for code in ("22.29B", "22.22Z"):
        counts.loc[other, code] += 4
    counts["99.99Z"] = rng.poisson(size)  # not a NAF code: outside every group
    return units, counts, corner, other


def test_colocation_links_the_codes_planted_together(planted_groups):
    units, counts, _, _ = planted_groups
    rel = cm.relatedness(counts, units)
    m = rel.matrix("colocation")
    assert m.loc["25.62B", "25.61Z"] > 0.5 and m.loc["22.29B", "22.22Z"] > 0.5
    assert m.loc["25.62B", "22.29B"] == 0 and m.loc["25.61Z", "22.22Z"] == 0
    pairs = rel.pairs()
    assert len(pairs) == 6 * 5 // 2
    top = pairs.sort_values("colocation", ascending=False).head(2)
    assert {frozenset(p) for p in zip(top["sector_a"], top["sector_b"])} == {
        frozenset({"25.62B", "25.61Z"}),
        frozenset({"22.29B", "22.22Z"}),
    }
    # the coagglomeration index and the correlation are there too, and match their functions
    x = counts[rel.sectors["sector"]].to_numpy(dtype=float)
    np.testing.assert_allclose(rel.matrix("coagglomeration").to_numpy(), coagglomeration(x))
    np.testing.assert_allclose(
        rel.matrix("correlation").to_numpy(), np.corrcoef(x, rowvar=False), atol=1e-12
    )
    assert rel.related("25.62B", n=1)["sector"].tolist() == ["25.61Z"]


def test_derived_categories_recover_the_planted_groups_and_detection_uses_them(planted_groups):
    units, counts, corner, _ = planted_groups
    rel = cm.relatedness(counts, units)
    derived = cm.derive_categories(rel)
    mapping = derived.mapping
    assert mapping["25.62B"] == mapping["25.61Z"] != mapping["22.29B"] == mapping["22.22Z"]
    assert mapping["10.71C"] == "10.71C"  # unrelated: its own category
    assert set(derived.scores.columns) >= {"threshold", "own_share", "within", "between"}
    chosen = derived.scores.set_index("threshold").loc[derived.threshold]
    assert chosen["own_share"] >= 0.95
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClustermapWarning)
        res = cm.detect_clusters(counts, units, level=mapping, local_statistic=None)
    found = res.clusters.set_index("sector")
    group = mapping["25.62B"]
    assert group in found.index
    assert set(corner) <= set(found.loc[group, "unit_ids"])
    # its composition lists both codes, with their counts by hand
    comp = res.composition[res.composition["cluster_id"] == found.loc[group, "cluster_id"]]
    assert set(comp["code"]) == {"25.62B", "25.61Z"}
    ids = found.loc[group, "unit_ids"]
    total = counts.to_numpy().sum()
    n_region = counts.loc[ids].to_numpy().sum()
    for row in comp.itertuples():
        o = counts.loc[ids, row.code].sum()
        assert row.establishments == o
        assert row.lq == pytest.approx(o / (n_region * counts[row.code].sum() / total))
    assert comp["excess_share"].sum() == pytest.approx(1.0)
    # "a cluster on its own": exactly the codes a single-code run finds there
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClustermapWarning)
        singles = cm.detect_clusters(counts, units, local_statistic=None).clusters
    for row in comp.itertuples():
        own = singles[singles["sector"] == row.code]["unit_ids"]
        expected = any(set(u) & set(ids) for u in own)
        assert row.single_code_cluster == expected, row.code
    assert found.loc[group, "codes"].startswith(comp["code"].iloc[0])


def test_within_type_lq_by_hand(planted_groups):
    units, counts, _, _ = planted_groups
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClustermapWarning)
        res = cm.detect_clusters(
            counts, units, local_statistic=None, options={"min_establishments": 5}
        )
    row = res.clusters[res.clusters["sector"] == "25.62B"].iloc[0]
    types = res.sectors.set_index("sector")["sector_type"]
    traded = [s for s, t in types.items() if t == "traded"]
    ids = row["unit_ids"]
    o = counts.loc[ids, "25.62B"].sum()
    region = counts.loc[ids, traded].to_numpy().sum()
    nation = counts[traded].to_numpy().sum()
    assert row["sector_type"] == "traded"
    assert row["lq_within_type"] == pytest.approx((o / region) / (counts["25.62B"].sum() / nation))


def test_derive_categories_on_a_given_matrix_and_its_scores():
    sectors = pd.DataFrame(
        {
            "sector": list("abcde"),
            "sector_label": list("abcde"),
            "establishments": [50, 40, 30, 20, 10],
        }
    )
    r = np.eye(5)
    r[0, 1] = r[1, 0] = 0.6
    r[2, 3] = r[3, 2] = 0.5
    out = derive_categories(Relatedness(sectors, {"colocation": r}))
    assert out.mapping.to_dict() == {
        "a": "a + b",
        "b": "a + b",
        "c": "c + d",
        "d": "c + d",
        "e": "e",
    }
    assert out.categories["category"].tolist() == ["a + b", "c + d"]
    row = out.scores.set_index("threshold").loc[out.threshold]
    assert row["own_share"] == 1.0 and row["sectors_grouped"] == 4
    assert row["within"] == pytest.approx(0.55)  # mean of 0.6 and 0.5


def test_category_report_lists_codes_and_escapes_group_names(planted_groups, tmp_path):
    units, counts, _, _ = planted_groups
    mapping = {
        "25.62B": "<b>méca</b>",
        "25.61Z": "<b>méca</b>",
        "22.29B": "plast",
        "22.22Z": "plast",
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClustermapWarning)
        res = cm.detect_clusters(counts, units, level=mapping, local_statistic=None)
    assert {"<b>méca</b>", "plast"} <= set(res.clusters["sector"])
    page = cm.write_report(res, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<b>méca</b>" not in page
    leading = html.unescape(re.search(r'id="cm-leading">(.*?)</section>', page, re.S).group(1))
    assert "25.62B — Mécanique industrielle : " in leading
    assert "25.61Z — Traitement et revêtement des métaux : " in leading


@pytest.mark.shared
@pytest.mark.slow
def test_related_industry_groups_of_the_overdispersed_registry_are_found():
    """synthetic_france_v2: the Arve group at level='cluster_category' (the shipped category
    holds its four codes), the Plastics Vallée at the categories derived from the registry
    (the shipped ones split it: moulds are metalworking, plastics machinery machinery)."""
    registry = v2_registry(include_closed=False)
    units, key = v2_communes(), v2_answer_key()
    groups = key[key["kind"] == "planted_group"].set_index("centre")
    centroids = units.to_crs(2154).geometry.centroid
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClustermapWarning)
        shipped = cm.detect_clusters(
            registry, units, level="cluster_category", local_statistic=None
        )
        rel = cm.relatedness(registry, units)
        derived = cm.derive_categories(rel)
        by_derived = cm.detect_clusters(
            registry, units, level=derived.mapping, local_statistic=None
        )

    def check(res, centre):
        row = groups.loc[centre]
        codes = row["naf_group"].split(";")
        hit = res.clusters[res.clusters["unit_ids"].map(lambda ids: centre in ids)]
        hit = hit[
            hit["cluster_id"].isin(
                res.composition.loc[res.composition["code"].isin(codes), "cluster_id"]
            )
        ]
        assert len(hit), f"no cluster of the group at {centre}"
        cl = hit.iloc[0]
        comp = res.composition[res.composition["cluster_id"] == cl["cluster_id"]]
        assert set(codes) <= set(comp["code"])
        dist = centroids.loc[cl["unit_ids"]].distance(centroids.loc[centre]) / 1000
        assert float((dist <= float(row["radius_km"]) + 10).mean()) >= 0.8

    check(shipped, "74081")  # Arve, metalworking_technology
    # which of its codes are clusters on their own: decolletage (planted alone) and surface
    # treatment; machining, tools and machine tools only as part of the group
    comp = shipped.composition[shipped.composition["cluster_id"] == "metalworking_technology-1"]
    alone = comp.set_index("code")["single_code_cluster"]
    assert alone[["25.62A", "25.61Z"]].all()
    assert not alone[["25.62B", "25.73B", "28.41Z"]].any()
    check(by_derived, "01283")  # Plastics Vallée
    assert len({derived.mapping[c] for c in groups.loc["01283", "naf_group"].split(";")}) == 1
