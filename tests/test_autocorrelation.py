"""Public local / global statistics against esda (the reference library) and hand values."""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

import clustermap as cm
from clustermap.errors import ClustermapWarning, SchemaError

esda = pytest.importorskip("esda")


def _points(n, seed=0):
    rng = np.random.default_rng(seed)
    return gpd.GeoDataFrame(
        {"unit_id": [f"c{i:04d}" for i in range(n)]},
        geometry=gpd.points_from_xy(rng.uniform(0, 100, n), rng.uniform(0, 100, n)),
    )


def _lattice(side):
    cells = [box(x, y, x + 1, y + 1) for y in range(side) for x in range(side)]
    return gpd.GeoDataFrame({"unit_id": [f"q{i:03d}" for i in range(side * side)]}, geometry=cells)


def _continuous(ids, ncol=3, seed=1):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        rng.lognormal(size=(len(ids), ncol)), index=ids, columns=[f"s{j}" for j in range(ncol)]
    )


@pytest.fixture(scope="module")
def knn_graph():
    return cm.build_graph(_points(300), method="knn", k=6)


@pytest.fixture(scope="module")
def queen_graph_b():
    return cm.build_graph(_lattice(15), method="queen", transform="b")


@pytest.fixture(scope="module")
def queen_graph_r():
    return cm.build_graph(_lattice(15), method="queen", transform="r")


GRAPHS = ["knn_graph", "queen_graph_b", "queen_graph_r"]
ESDA_Q = {1: "HH", 2: "LH", 3: "LL", 4: "HL"}


@pytest.mark.parametrize("gname", GRAPHS)
def test_local_moran_statistic_and_quadrant_equal_esda(gname, request):
    g = request.getfixturevalue(gname)
    y = _continuous(g.unique_ids)
    r = cm.local_moran(y, g, permutations=0)
    tr = "b" if gname.endswith("_b") else "r"
    for col in y:
        ml = esda.Moran_Local(y[col].to_numpy(), g.to_W(), transformation=tr, permutations=0)
        np.testing.assert_allclose(r.statistic[col].to_numpy(), ml.Is, rtol=0, atol=1e-10)
        assert r.quadrant[col].tolist() == [ESDA_Q[q] for q in ml.q]
    assert r.p_value.isna().all().all()


@pytest.mark.parametrize("gname", GRAPHS)
def test_local_moran_table_mode_reproduces_esda_pvalues(gname, request):
    g = request.getfixturevalue(gname)
    y = _continuous(g.unique_ids)
    tr = "b" if gname.endswith("_b") else "r"
    r = cm.local_moran(
        y, g, permutations=499, random_state=123, permutation_method="table", alternative="esda"
    )
    for col in y:
        ml = esda.Moran_Local(
            y[col].to_numpy(), g.to_W(), transformation=tr, permutations=499, seed=123
        )
        np.testing.assert_array_equal(r.p_value[col].to_numpy(), ml.p_sim)
    # tie-free data: the exact "directed" p (ties on both sides) equals esda's fold too
    d = cm.local_moran(
        y,
        g,
        permutations=499,
        random_state=123,
        permutation_method="table",
        alternative="directed",
    )
    np.testing.assert_array_equal(d.p_value.to_numpy(), r.p_value.to_numpy())


@pytest.mark.parametrize("gname", GRAPHS)
@pytest.mark.parametrize("star", [True, False])
def test_getis_ord_equals_esda(gname, star, request):
    g = request.getfixturevalue(gname)
    y = _continuous(g.unique_ids, seed=4)
    tr = "B" if gname.endswith("_b") else "R"
    r = cm.local_getis_ord(
        y,
        g,
        star=star,
        permutations=499,
        random_state=99,
        permutation_method="table",
        alternative="esda",
    )
    for col in y:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gl = esda.G_Local(
                y[col].to_numpy(),
                g.to_W(),
                transform=tr,
                star=star,
                permutations=499,
                seed=99,
                n_jobs=1,
            )
        np.testing.assert_allclose(r.statistic[col].to_numpy(), gl.Gs, rtol=0, atol=1e-10)
        if tr == "B":  # esda's Zs holds for 0/1 weights only (see the tests below)
            np.testing.assert_allclose(r.z[col].to_numpy(), gl.Zs, rtol=0, atol=1e-9)
        # esda stores p_sim as float32
        np.testing.assert_allclose(r.p_value[col].to_numpy(), gl.p_sim, rtol=0, atol=1e-6)


