"""Clusters over time: detection at each date, clusters linked across dates, and classed.

Method
------
1. **Detection at each date** with the same settings (:func:`clustermap.detect_clusters` on
   each table of the panel: a registry's stock at several dates from
   :func:`clustermap.stock_at_dates`, or the years of :func:`clustermap.read_count_panel`).
2. **Tracks**: two clusters of the same sector at two dates are the same cluster when they
   share a unit; the connected groups are the *tracks*. A track's **footprint** is the union of
   its units over all dates, fixed for the whole series so that a change of outline is not
   taken for a change of activity.
3. **Series** over the footprint at every date: establishments ``O_t``, the count expected
   from the footprint's whole activity and the sector's national share
   ``E_t = T_t × N_st / N_t``, their ratio (the footprint's LQ), the footprint's share of the
   national sector, and the sector's national count. Everything is *relative*: a registry's
   stock grows over time as establishments closed long ago drop out of it (the whole stock of
   a registry can triple in fifteen years), so raw counts grow for a static cluster too.
4. **Change test**: are the LQs at the first and the last date different? The exact
   conditional test of two Poisson rates (:func:`clustermap.stats.trend.rate_change_test`)
   uses the counts themselves (5 → 9 establishments is not 500 → 900), and a lasting local
   advantage (a commune's extra-Poisson frailty) cancels between the dates. The stocks at two
   dates share most of their establishments, which makes the test conservative. The
   p-values are adjusted over the tracks (Benjamini–Hochberg). The Mann–Kendall test of the
   LQ series (exact for up to 10 dates) is reported too, as emerging-hot-spot tools do; with
   five dates its smallest two-sided p-value is 1/60, so it serves to describe the shape
   (steady or not), not to class.
5. **Class** (``trend``):

   - ``new``: detected at the last date, not at the first, and its LQ rose significantly;
   - ``growing``: detected at the first and the last date, LQ rose significantly;
   - ``shrinking``: detected at the last date, LQ fell significantly;
   - ``disappeared``: detected before, not at the last date, LQ fell significantly;
   - ``stable``: detected at the last date, no significant change of its LQ (also when it
     was not detected at the first date: fewer establishments then, less power);
   - ``intermittent``: detected at some dates only, neither at the last date nor with a
     significant fall.

   ``growth`` (establishments, last over first) is shown against ``national_growth`` of the
   sector; ``relative_growth`` is their ratio minus 1 (the change of the footprint's share of
   the national sector).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..core.distributed import resolve_client
from ..core.progress import bar, progress_setting, set_progress
from ..core.schema import ESTABLISHMENTS
from ..errors import ClustermapWarning, SchemaError
from ..io.counts import CountTables
from ..stats.inference import adjust_pvalues
from ..stats.trend import mann_kendall, rate_change_test
from ..table import SectorTable, StockPanel, counts_table
from .options import DetectionOptions
from .result import ClusterResult

__all__ = ["TREND_CLASSES", "TrendResult", "cluster_trends"]

#: the classes of a track, from the most to the least urgent for a council
TREND_CLASSES = ("new", "growing", "stable", "shrinking", "disappeared", "intermittent")


@dataclass
class TrendResult:
    """Clusters followed over time (see :func:`cluster_trends`).

    Attributes
    ----------
    dates : list of str
        The panel's dates (ISO text, or years as text).
    trends : pandas.DataFrame
        One row per track (a cluster followed across dates): ``track_id``, ``sector``,
        ``sector_label``, ``place``, ``trend`` (class), ``detected`` (dates where a cluster
        was found), ``unit_ids`` (footprint), ``n_units``, ``establishments_first`` /
        ``_last``, ``expected_first`` / ``_last``, ``lq_first`` / ``_last``, ``growth``,
        ``national_growth``, ``relative_growth``, ``cagr`` (with dated panels),
        ``lq_ratio``, ``change_p``, ``change_q``, ``mk_s``, ``mk_tau``, ``mk_p``,
        ``rank_score`` (of its latest detection), ``cluster_ids`` (date -> ids).
    series : pandas.DataFrame
        One row per track and date: ``establishments``, ``expected``, ``lq``,
        ``share_of_sector``, ``national`` (the sector's national count), ``detected``.
    results : dict
        Date -> the :class:`ClusterResult` of that date.
    units : geopandas.GeoDataFrame
        The analysis units.
    parameters : dict
        Settings and what was left out.
    tables : list of scipy.sparse.csr_matrix
        The panel's counts at each date (units' rows × ``sectors``), for :meth:`territory`.
    sectors : pandas.Index
        The columns of ``tables``.

    Examples
    --------
    >>> res = TrendResult(["2010", "2020"], pd.DataFrame({"trend": ["new"]}), pd.DataFrame(),
    ...                   {}, None)
    >>> res
    <TrendResult: 1 clusters followed over 2 dates: 1 new>
    """

    dates: list[str]
    trends: pd.DataFrame
    series: pd.DataFrame
    results: dict[str, ClusterResult]
    units: gpd.GeoDataFrame | None
    parameters: dict[str, Any] = field(default_factory=dict)
    tables: list[sp.csr_matrix] = field(default_factory=list, repr=False)
    sectors: pd.Index | None = None

    def __repr__(self) -> str:
        counts = self.trends["trend"].value_counts() if len(self.trends) else pd.Series()
        words = ", ".join(f"{int(counts[c])} {c}" for c in TREND_CLASSES if c in counts)
        return (
            f"<TrendResult: {len(self.trends)} clusters followed over {len(self.dates)} "
            f"dates{': ' + words if words else ''}>"
        )

    def track(self, track_id: str) -> pd.DataFrame:
        """The series of one track, one row per date."""
        return self.series[self.series["track_id"] == track_id].reset_index(drop=True)

    def to_html(self, path: str | Path, **kwargs: Any) -> Path:
        """Write the report of the last date with its "Dynamique / Trends" section.

        Same keywords as :func:`clustermap.write_report` (``lang``, ``territory``, ...).
        """
        from ..viz.report import write_report

        return write_report(self.results[self.dates[-1]], path, trends=self, **kwargs)

    def territory(self, unit_ids: Sequence[str], *, min_establishments: int = 5) -> pd.DataFrame:
        """Every sector of a territory between the first and the last date.

        Parameters
        ----------
        unit_ids : sequence of str
            The territory's units (``Territory.ids`` of :func:`clustermap.resolve_territory`).
        min_establishments : int, default 5
            Sectors with fewer establishments in the territory at both dates are left out.

        Returns
        -------
        pandas.DataFrame
            One row per sector, largest first: ``sector``, ``establishments_first`` /
            ``_last``, ``lq_first`` / ``_last``, ``growth``, ``national_growth``,
            ``relative_growth`` (the change of the territory's share of the national sector)
            and ``trend`` (class of a followed cluster of that sector touching the territory,
            "" when none) — the data of the specialisation-versus-change chart.
        """
        if not self.tables:
            return pd.DataFrame()
        pos = self.units.index.get_indexer([str(u) for u in unit_ids])
        pos = pos[pos >= 0]
        first, last = self.tables[0], self.tables[-1]
        out = pd.DataFrame({"sector": self.sectors.astype(str)})
        for name, x in (("first", first), ("last", last)):
            here = np.asarray(x[pos].sum(axis=0)).ravel()
            nat = np.asarray(x.sum(axis=0)).ravel()
            share_here = here / max(here.sum(), 1)
            share_nat = nat / max(nat.sum(), 1)
            out[f"establishments_{name}"] = here.round().astype(np.int64)
            out[f"lq_{name}"] = np.where(share_nat > 0, share_here / np.where(share_nat > 0,
                                         share_nat, 1), np.nan)  # fmt: skip
            out[f"_nat_{name}"] = nat
        with np.errstate(divide="ignore", invalid="ignore"):
            out["growth"] = out["establishments_last"] / out["establishments_first"] - 1
            out["national_growth"] = out["_nat_last"] / out["_nat_first"] - 1
            out["relative_growth"] = (1 + out["growth"]) / (1 + out["national_growth"]) - 1
        out = out.replace([np.inf, -np.inf], np.nan)
        ids = {str(u) for u in unit_ids}
        touching = self.trends[[bool(ids & set(u)) for u in self.trends["unit_ids"]]] if len(
            self.trends) else self.trends  # fmt: skip
        cls = dict(zip(touching.get("sector", []), touching.get("trend", [])))
        out["trend"] = out["sector"].map(cls).fillna("")
        big = out[["establishments_first", "establishments_last"]].max(axis=1)
        out = out[(big >= min_establishments) & (out["sector"] != "(other)")]
        out = out.drop(columns=["_nat_first", "_nat_last"])
        return out.sort_values("establishments_last", ascending=False).reset_index(drop=True)


# ------------------------------------------------------------------------------ the panel
@dataclass
class _Panel:
    dates: list[str]
    years: list[float]  # decimal years (for the CAGR), NaN when unknown
    sectors: pd.Index
    tables: list[sp.csr_matrix]  # units rows (in the units' order) × sectors
    left_out: dict[str, int]


def _date_years(key: str) -> float:
    try:
        t = pd.Timestamp(key)
    except (ValueError, TypeError):
        return float("nan")
    return t.year + (t.day_of_year - 1) / (366 if t.is_leap_year else 365)


def _as_panel(panel: Any, units: gpd.GeoDataFrame, level: Any, nomenclature: str) -> _Panel:
    """Every date's table on the units' rows and one common set of sector columns."""
    if isinstance(panel, StockPanel):
        if panel.measure != "stock":
            raise SchemaError(
                "cluster_trends needs stocks (stock_at_dates(..., measure='stock')); "
                f"this panel holds {panel.measure!r} events (for space_time_scan)."
            )
        raw = {
            d: SectorTable(panel.unit_ids, panel.sectors, {ESTABLISHMENTS: t}, pd.DataFrame())
            for d, t in panel.tables.items()
        }
        years = [_date_years(d) for d in raw]
    elif isinstance(panel, Mapping) and len(panel):
        raw = {}
        for key, data in panel.items():
            if not isinstance(data, CountTables | pd.DataFrame):
                raise SchemaError(
                    f"panel[{key!r}] must be a units x sectors DataFrame or CountTables "
                    f"(clustermap.read_count_panel); got {type(data).__name__}."
                )
            raw[str(key)] = counts_table(data, level=level, nomenclature=nomenclature)
        years = [float(k) if str(k).isdigit() else _date_years(str(k)) for k in panel]
    else:
        raise SchemaError(
            "panel must be clustermap.stock_at_dates(...) or a mapping date -> counts "
            f"(clustermap.read_count_panel(...)); got {type(panel).__name__}."
        )
    if len(raw) < 2:
        raise SchemaError(f"A trend needs at least two dates; the panel has {len(raw)}.")
    sectors = pd.Index(sorted(set().union(*(set(t.sectors) for t in raw.values()))))
    tables, left_out = [], {}
    from .pipeline import _commune_targets  # commune codes of other vintages mapped

    for key, table in raw.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ClustermapWarning)
            target = _commune_targets(table, units, SimpleNamespace(params={}))
        x = table.measures[ESTABLISHMENTS].tocsr()
        ok = target >= 0
        lost = round(float(x[np.flatnonzero(~ok)].sum())) if (~ok).any() else 0
        if lost:
            left_out[key] = lost
        rows = sp.csr_matrix(
            (np.ones(int(ok.sum())), (target[ok], np.flatnonzero(ok))),
            shape=(len(units), len(table.unit_ids)),
        )
        cols = sectors.get_indexer(table.sectors)
        move = sp.csr_matrix(
            (np.ones(len(cols)), (np.arange(len(cols)), cols)), shape=(len(cols), len(sectors))
        )
        tables.append((rows @ x @ move).tocsr())
    return _Panel(list(raw), years, sectors, tables, left_out)


# ------------------------------------------------------------------------------- tracks
def _tracks(per_date: list[pd.DataFrame]) -> list[list[tuple[int, int]]]:
    """Groups of (date index, cluster row) of one sector sharing units across dates."""
    nodes = [(d, r) for d, frame in enumerate(per_date) for r in range(len(frame))]
    parent = list(range(len(nodes)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    where: dict[tuple[str, str], list[int]] = {}  # (sector, unit) -> nodes holding it
    for i, (d, r) in enumerate(nodes):
        row = per_date[d].iloc[r]
        for u in row["unit_ids"]:
            where.setdefault((str(row["sector"]), str(u)), []).append(i)
    for holders in where.values():
        for i in holders[1:]:
            a, b = find(holders[0]), find(i)
            if a != b:
                parent[b] = a
    groups: dict[int, list[tuple[int, int]]] = {}
    for i, node in enumerate(nodes):
        groups.setdefault(find(i), []).append(node)
    return list(groups.values())


def _classify(detected: list[bool], change_q: float, ratio: float, alpha: float) -> str:
    changed = change_q <= alpha and np.isfinite(change_q)
    up, down = changed and ratio > 1, changed and ratio < 1
    if detected[-1]:
        if up:
            return "growing" if detected[0] else "new"
        return "shrinking" if down else "stable"
    return "disappeared" if down else "intermittent"


# -------------------------------------------------------------------------------- public
def cluster_trends(
    panel: Any,
    units: gpd.GeoDataFrame | None = None,
    *,
    level: Any = None,
    sectors: Sequence[str] | None = None,
    alpha: float = 0.05,
    min_lq: float = 1.5,
    change_alpha: float = 0.05,
    graph: Any = None,
    options: DetectionOptions | Mapping[str, Any] | None = None,
    client: Any = None,
) -> TrendResult:
    """Detect the clusters at each date of a panel, follow them, and class their trend.

    The method is in the module documentation (``help(clustermap.detect.dynamics)``): the
    same detection at every date, clusters of a sector linked when they share units, a
    fixed footprint per followed cluster, its LQ at every date, and an exact test of the
    change of that LQ between the first and the last date (Benjamini–Hochberg over the
    clusters followed).

    Parameters
    ----------
    panel : StockPanel or mapping
        :func:`clustermap.stock_at_dates` (stocks of a registry, at its level), or a mapping
        date (or year) -> units × sectors counts (:func:`clustermap.read_count_panel`), in
        time order.
    units : geopandas.GeoDataFrame, optional
        Analysis units (default: the panel's own, for ``stock_at_dates``).
    level : str or mapping, optional
        Sector level of a mapping of counts (as in :func:`clustermap.detect_clusters`); a
        ``StockPanel`` is already at its level.
    sectors : sequence of str, optional
        Follow only these sectors (all sectors still count in the totals).
    alpha, min_lq, graph, options
        Detection settings at each date, as in :func:`clustermap.detect_clusters`.
    change_alpha : float, default 0.05
        FDR level of the change test over the followed clusters.
    client : dask.distributed.Client or str, optional
        Each date's detection by blocks of sectors on a Dask cluster, as in
        :func:`clustermap.detect_clusters` (same result).

    Returns
    -------
    TrendResult
        ``trends`` (one row per followed cluster, ordered: present at the last date first,
        by ``rank_score``), ``series`` (one row per cluster and date), ``results`` (the
        detection at each date).

    Raises
    ------
    SchemaError
        A panel of fewer than two dates, of event counts, or of the wrong type; units missing.

    Examples
    --------
    A 10 × 10 grid; sector "a" is planted in the corner block at 2010 and at 2020, and a
    second block of "a" appears in 2020:

    >>> import geopandas as gpd
    >>> from shapely.geometry import box
    >>> ids = [f"c{i:02d}" for i in range(100)]
    >>> cells = gpd.GeoDataFrame({"name": ids}, index=pd.Index(ids, name="unit_id"),
    ...     geometry=[box(i % 10, i // 10, i % 10 + 1, i // 10 + 1) for i in range(100)])
    >>> def year(blocks):
    ...     a = np.full(100, 8)
    ...     for b in blocks:
    ...         a[b] = 40
    ...     return pd.DataFrame({"a": a, "other": 200 - a}, index=ids)
    >>> corner, far = [0, 1, 2, 10, 11, 12, 20, 21, 22], [77, 78, 87, 88]
    >>> res = cm.cluster_trends({2010: year([corner]), 2020: year([corner, far])}, cells)
    >>> res.trends[["place", "trend"]].values.tolist()
    [['c00, c01, c02', 'stable'], ['c77, c78, c87', 'new']]
    """
    if not 0 < change_alpha < 1:
        raise ValueError(f"change_alpha must be in (0, 1); got {change_alpha!r}.")
    if units is None:
        units = getattr(panel, "units", None)
        if units is None:
            raise SchemaError("cluster_trends needs units= (the zoning of the panel's tables).")
    from .pipeline import _default_graph, _options, _prepare_units, detect_clusters

    units = _prepare_units(units)
    options = _options(options, {})
    client = resolve_client(client)
    data = _as_panel(panel, units, level, options.nomenclature)
    point_units = not units.geom_type.isin(["Polygon", "MultiPolygon"]).all()
    graph = _default_graph(graph, units, point_units, SimpleNamespace(params={}))
    results: dict[str, ClusterResult] = {}
    shown = progress_setting()
    steps = bar(total=len(data.dates), desc="cluster_trends", unit="date")
    set_progress(False)  # one bar over the dates, none inside each detection
    try:
        for key, x in zip(data.dates, data.tables):
            results[key] = _detect_at(detect_clusters, x, units, data, sectors, graph,
                                      alpha, min_lq, options, client)  # fmt: skip
            steps.update(1)
    finally:
        set_progress(shown)
        steps.close()
    _firms_at_last_date(panel, results[data.dates[-1]])
    trends, series = _follow(data, results, units, change_alpha)
    params = {
        "alpha": alpha,
        "min_lq": min_lq,
        "change_alpha": change_alpha,
        "left_out": data.left_out,
        "n_dates": len(data.dates),
    }
    return TrendResult(data.dates, trends, series, results, units, params, data.tables,
                       data.sectors)  # fmt: skip


def _firms_at_last_date(panel: Any, result: ClusterResult) -> None:
    """Give the last date's result its establishments (a registry's stock only).

    With their cluster, as a detection on a registry has them: reports and territory fiches
    then list the firms to call.
    """
    last = panel.last_stock() if isinstance(panel, StockPanel) else None
    if last is None or result.establishments is not None:
        return
    from .pipeline import _label_establishments

    result.establishments = _label_establishments(last, result.table)


def _detect_at(detect_clusters, x, units, data, sectors, graph, alpha, min_lq, options, client):
    """The detection at one date (its table already at the level, on the units' rows)."""
    table = SectorTable(units.index, data.sectors, {ESTABLISHMENTS: x}, pd.DataFrame())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClustermapWarning)
        return detect_clusters(
            table, units, level=None, sectors=_present(sectors, data.sectors, x),
            graph=graph, alpha=alpha, min_lq=min_lq, local_statistic=None,
            options=options, random_state=0, client=client,
        )  # fmt: skip


def _present(wanted: Sequence[str] | None, sectors: pd.Index, x: sp.csr_matrix) -> list | None:
    """The wanted sectors that have establishments at this date (all when None)."""
    if wanted is None:
        return None
    missing = pd.Index([str(s) for s in wanted]).difference(sectors.astype(str))
    if len(missing):
        raise SchemaError(
            f"sectors {list(missing)[:5]} are not in the panel; available e.g. {list(sectors[:5])}."
        )
    n_s = np.asarray(x.sum(axis=0)).ravel()
    keep = [s for s in map(str, wanted) if n_s[sectors.get_loc(s)] > 0]
    return keep or None


def _follow(data: _Panel, results: dict, units: gpd.GeoDataFrame, change_alpha: float):
    """Tracks, their series and their classes."""
    per_date = [results[d].clusters.reset_index(drop=True) for d in data.dates]
    national = np.vstack([np.asarray(x.sum(axis=0)).ravel() for x in data.tables])  # T × S
    totals = national.sum(axis=1)
    row_totals = [np.asarray(x.sum(axis=1)).ravel() for x in data.tables]
    rows, series = [], []
    for group in _tracks(per_date):
        first = per_date[group[0][0]].iloc[group[0][1]]
        sector = str(first["sector"])
        s = data.sectors.get_loc(sector)
        ids = sorted({str(u) for d, r in group for u in per_date[d].iloc[r]["unit_ids"]})
        pos = units.index.get_indexer(ids)
        obs = np.array([float(x[pos, s].sum()) for x in data.tables])
        tot = np.array([float(t[pos].sum()) for t in row_totals])
        exp = tot * national[:, s] / np.maximum(totals, 1)
        detected = [any(d == i for d, _ in group) for i in range(len(data.dates))]
        latest = max(group)
        last_row = per_date[latest[0]].iloc[latest[1]]
        rows.append(_track_row(sector, first, last_row, ids, obs, exp, national[:, s],
                               detected, data, group, per_date))  # fmt: skip
        for t, key in enumerate(data.dates):
            series.append(
                {
                    "date": key,
                    "establishments": round(float(obs[t])),
                    "expected": exp[t],
                    "lq": obs[t] / exp[t] if exp[t] > 0 else np.nan,
                    "share_of_sector": obs[t] / national[t, s] if national[t, s] else np.nan,
                    "national": round(float(national[t, s])),
                    "detected": detected[t],
                }
            )
    trends = pd.DataFrame(rows)
    series = pd.DataFrame(series)
    if not len(trends):
        return trends, series
    trends["change_q"] = adjust_pvalues(trends["change_p"].to_numpy(), correction="fdr_bh")
    trends["trend"] = [
        _classify(d, q, r, change_alpha)
        for d, q, r in zip(trends["detected_flags"], trends["change_q"], trends["lq_ratio"])
    ]
    trends["_present"] = [d[-1] for d in trends["detected_flags"]]
    trends = trends.sort_values(["_present", "rank_score"], ascending=False, kind="stable")
    trends["track_id"] = [f"{s}~{i + 1}" for i, s in enumerate(trends["sector"])]
    origin = np.repeat(np.arange(len(rows)), len(data.dates))  # trends' index before sorting
    series["track_id"] = trends["track_id"].reindex(origin).to_numpy()
    trends = trends.drop(columns=["_present", "detected_flags"]).reset_index(drop=True)
    order = {t: i for i, t in enumerate(trends["track_id"])}
    series = series.sort_values("track_id", key=lambda c: c.map(order), kind="stable")
    front = ["track_id", "sector", "sector_label", "place", "trend"]
    trends = trends[front + [c for c in trends.columns if c not in front]]
    return trends, series[["track_id"] + [c for c in series.columns if c != "track_id"]]


def _track_row(sector, first, last_row, ids, obs, exp, nat, detected, data, group,
               per_date) -> dict[str, Any]:  # fmt: skip
    lq = np.where(exp > 0, obs / np.where(exp > 0, exp, 1), np.nan)
    ratio, p = rate_change_test(obs[0], exp[0], obs[-1], exp[-1])
    mk_s, mk_tau, mk_p = mann_kendall(lq)
    growth = obs[-1] / obs[0] - 1 if obs[0] > 0 else np.nan
    nat_growth = nat[-1] / nat[0] - 1 if nat[0] > 0 else np.nan
    span = data.years[-1] - data.years[0]
    cagr = (obs[-1] / obs[0]) ** (1 / span) - 1 if obs[0] > 0 and span > 0 else np.nan
    return {
        "sector": sector,
        "sector_label": last_row.get("sector_label", first.get("sector_label", sector)),
        "place": str(last_row["place"]),
        "detected": [data.dates[i] for i, d in enumerate(detected) if d],
        "detected_flags": detected,
        "unit_ids": ids,
        "n_units": len(ids),
        "establishments_first": round(float(obs[0])),
        "establishments_last": round(float(obs[-1])),
        "expected_first": exp[0],
        "expected_last": exp[-1],
        "lq_first": lq[0],
        "lq_last": lq[-1],
        "lq_ratio": ratio,
        "growth": growth,
        "national_growth": nat_growth,
        "relative_growth": (1 + growth) / (1 + nat_growth) - 1 if nat[0] > 0 else np.nan,
        "cagr": cagr,
        "change_p": p,
        "mk_s": mk_s,
        "mk_tau": mk_tau,
        "mk_p": mk_p,
        "rank_score": float(last_row.get("rank_score", np.nan)),
        "cluster_ids": {data.dates[d]: str(per_date[d].iloc[r]["cluster_id"]) for d, r in group},
    }
