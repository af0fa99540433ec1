"""Tests of clustermap.aggregation against hand counts on a 2 x 2 grid and the demo's codes."""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal
from shapely.geometry import Point, box

import clustermap as cm
from clustermap.errors import ClustermapWarning, CRSError, SchemaError
from conftest import shared_file

# 2 x 2 unit squares, listed a (south-west), b (south-east), c (north-west), d (north-east)
UNIT_BOXES = {
    "a": box(0, 0, 1, 1),
    "b": box(1, 0, 2, 1),
    "c": box(0, 1, 1, 2),
    "d": box(1, 1, 2, 2),
}

# (x, y, sector, employees, where it must go)
POINTS = [
    (0.2, 0.2, "25.62A", 10.0, "a"),
    (0.5, 0.7, "25.62A", 4.0, "a"),
    (0.9, 0.1, "10.71C", 1.5, "a"),
    (1.5, 0.5, "25.62B", 34.5, "b"),
    (1.2, 0.8, "10.71C", 0.0, "b"),
    (0.3, 1.5, "96.02A", 1.5, "c"),
    (0.7, 1.9, "25.62A", 7.5, "c"),
    (1.5, 1.5, "96.02A", 4.0, "d"),
    (1.9, 1.1, "22.29A", 74.5, "d"),
    (1.0, 0.5, "22.29A", 14.5, "a"),  # on the a|b border: first listed unit (a)
    (1.0, 1.0, "10.71C", 1.5, "a"),  # corner shared by all four units: a
    (5.0, 5.0, "25.62A", 100.0, None),  # outside every unit
]


@pytest.fixture
def units() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        geometry=list(UNIT_BOXES.values()),
        crs=2154,
        index=pd.Index(list(UNIT_BOXES), name="unit_id"),
    )


@pytest.fixture
def est() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "establishment_id": [f"E{i:02d}" for i in range(len(POINTS))],
            "sector": [p[2] for p in POINTS],
            "employees": [p[3] for p in POINTS],
            "employees_low": [p[3] / 2 for p in POINTS],
            "commune": [p[4] for p in POINTS],
        },
        geometry=[Point(p[0], p[1]) for p in POINTS],
        crs=2154,
    )


def _quiet(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClustermapWarning)
        return func(*args, **kwargs)


def test_assign_units_matches_hand_assignment(est, units):
    got = cm.assign_units(est, units)
    expected = [p[4] for p in POINTS]
    assert got.name == "unit_id"
    assert got.dtype == "string"
    assert [None if pd.isna(v) else v for v in got] == expected
    assert got.index.equals(est.index)


def test_border_point_goes_to_first_unit_in_order(est, units):
    reordered = units.loc[["b", "d", "c", "a"]]
    got = cm.assign_units(est, reordered)
    assert got.iloc[9] == "b"  # the a|b border point now goes to b, listed first
    assert got.iloc[10] == "b"  # the shared corner too
    assert got.iloc[0] == "a"


def test_aggregate_counts_hand_checked(est, units):
    with pytest.warns(ClustermapWarning, match=r"1 of 12 establishments .* outside every unit"):
        table = cm.aggregate(est, units)
    expected = pd.DataFrame(
        # 10.71C 22.29A 25.62A 25.62B 96.02A
        [[2, 1, 2, 0, 0], [1, 0, 0, 1, 0], [0, 0, 1, 0, 1], [0, 1, 0, 0, 1]],
        index=pd.Index(["a", "b", "c", "d"], name="unit_id"),
        columns=pd.Index(["10.71C", "22.29A", "25.62A", "25.62B", "96.02A"], name="sector"),
        dtype="int64",
    )
    assert_frame_equal(table, expected, check_index_type=False, check_column_type=False)
    rejects = table.attrs["rejects"]
    assert rejects["establishment_id"].tolist() == ["E11"]
    assert rejects["reason"].tolist() == ["outside_units"]
    assert int(table.to_numpy().sum()) + len(rejects) == len(est)


def test_aggregate_keeps_all_units_in_order_with_zeros(est, units):
    extra = pd.concat(
        [
            units,
            gpd.GeoDataFrame(
                geometry=[box(10, 10, 11, 11)], crs=2154, index=pd.Index(["z"], name="unit_id")
            ),
        ]
    )
    table = _quiet(cm.aggregate, est, extra.loc[["z", "d", "c", "b", "a"]])
    assert table.index.tolist() == ["z", "d", "c", "b", "a"]
    assert table.loc["z"].sum() == 0
    assert table.loc["d", "22.29A"] == 1


