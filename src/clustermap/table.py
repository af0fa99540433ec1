"""Assign establishments to spatial units and build units × sectors tables.

Assignment is a vectorised point-in-polygon query on a :class:`shapely.STRtree`; tables are
built with :func:`numpy.bincount` (dense) or :class:`scipy.sparse.coo_matrix` (sparse), so a
national registry of 600 000 establishments onto 35 000 communes takes seconds.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .core.geo import no_location
from .core.schema import (
    DETAIL,
    EMPLOYEES,
    EMPLOYEES_HIGH,
    EMPLOYEES_LOW,
    ESTABLISHMENT_ID,
    ESTABLISHMENTS,
    REASON,
    REASON_OUTSIDE_UNITS,
    REASON_UNMAPPED_SECTOR,
    ROW,
    SECTOR,
    UNIT_ID,
)
from .errors import ClustermapWarning, CRSError, SchemaError
from .io.counts import CountTables
from .io.registry import as_establishments

__all__ = ["REASON_UNMAPPED_SECTOR", "aggregate", "assign_units"]

_MEASURES = (ESTABLISHMENTS, EMPLOYEES, EMPLOYEES_LOW, EMPLOYEES_HIGH)


def _is_point_units(units: gpd.GeoDataFrame) -> bool:
    types = shapely.get_type_id(units.geometry.to_numpy())
    return len(types) > 0 and bool(np.all(types == 0))


def _check_units(units: Any) -> gpd.GeoDataFrame:
    if not isinstance(units, gpd.GeoDataFrame):
        raise SchemaError(
            "'units' must be a GeoDataFrame indexed by unit id (from clustermap.read_units, "
            f"make_grid or units_from_registry); got {type(units).__name__}."
        )
    if units.index.has_duplicates:
        dup = units.index[units.index.duplicated()].unique().tolist()
        raise SchemaError(
            f"'units' has duplicated ids {dup[:10]}; ids must be unique. Read the layer with "
            "clustermap.read_units, which checks them."
        )
    return units


def assign_units(registry: Any, units: gpd.GeoDataFrame) -> pd.Series:
    """Unit id of each establishment (point in polygon).

    Parameters
    ----------
    registry : clustermap.Registry or geopandas.GeoDataFrame
        Establishments with point geometries (any CRS; reprojected to the units' CRS).
    units : geopandas.GeoDataFrame
        Polygon units indexed by unit id (:func:`clustermap.read_units`,
        :func:`clustermap.make_grid`), or point units from
        :func:`clustermap.units_from_registry`, for which establishments are assigned by the
        registry column recorded in ``units.attrs["registry_column"]`` (default ``commune``).

    Returns
    -------
    pandas.Series
        ``string`` dtype, named ``unit_id``, aligned on the establishments' index; ``<NA>``
        for establishments outside every unit or without a location.

    Raises
    ------
    clustermap.errors.CRSError
        When the establishments or the units have no CRS.

    Notes
    -----
    A point inside a unit, or on its boundary, belongs to it. A point on the border shared
    by several units (or inside overlapping units) goes to the one that comes **first in
    ``units``' row order**, so the result is deterministic and every establishment counts
    once.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import Point, box
    >>> units = gpd.GeoDataFrame(geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1)], crs=2154,
    ...                          index=pd.Index(["a", "b"], name="unit_id"))
    >>> est = gpd.GeoDataFrame(geometry=[Point(0.5, 0.5), Point(1, 0.5), Point(5, 5)],
    ...                        crs=2154)
    >>> cm.assign_units(est, units).tolist()  # the border point goes to "a", listed first
    ['a', 'a', <NA>]
    """
    est = as_establishments(registry)
    units = _check_units(units)
    positions = _assign_positions(est, units)
    ids = pd.Index(units.index.astype(str).to_numpy(dtype=object), dtype=object)
    codes = pd.Categorical.from_codes(positions, categories=ids)
    return pd.Series(codes, index=est.index, name=UNIT_ID).astype("string")


def _assign_positions(est: gpd.GeoDataFrame, units: gpd.GeoDataFrame) -> np.ndarray:
    """Row position in ``units`` of each establishment's unit, -1 when none."""
    if _is_point_units(units):
        column = units.attrs.get("registry_column", "commune")
        if column not in est.columns:
            raise SchemaError(
                f"The units are points (from units_from_registry), so establishments are "
                f"assigned by the registry column {column!r}, which the registry lacks."
            )
        ids = pd.Index(units.index.astype(str).to_numpy(dtype=object), dtype=object)
        keys = est[column].astype("string").to_numpy(dtype=object, na_value=None)
        return ids.get_indexer(keys).astype(np.int64)

    if est.crs is None or units.crs is None:
        which = "establishments" if est.crs is None else "units"
        raise CRSError(
            f"The {which} have no CRS, so points cannot be matched to units. Set it first, "
            "e.g. .set_crs(4326) for longitude/latitude or .set_crs(2154) for Lambert-93."
        )
    points = est.geometry
    if not points.crs.equals(units.crs):
        points = points.to_crs(units.crs)
    pts = points.to_numpy()
    pos = np.flatnonzero(~no_location(pts))
    tree = shapely.STRtree(units.geometry.to_numpy())
    point_idx, unit_idx = tree.query(pts[pos], predicate="intersects")
    assigned = np.full(len(est), -1, dtype=np.int64)
    if len(point_idx):
        # first unit in row order wins: sort pairs by (point, unit), keep the first per point
        order = np.lexsort((unit_idx, point_idx))
        point_idx, unit_idx = point_idx[order], unit_idx[order]
        first = np.ones(len(point_idx), dtype=bool)
        first[1:] = point_idx[1:] != point_idx[:-1]
        assigned[pos[point_idx[first]]] = unit_idx[first]
    return assigned


