"""Tests of clustermap.taxonomy against the INSEE NAF table and the US cluster mapping."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import clustermap as cm
from clustermap.errors import SchemaError
from clustermap.taxonomy import (
    ARTEFACT_SECTORS,
    is_artefact_sector,
    is_valid,
    normalize_codes,
    roll_up,
    sector_labels,
)
from conftest import shared_file

NAF_CSV = ("nomenclatures", "naf_rev2_5_levels.csv")
US_MAPPING = (
    "us_cluster_mapping",
    "naics2012_to_us_cluster_mapping_benchmark_clusters.csv",
)


def test_public_names_are_exported():
    assert cm.roll_up is roll_up
    assert cm.normalize_codes is normalize_codes
    assert cm.sector_labels is sector_labels
    assert isinstance(ARTEFACT_SECTORS, dict)


# ----------------------------------------------------------------------- normalisation


def test_normalize_spellings_to_canonical():
    raw = ["25.62A", "2562A", "2562a", " 25.62a ", "25 62A", "25.62", "2562", "25.6", "256"]
    expected = ["25.62A"] * 5 + ["25.62", "25.62", "25.6", "25.6"]
    assert normalize_codes(raw).tolist() == expected


def test_normalize_divisions_sections_and_leading_zeros():
    assert normalize_codes(["01", "1", "01.11Z", "0111Z", "c", "A"]).tolist() == [
        "01",
        pd.NA,  # "1" is no NAF code (divisions have two digits)
        "01.11Z",
        "01.11Z",
        "C",
        "A",
    ]


@pytest.mark.parametrize(
    "bad",
    ["99.99Z", "ABCDE", "", "   ", "25.62AB", "2.562A", "25.6.2", "Z", "25.62Y", "00"],
)
def test_normalize_invalid_gives_na(bad):
    assert normalize_codes([bad]).isna().all()


def test_normalize_keeps_index_name_and_missing_values():
    s = pd.Series(["2562A", None, np.nan, pd.NA, 25], index=[10, 20, 30, 40, 50], name="naf")
    out = normalize_codes(s)
    assert out.index.tolist() == [10, 20, 30, 40, 50]
    assert out.name == "naf"
    assert str(out.dtype) == "string"
    assert out.tolist() == ["25.62A", pd.NA, pd.NA, pd.NA, pd.NA]


def test_scalar_in_scalar_out():
    assert normalize_codes("7010z") == "70.10Z"
    assert normalize_codes("nope") is None
    assert roll_up("78.20Z", "division") == "78"
    assert sector_labels("C") == "INDUSTRIE MANUFACTURIÈRE"


def test_is_valid_by_level():
    codes = ["25.62A", "25.62", "25.6", "25", "C", "25.62Y", None]
    assert is_valid(codes).tolist() == [True, False, False, False, False, False, False]
    assert is_valid(codes, level="classe").tolist() == [
        False,
        True,
        False,
        False,
        False,
        False,
        False,
    ]
    assert is_valid(codes, level=None).tolist() == [True] * 5 + [False, False]


# ----------------------------------------------------------------------- NAF table


@pytest.fixture(scope="module")
def naf_csv():
    path = shared_file(*NAF_CSV)
    return pd.read_csv(path, dtype=str, keep_default_na=False)


@pytest.mark.shared
def test_naf_codes_and_counts_match_insee_table(naf_csv):
    # Counts published for NAF rév. 2: 732 / 615 / 272 / 88 / 21.
    assert len(naf_csv) == 732
    subclasses = normalize_codes(naf_csv["sous_classe_nodot"])
    assert subclasses.tolist() == naf_csv["sous_classe"].tolist()
    assert is_valid(naf_csv["sous_classe"]).all()
    expected_counts = {"class": 615, "group": 272, "division": 88, "section": 21}
    columns = {"class": "classe", "group": "groupe", "division": "division", "section": "section"}
    for level, column in columns.items():
        rolled = roll_up(naf_csv["sous_classe"], level)
        assert rolled.tolist() == naf_csv[column].tolist(), level
        assert rolled.nunique() == expected_counts[level]
        assert is_valid(naf_csv[column], level=level).all()


@pytest.mark.shared
def test_naf_labels_match_insee_table_at_every_level(naf_csv):
    columns = {
        "subclass": ("sous_classe", "libelle_sous_classe_fr"),
        "class": ("classe", "libelle_classe_fr"),
        "group": ("groupe", "libelle_groupe_fr"),
        "division": ("division", "libelle_division_fr"),
        "section": ("section", "libelle_section_fr"),
    }
    for level, (code_col, label_col) in columns.items():
        # label inferred from the code's shape ...
        assert sector_labels(naf_csv[code_col]).tolist() == naf_csv[label_col].tolist(), level
        # ... and label of the sous-classe rolled up to the level
        from_sub = sector_labels(naf_csv["sous_classe"], level=level)
        assert from_sub.tolist() == naf_csv[label_col].tolist(), level


def test_roll_up_hand_example_all_levels():
    code = ["25.62A"]
    assert roll_up(code, "sous-classe").tolist() == ["25.62A"]
    assert roll_up(code, "classe").tolist() == ["25.62"]
    assert roll_up(code, "groupe").tolist() == ["25.6"]
    assert roll_up(code, "division").tolist() == ["25"]
    assert roll_up(code, "section").tolist() == ["C"]
    # other sections, from codes of several shapes
    assert roll_up(["01.11Z", "0111", "01.1", "01", "56.30Z", "86"], "section").tolist() == [
        "A",
        "A",
        "A",
        "A",
        "I",
        "Q",
    ]


def test_roll_up_to_finer_level_is_na():
    assert roll_up(["25", "C", "25.62"], "class").tolist() == [pd.NA, pd.NA, "25.62"]


def test_unknown_level_raises_with_choices():
    with pytest.raises(ValueError, match="'level' needs to be one of"):
        roll_up(["25.62A"], "naf5")
    with pytest.raises(ValueError, match="'nomenclature' needs to be one of"):
        roll_up(["25.62A"], "class", nomenclature="sic")


def test_roll_up_is_fast_on_600k_rows():
    rng = np.random.default_rng(0)
    pool = np.array(["25.62A", "2562B", "70.10Z", "56.30Z", "bad", "01.11Z"], dtype=object)
    codes = pd.Series(rng.choice(pool, size=600_000))
    start = time.perf_counter()
    out = roll_up(codes, "division")
    elapsed = time.perf_counter() - start
    expected = codes.map(
        {"25.62A": "25", "2562B": "25", "70.10Z": "70", "56.30Z": "56", "01.11Z": "01"}
    )
    assert out.fillna("NA").tolist() == expected.fillna("NA").tolist()
    assert elapsed < 5  # generous bound on a shared 2-core machine; typical < 0.2 s


# ----------------------------------------------------------------------- NACE, NAICS, prefix


def test_nace_four_levels():
    codes = ["25.62", "2562", "25.62A", "99.99", "C"]
    assert normalize_codes(codes, nomenclature="nace").tolist() == [
        "25.62",
        "25.62",
        pd.NA,  # NACE has no fifth level
        pd.NA,
        "C",
    ]
    assert roll_up(codes, "group", nomenclature="nace").tolist() == [
        "25.6",
        "25.6",
        pd.NA,
        pd.NA,
        pd.NA,
    ]
    assert sector_labels(["25.62"], nomenclature="nace").tolist() == ["Usinage"]
    with pytest.raises(ValueError, match="nomenclature='nace'"):
        roll_up(codes, "subclass", nomenclature="nace")


def test_naics_levels_by_name_and_digits():
    codes = ["336411", " 336412", "5415", "31", "3364a", "7"]
    assert roll_up(codes, "sector", nomenclature="naics").tolist() == [
        "33",
        "33",
        "54",
        "31",
        pd.NA,
        pd.NA,
    ]
    assert roll_up(codes, "industry_group", nomenclature="naics").tolist() == [
        "3364",
        "3364",
        "5415",
        pd.NA,
        pd.NA,
        pd.NA,
    ]
    assert (
        roll_up(codes, 5, nomenclature="naics").tolist()
        == roll_up(codes, "naics_industry", nomenclature="naics").tolist()
    )
    assert roll_up([336411], "subsector", nomenclature="naics").tolist() == ["336"]
    with pytest.raises(ValueError, match="from 2 to 6"):
        roll_up(codes, 7, nomenclature="naics")


def test_prefix_rollup():
    out = roll_up(["AB123", "AB9", "A", None], 2, nomenclature="prefix")
    assert out.tolist() == ["AB", "AB", pd.NA, pd.NA]
    with pytest.raises(ValueError, match="number of characters"):
        roll_up(["AB"], "division", nomenclature="prefix")


# ----------------------------------------------------------------------- user mappings


def test_mapping_most_detailed_key_wins_and_unmapped_is_na():
    mapping = {
        "25": "métal",
        "25.62": "décolletage",
        "C": "industrie",
        "7010Z": "sièges",
    }
    codes = ["25.62A", "25.61Z", "10.71C", "70.10Z", "70.22Z", "junk"]
    out = roll_up(codes, mapping)
    assert out.tolist() == ["décolletage", "métal", "industrie", "sièges", pd.NA, pd.NA]


def test_mapping_from_dataframe_and_series():
    table = pd.DataFrame({"code": ["25.62", "56.30Z"], "cluster": ["décolletage", "bars"]})
    codes = ["25.62B", "56.30Z", "47.11A"]
    expected = ["décolletage", "bars", pd.NA]
    assert roll_up(codes, table).tolist() == expected
    assert roll_up(codes, table.set_index("code")["cluster"]).tolist() == expected
    wide = table.assign(extra=1)
    with pytest.raises(SchemaError, match="code_column= and group_column="):
        roll_up(codes, wide)
    assert roll_up(codes, wide, code_column="code", group_column="cluster").tolist() == expected


def test_mapping_bad_keys_and_conflicts_raise():
    with pytest.raises(SchemaError, match=r"not valid 'naf' codes, e.g. \['99.99Z'\]"):
        roll_up(["25.62A"], {"99.99Z": "x"})
    with pytest.raises(SchemaError, match="two groups"):
        roll_up(["25.62A"], pd.DataFrame({"c": ["2562", "25.62"], "g": ["a", "b"]}))


def test_mapping_non_string_groups_kept():
    out = roll_up(["25.62A", "10.71C"], {"25": 1, "10": 2})
    assert out.tolist() == [1, 2]


@pytest.mark.shared
def test_us_cluster_mapping_benchmark():
    table = pd.read_csv(shared_file(*US_MAPPING), dtype=str)
    mapping = table.set_index("naics")["cluster"]
    # every code of the table maps to its own cluster
    out = roll_up(table["naics"], mapping, nomenclature="naics")
    # one row of the table (814110, private households) has no cluster: unmapped -> <NA>
    assert table["cluster"].isna().sum() == 1
    assert out.isna().tolist() == table["cluster"].isna().tolist()
    assert out.dropna().tolist() == table["cluster"].dropna().tolist()
    assert roll_up("814110", mapping, nomenclature="naics") is None
    assert out.nunique() == 70  # 51 traded + 19 local clusters
    # planted examples taken from the table, plus codes it does not cover
    probe = ["336411", "325412", "722511", "999999", "33"]
    expected = [
        table.loc[table.naics == "336411", "cluster"].item(),
        table.loc[table.naics == "325412", "cluster"].item(),
        table.loc[table.naics == "722511", "cluster"].item(),
        pd.NA,
        pd.NA,  # a 2-digit sector is coarser than every 6-digit key
    ]
    assert expected[:3] == [
        "Aerospace Vehicles and Defense",
        "Biopharmaceuticals",
        "Local Hospitality Establishments",
    ]
    assert roll_up(probe, mapping, nomenclature="naics").tolist() == expected
    # a DataFrame with explicit columns gives the same result
    same = roll_up(
        table["naics"], table, nomenclature="naics", code_column="naics", group_column="cluster"
    )
    assert same.fillna("-").tolist() == out.fillna("-").tolist()


# ----------------------------------------------------------------------- artefacts


def test_artefact_flags_at_every_level():
    codes = {
        "70.10Z": True,  # head offices
        "70.10": True,
        "70.1": True,
        "70": True,  # contains 70.10Z
        "M": True,  # contains 70.10Z
        "70.22Z": False,  # consulting: same division, not an artefact code
        "64.20Z": True,  # holding companies
        "64.19Z": False,
        "K": True,
        "78.10Z": True,  # placement agencies
        "78.20Z": True,  # temporary work
        "7830Z": True,
        "78": True,
        "N": True,
        "25.62A": False,
        "C": False,
        "bad": False,
    }
    out = is_artefact_sector(list(codes))
    assert out.tolist() == list(codes.values())


def test_artefact_flags_nace_and_naics():
    assert is_artefact_sector(["70.10", "78.20", "25.62"], nomenclature="nace").tolist() == [
        True,
        True,
        False,
    ]
    naics = ["551114", "551112", "561320", "5613", "56", "336411", "541611"]
    assert is_artefact_sector(naics, nomenclature="naics").tolist() == [
        True,
        True,
        True,
        True,
        True,
        False,
        False,
    ]


# --------------------------------------------------------------------------- cluster categories
def test_cluster_categories_cover_every_naf_subclass_with_names_and_a_type():
    cat = cm.cluster_categories()
    naf = cm.sector_labels(cat.index.to_series())
    assert len(cat) == 732 and naf.notna().all()  # every NAF sous-classe, each one real
    assert set(cat["type"]) == {"traded", "local"}
    assert cat["name_fr"].str.len().gt(0).all() and cat["name_en"].str.len().gt(0).all()
    # one name and one type per category
    per_cat = cat.groupby("category")[["name_fr", "name_en", "type"]].nunique()
    assert (per_cat == 1).all().all()
    # English names are the U.S. benchmark's: local ones say so
    assert (cat["name_en"].str.startswith("Local ") == (cat["type"] == "local")).all()
    # every override says why
    over = cat[cat["source"] == "override"]
    assert len(over) >= 10 and over["note"].str.len().gt(40).all()
    assert cat.loc["25.62A", "category"] == "metalworking_technology"
    assert cat.loc["25.62B", "type"] == "traded"
    assert cat.loc["85.20Z", "type"] == "local"  # primary schools serve their population
    assert cat.loc["84.11Z", "category"] == "local_public_administration"
    assert cm.cluster_categories(language="en").loc["22.29A", "name"] == "Plastics"


def test_cluster_category_level_everywhere_level_is_taken():
    codes = ["25.62A", "25.61Z", "22.29A", "56.30Z", "bad"]
    assert cm.roll_up(codes, "cluster_category").tolist() == [
        "metalworking_technology",
        "metalworking_technology",
        "plastics",
        "local_hospitality_establishments",
        pd.NA,
    ]
    # NACE classes take the category of their sous-classes
    assert cm.roll_up(["25.62"], "cluster_category", nomenclature="nace").tolist() == [
        "metalworking_technology"
    ]
    # NAICS codes take the U.S. benchmark cluster itself (the same category ids)
    assert cm.roll_up(["336411", "332721"], "cluster_category", nomenclature="naics").tolist() == [
        "aerospace_vehicles_and_defense",
        "metalworking_technology",
    ]
    with pytest.raises(ValueError, match="own mapping"):
        cm.roll_up(["AB"], "cluster_category", nomenclature="prefix")
    types = cm.sector_types(["plastics", "local_utilities"], level="cluster_category")
    assert types.tolist() == ["traded", "local"]
    # a division takes the type most of its sous-classes have
    cat = cm.cluster_categories()
    div = cat[cat.index.str.startswith("47")]["type"].value_counts().index[0]
    assert cm.sector_types("47") == div


def test_naics_categories_are_the_us_benchmark_clusters():
    us = cm.cluster_categories(nomenclature="naics")
    assert len(us) == 1065 and us["name_fr"].notna().all()
    assert set(us.loc[us["source"] == "override"].index.str[:2]) <= {"92", "54", "81"}
    assert us.loc["336411", "type"] == "traded" and us.loc["722511", "type"] == "local"
    # 51 traded benchmark clusters, all named in French
    assert us.loc[us["type"] == "traded", "category"].nunique() == 51


@pytest.mark.shared
def test_build_script_reproduces_the_shipped_category_files(tmp_path):
    import importlib.util

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location(
        "build_cluster_categories", root / "datasets" / "build_cluster_categories.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    folder = shared_file("concordances", "naf2_sous_classe_us_cluster.csv").parent
    paths = module.build(folder, tmp_path)
    shipped = root / "src" / "clustermap" / "data"
    for path in paths.values():
        assert path.read_bytes() == (shipped / path.name).read_bytes(), path.name
