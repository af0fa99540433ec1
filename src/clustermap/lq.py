"""Location quotients with honest uncertainty, and readers for pre-aggregated tables.

The location quotient of sector *j* in unit *r* is
``LQ_rj = (x_rj / x_r·) / (x_·j / X) = O_rj / E_rj`` with ``E_rj = x_r· x_·j / X``
(methods.md §1, §3). Because an LQ is a standardised incidence ratio, the disease-mapping
toolbox applies: exact Poisson (Garwood) intervals and one-sided tests on establishment
counts, a dartboard (Herfindahl-aware) interval on employment, the range under the size-band
imputation rules, and empirical-Bayes shrinkage (Marshall 1991).

:func:`location_quotient` works on any units × sectors table: the output of
:func:`clustermap.aggregate`, or a pre-aggregated table read by :func:`read_counts` (URSSAF
commune × APE open data, US County Business Patterns, any long table).
"""

from __future__ import annotations

import csv
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import special, stats

from ._schema import ESTABLISHMENTS, LQ, LQ_HIGH, LQ_LOW, P_VALUE, SECTOR, UNIT_ID
from .errors import ClustermapWarning, DataFileError, SchemaError

__all__ = ["CountTables", "LQResult", "location_quotient", "read_counts"]

_INTERVALS = ("poisson", "dartboard", "range")


# ----------------------------------------------------------------------------- results
@dataclass
class LQResult:
    """Location quotients with an interval and a one-sided test, as units × sectors frames.

    Every frame has the index (units) and columns (sectors) of the input table, so
    ``res.lq.loc["74081", "25.62A"]`` reads like the input. :meth:`tidy` gives one row per
    unit × sector for filtering and plotting.

    Attributes
    ----------
    lq : pandas.DataFrame
        Point estimate O / E (NaN for units with no activity at all).
    lq_low, lq_high : pandas.DataFrame
        Bounds of the interval (see ``method``).
    p_value : pandas.DataFrame or None
        One-sided p-value of "LQ > 1" (None for ``method="range"``, which is not a test).
    observed, expected : pandas.DataFrame
        O (the input) and E = x_r· x_·j / X under the reference.
    lq_smoothed : pandas.DataFrame or None
        Empirical-Bayes LQ when ``smooth=True`` was asked.
    method : str
        ``"poisson"``, ``"dartboard"`` or ``"range"``.
    conf_level : float
        Coverage of the interval.

    Examples
    --------
    >>> counts = pd.DataFrame({"a": [30, 10], "b": [70, 90]}, index=["r1", "r2"])
    >>> res = cm.location_quotient(counts, interval="poisson")
    >>> res
    <LQResult: 2 units x 2 sectors, poisson 95% intervals>
    >>> res.tidy().round(3).iloc[0].to_dict()  # doctest: +NORMALIZE_WHITESPACE
    {'unit_id': 'r1', 'sector': 'a', 'observed': 30.0, 'expected': 20.0, 'lq': 1.5,
     'lq_low': 1.012, 'lq_high': 2.141, 'p_value': 0.022}
    """

    lq: pd.DataFrame
    lq_low: pd.DataFrame
    lq_high: pd.DataFrame
    p_value: pd.DataFrame | None
    observed: pd.DataFrame
    expected: pd.DataFrame
    method: str
    conf_level: float
    lq_smoothed: pd.DataFrame | None = None

    def __repr__(self) -> str:
        n, s = self.lq.shape
        return (
            f"<LQResult: {n} units x {s} sectors, {self.method} "
            f"{round(100 * self.conf_level)}% intervals>"
        )

    def significant(self, alpha: float = 0.05) -> pd.DataFrame:
        """Boolean units × sectors frame: one-sided p-value below ``alpha`` (no correction).

        Parameters
        ----------
        alpha : float
            Level of each test. For many units use
            :func:`clustermap.adjust_pvalues` on :attr:`p_value` first.

        Returns
        -------
        pandas.DataFrame
            True where the LQ is significantly above 1.

        Examples
        --------
        >>> counts = pd.DataFrame({"a": [30, 10], "b": [70, 90]}, index=["r1", "r2"])
        >>> cm.location_quotient(counts, interval="poisson").significant()["a"].tolist()
        [True, False]
        """
        if self.p_value is None:
            raise ValueError(
                f"method={self.method!r} gives a range, not a test; use interval='poisson' "
                "(counts) or 'dartboard' (employment) to get p-values."
            )
        return self.p_value < alpha

    def tidy(self) -> pd.DataFrame:
        """One row per unit × sector with every measure (long format).

        Returns
        -------
        pandas.DataFrame
            Columns ``unit_id``, ``sector``, ``observed``, ``expected``, ``lq``,
            ``lq_low``, ``lq_high``, ``p_value`` (and ``lq_smoothed`` when computed).

        Examples
        --------
        >>> counts = pd.DataFrame({"a": [30, 10], "b": [70, 90]}, index=["r1", "r2"])
        >>> cm.location_quotient(counts, interval="poisson").tidy().shape
        (4, 8)
        """
        frames = {
            "observed": self.observed,
            "expected": self.expected,
            LQ: self.lq,
            LQ_LOW: self.lq_low,
            LQ_HIGH: self.lq_high,
        }
        if self.p_value is not None:
            frames[P_VALUE] = self.p_value
        if self.lq_smoothed is not None:
            frames["lq_smoothed"] = self.lq_smoothed
        cols = {}
        for name, frame in frames.items():
            cols[name] = frame.to_numpy(dtype=float).ravel()
        out = pd.DataFrame(
            {
                UNIT_ID: np.repeat(self.lq.index.to_numpy(), self.lq.shape[1]),
                SECTOR: np.tile(self.lq.columns.to_numpy(), self.lq.shape[0]),
                **cols,
            }
        )
        return out


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


