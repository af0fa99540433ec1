"""Tests of clustermap.io: presets, dirty rows, size bands, malformed files, real data."""

from __future__ import annotations

import gzip
import json
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Transformer

import clustermap as cm
from clustermap import io as cmio
from clustermap.errors import ClustermapWarning, CRSError, DataFileError, SchemaError
from clustermap.io import SIZE_BANDS, Registry, read_registry, size_band_employees
from clustermap.taxonomy import normalize_codes
from conftest import shared_file

SIRENE_COLUMNS = [
    "siren",
    "siret",
    "trancheEffectifsEtablissement",
    "codeCommuneEtablissement",
    "etatAdministratifEtablissement",
    "denominationUsuelleEtablissement",
    "activitePrincipaleEtablissement",
    "nomenclatureActivitePrincipaleEtablissement",
    "longitude",
    "latitude",
]


def sirene_row(siret, naf="25.62A", lon=6.5797, lat=46.0625, band="11", state="A", **kw):
    row = {
        "siren": siret[:9],
        "siret": siret,
        "trancheEffectifsEtablissement": band,
        "codeCommuneEtablissement": kw.get("commune", "74081"),
        "etatAdministratifEtablissement": state,
        "denominationUsuelleEtablissement": kw.get("name", f"Ets {siret}"),
        "activitePrincipaleEtablissement": naf,
        "nomenclatureActivitePrincipaleEtablissement": kw.get("version", "NAFRev2"),
        "longitude": lon,
        "latitude": lat,
    }
    return row


def write_csv_gz(path, rows, columns=SIRENE_COLUMNS, sep=","):
    frame = pd.DataFrame(rows, columns=columns)
    with gzip.open(path, "wt", encoding="utf-8", newline="") as fh:
        frame.to_csv(fh, index=False, sep=sep)
    return path


def clean_rows(n=3):
    return [
        sirene_row(f"1000000000{i:04d}", lon=6.5 + 0.01 * i, lat=46.0 + 0.01 * i) for i in range(n)
    ]


def as_records(frame):
    return list(frame[["row", "establishment_id", "reason"]].itertuples(index=False, name=None))


# ----------------------------------------------------------------------- sirene preset


def test_sirene_geo_csv_gz_clean(tmp_path):
    rows = clean_rows(3)
    rows[1]["trancheEffectifsEtablissement"] = "01"
    rows[2]["codeCommuneEtablissement"] = "01001"  # leading zero kept
    path = write_csv_gz(tmp_path / "geo_siret_74.csv.gz", rows)
    reg = read_registry(path)
    assert isinstance(reg, Registry)
    assert reg.format == "sirene"
    assert reg.source == "geo_siret_74.csv.gz"
    assert reg.n_rows == 3 and len(reg) == 3
    est = reg.establishments
    assert list(est.columns) == [
        "establishment_id",
        "sector",
        "employees",
        "employees_low",
        "employees_high",
        "size_band",
        "name",
        "commune",
        "geometry",
    ]
    assert est["establishment_id"].tolist() == [r["siret"] for r in rows]
    assert est["sector"].tolist() == ["25.62A"] * 3
    assert est["employees"].tolist() == [14.5, 1.5, 14.5]
    assert est["employees_low"].tolist() == [10, 1, 10]
    assert est["employees_high"].tolist() == [19, 2, 19]
    assert est["commune"].tolist() == ["74081", "74081", "01001"]
    assert est.crs.to_epsg() == 4326
    np.testing.assert_allclose(est.geometry.x, [6.5, 6.51, 6.52])
    np.testing.assert_allclose(est.geometry.y, [46.0, 46.01, 46.02])
    assert reg.rejects.empty and reg.repairs.empty


