"""Territory first: resolution of a territory, its portfolio, the firms to call (statistical
secrecy respected, hostile names escaped), the Excel and CSV exports, the report that opens on
it, and the command line."""

from __future__ import annotations

import html
import re
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

import clustermap as cm
from clustermap.cli import main
from clustermap.detect.territory import export_firms, firm_list, portfolio, resolve_territory
from clustermap.errors import ClustermapWarning, SchemaError
from conftest import shared_file

XSS = "<script>alert(1)</script>"
FORMULA = '=HYPERLINK("http://x","y")'


@pytest.fixture(scope="module")
def demo_result():
    demo = cm.load_demo()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClustermapWarning)
        res = cm.detect_clusters(demo.registry, demo.units, local_statistic=None)
    return demo, res


def _territory_of(res, sector="25.62A"):
    """The ten units with most establishments of the cluster of ``sector``: a territory."""
    cid = res.clusters.loc[res.clusters["sector"] == sector, "cluster_id"].iloc[0]
    cells = res.table[res.table["cluster_id"] == cid]
    return cid, cells.nlargest(10, "establishments")["unit_id"].tolist()


def test_resolve_units_departement_epci_and_polygon(demo_result):
    _, res = demo_result
    _, ids = _territory_of(res)
    t = resolve_territory(ids, res.units, name="Vallée")
    assert sorted(t.ids) == sorted(ids) and t.kind == "units" and t.name == "Vallée"
    assert list(resolve_territory(ids[0], res.units).ids) == [ids[0]]  # one id, not letters
    with pytest.raises(SchemaError, match="not units"):
        resolve_territory(["nope"], res.units)
    with pytest.raises(SchemaError, match="cog="):
        resolve_territory("200033116", res.units)
    # a polygon: the units whose representative point is inside
    centre = res.units.loc[ids[0]].geometry.representative_point()
    circle = gpd.GeoSeries([centre.buffer(0.05)], crs=res.units.crs)
    t = resolve_territory(circle, res.units)
    inside = res.units.geometry.representative_point().within(circle.iloc[0])
    assert set(t.ids) == set(res.units.index[inside.to_numpy()])
    # an EPCI through a COG table, and its peers
    cog = pd.DataFrame(
        {
            "code": res.units.index,
            "codeEpci": np.where(res.units.index.isin(ids), "200000001", "200000002"),
        }
    )
    t = resolve_territory("200000001", res.units, cog=cog, name="CC test")
    assert sorted(t.ids) == sorted(ids) and t.kind == "epci"
    assert set(t.peers.dropna()) == {"200000001", "200000002"}


def test_portfolio_leads_with_the_territory_cluster(demo_result):
    _, res = demo_result
    cid, ids = _territory_of(res)
    cog = pd.DataFrame(
        {
            "code": res.units.index,
            "codeEpci": np.where(res.units.index.isin(ids), "200000001", "200000002"),
        }
    )
    t = resolve_territory("200000001", res.units, cog=cog)
    pf = portfolio(res, t)
    first = pf.iloc[0]
    assert first["kind"] == "cluster" and first["cluster_id"] == cid
    cells = res.table[(res.table["cluster_id"] == cid) & res.table["unit_id"].isin(ids)]
    assert first["establishments"] == cells["establishments"].sum()
    assert first["rank_among_peers"] == "1 / 2"
    # every cluster touching the territory is there, in the result's order
    touching = [
        c for c, u in zip(res.clusters["cluster_id"], res.clusters["unit_ids"]) if set(u) & set(ids)
    ]
    assert pf.loc[pf["kind"] == "cluster", "cluster_id"].tolist() == touching
    # a specialisation row, when there is one, is the territory's own LQ by hand
    spec = pf[pf["kind"] == "specialisation"]
    table = res.table
    n_t = table[table["unit_id"].isin(ids)]["establishments"].sum()
    total = table["establishments"].sum()
    for row in spec.itertuples():
        o = table[(table["unit_id"].isin(ids)) & (table["sector"] == row.sector)][
            "establishments"
        ].sum()
        n_s = res.sectors.set_index("sector").loc[row.sector, "establishments"]
        assert row.lq == pytest.approx(o / (n_t * n_s / total))


