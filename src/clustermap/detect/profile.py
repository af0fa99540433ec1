"""Step 6 of the detection: the cluster rows, their scores and their places.

Each region gets its LQ with the Garwood interval, employment (band midpoint and the
low-high band range) and the employment LQ, share of the sector, focus, European Cluster
Observatory stars and U.S. Cluster Mapping strong-cluster flags. The percentiles of the
flags and stars are taken over the regions of a coarser comparison zoning (``score_units``:
départements for French commune codes by default, as the CMP compares custom regions with
its economic areas), never over the small units a cluster is built from.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp
import shapely

from ..core.geo import metric_crs
from ..core.schema import (
    CLUSTER_ID,
    EMPLOYEES,
    EMPLOYEES_HIGH,
    EMPLOYEES_LOW,
    ESTABLISHMENTS,
    LQ,
    LQ_HIGH,
    LQ_LOW,
    P_VALUE,
    SECTOR,
    UNIT_NAME,
)
from ..errors import SchemaError
from ..io.communes import looks_like_communes
from .result import CLUSTER_COLUMNS
from .scores import star_rating, strong_cluster_flags

__all__ = ["AUTO_ZONE_UNITS", "cluster_frame", "composition", "membership", "outline"]


#: Target size (in median units) of the comparison zones built by ``score_units="auto"``
#: when the units are not French communes.
AUTO_ZONE_UNITS = 50


def membership(units: gpd.GeoDataFrame, zones: Any) -> tuple[sp.csr_matrix, str]:
    """Zones × units 0/1 matrix of the comparison zoning, and a description of the rule.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import Point
    >>> units = gpd.GeoDataFrame(geometry=[Point(0, 0)] * 3, crs=2154,
    ...                          index=pd.Index(["13001", "13002", "84001"], name="unit_id"))
    >>> member, rule = membership(units, "auto")
    >>> member.toarray().tolist()
    [[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    >>> rule
    'départements (first 2 or 3 characters of the commune codes)'
    """
    if isinstance(zones, str):
        if zones != "auto":
            raise ValueError(
                f"score_units must be 'auto', a GeoDataFrame, a Series or None; got {zones!r}."
            )
        ids = units.index.astype(str)
        if looks_like_communes(ids):
            dep = np.where(ids.str.startswith("97"), ids.str[:3], ids.str[:2])
            return _membership_from_labels(pd.Series(dep, index=units.index)), (
                "départements (first 2 or 3 characters of the commune codes)"
            )
        return _auto_squares(units)
    if isinstance(zones, pd.Series):
        labels = zones.reindex(units.index)
        if labels.isna().any():
            missing = list(units.index[labels.isna()][:5])
            raise SchemaError(
                f"score_units gives no zone for {int(labels.isna().sum())} unit(s), e.g. "
                f"{missing}; map every unit id to a zone label."
            )
        return _membership_from_labels(labels), "user zoning (Series)"
    if not isinstance(zones, gpd.GeoDataFrame):
        raise SchemaError(
            f"score_units must be 'auto', a GeoDataFrame of polygons (e.g. départements), a "
            f"Series (unit id -> zone) or None; got {type(zones).__name__}."
        )
    if zones.crs is None or units.crs is None:
        raise SchemaError("score_units and units need a CRS to be matched.")
    pts = gpd.GeoDataFrame(geometry=units.geometry.representative_point(), crs=units.crs)
    zones = zones.reset_index(drop=True).to_crs(units.crs)
    hit = gpd.sjoin(pts.reset_index(drop=True), zones[["geometry"]], predicate="within")
    hit = hit[~hit.index.duplicated()]
    member = sp.csr_matrix(
        (np.ones(len(hit)), (hit["index_right"].to_numpy(), hit.index.to_numpy())),
        shape=(len(zones), len(units)),
    )
    return member, "user zoning (polygons)"


def _membership_from_labels(labels: pd.Series) -> sp.csr_matrix:
    codes, uniques = pd.factorize(labels.astype(str), sort=True)
    return sp.csr_matrix(
        (np.ones(len(codes)), (codes, np.arange(len(codes)))), shape=(len(uniques), len(codes))
    )


def _auto_squares(units: gpd.GeoDataFrame) -> tuple[sp.csr_matrix, str]:
    """Squares of about AUTO_ZONE_UNITS median units laid over the units' points."""
    proj = units.geometry.to_crs(metric_crs(units)) if units.crs is not None else units.geometry
    pts = proj.representative_point()
    area = proj.area.to_numpy()
    if np.nanmedian(area) > 0:
        unit_area = float(np.nanmedian(area))
    else:  # point units: the study area shared out
        x0, y0, x1, y1 = pts.total_bounds
        unit_area = max((x1 - x0) * (y1 - y0), 1.0) / max(len(units), 1)
    side = float(np.sqrt(AUTO_ZONE_UNITS * unit_area))
    col = np.floor(pts.x.to_numpy() / side).astype(np.int64)
    row = np.floor(pts.y.to_numpy() / side).astype(np.int64)
    labels = pd.Series([f"{r}_{c}" for r, c in zip(row, col)], index=units.index)
    return _membership_from_labels(labels), (
        f"squares of {side / 1000:.1f} km (about {AUTO_ZONE_UNITS} median units each)"
    )


def reference(x: sp.csr_matrix, emp: sp.csr_matrix | None, sector_codes: pd.Index) -> pd.DataFrame:
    """Long table of the comparison regions (rows of ``x``) for the CMP / ECO percentiles."""
    xc = x.tocoo()
    n_i = np.asarray(x.sum(axis=1)).ravel()
    n_s = np.asarray(x.sum(axis=0)).ravel()
    rr, cc = xc.row, xc.col
    ref = pd.DataFrame({SECTOR: sector_codes.to_numpy()[cc], ESTABLISHMENTS: xc.data})
    with np.errstate(all="ignore"):
        if emp is not None:
            e_i = np.asarray(emp.sum(axis=1)).ravel()
            e_s = np.asarray(emp.sum(axis=0)).ravel()
            ref_emp = np.asarray(emp[rr, cc]).ravel()
            ref[EMPLOYEES] = ref_emp
            ref["_lq"] = ref_emp / (e_i[rr] * e_s[cc] / e_s.sum())
            ref["_focus"] = ref_emp / e_i[rr]
        else:
            ref[EMPLOYEES] = xc.data
            ref["_lq"] = xc.data / (n_i[rr] * n_s[cc] / n_s.sum())
            ref["_focus"] = xc.data / n_i[rr]
    return ref


def _place(ids: np.ndarray, names: np.ndarray | None, weights: np.ndarray, k: int = 3) -> str:
    """Names of the ``k`` units holding most of the sector (ids when names are unknown)."""
    order = np.argsort(-weights, kind="stable")[:k]
    if names is None:
        return ", ".join(str(i) for i in ids[order])
    return ", ".join(str(n) if pd.notna(n) else str(i) for i, n in zip(ids[order], names[order]))


def cluster_frame(
    regions: pd.DataFrame,
    units: gpd.GeoDataFrame,
    measures: dict[str, sp.csr_matrix],
    sectors: pd.Index,
    labels: np.ndarray,
    artefact: np.ndarray,
    ref: pd.DataFrame,
) -> gpd.GeoDataFrame:
    """One row per cluster region (columns ``CLUSTER_COLUMNS``), scored against ``ref``.

    ``regions`` is the output of :func:`~clustermap.detect.regions.find_regions` with a
    ``cluster_id`` column; ``measures`` the units × sectors matrices (``establishments`` and
    the employment ones when known); ``ref`` the comparison table of :func:`reference`.
    """
    x = measures[ESTABLISHMENTS]
    emp_mats = {k: v for k, v in measures.items() if k != ESTABLISHMENTS}
    n_s = np.asarray(x.sum(axis=0)).ravel()
    ids_np = units.index.to_numpy(dtype=object)
    names_np = units[UNIT_NAME].to_numpy(dtype=object) if UNIT_NAME in units.columns else None
    emp_scores = _EmploymentScores(emp_mats) if emp_mats else None
    records, geoms = [], []
    point_units = not units.geom_type.isin(["Polygon", "MultiPolygon"]).all()
    for reg in regions.itertuples(index=False):
        c, r = reg.sec, reg.rows
        counts = np.asarray(x[r, c].todense()).ravel()
        rec = {
            CLUSTER_ID: reg.cluster_id,
            SECTOR: sectors[c],
            "sector_label": labels[c],
            "place": _place(ids_np[r], None if names_np is None else names_np[r], counts),
            "unit_ids": [str(u) for u in ids_np[r]],
            "n_units": len(r),
            ESTABLISHMENTS: float(reg.O),
            LQ: float(reg.lq),
            LQ_LOW: float(reg.lq_low),
            LQ_HIGH: float(reg.lq_high),
            "share_of_sector": float(reg.O / n_s[c]),
            "focus": float(reg.O / reg.n_total),
            P_VALUE: float(reg.p_value),
            "artefact": bool(artefact[c]),
            "sector_type": "",
            "dispersion": np.nan,
            "rank_score": float(reg.rank_score),
            "strength": float(reg.strength),
        }
        rec.update(emp_scores.of(r, c) if emp_scores else _NO_EMPLOYMENT)
        records.append(rec)
        if point_units:  # a hull a map can draw, not a MultiPoint
            geoms.append(units.geometry.iloc[r].union_all().convex_hull)
        else:
            geoms.append(outline(units.geometry.to_numpy()[r]))
    if not records:
        return _empty_clusters(units.crs)
    frame = _comparison_scores(pd.DataFrame(records), ref, has_emp=bool(emp_mats))
    out = gpd.GeoDataFrame(frame, geometry=geoms, crs=units.crs)
    extra = [c for c in out.columns if c not in CLUSTER_COLUMNS and not c.startswith("_")]
    return out[[*CLUSTER_COLUMNS, *extra]].reset_index(drop=True)


_NO_EMPLOYMENT = {
    EMPLOYEES: np.nan,
    EMPLOYEES_LOW: np.nan,
    EMPLOYEES_HIGH: np.nan,
    "lq_employees": np.nan,
}


class _EmploymentScores:
    """Employment, employment LQ and its range between the size-band rules, per region."""

    def __init__(self, emp_mats: dict[str, sp.csr_matrix]) -> None:
        self.mats = emp_mats
        self.totals = {
            name: (
                np.asarray(m.sum(axis=1)).ravel(),
                np.asarray(m.sum(axis=0)).ravel(),
                float(m.sum()),
            )
            for name, m in emp_mats.items()
        }

    def of(self, r: np.ndarray, c: int) -> dict[str, float]:
        rec = {name: float(m[r, c].sum()) for name, m in self.mats.items()}
        e_i, e_s, e_tot = self.totals[EMPLOYEES]
        region_emp = float(e_i[r].sum())
        exp = region_emp * e_s[c] / e_tot if e_tot > 0 else np.nan
        rec["lq_employees"] = rec[EMPLOYEES] / exp if exp and exp > 0 else np.nan
        rec["_focus_emp"] = rec[EMPLOYEES] / region_emp if region_emp > 0 else np.nan
        # range of the employment LQ between the size-band rules (low, midpoint, high)
        rule_lqs = [rec["lq_employees"]]
        for name in (EMPLOYEES_LOW, EMPLOYEES_HIGH):
            tot_r, tot_s, tot = self.totals[name]
            den = float(tot_r[r].sum()) * tot_s[c] / tot if tot > 0 else 0.0
            rule_lqs.append(rec[name] / den if den > 0 else np.nan)
        finite = [v for v in rule_lqs if np.isfinite(v)]
        rec["lq_employees_low"] = min(finite) if finite else np.nan
        rec["lq_employees_high"] = max(finite) if finite else np.nan
        return rec


def _empty_clusters(crs: Any) -> gpd.GeoDataFrame:
    empty = gpd.GeoDataFrame(
        {c: pd.Series(dtype=object) for c in CLUSTER_COLUMNS if c != "geometry"},
        geometry=gpd.GeoSeries([], crs=crs),
        crs=crs,
    )
    return empty[list(CLUSTER_COLUMNS)]


def _comparison_scores(frame: pd.DataFrame, ref: pd.DataFrame, *, has_emp: bool) -> pd.DataFrame:
    """CMP strong-cluster flags and ECO stars against the comparison zoning, per sector."""
    size = frame[EMPLOYEES] if has_emp else frame[ESTABLISHMENTS]
    probe = pd.DataFrame(
        {
            SECTOR: frame[SECTOR],
            ESTABLISHMENTS: frame[ESTABLISHMENTS],
            EMPLOYEES: size,
            "_lq": frame["lq_employees"] if has_emp else frame[LQ],
            "_focus": frame["_focus_emp"] if has_emp else frame["focus"],
        }
    )
    ref = ref[ref[SECTOR].isin(set(frame[SECTOR]))].replace([np.inf, -np.inf], np.nan)
    probe = probe.replace([np.inf, -np.inf], np.nan)
    flags = strong_cluster_flags(probe, lq="_lq", reference=ref)
    stars = star_rating(probe, lq="_lq", focus="_focus", reference=ref)
    frame["strong_cluster"] = flags["strong_cluster"].to_numpy()
    frame["strong_cluster_p90"] = flags["strong_cluster_p90"].to_numpy()
    frame["stars"] = stars["stars"].to_numpy()
    return frame


def outline(parts: np.ndarray) -> Any:
    """The union of polygons that tile the plane (a coverage), by dissolving shared edges.

    A coverage union is linear in the number of edges, where a general union overlays every
    polygon; the result is checked (valid, and of area the sum of the parts: no overlap) and
    the general union is used when the parts are not a clean coverage.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> outline(np.array([box(0, 0, 1, 1), box(1, 0, 2, 1)])).area
    2.0
    >>> outline(np.array([box(0, 0, 2, 1), box(1, 0, 3, 1)])).area  # overlapping: union
    3.0
    """
    if len(parts) == 1:
        return parts[0]
    total = float(shapely.area(parts).sum())
    try:
        out = shapely.coverage_union_all(parts)
    except shapely.errors.GEOSException:
        return shapely.union_all(parts)
    if shapely.is_valid(out) and abs(out.area - total) <= 1e-9 * max(total, 1e-300):
        return out
    return shapely.union_all(parts)


def composition(
    clusters: pd.DataFrame,
    code_x: sp.csr_matrix,
    unit_ids: pd.Index,
    codes: pd.Index,
    code_group: pd.Series,
    code_labels: pd.Series | None = None,
) -> pd.DataFrame:
    """What each code of a group brings to the clusters found for that group.

    For a cluster of a group of codes (a cluster category, or a group of a user mapping),
    one row per code of the group present in the cluster's units: ``establishments``,
    ``expected`` (the region's total activity × the code's national share, as for any LQ),
    ``lq`` and ``excess_share``, the share of the cluster's excess ``sum(max(O - E, 0))``
    this code carries (the codes that drive it come first). :func:`clustermap.detect_clusters`
    adds ``single_code_cluster``: whether the code is a cluster on its own there (a cluster
    of a detection by single codes with the same settings overlaps it).

    Parameters
    ----------
    clusters : pandas.DataFrame
        ``cluster_id``, ``sector`` (the group) and ``unit_ids``.
    code_x : scipy.sparse.csr_matrix
        Establishments, units × codes, every code (the total activity of a unit is its row
        sum).
    unit_ids, codes : pandas.Index
        Rows and columns of ``code_x``.
    code_group : pandas.Series
        Code -> group.
    code_labels : pandas.Series, optional
        Code -> label.

    Examples
    --------
    Two units; group "g" pools codes "a" and "b"; the cluster is unit 0:

    >>> x = sp.csr_matrix(np.array([[30.0, 5, 65], [10, 5, 185]]))
    >>> clusters = pd.DataFrame({"cluster_id": ["g-1"], "sector": ["g"], "unit_ids": [["u0"]]})
    >>> out = composition(clusters, x, pd.Index(["u0", "u1"]), pd.Index(["a", "b", "z"]),
    ...                   pd.Series({"a": "g", "b": "g"}))
    >>> out[["code", "establishments", "lq", "excess_share"]].round(2).values.tolist()
    [['a', 30.0, 2.25, 0.91], ['b', 5.0, 1.5, 0.09]]
    """
    columns = ["cluster_id", "code", "code_label", ESTABLISHMENTS, "expected", "lq", "excess_share"]
    x = sp.csr_matrix(code_x, dtype=float)
    n_i = np.asarray(x.sum(axis=1)).ravel()
    n_c = np.asarray(x.sum(axis=0)).ravel()
    total = float(n_c.sum())
    group = pd.Series(codes.astype(str), index=range(len(codes))).map(
        {str(k): str(v) for k, v in code_group.items()}
    )
    rows = []
    for cid, sector, ids in zip(clusters[CLUSTER_ID], clusters[SECTOR], clusters["unit_ids"]):
        cols = np.flatnonzero((group == str(sector)).to_numpy())
        r = unit_ids.get_indexer([str(u) for u in ids])
        r = r[r >= 0]
        if not len(cols) or not len(r):
            continue
        obs = np.asarray(x[r][:, cols].sum(axis=0)).ravel()
        exp = n_i[r].sum() * n_c[cols] / total
        excess = np.maximum(obs - exp, 0.0)
        share = excess / excess.sum() if excess.sum() > 0 else np.zeros_like(excess)
        for j in np.flatnonzero(obs > 0):
            code = str(codes[cols[j]])
            label = None if code_labels is None else code_labels.get(code)
            rows.append([cid, code, label, obs[j], exp[j], obs[j] / exp[j], share[j]])
    out = pd.DataFrame(rows, columns=columns)
    if not len(out):
        return out
    out["_order"] = out[CLUSTER_ID].map({c: i for i, c in enumerate(clusters[CLUSTER_ID])})
    out = out.sort_values(
        ["_order", "excess_share", ESTABLISHMENTS], ascending=[True, False, False]
    )
    return out.drop(columns="_order").reset_index(drop=True)
