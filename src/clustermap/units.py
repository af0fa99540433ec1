"""Spatial units: polygon layers, units derived from a registry column, regular grids.

Every function returns a :class:`geopandas.GeoDataFrame` indexed by ``unit_id`` (ids as
``str``), the form :func:`clustermap.aggregate` and :func:`clustermap.build_graph` expect.

Metric CRS rule
---------------
Grids (and distances elsewhere in the library) need metres. When data are in a geographic
CRS (longitude/latitude), they are projected to **EPSG:2154 (Lambert-93)** when their
bounding box lies in metropolitan France and Corsica (longitude -5.5 to 10, latitude 41 to
51.5), and otherwise to the **UTM zone** (WGS 84, EPSG:326zz north / 327zz south) of the
centre of their bounding box, which covers the overseas départements. Pass ``crs=`` to
choose another projected CRS.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from ._schema import COMMUNE, GEOMETRY, UNIT_ID, UNIT_NAME
from .errors import ClustermapWarning, CRSError, DataFileError, SchemaError

__all__ = ["make_grid", "metric_crs", "read_units", "units_from_registry"]

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
#: Metropolitan France and Corsica (lon/lat bounds) for the EPSG:2154 rule.
_FRANCE_BOUNDS = (-5.5, 41.0, 10.0, 51.5)


# --------------------------------------------------------------------------- helpers


def _establishments(registry: Any) -> gpd.GeoDataFrame:
    """Establishments GeoDataFrame of a Registry or of a GeoDataFrame."""
    est = getattr(registry, "establishments", registry)
    if not isinstance(est, gpd.GeoDataFrame):
        raise SchemaError(
            "Expected a clustermap Registry (from clustermap.read_registry) or a GeoDataFrame "
            f"of establishments with point geometries; got {type(registry).__name__}."
        )
    return est


def _no_location(geoms: np.ndarray) -> np.ndarray:
    """Missing, empty or non-finite (``POINT (nan nan)``) geometries."""
    bad = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    pts = ~bad & (shapely.get_type_id(geoms) == 0)
    coords_ok = np.isfinite(shapely.get_x(geoms[pts])) & np.isfinite(shapely.get_y(geoms[pts]))
    bad[np.flatnonzero(pts)[~coords_ok]] = True
    return bad


def metric_crs(data: gpd.GeoDataFrame | gpd.GeoSeries) -> CRS:
    """Projected CRS (metres) suited to ``data``, by the module's metric CRS rule.

    Parameters
    ----------
    data : geopandas.GeoDataFrame or geopandas.GeoSeries
        Data with a CRS.

    Returns
    -------
    pyproj.CRS
        ``data.crs`` itself when it is already projected; EPSG:2154 for geographic data in
        metropolitan France and Corsica; otherwise the WGS 84 UTM zone of the data's centre.

    Raises
    ------
    clustermap.errors.CRSError
        When ``data`` has no CRS.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import Point
    >>> from clustermap.units import metric_crs
    >>> metric_crs(gpd.GeoSeries([Point(6.6, 46.0)], crs=4326)).to_epsg()
    2154
    >>> metric_crs(gpd.GeoSeries([Point(55.5, -21.1)], crs=4326)).to_epsg()  # La Réunion
    32740
    """
    if data.crs is None:
        raise CRSError(
            "The data have no CRS, so no metric CRS can be chosen. Set it first, e.g. "
            "data.set_crs(4326) for longitude/latitude or data.set_crs(2154) for Lambert-93."
        )
    crs = CRS.from_user_input(data.crs)
    if crs.is_projected:
        return crs
    lonlat = data.to_crs(4326) if crs.to_epsg() != 4326 else data
    geoms = lonlat.geometry if isinstance(lonlat, gpd.GeoDataFrame) else lonlat
    geoms = geoms[~(geoms.isna() | geoms.is_empty)]
    if len(geoms) == 0:
        return CRS.from_epsg(2154)
    minx, miny, maxx, maxy = geoms.total_bounds
    fx0, fy0, fx1, fy1 = _FRANCE_BOUNDS
    if minx >= fx0 and maxx <= fx1 and miny >= fy0 and maxy <= fy1:
        return CRS.from_epsg(2154)
    lon, lat = (minx + maxx) / 2, (miny + maxy) / 2
    zone = min(max(math.floor((lon + 180) / 6) + 1, 1), 60)
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def _find_column(columns: Sequence[str], candidates: Sequence[str]) -> str | None:
    lower = {str(c).lower(): c for c in columns}
    for cand in candidates:
        if cand in lower:
            return lower[cand]
    return None


def _ids_as_str(values: pd.Series) -> pd.Series:
    """Unit ids as str; integral floats lose their ``.0``."""
    if pd.api.types.is_float_dtype(values):
        finite = values.dropna()
        if len(finite) and np.all(np.mod(finite, 1) == 0):
            values = values.astype("Int64")
    out = values.astype("string").astype(object)
    out[values.isna().to_numpy()] = None
    return out


def _polygonal(geom: Any) -> Any:
    """Keep the polygonal part of a geometry (make_valid may add lines or points)."""
    if geom is None:
        return None
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [g for g in shapely.get_parts(geom) if g.geom_type in ("Polygon", "MultiPolygon")]
    if not parts:
        return shapely.Polygon()
    return shapely.union_all(parts)


# --------------------------------------------------------------------------- read_units


def read_units(
    source: str | Path | gpd.GeoDataFrame,
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
            else:
                gdf = gpd.read_file(path)
        except Exception as err:  # pyogrio / pyarrow raise many different types
            raise DataFileError(
                f"Cannot read units file {str(path)!r} as a vector layer ({err}). Expected a "
                "GeoParquet, GeoPackage, GeoJSON or Shapefile with polygon geometries."
            ) from err
        if not isinstance(gdf, gpd.GeoDataFrame) or gdf.geometry.name not in gdf:
            raise DataFileError(f"Units file {str(path)!r} has no geometry column.")

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
    ids = _ids_as_str(gdf[unit_id])
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
    invalid = ~shapely.is_valid(geoms)
    if invalid.any():
        fixed = shapely.make_valid(geoms[invalid])
        geoms = geoms.copy()
        geoms[invalid] = [_polygonal(g) for g in fixed]
        out = out.set_geometry(gpd.GeoSeries(geoms, index=out.index, crs=out.crs))
        bad = out.index[invalid].tolist()
        warnings.warn(
            f"{len(bad)} invalid unit geometr{'y was' if len(bad) == 1 else 'ies were'} "
            f"repaired with shapely.make_valid (units {bad[:10]}"
            f"{' …' if len(bad) > 10 else ''}).",
            ClustermapWarning,
            stacklevel=2,
        )
    collections = shapely.get_type_id(out.geometry.to_numpy()) == 7
    if collections.any():
        geoms = out.geometry.to_numpy().copy()
        geoms[collections] = [_polygonal(g) for g in geoms[collections]]
        out = out.set_geometry(gpd.GeoSeries(geoms, index=out.index, crs=out.crs))
    # a repair can leave nothing polygonal (a zero-area ring): dropped like empty ones
    return _drop_empty(out, origin, "have no area left after repair (shapely.make_valid)")


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
        stacklevel=3,
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


# --------------------------------------------------------------------------- registry units


def units_from_registry(registry: Any, column: str = COMMUNE) -> gpd.GeoDataFrame:
    """Point units from a registry column, when no polygons are at hand.

    Each unit is one point: the coordinate-wise **median** of its establishments' points
    (robust to a few mis-geocoded establishments), in the registry's CRS. A neighbour graph
    can then be built by k nearest neighbours; :func:`clustermap.assign_units` assigns
    establishments to these units by the registry column, not by position.

    Parameters
    ----------
    registry : clustermap.Registry or geopandas.GeoDataFrame
        Establishments with point geometries.
    column : str, default "commune"
        Column holding the unit of each establishment (e.g. the commune code).

    Returns
    -------
    geopandas.GeoDataFrame
        Indexed by ``unit_id`` (str, sorted), with ``establishments`` (number of
        establishments with a location) and Point geometries; ``attrs["registry_column"]``
        records ``column``.

    Raises
    ------
    clustermap.errors.SchemaError
        When ``column`` is not in the registry.

    Warns
    -----
    clustermap.errors.ClustermapWarning
        When establishments have no value in ``column`` or no location (they are counted;
        they do not make units).

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import Point
    >>> est = gpd.GeoDataFrame({"commune": ["A", "A", "A", "B"]},
    ...     geometry=[Point(0, 0), Point(1, 0), Point(9, 9), Point(5, 5)], crs=2154)
    >>> units = cm.units_from_registry(est, column="commune")
    >>> [(p.x, p.y) for p in units.geometry]
    [(1.0, 0.0), (5.0, 5.0)]
    """
    est = _establishments(registry)
    if column not in est.columns:
        raise SchemaError(
            f"The registry has no column {column!r}. Columns are "
            f"{[c for c in est.columns if c != est.geometry.name]}. Pass the column holding "
            "each establishment's unit, e.g. units_from_registry(registry, column='commune')."
        )
    geoms = est.geometry.to_numpy()
    located = ~_no_location(geoms)
    keys = est[column]
    has_key = keys.notna().to_numpy()
    n_nokey = int((~has_key).sum())
    n_noloc = int((has_key & ~located).sum())
    if n_nokey or n_noloc:
        warnings.warn(
            f"units_from_registry: {n_nokey} establishment(s) have no {column!r} value and "
            f"{n_noloc} have no location; they do not contribute to the unit points.",
            ClustermapWarning,
            stacklevel=2,
        )
    keep = has_key & located
    frame = pd.DataFrame(
        {
            UNIT_ID: _ids_as_str(keys[keep]).to_numpy(),
            "x": shapely.get_x(geoms[keep]),
            "y": shapely.get_y(geoms[keep]),
        }
    )
    grouped = frame.groupby(UNIT_ID, sort=True)
    med = grouped[["x", "y"]].median()
    out = gpd.GeoDataFrame(
        {"establishments": grouped.size().astype("int64")},
        geometry=shapely.points(med["x"].to_numpy(), med["y"].to_numpy()),
        crs=est.crs,
        index=pd.Index(med.index.to_numpy(dtype=object), name=UNIT_ID),
    )
    out.attrs["registry_column"] = column
    return out


# --------------------------------------------------------------------------- grids


def _hex_side(cell_size: float) -> float:
    """Side of the regular hexagon whose area is ``cell_size**2``."""
    return cell_size * math.sqrt(2.0 / (3.0 * math.sqrt(3.0)))


def _square_index(x: np.ndarray, y: np.ndarray, size: float) -> tuple[np.ndarray, np.ndarray]:
    return np.floor(y / size).astype(np.int64), np.floor(x / size).astype(np.int64)


def _hex_index(x: np.ndarray, y: np.ndarray, size: float) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of the pointy-top hexagon containing each point (nearest centre)."""
    a = _hex_side(size)
    w, h = math.sqrt(3.0) * a, 1.5 * a
    r0 = np.floor(y / h).astype(np.int64)
    best_d = np.full(x.shape, np.inf)
    best_r = np.zeros(x.shape, dtype=np.int64)
    best_c = np.zeros(x.shape, dtype=np.int64)
    for dr in (0, 1):
        r = r0 + dr
        offset = np.where(r % 2 == 1, w / 2.0, 0.0)
        c = np.round((x - offset) / w).astype(np.int64)
        d = (x - (c * w + offset)) ** 2 + (y - r * h) ** 2
        better = d < best_d
        best_d = np.where(better, d, best_d)
        best_r = np.where(better, r, best_r)
        best_c = np.where(better, c, best_c)
    return best_r, best_c


