"""Tests of clustermap.distance (Kd, Kemp, M) against dbmss outputs and brute-force references.

References:
* ../shared/datasets/reference_dbmss: dbmss 2.11-0 outputs (Kdhat Approximate = 0, Mhat,
  envelopes and their simulations) on a fixed set of 15 438 establishments (see its README);
* tests/reference_distance.py: O(n^2) NumPy implementations of the formulas;
* ../shared/datasets/synthetic_france: planted clusters and null sectors (answer_key.csv).
"""

from __future__ import annotations

import math
import warnings

import numba
import numpy as np
import pandas as pd
import pytest
import reference_distance as ref

import clustermap as cm
from clustermap.errors import ClustermapWarning, CRSError, SchemaError
from clustermap.stats import _distance_kernels as K
from clustermap.stats import distance as dist
from conftest import shared_file

R_KD = np.arange(0, 60.0001, 0.5)  # dbmss rKd
R_M = np.array([0, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 40, 50.0])  # dbmss rM
KW = {"x": "x_km", "y": "y_km", "weight": "weight"}


def _ref_file(name):
    return pd.read_csv(shared_file("reference_dbmss", name))


@pytest.fixture(scope="module")
def points():
    return pd.read_csv(shared_file("reference_dbmss", "points_01_39_74.csv"), dtype={"siret": str})


def _close_to_dbmss(ours, theirs, rtol):
    """rtol relative, with an absolute floor of 1e-9 x max for FFT round-off in the tails."""
    theirs = np.asarray(theirs, dtype=float)
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=1e-9 * np.nanmax(np.abs(theirs)))


# ----------------------------------------------------------------------------- dbmss values


@pytest.mark.shared
@pytest.mark.parametrize("sector", ["25.62A", "22.29A"])
@pytest.mark.parametrize("weighted", [False, True])
def test_kd_binned_matches_dbmss_full_set(points, sector, weighted):
    res = cm.k_density(
        points, sector, r=R_KD, weighted=weighted, method="binned", simulations=0, **KW
    )
    tag = "weighted" if weighted else "unweighted"
    expected = _ref_file(f"Kd_{sector}_{tag}.csv")["Kd"]
    _close_to_dbmss(res.curve()["observed"], expected, rtol=1e-6)
    bws = _ref_file("kd_bandwidths.csv").set_index("case")["bw_km"]
    assert res.bandwidth == pytest.approx(bws[f"Kd_{sector}_{tag}"], rel=1e-9)
    assert res.summary.loc[sector, "bandwidth_pairs"] > 0


@pytest.mark.shared
@pytest.mark.parametrize("weighted", [False, True])
def test_kd_bivariate_matches_dbmss(points, weighted):
    res = cm.k_density(
        points, "25.62A", neighbor="22.29A", r=R_KD, weighted=weighted, method="binned",
        simulations=0, **KW,
    )  # fmt: skip
    tag = "weighted" if weighted else "unweighted"
    _close_to_dbmss(
        res.curve()["observed"], _ref_file(f"Kd_25.62A_x_22.29A_{tag}.csv")["Kd"], rtol=1e-6
    )
    assert res.bandwidth == pytest.approx(0.6988921908898, rel=1e-9)


@pytest.mark.shared
@pytest.mark.parametrize("name", ["small200", "small200strat"])
def test_kd_and_m_match_dbmss_small_sets(name):
    pts = pd.read_csv(shared_file("reference_dbmss", f"points_{name}.csv"), dtype={"siret": str})
    kd = _ref_file(f"{name}_Kd.csv")
    for col in kd.columns[1:]:
        _, sector, tag = col.split("_")
        res = cm.k_density(
            pts, sector, r=R_KD, weighted=tag == "weighted", method="binned", simulations=0, **KW
        )
        _close_to_dbmss(res.curve()["observed"], kd[col], rtol=1e-6)
    m = _ref_file(f"{name}_M.csv")
    for col in m.columns[1:]:
        parts = col.split("_")
        weighted = parts[-1] == "weighted"
        if parts[2] == "x":
            res = cm.m_function(pts, "25.62A", neighbor="22.29A", r=R_M, weighted=weighted,
                                simulations=0, **KW)  # fmt: skip
        else:
            res = cm.m_function(pts, parts[1], r=R_M, weighted=weighted, simulations=0, **KW)
        _close_to_dbmss(res.curve()["observed"], m[col], rtol=1e-9)


