"""Step 2 and 3 of the detection: the exact Poisson window test of every unit × sector cell.

For each unit *i* and sector *s*, the window ``W_i = {i} ∪ neighbours(i)`` is tested for an
excess with the exact one-sided Poisson test ``P(X >= O_W)``, ``X ~ Poisson(E_W)``, where
``E = n_i· n_·s / N`` (expected counts relative to all activity). All sectors are tested at
once with one sparse product ``(A + I) @ X``; the Benjamini-Hochberg procedure controls the
false discovery rate over the units of each sector. Exact p-values have no permutation
resolution floor, so BH can reject among 35 000 communes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import special

from ..core.schema import ESTABLISHMENTS, LABEL, LQ, LQ_HIGH, LQ_LOW, P_VALUE, STATISTIC
from ..stats.dispersion import negative_binomial_sf
from ..stats.lq import garwood_interval

__all__ = ["bh_reject", "log_likelihood_ratio", "poisson_sf", "window_test"]


def bh_reject(p: np.ndarray, col: np.ndarray, m: np.ndarray, alpha: float) -> np.ndarray:
    """Benjamini-Hochberg step-up per column on sparse p-values.

    ``p`` holds the p-values of some cells of each column (all those ``<= alpha``, at least);
    the others are known to be ``> alpha`` and cannot be rejected nor change the ranks of
    the small ones. ``m[col]`` is the family size of the column.

    Examples
    --------
    Four tests in one column at 5 %: 0.01 <= 1 × 0.05 / 4 and 0.02 <= 2 × 0.05 / 4 are
    rejected, 0.04 > 3 × 0.05 / 4 is not:

    >>> bh_reject(np.array([0.01, 0.02, 0.04, 0.5]), np.zeros(4, int), np.array([4.0]), 0.05)
    array([ True,  True, False, False])
    """
    reject = np.zeros(p.size, dtype=bool)
    small = np.flatnonzero(p <= alpha)
    if small.size == 0:
        return reject
    order = small[np.lexsort((p[small], col[small]))]
    cs = col[order]
    starts = np.r_[0, np.flatnonzero(np.diff(cs)) + 1]
    rank = np.arange(order.size) - np.repeat(starts, np.diff(np.r_[starts, order.size])) + 1
    ok = p[order] <= rank * alpha / m[cs]
    # largest rank per column that passes: every cell up to it is rejected
    last = np.full(order.size, -1)
    last[ok] = rank[ok]
    max_rank = np.maximum.reduceat(last, starts)
    reject[order] = rank <= np.repeat(max_rank, np.diff(np.r_[starts, order.size]))
    return reject


def poisson_sf(o: np.ndarray, e: np.ndarray) -> np.ndarray:
    """P(X >= o), X ~ Poisson(e), for o >= 1 (regularised lower incomplete gamma).

    Examples
    --------
    >>> float(poisson_sf(np.array([2.0]), np.array([1.0]))[0].round(4))  # 1 - 2/e
    0.2642
    """
    with np.errstate(all="ignore"):
        return special.gammainc(np.maximum(o, 1e-300), e)


def log_likelihood_ratio(o: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Poisson log-likelihood ratio ``O ln(O/E) - (O - E)`` of an excess (0 when O <= E).

    Kulldorff's scan statistic of a window: it grows with both the size and the specificity
    of the excess (reported as ``strength``; the list is ordered by ``rank_score``).

    Examples
    --------
    >>> log_likelihood_ratio(np.array([20.0, 3.0]), np.array([10.0, 5.0])).round(3)
    array([3.863, 0.   ])
    """
    with np.errstate(all="ignore"):
        out = np.where(o > 0, o * np.log(o / e), 0.0) - (o - e)
    return np.where(o > e, out, 0.0)