def dirty_file(tmp_path):
    rows = clean_rows(2)  # data rows 1, 2
    rows.append(sirene_row("20000000000001", state="F"))  # 3 closed
    rows.append(sirene_row("20000000000002", lon=None, lat=None))  # 4 missing
    rows.append(sirene_row("20000000000003", lon="abc", lat=46.0))  # 5 non-numeric
    rows.append(sirene_row("20000000000004", lon=46.0625, lat=6.5797))  # 6 swapped
    rows.append(sirene_row("20000000000005", lon=13.4, lat=52.5))  # 7 Berlin: out of bounds
    rows.append(sirene_row("20000000000006", naf="99.99Z"))  # 8 invalid
    rows.append(sirene_row("20000000000007", naf="25.62"))  # 9 class without letter
    rows.append(sirene_row("20000000000008", naf=None))  # 10 empty
    rows.append(sirene_row("20000000000009", naf="28.5B", version="NAFRev1"))  # 11 other
    rows.append(sirene_row(rows[0]["siret"]))  # 12 duplicate of row 1
    rows.append(sirene_row("20000000000010", naf="2562b", lon=55.45, lat=-20.88))  # 13 Réunion
    return write_csv_gz(tmp_path / "dirty.csv.gz", rows), rows


def test_every_reject_reason_exactly(tmp_path):
    path, rows = dirty_file(tmp_path)
    reg = read_registry(path)
    expected = [
        (3, "20000000000001", "closed_establishments"),
        (4, "20000000000002", "missing_coordinates"),
        (5, "20000000000003", "missing_coordinates"),
        (7, "20000000000005", "coordinates_out_of_bounds"),
        (8, "20000000000006", "invalid_sector_code"),
        (9, "20000000000007", "invalid_sector_code"),
        (10, "20000000000008", "invalid_sector_code"),
        (11, "20000000000009", "other_nomenclature"),
        (12, rows[0]["siret"], "duplicated_id"),
    ]
    assert as_records(reg.rejects) == expected
    assert as_records(reg.repairs) == [(6, "20000000000004", "swapped_lat_lon")]
    assert reg.establishments["establishment_id"].tolist() == [
        rows[0]["siret"],
        rows[1]["siret"],
        "20000000000004",
        "20000000000010",
    ]
    # the swapped point is repaired, the Réunion point is inside France incl. DOM
    est = reg.establishments.set_index("establishment_id")
    assert est.geometry["20000000000004"].coords[0] == pytest.approx((6.5797, 46.0625))
    assert est.loc["20000000000010", "sector"] == "25.62B"
    details = reg.rejects.set_index("row")["detail"]
    assert details[5] == "longitude='abc', latitude='46.0': not numbers"
    assert details[9] == "'25.62' is a NAF rév. 2 code of another level; a subclass is expected"
    assert details[12] == "same establishment_id as row 1"
    assert "NAFRev1" in details[11]
    assert reg.summary_dict()["rejects"] == {
        "closed_establishments": 1,
        "missing_coordinates": 2,
        "coordinates_out_of_bounds": 1,
        "other_nomenclature": 1,
        "invalid_sector_code": 3,
        "duplicated_id": 1,
    }
    assert reg.summary_dict()["repairs"] == {"swapped_lat_lon": 1}


DIRTY = {  # reason -> (changes to a clean row, expected detail)
    "closed_establishments": ({"state": "F"}, "etatAdministratifEtablissement = F (closed)"),
    "missing_coordinates": ({"lon": None, "lat": None}, "longitude and latitude empty"),
    "swapped_lat_lon": (
        {"lon": 46.0625, "lat": 6.5797},
        "(46.0625, 6.5797) inside France incl. DOM once exchanged",
    ),
    "coordinates_out_of_bounds": (
        {"lon": -74.0, "lat": 40.7},
        "(-74, 40.7) outside France incl. DOM",
    ),
    "other_nomenclature": (
        {"naf": "28.5B", "version": "NAFRev1"},
        "nomenclatureActivitePrincipaleEtablissement = 'NAFRev1', not NAFRev2",
    ),
    "invalid_sector_code": ({"naf": "ABCDE"}, "'ABCDE' is not a NAF rév. 2 code"),
    "duplicated_id": ({"siret": "10000000000001"}, "same establishment_id as row 2"),
}