@pytest.mark.shared
@pytest.mark.parametrize("sector", ["25.62A", "22.29A"])
@pytest.mark.parametrize("weighted", [False, True])
def test_exact_kd_differs_from_dbmss_only_by_its_binning(points, sector, weighted):
    # dbmss bins the distances (R density()); the exact sums differ by < 0.5 % of max Kd
    # (README of reference_dbmss: "up to ~0.4 %"), with the same bandwidth.
    res = cm.k_density(points, sector, r=R_KD, weighted=weighted, simulations=0, **KW)
    tag = "weighted" if weighted else "unweighted"
    expected = _ref_file(f"Kd_{sector}_{tag}.csv")["Kd"].to_numpy()
    diff = np.abs(res.curve()["observed"].to_numpy() - expected)
    assert diff.max() < 0.005 * expected.max()
    assert res.parameters["method"] == "exact"


@pytest.mark.shared
@pytest.mark.parametrize("sector", ["25.62A", "22.29A"])
@pytest.mark.parametrize("weighted", [False, True])
def test_m_matches_dbmss_full_set(points, sector, weighted):
    res = cm.m_function(points, sector, r=R_M, weighted=weighted, simulations=0, **KW)
    tag = "weighted" if weighted else "unweighted"
    expected = _ref_file(f"M_{sector}_{tag}.csv")["M"]
    obs = res.curve()["observed"]
    assert np.isnan(obs.iloc[0]) and np.isnan(expected.iloc[0])  # r = 0: no neighbour
    _close_to_dbmss(obs, expected, rtol=1e-9)
    biv = cm.m_function(
        points, "25.62A", neighbor="22.29A", r=R_M, weighted=weighted, simulations=0, **KW
    )
    _close_to_dbmss(
        biv.curve()["observed"], _ref_file(f"M_25.62A_x_22.29A_{tag}.csv")["M"], rtol=1e-9
    )


