"""Tests of clustermap.lq: location quotients, intervals, EB smoothing, read_counts."""

from __future__ import annotations

import csv
import gzip
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import clustermap as cm
from clustermap.errors import ClustermapWarning, DataFileError, SchemaError
from clustermap.stats.lq import LQResult
from conftest import shared_file

# A 3 x 3 table computed by hand below.
#          a    b    c   | row
# r1      10   20   70   | 100
# r2      30   10   60   | 100
# r3       0   30  170   | 200
# col     40   60  300   | 400
HAND = pd.DataFrame(
    {"a": [10, 30, 0], "b": [20, 10, 30], "c": [70, 60, 170]}, index=["r1", "r2", "r3"]
)


def test_lq_hand_computed():
    lq = cm.location_quotient(HAND)
    # r1/a: (10/100) / (40/400) = 1.0 ; r2/a: 0.3/0.1 = 3 ; r3/b: (30/200)/(60/400) = 1
    # r1/b: 0.2/0.15 = 4/3 ; r2/c: 0.6/0.75 = 0.8 ; r3/c: 0.85/0.75
    expected = pd.DataFrame(
        {
            "a": [1.0, 3.0, 0.0],
            "b": [4 / 3, 2 / 3, 1.0],
            "c": [70 / 75, 0.8, 0.85 / 0.75],
        },
        index=HAND.index,
    )
    pd.testing.assert_frame_equal(lq, expected)


def test_lq_scale_invariance_and_weighted_mean_is_one():
    rng = np.random.default_rng(3)
    counts = pd.DataFrame(rng.integers(0, 50, size=(30, 8)), columns=list("abcdefgh"))
    counts.iloc[:, 0] += 1  # no empty units
    lq = cm.location_quotient(counts)
    pd.testing.assert_frame_equal(cm.location_quotient(counts * 7), lq)
    share = counts.sum(axis=1) / counts.to_numpy().sum()
    np.testing.assert_allclose((lq.mul(share, axis=0)).sum(axis=0), 1.0, rtol=1e-12)


def test_lq_reference_series_and_table():
    nation = pd.Series({"a": 100, "b": 100, "c": 800})
    lq = cm.location_quotient(HAND, reference=nation)
    # r2/a: (30/100) / (100/1000) = 3 ; r3/c: (170/200)/(800/1000) = 1.0625
    assert lq.loc["r2", "a"] == pytest.approx(3.0)
    assert lq.loc["r3", "c"] == pytest.approx(1.0625)
    table = pd.DataFrame([nation.to_numpy() / 2, nation.to_numpy() / 2], columns=nation.index)
    pd.testing.assert_frame_equal(cm.location_quotient(HAND, reference=table), lq)
    with pytest.raises(SchemaError, match="lacks 1 sector"):
        cm.location_quotient(HAND, reference=nation.drop("c"))


def test_within_type_lq_as_cmp():
    types = {"a": "traded", "b": "traded", "c": "local"}
    lq = cm.location_quotient(HAND, types=types)
    # traded only: r1 traded total 30, national traded 100, a total 40 -> (10/30)/(40/100)
    assert lq.loc["r1", "a"] == pytest.approx((10 / 30) / 0.4)
    assert lq.loc["r2", "b"] == pytest.approx((10 / 40) / 0.6)
    # local type holds one sector: its within-type LQ is 1 wherever present
    np.testing.assert_allclose(lq["c"], 1.0)
    with pytest.raises(SchemaError, match="no type"):
        cm.location_quotient(HAND, types={"a": "traded"})


def test_zero_activity_unit_gives_nan_and_warns():
    counts = pd.concat([HAND, pd.DataFrame({"a": [0], "b": [0], "c": [0]}, index=["r4"])])
    with pytest.warns(ClustermapWarning, match="no activity"):
        lq = cm.location_quotient(counts)
    assert lq.loc["r4"].isna().all()
    assert np.isfinite(lq.drop(index="r4").to_numpy()).all()


def test_bad_input_errors():
    with pytest.raises(SchemaError, match="negative"):
        cm.location_quotient(HAND - 15)
    with pytest.raises(SchemaError, match="NaN"):
        cm.location_quotient(HAND.astype(float).where(HAND > 0))
    with pytest.raises(SchemaError, match="integer"):
        cm.location_quotient(HAND / 3, interval="poisson")
    with pytest.raises(ValueError, match="interval must be"):
        cm.location_quotient(HAND, interval="wald")


