"""Slow, obvious reference implementations used to check the fast kernels.

Shared file: other modules may add their own references below. Everything here is plain
Python / NumPy, written for clarity rather than speed, and exact where it matters (local
statistics are compared in rational arithmetic with :class:`fractions.Fraction`, so ties are
ties).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

# --------------------------------------------------------------------------------------
# Counter-based random stream of clustermap._kernels (splitmix64), in pure Python integers

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
M1 = 0xBF58476D1CE4E5B9
M2 = 0x94D049BB133111EB


def mix64(z: int) -> int:
    """splitmix64 finaliser on a 64-bit integer."""
    z &= MASK64
    z = ((z ^ (z >> 30)) * M1) & MASK64
    z = ((z ^ (z >> 27)) * M2) & MASK64
    return z ^ (z >> 31)


def draw_ids(seed: int, i: int, draw: int, n: int, k: int) -> list[int]:
    """The k distinct neighbour ids drawn for unit i at draw number ``draw``.

    Stream state: ``mix64(seed + (i + 1) * GOLDEN) ^ ((draw + 1) * M1)``, stepped by GOLDEN;
    each splitmix64 output gives two 32-bit candidates (low half first), each mapped to
    ``range(n - 1)`` by ``(r32 * (n - 1)) >> 32``, shifted past ``i``, rejected when
    already drawn.
    """
    ukey = mix64((seed + (i + 1) * GOLDEN) & MASK64)
    state = ukey ^ (((draw + 1) * M1) & MASK64)
    out: list[int] = []
    m = n - 1
    while len(out) < k:
        state = (state + GOLDEN) & MASK64
        r = mix64(state)
        for r32 in (r & 0xFFFFFFFF, r >> 32):
            if len(out) >= k:
                break
            c = (r32 * m) >> 32
            if c >= i:
                c += 1
            if c not in out:
                out.append(c)
    return out


def table_ids(table: np.ndarray, i: int, draw: int, k: int) -> list[int]:
    """esda's convention: row ``draw`` of a shared table of ids in range(n - 1), shifted past i."""
    return [int(c) + 1 if c >= i else int(c) for c in table[draw, :k]]


# --------------------------------------------------------------------------------------
# Local statistics, exact


def _fr(x: float) -> Fraction:
    return Fraction(float(x))


def neighbours(W: np.ndarray, i: int) -> tuple[list[int], list[float]]:
    """Neighbours of i (off-diagonal non-zero weights) in column order, with weights."""
    js = [j for j in range(W.shape[0]) if j != i and W[i, j] != 0]
    return js, [float(W[i, j]) for j in js]


def local_statistic(stat: str, y: np.ndarray, W: np.ndarray, i: int, nbr_ids: list[int]):
    """Exact statistic of unit i when its neighbours' values are those of ``nbr_ids``.

    Up to a positive factor that is the same for the observed and the permuted values:

    * ``moran``: ``(y_i - mean) * sum_t w_t (y_{j_t} - mean)`` (I_i times sd^2 / (n - 1)),
    * ``gstar`` / ``g``: ``sum_t w_t y_{j_t} (+ w_ii y_i)`` (Gi* or Gi times a fixed denominator),
    * ``geary``: ``sum_t w_t (y_i - y_{j_t})^2`` (c_i times sd^2).
    """
    _, ws = neighbours(W, i)
    vals = [_fr(v) for v in y]
    mean = sum(vals, Fraction(0)) / len(vals)
    if stat == "moran":
        lag = sum((_fr(w) * (vals[j] - mean) for w, j in zip(ws, nbr_ids)), Fraction(0))
        return (vals[i] - mean) * lag
    if stat in ("gstar", "g"):
        return sum((_fr(w) * vals[j] for w, j in zip(ws, nbr_ids)), Fraction(0))
    if stat == "geary":
        return sum((_fr(w) * (vals[i] - vals[j]) ** 2 for w, j in zip(ws, nbr_ids)), Fraction(0))
    raise ValueError(stat)


def local_counts(stat: str, y: np.ndarray, W: np.ndarray, draws_of_unit) -> tuple[np.ndarray, ...]:
    """#(sim >= obs) and #(sim <= obs) per unit, computing every statistic from scratch.

    ``draws_of_unit(i, k)`` returns the list of draws (each a list of k ids) for unit i.
    Islands get counts of -1.
    """
    n = len(y)
    ge = np.full(n, -1, dtype=np.int64)
    le = np.full(n, -1, dtype=np.int64)
    for i in range(n):
        js, _ = neighbours(W, i)
        if not js:
            continue
        obs = local_statistic(stat, y, W, i, js)
        g = lo = 0
        for ids in draws_of_unit(i, len(js)):
            sim = local_statistic(stat, y, W, i, ids)
            g += sim >= obs
            lo += sim <= obs
        ge[i], le[i] = g, lo
    return ge, le


def local_moran_values(y: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Local Moran's I_i = (n - 1) z_i sum_j w_ij z_j / sum z^2, z with ddof 0, by loops."""
    n = len(y)
    z = (y - y.mean()) / y.std()
    den = sum(v * v for v in z)
    return np.array(
        [(n - 1) * z[i] * sum(W[i, j] * z[j] for j in range(n)) / den for i in range(n)]
    )


# --------------------------------------------------------------------------------------
# Multiple testing


def bh_adjusted(p: list[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values by the textbook definition (min over s >= r)."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    adj = [0.0] * m
    for rank, i in enumerate(order, start=1):
        adj[i] = min(min(1.0, p[order[s - 1]] * m / s) for s in range(rank, m + 1))
    return adj
