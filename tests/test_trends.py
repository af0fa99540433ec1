"""Clusters over time: the trend tests against exact references, planted trends on a grid,
and the planted emerging, declining and static clusters of synthetic_france_v2."""

from __future__ import annotations

import math
import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from shapely.geometry import box

import clustermap as cm
from clustermap.stats.trend import mann_kendall, rate_change_test
from conftest import v2_answer_key, v2_communes, v2_registry


# ------------------------------------------------------------------------ the tests alone
@pytest.mark.parametrize("seed", range(6))
def test_mann_kendall_equals_scipy_kendall_tau_exact(seed):
    """S against time is Kendall's tau between time and the values: scipy's exact test."""
    rng = np.random.default_rng(seed)
    n = 4 + seed
    x = rng.normal(size=n) + 0.3 * seed * np.arange(n)
    s, tau, p = mann_kendall(x)
    ref = stats.kendalltau(np.arange(n), x, method="exact")
    assert tau == pytest.approx(ref.statistic, abs=1e-12)
    assert p == pytest.approx(ref.pvalue, rel=1e-9)
    assert s == round(tau * n * (n - 1) / 2)


def test_mann_kendall_normal_approximation_with_ties_by_hand():
    x = np.array([1, 2, 2, 3, 5, 4, 6, 7, 7, 7, 8, 9], dtype=float)
    s, _, p = mann_kendall(x)
    diff = [np.sign(x[j] - x[i]) for i in range(12) for j in range(i + 1, 12)]
    assert s == int(sum(diff))
    var = (12 * 11 * 29 - (2 * 1 * 9 + 3 * 2 * 11)) / 18  # one pair and one triple tied
    assert p == pytest.approx(2 * stats.norm.sf((s - 1) / math.sqrt(var)), rel=1e-12)
    assert mann_kendall([1.0, np.nan]) == (0, 0.0, 1.0)


def test_rate_change_test_is_the_binomial_of_the_second_date_and_is_calibrated():
    ratio, p = rate_change_test(12, 6.0, 30, 9.0)
    p0 = 9.0 / 15.0
    tails = stats.binom.sf(29, 42, p0), stats.binom.cdf(30, 42, p0)
    assert p == pytest.approx(2 * min(tails))
    assert ratio == pytest.approx((30 / 9) / (12 / 6))
    # under no change, rejections at 5 % stay at or below 5 % (it is exact, and discrete)
    rng = np.random.default_rng(1)
    e1, e2 = 8.0, 20.0
    o1, o2 = rng.poisson(e1, 4000), rng.poisson(e2, 4000)
    rejected = np.mean([rate_change_test(a, e1, b, e2)[1] <= 0.05 for a, b in zip(o1, o2)])
    assert rejected <= 0.05
    assert rate_change_test(0, 1.0, 0, 1.0)[1] == 1.0


