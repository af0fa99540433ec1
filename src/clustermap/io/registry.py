"""Read and validate establishment registries (SIRENE first).

:func:`read_registry` reads a file (CSV, gzip/zip CSV, Parquet, GeoParquet, GeoPackage or
anything pyogrio reads) or a (Geo)DataFrame, maps its columns to the standard names of
:mod:`clustermap._schema`, validates every row and returns a :class:`Registry`: the kept
establishments as points, plus a table of every rejected row with its reason and a table of
rows kept after a repair. Nothing is dropped silently.

Presets (``format=``), detected from the header when ``format`` is not given:

``"sirene"``
    The Etalab geolocated SIRENE file (``geo_siret_*.csv.gz``): ``siret``,
    ``activitePrincipaleEtablissement``, ``nomenclatureActivitePrincipaleEtablissement``,
    ``trancheEffectifsEtablissement``, ``etatAdministratifEtablissement``,
    ``codeCommuneEtablissement``, ``denominationUsuelleEtablissement`` (else
    ``enseigne1Etablissement``), ``longitude``, ``latitude`` (WGS84, EPSG:4326).
``"sirene_stock"``
    The INSEE ``StockEtablissement`` file, with coordinates either from the INSEE
    geolocation file passed as ``geolocation=`` (``siret``, ``x``, ``y`` and ``epsg``: the
    projection of each row, Lambert-93 EPSG:2154 in metropolitan France and UTM zones in
    the DOM) joined on ``siret``, or from the ``coordonneeLambertAbscisseEtablissement`` /
    ``coordonneeLambertOrdonneeEtablissement`` columns of recent stock files, whose
    projection is taken from the commune code (971, 972, 977, 978: EPSG:5490; 973:
    EPSG:2972; 974: EPSG:2975; 975: EPSG:4467; 976: EPSG:4471; elsewhere EPSG:2154, the
    INSEE convention). When the rows use several projections, points are returned in
    ``crs`` (default EPSG:4326); with a single projection, in that projection.
``"sirene2016"``
    The old (2016) SIRENE names: ``siret``, ``apet700``, ``tefet``, ``depcomet``,
    ``enseigne`` (else ``nomen_long``), ``longitude``, ``latitude`` (WGS84).

Any other layout is read by naming its columns with the keywords ``x``, ``y``, ``sector``,
``id``, ``employees`` or ``size_band``, ``name``, ``commune``, ``state``, and its CRS with
``crs``; keywords also override a preset.

Validation
----------
Each dropped row is in :attr:`Registry.rejects` with one reason (constants of
:mod:`clustermap._schema`), the first that applies in this order:

``closed_establishments``
    The state column holds ``F`` (SIRENE *fermé*); kept with ``include_closed=True``.
``missing_coordinates``
    An empty or non-numeric coordinate, an empty geometry, or (stock + geolocation) no
    geolocation row for the ``siret``.
``zero_stripped_commune`` (a repair, never a reject)
    A 4-digit numeric commune code (``1001``) is a code of départements 01-09 whose
    leading zero was lost by a spreadsheet or a numeric column: it is completed
    (``01001``), kept and listed in :attr:`Registry.repairs`.
``swapped_lat_lon`` (only with ``swapped="reject"``)
    The point is outside the expected area but inside it once x and y are exchanged. By
    default (``swapped="fix"``) the coordinates are exchanged, the row is kept and listed
    in :attr:`Registry.repairs`.
``coordinates_out_of_bounds``
    The point is outside the expected area: France including the DOM for the SIRENE
    presets (boxes in :data:`FRANCE_AREAS`), the area of use of the CRS otherwise
    (pyproj ``area_of_use``), or the boxes given as ``bounds=``.
``other_nomenclature``
    The SIRENE ``nomenclatureActivitePrincipaleEtablissement`` is not ``NAFRev2`` (codes of
    NAF rév. 1, NAF 1993 or NAP cannot be read as NAF rév. 2).
``invalid_sector_code``
    The code is not a code of the nomenclature at the expected level (NAF: a sous-classe
    such as ``25.62A``; ``25.62`` without its letter is rejected), or is empty.
``duplicated_id``
    The establishment id already appeared on an earlier data row of the source (the
    earlier row wins even when it was itself rejected for another reason; ``detail`` names
    it). Rows with an empty id are never duplicates.

``row`` is the 1-based number of the data row in the source: the header is not counted,
so data row 1 is the second line of a CSV file (records spanning several lines because of
quoted line breaks count once; blank lines are skipped and not counted). For a DataFrame it
is the 1-based position.

Employees
---------
SIRENE size bands (``trancheEffectifsEtablissement``, ``tefet``) become head-counts by
``employee_rule``: ``"mid"`` (arithmetic midpoint, default), ``"low"`` or ``"high"`` of the
band in :data:`SIZE_BANDS`. ``employees_low`` and ``employees_high`` always hold the band
bounds, so every employment-weighted result can report its sensitivity. Band ``53``
(10 000 employees or more) is open: it is capped at ``open_band_cap`` (default 20 000, so
its midpoint is 15 000). ``NN`` (non-employer), ``00`` (no employee) and an empty band all
count 0 employees; empty bands and unknown codes are counted separately in the summary.
A numeric ``employees=`` column is used as is (low = high = value).

Malformed files raise :class:`clustermap.errors.DataFileError` naming the file and the line
(physical line, header = line 1); a missing column raises
:class:`clustermap.errors.SchemaError` naming it and listing the columns found.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from pyproj import CRS

from ..core import schema as S
from ..core.distributed import resolve_client
from ..core.options import as_options, take_legacy
from ..core.progress import bar
from ..errors import ClustermapWarning, CRSError, SchemaError
from ..taxonomy import LEVELS
from .presets import _PRESETS, REJECT_REASONS, SIRENE_CONTACT
from .sources import PartsSource, _open_source
from .validate import (
    _concat,
    _Context,
    _crs_name,
    _detect_format,
    _expected_boxes,
    _list_columns,
    _read_geolocation,
    _resolve_columns,
    _transformer,
    validate_chunks,
)

__all__ = ["ReadOptions", "Registry", "RegistryColumns", "as_establishments", "read_registry"]

#: The standard columns of ``Registry.establishments``, in order (before ``keep=`` columns).
_STANDARD = (
    S.ESTABLISHMENT_ID,
    S.SECTOR,
    S.EMPLOYEES,
    S.EMPLOYEES_LOW,
    S.EMPLOYEES_HIGH,
    S.SIZE_BAND,
    S.NAME,
    S.COMMUNE,
)

# =========================================================================== Registry


@dataclass
class Registry:
    """Establishments read from a registry, with every rejected and repaired row.

    Attributes
    ----------
    establishments : geopandas.GeoDataFrame
        One row per kept establishment: ``establishment_id`` (str), ``sector`` (canonical
        code, e.g. ``25.62A``), ``employees`` (float, by ``employee_rule``),
        ``employees_low``, ``employees_high`` (float), ``size_band`` (str or missing),
        ``name`` (str, may be empty), ``commune`` (str or missing), the columns asked for
        with ``keep=``, and ``geometry`` (points in :attr:`crs`).
    rejects : pandas.DataFrame
        Every dropped row: ``row`` (1-based data-row number in the source, header
        excluded), ``establishment_id``, ``reason`` (see :data:`REJECT_REASONS`),
        ``detail``.
    repairs : pandas.DataFrame
        Rows kept after a fix, same columns (e.g. ``swapped_lat_lon`` fixed).
    source : str
        File name (or ``"DataFrame"``).
    crs : pyproj.CRS
        CRS of the points.
    nomenclature : str
        Nomenclature of the ``sector`` codes.
    employee_rule : str
        ``"mid"``, ``"low"`` or ``"high"``.
    n_rows : int
        Number of data rows read.
    format : str or None
        Preset used (``"sirene"``, ``"sirene_stock"``, ``"sirene2016"``) or None.
    notes : dict
        Other counts: ``size_band_missing`` (kept rows with an empty band, counted as 0
        employees), ``size_band_unknown`` (kept rows with a code not in
        :data:`SIZE_BANDS`, also 0), ``employees_missing`` (numeric column empty).

    Examples
    --------
    >>> df = pd.DataFrame({"siret": ["1", "2", "2"], "naf": ["25.62A", "2562B", "25.62A"],
    ...                    "lon": [6.6, 6.5, 6.5], "lat": [46.1, 46.0, 46.0]})
    >>> reg = cm.read_registry(df, id="siret", sector="naf", x="lon", y="lat", crs=4326)
    >>> reg
    <Registry: 2 establishments kept of 3 rows from DataFrame (1 rejected, 0 repaired), EPSG:4326>
    >>> reg.summary_dict()["rejects"]
    {'duplicated_id': 1}
    >>> len(reg.to_crs(2154))
    2
    """

    establishments: gpd.GeoDataFrame
    rejects: pd.DataFrame
    repairs: pd.DataFrame
    source: str
    crs: CRS
    nomenclature: str = "naf"
    employee_rule: str = "mid"
    n_rows: int = 0
    format: str | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.establishments)

    def __repr__(self) -> str:
        return (
            f"<Registry: {len(self):,} establishments kept of {self.n_rows:,} rows from "
            f"{self.source} ({len(self.rejects):,} rejected, {len(self.repairs):,} repaired), "
            f"{_crs_name(self.crs)}>"
        )

    def to_crs(self, crs: Any) -> Registry:
        """Return a copy with the points in another CRS.

        Parameters
        ----------
        crs : Any
            Anything :class:`pyproj.CRS` accepts (``2154``, ``"EPSG:2154"``...).

        Returns
        -------
        Registry

        Examples
        --------
        >>> df = pd.DataFrame({"naf": ["25.62A"], "lon": [2.35], "lat": [48.85]})
        >>> reg = cm.read_registry(df, sector="naf", x="lon", y="lat", crs=4326)
        >>> reg.to_crs(2154).establishments.geometry.x.round(-3).tolist()
        [652000.0]
        """
        establishments = self.establishments.to_crs(crs)
        return replace(self, establishments=establishments, crs=establishments.crs)

    def summary_dict(self) -> dict[str, Any]:
        """Return what was read as a dict (used by the HTML report).

        Returns
        -------
        dict
            ``source``, ``format``, ``rows`` (data rows read), ``kept``, ``rejects``
            (reason -> count, in :data:`REJECT_REASONS` order), ``repairs`` (reason ->
            count), ``crs`` (string), ``bounds`` (minx, miny, maxx, maxy of the kept points
            or None), ``nomenclature``, ``employee_rule`` and the counts of :attr:`notes`.

        Examples
        --------
        >>> df = pd.DataFrame({"naf": ["25.62A", "bad"], "lon": [2.0, 3.0], "lat": [48.0, 47.0]})
        >>> d = cm.read_registry(df, sector="naf", x="lon", y="lat", crs=4326).summary_dict()
        >>> d["rows"], d["kept"], d["rejects"], d["bounds"]
        (2, 1, {'invalid_sector_code': 1}, (2.0, 48.0, 2.0, 48.0))
        """
        rejects = self.rejects[S.REASON].value_counts()
        repairs = self.repairs[S.REASON].value_counts()
        order = [r for r in REJECT_REASONS if r in rejects.index]
        order += sorted(set(rejects.index) - set(order))
        bounds = None
        if len(self.establishments):
            bounds = tuple(float(v) for v in self.establishments.total_bounds)
        return {
            "source": self.source,
            "format": self.format,
            "rows": int(self.n_rows),
            "kept": len(self.establishments),
            "rejects": {r: int(rejects[r]) for r in order},
            "repairs": {r: int(n) for r, n in repairs.items()},
            "crs": _crs_name(self.crs),
            "bounds": bounds,
            "nomenclature": self.nomenclature,
            "employee_rule": self.employee_rule,
            **{k: v for k, v in self.notes.items() if not k.startswith("_")},
        }

    def summary(self) -> str:
        """Return a person-readable account of what was read, kept, rejected and repaired.

        Returns
        -------
        str

        Examples
        --------
        >>> df = pd.DataFrame({"naf": ["25.62A", "bad"], "lon": [2.0, 3.0], "lat": [48.0, 47.0]})
        >>> print(cm.read_registry(df, sector="naf", x="lon", y="lat", crs=4326).summary())
        Registry read from DataFrame
          2 data rows; 1 establishment kept (50.0 %), 1 row rejected, 0 repaired
          rejected rows by reason:
            invalid_sector_code          1  (sector code not in NAF at the expected level)
          employees: none given (no size band or employee column)
          sectors: nomenclature naf
          CRS: EPSG:4326; bounds of kept points: 2, 48, 2, 48
        """
        d = self.summary_dict()
        rows, kept = d["rows"], d["kept"]
        share = f" ({100 * kept / rows:.1f} %)" if rows else ""
        fmt = f" (format {d['format']})" if d["format"] else ""
        lines = [
            f"Registry read from {d['source']}{fmt}",
            f"  {rows:,} data rows; {kept:,} establishment{'s' * (kept != 1)} kept{share}, "
            f"{len(self.rejects):,} row{'s' * (len(self.rejects) != 1)} rejected, "
            f"{len(self.repairs):,} repaired",
        ]
        if d["rejects"]:
            lines.append("  rejected rows by reason:")
            for reason, n in d["rejects"].items():
                lines.append(f"    {reason:<26}{n:>5,}  ({_REASON_TEXT.get(reason, '')})")
        if d["repairs"]:
            lines.append("  repaired rows (kept):")
            for reason, n in d["repairs"].items():
                lines.append(f"    {reason:<26}{n:>5,}  (x and y exchanged)")
        lines.append(f"  employees: {self._employees_text()}")
        lines.append(f"  sectors: nomenclature {self.nomenclature}")
        bounds = "none" if d["bounds"] is None else ", ".join(f"{b:.6g}" for b in d["bounds"])
        lines.append(f"  CRS: {d['crs']}; bounds of kept points: {bounds}")
        return "\n".join(lines)

    def _employees_text(self) -> str:
        source = self.notes.get("employees_source")
        if source == "size_band":
            text = (
                f"from size bands, rule '{self.employee_rule}' "
                f"(band 53 capped at {self.notes.get('open_band_cap', 20000):,.0f})"
            )
            missing = self.notes.get("size_band_missing", 0)
            unknown = self.notes.get("size_band_unknown", 0)
            if missing:
                text += f"; {missing:,} kept rows without a size band (counted as 0)"
            if unknown:
                text += f"; {unknown:,} kept rows with an unknown band code (counted as 0)"
            return text
        if source == "column":
            missing = self.notes.get("employees_missing", 0)
            extra = f"; {missing:,} kept rows without a value" if missing else ""
            return f"numeric column used as is{extra}"
        return "none given (no size band or employee column)"


_REASON_TEXT = {
    S.REASON_CLOSED: "closed establishments; include_closed=True keeps them",
    S.REASON_MISSING_COORDINATES: "empty or non-numeric coordinates",
    S.REASON_SWAPPED: "x and y exchanged; swapped='fix' repairs them",
    S.REASON_OUT_OF_BOUNDS: "outside the expected area",
    S.REASON_OTHER_NOMENCLATURE: "codes of another nomenclature version",
    S.REASON_INVALID_SECTOR: "sector code not in NAF at the expected level",
    S.REASON_DUPLICATED: "establishment id seen on an earlier row",
    S.REPAIR_COMMUNE_ZERO: "4-digit commune code whose leading zero was lost (1001 -> 01001)",
}


# =========================================================================== read_registry


def as_establishments(data: Any, *, require_sector: bool = False) -> gpd.GeoDataFrame:
    """The establishments GeoDataFrame of a :class:`Registry`, or a GeoDataFrame as it is.

    The one adapter the aggregation and detection steps use to accept either a registry or
    its establishments.

    Parameters
    ----------
    data : Registry or geopandas.GeoDataFrame
        A registry from :func:`read_registry`, or establishments as points.
    require_sector : bool, default False
        Also require the ``sector`` column.

    Returns
    -------
    geopandas.GeoDataFrame
        The establishments (not a copy).

    Raises
    ------
    clustermap.errors.SchemaError
        Anything else, or no ``sector`` column when it is required.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import Point
    >>> pts = gpd.GeoDataFrame({"sector": ["10.71C"]}, geometry=[Point(0, 0)], crs=2154)
    >>> as_establishments(pts) is pts
    True
    """
    est = getattr(data, "establishments", data)
    if not isinstance(est, gpd.GeoDataFrame):
        raise SchemaError(
            "Expected a clustermap Registry (from clustermap.read_registry) or a GeoDataFrame "
            f"of establishments with point geometries; got {type(data).__name__}."
        )
    if require_sector and S.SECTOR not in est.columns:
        raise SchemaError(
            f"The registry has no {S.SECTOR!r} column; columns are {list(est.columns)[:12]}. "
            "Read it with clustermap.read_registry(path, sector=...)."
        )
    return est


@dataclass(frozen=True)
class RegistryColumns:
    """The columns of a custom registry layout beyond ``x``, ``y``, ``sector`` and ``id``.

    None means: the preset's column when a preset applies, else absent.

    Attributes
    ----------
    employees : str, optional
        Numeric head-count column, used as is.
    size_band : str, optional
        Column of SIRENE size-band codes (ignored for head-counts when ``employees`` is
        given).
    name : str or list of str, optional
        Name column(s); the first non-empty one wins.
    commune : str, optional
        Column of the commune code (5 characters, read as text).
    state : str, optional
        Column of the administrative state; ``F`` marks a closed establishment.
    nomenclature_column : str, optional
        Column naming the nomenclature version of each row (SIRENE presets:
        ``nomenclatureActivitePrincipaleEtablissement``); rows not ``NAFRev2`` are
        rejected as ``other_nomenclature``.
    keep : sequence of str, default ()
        Other source columns to carry into ``establishments`` (as read).

    Examples
    --------
    >>> RegistryColumns(size_band="tefet").size_band
    'tefet'
    """

    employees: str | None = None
    size_band: str | None = None
    name: str | Sequence[str] | None = None
    commune: str | None = None
    state: str | None = None
    nomenclature_column: str | None = None
    keep: Sequence[str] = ()


@dataclass(frozen=True)
class ReadOptions:
    """The validation rules of :func:`read_registry`.

    Attributes
    ----------
    nomenclature : {"naf", "nace", "naics", "prefix"}, default "naf"
        Nomenclature of the sector codes.
    include_closed : bool, default False
        Keep closed establishments (state ``F``).
    swapped : {"fix", "reject"}, default "fix"
        What to do with points whose x and y are exchanged (see the module documentation).
    employee_rule : {"mid", "low", "high"}, default "mid"
        Head-count from a size band.
    open_band_cap : float, default 20000
        Upper bound of the open size band ``53`` (10 000 or more).
    bounds : str, tuple or list of tuples, optional
        Expected area: ``"france"`` (France incl. DOM) or (west, south, east, north) box(es)
        in degrees. Default: France for the SIRENE presets, else the CRS's area of use.
    sep : str, optional
        CSV separator; detected from the header by default.
    chunksize : int, default 500000
        Rows per chunk for Parquet files and DataFrames (CSV files are streamed in blocks
        of 16 MB).

    Examples
    --------
    >>> ReadOptions(swapped="reject").swapped
    'reject'
    >>> ReadOptions(employee_rule="median")
    Traceback (most recent call last):
    ...
    ValueError: 'employee_rule' needs to be 'mid', 'low' or 'high'; 'median' was given.
    """

    nomenclature: str = "naf"
    include_closed: bool = False
    swapped: str = "fix"
    employee_rule: str = "mid"
    open_band_cap: float = 20000
    bounds: Any = None
    sep: str | None = None
    chunksize: int = 500_000

    def __post_init__(self) -> None:
        if self.swapped not in ("fix", "reject"):
            raise ValueError(
                f"'swapped' needs to be 'fix' or 'reject'; {self.swapped!r} was given."
            )
        if self.employee_rule not in ("mid", "low", "high"):
            raise ValueError(
                "'employee_rule' needs to be 'mid', 'low' or 'high'; "
                f"{self.employee_rule!r} was given."
            )
        if self.nomenclature not in LEVELS and self.nomenclature not in ("naics", "prefix"):
            raise ValueError(
                "'nomenclature' needs to be one of ('naf', 'nace', 'naics', 'prefix'); "
                f"{self.nomenclature!r} was given."
            )


#: old keywords of read_registry -> their new place
_LEGACY = {
    **{
        k: f"columns.{k}"
        for k in (
            "employees",
            "size_band",
            "name",
            "commune",
            "state",
            "nomenclature_column",
            "keep",
        )
    },
    **{
        k: f"options.{k}"
        for k in (
            "nomenclature",
            "include_closed",
            "swapped",
            "employee_rule",
            "open_band_cap",
            "bounds",
            "sep",
            "chunksize",
        )
    },
    "sector_level": "level",
}


def _read_settings(columns: Any, options: Any, level: Any, legacy: dict[str, Any]):
    """Validate the settings once; the old keywords land in their groups with a warning."""
    old = take_legacy("read_registry", legacy, _LEGACY, stacklevel=4)
    cols = as_options(RegistryColumns, columns, "columns", old.get("columns"))
    opts = as_options(ReadOptions, options, "options", old.get("options"))
    level = old.get("", {}).get("level", level)
    if level == "default":
        warnings.warn(
            'read_registry(level="default") is now level="auto"; the old value goes in the '
            "next release.",
            FutureWarning,
            stacklevel=3,
        )
        level = "auto"
    return cols, opts, level


def read_registry(
    source: str | Path | pd.DataFrame,
    *,
    format: str | None = None,
    x: str | None = None,
    y: str | None = None,
    crs: Any = None,
    sector: str | None = None,
    id: str | None = None,
    level: str | int | None = "auto",
    geolocation: str | Path | pd.DataFrame | None = None,
    encoding: str = "utf-8",
    columns: RegistryColumns | Mapping[str, Any] | None = None,
    options: ReadOptions | Mapping[str, Any] | None = None,
    client: Any = None,
    **legacy: Any,
) -> Registry:
    """Read a registry of establishments, validate every row and report what was dropped.

    See the module documentation (:mod:`clustermap.io`) for the presets, the reject reasons
    and the size-band rule.

    Parameters
    ----------
    source : str, pathlib.Path, pandas.DataFrame or Dask frame
        A CSV file (also ``.csv.gz``, ``.csv.zip``…, separator detected from the header),
        a Parquet or GeoParquet file, a GeoPackage or any file pyogrio reads, a
        (Geo)DataFrame, or a partitioned registry: a folder of Parquet / GeoParquet files
        with the same columns (read in natural name order, ``part.2`` before ``part.10``,
        rows numbered across them) or a ``dask.dataframe`` / ``dask_geopandas`` frame. Files
        are read in chunks of about ``options.chunksize`` rows, so a registry of 10 million
        rows takes the memory of its kept rows only.
    format : {"sirene", "sirene_stock", "sirene2016"}, optional
        Column preset; detected from the column names when not given.
    x, y : str, optional
        Columns of the coordinates (longitude and latitude for a geographic CRS). Not
        needed with a preset or a GeoDataFrame / geometry file.
    crs : optional
        CRS of ``x`` and ``y`` (``4326``, ``2154``, ``"EPSG:2154"``…); required with
        ``x``/``y`` outside the presets. With ``format="sirene_stock"``, the CRS the points
        are returned in when the rows use several projections.
    sector : str, optional
        Column of the sector codes (any spelling :func:`clustermap.normalize_codes`
        accepts; read as text).
    id : str, optional
        Column of establishment ids (e.g. ``siret``); default: the row number.
    level : str, int or None, default "auto"
        Level the sector codes must be at: ``"auto"`` is ``"subclass"`` for NAF, ``"class"``
        for NACE and any level for NAICS and prefix codes; None accepts any level.
        (``sector_level=`` and the value ``"default"`` are the old spellings.)
    geolocation : str, pathlib.Path or pandas.DataFrame, optional
        The INSEE geolocation file for the stock (``siret``, ``x``, ``y``, ``epsg``),
        joined on ``siret``; implies ``format="sirene_stock"`` when not given.
    encoding : str, default "utf-8"
        CSV encoding (``"latin-1"`` for old INSEE files).

    columns : RegistryColumns or dict, optional
        The other columns of a custom layout: ``employees`` (numeric head-count),
        ``size_band`` (SIRENE band codes), ``name`` (one or several, the first non-empty
        wins), ``commune``, ``state`` (``F`` = closed), ``nomenclature_column`` and
        ``keep`` (source columns carried into ``establishments``). See
        :class:`RegistryColumns`; the old keywords (``employees=``…) still work.
    options : ReadOptions or dict, optional
        The validation rules: ``nomenclature``, ``include_closed``, ``swapped``,
        ``employee_rule``, ``open_band_cap``, ``bounds``, ``sep`` and ``chunksize``. See
        :class:`ReadOptions`; the old keywords (``include_closed=``…) still work.
    client : dask.distributed.Client or str, optional
        With a partitioned registry: validate the partitions on a Dask cluster (a client, a
        scheduler address or ``"local"``; needs ``pip install 'clustermap[dask]'``). The
        rejects and repairs are those of the single-machine read, row for row; the kept
        establishments stay on the workers as a ``dask_geopandas.GeoDataFrame``
        (``establishments``), which :func:`clustermap.aggregate` counts partition by
        partition. Other sources are read here.

    Returns
    -------
    Registry
        ``establishments`` (GeoDataFrame of kept points), ``rejects``, ``repairs``,
        ``summary()``.

    Raises
    ------
    clustermap.errors.SchemaError
        A mapped column is missing, or no sector / coordinate column was found.
    clustermap.errors.DataFileError
        The file is malformed (the message names the file and the line).
    clustermap.errors.CRSError
        Coordinates are given without a CRS, or the CRS is unknown.

    Examples
    --------
    >>> df = pd.DataFrame({
    ...     "siret": ["11", "12", "13", "14"],
    ...     "naf": ["25.62A", "2562B", "99.99Z", "25.62A"],
    ...     "tefet": ["12", "01", "01", "NN"],
    ...     "lon": [6.58, 46.07, 6.6, None],
    ...     "lat": [46.06, 6.57, 46.1, None],
    ... })
    >>> reg = cm.read_registry(df, id="siret", sector="naf", x="lon", y="lat", crs=4326,
    ...                        columns={"size_band": "tefet"}, options={"bounds": "france"})
    >>> reg.establishments[["establishment_id", "sector", "employees"]]
      establishment_id  sector  employees
    0               11  25.62A       34.5
    1               12  25.62B        1.5
    >>> reg.rejects[["row", "reason"]]
       row               reason
    0    3  invalid_sector_code
    1    4  missing_coordinates
    >>> reg.repairs[["row", "reason"]]
       row           reason
    0    2  swapped_lat_lon
    """
    cols, opts, level = _read_settings(columns, options, level, legacy)
    if format is not None and format not in _PRESETS:
        raise ValueError(
            f"'format' needs to be one of {tuple(_PRESETS)} or None (detect from the "
            f"header); {format!r} was given."
        )
    nomenclature = opts.nomenclature
    sector_level = (
        {"naf": "subclass", "nace": "class"}.get(nomenclature) if level == "auto" else level
    )
    sep, chunksize, bounds = opts.sep, opts.chunksize, opts.bounds
    reader, _kind = _open_source(source, sep, encoding, chunksize)
    fmt = format or _detect_format(reader.columns, geolocation)
    if geolocation is not None and fmt is None:
        fmt = "sirene_stock"
    given = {
        "id": id,
        "sector": sector,
        "x": x,
        "y": y,
        "employees": cols.employees,
        "size_band": cols.size_band,
        "name": cols.name,
        "commune": cols.commune,
        "state": cols.state,
        "nomenclature_column": cols.nomenclature_column,
    }
    if geolocation is not None and (x is not None or y is not None):
        raise ValueError(
            "Pass either geolocation= (coordinates from the INSEE geolocation file) or x= "
            "and y= (coordinates in the registry itself), not both."
        )
    spec = _resolve_columns(
        reader.columns, reader.name, fmt, given, reader.has_geometry, geolocation
    )
    keep_cols = list(cols.keep or [])
    _check_keep(keep_cols, reader)
    if fmt in ("sirene", "sirene_stock"):  # the diffusion status (and address), when present
        # the national stock (tens of millions of rows) keeps the status only: its dates and
        # addresses would cost gigabytes; keep= them on purpose
        wanted = SIRENE_CONTACT if fmt == "sirene" else SIRENE_CONTACT[:1]
        if "dateCreationEtablissement" not in reader.columns:  # the state alone dates nothing
            wanted = tuple(c for c in wanted if c not in SIRENE_CONTACT[1:4])
        keep_cols += [c for c in wanted if c in reader.columns and c not in keep_cols]

    per_row, geo_index, geo_xy, geo_epsg, uses_geometry, src_crs = _coordinates(
        reader, spec, fmt, x, crs, geolocation, encoding, chunksize
    )
    boxes, area_text = _expected_boxes(bounds, fmt, src_crs)

    ctx = _Context(
        spec=spec,
        fmt=fmt,
        nomenclature=nomenclature,
        sector_level=sector_level,
        include_closed=opts.include_closed,
        swapped=opts.swapped,
        employee_rule=opts.employee_rule,
        open_band_cap=opts.open_band_cap,
        keep=keep_cols,
        crs=src_crs,
        boxes=boxes,
        area_text=area_text,
        per_row_epsg=per_row,
        geo_index=geo_index,
        geo_xy=geo_xy,
        geo_epsg=geo_epsg,
        uses_geometry=uses_geometry,
    )
    columns = _needed_columns(spec, keep_cols)
    client = resolve_client(client)
    if client is not None and isinstance(reader, PartsSource):
        from .partitioned import read_partitioned

        return read_partitioned(reader, columns, ctx, client, output_crs=crs)
    chunks = bar(reader.chunks(columns), desc="read_registry", unit="chunk")
    kept_parts, reject_parts, repair_parts, hashes, offset = validate_chunks(chunks, 0, ctx)
    return _assemble(
        kept_parts,
        reject_parts,
        repair_parts,
        hashes,
        n_rows=offset,
        ctx=ctx,
        source_name=reader.name,
        output_crs=crs,
    )


def _check_keep(keep_cols: list[str], reader: Any) -> None:
    standard = {*_STANDARD, S.GEOMETRY}
    for col in keep_cols:
        if col not in reader.columns:
            raise SchemaError(
                f"{reader.name}: column {col!r} given in keep= is not in the data. Columns "
                f"found: {_list_columns(reader.columns)}."
            )
        if col in standard:
            raise SchemaError(
                f"keep= column {col!r} has the name of a standard column of the registry; "
                "rename it in the source first."
            )


def _coordinates(reader, spec, fmt, x, crs, geolocation, encoding, chunksize) -> tuple:
    """Where the points come from: per-row projections, a geolocation file, or one CRS."""
    per_row = None
    geo_index = geo_xy = geo_epsg = None
    uses_geometry = False
    src_crs: CRS | None = None
    if geolocation is not None:
        spec.pop("x", None)
        spec.pop("y", None)
        geo_index, geo_xy, geo_epsg, _ = _read_geolocation(
            geolocation, None, encoding, chunksize, None
        )
        per_row = "geolocation"
    elif fmt == "sirene_stock" and x is None and "x" in spec:
        per_row = "commune"  # Lambert columns of the stock: projection from the commune
    elif "x" in spec and "y" in spec:
        declared = crs if crs is not None else _PRESETS.get(fmt or "", {}).get("crs")
        if declared is None and reader.has_geometry and reader.geometry_crs is not None:
            src_crs = CRS.from_user_input(reader.geometry_crs)
        elif declared is None:
            raise CRSError(
                f"{reader.name}: the coordinates in {spec['x']!r} and {spec['y']!r} have "
                "no CRS. Pass crs=, e.g. crs=4326 for longitude/latitude in degrees or "
                "crs=2154 for Lambert-93 metres."
            )
        else:
            src_crs = _parse_crs(declared)
    else:
        uses_geometry = True
        if reader.geometry_crs is None and crs is None:
            raise CRSError(
                f"{reader.name}: the geometries have no CRS. Pass crs= (e.g. crs=2154) "
                "or set it on the GeoDataFrame with .set_crs()."
            )
        if (
            reader.geometry_crs is not None
            and crs is not None
            and CRS.from_user_input(reader.geometry_crs) != _parse_crs(crs)
        ):
            raise CRSError(
                f"{reader.name}: the geometries are in {_crs_name(reader.geometry_crs)} "
                f"but crs={crs!r} was given. Omit crs=, or reproject the data first "
                "with .to_crs()."
            )
        src_crs = CRS.from_user_input(reader.geometry_crs or _parse_crs(crs))
    return per_row, geo_index, geo_xy, geo_epsg, uses_geometry, src_crs


def _parse_crs(value: Any) -> CRS:
    try:
        return CRS.from_user_input(value)
    except Exception as err:
        raise CRSError(
            f"crs={value!r} is not a CRS pyproj knows. Pass an EPSG code such as 4326 or 2154."
        ) from err


def _needed_columns(spec: dict[str, Any], keep: list[str]) -> list[str]:
    cols: list[str] = []
    for value in spec.values():
        for col in value if isinstance(value, list) else [value]:
            if col not in cols:
                cols.append(col)
    for col in keep:
        if col not in cols:
            cols.append(col)
    return cols


def _order_columns(ctx: _Context) -> list[str]:
    return [*_STANDARD, *ctx.keep]


def _assemble(
    kept_parts: list[pd.DataFrame],
    reject_parts: list[pd.DataFrame],
    repair_parts: list[pd.DataFrame],
    hashes: list[np.ndarray],
    *,
    n_rows: int,
    ctx: _Context,
    source_name: str,
    output_crs: Any,
) -> Registry:
    kept = (
        pd.concat(kept_parts, ignore_index=True)
        if kept_parts
        else pd.DataFrame({"_pos": np.array([], dtype=np.int64), "_x": [], "_y": []})
    )
    rejects = _concat(reject_parts)
    repairs = _concat(repair_parts)
    for parts in (kept_parts, reject_parts, repair_parts):
        parts.clear()  # the chunks are in the concatenated frames now
    candidates = repeated_hashes(hashes)
    drop_pos, rejects, repairs = duplicated_rows(kept, rejects, repairs, candidates, ctx)
    if drop_pos.size:  # one selection (copy) of the kept rows, not two
        kept = kept.loc[~np.isin(kept["_pos"].to_numpy(), drop_pos), _work_columns(ctx, kept)]
    codes = np.unique(kept["_epsg"]) if "_epsg" in kept else np.array([])
    crs = output_crs_of(ctx, codes, output_crs)
    notes = registry_notes(band_counts(kept, ctx), ctx, source_name)
    establishments = finish_frame(kept, ctx, crs)
    del kept
    return Registry(
        establishments=establishments,
        rejects=sorted_rows(rejects),
        repairs=sorted_rows(repairs),
        source=source_name,
        crs=CRS.from_user_input(crs) if crs is not None else None,  # type: ignore[arg-type]
        nomenclature=ctx.nomenclature,
        employee_rule=ctx.employee_rule,
        n_rows=n_rows,
        format=ctx.fmt,
        notes=notes,
    )


def _work_columns(ctx: _Context, kept: pd.DataFrame) -> list[str]:
    extra = ["_epsg"] if "_epsg" in kept else []
    return [*_order_columns(ctx), "_pos", "_x", "_y", "_band_status", *extra]


def repeated_hashes(hashes: list[np.ndarray]) -> np.ndarray:
    """Positions of the rows whose id hash occurs more than once, first ones included.

    These rows may be duplicates (their ids are then compared). ``hashes``: the hashes of
    every row in source order, emptied here (0 is a row without an id).
    """
    all_hash = np.concatenate(hashes) if hashes else np.array([], dtype=np.uint64)
    hashes.clear()
    repeated = pd.Series(all_hash).duplicated(keep=False).to_numpy() & (all_hash != 0)
    return np.flatnonzero(repeated)


def duplicated_rows(
    kept: pd.DataFrame,
    rejects: pd.DataFrame,
    repairs: pd.DataFrame,
    candidates: np.ndarray,
    ctx: _Context,
) -> tuple[np.ndarray, pd.DataFrame, pd.DataFrame]:
    """Rows whose id appeared on an earlier row of the whole source (first row wins).

    ``candidates``: :func:`repeated_hashes`; ``kept`` needs only ``_pos`` and the id of the
    kept rows among them. Returns the positions of the kept rows to drop, the rejects with
    them added and the repairs without them.
    """
    if not candidates.size or "id" not in ctx.spec:
        return np.array([], dtype=np.int64), rejects, repairs
    drop, rejects, repairs = _drop_duplicates(kept, rejects, repairs, candidates)
    return kept["_pos"].to_numpy()[drop], rejects, repairs


def output_crs_of(ctx: _Context, codes: np.ndarray, output_crs: Any) -> Any:
    """CRS of the points: the source's, or (per-row projections) the asked, only or WGS 84 one."""
    if ctx.per_row_epsg is None:
        return ctx.crs
    if output_crs is not None:
        return _parse_crs(output_crs)
    if len(codes) == 1:
        return CRS.from_epsg(int(codes[0]))
    return CRS(4326)