@pytest.mark.shared
@pytest.mark.parametrize(
    "stem", ["KdEnvelope_25.62A_unweighted", "KdEnvelope_25.62A_weighted",
             "MEnvelope_25.62A_unweighted", "MEnvelope_25.62A_weighted"],
)  # fmt: skip
def test_envelope_arithmetic_reproduces_dbmss(stem):
    # From dbmss's own 100 simulated curves, our local and global rules give dbmss's bands.
    sims = _ref_file(f"{stem}_simulations.csv").drop(columns="r").to_numpy().T
    loc = _ref_file(f"{stem}_local.csv")
    glo = _ref_file(f"{stem}_global.csv")
    lo, hi, mean = dist._local_envelope(sims, 0.05)
    np.testing.assert_allclose(lo, loc["lo"], rtol=1e-12)
    np.testing.assert_allclose(hi, loc["hi"], rtol=1e-12)
    np.testing.assert_allclose(mean, loc["mmean"], rtol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        glo_lo, glo_hi = dist._global_envelope(sims, 0.05)
    np.testing.assert_allclose(glo_lo, glo["lo"], rtol=1e-12)
    np.testing.assert_allclose(glo_hi, glo["hi"], rtol=1e-12)


@pytest.mark.shared
@pytest.mark.slow
@pytest.mark.parametrize("weighted", [False, True])
def test_kd_envelopes_agree_with_dbmss_within_monte_carlo_error(points, weighted):
    # Random: NumPy cannot replay R's stream. Stated tolerance: with 100 simulations each,
    # every band bound is within 10 % (unweighted) / 25 % (Kemp: heavy employee weights make
    # the simulated curves much more variable) of the band's maximum, and the observed-vs-
    # global-band decision agrees at >= 95 % of the r values.
    res = cm.k_density(
        points, "25.62A", r=R_KD, weighted=weighted, method="binned", random_state=20240601, **KW
    )
    c = res.curve()
    tag = "weighted" if weighted else "unweighted"
    tol = 0.25 if weighted else 0.10
    for kind in ("local", "global"):
        theirs = _ref_file(f"KdEnvelope_25.62A_{tag}_{kind}.csv")
        _close_to_dbmss(c["observed"], theirs["obs"], rtol=1e-6)
        for b in ("lo", "hi"):
            gap = np.abs(c[f"{kind}_{b}"].to_numpy() - theirs[b].to_numpy())
            assert gap.max() <= tol * theirs["hi"].max(), (kind, b)
        agree = (c["observed"] > c[f"{kind}_hi"]).to_numpy() == (theirs["obs"] > theirs["hi"])
        assert agree.mean() >= 0.95
    assert res.summary.loc["25.62A", "localised"]


@pytest.mark.shared
@pytest.mark.slow
def test_m_envelope_agrees_with_dbmss_within_monte_carlo_error(points):
    # Stated tolerance (r > 0): local band bounds within 10 % of dbmss's, global band bounds
    # (extremes of 100 simulations, noisier) within 20 %; decisions agree at >= 90 % of r.
    res = cm.m_function(points, "25.62A", r=R_M, weighted=True, random_state=20240601, **KW)
    c = res.curve().iloc[1:]
    for kind in ("local", "global"):
        theirs = _ref_file(f"MEnvelope_25.62A_weighted_{kind}.csv").iloc[1:]
        for b in ("lo", "hi"):
            tol = 0.10 if kind == "local" else 0.20
            np.testing.assert_allclose(c[f"{kind}_{b}"], theirs[b], rtol=tol)
        agree = (c["observed"] > c[f"{kind}_hi"]).to_numpy() == (theirs["obs"] > theirs["hi"])
        assert agree.mean() >= 0.9


# ----------------------------------------------------------------------------- brute force


def _toy(seed=0, n_other=240, n_a=45, n_b=30, spread=30.0):
    rng = np.random.default_rng(seed)
    n = n_other + n_a + n_b
    xy = rng.uniform(0, spread, size=(n, 2))
    xy[n_other : n_other + n_a] = rng.normal(10, 2.0, size=(n_a, 2))  # a loose cluster
    types = np.array(["o"] * n_other + ["A"] * n_a + ["B"] * n_b)
    w = rng.integers(1, 60, size=n).astype(float)
    return pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "sector": types, "w": w})


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize(
    "r",
    [np.linspace(0, 12, 49), np.linspace(0, 12, 5), np.array([0, 0.3, 1, 2.5, 4, 7, 11.0])],
    ids=["regular", "coarse-regular", "irregular"],
)
def test_kd_exact_matches_brute_force(weighted, r):
    df = _toy()
    a = df[df.sector == "A"]
    b = df[df.sector == "B"]
    res = cm.k_density(df, "A", r=r, weighted=weighted, columns={"weight": "w"}, simulations=0)
    expected, h = ref.kd_exact(a[["x", "y"]].to_numpy(), a.w.to_numpy(), r, weighted=weighted)
    assert res.bandwidth == pytest.approx(h, rel=1e-12)
    np.testing.assert_allclose(res.curve()["observed"], expected, rtol=1e-10, atol=1e-14)
    biv = cm.k_density(
        df, "A", neighbor="B", r=r, weighted=weighted, columns={"weight": "w"}, simulations=0
    )
    expected, h = ref.kd_exact(
        a[["x", "y"]].to_numpy(), a.w.to_numpy(), r, b[["x", "y"]].to_numpy(), b.w.to_numpy(),
        weighted=weighted,
    )  # fmt: skip
    assert biv.bandwidth == pytest.approx(h, rel=1e-12)
    np.testing.assert_allclose(biv.curve()["observed"], expected, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("weighted", [False, True])
def test_kd_binned_matches_numpy_r_density(weighted):
    df = _toy(seed=3)
    a = df[df.sector == "A"]
    r = np.linspace(0, 10, 41)
    res = cm.k_density(
        df,
        "A",
        r=r,
        weighted=weighted,
        columns={"weight": "w"},
        options={"method": "binned"},
        simulations=0,
    )
    expected, _ = ref.kd_dbmss(a[["x", "y"]].to_numpy(), a.w.to_numpy(), r, weighted=weighted)
    np.testing.assert_allclose(res.curve()["observed"], expected, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("method", [0, 1])
def test_grid_path_equals_all_pairs_path(method):
    # kd_compute (grid, blocks, used above SMALL_PAIRS pairs) vs kd_small (all pairs stored)
    rng = np.random.default_rng(5)
    n = 700
    x, y = rng.uniform(0, 50, n), rng.uniform(0, 30, n)
    z, w = np.zeros(n), rng.uniform(1, 10, n)
    r = np.linspace(0, 8, 33)
    args = (x, y, z, w, x, y, z, w, True, True, False, r, True, 1.0, method, 0.0)
    small = K.kd_small(*args)
    grid = K.kd_compute(*args, K._n_blocks(n), True)
    approx = K.kd_compute(*args, K._n_blocks(n), False)  # histogram quartiles
    assert approx[3][K.BW] == pytest.approx(small[3][K.BW], rel=1e-4)
    assert grid[3][K.BW] == pytest.approx(small[3][K.BW], rel=1e-12)
    for g, s in zip(grid[:3], small[:3]):
        np.testing.assert_allclose(g, s, rtol=1e-10, atol=1e-12 * max(np.abs(s).max(), 1e-300))
    np.testing.assert_allclose(grid[3], small[3], rtol=1e-10, atol=1e-9)


def test_kd_great_circle_distances_for_lon_lat():
    rng = np.random.default_rng(2)
    n = 60
    lon = rng.uniform(5.0, 6.5, 300)
    lat = rng.uniform(45.0, 46.2, 300)
    types = np.array(["A"] * n + ["o"] * 240)
    df = pd.DataFrame({"lon": lon, "lat": lat, "sector": types})
    r = np.linspace(0, 40, 41)
    res = cm.k_density(df, "A", r=r, columns={"x": "lon", "y": "lat", "crs": 4326}, simulations=0)
    expected, h = ref.kd_exact(np.c_[lon[:n], lat[:n]], np.ones(n), r, spherical=True)
    assert res.parameters["spherical"]
    assert res.bandwidth == pytest.approx(h, rel=1e-9)
    np.testing.assert_allclose(res.curve()["observed"], expected, rtol=1e-8, atol=1e-14)


def test_geodataframe_in_metres_gives_the_kilometre_result():
    import geopandas as gpd

    df = _toy(seed=4)
    gdf = gpd.GeoDataFrame(
        df.drop(columns=["x", "y"]),
        geometry=gpd.points_from_xy(df.x * 1000 + 700_000, df.y * 1000 + 6_500_000),
        crs=2154,
    )
    r = np.linspace(0, 10, 21)
    a = cm.k_density(gdf, "A", r=r, simulations=0).curve()["observed"]
    b = cm.k_density(df, "A", r=r, simulations=0).curve()["observed"]
    np.testing.assert_allclose(a, b, rtol=1e-9)


@pytest.mark.parametrize("weighted", [False, True])
def test_m_matches_brute_force(weighted):
    df = _toy(seed=7)
    r = np.array([0.5, 1, 2, 3.5, 5, 8, 12.0])
    xy = df[["x", "y"]].to_numpy()
    w = df.w.to_numpy() if weighted else np.ones(len(df))
    for neighbor in (None, "B"):
        res = cm.m_function(df, "A", neighbor=neighbor, r=r, weighted=weighted,
                            columns={"weight": "w"}, simulations=0)  # fmt: skip
        m, indiv = ref.m_values(xy, df.sector.to_numpy(), w, r, "A", neighbor)
        np.testing.assert_allclose(res.curve()["observed"], m, rtol=1e-12)
        np.testing.assert_allclose(res.individual["A"].to_numpy(), indiv, rtol=1e-12)


def test_m_of_a_half_lattice_by_hand():
    # 10 x 10 lattice, A = left half. Point (0, 0) of A at r = 1 has neighbours (1, 0) and
    # (0, 1), both A: local ratio 1; its global ratio is 49/99.
    g = np.arange(10.0)
    xx, yy = np.meshgrid(g, g)
    df = pd.DataFrame(
        {"x": xx.ravel(), "y": yy.ravel(), "sector": np.where(xx.ravel() < 5, "A", "B")}
    )
    res = cm.m_function(df, "A", r=[1.0], simulations=0)
    ind = res.individual["A"]
    corner = ind.index[(df.loc[ind.index, "x"] == 0) & (df.loc[ind.index, "y"] == 0)][0]
    assert ind.loc[corner].iloc[0] == pytest.approx(1 / (49 / 99))
    # A point on the border x = 4 has 3 A neighbours and 1 B neighbour (interior rows)
    border = ind.index[(df.loc[ind.index, "x"] == 4) & (df.loc[ind.index, "y"] == 5)][0]
    assert ind.loc[border].iloc[0] == pytest.approx(0.75 / (49 / 99))


def test_m_surface_matches_nadaraya_watson():
    df = _toy(seed=8)
    res = cm.m_function(df, "A", r=[2.0, 5.0], simulations=0)
    surf = res.surface(5.0, resolution=16)
    vals = res.individual["A"][5.0].to_numpy()
    ok = np.isfinite(vals)
    px = df.loc[res.individual["A"].index, "x"].to_numpy()[ok]
    py = df.loc[res.individual["A"].index, "y"].to_numpy()[ok]
    n = ok.sum()
    sx, sy = np.std(px, ddof=1) * n ** (-1 / 6), np.std(py, ddof=1) * n ** (-1 / 6)
    assert surf.bandwidth == pytest.approx((sx, sy))
    expected = ref.nadaraya_watson(px, py, vals[ok], surf.x, surf.y, sx, sy)
    np.testing.assert_allclose(surf.values, expected, rtol=1e-10)
    assert surf.values.shape == (16, 16)
    assert surf.bounds == pytest.approx((px.min(), py.min(), px.max(), py.max()))
    assert surf.r == 5.0


# ----------------------------------------------------------------------------- behaviour


def test_results_do_not_depend_on_thread_count():
    df = _toy(seed=9)
    r = np.linspace(0, 10, 21)
    out = []
    old = numba.get_num_threads()
    for n_jobs in (1, numba.config.NUMBA_NUM_THREADS):
        kd = cm.k_density(df, "A", r=r, simulations=20, random_state=3, n_jobs=n_jobs)
        m = cm.m_function(df, "A", r=r[1:], simulations=20, random_state=3, n_jobs=n_jobs)
        out.append((kd.table, m.table))
    assert numba.get_num_threads() == old
    pd.testing.assert_frame_equal(out[0][0], out[1][0], check_exact=True)
    pd.testing.assert_frame_equal(out[0][1], out[1][1], check_exact=True)
    # the block-parallel grid path too
    rng = np.random.default_rng(1)
    x, y = rng.uniform(0, 50, 2500), rng.uniform(0, 50, 2500)
    z, w = np.zeros(2500), np.ones(2500)
    res = []
    for t in (1, numba.config.NUMBA_NUM_THREADS):
        numba.set_num_threads(t)
        res.append(K.kd_compute(x, y, z, w, x, y, z, w, True, False, False, r, True, 1.0, 0, 0.0,
                                K._n_blocks(2500), True))  # fmt: skip
    numba.set_num_threads(old)
    for a, b in zip(res[0], res[1]):
        np.testing.assert_array_equal(a, b)


def test_many_sectors_in_one_call_give_the_single_sector_curves():
    df = _toy(seed=10)
    r = np.linspace(0, 10, 21)
    both = cm.k_density(df, None, r=r, min_count=30, simulations=0)
    assert list(both.summary.index) == ["A", "B", "o"]
    assert set(both.table["sector"]) == {"A", "B", "o"}
    for s in ("A", "B"):
        one = cm.k_density(df, s, r=r, simulations=0)
        np.testing.assert_array_equal(both.curve(s)["observed"], one.curve()["observed"])
    with pytest.raises(ValueError, match="pass sector="):
        both.curve()


def test_planted_group_is_localised_and_indices_follow_the_bands():
    rng = np.random.default_rng(11)
    field = pd.DataFrame({"x": rng.uniform(0, 100, 400), "y": rng.uniform(0, 100, 400)})
    field["sector"] = np.where(np.arange(400) < 40, "N", "o")  # N: 40 random sites
    grp = pd.DataFrame({"x": rng.normal(30, 1.5, 30), "y": rng.normal(60, 1.5, 30), "sector": "A"})
    df = pd.concat([field, grp], ignore_index=True)
    r = np.linspace(0, 30, 61)
    res = cm.k_density(df, ["A", "N"], r=r, simulations=99, random_state=0)
    a = res.curve("A")
    assert res.summary.loc["A", "localised"]
    assert res.localised_ranges("A")[0][0] == 0.0
    gamma = np.clip(a["observed"] - a["global_hi"], 0, None).sum()
    assert res.summary.loc["A", "gamma"] == pytest.approx(gamma)
    assert res.summary.loc["A", "psi"] == 0.0
    assert res.summary.loc["N", "gamma"] < res.summary.loc["A", "gamma"] / 100
    # the global band is wider than the pointwise band on average over r (not at every r:
    # dbmss' GlobalEnvelope interpolates between two rounds of dropped simulations, which
    # can put it inside the pointwise quantiles at some distances)
    width_global = (a["global_hi"] - a["global_lo"]).mean()
    assert width_global > (a["local_hi"] - a["local_lo"]).mean()
    assert res.simulations["A"].shape == (99, 61)


def test_dropped_rows_are_counted_and_reported():
    df = _toy(seed=12)
    df.loc[[0, 1], "x"] = np.nan
    df.loc[2, "w"] = -1
    df.loc[3, "sector"] = None
    with pytest.warns(ClustermapWarning, match="4 of 315 establishment"):
        res = cm.k_density(
            df, "A", r=[0, 5.0], weighted=True, columns={"weight": "w"}, simulations=0
        )
    assert res.parameters["dropped"] == {
        "missing_coordinates": 2, "missing_type": 1, "invalid_weight": 1,
    }  # fmt: skip


def test_clear_errors():
    import geopandas as gpd

    df = _toy()
    with pytest.raises(SchemaError, match="'naf'"):
        cm.k_density(df, "A", type="naf")
    with pytest.raises(SchemaError, match="'lon'"):
        cm.m_function(df, "A", x="lon")
    with pytest.raises(ValueError, match="not found"):
        cm.k_density(df, "ZZ")
    with pytest.raises(ValueError, match="'method'"):
        cm.k_density(df, "A", method="approx")
    with pytest.raises(ValueError, match="strictly increasing"):
        cm.k_density(df, "A", r=[0, 2, 1])
    with pytest.raises(SchemaError, match="employees"):
        cm.k_density(df, "A", weighted=True)
    gdf = gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df.x, df.y))
    with pytest.raises(CRSError, match="no CRS"):
        cm.k_density(gdf, "A")
    with pytest.raises(ValueError, match="single sector"):
        cm.k_density(df, ["A", "B"], neighbor="o")