ESDA_POINTS = [(10, 10), (20, 10), (40, 10), (15, 20), (30, 20), (30, 30)]
ESDA_Y = np.array([2, 3, 3.2, 5, 8, 7])


def _six_points_graph(transform):
    pts = gpd.GeoDataFrame(
        {"unit_id": [f"u{i}" for i in range(6)]},
        geometry=gpd.points_from_xy(*zip(*ESDA_POINTS, strict=True)),
    )
    return cm.build_graph(pts, method="distance", threshold=15, transform=transform)


def _exact_moments(weights, y, i, star):
    """Mean and variance of sum_j w_ij y_j over every permutation of the values (brute force)."""
    import itertools

    n = len(y)
    if star:
        sums = [weights[i] @ np.array(p) for p in itertools.permutations(y)]
    else:
        others = [j for j in range(n) if j != i]
        sums = [weights[i, others] @ np.array(p) for p in itertools.permutations(y[others])]
    sums = np.array(sums)
    return sums.mean(), sums.var()


@pytest.mark.parametrize("star", [True, False])
@pytest.mark.parametrize("transform", ["b", "r"])
def test_getis_ord_z_uses_moments_valid_for_any_weights(star, transform):
    """Ord & Getis (1995): esda's six points give the same z with binary or rescaled rows."""
    g = _six_points_graph(transform)
    y = pd.DataFrame({"y": ESDA_Y}, index=g.unique_ids)
    r = cm.local_getis_ord(y, g, star=star, permutations=0)
    # the weights the statistic uses, recovered from the statistic itself (unit vectors)
    n = len(ESDA_Y)
    w = np.zeros((n, n))
    for j in range(n):
        e = pd.DataFrame({"y": np.eye(n)[j] + 1e-300}, index=g.unique_ids)
        w[:, j] = cm.local_getis_ord(e, g, star=star, permutations=0).statistic["y"].to_numpy()
    if not star:
        np.fill_diagonal(w, 0.0)
    for i in range(n):
        mean, var = _exact_moments(w, ESDA_Y, i, star)
        lag = w[i] @ ESDA_Y if star else np.delete(w[i], i) @ np.delete(ESDA_Y, i)
        np.testing.assert_allclose(r.z["y"].iloc[i], (lag - mean) / np.sqrt(var), rtol=1e-12)
    # esda's published values for 0/1 weights (G_Local, star=False: 1.1537; star=True: 1.2345)
    assert round(r.z["y"].iloc[4], 4) == (1.2345 if star else 1.1537)


