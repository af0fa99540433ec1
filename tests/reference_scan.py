"""Slow reference of the space-time permutation scan: every cylinder, spelled out.

Plain Python / NumPy, written for clarity: the tests check the numba kernel's maximum, its
window and its interval against it, and the benchmark times it against the kernel.
"""

from __future__ import annotations

import math

import numpy as np


def _llr(c: float, mu: float, total: float) -> float:
    if c <= mu:
        return 0.0
    out = c * math.log(c / mu)
    if total - c > 0:
        out += (total - c) * math.log((total - c) / (total - mu))
    return out


def scan_reference(counts: np.ndarray, xy: np.ndarray, *, radius, max_units, max_share, max_len):
    """Every cylinder, spelled out: (max LLR, window units, first period, last period)."""
    total = counts.sum()
    has = np.flatnonzero(counts.sum(axis=1) > 0)
    c_t = counts.sum(axis=0)
    best = (0.0, None, None, None)
    for i in has:
        d = np.hypot(*(xy[has] - xy[i]).T)
        order = has[np.lexsort((np.arange(len(has)), d))][:max_units]
        order = [j for j in order if np.hypot(*(xy[j] - xy[i])) <= radius]
        for k in range(1, len(order) + 1):
            zone = order[:k]
            c_z = counts[zone].sum()
            if k > 1 and c_z > max_share * total:
                break
            for a in range(counts.shape[1]):
                for b in range(a, min(counts.shape[1], a + max_len)):
                    c = counts[zone, a : b + 1].sum()
                    mu = c_z * c_t[a : b + 1].sum() / total
                    v = _llr(c, mu, total)
                    if v > best[0] + 1e-12:
                        best = (v, sorted(zone), a, b)
    return best
