"""Read pre-aggregated units × sectors counts: URSSAF commune × APE files and long tables."""

from __future__ import annotations

import csv
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..core.schema import ESTABLISHMENTS, SECTOR, UNIT_ID
from ..errors import ClustermapWarning, DataFileError, SchemaError
from .sniff import mismatch, sniff

__all__ = ["CountTables", "header_columns", "looks_like_counts", "read_count_panel", "read_counts"]


@dataclass
class CountTables:
    """Units × sectors tables read from a pre-aggregated file (see :func:`read_counts`).

    Attributes
    ----------
    establishments : pandas.DataFrame
        Establishment counts, index ``unit_id``, one column per sector.
    employees : pandas.DataFrame or None
        Employment (same shape), or None when the source has none.
    source : str
        File name (or ``"<DataFrame>"``).
    year : int or None
        Year picked in a wide yearly file.
    info : dict
        What was read: rows, dropped rows by reason, empty cells read as 0, available years.

    Examples
    --------
    >>> long = pd.DataFrame({"unit": ["u1", "u1", "u2"],
    ...                      "sector": ["25.62A", "22.29A", "25.62A"],
    ...                      "establishments": [3, 1, 2], "employees": [30, 4, 8]})
    >>> tables = cm.read_counts(long)
    >>> tables
    <CountTables: 2 units x 2 sectors, establishments and employees>
    >>> tables.establishments
    sector   22.29A  25.62A
    unit_id
    u1            1       3
    u2            0       2
    """

    establishments: pd.DataFrame
    employees: pd.DataFrame | None
    source: str
    year: int | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        n, s = self.establishments.shape
        what = "establishments and employees" if self.employees is not None else "establishments"
        return f"<CountTables: {n} units x {s} sectors, {what}>"


# ----------------------------------------------------------------------------- reading
_URSSAF_EST = re.compile(r"^Nombre d.établissements (\d{4})$")
_URSSAF_EMP = re.compile(r"^Effectifs salariés (\d{4})$")


def _normalize_sectors(codes: pd.Series) -> pd.Series:
    """Canonical NAF form (``4399A`` -> ``43.99A``) via clustermap.taxonomy when available."""
    try:
        from ..taxonomy import normalize_codes
    except ImportError:  # taxonomy not there: keep a minimal, documented rule
        s = codes.astype(str).str.strip().str.upper()
        return s.where(~s.str.fullmatch(r"\d{4}[A-Z]"), s.str.slice(0, 2) + "." + s.str.slice(2))
    return pd.Series(np.asarray(normalize_codes(codes)), index=codes.index)


def _read_zipped(path: Path, encoding: str) -> pd.DataFrame:
    import zipfile

    with zipfile.ZipFile(path) as archive:
        tables = [n for n in archive.namelist() if n.lower().endswith((".txt", ".csv"))]
        if len(tables) != 1:
            raise DataFileError(
                f"Counts file {path.name!r} is a zip archive holding {len(tables)} tables "
                f"({tables[:5]}); extract the one to read and give its path."
            )
        with archive.open(tables[0]) as raw:
            head = raw.readline().decode(encoding, errors="replace")
        with archive.open(tables[0]) as raw:
            return pd.read_csv(
                raw, sep=_separator(head), dtype=str, keep_default_na=False, encoding=encoding
            )


#: County Business Patterns county files: state and county FIPS, NAICS, establishments, jobs
_CBP_COLUMNS = ("fipstate", "fipscty", "naics", "est")


def _cbp_long(df: pd.DataFrame, info: dict[str, Any]) -> pd.DataFrame:
    """A CBP county file as a long table: county FIPS × 6-digit NAICS; aggregates counted."""
    lower = {str(c).lower(): c for c in df.columns}
    naics = df[lower["naics"]].astype(str).str.strip()
    detail = naics.str.fullmatch(r"\d{6}")
    info["aggregate_rows"] = int((~detail).sum())  # "------", "33----", "3327//": totals
    out = pd.DataFrame(
        {
            UNIT_ID: df[lower["fipstate"]].astype(str).str.strip().str.zfill(2)
            + df[lower["fipscty"]].astype(str).str.strip().str.zfill(3),
            SECTOR: naics,
            ESTABLISHMENTS: df[lower["est"]],
        }
    )
    if "emp" in lower:
        out["employees"] = df[lower["emp"]]
    return out[detail.to_numpy()].reset_index(drop=True)


