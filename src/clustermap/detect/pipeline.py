"""Porter-style cluster detection: where, how strong, and how sure.

:func:`detect_clusters` answers "where are the clusters of my territory?" for every sector of
a registry (or of a pre-aggregated units × sectors table) in one call, and returns a
:class:`~clustermap.ClusterResult` with one row per cluster region, the tidy units × sectors
table behind it, and every parameter used.

Method (per sector *s*, all sectors at once; docs/methods.md, "Detecting clusters")
------------------------------------------------------------------------------------
1. **Expected counts relative to all activity.** ``E_is = n_i· n_·s / N`` on establishment
   counts, so a big city is not a cluster of everything: the unit's LQ is ``O_is / E_is``.
2. **Local concentration test.** For each unit *i*, the window ``W_i = {i} ∪ neighbours(i)``
   (the graph's neighbours) is tested for an excess with the exact one-sided test
   ``P(X >= O_W)`` (``O_W``, ``E_W``: sums over the window, computed for all sectors with
   one sparse product ``(A + I) @ X``). ``X`` is negative binomial with mean ``E_W`` and
   variance ``E_W + alpha_s sum_{j in W} E_js²``, ``alpha_s`` the sector's extra-Poisson
   dispersion estimated on the data (:mod:`clustermap.stats.dispersion`; ``Poisson(E_W)``
   with ``options={"dispersion": "poisson"}``), so the bunching of establishments that
   real registries show beyond Poisson is not taken for clusters. The Benjamini-Hochberg procedure
   controls the false discovery rate over the units of each sector (family: the units with
   any activity). Exact p-values have no permutation resolution floor, so BH can reject
   among 35 000 communes.
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
   establishments of the sector, a region LQ ``>= min_lq`` whose lower bound (negative
   binomial; Garwood when ``alpha_s = 0``) exceeds 1, and a region p-value below
   ``region_alpha`` (default
   ``alpha`` / number of sectors analysed: Bonferroni across sectors, so sectors without any
   cluster stay clean). The region is selected by the data, so its p-value is descriptive;
   the error control comes from steps 2 and 5 together.
6. **Scores**: region LQ with its Garwood interval, employment (band midpoint and the
   low-high band range) and the employment LQ, share of the sector, focus, European
   Cluster Observatory stars and U.S. Cluster Mapping strong-cluster flags (percentiles taken
   over the regions of a coarser comparison zoning, ``score_units``: départements for French
   commune codes by default, as CMP compares custom regions with its economic areas), and the
   **strength**, the Poisson log-likelihood ratio of the region ``O ln(O/E) - (O - E)``
   (Kulldorff's scan statistic), which grows with both size and specificity.
   **Ranking**: traded clusters first, then local ones (``sector_type``: the shipped cluster
   categories for NAF codes, the user's ``sector_types``, or the data), registry artefacts
   last in each list; each list by ``rank_score = lq_low × share_low``, the lower bounds of
   the LQ and of the share of the sector: specialisation and weight in the industry make a
   cluster, size is only the ``min_establishments`` floor (docs/methods.md, "Ranking").
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
from dataclasses import dataclass, replace
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..core.distributed import is_dask_frame, resolve_client
from ..core.options import as_options, keyword_only, resolve_seed, take_legacy
from ..core.progress import bar
from ..core.schema import (
    CLUSTER_ID,
    COMMUNE,
    EMPLOYEES,
    EMPLOYEES_HIGH,
    EMPLOYEES_LOW,
    ESTABLISHMENTS,
    LABEL,
    REASON_OUTSIDE_UNITS,
    SECTOR,
    STATISTIC,
    UNIT_ID,
)
from ..errors import ClustermapWarning, SchemaError
from ..io.counts import CountTables
from ..stats.dispersion import estimate_dispersion
from ..stats.lq import eb_smooth
from ..table import OTHER, SectorTable, counts_table, registry_table
from .options import LEGACY, DetectionOptions
from .profile import cluster_frame, composition, membership, reference
from .regions import adjacency, find_regions, link_matrix
from .result import ClusterResult
from .shards import region_rows, shard_client, window_cells
from .types import resolve_types
from .window import window_test

__all__ = ["OTHER", "DetectionOptions", "detect_clusters"]


# ----------------------------------------------------------------------------- public API
@keyword_only(2, ["level"])
def detect_clusters(
    data: Any,
    units: gpd.GeoDataFrame | None = None,
    *,
    level: str | int | Mapping[str, Any] | pd.Series | pd.DataFrame | None = "subclass",
    employees: pd.DataFrame | None = None,
    sectors: Sequence[str] | None = None,
    graph: Any = None,
    alpha: float = 0.05,
    min_lq: float = 1.5,
    local_statistic: str | None = "getis_ord",
    random_state: int | None = None,
    n_jobs: int | None = None,
    options: DetectionOptions | Mapping[str, Any] | None = None,
    client: Any = None,
    **legacy: Any,
) -> ClusterResult:
    """Find the business clusters of a territory, score them, and say how sure we are.

    The method is in the module documentation (``help(clustermap.detect.pipeline)``). In short:
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
        (docs/methods.md, "Detecting clusters").
    min_lq : float, default 1.5
        Minimum LQ of a cluster region; its Garwood lower bound must also exceed 1. LQ
        floors in the literature range from 1.25 to 2 (2 is the European Cluster
        Observatory's specialisation star); 1.5 keeps the software cluster
        of the demo (a city cluster of a sector common everywhere, region LQ 1.9) while the
        Bonferroni region test keeps null sectors clean.
    local_statistic : {"getis_ord", None}, default "getis_ord"
        Add Gi* of the EB-smoothed LQ to the table for the sectors with clusters (reported,
        see step 7 above). ``None`` skips it (faster).
    random_state : int, optional
        Seed of the Gi* permutations; results do not depend on the thread count. None draws
        a seed, stored in ``parameters["random_state"]`` so the run can be reproduced (the
        clusters themselves come from the exact window test and never depend on it).
    options : DetectionOptions or dict, optional
        The calibration beyond the everyday arguments (:class:`DetectionOptions`; a dict of
        its fields works too): ``min_unit_lq`` (LQ floor of a specialised unit, 1.5),
        ``grow_alpha``, ``link_order`` (2), ``min_establishments`` (10), ``region_alpha``,
        ``conf_level`` (0.95), ``gi_alpha``, ``local_sectors`` ("clusters"),
        ``permutations`` (999), ``exclude_artefacts`` (False), ``score_units`` ("auto") and
        ``nomenclature`` ("naf"). The old keywords (``detect_clusters(...,
        link_order=1)``) still work for one release, with a FutureWarning.

        ``score_units`` is the comparison zoning of the CMP strong-cluster percentiles and
        the ECO size and focus stars. Both anchors compare a cluster with regions of a
        coarser zoning of the same kind (CMP compares custom regions with economic areas;
        ECO ranked NUTS-2 regions), never with the small units a cluster is built from
        (small units have extreme LQs and tiny sizes, so the size star would always be
        given and the P75 LQ would be out of reach). ``"auto"``: départements when the unit
        ids are French commune codes (INSEE ``01001``, ``2A004``, ``97411``), otherwise
        squares of about 50 median units each, laid over the units' representative points
        (documented in ``parameters["score_units_rule"]``). A GeoDataFrame of polygons (e.g.
        zones d'emploi): each unit goes to the zone holding its representative point. A
        Series: unit id -> zone label. ``None``: the analysis units themselves.
    n_jobs : int, optional
        Threads for the permutation kernel (numba default when None).
    client : dask.distributed.Client or str, optional
        A Dask cluster (a client, a scheduler address or ``"local"``; needs
        ``pip install 'clustermap[dask]'``): a partitioned registry is counted on its
        workers, and on large tables (over ``detect.shards.WINDOW_CELLS`` window cells) the
        window tests and regions run by blocks of sectors there. The result equals the
        single-machine one. Gi* (step 7, its early stop shared by the sectors of a unit)
        runs here, as one call.

    Returns
    -------
    ClusterResult
        - ``clusters``: one row per cluster, columns ``CLUSTER_COLUMNS``, traded first and
          each type by ``rank_score`` (see step 6), plus ``lq_employees_low`` /
          ``lq_employees_high`` (range of the employment LQ between the low, midpoint and
          high size-band rules).
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
    opts = _options(options, legacy)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1); got {alpha!r}.")
    if local_statistic not in ("getis_ord", None):
        raise ValueError(f"local_statistic must be 'getis_ord' or None; got {local_statistic!r}.")
    if opts.gi_alpha is not None and local_statistic is None:
        raise ValueError("gi_alpha needs local_statistic='getis_ord'.")
    run = _Run(level=level, alpha=alpha, min_lq=min_lq, opts=opts)
    random_state = resolve_seed(random_state)
    run.params.update(local_statistic=local_statistic, random_state=random_state)
    client = resolve_client(client)
    inp = _read_input(data, units, level, employees, opts, run, client)
    x = inp.table.measures[ESTABLISHMENTS]
    labels, artefact = _sector_info(inp.table.sectors, level, opts.nomenclature)
    analysed = _analysed(inp.table, sectors, level, artefact, opts)
    totals = _exposure(opts.exposure, inp.units, inp.table, run)
    if totals is None:  # with an exposure, a one-sector file is what it is for
        _warn_one_sector(inp.table)
    n_analysed = int(analysed.sum())
    run.params["region_alpha"] = (
        alpha / max(n_analysed, 1) if opts.region_alpha is None else opts.region_alpha
    )
    run.params["n_sectors_analysed"] = n_analysed
    run.lap("aggregate")
    dispersion = _dispersion(x, inp.table.sectors, analysed, opts, run, totals)
    comp_x, comp_emp = _comparison_tables(inp.units, inp.table, opts.score_units, run)
    types, type_source = resolve_types(
        inp.table.sectors, level, opts.sector_types, opts.nomenclature, comp_x
    )
    graph = _default_graph(graph, inp.units, inp.point_units, run)
    adj = adjacency(graph, inp.table.unit_ids)
    run.lap("graph")
    grow_alpha = alpha if opts.grow_alpha is None else opts.grow_alpha
    shard = shard_client(client, x, adj)  # the window tests of large tables by sector blocks
    cells = window_cells(
        x,
        adj,
        analysed,
        client=shard,
        alpha=alpha,
        min_unit_lq=opts.min_unit_lq,
        grow_alpha=grow_alpha,
        conf_level=opts.conf_level,
        dispersion=dispersion,
        totals=totals,
    )
    gi = _LocalGi(x, inp.table, graph, alpha, random_state, n_jobs, opts, run)
    if opts.gi_alpha is not None:
        gi.filter_candidates(cells)
    run.lap("window_test")
    regions = region_rows(
        cells,
        link_matrix(adj, opts.link_order),
        x,
        client=shard,
        region_alpha=run.params["region_alpha"],
        conf_level=opts.conf_level,
        min_establishments=opts.min_establishments,
        min_lq=min_lq,
        dispersion=dispersion,
        totals=totals,
    )
    regions = _name_regions(regions, inp.table.sectors, cells)
    if len(regions):
        run.lap("regions")
    if local_statistic is not None and opts.gi_alpha is None:
        # reported only: the sectors where clusters were found, or every analysed sector
        if opts.local_sectors == "all":
            gi.add(cells, np.flatnonzero(analysed))
        elif len(regions):
            gi.add(cells, regions["sec"].to_numpy())
        run.lap("local_statistic")
    clusters = cluster_frame(
        regions,
        inp.units,
        inp.table.measures,
        inp.table.sectors,
        labels,
        artefact,
        reference(comp_x, comp_emp, inp.table.sectors),
    )
    sector_info = _SectorInfo(labels, artefact, analysed, dispersion, types, type_source)
    clusters = _rank(clusters, sector_info, inp.table.sectors, run)
    clusters = _within_type_lq(clusters, inp.table, types)
    single = _SingleCodes(adj, opts, alpha, min_lq, totals)
    comp = _composition(data, inp, clusters, level, opts.nomenclature, single)
    if comp is not None and len(clusters):
        clusters["codes"] = _codes_text(clusters, comp)
    related = _related(cells, x.shape, clusters, inp.table.sectors, labels)
    return _assemble(inp, cells, clusters, sector_info, run, comp, related)


# ----------------------------------------------------------------------------- steps
def _options(options: Any, legacy: dict[str, Any]) -> DetectionOptions:
    """Validate the options once; old keywords land in them with a FutureWarning."""
    moved = take_legacy("detect_clusters", legacy, LEGACY, stacklevel=5).get("options")
    return as_options(DetectionOptions, options, "options", moved)


class _Run:
    """The parameters of one detection, filled as the steps run, and their timings."""

    def __init__(self, *, level: Any, alpha: float, min_lq: float, opts: DetectionOptions):
        fields = opts.as_dict()
        fields.pop("score_units")
        is_mapping = isinstance(level, Mapping | pd.Series | pd.DataFrame)
        self.params: dict[str, Any] = {
            "level": "mapping" if is_mapping else level,
            "alpha": alpha,
            **fields,
            "grow_alpha": alpha if opts.grow_alpha is None else opts.grow_alpha,
            "min_lq": min_lq,
            "test": "exact Poisson window test (unit + neighbours), BH FDR per sector",
        }
        self.timings: dict[str, float] = {}
        self._clock = time.perf_counter()
        self._bar = bar(total=6, desc="detect_clusters", unit="step")

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.timings[stage] = round(now - self._clock, 3)
        self._clock = now
        self._bar.set_postfix_str(stage, refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        self._bar.close()


@dataclass
class _Input:
    units: gpd.GeoDataFrame
    table: SectorTable
    point_units: bool
    establishments: gpd.GeoDataFrame | None = None
    registry_summary: dict[str, Any] | None = None


def _is_registry(data: Any) -> bool:
    if hasattr(data, "establishments") and not isinstance(data, CountTables):
        return True
    return isinstance(data, gpd.GeoDataFrame) and SECTOR in data.columns


def _read_input(
    data: Any,
    units: Any,
    level: Any,
    employees: Any,
    opts: DetectionOptions,
    run: _Run,
    client: Any = None,
) -> _Input:
    """Step 1: the units × sectors table of a registry or of pre-aggregated counts."""
    if _is_registry(data):
        if units is None and is_dask_frame(getattr(data, "establishments", data)):
            raise SchemaError(
                "A partitioned registry needs units= (its establishments stay on the Dask "
                "workers): units = cm.read_units(path) or cm.make_grid(...)."
            )
        if units is None:
            from ..units import units_from_registry

            units = units_from_registry(data, column=COMMUNE)
        units = _prepare_units(units)
        table, est_out = _registry_input(data, units, level, opts.nomenclature, run, client)
        summary = data.summary_dict() if hasattr(data, "summary_dict") else None
    else:
        if units is None:
            raise SchemaError(
                "Pre-aggregated counts need units= (polygons indexed by the table's unit ids) "
                "for the neighbours and the cluster outlines: units = cm.read_units(path)."
            )
        units = _prepare_units(units)
        table = _counts_input(data, employees, units, level, opts.nomenclature, run)
        est_out, summary = None, None
        if isinstance(data, CountTables) and data.source != "<DataFrame>":
            run.params["source"] = data.source  # the report names the file read
    if table.measures[ESTABLISHMENTS].sum() <= 0:
        raise SchemaError("The data hold no establishment at all inside the units.")
    point_units = not units.geom_type.isin(["Polygon", "MultiPolygon"]).all()
    return _Input(units, table, point_units, est_out, summary)


def _registry_input(
    data: Any, units: gpd.GeoDataFrame, level: Any, nomenclature: str, run: _Run, client: Any
) -> tuple[SectorTable, gpd.GeoDataFrame | None]:
    """The table of a registry and its establishments labelled with unit and sector.

    The establishments are None for a partitioned registry: they stay on the Dask workers.
    """
    table = registry_table(
        data, units, level, unmapped="other", nomenclature=nomenclature, warn=False, client=client
    )
    if EMPLOYEES in table.measures:  # bounds default to the point value
        for name in (EMPLOYEES_LOW, EMPLOYEES_HIGH):
            table.measures.setdefault(name, table.measures[EMPLOYEES])
    n_out = table.count(REASON_OUTSIDE_UNITS)
    if n_out:
        warnings.warn(
            f"{n_out} establishment(s) fall outside every unit and are left out of the "
            "counts (reason 'outside_units' in result.parameters['dropped']).",
            ClustermapWarning,
            stacklevel=4,
        )
    run.params["dropped"] = {REASON_OUTSIDE_UNITS: n_out} if n_out else {}
    other = np.flatnonzero(np.asarray(table.sectors == OTHER))
    n_other = int(table.measures[ESTABLISHMENTS][:, other].sum()) if len(other) else 0
    run.params["outside_level"] = {
        "establishments": n_other,
        "codes": table.outside_level if n_other else [],
    }
    if table.unit_of is None:
        return table, None
    est = getattr(data, "establishments", data).copy()
    est[UNIT_ID] = np.where(
        table.unit_of >= 0, table.unit_ids.to_numpy(dtype=object)[table.unit_of], None
    )
    est["_sector_level"] = table.sector_of()
    return table, est


def _counts_input(
    data: Any, employees: Any, units: gpd.GeoDataFrame, level: Any, nomenclature: str, run: _Run
) -> SectorTable:
    table = counts_table(data, employees=employees, level=level, nomenclature=nomenclature)
    target = _commune_targets(table, units, run)
    unknown = table.unit_ids[target < 0]
    dropped = {}
    if len(unknown):
        lost = target < 0
        n_lost = int(table.measures[ESTABLISHMENTS][lost].sum())
        dropped[REASON_OUTSIDE_UNITS] = n_lost
        warnings.warn(
            f"{len(unknown)} unit id(s) of the counts are not in units (e.g. "
            f"{sorted(unknown)[:5]}); their {n_lost} establishment(s) are left out.",
            ClustermapWarning,
            stacklevel=4,
        )
    # rows summed onto the units (several codes may land on one commune); units without
    # counts hold zeros
    ok = target >= 0
    take = sp.csr_matrix(
        (np.ones(int(ok.sum())), (target[ok], np.flatnonzero(ok))),
        shape=(len(units), len(table.unit_ids)),
    )
    measures = {k: (take @ m).tocsr() for k, m in table.measures.items()}
    # sectors without any establishment in the units are not part of the analysis
    kept = np.flatnonzero(np.asarray(measures[ESTABLISHMENTS].sum(axis=0)).ravel() > 0)
    measures = {k: m[:, kept].tocsr() for k, m in measures.items()}
    sectors = table.sectors[kept]
    other = np.flatnonzero(np.asarray(sectors == OTHER))
    n_other = int(measures[ESTABLISHMENTS][:, other].sum()) if len(other) else 0
    run.params["dropped"] = dropped
    run.params["outside_level"] = {"establishments": n_other, "codes": table.outside_level}
    return replace(table, unit_ids=units.index, sectors=sectors, measures=measures)


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


def _analysed(
    table: SectorTable, sectors: Any, level: Any, artefact: np.ndarray, opts: DetectionOptions
) -> np.ndarray:
    """Sectors to analyse: the chosen ones with activity, not OTHER, artefacts on request."""
    codes = table.sectors
    n_s = np.asarray(table.measures[ESTABLISHMENTS].sum(axis=0)).ravel()
    analysed = np.ones(len(codes), dtype=bool)
    if sectors is not None:
        wanted = pd.Index([str(s) for s in sectors])
        missing = wanted.difference(codes.astype(str))
        if len(missing):
            raise SchemaError(
                f"sectors {list(missing)[:5]} are not in the data at level {level!r}; "
                f"available e.g. {list(codes[:5])}."
            )
        analysed = codes.astype(str).isin(wanted)
    if opts.exclude_artefacts:
        analysed &= ~artefact
    analysed &= n_s > 0
    analysed &= np.asarray(codes != OTHER)
    return np.asarray(analysed)


#: share of all establishments above which a file is "one sector" (an extract, not a registry)
ONE_SECTOR_SHARE = 0.8


def _warn_one_sector(table: SectorTable) -> None:
    """A sector holding most establishments cannot show clusters: its LQ is about 1."""
    n_s = np.asarray(table.measures[ESTABLISHMENTS].sum(axis=0)).ravel()
    n_s = np.where(np.asarray(table.sectors == OTHER), 0.0, n_s)  # a pooled bucket
    total = float(table.measures[ESTABLISHMENTS].sum())
    if not len(n_s) or total <= 0:
        return
    top = int(np.argmax(n_s))
    share = n_s[top] / total
    if share >= ONE_SECTOR_SHARE:
        warnings.warn(
            f"{share:.1%} of the establishments are in one sector ({table.sectors[top]}): its "
            "LQ compares each unit with the unit's own activity, which is mostly that sector, "
            "so it is about 1 everywhere and that sector cannot show clusters. To find where "
            "it concentrates, give a registry of every sector of the territory, or test it "
            "per inhabitant: options={'exposure': population per unit} (on the command line "
            "--exposure population --cog COG_TABLE).",
            ClustermapWarning,
            stacklevel=4,
        )


def _default_graph(graph: Any, units: gpd.GeoDataFrame, point_units: bool, run: _Run) -> Any:
    if graph is not None:
        run.params["graph"] = "user graph"
        return graph
    from ..graph import build_graph

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClustermapWarning)
        if point_units:
            run.params["graph"] = "knn k=8"
            return build_graph(units, "knn", k=min(8, len(units) - 1))
        run.params["graph"] = "queen, islands linked to their nearest unit"
        return build_graph(units, "queen", islands="knn")


def _name_regions(regions: pd.DataFrame, sectors: pd.Index, cells: pd.DataFrame) -> pd.DataFrame:
    """Rank the regions within their sector; ``cluster_id`` = "<sector>-<rank>".

    The rank is by ``rank_score`` (specialisation × share of the sector, lower bounds), then
    strength, as the cluster list.
    """
    cells[CLUSTER_ID] = ""
    if not len(regions):
        return regions.assign(cluster_id=pd.Series(dtype=object))
    regions = regions.sort_values(["rank_score", "strength"], ascending=False, kind="stable")
    regions["rank"] = regions.groupby("sec").cumcount() + 1
    regions[CLUSTER_ID] = [f"{sectors[s]}-{r}" for s, r in zip(regions["sec"], regions["rank"])]
    for idx, cid in zip(regions["cell_idx"], regions[CLUSTER_ID]):
        cells.loc[idx, CLUSTER_ID] = cid
    return regions.reset_index(drop=True)


class _LocalGi:
    """Step 7: Gi* of the EB-smoothed LQ, one batched kernel call per use."""

    def __init__(self, x, table, graph, alpha, random_state, n_jobs, opts, run) -> None:
        self.x, self.table, self.graph, self.run = x, table, graph, run
        self.kw = {
            "permutations": opts.permutations,
            "random_state": random_state,
            "alpha": alpha,
            "n_jobs": n_jobs,
            "early_stop": opts.gi_alpha if opts.gi_alpha is not None else alpha,
        }
        self.gi_alpha = opts.gi_alpha

    def add(self, cells: pd.DataFrame, cols: np.ndarray) -> None:
        """Gi* of the sectors ``cols`` into ``cells``."""
        cols = np.unique(np.asarray(cols, dtype=np.int64))
        gi = _getis_ord(self.x, cols, self.table, self.graph, **self.kw)
        self.run.params["local_statistic_sectors"] = [str(self.table.sectors[c]) for c in cols]
        sel = np.isin(cells["_c"].to_numpy(), cols)
        r, c = cells["_r"].to_numpy()[sel], cells["_c"].to_numpy()[sel]
        gcol = np.searchsorted(cols, c)
        cells.loc[sel, STATISTIC] = gi["statistic"][r, gcol]
        cells.loc[sel, "statistic_p_value"] = gi["p_value"][r, gcol]
        cells.loc[sel, LABEL] = gi["label"][r, gcol]

    def filter_candidates(self, cells: pd.DataFrame) -> None:
        """With ``gi_alpha``: candidates also need a Gi* p-value <= gi_alpha."""
        seed = cells["seed"].to_numpy()
        cols = np.flatnonzero(np.bincount(cells["_c"].to_numpy()[seed], minlength=self.x.shape[1]))
        if not len(cols):
            return
        self.add(cells, cols)
        ok = cells["statistic_p_value"].fillna(1.0).to_numpy() <= self.gi_alpha
        cells["seed"] = seed & ok
        cells["candidate"] = cells["candidate"].to_numpy() & ok


def _getis_ord(x: sp.csr_matrix, cols: np.ndarray, table: SectorTable, graph: Any, **kw: Any):
    """Gi* of the EB-smoothed LQ for ``cols`` (one batched kernel call), on the units' rows."""
    from ..graph import graph_arrays
    from ..stats.autocorrelation import local_getis_ord

    n_i = np.asarray(x.sum(axis=1)).ravel()
    n_s = np.asarray(x.sum(axis=0)).ravel()
    sub = x[:, cols].toarray()
    active = n_i > 0
    e = n_i[:, None] * (n_s[cols] / n_s.sum())[None, :]
    eb = np.zeros_like(sub)
    eb[active] = eb_smooth(sub[active], e[active])
    values = pd.DataFrame(eb, index=table.unit_ids, columns=table.sectors[cols].astype(str))
    ids = graph_arrays(graph).ids
    graph_ids = pd.Index(ids).astype(str)
    values = values.reindex(graph_ids)
    values.index = pd.Index(ids)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClustermapWarning)
        res = local_getis_ord(values, graph, alternative="greater", **kw)
    order = graph_ids.get_indexer(table.unit_ids)
    return {
        "statistic": res.statistic.to_numpy(dtype=float)[order],
        "p_value": res.p_value.to_numpy(dtype=float)[order],
        "label": res.label.to_numpy(dtype=object)[order],
    }


