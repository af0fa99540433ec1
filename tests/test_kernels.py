"""numba kernels against the slow exact reference (tests/reference.py), on small cases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import reference as ref
from shapely.geometry import box

import clustermap as cm
from clustermap.errors import ClustermapWarning
from clustermap.graph import graph_arrays
from clustermap.stats import _kernels as K

ROOT = Path(__file__).resolve().parents[1]


def _knn_graph(n, k, seed=0):
    rng = np.random.default_rng(seed)
    pts = gpd.GeoSeries.from_xy(rng.uniform(0, 10, n), rng.uniform(0, 10, n))
    return cm.build_graph(pts, method="knn", k=k)


def _lattice_graph(side, transform="b", island=False):
    cells = [box(x, y, x + 1, y + 1) for y in range(side) for x in range(side)]
    if island:
        cells.append(box(20, 20, 21, 21))
    units = gpd.GeoSeries(cells)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClustermapWarning)
        return cm.build_graph(units, method="queen", transform=transform)


def _counts(res, P):
    """Recover #(sim >= obs) and #(sim <= obs) from a LocalResult."""
    ge = np.rint(res.p_greater.to_numpy() * (P + 1) - 1)
    le = np.rint(res.p_lesser.to_numpy() * (P + 1) - 1)
    return ge, le


def _counts_n(res):
    """Tail counts with each cell's own number of draws."""
    n = res.n_permutations.to_numpy()
    ge = np.rint(res.p_greater.to_numpy() * (n + 1) - 1)
    le = np.rint(res.p_lesser.to_numpy() * (n + 1) - 1)
    return ge, le


def _call(stat, y, g, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClustermapWarning)
        if stat == "moran":
            return cm.local_moran(y, g, **kw)
        if stat == "gstar":
            return cm.local_getis_ord(y, g, star=True, **kw)
        if stat == "g":
            return cm.local_getis_ord(y, g, star=False, **kw)
        return cm.local_geary(y, g, **kw)


def test_stream_matches_pure_python_reference():
    for seed, i, n, k in [(0, 0, 10, 3), (12345, 7, 50, 8), (2**40 + 3, 49, 50, 49), (5, 1, 2, 1)]:
        fast = K.unit_draws(np.uint64(seed), i, n, k, 0, 30)
        slow = [ref.draw_ids(seed, i, p, n, k) for p in range(30)]
        np.testing.assert_array_equal(fast, np.array(slow))
    # draws are keyed by draw number: a later window equals the tail of a longer one
    np.testing.assert_array_equal(
        K.unit_draws(np.uint64(9), 3, 40, 5, 10, 20),
        K.unit_draws(np.uint64(9), 3, 40, 5, 0, 20)[10:],
    )


def test_draws_distinct_exclude_self_and_uniform():
    n, i, k, P = 11, 3, 4, 20000
    d = K.unit_draws(np.uint64(77), i, n, k, 0, P)
    assert (d != i).all()
    assert all(len(set(row)) == k for row in d[:500])
    freq = np.bincount(d.ravel(), minlength=n)
    expected = P * k / (n - 1)  # 8000, binomial SD about 80
    assert freq[i] == 0
    others = np.delete(freq, i)
    assert np.abs(others - expected).max() < 5 * np.sqrt(expected)


CASES = {
    "knn_counts": lambda: (_knn_graph(25, 3), "poisson"),
    "knn_continuous": lambda: (_knn_graph(20, 4, seed=2), "normal"),
    "queen_b_island": lambda: (_lattice_graph(4, "b", island=True), "poisson"),
    "queen_r": lambda: (_lattice_graph(4, "r"), "poisson"),
    # units with up to 8 neighbours take a one-pass loop of their own, the others the
    # general one: both in one call (1 to 11 neighbours), and each with unequal weights
    "band_1_to_11": lambda: (_band_graph(40, 2.6), "normal"),
    "band_counts": lambda: (_band_graph(40, 2.6), "poisson"),
    "kernel_k6": lambda: (_kernel_graph(20, 6), "normal"),
    "kernel_k10": lambda: (_kernel_graph(24, 10), "normal"),
}


def _band_graph(n, threshold, seed=6):
    pts = gpd.GeoSeries.from_xy(*np.random.default_rng(seed).uniform(0, 10, (2, n)))
    return cm.build_graph(pts, method="distance", threshold=threshold)