def _read_table(path: Path, encoding: str = "utf-8") -> pd.DataFrame:
    if not path.exists():
        raise FileNotFoundError(f"Counts file {str(path)!r} does not exist.")
    problem = mismatch(path, encoding)
    if problem:
        raise DataFileError(f"Counts file {problem}")
    suffixes = "".join(path.suffixes).lower()
    if suffixes.endswith(".parquet"):
        try:
            return pd.read_parquet(path)
        except Exception as err:  # pyarrow raises several types for a broken file
            raise DataFileError(
                f"Cannot read counts file {path.name!r} as Parquet ({err}). Is it complete?"
            ) from err
    import gzip
    import zlib

    kind = sniff(path)
    if kind == "zip":  # a zipped CSV with one table (County Business Patterns)
        return _read_zipped(path, encoding)
    compression = "gzip" if kind == "gzip" else None
    try:
        sep = _separator(_first_line(path, encoding))
        df = pd.read_csv(
            path,
            sep=sep,
            dtype=str,
            keep_default_na=False,
            encoding=encoding,
            compression=compression,
        )
    except pd.errors.EmptyDataError as err:
        raise DataFileError(
            f"Counts file {path.name!r} is empty: a header line and one row per unit x sector "
            "are expected."
        ) from err
    except UnicodeDecodeError as err:
        raise DataFileError(
            f"Counts file {path.name!r} holds bytes that are not valid {encoding} (byte "
            f"{err.start} of a block). Pass the file's encoding, e.g. encoding='latin-1'."
        ) from err
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise DataFileError(
            f"Counts file {path.name!r} ends before its compressed data do ({err}): it is "
            "probably truncated. Download or decompress it again."
        ) from err
    except (pd.errors.ParserError, csv.Error, OSError) as err:
        raise DataFileError(
            f"Cannot read counts file {path.name!r} as CSV separated by {sep!r} ({err}). Check "
            "the file is complete and is a CSV file."
        ) from err
    except LookupError as err:
        raise ValueError(f"encoding={encoding!r} is not a known text encoding.") from err
    if len(df) == 0:
        raise DataFileError(
            f"Counts file {path.name!r} has a header but no data rows; one row per unit x "
            "sector is expected."
        )
    return df


def _to_number(values: pd.Series, column: str, source: str) -> tuple[np.ndarray, int]:
    s = values.astype(str).str.strip().str.replace("\u202f", "").str.replace(" ", "")
    empty = s.isin(["", "nan", "NaN", "None", "<NA>"])
    s = s.where(~empty, "0").str.replace(",", ".")
    num = pd.to_numeric(s, errors="coerce")
    if num.isna().any():
        i = int(np.flatnonzero(num.isna().to_numpy())[0])
        raise DataFileError(
            f"{source}: column {column!r}, data row {i + 1} holds {values.iloc[i]!r}, "
            "expected a number (or an empty cell for 0)."
        )
    return num.to_numpy(dtype=float), int(empty.sum())


