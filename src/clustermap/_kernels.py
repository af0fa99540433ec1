"""numba kernels for permutation inference (NumPy arrays in, NumPy arrays out; no pandas).

Layout (statistics.md §5): values are (n units, S sectors) rows, C-contiguous, so one draw
of neighbours serves every sector with contiguous row reads (``tiled_counts``: sectors in
up to four storage groups, each cut into cache-sized tiles of shape (n, tile); the draws of
a block of units are made once and reused for every tile of every group;
``subset_counts``: chosen cells only, for adaptive refinement). The gathers
(n * P * k * S values) are bound by memory traffic, so integer counts are stored as uint8 /
uint16 / float32 whenever their sums stay exact. The graph is CSR without its
diagonal (``indptr`` int64 (n+1), ``indices`` int64 (nnz), ``weights`` float64 (nnz)), with
``equal`` (bool, n) marking rows whose weights are all equal: those rows sum the raw values
and never multiply by the weight, so integer counts give exact sums in any order.

Comparisons are made on the part of the statistic that changes under conditional
permutation, computed with the same code for the observed and the simulated neighbours:

* lag statistics (Moran, Gi, Gi*): ``T = sum_t w_t x_{j_t}``; a draw is "at least as
  large" as observed when ``sgn_i * (T_sim - T_obs) >= 0`` (``sgn`` = sign of z_i for
  Moran, 1 for Gi/Gi*), "at most as large" when ``<= 0``: ties count on both sides.
* Geary: ``T = sum_t w_t (x_i - x_{j_t})**2``, ``sgn = 1``.

Randomness: a counter-based stream (splitmix64) keyed by (seed key, unit, draw number), so the
draws of a unit never depend on the thread count, on tiling, or on which other units run;
or a shared permutation table (esda's ``vec_permutations`` layout: ids in ``range(n - 1)``
shifted past the unit itself).

No fastmath: the exactness of ties relies on plain IEEE arithmetic.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_S32 = np.uint64(32)
_LOW32 = np.uint64(0xFFFFFFFF)
_ONE = np.uint64(1)
_INV53 = 1.0 / 9007199254740992.0  # 2**-53

# tail codes for early stopping
TAIL_BOTH = 0  # two-sided / directed: min(ge, le)
TAIL_GREATER = 1
TAIL_LESSER = 2


@njit(inline="always", cache=True)
def _mix64(z):
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(inline="always", cache=True)
def _unit_key(key, i):
    return _mix64(key + (np.uint64(i) + _ONE) * _GOLDEN)


@njit(inline="always", cache=True)
def _draw_state(ukey, p):
    return ukey ^ ((np.uint64(p) + _ONE) * _M1)


@njit(inline="always", cache=True)
def _bounded(r32, m):
    """Map a 32-bit value to range(m) by multiply-shift (Lemire); bias below m / 2**32."""
    return np.int64((r32 * np.uint64(m)) >> _S32)


@njit(inline="always", cache=True)
def _accept(buf, t, c):
    """Append c to buf[:t] unless already there; the new length."""
    for u in range(t):
        if buf[u] == c:
            return t
    buf[t] = c
    return t + 1


@njit(inline="always", cache=True)
def _fill_draw_rng(buf, k, n, i, state):
    """Fill buf[:k] with k distinct ids drawn uniformly from range(n) minus {i}.

    Each splitmix64 output gives two 32-bit candidates (low half first); a candidate c in
    range(n - 1) maps to c + (c >= i); duplicates are rejected.
    """
    m = n - 1
    t = 0
    while t < k:
        state = state + _GOLDEN
        r = _mix64(state)
        c = _bounded(r & _LOW32, m)
        if c >= i:
            c += 1
        t = _accept(buf, t, c)
        if t < k:
            c = _bounded(r >> _S32, m)
            if c >= i:
                c += 1
            t = _accept(buf, t, c)
    return state


@njit(inline="always", cache=True)
def _fill_draw(buf, k, n, i, ukey, p, table):
    if table.shape[0] > 0:
        for t in range(k):
            c = table[p, t]
            buf[t] = c + 1 if c >= i else c
    else:
        _fill_draw_rng(buf, k, n, i, _draw_state(ukey, p))


@njit(cache=True)
def unit_draws(key, i, n, k, p_start, p_end):
    """Neighbour ids drawn for unit ``i`` at draws ``p_start..p_end-1`` ((P, k) int64).

    Exposed for tests: the reference implementation checks the kernels' counts with them.
    """
    out = np.empty((p_end - p_start, k), dtype=np.int64)
    ukey = _unit_key(key, i)
    buf = np.empty(k, dtype=np.int64)
    empty = np.empty((0, 0), dtype=np.int64)
    for p in range(p_start, p_end):
        _fill_draw(buf, k, n, i, ukey, p, empty)
        out[p - p_start, :] = buf
    return out


@njit(cache=True)
def _tail_done(cg, cl, ts, tail, h):
    for s in range(ts):
        if tail == 0:
            m = cg[s] if cg[s] < cl[s] else cl[s]
        elif tail == 1:
            m = cg[s]
        else:
            m = cl[s]
        if m < h:
            return False
    return True


@njit(inline="always", cache=True)
def _row_sum(X, ids, off, k, eq, weights, a, acc, ts):
    """acc[:ts] = sum_t w_t X[ids[off + t], :] (raw sum when the row's weights are equal)."""
    xr = X[ids[off]]
    if eq:
        for s in range(ts):
            acc[s] = xr[s]
        for t in range(1, k):
            xr = X[ids[off + t]]
            for s in range(ts):
                acc[s] += xr[s]
    else:
        w = weights[a]
        for s in range(ts):
            acc[s] = w * xr[s]
        for t in range(1, k):
            w = weights[a + t]
            xr = X[ids[off + t]]
            for s in range(ts):
                acc[s] += w * xr[s]


@njit(cache=True)
def _geary_sum(X, i, ids, off, k, eq, weights, a, acc, ts):
    """acc[:ts] = sum_t w_t (X[i, :] - X[ids[off + t], :])**2."""
    xi = X[i]
    xr = X[ids[off]]
    w = 1.0 if eq else weights[a]
    for s in range(ts):
        d = xi[s] - xr[s]
        acc[s] = w * (d * d)
    for t in range(1, k):
        xr = X[ids[off + t]]
        w = 1.0 if eq else weights[a + t]
        for s in range(ts):
            d = xi[s] - xr[s]
            acc[s] += w * (d * d)


@njit(cache=True)
def _tile_pass(X, sg3, cols, geary, i0, i1, graph, draws, stop, cache, out):
    """Counts of units i0..i1-1 on one tile X (n, tile); columns ``cols`` (-1: padding).

    The other arguments are tuples of :func:`tiled_counts`' arguments and block state.
    """
    indptr, indices, weights, equal = graph
    key, table, p_start, p_end = draws
    tail, h, check = stop
    direct, ids, made, buf, kmax = cache
    ge, le, nperm = out
    n, tile = X.shape
    n_draws = p_end - p_start
    tobs = np.empty(tile, dtype=sg3.dtype)
    acc = np.empty(tile, dtype=sg3.dtype)
    cg = np.zeros(tile, dtype=np.int64)
    cl = np.zeros(tile, dtype=np.int64)
    for i in range(i0, i1):
        a = indptr[i]
        k = indptr[i + 1] - a
        if k == 0:
            continue
        u = i - i0
        base = u * n_draws * kmax
        eq = equal[i]
        ukey = _unit_key(key, i)
        sg = sg3[i]
        for s in range(tile):
            cg[s] = 0
            cl[s] = 0
        if geary:
            _geary_sum(X, i, indices, a, k, eq, weights, a, tobs, tile)
        else:
            _row_sum(X, indices, a, k, eq, weights, a, tobs, tile)
        done = p_end
        for q in range(n_draws):
            if direct:  # nothing to reuse: draw straight into buf
                _fill_draw(buf, k, n, i, ukey, p_start + q, table)
                if geary:
                    _geary_sum(X, i, buf, 0, k, eq, weights, a, acc, tile)
                else:
                    _row_sum(X, buf, 0, k, eq, weights, a, acc, tile)
            else:
                off = base + q * kmax
                if q >= made[u]:
                    _fill_draw(buf, k, n, i, ukey, p_start + q, table)
                    for t in range(k):
                        ids[off + t] = buf[t]
                    made[u] = q + 1
                if geary:
                    _geary_sum(X, i, ids, off, k, eq, weights, a, acc, tile)
                else:
                    _row_sum(X, ids, off, k, eq, weights, a, acc, tile)
            if geary:
                for s in range(tile):
                    d = acc[s] - tobs[s]
                    cg[s] += d >= 0
                    cl[s] += d <= 0
            else:
                for s in range(tile):
                    d = sg[s] * (acc[s] - tobs[s])
                    cg[s] += d >= 0
                    cl[s] += d <= 0
            if h > 0 and (q + 1) % check == 0 and _tail_done(cg, cl, tile, tail, h):
                done = p_start + q + 1
                break
        for s in range(tile):
            c = cols[s]
            if c >= 0:
                ge[i, c] += cg[s]
                le[i, c] += cl[s]
                nperm[i, c] += done - p_start


@njit(cache=True)
def _block_counts(groups, geary, i0, i1, direct, kmax, graph, draws, stop, out):
    """Every tile of every storage group for the units i0..i1-1 (one parallel task).

    (A plain function called from the parallel loop: each _tile_pass specialisation is then
    compiled once, not once more for the parallel body.)
    """
    p_start, p_end = draws[2], draws[3]
    ids = np.empty(0 if direct else (i1 - i0) * (p_end - p_start) * kmax, dtype=np.int32)
    made = np.zeros(i1 - i0, dtype=np.int64)
    buf = np.empty(max(kmax, 1), dtype=np.int64)
    cache = (direct, ids, made, buf, np.int64(kmax))  # never a literal type: one compile
    X8, S8, C8, X16, S16, C16, X32, S32, C32, X64, S64, C64 = groups
    for tt in range(X8.shape[0]):
        _tile_pass(X8[tt], S8[tt], C8[tt], geary, i0, i1, graph, draws, stop, cache, out)
    for tt in range(X16.shape[0]):
        _tile_pass(X16[tt], S16[tt], C16[tt], geary, i0, i1, graph, draws, stop, cache, out)
    for tt in range(X32.shape[0]):
        _tile_pass(X32[tt], S32[tt], C32[tt], geary, i0, i1, graph, draws, stop, cache, out)
    for tt in range(X64.shape[0]):
        _tile_pass(X64[tt], S64[tt], C64[tt], geary, i0, i1, graph, draws, stop, cache, out)


@njit(parallel=True, cache=True)
def tiled_counts(
    groups,
    geary,
    indptr,
    indices,
    weights,
    equal,
    key,
    table,
    p_start,
    p_end,
    tail,
    h,
    check,
    block,
    ge,
    le,
    nperm,
):
    """Conditional-permutation tail counts for every unit and sector, tiled for the cache.

    One draw of neighbours serves every sector: the sectors come in up to four storage
    groups (uint8, uint16, float32, float64 values: memory traffic is the bottleneck, so
    each sector is stored in the narrowest type whose sums stay exact), each cut into tiles.

    groups : (X8, S8, C8, X16, S16, C16, X32, S32, C32, X64, S64, C64), for each storage
        group g: Xg (n_tiles, n, tile) C-contiguous values (``(0, n, 1)`` when unused), the
        last tile zero-padded; Sg the same shape in the accumulator's dtype (int32 for
        integer X, else X's): multiplier of the sum difference (sign of z_i for Moran, 1 for
        Gi / Gi*; ignored when ``geary``); Cg int64 (n_tiles, tile): the output column of
        each tile column (-1: padding).
    geary : False for lag statistics ``T = sum_t w_t x_j``, True for local Geary
        ``T = sum_t w_t (x_i - x_j)**2``.
    table : int64 (P_table, kmax) shared table, or shape (0, 0) for per-unit streams.
    p_start, p_end : draw numbers to run (stream positions, or table rows).
    tail, h, check : early stop of a (unit, tile) once every sector of the tile has its tail
        count >= h, tested every ``check`` draws; h <= 0 disables it.
    block : units per parallel task; their draws are made once and reused for every tile
        of every group.
    ge, le, nperm : int32 (n, S) #(sim >= obs), #(sim <= obs), draws used (added to).
    """
    n = ge.shape[0]
    kmax = 0
    for i in range(n):
        kmax = max(kmax, indptr[i + 1] - indptr[i])
    direct = groups[0].shape[0] + groups[3].shape[0] + groups[6].shape[0] + groups[9].shape[0] == 1
    graph = (indptr, indices, weights, equal)
    draws = (key, table, p_start, p_end)
    stop = (tail, h, check)
    out = (ge, le, nperm)
    n_blocks = (n + block - 1) // block
    for b in prange(n_blocks):
        _block_counts(
            groups, geary, b * block, min(n, (b + 1) * block), direct, kmax, graph, draws, stop, out
        )
    return 0


@njit(inline="always", cache=True)
def _subset_sum(X, i, ids, off, k, eq, weights, a, cols, c0, ts, geary, acc):
    """As _row_sum / _geary_sum (same order of operations) on columns cols[c0:c0+ts]."""
    for t in range(k):
        j = ids[off + t]
        w = 1.0 if eq else weights[a + t]
        for s in range(ts):
            c = cols[c0 + s]
            if geary:
                d = X[i, c] - X[j, c]
                v = w * (d * d)
            else:
                v = X[j, c] if eq else w * X[j, c]
            acc[s] = v if t == 0 else acc[s] + v


@njit(parallel=True, cache=True)
def subset_counts(
    X,
    sgn,
    geary,
    indptr,
    indices,
    weights,
    equal,
    key,
    table,
    p_start,
    p_end,
    tail,
    h,
    check,
    cptr,
    cols,
    ge,
    le,
    nperm,
):
    """Counts for a subset of cells (adaptive refinement): unit i runs the sectors
    cols[cptr[i]:cptr[i+1]], continuing its stream at draw ``p_start``.

    X : (n, S) float64; sgn (n, S) (ignored when ``geary``). Same arithmetic as the tile
    kernels, so a cell continued here counts exactly as a longer single run would.
    """
    n = X.shape[0]
    for i in prange(n):
        c0 = cptr[i]
        ts = cptr[i + 1] - c0
        a = indptr[i]
        k = indptr[i + 1] - a
        if k == 0 or ts == 0:
            continue
        eq = equal[i]
        ukey = _unit_key(key, i)
        ids = np.empty(k, dtype=np.int64)
        sg = np.empty(ts)
        for s in range(ts):
            sg[s] = 1.0 if geary else sgn[i, cols[c0 + s]]
        tobs = np.empty(ts)
        acc = np.empty(ts)
        cg = np.zeros(ts, dtype=np.int64)
        cl = np.zeros(ts, dtype=np.int64)
        _subset_sum(X, i, indices, a, k, eq, weights, a, cols, c0, ts, geary, tobs)
        done = p_end
        for p in range(p_start, p_end):
            _fill_draw(ids, k, n, i, ukey, p, table)
            _subset_sum(X, i, ids, 0, k, eq, weights, a, cols, c0, ts, geary, acc)
            for s in range(ts):
                d = sg[s] * (acc[s] - tobs[s])
                cg[s] += d >= 0
                cl[s] += d <= 0
            if h > 0 and (p + 1 - p_start) % check == 0 and _tail_done(cg, cl, ts, tail, h):
                done = p + 1
                break
        for s in range(ts):
            c = cols[c0 + s]
            ge[i, c] += cg[s]
            le[i, c] += cl[s]
            nperm[i, c] += done - p_start
    return 0


@njit(cache=True)
def _cross(Z, indptr, indices, weights, self_weights, perm, lag, out):
    """out[s] = sum_i z[perm[i], s] * (sum_j w_ij z[perm[j], s] + w_ii z[perm[i], s])."""
    n, S = Z.shape
    for s in range(S):
        out[s] = 0.0
    for i in range(n):
        pi = perm[i]
        wii = self_weights[i]
        for s in range(S):
            lag[s] = wii * Z[pi, s]
        for t in range(indptr[i], indptr[i + 1]):
            j = perm[indices[t]]
            w = weights[t]
            for s in range(S):
                lag[s] += w * Z[j, s]
        for s in range(S):
            out[s] += Z[pi, s] * lag[s]


@njit(cache=True)
def global_cross_observed(Z, indptr, indices, weights, self_weights):
    """Observed z'Wz per column (same arithmetic as the permuted values)."""
    n, S = Z.shape
    out = np.empty(S)
    lag = np.empty(S)
    _cross(Z, indptr, indices, weights, self_weights, np.arange(n), lag, out)
    return out


@njit(cache=True)
def unit_permutation(key, p, n):
    """Permutation of range(n) for draw ``p`` (Fisher-Yates on the counter stream)."""
    perm = np.arange(n)
    state = _draw_state(_unit_key(key, n), p)
    for i in range(n - 1, 0, -1):
        state = state + _GOLDEN
        r = _mix64(state)
        j = np.int64(float(r >> _S11) * _INV53 * float(i + 1))
        if j > i:
            j = i
        tmp = perm[i]
        perm[i] = perm[j]
        perm[j] = tmp
    return perm


@njit(parallel=True, cache=True)
def global_cross_permuted(Z, indptr, indices, weights, self_weights, key, P):
    """z_pi' W z_pi per column for P total-randomisation permutations: (P, S) float64."""
    n, S = Z.shape
    out = np.empty((P, S))
    for p in prange(P):
        perm = unit_permutation(key, p, n)
        lag = np.empty(S)
        row = np.empty(S)
        _cross(Z, indptr, indices, weights, self_weights, perm, lag, row)
        out[p, :] = row
    return out
