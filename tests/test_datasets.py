"""Tests of clustermap.datasets: the generator's known answer and the bundled demo files."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal
from shapely.geometry import box

import clustermap as cm
from clustermap.datasets import (
    DEMO_SECTORS,
    HTML_NAMES,
    _answer_from_csv,
    demo_path,
    make_territory,
)
from clustermap.errors import SchemaError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def territory() -> gpd.GeoDataFrame:
    return make_territory(n_units=300, random_state=11)


@pytest.fixture(scope="module")
def generated(territory):
    return cm.make_registry(territory, n_establishments=20_000, random_state=11, dirty=True)


def _luhn_ok(number: str) -> bool:
    digits = [int(c) for c in number][::-1]
    total = sum(
        d if i % 2 == 0 else (2 * d - 9 if 2 * d > 9 else 2 * d) for i, d in enumerate(digits)
    )
    return total % 10 == 0


def _active_clean(registry: pd.DataFrame) -> pd.DataFrame:
    ok = (
        (registry["etatAdministratifEtablissement"] == "A")
        & registry["longitude"].notna()
        & ~registry["siret"].duplicated()
    )
    return registry[ok]


def _core_lq(registry: pd.DataFrame, naf: str, core: list[str]) -> float:
    """LQ of the planted sector in its core units, by hand: (x_core,s / x_core) / (X_s / X)."""
    sector = registry["activitePrincipaleEtablissement"] == naf
    in_core = registry["codeCommuneEtablissement"].isin(core)
    return ((sector & in_core).sum() / in_core.sum()) / (sector.sum() / len(registry))


# --------------------------------------------------------------------------- generator


def test_same_seed_same_registry(territory, generated):
    registry, answer = generated
    again, answer_again = cm.make_registry(
        territory, n_establishments=20_000, random_state=11, dirty=True
    )
    assert_frame_equal(registry, again)
    assert_frame_equal(answer, answer_again)
    assert answer.attrs == answer_again.attrs
    other, _ = cm.make_registry(territory, n_establishments=20_000, random_state=12)
    assert not other["siret"].equals(registry["siret"].iloc[: len(other)])


def test_territory_is_deterministic_and_a_partition():
    a = make_territory(n_units=120, random_state=4)
    b = make_territory(n_units=120, random_state=4)
    assert_frame_equal(pd.DataFrame(a.drop(columns="geometry")), b.drop(columns="geometry"))
    assert a.geometry.geom_equals_exact(b.geometry, 0).all()
    assert a["code"].is_unique and a["nom"].is_unique
    metric = a.to_crs(2154)
    assert metric.is_valid.all()
    # a partition: the cells do not overlap (sum of areas = area of the union)
    assert metric.union_all().area == pytest.approx(metric.area.sum(), rel=1e-4)


def test_registry_columns_and_identifiers(generated):
    registry, answer = generated
    assert registry.columns.tolist() == [
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
    assert registry["siret"].str.fullmatch(r"\d{14}").all()
    assert (registry["siret"].str[:9] == registry["siren"]).all()
    assert all(_luhn_ok(s) for s in registry["siren"].iloc[:500])
    assert all(_luhn_ok(s) for s in registry["siret"].iloc[:500])
    dups = answer.attrs["dirt"]["duplicated_id"]
    assert registry["siret"].duplicated().sum() == dups
    assert (
        registry.loc[registry["siret"].duplicated(keep="first")].index.min()
        > len(registry) - dups - 1
    )
    assert (registry["nomenclatureActivitePrincipaleEtablissement"] == "NAFRev2").all()


def test_counts_add_up(generated):
    registry, answer = generated
    attrs = answer.attrs
    assert attrs["n_active"] == 20_000
    assert (registry["etatAdministratifEtablissement"] == "F").sum() == attrs["closed"] == 600
    dirt = attrs["dirt"]
    assert registry["longitude"].isna().sum() == dirt["missing_coordinates"]
    codes = registry["activitePrincipaleEtablissement"]
    assert (~codes.isin(DEMO_SECTORS["naf"])).sum() == dirt["invalid_sector_code"]
    swapped = registry["longitude"] > registry["latitude"]  # lon ~3, lat ~46 in this territory
    assert swapped.sum() == dirt["swapped_lat_lon"]
    assert len(registry) == 20_000 + attrs["closed"] + sum(dirt.values())
    dirt_rows = answer[answer["kind"] == "dirt"].set_index("name")["extra"].to_dict()
    assert dirt_rows == dirt
    planted = answer[answer["kind"] == "planted"]
    clean = _active_clean(registry[~swapped & codes.isin(DEMO_SECTORS["naf"])])
    assert len(clean) == 20_000
    # planted establishments are on top of the background: each planted sector has at least
    # its extra establishments in the units that received them
    for row in planted.itertuples():
        sector = clean[clean["activitePrincipaleEtablissement"] == row.naf]
        assert sector["codeCommuneEtablissement"].isin(row.communes).sum() >= row.extra


def test_points_lie_in_their_unit(territory, generated):
    registry, _ = generated
    clean = registry[registry["longitude"].notna() & (registry["longitude"] < registry["latitude"])]
    points = gpd.GeoDataFrame(
        clean[["codeCommuneEtablissement"]],
        geometry=gpd.points_from_xy(clean["longitude"], clean["latitude"]),
        crs=4326,
    )
    units = cm.read_units(territory, unit_id="code")
    got = cm.assign_units(points, units)
    assert (got.to_numpy() == clean["codeCommuneEtablissement"].to_numpy()).all()


def test_planted_clusters_are_concentrated(generated):
    registry, answer = generated
    clean = _active_clean(registry)
    for row in answer[answer["kind"] == "planted"].itertuples():
        lq = _core_lq(clean, row.naf, row.core)
        threshold = 1.3 if row.name.startswith("Pôle numérique") else 3.0
        assert lq > threshold, (row.name, lq)
        assert row.centre in row.communes
        assert set(row.core) <= set(row.communes)


def test_null_sectors_follow_population_and_beta(generated, territory):
    registry, answer = generated
    clean = _active_clean(registry)
    units = territory.set_index("code")
    pop = units["population"]
    quintile = pd.qcut(pop, 5, labels=False)

    def rate_by_quintile(naf: str) -> np.ndarray:
        counts = (
            clean[clean["activitePrincipaleEtablissement"] == naf]
            .groupby("codeCommuneEtablissement")
            .size()
            .reindex(units.index, fill_value=0)
        )
        rate = counts.groupby(quintile).sum() / pop.groupby(quintile).sum()
        return (rate / rate.mean()).to_numpy(), counts

    nulls = answer.loc[answer["kind"] == "null_sector", "naf"].tolist()
    assert nulls == ["10.71C", "96.02A", "43.21A", "86.21Z"]
    for naf in nulls:
        _, counts = rate_by_quintile(naf)
        assert np.corrcoef(counts, pop)[0, 1] > 0.9
        # beta = 1: counts per population quintile are those of the population share, up to
        # multinomial noise (|z| < 4 for each quintile)
        observed = counts.groupby(quintile).sum().to_numpy()
        expected = counts.sum() * (pop.groupby(quintile).sum() / pop.sum()).to_numpy()
        z = (observed - expected) / np.sqrt(expected)
        assert np.all(np.abs(z) < 4), (naf, z)
    agri, _ = rate_by_quintile("01.11Z")  # beta 0.35: more per inhabitant in the countryside
    assert agri[0] > 1.5 > 0.5 > agri[-1]
    services, _ = rate_by_quintile("70.22Z")  # beta 1.3: more per inhabitant in towns
    assert services[-1] > 1.5 and services[0] < 0.8


def test_html_names_are_present_and_active(generated):
    registry, answer = generated
    rows = registry[registry["denominationUsuelleEtablissement"].isin(HTML_NAMES)]
    assert sorted(rows["denominationUsuelleEtablissement"]) == sorted(HTML_NAMES)
    assert (rows["etatAdministratifEtablissement"] == "A").all()
    assert rows["longitude"].notna().all()
    first = answer.iloc[0]
    assert (rows["activitePrincipaleEtablissement"] == first["naf"]).sum() >= 2


def test_generator_over_given_polygons_and_centre():
    grid = gpd.GeoDataFrame(
        geometry=[
            box(x, y, x + 3000, y + 3000)
            for x in range(700_000, 760_000, 3000)
            for y in range(6_500_000, 6_560_000, 3000)
        ],
        crs=2154,
        index=pd.Index([f"G{i:03d}" for i in range(400)], name="unit_id"),
    )
    clusters = pd.DataFrame(
        [{"name": "test", "naf": "25.62A", "radius_km": 9.0, "extra": 200, "centre": "G210"}]
    )
    registry, answer = cm.make_registry(
        grid, n_establishments=8_000, clusters=clusters, random_state=1, closed_share=0
    )
    assert answer.loc[0, "centre"] == "G210"
    assert answer.loc[0, "core"][0] in {"G210", "G189", "G190", "G191", "G209", "G211"}
    assert len(registry) == 8_000
    # the points were drawn in Lambert-93 squares, given in lon/lat, and fall in their square
    pts = gpd.GeoDataFrame(
        geometry=gpd.points_from_xy(registry["longitude"], registry["latitude"]), crs=4326
    )
    got = cm.assign_units(pts, grid)
    assert (got.to_numpy() == registry["codeCommuneEtablissement"].to_numpy()).all()
    assert _core_lq(registry, "25.62A", answer.loc[0, "core"]) > 3
    with pytest.raises(SchemaError, match="centre unit 'nowhere'"):
        cm.make_registry(grid, n_establishments=8_000, clusters=clusters.assign(centre="nowhere"))
    with pytest.raises(SchemaError, match="not in 'sectors'"):
        cm.make_registry(grid, n_establishments=8_000, clusters=clusters.assign(naf="99.99Z"))
    with pytest.raises(ValueError, match="not larger than the 200 planted"):
        cm.make_registry(grid, n_establishments=150, clusters=clusters)


# --------------------------------------------------------------------------- bundled demo


def _load_build_demo():
    spec = importlib.util.spec_from_file_location("build_demo", ROOT / "datasets" / "build_demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_demo_generator_is_deterministic_and_reproduces_the_bundled_demo(tmp_path):
    build = _load_build_demo()
    first, second = build.build(tmp_path / "a"), build.build(tmp_path / "b")
    for name in ("registry", "answer_key", "build_info"):  # same bytes on every run
        assert first[name].read_bytes() == second[name].read_bytes(), name
    recorded = json.loads((ROOT / "datasets" / "demo_build_info.json").read_text())
    fresh_key = pd.read_csv(first["answer_key"], dtype=str, keep_default_na=False)
    bundled_key = pd.read_csv(demo_path("answer_key"), dtype=str, keep_default_na=False)
    fresh_reg = pd.read_csv(first["registry"], dtype=str, keep_default_na=False)
    bundled_reg = pd.read_csv(demo_path("registry"), dtype=str, keep_default_na=False)
    fresh = gpd.read_parquet(first["units"])
    bundled = gpd.read_parquet(demo_path("units"))
    # what no library version can change: sizes, the planted design, the dirt and the
    # columns, the sector mix of the registry
    assert len(fresh) == len(bundled) and fresh.crs == bundled.crs
    assert list(fresh.columns) == list(bundled.columns)
    assert list(fresh_reg.columns) == list(bundled_reg.columns)
    assert len(fresh_reg) == len(bundled_reg)
    design = ["kind", "name", "naf", "radius_km", "extra", "strength"]
    assert_frame_equal(fresh_key[design], bundled_key[design])
    for col in ("activitePrincipaleEtablissement", "etatAdministratifEtablissement"):
        assert fresh_reg[col].value_counts().equals(bundled_reg[col].value_counts()), col
    if build.library_versions() != recorded:
        # GEOS's Voronoi cells, PROJ's conversion and numpy's vectorised functions may
        # move values in the last place, which can reorder units: the bundled files stay
        # the reference (datasets/build_demo.py explains), checked above for their design
        return
    for name in ("registry", "answer_key"):
        assert first[name].read_bytes() == demo_path(name).read_bytes(), name
    assert_frame_equal(
        pd.DataFrame(fresh.drop(columns="geometry")), pd.DataFrame(bundled.drop(columns="geometry"))
    )
    assert fresh.geometry.geom_equals_exact(bundled.geometry, 1e-9).all()


def test_demo_is_small_and_as_documented():
    files = [demo_path(n) for n in ("registry", "units", "answer_key")]
    assert sum(f.stat().st_size for f in files) < 5_000_000
    demo = cm.load_demo()
    assert len(demo.units) == 1500
    assert demo.units.crs.to_epsg() == 4326
    registry = pd.read_csv(demo.registry_path, dtype=str)
    assert len(registry) == 51_950
    assert (registry["etatAdministratifEtablissement"] == "F").sum() == 1_500
    key = demo.answer_key
    assert key["kind"].value_counts().to_dict() == {"planted": 6, "null_sector": 4, "dirt": 4}
    assert key.equals(_answer_from_csv(demo.answer_key_path))
    summary = demo.registry.summary_dict()
    dirt = key[key["kind"] == "dirt"].set_index("name")["extra"].to_dict()
    assert summary["rejects"] == {
        "closed_establishments": 1_500,
        "missing_coordinates": dirt["missing_coordinates"],
        "invalid_sector_code": dirt["invalid_sector_code"],
        "duplicated_id": dirt["duplicated_id"],
    }
    assert summary["repairs"] == {"swapped_lat_lon": dirt["swapped_lat_lon"]}
    # planted clusters, checked on the registry as read: LQ in the core units by hand
    est = demo.registry.establishments
    x = pd.DataFrame(
        {
            "activitePrincipaleEtablissement": est["sector"],
            "codeCommuneEtablissement": est["commune"],
        }
    )
    for row in key[key["kind"] == "planted"].itertuples():
        lq = _core_lq(x, row.naf, row.core)
        assert lq > (1.3 if row.naf == "62.01Z" else 3.0), (row.name, lq)


def test_demo_path_errors():
    with pytest.raises(FileNotFoundError, match=r"build_demo\.py"):
        demo_path("missing.csv")


def test_default_territory_is_make_territory():
    registry, answer = cm.make_registry(n_units=80, n_establishments=3_000, random_state=5)
    same, same_answer = cm.make_registry(
        make_territory(n_units=80, random_state=5), n_establishments=3_000, random_state=5
    )
    assert_frame_equal(registry, same)
    assert_frame_equal(answer, same_answer)
    assert set(registry["codeCommuneEtablissement"]) <= {f"D{i:04d}" for i in range(1, 81)}
