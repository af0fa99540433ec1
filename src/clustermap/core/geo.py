"""Geometry helpers shared by every layer: metric CRS choice, missing locations, ids.

Metric CRS rule
---------------
Grids and distances need metres. When data are in a geographic CRS (longitude/latitude),
they are projected to **EPSG:2154 (Lambert-93)** when their bounding box lies in
metropolitan France and Corsica (longitude -5.5 to 10, latitude 41 to 51.5), and otherwise
to the **UTM zone** (WGS 84, EPSG:326zz north / 327zz south) of the centre of their bounding
box, which covers the overseas départements.
"""

from __future__ import annotations

import math
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from ..errors import CRSError

__all__ = ["ids_as_str", "metric_crs", "no_location", "polygonal"]

_FRANCE_BOUNDS = (-5.5, 41.0, 10.0, 51.5)


def no_location(geoms: np.ndarray) -> np.ndarray:
    """Missing, empty or non-finite (``POINT (nan nan)``) geometries."""
    bad = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    pts = ~bad & (shapely.get_type_id(geoms) == 0)
    coords_ok = np.isfinite(shapely.get_x(geoms[pts])) & np.isfinite(shapely.get_y(geoms[pts]))
    bad[np.flatnonzero(pts)[~coords_ok]] = True
    return bad


def metric_crs(data: gpd.GeoDataFrame | gpd.GeoSeries) -> CRS:
    """Projected CRS (metres) suited to ``data``, by the metric CRS rule of :mod:`clustermap.units`.

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


def ids_as_str(values: pd.Series) -> pd.Series:
    """Unit ids as str; integral floats lose their ``.0``."""
    if pd.api.types.is_float_dtype(values):
        finite = values.dropna()
        if len(finite) and np.all(np.mod(finite, 1) == 0):
            values = values.astype("Int64")
    out = values.astype("string").astype(object)
    out[values.isna().to_numpy()] = None
    return out


def polygonal(geom: Any) -> Any:
    """Keep the polygonal part of a geometry (make_valid may add lines or points)."""
    if geom is None:
        return None
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [g for g in shapely.get_parts(geom) if g.geom_type in ("Polygon", "MultiPolygon")]
    if not parts:
        return shapely.Polygon()
    return shapely.union_all(parts)
