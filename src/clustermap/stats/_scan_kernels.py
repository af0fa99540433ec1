"""numba kernel of the space-time permutation scan, batched over sectors and replications.

One task is one (sector, replication): replication -1 is the observed data, the others
shuffle the period labels of the sector's events (Fisher–Yates driven by a counter-based
splitmix64 stream keyed by (seed, sector, replication), so results do not depend on the
number of threads). For every cylinder — a circle of the k nearest event units around an
event unit, times an interval of periods — the observed count ``c`` is compared with
``mu = C_Z C_[a,b] / C`` (the expected count of Kulldorff's space-time permutation model;
it does not change under the shuffle) and the log-likelihood ratio
``c ln(c / mu) + (C - c) ln((C - c) / (C - mu))`` (``c > mu``) is maximised.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..core.numba_cache import CACHE
from ._kernels import _GOLDEN, _LOW32, _bounded, _mix64, _unit_key


@njit(inline="always", cache=CACHE)
def _llr(c, mu, total):
    if c <= mu or mu <= 0.0:
        return 0.0
    out = c * np.log(c / mu)
    rest = total - c
    if rest > 0.0:
        out += rest * np.log(rest / (total - mu))
    return out


@njit(cache=CACHE)
def _scan_one(units_of, periods, n_units, n_periods, nb_ptr, nb_idx, unit_tot, period_cum,
              max_len, best):  # fmt: skip
    """Max LLR over the cylinders of one sector; ``best`` gets (i, k, a, b) of the max."""
    total = float(len(periods))
    counts = np.zeros((n_units, n_periods + 1))
    for e in range(len(periods)):
        counts[units_of[e], periods[e] + 1] += 1.0
    for u in range(n_units):  # prefix sums over periods
        for t in range(n_periods):
            counts[u, t + 1] += counts[u, t]
    n_int = 0
    for a in range(n_periods):
        n_int += min(n_periods, a + max_len) - a
    ia = np.empty(n_int, dtype=np.int64)
    ib = np.empty(n_int, dtype=np.int64)
    ct = np.empty(n_int)
    q = 0
    for a in range(n_periods):
        for b in range(a, min(n_periods, a + max_len)):
            ia[q], ib[q] = a, b
            ct[q] = (period_cum[b + 1] - period_cum[a]) / total
            q += 1
    diff = np.empty((n_units, n_int))  # events of each unit in each interval
    for u in range(n_units):
        for q in range(n_int):
            diff[u, q] = counts[u, ib[q] + 1] - counts[u, ia[q]]
    acc = np.empty(n_int)
    top = 0.0
    for i in range(n_units):
        acc[:] = 0.0
        cz = 0.0
        for k in range(nb_ptr[i], nb_ptr[i + 1]):
            j = nb_idx[k]
            cz += unit_tot[j]
            for q in range(n_int):
                c = acc[q] + diff[j, q]
                acc[q] = c
                mu = cz * ct[q]
                if c <= mu:
                    continue
                # ln x <= x - 1 on both terms bounds the LLR by C (c - mu)^2 / (mu (C - mu)):
                # most cylinders are dismissed without a division or a logarithm
                if total * (c - mu) * (c - mu) <= top * mu * (total - mu):
                    continue
                v = _llr(c, mu, total)
                if v > top:
                    top = v
                    best[0], best[1], best[2], best[3] = i, k - nb_ptr[i] + 1, ia[q], ib[q]
    return top


@njit(cache=CACHE)
def _shuffle(periods, key):
    """Fisher–Yates shuffle of ``periods`` in place, from the stream of ``key``."""
    for j in range(len(periods) - 1, 0, -1):
        r = _mix64(key + np.uint64(j + 1) * _GOLDEN)
        k = _bounded(r & _LOW32, j + 1)
        periods[j], periods[k] = periods[k], periods[j]


@njit(parallel=True, cache=CACHE)
def scan_batch(ev_ptr, ev_unit, ev_period, unit_ptr, nb_ptr_all, nb_ptr_off, nb_idx_all,
               unit_tot_all, period_cum_all, n_periods, max_len, n_rep, seed_key):  # fmt: skip
    """Max LLR of every sector (rows) for the observed data (column 0) and each replication.

    Events of sector s are ``ev_*[ev_ptr[s]:ev_ptr[s + 1]]`` (local unit, period); its units
    ``unit_ptr[s]:unit_ptr[s + 1]`` (events per unit in ``unit_tot_all``), their neighbour
    lists ``nb_idx_all`` with offsets ``nb_ptr_all[nb_ptr_off[s]:...]``; its events per
    period, cumulated, in ``period_cum_all[s]``. ``where[s]`` is (centre, k, a, b) of the
    observed maximum.
    """
    n_sec = len(ev_ptr) - 1
    out = np.zeros((n_sec, n_rep + 1))
    where = np.zeros((n_sec, 4), dtype=np.int64)
    n_tasks = n_sec * (n_rep + 1)
    for task in prange(n_tasks):
        s = task // (n_rep + 1)
        r = task % (n_rep + 1)
        lo, hi = ev_ptr[s], ev_ptr[s + 1]
        if hi - lo < 2:
            continue
        periods = ev_period[lo:hi].copy()
        if r > 0:
            _shuffle(periods, _unit_key(_unit_key(seed_key, s), r))
        n_units = unit_ptr[s + 1] - unit_ptr[s]
        off = nb_ptr_off[s]
        best = np.zeros(4, dtype=np.int64)
        out[s, r] = _scan_one(
            ev_unit[lo:hi],
            periods,
            n_units,
            n_periods,
            nb_ptr_all[off : off + n_units + 1],
            nb_idx_all,
            unit_tot_all[unit_ptr[s] : unit_ptr[s + 1]],
            period_cum_all[s],
            max_len,
            best,
        )
        if r == 0:
            where[s, :] = best
    return out, where