def _comparison_tables(units: gpd.GeoDataFrame, table: SectorTable, zones: Any, run: _Run):
    """Establishments and employment of the comparison zoning (``score_units``), or the units."""
    comp_x = table.measures[ESTABLISHMENTS]
    comp_emp = table.measures.get(EMPLOYEES)
    if zones is not None:
        member, how = membership(units, zones)
        comp_x = member @ comp_x
        comp_emp = None if comp_emp is None else member @ comp_emp
        run.params["score_units"] = int(member.shape[0])
        run.params["score_units_rule"] = how
    return comp_x, comp_emp


def _dispersion(
    x: sp.csr_matrix,
    sectors: pd.Index,
    analysed: np.ndarray,
    opts: DetectionOptions,
    run: _Run,
    totals: np.ndarray | None = None,
) -> np.ndarray:
    """Extra-Poisson dispersion ``alpha_s`` of every sector (0 for the Poisson model)."""
    d = opts.dispersion
    if isinstance(d, str) and d == "estimate":
        alpha = estimate_dispersion(x, totals=totals)["alpha"].to_numpy()
        run.params["dispersion_model"] = (
            "negative binomial, alpha estimated per sector (robust quantile rule, shrunk "
            "towards the median of the well-measured sectors)"
        )
    elif isinstance(d, str):  # "poisson"
        alpha = np.zeros(len(sectors))
        run.params["dispersion_model"] = "Poisson (no extra dispersion)"
    elif isinstance(d, int | float):
        alpha = np.full(len(sectors), float(d))
        run.params["dispersion_model"] = f"negative binomial, alpha = {float(d):g} for every sector"
    else:
        given = {str(k): float(v) for k, v in d.items()}
        codes = sectors.astype(str)
        missing = [c for c, a in zip(codes, analysed) if a and c not in given]
        if missing:
            raise SchemaError(
                f"options.dispersion gives no value for the sectors {missing[:5]}; give one "
                "per analysed sector, or dispersion='estimate'."
            )
        alpha = np.array([given.get(c, 0.0) for c in codes])
        if (alpha < 0).any():
            raise SchemaError("options.dispersion values must be >= 0.")
        run.params["dispersion_model"] = "negative binomial, alpha given per sector"
    return np.where(np.asarray(sectors == OTHER), 0.0, alpha)