def test_plot_returns_axes_with_the_observed_curve():
    import matplotlib

    matplotlib.use("Agg")
    df = _toy(seed=13)
    res = cm.k_density(df, "A", r=np.linspace(0, 10, 11), simulations=19, random_state=0)
    ax = res.plot()
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    np.testing.assert_allclose(lines["observed"].get_ydata(), res.curve()["observed"])
    m = cm.m_function(df, "A", r=[1.0, 2, 4], simulations=19, random_state=0)
    ax2 = m.plot()
    assert ax2.get_ylabel() == "M(r)"


def test_registry_like_object_is_accepted():
    import geopandas as gpd

    df = _toy(seed=14)

    class Reg:
        establishments = gpd.GeoDataFrame(
            df.rename(columns={"w": "employees"}),
            geometry=gpd.points_from_xy(df.x * 1000, df.y * 1000), crs=2154,
        )  # fmt: skip

    r = np.linspace(0, 10, 11)
    a = cm.k_density(Reg(), "A", r=r, weighted=True, simulations=0).curve()["observed"]
    b = cm.k_density(df, "A", r=r, weighted=True, columns={"weight": "w"}, simulations=0).curve()[
        "observed"
    ]
    np.testing.assert_allclose(a, b, rtol=1e-9)


# ----------------------------------------------------------------------------- national data