def _reject_frame(est: pd.DataFrame, mask: np.ndarray, reason: str, detail: Any) -> pd.DataFrame:
    n = int(mask.sum())
    if ROW in est.columns:
        rows = est[ROW].to_numpy()[mask]
    else:
        rows = np.full(n, pd.NA, dtype=object)
    if ESTABLISHMENT_ID in est.columns:
        ids = est[ESTABLISHMENT_ID].to_numpy()[mask]
    else:
        ids = est.index.to_numpy()[mask]
    details = detail[mask] if isinstance(detail, np.ndarray) else np.full(n, detail, dtype=object)
    return pd.DataFrame(
        {ROW: rows, ESTABLISHMENT_ID: ids, REASON: reason, DETAIL: details},
        index=pd.RangeIndex(n),
    )


def as_table(counts: Any, name: str) -> pd.DataFrame:
    """A validated units × sectors table (numbers, no NaN, no negative value).

    :class:`~clustermap.io.counts.CountTables` give their establishments table. Raises
    :class:`~clustermap.errors.SchemaError` naming ``name`` and the first bad column.
    """
    if isinstance(counts, CountTables):
        counts = counts.establishments
    if not isinstance(counts, pd.DataFrame):
        raise SchemaError(
            f"{name!r} must be a units x sectors pandas DataFrame (rows = units, columns = "
            f"sectors); got {type(counts).__name__}. Build one with clustermap.aggregate() or "
            "clustermap.read_counts()."
        )
    try:
        values = counts.to_numpy(dtype=float)
    except (TypeError, ValueError) as err:
        bad = [c for c in counts.columns if not pd.api.types.is_numeric_dtype(counts[c])]
        raise SchemaError(
            f"{name!r} must hold numbers only; column(s) {bad[:5]} are not numeric. Put unit "
            "ids in the index (df.set_index('unit_id')) and keep one numeric column per sector."
        ) from err
    if np.isnan(values).any():
        col = counts.columns[np.isnan(values).any(axis=0)][0]
        raise SchemaError(
            f"{name!r} has missing values (NaN), e.g. in column {col!r}. Counts must be "
            "complete: fill empty cells with 0 (df.fillna(0)) if they mean 'no activity'."
        )
    if (values < 0).any():
        col = counts.columns[(values < 0).any(axis=0)][0]
        raise SchemaError(
            f"{name!r} has negative values, e.g. in column {col!r}. Location quotients need "
            "non-negative counts or employment."
        )
    return counts