def _exposure(
    exposure: Any, units: gpd.GeoDataFrame, table: SectorTable, run: _Run
) -> np.ndarray | None:
    """Per-unit totals proportional to the exposure, summing to the establishments (or None)."""
    if exposure is None:
        return None
    if isinstance(exposure, str):
        if exposure not in units.columns:
            raise SchemaError(
                f"options exposure={exposure!r} is not a column of the units; columns are "
                f"{[c for c in units.columns if c != units.geometry.name][:10]}. Give a column "
                "of the units or a Series (unit id -> value), e.g. the population of the COG."
            )
        values = units[exposure]
        run.params["exposure"] = exposure
    else:
        values = pd.to_numeric(pd.Series(exposure), errors="coerce")
        values.index = values.index.astype(str)
        grouped = values.groupby(level=0)
        clash = grouped.nunique() > 1
        if clash.any():
            raise SchemaError(
                f"options exposure gives several values to the units {list(clash.index[clash])[:5]}"
                "; give one value per unit."
            )
        values = grouped.first()  # a repeated id with one value and blanks: that value
        run.params["exposure"] = "user values per unit"
    v = pd.to_numeric(values.reindex(table.unit_ids), errors="coerce").to_numpy(dtype=float)
    n_i = np.asarray(table.measures[ESTABLISHMENTS].sum(axis=1)).ravel()
    missing = (~np.isfinite(v) | (v < 0)) & (n_i > 0)
    if missing.any():
        ids = list(table.unit_ids[missing][:5])
        raise SchemaError(
            f"{int(missing.sum())} unit(s) holding establishments have no exposure (e.g. "
            f"{ids}); give a value >= 0 for every unit with establishments."
        )
    v = np.where(np.isfinite(v) & (v > 0), v, 0.0)
    if v.sum() <= 0:
        raise SchemaError("The exposure is 0 for every unit.")
    return v * (n_i.sum() / v.sum())