@pytest.fixture(scope="module")
def national():
    path = shared_file("synthetic_france", "registry.csv.gz")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = cm.read_registry(path)
    key = pd.read_csv(shared_file("synthetic_france", "answer_key.csv"), dtype=str)
    return reg.establishments[["sector", "geometry"]].copy(), key


@pytest.mark.shared
@pytest.mark.slow
def test_national_planted_sectors_localised_null_sectors_not_at_short_range(national):
    # Great-circle distances over ~540 000 sites (lon/lat). For speed each sector is capped at
    # 1 000 establishments (random subsample; the rest stay as sites), r = 0..30 km, 49
    # simulations. Planted clusters must be localised from r = 0. Null sectors (beta = 1, no
    # planted cluster) must not look like clusters: at most 10 % are localised at the
    # shortest distances (band crossed from r = 0). Measured: 8/8 planted, 1/40 null. Over the
    # whole 0-30 km range 13/40 null sectors cross the band somewhere: they follow population
    # (beta = 1) while all sites also include beta < 1 sectors, a real difference from the
    # random-location null; with random labels the method flags 5 % (next test).
    est, key = national
    planted = key.loc[key.kind == "planted", "naf"].tolist()
    nulls = key.loc[key.kind == "null_sector", "naf"].tolist()
    rng = np.random.default_rng(0)
    lab = est["sector"].to_numpy().astype(object)
    for s in planted + nulls:
        idx = np.flatnonzero(lab == s)
        if len(idx) > 1000:
            lab[rng.choice(idx, len(idx) - 1000, replace=False)] = "_other"
    est = est.assign(sector=lab)
    res = cm.k_density(est, planted + nulls, r=np.arange(0, 31.0), simulations=49, random_state=7)
    sm = res.summary
    assert res.parameters["spherical"]
    for s in planted:
        assert sm.loc[s, "localised"], s
        assert sm.loc[s, "localised_ranges"][0][0] == 0.0, s
    short = [bool(rr) and rr[0][0] == 0.0 for rr in sm.loc[nulls, "localised_ranges"]]
    assert np.mean(short) <= 0.10
    assert sm.loc[planted, "gamma"].min() > sm.loc[nulls, "gamma"].median()