def _kernel_graph(n, k, seed=6):
    pts = gpd.GeoSeries.from_xy(*np.random.default_rng(seed).uniform(0, 10, (2, n)))
    return cm.build_graph(pts, method="kernel", k=k)


def _data(kind, n, seed=3):
    rng = np.random.default_rng(seed)
    if kind == "poisson":
        y = np.column_stack([rng.poisson(0.7, n), rng.poisson(3, n), np.full(n, 2)])
    else:
        y = np.column_stack([rng.gamma(2.0, size=n), rng.lognormal(size=n)])
    return y.astype(float)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("stat", ["moran", "gstar", "g", "geary"])
def test_counts_equal_reference(case, stat):
    g, kind = CASES[case]()
    n = g.n
    Y = _data(kind, n)
    P = 40
    seed = 2024
    res = _call(stat, pd.DataFrame(Y, index=g.unique_ids), g, permutations=P, random_state=seed)
    ge, le = _counts(res, P)
    W = g.sparse.toarray()
    for s in range(Y.shape[1]):
        y = Y[:, s]
        rge, rle = ref.local_counts(
            stat, y, W, lambda i, k: [ref.draw_ids(seed, i, p, n, k) for p in range(P)]
        )
        if np.ptp(y) == 0:  # constant sector: NaN, labelled
            assert np.isnan(ge[:, s]).all()
            assert (res.label.iloc[:, s].isin(["constant", "isolate"])).all()
            continue
        iso = rge < 0
        assert np.isnan(ge[iso, s]).all()
        np.testing.assert_array_equal(ge[~iso, s], rge[~iso])
        np.testing.assert_array_equal(le[~iso, s], rle[~iso])


@pytest.mark.parametrize("stat", ["moran", "gstar", "geary"])
def test_table_mode_counts_equal_reference(stat):
    from esda.crand import vec_permutations

    g = _knn_graph(30, 4, seed=5)
    Y = _data("poisson", 30)[:, :2]
    P = 50
    res = _call(
        stat,
        pd.DataFrame(Y, index=g.unique_ids),
        g,
        permutations=P,
        random_state=11,
        permutation_method="table",
    )
    table = vec_permutations(4, 30, P, 11)
    ge, le = _counts(res, P)
    W = g.sparse.toarray()
    for s in range(2):
        rge, rle = ref.local_counts(
            stat, Y[:, s], W, lambda i, k: [ref.table_ids(table, i, p, k) for p in range(P)]
        )
        np.testing.assert_array_equal(ge[:, s], rge)
        np.testing.assert_array_equal(le[:, s], rle)


def test_one_and_two_units():
    one = gpd.GeoSeries.from_xy([0.0], [0.0])
    with pytest.warns(ClustermapWarning):
        g1 = cm.build_graph(one, method="distance", threshold=1.0)
    with pytest.warns(ClustermapWarning, match="island"):
        r1 = cm.local_moran(pd.Series([3.0]), g1, permutations=9, random_state=0)
    assert r1.label.iloc[0, 0] == "isolate"
    assert np.isnan(r1.p_value.iloc[0, 0])
    two = gpd.GeoSeries.from_xy([0.0, 1.0], [0.0, 0.0])
    g2 = cm.build_graph(two, method="knn", k=1)
    r2 = cm.local_moran(pd.Series([1.0, 5.0]), g2, permutations=9, random_state=0)
    # the only possible draw is the actual neighbour: every draw ties, p = 1
    np.testing.assert_array_equal(r2.p_greater.to_numpy().ravel(), [1.0, 1.0])
    np.testing.assert_array_equal(r2.p_value.to_numpy().ravel(), [1.0, 1.0])
    # z = (-1, 1), each lag is the other z: I_i = (n - 1) z_i lag_i / sum z^2 = -1 / 2
    assert r2.statistic.iloc[:, 0].tolist() == pytest.approx([-0.5, -0.5])


def test_ties_counted_on_both_sides_for_sparse_counts():
    """Zero-inflated counts: a zero unit among zero neighbours is not significant."""
    g = _knn_graph(60, 4, seed=8)
    y = np.zeros(60)
    y[:6] = [1, 2, 1, 3, 1, 1]
    res = cm.local_moran(pd.Series(y, index=g.unique_ids), g, permutations=199, random_state=3)
    W = g.sparse.toarray()
    nbr_sum = W @ y
    quiet = (y == 0) & (nbr_sum == 0)
    assert quiet.sum() > 10
    # many draws also give an all-zero neighbourhood: tied, so both tails are large
    assert (res.p_value.to_numpy()[quiet, 0] > 0.05).all()


