"""The space-time permutation scan: a slow reference, an exact small case, the same numbers
on any thread count, and the planted emerging and declining clusters of synthetic_france_v2."""

from __future__ import annotations

import itertools
import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from reference_scan import scan_reference
from shapely.geometry import Point

import clustermap as cm
from clustermap.table import StockPanel
from conftest import v2_answer_key, v2_communes, v2_registry


def _panel(counts: np.ndarray, xy: np.ndarray, dates=None) -> StockPanel:
    """counts: units × periods × sectors events."""
    n, t, s = counts.shape
    ids = pd.Index([f"u{i:02d}" for i in range(n)])
    units = gpd.GeoDataFrame(geometry=[Point(x, y) for x, y in xy], index=ids, crs=2154)
    dates = dates or [f"{2010 + k}-12-31" for k in range(t)]
    tables = {d: sp.csr_matrix(counts[:, k, :].astype(float)) for k, d in enumerate(dates)}
    return StockPanel(dates, ids, pd.Index([f"s{j}" for j in range(s)]), tables, {}, "created",
                      units)  # fmt: skip


@pytest.mark.parametrize("seed", range(5))
def test_scan_equals_the_slowscan_reference(seed):
    rng = np.random.default_rng(seed)
    n, t = 25, 6
    xy = rng.uniform(0, 60_000, (n, 2))
    counts = rng.poisson(0.8, (n, t, 2))
    counts[:3, -2:, 0] += rng.poisson(4, (3, 2))  # something to find in sector 0
    panel = _panel(counts, xy)
    out = cm.space_time_scan(panel, max_units=10, max_radius=30_000, max_share=0.5,
                             max_periods=3, n_permutations=19, random_state=seed)  # fmt: skip
    for s in range(2):
        llr, zone, a, b = scan_reference(counts[:, :, s], xy, radius=30_000, max_units=10,
                                     max_share=0.5, max_len=3)  # fmt: skip
        row = out.set_index("sector").loc[f"s{s}"]
        assert row["llr"] == pytest.approx(llr, rel=1e-12)
        assert sorted(row["unit_ids"]) == [f"u{j:02d}" for j in zone]
        assert (row["first_period"], row["last_period"]) == (panel.dates[a], panel.dates[b])
        c = counts[zone, a : b + 1, s].sum()
        assert row["observed"] == c
        mu = counts[zone, :, s].sum() * counts[:, a : b + 1, s].sum() / counts[:, :, s].sum()
        assert row["expected"] == pytest.approx(mu, rel=1e-12)


def test_scan_p_value_matches_the_exact_permutation_distribution():
    """Three units, three periods, 7 events: all 7! orderings of the periods, exactly."""
    xy = np.array([[0.0, 0.0], [1000.0, 0.0], [5000.0, 0.0]])
    counts = np.zeros((3, 3, 1), dtype=int)
    counts[0, 2, 0], counts[1, 2, 0], counts[1, 0, 0], counts[2, 0, 0], counts[2, 1, 0] = (
        3, 1, 1, 1, 1,
    )  # fmt: skip
    kw = {"radius": 10_000, "max_units": 3, "max_share": 0.5, "max_len": 2}
    observed = scan_reference(counts[:, :, 0], xy, **kw)[0]
    units_of = np.repeat(np.arange(3), counts[:, :, 0].sum(axis=1))
    periods = np.concatenate([np.repeat(np.arange(3), counts[u, :, 0]) for u in range(3)])
    exceed = 0
    perms = list(itertools.permutations(range(len(periods))))
    for perm in perms:
        shuffled = np.zeros((3, 3), dtype=int)
        np.add.at(shuffled, (units_of, periods[list(perm)]), 1)
        exceed += scan_reference(shuffled, xy, **kw)[0] >= observed - 1e-12
    exact = exceed / len(perms)
    out = cm.space_time_scan(_panel(counts, xy), max_radius=10_000, max_units=3,
                             max_share=0.5, max_periods=2, n_permutations=9999,
                             random_state=7)  # fmt: skip
    assert out["llr"].iloc[0] == pytest.approx(observed, rel=1e-12)
    # Monte Carlo p = (1 + exceedances) / (R + 1): within 4 standard errors of the exact one
    se = math.sqrt(exact * (1 - exact) / 9999)
    assert abs(out["p_value"].iloc[0] - exact) < 4 * se + 1e-4
    assert 0.02 < exact < 0.5  # a case where the p-value is neither 0 nor 1


def test_scan_is_the_same_on_any_thread_count_and_rejects_stocks():
    rng = np.random.default_rng(3)
    counts = rng.poisson(1.0, (40, 5, 6))
    xy = rng.uniform(0, 80_000, (40, 2))
    panel = _panel(counts, xy)
    one = cm.space_time_scan(panel, n_permutations=99, random_state=11, n_jobs=1)
    two = cm.space_time_scan(panel, n_permutations=99, random_state=11, n_jobs=2)
    pd.testing.assert_frame_equal(one, two)
    assert one.attrs["random_state"] == 11
    other = cm.space_time_scan(panel, n_permutations=99, random_state=12)
    assert not np.array_equal(one["p_value"], other.set_index("sector").loc[one["sector"],
                                                                          "p_value"])  # fmt: skip
    stock = StockPanel(panel.dates, panel.unit_ids, panel.sectors, panel.tables, {}, "stock",
                       panel.units)  # fmt: skip
    with pytest.raises(cm.errors.SchemaError, match="needs events, not stocks"):
        cm.space_time_scan(stock)
    with pytest.raises(cm.errors.SchemaError, match="not in the panel"):
        cm.space_time_scan(panel, sectors=["zz"])


@pytest.mark.shared
def test_v2_scan_finds_the_emerging_and_declining_clusters_and_no_null_sector():
    registry, units, key = v2_registry(), v2_communes(), v2_answer_key()
    null = sorted(key.loc[key["kind"] == "null_sector", "naf"])
    emerging = key[key["kind"] == "emerging"].iloc[0]
    declining = key[key["kind"] == "declining"].iloc[0]
    dates = [2005, 2010, 2015, 2020, 2025]
    created = cm.stock_at_dates(registry, units, dates, measure="created")
    out = cm.space_time_scan(created, sectors=[emerging["naf"], *null], n_permutations=199,
                             random_state=5).set_index("sector")  # fmt: skip
    row = out.loc[emerging["naf"]]
    assert row["q_value"] < 1e-6 and row["last_period"] == "2025-12-31"
    assert emerging["centre"] in row["unit_ids"] or set(row["unit_ids"]) & set(
        emerging["core"].split(";")
    )
    # null sectors: none significant after BH (the FDR is 5 %: chance allows about 0 to 2)
    assert (out.loc[null, "q_value"] > 0.05).all()
    closed = cm.stock_at_dates(registry, units, dates, measure="closed")
    out = cm.space_time_scan(closed, sectors=[declining["naf"], *null], n_permutations=199,
                             random_state=5).set_index("sector")  # fmt: skip
    row = out.loc[declining["naf"]]
    assert row["q_value"] < 0.05 and row["first_period"] >= "2010-12-31"  # closed since 2012
    assert set(row["unit_ids"]) & set(declining["core"].split(";"))
    assert (out.loc[null, "q_value"] > 0.05).all()
