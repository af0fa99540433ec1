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

import csv
import gzip
import io
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from pyproj import CRS, Transformer

from . import _schema as S
from .errors import ClustermapWarning, CRSError, DataFileError, SchemaError
from .taxonomy import LEVELS, _canonical_level, is_valid, normalize_codes

__all__ = [
    "FRANCE_AREAS",
    "REJECT_REASONS",
    "SIZE_BANDS",
    "Registry",
    "read_registry",
    "size_band_employees",
]

#: Reject reasons, in the order they are tested (a row gets the first that applies).
REJECT_REASONS = (
    S.REASON_CLOSED,
    S.REASON_MISSING_COORDINATES,
    S.REASON_SWAPPED,
    S.REASON_OUT_OF_BOUNDS,
    S.REASON_OTHER_NOMENCLATURE,
    S.REASON_INVALID_SECTOR,
    S.REASON_DUPLICATED,
)

#: SIRENE size bands: code -> (lowest, highest head-count); ``53`` is open (see
#: ``open_band_cap``). Source: INSEE, ``trancheEffectifsEtablissement``.
SIZE_BANDS: dict[str, tuple[float, float]] = {
    "NN": (0, 0),
    "00": (0, 0),
    "01": (1, 2),
    "02": (3, 5),
    "03": (6, 9),
    "11": (10, 19),
    "12": (20, 49),
    "21": (50, 99),
    "22": (100, 199),
    "31": (200, 249),
    "32": (250, 499),
    "41": (500, 999),
    "42": (1000, 1999),
    "51": (2000, 4999),
    "52": (5000, 9999),
    "53": (10000, np.inf),
}

#: Expected area of SIRENE points: France including the DOM, lon/lat boxes
#: (west, south, east, north) with a margin of about 10 km.
FRANCE_AREAS: dict[str, tuple[float, float, float, float]] = {
    "France métropolitaine et Corse": (-5.8, 41.2, 10.0, 51.3),
    "Guadeloupe, Saint-Martin, Saint-Barthélemy": (-63.3, 15.7, -60.8, 18.2),
    "Martinique": (-61.4, 14.3, -60.7, 15.0),
    "Guyane": (-54.7, 2.0, -51.5, 6.0),
    "La Réunion": (55.1, -21.5, 55.9, -20.8),
    "Mayotte": (44.9, -13.1, 45.4, -12.5),
    "Saint-Pierre-et-Miquelon": (-56.6, 46.7, -56.0, 47.2),
}

_PRESETS: dict[str, dict[str, Any]] = {
    "sirene": {
        "id": "siret",
        "sector": "activitePrincipaleEtablissement",
        "nomenclature_column": "nomenclatureActivitePrincipaleEtablissement",
        "size_band": "trancheEffectifsEtablissement",
        "state": "etatAdministratifEtablissement",
        "commune": "codeCommuneEtablissement",
        "name": ["denominationUsuelleEtablissement", "enseigne1Etablissement"],
        "x": "longitude",
        "y": "latitude",
        "crs": 4326,
    },
    "sirene_stock": {
        "id": "siret",
        "sector": "activitePrincipaleEtablissement",
        "nomenclature_column": "nomenclatureActivitePrincipaleEtablissement",
        "size_band": "trancheEffectifsEtablissement",
        "state": "etatAdministratifEtablissement",
        "commune": "codeCommuneEtablissement",
        "name": ["denominationUsuelleEtablissement", "enseigne1Etablissement"],
        "x": "coordonneeLambertAbscisseEtablissement",
        "y": "coordonneeLambertOrdonneeEtablissement",
        "crs": None,  # per row, from the commune or the geolocation file
    },
    "sirene2016": {
        "id": "siret",
        "sector": "apet700",
        "size_band": "tefet",
        "commune": "depcomet",
        "name": ["enseigne", "nomen_long"],
        "x": "longitude",
        "y": "latitude",
        "crs": 4326,
    },
}
# columns of a preset that must be in the file (the others are used when present)
_PRESET_REQUIRED = {"id", "sector"}

# DOM projections used by INSEE for the SIRENE coordinates, by commune-code prefix
_DOM_EPSG = {
    "971": 5490,
    "972": 5490,
    "977": 5490,
    "978": 5490,
    "973": 2972,
    "974": 2975,
    "975": 4467,
    "976": 4471,
}
_METRO_EPSG = 2154
_CANONICAL_LENGTH = {"subclass": 6, "class": 5, "group": 4, "division": 2, "section": 1}

_CSV_SUFFIXES = {".csv", ".txt", ".tsv", ".dat"}
_COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd", ".lz4": "lz4"}
_PARQUET_SUFFIXES = {".parquet", ".pq", ".geoparquet"}

_BLOCK_SIZE = 1 << 24  # bytes of CSV per streamed batch (about 150 000 SIRENE rows)


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


def _crs_name(crs: Any) -> str:
    if crs is None:
        return "no CRS"
    crs = CRS.from_user_input(crs)
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_string()


# =========================================================================== employees


def size_band_employees(
    bands: Any, rule: str = "mid", open_band_cap: float = 20000
) -> pd.DataFrame:
    """Turn SIRENE size-band codes into head-counts.

    Parameters
    ----------
    bands : array-like of str
        Codes of :data:`SIZE_BANDS` (``"NN"``, ``"00"``, ``"01"``…``"53"``); a one-digit
        code (``"1"``) is read as ``"01"``, spaces are ignored.
    rule : {"mid", "low", "high"}, default "mid"
        Head-count used for ``employees``: band midpoint, lower or upper bound.
    open_band_cap : float, default 20000
        Upper bound used for the open band ``53`` (10 000 or more).

    Returns
    -------
    pandas.DataFrame
        Columns ``size_band`` (normalised code, missing when empty), ``employees``,
        ``employees_low``, ``employees_high`` (0 for ``NN``, ``00``, empty and unknown
        codes) and ``band_status`` (``"ok"``, ``"missing"`` or ``"unknown"``).

    Examples
    --------
    >>> from clustermap.io import size_band_employees
    >>> size_band_employees(["01", "12", "53", "NN", ""])["employees"].tolist()
    [1.5, 34.5, 15000.0, 0.0, 0.0]
    >>> size_band_employees(["03"], rule="high")[["employees_low", "employees_high"]].values
    array([[6., 9.]])
    """
    if rule not in ("mid", "low", "high"):
        raise ValueError(f"'employee_rule' needs to be 'mid', 'low' or 'high'; got {rule!r}.")
    series = bands if isinstance(bands, pd.Series) else pd.Series(list(bands), dtype=object)
    raw = series.to_numpy(dtype=object, na_value=None)
    codes, uniques = pd.factorize(raw, use_na_sentinel=True)
    norm, low, high, status = [], [], [], []
    for value in uniques:
        text = str(value).strip().upper()
        if text.isdigit() and len(text) == 1:
            text = "0" + text
        if text == "":
            norm.append(None), low.append(0.0), high.append(0.0), status.append("missing")
        elif text in SIZE_BANDS:
            lo, hi = SIZE_BANDS[text]
            norm.append(text), low.append(float(lo))
            high.append(float(open_band_cap if np.isinf(hi) else hi)), status.append("ok")
        else:
            norm.append(text), low.append(0.0), high.append(0.0), status.append("unknown")
    norm.append(None), low.append(0.0), high.append(0.0), status.append("missing")
    low_a = np.asarray(low)[codes]
    high_a = np.asarray(high)[codes]
    mid = (low_a + high_a) / 2
    employees = {"mid": mid, "low": low_a, "high": high_a}[rule]
    return pd.DataFrame(
        {
            S.SIZE_BAND: pd.array(np.asarray(norm, dtype=object)[codes], dtype="string"),
            S.EMPLOYEES: employees,
            S.EMPLOYEES_LOW: low_a,
            S.EMPLOYEES_HIGH: high_a,
            "band_status": np.asarray(status, dtype=object)[codes],
        },
        index=series.index,
    )