def band_counts(kept: pd.DataFrame, ctx: _Context) -> dict[str, dict[Any, int]]:
    """Kept rows by employment status, and the unknown size-band codes (summable by part)."""
    if "_band_status" not in kept:
        return {"status": {}, "unknown": {}}
    status = kept["_band_status"]
    unknown = {}
    if "size_band" in ctx.spec and (status == "unknown").any():
        unknown = kept.loc[status == "unknown", S.SIZE_BAND].value_counts().to_dict()
    return {"status": status.value_counts().to_dict(), "unknown": unknown}


def registry_notes(counts: dict[str, dict[Any, int]], ctx: _Context, source_name: str) -> dict:
    """:attr:`Registry.notes` from the band counts; warns about unknown size-band codes."""
    notes: dict[str, Any] = {}
    status = counts["status"]
    if "employees" in ctx.spec:
        notes["employees_source"] = "column"
        notes["employees_missing"] = int(status.get("employees_missing", 0))
    elif "size_band" in ctx.spec:
        notes["employees_source"] = "size_band"
        notes["size_band_missing"] = int(status.get("missing", 0))
        notes["size_band_unknown"] = int(status.get("unknown", 0))
        notes["open_band_cap"] = float(ctx.open_band_cap)
        if notes["size_band_unknown"]:
            unknown = pd.Series(counts["unknown"], dtype=np.int64)
            unknown = unknown.sort_values(ascending=False, kind="stable").head(5)
            warnings.warn(
                f"{source_name}: {notes['size_band_unknown']:,} kept rows have a size-band code "
                f"that is not a SIRENE band (e.g. {dict(unknown)}); they count 0 employees. "
                "Check the size_band= column.",
                ClustermapWarning,
                stacklevel=4,
            )
    else:
        notes["employees_source"] = None
    return notes