def read_counts(
    path_or_df: str | Path | pd.DataFrame,
    *,
    unit: str | None = None,
    sector: str | None = None,
    establishments: str | None = None,
    employees: str | None = None,
    year: int | None = None,
    normalize: bool = True,
    encoding: str = "utf-8",
) -> CountTables:
    """Read a pre-aggregated units × sectors table (URSSAF open data, CBP, any long table).

    Two layouts are recognised:

    - **URSSAF** "établissements et effectifs salariés au niveau commune x APE" (wide by year,
      separator ``;``): columns ``Code commune``, ``Code APE`` (``4399A``) and
      ``Nombre d'établissements YYYY`` / ``Effectifs salariés YYYY``. The year is picked
      with ``year`` (default: the latest). Empty cells mean no establishment (or statistical
      secrecy) and are read as 0; how many were is reported in ``info``.
    - **Long**: one row per unit × sector with columns for the unit, the sector, the number
      of establishments and (optionally) employment. Default names: ``unit`` / ``unit_id``,
      ``sector``, ``establishments``, ``employees``; or pass them.
    - **County Business Patterns** county files (``cbpYYco.zip`` or its text file: columns
      ``fipstate``, ``fipscty``, ``naics``, ``est``, ``emp``): units are the 5-digit county
      FIPS codes, sectors the 6-digit NAICS codes as they are (rows of aggregates such as
      ``------`` or ``33----`` are totals, counted in ``info["aggregate_rows"]``); group them
      with ``level="cluster_category", nomenclature="naics"``.

    Duplicate unit × sector rows are summed. Sector codes are put in canonical NAF form
    (``4399A`` -> ``43.99A``) by :func:`clustermap.taxonomy.normalize_codes` unless
    ``normalize=False``.

    Parameters
    ----------
    path_or_df : str, pathlib.Path or pandas.DataFrame
        A CSV (optionally gzipped; ``;`` or ``,`` separated) or Parquet file, or a DataFrame.
    unit, sector, establishments, employees : str, optional
        Column names, when they differ from the defaults above.
    year : int, optional
        Year of a wide yearly file; default the latest year present.
    normalize : bool, default True
        Normalise sector codes to the canonical NAF form.
    encoding : str, default "utf-8"
        Text encoding of a CSV file (``"latin-1"`` for some older publications).

    Returns
    -------
    CountTables
        ``.establishments`` and ``.employees``: units × sectors DataFrames (index
        ``unit_id``, zeros for absent cells), ready for :func:`location_quotient`.

    Raises
    ------
    DataFileError
        Unreadable file, non-numeric cells (the message names the column and row).
    SchemaError
        Required columns absent, or the requested year missing.

    Examples
    --------
    >>> wide = pd.DataFrame({
    ...     "Code commune": ["76005", "76005", "76540"],
    ...     "Code APE": ["4399A", "4511Z", "4399A"],
    ...     "Nombre d'établissements 2021": ["1", "", "2"],
    ...     "Effectifs salariés 2021": ["3", "", "10"],
    ...     "Nombre d'établissements 2022": ["1", "2", "3"],
    ...     "Effectifs salariés 2022": ["2", "5", "12"],
    ... })
    >>> tables = cm.read_counts(wide)
    >>> tables.year
    2022
    >>> tables.establishments
    sector   43.99A  45.11Z
    unit_id
    76005         1       2
    76540         3       0
    >>> cm.read_counts(wide, year=2021).employees.loc["76540", "43.99A"]
    np.float64(10.0)
    """
    if isinstance(path_or_df, pd.DataFrame):
        df, source = path_or_df, "<DataFrame>"
    else:
        path = Path(path_or_df)
        df, source = _read_table(path, encoding), path.name
    info: dict[str, Any] = {"source": source, "rows": len(df)}
    is_cbp = establishments is None and set(_CBP_COLUMNS) <= {str(c).lower() for c in df.columns}
    if is_cbp:
        df = _cbp_long(df, info)
        normalize = False  # NAICS codes, kept as they are
    cols = list(df.columns)
    est_years = {int(m.group(1)): c for c in cols if (m := _URSSAF_EST.match(str(c)))}
    picked_year: int | None = None
    if est_years and establishments is None:
        emp_years = {int(m.group(1)): c for c in cols if (m := _URSSAF_EMP.match(str(c)))}
        picked_year = max(est_years) if year is None else int(year)
        if picked_year not in est_years:
            raise SchemaError(
                f"{source}: no column for year {picked_year}; available years are "
                f"{sorted(est_years)}. Pass year= one of them."
            )
        unit = unit or "Code commune"
        sector = sector or "Code APE"
        establishments = est_years[picked_year]
        employees = employees or emp_years.get(picked_year)
        info["years"] = sorted(est_years)
        info["format"] = "urssaf"
    else:
        if year is not None:
            raise SchemaError(
                f"{source}: year={year} was given but the table has no yearly columns "
                '("Nombre d\'établissements YYYY").'
            )
        lower = {str(c).lower(): c for c in cols}
        unit = unit or lower.get("unit") or lower.get(UNIT_ID)
        sector = sector or lower.get(SECTOR)
        establishments = establishments or lower.get(ESTABLISHMENTS)
        if employees is None:
            employees = lower.get("employees")
        info["format"] = "cbp" if is_cbp else "long"
    needed = {"unit": unit, "sector": sector, "establishments": establishments}
    missing = [k for k, v in needed.items() if v is None or v not in cols]
    if missing:
        raise SchemaError(
            f"{source}: cannot find the {', '.join(missing)} column(s) (looked for "
            f"{[needed[k] for k in missing]}); columns are {cols[:12]}. Pass unit=, sector=, "
            "establishments= (and employees=) with the right names."
        )
    if employees is not None and employees not in cols:
        raise SchemaError(f"{source}: employees column {employees!r} not found in {cols[:12]}.")
    units = df[unit].astype(str).str.strip()
    if info["format"] == "urssaf":
        from .validate import _commune_codes

        units, zero = _commune_codes(units)
        units = units.astype(object)
        info["zero_stripped_commune"] = int(zero.sum())
    sectors = df[sector].astype(str).str.strip()
    if normalize:
        sectors = _normalize_sectors(sectors)
    est, n_empty = _to_number(df[establishments], establishments, source)
    info["empty_cells_as_zero"] = {establishments: n_empty}
    data = {UNIT_ID: units.to_numpy(), SECTOR: sectors.to_numpy(), ESTABLISHMENTS: est}
    if employees is not None:
        emp, n_empty_emp = _to_number(df[employees], employees, source)
        info["empty_cells_as_zero"][employees] = n_empty_emp
        data["employees"] = emp
    long = pd.DataFrame(data)
    bad_unit = long[UNIT_ID].isin(["", "nan", "None"])
    bad_sector = long[SECTOR].isna() | long[SECTOR].astype(str).isin(["", "nan", "None"])
    dropped = {"missing_unit": int(bad_unit.sum()), "missing_sector": int(bad_sector.sum())}
    if bad_unit.any() or bad_sector.any():
        warnings.warn(
            f"{source}: dropped {dropped['missing_unit']} row(s) without a unit and "
            f"{dropped['missing_sector']} without a sector code.",
            ClustermapWarning,
            stacklevel=2,
        )
        long = long[~(bad_unit | bad_sector)]
    info["dropped"] = dropped
    info["duplicated_cells_summed"] = int(long.duplicated([UNIT_ID, SECTOR]).sum())

    def pivot(value: str, integer: bool) -> pd.DataFrame:
        tab = long.pivot_table(
            index=UNIT_ID, columns=SECTOR, values=value, aggfunc="sum", fill_value=0
        )
        tab = tab.sort_index().sort_index(axis=1)
        tab.columns.name = SECTOR
        tab.index.name = UNIT_ID
        if integer and np.allclose(tab.to_numpy(), np.round(tab.to_numpy())):
            tab = tab.round().astype(np.int64)
        return tab

    est_tab = pivot(ESTABLISHMENTS, integer=True)
    emp_tab = None
    if employees is not None:
        emp_tab = pivot("employees", integer=False).reindex_like(est_tab).astype(float)
    return CountTables(
        establishments=est_tab, employees=emp_tab, source=source, year=picked_year, info=info
    )