def test_garwood_bounds_match_their_definition_and_a_table():
    res = cm.location_quotient(HAND, interval="poisson")
    assert isinstance(res, LQResult)
    o = HAND.to_numpy(dtype=float)
    e = res.expected.to_numpy()
    lo, hi, p = res.lq_low.to_numpy(), res.lq_high.to_numpy(), res.p_value.to_numpy()
    pos = o > 0
    # lower bound: P(X >= O | mean lo*E) = 2.5 % ; upper: P(X <= O | mean hi*E) = 2.5 %
    np.testing.assert_allclose(stats.poisson.sf(o[pos] - 1, lo[pos] * e[pos]), 0.025, rtol=1e-6)
    np.testing.assert_allclose(stats.poisson.cdf(o, hi * e), 0.025, rtol=1e-6)
    assert (lo[~pos] == 0).all()
    np.testing.assert_allclose(p[pos], stats.poisson.sf(o[pos] - 1, e[pos]), rtol=1e-10)
    assert (p[~pos] == 1).all()
    # classic table: exact 95 % CI of a Poisson mean for O = 10 is 4.795 .. 18.390
    one = pd.DataFrame({"a": [10, 990], "b": [990, 9010]})
    r = cm.location_quotient(one, interval="poisson")
    e0 = r.expected.iloc[0, 0]
    assert r.lq_low.iloc[0, 0] * e0 == pytest.approx(4.795, abs=1e-3)
    assert r.lq_high.iloc[0, 0] * e0 == pytest.approx(18.390, abs=1e-3)


def test_poisson_interval_coverage_by_simulation():
    """95 % Garwood intervals cover the true LQ in 93-97 % of Poisson draws."""
    rng = np.random.default_rng(20240501)
    n_units, n_sectors, n_draws = 60, 6, 400
    size = rng.uniform(5_000, 20_000, n_units)
    size[0] = 800  # the tested unit: a small part of the table
    share = np.array([0.05, 0.1, 0.15, 0.2, 0.2, 0.3])
    theta = np.ones((n_units, n_sectors))
    theta[0] = [2.0, 1.5, 0.5, 1.0, 1.2, 0.8]
    mu = size[:, None] * share[None, :] * theta
    true_lq = (mu / mu.sum(axis=1, keepdims=True)) / (mu.sum(axis=0) / mu.sum())
    covered = np.zeros(n_sectors)
    for _ in range(n_draws):
        counts = pd.DataFrame(rng.poisson(mu))
        res = cm.location_quotient(counts, interval="poisson")
        lo, hi = res.lq_low.to_numpy()[0], res.lq_high.to_numpy()[0]
        covered += (lo <= true_lq[0]) & (true_lq[0] <= hi)
    coverage = covered.sum() / (n_draws * n_sectors)
    assert 0.93 <= coverage <= 0.97, coverage


def test_dartboard_interval_hand_computed():
    emp = pd.DataFrame({"a": [50.0, 50.0], "b": [150.0, 750.0]}, index=["r1", "r2"])
    h = pd.Series({"a": 0.5, "b": 0.1})
    res = cm.location_quotient(emp, interval="dartboard", herfindahl=h)
    # r1: a_r = 200/1000 = 0.2 ; LQ_a = (50/200)/(100/1000) = 2.5 ; var = 0.5 * 0.8/0.2 = 2
    sd = np.sqrt(2.0)
    assert res.lq.loc["r1", "a"] == pytest.approx(2.5)
    assert res.lq_low.loc["r1", "a"] == pytest.approx(max(2.5 - 1.959964 * sd, 0), abs=1e-5)
    assert res.lq_high.loc["r1", "a"] == pytest.approx(2.5 + 1.959964 * sd, abs=1e-5)
    assert res.p_value.loc["r1", "a"] == pytest.approx(stats.norm.sf(1.5 / sd))
    with pytest.raises(SchemaError, match="herfindahl"):
        cm.location_quotient(emp, interval="dartboard")


def test_range_interval_between_band_rules():
    mid = pd.DataFrame({"a": [15.0, 5.0], "b": [85.0, 95.0]})
    low = pd.DataFrame({"a": [10.0, 5.0], "b": [80.0, 90.0]})
    high = pd.DataFrame({"a": [20.0, 5.0], "b": [90.0, 100.0]})
    res = cm.location_quotient(mid, interval="range", low=low, high=high)
    lq_low_rule = (10 / 90) / (15 / 185)
    lq_high_rule = (20 / 110) / (25 / 215)
    lq_mid = (15 / 100) / (20 / 200)
    assert res.lq_low.iloc[0, 0] == pytest.approx(min(lq_low_rule, lq_high_rule, lq_mid))
    assert res.lq_high.iloc[0, 0] == pytest.approx(max(lq_low_rule, lq_high_rule, lq_mid))
    assert res.p_value is None