@pytest.mark.parametrize("reason", list(DIRTY))
def test_one_dirty_row_per_reason(tmp_path, reason):
    changes, detail = DIRTY[reason]
    rows = clean_rows(3)
    siret = changes.get("siret", "90000000000009")
    kw = {k: v for k, v in changes.items() if k != "siret"}
    rows.insert(2, sirene_row(siret, **{"lon": 6.55, "lat": 46.05, **kw}))  # data row 3
    reg = read_registry(write_csv_gz(tmp_path / "one.csv.gz", rows), swapped="reject")
    assert as_records(reg.rejects) == [(3, siret, reason)]
    assert reg.rejects["detail"].tolist() == [detail]
    assert reg.establishments["establishment_id"].tolist() == [r["siret"] for r in clean_rows(3)]
    assert reg.summary_dict()["rejects"] == {reason: 1}


def test_swapped_reject_and_include_closed(tmp_path):
    path, _ = dirty_file(tmp_path)
    reg = read_registry(path, swapped="reject", include_closed=True)
    by_row = dict(zip(reg.rejects["row"], reg.rejects["reason"]))
    assert by_row[6] == "swapped_lat_lon"
    assert 3 not in by_row  # closed kept
    assert "20000000000001" in set(reg.establishments["establishment_id"])
    assert reg.repairs.empty
    with pytest.raises(ValueError, match="'swapped' needs to be 'fix' or 'reject'"):
        read_registry(path, swapped="drop")


def test_reason_priority_closed_before_others(tmp_path):
    # a closed row with no coordinates and a bad code counts once, as closed
    rows = [*clean_rows(1), sirene_row("3" * 14, state="F", lon=None, lat=None, naf="XX")]
    reg = read_registry(write_csv_gz(tmp_path / "p.csv.gz", rows))
    assert as_records(reg.rejects) == [(2, "3" * 14, "closed_establishments")]


def test_duplicate_of_a_rejected_row_is_still_duplicate(tmp_path):
    rows = [sirene_row("4" * 14, state="F"), sirene_row("4" * 14)]
    reg = read_registry(write_csv_gz(tmp_path / "d.csv.gz", rows))
    assert as_records(reg.rejects) == [
        (1, "4" * 14, "closed_establishments"),
        (2, "4" * 14, "duplicated_id"),
    ]
    assert len(reg) == 0


def test_duplicates_and_row_numbers_across_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(cmio.sources, "_BLOCK_SIZE", 512)  # a few rows per streamed batch
    rows = clean_rows(40)
    rows.append(sirene_row(rows[3]["siret"]))  # row 41 repeats row 4
    rows.append(sirene_row("5" * 14, naf="bad"))  # row 42
    reg = read_registry(write_csv_gz(tmp_path / "c.csv.gz", rows))
    assert as_records(reg.rejects) == [
        (41, rows[3]["siret"], "duplicated_id"),
        (42, "5" * 14, "invalid_sector_code"),
    ]
    assert len(reg) == 40
    # same through a DataFrame read in chunks of 7 rows
    frame = pd.DataFrame(rows, columns=SIRENE_COLUMNS).astype(str)
    frame.loc[frame["activitePrincipaleEtablissement"] == "bad", "longitude"] = "6.5"
    reg2 = read_registry(frame, chunksize=7)
    assert as_records(reg2.rejects) == as_records(reg.rejects)


def test_keep_columns_and_names(tmp_path):
    rows = clean_rows(2)
    rows[1]["denominationUsuelleEtablissement"] = None
    path = write_csv_gz(tmp_path / "k.csv.gz", rows)
    reg = read_registry(path, keep=["siren"])
    assert reg.establishments["siren"].tolist() == [rows[0]["siren"], rows[1]["siren"]]
    assert reg.establishments["name"].tolist() == [rows[0]["denominationUsuelleEtablissement"], ""]
    with pytest.raises(SchemaError, match="'nope' given in keep="):
        read_registry(path, keep=["nope"])


def test_empty_file_gives_empty_registry(tmp_path):
    path = write_csv_gz(tmp_path / "empty.csv.gz", [])
    reg = read_registry(path)
    assert len(reg) == 0 and reg.n_rows == 0 and reg.rejects.empty
    assert reg.summary_dict()["bounds"] is None


# ----------------------------------------------------------------------- other presets


def lambert(lon, lat, epsg):
    return Transformer.from_crs(4326, epsg, always_xy=True).transform(lon, lat)


STOCK_COLUMNS = [
    "siren",
    "siret",
    "etatAdministratifEtablissement",
    "trancheEffectifsEtablissement",
    "codeCommuneEtablissement",
    "enseigne1Etablissement",
    "denominationUsuelleEtablissement",
    "activitePrincipaleEtablissement",
    "nomenclatureActivitePrincipaleEtablissement",
]