def finish_frame(kept: pd.DataFrame, ctx: _Context, crs: Any) -> gpd.GeoDataFrame:
    """The establishments of the kept rows: their columns, dtypes and points in ``crs``."""
    xs = kept["_x"].to_numpy(dtype=float) if len(kept) else np.array([])
    ys = kept["_y"].to_numpy(dtype=float) if len(kept) else np.array([])
    if ctx.per_row_epsg is not None and "_epsg" in kept:
        xs, ys = xs.copy(), ys.copy()
        epsg = kept["_epsg"].to_numpy()
        for code in np.unique(epsg):
            sel = epsg == code
            src = CRS.from_epsg(int(code))
            if src != crs:
                xs[sel], ys[sel] = _transformer(src, crs).transform(xs[sel], ys[sel])
    geometry = gpd.points_from_xy(xs, ys, crs=crs)
    order = _order_columns(ctx)
    if len(kept):
        frame = kept[order]
    else:
        frame = pd.DataFrame({col: pd.Series([], dtype=object) for col in order})
    for col in (S.ESTABLISHMENT_ID, S.SECTOR, S.NAME):
        frame[col] = frame[col].astype(str)
    for col in (S.SIZE_BAND, S.COMMUNE):
        frame[col] = frame[col].astype("string")
    for col in (S.EMPLOYEES, S.EMPLOYEES_LOW, S.EMPLOYEES_HIGH):
        frame[col] = frame[col].astype(float)
    frame.index = pd.RangeIndex(len(frame))
    return gpd.GeoDataFrame(frame, geometry=geometry, crs=crs)