def aggregate(
    registry: Any,
    units: gpd.GeoDataFrame,
    level: str | int | Mapping[str, Any] | pd.Series | pd.DataFrame = "subclass",
    measure: str = ESTABLISHMENTS,
    sparse: bool = False,
    nomenclature: str = "naf",
) -> pd.DataFrame:
    """Units × sectors table of establishment counts or employment.

    Parameters
    ----------
    registry : clustermap.Registry or geopandas.GeoDataFrame
        Establishments with ``sector`` codes, point geometries and, for employment measures,
        the ``employees`` / ``employees_low`` / ``employees_high`` columns.
    units : geopandas.GeoDataFrame
        Units indexed by unit id (see :func:`assign_units`).
    level : str, int or mapping, default "subclass"
        Level of the sector codes (``"section"``, ``"division"``, ``"group"``, ``"class"``,
        ``"subclass"`` for NAF), or a mapping from codes to groups (see
        :func:`clustermap.roll_up`).
    measure : {"establishments", "employees", "employees_low", "employees_high"}
        Count establishments, or sum the band-imputed employment (point value, lower or upper
        bound of the size bands).
    sparse : bool, default False
        Return a pandas sparse frame (fill value 0), for many units × many sectors.
    nomenclature : str, default "naf"
        Nomenclature of the codes (``"naf"``, ``"nace"``, ``"naics"``, ``"prefix"``).

    Returns
    -------
    pandas.DataFrame
        Index: **all** unit ids in ``units``' order (name ``unit_id``), zeros kept; columns:
        the sector codes (or groups) of the establishments counted, sorted (name
        ``sector``). ``int64`` for
        establishments, ``float64`` for employment. ``attrs["rejects"]`` lists the
        establishments left out, with columns ``row``, ``establishment_id``, ``reason``,
        ``detail``: ``outside_units`` (no unit contains them, or no location) and
        ``unmapped_sector`` (the code has no group at ``level``). For the establishments
        measure, ``table.to_numpy().sum() + len(table.attrs["rejects"])`` equals the number
        of establishments.

    Raises
    ------
    clustermap.errors.SchemaError
        When a needed column is missing.
    ValueError
        When ``measure`` is unknown.

    Warns
    -----
    clustermap.errors.ClustermapWarning
        With the number of establishments outside every unit, with unmapped sectors, or with
        missing employment (counted as 0).

    Notes
    -----
    The pandas ``attrs`` travel with the table through most operations; concatenating two
    tables whose ``attrs`` differ fails in pandas 3 (clear them first: ``t.attrs = {}``).

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import Point, box
    >>> units = gpd.GeoDataFrame(geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1), box(2, 0, 3, 1)],
    ...     crs=2154, index=pd.Index(["a", "b", "c"], name="unit_id"))
    >>> est = gpd.GeoDataFrame({"sector": ["25.62A", "25.62A", "10.71C", "25.62B"],
    ...                         "employees": [10.0, 4.0, 1.5, 7.5]},
    ...     geometry=[Point(0.5, 0.5), Point(1.5, 0.5), Point(1.2, 0.2), Point(9, 9)], crs=2154)
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     table = cm.aggregate(est, units)
    >>> table
    sector   10.71C  25.62A
    unit_id
    a             0       1
    b             1       1
    c             0       0
    >>> table.attrs["rejects"][["reason"]].value_counts().tolist()
    [1]
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     cm.aggregate(est, units, level="division", measure="employees")
    sector      10    25
    unit_id
    a        0.0  10.0
    b        1.5   4.0
    c        0.0   0.0
    """
    from .taxonomy import roll_up

    if measure not in _MEASURES:
        raise ValueError(f"'measure' needs to be one of {_MEASURES}; {measure!r} was given.")
    est = as_establishments(registry)
    units = _check_units(units)
    if SECTOR not in est.columns:
        raise SchemaError(
            f"The registry has no {SECTOR!r} column; columns are {list(est.columns)}. Read it "
            "with clustermap.read_registry, which names the sector column 'sector'."
        )
    if measure != ESTABLISHMENTS and measure not in est.columns:
        raise SchemaError(
            f"measure={measure!r} needs a {measure!r} column in the registry; columns are "
            f"{list(est.columns)}. read_registry imputes it from the size bands."
        )

    n = len(est)
    unit_codes = _assign_positions(est, units)

    sectors = roll_up(est[SECTOR], level, nomenclature)
    outside = unit_codes < 0
    unmapped = sectors.isna().to_numpy() & ~outside
    keep = ~(outside | unmapped)
    # columns: the sectors of the establishments kept, sorted
    sector_codes = np.full(n, -1, dtype=np.int64)
    kept_codes, sector_values = pd.factorize(sectors[keep], sort=True)
    sector_codes[keep] = kept_codes

    rejects = []
    if outside.any():
        noloc = no_location(est.geometry.to_numpy())
        detail = np.where(noloc[outside], "no location", "outside every unit").astype(object)
        full = np.empty(n, dtype=object)
        full[outside] = detail
        rejects.append(_reject_frame(est, outside, REASON_OUTSIDE_UNITS, full))
        share = outside.sum() / max(n, 1)
        warnings.warn(
            f"{int(outside.sum())} of {n} establishments ({share:.1%}) fall outside every "
            "unit (or have no location); they are listed in table.attrs['rejects'] "
            f"(reason {REASON_OUTSIDE_UNITS!r}).",
            ClustermapWarning,
            stacklevel=2,
        )
    if unmapped.any():
        codes = est[SECTOR].astype("string").to_numpy(dtype=object, na_value=None)
        full = np.empty(n, dtype=object)
        full[unmapped] = [f"sector {c!r} has no group at level {level!r}" for c in codes[unmapped]]
        rejects.append(_reject_frame(est, unmapped, REASON_UNMAPPED_SECTOR, full))
        examples = pd.Series(codes[unmapped]).value_counts().head(5)
        warnings.warn(
            f"{int(unmapped.sum())} establishments have a sector code with no group at level "
            f"{level!r} (most frequent: {dict(examples)}); they are listed in "
            f"table.attrs['rejects'] (reason {REASON_UNMAPPED_SECTOR!r}).",
            ClustermapWarning,
            stacklevel=2,
        )

    n_units, n_sectors = len(units), len(sector_values)
    flat = unit_codes[keep] * n_sectors + sector_codes[keep]
    if measure == ESTABLISHMENTS:
        weights = None
    else:
        values = pd.to_numeric(est[measure], errors="coerce").to_numpy(dtype=float)[keep]
        missing = ~np.isfinite(values)
        if missing.any():
            warnings.warn(
                f"{int(missing.sum())} establishments have no {measure!r} value (missing size "
                "band); they count as 0 in the table.",
                ClustermapWarning,
                stacklevel=2,
            )
            values = np.where(missing, 0.0, values)
        weights = values

    index = pd.Index(units.index.astype(str).to_numpy(dtype=object), name=UNIT_ID)
    columns = pd.Index(np.asarray(sector_values, dtype=object), name=SECTOR)
    if sparse:
        from scipy import sparse as sp

        data = np.ones(len(flat), dtype=np.int64) if weights is None else weights
        matrix = sp.coo_matrix(
            (data, (flat // max(n_sectors, 1), flat % max(n_sectors, 1))),
            shape=(n_units, n_sectors),
        ).tocsc()
        matrix.sum_duplicates()
        table = pd.DataFrame.sparse.from_spmatrix(matrix, index=index, columns=columns)
    else:
        counts = np.bincount(flat, weights=weights, minlength=n_units * n_sectors)
        counts = counts.astype(np.int64 if weights is None else np.float64, copy=False)
        table = pd.DataFrame(counts.reshape(n_units, n_sectors), index=index, columns=columns)

    if rejects:
        rej = pd.concat(rejects, ignore_index=True)
    else:
        rej = pd.DataFrame({ROW: [], ESTABLISHMENT_ID: [], REASON: [], DETAIL: []})
    table.attrs["rejects"] = rej
    return table