@pytest.mark.shared
@pytest.mark.slow
def test_national_random_labels_flagged_at_the_nominal_rate(national):
    # True null: 20 fake sectors of 400 random sites each; the global band (alpha = 0.05)
    # flags about 5 % of them (measured 2/40 with 40 sectors); assert <= 10 %.
    est, _ = national
    rng = np.random.default_rng(1)
    lab = np.full(len(est), "_o", dtype=object)
    idx = rng.permutation(len(est))[: 20 * 400]
    names = [f"F{k:02d}" for k in range(20)]
    for k, name in enumerate(names):
        lab[idx[k * 400 : (k + 1) * 400]] = name
    res = cm.k_density(est.assign(sector=lab), names, r=np.arange(0, 31.0), simulations=49,
                       random_state=7)  # fmt: skip
    assert res.summary["localised"].mean() <= 0.10


def test_kd_default_r_and_m_default_r():
    df = _toy(seed=15)
    kd = cm.k_density(df, "A", simulations=0)
    diag = math.hypot(np.ptp(df.x), np.ptp(df.y))
    r = kd.curve().index.to_numpy()
    assert len(r) == 512 and r[-1] == pytest.approx(diag / 3)
    m = cm.m_function(df, "A", simulations=0)
    rm = m.curve().index.to_numpy()
    assert len(rm) == 63  # dbmss: c(0, 1:20, seq(22, 40, 2), ...) = 63 values
    assert rm[-1] == pytest.approx(diag / 2)


