"""Tests of clustermap.scoring: CMP strong-cluster flags and ECO stars on hand tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import clustermap as cm
from clustermap.errors import SchemaError


def d3_quantile(values, p):
    """d3-array quantile (R-7), transcribed from d3's source: sort, i = (n - 1) p."""
    v = sorted(values)
    n = len(v)
    i = (n - 1) * p
    i0 = math.floor(i)
    if i0 + 1 >= n:
        return v[-1]
    return v[i0] + (v[i0 + 1] - v[i0]) * (i - i0)


# Sector "x": 9 regions. Region r0 has emp = 0 and must not enter the quantiles.
# Over r1..r8: emp = 10..80 -> P25_emp = d3(10..80, .25) = 27.5
#              est = 1..8   -> P25_est = 2.75
#              lq  = 0.2, 0.5, 0.8, 1.0, 1.2, 1.4, 2.0, 4.0
#                 -> P25 = 0.725, P50 = 1.1, P75 = 1.55, P90 = 2.6
X = pd.DataFrame(
    {
        "sector": ["x"] * 9,
        "region": [f"r{i}" for i in range(9)],
        "lq": [9.0, 0.2, 0.5, 0.8, 1.0, 1.2, 1.4, 2.0, 4.0],
        "employees": [0, 10, 20, 30, 40, 50, 60, 70, 80],
        "establishments": [0, 1, 2, 3, 4, 5, 6, 7, 8],
    }
)


def test_cmp_thresholds_are_d3_quantiles_over_regions_with_employment():
    flags = cm.strong_cluster_flags(X)
    sub = X[X.employees > 0]
    assert flags["p25_emp"].iloc[0] == pytest.approx(d3_quantile(sub.employees, 0.25)) == 27.5
    assert flags["p25_est"].iloc[0] == pytest.approx(2.75)
    assert flags["p25_lq"].iloc[0] == pytest.approx(d3_quantile(sub.lq, 0.25))
    assert flags["p50_lq"].iloc[0] == pytest.approx(1.1)
    assert flags["p75_lq"].iloc[0] == pytest.approx(1.55)
    assert flags["p90_lq"].iloc[0] == pytest.approx(d3_quantile(sub.lq, 0.90)) == 2.6


def test_cmp_flags_hand_table():
    flags = cm.strong_cluster_flags(X).set_index(X.region)
    # r0: emp = 0 fails the size floor whatever its LQ
    assert not flags.loc["r0", ["qualifying", "significant", "strong_cluster"]].any()
    # r1, r2: emp 10, 20 <= P25 27.5 -> nothing
    assert not flags.loc[["r1", "r2"], "qualifying"].any()
    # r3: lq 0.8 > 0.725 qualifying, not significant
    assert flags.loc["r3", "qualifying"] and not flags.loc["r3", "significant"]
    # r4: lq 1.0 < P50 1.1
    assert flags.loc["r4", "qualifying"] and not flags.loc["r4", "significant"]
    # r5, r6: significant, below P75 1.55
    assert flags.loc[["r5", "r6"], "significant"].all()
    assert not flags.loc[["r5", "r6"], "strong_cluster"].any()
    # r7: 2.0 >= 1.55 strong, < 2.6 not p90 ; r8 both
    assert flags.loc["r7", "strong_cluster"] and not flags.loc["r7", "strong_cluster_p90"]
    assert flags.loc["r8", ["strong_cluster", "strong_cluster_p90"]].all()


def test_cmp_strict_and_non_strict_comparisons():
    # 5 regions, lq quantiles: P25 = 1, P50 = 2, P75 = 3; emp P25 = 20; est P25 = 2
    t = pd.DataFrame(
        {
            "sector": ["s"] * 5,
            "lq": [0.0, 1.0, 2.0, 3.0, 4.0],
            "employees": [10, 20, 30, 40, 50],
            "establishments": [1, 2, 3, 4, 5],
        }
    )
    # a probe region sitting exactly on every threshold, compared with t's quantiles
    probe = pd.DataFrame(
        {
            "sector": ["s"] * 6,
            "lq": [1.0, 2.0, 3.0, 3.0, 3.0, 3.0],
            "employees": [30, 30, 30, 20, 30, 21],
            "establishments": [3, 3, 3, 3, 2, 3],
        }
    )
    f = cm.strong_cluster_flags(probe, reference=t)
    assert not f.loc[0, "qualifying"]  # LQ > P25 is strict: 1.0 is not > 1.0
    assert f.loc[1, "qualifying"] and not f.loc[1, "significant"]  # LQ > P50 strict
    assert f.loc[2, "strong_cluster"]  # LQ >= P75 non-strict: 3.0 >= 3.0
    assert not f.loc[3, "strong_cluster"]  # emp > P25 strict: 20 is not > 20
    assert not f.loc[4, "strong_cluster"]  # est > P25 strict: 2 is not > 2
    assert f.loc[5, "strong_cluster"]