@dataclass
class _SectorInfo:
    """What is known of each analysis sector beyond its counts."""

    labels: np.ndarray
    artefact: np.ndarray
    analysed: np.ndarray
    dispersion: np.ndarray
    types: np.ndarray
    type_source: np.ndarray


#: order of the types in the cluster list
_TYPE_ORDER = {"traded": 0, "local": 1, "": 2}


def _rank(clusters: pd.DataFrame, info: _SectorInfo, sectors: pd.Index, run: _Run):
    """Traded clusters first, each list by ``rank_score`` (artefacts last); type added."""
    pos = sectors.get_indexer(clusters["sector"]) if len(clusters) else np.array([], int)
    clusters["sector_type"] = info.types[pos] if len(pos) else pd.Series(dtype=object)
    clusters["dispersion"] = info.dispersion[pos] if len(pos) else pd.Series(dtype=float)
    order = clusters["sector_type"].map(_TYPE_ORDER).fillna(2)
    clusters = clusters.assign(_order=order.to_numpy())
    clusters = clusters.sort_values(
        ["_order", "artefact", "rank_score", "strength"],
        ascending=[True, True, False, False],
        kind="stable",
    )
    run.params["ranking"] = (
        "traded clusters first, then local ones; within each, by rank_score = lq_low × "
        "share_low (lower bounds of the LQ and of the share of the sector, overdispersion "
        "included), registry artefacts (head offices, holdings, temporary work) last; size "
        "is a floor (min_establishments), not the sort key"
    )
    return clusters.drop(columns="_order").reset_index(drop=True)


