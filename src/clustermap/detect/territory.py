"""Territory first: the clusters one territory holds, and the firms to call.

The analysis runs on the whole study area (significance and location quotients need the rest
of the country); a *territory* — a set of units, an EPCI or a département, or a polygon —
selects what is reported:

- :func:`portfolio`: every cluster touching the territory, then every sector in which the
  territory as a whole is significantly specialised without a cluster, with its size, LQ and
  interval, share of the national sector, scores, related clusters, and the territory's rank
  among the territories of the same kind (other EPCI, other départements);
- :func:`firm_list`: the establishments of a cluster inside the territory, to contact. SIRENE's
  statistical secrecy is respected: an establishment whose ``statutDiffusionEtablissement`` is
  not ``O`` is counted but not listed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..core.schema import (
    CLUSTER_ID,
    COMMUNE,
    EMPLOYEES,
    ESTABLISHMENT_ID,
    ESTABLISHMENTS,
    NAME,
    SECTOR,
    SIZE_BAND,
    UNIT_ID,
)
from ..errors import SchemaError
from ..stats.dispersion import negative_binomial_sf, overdispersed_interval

__all__ = [
    "DIFFUSION",
    "Territory",
    "export_firms",
    "firm_list",
    "portfolio",
    "resolve_territory",
]

#: SIRENE column of the diffusion status (``O``: diffusible; ``P``: partially, not listed)
DIFFUSION = "statutDiffusionEtablissement"

#: SIRENE address columns shown in the firm lists when the registry kept them
ADDRESS = (
    "numeroVoieEtablissement",
    "typeVoieEtablissement",
    "libelleVoieEtablissement",
    "codePostalEtablissement",
    "libelleCommuneEtablissement",
)


@dataclass
class Territory:
    """The units of a territory, its name, and the territories of the same kind.

    Attributes
    ----------
    ids : pandas.Index
        Unit ids in the territory.
    name : str
        Its name (given, or the code).
    kind : str
        ``"units"``, ``"epci"``, ``"departement"`` or ``"polygon"``.
    peers : pandas.Series or None
        Unit id -> territory of the same kind (for the ranks), when known.
    """

    ids: pd.Index
    name: str
    kind: str
    peers: pd.Series | None = None


def _epci_membership(cog: Any) -> tuple[pd.Series, dict[str, str]]:
    """Commune -> EPCI code, and EPCI code -> name, from a COG table or ``epci.json``."""
    if isinstance(cog, str | Path) and str(cog).lower().endswith(".json"):
        import json

        data = json.loads(Path(cog).read_text(encoding="utf-8"))
        if not isinstance(data, list) or not all("membres" in e for e in data[:1]):
            raise SchemaError(f"{Path(cog).name}: expected the EPCI list (with 'membres').")
        rows = {str(m["code"]): str(e["code"]) for e in data for m in e.get("membres", [])}
        names = {str(e["code"]): str(e.get("nom", e["code"])) for e in data}
        return pd.Series(rows, dtype=object), names
    table = cog if isinstance(cog, pd.DataFrame) else pd.read_csv(cog, dtype=str)
    if not {"code", "codeEpci"} <= set(table.columns):
        raise SchemaError(
            "cog= needs the commune table with columns 'code' and 'codeEpci' (the COG "
            "table of clustermap.datasets.fetch_cog, flattened) or the EPCI list epci.json; "
            f"columns are {list(table.columns)[:10]}."
        )
    table = table[table["codeEpci"].astype(str).str.len() > 0]
    member = pd.Series(table["codeEpci"].astype(str).to_numpy(), index=table["code"].astype(str))
    return member[~member.index.duplicated()], {}


def resolve_territory(
    territory: Any, units: Any, *, cog: Any = None, name: str | None = None
) -> Territory:
    """The units of a territory given as unit ids, an EPCI or département code, or a polygon.

    Parameters
    ----------
    territory : sequence of unit ids, str, shapely geometry or GeoDataFrame
        Unit ids; a 9-digit EPCI SIREN code (needs ``cog``); a département code (``"74"``,
        ``"2A"``, ``"971"``) when the units are communes; or a polygon (units whose
        representative point lies inside).
    units : geopandas.GeoDataFrame
        The analysis units (``result.units``).
    cog : DataFrame, path, optional
        Commune -> EPCI membership: a table with columns ``code`` and ``codeEpci`` (CSV or
        DataFrame) or the ``epci.json`` of :func:`clustermap.datasets.fetch_cog`.
    name : str, optional
        The territory's name in the report (default: the EPCI name when known, or the code).

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import Point
    >>> units = gpd.GeoDataFrame(geometry=[Point(0, 0)] * 3, crs=2154,
    ...                          index=pd.Index(["74081", "74264", "01283"], name="unit_id"))
    >>> t = resolve_territory("74", units)
    >>> list(t.ids), t.kind, t.peers.tolist()
    (['74081', '74264'], 'departement', ['74', '74', '01'])
    >>> cog = pd.DataFrame({"code": ["74081", "74264", "01283"],
    ...                     "codeEpci": ["200033116", "200033116", "200042935"]})
    >>> list(resolve_territory("200033116", units, cog=cog, name="Cluses Arve").ids)
    ['74081', '74264']
    """
    ids = pd.Index(units.index.astype(str))
    if isinstance(territory, str) and re.fullmatch(r"\d{9}", territory):
        if cog is None:
            raise SchemaError(
                f"territory={territory!r} looks like an EPCI code: pass cog= (the commune "
                "table with 'code' and 'codeEpci', or epci.json from fetch_cog) to find its "
                "communes."
            )
        member, names = _epci_membership(cog)
        peers = member.reindex(ids)
        inside = ids[(peers == territory).to_numpy()]
        kind, label = "epci", name or names.get(territory, territory)
        peers = pd.Series(peers.to_numpy(), index=ids)
    elif isinstance(territory, str) and re.fullmatch(r"\d{2}|2[AB]|97\d", territory.upper()):
        dep = pd.Series(np.where(ids.str.startswith("97"), ids.str[:3], ids.str[:2]), index=ids)
        inside = ids[(dep == territory.upper()).to_numpy()]
        kind, label, peers = "departement", name or territory, dep
    elif hasattr(territory, "geom_type") or hasattr(territory, "geometry"):
        geom = territory.union_all() if hasattr(territory, "union_all") else territory
        shape = getattr(territory, "crs", None)
        pts = units.geometry.representative_point()
        if shape is not None and units.crs is not None:
            pts = pts.to_crs(shape)
        inside = ids[pts.within(geom).to_numpy()]
        kind, label, peers = "polygon", name or "territory", None
    else:
        items = [territory] if isinstance(territory, str) else list(territory)
        wanted = pd.Index([str(t) for t in items])
        missing = wanted.difference(ids)
        if len(missing):
            raise SchemaError(
                f"territory has {len(missing)} unit id(s) that are not units, e.g. "
                f"{list(missing[:5])}; give ids of result.units."
            )
        inside = ids[ids.isin(wanted)]
        kind, label, peers = "units", name or "territory", None
    if not len(inside):
        raise SchemaError(
            f"territory={territory!r} holds no unit of the study area; check the code (and "
            "that the units are communes for a département or EPCI code)."
        )
    return Territory(pd.Index(inside), str(label), kind, peers)


class _Peers:
    """The territory's rank by LQ among the territories of the same kind, for any sector.

    The zones × sectors table is summed once; each sector's rank is then a lookup.
    """

    def __init__(self, result: Any, territory: Territory) -> None:
        self.me = None
        if territory.peers is None:
            return
        zone = territory.peers.dropna()
        table = result.table
        zones = zone.reindex(table[UNIT_ID].astype(str)).to_numpy()
        by = pd.DataFrame(
            {
                "zone": zones,
                SECTOR: table[SECTOR].astype(str).to_numpy(),
                ESTABLISHMENTS: table[ESTABLISHMENTS].to_numpy(),
            }
        ).dropna(subset=["zone"])
        self.counts = by.groupby([SECTOR, "zone"])[ESTABLISHMENTS].sum()
        self.totals = by.groupby("zone")[ESTABLISHMENTS].sum()
        mine = zone.reindex(territory.ids).dropna()
        self.me = mine.iloc[0] if len(mine) else None

    def rank(self, sector: str) -> str:
        """``"3 / 120"`` ("" when the territory has no peers or none of the sector)."""
        if self.me is None or sector not in self.counts.index.get_level_values(0):
            return ""
        own = self.counts.loc[sector]
        lq = (own / self.totals.reindex(own.index)) / (own.sum() / self.totals.sum())
        if self.me not in lq.index:
            return ""
        return f"{int((lq > lq[self.me]).sum()) + 1} / {len(self.totals)}"


def portfolio(result: Any, territory: Territory, *, alpha: float | None = None) -> pd.DataFrame:
    """The clusters and specialisations of a territory, leading ones first.

    Rows of kind ``cluster``: every cluster with at least one unit in the territory, in the
    order of ``result.clusters`` (traded first, by ``rank_score``), with the establishments of
    the cluster inside the territory. Rows of kind ``specialisation``: analysed sectors with no
    cluster there in which the territory as a whole holds at least ``min_establishments``
    establishments and a significant excess (the negative-binomial test of the detection, at
    ``alpha`` divided by the number of sectors), by LQ lower bound.

    Returns
    -------
    pandas.DataFrame
        ``kind``, ``sector``, ``sector_label``, ``sector_type``, ``cluster_id``,
        ``establishments`` (in the territory), ``lq``, ``lq_low``, ``lq_high`` (the cluster's,
        or the territory's), ``share_of_sector``, ``employees_low``, ``employees_high``,
        ``stars``, ``strong_cluster``, ``related``, ``rank_among_peers``.
    """
    params = result.parameters or {}
    alpha = float(params.get("alpha", 0.05)) if alpha is None else alpha
    ids = set(territory.ids.astype(str))
    peers = _Peers(result, territory)
    rows = []
    clusters = result.clusters
    table = result.table
    for _, c in clusters.iterrows():
        inside = [u for u in c["unit_ids"] if str(u) in ids]
        if not inside:
            continue
        cells = table[(table[CLUSTER_ID] == c[CLUSTER_ID]) & table[UNIT_ID].isin(inside)]
        rows.append(
            {
                "kind": "cluster",
                "sector": str(c[SECTOR]),
                "sector_label": c.get("sector_label"),
                "sector_type": c.get("sector_type", ""),
                CLUSTER_ID: c[CLUSTER_ID],
                "place": c.get("place"),
                ESTABLISHMENTS: float(cells[ESTABLISHMENTS].sum()),
                "cluster_establishments": float(c[ESTABLISHMENTS]),
                "lq": c.get("lq"),
                "lq_low": c.get("lq_low"),
                "lq_high": c.get("lq_high"),
                "share_of_sector": c.get("share_of_sector"),
                "employees_low": c.get("employees_low"),
                "employees_high": c.get("employees_high"),
                "stars": c.get("stars"),
                "strong_cluster": c.get("strong_cluster"),
                "related": _related_text(result, str(c[SECTOR])),
                "rank_among_peers": peers.rank(str(c[SECTOR])),
            }
        )
    rows += _specialisations(result, territory, alpha, {r["sector"] for r in rows}, peers)
    return pd.DataFrame(rows)


def _related_text(result: Any, sector: str) -> str:
    rel = getattr(result, "related", None)
    if rel is None or not len(rel):
        return ""
    mine = rel[(rel["sector_a"] == sector) | (rel["sector_b"] == sector)].head(3)
    return ", ".join(
        str(lb if a == sector else la)
        for a, la, lb in zip(mine["sector_a"], mine["label_a"], mine["label_b"])
    )


def _specialisations(
    result: Any, territory: Territory, alpha: float, skip: set, peers: _Peers
) -> list[dict]:
    """Sectors where the territory as a whole is significantly specialised, no cluster there."""
    sectors = result.sectors
    if sectors is None or not len(sectors):
        return []
    table = result.table
    totals = result.table.groupby(UNIT_ID)[ESTABLISHMENTS].sum()
    total = float(totals.sum())
    n_t = totals.reindex(territory.ids).fillna(0)
    inside = table[table[UNIT_ID].astype(str).isin(set(territory.ids.astype(str)))]
    obs = inside.groupby(SECTOR)[ESTABLISHMENTS].sum()
    info = sectors.set_index(SECTOR)
    n_analysed = int(info["analysed"].sum()) if "analysed" in info else len(info)
    floor = int((result.parameters or {}).get("min_establishments", 10))
    out = []
    for sector, o in obs.items():
        code = str(sector)
        if code in skip or sector not in info.index or not bool(info.loc[sector, "analysed"]):
            continue
        share = float(info.loc[sector, ESTABLISHMENTS]) / total
        e = float(n_t.sum()) * share
        a = float(info.loc[sector, "dispersion"]) if "dispersion" in info else 0.0
        extra = a * float(((n_t * share) ** 2).sum())
        p = float(negative_binomial_sf([o], [e], [extra])[0])
        if o < floor or p > alpha / max(n_analysed, 1):
            continue
        low, high = overdispersed_interval([o], [e], [extra])
        out.append(
            {
                "kind": "specialisation",
                "sector": code,
                "sector_label": info.loc[sector, "sector_label"],
                "sector_type": info.loc[sector].get("sector_type", ""),
                CLUSTER_ID: "",
                ESTABLISHMENTS: float(o),
                "lq": o / e,
                "lq_low": float(low[0]),
                "lq_high": float(high[0]),
                "share_of_sector": o / float(info.loc[sector, ESTABLISHMENTS]),
                "related": _related_text(result, code),
                "rank_among_peers": peers.rank(code),
            }
        )
    out.sort(key=lambda r: -r["lq_low"])
    return out


def firm_list(
    result: Any, territory: Territory, *, cluster_id: str | None = None
) -> tuple[pd.DataFrame, int]:
    """The establishments of the territory's clusters (or one), and how many were withheld.

    Establishments marked not diffusible (``statutDiffusionEtablissement`` other than ``O``,
    SIRENE's statistical secrecy) are counted, not listed. Columns: ``cluster_id``, ``name``,
    ``siret``, ``commune``, ``address`` (when the registry kept the SIRENE address fields),
    ``size_band``, ``sector``, ``sector_label``. Registry input only (an empty table for
    counts).
    """
    est = getattr(result, "establishments", None)
    columns = [
        CLUSTER_ID,
        "name",
        "siret",
        "commune",
        "address",
        "size_band",
        SECTOR,
        "sector_label",
    ]
    if est is None or CLUSTER_ID not in est.columns:
        return pd.DataFrame(columns=columns), 0
    ids = set(territory.ids.astype(str))
    sel = est[(est[CLUSTER_ID] != "") & est[UNIT_ID].astype(str).isin(ids)]
    if cluster_id is not None:
        sel = sel[sel[CLUSTER_ID] == cluster_id]
    withheld = 0
    if DIFFUSION in sel.columns:
        open_ = sel[DIFFUSION].fillna("O").astype(str).str.upper().eq("O")
        withheld = int((~open_).sum())
        sel = sel[open_.to_numpy()]
    from ..taxonomy import sector_labels

    names = result.units["name"] if "name" in result.units.columns else None
    commune = sel[UNIT_ID].astype(str)
    if names is not None:
        commune = commune.map(lambda u: f"{names.get(u, u)} ({u})")
    address = pd.Series("", index=sel.index)
    for col in ADDRESS:
        if col in sel.columns:
            address = (address + " " + sel[col].fillna("").astype(str)).str.strip()
    out = pd.DataFrame(
        {
            CLUSTER_ID: sel[CLUSTER_ID].to_numpy(),
            "name": sel[NAME].fillna("").astype(str).to_numpy() if NAME in sel else "",
            "siret": sel[ESTABLISHMENT_ID].astype(str).to_numpy(),
            "commune": commune.to_numpy(),
            "address": address.to_numpy(),
            "size_band": sel[SIZE_BAND].astype(object).to_numpy() if SIZE_BAND in sel else None,
            SECTOR: sel[SECTOR].astype(str).to_numpy(),
            "sector_label": sector_labels(sel[SECTOR].astype(str)).to_numpy(),
        }
    )
    if COMMUNE in sel.columns and names is None:
        out["commune"] = sel[COMMUNE].astype(str).to_numpy()
    order = {c: i for i, c in enumerate(result.clusters[CLUSTER_ID])}
    out["_o"] = out[CLUSTER_ID].map(order)
    size = sel[EMPLOYEES] if EMPLOYEES in sel.columns else pd.Series(np.nan, index=sel.index)
    out["_size"] = pd.to_numeric(size, errors="coerce").fillna(-1).to_numpy()
    out = out.sort_values(["_o", "_size", "name"], ascending=[True, False, True])
    return out.drop(columns=["_o", "_size"]).reset_index(drop=True)[columns], withheld


def export_firms(
    result: Any, territory: Territory, path: str | Path, *, language: str = "fr"
) -> Path:
    """The firm lists as an Excel workbook (one sheet per cluster) or one CSV file.

    Cells that a spreadsheet would read as a formula (starting with ``=``, ``+``, ``-``,
    ``@``) are prefixed with ``'``; the file is written atomically.
    """
    from ..core.atomic import atomic_path, neutralise_formulas

    path = Path(path)
    firms, withheld = firm_list(result, territory)
    firms = neutralise_formulas(firms)
    suffix = path.suffix.lower()
    if suffix not in (".xlsx", ".csv"):
        raise ValueError(f"export path must end in .xlsx or .csv; got {path.name!r}.")
    with atomic_path(path) as tmp:
        if suffix == ".csv":
            firms.to_csv(tmp, index=False)
        else:
            with pd.ExcelWriter(tmp, engine="openpyxl") as book:
                note = (
                    "établissements non diffusibles, non listés"
                    if language == "fr"
                    else ("establishments not diffusible, not listed")
                )
                pd.DataFrame({"territory": [territory.name], note: [withheld]}).to_excel(
                    book, sheet_name="info", index=False
                )
                for i, (cid, part) in enumerate(firms.groupby(CLUSTER_ID, sort=False), 1):
                    # Excel: 31 characters, unique, none of []:*?/\
                    sheet = f"{i:02d} " + re.sub(r"[\[\]:*?/\\]", "_", str(cid))[:27]
                    part.to_excel(book, sheet_name=sheet, index=False)
    return path