# =========================================================================== sources


class _Source:
    """A tabular source: header, and an iterator of (pandas chunk, first row offset)."""

    name: str
    columns: list[str]
    geometry_crs: Any = None  # CRS of a geometry column, when the source has one
    has_geometry: bool = False

    def chunks(self, columns: list[str]) -> Iterator[pd.DataFrame]:  # pragma: no cover
        raise NotImplementedError


class _FrameSource(_Source):
    def __init__(self, frame: pd.DataFrame, name: str = "DataFrame", chunksize: int = 500_000):
        self.frame = frame
        self.name = name
        self.chunksize = chunksize
        self.has_geometry = isinstance(frame, gpd.GeoDataFrame) and frame.geometry is not None
        if self.has_geometry:
            self.geometry_crs = frame.crs
            geom_name = frame.geometry.name
            self.columns = [str(c) for c in frame.columns if c != geom_name]
        else:
            self.columns = [str(c) for c in frame.columns]

    def chunks(self, columns: list[str]) -> Iterator[pd.DataFrame]:
        frame = self.frame
        for start in range(0, max(len(frame), 1), self.chunksize):
            part = frame.iloc[start : start + self.chunksize]
            out = pd.DataFrame({c: part[c].to_numpy() for c in columns}, index=None)
            if self.has_geometry:
                geom = part.geometry
                if len(geom) and not geom.geom_type.dropna().eq("Point").all():
                    warnings.warn(
                        f"{self.name}: some geometries are not points; their representative "
                        "point (inside the shape) is used.",
                        ClustermapWarning,
                        stacklevel=3,  # generator -> read_registry -> user
                    )
                    geom = geom.representative_point()
                empty = geom.isna().to_numpy() | geom.is_empty.to_numpy()
                xs = np.where(empty, np.nan, geom.x.where(~empty).to_numpy(dtype=float))
                ys = np.where(empty, np.nan, geom.y.where(~empty).to_numpy(dtype=float))
                out["__geom_x"] = xs
                out["__geom_y"] = ys
            yield out


def _zip_members(archive: zipfile.ZipFile, name: str) -> list[str]:
    """The files of a zip archive; exactly one is read, so several are refused with the list."""
    members = [m for m in archive.namelist() if not m.endswith("/")]
    if len(members) != 1:
        listed = ", ".join(members[:10]) + (" …" if len(members) > 10 else "")
        raise DataFileError(
            f"{name}: a zip archive is read when it holds exactly one file; it holds "
            f"{len(members)} ({listed or 'none'}). Extract the one to read and pass it."
        )
    return members


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise DataFileError(
            f"{path.name}: cannot be opened as a zip archive ({err}). Is the download "
            "complete? A file that is not a zip archive should not be named .zip."
        ) from err


def _open_binary(path: Path) -> io.BufferedIOBase:
    suffix = path.suffix.lower()
    if suffix == ".zip":
        archive = _open_zip(path)
        members = _zip_members(archive, path.name)
        member = archive.open(members[0])
        archive.close()  # the file stays open until the member is closed (shared handle)
        return member  # type: ignore[return-value]
    if suffix == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    if suffix in _COMPRESSIONS:
        return pa.input_stream(str(path), compression=_COMPRESSIONS[suffix])  # type: ignore[return-value]
    return open(path, "rb")


_MAX_HEADER = 1 << 24  # 16 MiB: a header longer than that is not a registry's


def _header_line(fh: Any, name: str) -> bytes:
    """The whole first line (any length up to 16 MiB; LF, CRLF or CR-only endings)."""
    buf = b""
    while True:
        block = fh.read(1 << 16)
        buf += block
        cut = min((i for i in (buf.find(b"\n"), buf.find(b"\r")) if i >= 0), default=-1)
        if cut >= 0:
            return buf[:cut]
        if not block:
            return buf
        if len(buf) > _MAX_HEADER:
            raise DataFileError(
                f"{name}: the first line is longer than {_MAX_HEADER >> 20} MiB without a line "
                "end; a CSV header is expected. Is this a text CSV file?"
            )


class _CsvSource(_Source):
    def __init__(self, path: Path, sep: str | None, encoding: str):
        self.path = path
        self.name = path.name
        self.encoding = encoding
        try:
            with _open_binary(path) as fh:
                first = _header_line(fh, path.name)
        except (OSError, EOFError, zipfile.BadZipFile) as err:
            raise DataFileError(
                f"{path.name}: cannot be read ({err}). Is the file complete and really "
                f"{'compressed' if path.suffix.lower() in (*_COMPRESSIONS, '.zip') else 'text'}?"
            ) from err
        try:
            text = first.decode(encoding)
        except UnicodeDecodeError as err:
            raise DataFileError(
                f"{path.name}, line 1 (header): bytes that are not valid {encoding} "
                f"(position {err.start}). Pass the file's encoding, e.g. encoding='latin-1'."
            ) from err
        text = text.lstrip("\ufeff")
        if sep is None:
            counts = {s: text.count(s) for s in (",", ";", "\t", "|")}
            sep = max(counts, key=counts.get) if max(counts.values()) else ","
        self.sep = sep
        self.columns = next(csv.reader([text], delimiter=sep))
        if not text.strip():
            raise DataFileError(f"{path.name}: the first line is empty; a header is expected.")

    def _stream(self):
        if self.path.suffix.lower() == ".zip" or self.encoding.lower() not in (
            "utf-8",
            "utf8",
        ):
            return _open_binary(self.path)
        suffix = self.path.suffix.lower()
        if suffix in _COMPRESSIONS:
            return pa.input_stream(str(self.path), compression=_COMPRESSIONS[suffix])
        return pa.input_stream(str(self.path))

    def chunks(self, columns: list[str]) -> Iterator[pd.DataFrame]:
        read = pacsv.ReadOptions(block_size=_BLOCK_SIZE, encoding=self.encoding)
        parse = pacsv.ParseOptions(delimiter=self.sep)
        convert = pacsv.ConvertOptions(
            include_columns=columns,
            column_types={c: pa.string() for c in columns},
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
            null_values=[""],
        )
        try:
            with self._stream() as stream:
                reader = pacsv.open_csv(
                    stream, read_options=read, parse_options=parse, convert_options=convert
                )
                for batch in reader:
                    yield batch.to_pandas()
        except (pa.ArrowInvalid, UnicodeDecodeError, OSError, EOFError) as err:
            raise self._error(err) from err

    def _error(self, err: Exception) -> DataFileError:
        where = _locate_csv_problem(self.path, self.sep, self.encoding)
        if where:
            return DataFileError(f"{self.name}: {where}")
        return DataFileError(
            f"{self.name}: cannot be read as a CSV file separated by {self.sep!r} "
            f"({err}). Check the file is complete and pass sep= and encoding= if needed."
        )