def _sector_info(codes: pd.Index, level: Any, nomenclature: str) -> tuple[np.ndarray, np.ndarray]:
    """French labels and artefact flags of the analysis sectors."""
    from ..taxonomy import category_names, is_artefact_sector, is_category_level, sector_labels

    str_codes = pd.Series(codes.astype(str), index=range(len(codes)))
    if is_category_level(level):  # the shipped cluster categories: their French names
        names = category_names(str_codes)
        labels = names.where(names.notna(), str_codes).to_numpy(dtype=object)
        return labels, np.zeros(len(codes), dtype=bool)
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


# ----------------------------------------------------------------------------- outputs
def _assemble(inp, cells, clusters, info: _SectorInfo, run, comp=None, related=None):
    table, x = inp.table, inp.table.measures[ESTABLISHMENTS]
    n_i = np.asarray(x.sum(axis=1)).ravel()
    run.params["units_without_activity"] = int((n_i <= 0).sum())
    summary = inp.registry_summary
    dropped = run.params["dropped"]
    if summary is not None and dropped:
        summary = {**summary, "dropped_in_detection": dropped}
    tidy = _tidy_table(cells, table)
    sectors_frame = _sectors_frame(table, info, cells, clusters)
    est = _label_establishments(inp.establishments, tidy)
    run.lap("scores_and_tables")
    run.close()
    run.params["timings"] = run.timings
    return ClusterResult(
        clusters=clusters,
        table=tidy,
        units=inp.units,
        establishments=est,
        parameters=run.params,
        registry_summary=summary,
        sectors=sectors_frame,
        composition=comp,
        related=related,
    )


