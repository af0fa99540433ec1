"""The container returned by :func:`clustermap.detect_clusters`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..core.atomic import atomic_path, neutralise_formulas

if TYPE_CHECKING:  # pragma: no cover
    import folium
    import geopandas as gpd

#: Columns of ``ClusterResult.clusters`` (one row per detected cluster), in order.
CLUSTER_COLUMNS = (
    "cluster_id",  # str, stable within a result, e.g. "25.62A-1"
    "sector",  # code at the analysis level (or group name)
    "sector_label",  # French NAF label (or group name)
    "place",  # a place label a person understands ("Cluses, Scionzier, Marnaz")
    "unit_ids",  # list of unit ids
    "n_units",
    "establishments",
    "employees",  # band-imputed with the registry's rule (default midpoint)
    "employees_low",  # lower bound of the size bands
    "employees_high",  # upper bound of the size bands
    "lq",  # establishment-count LQ of the cluster region
    "lq_low",  # 95 % interval of the LQ (exact; negative binomial when dispersion > 0)
    "lq_high",
    "lq_employees",  # employment LQ of the region
    "share_of_sector",  # share of the whole table's sector establishments in the cluster
    "focus",  # share of the cluster region's establishments that are in the sector
    "p_value",  # one-sided exact p-value of the region's excess (NB when dispersion > 0)
    "stars",  # European Cluster Observatory stars (0-3)
    "strong_cluster",  # US Cluster Mapping strong-cluster flag (P75)
    "strong_cluster_p90",  # the P90 variant
    "artefact",  # sector known to produce registry artefacts (head offices, temp agencies…)
    "sector_type",  # "traded" or "local" (traded clusters come first), "" without types
    "dispersion",  # extra-Poisson dispersion alpha of the sector (0: Poisson)
    "rank_score",  # lq_low × share_low: the sort key within each type (descending)
    "strength",  # Poisson log-likelihood ratio of the region (size × specificity)
    "geometry",  # union of the units' polygons (CRS of the units)
)


@dataclass
class ClusterResult:
    """Clusters detected in a registry or a units × sectors table, with every measure.

    Attributes
    ----------
    clusters : geopandas.GeoDataFrame
        One row per cluster, columns :data:`CLUSTER_COLUMNS`: traded clusters first, then
        local ones, each sorted by ``rank_score``.
    table : pandas.DataFrame
        Tidy units × sectors table: ``unit_id``, ``sector``, ``establishments``,
        ``employees``, ``lq``, ``lq_low``, ``lq_high``, the local statistic and its p-value,
        ``significant``, ``label`` and ``cluster_id`` (empty when the cell is in no cluster).
    units : geopandas.GeoDataFrame
        The analysis units, indexed by unit id, with a ``name`` column when names are known.
    establishments : geopandas.GeoDataFrame or None
        Kept establishments with their ``unit_id`` (None for pre-aggregated input).
    parameters : dict
        Every parameter used, so a result can be reproduced.
    registry_summary : dict or None
        What was read: ``source``, ``rows``, ``kept``, ``rejects`` (count by reason).
    sectors : pandas.DataFrame or None
        One row per sector analysed: label, totals, type (traded / local), dispersion,
        artefact flag.
    composition : pandas.DataFrame or None
        For a level that groups codes (``level="cluster_category"`` or a mapping): one row
        per cluster × code present in it, with ``establishments``, ``expected``, ``lq``,
        ``excess_share`` (the codes driving the cluster first) and ``single_code_cluster``
        (the code is a cluster on its own there); None otherwise.
    related : pandas.DataFrame or None
        Pairs of sectors with clusters whose local concentrations co-locate (``colocation``
        of :func:`clustermap.relatedness`, from the same window tests), most related first.

    Examples
    --------
    Built by :func:`clustermap.detect_clusters`; here a 10 × 10 grid with a planted block:

    >>> import geopandas as gpd
    >>> from shapely.geometry import box
    >>> ids = [f"c{i:02d}" for i in range(100)]
    >>> cells = gpd.GeoDataFrame(
    ...     geometry=[box(i % 10, i // 10, i % 10 + 1, i // 10 + 1) for i in range(100)],
    ...     index=pd.Index(ids, name="unit_id"))
    >>> a = np.full(100, 8)
    >>> a[[0, 1, 2, 10, 11, 12, 20, 21, 22]] = 40
    >>> counts = pd.DataFrame({"a": a, "other": 200 - a}, index=ids)
    >>> res = cm.detect_clusters(counts, cells, level=None, local_statistic=None)
    >>> res.clusters[["cluster_id", "n_units"]].to_dict("records")
    [{'cluster_id': 'a-1', 'n_units': 9}]
    >>> sorted(res.table.loc[res.table["cluster_id"] == "a-1", "unit_id"])[:3]
    ['c00', 'c01', 'c02']
    """

    clusters: gpd.GeoDataFrame
    table: pd.DataFrame
    units: gpd.GeoDataFrame
    establishments: gpd.GeoDataFrame | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    registry_summary: dict[str, Any] | None = None
    sectors: pd.DataFrame | None = None
    composition: pd.DataFrame | None = None
    related: pd.DataFrame | None = None

    def __repr__(self) -> str:
        n_sectors = self.table["sector"].nunique() if "sector" in self.table else 0
        return (
            f"<ClusterResult: {len(self.clusters)} clusters in {n_sectors} sectors "
            f"over {len(self.units)} units>"
        )

    def explore(self, **kwargs: Any) -> folium.Map:
        """Interactive map of the clusters (see :func:`clustermap.explore_clusters`)."""
        from ..viz.maps import explore_clusters

        return explore_clusters(self, **kwargs)

    def portfolio(
        self, territory: Any, *, cog: Any = None, name: str | None = None
    ) -> pd.DataFrame:
        """The clusters and specialisations of a territory, leading ones first.

        See :func:`clustermap.detect.territory.portfolio`; ``territory`` as in
        :func:`~clustermap.detect.territory.resolve_territory` (unit ids, an EPCI code with
        ``cog=``, a département code, a polygon).
        """
        from .territory import portfolio, resolve_territory

        return portfolio(self, resolve_territory(territory, self.units, cog=cog, name=name))

    def firms(
        self, territory: Any, *, cog: Any = None, cluster_id: str | None = None
    ) -> pd.DataFrame:
        """The establishments of the territory's clusters, to contact.

        Establishments under SIRENE's statistical secrecy are counted in
        ``.attrs["withheld"]``, not listed.
        """
        from .territory import firm_list, resolve_territory

        firms, withheld = firm_list(
            self, resolve_territory(territory, self.units, cog=cog), cluster_id=cluster_id
        )
        firms.attrs["withheld"] = withheld
        return firms

    def export_firms(self, path: str | Path, territory: Any, *, cog: Any = None) -> Path:
        """Write the territory's firm lists to ``.xlsx`` (one sheet per cluster) or ``.csv``."""
        from .territory import export_firms, resolve_territory

        return export_firms(self, resolve_territory(territory, self.units, cog=cog), path)

    def to_html(self, path: str | Path, **kwargs: Any) -> Path:
        """Write the standalone HTML report (see :func:`clustermap.write_report`)."""
        from ..viz.report import write_report

        return write_report(self, path, **kwargs)

    def to_file(self, path: str | Path, driver: str | None = None) -> Path:
        """Write the clusters to GeoPackage (``.gpkg``), GeoParquet (``.parquet``) or CSV.

        A GeoPackage also receives the tidy table as a ``units_x_sectors`` layer (without
        geometry). List columns (``unit_ids``) are written as ``;``-separated text, except in
        GeoParquet which keeps lists.

        Parameters
        ----------
        path : str or pathlib.Path
            Output file; the format follows the extension unless ``driver`` is given.
        driver : str, optional
            ``"GPKG"``, ``"Parquet"`` or ``"CSV"``.

        Returns
        -------
        pathlib.Path
            The path written.
        """
        path = Path(path)
        suffix = path.suffix.lower()
        driver = driver or {".gpkg": "GPKG", ".parquet": "Parquet", ".csv": "CSV"}.get(suffix)
        if driver is None:
            raise ValueError(
                f"Cannot tell the output format of {path.name!r}: expected a .gpkg, .parquet or "
                ".csv extension, or pass driver='GPKG'|'Parquet'|'CSV'."
            )
        if driver not in ("GPKG", "Parquet", "CSV"):
            raise ValueError(f"driver must be 'GPKG', 'Parquet' or 'CSV'; {driver!r} was given.")
        clusters = self.clusters.copy()
        with atomic_path(path) as tmp:
            if driver == "Parquet":
                clusters.to_parquet(tmp)
                return path
            if "unit_ids" in clusters:
                clusters["unit_ids"] = clusters["unit_ids"].map(
                    lambda ids: ";".join(map(str, ids)) if isinstance(ids, list | tuple) else ids
                )
            if driver == "CSV":
                out = neutralise_formulas(pd.DataFrame(clusters.drop(columns="geometry")))
                out["geometry_wkt"] = clusters.geometry.to_wkt()
                out.to_csv(tmp, index=False)
                return path
            clusters.to_file(tmp, layer="clusters", driver="GPKG")
            table = pd.DataFrame(self.table).copy()
            for col in table.columns:
                if table[col].dtype == object:
                    table[col] = table[col].astype(str)
            import pyogrio

            # An attribute-only layer (GeoPackage "attributes" table): no geometry, no CRS.
            pyogrio.write_dataframe(table, tmp, layer="units_x_sectors", driver="GPKG")
        return path
