"""Read spatial units (polygon layers) indexed by unit id; repair and report the rest."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from ..core.geo import ids_as_str, polygonal
from ..core.options import keyword_only
from ..core.schema import GEOMETRY, UNIT_ID, UNIT_NAME
from ..errors import ClustermapWarning, CRSError, DataFileError, SchemaError

__all__ = ["read_units"]

#: Column names tried, in this order, when ``unit_id`` is not given.
_ID_CANDIDATES = (
    "unit_id",
    "code",
    "code_insee",
    "insee",
    "codgeo",
    "insee_com",
    "code_commune",
    "codecommune",
    "com",
    "codeepci",
    "code_epci",
    "siren",
    "id",
)
#: Column names tried, in this order, when ``name`` is not given.
_NAME_CANDIDATES = (
    "name",
    "nom",
    "libelle",
    "nom_com",
    "nom_commune",
    "libgeo",
    "lib",
    "label",
)


# --------------------------------------------------------------------------- helpers


def _find_column(columns: Sequence[str], candidates: Sequence[str]) -> str | None:
    lower = {str(c).lower(): c for c in columns}
    for cand in candidates:
        if cand in lower:
            return lower[cand]
    return None


# --------------------------------------------------------------------------- read_units


@keyword_only(1, ["unit_id", "name", "crs"])
def read_units(
    source: str | Path | gpd.GeoDataFrame,
    *,
    unit_id: str | None = None,
    name: str | None = None,
    crs: Any = None,
) -> gpd.GeoDataFrame:
    """Read and validate a polygon layer of spatial units (communes, EPCI, zones d'emploi…).

    Parameters
    ----------
    source : str, pathlib.Path or geopandas.GeoDataFrame
        A file geopandas can read (GeoParquet ``.parquet``, GeoPackage, GeoJSON, Shapefile…)
        or a GeoDataFrame.
    unit_id : str, optional
        Column holding the unit ids. When omitted, the first of ``unit_id``, ``code``,
        ``code_insee``, ``insee``, ``codgeo``, ``insee_com``, ``code_commune``, ``com``,
        ``codeEpci``, ``siren``, ``id`` (any case) is used, or a named index.
    name : str, optional
        Column holding a readable name; when omitted, ``name``, ``nom``, ``libelle``,
        ``nom_com``, ``libgeo``… (any case) is used if present.
    crs : optional
        CRS of the layer when the file declares none (anything pyproj understands, e.g.
        ``2154`` or ``"EPSG:4326"``).

    Returns
    -------
    geopandas.GeoDataFrame
        Indexed by ``unit_id`` (str, unique), with a ``name`` column when a name column was
        given or found, the layer's other columns, and valid (Multi)Polygon geometries in the
        layer's CRS.

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    clustermap.errors.DataFileError
        When the file cannot be read as a vector layer.
    clustermap.errors.SchemaError
        When the id (or name) column is missing, ids are missing or duplicated, or the
        geometries are not polygons.
    clustermap.errors.CRSError
        When the layer has no CRS and ``crs`` is not given, or ``crs`` contradicts the CRS
        the layer declares.

    Warns
    -----
    clustermap.errors.ClustermapWarning
        When invalid geometries were repaired (:func:`shapely.make_valid`, polygonal part
        kept) or units without geometry were dropped (counts and ids are given).

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import box
    >>> layer = gpd.GeoDataFrame(
    ...     {"code": [1, 2], "nom": ["Annecy", "Cluses"]},
    ...     geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1)], crs=2154)
    >>> units = cm.read_units(layer, unit_id="code")
    >>> units.index.tolist(), units["name"].tolist()
    (['1', '2'], ['Annecy', 'Cluses'])
    """
    gdf, origin = _load_layer(source)

    # CRS
    if gdf.crs is None:
        if crs is None:
            raise CRSError(
                f"The units in {origin} have no CRS. Pass the one the coordinates are in, "
                "e.g. read_units(..., crs=2154) for Lambert-93 metres or crs=4326 for "
                "longitude/latitude."
            )
        gdf = gdf.set_crs(crs)
    elif crs is not None and not CRS.from_user_input(crs).equals(gdf.crs):
        raise CRSError(
            f"The units in {origin} declare CRS {gdf.crs.to_string()}, but crs={crs!r} was "
            "given. crs= only sets a missing CRS; to reproject, read without crs= and call "
            f".to_crs({crs!r}) on the result."
        )

    # ids
    columns = [c for c in gdf.columns if c != gdf.geometry.name]
    if unit_id is None:
        unit_id = _find_column(columns, _ID_CANDIDATES)
        if unit_id is None and gdf.index.name is not None:
            gdf = gdf.reset_index()
            unit_id = gdf.columns[0]
    if unit_id is None or unit_id not in gdf.columns:
        what = f"has no column {unit_id!r}" if unit_id else "has no recognisable id column"
        raise SchemaError(
            f"The units in {origin} {what}. Columns are {columns}. Pass the id column as "
            "unit_id=..., e.g. read_units(path, unit_id='code_insee')."
        )
    ids = ids_as_str(gdf[unit_id])
    missing = np.flatnonzero(ids.isna().to_numpy())
    if len(missing):
        raise SchemaError(
            f"Column {unit_id!r} of the units in {origin} has {len(missing)} empty id(s), at "
            f"row(s) {missing[:10].tolist()}. Every unit needs an id: fill them or drop those "
            "rows."
        )
    dup = ids[ids.duplicated(keep=False)]
    if len(dup):
        values = sorted(dup.unique().tolist())
        raise SchemaError(
            f"Column {unit_id!r} of the units in {origin} has {len(values)} duplicated id(s): "
            f"{values[:10]}{' …' if len(values) > 10 else ''}. Unit ids must be unique: "
            "dissolve the duplicates (units.dissolve(by=...)) or choose another id column."
        )

    # name
    if name is not None and name not in gdf.columns:
        raise SchemaError(
            f"The units in {origin} have no column {name!r} for names. Columns are {columns}."
        )
    if name is None:
        name = _find_column([c for c in columns if c != unit_id], _NAME_CANDIDATES)

    out = gdf.drop(columns=[unit_id])
    out.index = pd.Index(ids.to_numpy(dtype=object), name=UNIT_ID)
    if name is not None and name != unit_id:
        out = out.rename(columns={name: UNIT_NAME})
        out = out[[UNIT_NAME, *[c for c in out.columns if c != UNIT_NAME]]]
    if out.geometry.name != GEOMETRY:
        out = out.rename_geometry(GEOMETRY)

    # geometries
    geoms = out.geometry.to_numpy()
    _check_finite(geoms, out.index, origin)
    _check_bounds(out, origin)
    out = _drop_empty(out, origin, "have no geometry")
    geoms = out.geometry.to_numpy()
    kinds = set(shapely.get_type_id(geoms).tolist())
    if not kinds <= {3, 6, 7}:  # Polygon, MultiPolygon, GeometryCollection (after repair)
        types = sorted(set(out.geometry.geom_type))
        raise SchemaError(
            f"The units in {origin} must be polygons; found geometry types {types}. For "
            "point units use clustermap.units_from_registry; for a grid use make_grid."
        )
    out = _repair(out, geoms)
    # a repair can leave nothing polygonal (a zero-area ring): dropped like empty ones
    return _drop_empty(out, origin, "have no area left after repair (shapely.make_valid)")


def _load_layer(source: Any) -> tuple[gpd.GeoDataFrame, str]:
    """The layer of a GeoDataFrame or a file, and how to name it in messages."""
    if isinstance(source, gpd.GeoDataFrame):
        gdf = source.copy()
        origin = "the GeoDataFrame"
    else:
        path = Path(source)
        origin = f"file {path.name!r}"
        if not path.exists():
            raise FileNotFoundError(
                f"Units file {str(path)!r} does not exist. Give the path of a polygon layer "
                "(GeoParquet, GeoPackage, GeoJSON, Shapefile…) or a GeoDataFrame."
            )
        try:
            if path.suffix.lower() in (".parquet", ".geoparquet", ".pq"):
                gdf = gpd.read_parquet(path)
            elif path.suffix.lower() == ".gz":  # e.g. communes-100m.geojson.gz (Etalab)
                gdf = gpd.read_file(f"/vsigzip/{path}")
            else:
                gdf = gpd.read_file(path)
        except Exception as err:  # pyogrio / pyarrow raise many different types
            raise DataFileError(
                f"Cannot read units file {str(path)!r} as a vector layer ({err}). Expected a "
                "GeoParquet, GeoPackage, GeoJSON (or .geojson.gz), zipped Shapefile or "
                "Shapefile with polygon geometries."
            ) from err
        if not isinstance(gdf, gpd.GeoDataFrame) or gdf.geometry.name not in gdf:
            raise DataFileError(f"Units file {str(path)!r} has no geometry column.")
    return gdf, origin


def _repair(out: gpd.GeoDataFrame, geoms: np.ndarray) -> gpd.GeoDataFrame:
    """Invalid polygons made valid (with a warning); collections reduced to polygons."""
    invalid = ~shapely.is_valid(geoms)
    if invalid.any():
        fixed = shapely.make_valid(geoms[invalid])
        geoms = geoms.copy()
        geoms[invalid] = [polygonal(g) for g in fixed]
        out = out.set_geometry(gpd.GeoSeries(geoms, index=out.index, crs=out.crs))
        bad = out.index[invalid].tolist()
        warnings.warn(
            f"{len(bad)} invalid unit geometr{'y was' if len(bad) == 1 else 'ies were'} "
            f"repaired with shapely.make_valid (units {bad[:10]}"
            f"{' …' if len(bad) > 10 else ''}).",
            ClustermapWarning,
            stacklevel=5,
        )
    collections = shapely.get_type_id(out.geometry.to_numpy()) == 7
    if collections.any():
        geoms = out.geometry.to_numpy().copy()
        geoms[collections] = [polygonal(g) for g in geoms[collections]]
        out = out.set_geometry(gpd.GeoSeries(geoms, index=out.index, crs=out.crs))
    return out


def _drop_empty(out: gpd.GeoDataFrame, origin: str, why: str) -> gpd.GeoDataFrame:
    geoms = out.geometry.to_numpy()
    empty = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if not empty.any():
        return out
    dropped = out.index[empty].tolist()
    warnings.warn(
        f"{len(dropped)} unit(s) of {origin} {why} and were dropped: "
        f"{dropped[:10]}{' …' if len(dropped) > 10 else ''}.",
        ClustermapWarning,
        stacklevel=4,
    )
    return out.loc[~empty]


def _check_finite(geoms: np.ndarray, index: pd.Index, origin: str) -> None:
    coords, which = shapely.get_coordinates(geoms, return_index=True)
    bad = ~np.isfinite(coords).all(axis=1)
    if bad.any():
        units = index[np.unique(which[bad])].tolist()
        raise SchemaError(
            f"The units in {origin} have vertices with NaN or infinite coordinates (units "
            f"{units[:10]}{' …' if len(units) > 10 else ''}). Fix or drop those geometries "
            "before reading the layer."
        )


def _check_bounds(out: gpd.GeoDataFrame, origin: str) -> None:
    """Coordinates must fit a geographic CRS (metres declared as degrees are refused)."""
    crs = out.crs
    if crs is None or len(out) == 0:
        return
    minx, miny, maxx, maxy = out.total_bounds
    if not np.isfinite([minx, miny, maxx, maxy]).all():
        return
    if not crs.is_geographic:
        # projected CRSs: no check (synthetic or local layers use small coordinates)
        return
    ok = minx >= -180.5 and maxx <= 360.5 and miny >= -90.5 and maxy <= 90.5
    span = "longitude -180..180 and latitude -90..90"
    if not ok:
        raise CRSError(
            f"The units in {origin} have coordinates x {minx:,.6g}..{maxx:,.6g}, "
            f"y {miny:,.6g}..{maxy:,.6g}, which do not fit their CRS {crs.to_string()} "
            f"({span}). The declared CRS is probably wrong (metres declared as degrees?): "
            "set the right one with gdf.set_crs(..., allow_override=True) or read_units(..., "
            "crs=...) on a layer without CRS."
        )