def test_early_stop_keeps_decisions_and_uses_fewer_draws():
    g = _knn_graph(200, 6, seed=9)
    rng = np.random.default_rng(1)
    Y = pd.DataFrame(rng.poisson(1.0, size=(200, 5)).astype(float), index=g.unique_ids)
    Y[0] += 3 * (np.arange(200) < 30)
    full = cm.local_moran(Y, g, permutations=999, random_state=5)
    fast = cm.local_moran(Y, g, permutations=999, random_state=5, early_stop=0.1)
    for a in (0.01, 0.05, 0.1):
        pd.testing.assert_frame_equal(full.p_value <= a, fast.p_value <= a)
    used = fast.n_permutations.to_numpy()
    assert used.mean() < 0.8 * 999
    # a stopped cell has at least h = 50 draws in its smaller tail (2 * 51 / 1000 > 0.1)
    ge, le = _counts_n(fast)
    stopped = used < 999
    assert stopped.any()
    assert (np.minimum(ge, le)[stopped] >= 50).all()
    kept = ~stopped
    np.testing.assert_array_equal(full.p_value.to_numpy()[kept], fast.p_value.to_numpy()[kept])


@pytest.mark.parametrize("alternative", ["greater", "lesser", "two-sided"])
def test_early_stop_counts_equal_reference_with_negative_and_zero_z(alternative):
    # The kernels count the raw neighbour sums and orient the counts once per unit (swap
    # them where z_i < 0; every draw on both sides where z_i = 0), also inside the early
    # stop test: check counts and stopping draws against the exact reference, with units
    # whose value is exactly the mean (integer mean) and one-sided tails.
    from clustermap.stats._permutation import _CHECK, _stop_count

    n, P, alpha = 40, 160, 0.3
    g = _knn_graph(n, 4, seed=12)
    rng = np.random.default_rng(4)
    Y = rng.poisson([1.0, 4.0, 2.0], size=(n, 3)).astype(float)
    Y[:8, 1] += 6  # a hot spot, so that some cells never stop
    Y[0] += (-Y.sum(axis=0)) % n  # integer means: some units sit exactly at the mean
    mean = Y.mean(axis=0)
    assert np.equal(Y, mean).sum(axis=0).min() >= 2 and np.less(Y, mean).any(axis=0).all()
    seed = 31
    res = _call(
        "moran",
        pd.DataFrame(Y, index=g.unique_ids),
        g,
        permutations=P,
        random_state=seed,
        alternative=alternative,
        early_stop=alpha,
    )
    ge, le = _counts_n(res)
    used = res.n_permutations.to_numpy()
    h = _stop_count(alpha, P, alternative)
    W = g.sparse.toarray()
    stopped = 0
    for i in range(n):
        js, _ = ref.neighbours(W, i)
        draws = [ref.draw_ids(seed, i, p, n, len(js)) for p in range(P)]
        obs = [ref.local_statistic("moran", Y[:, s], W, i, js) for s in range(3)]
        cg, cl = np.zeros(3, dtype=int), np.zeros(3, dtype=int)
        done = P
        for p, ids in enumerate(draws):
            for s in range(3):
                sim = ref.local_statistic("moran", Y[:, s], W, i, ids)
                cg[s] += sim >= obs[s]
                cl[s] += sim <= obs[s]
            tail = {"greater": cg, "lesser": cl}.get(alternative, np.minimum(cg, cl))
            if (p + 1) % _CHECK == 0 and (tail >= h).all():  # every sector of the pass
                done = p + 1
                break
        stopped += done < P
        np.testing.assert_array_equal(used[i], done, err_msg=f"unit {i}")
        np.testing.assert_array_equal(ge[i], cg, err_msg=f"unit {i}")
        np.testing.assert_array_equal(le[i], cl, err_msg=f"unit {i}")
    assert 0 < stopped < n