def _locate_csv_problem(path: Path, sep: str, encoding: str) -> str | None:
    """Find the first malformed line of a CSV file (slow path, only after an error)."""

    class _BadBytes(Exception):
        pass

    state = {"line": 0}

    def lines(handle) -> Iterator[str]:
        for raw in handle:
            state["line"] += 1
            try:
                yield raw.decode(encoding)
            except UnicodeDecodeError as err:
                raise _BadBytes(err) from err

    try:
        with _open_binary(path) as handle:
            reader = csv.reader(lines(handle), delimiter=sep)
            n_fields = None
            for record in reader:
                if not record:
                    continue
                if n_fields is None:
                    n_fields = len(record)
                    continue
                if len(record) != n_fields:
                    return (
                        f"line {reader.line_num}: expected {n_fields} fields separated by "
                        f"{sep!r} (as in the header), found {len(record)}. Fix or remove that "
                        "line (a stray separator or quote), or pass the right sep=."
                    )
    except _BadBytes as err:
        cause = err.__cause__
        pos = getattr(cause, "start", "?")
        return (
            f"line {state['line']}: bytes that are not valid {encoding} (at byte {pos} of the "
            "line). Pass the file's encoding, e.g. encoding='latin-1', or fix that line."
        )
    except (OSError, EOFError, zipfile.BadZipFile) as err:
        return (
            f"line {state['line'] + 1}: the file ends or breaks there ({err}); it is "
            "probably truncated. Download or decompress it again."
        )
    except csv.Error as err:
        return f"line {state['line']}: {err}. Fix that line or pass the right sep=."
    return None


class _ParquetSource(_Source):
    def __init__(self, path: Path, chunksize: int):
        self.path = path
        self.name = path.name
        self.chunksize = chunksize
        try:
            self.file = pq.ParquetFile(path)
        except (pa.ArrowInvalid, OSError) as err:
            raise DataFileError(
                f"{path.name}: cannot be read as Parquet ({err}). Is the file complete? "
                "Write it again, e.g. with DataFrame.to_parquet()."
            ) from err
        self.columns = list(self.file.schema_arrow.names)
        metadata = self.file.schema_arrow.metadata or {}
        self.geo = b"geo" in metadata

    def chunks(self, columns: list[str]) -> Iterator[pd.DataFrame]:
        try:
            for batch in self.file.iter_batches(batch_size=self.chunksize, columns=columns):
                table = pa.Table.from_batches([batch])
                yield table.to_pandas()
        except (pa.ArrowInvalid, OSError) as err:
            raise DataFileError(
                f"{self.name}: cannot be read as Parquet ({err}). Is the file complete?"
            ) from err


def _open_source(
    source: Any, sep: str | None, encoding: str, chunksize: int
) -> tuple[_Source, str]:
    """Return (source reader, kind) for a path or a frame."""
    if isinstance(source, pd.DataFrame):
        return _FrameSource(source, "DataFrame", chunksize), "frame"
    if not isinstance(source, (str, Path)):
        raise TypeError(
            f"'source' needs to be a file path or a (Geo)DataFrame; got {type(source).__name__}."
        )
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(
            f"Registry file {str(path)!r} does not exist. Check the path (relative paths "
            "are relative to the current directory)."
        )
    suffixes = [s.lower() for s in path.suffixes]
    last = suffixes[-1] if suffixes else ""
    inner = suffixes[-2] if len(suffixes) > 1 else ""
    if last in _CSV_SUFFIXES or (last in (*_COMPRESSIONS, ".zip") and inner in _CSV_SUFFIXES):
        return _CsvSource(path, sep, encoding), "csv"
    if last == ".zip" and not inner:
        with _open_zip(path) as archive:
            names = _zip_members(archive, path.name)
        if Path(names[0]).suffix.lower() in _CSV_SUFFIXES:
            return _CsvSource(path, sep, encoding), "csv"
    if last in _PARQUET_SUFFIXES:
        parquet = _ParquetSource(path, chunksize)
        if not parquet.geo:
            return parquet, "parquet"
        try:
            frame = gpd.read_parquet(path)
        except Exception as err:
            raise DataFileError(f"{path.name}: cannot be read as GeoParquet ({err}).") from err
        return _FrameSource(frame, path.name, chunksize), "geoparquet"
    import pyogrio

    try:
        frame = pyogrio.read_dataframe(path)
    except Exception as err:
        raise DataFileError(
            f"{path.name}: cannot be read (not CSV or Parquet by its name, and GDAL says: "
            f"{err}). Give a .csv, .csv.gz, .parquet or .gpkg file, or read it yourself "
            "and pass the DataFrame."
        ) from err
    return _FrameSource(frame, path.name, chunksize), "gdal"


# =========================================================================== mapping


def _detect_format(columns: Sequence[str], geolocation: Any) -> str | None:
    cols = set(columns)
    if "activitePrincipaleEtablissement" in cols:
        if geolocation is not None:
            return "sirene_stock"
        if {"longitude", "latitude"} <= cols:
            return "sirene"
        return "sirene_stock"
    if "apet700" in cols:
        return "sirene2016"
    return None