def test_aggregate_employees_hand_checked(est, units):
    table = _quiet(cm.aggregate, est, units, measure="employees")
    assert table.dtypes.unique().tolist() == [np.dtype("float64")]
    expected = {
        ("a", "10.71C"): 1.5 + 1.5,
        ("a", "22.29A"): 14.5,
        ("a", "25.62A"): 10.0 + 4.0,
        ("b", "25.62B"): 34.5,
        ("b", "10.71C"): 0.0,
        ("c", "96.02A"): 1.5,
        ("c", "25.62A"): 7.5,
        ("d", "96.02A"): 4.0,
        ("d", "22.29A"): 74.5,
    }
    for (unit, sector), value in expected.items():
        assert table.loc[unit, sector] == pytest.approx(value)
    # everything else is zero, and the outside establishment's 100 employees are not counted
    assert table.to_numpy().sum() == pytest.approx(sum(expected.values()))
    low = _quiet(cm.aggregate, est, units, measure="employees_low")
    np.testing.assert_allclose(low.to_numpy(), table.to_numpy() / 2)


def test_aggregate_division_level_hand_checked(est, units):
    table = _quiet(cm.aggregate, est, units, level="division")
    expected = pd.DataFrame(
        # 10 22 25 96
        [[2, 1, 2, 0], [1, 0, 1, 0], [0, 0, 1, 1], [0, 1, 0, 1]],
        index=pd.Index(["a", "b", "c", "d"], name="unit_id"),
        columns=pd.Index(["10", "22", "25", "96"], name="sector"),
        dtype="int64",
    )
    assert_frame_equal(table, expected, check_index_type=False, check_column_type=False)


def test_aggregate_mapping_reports_unmapped_codes(est, units):
    groups = {"25.62": "décolletage", "10": "alimentaire"}
    with pytest.warns(ClustermapWarning) as record:
        table = cm.aggregate(est, units, level=groups)
    messages = " ".join(str(w.message) for w in record)
    assert "4 establishments have a sector code with no group" in messages
    assert table.columns.tolist() == ["alimentaire", "décolletage"]
    assert table["décolletage"].tolist() == [2, 1, 1, 0]  # 25.62A x2 + 25.62B in b, 25.62A in c
    assert table["alimentaire"].tolist() == [2, 1, 0, 0]
    rejects = table.attrs["rejects"]
    assert rejects["reason"].value_counts().to_dict() == {"unmapped_sector": 4, "outside_units": 1}
    unmapped = rejects.loc[rejects["reason"] == "unmapped_sector", "establishment_id"]
    assert sorted(unmapped) == ["E05", "E07", "E08", "E09"]
    assert int(table.to_numpy().sum()) + len(rejects) == len(est)


def test_aggregate_sparse_equals_dense(est, units):
    dense = _quiet(cm.aggregate, est, units)
    sparse = _quiet(cm.aggregate, est, units, sparse=True)
    assert all(isinstance(t, pd.SparseDtype) for t in sparse.dtypes)
    assert_frame_equal(sparse.sparse.to_dense(), dense, check_dtype=False)
    emp = _quiet(cm.aggregate, est, units, measure="employees", sparse=True)
    np.testing.assert_allclose(
        emp.sparse.to_dense().to_numpy(),
        _quiet(cm.aggregate, est, units, measure="employees").to_numpy(),
    )


def test_points_are_reprojected_to_the_units_crs(est, units):
    # the same layout moved to Lambert-93 metres near Annecy, points given in lon/lat
    origin = np.array([940_000.0, 6_540_000.0])
    scale = 1000.0
    lambert_units = units.set_geometry(units.geometry.scale(scale, scale, origin=(0, 0)))
    lambert_units = lambert_units.set_geometry(lambert_units.translate(*origin))
    pts = est.geometry.scale(scale, scale, origin=(0, 0)).translate(*origin)
    # keep away from the borders: projection round trips move points by nanometres
    inner = [i for i, p in enumerate(POINTS) if p[0] not in (1.0,) and p[1] not in (1.0,)]
    lonlat = est.iloc[inner].set_geometry(pts.iloc[inner].to_crs(4326))
    got = cm.assign_units(lonlat, lambert_units)
    assert [None if pd.isna(v) else v for v in got] == [POINTS[i][4] for i in inner]