def sorted_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rejects or repairs in source-row order, ``row`` as int64."""
    frame = frame.sort_values(S.ROW, kind="stable").reset_index(drop=True)
    frame[S.ROW] = frame[S.ROW].astype(np.int64)
    return frame


def _drop_duplicates(
    kept: pd.DataFrame,
    rejects: pd.DataFrame,
    repairs: pd.DataFrame,
    candidates: np.ndarray,
) -> tuple[np.ndarray, pd.DataFrame, pd.DataFrame]:
    """Find kept rows whose id appeared earlier (exact check of the rows whose hash repeats).

    Returns the mask of kept rows to drop, the rejects with those rows added, and the
    repairs without them.
    """
    # exact ids of the candidate rows (kept or rejected) in source order
    kept_pos = kept["_pos"].to_numpy()
    ids = pd.Series(index=candidates, dtype=object)
    in_kept = np.isin(kept_pos, candidates)
    ids.loc[kept_pos[in_kept]] = kept.loc[in_kept, S.ESTABLISHMENT_ID].to_numpy()
    rej_pos = rejects[S.ROW].to_numpy() - 1
    in_rej = np.isin(rej_pos, candidates)
    ids.loc[rej_pos[in_rej]] = rejects.loc[in_rej, S.ESTABLISHMENT_ID].to_numpy()
    ids = ids.sort_index()
    exact_dup = ids.duplicated(keep="first")
    # the data row of each id's first occurrence (ids are in source order)
    position = pd.Series(ids.index.to_numpy(), index=ids.index)
    first_row = position.groupby(ids.to_numpy(), sort=False).transform("first") + 1
    dup_pos = ids.index[exact_dup.to_numpy()].to_numpy()
    drop = np.isin(kept_pos, dup_pos)
    if not drop.any():
        return drop, rejects, repairs
    moved = kept.loc[drop, ["_pos", S.ESTABLISHMENT_ID]]
    new_rejects = pd.DataFrame(
        {
            S.ROW: moved["_pos"].to_numpy() + 1,
            S.ESTABLISHMENT_ID: moved[S.ESTABLISHMENT_ID].to_numpy(),
            S.REASON: S.REASON_DUPLICATED,
            S.DETAIL: [f"same establishment_id as row {first_row.loc[p]}" for p in moved["_pos"]],
        }
    )
    repairs = repairs[~np.isin(repairs[S.ROW].to_numpy() - 1, dup_pos)]
    return drop, _concat([rejects, new_rejects]), repairs