@pytest.mark.parametrize("star", [True, False])
def test_getis_ord_z_does_not_change_when_rows_are_rescaled(star):
    """Row standardisation rescales each row of a 0/1 graph: z must stay esda's binary Zs."""
    side = _lattice(15)
    gb = cm.build_graph(side, method="queen", transform="b")
    gr = cm.build_graph(side, method="queen", transform="r")
    y = _continuous(gb.unique_ids, seed=4)
    zb = cm.local_getis_ord(y, gb, star=star, permutations=0).z
    zr = cm.local_getis_ord(y, gr, star=star, permutations=0).z
    np.testing.assert_allclose(zr.to_numpy(), zb.to_numpy(), rtol=1e-10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gl = esda.G_Local(y["s0"].to_numpy(), gb.to_W(), transform="B", star=star, permutations=0)
    np.testing.assert_allclose(zr["s0"].to_numpy(), gl.Zs, rtol=0, atol=1e-9)


def test_getis_ord_star_self_weight_is_one_over_k_plus_one(knn_graph):
    y = _continuous(knn_graph.unique_ids, ncol=1)["s0"]
    r = cm.local_getis_ord(y, knn_graph, permutations=0)
    W = knn_graph.sparse.toarray()
    expected = (W @ y.to_numpy() * 6 / 7 + y.to_numpy() / 7) / y.sum()
    np.testing.assert_allclose(r.statistic["s0"].to_numpy(), expected, atol=1e-12)


@pytest.mark.parametrize("gname", GRAPHS)
def test_global_moran_equals_esda(gname, request):
    g = request.getfixturevalue(gname)
    y = _continuous(g.unique_ids, seed=7)
    tr = "b" if gname.endswith("_b") else "r"
    r = cm.global_moran(y, g, permutations=99, random_state=0)
    for col in y:
        m = esda.Moran(y[col].to_numpy(), g.to_W(), transformation=tr, permutations=0)
        row = r.table.loc[col]
        assert row["I"] == pytest.approx(m.I, abs=1e-10)
        assert row["expected_I"] == pytest.approx(m.EI, abs=1e-12)
        assert row["z_norm"] == pytest.approx(m.z_norm, abs=1e-10)
        assert row["p_norm"] == pytest.approx(m.p_norm, abs=1e-10)


def test_global_moran_permutation_pvalue_close_to_esda():
    g = cm.build_graph(_points(400, seed=3), method="knn", k=5)
    rng = np.random.default_rng(5)
    y = pd.DataFrame({"weak": rng.normal(size=400)}, index=g.unique_ids)
    y["weak"] += 0.15 * (g.sparse @ y["weak"].to_numpy())
    r = cm.global_moran(y, g, permutations=4999, random_state=1, alternative="greater")
    m = esda.Moran(y["weak"].to_numpy(), g.to_W(), permutations=4999)
    # one-sided p from 4 999 draws: Monte Carlo SD below 0.007 for p < 0.25
    assert abs(r.table.loc["weak", "p_sim"] - m.p_sim) < 0.03


def test_local_geary_equals_esda(knn_graph):
    y = _continuous(knn_graph.unique_ids, seed=8)
    r = cm.local_geary(y, knn_graph, permutations=0)
    for col in y:
        lg = esda.Geary_Local(connectivity=knn_graph.to_W(), permutations=0).fit(y[col].values)
        np.testing.assert_allclose(r.statistic[col].to_numpy(), lg.localG, atol=1e-10)


def _planted(n_side=30, seed=11):
    """Lattice with a planted hot spot (high values in one corner block) plus noise."""
    units = _lattice(n_side)
    g = cm.build_graph(units, method="queen")
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n_side * n_side)
    rows = np.arange(n_side * n_side) // n_side
    cols = np.arange(n_side * n_side) % n_side
    y[(rows < 10) & (cols < 10)] += 1.5
    return g, pd.DataFrame({"hot": y}, index=g.unique_ids)


def test_default_mode_pvalues_agree_with_esda_statistically():
    g, y = _planted()
    r = cm.local_moran(y, g, permutations=1999, random_state=2024, alternative="directed")
    ml = esda.Moran_Local(y["hot"].to_numpy(), g.to_W(), permutations=1999, seed=5)
    ours = r.p_value["hot"].to_numpy()
    corr = np.corrcoef(ours, ml.p_sim)[0, 1]
    assert corr > 0.99
    share_ours = (ours <= 0.05).mean()
    share_esda = (ml.p_sim <= 0.05).mean()
    assert abs(share_ours - share_esda) <= 0.01
    # the planted block is found: most of its interior is labelled HH
    inner = [f"q{r * 30 + c:03d}" for r in range(1, 9) for c in range(1, 9)]
    assert (r.label.loc[inner, "hot"] == "HH").mean() > 0.6


