"""Commune codes of any vintage mapped to the 2018 polygons: the shipped table against the
COG rules, its use in detection on counts, and the real files' codes."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

import clustermap as cm
from clustermap.errors import ClustermapWarning
from clustermap.io.communes import harmonise_communes, looks_like_communes
from conftest import shared_file

ROOT = Path(__file__).resolve().parents[1]


def test_each_kind_of_code_reaches_its_2018_commune():
    out = harmonise_communes(
        pd.Series(["75108", "69381", "13216", "01119", "01001", "1001", "2A004", "99999", ""])
    )
    assert out["commune"].tolist() == [
        "75056",
        "69123",
        "13055",
        "01080",
        "01001",
        "01001",
        "2A004",
        pd.NA,
        pd.NA,
    ]
    assert out["how"].tolist() == [
        "arrondissement",
        "arrondissement",
        "arrondissement",
        "merged",
        "same",
        "same",
        "same",
        "unknown",
        "unknown",
    ]
    table = pd.read_csv(
        ROOT / "src" / "clustermap" / "data" / "commune_codes_2018.csv.gz", dtype=str
    )
    assert (table["how"] == "same").sum() == 35_357  # every 2018 polygon
    assert (table["how"] == "arrondissement").sum() == 20 + 9 + 16  # Paris, Lyon, Marseille
    new = table[table["how"] == "new_commune"]
    assert len(new) and out.index.equals(pd.RangeIndex(9))
    assert harmonise_communes(new["code"])["commune"].tolist() == new["code_2018"].tolist()
    with pytest.raises(ValueError, match="Only the 2018"):
        harmonise_communes(["01001"], vintage=2024)
    assert looks_like_communes(["13055", "2B033"]) and not looks_like_communes(["D0001"])


def test_counts_by_arrondissement_land_on_their_city():
    """Marseille counted by arrondissement (as SIRENE and URSSAF do) against polygons where
    Marseille is one commune: the rows are summed on 13055 and reported, nothing dropped."""
    ids = ["13055"] + [f"13{i:03d}" for i in range(1, 100) if i != 55]
    units = gpd.GeoDataFrame(
        {"name": ids},
        geometry=[box(i % 10, i // 10, i % 10 + 1, i // 10 + 1) for i in range(len(ids))],
        index=pd.Index(ids, name="unit_id"),
        crs=2154,
    )
    rng = np.random.default_rng(0)
    counts = pd.DataFrame(
        {"25.62A": rng.poisson(2, len(ids)), "47.11B": rng.poisson(30, len(ids))}, index=ids
    ).drop(index="13055")
    arr = pd.DataFrame(
        {"25.62A": [40, 35, 0], "47.11B": [30, 20, 25]}, index=["13201", "13202", "13216"]
    )
    data = pd.concat([counts, arr])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = cm.detect_clusters(data, units, local_statistic=None, level=None)
    text = " ".join(str(w.message) for w in caught if issubclass(w.category, ClustermapWarning))
    assert "3 commune code(s) of the counts" in text and "arrondissement: 3" in text
    report = res.parameters["remapped_communes"]["arrondissement"]
    assert report == {"codes": 3, "establishments": 150, "examples": ["13201", "13202", "13216"]}
    assert res.parameters["dropped"] == {}
    cell = res.table[(res.table["unit_id"] == "13055") & (res.table["sector"] == "25.62A")]
    assert int(cell["establishments"].iloc[0]) == 75


@pytest.mark.shared
def test_build_script_reproduces_the_shipped_commune_table(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "build_commune_codes", ROOT / "datasets" / "build_commune_codes.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    path = module.build(
        shared_file("france_boundaries", "communes_cog_epci.csv.gz"),
        shared_file("france_boundaries", "communes_2018_simplified.parquet"),
        tmp_path,
    )
    shipped = ROOT / "src" / "clustermap" / "data" / path.name
    assert path.read_bytes() == shipped.read_bytes()


@pytest.mark.shared
def test_every_code_of_the_shared_files_maps_to_a_2018_commune():
    for folder in ("synthetic_france", "synthetic_france_v2"):
        codes = pd.read_csv(
            shared_file(folder, "registry.csv.gz"), dtype=str, usecols=["codeCommuneEtablissement"]
        )["codeCommuneEtablissement"]
        assert (harmonise_communes(codes.dropna())["how"] == "same").all(), folder
    bars = pd.read_csv(
        shared_file("sirene", "paca_bars_5630Z_sirene2016.csv.gz"), dtype=str, usecols=["depcomet"]
    )["depcomet"]
    out = harmonise_communes(bars)
    assert out["how"].value_counts().to_dict() == {"arrondissement": 932, "same": 742}
    assert set(out.loc[out["how"] == "arrondissement", "commune"]) == {"13055"}
    urssaf = cm.read_counts(shared_file("urssaf", "urssaf_commune_x_ape_ze_rouen_2006_2022.csv.gz"))
    assert (harmonise_communes(pd.Series(urssaf.establishments.index))["how"] == "same").all()