# ------------------------------------------------------------------- planted grid trends
def _grid(n: int = 15) -> gpd.GeoDataFrame:
    ids = [f"c{i:03d}" for i in range(n * n)]
    return gpd.GeoDataFrame(
        {"name": [f"Ville {i}" for i in range(n * n)]},
        geometry=[box(i % n, i // n, i % n + 1, i // n + 1) for i in range(n * n)],
        index=pd.Index(ids, name="unit_id"),
        crs=2154,
    )


def _block(row: int, col: int, n: int = 15) -> list[int]:
    return [(row + r) * n + col + c for r in range(3) for c in range(3)]


#: planted values of sector "a" in each 3 × 3 block (3 units apart, never linked) at the
#: three dates, and the answer
PLANTED = {
    "stable": ((0, 0), (40, 40, 40)),
    "growing": ((0, 6), (30, 45, 75)),
    "new": ((0, 12), (8, 8, 45)),
    "shrinking": ((7, 0), (90, 60, 30)),
    "disappeared": ((7, 6), (45, 20, 8)),
}
GROWTH = (1.0, 1.5, 2.2)  # the whole stock grows: a static cluster grows in raw counts too


def _panel(n: int = 15) -> dict[int, pd.DataFrame]:
    ids = [f"c{i:03d}" for i in range(n * n)]
    panel = {}
    for t, (year, g) in enumerate(zip((2010, 2015, 2020), GROWTH)):
        a = np.full(n * n, 8.0)
        for (row, col), values in PLANTED.values():
            a[_block(row, col)] = values[t]
        a, total = np.round(a * g), round(200 * g)
        panel[year] = pd.DataFrame({"a": a, "other": total - a}, index=ids)
    return panel


def test_planted_grid_trends_are_classed_and_the_series_is_by_hand():
    units = _grid()
    panel = _panel()
    res = cm.cluster_trends(panel, units)
    assert res.dates == ["2010", "2015", "2020"]
    got = {}
    for _, row in res.trends.iterrows():
        for name, ((r, c), _) in PLANTED.items():
            if f"c{r * 15 + c:03d}" in row["unit_ids"]:
                got[name] = row["trend"]
    assert got == {name: name for name in PLANTED}
    assert len(res.trends) == len(PLANTED)  # nothing else
    # the static corner: the series over its footprint, by hand
    corner = res.trends[res.trends["trend"] == "stable"].iloc[0]
    assert sorted(corner["unit_ids"]) == [f"c{i:03d}" for i in sorted(_block(0, 0))]
    series = res.track(corner["track_id"])
    for t, year in enumerate((2010, 2015, 2020)):
        tab = panel[year]
        obs = tab.loc[corner["unit_ids"], "a"].sum()
        exp = tab.loc[corner["unit_ids"]].to_numpy().sum() * tab["a"].sum() / tab.to_numpy().sum()
        assert series.loc[t, "establishments"] == obs
        assert series.loc[t, "expected"] == pytest.approx(exp, rel=1e-12)
        assert series.loc[t, "national"] == tab["a"].sum()
    assert corner["growth"] == pytest.approx(GROWTH[-1] - 1, abs=0.01)  # raw counts grew
    nat = panel[2020]["a"].sum() / panel[2010]["a"].sum()
    assert corner["national_growth"] == pytest.approx(nat - 1)
    assert corner["relative_growth"] == pytest.approx(GROWTH[-1] / nat - 1, abs=0.01)
    assert corner["cagr"] == pytest.approx(GROWTH[-1] ** (1 / 10) - 1, abs=1e-3)
    new = res.trends[res.trends["trend"] == "new"].iloc[0]
    assert new["detected"] == ["2020"]
    assert new["change_q"] <= 0.05 and new["lq_ratio"] > 3


def test_trends_reject_bad_panels_in_the_callers_words():
    units = _grid()
    panel = _panel()
    with pytest.raises(cm.errors.SchemaError, match="at least two dates"):
        cm.cluster_trends({2010: panel[2010]}, units)
    with pytest.raises(cm.errors.SchemaError, match=r"panel\['2010'\] must be"):
        cm.cluster_trends({"2010": [1, 2], "2015": panel[2015]}, units)
    with pytest.raises(cm.errors.SchemaError, match="needs units="):
        cm.cluster_trends(panel)
    with pytest.raises(cm.errors.SchemaError, match="not in the panel"):
        cm.cluster_trends(panel, units, sectors=["zz"])


# ------------------------------------------------------------------------- the real data
@pytest.fixture(scope="module")
def v2_trends():
    registry, units, key = v2_registry(), v2_communes(), v2_answer_key()
    codes = set(key["naf"]) | {c for g in key["naf_group"] for c in g.split(";") if c}
    panel = cm.stock_at_dates(registry, units, [2005, 2010, 2015, 2020, 2025])
    return key, cm.cluster_trends(panel, sectors=sorted(codes))


@pytest.mark.shared
def test_v2_emerging_declining_static_and_null_sectors(v2_trends):
    key, res = v2_trends
    trends = res.trends

    def at(row):  # the followed clusters of the code that hold the planted centre
        hit = trends[(trends["sector"] == row["naf"])]
        return hit[[row["centre"] in ids for ids in hit["unit_ids"]]]

    emerging = at(key[key["kind"] == "emerging"].iloc[0])
    assert len(emerging) == 1 and emerging["trend"].iloc[0] in ("new", "growing")
    declining = at(key[key["kind"] == "declining"].iloc[0])
    assert len(declining) == 1 and declining["trend"].iloc[0] in ("shrinking", "disappeared")
    for _, row in key[key["kind"] == "planted"].iterrows():
        found = at(row)
        assert len(found) == 1 and found["trend"].iloc[0] == "stable", row["name"]
    # null sectors: no cluster followed, so no trend class at all (0 of 40; chance allows ~2)
    null = set(key.loc[key["kind"] == "null_sector", "naf"])
    assert len(null) == 40
    assert not trends["sector"].isin(null).any()
    # the series are the panel's own counts over the footprint
    row = emerging.iloc[0]
    series = res.track(row["track_id"])
    assert series["establishments"].tolist()[-1] == row["establishments_last"]
    assert series["detected"].tolist() == [d in row["detected"] for d in res.dates]


# ------------------------------------------------------------------------------ the CLI
def _urssaf_file(path, panel: dict[int, pd.DataFrame], ids: list[str]) -> None:
    """The grid panel written as a wide yearly URSSAF file (sector "a" = 25.62A)."""
    frames = []
    for sector, ape in (("a", "2562A"), ("other", "4711D")):
        cols = {"Code commune": ids, "Code APE": ape}
        for year, tab in panel.items():
            cols[f"Nombre d'établissements {year}"] = tab[sector].astype(int).to_numpy()
            cols[f"Effectifs salariés {year}"] = 3 * tab[sector].astype(int).to_numpy()
        frames.append(pd.DataFrame(cols))
    pd.concat(frames).to_csv(path, sep=";", index=False)


def test_cli_years_follows_the_clusters_and_writes_the_trends_section(tmp_path):
    from clustermap.cli import main

    units = _grid()
    ids = [f"{74001 + i:05d}" for i in range(len(units))]
    units.index = pd.Index(ids, name="unit_id")
    units.reset_index().to_parquet(tmp_path / "units.parquet")
    panel = {y: t.set_axis(ids) for y, t in _panel().items()}
    _urssaf_file(tmp_path / "urssaf.csv", panel, ids)
    out = tmp_path / "report.html"
    argv = ["detect", str(tmp_path / "urssaf.csv"), "--units", str(tmp_path / "units.parquet"),
            "--unit-id", "unit_id", "--unit-name", "name", "--years", "2010,2015,2020",
            "--out", str(out), "--quiet", "--lang", "en"]  # fmt: skip
    assert main(argv) == 0
    page = out.read_text(encoding="utf-8")
    assert 'id="cm-trends"' in page and 'href="#cm-trends"' in page
    found = sorted(set(re.findall(r'data-trend="([a-z]+)"', page)))
    assert found == sorted(PLANTED)  # the five planted classes, from the file
    # the same through the API
    res = cm.cluster_trends(cm.read_count_panel(tmp_path / "urssaf.csv"), units, level="subclass")
    assert sorted(res.trends["trend"]) == sorted(PLANTED)


def test_cli_refuses_dates_and_years_in_the_wrong_place(tmp_path, capsys):
    from clustermap.cli import main

    units = _grid()
    ids = [f"{74001 + i:05d}" for i in range(len(units))]
    units.index = pd.Index(ids, name="unit_id")
    units.reset_index().to_parquet(tmp_path / "units.parquet")
    _urssaf_file(tmp_path / "urssaf.csv", {y: t.set_axis(ids) for y, t in _panel().items()}, ids)
    base = ["detect", str(tmp_path / "urssaf.csv"), "--units", str(tmp_path / "units.parquet"),
            "--unit-id", "unit_id", "--quiet", "--lang", "en", "--out",
            str(tmp_path / "r.html")]  # fmt: skip
    assert main([*base, "--years", "2010;2015"]) == 2
    assert "--years expects years or ISO dates" in capsys.readouterr().err
    assert main([*base, "--dates", "2010,2015"]) == 2
    assert "--dates is for dated registries" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


def test_a_registry_followed_over_time_keeps_the_firms_to_call_at_the_last_date():
    """stock_at_dates of a registry: the last date's result lists the establishments active
    then, each with its cluster, as a detection on the registry does (firm lists, fiches)."""
    from shapely.geometry import Point

    units = _grid()
    rng = np.random.default_rng(3)
    rows = []
    for pos in range(len(units)):
        x, y = pos % 15 + 0.5, pos // 15 + 0.5
        rows += [("47.11A", x, y, "2000-01-01", "A")] * 20
        n = 8 if pos in _block(0, 0) else int(rng.integers(0, 2))
        rows += [("25.62A", x, y, "2000-01-01", "A")] * n
    rows += [("25.62A", 0.5, 0.5, "2001-01-01", "F")]  # closed in 2015: not at the last date
    est = gpd.GeoDataFrame(
        {"sector": [r[0] for r in rows], "name": [f"Firm {i}" for i in range(len(rows))],
         "dateCreationEtablissement": [r[3] for r in rows],
         "dateDebut": ["2015-06-30" if r[4] == "F" else r[3] for r in rows],
         "etatAdministratifEtablissement": [r[4] for r in rows]},
        geometry=[Point(r[1], r[2]) for r in rows], crs=2154,
    )  # fmt: skip
    est["establishment_id"] = [str(i) for i in range(len(est))]
    panel = cm.stock_at_dates(est, units, [2010, 2020])
    res = cm.cluster_trends(panel, units)
    last = res.results["2020-12-31"]
    corner = [f"c{i:03d}" for i in _block(0, 0)]
    cid = last.clusters.loc[last.clusters["sector"] == "25.62A", "cluster_id"].iloc[0]
    firms = last.establishments
    assert len(firms) == len(est) - 1  # the closed one is not in the 2020 stock
    in_cluster = firms[firms["cluster_id"] == cid]
    assert set(in_cluster["unit_id"]) <= set(
        last.clusters.set_index("cluster_id").loc[cid, "unit_ids"]
    )
    assert (in_cluster["sector"] == "25.62A").all()
    assert len(in_cluster) >= 9 * 8
    listed = last.firms(corner, cluster_id=cid)
    assert len(listed) == int(in_cluster["unit_id"].isin(corner).sum())