def test_adaptive_continues_the_same_stream():
    g = _knn_graph(150, 5, seed=10)
    rng = np.random.default_rng(2)
    y = rng.normal(size=150)
    y[:20] += 2.0
    Y = pd.DataFrame({"a": y, "b": rng.normal(size=150)}, index=g.unique_ids)
    ad = cm.local_moran(Y, g, permutations=199, random_state=8, adaptive=True, max_permutations=999)
    full = cm.local_moran(Y, g, permutations=999, random_state=8)
    n_used = ad.n_permutations.to_numpy()
    assert n_used.max() == 999 and n_used.min() < 199
    ran_all = n_used == 999
    assert ran_all.sum() >= 3
    # cells that ran every draw have exactly the counts of a plain 999-draw run
    np.testing.assert_array_equal(
        ad.p_greater.to_numpy()[ran_all], full.p_greater.to_numpy()[ran_all]
    )
    np.testing.assert_array_equal(
        ad.p_lesser.to_numpy()[ran_all], full.p_lesser.to_numpy()[ran_all]
    )
    # small p-values now have resolution 1 / 1000
    assert np.nanmin(ad.p_value.to_numpy()) < 0.005
    # the others stopped (Besag-Clifford) once their smaller tail held h draws, with
    # h = 5 the count at which 199 draws give a two-sided p above 0.05 (2 * 6 / 200)
    ge, le = _counts_n(ad)
    assert (np.minimum(ge, le)[~ran_all] >= 5).all()
    # and cells stopped within the first 199 draws agree with the plain run's decision
    early = n_used < 199
    assert (full.p_value.to_numpy()[early] > 0.01).all()


def test_thread_count_does_not_change_results_in_process():
    import numba

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs at least 2 numba threads")
    g = _knn_graph(300, 6, seed=12)
    rng = np.random.default_rng(3)
    Y = pd.DataFrame(rng.poisson(2.0, size=(300, 4)).astype(float), index=g.unique_ids)
    a = cm.local_moran(Y, g, permutations=199, random_state=21, n_jobs=1)
    b = cm.local_moran(Y, g, permutations=199, random_state=21, n_jobs=2)
    pd.testing.assert_frame_equal(a.p_value, b.p_value)
    c = cm.local_getis_ord(Y, g, permutations=199, random_state=21, n_jobs=1, adaptive=True)
    d = cm.local_getis_ord(Y, g, permutations=199, random_state=21, n_jobs=2, adaptive=True)
    pd.testing.assert_frame_equal(c.p_value, d.p_value)


_SCRIPT = """
import json, numpy as np, pandas as pd, geopandas as gpd, clustermap as cm
rng = np.random.default_rng(0)
pts = gpd.GeoSeries.from_xy(rng.uniform(0, 10, 400), rng.uniform(0, 10, 400))
g = cm.build_graph(pts, method="knn", k=5)
Y = pd.DataFrame(rng.poisson(1.5, size=(400, 3)).astype(float), index=g.unique_ids)
r = cm.local_moran(Y, g, permutations=299, random_state=4)
s = cm.global_moran(Y, g, permutations=99, random_state=4)
print(json.dumps([r.p_value.to_numpy().tolist(), s.table["p_sim"].tolist()]))
"""