POINTS = {  # siret: (lon, lat, commune, epsg)
    "11111111100011": (6.5797, 46.0625, "74081", 2154),  # Cluses
    "22222222200022": (55.4500, -20.8800, "97411", 2975),  # Saint-Denis, La Réunion
    "33333333300033": (-61.0600, 14.6000, "97209", 5490),  # Fort-de-France
}


def stock_frame():
    rows = []
    for siret, (_lon, _lat, commune, _epsg) in POINTS.items():
        rows.append([siret[:9], siret, "A", "12", commune, "ENSEIGNE", None, "25.62A", "NAFRev2"])
    rows.append(
        ["44444444", "44444444400044", "A", "01", "75056", None, "Nom", "56.30Z", "NAFRev2"]
    )
    return pd.DataFrame(rows, columns=STOCK_COLUMNS)


def test_stock_plus_geolocation_several_projections(tmp_path):
    stock = tmp_path / "StockEtablissement_utf8.csv"
    stock_frame().to_csv(stock, index=False)
    geo_rows = []
    for siret, (lon, lat, _c, epsg) in POINTS.items():
        x, y = lambert(lon, lat, epsg)
        geo_rows.append({"siret": siret, "x": x, "y": y, "qualite_xy": "11", "epsg": epsg})
    geo = tmp_path / "GeolocalisationEtablissement_Sirene_pour_etudes_statistiques.csv"
    pd.DataFrame(geo_rows).to_csv(geo, index=False, sep=";")
    reg = read_registry(stock, geolocation=geo)
    assert reg.format == "sirene_stock"
    assert reg.crs.to_epsg() == 4326  # several projections -> returned in lon/lat
    est = reg.establishments.set_index("establishment_id")
    for siret, (lon, lat, _c, _e) in POINTS.items():
        assert est.geometry[siret].coords[0] == pytest.approx((lon, lat), abs=1e-7)
    assert est.loc["22222222200022", "name"] == "ENSEIGNE"  # enseigne when no denomination
    assert as_records(reg.rejects) == [(4, "44444444400044", "missing_coordinates")]
    assert reg.rejects["detail"].item() == "no row for this siret in the geolocation file"
    # asked for Lambert-93 output
    reg93 = read_registry(stock, format="sirene_stock", geolocation=geo, crs=2154)
    x, y = lambert(6.5797, 46.0625, 2154)
    got = reg93.establishments.set_index("establishment_id").geometry["11111111100011"]
    assert got.coords[0] == pytest.approx((x, y), abs=1e-3)


def test_stock_single_projection_stays_in_it(tmp_path):
    stock = tmp_path / "stock.csv"
    stock_frame().iloc[[0]].to_csv(stock, index=False)
    x, y = lambert(6.5797, 46.0625, 2154)
    geo = pd.DataFrame({"siret": ["11111111100011"], "x": [x], "y": [y], "epsg": [2154]})
    reg = read_registry(stock, geolocation=geo)
    assert reg.crs.to_epsg() == 2154
    assert reg.establishments.geometry.iloc[0].coords[0] == pytest.approx((x, y))


def test_stock_with_lambert_columns_projection_from_commune(tmp_path):
    frame = stock_frame().iloc[:3].copy()
    xs, ys = [], []
    for siret in frame["siret"]:
        lon, lat, _c, epsg = POINTS[siret]
        x, y = lambert(lon, lat, epsg)
        xs.append(x)
        ys.append(y)
    frame["coordonneeLambertAbscisseEtablissement"] = xs
    frame["coordonneeLambertOrdonneeEtablissement"] = ys
    path = tmp_path / "stock.parquet"
    frame.to_parquet(path)
    reg = read_registry(path)
    assert reg.format == "sirene_stock"
    est = reg.establishments.set_index("establishment_id")
    for siret in frame["siret"]:
        lon, lat, _c, _e = POINTS[siret]
        assert est.geometry[siret].coords[0] == pytest.approx((lon, lat), abs=1e-7)


