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
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from .core.geo import ids_as_str, metric_crs, no_location
from .core.options import keyword_only
from .core.schema import COMMUNE, UNIT_ID
from .errors import ClustermapWarning, CRSError, SchemaError
from .io.registry import as_establishments
from .io.units import read_units

__all__ = ["make_grid", "metric_crs", "read_units", "units_from_registry"]
# --------------------------------------------------------------------------- registry units


@keyword_only(1, ["column"])
def units_from_registry(
    registry: Any,
    *,
    column: str = COMMUNE,
) -> gpd.GeoDataFrame:
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
    est = as_establishments(registry)
    if column not in est.columns:
        raise SchemaError(
            f"The registry has no column {column!r}. Columns are "
            f"{[c for c in est.columns if c != est.geometry.name]}. Pass the column holding "
            "each establishment's unit, e.g. units_from_registry(registry, column='commune')."
        )
    geoms = est.geometry.to_numpy()
    located = ~no_location(geoms)
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
            UNIT_ID: ids_as_str(keys[keep]).to_numpy(),
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


@keyword_only(2, ["kind", "crs", "keep_empty"])
def make_grid(
    extent: Any,
    cell_size: float,
    *,
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
        geoms = geoms[~no_location(geoms)]
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