def _cell_polygons(rows: np.ndarray, cols: np.ndarray, size: float, kind: str) -> np.ndarray:
    if kind == "square":
        x0, y0 = cols * size, rows * size
        return shapely.box(x0, y0, x0 + size, y0 + size)
    a = _hex_side(size)
    w, h = math.sqrt(3.0) * a, 1.5 * a
    cx = cols * w + np.where(rows % 2 == 1, w / 2.0, 0.0)
    cy = rows * h
    angles = np.deg2rad(np.arange(30, 390, 60))  # pointy-top, counter-clockwise
    ring = np.stack(
        [cx[:, None] + a * np.cos(angles)[None, :], cy[:, None] + a * np.sin(angles)[None, :]],
        axis=-1,
    )
    ring = np.concatenate([ring, ring[:, :1]], axis=1)
    return shapely.polygons(ring)


def make_grid(
    extent: Any,
    cell_size: float,
    kind: str = "square",
    crs: Any = None,
    keep_empty: bool = False,
) -> gpd.GeoDataFrame:
    """Regular square or hexagonal grid in metres over a registry, a layer or bounds.

    Cells are aligned on multiples of the cell size in the grid's projected CRS, and the id
    of a cell depends only on its position, so two grids with the same ``cell_size``,
    ``kind`` and CRS give the same id to the same cell whatever data they were built on.

    Parameters
    ----------
    extent : clustermap.Registry, geopandas.GeoDataFrame, geopandas.GeoSeries or tuple
        What to cover: establishments (points), polygons, or bounds
        ``(minx, miny, maxx, maxy)`` expressed in ``crs``.
    cell_size : float
        Cell size in metres: the side of a square cell; a hexagonal cell has the same area,
        ``cell_size**2`` (side ``cell_size * sqrt(2 / (3 * sqrt(3)))``).
    kind : {"square", "hex"}, default "square"
        Square cells, or pointy-top regular hexagons (odd rows shifted by half a cell).
    crs : optional
        Projected CRS of the grid. By default the data's own CRS when projected, otherwise
        the module's metric CRS rule (EPSG:2154 in metropolitan France, else UTM). Required
        when ``extent`` is a tuple of bounds.
    keep_empty : bool, default False
        With points: also keep the cells that hold no point (the full rectangle of cells
        over their bounds). With polygons: also keep cells that share no area with a polygon
        (cells that only touch one are dropped by default). Ignored for bounds (all cells
        are kept).

    Returns
    -------
    geopandas.GeoDataFrame
        Indexed by ``unit_id`` like ``"sq1000_r6512_c712"`` / ``"hex1000_r…_c…"`` (row from
        south, column from west, counted from the CRS origin), columns ``row`` and ``col``,
        cell polygons in the grid's CRS; sorted by row then column.

    Raises
    ------
    clustermap.errors.CRSError
        When the data have no CRS, ``crs`` is geographic, or bounds come without ``crs``.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import Point
    >>> pts = gpd.GeoDataFrame(geometry=[Point(100, 100), Point(2500, 100)], crs=2154)
    >>> grid = cm.make_grid(pts, 1000)
    >>> grid.index.tolist()
    ['sq1000_r0_c0', 'sq1000_r0_c2']
    >>> len(cm.make_grid(pts, 1000, keep_empty=True))
    3
    >>> round(cm.make_grid(pts, 1000, kind="hex").area.iloc[0])
    1000000
    """
    if kind not in ("square", "hex"):
        raise ValueError(f"'kind' needs to be 'square' or 'hex'; {kind!r} was given.")
    if not (isinstance(cell_size, int | float | np.number) and cell_size > 0):
        raise ValueError(f"'cell_size' must be a positive number of metres; got {cell_size!r}.")
    cell_size = float(cell_size)
    target = CRS.from_user_input(crs) if crs is not None else None
    if target is not None and not target.is_projected:
        raise CRSError(
            f"crs={crs!r} is geographic; a grid in metres needs a projected CRS, e.g. "
            "crs=2154 (Lambert-93) or a UTM zone."
        )

    points = polygons = None
    if isinstance(extent, tuple | list | np.ndarray) and len(extent) == 4:
        if target is None:
            raise CRSError(
                "Bounds given as a tuple need crs= (the projected CRS they are expressed in), "
                "e.g. make_grid((xmin, ymin, xmax, ymax), 1000, crs=2154)."
            )
        bounds = tuple(float(v) for v in extent)
        keep_empty = True
    else:
        data = getattr(extent, "establishments", extent)
        if isinstance(data, gpd.GeoDataFrame):
            data = data.geometry
        if not isinstance(data, gpd.GeoSeries):
            raise SchemaError(
                "make_grid needs a Registry, a GeoDataFrame/GeoSeries or bounds "
                f"(minx, miny, maxx, maxy); got {type(extent).__name__}."
            )
        if data.crs is None:
            raise CRSError(
                "The data given to make_grid have no CRS; set it first, e.g. "
                ".set_crs(4326) for longitude/latitude."
            )
        if target is None:
            target = metric_crs(data)
        data = data.to_crs(target)
        geoms = data.to_numpy()
        geoms = geoms[~_no_location(geoms)]
        if len(geoms) == 0:
            raise SchemaError("make_grid: the data have no non-empty geometry to cover.")
        if (shapely.get_type_id(geoms) == 0).all():
            points = geoms
        else:
            polygons = geoms
        bounds = tuple(shapely.total_bounds(geoms))

    index_of = _square_index if kind == "square" else _hex_index
    if points is not None and not keep_empty:
        r, c = index_of(shapely.get_x(points), shapely.get_y(points), cell_size)
        cells = np.unique(np.stack([r, c], axis=1), axis=0)
        rows, cols = cells[:, 0], cells[:, 1]
    else:
        minx, miny, maxx, maxy = bounds
        if kind == "square":
            r0, c0 = _square_index(np.array([minx]), np.array([miny]), cell_size)
            r1, c1 = _square_index(np.array([maxx]), np.array([maxy]), cell_size)
            r0, c0, r1, c1 = r0[0], c0[0], r1[0], c1[0]
        else:
            a = _hex_side(cell_size)
            w, h = math.sqrt(3.0) * a, 1.5 * a
            r0, r1 = math.floor((miny - a) / h), math.ceil((maxy + a) / h)
            c0, c1 = math.floor((minx - w) / w), math.ceil((maxx + w) / w)
        n_cells = (r1 - r0 + 1) * (c1 - c0 + 1)
        if n_cells > 20_000_000:
            raise ValueError(
                f"make_grid would create {n_cells:,} cells; choose a larger cell_size."
            )
        rr, cc = np.meshgrid(np.arange(r0, r1 + 1), np.arange(c0, c1 + 1), indexing="ij")
        rows, cols = rr.ravel(), cc.ravel()
    cells_geom = _cell_polygons(rows, cols, cell_size, kind)

    if kind == "hex" and (points is None or keep_empty):
        # drop the margin cells that do not touch the bounding box
        box = shapely.box(*bounds)
        keep = shapely.intersects(cells_geom, box)
        rows, cols, cells_geom = rows[keep], cols[keep], cells_geom[keep]
    if polygons is not None and not keep_empty:
        tree = shapely.STRtree(cells_geom)
        poly_idx, hit = tree.query(polygons, predicate="intersects")
        # a cell that only touches a polygon along an edge or at a corner is not kept
        inside = ~shapely.touches(cells_geom[hit], polygons[poly_idx])
        keep = np.zeros(len(cells_geom), dtype=bool)
        keep[hit[inside]] = True
        rows, cols, cells_geom = rows[keep], cols[keep], cells_geom[keep]

    order = np.lexsort((cols, rows))
    rows, cols, cells_geom = rows[order], cols[order], cells_geom[order]
    prefix = f"{'sq' if kind == 'square' else 'hex'}{cell_size:g}"
    ids = [f"{prefix}_r{r}_c{c}" for r, c in zip(rows.tolist(), cols.tolist())]
    return gpd.GeoDataFrame(
        {"row": rows, "col": cols},
        geometry=cells_geom,
        crs=target,
        index=pd.Index(ids, name=UNIT_ID, dtype=object),
    )