# ----------------------------------------------------------------------------- helpers
def _as_table(counts: Any, name: str) -> pd.DataFrame:
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


def _reference_shares(
    counts: pd.DataFrame, reference: pd.Series | pd.DataFrame | None
) -> tuple[np.ndarray, str]:
    """Sector shares x_·j / X of the reference (the table itself by default)."""
    if reference is None:
        col = counts.to_numpy(dtype=float).sum(axis=0)
        return col / col.sum(), "table"
    if isinstance(reference, pd.DataFrame):
        ref = _as_table(reference, "reference").sum(axis=0)
    elif isinstance(reference, pd.Series):
        ref = reference.astype(float)
        if ref.isna().any() or (ref < 0).any():
            raise SchemaError(
                "'reference' sector totals must be non-negative numbers without NaN; "
                f"check sector(s) {list(ref.index[ref.isna() | (ref < 0)])[:5]}."
            )
    else:
        raise SchemaError(
            "'reference' must be a Series of sector totals (index = sectors) or a units x "
            f"sectors DataFrame; got {type(reference).__name__}."
        )
    missing = [c for c in counts.columns if c not in ref.index]
    if missing:
        raise SchemaError(
            f"'reference' lacks {len(missing)} sector(s) of the table, e.g. {missing[:5]}. "
            "Give totals for every column of the table (0 is allowed)."
        )
    total = float(ref.sum())
    if total <= 0:
        raise SchemaError("'reference' sums to 0: it holds no activity at all.")
    return ref.reindex(counts.columns).to_numpy(dtype=float) / total, "reference"


def _expected(
    counts: pd.DataFrame,
    reference: pd.Series | pd.DataFrame | None,
    types: Mapping[Any, str] | pd.Series | None,
) -> np.ndarray:
    """E = x_r· × share_j, within-type when ``types`` is given (CMP ``lq_tf``)."""
    x = counts.to_numpy(dtype=float)
    if types is None:
        share, _ = _reference_shares(counts, reference)
        return x.sum(axis=1, keepdims=True) * share[None, :]
    types = pd.Series(types) if not isinstance(types, pd.Series) else types
    labels = types.reindex(counts.columns)
    if labels.isna().any():
        missing = list(counts.columns[labels.isna().to_numpy()])
        raise SchemaError(
            f"'types' gives no type for {len(missing)} sector(s), e.g. {missing[:5]}. Map every "
            "column to a type such as 'traded' or 'local'."
        )
    expected = np.empty_like(x)
    ref_table = reference
    for label in pd.unique(labels):
        cols = np.flatnonzero((labels == label).to_numpy())
        sub = counts.iloc[:, cols]
        if isinstance(ref_table, pd.Series):
            sub_ref: pd.Series | pd.DataFrame | None = ref_table.reindex(sub.columns)
        elif isinstance(ref_table, pd.DataFrame):
            sub_ref = ref_table.reindex(columns=sub.columns, fill_value=0)
        else:
            sub_ref = None
        share, _ = _reference_shares(sub, sub_ref)
        expected[:, cols] = x[:, cols].sum(axis=1, keepdims=True) * share[None, :]
    return expected