def test_stock_without_coordinates_explains(tmp_path):
    stock = tmp_path / "stock.csv"
    stock_frame().to_csv(stock, index=False)
    with pytest.raises(SchemaError, match="geolocation=geo_file"):
        read_registry(stock)


def old_sirene_frame():
    return pd.DataFrame(
        {
            "siret": ["39009842400034", "39051825600024", "39051825600099"],
            "apet700": ["5630Z", "5630Z", "5630Z"],
            "tefet": ["00", "01", "NN"],
            "depcomet": ["13202", "13201", "13201"],
            "enseigne": ["BAR PIERRE", None, None],
            "nomen_long": ["MAMOU", "ILLOS*MARC/", None],
            "latitude": ["43.304965", "43.305998", None],
            "longitude": ["5.368438", "5.393282", None],
        }
    )


def test_sirene2016_names_via_keywords_and_preset(tmp_path):
    path = tmp_path / "sirene2016.csv"
    old_sirene_frame().to_csv(path, index=False)
    by_keywords = read_registry(
        path,
        id="siret",
        sector="apet700",
        size_band="tefet",
        commune="depcomet",
        name=["enseigne", "nomen_long"],
        x="longitude",
        y="latitude",
        crs=4326,
        format=None,
    )
    preset = read_registry(path)  # detected from 'apet700'
    assert preset.format == "sirene2016"
    for reg in (by_keywords, preset):
        est = reg.establishments
        assert est["sector"].tolist() == ["56.30Z", "56.30Z"]
        assert est["name"].tolist() == ["BAR PIERRE", "ILLOS*MARC/"]
        assert est["employees"].tolist() == [0.0, 1.5]
        assert est["commune"].tolist() == ["13202", "13201"]
        assert as_records(reg.rejects) == [(3, "39051825600099", "missing_coordinates")]


def registry_points():
    return gpd.GeoDataFrame(
        {
            "id": ["a", "b", "c"],
            "naf": ["25.62A", "2562B", "99.99Z"],
            "effectif": [12, 3, 5],
        },
        geometry=[shapely.Point(6.58, 46.06), shapely.Point(6.50, 46.00), shapely.Point()],
        crs=4326,
    )


@pytest.mark.parametrize("suffix", ["parquet", "geoparquet", "gpkg", "frame"])
def test_geometry_sources(tmp_path, suffix):
    gdf = registry_points()
    if suffix == "parquet":  # plain parquet with coordinate columns
        path = tmp_path / "r.parquet"
        pd.DataFrame(gdf.drop(columns="geometry")).assign(
            lon=[6.58, 6.50, None], lat=[46.06, 46.00, None]
        ).to_parquet(path)
        reg = read_registry(
            path, id="id", sector="naf", employees="effectif", x="lon", y="lat", crs=4326
        )
    elif suffix == "geoparquet":
        path = tmp_path / "r.parquet"
        gdf.to_parquet(path)
        reg = read_registry(path, id="id", sector="naf", employees="effectif")
    elif suffix == "gpkg":
        path = tmp_path / "r.gpkg"
        gdf.iloc[:2].to_file(path)  # GeoPackage rejects mixed empty geometries easily
        reg = read_registry(path, id="id", sector="naf", employees="effectif")
    else:
        reg = read_registry(gdf, id="id", sector="naf", employees="effectif")
    est = reg.establishments
    assert est["establishment_id"].tolist() == ["a", "b"]
    assert est["sector"].tolist() == ["25.62A", "25.62B"]
    assert est["employees"].tolist() == [12.0, 3.0]
    assert est["employees_low"].tolist() == est["employees_high"].tolist() == [12.0, 3.0]
    assert est.crs.to_epsg() == 4326
    np.testing.assert_allclose(est.geometry.x, [6.58, 6.50])
    if suffix != "gpkg":
        assert as_records(reg.rejects) == [(3, "c", "missing_coordinates")]


def test_polygons_give_representative_points_with_warning():
    square = shapely.box(6.0, 46.0, 6.2, 46.2)
    gdf = gpd.GeoDataFrame({"naf": ["25.62A"]}, geometry=[square], crs=4326)
    with pytest.warns(ClustermapWarning, match="representative point"):
        reg = read_registry(gdf, sector="naf")
    assert reg.establishments.geometry.iloc[0].within(square)


