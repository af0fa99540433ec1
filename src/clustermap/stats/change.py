"""Change between two dates: growth, LQ change and the shift-share decomposition.

The shift-share decomposition (Dunn 1960; as the U.S. Cluster Mapping Project reports it)
splits the change of a unit × sector count between two dates into three parts that add up
exactly to the observed change:

- **national growth** ``NS = x0 g``: what the cell would have gained had it grown like the
  whole economy (``g`` = total growth rate, all sectors and units);
- **industry mix** ``IM = x0 (g_s - g)``: what the sector's own national growth adds;
- **regional share** ``RS = (x1 - x0) - x0 g_s``: the rest, the unit's own performance in that
  sector against the sector nationally.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["shift_share"]


def shift_share(before: pd.DataFrame, after: pd.DataFrame, *, years: float | None = None):
    """Growth and shift-share decomposition of every unit × sector cell between two tables.

    Parameters
    ----------
    before, after : pandas.DataFrame
        Units × sectors counts (establishments or jobs) at the two dates; units and sectors
        missing from one table count 0 there.
    years : float, optional
        Years between the dates, for the compound annual growth rate.

    Returns
    -------
    pandas.DataFrame
        One row per cell with a count at either date: ``unit_id``, ``sector``, ``before``,
        ``after``, ``change``, ``growth`` (relative; NaN from 0), ``cagr`` (with ``years``),
        ``lq_before``, ``lq_after``, ``lq_change``, ``national_growth``, ``industry_mix``,
        ``regional_share`` (the three sum to ``change`` exactly, up to rounding).

    Examples
    --------
    Two units, two sectors; the economy grows by 50 %, sector "a" doubles:

    >>> t0 = pd.DataFrame({"a": [10, 10], "b": [20, 20]}, index=["u", "v"])
    >>> t1 = pd.DataFrame({"a": [30, 10], "b": [20, 30]}, index=["u", "v"])
    >>> out = shift_share(t0, t1).set_index(["unit_id", "sector"])
    >>> parts = ["change", "national_growth", "industry_mix", "regional_share"]
    >>> out.loc[("u", "a"), parts].tolist()
    [20.0, 5.0, 5.0, 10.0]
    """
    units = before.index.astype(str).union(after.index.astype(str))
    sectors = before.columns.astype(str).union(after.columns.astype(str))

    def align(t: pd.DataFrame) -> pd.DataFrame:
        t = t.copy()
        t.index, t.columns = t.index.astype(str), t.columns.astype(str)
        t = t.groupby(level=0).sum()
        return t.reindex(index=units, columns=sectors, fill_value=0).astype(float)

    x0, x1 = align(before).to_numpy(), align(after).to_numpy()
    total0, total1 = x0.sum(), x1.sum()
    if total0 <= 0:
        raise ValueError("The first table holds nothing: growth rates need a positive total.")
    g = total1 / total0 - 1.0
    s0, s1 = x0.sum(axis=0), x1.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        g_s = np.where(s0 > 0, s1 / s0 - 1.0, np.nan)
        lq0 = x0 / (x0.sum(axis=1, keepdims=True) * s0 / total0)
        lq1 = x1 / (x1.sum(axis=1, keepdims=True) * s1 / total1)
        growth = np.where(x0 > 0, x1 / x0 - 1.0, np.nan)
    rows, cols = np.nonzero((x0 > 0) | (x1 > 0))
    a, b = x0[rows, cols], x1[rows, cols]
    gs = np.nan_to_num(g_s[cols])  # a sector absent at the first date: its growth is all RS
    out = pd.DataFrame(
        {
            "unit_id": units.to_numpy()[rows],
            "sector": sectors.to_numpy()[cols],
            "before": a,
            "after": b,
            "change": b - a,
            "growth": growth[rows, cols],
            "lq_before": lq0[rows, cols],
            "lq_after": lq1[rows, cols],
        }
    )
    if years is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            out["cagr"] = np.where(a > 0, (b / a) ** (1.0 / float(years)) - 1.0, np.nan)
    out["lq_change"] = out["lq_after"] - out["lq_before"]
    out["national_growth"] = a * g
    out["industry_mix"] = a * (gs - g)
    out["regional_share"] = (b - a) - a * gs
    return out
