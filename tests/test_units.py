"""Tests of clustermap.units: reading and validating layers, registry point units, grids."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import LineString, Point, Polygon, box

import clustermap as cm
from clustermap.errors import ClustermapWarning, CRSError, DataFileError, SchemaError
from clustermap.units import metric_crs


@pytest.fixture
def layer() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "CODE_INSEE": ["74081", "01283", "2A004"],
            "NOM": ["Cluses", "Oyonnax", "Ajaccio"],
            "pop": [17_000, 22_000, 70_000],
        },
        geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1), box(0, 1, 1, 2)],
        crs=2154,
    )


# --------------------------------------------------------------------------- read_units


def test_read_units_detects_id_and_name(layer):
    units = cm.read_units(layer)
    assert units.index.name == "unit_id"
    assert units.index.tolist() == ["74081", "01283", "2A004"]
    assert units.columns.tolist() == ["name", "pop", "geometry"]
    assert units["name"].tolist() == ["Cluses", "Oyonnax", "Ajaccio"]
    assert units.crs.to_epsg() == 2154


@pytest.mark.parametrize("suffix", [".parquet", ".gpkg", ".geojson"])
def test_read_units_from_files_equals_frame(layer, tmp_path, suffix):
    path = tmp_path / f"units{suffix}"
    if suffix == ".parquet":
        layer.to_parquet(path)
    else:
        layer.to_file(path)
    units = cm.read_units(path, unit_id="CODE_INSEE", name="NOM")
    assert units.index.tolist() == ["74081", "01283", "2A004"]
    assert units["name"].tolist() == ["Cluses", "Oyonnax", "Ajaccio"]
    np.testing.assert_allclose(units.area.to_numpy(), [1.0, 1.0, 1.0])


def test_read_units_integer_and_float_ids_become_str(layer):
    units = cm.read_units(layer.assign(num=[3.0, 1.0, 2.0]), unit_id="num")
    assert units.index.tolist() == ["3", "1", "2"]
    units = cm.read_units(layer.assign(num=[3, 1, 2]), unit_id="num")
    assert units.index.tolist() == ["3", "1", "2"]


def test_read_units_duplicate_ids(layer):
    dup = layer.assign(CODE_INSEE=["74081", "74081", "2A004"])
    with pytest.raises(SchemaError) as err:
        cm.read_units(dup, unit_id="CODE_INSEE")
    message = str(err.value)
    assert "1 duplicated id(s): ['74081']" in message
    assert "'CODE_INSEE'" in message
    assert "must be unique" in message


def test_read_units_missing_id_column(layer):
    with pytest.raises(SchemaError) as err:
        cm.read_units(layer, unit_id="codgeo")
    message = str(err.value)
    assert "has no column 'codgeo'" in message
    assert "['CODE_INSEE', 'NOM', 'pop']" in message
    assert "unit_id=" in message
    no_id = layer.drop(columns="CODE_INSEE")
    with pytest.raises(SchemaError, match="no recognisable id column"):
        cm.read_units(no_id)


def test_read_units_missing_name_column(layer):
    with pytest.raises(SchemaError, match="no column 'libelle' for names"):
        cm.read_units(layer, name="libelle")


def test_read_units_empty_id(layer):
    with pytest.raises(SchemaError, match=r"1 empty id\(s\), at row\(s\) \[1\]"):
        cm.read_units(layer.assign(CODE_INSEE=["74081", None, "2A004"]))


def test_read_units_without_crs(layer, tmp_path):
    bare = layer.set_crs(None, allow_override=True)
    with pytest.raises(CRSError) as err:
        cm.read_units(bare)
    assert "have no CRS" in str(err.value)
    assert "crs=2154" in str(err.value)
    units = cm.read_units(bare, crs=2154)
    assert units.crs.to_epsg() == 2154
    with pytest.raises(CRSError, match=r"declare CRS EPSG:2154, but crs=4326"):
        cm.read_units(layer, crs=4326)


def test_read_units_repairs_invalid_geometry(layer):
    bowtie = Polygon([(0, 0), (2, 2), (2, 0), (0, 2)])  # self-intersecting, two unit triangles
    assert not bowtie.is_valid
    broken = layer.copy()
    broken.loc[1, "geometry"] = bowtie
    with pytest.warns(ClustermapWarning, match=r"1 invalid unit geometry was repaired .*01283"):
        units = cm.read_units(broken)
    assert units.is_valid.all()
    assert units.loc["01283"].geometry.geom_type == "MultiPolygon"
    assert units.loc["01283"].geometry.area == pytest.approx(2.0)  # 2 triangles of area 1


def test_read_units_drops_units_without_geometry(layer):
    holed = layer.copy()
    holed.loc[2, "geometry"] = None
    with pytest.warns(ClustermapWarning, match=r"1 unit\(s\) .* no geometry .*2A004"):
        units = cm.read_units(holed)
    assert units.index.tolist() == ["74081", "01283"]


def test_read_units_rejects_lines(layer):
    lines = layer.set_geometry([LineString([(0, 0), (1, 1)])] * 3)
    with pytest.raises(
        SchemaError, match=r"must be polygons; found geometry types \['LineString'\]"
    ):
        cm.read_units(lines)


def test_read_units_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        cm.read_units(tmp_path / "nope.parquet")
    bad = tmp_path / "bad.gpkg"
    bad.write_text("not a geopackage")
    with pytest.raises(DataFileError, match=r"bad\.gpkg"):
        cm.read_units(bad)


# --------------------------------------------------------------------------- registry units


def test_units_from_registry_median_points():
    est = gpd.GeoDataFrame(
        {"commune": ["A", "A", "A", "B", "B", None]},
        geometry=[Point(0, 0), Point(2, 10), Point(100, 4), Point(5, 5), Point(7, 9), Point(1, 1)],
        crs=2154,
    )
    with pytest.warns(ClustermapWarning, match="1 establishment\\(s\\) have no 'commune'"):
        units = cm.units_from_registry(est)
    assert units.index.tolist() == ["A", "B"]
    # medians by hand: A x (0, 2, 100) -> 2, y (0, 10, 4) -> 4; B -> (6, 7)
    assert [(p.x, p.y) for p in units.geometry] == [(2.0, 4.0), (6.0, 7.0)]
    assert units["establishments"].tolist() == [3, 2]
    assert units.attrs["registry_column"] == "commune"
    with pytest.raises(SchemaError, match="no column 'depcom'"):
        cm.units_from_registry(est, column="depcom")


# --------------------------------------------------------------------------- grids


@pytest.fixture
def scatter() -> gpd.GeoDataFrame:
    rng = np.random.default_rng(7)
    xy = rng.uniform([700_000, 6_500_000], [712_000, 6_508_000], size=(300, 2))
    return gpd.GeoDataFrame(geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]), crs=2154)


def test_square_grid_ids_and_areas(scatter):
    grid = cm.make_grid(scatter, 1000)
    np.testing.assert_allclose(grid.area.to_numpy(), 1000.0**2)
    # hand-computed id: the cell holding (700 500, 6 500 500) is row 6500, column 700
    assert "sq1000_r6500_c700" in grid.index
    cell = grid.loc["sq1000_r6500_c700"].geometry
    assert cell.bounds == (700_000.0, 6_500_000.0, 701_000.0, 6_501_000.0)
    assert grid.index.is_unique


@pytest.mark.parametrize("kind", ["square", "hex"])
def test_grid_covers_every_point(scatter, kind):
    grid = cm.make_grid(scatter, 500, kind=kind)
    got = cm.assign_units(scatter, grid)
    assert got.notna().all()
    # every kept cell holds at least one point (keep_empty=False)
    assert set(got) == set(grid.index)
    full = cm.make_grid(scatter, 500, kind=kind, keep_empty=True)
    assert set(grid.index) < set(full.index)
    assert cm.assign_units(scatter, full).notna().all()


def test_hex_grid_geometry(scatter):
    size = 2000.0
    grid = cm.make_grid(scatter, size, kind="hex", keep_empty=True)
    # equal-area definition: area = cell_size ** 2, and the regular hexagon formula holds
    np.testing.assert_allclose(grid.area.to_numpy(), size**2)
    ring = np.asarray(grid.geometry.iloc[0].exterior.coords)
    sides = np.hypot(*np.diff(ring, axis=0).T)
    np.testing.assert_allclose(sides, sides[0])
    assert len(sides) == 6
    assert 3 * math.sqrt(3) / 2 * sides[0] ** 2 == pytest.approx(size**2)
    # cells tile the plane: no overlap
    union = shapely.union_all(grid.geometry.to_numpy())
    assert union.area == pytest.approx(grid.area.sum(), rel=1e-9)


@pytest.mark.parametrize("kind", ["square", "hex"])
def test_grid_ids_are_stable_across_extents(scatter, kind):
    whole = cm.make_grid(scatter, 1000, kind=kind)
    part = cm.make_grid(scatter.iloc[:40], 1000, kind=kind)
    assert set(part.index) <= set(whole.index)
    for uid in part.index:
        assert part.loc[uid].geometry.equals_exact(whole.loc[uid].geometry, 1e-6)


def test_grid_of_lonlat_data_uses_lambert93(scatter):
    lonlat = scatter.to_crs(4326)
    grid = cm.make_grid(lonlat, 1000)
    assert grid.crs.to_epsg() == 2154
    assert set(grid.index) == set(cm.make_grid(scatter, 1000).index)
    utm = cm.make_grid(lonlat, 1000, crs=32631)
    assert utm.crs.to_epsg() == 32631


def test_grid_over_polygons_and_bounds():
    polys = gpd.GeoDataFrame(geometry=[box(0, 0, 2500, 900), box(5000, 5000, 5100, 5100)], crs=2154)
    grid = cm.make_grid(polys, 1000)
    assert sorted(grid.index) == sorted(
        ["sq1000_r0_c0", "sq1000_r0_c1", "sq1000_r0_c2", "sq1000_r5_c5"]
    )
    bounds = cm.make_grid((0, 0, 2500, 900), 1000, crs=2154)
    assert bounds.index.tolist() == ["sq1000_r0_c0", "sq1000_r0_c1", "sq1000_r0_c2"]
    with pytest.raises(CRSError, match="need crs="):
        cm.make_grid((0, 0, 10, 10), 1)
    with pytest.raises(CRSError, match="geographic"):
        cm.make_grid(polys, 1000, crs=4326)
    with pytest.raises(ValueError, match="'kind'"):
        cm.make_grid(polys, 1000, kind="triangle")


def test_metric_crs_rule():
    france = gpd.GeoSeries([Point(6.6, 46.0), Point(-1.5, 43.4)], crs=4326)
    assert metric_crs(france).to_epsg() == 2154
    reunion = gpd.GeoSeries([Point(55.5, -21.1)], crs=4326)
    assert metric_crs(reunion).to_epsg() == 32740  # UTM 40 south
    guadeloupe = gpd.GeoSeries([Point(-61.5, 16.2)], crs=4326)
    assert metric_crs(guadeloupe).to_epsg() == 32620  # UTM 20 north
    assert metric_crs(france.to_crs(3857)).to_epsg() == 3857  # already projected
    with pytest.raises(CRSError):
        metric_crs(gpd.GeoSeries([Point(0, 0)]))


@pytest.mark.shared
def test_read_real_communes():
    from conftest import shared_file

    path = shared_file("france_boundaries", "communes_2018_simplified.parquet")
    with pytest.warns(ClustermapWarning, match="repaired"):
        units = cm.read_units(path, unit_id="code_insee")
    assert len(units) == 35_357
    assert units.loc["74081", "name"] == "Cluses"
    assert units.loc["2A004", "name"] == "Ajaccio"
    assert units.is_valid.all()
    assert all(isinstance(uid, str) for uid in units.index[:100])