def test_zipped_csv_semicolon(tmp_path):
    import zipfile

    path = tmp_path / "StockEtablissement_utf8.zip"
    text = "siret;naf;lon;lat\n1;25.62A;6.5;46.0\n2;2562B;6.6;46.1\n"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("StockEtablissement_utf8.csv", text)
    reg = read_registry(path, id="siret", sector="naf", x="lon", y="lat", crs=4326)
    assert reg.establishments["sector"].tolist() == ["25.62A", "25.62B"]
    assert reg.source == "StockEtablissement_utf8.zip"


def test_dataframe_projected_crs_and_area_of_use():
    x, y = lambert(6.5797, 46.0625, 2154)
    frame = pd.DataFrame(
        {"naf": ["25.62A", "25.62A", "25.62A"], "x": [x, 5e7, y], "y": [y, 5e7, x]}
    )
    reg = read_registry(frame, sector="naf", x="x", y="y", crs=2154)
    assert reg.crs.to_epsg() == 2154
    # no id column: ids are row numbers; 5e7 m is outside Lambert-93's area of use
    assert as_records(reg.rejects) == [(2, "2", "coordinates_out_of_bounds")]
    assert as_records(reg.repairs) == [(3, "3", "swapped_lat_lon")]
    np.testing.assert_allclose(reg.establishments.geometry.x, [x, x])


def test_bounds_keyword():
    frame = pd.DataFrame({"naf": ["25.62A"] * 2, "lon": [6.58, 2.35], "lat": [46.06, 48.85]})
    reg = read_registry(frame, sector="naf", x="lon", y="lat", crs=4326, bounds=(5, 45, 8, 47))
    assert as_records(reg.rejects) == [(2, "2", "coordinates_out_of_bounds")]
    assert "outside the bounds= boxes" in reg.rejects["detail"].item()


def test_other_nomenclatures():
    frame = pd.DataFrame({"code": ["336411", "5415", "x1"], "lon": [-95.0] * 3, "lat": [30.0] * 3})
    reg = read_registry(frame, sector="code", x="lon", y="lat", crs=4326, nomenclature="naics")
    assert reg.establishments["sector"].tolist() == ["336411", "5415"]
    assert as_records(reg.rejects) == [(3, "3", "invalid_sector_code")]
    nace = pd.DataFrame({"code": ["2562", "25.62A"], "lon": [6.5] * 2, "lat": [46.0] * 2})
    reg = read_registry(nace, sector="code", x="lon", y="lat", crs=4326, nomenclature="nace")
    assert reg.establishments["sector"].tolist() == ["25.62"]
    # any NAF level accepted on demand
    naf = pd.DataFrame({"code": ["25.62", "C"], "lon": [6.5] * 2, "lat": [46.0] * 2})
    reg = read_registry(naf, sector="code", x="lon", y="lat", crs=4326, sector_level=None)
    assert reg.establishments["sector"].tolist() == ["25.62", "C"]


# ----------------------------------------------------------------------- size bands


def test_size_band_table_hand_values():
    codes = list(SIZE_BANDS)
    low = [0, 0, 1, 3, 6, 10, 20, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000]
    high = [0, 0, 2, 5, 9, 19, 49, 99, 199, 249, 499, 999, 1999, 4999, 9999, 20000]
    mid = [0, 0, 1.5, 4, 7.5, 14.5, 34.5, 74.5, 149.5, 224.5, 374.5, 749.5, 1499.5, 3499.5,
           7499.5, 15000]  # fmt: skip
    out = size_band_employees(codes)
    assert out["employees"].tolist() == mid
    assert out["employees_low"].tolist() == low
    assert out["employees_high"].tolist() == high
    assert size_band_employees(codes, rule="low")["employees"].tolist() == low
    assert size_band_employees(codes, rule="high")["employees"].tolist() == high
    capped = size_band_employees(["53"], rule="high", open_band_cap=50000)
    assert capped["employees"].item() == 50000


def test_size_band_missing_unknown_and_spellings():
    out = size_band_employees(["1", " 02 ", "nn", "", None, "99"])
    assert out["size_band"].tolist() == ["01", "02", "NN", pd.NA, pd.NA, "99"]
    assert out["employees"].tolist() == [1.5, 4.0, 0.0, 0.0, 0.0, 0.0]
    assert out["band_status"].tolist() == ["ok", "ok", "ok", "missing", "missing", "unknown"]