def header_columns(path: str | Path, encoding: str = "utf-8") -> list[str]:
    r"""The column names of a CSV file (plain or gzip), from its first line; [] otherwise.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_text("Code commune;Code APE;Nombre d'établissements 2022\n")
    >>> header_columns(p)
    ['Code commune', 'Code APE', "Nombre d'établissements 2022"]
    """
    path = Path(path)
    if path.suffix.lower() not in (".csv", ".txt", ".tsv", ".gz"):
        return []
    try:
        first = _first_line(path, encoding, errors="replace").lstrip("\ufeff").rstrip("\r\n")
    except (OSError, EOFError):
        return []
    return next(csv.reader([first], delimiter=_separator(first)), [])


def _first_line(path: Path, encoding: str, errors: str = "strict") -> str:
    """The first line of a text file, plain or gzip-compressed."""
    import gzip

    opener = gzip.open if sniff(path) == "gzip" else open
    with opener(path, "rt", encoding=encoding, errors=errors, newline="") as fh:
        return fh.readline(1 << 20)


def _separator(first_line: str) -> str:
    """The separator of a count file: ``;`` (URSSAF) when it outnumbers ``,``."""
    return ";" if first_line.count(";") > first_line.count(",") else ","


def looks_like_counts(columns: list[str]) -> bool:
    """True for the header of a count table :func:`read_counts` reads (URSSAF or long).

    A URSSAF file has ``Nombre d'établissements YYYY`` columns; a long table has unit,
    sector and establishments columns and no coordinates.

    Examples
    --------
    >>> looks_like_counts(["Code commune", "Code APE", "Nombre d'établissements 2022"])
    True
    >>> looks_like_counts(["siret", "activitePrincipaleEtablissement", "longitude"])
    False
    """
    if any(_URSSAF_EST.match(str(c)) for c in columns):
        return True
    lower = {str(c).lower() for c in columns}
    has_xy = bool(lower & {"x", "y", "longitude", "latitude", "lon", "lat", "geometry"})
    return not has_xy and bool(lower & {"unit", UNIT_ID}) and {SECTOR, ESTABLISHMENTS} <= lower


