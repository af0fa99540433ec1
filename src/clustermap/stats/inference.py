"""Multiple-testing corrections for tables of p-values.

A units x sectors table of local p-values holds one test per cell. :func:`adjust_pvalues`
corrects them within a family: the units of one sector (``axis=0``, the usual choice, as in
de Castro & Singer 2006 and GeoDa's FDR), the sectors of one unit (``axis=1``) or the whole
table (``axis=None``). Missing p-values (NaN: islands, constant sectors) are excluded from
the family and stay NaN.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..core.options import keyword_only, take_legacy
from ..errors import SchemaError

__all__ = ["CORRECTIONS", "adjust_pvalues", "check_correction"]

#: The multiple-testing corrections, by their statsmodels names (None: no correction).
CORRECTIONS = ("fdr_bh", "fdr_by", "bonferroni", "holm", None)
_ALIASES = {"bh": "fdr_bh", "fdr": "fdr_bh", "by": "fdr_by", "none": None, "": None}


def check_correction(correction: str | None) -> str | None:
    """The canonical name of a correction (case and the aliases bh, fdr, by, none accepted).

    Examples
    --------
    >>> check_correction("BH"), check_correction("none")
    ('fdr_bh', None)
    """
    name = correction.lower() if isinstance(correction, str) else correction
    name = _ALIASES.get(name, name) if isinstance(name, str) else name
    if name not in CORRECTIONS:
        raise SchemaError(f"correction must be one of {CORRECTIONS}; {correction!r} was given.")
    return name


def _adjust_1d(p: np.ndarray, method: str | None) -> np.ndarray:
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    q = p[ok]
    m = q.size
    if m == 0:
        return out
    if method is None:
        out[ok] = q
    elif method == "bonferroni":
        out[ok] = np.minimum(1.0, q * m)
    elif method == "holm":
        # step-down: adjusted p_(r) = max_{s <= r} (m - s + 1) p_(s)
        order = np.argsort(q, kind="stable")
        stepped = np.maximum.accumulate((m - np.arange(m)) * q[order])
        adj = np.empty(m)
        adj[order] = np.minimum(stepped, 1.0)
        out[ok] = adj
    else:
        order = np.argsort(q, kind="stable")
        ranks = np.arange(1, m + 1, dtype=np.float64)
        scale = m / ranks
        if method == "fdr_by":
            scale = scale * np.sum(1.0 / ranks)
        stepped = q[order] * scale
        # step-up: adjusted p_(r) = min_{s >= r} p_(s) m / s
        stepped = np.minimum.accumulate(stepped[::-1])[::-1]
        adj = np.empty(m)
        adj[order] = np.minimum(1.0, stepped)
        out[ok] = adj
    return out


@keyword_only(1, ["correction", "axis"])
def adjust_pvalues(
    p: Any,
    *,
    correction: str | None = "fdr_bh",
    axis: int | None = 0,
    **legacy: Any,
) -> Any:
    r"""Adjust p-values for multiple testing, ignoring NaN.

    Parameters
    ----------
    p : array-like, pandas.Series or pandas.DataFrame
        p-values in [0, 1]; NaN marks "no test" (excluded from the family, returned as NaN).
    correction : {"fdr_bh", "fdr_by", "bonferroni", "holm", None}, default "fdr_bh"
        Benjamini-Hochberg (1995) false discovery rate; Benjamini-Yekutieli (2001), valid
        under any dependence; Bonferroni or Holm (1979) step-down (family-wise error);
        None returns the p-values unchanged. The same names everywhere in clustermap
        (``LocalResult.significant``, ``explore_local``). ``method=`` is the old spelling.
    axis : {0, 1, None}, default 0
        Family for 2-D input: ``0`` = each column separately (the units of one sector),
        ``1`` = each row, ``None`` = every cell of the table together. Ignored for 1-D
        input.

    Returns
    -------
    Same type and shape as ``p``
        Adjusted p-values: reject at level ``q`` where the adjusted value is ``<= q``.

    Raises
    ------
    SchemaError
        Values outside [0, 1], an unknown method or axis.

    Notes
    -----
    With m non-missing p-values sorted increasingly, BH gives
    :math:`\tilde p_{(r)} = \min_{s \ge r} \min(1, p_{(s)} m / s)`; BY multiplies by
    :math:`c(m) = \sum_{i=1}^m 1/i`; Bonferroni gives :math:`\min(1, m p)`; Holm gives
    :math:`\max_{s \le r} \min(1, (m - s + 1) p_{(s)})`.

    Permutation p-values have resolution ``1 / (P + 1)``: BH at level q over m units can
    reject only if at least ``m / ((P + 1) q)`` of them sit at the minimum p. With 35 000
    communes and 999 permutations that is 700 units: use ``adaptive=True`` in the local
    statistics to refine small p-values.

    Examples
    --------
    Benjamini and Hochberg's own example (1995, Table 1 discussion): 15 p-values, q = 0.05
    rejects the four smallest.

    >>> p = [0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459,
    ...      0.3240, 0.4262, 0.5719, 0.6528, 0.7590, 1.0]
    >>> adj = cm.adjust_pvalues(p)
    >>> int((adj <= 0.05).sum())
    4
    >>> cm.adjust_pvalues([0.01, np.nan, 0.04], correction="bonferroni")
    array([0.02,  nan, 0.08])
    >>> cm.adjust_pvalues([0.01, 0.04, 0.03], correction="holm")
    array([0.03, 0.06, 0.06])
    """
    old = take_legacy("adjust_pvalues", legacy, {"method": "correction"}, stacklevel=4)
    method = check_correction(old.get("", {}).get("correction", correction))
    if axis not in (0, 1, None):
        raise SchemaError(f"axis must be 0, 1 or None; {axis!r} was given.")
    is_frame = isinstance(p, pd.DataFrame)
    is_series = isinstance(p, pd.Series)
    arr = np.asarray(p, dtype=np.float64)
    finite = arr[~np.isnan(arr)]
    if finite.size and (finite.min() < 0 or finite.max() > 1):
        raise SchemaError(
            "p-values must lie in [0, 1] (NaN for missing); got values from "
            f"{finite.min():g} to {finite.max():g}."
        )
    if arr.ndim <= 1 or axis is None:
        out = _adjust_1d(arr.ravel(), method).reshape(arr.shape)
    elif arr.ndim == 2:
        out = np.empty_like(arr)
        if axis == 0:
            for c in range(arr.shape[1]):
                out[:, c] = _adjust_1d(arr[:, c], method)
        else:
            for r in range(arr.shape[0]):
                out[r, :] = _adjust_1d(arr[r, :], method)
    else:
        raise SchemaError(f"p must be 1-D or 2-D; got {arr.ndim} dimensions.")
    if is_frame:
        return pd.DataFrame(out, index=p.index, columns=p.columns)
    if is_series:
        return pd.Series(out, index=p.index, name=p.name)
    return out