def test_empirical_bayes_matches_esda():
    esda_smoothing = pytest.importorskip("esda.smoothing")
    rng = np.random.default_rng(11)
    size = rng.integers(20, 2_000, 80)
    counts = pd.DataFrame(
        {
            "a": rng.poisson(size * 0.05 * rng.gamma(2.0, 0.5, 80)),
            "b": rng.poisson(size * 0.95),
        }
    )
    res = cm.location_quotient(counts, interval="poisson", smooth=True)
    eb = esda_smoothing.Empirical_Bayes(
        counts["a"].to_numpy(), res.expected["a"].to_numpy()
    ).r.ravel()
    np.testing.assert_allclose(res.lq_smoothed["a"].to_numpy(), eb, rtol=1e-10)
    # smoothing shrinks: the spread of EB LQs is smaller than the raw spread
    assert res.lq_smoothed["a"].std() < res.lq["a"].std()
    only = cm.location_quotient(counts, smooth=True)
    pd.testing.assert_frame_equal(only, res.lq_smoothed)


def test_tidy_long_table():
    tidy = cm.location_quotient(HAND, interval="poisson").tidy()
    assert list(tidy.columns) == [
        "unit_id",
        "sector",
        "observed",
        "expected",
        "lq",
        "lq_low",
        "lq_high",
        "p_value",
    ]
    row = tidy[(tidy.unit_id == "r2") & (tidy.sector == "a")].iloc[0]
    assert row.observed == 30 and row.expected == pytest.approx(10) and row.lq == 3


def test_read_counts_long_table_and_errors(tmp_path):
    long = pd.DataFrame(
        {
            "commune": ["01001", "01001", "01002", "01002"],
            "naf": ["2562A", "25.62A", "1071C", "2562A"],
            "n": [1, 2, 5, 4],
            "emp": [10, 20, 3.5, 40],
        }
    )
    path = tmp_path / "counts.csv"
    long.to_csv(path, index=False)
    tables = cm.read_counts(path, unit="commune", sector="naf", establishments="n", employees="emp")
    assert tables.establishments.loc["01001", "25.62A"] == 3  # duplicates summed, codes normalised
    assert tables.establishments.loc["01001", "10.71C"] == 0
    assert tables.employees.loc["01002", "10.71C"] == 3.5
    assert tables.info["duplicated_cells_summed"] == 1
    with pytest.raises(SchemaError, match="cannot find"):
        cm.read_counts(path)
    bad = long.assign(n=["1", "x", "5", "4"])
    with pytest.raises(DataFileError, match="'n', data row 2"):
        cm.read_counts(bad, unit="commune", sector="naf", establishments="n")


def _hand_urssaf(path, year):
    """Sum the URSSAF file with the csv module only (independent of read_counts)."""
    cells, unit_tot, sector_tot, total = {}, {}, {}, 0.0
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter=";"):
            v = row[f"Nombre d'établissements {year}"]
            v = float(v) if v else 0.0
            key = (row["Code commune"], row["Code APE"])
            cells[key] = cells.get(key, 0.0) + v
            unit_tot[key[0]] = unit_tot.get(key[0], 0.0) + v
            sector_tot[key[1]] = sector_tot.get(key[1], 0.0) + v
            total += v
    return cells, unit_tot, sector_tot, total


@pytest.mark.shared
def test_urssaf_rouen_loads_and_matches_hand_lq():
    path = shared_file("urssaf", "urssaf_commune_x_ape_ze_rouen_2006_2022.csv.gz")
    tables = cm.read_counts(path)
    assert tables.year == 2022
    assert tables.info["format"] == "urssaf"
    assert tables.info["years"][0] == 2006
    est = tables.establishments
    assert est.index.str.fullmatch(r"\d{5}").all()
    assert est.columns.str.fullmatch(r"\d\d\.\d\d[A-Z]").all()
    cells, unit_tot, sector_tot, total = _hand_urssaf(path, 2022)
    assert est.to_numpy().sum() == total
    # 10 communes have rows only in earlier years: NaN LQ with a warning
    with pytest.warns(ClustermapWarning, match="10 unit"):
        lq = cm.location_quotient(est)
    for unit, ape in [("76540", "1089Z"), ("76540", "1013B")]:
        hand = (cells[(unit, ape)] / unit_tot[unit]) / (sector_tot[ape] / total)
        assert lq.loc[unit, ape[:2] + "." + ape[2:]] == pytest.approx(hand, rel=1e-12)
    # the commune with most establishments, its largest sector
    unit = max(unit_tot, key=unit_tot.get)
    ape = max((k for k in cells if k[0] == unit), key=cells.get)[1]
    hand = (cells[(unit, ape)] / unit_tot[unit]) / (sector_tot[ape] / total)
    assert lq.loc[unit, ape[:2] + "." + ape[2:]] == pytest.approx(hand, rel=1e-12)
    # an earlier year
    y2010 = cm.read_counts(path, year=2010)
    _, _, _, total10 = _hand_urssaf(path, 2010)
    assert y2010.establishments.to_numpy().sum() == total10
    with pytest.raises(SchemaError, match="available years"):
        cm.read_counts(path, year=1999)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClustermapWarning)
        emp_lq = cm.location_quotient(tables.employees)
    assert emp_lq.shape == est.shape