def _tidy_table(cells: pd.DataFrame, table: SectorTable) -> pd.DataFrame:
    out = cells.copy()
    r, c = cells["_r"].to_numpy(), cells["_c"].to_numpy()
    out.insert(0, UNIT_ID, table.unit_ids.to_numpy()[r])
    out.insert(1, SECTOR, table.sectors.to_numpy()[c])
    emp_mats = {k: v for k, v in table.measures.items() if k != ESTABLISHMENTS}
    for name, mat in emp_mats.items():
        out[name] = np.asarray(mat[r, c]).ravel()
    if emp_mats:
        emp = emp_mats[EMPLOYEES]
        e_i = np.asarray(emp.sum(axis=1)).ravel()
        e_s = np.asarray(emp.sum(axis=0)).ravel()
        with np.errstate(all="ignore"):
            exp_emp = e_i[r] * e_s[c] / e_s.sum()
            out["lq_employees"] = np.where(exp_emp > 0, out[EMPLOYEES] / exp_emp, np.nan)
    return out.drop(columns=["_r", "_c"]).reset_index(drop=True)


def _label_establishments(est: gpd.GeoDataFrame | None, tidy: pd.DataFrame):
    """The establishments with their unit and cluster ("" outside clusters)."""
    if est is None:
        return None
    key = pd.Series(
        tidy[CLUSTER_ID].to_numpy(),
        index=pd.MultiIndex.from_arrays([tidy[UNIT_ID], tidy[SECTOR].astype(str)]),
    )
    idx = pd.MultiIndex.from_arrays(
        [est[UNIT_ID].astype(object), est["_sector_level"].astype(object).astype(str)]
    )
    est[CLUSTER_ID] = key.reindex(idx).fillna("").to_numpy()
    return est.drop(columns="_sector_level")