def window_test(
    x: sp.csr_matrix,
    adjacency: sp.csr_matrix,
    analysed: np.ndarray,
    *,
    alpha: float,
    min_unit_lq: float,
    grow_alpha: float,
    conf_level: float,
    dispersion: np.ndarray | None = None,
    totals: np.ndarray | None = None,
    margins: tuple[np.ndarray, float] | None = None,
) -> pd.DataFrame:
    """One row per nonzero unit × sector cell: its LQ, window test, seed and candidate flags.

    Parameters
    ----------
    x : scipy.sparse.csr_matrix
        Establishment counts, units × sectors (the units with no activity included).
    adjacency : scipy.sparse.csr_matrix
        Binary symmetric adjacency of the units, no diagonal.
    analysed : numpy.ndarray of bool
        Sectors whose cells may be significant.
    alpha, min_unit_lq, grow_alpha, conf_level
        BH level, LQ floor of a specialised unit, uncorrected level of growth, interval
        coverage (see :class:`~clustermap.detect.options.DetectionOptions`).
    dispersion : numpy.ndarray, optional
        Extra-Poisson dispersion ``alpha_s`` of each sector
        (:func:`~clustermap.stats.dispersion.estimate_dispersion`): the window count is
        then tested as negative binomial with variance ``E_W + alpha_s sum_{j in W} E_js²``.
        None (or zeros): the exact Poisson test.
    totals : numpy.ndarray, optional
        The activity of each unit that expected counts are proportional to (default: its
        establishments, ``x`` row sums); an exposure such as population, scaled to sum to the
        establishments, tests concentration per inhabitant.
    margins : tuple, optional
        ``(row sums, grand total)`` of the whole table when ``x`` holds some of its sectors
        only (a block of a sharded run): the cells then get the numbers the whole table
        gives them.

    Returns
    -------
    pandas.DataFrame
        Columns ``_r``, ``_c`` (cell row and column), ``establishments``, ``expected``,
        ``lq`` and its interval, ``window_observed``, ``window_expected``, ``p_value``,
        ``significant`` (BH rejection), empty Gi* columns (``statistic``,
        ``statistic_p_value``, ``label``), ``seed`` and ``candidate``.

    Examples
    --------
    Five units in a row: sector 0 concentrates in the first two, sector 1 in the last three.
    Unit 2 is specialised in sector 1 (LQ 1.86) but its window mixes both sectors, so it is
    neither a seed nor a candidate:

    >>> x = sp.csr_matrix(np.array([[30.0, 2], [40, 1], [1, 20], [1, 25], [2, 30]]))
    >>> adj = sp.diags([np.ones(4), np.ones(4)], [-1, 1], format="csr")
    >>> cells = window_test(x, adj, np.array([True, True]), alpha=0.05, min_unit_lq=1.5,
    ...                     grow_alpha=0.05, conf_level=0.95)
    >>> seeds = cells[cells["seed"]]
    >>> list(zip(seeds["_r"].tolist(), seeds["_c"].tolist()))
    [(0, 0), (1, 0), (3, 1), (4, 1)]
    """
    n_units, n_sec = x.shape
    n_s = np.asarray(x.sum(axis=0)).ravel()
    rows, total = (
        (np.asarray(x.sum(axis=1)).ravel(), float(n_s.sum())) if margins is None else margins
    )
    n_i = rows if totals is None else np.asarray(totals, float)
    window = (adjacency + sp.identity(n_units, format="csr")).tocsr()
    n_w = window @ n_i
    o_w = (window @ x).tocoo()
    e_w = n_w[o_w.row] * n_s[o_w.col] / total
    p_w = np.ones(o_w.nnz)
    excess = o_w.data > e_w
    if dispersion is None or not np.any(dispersion > 0):
        p_w[excess] = poisson_sf(o_w.data[excess], e_w[excess])
    else:  # sum of E_js² over the window: (n_s / N)² (window @ n_i²)
        m2 = window @ (n_i**2)
        share = n_s / total
        r, c = o_w.row[excess], o_w.col[excess]
        extra = dispersion[c] * share[c] ** 2 * m2[r]
        p_w[excess] = negative_binomial_sf(o_w.data[excess], e_w[excess], extra)
    m_tests = np.full(n_sec, float((n_i > 0).sum()))
    sig_w = bh_reject(p_w, o_w.col, m_tests, alpha) & analysed[o_w.col]

    xc = x.tocoo()
    cells = pd.DataFrame({"_r": xc.row, "_c": xc.col, ESTABLISHMENTS: xc.data})
    e_cell = n_i[xc.row] * n_s[xc.col] / total
    cells["expected"] = e_cell
    cells[LQ] = xc.data / e_cell
    low, high, _ = garwood_interval(xc.data, e_cell, conf_level)
    cells[LQ_LOW] = low
    cells[LQ_HIGH] = high
    key_w = pd.Series(np.arange(o_w.nnz), index=o_w.row.astype(np.int64) * n_sec + o_w.col)
    pos = key_w.reindex(xc.row.astype(np.int64) * n_sec + xc.col).to_numpy()
    cells["window_observed"] = o_w.data[pos]
    cells["window_expected"] = e_w[pos]
    cells[P_VALUE] = p_w[pos]
    cells["significant"] = sig_w[pos]
    specialised = (cells[LQ].to_numpy() >= min_unit_lq) & analysed[xc.col]
    seed = cells["significant"].to_numpy() & specialised
    grow = specialised & (cells[P_VALUE].to_numpy() <= grow_alpha)
    cells[STATISTIC] = np.nan
    cells["statistic_p_value"] = np.nan
    cells[LABEL] = pd.Series(pd.NA, index=cells.index, dtype="string")
    cells["seed"] = seed
    cells["candidate"] = seed | grow
    return cells
