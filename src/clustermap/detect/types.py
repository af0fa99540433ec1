"""Traded and local sectors: which clusters lead the list.

The U.S. Cluster Mapping Project and the European Cluster Observatory rank *traded*
clusters (industries that sell beyond their region and so concentrate in a few places) and
report *local* ones apart (industries present everywhere in proportion to population:
bakeries, schools, building trades). A sector's type comes from, in this order:

1. the user's own mapping (``DetectionOptions(sector_types={...})``);
2. for NAF (and NAICS) codes and the shipped cluster categories, the category's type
   (:func:`clustermap.sector_types`, U.S. benchmark definitions with French overrides); a
   group of a user mapping of NAF codes takes the type most of its codes have;
3. otherwise the data (:func:`dissimilarity_types`): as Porter (2003) classified industries
   by how unevenly they spread across regions, a sector is traded when the share of its
   establishments that would have to move for it to be spread like all activity across the
   comparison zoning (the dissimilarity index, corrected for the part expected from
   sampling noise alone) is at least 0.2.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["TRADED_DISSIMILARITY", "dissimilarity_types", "resolve_types"]

#: excess dissimilarity from which a sector counts as traded (docs/methods.md)
TRADED_DISSIMILARITY = 0.2


def dissimilarity_types(x: Any, *, threshold: float = TRADED_DISSIMILARITY) -> pd.DataFrame:
    """Traded / local type of every sector from its spread across regions.

    ``D_s = 1/2 sum_r |x_rs / n_s - n_r / N|`` is the share of the sector's establishments
    that would have to move for the sector to be spread like all activity. A small sector
    has a large ``D`` by chance alone: its expectation under that spread,
    ``1/2 sum_r sqrt(2 p_r (1 - p_r) / (pi n_s))`` (normal approximation, ``p_r = n_r /
    N``), is subtracted. A sector is traded when the excess is at least ``threshold``.

    Parameters
    ----------
    x : scipy.sparse matrix or array-like
        Establishments, regions × sectors (a comparison zoning such as départements).
    threshold : float, default 0.2

    Returns
    -------
    pandas.DataFrame
        ``dissimilarity``, ``expected``, ``excess`` and ``type`` per sector (column of x).

    Examples
    --------
    Three regions of 100, 100 and 800 establishments: sector 0 follows all activity, sector
    1 sits in the first region only:

    >>> x = np.array([[10, 60, 30], [10, 0, 90], [80, 0, 720]])
    >>> out = dissimilarity_types(x)
    >>> out["dissimilarity"].round(2).tolist(), out["type"].tolist()
    ([0.0, 0.9, 0.1], ['local', 'traded', 'local'])
    """
    x = sp.csc_matrix(x, dtype=float)
    n_r = np.asarray(x.sum(axis=1)).ravel()
    n_s = np.asarray(x.sum(axis=0)).ravel()
    total = float(n_r.sum())
    p = n_r / total if total > 0 else n_r
    d = np.zeros(x.shape[1])
    for s in range(x.shape[1]):
        if n_s[s] > 0:
            col = np.asarray(x[:, s].toarray()).ravel()
            d[s] = 0.5 * np.abs(col / n_s[s] - p).sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        noise = 0.5 * np.sqrt(2.0 * p * (1.0 - p) / np.pi).sum() / np.sqrt(n_s)
    noise = np.where(n_s > 0, np.minimum(noise, 1.0), 1.0)
    excess = d - noise
    kind = np.where(excess >= threshold, "traded", "local")
    return pd.DataFrame({"dissimilarity": d, "expected": noise, "excess": excess, "type": kind})


def resolve_types(
    sectors: pd.Index,
    level: Any,
    option: Any,
    nomenclature: str,
    comparison: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """Type and its source (``user``, ``categories``, ``data``) of each sector.

    ``comparison`` is the regions × sectors establishments table used by the data rule.
    With ``option=None`` every sector has type and source ``""``.

    Examples
    --------
    >>> types, source = resolve_types(pd.Index(["25.62A", "56.30Z"]), "subclass", "auto",
    ...                               "naf", np.array([[10, 5], [0, 5]]))
    >>> types.tolist(), source.tolist()
    (['traded', 'local'], ['categories', 'categories'])
    """
    n = len(sectors)
    if option is None:
        return np.full(n, "", dtype=object), np.full(n, "", dtype=object)
    codes = pd.Series(sectors.astype(str), index=range(n))
    types = pd.Series([None] * n, dtype=object)
    source = pd.Series([""] * n, dtype=object)
    if isinstance(option, Mapping | pd.Series):
        user = codes.map({str(k): str(v) for k, v in option.items()})
        types[user.notna()] = user[user.notna()]
        source[user.notna()] = "user"
    elif option == "auto" and nomenclature in ("naf", "nace", "naics"):
        shipped = _shipped_types(codes, level, nomenclature)
        known = shipped.notna().to_numpy()
        types[known] = shipped[known].astype(object)
        source[known] = "categories"
    missing = types.isna().to_numpy()
    if missing.any():
        data = dissimilarity_types(comparison)["type"].to_numpy(dtype=object)
        types[missing] = data[missing]
        source[missing] = "data"
    return types.to_numpy(dtype=object), source.to_numpy(dtype=object)


def _shipped_types(codes: pd.Series, level: Any, nomenclature: str) -> pd.Series:
    """Types from the shipped categories; a group of a user mapping takes its codes' majority."""
    from ..taxonomy import sector_types

    if not isinstance(level, Mapping | pd.Series | pd.DataFrame):
        return sector_types(codes, level=level, nomenclature=nomenclature)
    from .pipeline import _mapping_keys

    keys = _mapping_keys(level)
    member = pd.DataFrame({"code": list(keys), "group": [str(g) for g in keys.values()]})
    member["type"] = sector_types(member["code"], nomenclature=nomenclature).to_numpy()
    member = member.dropna(subset=["type"])
    majority = member.groupby("group")["type"].agg(lambda t: t.value_counts().index[0])
    return codes.map(majority)