def _resolve_columns(
    columns: list[str],
    source_name: str,
    fmt: str | None,
    given: dict[str, Any],
    has_geometry: bool,
    geolocation: Any,
) -> dict[str, Any]:
    """Return {key: source column(s)} for the keys present, raising SchemaError if needed."""
    available = set(columns)
    preset = dict(_PRESETS.get(fmt or "", {}))
    spec: dict[str, Any] = {}
    for key, col in preset.items():
        if key == "crs" or given.get(key) is not None:
            continue
        if isinstance(col, list):
            present = [c for c in col if c in available]
            if present:
                spec[key] = present
        elif col in available:
            spec[key] = col
        elif key in _PRESET_REQUIRED:
            raise SchemaError(
                f"{source_name}: column {col!r} of the {fmt!r} format is missing. Columns "
                f"found: {_list_columns(columns)}. Pass the right one with {key}=..., or "
                "format=None and name every column with keywords."
            )
    for key, col in given.items():
        if col is None:
            continue
        cols = list(col) if isinstance(col, (list, tuple)) else [col]
        missing = [c for c in cols if c not in available]
        if missing:
            raise SchemaError(
                f"{source_name}: column {missing[0]!r} given as {key}= is not in the data. "
                f"Columns found: {_list_columns(columns)}. Pass the right name, "
                f"e.g. {key}={_closest(missing[0], columns)!r}."
            )
        spec[key] = cols if key == "name" else cols[0]
    if "sector" not in spec:
        raise SchemaError(
            f"{source_name}: no sector column. Columns found: {_list_columns(columns)}. "
            "The layout is not one of the SIRENE presets ('sirene', 'sirene_stock', "
            "'sirene2016'); name the columns with keywords, e.g. "
            "read_registry(path, sector='naf', x='lon', y='lat', crs=4326, id='siret')."
        )
    has_xy = "x" in spec and "y" in spec
    if not has_xy and not has_geometry and geolocation is None:
        which = [k for k in ("x", "y") if k not in spec]
        hint = (
            " For the INSEE stock, pass the geolocation file: "
            "read_registry(stock, format='sirene_stock', geolocation=geo_file)."
            if fmt == "sirene_stock"
            else ""
        )
        raise SchemaError(
            f"{source_name}: no coordinate column for {' and '.join(which)}. Columns found: "
            f"{_list_columns(columns)}. Pass x= and y= (and crs=), or a GeoDataFrame.{hint}"
        )
    if (given.get("x") is None) != (given.get("y") is None):
        raise SchemaError("Pass both x= and y= (the columns of the two coordinates), not one.")
    return spec


def _list_columns(columns: Sequence[str], limit: int = 40) -> str:
    shown = ", ".join(repr(c) for c in list(columns)[:limit])
    more = f", ... ({len(columns) - limit} more)" if len(columns) > limit else ""
    return f"[{shown}{more}]"


def _closest(name: str, columns: Sequence[str]) -> str:
    import difflib

    match = difflib.get_close_matches(name, list(columns), n=1, cutoff=0.0)
    return match[0] if match else name


# =========================================================================== geometry checks


@lru_cache(maxsize=32)
def _to_lonlat(crs: CRS) -> Transformer | None:
    if crs.is_geographic and crs.to_epsg() in (4326, 4171, 4258, 4269, 4230, 4275, 4807):
        return None
    return Transformer.from_crs(crs, CRS(4326), always_xy=True)


@lru_cache(maxsize=32)
def _transformer(src: CRS, dst: CRS) -> Transformer:
    return Transformer.from_crs(src, dst, always_xy=True)


def _lonlat(x: np.ndarray, y: np.ndarray, crs: CRS) -> tuple[np.ndarray, np.ndarray]:
    transformer = _to_lonlat(crs)
    if transformer is None:
        return x, y
    lon, lat = transformer.transform(x, y, errcheck=False)
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    bad = ~(np.isfinite(lon) & np.isfinite(lat))
    lon[bad] = np.nan
    lat[bad] = np.nan
    return lon, lat