def test_cmp_requires_lq_at_least_one():
    # every region under-represented: P75 of LQ is below 1, so nothing is strong
    t = pd.DataFrame(
        {
            "sector": ["s"] * 4,
            "lq": [0.2, 0.4, 0.6, 0.8],
            "employees": [10, 20, 30, 40],
            "establishments": [1, 2, 3, 4],
        }
    )
    f = cm.strong_cluster_flags(t)
    assert f["p75_lq"].iloc[0] == pytest.approx(0.65)
    assert f.loc[3, "significant"] and not f.loc[3, "strong_cluster"]


def test_cmp_groups_are_separate_and_unknown_groups_false():
    t = pd.concat([X, X.assign(sector="y", lq=X.lq * 10)], ignore_index=True)
    f = cm.strong_cluster_flags(t)
    np.testing.assert_array_equal(f["strong_cluster"].iloc[:9], f["strong_cluster"].iloc[9:])
    assert f["p75_lq"].iloc[9] == pytest.approx(15.5)
    probe = pd.DataFrame({"sector": ["z"], "lq": [5.0], "employees": [100], "establishments": [10]})
    g = cm.strong_cluster_flags(probe, reference=t)
    assert not g.loc[0, "strong_cluster"] and np.isnan(g.loc[0, "p75_lq"])


def test_cmp_custom_column_names_and_errors():
    t = X.rename(columns={"sector": "cluster", "lq": "lq_tf", "employees": "emp_tl"})
    f = cm.strong_cluster_flags(t, by="cluster", lq="lq_tf", employees="emp_tl")
    pd.testing.assert_series_equal(
        f["strong_cluster"], cm.strong_cluster_flags(X)["strong_cluster"]
    )
    with pytest.raises(SchemaError, match="lacks column"):
        cm.strong_cluster_flags(t)


def test_eco_stars_hand_table():
    # category a: 10 regions, emp 100..1000 -> P90 = 910; focus 0.01..0.10 -> P90 = 0.091
    t = pd.DataFrame(
        {
            "sector": ["a"] * 10 + ["b"] * 2,
            "employees": [100 * i for i in range(1, 11)] + [5, 50],
            "lq": [1.0, 2.0, 1.99, 3.0, 0.5, 1.0, 1.0, 1.0, 2.5, 0.9, 2.0, 1.0],
            "focus": [0.01 * i for i in range(1, 11)] + [0.2, 0.1],
        }
    )
    s = cm.star_rating(t)
    assert s["size_star"].tolist() == [False] * 9 + [True] + [False, True]
    assert s["specialisation_star"].tolist() == [
        False,
        True,  # LQ = 2.0 >= 2 (non-strict)
        False,  # 1.99
        True,
        False,
        False,
        False,
        False,
        True,
        False,
        True,
        False,
    ]
    assert s["focus_star"].tolist() == [False] * 9 + [True] + [True, False]
    assert s["stars"].tolist() == [0, 1, 0, 1, 0, 0, 0, 0, 1, 2, 2, 1]


def test_eco_custom_thresholds_and_reference():
    t = pd.DataFrame(
        {"sector": ["a"] * 4, "employees": [1, 2, 3, 4], "lq": [1, 1.5, 2, 3], "focus": [0.1] * 4}
    )
    s = cm.star_rating(t, size_q=0.5, lq_min=1.5)
    # P50 of 1..4 = 2.5 -> regions 3 and 4 ; LQ >= 1.5 -> 2, 3, 4 ; ties on focus: all at P90
    assert s["size_star"].tolist() == [False, False, True, True]
    assert s["specialisation_star"].tolist() == [False, True, True, True]
    assert s["focus_star"].all()
    probe = pd.DataFrame({"sector": ["a"], "employees": [10], "lq": [1.0], "focus": [0.05]})
    p = cm.star_rating(probe, reference=t)
    assert p.loc[0, "size_star"] and not p.loc[0, "focus_star"] and p.loc[0, "stars"] == 1
    with pytest.raises(ValueError, match="quantile"):
        cm.star_rating(t, size_q=90)