def test_registry_counts_missing_and_unknown_bands(tmp_path):
    rows = clean_rows(4)
    rows[1]["trancheEffectifsEtablissement"] = None
    rows[2]["trancheEffectifsEtablissement"] = "77"
    rows[3]["trancheEffectifsEtablissement"] = "53"
    path = write_csv_gz(tmp_path / "b.csv.gz", rows)
    with pytest.warns(ClustermapWarning, match="1 kept rows have a size-band code"):
        reg = read_registry(path, employee_rule="high")
    assert reg.establishments["employees"].tolist() == [19.0, 0.0, 0.0, 20000.0]
    d = reg.summary_dict()
    assert (d["size_band_missing"], d["size_band_unknown"]) == (1, 1)
    assert "1 kept rows without a size band (counted as 0)" in reg.summary()


# ----------------------------------------------------------------------- errors


def test_malformed_csv_wrong_field_count_names_file_and_line(tmp_path):
    path = tmp_path / "broken.csv"
    lines = ["siret,naf,lon,lat"] + [f"{i},25.62A,6.5,46.0" for i in range(1, 6)]
    lines.insert(4, "99,25.62A,6.5,46.0,extra")  # line 5 of the file
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataFileError) as err:
        read_registry(path, id="siret", sector="naf", x="lon", y="lat", crs=4326)
    message = str(err.value)
    assert "broken.csv" in message
    assert "line 5" in message
    assert "expected 4 fields" in message and "found 5" in message


def test_malformed_csv_bad_bytes_names_file_and_line(tmp_path):
    path = tmp_path / "latin.csv.gz"
    body = b"siret,naf,name,lon,lat\n1,25.62A,Ok,6.5,46.0\n2,25.62A,"
    body += "Décolletage".encode("latin-1") + b",6.5,46.0\n"
    path.write_bytes(gzip.compress(body))
    with pytest.raises(DataFileError) as err:
        read_registry(path, id="siret", sector="naf", name="name", x="lon", y="lat", crs=4326)
    message = str(err.value)
    assert "latin.csv.gz" in message and "line 3" in message and "encoding='latin-1'" in message
    reg = read_registry(
        path, id="siret", sector="naf", name="name", x="lon", y="lat", crs=4326, encoding="latin-1"
    )
    assert reg.establishments["name"].tolist() == ["Ok", "Décolletage"]


def test_truncated_gzip_and_bad_parquet(tmp_path):
    rows = clean_rows(2000)
    good = write_csv_gz(tmp_path / "full.csv.gz", rows)
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(good.read_bytes()[:20000])
    with pytest.raises(DataFileError, match=r"cut\.csv\.gz: line \d+"):
        read_registry(cut)
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(DataFileError, match=r"bad\.parquet: cannot be read as Parquet"):
        read_registry(bad)


def test_missing_mapped_column_and_unknown_layout(tmp_path):
    path = tmp_path / "x.csv"
    pd.DataFrame({"siret": ["1"], "code_naf": ["25.62A"], "lon": [6.5], "lat": [46.0]}).to_csv(
        path, index=False
    )
    with pytest.raises(SchemaError) as err:
        read_registry(path, sector="naf", x="lon", y="lat", crs=4326)
    message = str(err.value)
    assert "'naf' given as sector=" in message
    assert "'code_naf'" in message and "sector='code_naf'" in message
    with pytest.raises(SchemaError, match=r"no sector column\. Columns found: \['siret'"):
        read_registry(path)
    with pytest.raises(CRSError, match="Pass crs="):
        read_registry(path, sector="code_naf", x="lon", y="lat")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_registry(tmp_path / "nope.csv")


def test_preset_missing_required_column(tmp_path):
    rows = pd.DataFrame([sirene_row("1" * 14)]).drop(columns="siret")
    path = tmp_path / "s.csv"
    rows.to_csv(path, index=False)
    with pytest.raises(SchemaError, match="column 'siret' of the 'sirene' format is missing"):
        read_registry(path, format="sirene")