def _sectors_frame(table, info: _SectorInfo, cells, clusters) -> pd.DataFrame:
    codes, x = table.sectors, table.measures[ESTABLISHMENTS]
    labels, artefact, analysed = info.labels, info.artefact, info.analysed
    n_sec = len(codes)
    n_s = np.asarray(x.sum(axis=0)).ravel()
    col = cells["_c"].to_numpy()
    frame = pd.DataFrame(
        {
            SECTOR: codes,
            "sector_label": labels,
            ESTABLISHMENTS: n_s,
            "analysed": analysed,
            "artefact": artefact,
            "significant_units": np.bincount(col[cells["significant"].to_numpy()], minlength=n_sec),
            "candidate_units": np.bincount(col[cells["seed"].to_numpy()], minlength=n_sec),
            "clusters": clusters[SECTOR].value_counts().reindex(codes, fill_value=0).to_numpy(),
            "share_in_clusters": (
                clusters.groupby(SECTOR)[ESTABLISHMENTS].sum().reindex(codes).fillna(0)
                / np.where(n_s > 0, n_s, np.nan)
            ).to_numpy(),
        }
    )
    frame.insert(2, "sector_type", info.types)
    frame.insert(3, "type_source", info.type_source)
    frame["dispersion"] = info.dispersion
    if EMPLOYEES in table.measures:
        frame.insert(5, EMPLOYEES, np.asarray(table.measures[EMPLOYEES].sum(axis=0)).ravel())
    return frame


def _groups_codes(level: Any) -> bool:
    from ..taxonomy import is_category_level

    return is_category_level(level) or isinstance(level, Mapping | pd.Series | pd.DataFrame)


def _code_table(data: Any, inp: _Input) -> tuple[sp.csr_matrix, pd.Index] | None:
    """Units × original codes (before the roll-up to groups), on the units' rows."""
    unit_ids = inp.table.unit_ids
    if inp.establishments is not None:
        est = inp.establishments
        if SECTOR not in est.columns:
            return None
        where = unit_ids.get_indexer(est[UNIT_ID].astype(object).astype(str))
        ok = where >= 0
        code_idx, codes = pd.factorize(est[SECTOR].astype(str).to_numpy(dtype=object)[ok])
        x = sp.csr_matrix(
            (np.ones(int(ok.sum())), (where[ok], code_idx)), shape=(len(unit_ids), len(codes))
        )
        return x, pd.Index(codes)
    counts = data.establishments if isinstance(data, CountTables) else data
    if not isinstance(counts, pd.DataFrame):
        return None
    counts = counts.copy()
    counts.index = counts.index.astype(str)
    counts = counts.groupby(level=0).sum().reindex(unit_ids, fill_value=0)
    values = counts.apply(pd.to_numeric, errors="coerce").fillna(0).to_numpy(dtype=float)
    return sp.csr_matrix(values), pd.Index(counts.columns.astype(str))


class _SingleCodes:
    """Single-code detection with the same settings, for the codes of a group level."""

    def __init__(self, adj, opts: DetectionOptions, alpha: float, min_lq: float, totals=None):
        self.adj, self.opts, self.alpha, self.min_lq = adj, opts, alpha, min_lq
        self.totals = totals

    def regions(self, x: sp.csr_matrix, codes: pd.Index, wanted: np.ndarray) -> dict:
        """Code -> unit rows of each of its single-code clusters (codes ``wanted`` only)."""
        n_i = np.asarray(x.sum(axis=1)).ravel()
        n_c = np.asarray(x.sum(axis=0)).ravel()
        if not wanted.any() or n_i.sum() <= 0:
            return {}
        opts = self.opts
        grow = self.alpha if opts.grow_alpha is None else opts.grow_alpha
        region_alpha = self.alpha / max(int((n_c > 0).sum()), 1)  # as a run at code level
        dispersion = estimate_dispersion(x, totals=self.totals)["alpha"].to_numpy()
        cells = window_test(
            x,
            self.adj,
            wanted,
            alpha=self.alpha,
            min_unit_lq=opts.min_unit_lq,
            grow_alpha=grow,
            conf_level=opts.conf_level,
            dispersion=dispersion,
            totals=self.totals,
        )
        regions = find_regions(
            cells,
            link_matrix(self.adj, opts.link_order),
            x,
            region_alpha=region_alpha,
            conf_level=opts.conf_level,
            min_establishments=opts.min_establishments,
            min_lq=self.min_lq,
            dispersion=dispersion,
            totals=self.totals,
        )
        out: dict[str, list[np.ndarray]] = {}
        for sec, rows in zip(regions["sec"], regions["rows"]):
            out.setdefault(str(codes[sec]), []).append(np.asarray(rows))
        return out


