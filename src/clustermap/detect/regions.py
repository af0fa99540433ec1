"""Steps 4 and 5 of the detection: cluster regions from candidate cells, and their floors.

Cluster regions are the connected components of candidate units (per sector) that contain
at least one seed. With ``link_order=2`` two candidate units are linked when they are
neighbours or share a neighbour, so a scattered cluster forms one region; ``link_order=1``
keeps strict contiguity. A region is kept when it has at least ``min_establishments``
establishments of the sector, a region LQ ``>= min_lq`` whose exact Poisson (Garwood) lower
bound exceeds 1, and a region Poisson p-value below ``region_alpha``. The region is selected
by the data, so its p-value is descriptive; the error control comes from the window test and
these floors together.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from ..core.schema import ESTABLISHMENTS, LQ, LQ_HIGH, LQ_LOW, P_VALUE
from ..errors import SchemaError
from ..graph import graph_arrays
from ..stats.dispersion import negative_binomial_sf, overdispersed_interval
from ..stats.lq import garwood_interval
from .window import log_likelihood_ratio

__all__ = ["adjacency", "find_regions", "link_matrix"]

_REGION_COLUMNS = [
    "sec",
    "rows",
    "cell_idx",
    "O",
    "E",
    "extra",
    "n_total",
    "strength",
    "rank_score",
]


def adjacency(graph: Any, unit_ids: pd.Index) -> sp.csr_matrix:
    """Binary symmetric adjacency (no diagonal) of ``graph`` aligned on ``unit_ids``.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import box
    >>> units = gpd.GeoDataFrame(geometry=[box(i, 0, i + 1, 1) for i in range(3)],
    ...     index=pd.Index(["a", "b", "c"], name="unit_id"))
    >>> adjacency(cm.build_graph(units, "rook"), units.index).toarray().tolist()
    [[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
    """
    ga = graph_arrays(graph)
    ids = pd.Index(ga.ids).astype(str)
    if not ids.equals(unit_ids) and set(ids) != set(unit_ids):
        raise SchemaError(
            "graph ids do not match the units: build the graph from the same units "
            "(cm.build_graph(units, ...))."
        )
    n = len(ids)
    a = sp.csr_matrix((np.ones(len(ga.indices)), ga.indices, ga.indptr), shape=(n, n), dtype=float)
    if not ids.equals(unit_ids):
        order = ids.get_indexer(unit_ids)
        a = a[order][:, order]
    a = ((a + a.T) > 0).astype(float).tocsr()
    a.setdiag(0)
    a.eliminate_zeros()
    return a


def link_matrix(adj: sp.csr_matrix, link_order: int) -> sp.csr_matrix:
    """Units linked in a region: neighbours (1), or neighbours or sharing a neighbour (2).

    Examples
    --------
    >>> adj = sp.diags([np.ones(3), np.ones(3)], [-1, 1], format="csr")  # a path of 4 units
    >>> int(link_matrix(adj, 1)[0, 2]), int(link_matrix(adj, 2)[0, 2])
    (0, 1)
    """
    if link_order == 1:
        return adj
    return ((adj + adj @ adj) > 0).astype(float).tocsr()


def find_regions(
    cells: pd.DataFrame,
    link: sp.csr_matrix,
    x: sp.csr_matrix,
    *,
    region_alpha: float,
    conf_level: float,
    min_establishments: int,
    min_lq: float,
    dispersion: np.ndarray | None = None,
    totals: np.ndarray | None = None,
    margins: tuple[np.ndarray, float] | None = None,
) -> pd.DataFrame:
    """Connected components of candidate cells holding a seed, with the region floors applied.

    ``cells`` is the table of :func:`~clustermap.detect.window.window_test`. Returns one row
    per kept region: sector column ``sec``, unit rows ``rows``, cell positions ``cell_idx``,
    observed ``O``, expected ``E``, all establishments ``n_total``, ``lq`` with its interval,
    ``p_value``, ``strength`` (log-likelihood ratio) and ``rank_score`` (``lq_low`` × the
    share of the sector at that bound, ``lq_low² E / n_s``).

    With ``dispersion`` (the sectors' ``alpha_s``), the region count is negative binomial
    with variance ``E + extra``, ``extra = alpha_s sum_{i in R} E_is²``: the p-value and the
    LQ interval (:func:`~clustermap.stats.dispersion.overdispersed_interval`) account for
    it. Without it they are the exact Poisson ones (Garwood). ``totals``: the exposure expected
    counts are proportional to (as in :func:`~clustermap.detect.window.window_test`);
    ``margins``: the whole table's row sums and total when ``x`` is a block of its sectors.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from clustermap.detect.window import window_test
    >>> x = sp.csr_matrix(np.array([[30.0, 2], [40, 1], [1, 20], [1, 25], [2, 30]]))
    >>> adj = sp.diags([np.ones(4), np.ones(4)], [-1, 1], format="csr")
    >>> cells = window_test(x, adj, np.array([True, True]), alpha=0.05, min_unit_lq=1.5,
    ...                     grow_alpha=0.05, conf_level=0.95)
    >>> reg = find_regions(cells, link_matrix(adj, 2), x, region_alpha=0.05, conf_level=0.95,
    ...                    min_establishments=10, min_lq=1.5)
    >>> [(int(r.sec), r.rows.tolist(), float(r.O)) for r in reg.itertuples()]
    [(0, [0, 1], 70.0), (1, [3, 4], 55.0)]
    """
    n_s = np.asarray(x.sum(axis=0)).ravel()
    # the units' establishments (focus) and the grand total
    n_i, total = (
        (np.asarray(x.sum(axis=1)).ravel(), float(n_s.sum())) if margins is None else margins
    )
    base = n_i if totals is None else np.asarray(totals, dtype=float)  # expected counts
    seeded = np.unique(cells.loc[cells["seed"].to_numpy(), "_c"].to_numpy())
    cand = cells[cells["candidate"].to_numpy() & np.isin(cells["_c"].to_numpy(), seeded)]
    rows = []
    for c, grp in cand.groupby("_c", sort=True):
        r = grp["_r"].to_numpy()
        n_comp, lab = connected_components(link[r][:, r], directed=False)
        has_seed = np.bincount(lab, weights=grp["seed"].to_numpy(dtype=float), minlength=n_comp)
        obs = np.bincount(lab, weights=grp[ESTABLISHMENTS].to_numpy(), minlength=n_comp)
        tot = np.bincount(lab, weights=n_i[r], minlength=n_comp)
        tot_base = np.bincount(lab, weights=base[r], minlength=n_comp)
        tot2 = np.bincount(lab, weights=base[r] ** 2, minlength=n_comp)
        exp = tot_base * n_s[c] / total
        a_c = 0.0 if dispersion is None else float(dispersion[c])
        extra = a_c * (n_s[c] / total) ** 2 * tot2
        for k in np.flatnonzero(has_seed > 0):
            members = lab == k
            rows.append(
                {
                    "sec": c,
                    "rows": r[members],
                    "cell_idx": grp.index.to_numpy()[members],
                    "O": obs[k],
                    "E": exp[k],
                    "extra": extra[k],
                    "n_total": tot[k],
                }
            )
    if not rows:
        return pd.DataFrame(columns=_REGION_COLUMNS)
    reg = pd.DataFrame(rows)
    o, e = reg["O"].to_numpy(), reg["E"].to_numpy()
    low, high, p = garwood_interval(o, e, conf_level)
    od = reg["extra"].to_numpy() > 0
    if od.any():
        ext = reg["extra"].to_numpy()[od]
        low[od], high[od] = overdispersed_interval(o[od], e[od], ext, conf_level)
        p[od] = negative_binomial_sf(o[od], e[od], ext)
    reg[LQ] = o / e
    reg[LQ_LOW] = low
    reg[LQ_HIGH] = high
    reg[P_VALUE] = p
    reg["strength"] = log_likelihood_ratio(o, e)
    n_sec = n_s[reg["sec"].to_numpy(dtype=np.int64)]
    reg["rank_score"] = low * (low * e / n_sec)  # lq_low × share_low
    keep = (o >= min_establishments) & (o / e >= min_lq) & (low > 1) & (p <= region_alpha)
    return reg[keep].reset_index(drop=True)