def test_summary_text(tmp_path):
    path, _ = dirty_file(tmp_path)
    text = read_registry(path).summary()
    assert "13 data rows; 4 establishments kept (30.8 %), 9 rows rejected, 1 repaired" in text
    assert "invalid_sector_code           3" in text
    assert "CRS: EPSG:4326" in text
    assert repr(read_registry(path)).startswith("<Registry: 4 establishments kept of 13 rows")


# ----------------------------------------------------------------------- shared data


@pytest.mark.shared
@pytest.mark.slow
def test_synthetic_france_rejects_match_dirt_json():
    path = shared_file("synthetic_france", "registry.csv.gz")
    dirt = json.loads(shared_file("synthetic_france", "dirt.json").read_text())
    reasons = [
        "closed_establishments",
        "missing_coordinates",
        "swapped_lat_lon",
        "invalid_sector_code",
        "duplicated_id",
    ]
    # the dirt reasons partition the rows that are not clean and active
    assert dirt["clean_active"] + sum(dirt[r] for r in reasons) == dirt["rows"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", ClustermapWarning)
        fixed = read_registry(path)
        rejected = read_registry(path, swapped="reject")
    # default: swapped rows repaired and kept
    d = fixed.summary_dict()
    assert d["rows"] == dirt["rows"]
    assert d["rejects"] == {r: dirt[r] for r in reasons if r != "swapped_lat_lon"}
    assert d["repairs"] == {"swapped_lat_lon": dirt["swapped_lat_lon"]}
    assert d["kept"] == dirt["clean_active"] + dirt["swapped_lat_lon"]
    # swapped="reject": swapped rows in the rejects
    d = rejected.summary_dict()
    assert d["rejects"] == {r: dirt[r] for r in reasons}
    assert d["kept"] == dirt["clean_active"]
    # html_in_name rows (part of clean_active) are kept with their names intact
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    html = raw[raw["denominationUsuelleEtablissement"].str.contains(r"[<>&\"]", regex=True)]
    assert len(html) == dirt["html_in_name"]
    est = fixed.establishments.set_index("establishment_id")
    assert (
        est.loc[html["siret"], "name"].tolist() == html["denominationUsuelleEtablissement"].tolist()
    )
    assert any("<script>" in n for n in html["denominationUsuelleEtablissement"])
    # every kept point is inside metropolitan France's box
    assert est.geometry.x.between(-5.8, 10).all() and est.geometry.y.between(41.2, 51.3).all()


@pytest.mark.shared
def test_paca_bars_real_extract_inside_bouches_du_rhone():
    path = shared_file("sirene", "paca_bars_5630Z_sirene2016.csv.gz")
    deps = gpd.read_parquet(shared_file("france_boundaries", "departements_2018.parquet"))
    reg = read_registry(
        path,
        id="siret",
        sector="apet700",
        size_band="tefet",
        commune="depcomet",
        name=["enseigne", "nomen_long"],
        x="longitude",
        y="latitude",
        crs=4326,
    )
    raw = pd.read_csv(path, dtype=str)
    assert reg.n_rows == len(raw) == 1674
    missing = raw[raw["latitude"].isna() | raw["longitude"].isna()]
    assert len(missing) == 20
    assert reg.rejects["reason"].eq("missing_coordinates").sum() == 20
    assert sorted(reg.rejects.loc[reg.rejects.reason == "missing_coordinates", "row"]) == sorted(
        (missing.index + 1).tolist()
    )
    bdr = deps.loc[deps["code"] == "13"].to_crs(reg.crs).geometry.item()
    assert reg.establishments.geometry.within(bdr).all()
    assert reg.summary_dict()["rejects"] == {"missing_coordinates": 20}
    assert len(reg) == 1674 - 20
    # sector codes read as NAF sous-classes: same counts as the raw apet700 column
    located = raw.drop(missing.index)
    expected = normalize_codes(located["apet700"]).value_counts().sort_index()
    got = reg.establishments["sector"].value_counts().sort_index()
    assert got.to_dict() == expected.to_dict()
    assert got["56.30Z"] == (located["apet700"] == "5630Z").sum()


def test_public_exports():
    assert cm.read_registry is read_registry
    assert cm.Registry is Registry