def _inside(lon: np.ndarray, lat: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    inside = np.zeros(len(lon), dtype=bool)
    for west, south, east, north in boxes:
        if west <= east:
            in_lon = (lon >= west) & (lon <= east)
        else:  # crosses the antimeridian
            in_lon = (lon >= west) | (lon <= east)
        inside |= in_lon & (lat >= south) & (lat <= north)
    return inside


def _expected_boxes(bounds: Any, fmt: str | None, crs: CRS | None) -> tuple[np.ndarray, str]:
    if isinstance(bounds, str):
        if bounds.lower() != "france":
            raise ValueError(
                "'bounds' needs to be 'france', a (west, south, east, north) box in degrees, "
                f"or a list of such boxes; {bounds!r} was given."
            )
        bounds = None
        fmt = "sirene"
    if bounds is not None:
        boxes = np.asarray(bounds, dtype=float)
        if boxes.ndim == 1:
            boxes = boxes[None, :]
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise ValueError(
                "'bounds' needs to be a (west, south, east, north) box in degrees or a list "
                f"of such boxes; got an array of shape {boxes.shape}."
            )
        return boxes, "the bounds= boxes"
    if fmt in _PRESETS:
        return np.asarray(list(FRANCE_AREAS.values())), "France incl. DOM"
    area = crs.area_of_use if crs is not None else None
    if area is None:
        return np.asarray([(-180.0, -90.0, 180.0, 90.0)]), "the world (CRS without area of use)"
    return (
        np.asarray([(area.west, area.south, area.east, area.north)]),
        f"the area of use of {_crs_name(crs)} ({area.name})",
    )


# =========================================================================== chunk processing


@dataclass
class _Context:
    spec: dict[str, Any]
    fmt: str | None
    nomenclature: str
    sector_level: str | int | None
    include_closed: bool
    swapped: str
    employee_rule: str
    open_band_cap: float
    keep: list[str]
    crs: CRS | None  # uniform source CRS (None: per row, see epsg)
    boxes: np.ndarray
    area_text: str
    per_row_epsg: str | None = None  # "commune" or "geolocation"
    geo_index: pd.Index | None = None
    geo_xy: np.ndarray | None = None
    geo_epsg: np.ndarray | None = None
    uses_geometry: bool = False


def _text(values: pd.Series) -> pd.Series:
    """Column as strings with missing values (codes keep their leading zeros)."""
    out = values
    if pd.api.types.is_float_dtype(values.dtype):
        v = values.to_numpy(dtype=float, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            # whole numbers that int64 holds are written without ".0" (codes read as
            # floats); inf, 1e19 and decimals stay as they print, and are rejected later
            integral = np.isfinite(v) & (np.abs(v) < 2.0**63) & (v == np.round(v))
        out = values.astype("string")
        if integral.any():
            whole = pd.Series(v[integral].astype(np.int64), dtype="Int64").astype("string")
            out = out.copy()
            out.iloc[np.flatnonzero(integral)] = whole.to_numpy()
    out = out.astype("string")
    out = out.str.strip()
    return out.mask(out == "")


def _numbers(values: pd.Series) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        return values.to_numpy(dtype=float, na_value=np.nan)
    text = values.astype("string").str.strip()
    try:
        return text.astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError):
        return pd.to_numeric(text.str.replace(",", ".", regex=False), errors="coerce").to_numpy(
            dtype=float, na_value=np.nan
        )


def _process_chunk(
    chunk: pd.DataFrame, offset: int, ctx: _Context
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Validate one chunk. Returns (kept, rejects, repairs, id hashes of every row)."""
    spec = ctx.spec
    n = len(chunk)
    rows = np.arange(offset + 1, offset + n + 1, dtype=np.int64)
    reason = np.full(n, None, dtype=object)
    detail = np.full(n, None, dtype=object)
    free = np.ones(n, dtype=bool)  # rows without a reason yet
    if "commune" in spec:
        commune, commune_fixed = _commune_codes(_text(chunk[spec["commune"]]))
    else:
        commune = pd.Series([None] * n, dtype="string")
        commune_fixed = np.zeros(n, dtype=bool)

    def flag(mask: np.ndarray, why: str, text: Any) -> None:
        mask = mask & free
        if mask.any():
            free[mask] = False
            reason[mask] = why
            if callable(text):
                detail[mask] = text(mask)
            else:
                detail[mask] = text

    ids = _text(chunk[spec["id"]]) if "id" in spec else pd.Series(rows.astype(str), dtype="string")
    ids_filled = ids.fillna("")
    id_hash = pd.util.hash_pandas_object(ids_filled, index=False).to_numpy()
    id_hash = np.where(ids.isna().to_numpy(), np.uint64(0), id_hash)

    # 1. closed
    if "state" in spec and not ctx.include_closed:
        state = _text(chunk[spec["state"]]).str.upper()
        closed = (state == "F").fillna(False).to_numpy(dtype=bool)
        flag(closed, S.REASON_CLOSED, f"{spec['state']} = F (closed)")

    # 2. coordinates
    epsg = None
    if ctx.uses_geometry:
        x = chunk["__geom_x"].to_numpy(dtype=float)
        y = chunk["__geom_y"].to_numpy(dtype=float)
        missing_text: Any = "empty geometry"
    elif ctx.per_row_epsg == "geolocation":
        pos = ctx.geo_index.get_indexer(ids_filled)  # type: ignore[union-attr]
        found = pos >= 0
        x = np.where(found, ctx.geo_xy[pos, 0], np.nan)  # type: ignore[index]
        y = np.where(found, ctx.geo_xy[pos, 1], np.nan)  # type: ignore[index]
        epsg = np.where(found, ctx.geo_epsg[pos], 0)  # type: ignore[index]
        flag(~found, S.REASON_MISSING_COORDINATES, "no row for this siret in the geolocation file")
        missing_text = "empty x or y in the geolocation file"
    else:
        x = _numbers(chunk[spec["x"]])
        y = _numbers(chunk[spec["y"]])
        x_col, y_col = chunk[spec["x"]], chunk[spec["y"]]

        def missing_text(mask: np.ndarray) -> np.ndarray:
            xs = x_col.to_numpy(dtype=object, na_value=None)[mask]
            ys = y_col.to_numpy(dtype=object, na_value=None)[mask]
            out = []
            for a, b in zip(xs, ys):
                if (a is None or str(a).strip() == "") and (b is None or str(b).strip() == ""):
                    out.append(f"{spec['x']} and {spec['y']} empty")
                else:
                    out.append(f"{spec['x']}={a!r}, {spec['y']}={b!r}: not numbers")
            return np.asarray(out, dtype=object)

        if ctx.per_row_epsg == "commune":
            epsg = _epsg_from_commune(commune)
    missing = ~(np.isfinite(x) & np.isfinite(y))
    flag(missing, S.REASON_MISSING_COORDINATES, missing_text)

    # 3. expected area, swapped coordinates
    swapped_fix = np.zeros(n, dtype=bool)
    has_xy = ~missing
    if has_xy.any():
        lon = np.full(n, np.nan)
        lat = np.full(n, np.nan)
        lon_s = np.full(n, np.nan)
        lat_s = np.full(n, np.nan)
        for crs, sel in _crs_groups(ctx.crs, epsg, has_xy):
            lon[sel], lat[sel] = _lonlat(x[sel], y[sel], crs)
            lon_s[sel], lat_s[sel] = _lonlat(y[sel], x[sel], crs)
        inside = _inside(lon, lat, ctx.boxes)
        outside = has_xy & ~inside
        if outside.any():
            inside_swapped = outside & _inside(lon_s, lat_s, ctx.boxes)

            def coords_text(mask: np.ndarray) -> np.ndarray:
                return np.asarray(
                    [f"({a:.6g}, {b:.6g})" for a, b in zip(x[mask], y[mask])], dtype=object
                )

            if ctx.swapped == "reject":
                flag(
                    inside_swapped,
                    S.REASON_SWAPPED,
                    lambda m: coords_text(m) + " inside " + ctx.area_text + " once exchanged",
                )
            else:
                swapped_fix = inside_swapped & free
            flag(
                outside & ~inside_swapped,
                S.REASON_OUT_OF_BOUNDS,
                lambda m: coords_text(m) + " outside " + ctx.area_text,
            )

    # 4. nomenclature version
    if "nomenclature_column" in spec and ctx.nomenclature == "naf":
        version = _text(chunk[spec["nomenclature_column"]])
        other = (version.notna() & (version.str.upper() != "NAFREV2")).to_numpy(dtype=bool)
        if other.any():
            values = version.to_numpy(dtype=object, na_value=None)
            flag(
                other,
                S.REASON_OTHER_NOMENCLATURE,
                lambda m: np.asarray(
                    [f"{spec['nomenclature_column']} = {v!r}, not NAFRev2" for v in values[m]],
                    dtype=object,
                ),
            )

    # 5. sector codes
    raw_sector = chunk[spec["sector"]]
    sector = normalize_codes(_text(raw_sector), nomenclature=ctx.nomenclature)
    if ctx.sector_level is not None:
        # canonical codes have one length per level (25.62A: 6, 25.62: 5, 25.6: 4, 25: 2, C: 1)
        level = _canonical_level(ctx.sector_level, ctx.nomenclature)
        length = _CANONICAL_LENGTH.get(level, level)  # type: ignore[call-overload]
        good = (sector.str.len() == length).fillna(False).to_numpy(dtype=bool)
    else:
        good = sector.notna().to_numpy(dtype=bool)
    bad_sector = ~good
    if bad_sector.any():
        raw_values = raw_sector.to_numpy(dtype=object, na_value=None)
        flag(bad_sector, S.REASON_INVALID_SECTOR, lambda m: _sector_detail(raw_values[m], ctx))

    # kept rows
    keep_mask = free
    xk, yk = x[keep_mask].copy(), y[keep_mask].copy()
    fix_k = swapped_fix[keep_mask]
    xk[fix_k], yk[fix_k] = y[keep_mask][fix_k], x[keep_mask][fix_k]
    # string columns stay arrow-backed (no Python object per row: bounded memory)
    kept = pd.DataFrame(
        {
            "_pos": rows[keep_mask] - 1,
            S.ESTABLISHMENT_ID: ids_filled[keep_mask].array,
            S.SECTOR: sector[keep_mask].array,
        }
    )
    _add_employees(kept, chunk, keep_mask, ctx)
    kept[S.NAME] = _names(chunk, keep_mask, spec)
    if "commune" in spec:
        kept[S.COMMUNE] = commune[keep_mask].array
    else:
        kept[S.COMMUNE] = pd.array([pd.NA] * int(keep_mask.sum()), dtype="string")
    for col in ctx.keep:
        kept[col] = chunk[col][keep_mask].array
    kept["_x"] = xk
    kept["_y"] = yk
    if epsg is not None:
        kept["_epsg"] = np.asarray(epsg)[keep_mask]

    rej_mask = ~keep_mask
    rejects = pd.DataFrame(
        {
            S.ROW: rows[rej_mask],
            S.ESTABLISHMENT_ID: ids[rej_mask].array,
            S.REASON: reason[rej_mask],
            S.DETAIL: detail[rej_mask],
        }
    )
    fixed = swapped_fix & keep_mask
    repairs = pd.DataFrame(
        {
            S.ROW: rows[fixed],
            S.ESTABLISHMENT_ID: ids_filled[fixed].to_numpy(dtype=object),
            S.REASON: S.REASON_SWAPPED,
            S.DETAIL: [
                f"({a:.6g}, {b:.6g}) exchanged to ({b:.6g}, {a:.6g})"
                for a, b in zip(x[fixed], y[fixed])
            ],
        }
    )
    zero = commune_fixed & keep_mask
    if zero.any():
        repairs = _concat(
            [
                repairs,
                pd.DataFrame(
                    {
                        S.ROW: rows[zero],
                        S.ESTABLISHMENT_ID: ids_filled[zero].to_numpy(dtype=object),
                        S.REASON: S.REPAIR_COMMUNE_ZERO,
                        S.DETAIL: [f"{c[1:]!r} completed to {c!r}" for c in commune[zero]],
                    }
                ),
            ]
        )
    return kept, rejects, repairs, id_hash


def _sector_detail(values: np.ndarray, ctx: _Context) -> np.ndarray:
    level = ctx.sector_level
    any_level = is_valid(pd.Series(values, dtype=object), level=None, nomenclature=ctx.nomenclature)
    out = []
    name = {"naf": "NAF rév. 2", "nace": "NACE rév. 2", "naics": "NAICS"}.get(
        ctx.nomenclature, ctx.nomenclature
    )
    for value, ok in zip(values, any_level):
        if value is None or str(value).strip() == "":
            out.append("empty sector code")
        elif ok:
            out.append(f"{value!r} is a {name} code of another level; a {level} is expected")
        else:
            out.append(f"{value!r} is not a {name} code")
    return np.asarray(out, dtype=object)


def _crs_groups(
    crs: CRS | None, epsg: np.ndarray | None, mask: np.ndarray
) -> Iterator[tuple[CRS, np.ndarray]]:
    if epsg is None:
        yield crs, mask  # type: ignore[misc]
        return
    for code in np.unique(epsg[mask]):
        if code <= 0:
            continue
        yield CRS.from_epsg(int(code)), mask & (epsg == code)


def _commune_codes(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Commune codes with a lost leading zero completed (``1001`` -> ``01001``), and which.

    A French commune code has 5 characters; a 4-digit code can only be one of départements
    01-09 read as a number.
    """
    text = values.astype("string").str.strip()
    stripped = text.str.fullmatch(r"\d{4}").fillna(False).to_numpy(dtype=bool)
    if stripped.any():
        text = text.where(~stripped, "0" + text)
    return text, stripped


def _epsg_from_commune(commune: pd.Series) -> np.ndarray:
    prefix = commune.str.slice(0, 3).to_numpy(dtype=object, na_value="")
    out = np.full(len(commune), _METRO_EPSG, dtype=np.int32)
    for code, epsg in _DOM_EPSG.items():
        out[prefix == code] = epsg
    return out


def _names(chunk: pd.DataFrame, mask: np.ndarray, spec: dict[str, Any]) -> Any:
    if "name" not in spec:
        return np.full(int(mask.sum()), "", dtype=object)
    result: pd.Series | None = None
    for col in spec["name"]:
        values = _text(chunk[col])[mask]
        result = values if result is None else result.fillna(values)
    return result.fillna("").array  # type: ignore[union-attr]


def _add_employees(kept: pd.DataFrame, chunk: pd.DataFrame, mask: np.ndarray, ctx: _Context):
    spec = ctx.spec
    n = int(mask.sum())
    if "employees" in spec:
        values = _numbers(chunk[spec["employees"]])[mask]
        kept[S.EMPLOYEES] = values
        kept[S.EMPLOYEES_LOW] = values
        kept[S.EMPLOYEES_HIGH] = values
        kept[S.SIZE_BAND] = (
            _text(chunk[spec["size_band"]])[mask].array
            if "size_band" in spec
            else pd.array([pd.NA] * n, dtype="string")
        )
        kept["_band_status"] = np.where(np.isnan(values), "employees_missing", "ok")
    elif "size_band" in spec:
        bands = size_band_employees(
            _text(chunk[spec["size_band"]])[mask].reset_index(drop=True),
            ctx.employee_rule,
            ctx.open_band_cap,
        )
        for col in (S.EMPLOYEES, S.EMPLOYEES_LOW, S.EMPLOYEES_HIGH, S.SIZE_BAND):
            kept[col] = bands[col].array
        kept["_band_status"] = bands["band_status"].to_numpy()
    else:
        for col in (S.EMPLOYEES, S.EMPLOYEES_LOW, S.EMPLOYEES_HIGH):
            kept[col] = np.full(n, np.nan)
        kept[S.SIZE_BAND] = pd.array([pd.NA] * n, dtype="string")
        kept["_band_status"] = np.full(n, "none", dtype=object)


# =========================================================================== geolocation


def _read_geolocation(
    geolocation: Any, sep: str | None, encoding: str, chunksize: int, crs: Any
) -> tuple[pd.Index, np.ndarray, np.ndarray, str]:
    """Read the INSEE geolocation file: (siret index, xy array, epsg array, name)."""
    source, _ = _open_source(geolocation, sep, encoding, chunksize)
    cols = set(source.columns)
    if "siret" not in cols:
        raise SchemaError(
            f"{source.name}: the geolocation file needs a 'siret' column. Columns found: "
            f"{_list_columns(source.columns)}."
        )
    if {"x", "y"} <= cols:
        wanted = ["siret", "x", "y"] + (["epsg"] if "epsg" in cols else [])
        default_epsg = CRS.from_user_input(crs).to_epsg() if crs is not None else _METRO_EPSG
    elif {"x_longitude", "y_latitude"} <= cols:
        wanted = ["siret", "x_longitude", "y_latitude"]
        default_epsg = 4326
    else:
        raise SchemaError(
            f"{source.name}: the geolocation file needs columns 'x' and 'y' (with 'epsg') or "
            f"'x_longitude' and 'y_latitude'. Columns found: {_list_columns(source.columns)}."
        )
    parts = list(source.chunks(wanted))
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=wanted)
    siret = _text(table["siret"]).fillna("")
    first = ~siret.duplicated(keep="first").to_numpy()
    xy = np.column_stack([_numbers(table[wanted[1]]), _numbers(table[wanted[2]])])[first]
    if "epsg" in wanted:
        epsg = _numbers(table["epsg"])
        epsg = np.where(np.isfinite(epsg), epsg, default_epsg).astype(np.int32)[first]
    else:
        epsg = np.full(int(first.sum()), default_epsg, dtype=np.int32)
    return pd.Index(siret[first].to_numpy(dtype=object)), xy, epsg, source.name


# =========================================================================== read_registry


def read_registry(
    source: str | Path | pd.DataFrame,
    *,
    format: str | None = None,
    x: str | None = None,
    y: str | None = None,
    crs: Any = None,
    sector: str | None = None,
    employees: str | None = None,
    size_band: str | None = None,
    id: str | None = None,
    name: str | Sequence[str] | None = None,
    commune: str | None = None,
    state: str | None = None,
    nomenclature: str = "naf",
    sector_level: str | int | None = "default",
    nomenclature_column: str | None = None,
    keep: Sequence[str] | None = None,
    include_closed: bool = False,
    swapped: str = "fix",
    employee_rule: str = "mid",
    open_band_cap: float = 20000,
    geolocation: str | Path | pd.DataFrame | None = None,
    bounds: Any = None,
    sep: str | None = None,
    encoding: str = "utf-8",
    chunksize: int = 500_000,
) -> Registry:
    """Read a registry of establishments, validate every row and report what was dropped.

    See the module documentation (:mod:`clustermap.io`) for the presets, the reject reasons
    and the size-band rule.

    Parameters
    ----------
    source : str, pathlib.Path or pandas.DataFrame
        A CSV file (also ``.csv.gz``, ``.csv.zip``…, separator detected from the header),
        a Parquet or GeoParquet file, a GeoPackage or any file pyogrio reads, or a
        (Geo)DataFrame. Files are read in chunks of about ``chunksize`` rows, so a
        registry of 10 million rows takes the memory of its kept rows only.
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
    employees : str, optional
        Numeric head-count column, used as is.
    size_band : str, optional
        Column of SIRENE size-band codes (ignored for head-counts when ``employees`` is
        given).
    id : str, optional
        Column of establishment ids (e.g. ``siret``); default: the row number.
    name : str or list of str, optional
        Name column(s); the first non-empty one wins.
    commune : str, optional
        Column of the commune code (5 characters, read as text).
    state : str, optional
        Column of the administrative state; ``F`` marks a closed establishment.
    nomenclature : {"naf", "nace", "naics", "prefix"}, default "naf"
        Nomenclature of the sector codes.
    sector_level : str, int or None, optional
        Level the sector codes must be at. Default: ``"subclass"`` for NAF, ``"class"``
        for NACE, any level for NAICS and prefix codes. None accepts any level.
    nomenclature_column : str, optional
        Column naming the nomenclature version of each row (SIRENE presets:
        ``nomenclatureActivitePrincipaleEtablissement``); rows not ``NAFRev2`` are
        rejected as ``other_nomenclature``.
    keep : list of str, optional
        Other source columns to carry into ``establishments`` (as read).
    include_closed : bool, default False
        Keep closed establishments (state ``F``).
    swapped : {"fix", "reject"}, default "fix"
        What to do with points whose x and y are exchanged (see module documentation).
    employee_rule : {"mid", "low", "high"}, default "mid"
        Head-count from a size band.
    open_band_cap : float, default 20000
        Upper bound of the open size band ``53`` (10 000 or more).
    geolocation : str, pathlib.Path or pandas.DataFrame, optional
        The INSEE geolocation file for the stock (``siret``, ``x``, ``y``, ``epsg``),
        joined on ``siret``; implies ``format="sirene_stock"`` when not given.
    bounds : str, tuple or list of tuples, optional
        Expected area: ``"france"`` (France incl. DOM) or (west, south, east, north) box(es)
        in degrees. Default: France for the SIRENE presets, else the CRS's area of use.
    sep : str, optional
        CSV separator; detected from the header by default.
    encoding : str, default "utf-8"
        CSV encoding (``"latin-1"`` for old INSEE files).
    chunksize : int, default 500000
        Rows per chunk for Parquet files and DataFrames (CSV files are streamed in blocks
        of 16 MB).

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
    >>> reg = cm.read_registry(df, id="siret", sector="naf", size_band="tefet",
    ...                        x="lon", y="lat", crs=4326, bounds="france")
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
    if swapped not in ("fix", "reject"):
        raise ValueError(f"'swapped' needs to be 'fix' or 'reject'; {swapped!r} was given.")
    if employee_rule not in ("mid", "low", "high"):
        raise ValueError(
            f"'employee_rule' needs to be 'mid', 'low' or 'high'; {employee_rule!r} was given."
        )
    if format is not None and format not in _PRESETS:
        raise ValueError(
            f"'format' needs to be one of {tuple(_PRESETS)} or None (detect from the "
            f"header); {format!r} was given."
        )
    if nomenclature not in LEVELS and nomenclature not in ("naics", "prefix"):
        raise ValueError(
            "'nomenclature' needs to be one of ('naf', 'nace', 'naics', 'prefix'); "
            f"{nomenclature!r} was given."
        )
    if sector_level == "default":
        sector_level = {"naf": "subclass", "nace": "class"}.get(nomenclature)

    reader, _kind = _open_source(source, sep, encoding, chunksize)
    fmt = format or _detect_format(reader.columns, geolocation)
    if geolocation is not None and fmt is None:
        fmt = "sirene_stock"
    given = {
        "id": id,
        "sector": sector,
        "x": x,
        "y": y,
        "employees": employees,
        "size_band": size_band,
        "name": name,
        "commune": commune,
        "state": state,
        "nomenclature_column": nomenclature_column,
    }
    if geolocation is not None and (x is not None or y is not None):
        raise ValueError(
            "Pass either geolocation= (coordinates from the INSEE geolocation file) or x= "
            "and y= (coordinates in the registry itself), not both."
        )
    spec = _resolve_columns(
        reader.columns, reader.name, fmt, given, reader.has_geometry, geolocation
    )
    keep_cols = list(keep or [])
    standard = {
        S.ESTABLISHMENT_ID,
        S.SECTOR,
        S.EMPLOYEES,
        S.EMPLOYEES_LOW,
        S.EMPLOYEES_HIGH,
        S.SIZE_BAND,
        S.NAME,
        S.COMMUNE,
        S.GEOMETRY,
    }
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

    # --- coordinates and CRS
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
    boxes, area_text = _expected_boxes(bounds, fmt, src_crs)

    ctx = _Context(
        spec=spec,
        fmt=fmt,
        nomenclature=nomenclature,
        sector_level=sector_level,
        include_closed=include_closed,
        swapped=swapped,
        employee_rule=employee_rule,
        open_band_cap=open_band_cap,
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
    kept_parts, reject_parts, repair_parts, hashes = [], [], [], []
    offset = 0
    for chunk in reader.chunks(columns):
        if len(chunk) == 0:
            continue
        kept, rejects, repairs, id_hash = _process_chunk(chunk, offset, ctx)
        offset += len(chunk)
        kept_parts.append(kept)
        reject_parts.append(rejects)
        repair_parts.append(repairs)
        hashes.append(id_hash)
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


def _empty_log() -> pd.DataFrame:
    return pd.DataFrame(
        {
            S.ROW: pd.Series([], dtype=np.int64),
            S.ESTABLISHMENT_ID: pd.Series([], dtype=object),
            S.REASON: pd.Series([], dtype=object),
            S.DETAIL: pd.Series([], dtype=object),
        }
    )


def _concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    parts = [p for p in parts if len(p)]
    if not parts:
        return _empty_log()
    return pd.concat(parts, ignore_index=True)


def _order_columns(ctx: _Context) -> list[str]:
    return [
        S.ESTABLISHMENT_ID,
        S.SECTOR,
        S.EMPLOYEES,
        S.EMPLOYEES_LOW,
        S.EMPLOYEES_HIGH,
        S.SIZE_BAND,
        S.NAME,
        S.COMMUNE,
        *ctx.keep,
    ]


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

    # duplicated ids over the whole source, first data row wins
    keep_rows = None
    if hashes and "id" in ctx.spec:
        all_hash = np.concatenate(hashes)
        hashes.clear()
        dup = pd.Series(all_hash).duplicated(keep="first").to_numpy() & (all_hash != 0)
        if dup.any():
            drop, rejects, repairs = _drop_duplicates(kept, rejects, repairs, all_hash, dup)
            if drop.any():
                keep_rows = ~drop
        del all_hash, dup
    if keep_rows is not None:  # one selection (copy) of the kept rows, not two
        kept = kept.loc[
            keep_rows,
            [*_order_columns(ctx), "_x", "_y", "_band_status"]
            + (["_epsg"] if "_epsg" in kept else []),
        ]

    # geometry, with per-row projections brought to one CRS
    xs = kept["_x"].to_numpy(dtype=float) if len(kept) else np.array([])
    ys = kept["_y"].to_numpy(dtype=float) if len(kept) else np.array([])
    crs = ctx.crs
    if ctx.per_row_epsg is not None:
        codes = np.unique(kept["_epsg"]) if "_epsg" in kept else np.array([])
        if output_crs is not None:
            crs = _parse_crs(output_crs)
        elif len(codes) == 1:
            crs = CRS.from_epsg(int(codes[0]))
        else:
            crs = CRS(4326)
        xs, ys = xs.copy(), ys.copy()
        for code in codes:
            sel = kept["_epsg"].to_numpy() == code
            src = CRS.from_epsg(int(code))
            if src != crs:
                xs[sel], ys[sel] = _transformer(src, crs).transform(xs[sel], ys[sel])
    geometry = gpd.points_from_xy(xs, ys, crs=crs)

    notes: dict[str, Any] = {}
    status = kept["_band_status"] if "_band_status" in kept else pd.Series([], dtype=object)
    if "employees" in ctx.spec:
        notes["employees_source"] = "column"
        notes["employees_missing"] = int((status == "employees_missing").sum())
    elif "size_band" in ctx.spec:
        notes["employees_source"] = "size_band"
        notes["size_band_missing"] = int((status == "missing").sum())
        notes["size_band_unknown"] = int((status == "unknown").sum())
        notes["open_band_cap"] = float(ctx.open_band_cap)
        if notes["size_band_unknown"]:
            unknown = kept.loc[status == "unknown", S.SIZE_BAND].value_counts().head(5)
            warnings.warn(
                f"{source_name}: {notes['size_band_unknown']:,} kept rows have a size-band code "
                f"that is not a SIRENE band (e.g. {dict(unknown)}); they count 0 employees. "
                "Check the size_band= column.",
                ClustermapWarning,
                stacklevel=3,
            )
    else:
        notes["employees_source"] = None

    order = _order_columns(ctx)
    if len(kept):
        frame = kept[order]
    else:
        frame = pd.DataFrame({col: pd.Series([], dtype=object) for col in order})
    del kept
    for col in (S.ESTABLISHMENT_ID, S.SECTOR, S.NAME):
        frame[col] = frame[col].astype(str)
    for col in (S.SIZE_BAND, S.COMMUNE):
        frame[col] = frame[col].astype("string")
    for col in (S.EMPLOYEES, S.EMPLOYEES_LOW, S.EMPLOYEES_HIGH):
        frame[col] = frame[col].astype(float)
    frame.index = pd.RangeIndex(len(frame))
    establishments = gpd.GeoDataFrame(frame, geometry=geometry, crs=crs)

    rejects = rejects.sort_values(S.ROW, kind="stable").reset_index(drop=True)
    repairs = repairs.sort_values(S.ROW, kind="stable").reset_index(drop=True)
    rejects[S.ROW] = rejects[S.ROW].astype(np.int64)
    repairs[S.ROW] = repairs[S.ROW].astype(np.int64)
    return Registry(
        establishments=establishments,
        rejects=rejects,
        repairs=repairs,
        source=source_name,
        crs=CRS.from_user_input(crs) if crs is not None else None,  # type: ignore[arg-type]
        nomenclature=ctx.nomenclature,
        employee_rule=ctx.employee_rule,
        n_rows=n_rows,
        format=ctx.fmt,
        notes=notes,
    )


def _drop_duplicates(
    kept: pd.DataFrame,
    rejects: pd.DataFrame,
    repairs: pd.DataFrame,
    all_hash: np.ndarray,
    dup: np.ndarray,
) -> tuple[np.ndarray, pd.DataFrame, pd.DataFrame]:
    """Find kept rows whose id appeared earlier (exact check of the hashes).

    Returns the mask of kept rows to drop, the rejects with those rows added, and the
    repairs without them.
    """
    candidates = np.flatnonzero(np.isin(all_hash, np.unique(all_hash[dup])))
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
    first_row = ids.groupby(ids.to_numpy(), sort=False).transform(lambda s: s.index[0] + 1)
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
