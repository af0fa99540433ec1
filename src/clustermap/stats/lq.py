"""Location quotients with honest uncertainty, and readers for pre-aggregated tables.

The location quotient of sector *j* in unit *r* is
``LQ_rj = (x_rj / x_r·) / (x_·j / X) = O_rj / E_rj`` with ``E_rj = x_r· x_·j / X``
(docs/methods.md, "Location quotients"). Because an LQ is a standardised incidence ratio,
the disease-mapping toolbox applies: exact Poisson (Garwood) intervals and one-sided tests
on establishment counts, a dartboard (Herfindahl-aware) interval on employment, the range
under the size-band imputation rules, and empirical-Bayes shrinkage (Marshall 1991).

:func:`location_quotient` works on any units × sectors table: the output of
:func:`clustermap.aggregate`, or a pre-aggregated table read by :func:`read_counts` (URSSAF
commune × APE open data, US County Business Patterns, any long table).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import special, stats

from ..core.schema import LQ, LQ_HIGH, LQ_LOW, P_VALUE, SECTOR, UNIT_ID
from ..errors import ClustermapWarning, SchemaError
from ..table import as_table

__all__ = ["LQResult", "eb_smooth", "garwood_interval", "location_quotient"]

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


# ----------------------------------------------------------------------------- helpers
def _reference_shares(
    counts: pd.DataFrame, reference: pd.Series | pd.DataFrame | None
) -> tuple[np.ndarray, str]:
    """Sector shares x_·j / X of the reference (the table itself by default)."""
    if reference is None:
        col = counts.to_numpy(dtype=float).sum(axis=0)
        return col / col.sum(), "table"
    if isinstance(reference, pd.DataFrame):
        ref = as_table(reference, "reference").sum(axis=0)
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


def garwood_interval(
    observed: np.ndarray, expected: np.ndarray, conf_level: float = 0.95
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact Poisson (Garwood) interval of O/E and the one-sided p-value P(X >= O | E).

    Parameters
    ----------
    observed, expected : numpy.ndarray
        Observed counts O and their expectations E (same shape); E <= 0 gives NaN.
    conf_level : float, default 0.95
        Coverage of the two-sided interval.

    Returns
    -------
    low, high, p_value : numpy.ndarray
        ``chi2(a/2; 2O) / 2E`` (0 when O = 0), ``chi2(1 - a/2; 2O + 2) / 2E`` and
        ``P(X >= O)`` for X ~ Poisson(E).

    Examples
    --------
    Two establishments where one is expected: the 95 % interval of the LQ is 0.24 to 7.2 and
    P(X >= 2) = 1 - 2/e = 0.264.

    >>> low, high, p = garwood_interval(np.array([2.0]), np.array([1.0]))
    >>> float(low[0].round(4)), float(high[0].round(4)), float(p[0].round(4))
    (0.2422, 7.2247, 0.2642)
    """
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


def eb_smooth(o: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Empirical-Bayes LQs: Marshall's (1991) global method-of-moments shrinkage per column.

    Each ratio r = O/E is pulled toward the column's overall ratio m = sum O / sum E by
    c = A / (A + m / E), with A = max(s2 - m / mean(E), 0) and s2 the E-weighted variance of
    the ratios: units with a small E move most.

    Parameters
    ----------
    o, e : numpy.ndarray
        Observed and expected counts, units × sectors; cells with E <= 0 give NaN.

    Returns
    -------
    numpy.ndarray
        The smoothed ratios, same shape.

    Examples
    --------
    m = 16 / 8 = 2, s2 = 26 / 8, A = 3.25 - 2 / 2 = 2.25; the first unit (O = 0, E = 1) moves
    to 2 + 2.25 / 4.25 × (0 - 2) = 0.941:

    >>> o = np.array([[0.0], [2.0], [10.0], [4.0]])
    >>> e = np.array([[1.0], [1.0], [2.0], [4.0]])
    >>> eb_smooth(o, e).ravel().round(3).tolist()
    [0.941, 2.0, 4.077, 1.182]
    """
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

    ``LQ_rj = (x_rj / x_r·) / (x_·j / X)`` (docs/methods.md, "Location quotients"): above
    1 the unit holds more of sector *j* than its share of all activity. Works on establishment
    counts or on employment, from a registry (:func:`clustermap.aggregate`) or a pre-aggregated file
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
        type*, as the U.S. Cluster Mapping Project does for ``lq_tf`` (CMP
        ``cluster_calcs_mapper.js``): both the unit and the reference denominators are
        restricted to sectors of the same type.
    interval : {"poisson", "dartboard", "range"}, optional
        ``None`` (default) returns just the LQ DataFrame. Otherwise an :class:`LQResult`:

        - ``"poisson"``: exact Garwood interval of O/E, ``chi2(a/2, 2O)/(2E)`` to
          ``chi2(1-a/2, 2O+2)/(2E)``, and the exact one-sided p-value ``P(X >= O)`` with
          X ~ Poisson(E) (docs/methods.md, "Intervals"). For **establishment counts**;
          integer values are required. E is treated as fixed (it contains O through the
          margins, so the interval is approximate for a unit holding a large part of a sector).
        - ``"dartboard"``: for **employment**, where a few large establishments hold most
          jobs. Under the Ellison–Glaeser dartboard, ``Var(LQ) = H_j (1 - a_r) / a_r`` with
          H_j the establishment Herfindahl of sector *j* and a_r the unit's share of all
          activity (Guimarães, Figueiredo & Woodward 2009). Normal
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
        sector, Marshall 1991; docs/methods.md, "Empirical Bayes"): ``m + C_r (LQ_r - m)`` with
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
    counts = as_table(counts, "counts")
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
    smoothed = eb_smooth(o, e) if smooth else None

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
        lo, hi, p = garwood_interval(o, e, conf_level)
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
            tab = as_table(tab, name)
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