def _composition(
    data: Any,
    inp: _Input,
    clusters: pd.DataFrame,
    level: Any,
    nomenclature: str,
    single: _SingleCodes | None = None,
):
    """The codes inside each cluster of a group level (None for plain levels)."""
    if not _groups_codes(level):
        return None
    from ..taxonomy import roll_up, sector_labels

    table = _code_table(data, inp)
    if table is None:
        return None
    x, codes = table
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        group = roll_up(pd.Series(codes), level, nomenclature=nomenclature)
        labels = sector_labels(pd.Series(codes), nomenclature=nomenclature)
    code_group = pd.Series(group.to_numpy(), index=codes).dropna()
    code_labels = pd.Series(labels.to_numpy(), index=codes).dropna()
    comp = composition(clusters, x, inp.table.unit_ids, codes, code_group, code_labels)
    if single is not None and len(comp):
        wanted = np.asarray(pd.Index(codes).isin(comp["code"].unique()))
        regions = single.regions(x.tocsr(), pd.Index(codes), wanted)
        comp["single_code_cluster"] = _overlaps(comp, clusters, inp.table.unit_ids, regions)
    return comp


def _overlaps(comp: pd.DataFrame, clusters: pd.DataFrame, unit_ids: pd.Index, regions: dict):
    """Whether each code of a cluster is a cluster on its own there (a region that overlaps)."""
    rows_of = {
        cid: set(unit_ids.get_indexer([str(u) for u in ids]))
        for cid, ids in zip(clusters[CLUSTER_ID], clusters["unit_ids"])
    }
    return [
        any(rows_of[cid] & set(r.tolist()) for r in regions.get(code, []))
        for cid, code in zip(comp[CLUSTER_ID], comp["code"])
    ]


def _codes_text(clusters: pd.DataFrame, comp: pd.DataFrame) -> list[str]:
    """``25.62A (403), 25.61Z (24)…``: the codes of each cluster, those driving it first."""
    out = []
    for cid in clusters[CLUSTER_ID]:
        part = comp[comp[CLUSTER_ID] == cid]
        out.append(", ".join(f"{c} ({int(n)})" for c, n in zip(part["code"], part[ESTABLISHMENTS])))
    return out


def _within_type_lq(clusters: pd.DataFrame, table: SectorTable, types: np.ndarray):
    """LQ within the sector's type (``lq_tf`` of the CMP): against traded (or local) activity."""
    if not len(clusters) or not np.isin(types, ["traded", "local"]).any():
        return clusters
    x = table.measures[ESTABLISHMENTS].tocsc()
    by_type = {
        kind: np.asarray(x[:, np.flatnonzero(types == kind)].sum(axis=1)).ravel()
        for kind in ("traded", "local")
    }
    n_s = np.asarray(x.sum(axis=0)).ravel()
    pos = table.sectors.get_indexer(clusters[SECTOR])
    out = []
    for p, kind, ids, o in zip(
        pos, clusters["sector_type"], clusters["unit_ids"], clusters[ESTABLISHMENTS]
    ):
        if kind not in by_type:
            out.append(np.nan)
            continue
        rows = table.unit_ids.get_indexer([str(u) for u in ids])
        region, nation = by_type[kind][rows].sum(), by_type[kind].sum()
        out.append(o / region / (n_s[p] / nation) if region > 0 and nation > 0 else np.nan)
    clusters = clusters.copy()
    clusters["lq_within_type"] = out
    return clusters


def _related(cells, shape, clusters, sectors, labels) -> pd.DataFrame | None:
    """Co-location of the sectors with clusters (``colocation`` of their excess maps)."""
    from .relatedness import colocation_from_cells

    if not len(clusters):
        return None
    cols = np.unique(sectors.get_indexer(clusters[SECTOR]))
    mat = colocation_from_cells(cells, shape)[np.ix_(cols, cols)]
    ia, ib = np.triu_indices(len(cols), k=1)
    pairs = pd.DataFrame(
        {
            "sector_a": sectors[cols[ia]].astype(str),
            "sector_b": sectors[cols[ib]].astype(str),
            "label_a": labels[cols[ia]],
            "label_b": labels[cols[ib]],
            "colocation": mat[ia, ib],
        }
    )
    pairs = pairs[pairs["colocation"] > 0].sort_values("colocation", ascending=False)
    return pairs.reset_index(drop=True)


def _commune_targets(table: SectorTable, units: gpd.GeoDataFrame, run: _Run) -> np.ndarray:
    """Row of ``units`` for each row of the counts, commune codes of other vintages mapped.

    When the units are French communes and some ids of the counts are not among them,
    arrondissements, absorbed communes and communes created since are mapped to the
    commune of the units that holds them (:func:`clustermap.io.communes.harmonise_communes`),
    and the remapping is reported in ``parameters["remapped_communes"]``.
    """
    from ..io.communes import harmonise_communes, looks_like_communes

    target = units.index.get_indexer(table.unit_ids)
    missing = target < 0
    if not missing.any() or not looks_like_communes(units.index):
        return target
    mapped = harmonise_communes(pd.Series(table.unit_ids[missing].astype(str)))
    dest = units.index.get_indexer(mapped["commune"].fillna("").astype(str))
    moved = dest >= 0
    if moved.any():
        target[np.flatnonzero(missing)[moved]] = dest[moved]
        how = mapped["how"].to_numpy()[moved]
        codes = mapped["code"].to_numpy()[moved]
        x = table.measures[ESTABLISHMENTS]
        rows = np.flatnonzero(missing)[moved]
        n_est = np.asarray(x[rows].sum(axis=1)).ravel()
        report = {
            kind: {
                "codes": int((how == kind).sum()),
                "establishments": int(n_est[how == kind].sum()),
                "examples": sorted(map(str, codes[how == kind]))[:5],
            }
            for kind in sorted(set(how))
        }
        run.params["remapped_communes"] = report
        words = ", ".join(f"{k}: {v['codes']}" for k, v in report.items())
        warnings.warn(
            f"{int(moved.sum())} commune code(s) of the counts are not communes of the units "
            f"and were mapped to the commune holding them ({words}); see "
            "result.parameters['remapped_communes'].",
            ClustermapWarning,
            stacklevel=5,
        )
    return target