def test_graph_is_never_mutated():
    """esda's crand zeroes W.sparse's diagonal in place; we must not."""
    from libpysal.weights import fill_diagonal

    g = cm.build_graph(_lattice(6), method="queen", transform="b")
    w = fill_diagonal(g.to_W(), 1.0)
    before = w.sparse.toarray().copy()
    y = _continuous(g.unique_ids, ncol=2)
    r1 = cm.local_getis_ord(y, w, star=True, permutations=99, random_state=0)
    r2 = cm.local_getis_ord(y, w, star=True, permutations=99, random_state=0)
    np.testing.assert_array_equal(w.sparse.toarray(), before)
    pd.testing.assert_frame_equal(r1.statistic, r2.statistic)
    pd.testing.assert_frame_equal(r1.p_value, r2.p_value)
    g_before = g.sparse.toarray().copy()
    cm.local_moran(y, g, permutations=9, random_state=0)
    np.testing.assert_array_equal(g.sparse.toarray(), g_before)


def test_islands_and_constant_columns_get_nan_and_reason():
    units = _lattice(4)
    units.loc[len(units)] = ["island", box(50, 50, 51, 51)]
    with pytest.warns(ClustermapWarning, match="1 unit"):
        g = cm.build_graph(units, method="queen")
    y = pd.DataFrame(
        {"var": np.arange(17, dtype=float) % 5, "flat": np.full(17, 3.0)}, index=g.unique_ids
    )
    with pytest.warns(ClustermapWarning, match="island"):
        r = cm.local_moran(y, g, permutations=99, random_state=0)
    assert np.isnan(r.statistic.loc["island"]).all()
    assert np.isnan(r.p_value.loc["island"]).all()
    assert (r.label.loc["island"] == "isolate").all()
    assert r.p_value["flat"].isna().all()
    assert (r.label["flat"].drop("island") == "constant").all()
    assert r.p_value["var"].drop("island").notna().all()
    # islands are outside the multiple-testing family
    assert not r.significant(correction="bonferroni").loc["island"].any()


def test_values_aligned_by_label_and_missing_ids_named(knn_graph):
    y = _continuous(knn_graph.unique_ids, ncol=2)
    shuffled = y.sample(frac=1.0, random_state=3)
    a = cm.local_moran(y, knn_graph, permutations=99, random_state=4)
    b = cm.local_moran(shuffled, knn_graph, permutations=99, random_state=4)
    pd.testing.assert_frame_equal(a.p_value, b.p_value)
    with pytest.raises(SchemaError, match="c0005"):
        cm.local_moran(y.drop(index="c0005"), knn_graph, permutations=9)
    with pytest.raises(SchemaError, match="negative"):
        cm.local_getis_ord(y - 10, knn_graph, permutations=9)


def test_series_and_array_inputs(knn_graph):
    y = _continuous(knn_graph.unique_ids, ncol=1)["s0"]
    a = cm.local_moran(y, knn_graph, permutations=99, random_state=4)
    b = cm.local_moran(y.to_numpy(), knn_graph, permutations=99, random_state=4)
    np.testing.assert_array_equal(a.p_value.to_numpy(), b.p_value.to_numpy())
    assert list(a.statistic.columns) == ["s0"]


def test_tidy_and_significant(knn_graph):
    y = _continuous(knn_graph.unique_ids, ncol=2)
    r = cm.local_moran(y, knn_graph, permutations=99, random_state=4)
    t = r.tidy()
    assert len(t) == 600
    row = t[(t.unit_id == "c0007") & (t.sector == "s1")].iloc[0]
    assert row.statistic == r.statistic.loc["c0007", "s1"]
    assert row.label == r.label.loc["c0007", "s1"]
    sig = r.significant(alpha=0.05, correction=None)
    np.testing.assert_array_equal(sig.to_numpy(), (r.p_value <= 0.05).to_numpy())
    bh = r.significant(alpha=0.05, correction="fdr_bh", family="all")
    assert bh.to_numpy().sum() <= sig.to_numpy().sum()
    assert "LocalResult moran" in repr(r)