def test_firm_list_withholds_secret_rows_and_exports(demo_result, tmp_path):
    _, res = demo_result
    cid, ids = _territory_of(res)
    est = res.establishments.copy()
    members = est.index[(est["cluster_id"] == cid) & est["unit_id"].isin(ids)]
    est["statutDiffusionEtablissement"] = "O"
    est.loc[members[:7], "statutDiffusionEtablissement"] = "P"  # statistical secrecy
    est.loc[members[7], "name"] = XSS
    est.loc[members[8], "name"] = FORMULA
    res2 = cm.ClusterResult(**{**res.__dict__, "establishments": est})
    t = resolve_territory(ids, res2.units, name="Vallée <b>test</b>")
    firms, withheld = firm_list(res2, t, cluster_id=cid)
    assert withheld == 7
    assert len(firms) == len(members) - 7
    secret = set(est.loc[members[:7], "establishment_id"])
    assert not secret & set(firms["siret"])
    assert set(firms["siret"]) == set(est.loc[members[7:], "establishment_id"])
    # Excel: one sheet per cluster, same rows, formulas neutralised
    path = export_firms(res2, t, tmp_path / "firms.xlsx")
    import openpyxl

    book = openpyxl.load_workbook(path)
    assert book.sheetnames[0] == "info"
    all_firms, _ = firm_list(res2, t)
    n_sheets = all_firms["cluster_id"].nunique()
    assert len(book.sheetnames) == 1 + n_sheets
    sheet = book[book.sheetnames[1]]
    rows = list(sheet.iter_rows(values_only=True))
    part = all_firms[all_firms["cluster_id"] == all_firms["cluster_id"].iloc[0]]
    assert len(rows) - 1 == len(part)
    assert [r[2] for r in rows[1:]] == part["siret"].tolist()
    names = [r[1] for r in rows[1:]]
    assert "'" + FORMULA in names and FORMULA not in names
    assert book["info"].cell(2, 2).value == withheld  # withheld counted in the workbook
    # CSV too
    csv = pd.read_csv(export_firms(res2, t, tmp_path / "firms.csv"), dtype=str)
    assert len(csv) == len(all_firms)
    # the report: names are text, the secret rows are not listed, the count is said
    page = cm.write_report(res2, tmp_path / "r.html", territory=t).read_text(encoding="utf-8")
    assert XSS not in page and "<b>test</b>" not in page
    assert html.escape(XSS) in page
    fiches = re.search(r'id="cm-territory-fiches">(.*?)</section>', page, re.S).group(1)
    for siret in secret:
        assert siret not in fiches
    assert "7 ne sont pas listés" in html.unescape(fiches)
    # the report opens on the territory: its sections come before the national ones
    assert (
        page.index('id="cm-territory"')
        < page.index('id="cm-portfolio-section"')
        < page.index('id="cm-analysed"')
    )


def test_command_line_territory_and_excel(tmp_path, capsys, demo_result):
    _, res = demo_result
    _, ids = _territory_of(res)
    out = tmp_path / "territoire.html"
    xlsx = tmp_path / "firms.xlsx"
    code = main(
        [
            "demo",
            "--out",
            str(out),
            "--territory",
            ",".join(ids),
            "--territory-name",
            "Vallée",
            "--xlsx",
            str(xlsx),
            "--quiet",
        ]
    )
    assert code == 0, capsys.readouterr().err
    page = out.read_text(encoding="utf-8")
    assert 'id="cm-portfolio"' in page and "Vallée" in page
    import openpyxl

    assert len(openpyxl.load_workbook(xlsx).sheetnames) >= 2
    assert main(["demo", "--out", str(tmp_path / "x.html"), "--xlsx", str(xlsx), "--quiet"]) == 2
    assert "--territory" in capsys.readouterr().err


