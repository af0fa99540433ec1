"""Scores users already know: U.S. Cluster Mapping strong clusters and ECO stars.

Both work on a *long* table with one row per region × sector (or cluster category), at any
zoning: communes, EPCI, zones d'emploi, départements, or the cluster regions found by
:func:`clustermap.detect_clusters`. Percentiles are taken **within each sector** across the
regions of the comparison set (``reference``, by default the table itself).

From a wide units × sectors table, build the long table with, for example::

    long = pd.DataFrame({"lq": lq.stack(), "employees": emp.stack(),
                         "establishments": est.stack()}).reset_index()
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..core.schema import EMPLOYEES, ESTABLISHMENTS, LQ, SECTOR
from ..errors import SchemaError

__all__ = ["star_rating", "strong_cluster_flags"]


def _check(table: Any, columns: dict[str, str], name: str) -> pd.DataFrame:
    if not isinstance(table, pd.DataFrame):
        raise SchemaError(
            f"{name!r} must be a long pandas DataFrame with one row per region x sector; got "
            f"{type(table).__name__}."
        )
    missing = [f"{role}={col!r}" for role, col in columns.items() if col not in table.columns]
    if missing:
        raise SchemaError(
            f"{name!r} lacks column(s) {', '.join(missing)}; it has {list(table.columns)[:12]}. "
            "Pass the right column names as keyword arguments."
        )
    for role, col in columns.items():
        if role != "by" and not pd.api.types.is_numeric_dtype(table[col]):
            raise SchemaError(f"{name!r}: column {col!r} ({role}) must be numeric.")
    return table


def _quantile(values: np.ndarray, q: float) -> float:
    """``d3.quantile`` on the values (R-7 linear interpolation); NaN when empty."""
    values = values[~np.isnan(values)]
    if values.size == 0:
        return np.nan
    return float(np.quantile(values, q, method="linear"))


def strong_cluster_flags(
    table: pd.DataFrame,
    *,
    by: str = SECTOR,
    lq: str = LQ,
    employees: str = EMPLOYEES,
    establishments: str = ESTABLISHMENTS,
    reference: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """U.S. Cluster Mapping Project strong-cluster flags, reproducing the CMP code.

    Rule of ``clustermapping/cmp`` ``data/processing/cluster_calcs_reducer.js``
    (docs/methods.md, "Scores"). Within each group (``by``: the sector or cluster category),
    take the regions of the comparison set **with employment > 0**, and their quantiles with
    ``d3.quantile`` (R-7 linear interpolation, ``numpy.quantile(method="linear")``):
    P25 of employment and establishments, P25, P50, P75 and P90 of the LQ. Then::

        qualifying   = LQ >  P25_lq  and emp > P25_emp and est > P25_est
        significant  = LQ >  P50_lq  and emp > P25_emp and est > P25_est
        strong       = LQ >= P75_lq  and emp > P25_emp and est > P25_est and LQ >= 1
        strong_p90   = LQ >= P90_lq  and emp > P25_emp and est > P25_est and LQ >= 1

    The mix of strict and non-strict comparisons is CMP's. CMP feeds the within-type LQ
    (``lq_tf``, traded employment only; see ``location_quotient(..., types=...)``) and
    traded clusters only; which rows to pass is the caller's choice.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per region × group, with the columns below.
    by : str, default "sector"
        Column holding the group (sector code or cluster category).
    lq, employees, establishments : str
        Column names of the LQ, employment and establishment count.
    reference : pandas.DataFrame, optional
        The comparison regions (same columns) whose quantiles are used, e.g. the analysis
        units when flagging detected cluster regions (CMP compares its custom regions with
        the economic-area quantiles). Default: ``table`` itself.

    Returns
    -------
    pandas.DataFrame
        Same index as ``table``; boolean columns ``qualifying``, ``significant``,
        ``strong_cluster``, ``strong_cluster_p90`` and the thresholds used (``p25_emp``,
        ``p25_est``, ``p25_lq``, ``p50_lq``, ``p75_lq``, ``p90_lq``). Groups absent from the
        reference get False flags and NaN thresholds.

    Examples
    --------
    Five regions of one cluster; the quantiles of LQ are P25 = 0.5, P50 = 1, P75 = 1.5:

    >>> t = pd.DataFrame({"sector": ["c"] * 5,
    ...                   "lq": [0.0, 0.5, 1.0, 1.5, 3.0],
    ...                   "employees": [10, 20, 30, 40, 50],
    ...                   "establishments": [1, 2, 3, 4, 5]})
    >>> flags = cm.strong_cluster_flags(t)
    >>> flags[["qualifying", "significant", "strong_cluster", "strong_cluster_p90"]]
       qualifying  significant  strong_cluster  strong_cluster_p90
    0       False        False           False               False
    1       False        False           False               False
    2        True        False           False               False
    3        True         True            True               False
    4        True         True            True                True
    """
    cols = {"by": by, "lq": lq, "employees": employees, "establishments": establishments}
    table = _check(table, cols, "table")
    ref = table if reference is None else _check(reference, cols, "reference")
    ref = ref[ref[employees].to_numpy(dtype=float) > 0]
    rows = []
    for key, grp in ref.groupby(by, sort=False, observed=True):
        rows.append(
            {
                by: key,
                "p25_emp": _quantile(grp[employees].to_numpy(dtype=float), 0.25),
                "p25_est": _quantile(grp[establishments].to_numpy(dtype=float), 0.25),
                "p25_lq": _quantile(grp[lq].to_numpy(dtype=float), 0.25),
                "p50_lq": _quantile(grp[lq].to_numpy(dtype=float), 0.50),
                "p75_lq": _quantile(grp[lq].to_numpy(dtype=float), 0.75),
                "p90_lq": _quantile(grp[lq].to_numpy(dtype=float), 0.90),
            }
        )
    thr_cols = ["p25_emp", "p25_est", "p25_lq", "p50_lq", "p75_lq", "p90_lq"]
    thresholds = pd.DataFrame(rows, columns=[by, *thr_cols]).set_index(by)
    thr = thresholds.reindex(table[by].to_numpy())
    thr.index = table.index
    x_lq = table[lq].to_numpy(dtype=float)
    x_emp = table[employees].to_numpy(dtype=float)
    x_est = table[establishments].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        size = (x_emp > thr["p25_emp"].to_numpy()) & (x_est > thr["p25_est"].to_numpy())
        out = pd.DataFrame(
            {
                "qualifying": (x_lq > thr["p25_lq"].to_numpy()) & size,
                "significant": (x_lq > thr["p50_lq"].to_numpy()) & size,
                "strong_cluster": (x_lq >= thr["p75_lq"].to_numpy()) & size & (x_lq >= 1),
                "strong_cluster_p90": (x_lq >= thr["p90_lq"].to_numpy()) & size & (x_lq >= 1),
            },
            index=table.index,
        )
    return pd.concat([out, thr[thr_cols]], axis=1)


def star_rating(
    table: pd.DataFrame,
    *,
    by: str = SECTOR,
    employees: str = EMPLOYEES,
    lq: str = LQ,
    focus: str = "focus",
    size_q: float = 0.9,
    lq_min: float = 2.0,
    focus_q: float = 0.9,
    reference: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """European Cluster Observatory stars (0-3): size, specialisation, focus.

    One star per criterion met (docs/methods.md, "Scores"; clusterobservatory.eu):

    - **size**: employment in the top 10 % of the regional clusters of the same category:
      ``emp >= P90`` of the category's employment across the comparison regions;
    - **specialisation**: ``LQ >= 2``;
    - **focus**: the cluster's share of the region's employment (``focus``) in the top
      10 % of the category: ``focus >= P90``.

    Percentiles use R-7 linear interpolation over the regions of the category with
    employment > 0 (as for :func:`strong_cluster_flags`); "top 10 %" is read as "at or above
    the 90th percentile". ECO worked on NUTS-2 regions; at finer zonings the same rule is a
    relative ranking among the units given.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per region × category.
    by : str, default "sector"
        Column of the category.
    employees, lq, focus : str
        Column names. ``focus`` = cluster employment / total employment of the region.
    size_q, focus_q : float, default 0.9
        Quantiles for the size and focus stars.
    lq_min : float, default 2.0
        LQ threshold of the specialisation star.
    reference : pandas.DataFrame, optional
        Comparison regions for the percentiles (default: ``table``).

    Returns
    -------
    pandas.DataFrame
        Same index as ``table``: boolean ``size_star``, ``specialisation_star``,
        ``focus_star`` and integer ``stars``.

    Examples
    --------
    >>> t = pd.DataFrame({"sector": ["c"] * 4,
    ...                   "employees": [100, 200, 300, 1000],
    ...                   "lq": [0.8, 2.0, 1.9, 3.5],
    ...                   "focus": [0.01, 0.05, 0.02, 0.04]})
    >>> cm.star_rating(t)
       size_star  specialisation_star  focus_star  stars
    0      False                False       False      0
    1      False                 True        True      2
    2      False                False       False      0
    3       True                 True       False      2
    """
    cols = {"by": by, "employees": employees, "lq": lq, "focus": focus}
    table = _check(table, cols, "table")
    for name, q in (("size_q", size_q), ("focus_q", focus_q)):
        if not 0 <= q <= 1:
            raise ValueError(f"{name} must be a quantile between 0 and 1; got {q!r}.")
    ref = table if reference is None else _check(reference, cols, "reference")
    ref = ref[ref[employees].to_numpy(dtype=float) > 0]
    rows = {
        key: (
            _quantile(grp[employees].to_numpy(dtype=float), size_q),
            _quantile(grp[focus].to_numpy(dtype=float), focus_q),
        )
        for key, grp in ref.groupby(by, sort=False, observed=True)
    }
    thr = pd.DataFrame.from_dict(rows, orient="index", columns=["size", "focus"])
    thr = thr.reindex(table[by].to_numpy())
    emp = table[employees].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        size_star = (emp >= thr["size"].to_numpy()) & (emp > 0)
        spec_star = table[lq].to_numpy(dtype=float) >= lq_min
        focus_star = table[focus].to_numpy(dtype=float) >= thr["focus"].to_numpy()
    out = pd.DataFrame(
        {
            "size_star": size_star,
            "specialisation_star": spec_star,
            "focus_star": focus_star,
        },
        index=table.index,
    )
    out["stars"] = out.sum(axis=1).astype(np.int64)
    return out
