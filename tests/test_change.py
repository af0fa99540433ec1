"""Change over time: the yearly panel equals one-year reads, and the shift-share components
sum exactly to the observed change (hand computations, and the real Rouen URSSAF panel)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import clustermap as cm
from conftest import shared_file, v2_communes, v2_registry


def test_shift_share_by_hand_and_exact_sum():
    rng = np.random.default_rng(0)
    t0 = pd.DataFrame(
        rng.poisson(5, (30, 6)),
        index=[f"u{i}" for i in range(30)],
        columns=[f"s{j}" for j in range(6)],
    )
    t1 = t0 + rng.poisson(2, t0.shape) - rng.poisson(1, t0.shape).clip(0, None)
    t1 = t1.clip(lower=0)
    t1["new"] = rng.poisson(1, 30)  # a sector absent at the first date
    out = cm.shift_share(t0, t1, years=5)
    parts = out["national_growth"] + out["industry_mix"] + out["regional_share"]
    np.testing.assert_allclose(parts, out["change"], atol=1e-9)
    # by hand for one cell
    g = t1.to_numpy().sum() / t0.to_numpy().sum() - 1
    g_s = t1["s2"].sum() / t0["s2"].sum() - 1
    row = out.set_index(["unit_id", "sector"]).loc[("u3", "s2")]
    x0, x1 = t0.loc["u3", "s2"], t1.loc["u3", "s2"]
    assert row["national_growth"] == pytest.approx(x0 * g)
    assert row["industry_mix"] == pytest.approx(x0 * (g_s - g))
    assert row["regional_share"] == pytest.approx(x1 - x0 - x0 * g_s)
    assert row["cagr"] == pytest.approx((x1 / x0) ** (1 / 5) - 1)
    lq0 = (x0 / t0.loc["u3"].sum()) / (t0["s2"].sum() / t0.to_numpy().sum())
    assert row["lq_before"] == pytest.approx(lq0)
    new = out[out["sector"] == "new"]
    assert (new["regional_share"] == new["change"]).all()  # nothing to share at date 0
    with pytest.raises(ValueError, match="first table holds nothing"):
        cm.shift_share(t0 * 0, t1)


@pytest.mark.shared
def test_rouen_panel_equals_one_year_reads_and_shift_share_sums():
    path = shared_file("urssaf", "urssaf_commune_x_ape_ze_rouen_2006_2022.csv.gz")
    panel = cm.read_count_panel(path)
    assert sorted(panel) == list(range(2006, 2023))
    for year in (2006, 2014, 2022):
        one = cm.read_counts(path, year=year)
        pd.testing.assert_frame_equal(panel[year].establishments, one.establishments)
        pd.testing.assert_frame_equal(panel[year].employees, one.employees)
    out = cm.shift_share(panel[2006].employees, panel[2022].employees, years=16)
    parts = out[["national_growth", "industry_mix", "regional_share"]].sum(axis=1)
    np.testing.assert_allclose(parts, out["change"], atol=1e-9)
    assert out["change"].sum() == pytest.approx(
        panel[2022].employees.to_numpy().sum() - panel[2006].employees.to_numpy().sum()
    )
    with pytest.raises(cm.errors.SchemaError, match="no columns for the years \\[1990\\]"):
        cm.read_count_panel(path, years=[1990])


@pytest.mark.shared
def test_stock_at_dates_equals_the_published_stock_sizes():
    """synthetic_france_v2's README gives the clean stock at five dates; the swapped rows
    (repaired and kept here, removed there) are set aside to compare."""
    registry = v2_registry()
    repaired = set(registry.repairs["establishment_id"]) if len(registry.repairs) else set()
    est = registry.establishments
    est = est[~est["establishment_id"].isin(repaired)]
    units = v2_communes()
    panel = cm.stock_at_dates(est, units, [2005, 2010, 2015, 2020, 2025])
    assert panel.totals().tolist() == [94_417, 143_341, 216_222, 324_749, 475_034]
    assert panel.left_out == {"no_creation_date": 0}
    # the emerging e-bike cluster of Bordeaux: 30.92Z within the commune, by hand
    frame = panel.frame(2025)
    bordeaux = est[(est["sector"] == "30.92Z") & (est["commune"] == "33063")]
    at = bordeaux["dateCreationEtablissement"] <= "2025-12-31"
    alive = (bordeaux["etatAdministratifEtablissement"] == "A") | (
        bordeaux["dateDebut"] > "2025-12-31"
    )
    assert frame.loc["33063", "30.92Z"] == int((at & alive).sum())


def test_stock_from_the_history_file_counts_each_period_under_its_own_code():
    """INSEE's history file: a code change and a closure, by hand."""
    import geopandas as gpd
    from shapely.geometry import Point, box

    units = gpd.GeoDataFrame(geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1)], crs=2154,
                             index=pd.Index(["u", "v"], name="unit_id"))  # fmt: skip
    est = gpd.GeoDataFrame(
        {"establishment_id": ["1", "2", "3"], "sector": ["25.62B", "25.62A", "10.71C"]},
        geometry=[Point(0.5, 0.5), Point(1.5, 0.5), Point(0.5, 0.5)], crs=2154,
    )  # fmt: skip
    history = pd.DataFrame(
        {
            # 1: 25.62A from 2005, 25.62B from 2012 (the current code), closed since 2018
            # 2: created 2015; 4: not in the registry; 3: an old NAF rev. 1 code until 2009
            "siret": ["1", "1", "1", "2", "4", "3", "3"],
            "dateDebut": ["2005-03-01", "2012-01-01", "2018-06-30", "2015-01-01", "2000-01-01",
                          "1990-01-01", "2009-01-01"],
            "dateFin": ["2011-12-31", "2018-06-29", "", "", "", "2008-12-31", ""],
            "etatAdministratifEtablissement": ["A", "A", "F", "A", "A", "A", "A"],
            "activitePrincipaleEtablissement": ["25.62A", "25.62B", "25.62B", "25.62A",
                                                "25.62A", "15.8C", "10.71C"],
        }
    )  # fmt: skip
    panel = cm.stock_at_dates(est, units, [2008, 2013, 2016, 2020], history=history)
    f = {d[:4]: panel.frame(d) for d in panel.dates}
    assert f["2008"].loc["u", "25.62A"] == 1 and f["2008"].to_numpy().sum() == 1
    assert f["2013"].loc["u", "25.62B"] == 1 and f["2013"].loc["u", "25.62A"] == 0
    assert f["2013"].loc["u", "10.71C"] == 1
    assert f["2016"].loc["v", "25.62A"] == 1 and f["2016"].to_numpy().sum() == 3
    assert f["2020"].loc["u", "25.62B"] == 0 and f["2020"].to_numpy().sum() == 2
    assert panel.left_out == {"not_in_registry": 1, "code_outside_level": 1}
    with pytest.raises(cm.errors.SchemaError, match="history has no"):
        cm.stock_at_dates(est, units, [2010], history=history.drop(columns="dateFin"))