# ----------------------------------------------------------------------------- kernel pieces


def test_small_path_bandwidth_quartiles_with_ties_match_bw_nrd0():
    # lattice distances repeat many times, so the quartile bins hold ties
    g = np.arange(12.0)
    xx, yy = np.meshgrid(g, g)
    x, y = xx.ravel(), yy.ravel()
    z, w = np.zeros(x.size), np.ones(x.size)
    for rmax in (3.0, 8.0, 30.0):
        r = np.linspace(0, rmax, 13)
        out = K.kd_small(x, y, z, w, x, y, z, w, True, False, False, r, True, 1.0, 1, 0.0)
        d, _, _ = ref.pair_distances(np.c_[x, y])
        sel = d[d <= 2 * rmax]
        assert out[3][K.NBW] == sel.size
        assert out[3][K.BW] == pytest.approx(ref.bw_nrd0(sel), rel=1e-12)


def test_m_spans_visit_the_disc_in_the_order_of_cell_ranges():
    # _m_spans skips the cells the disc of radius cutoff cannot reach; what it visits is a
    # subsequence of _cell_ranges' points (same order) holding every point within the cutoff
    rng = np.random.default_rng(4)
    cutoff = 7.0
    for spherical, n in ((False, 3000), (True, 2000)):
        if spherical:
            lon, lat = np.radians(rng.uniform(2, 6, n)), np.radians(rng.uniform(44, 47, n))
            R = K.EARTH_RADIUS_KM
            x, y, z = R * np.cos(lat) * np.cos(lon), R * np.cos(lat) * np.sin(lon), R * np.sin(lat)
            radius = 2 * R * np.sin(cutoff / (2 * R))  # chord
        else:
            x, y, z = rng.uniform(0, 80, n), rng.uniform(0, 50, n), np.zeros(n)
            radius = cutoff
        order, ukeys, starts, params = K.build_grid(x, y, z, cutoff, spherical)
        sx, sy, sz = x[order], y[order], z[order]
        a = np.empty((K.MAX_CELLS, 3), np.int64)
        b = np.empty((K.M_RUNS, 3), np.int64)
        fewer = 0
        for i in range(0, n, 37):
            ka = K._cell_ranges(sx[i], sy[i], sz[i], ukeys, starts, params, a, False)
            kb = K._m_spans(sx[i], sy[i], sz[i], radius, ukeys, starts, params, b)
            cells = np.concatenate([np.arange(a[c, 0], a[c, 1]) for c in range(ka)])
            spans = np.concatenate([np.arange(b[c, 0], b[c, 1]) for c in range(kb)])
            pos = np.searchsorted(cells, spans)  # cells ascend (grid order)
            np.testing.assert_array_equal(cells[pos], spans)
            d = np.sqrt((sx - sx[i]) ** 2 + (sy - sy[i]) ** 2 + (sz - sz[i]) ** 2)
            assert np.isin(np.flatnonzero(d <= radius), spans).all()
            assert kb <= ka
            fewer += spans.size < cells.size
        if not spherical:  # the corners of the 7 x 7 cells are skipped
            assert fewer > 0