def test_missing_location_is_rejected_with_detail(est, units):
    est = est.copy()
    est.loc[0, "geometry"] = None
    table = _quiet(cm.aggregate, est, units)
    rejects = table.attrs["rejects"].set_index("establishment_id")
    assert rejects.loc["E00", "detail"] == "no location"
    assert rejects.loc["E11", "detail"] == "outside every unit"
    assert table.loc["a", "25.62A"] == 1


def test_point_units_assign_by_registry_column(est):
    est = est.iloc[:11]  # drop the one without a commune
    points = _quiet(cm.units_from_registry, est, column="commune")
    got = cm.assign_units(est, points)
    assert got.tolist() == est["commune"].tolist()
    table = cm.aggregate(est, points)
    assert table.loc["a", "10.71C"] == 2
    assert table.loc["d", "22.29A"] == 1


def test_errors(est, units):
    with pytest.raises(ValueError, match="'measure' needs to be one of"):
        cm.aggregate(est, units, measure="turnover")
    with pytest.raises(SchemaError, match="'sector'"):
        cm.aggregate(est.drop(columns="sector"), units)
    with pytest.raises(SchemaError, match="'employees_high' column"):
        cm.aggregate(est, units, measure="employees_high")
    with pytest.raises(CRSError, match="establishments have no CRS"):
        cm.assign_units(est.set_crs(None, allow_override=True), units)
    with pytest.raises(SchemaError, match="duplicated ids"):
        cm.assign_units(est, units.rename(index={"b": "a"}))


def test_demo_polygon_assignment_equals_commune_codes():
    """Every demo point lies in the polygon its codeCommuneEtablissement names."""
    demo = cm.load_demo()
    est = demo.registry.establishments
    got = cm.assign_units(demo.registry, demo.units)
    assert got.notna().all()
    assert (got.to_numpy() == est["commune"].to_numpy()).all()
    table = cm.aggregate(demo.registry, demo.units)
    reference = pd.crosstab(est["commune"], est["sector"]).reindex(demo.units.index, fill_value=0)
    assert_frame_equal(table, reference, check_names=False, check_dtype=False)
    assert table.attrs["rejects"].empty
    assert int(table.to_numpy().sum()) == len(est)


@pytest.mark.shared
@pytest.mark.slow
def test_national_registry_onto_communes():
    registry_path = shared_file("synthetic_france", "registry.csv.gz")
    communes_path = shared_file("france_boundaries", "communes_2018_simplified.parquet")
    df = pd.read_csv(registry_path, dtype=str)
    df = df[df["etatAdministratifEtablissement"] == "A"]
    est = gpd.GeoDataFrame(
        {
            "establishment_id": df["siret"].to_numpy(),
            "sector": df["activitePrincipaleEtablissement"].to_numpy(),
            "commune": df["codeCommuneEtablissement"].to_numpy(),
        },
        geometry=gpd.points_from_xy(df["longitude"].astype(float), df["latitude"].astype(float)),
        crs=4326,
    )
    communes = _quiet(cm.read_units, communes_path, unit_id="code_insee")
    assert len(communes) == 35_357
    table = _quiet(cm.aggregate, est, communes)
    rejects = table.attrs["rejects"]
    assert table.shape[0] == 35_357
    assert int(table.to_numpy().sum()) + len(rejects) == len(est)
    outside = rejects[rejects["reason"] == "outside_units"]
    no_location = int((outside["detail"] == "no location").sum())
    # dirt.json: 12 040 rows without coordinates; 40 swapped (outside France) - all rejected
    assert no_location == 12_040
    located_outside = len(outside) - no_location
    assert 40 <= located_outside < 0.005 * len(est)
    # agreement of the polygon with the commune code the registry gives
    got = cm.assign_units(est, communes)
    code = est["commune"].astype(str)
    arrondissements = code.str.match(r"^(751\d\d|6938\d|132\d\d)$")
    ok = got.notna() & ~arrondissements
    agreement = float((got[ok] == code[ok]).mean())
    assert agreement > 0.95, agreement