def read_count_panel(
    path_or_df: str | Path | pd.DataFrame,
    *,
    years: Any = None,
    encoding: str = "utf-8",
) -> dict[int, CountTables]:
    """Every year of a yearly count file (URSSAF commune × APE), read once.

    Parameters
    ----------
    path_or_df : str, pathlib.Path or pandas.DataFrame
        A wide yearly file (``Nombre d'établissements YYYY`` columns), as :func:`read_counts`.
    years : iterable of int, optional
        The years to keep (default: all in the file).
    encoding : str, default "utf-8"

    Returns
    -------
    dict of int to CountTables
        Year -> the tables :func:`read_counts` gives for that year (the same values).

    Examples
    --------
    >>> wide = pd.DataFrame({
    ...     "Code commune": ["76005", "76540"], "Code APE": ["4399A", "4399A"],
    ...     "Nombre d'établissements 2021": ["1", "2"], "Effectifs salariés 2021": ["3", "10"],
    ...     "Nombre d'établissements 2022": ["1", "3"], "Effectifs salariés 2022": ["2", "12"]})
    >>> panel = cm.read_count_panel(wide)
    >>> sorted(panel), int(panel[2022].establishments.loc["76540", "43.99A"])
    ([2021, 2022], 3)
    """
    if isinstance(path_or_df, pd.DataFrame):
        df, source = path_or_df, "<DataFrame>"
    else:
        path = Path(path_or_df)
        df, source = _read_table(path, encoding), path.name
    present = sorted(int(m.group(1)) for c in df.columns if (m := _URSSAF_EST.match(str(c))))
    if not present:
        raise SchemaError(
            f'{source}: no yearly columns ("Nombre d\'établissements YYYY"); read a one-date '
            "table with read_counts."
        )
    wanted = present if years is None else [int(y) for y in years]
    missing = sorted(set(wanted) - set(present))
    if missing:
        raise SchemaError(f"{source}: no columns for the years {missing}; years are {present}.")
    out = {}
    for year in wanted:
        tables = read_counts(df, year=year)
        tables.source = source
        tables.info["source"] = source
        out[year] = tables
    return out