@pytest.mark.parametrize("method", ["binned", "exact"])
def test_finishing_many_simulations_at_once_equals_one_by_one(method):
    # reference: dist._kd_finish (R density()'s FFT half, or the exact normalisation) per row
    df = _toy(seed=12)
    xyz = df.x.to_numpy(), df.y.to_numpy(), np.zeros(len(df))
    w = df.w.to_numpy()
    n1 = int((df.sector == "A").sum())
    rng = np.random.default_rng(2)
    draws = np.stack([rng.choice(len(df), n1, replace=False) for _ in range(12)])
    r = np.linspace(0, 10, 41)
    m = 0 if method == "exact" else 1
    w1 = w[:n1].copy()
    out = dist._kd_small_many(xyz, w1, w[:0].copy(), draws, True, True, False, r, True, 1.0, m,
                              0.0)  # fmt: skip
    out[3][5, K.OK] = 0.0  # one simulation without a bandwidth
    w_total = dist._w_total(True, True, w1, w1)
    sims, bws = dist._kd_finish_many(*out, r, w_total, method)
    for k in range(len(draws)):
        kd, h, _ = dist._kd_finish(*(a[k] for a in out), r, w_total, method)
        np.testing.assert_array_equal(sims[k], kd)
        np.testing.assert_array_equal(bws[k], h)
    assert np.isnan(sims[5]).all() and np.isnan(bws[5])


@pytest.mark.parametrize("n", [2, 50, 500])
def test_diameter_equals_brute_force(n):
    # convex-hull shortcut above 64 points, all pairs below: both equal the brute-force maximum
    from clustermap.stats import _distance_kernels as K

    rng = np.random.default_rng(n)
    x, y = rng.normal(0, 10, n), rng.uniform(-5, 5, n)
    z = np.zeros(n)
    brute = np.sqrt((x[:, None] - x) ** 2 + (y[:, None] - y) ** 2).max()
    assert K.diameter(x, y, z, False) == pytest.approx(brute, rel=1e-12)
    a, b = slice(0, n // 2 or 1), slice(n // 2, n)
    cross = np.sqrt((x[a, None] - x[b]) ** 2 + (y[a, None] - y[b]) ** 2).max()
    assert K.cross_diameter(x[a], y[a], z[a], x[b], y[b], z[b], False) == pytest.approx(
        cross, rel=1e-12
    )


def test_block_spread_is_a_permutation():
    for nb in (1, 2, 3, 64, 7919, 2 * 7919, 7920 * 7921, 1000):
        got = np.array([K._spread(b, nb) for b in range(min(nb, 20000))])
        assert np.unique(got).size == got.size and got.max() < nb
    assert sorted(K._spread(b, 7919 * 3) for b in range(7919 * 3)) == list(range(7919 * 3))