@pytest.mark.shared
@pytest.mark.slow
def test_the_arve_epci_report_lists_decolletage_first(tmp_path):
    """synthetic_france: the report of the CC Cluses-Arve et montagnes (EPCI 200033116) lists
    the planted décolletage cluster first, with its establishments in the EPCI."""
    registry = cm.read_registry(shared_file("synthetic_france", "registry.csv.gz"))
    units = cm.read_units(
        shared_file("france_boundaries", "communes_2018_simplified.parquet"),
        unit_id="code_insee",
        name="nom",
    )
    cog = shared_file("france_boundaries", "communes_cog_epci.csv.gz")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClustermapWarning)
        res = cm.detect_clusters(registry, units, local_statistic=None)
    t = cm.resolve_territory("200033116", res.units, cog=cog, name="CC Cluses-Arve et montagnes")
    pf = res.portfolio("200033116", cog=cog)
    assert pf.iloc[0]["sector"] == "25.62A" and pf.iloc[0]["kind"] == "cluster"
    firms = res.firms("200033116", cog=cog)
    est = res.establishments
    mine = est[(est["cluster_id"] == pf.iloc[0]["cluster_id"]) & est["unit_id"].isin(t.ids)]
    assert len(firms[firms["cluster_id"] == pf.iloc[0]["cluster_id"]]) == len(mine) > 100
    page = cm.write_report(res, tmp_path / "arve.html", territory=t).read_text(encoding="utf-8")
    body = html.unescape(re.search(r'id="cm-portfolio"(.*?)</table>', page, re.S).group(1))
    first_row = re.search(r"<tbody><tr>(.*?)</tr>", body, re.S).group(1)
    assert "25.62A" in first_row and "Décolletage" in first_row


def test_epci_from_the_etalab_epci_json(demo_result, tmp_path):
    """The epci.json of fetch_cog (Etalab's layout: code, nom, membres[].code) works as cog=."""
    import json

    _, res = demo_result
    _, ids = _territory_of(res)
    others = [u for u in res.units.index if u not in ids]
    data = [
        {"code": "200000001", "nom": "CC de la Vallée", "membres": [{"code": u} for u in ids]},
        {"code": "200000002", "nom": "CA du Reste", "membres": [{"code": u} for u in others]},
    ]
    path = tmp_path / "epci.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    t = resolve_territory("200000001", res.units, cog=path)
    assert sorted(t.ids) == sorted(ids) and t.name == "CC de la Vallée"


def test_sirene_diffusion_status_and_address_are_read_and_used(tmp_path):
    """A SIRENE file with statutDiffusionEtablissement and the address columns: read_registry
    keeps them, the firm list shows the address and withholds the P rows."""
    raw = pd.read_csv(cm.datasets.demo_path("registry"), dtype=str)
    rng = np.random.default_rng(0)
    raw["statutDiffusionEtablissement"] = np.where(rng.random(len(raw)) < 0.1, "P", "O")
    raw["numeroVoieEtablissement"] = "12"
    raw["libelleVoieEtablissement"] = "RUE DU DECOLLETAGE"
    path = tmp_path / "geo_siret_demo.csv"
    raw.to_csv(path, index=False)
    registry = cm.read_registry(path)
    assert {"statutDiffusionEtablissement", "libelleVoieEtablissement"} <= set(
        registry.establishments.columns
    )
    demo = cm.load_demo()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClustermapWarning)
        res = cm.detect_clusters(registry, demo.units, local_statistic=None)
    cid, ids = _territory_of(res)
    firms = res.firms(ids, cluster_id=cid)
    est = res.establishments
    members = est[(est["cluster_id"] == cid) & est["unit_id"].isin(ids)]
    secret = members["statutDiffusionEtablissement"] == "P"
    assert firms.attrs["withheld"] == int(secret.sum()) > 0
    assert len(firms) == int((~secret).sum())
    assert (firms["address"] == "12 RUE DU DECOLLETAGE").all()