def _safe_ratio(o: np.ndarray, e: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = o / e
    out[~(e > 0)] = np.nan
    return out


def _garwood_interval(
    observed: np.ndarray, expected: np.ndarray, conf_level: float = 0.95
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact Poisson (Garwood) interval of O/E and the one-sided p-value P(X >= O | E)."""
    o = np.asarray(observed, dtype=float)
    e = np.asarray(expected, dtype=float)
    a = 1.0 - conf_level
    with np.errstate(divide="ignore", invalid="ignore"):
        low = np.where(o > 0, stats.chi2.ppf(a / 2, 2 * np.maximum(o, 1e-300)) / (2 * e), 0.0)
        high = stats.chi2.ppf(1 - a / 2, 2 * o + 2) / (2 * e)
        p = np.where(o > 0, special.gammainc(np.maximum(o, 1e-300), e), 1.0)
    bad = ~(e > 0)
    low[bad] = np.nan
    high[bad] = np.nan
    p[bad] = np.nan
    return low, high, p


def _eb_smooth(o: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Marshall (1991) global method-of-moments Poisson-Gamma shrinkage, per sector (column)."""
    out = np.full_like(o, np.nan, dtype=float)
    for j in range(o.shape[1]):
        ok = e[:, j] > 0
        if not ok.any():
            continue
        oj, ej = o[ok, j], e[ok, j]
        m = oj.sum() / ej.sum()
        r = oj / ej
        s2 = np.sum(ej * (r - m) ** 2) / ej.sum()
        a = max(s2 - m / ej.mean(), 0.0)
        if a == 0.0:
            out[ok, j] = m
        else:
            c = a / (a + m / ej)
            out[ok, j] = m + c * (r - m)
    return out


# ----------------------------------------------------------------------------- public API
def location_quotient(
    counts: pd.DataFrame,
    *,
    reference: pd.Series | pd.DataFrame | None = None,
    types: Mapping[Any, str] | pd.Series | None = None,
    interval: Literal["poisson", "dartboard", "range"] | None = None,
    conf_level: float = 0.95,
    herfindahl: pd.Series | Mapping[Any, float] | None = None,
    low: pd.DataFrame | None = None,
    high: pd.DataFrame | None = None,
    smooth: bool = False,
) -> pd.DataFrame | LQResult:
    """Location quotients of a units × sectors table, optionally with intervals and tests.

    ``LQ_rj = (x_rj / x_r·) / (x_·j / X)`` (methods.md §3.1): above 1 the unit holds more
    of sector *j* than its share of all activity. Works on establishment counts or on
    employment, from a registry (:func:`clustermap.aggregate`) or a pre-aggregated file
    (:func:`read_counts`).

    Parameters
    ----------
    counts : pandas.DataFrame
        Units × sectors, non-negative, no NaN (units in the index, one column per sector).
    reference : pandas.Series or pandas.DataFrame, optional
        Denominators from elsewhere, e.g. the nation when the table covers one région: a
        Series of sector totals (its sum is taken as X, so give every sector) or a units ×
        sectors table whose column sums are used. Default: the table itself.
    types : mapping or pandas.Series, optional
        Sector -> type (e.g. ``"traded"`` / ``"local"``). The LQ is then computed *within
        type*, as the U.S. Cluster Mapping Project does for ``lq_tf`` (methods.md §3.1,
        CMP ``cluster_calcs_mapper.js``): both the unit and the reference denominators are
        restricted to sectors of the same type.
    interval : {"poisson", "dartboard", "range"}, optional
        ``None`` (default) returns just the LQ DataFrame. Otherwise an :class:`LQResult`:

        - ``"poisson"``: exact Garwood interval of O/E, ``chi2(a/2, 2O)/(2E)`` to
          ``chi2(1-a/2, 2O+2)/(2E)``, and the exact one-sided p-value ``P(X >= O)`` with
          X ~ Poisson(E) (methods.md §3.2). For **establishment counts**; integer values
          are required. E is treated as fixed (it contains O through the margins, so the
          interval is approximate for a unit holding a large part of a sector).
        - ``"dartboard"``: for **employment**, where a few large establishments hold most
          jobs. Under the Ellison–Glaeser dartboard, ``Var(LQ) = H_j (1 - a_r) / a_r`` with
          H_j the establishment Herfindahl of sector *j* and a_r the unit's share of all
          activity (Guimarães, Figueiredo & Woodward 2009; methods.md §3.2). Normal
          interval clipped at 0 and one-sided p of ``z = (LQ - 1) / sd``. Needs
          ``herfindahl``.
        - ``"range"``: the range of the LQ between the size-band imputation rules: ``low``
          and ``high`` employment tables (``aggregate(..., measure="employees_low")`` and
          ``"employees_high"``); ``counts`` is the central (midpoint) table.
    conf_level : float, default 0.95
        Coverage of the intervals.
    herfindahl : pandas.Series or mapping, optional
        Sector -> plant Herfindahl H_j = Σ_k z_k² (z_k: employment share of establishment k
        in its sector), for ``interval="dartboard"``.
    low, high : pandas.DataFrame, optional
        Tables under the low and high imputation rules, for ``interval="range"``.
    smooth : bool, default False
        Also compute the empirical-Bayes LQ (Poisson-Gamma, global method of moments per
        sector, Marshall 1991; methods.md §3.3): ``m + C_r (LQ_r - m)`` with
        ``C_r = A / (A + m / E_r)``. Small units are pulled towards the sector mean. With
        ``interval=None`` the smoothed LQ is returned instead of the raw LQ.

    Returns
    -------
    pandas.DataFrame or LQResult
        Same index and columns as ``counts``. Units with no activity at all get NaN (with a
        :class:`~clustermap.errors.ClustermapWarning`), never inf.

    Raises
    ------
    SchemaError
        Non-numeric, negative or missing values; a reference or type map that does not cover
        every sector; non-integer counts with ``interval="poisson"``.

    See Also
    --------
    read_counts : read URSSAF or long pre-aggregated tables.
    clustermap.strong_cluster_flags, clustermap.star_rating : scores built on LQs.

    Examples
    --------
    Two communes, two sectors. Commune r1 has 30 of its 100 establishments in sector a,
    against 40 of 200 overall, so LQ = 0.30 / 0.20 = 1.5:

    >>> counts = pd.DataFrame({"a": [30, 10], "b": [70, 90]}, index=["r1", "r2"])
    >>> cm.location_quotient(counts)
          a      b
    r1  1.5  0.875
    r2  0.5  1.125

    With exact Poisson intervals and p-values:

    >>> res = cm.location_quotient(counts, interval="poisson")
    >>> float(res.lq_low.loc["r1", "a"]), float(res.p_value.loc["r1", "a"])
    (1.0120..., 0.0218...)

    Against a national reference (sector totals):

    >>> nation = pd.Series({"a": 1_000, "b": 9_000})
    >>> cm.location_quotient(counts, reference=nation).loc["r1", "a"]
    np.float64(3.0)
    """
    counts = _as_table(counts, "counts")
    if not 0 < conf_level < 1:
        raise ValueError(f"conf_level must be between 0 and 1 (e.g. 0.95); got {conf_level!r}.")
    if interval is not None and interval not in _INTERVALS:
        raise ValueError(f"interval must be one of {_INTERVALS} or None; got {interval!r}.")
    o = counts.to_numpy(dtype=float)
    row_tot = o.sum(axis=1)
    empty = row_tot <= 0
    if empty.any():
        names = list(counts.index[empty][:5])
        warnings.warn(
            f"{int(empty.sum())} unit(s) have no activity at all (e.g. {names}); their "
            "location quotient is undefined and set to NaN.",
            ClustermapWarning,
            stacklevel=2,
        )
    e = _expected(counts, reference, types)
    lq = _safe_ratio(o, e)
    smoothed = _eb_smooth(o, e) if smooth else None

    def frame(values: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(values, index=counts.index, columns=counts.columns)

    if interval is None:
        return frame(smoothed if smoothed is not None else lq)

    if interval == "poisson":
        if not np.allclose(o, np.round(o)):
            raise SchemaError(
                "interval='poisson' needs integer counts (establishments); 'counts' holds "
                "non-integer values. For employment use interval='dartboard' (with "
                "herfindahl=) or interval='range' (with low= and high=)."
            )
        lo, hi, p = _garwood_interval(o, e, conf_level)
    elif interval == "dartboard":
        if herfindahl is None:
            raise SchemaError(
                "interval='dartboard' needs herfindahl=, a Series sector -> establishment "
                "Herfindahl of employment (sum of squared employment shares)."
            )
        h = pd.Series(herfindahl, dtype=float).reindex(counts.columns)
        if h.isna().any():
            raise SchemaError(
                f"herfindahl lacks sector(s) {list(counts.columns[h.isna().to_numpy()])[:5]}."
            )
        a_r = row_tot / row_tot.sum()
        with np.errstate(divide="ignore", invalid="ignore"):
            sd = np.sqrt(h.to_numpy()[None, :] * ((1 - a_r) / a_r)[:, None])
            z = (lq - 1.0) / sd
        q = stats.norm.ppf(1 - (1 - conf_level) / 2)
        lo = np.maximum(lq - q * sd, 0.0)
        hi = lq + q * sd
        p = stats.norm.sf(z)
    else:  # range
        if low is None or high is None:
            raise SchemaError(
                "interval='range' needs low= and high=, the tables under the low and high "
                "size-band rules (aggregate(..., measure='employees_low'/'employees_high'))."
            )
        tabs = []
        for name, tab in (("low", low), ("high", high)):
            tab = _as_table(tab, name)
            if not (tab.index.equals(counts.index) and tab.columns.equals(counts.columns)):
                raise SchemaError(
                    f"{name!r} must have the same units (index) and sectors (columns) as "
                    "'counts'; align it with .reindex_like(counts, fill_value=0)."
                )
            tabs.append(_safe_ratio(tab.to_numpy(dtype=float), _expected(tab, reference, types)))
        stack = np.stack([lq, *tabs])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            lo, hi = np.nanmin(stack, axis=0), np.nanmax(stack, axis=0)
        p = None
    nan = np.isnan(lq)
    lo = np.where(nan, np.nan, lo)
    hi = np.where(nan, np.nan, hi)
    return LQResult(
        lq=frame(lq),
        lq_low=frame(lo),
        lq_high=frame(hi),
        p_value=None if p is None else frame(np.where(nan, np.nan, p)),
        observed=frame(o),
        expected=frame(e),
        method=interval,
        conf_level=conf_level,
        lq_smoothed=None if smoothed is None else frame(smoothed),
    )


# ----------------------------------------------------------------------------- reading
_URSSAF_EST = re.compile(r"^Nombre d.établissements (\d{4})$")
_URSSAF_EMP = re.compile(r"^Effectifs salariés (\d{4})$")


def _normalize_sectors(codes: pd.Series) -> pd.Series:
    """Canonical NAF form (``4399A`` -> ``43.99A``) via clustermap.taxonomy when available."""
    try:
        from .taxonomy import normalize_codes
    except ImportError:  # taxonomy not there: keep a minimal, documented rule
        s = codes.astype(str).str.strip().str.upper()
        return s.where(~s.str.fullmatch(r"\d{4}[A-Z]"), s.str.slice(0, 2) + "." + s.str.slice(2))
    return pd.Series(np.asarray(normalize_codes(codes)), index=codes.index)


def _read_table(path: Path, encoding: str = "utf-8") -> pd.DataFrame:
    if not path.exists():
        raise FileNotFoundError(f"Counts file {str(path)!r} does not exist.")
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

    with open(path, "rb") as fh:
        head = fh.read(2)
    compression = "gzip" if head == b"\x1f\x8b" else None
    opener = gzip.open if compression else open
    try:
        with opener(path, "rt", encoding=encoding, newline="") as fh:
            first = fh.readline()
        sep = ";" if first.count(";") > first.count(",") else ","
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
        info["format"] = "long"
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
        from .io import _commune_codes

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