def test_thread_count_does_not_change_results_subprocess():
    outs = []
    for threads in ("1", "2"):
        env = dict(os.environ, NUMBA_NUM_THREADS=threads)
        env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
        out = subprocess.run(
            [sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True, check=True
        )
        outs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    assert outs[0] == outs[1]


def test_global_moran_permutation_counts_equal_reference():
    g = _knn_graph(30, 3, seed=13)
    y = _data("poisson", 30)[:, 1]
    P = 30
    res = cm.global_moran(pd.Series(y, index=g.unique_ids), g, permutations=P, random_state=6)
    W = g.sparse.toarray()
    c = y - y.mean()
    obs = c @ W @ c
    ge = le = 0
    for p in range(P):
        perm = K.unit_permutation(np.uint64(6), p, 30)
        cp = c[perm]
        sim = cp @ W @ cp
        ge += sim >= obs - 1e-9 * abs(obs)
        le += sim <= obs + 1e-9 * abs(obs)
    assert res.table["p_greater"].iloc[0] == (ge + 1) / (P + 1)
    assert res.table["p_lesser"].iloc[0] == (le + 1) / (P + 1)


def test_local_moran_values_equal_loop_reference():
    g = _knn_graph(25, 3, seed=14)
    y = _data("normal", 25)[:, 0]
    res = cm.local_moran(pd.Series(y, index=g.unique_ids), g, permutations=0)
    np.testing.assert_allclose(
        res.statistic.iloc[:, 0].to_numpy(),
        ref.local_moran_values(y, g.sparse.toarray()),
        atol=1e-12,
    )


def test_tiles_blocks_and_storage_groups_do_not_change_counts(monkeypatch):
    # one kernel call serves four storage groups (uint8, uint16, float32, float64 values)
    # with the same draws; tiles, padding and block size must not change any count
    from clustermap.stats import _permutation as engine

    n = 120
    g = cm.build_graph(
        gpd.GeoSeries.from_xy(*np.random.default_rng(4).uniform(0, 10, (2, n))),
        method="knn",
        k=5,
        transform="r",
    )
    rng = np.random.default_rng(5)
    Y = np.column_stack(
        [
            rng.poisson(0.8, (n, 70)),
            rng.integers(300, 2000, (n, 3)),
            rng.integers(70_000, 90_000, (n, 3)),
            rng.lognormal(size=(n, 10)),
        ]
    ).astype(float)
    Y = pd.DataFrame(Y, index=g.unique_ids)
    store = engine._storage_dtypes("moran", Y.to_numpy(), graph_arrays(g))
    assert set(store[[0, 70, 73, 76]]) == {0, 1, 2, 3}
    kw = {"permutations": 99, "random_state": 8}
    whole = cm.local_moran(Y, g, **kw)
    alone = pd.concat([cm.local_moran(Y[[c]], g, **kw).p_value for c in Y.columns], axis=1)
    pd.testing.assert_frame_equal(whole.p_value, alone)
    monkeypatch.setattr(engine, "_TILE_BYTES", 1)  # tiles of one 64-byte line per row
    monkeypatch.setattr(engine, "_BLOCK_MIN", 7)
    monkeypatch.setattr(engine, "_BLOCK_MAX", 7)
    assert engine._tile_widths(n, [70, 3, 3, 10], [1, 2, 4, 8]) == ([35, 3, 3, 5], [0, 2, 3, 4])
    tiled = cm.local_moran(Y, g, **kw)
    pd.testing.assert_frame_equal(whole.p_value, tiled.p_value)
    pd.testing.assert_frame_equal(
        cm.local_getis_ord(Y, g, **kw).p_value,
        pd.concat([cm.local_getis_ord(Y[[c]], g, **kw).p_value for c in Y.columns], axis=1),
    )


def test_fast_draw_path_gives_the_sequential_loop_draws():
    # the kernels draw k <= 8 candidates at once and keep them when distinct; with a
    # duplicate they rerun the rejection loop: the ids must be the loop's, also for tiny n
    # (duplicates frequent) and for every position of the excluded unit; they come as an
    # 8-tuple, the padding row n past k
    rng = np.random.default_rng(11)
    for trial in range(4000):
        n = int(rng.integers(2, 12)) if trial % 2 else int(rng.integers(2, 10**6))
        k = int(rng.integers(1, min(n - 1, 8) + 1))
        i, p = int(rng.integers(0, n)), int(rng.integers(0, 5000))
        ukey = np.uint64(int(rng.integers(0, 2**63)))
        slow = np.zeros(k, dtype=np.int64)
        K._fill_draw_rng(slow, k, n, i, np.uint64(K._draw_state(ukey, p)))
        fast = K._draw8(k, n, i, ukey, p)
        assert fast == (*slow.tolist(), *[n] * (8 - k)), f"n={n} k={k} i={i}"


def _continuous_with_ties(n, seed):
    # non-integer values, one column with few distinct values (sums of neighbours tie
    # often, so the float32 gathers meet many cells too close to call)
    rng = np.random.default_rng(seed)
    return np.column_stack(
        [
            rng.choice([0.1, 0.25, 0.7], size=n),
            rng.lognormal(size=n),
            rng.gamma(0.3, size=n) * 1e-3,
            rng.lognormal(size=n) * 1e6,
        ]
    )


@pytest.mark.parametrize("graph", ["knn_r", "kernel"])
@pytest.mark.parametrize("stat", ["moran", "gstar", "g"])
def test_float32_gathers_give_float64_counts(monkeypatch, graph, stat):
    # float64 values gathered as float32 with an error bound (storage group A) must count
    # exactly as the float64 gathers, ties included, on equal and unequal row weights
    from clustermap.stats import _permutation as engine

    n = 60
    pts = gpd.GeoSeries.from_xy(*np.random.default_rng(6).uniform(0, 10, (2, n)))
    if graph == "knn_r":
        g = cm.build_graph(pts, method="knn", k=6, transform="r")
    else:
        g = cm.build_graph(pts, method="kernel", k=6)
    Y = pd.DataFrame(_continuous_with_ties(n, 9), index=g.unique_ids)
    kw = {"permutations": 199, "random_state": 4}
    monkeypatch.setattr(engine, "_APPROX_MIN_BYTES", 0)
    monkeypatch.setattr(engine, "_QUANT_MAX_NEAR", -1.0)  # group Q off: group A tested
    store = engine._storage_dtypes(stat, Y.to_numpy(), graph_arrays(g))
    assert (store == engine._APPROX).all()
    approx = _call(stat, Y, g, **kw)
    real = engine._storage_dtypes
    monkeypatch.setattr(
        engine, "_storage_dtypes", lambda *a: np.where(real(*a) == engine._APPROX, 3, real(*a))
    )
    exact = _call(stat, Y, g, **kw)
    pd.testing.assert_frame_equal(approx.p_value, exact.p_value)
    ge, le = _counts(approx, 199)
    assert (ge + le > 200).any()  # ties did occur (both tails counted)


@pytest.mark.parametrize("into", ["float32", "quantised"])
@pytest.mark.parametrize("stat", ["moran", "gstar"])
def test_integer_columns_in_the_approximate_group_count_exactly(monkeypatch, stat, into):
    # With float64 values gathered as float32 (group A) or quantised (group Q) in the same
    # pass, integer columns whose sums stay exact there join that group (one group per
    # draw instead of two) and are compared exactly: counts must equal those of the
    # separate groups and of the exact reference, ties (frequent in sparse counts) on both
    # sides
    from clustermap.stats import _permutation as engine

    monkeypatch.setattr(engine, "_APPROX_MIN_BYTES", 0)
    n = 80
    rng = np.random.default_rng(13)
    columns = [
        rng.poisson(0.3, n),  # uint8, mostly zeros
        rng.poisson(5.0, n),  # uint8
        rng.integers(300, 2000, n),  # uint16
    ]
    if into == "float32":
        monkeypatch.setattr(engine, "_QUANT_MAX_NEAR", -1.0)  # group Q off: group A tested
        pts = gpd.GeoSeries.from_xy(*np.random.default_rng(7).uniform(0, 10, (2, n)))
        g = cm.build_graph(pts, method="knn", k=6, transform="r")
        columns += [rng.integers(70_000, 90_000, n), rng.lognormal(size=(n, 2))]
        group, codes, checked = engine._APPROX, [0, 0, 1, 2], (0, 3, 4)
    else:
        g = _knn_graph(n, 6, seed=7)
        columns += [rng.gamma(2.0, size=(n, 2))]
        group, codes, checked = engine._QUANT, [0, 0, 1], (0, 2, 3)
    Y = np.column_stack(columns).astype(float)
    ga = graph_arrays(g)
    store = engine._storage_dtypes(stat, Y, ga)
    assert store.tolist() == [*codes, group, group]
    merged, exact, _ = engine._merge_integer_columns(store, n, ga)
    assert (merged == group).all() and exact.tolist() == [True] * len(codes) + [False] * 2
    P, seed = 199, 5
    kw = {"permutations": P, "random_state": seed}
    frame = pd.DataFrame(Y, index=g.unique_ids)
    together = _call(stat, frame, g, **kw)
    monkeypatch.setattr(
        engine,
        "_merge_integer_columns",
        lambda st, n, ga: (st, np.zeros(st.size, bool), engine._TILE_BYTES),
    )
    apart = _call(stat, frame, g, **kw)
    pd.testing.assert_frame_equal(together.p_greater, apart.p_greater)
    pd.testing.assert_frame_equal(together.p_lesser, apart.p_lesser)
    ge, le = _counts(together, P)
    assert (ge[:, 0] + le[:, 0] > P).any()  # ties occurred
    W = g.sparse.toarray()
    for s in checked:
        rge, rle = ref.local_counts(
            stat, Y[:, s], W, lambda i, k: [ref.draw_ids(seed, i, p, n, k) for p in range(P)]
        )
        np.testing.assert_array_equal(ge[:, s], rge)
        np.testing.assert_array_equal(le[:, s], rle)


@pytest.mark.parametrize("group", ["float32", "quantised"])
def test_approximate_groups_equal_reference(monkeypatch, group):
    # cells of each approximate storage against the exact reference, for local Moran (the
    # orientation of each unit's counts follows the sign of z_i); quantised: the hard
    # columns, not those whose float64 sums tie or not by rounding (decimal values, a large
    # offset): the kernels count float64 sums, as test_quantised_values_give_float64_counts checks
    from clustermap.stats import _permutation as engine

    monkeypatch.setattr(engine, "_APPROX_MIN_BYTES", 0)
    if group == "float32":
        monkeypatch.setattr(engine, "_QUANT_MAX_NEAR", -1.0)  # group Q off: group A tested
        g = _knn_graph(20, 4, seed=2)
        Y, code, P, seed = _data("normal", g.n), engine._APPROX, 40, 2024
    else:
        monkeypatch.setattr(engine, "_QUANT_MAX_NEAR", 1.0)
        g = _knn_graph(24, 4, seed=5)
        Y = _hard_continuous(g.n, 3)[:, [1, 2, 3, 4, 6, 7]]
        code, P, seed = engine._QUANT, 40, 77
    assert (engine._storage_dtypes("moran", Y, graph_arrays(g)) == code).all()
    res = _call("moran", pd.DataFrame(Y, index=g.unique_ids), g, permutations=P, random_state=seed)
    ge, le = _counts(res, P)
    W = g.sparse.toarray()
    for s in range(Y.shape[1]):
        rge, rle = ref.local_counts(
            "moran", Y[:, s], W, lambda i, k: [ref.draw_ids(seed, i, p, g.n, k) for p in range(P)]
        )
        np.testing.assert_array_equal(ge[:, s], rge, err_msg=f"column {s}")
        np.testing.assert_array_equal(le[:, s], rle, err_msg=f"column {s}")


def _hard_continuous(n, seed):
    # values that stress the quantised storage's bound: few distinct values (float64 ties
    # in the sums), negative values, tiny and huge scales, a large offset with a small
    # spread (k m dominates the sum), one outlier dwarfing the rest
    rng = np.random.default_rng(seed)
    outlier = rng.lognormal(size=n)
    outlier[3] = 1e9
    return np.column_stack(
        [
            _continuous_with_ties(n, seed),
            rng.normal(size=n) - 0.5,
            1e6 + rng.gamma(2.0, size=n) * 1e-4,
            outlier,
            rng.gamma(2.0, 1.5, size=n),
        ]
    )


def _without_quantised(engine, monkeypatch):
    """Make the storage choice send group Q's columns to float64 (the plain gathers)."""
    real = engine._storage_dtypes
    monkeypatch.setattr(
        engine, "_storage_dtypes", lambda *a: np.where(real(*a) == engine._QUANT, 3, real(*a))
    )


@pytest.mark.parametrize("tiles", ["one pass", "tiled"])
@pytest.mark.parametrize("stat", ["moran", "gstar", "g"])
def test_quantised_values_give_float64_counts(monkeypatch, stat, tiles):
    # float64 values stored as uint16 codes (group Q, rows of equal weights) must count
    # exactly as the float64 gathers: every column forced into group Q, even those whose
    # draws are often too close to call (ties, an outlier), so the float64 check runs often
    from clustermap.stats import _permutation as engine

    n = 90
    g = _knn_graph(n, 6, seed=8)
    Y = pd.DataFrame(_hard_continuous(n, 21), index=g.unique_ids)
    if stat != "moran":  # Getis-Ord needs non-negative values
        Y[4] = Y[4].abs()
    monkeypatch.setattr(engine, "_APPROX_MIN_BYTES", 0)
    monkeypatch.setattr(engine, "_QUANT_MAX_NEAR", 1.0)
    if tiles == "tiled":  # several passes: draws stored and reused, tiles of 32 columns
        monkeypatch.setattr(engine, "_TILE_BYTES", 1)
    assert (engine._storage_dtypes(stat, Y.to_numpy(), graph_arrays(g)) == engine._QUANT).all()
    kw = {"permutations": 199, "random_state": 12}
    quant = _call(stat, Y, g, **kw)
    one_thread = _call(stat, Y, g, n_jobs=1, **kw)
    _without_quantised(engine, monkeypatch)
    exact = _call(stat, Y, g, **kw)
    pd.testing.assert_frame_equal(quant.p_greater, exact.p_greater)
    pd.testing.assert_frame_equal(quant.p_lesser, exact.p_lesser)
    pd.testing.assert_frame_equal(quant.p_greater, one_thread.p_greater)
    ge, le = _counts(quant, 199)
    assert (ge[:, 0] + le[:, 0] > 200).any()  # float64 ties occurred (both tails counted)


def test_storage_choice_between_quantised_and_float32(monkeypatch):
    # a planted answer: continuous columns on rows of equal weights are quantised, except
    # those whose draws are often too close to call (three distinct values, one outlier
    # 1e9 times the rest), which keep the float32 gathers; unequal weights never quantise
    from clustermap.stats import _permutation as engine

    monkeypatch.setattr(engine, "_APPROX_MIN_BYTES", 0)
    n = 400
    g = _knn_graph(n, 8, seed=1)
    Y = _hard_continuous(n, 5)
    ga = graph_arrays(g)
    near = engine._near_share(Y, ga)
    assert near[0] > engine._QUANT_MAX_NEAR and near[6] > 0.5  # ties, outlier
    assert (near[[1, 2, 3, 4, 5, 7]] < 0.005).all()
    store = engine._storage_dtypes("moran", Y, ga)
    A, Q = engine._APPROX, engine._QUANT
    assert store.tolist() == [A, Q, Q, Q, Q, Q, A, Q]
    pts = gpd.GeoSeries.from_xy(*np.random.default_rng(1).uniform(0, 10, (2, n)))
    kernel = graph_arrays(cm.build_graph(pts, method="kernel", k=8))
    assert (engine._storage_dtypes("moran", Y, kernel) == A).all()
    # the codes and their bound: |x - (m + d q)| <= E, the step the range / 65 535
    q, params = engine._quantise(Y)
    m, d, bound, _ = params
    assert q.max(axis=0).tolist() == [65535] * 8 and q.min(axis=0).tolist() == [0] * 8
    np.testing.assert_allclose(d, (Y.max(axis=0) - Y.min(axis=0)) / 65535)
    assert (np.abs(Y - (m + d * q)) <= bound).all()
    assert (bound <= 0.5 * d + 1e-9 * np.abs(Y).max(axis=0)).all()


def test_decimal_ties_are_exact_once_scaled_to_integers():
    """What the module notes document: a tie is an exact floating-point tie.

    Values with one decimal sum differently in different orders (0.1 + 0.2 != 0.3), so
    draws tied in decimal arithmetic may count on one side only; the same values scaled to
    integers (x 10, which changes no statistic's p-value) give exactly the counts of
    decimal arithmetic: Gi* does not change when the values are scaled, so the exact
    reference on the integers is the exact reference of the decimals.
    """
    g = _knn_graph(30, 3, seed=5)
    n, P, seed = g.n, 60, 11
    rng = np.random.default_rng(8)
    tenths = rng.integers(0, 4, size=n)  # 0.0, 0.1, 0.2, 0.3: many decimal ties
    y_dec = tenths / 10.0
    scaled = _call(
        "gstar",
        pd.DataFrame({"s": tenths.astype(float)}, index=g.unique_ids),
        g,
        permutations=P,
        random_state=seed,
    )
    decimal = _call(
        "gstar",
        pd.DataFrame({"s": y_dec}, index=g.unique_ids),
        g,
        permutations=P,
        random_state=seed,
    )
    ge_scaled, le_scaled = _counts(scaled, P)
    ge_dec, le_dec = _counts(decimal, P)
    W = g.sparse.toarray()
    rge, rle = ref.local_counts(
        "gstar",
        tenths.astype(float),
        W,
        lambda i, k: [ref.draw_ids(seed, i, p, n, k) for p in range(P)],
    )
    np.testing.assert_array_equal(ge_scaled[:, 0], rge)
    np.testing.assert_array_equal(le_scaled[:, 0], rle)
    # in float64 some decimal ties are lost (one side only): never more draws than exact
    assert (ge_dec[:, 0] <= rge).all() and (le_dec[:, 0] <= rle).all()
    assert (ge_dec[:, 0] + le_dec[:, 0] < rge + rle).any()
