"""Porter-style cluster detection: where, how strong, and how sure.

:func:`detect_clusters` answers "where are the clusters of my territory?" for every sector of
a registry (or of a pre-aggregated units × sectors table) in one call, and returns a
:class:`~clustermap.ClusterResult` with one row per cluster region, the tidy units × sectors
table behind it, and every parameter used.

Method (per sector *s*, all sectors at once; methods.md §3, §6, §14)
--------------------------------------------------------------------
1. **Expected counts relative to all activity.** ``E_is = n_i· n_·s / N`` on establishment
   counts, so a big city is not a cluster of everything: the unit's LQ is ``O_is / E_is``.
2. **Local concentration test.** For each unit *i*, the window ``W_i = {i} ∪ neighbours(i)``
   (the graph's neighbours) is tested for an excess with the exact one-sided Poisson test
   ``P(X >= O_W)``, ``X ~ Poisson(E_W)`` (``O_W``, ``E_W``: sums over the window, computed
   for all sectors with one sparse product ``(A + I) @ X``). The Benjamini-Hochberg procedure
   controls the false discovery rate over the units of each sector (family: the units with
   any activity). Exact p-values have no permutation resolution floor, so BH can reject
   among 35 000 communes (statistics.md §4.8).
3. **Seeds and candidates.** A unit is *specialised* when ``O_is >= 1`` and
   ``LQ_is >= min_unit_lq``: a unit never joins a cluster just for being next to one. A
   *seed* is a specialised unit whose window test is rejected by BH; a *candidate* is a seed
   or a specialised unit whose window p-value is ``<= grow_alpha`` (default ``alpha``,
   uncorrected). This two-threshold rule (seeded region growing, or hysteresis
   thresholding) recovers the edge of a cluster without letting noise start one.
4. **Cluster regions** are the connected components of candidate units that contain at
   least one seed. With ``link_order=2`` (default) two candidate units are linked when they
   are neighbours or share a neighbour, so a scattered cluster (one or two establishments
   per commune, with empty communes between them) forms one region; ``link_order=1`` keeps
   strict contiguity.
5. **Region floors** keep a region when it has at least ``min_establishments``
   establishments of the sector, a region LQ ``>= min_lq`` whose exact Poisson (Garwood)
   lower bound exceeds 1, and a region Poisson p-value below ``region_alpha`` (default
   ``alpha`` / number of sectors analysed: Bonferroni across sectors, so sectors without any
   cluster stay clean). The region is selected by the data, so its p-value is descriptive;
   the error control comes from steps 2 and 5 together.
6. **Scores**: region LQ with its Garwood interval, employment (band midpoint and the
   low-high band range) and the employment LQ, share of the sector, focus, European
   Cluster Observatory stars and U.S. Cluster Mapping strong-cluster flags (percentiles taken
   over the regions of a coarser comparison zoning, ``score_units``: départements for French
   commune codes by default, as CMP compares custom regions with its economic areas), and a
   **strength** used for sorting: the Poisson log-likelihood ratio of the region,
   ``O ln(O/E) - (O - E)`` (Kulldorff's scan statistic for that window), which grows with
   both the size and the specificity of the excess.
7. The **local Getis-Ord Gi*** of the empirical-Bayes smoothed LQ (batched numba kernel,
   conditional permutations, ``alternative="greater"``) is added to the table for the
   sectors where clusters were found, as a second, permutation-based view of the hot spots
   (``local_statistic="getis_ord"``, the default). Draws stop early for cells whose p-value
   is already known to exceed ``alpha`` (Besag-Clifford), so p-values above ``alpha`` are
   censored. It does not change which clusters are found unless ``gi_alpha`` is set: then
   Gi* is computed for every sector with candidate units, and candidate units also need a
   Gi* p-value ``<= gi_alpha``.

Sectors known to produce registry artefacts (head offices 70.10Z, holdings 64.20Z, temporary
work 78.xx) are analysed and **flagged** (``artefact`` column), not dropped, unless
``exclude_artefacts=True``.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import special
from scipy.sparse.csgraph import connected_components

from ..core.schema import (
    CLUSTER_ID,
    COMMUNE,
    EMPLOYEES,
    EMPLOYEES_HIGH,
    EMPLOYEES_LOW,
    ESTABLISHMENTS,
    LABEL,
    LQ,
    LQ_HIGH,
    LQ_LOW,
    P_VALUE,
    REASON_OUTSIDE_UNITS,
    SECTOR,
    STATISTIC,
    UNIT_ID,
    UNIT_NAME,
)
from ..errors import ClustermapWarning, SchemaError
from ..io.counts import CountTables
from ..io.registry import as_establishments
from ..stats.lq import garwood_interval
from .result import CLUSTER_COLUMNS, ClusterResult

__all__ = ["OTHER", "detect_clusters"]

#: Bucket of the codes that do not map to the analysis level (e.g. sectors outside a group
#: mapping): they count in every unit's total activity but are never analysed.
OTHER = "(other)"

_MEASURES = (ESTABLISHMENTS, EMPLOYEES, EMPLOYEES_LOW, EMPLOYEES_HIGH)
_NAF_LEVELS = {
    "subclass",
    "sous_classe",
    "sous-classe",
    "class",
    "classe",
    "group",
    "groupe",
    "division",
    "section",
    1,
    2,
    3,
    4,
    5,
}


# ----------------------------------------------------------------------------- inputs
def _is_registry(data: Any) -> bool:
    if hasattr(data, "establishments") and not isinstance(data, CountTables):
        return True
    return isinstance(data, gpd.GeoDataFrame) and SECTOR in data.columns


def _roll_columns(
    codes: Sequence[Any], level: Any, nomenclature: str
) -> tuple[pd.Series, list[Any]]:
    """Map codes to the analysis level; codes outside the level go to :data:`OTHER`.

    Returns the mapping and the list of codes sent to :data:`OTHER`.
    """
    codes = pd.Index(codes)
    if level is None:
        return pd.Series(codes.to_numpy(dtype=object), index=codes), []
    from ..taxonomy import roll_up

    rolled = roll_up(pd.Series(codes.to_numpy(dtype=object), index=codes), level, nomenclature)
    rolled = pd.Series(rolled.to_numpy(dtype=object), index=codes)
    missing = rolled.isna().to_numpy()
    rolled[missing] = OTHER
    return rolled, list(codes[missing])


def _registry_tables(
    data: Any,
    units: gpd.GeoDataFrame,
    level: Any,
    nomenclature: str,
) -> tuple[pd.DataFrame, gpd.GeoDataFrame, dict[str, int]]:
    """Long unit × sector table of the four measures from a registry."""
    from ..table import assign_units

    est = as_establishments(data, require_sector=True)
    unit_of = pd.Series(assign_units(data, units), index=est.index)
    known = unit_of.notna()
    unit_of = unit_of.astype(object).where(known, None)
    rejects: dict[str, int] = {}
    n_out = int((~known.to_numpy(dtype=bool)).sum())
    if n_out:
        rejects[REASON_OUTSIDE_UNITS] = n_out
        warnings.warn(
            f"{n_out} establishment(s) fall outside every unit and are left out of the "
            "counts (reason 'outside_units' in result.parameters['dropped']).",
            ClustermapWarning,
            stacklevel=3,
        )
    mapping, unmapped_codes = _roll_columns(
        pd.unique(est[SECTOR].dropna().astype(str)), level, nomenclature
    )
    sector = est[SECTOR].astype(object).map(mapping)
    n_other = int(((sector == OTHER).to_numpy() & known.to_numpy(dtype=bool)).sum())
    if n_other:
        rejects["_outside_level"] = n_other
        rejects["_outside_level_codes"] = unmapped_codes
    keep = known.to_numpy(dtype=bool) & ~sector.isna().to_numpy()
    frame = pd.DataFrame(
        {
            UNIT_ID: unit_of.to_numpy()[keep],
            SECTOR: sector.to_numpy()[keep],
            ESTABLISHMENTS: 1.0,
        }
    )
    for col in (EMPLOYEES, EMPLOYEES_LOW, EMPLOYEES_HIGH):
        if col in est.columns:
            frame[col] = pd.to_numeric(est[col], errors="coerce").to_numpy(dtype=float)[keep]
    long = frame.groupby([UNIT_ID, SECTOR], sort=False).sum(min_count=1).reset_index()
    out_est = est.copy()
    out_est[UNIT_ID] = unit_of.where(known, None).to_numpy()
    out_est["_sector_level"] = sector.to_numpy()
    return long, out_est, rejects


def _counts_tables(
    data: Any, employees: pd.DataFrame | None, level: Any, nomenclature: str
) -> tuple[pd.DataFrame, list[Any]]:
    """Long unit × sector table from pre-aggregated wide tables."""
    emp = employees
    if isinstance(data, CountTables):
        emp = data.employees if emp is None else emp
        data = data.establishments
    if not isinstance(data, pd.DataFrame):
        raise SchemaError(
            "detect_clusters expects a registry (clustermap.read_registry), a units x sectors "
            f"DataFrame of establishment counts, or clustermap.read_counts(...); got "
            f"{type(data).__name__}."
        )
    from ..table import as_table

    as_table(data, "counts")
    mapping, unmapped = _roll_columns(data.columns, level, nomenclature)
    long = _stack(data, ESTABLISHMENTS)
    if emp is not None:
        as_table(emp, "employees")
        e = _stack(emp.reindex(index=data.index, columns=data.columns, fill_value=0), EMPLOYEES)
        long = long.merge(e, on=[UNIT_ID, SECTOR], how="left")
        long[EMPLOYEES] = long[EMPLOYEES].fillna(0.0)
        long[EMPLOYEES_LOW] = long[EMPLOYEES]
        long[EMPLOYEES_HIGH] = long[EMPLOYEES]
    long[SECTOR] = long[SECTOR].map(mapping)
    long = long[long[SECTOR].notna()]
    long = long.groupby([UNIT_ID, SECTOR], sort=False).sum(min_count=1).reset_index()
    return long, unmapped


def _stack(table: pd.DataFrame, name: str) -> pd.DataFrame:
    values = sp.coo_matrix(table.to_numpy(dtype=float))
    return pd.DataFrame(
        {
            UNIT_ID: table.index.astype(str).to_numpy()[values.row],
            SECTOR: table.columns.to_numpy(dtype=object)[values.col],
            name: values.data,
        }
    )


def _prepare_units(units: Any) -> gpd.GeoDataFrame:
    if not isinstance(units, gpd.GeoDataFrame):
        raise SchemaError(
            f"units must be a GeoDataFrame of spatial units (clustermap.read_units(...)); got "
            f"{type(units).__name__}."
        )
    attrs = dict(units.attrs)
    units = units.copy()
    units.attrs.update(attrs)
    if UNIT_ID in units.columns:
        units = units.set_index(UNIT_ID)
    units.index = pd.Index(units.index.astype(str), name=UNIT_ID)
    if units.index.has_duplicates:
        dup = units.index[units.index.duplicated()][:5].tolist()
        raise SchemaError(f"units have duplicated ids, e.g. {dup}; unit ids must be unique.")
    return units


# ----------------------------------------------------------------------------- statistics
def _bh_reject(p: np.ndarray, col: np.ndarray, m: np.ndarray, alpha: float) -> np.ndarray:
    """Benjamini-Hochberg step-up per column on sparse p-values.

    ``p`` holds the p-values of some cells of each column (all those ``<= alpha``, at least);
    the others are known to be ``> alpha`` and cannot be rejected nor change the ranks of
    the small ones. ``m[col]`` is the family size of the column.
    """
    reject = np.zeros(p.size, dtype=bool)
    small = np.flatnonzero(p <= alpha)
    if small.size == 0:
        return reject
    order = small[np.lexsort((p[small], col[small]))]
    cs = col[order]
    starts = np.r_[0, np.flatnonzero(np.diff(cs)) + 1]
    rank = np.arange(order.size) - np.repeat(starts, np.diff(np.r_[starts, order.size])) + 1
    ok = p[order] <= rank * alpha / m[cs]
    # largest rank per column that passes: every cell up to it is rejected
    last = np.full(order.size, -1)
    last[ok] = rank[ok]
    max_rank = np.maximum.reduceat(last, starts)
    reject[order] = rank <= np.repeat(max_rank, np.diff(np.r_[starts, order.size]))
    return reject


def _poisson_sf(o: np.ndarray, e: np.ndarray) -> np.ndarray:
    """P(X >= o), X ~ Poisson(e), for o >= 1 (regularised lower incomplete gamma)."""
    with np.errstate(all="ignore"):
        return special.gammainc(np.maximum(o, 1e-300), e)


def _llr(o: np.ndarray, e: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        out = np.where(o > 0, o * np.log(o / e), 0.0) - (o - e)
    return np.where(o > e, out, 0.0)


# ----------------------------------------------------------------------------- public API
def detect_clusters(
    data: Any,
    units: gpd.GeoDataFrame | None = None,
    level: str | int | Mapping[str, Any] | pd.Series | pd.DataFrame | None = "subclass",
    *,
    employees: pd.DataFrame | None = None,
    sectors: Sequence[str] | None = None,
    graph: Any = None,
    alpha: float = 0.05,
    min_unit_lq: float = 1.5,
    grow_alpha: float | None = None,
    link_order: int = 2,
    min_establishments: int = 10,
    min_lq: float = 1.5,
    region_alpha: float | None = None,
    conf_level: float = 0.95,
    local_statistic: str | None = "getis_ord",
    gi_alpha: float | None = None,
    local_sectors: str = "clusters",
    permutations: int = 999,
    random_state: int | None = 12345,
    exclude_artefacts: bool = False,
    score_units: gpd.GeoDataFrame | pd.Series | str | None = "auto",
    nomenclature: str = "naf",
    n_jobs: int | None = None,
) -> ClusterResult:
    """Find the business clusters of a territory, score them, and say how sure we are.

    See the module documentation (``help(clustermap.detection)``) for the method. In short:
    units significantly over-represented in a sector *relative to all their activity*
    (exact Poisson test of each unit with its neighbours, Benjamini-Hochberg FDR across
    units), that are themselves specialised, are joined into contiguous regions, and a
    region is kept when it is big, specialised and significant enough.

    Parameters
    ----------
    data : clustermap.Registry, geopandas.GeoDataFrame, pandas.DataFrame or CountTables
        A registry from :func:`clustermap.read_registry` (or its establishments
        GeoDataFrame), or pre-aggregated establishment counts: a units × sectors DataFrame
        (index = unit ids) or the result of :func:`clustermap.read_counts`.
    units : geopandas.GeoDataFrame, optional
        Analysis units (:func:`clustermap.read_units`), indexed by unit id, with a ``name``
        column for readable places. Required for pre-aggregated counts (for the geometry and
        the neighbours). With a registry and ``units=None``, units are the registry's
        communes (:func:`clustermap.units_from_registry`, points with 8 nearest neighbours)
        and establishments are assigned by their commune code; a cluster's geometry is
        then the convex hull of its units' points.
    level : str, int, mapping or None, default "subclass"
        Sector level of the analysis: a NAF level (``"subclass"``, ``"class"``, ``"group"``,
        ``"division"``, ``"section"``) or a mapping from codes (or code prefixes) to named
        groups, e.g. a NAF bundle or US cluster definitions (see
        :func:`clustermap.roll_up`). ``None`` keeps the codes as they are. Codes outside
        the level (not covered by a mapping, or not NAF codes) are pooled in
        :data:`OTHER`: they count in every unit's total activity (the LQ denominators) but
        are not analysed; ``parameters["outside_level"]`` counts them.
    employees : pandas.DataFrame, optional
        Employment table matching pre-aggregated ``data`` (overrides ``CountTables``).
    sectors : sequence of str, optional
        Analyse only these sectors (at ``level``); all sectors still count in the totals.
        Default: every sector.
    graph : libpysal.graph.Graph, optional
        Neighbours of the units. Default: queen contiguity with islands linked to their
        nearest unit (``build_graph(units, "queen", islands="knn")``), or 8 nearest
        neighbours for point units.
    alpha : float, default 0.05
        FDR level of the Benjamini-Hochberg procedure over the units of each sector
        (methods.md §6).
    min_unit_lq : float, default 1.5
        LQ floor of a specialised unit (step 3). Project calibration on the synthetic
        national registry and the demo: 1.5 and 2 find the same planted clusters; the floor
        stops regions from spreading over unspecialised neighbours.
    grow_alpha : float, optional
        Uncorrected window p-value under which a specialised unit joins a seed's region
        (step 3); default ``alpha``.
    link_order : {1, 2}, default 2
        Link candidate units that are neighbours (1) or neighbours or neighbours of a common
        unit (2). Project calibration: the diffuse planted clusters of the demo (one
        establishment per commune) are only found with 2.
    min_establishments : int, default 10
        Minimum establishments of the sector in a cluster region (critical mass; the CMP
        rule also uses size floors, methods.md §4.1).
    min_lq : float, default 1.5
        Minimum LQ of a cluster region; its Garwood lower bound must also exceed 1. LQ
        floors in the literature range from 1.25 to 2 (2 is the European Cluster
        Observatory's specialisation star, methods.md §4.2); 1.5 keeps the software cluster
        of the demo (a city cluster of a sector common everywhere, region LQ 1.9) while the
        Bonferroni region test keeps null sectors clean.
    region_alpha : float, optional
        Level of the region's exact Poisson test; default ``alpha`` divided by the number
        of sectors analysed (Bonferroni across sectors).
    conf_level : float, default 0.95
        Coverage of the LQ intervals.
    local_statistic : {"getis_ord", None}, default "getis_ord"
        Add Gi* of the EB-smoothed LQ to the table for the sectors with clusters (reported,
        see step 7 above). ``None`` skips it (faster).
    gi_alpha : float, optional
        When set, candidate units also need a Gi* permutation p-value ``<= gi_alpha``
        (Gi* is then computed for every sector with candidate units).
    local_sectors : {"clusters", "all"}, default "clusters"
        Sectors whose Gi* is added to the table when ``gi_alpha`` is None: those with
        clusters (enough for the report), or every analysed sector (one batched call, e.g.
        to map hot spots of any sector; about a minute for 730 sectors over 35 000
        communes with 999 permutations on 2 cores).
    permutations : int, default 999
        Permutations of the Gi* inference (methods.md defaults).
    random_state : int, default 12345
        Seed of the permutations; results do not depend on the thread count.
    exclude_artefacts : bool, default False
        Skip head offices, holdings and temporary-work sectors instead of flagging them.
    score_units : "auto", geopandas.GeoDataFrame, pandas.Series or None, default "auto"
        Comparison zoning of the CMP strong-cluster percentiles and the ECO size and focus
        stars. Both anchors compare a cluster with regions of a coarser zoning of the same
        kind (CMP compares custom regions with economic areas; ECO ranked NUTS-2 regions),
        never with the small units a cluster is built from (small units have extreme LQs
        and tiny sizes, so the size star would always be given and the P75 LQ would be out
        of reach). ``"auto"``: départements when the unit ids are French commune codes
        (INSEE ``01001``, ``2A004``, ``97411``), otherwise squares of about 50 median units
        each, laid over the units' representative points (documented in
        ``parameters["score_units"]``). A GeoDataFrame of polygons (e.g. zones d'emploi):
        each unit goes to the zone holding its representative point. A Series: unit id ->
        zone label. ``None``: the analysis units themselves (a ranking among units).
    nomenclature : str, default "naf"
        Nomenclature of the codes (``"naf"``, ``"nace"``, ``"naics"``, ``"prefix"``).
    n_jobs : int, optional
        Threads for the permutation kernel (numba default when None).

    Returns
    -------
    ClusterResult
        - ``clusters``: one row per cluster, columns ``CLUSTER_COLUMNS``, sorted by
          ``strength``, plus ``lq_employees_low`` / ``lq_employees_high`` (range of the
          employment LQ between the low, midpoint and high size-band rules).
        - ``table``: one row per unit × sector cell **with at least one establishment**
          (absent cells have 0 establishments and LQ 0): ``establishments``, employment,
          ``expected``, ``lq`` and its Garwood interval, the window test
          (``window_observed``, ``window_expected``, ``p_value``, ``significant`` = BH
          rejection), ``seed``, ``candidate``, the Gi* ``statistic``,
          ``statistic_p_value`` and ``label`` where computed, ``lq_employees`` and
          ``cluster_id`` ("" outside clusters).
        - ``units``; ``establishments`` with ``unit_id`` and ``cluster_id`` (registry
          input only); ``parameters`` (every setting, the graph, rows left out, stage
          ``timings``); ``registry_summary``.
        - ``sectors``: one row per sector: label, totals, ``analysed``, ``artefact``,
          numbers of significant and candidate units, ``clusters`` and
          ``share_in_clusters`` (share of the sector's establishments inside its clusters).

    Raises
    ------
    SchemaError
        Wrong input types, missing units for pre-aggregated counts, unknown sectors.

    Examples
    --------
    A 10 × 10 grid of communes with 200 establishments each; sector "a" has 4 % of them
    everywhere except a planted excess in the 3 × 3 block at the corner:

    >>> import geopandas as gpd
    >>> from shapely.geometry import box
    >>> ids = [f"c{i:02d}" for i in range(100)]
    >>> cells = gpd.GeoDataFrame({"name": [f"Ville {i}" for i in range(100)]},
    ...     geometry=[box(i % 10, i // 10, i % 10 + 1, i // 10 + 1) for i in range(100)],
    ...     index=pd.Index(ids, name="unit_id"))
    >>> a = np.full(100, 8)
    >>> a[[0, 1, 2, 10, 11, 12, 20, 21, 22]] = 40
    >>> counts = pd.DataFrame({"a": a, "other": 200 - a}, index=ids)
    >>> res = cm.detect_clusters(counts, cells, level=None, local_statistic=None)
    >>> res
    <ClusterResult: 1 clusters in 2 sectors over 100 units>
    >>> row = res.clusters.iloc[0]
    >>> row["cluster_id"], int(row["n_units"]), int(row["establishments"])
    ('a-1', 9, 360)

    The region's LQ is 360 / (1800 × 1088 / 20000) = 3.68:

    >>> round(float(row["lq"]), 2), row["place"]
    (3.68, 'Ville 0, Ville 1, Ville 2')
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1); got {alpha!r}.")
    if local_statistic not in ("getis_ord", None):
        raise ValueError(f"local_statistic must be 'getis_ord' or None; got {local_statistic!r}.")
    if local_sectors not in ("clusters", "all"):
        raise ValueError(f"local_sectors must be 'clusters' or 'all'; {local_sectors!r} was given.")
    if gi_alpha is not None and local_statistic is None:
        raise ValueError("gi_alpha needs local_statistic='getis_ord'.")
    params: dict[str, Any] = {
        "level": level if not isinstance(level, (Mapping, pd.Series, pd.DataFrame)) else "mapping",
        "alpha": alpha,
        "min_unit_lq": min_unit_lq,
        "grow_alpha": alpha if grow_alpha is None else grow_alpha,
        "link_order": link_order,
        "min_establishments": min_establishments,
        "min_lq": min_lq,
        "conf_level": conf_level,
        "local_statistic": local_statistic,
        "gi_alpha": gi_alpha,
        "local_sectors": local_sectors,
        "permutations": permutations,
        "random_state": random_state,
        "exclude_artefacts": exclude_artefacts,
        "nomenclature": nomenclature,
        "test": "exact Poisson window test (unit + neighbours), BH FDR per sector",
    }
    registry_summary = None
    establishments_out = None
    dropped: dict[str, int] = {}
    point_units = False
    timings: dict[str, float] = {}
    clock = [time.perf_counter()]

    def lap(stage: str) -> None:
        now = time.perf_counter()
        timings[stage] = round(now - clock[0], 3)
        clock[0] = now

    if _is_registry(data):
        if hasattr(data, "summary_dict"):
            registry_summary = data.summary_dict()
        if units is None:
            from ..units import units_from_registry

            units = units_from_registry(data, column=COMMUNE)
        units = _prepare_units(units)
        point_units = not units.geom_type.isin(["Polygon", "MultiPolygon"]).all()
        long, establishments_out, dropped = _registry_tables(data, units, level, nomenclature)
    else:
        if units is None:
            raise SchemaError(
                "Pre-aggregated counts need units= (polygons indexed by the table's unit ids) "
                "for the neighbours and the cluster outlines: units = cm.read_units(path)."
            )
        units = _prepare_units(units)
        long, unmapped = _counts_tables(data, employees, level, nomenclature)
        unknown = set(long[UNIT_ID]) - set(units.index)
        if unknown:
            n_lost = int(long.loc[long[UNIT_ID].isin(unknown), ESTABLISHMENTS].sum())
            dropped[REASON_OUTSIDE_UNITS] = n_lost
            warnings.warn(
                f"{len(unknown)} unit id(s) of the counts are not in units (e.g. "
                f"{sorted(unknown)[:5]}); their {n_lost} establishment(s) are left out.",
                ClustermapWarning,
                stacklevel=2,
            )
            long = long[~long[UNIT_ID].isin(unknown)]
        if unmapped:
            dropped["_outside_level"] = int(long.loc[long[SECTOR] == OTHER, ESTABLISHMENTS].sum())
            dropped["_outside_level_codes"] = unmapped
        point_units = not units.geom_type.isin(["Polygon", "MultiPolygon"]).all()
    outside = {
        "establishments": dropped.pop("_outside_level", 0),
        "codes": dropped.pop("_outside_level_codes", []),
    }
    params["dropped"] = dropped
    params["outside_level"] = outside
    has_emp = EMPLOYEES in long.columns

    # ---- sparse matrices: units x sectors
    unit_ids = units.index
    row = unit_ids.get_indexer(long[UNIT_ID].astype(str))
    sector_codes = pd.Index(pd.unique(long[SECTOR])).sort_values()
    col = sector_codes.get_indexer(long[SECTOR])
    n_units, n_sec = len(unit_ids), len(sector_codes)

    def mat(values: np.ndarray) -> sp.csr_matrix:
        return sp.csr_matrix((values, (row, col)), shape=(n_units, n_sec))

    x = mat(long[ESTABLISHMENTS].to_numpy(dtype=float))
    emp_mats = {}
    if has_emp:
        for m_name in (EMPLOYEES, EMPLOYEES_LOW, EMPLOYEES_HIGH):
            src = m_name if m_name in long.columns else EMPLOYEES
            emp_mats[m_name] = mat(long[src].fillna(0.0).to_numpy(dtype=float))

    n_i = np.asarray(x.sum(axis=1)).ravel()
    n_s = np.asarray(x.sum(axis=0)).ravel()
    total = float(n_s.sum())
    if total <= 0:
        raise SchemaError("The data hold no establishment at all inside the units.")

    lap("aggregate")

    # ---- sector labels, artefacts, selection
    labels, artefact = _sector_info(sector_codes, level, nomenclature)
    analysed = np.ones(n_sec, dtype=bool)
    if sectors is not None:
        wanted = pd.Index([str(s) for s in sectors])
        missing = wanted.difference(sector_codes.astype(str))
        if len(missing):
            raise SchemaError(
                f"sectors {list(missing)[:5]} are not in the data at level {level!r}; "
                f"available e.g. {list(sector_codes[:5])}."
            )
        analysed = sector_codes.astype(str).isin(wanted)
    if exclude_artefacts:
        analysed &= ~artefact
    analysed &= n_s > 0
    analysed &= np.asarray(sector_codes != OTHER)
    n_analysed = int(analysed.sum())
    if region_alpha is None:
        region_alpha = alpha / max(n_analysed, 1)
    params["region_alpha"] = region_alpha
    params["n_sectors_analysed"] = n_analysed

    # ---- graph
    if graph is None:
        from ..graph import build_graph

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ClustermapWarning)
            if point_units:
                graph = build_graph(units, "knn", k=min(8, n_units - 1))
                params["graph"] = "knn k=8"
            else:
                graph = build_graph(units, "queen", islands="knn")
                params["graph"] = "queen, islands linked to their nearest unit"
    else:
        params["graph"] = "user graph"
    adj = _adjacency(graph, unit_ids)

    lap("graph")

    # ---- window test, all sectors at once (sparse)
    window = (adj + sp.identity(n_units, format="csr")).tocsr()
    n_w = window @ n_i
    o_w = (window @ x).tocoo()
    e_w = n_w[o_w.row] * n_s[o_w.col] / total
    p_w = np.ones(o_w.nnz)
    excess = o_w.data > e_w
    p_w[excess] = _poisson_sf(o_w.data[excess], e_w[excess])
    m_tests = np.full(n_sec, float((n_i > 0).sum()))
    sig_w = _bh_reject(p_w, o_w.col, m_tests, alpha)
    sig_w &= analysed[o_w.col]

    # ---- unit cells (nonzero counts) with LQ, window test results
    xc = x.tocoo()
    cells = pd.DataFrame({"_r": xc.row, "_c": xc.col, ESTABLISHMENTS: xc.data})
    e_cell = n_i[xc.row] * n_s[xc.col] / total
    cells["expected"] = e_cell
    cells[LQ] = xc.data / e_cell
    low, high, _ = garwood_interval(xc.data, e_cell, conf_level)
    cells[LQ_LOW] = low
    cells[LQ_HIGH] = high
    key_w = pd.Series(np.arange(o_w.nnz), index=o_w.row.astype(np.int64) * n_sec + o_w.col)
    pos = key_w.reindex(xc.row.astype(np.int64) * n_sec + xc.col).to_numpy()
    cells["window_observed"] = o_w.data[pos]
    cells["window_expected"] = e_w[pos]
    cells[P_VALUE] = p_w[pos]
    cells["significant"] = sig_w[pos]
    specialised = (cells[LQ].to_numpy() >= min_unit_lq) & analysed[xc.col]
    cand = cells["significant"].to_numpy() & specialised
    grow = specialised & (
        cells[P_VALUE].to_numpy() <= (alpha if grow_alpha is None else grow_alpha)
    )

    cells[STATISTIC] = np.nan
    cells["statistic_p_value"] = np.nan
    cells[LABEL] = pd.Series(pd.NA, index=cells.index, dtype="string")
    gi_kw = {
        "permutations": permutations,
        "random_state": random_state,
        "alpha": alpha,
        "n_jobs": n_jobs,
        "early_stop": gi_alpha if gi_alpha is not None else alpha,
    }

    def add_gi(gi_cols: np.ndarray) -> None:
        """Gi* of the EB-smoothed LQ for ``gi_cols`` (one batched call) into ``cells``."""
        gi = _getis_ord(x, n_i, n_s, total, gi_cols, unit_ids, sector_codes, graph, **gi_kw)
        params["local_statistic_sectors"] = [str(sector_codes[c]) for c in gi_cols]
        sel = np.isin(xc.col, gi_cols)
        gcol = np.searchsorted(gi_cols, xc.col[sel])
        cells.loc[sel, STATISTIC] = gi["statistic"][xc.row[sel], gcol]
        cells.loc[sel, "statistic_p_value"] = gi["p_value"][xc.row[sel], gcol]
        cells.loc[sel, LABEL] = gi["label"][xc.row[sel], gcol]

    if gi_alpha is not None:
        # Gi* is part of the candidate rule: compute it for every sector with candidates
        gi_cols = np.flatnonzero(np.bincount(xc.col[cand], minlength=n_sec) > 0)
        if len(gi_cols):
            add_gi(gi_cols)
            gi_ok = cells["statistic_p_value"].fillna(1.0).to_numpy() <= gi_alpha
            cand &= gi_ok
            grow &= gi_ok
    cells["seed"] = cand
    cells["candidate"] = cand | grow

    lap("window_test")

    # ---- regions: connected components of candidate units, per sector
    if link_order not in (1, 2):
        raise ValueError(f"link_order must be 1 or 2; got {link_order!r}.")
    link = adj if link_order == 1 else ((adj + adj @ adj) > 0).astype(float).tocsr()
    regions = _regions(
        cells, link, x, n_i, n_s, total, region_alpha, conf_level, min_establishments, min_lq
    )
    cluster_rows = []
    cells[CLUSTER_ID] = ""
    if len(regions):
        regions = regions.sort_values("strength", ascending=False, kind="stable")
        regions["rank"] = regions.groupby("sec").cumcount() + 1
        for reg in regions.itertuples(index=False):
            cid = f"{sector_codes[reg.sec]}-{reg.rank}"
            cluster_rows.append((cid, reg))
            cells.loc[reg.cell_idx, CLUSTER_ID] = cid
        lap("regions")
    if local_statistic is not None and gi_alpha is None:
        # reported only: the sectors where clusters were found, or every analysed sector
        if local_sectors == "all":
            add_gi(np.flatnonzero(analysed).astype(np.int64))
        elif len(regions):
            add_gi(np.unique(regions["sec"].to_numpy().astype(np.int64)))
        lap("local_statistic")

    comp_x, comp_emp = x, emp_mats.get(EMPLOYEES)
    if score_units is not None:
        member, how = _membership(units, score_units)
        comp_x = member @ x
        comp_emp = None if comp_emp is None else member @ comp_emp
        params["score_units"] = int(member.shape[0])
        params["score_units_rule"] = how
    clusters = _cluster_frame(
        cluster_rows,
        units,
        unit_ids,
        sector_codes,
        labels,
        artefact,
        x,
        emp_mats,
        n_i,
        total,
        _reference(comp_x, comp_emp, sector_codes),
    )

    # ---- tidy table
    table = cells.copy()
    table.insert(0, UNIT_ID, unit_ids.to_numpy()[cells["_r"].to_numpy()])
    table.insert(1, SECTOR, sector_codes.to_numpy()[cells["_c"].to_numpy()])
    for m_name, m_mat in emp_mats.items():
        table[m_name] = np.asarray(m_mat[cells["_r"].to_numpy(), cells["_c"].to_numpy()]).ravel()
    if has_emp:
        emp = emp_mats[EMPLOYEES]
        e_i = np.asarray(emp.sum(axis=1)).ravel()
        e_s = np.asarray(emp.sum(axis=0)).ravel()
        e_tot = e_s.sum()
        with np.errstate(all="ignore"):
            exp_emp = e_i[cells["_r"]] * e_s[cells["_c"]] / e_tot
            table["lq_employees"] = np.where(exp_emp > 0, table[EMPLOYEES] / exp_emp, np.nan)
    table = table.drop(columns=["_r", "_c"]).reset_index(drop=True)

    # ---- establishments with unit and cluster
    if establishments_out is not None:
        key = pd.Series(
            table[CLUSTER_ID].to_numpy(),
            index=pd.MultiIndex.from_arrays([table[UNIT_ID], table[SECTOR].astype(str)]),
        )
        idx = pd.MultiIndex.from_arrays(
            [
                establishments_out[UNIT_ID].astype(object),
                establishments_out["_sector_level"].astype(object).astype(str),
            ]
        )
        establishments_out[CLUSTER_ID] = key.reindex(idx).fillna("").to_numpy()
        establishments_out = establishments_out.drop(columns="_sector_level")

    sectors_frame = pd.DataFrame(
        {
            SECTOR: sector_codes,
            "sector_label": labels,
            ESTABLISHMENTS: n_s,
            "analysed": analysed,
            "artefact": artefact,
            "significant_units": np.bincount(
                xc.col[cells["significant"].to_numpy()], minlength=n_sec
            ),
            "candidate_units": np.bincount(xc.col[cand], minlength=n_sec),
            "clusters": clusters[SECTOR]
            .value_counts()
            .reindex(sector_codes, fill_value=0)
            .to_numpy(),
            "share_in_clusters": (
                clusters.groupby(SECTOR)[ESTABLISHMENTS].sum().reindex(sector_codes).fillna(0)
                / np.where(n_s > 0, n_s, np.nan)
            ).to_numpy(),
        }
    )
    if has_emp:
        sectors_frame.insert(3, EMPLOYEES, np.asarray(emp_mats[EMPLOYEES].sum(axis=0)).ravel())
    params["units_without_activity"] = int((n_i <= 0).sum())
    if registry_summary is not None and dropped:
        registry_summary = {**registry_summary, "dropped_in_detection": dropped}
    lap("scores_and_tables")
    params["timings"] = timings
    return ClusterResult(
        clusters=clusters,
        table=table,
        units=units,
        establishments=establishments_out,
        parameters=params,
        registry_summary=registry_summary,
        sectors=sectors_frame,
    )


# ----------------------------------------------------------------------------- pieces
def _adjacency(graph: Any, unit_ids: pd.Index) -> sp.csr_matrix:
    """Binary symmetric adjacency (no diagonal) aligned on ``unit_ids``."""
    from ..graph import graph_arrays

    ga = graph_arrays(graph)
    ids = pd.Index(ga.ids).astype(str)
    if not ids.equals(unit_ids) and set(ids) != set(unit_ids):
        raise SchemaError(
            "graph ids do not match the units: build the graph from the same units "
            "(cm.build_graph(units, ...))."
        )
    n = len(ids)
    a = sp.csr_matrix((np.ones(len(ga.indices)), ga.indices, ga.indptr), shape=(n, n), dtype=float)
    if not ids.equals(unit_ids):
        order = ids.get_indexer(unit_ids)
        a = a[order][:, order]
    a = ((a + a.T) > 0).astype(float).tocsr()
    a.setdiag(0)
    a.eliminate_zeros()
    return a


def _sector_info(codes: pd.Index, level: Any, nomenclature: str) -> tuple[np.ndarray, np.ndarray]:
    """French labels and artefact flags of the analysis sectors."""
    from ..taxonomy import is_artefact_sector, sector_labels

    str_codes = pd.Series(codes.astype(str), index=range(len(codes)))
    if isinstance(level, (Mapping, pd.Series, pd.DataFrame)):
        labels = str_codes.to_numpy(dtype=object)
        keys = _mapping_keys(level)
        art_keys = is_artefact_sector(pd.Series(list(keys)), nomenclature).to_numpy(dtype=bool)
        art_groups = {str(keys[k]) for k, a in zip(list(keys), art_keys) if a}
        artefact = str_codes.isin(art_groups).to_numpy()
        return labels, artefact
    lab = sector_labels(str_codes, nomenclature=nomenclature)
    labels = lab.astype(object).where(lab.notna(), str_codes).to_numpy(dtype=object)
    artefact = is_artefact_sector(str_codes, nomenclature).to_numpy(dtype=bool)
    return labels, artefact


def _mapping_keys(level: Any) -> dict[str, Any]:
    if isinstance(level, pd.DataFrame):
        if level.shape[1] >= 2:
            return dict(zip(level.iloc[:, 0].astype(str), level.iloc[:, 1]))
        return dict(zip(level.index.astype(str), level.iloc[:, 0]))
    if isinstance(level, pd.Series):
        return dict(zip(level.index.astype(str), level))
    return {str(k): v for k, v in dict(level).items()}


def _getis_ord(
    x: sp.csr_matrix,
    n_i: np.ndarray,
    n_s: np.ndarray,
    total: float,
    cols: np.ndarray,
    unit_ids: pd.Index,
    sector_codes: pd.Index,
    graph: Any,
    **kw: Any,
) -> dict[str, np.ndarray]:
    """Gi* of the EB-smoothed LQ for ``cols`` (one batched kernel call)."""
    from ..stats.autocorrelation import local_getis_ord
    from ..stats.lq import eb_smooth

    sub = x[:, cols].toarray()
    active = n_i > 0
    e = n_i[:, None] * (n_s[cols] / total)[None, :]
    eb = np.zeros_like(sub)
    eb[active] = eb_smooth(sub[active], e[active])
    values = pd.DataFrame(eb, index=unit_ids, columns=sector_codes[cols].astype(str))
    graph_ids = pd.Index(_graph_ids(graph)).astype(str)
    values = values.reindex(graph_ids)
    values.index = pd.Index(_graph_ids(graph))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClustermapWarning)
        res = local_getis_ord(
            values,
            graph,
            permutations=kw["permutations"],
            random_state=kw["random_state"],
            alternative="greater",
            alpha=kw["alpha"],
            early_stop=kw["early_stop"],
            n_jobs=kw["n_jobs"],
        )
    order = graph_ids.get_indexer(unit_ids)
    return {
        "statistic": res.statistic.to_numpy(dtype=float)[order],
        "p_value": res.p_value.to_numpy(dtype=float)[order],
        "label": res.label.to_numpy(dtype=object)[order],
    }


def _graph_ids(graph: Any) -> Any:
    from ..graph import graph_arrays

    return graph_arrays(graph).ids


def _regions(
    cells: pd.DataFrame,
    adj: sp.csr_matrix,
    x: sp.csr_matrix,
    n_i: np.ndarray,
    n_s: np.ndarray,
    total: float,
    region_alpha: float,
    conf_level: float,
    min_establishments: int,
    min_lq: float,
) -> pd.DataFrame:
    """Connected components of candidate cells holding a seed, with region floors applied."""
    seeded = np.unique(cells.loc[cells["seed"].to_numpy(), "_c"].to_numpy())
    cand = cells[cells["candidate"].to_numpy() & np.isin(cells["_c"].to_numpy(), seeded)]
    rows = []
    for c, grp in cand.groupby("_c", sort=True):
        r = grp["_r"].to_numpy()
        sub = adj[r][:, r]
        n_comp, lab = connected_components(sub, directed=False)
        has_seed = np.bincount(lab, weights=grp["seed"].to_numpy(dtype=float), minlength=n_comp)
        obs = np.bincount(lab, weights=grp[ESTABLISHMENTS].to_numpy(), minlength=n_comp)
        tot = np.bincount(lab, weights=n_i[r], minlength=n_comp)
        exp = tot * n_s[c] / total
        for k in np.flatnonzero(has_seed > 0):
            members = lab == k
            rows.append(
                {
                    "sec": c,
                    "rows": r[members],
                    "cell_idx": grp.index.to_numpy()[members],
                    "O": obs[k],
                    "E": exp[k],
                    "n_total": tot[k],
                }
            )
    if not rows:
        return pd.DataFrame(columns=["sec", "rows", "cell_idx", "O", "E", "n_total", "strength"])
    reg = pd.DataFrame(rows)
    o, e = reg["O"].to_numpy(), reg["E"].to_numpy()
    low, high, p = garwood_interval(o, e, conf_level)
    reg[LQ] = o / e
    reg[LQ_LOW] = low
    reg[LQ_HIGH] = high
    reg[P_VALUE] = p
    reg["strength"] = _llr(o, e)
    keep = (o >= min_establishments) & (o / e >= min_lq) & (low > 1) & (p <= region_alpha)
    return reg[keep].reset_index(drop=True)


_COMMUNE_CODE = r"^(?:\d{5}|2[AB]\d{3})$"

#: Target size (in median units) of the comparison zones built by ``score_units="auto"``
#: when the units are not French communes.
AUTO_ZONE_UNITS = 50


def _membership(units: gpd.GeoDataFrame, zones: Any) -> tuple[sp.csr_matrix, str]:
    """Zones × units 0/1 matrix of the comparison zoning, and a description of the rule."""
    if isinstance(zones, str):
        if zones != "auto":
            raise ValueError(
                f"score_units must be 'auto', a GeoDataFrame, a Series or None; got {zones!r}."
            )
        ids = units.index.astype(str)
        if len(ids) and ids.str.match(_COMMUNE_CODE).mean() >= 0.95:
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
    from ..units import metric_crs

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


def _reference(x: sp.csr_matrix, emp: sp.csr_matrix | None, sector_codes: pd.Index) -> pd.DataFrame:
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


def _cluster_frame(
    cluster_rows: list[tuple[str, Any]],
    units: gpd.GeoDataFrame,
    unit_ids: pd.Index,
    sector_codes: pd.Index,
    labels: np.ndarray,
    artefact: np.ndarray,
    x: sp.csr_matrix,
    emp_mats: dict[str, sp.csr_matrix],
    n_i: np.ndarray,
    total: float,
    ref: pd.DataFrame,
) -> gpd.GeoDataFrame:
    from .scores import star_rating, strong_cluster_flags

    n_s = np.asarray(x.sum(axis=0)).ravel()
    has_emp = bool(emp_mats)
    if has_emp:
        emp = emp_mats[EMPLOYEES]
        e_i = np.asarray(emp.sum(axis=1)).ravel()
        e_s = np.asarray(emp.sum(axis=0)).ravel()
        e_tot = float(e_s.sum())
        band_totals = {}
        for m_name in (EMPLOYEES_LOW, EMPLOYEES_HIGH):
            b_s = np.asarray(emp_mats[m_name].sum(axis=0)).ravel()
            band_totals[m_name] = (
                np.asarray(emp_mats[m_name].sum(axis=1)).ravel(),
                b_s,
                float(b_s.sum()),
            )
    records = []
    geoms = []
    point_units = not units.geom_type.isin(["Polygon", "MultiPolygon"]).all()
    ids_np = unit_ids.to_numpy(dtype=object)
    names_np = units[UNIT_NAME].to_numpy(dtype=object) if UNIT_NAME in units.columns else None
    for cid, reg in cluster_rows:
        c = reg.sec
        r = reg.rows
        counts = np.asarray(x[r, c].todense()).ravel()
        rec = {
            CLUSTER_ID: cid,
            SECTOR: sector_codes[c],
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
            "strength": float(reg.strength),
        }
        if has_emp:
            for m_name, m_mat in emp_mats.items():
                rec[m_name] = float(m_mat[r, c].sum())
            region_emp = float(e_i[r].sum())
            exp = region_emp * e_s[c] / e_tot if e_tot > 0 else np.nan
            rec["lq_employees"] = rec[EMPLOYEES] / exp if exp and exp > 0 else np.nan
            rec["_focus_emp"] = rec[EMPLOYEES] / region_emp if region_emp > 0 else np.nan
            # range of the employment LQ between the size-band rules (low, midpoint, high)
            rule_lqs = [rec["lq_employees"]]
            for m_name in (EMPLOYEES_LOW, EMPLOYEES_HIGH):
                tot_r, tot_s, tot = band_totals[m_name]
                reg_tot = float(tot_r[r].sum())
                den = reg_tot * tot_s[c] / tot if tot > 0 else 0.0
                rule_lqs.append(rec[m_name] / den if den > 0 else np.nan)
            finite = [v for v in rule_lqs if np.isfinite(v)]
            rec["lq_employees_low"] = min(finite) if finite else np.nan
            rec["lq_employees_high"] = max(finite) if finite else np.nan
        else:
            for m_name in (EMPLOYEES, EMPLOYEES_LOW, EMPLOYEES_HIGH):
                rec[m_name] = np.nan
            rec["lq_employees"] = np.nan
        records.append(rec)
        shape = units.geometry.iloc[r].union_all()
        if point_units:  # a hull a map can draw, instead of a MultiPoint
            shape = shape.convex_hull
        geoms.append(shape)
    frame = pd.DataFrame(records)
    if not len(frame):
        empty = gpd.GeoDataFrame(
            {c: pd.Series(dtype=object) for c in CLUSTER_COLUMNS if c != "geometry"},
            geometry=gpd.GeoSeries([], crs=units.crs),
            crs=units.crs,
        )
        return empty[list(CLUSTER_COLUMNS)]

    # scores against the comparison set (analysis units or score_units), per sector
    if has_emp:
        probe = pd.DataFrame(
            {
                SECTOR: frame[SECTOR],
                ESTABLISHMENTS: frame[ESTABLISHMENTS],
                EMPLOYEES: frame[EMPLOYEES],
                "_lq": frame["lq_employees"],
                "_focus": frame["_focus_emp"],
            }
        )
    else:
        probe = pd.DataFrame(
            {
                SECTOR: frame[SECTOR],
                ESTABLISHMENTS: frame[ESTABLISHMENTS],
                EMPLOYEES: frame[ESTABLISHMENTS],
                "_lq": frame[LQ],
                "_focus": frame["focus"],
            }
        )
    ref = ref[ref[SECTOR].isin(set(frame[SECTOR]))].replace([np.inf, -np.inf], np.nan)
    probe = probe.replace([np.inf, -np.inf], np.nan)
    flags = strong_cluster_flags(probe, lq="_lq", reference=ref)
    stars = star_rating(probe, lq="_lq", focus="_focus", reference=ref)
    frame["strong_cluster"] = flags["strong_cluster"].to_numpy()
    frame["strong_cluster_p90"] = flags["strong_cluster_p90"].to_numpy()
    frame["stars"] = stars["stars"].to_numpy()
    out = gpd.GeoDataFrame(frame, geometry=geoms, crs=units.crs)
    extra = [c for c in out.columns if c not in CLUSTER_COLUMNS and not c.startswith("_")]
    out = out[[*CLUSTER_COLUMNS, *extra]]
    return out.reset_index(drop=True)
