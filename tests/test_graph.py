"""build_graph: contiguity, kNN, distance, kernel, islands, CSR cache, no mutation."""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import box

import clustermap as cm
from clustermap.errors import ClustermapWarning, SchemaError
from clustermap.graph import graph_arrays


def _lattice(side=3, ids=True):
    cells = [box(x, y, x + 1, y + 1) for y in range(side) for x in range(side)]
    if ids:
        return gpd.GeoDataFrame({"unit_id": [f"u{i}" for i in range(side * side)]}, geometry=cells)
    return gpd.GeoDataFrame(geometry=cells)


def _points(n=60, seed=0):
    rng = np.random.default_rng(seed)
    return gpd.GeoSeries.from_xy(rng.uniform(0, 100, n), rng.uniform(0, 100, n))


def test_queen_and_rook_on_lattice_by_hand():
    g = cm.build_graph(_lattice(), method="queen", transform="b")
    assert list(g.unique_ids) == [f"u{i}" for i in range(9)]
    assert g.cardinalities.tolist() == [3, 5, 3, 5, 8, 5, 3, 5, 3]
    assert sorted(g.neighbors["u0"]) == ["u1", "u3", "u4"]
    r = cm.build_graph(_lattice(), method="rook", transform="b")
    assert r.cardinalities.tolist() == [2, 3, 2, 3, 4, 3, 2, 3, 2]
    rs = cm.build_graph(_lattice(), method="queen")
    np.testing.assert_allclose(rs.sparse.sum(axis=1), 1.0)
    assert rs.adjacency[("u4", "u0")] == pytest.approx(1 / 8)


def test_index_used_when_no_unit_id_column():
    units = _lattice(ids=False)
    units.index = [f"c{i}" for i in range(9)]
    g = cm.build_graph(units)
    assert list(g.unique_ids) == [f"c{i}" for i in range(9)]


def test_knn_matches_brute_force_and_is_deterministic():
    pts = _points()
    g = cm.build_graph(pts, method="knn", k=4)
    xy = np.column_stack([pts.x, pts.y])
    d = np.linalg.norm(xy[:, None] - xy[None], axis=2)
    np.fill_diagonal(d, np.inf)
    for i in range(len(pts)):
        assert set(g.neighbors[i]) == set(np.argsort(d[i])[:4])
    np.testing.assert_allclose(g.sparse.sum(axis=1), 1.0)
    g2 = cm.build_graph(pts, method="knn", k=4)
    assert g.equals(g2)


def test_knn_on_polygons_uses_centroids_and_duplicates_are_linked():
    g = cm.build_graph(_lattice(), method="knn", k=4, transform="b")
    assert sorted(g.neighbors["u4"]) == ["u1", "u3", "u5", "u7"]
    dup = gpd.GeoSeries.from_xy([0.0, 0.0, 5.0, 9.0], [0.0, 0.0, 0.0, 0.0])
    gd = cm.build_graph(dup, method="knn", k=1, transform="b")
    assert list(gd.neighbors[0]) == [1] and list(gd.neighbors[1]) == [0]


def test_distance_band_matches_brute_force():
    pts = _points()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClustermapWarning)
        g = cm.build_graph(pts, method="distance", threshold=15.0, transform="b")
    xy = np.column_stack([pts.x, pts.y])
    d = np.linalg.norm(xy[:, None] - xy[None], axis=2)
    np.fill_diagonal(d, np.inf)
    np.testing.assert_array_equal(g.sparse.toarray() > 0, d <= 15.0)


def test_kernel_weights_decrease_with_distance():
    pts = gpd.GeoSeries.from_xy([0.0, 1.0, 3.0, 7.0], [0.0, 0.0, 0.0, 0.0])
    g = cm.build_graph(pts, method="kernel", bandwidth=10.0, transform="r")
    row = g.sparse.toarray()[0]
    assert row[1] > row[2] > row[3] > 0
    assert row.sum() == pytest.approx(1.0)


def test_islands_reported_and_attached():
    units = _lattice()
    units.loc[9] = ["far", box(10, 10, 11, 11)]
    with pytest.warns(ClustermapWarning, match=r"1 unit\(s\) have no neighbours.*'far'"):
        g = cm.build_graph(units, method="queen")
    assert list(g.isolates) == ["far"]
    with pytest.warns(ClustermapWarning, match=r"linked to their nearest unit.*'far'"):
        gk = cm.build_graph(units, method="queen", islands="knn", transform="b")
    assert len(gk.isolates) == 0
    assert list(gk.neighbors["far"]) == ["u8"]
    assert "far" in list(gk.neighbors["u8"])
    assert list(gk.unique_ids) == [*(f"u{i}" for i in range(9)), "far"]


def test_bad_input_errors():
    with pytest.raises(SchemaError, match="method"):
        cm.build_graph(_lattice(), method="delaunay")
    with pytest.raises(SchemaError, match="polygon"):
        cm.build_graph(_points(), method="queen")
    with pytest.raises(SchemaError, match="threshold"):
        cm.build_graph(_points(), method="distance")
    units = _lattice()
    units.loc[3, "unit_id"] = "u0"
    with pytest.raises(SchemaError, match="'u0'"):
        cm.build_graph(units)
    with pytest.raises(SchemaError, match="GeoDataFrame"):
        cm.build_graph([1, 2, 3])


def test_csr_arrays_cached_and_graph_not_mutated():
    g = cm.build_graph(_lattice(), method="queen")
    before = g.sparse.toarray().copy()
    a = graph_arrays(g)
    assert graph_arrays(g) is a
    assert (
        a.indptr.tolist() == np.concatenate([[0], np.cumsum([3, 5, 3, 5, 8, 5, 3, 5, 3])]).tolist()
    )
    assert a.equal.all()
    np.testing.assert_allclose(a.row_weight[4], 1 / 8)
    np.testing.assert_array_equal(g.sparse.toarray(), before)
    # a W with a diagonal: self weights split off, the W keeps its diagonal
    from libpysal.weights import fill_diagonal

    w = fill_diagonal(g.to_W(), 0.5)
    aw = graph_arrays(w)
    np.testing.assert_allclose(aw.self_weights, 0.5)
    assert aw.cardinalities.tolist() == [3, 5, 3, 5, 8, 5, 3, 5, 3]
    np.testing.assert_allclose(w.sparse.diagonal(), 0.5)
    # changing a W's transform gives fresh arrays
    w.transform = "b"
    assert graph_arrays(w).transform == "b"
    np.testing.assert_allclose(graph_arrays(w).weights, 1.0)


def test_queen_equals_libpysal_contiguity_on_the_demo_polygons():
    # the fast vertex-incidence queen must give libpysal's shared-vertex rule exactly
    from libpysal.graph import Graph

    units = cm.load_demo().units
    ours = cm.build_graph(units, "queen", transform="b")
    ref = Graph.build_contiguity(units, rook=False, strict=False).transform("b")
    assert list(ours.unique_ids) == list(ref.unique_ids)
    assert (ours.sparse.tocsr() != ref.sparse.tocsr()).nnz == 0
    assert ours.n_edges == ref.n_edges > 4 * len(units)


def test_queen_weights_are_float64():
    units = cm.load_demo().units
    g = cm.build_graph(units, "queen")
    assert g.adjacency.dtype == np.float64
    k = g.cardinalities.to_numpy()
    # row-standardised: every weight is exactly 1/k of its focal unit in float64
    w = g.adjacency.groupby(level="focal").first().reindex(g.unique_ids).to_numpy()
    np.testing.assert_array_equal(w, 1.0 / k)
