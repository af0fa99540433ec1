"""numba kernels for permutation inference (NumPy arrays in, NumPy arrays out; no pandas).

Layout (docs/methods.md, "Kernels"): values are (n units, S sectors) rows, C-contiguous, so one draw
of neighbours serves every sector with contiguous row reads (``tiled_counts``: sectors in
up to six storage groups, each cut into tiles of shape (n + 1, tile); a pass runs one
tile of every group, the passes sized for the shared cache; with several passes the draws
of a block of units are made once and reused for every pass; a group a call does not use
is passed as ``None`` and its code is never compiled, so a first call compiles only the
storage types it needs — the demo's counts, uint8 only, in about 17 s instead of 66 s for
all of them; ``subset_counts``: chosen cells only, for adaptive refinement). The gathers
(n * P * k * S values) are bound by memory traffic, so integer counts are stored as
uint8 / uint16 / float32 whenever their sums stay exact, and other values quantised to
uint16 (on graphs whose rows have equal weights) or gathered as float32, with an error
bound (cells too close to call are summed again in float64). The graph is CSR without its
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

import math

import numpy as np
from numba import njit, prange, types
from numba.extending import intrinsic, overload

from ..core.numba_cache import CACHE

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
_U64 = 2.0**-53  # unit roundoff of float64
_QTOP = 65535  # largest quantised value (uint16)
SHORT_K = 8  # units with at most this many neighbours take _short_draws

# tail codes for early stopping
TAIL_BOTH = 0  # two-sided / directed: min(ge, le)
TAIL_GREATER = 1
TAIL_LESSER = 2


@njit(inline="always", cache=CACHE)
def _mix64(z):
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(inline="always", cache=CACHE)
def _unit_key(key, i):
    return _mix64(key + (np.uint64(i) + _ONE) * _GOLDEN)


@njit(inline="always", cache=CACHE)
def _draw_state(ukey, p):
    return ukey ^ ((np.uint64(p) + _ONE) * _M1)


@njit(inline="always", cache=CACHE)
def _bounded(r32, m):
    """Map a 32-bit value to range(m) by multiply-shift (Lemire); bias below m / 2**32."""
    return np.int64((r32 * np.uint64(m)) >> _S32)


@njit(inline="always", cache=CACHE)
def _accept(buf, t, c):
    """Append c to buf[:t] unless already there; the new length."""
    for u in range(t):
        if buf[u] == c:
            return t
    buf[t] = c
    return t + 1


@njit(inline="always", cache=CACHE)
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


@njit(inline="always", cache=CACHE)
def _candidates(state, m, i):
    """The two candidates (low half first) of one splitmix64 output, shifted past unit i."""
    r = _mix64(state)
    a = _bounded(r & _LOW32, m)
    b = _bounded(r >> _S32, m)
    return a + (a >= i), b + (b >= i)


@njit(inline="always", cache=CACHE)
def _candidates8(k, n, i, state):
    """The first eight candidates of a draw (k <= 8) at once, in registers, and whether two
    of the first k are equal (candidates past k: sentinels distinct from every id and from
    each other). When they are distinct they are exactly what the sequential rejection
    loop of :func:`_fill_draw_rng` accepts (probability of a duplicate about k**2 / 2n)."""
    m = n - 1
    c0, c1 = _candidates(state + _GOLDEN, m, i)
    c2, c3 = _candidates(state + np.uint64(2) * _GOLDEN, m, i)
    c4, c5 = _candidates(state + np.uint64(3) * _GOLDEN, m, i)
    c6, c7 = _candidates(state + np.uint64(4) * _GOLDEN, m, i)
    c1, c2, c3 = (c1 if k > 1 else -2), (c2 if k > 2 else -3), (c3 if k > 3 else -4)
    c4, c5 = (c4 if k > 4 else -5), (c5 if k > 5 else -6)
    c6, c7 = (c6 if k > 6 else -7), (c7 if k > 7 else -8)
    dup = (
        (c0 == c1) | (c0 == c2) | (c0 == c3) | (c0 == c4) | (c0 == c5) | (c0 == c6)
        | (c0 == c7) | (c1 == c2) | (c1 == c3) | (c1 == c4) | (c1 == c5) | (c1 == c6)
        | (c1 == c7) | (c2 == c3) | (c2 == c4) | (c2 == c5) | (c2 == c6) | (c2 == c7)
        | (c3 == c4) | (c3 == c5) | (c3 == c6) | (c3 == c7) | (c4 == c5) | (c4 == c6)
        | (c4 == c7) | (c5 == c6) | (c5 == c7) | (c6 == c7)
    )  # fmt: skip
    return dup, (c0, c1, c2, c3, c4, c5, c6, c7)


@njit(cache=CACHE)
def _draw8(k, n, i, ukey, p):
    """Unit i's draw number p (k <= 8 neighbours, its own stream) as an 8-tuple of row ids,
    rows past k the padding row n: :func:`_fill_draw_rng`'s ids, about three times faster
    (the first eight candidates made at once, :func:`_candidates8`; the loop only after a
    duplicate).

    Not inlined (one compiled copy for every loop), and scalars in, a tuple out: a call
    that passes arrays costs reference-count updates and their structures (measured 98
    against 81 ns per draw of 50 uint16 columns, which is also the cost when inlined).
    """
    state = _draw_state(ukey, p)
    dup, c = _candidates8(k, n, i, state)
    if dup:  # rare: the sequential loop from the same state
        buf = np.empty(8, dtype=np.int64)
        _fill_draw_rng(buf, k, n, i, state)
        c = (buf[0], buf[1], buf[2], buf[3], buf[4], buf[5], buf[6], buf[7])
    return (
        c[0], c[1] if k > 1 else n, c[2] if k > 2 else n, c[3] if k > 3 else n,
        c[4] if k > 4 else n, c[5] if k > 5 else n, c[6] if k > 6 else n,
        c[7] if k > 7 else n,
    )  # fmt: skip


@njit(cache=CACHE)
def _fill_draw(buf, k, n, i, ukey, p, table):
    """Unit i's draw number p into buf[:k] (from the shared table, or its own stream; at
    most 8 ids: :func:`_draw8`'s, the ids of the one-pass loop).

    Not inlined: the general loop and the adaptive refinement share one compiled copy
    (inlining the draw code in each loop cost 5 s of compilation, no time per draw).
    """
    if table.shape[0] > 0:
        for t in range(k):
            buf[t] = _shifted(table, p, t, i)
    elif k <= 8:
        c = _draw8(k, n, i, ukey, p)
        for t in range(k):
            buf[t] = c[t]
    else:
        _fill_draw_rng(buf, k, n, i, _draw_state(ukey, p))


@njit(inline="always", cache=CACHE)
def _shifted(table, p, t, i):
    """Id t of row p of the shared table, shifted past unit i."""
    c = table[p, t]
    return c + 1 if c >= i else c


@njit(inline="always", cache=CACHE)
def _make_draw(buf, k, n, i, ukey, p, table, direct, ids, off, made, u, q):
    """Draw p of unit i into buf, unless a previous pass stored it in ``ids`` at ``off`` (a
    block's draws are made once and kept there for the next passes). At most 8 ids of its
    own stream: :func:`_draw8` called directly (passing no array to a compiled call)."""
    if direct or q >= made[u]:
        if k <= 8 and table.shape[0] == 0:
            c = _draw8(k, n, i, ukey, p)
            for t in range(k):
                buf[t] = c[t]
        else:
            _fill_draw(buf, k, n, i, ukey, p, table)
        if not direct:  # store it for the next passes
            for t in range(k):
                ids[off + t] = buf[t]
            made[u] = q + 1


@njit(cache=CACHE)
def unit_draws(key, i, n, k, p_start, p_end):
    """Neighbour ids drawn for unit ``i`` at draws ``p_start..p_end-1`` ((P, k) int64).

    Exposed for tests: the reference implementation checks the kernels' counts with them.
    It always runs the sequential rejection loop (the kernels take the fast path of
    :func:`_draw8` when they can: the tests check that both give the same ids).
    """
    out = np.empty((p_end - p_start, k), dtype=np.int64)
    ukey = _unit_key(key, i)
    buf = np.empty(k, dtype=np.int64)
    for p in range(p_start, p_end):
        _fill_draw_rng(buf, k, n, i, _draw_state(ukey, p))
        out[p - p_start, :] = buf
    return out


@njit(inline="always", cache=CACHE)
def _oriented(cg, cl, flip, s, drawn):
    """(#(sim >= obs), #(sim <= obs)) of the statistic in column s, from the counts of the
    raw sums, cg = #(T_sim >= T_obs) and cl = #(T_sim <= T_obs): ``flip`` 1 keeps them,
    -1 swaps them (the statistic is -T up to a positive factor: Moran with z_i < 0), 0
    gives every draw to both (the statistic is 0 whatever the draw: Moran with z_i = 0).
    """
    f = flip[s]
    if f > 0:
        return np.int64(cg[s]), np.int64(cl[s])
    if f < 0:
        return np.int64(cl[s]), np.int64(cg[s])
    return np.int64(drawn), np.int64(drawn)


@njit(cache=CACHE)
def _tail_done(cg, cl, flip, ts, tail, h, drawn):
    for s in range(ts):
        n_ge, n_le = _oriented(cg, cl, flip, s, drawn)
        if tail == 0:
            m = n_ge if n_ge < n_le else n_le
        elif tail == 1:
            m = n_ge
        else:
            m = n_le
        if m < h:
            return False
    return True


@njit(inline="always", cache=CACHE)
def _flip_of(sg):
    """1, -1 or 0: the sign of a multiplier."""
    return np.int8(1) if sg > 0 else (np.int8(-1) if sg < 0 else np.int8(0))


@njit(inline="always", cache=CACHE)
def _rows4(ids, off, t, k, pad, eq, weights, a):
    """Row ids t..t+3 of a neighbour list and their weights (past k: row ``pad``, weight 0)."""
    j0 = ids[off + t]
    j1 = ids[off + t + 1] if t + 1 < k else pad
    j2 = ids[off + t + 2] if t + 2 < k else pad
    j3 = ids[off + t + 3] if t + 3 < k else pad
    if eq:
        return j0, j1, j2, j3, 1.0, 1.0, 1.0, 1.0
    w0 = weights[a + t]
    w1 = weights[a + t + 1] if t + 1 < k else 0.0
    w2 = weights[a + t + 2] if t + 2 < k else 0.0
    w3 = weights[a + t + 3] if t + 3 < k else 0.0
    return j0, j1, j2, j3, w0, w1, w2, w3


@njit(inline="always", cache=CACHE)
def _lag_head(X, ids, off, k, eq, weights, a, acc, ts, end):
    """acc[:ts] = sum_{t < end} w_t X[ids[off + t], :] (t past k: the zero row X[-1]).

    Four rows per pass over the sectors; every element is still the left fold
    ``((w_0 x_0 + w_1 x_1) + w_2 x_2) + ...`` of a row-by-row loop (no reassociation), and
    a padding row adds an exact zero, so the sums are those of one row at a time. With
    equal weights the raw values are summed and never multiplied. (Indexing X[j, s], never
    a row view: views of the shared tile cost reference-count updates.)
    """
    pad = X.shape[0] - 1
    for t in range(0, end, 4):
        j0, j1, j2, j3, w0, w1, w2, w3 = _rows4(ids, off, t, k, pad, eq, weights, a)
        if t == 0:
            if eq:
                for s in range(ts):
                    acc[s] = ((X[j0, s] + X[j1, s]) + X[j2, s]) + X[j3, s]
            else:
                for s in range(ts):
                    acc[s] = ((w0 * X[j0, s] + w1 * X[j1, s]) + w2 * X[j2, s]) + w3 * X[j3, s]
        elif eq:
            for s in range(ts):
                acc[s] = (((acc[s] + X[j0, s]) + X[j1, s]) + X[j2, s]) + X[j3, s]
        else:
            for s in range(ts):
                acc[s] = (((acc[s] + w0 * X[j0, s]) + w1 * X[j1, s]) + w2 * X[j2, s]) + w3 * X[
                    j3, s
                ]


def _small_ints(*tys) -> bool:
    """Whether every numba type is an integer of at most 32 bits (sums exact in int32)."""
    return all(isinstance(t, types.Integer) and t.bitwidth <= 32 for t in tys)


@intrinsic
def _add_i32(typingctx, a, b):
    """a + b of two integers of at most 32 bits, in 32 bits (numba widens integer sums to
    64 bits: twice the vector lanes, measured 10-16 % faster on one-pass draws)."""
    if not _small_ints(a, b):
        return None

    def codegen(context, builder, signature, args):
        i32 = context.get_value_type(types.int32)

        def widen(v, t):
            if t.bitwidth == 32:
                return v
            return builder.sext(v, i32) if t.signed else builder.zext(v, i32)

        return builder.add(widen(args[0], a), widen(args[1], b))

    return types.int32(a, b), codegen


def _add(a, b):  # pragma: no cover - replaced by the overload below in kernels
    """a + b; in 32 bits for small integers (exact: sums of at most 8 uint16 values)."""


@overload(_add, inline="always", jit_options={"cache": CACHE})
def _add_impl(a, b):
    if _small_ints(a, b):
        return lambda a, b: _add_i32(a, b)
    return lambda a, b: a + b


@njit(inline="always", cache=CACHE)
def _sum8(X, s, J, W, weighted):
    """The left fold of eight rows' values in column s: ``((x_0 + x_1) + x_2) + ...``, or
    ``((w_0 x_0 + w_1 x_1) + w_2 x_2) + ...`` when ``weighted`` (the order of
    :func:`_lag_head`, so sums equal its sums bit for bit; a padding row adds an exact 0).
    """
    if weighted:
        v = ((W[0] * X[J[0], s] + W[1] * X[J[1], s]) + W[2] * X[J[2], s]) + W[3] * X[J[3], s]
        v = ((v + W[4] * X[J[4], s]) + W[5] * X[J[5], s]) + W[6] * X[J[6], s]
        return v + W[7] * X[J[7], s]
    v = _add(_add(_add(_add(X[J[0], s], X[J[1], s]), X[J[2], s]), X[J[3], s]), X[J[4], s])
    return _add(_add(_add(v, X[J[5], s]), X[J[6], s]), X[J[7], s])


@njit(inline="always", cache=CACHE)
def _short_count(X, J, W, weighted, tobs, cg, cl, ts):
    """One draw of a unit with k <= 8 neighbours: every column summed and compared in one
    pass, nothing stored (see :func:`_short_draws`)."""
    if weighted:
        for s in range(ts):
            _count(_sum8(X, s, J, W, True), tobs[s], cg, cl, s)
    else:
        for s in range(ts):
            _count(_sum8(X, s, J, W, False), tobs[s], cg, cl, s)


@njit(inline="always", cache=CACHE)
def _count(v, t, cg, cl, s):
    """Tally one exact comparison of a simulated sum v with the observed t."""
    cg[s] += v >= t
    cl[s] += v <= t


@njit(inline="always", cache=CACHE)
def _count_near(v, t, b, cg, cl, s):
    """Tally v against t when |v - t| > b (the error bound); True when too close to call."""
    d = v - t
    cg[s] += d > b
    cl[s] += d < -b
    return abs(d) <= b


@njit(inline="always", cache=CACHE)
def _lag_count(X, ids, off, k, eq, weights, a, acc, tobs, cg, cl, ts):
    """One draw of a lag statistic: the neighbour sums (as :func:`_lag_head`), compared with
    the observed ones as they are made (the last four rows and the comparison in one pass).
    The counts are of the raw sums (see :func:`_oriented`).
    """
    pad = X.shape[0] - 1
    last = ((k - 1) // 4) * 4
    _lag_head(X, ids, off, k, eq, weights, a, acc, ts, last)
    j0, j1, j2, j3, w0, w1, w2, w3 = _rows4(ids, off, last, k, pad, eq, weights, a)
    if last == 0:
        if eq:
            for s in range(ts):
                _count(((X[j0, s] + X[j1, s]) + X[j2, s]) + X[j3, s], tobs[s], cg, cl, s)
        else:
            for s in range(ts):
                v = ((w0 * X[j0, s] + w1 * X[j1, s]) + w2 * X[j2, s]) + w3 * X[j3, s]
                _count(v, tobs[s], cg, cl, s)
    elif eq:
        for s in range(ts):
            _count((((acc[s] + X[j0, s]) + X[j1, s]) + X[j2, s]) + X[j3, s], tobs[s], cg, cl, s)
    else:
        for s in range(ts):
            v = (((acc[s] + w0 * X[j0, s]) + w1 * X[j1, s]) + w2 * X[j2, s]) + w3 * X[j3, s]
            _count(v, tobs[s], cg, cl, s)


@njit(inline="always", cache=CACHE)
def _lag_count_f32(X, X64, ids, off, k, eq, weights, a, acc, tobs, t64, bnd, cg, cl, ts):
    """As :func:`_lag_count` for float64 values gathered as float32 (half the traffic).

    ``bnd[s]`` bounds the error of the float32 difference against the float64 one, so a
    draw with ``|d| > bnd`` is counted from the float32 sums with the float64 decision;
    the rare cells with ``|d| <= bnd`` are summed again from ``X64`` in the float64
    order of operations (``t64``: observed float64 sums). Counts equal float64 counts.
    """
    pad = X.shape[0] - 1
    last = ((k - 1) // 4) * 4
    _lag_head(X, ids, off, k, eq, weights, a, acc, ts, last)
    j0, j1, j2, j3, w0, w1, w2, w3 = _rows4(ids, off, last, k, pad, eq, weights, a)
    near = 0
    if last == 0:
        if eq:
            for s in range(ts):
                v = ((X[j0, s] + X[j1, s]) + X[j2, s]) + X[j3, s]
                acc[s] = v
                near += _count_near(v, tobs[s], bnd[s], cg, cl, s)
        else:
            for s in range(ts):
                v = ((w0 * X[j0, s] + w1 * X[j1, s]) + w2 * X[j2, s]) + w3 * X[j3, s]
                acc[s] = v
                near += _count_near(v, tobs[s], bnd[s], cg, cl, s)
    elif eq:
        for s in range(ts):
            v = (((acc[s] + X[j0, s]) + X[j1, s]) + X[j2, s]) + X[j3, s]
            acc[s] = v
            near += _count_near(v, tobs[s], bnd[s], cg, cl, s)
    else:
        for s in range(ts):
            v = (((acc[s] + w0 * X[j0, s]) + w1 * X[j1, s]) + w2 * X[j2, s]) + w3 * X[j3, s]
            acc[s] = v
            near += _count_near(v, tobs[s], bnd[s], cg, cl, s)
    if near:
        for s in range(ts):
            if abs(acc[s] - tobs[s]) <= bnd[s]:
                v64 = 0.0
                for t in range(k):
                    x = X64[ids[off + t], s]
                    x = x if eq else weights[a + t] * x
                    v64 = x if t == 0 else v64 + x
                _count(v64, t64[s], cg, cl, s)


@njit(inline="always", cache=CACHE)
def _count_q(v, lo, hi, cg, cl, s):
    """Tally an integer sum v of quantised values: ``v > hi`` is surely at least as large as
    the observed sum, ``v < lo`` surely at most; 0 when neither (too close to call), else 1.
    (Integer columns stored as themselves have ``hi = T - 1`` and ``lo = T + 1``: a tie
    counts on both sides and nothing is ever too close to call.)"""
    g = np.int32(v > hi)
    m = np.int32(v < lo)
    cg[s] += g
    cl[s] += m
    return g | m


@njit(inline="always", cache=CACHE)
def _lag_count_q(X, X64, ids, off, k, weights, a, acc, lo, hi, t64, cg, cl, ts):
    """As :func:`_lag_count_f32` for float64 values stored quantised as uint16 (group Q).

    Column values x = m + d q + e with q in 0..65535 and |e| <= E, so a draw's float64 sum
    lies within a bound of k m + d Q, Q the exact integer sum of the q: the integer
    thresholds ``lo``, ``hi`` of :func:`_q_bounds` decide every draw with ``Q > hi`` or
    ``Q < lo`` as float64 would, and the rare draws in between are summed again from ``X64``
    in the float64 order of operations (``t64``: observed float64 sums). Rows have equal
    weights (raw sums): the group is only used then. Counts equal float64 counts, with a
    quarter of the bytes gathered and integer comparisons.
    """
    pad = X.shape[0] - 1
    last = ((k - 1) // 4) * 4
    _lag_head(X, ids, off, k, True, weights, a, acc, ts, last)
    j0, j1, j2, j3, _, _, _, _ = _rows4(ids, off, last, k, pad, True, weights, a)
    decided = 0
    if last == 0:
        for s in range(ts):
            v = ((X[j0, s] + X[j1, s]) + X[j2, s]) + X[j3, s]
            decided += _count_q(v, lo[s], hi[s], cg, cl, s)
    else:
        for s in range(ts):
            v = (((acc[s] + X[j0, s]) + X[j1, s]) + X[j2, s]) + X[j3, s]
            decided += _count_q(v, lo[s], hi[s], cg, cl, s)
    if decided < ts:  # rare: find the cells too close to call and sum them in float64
        for s in range(ts):
            v = 0
            for t in range(k):
                v += X[ids[off + t], s]
            if lo[s] <= v <= hi[s]:
                v64 = 0.0
                for t in range(k):
                    x = X64[ids[off + t], s]
                    v64 = x if t == 0 else v64 + x
                _count(v64, t64[s], cg, cl, s)


@njit(inline="always", cache=CACHE)
def _sum64(X64, s, J, k, W, weighted):
    """The float64 left fold of a draw's k values in column s (the order of
    :func:`_lag_head`: cells too close to call are decided with it)."""
    v = 0.0
    for t in range(k):
        x = X64[J[t], s]
        x = W[t] * x if weighted else x
        v = x if t == 0 else v + x
    return v


@njit(inline="always", cache=CACHE)
def _short_f32(X, X64, J, W, weighted, k, tobs, t64, bnd, cg, cl, ts):
    """:func:`_lag_count_f32` for a unit with k <= 8 neighbours (one pass, nothing stored:
    the rare cells too close to call are summed again, in float32 to find them, in float64
    to decide them)."""
    near = False  # a boolean "or" (an integer tally costs more: see _short_q)
    if weighted:
        for s in range(ts):
            near |= _count_near(_sum8(X, s, J, W, True), tobs[s], bnd[s], cg, cl, s)
    else:
        for s in range(ts):
            near |= _count_near(_sum8(X, s, J, W, False), tobs[s], bnd[s], cg, cl, s)
    if near:
        for s in range(ts):
            if abs(_sum8(X, s, J, W, weighted) - tobs[s]) <= bnd[s]:
                _count(_sum64(X64, s, J, k, W, weighted), t64[s], cg, cl, s)


@njit(inline="always", cache=CACHE)
def _short_q(X, X64, J, W, k, lo, hi, t64, cg, cl, ts):
    """:func:`_lag_count_q` for a unit with k <= 8 neighbours (equal weights).

    Cells too close to call are flagged by a boolean "or": a 32-bit tally of the decided
    cells measured about 5 % slower (LLVM made each comparison twice, once as a mask for
    the tally, and reduced an integer vector at every draw).
    """
    near = False
    for s in range(ts):
        v = _sum8(X, s, J, W, False)
        cg[s] += v > hi[s]
        cl[s] += v < lo[s]
        near |= (v >= lo[s]) & (v <= hi[s])
    if near:  # rare: find the cells too close to call and sum them in float64
        for s in range(ts):
            if lo[s] <= _sum8(X, s, J, W, False) <= hi[s]:
                _count(_sum64(X64, s, J, k, W, False), t64[s], cg, cl, s)


@njit(inline="always", cache=CACHE)
def _short_draw(k, n, i, ukey, p, table, direct, ids, off, made, u, q):
    """Draw p (number q of the call) of unit i, k <= 8, as an 8-tuple of row ids (past k the
    padding row n): stored by a previous pass, else made (:func:`_draw8`, or the shared
    table) and stored for the next passes. The draws of :func:`_make_draw`."""
    if not direct and q < made[u]:
        return (
            np.int64(ids[off]), np.int64(ids[off + 1]) if k > 1 else n,
            np.int64(ids[off + 2]) if k > 2 else n, np.int64(ids[off + 3]) if k > 3 else n,
            np.int64(ids[off + 4]) if k > 4 else n, np.int64(ids[off + 5]) if k > 5 else n,
            np.int64(ids[off + 6]) if k > 6 else n, np.int64(ids[off + 7]) if k > 7 else n,
        )  # fmt: skip
    if table.shape[0] > 0:
        J = (
            _shifted(table, p, 0, i), _shifted(table, p, 1, i) if k > 1 else n,
            _shifted(table, p, 2, i) if k > 2 else n, _shifted(table, p, 3, i) if k > 3 else n,
            _shifted(table, p, 4, i) if k > 4 else n, _shifted(table, p, 5, i) if k > 5 else n,
            _shifted(table, p, 6, i) if k > 6 else n, _shifted(table, p, 7, i) if k > 7 else n,
        )  # fmt: skip
    else:
        J = _draw8(k, n, i, ukey, p)
    if not direct:  # store it for the next passes
        for t in range(k):
            ids[off + t] = J[t]
        made[u] = q + 1
    return J


@njit(cache=CACHE)
def _short_draws(wts, X8, X16, X32, X64, XA, XA64, XQ, XQ64, obs, cg, cl, offs, unit, draws,
                 stop, cache):  # fmt: skip
    """Every draw of one unit with k <= 8 neighbours (lag statistics); the draws done.

    The draw's ids fill an 8-tuple (rows past k: the zero padding row), and each storage
    group sums and compares its columns in one pass over them. A separate function: in the
    general loop of :func:`_tile_pass` the same work costs about 1.5 times as much per draw
    (measured at N = 35 000, k = 8, 50 columns of one byte: 60 against 25 ns at one
    column). ``wts`` is None for equal weights (raw sums), else the unit's 8 weights
    (zeros past k). Same sums, bit for bit, as :func:`_lag_head`.
    """
    t8, t16, t32, t64, ta, ta64, bnd, loq, hiq, tq64, flip = obs
    o16, o32, o64, oa, oq, width = offs
    i, k, n, ukey, u, base = unit
    _, table, p_start, p_end = draws
    tail, h, check = stop
    direct, ids, made, _, kmax = cache
    weighted = wts is not None
    W = (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
    if wts is not None:
        W = (wts[0], wts[1], wts[2], wts[3], wts[4], wts[5], wts[6], wts[7])
    # each group's counts (views made once: a view costs reference-count updates)
    w8, w16, w32, w64, wa, wq = o16, o32 - o16, o64 - o32, oa - o64, oq - oa, width - oq
    cg8, cl8, cg16, cl16 = cg[:o16], cl[:o16], cg[o16:o32], cl[o16:o32]
    cg32, cl32, cg64, cl64 = cg[o32:o64], cl[o32:o64], cg[o64:oa], cl[o64:oa]
    cga, cla, cgq, clq = cg[oa:oq], cl[oa:oq], cg[oq:], cl[oq:]
    n_draws = p_end - p_start
    done = p_end
    for q in range(n_draws):
        off = 0 if direct else base + q * kmax
        J = _short_draw(k, n, i, ukey, p_start + q, table, direct, ids, off, made, u, q)
        if X8 is not None:  # noqa: SIM102 - alone, for numba to prune it
            if w8:
                _short_count(X8, J, W, weighted, t8, cg8, cl8, w8)
        if X16 is not None:  # noqa: SIM102 - alone, for numba to prune it
            if w16:
                _short_count(X16, J, W, weighted, t16, cg16, cl16, w16)
        if X32 is not None:  # noqa: SIM102 - alone, for numba to prune it
            if w32:
                _short_count(X32, J, W, weighted, t32, cg32, cl32, w32)
        if X64 is not None:  # noqa: SIM102 - alone, for numba to prune it
            if w64:
                _short_count(X64, J, W, weighted, t64, cg64, cl64, w64)
        if XA is not None:  # noqa: SIM102 - alone, for numba to prune it
            if wa:
                _short_f32(XA, XA64, J, W, weighted, k, ta, ta64, bnd, cga, cla, wa)
        if XQ is not None:  # noqa: SIM102 - alone, for numba to prune it
            if wq:
                _short_q(XQ, XQ64, J, W, k, loq, hiq, tq64, cgq, clq, wq)
        if h > 0 and (q + 1) % check == 0 and _tail_done(cg, cl, flip, width, tail, h, q + 1):
            done = p_start + q + 1
            break
    return done


@njit(cache=CACHE)
def _q_bounds(P, tq, t64, k, lo, hi, w):
    """Unit thresholds of the quantised columns (group Q) of one tile.

    P (4, w) float64: per column the offset m, the step d, the bound E of |x - (m + d q)|
    (-1: integer values stored as themselves) and A = max |x| + |m|. A draw's float64 sum
    F differs from k m + d Q by at most k E (quantisation) plus (k - 1) u k max|x| (float64
    rounding of F; u = 2**-53); the thresholds' own arithmetic is off by a few u k A.
    ``b`` bounds all of it (with 1 % to spare), so ``Q > hi = floor((F_obs - k m + b) / d)``
    means ``F > F_obs`` and ``Q < lo = ceil((F_obs - k m - b) / d)`` means ``F < F_obs``.
    """
    top = float(_QTOP * k + 1)
    for s in range(w):
        e = P[2, s]
        if e < 0.0:  # exact integer sums: ties on both sides, never too close to call
            hi[s] = tq[s] - 1
            lo[s] = tq[s] + 1
            continue
        m, d, big = P[0, s], P[1, s], P[3, s]
        b = 1.01 * (k * e + (k + 8) * _U64 * k * big) + 8.0 * _U64 * k * big
        c = t64[s] - k * m
        h = min(max((c + b) / d, -1.0), top)
        low = min(max((c - b) / d, -1.0), top)
        hi[s] = np.int32(math.floor(h))
        lo[s] = np.int32(math.ceil(low))


@njit(cache=CACHE)
def _geary_sum(X, i, ids, off, k, eq, weights, a, acc, ts):
    """acc[:ts] = sum_t w_t (X[i, :] - X[ids[off + t], :])**2."""
    j = ids[off]
    w = 1.0 if eq else weights[a]
    for s in range(ts):
        d = X[i, s] - X[j, s]
        acc[s] = w * (d * d)
    for t in range(1, k):
        j = ids[off + t]
        w = 1.0 if eq else weights[a + t]
        for s in range(ts):
            d = X[i, s] - X[j, s]
            acc[s] += w * (d * d)


@njit(inline="always", cache=CACHE)
def _observed(X, S, i, flip, o, indices, a, k, eq, weights, t, w):
    """Unit i's orientation of each column of a group (at ``flip[o:]``) and its observed
    neighbour sums ``t``."""
    for s in range(w):
        flip[o + s] = _flip_of(S[i, s])
    _lag_head(X, indices, a, k, eq, weights, a, t, w, k)


@njit(cache=CACHE)
def _tile_pass(X8, S8, C8, X16, S16, C16, X32, S32, C32, X64, S64, C64, XA, SA, CA, XA64, MA,
               XQ, SQ, CQ, XQ64, PQ, LONG, SEQ, SW, geary, i0, i1, graph, draws, stop, cache,
               out):  # fmt: skip
    """Counts of units i0..i1-1 on one tile of each storage group (one pass of draws).

    For each storage group g: Xg (n + 1, wg) values (last row zeros), Sg (n, wg) int8
    orientation (the draws count the raw sums; see :func:`_oriented`), Cg (wg,) output
    columns (-1: padding); a group absent from the call is ``None`` (its three arrays), and
    numba prunes its code before compiling: only the storage groups a call uses are
    compiled (each presence pattern is one specialisation, cached on disk).
    Group A is float64 values gathered as float32 (XA), with their float64 copy XA64 and
    each column's largest magnitude MA (float64, (wA,)). Group Q is float64 values stored
    quantised as uint16 (XQ, on graphs whose rows all have equal weights), with their
    float64 copy XQ64 and PQ (4, wQ) the quantisation of each column (see
    :func:`_q_bounds`).
    LONG, SEQ, SW: None when no unit of the call takes that path (its code is then not
    compiled): the general loop (k > 8, or Geary), :func:`_short_draws` with equal
    weights, with unequal weights.
    The other arguments are tuples of :func:`tiled_counts`' arguments and block state.
    Local Geary uses the float64 group only (its values are always stored as float64).
    """
    indptr, indices, weights, equal = graph
    key, table, p_start, p_end = draws
    tail, h, check = stop
    direct, ids, made, buf, kmax = cache
    ge, le, nperm = out
    n = indptr.shape[0] - 1
    w8 = w16 = w32 = w64 = wa = wq = 0
    if X8 is not None:
        w8 = X8.shape[1]
    if X16 is not None:
        w16 = X16.shape[1]
    if X32 is not None:
        w32 = X32.shape[1]
    if X64 is not None:
        w64 = X64.shape[1]
    if XA is not None:
        wa = XA.shape[1]
    if XQ is not None:
        wq = XQ.shape[1]
    o16 = w8
    o32 = o16 + w16
    o64 = o32 + w32
    oa = o64 + w64
    oq = oa + wa
    width = oq + wq
    n_draws = p_end - p_start
    # tail counts of all the pass's columns in one array (one early-stop test), seen per
    # group; int32 (as the outputs): twice the lanes of int64 in the comparison loops
    cg = np.zeros(width, dtype=np.int32)
    cl = np.zeros(width, dtype=np.int32)
    flip = np.ones(width, dtype=np.int8)
    cg8, cl8 = cg[:o16], cl[:o16]
    cg16, cl16 = cg[o16:o32], cl[o16:o32]
    cg32, cl32 = cg[o32:o64], cl[o32:o64]
    cg64, cl64 = cg[o64:oa], cl[o64:oa]
    cga, cla = cg[oa:oq], cl[oa:oq]
    cgq, clq = cg[oq:], cl[oq:]
    cols = np.empty(width, dtype=np.int64)
    # observed and simulated sums: int32 for the integer groups (exact), else the values' type
    t8, a8 = np.empty(w8, dtype=np.int32), np.empty(w8, dtype=np.int32)
    t16, a16 = np.empty(w16, dtype=np.int32), np.empty(w16, dtype=np.int32)
    t32, a32 = np.empty(w32, dtype=np.float32), np.empty(w32, dtype=np.float32)
    t64, a64 = np.empty(w64, dtype=np.float64), np.empty(w64, dtype=np.float64)
    ta, aa = np.empty(wa, dtype=np.float32), np.empty(wa, dtype=np.float32)
    bnd, ta64 = np.empty(wa, dtype=np.float32), np.empty(wa, dtype=np.float64)
    tq, aq = np.empty(wq, dtype=np.int32), np.empty(wq, dtype=np.int32)
    loq, hiq = np.empty(wq, dtype=np.int32), np.empty(wq, dtype=np.int32)
    tq64 = np.empty(wq, dtype=np.float64)
    obs = (t8, t16, t32, t64, ta, ta64, bnd, loq, hiq, tq64, flip)
    offs = (o16, o32, o64, oa, oq, width)
    wbuf = np.zeros(8)  # a unit's weights, zeros past k
    if X8 is not None:
        cols[:o16] = C8
    if X16 is not None:
        cols[o16:o32] = C16
    if X32 is not None:
        cols[o32:o64] = C32
    if X64 is not None:
        cols[o64:oa] = C64
    if XA is not None:
        cols[oa:oq] = CA
    if XQ is not None:
        cols[oq:] = CQ
    for i in range(i0, i1):
        a = indptr[i]
        k = indptr[i + 1] - a
        if k == 0:
            continue
        u = i - i0
        base = u * n_draws * kmax
        eq = equal[i]
        ukey = _unit_key(key, i)
        for s in range(width):
            cg[s] = 0
            cl[s] = 0
        if not geary:  # (Geary's statistic grows with its sum: flip stays 1)
            if X8 is not None:
                _observed(X8, S8, i, flip, 0, indices, a, k, eq, weights, t8, w8)
            if X16 is not None:
                _observed(X16, S16, i, flip, o16, indices, a, k, eq, weights, t16, w16)
            if X32 is not None:
                _observed(X32, S32, i, flip, o32, indices, a, k, eq, weights, t32, w32)
            if X64 is not None:
                _observed(X64, S64, i, flip, o64, indices, a, k, eq, weights, t64, w64)
            if XA is not None:
                _observed(XA, SA, i, flip, oa, indices, a, k, eq, weights, ta, wa)
                _lag_head(XA64, indices, a, k, eq, weights, a, ta64, wa, k)
                # error bound of d = sum - observed sum in float32 against float64:
                # each sum is off by at most (k + 3) u W1 max|x| (u = 2**-24: rounding of
                # the k values, of the k - 1 additions, of the stored partial sum), the
                # subtraction by u 2 W1 max|x|, float64's own error is below 1e-8 of it;
                # W1 = sum of |weights| (k for raw sums). (2k + 8) u and 1 % margin.
                w1 = 0.0
                for t in range(k):
                    w1 += 1.0 if eq else abs(weights[a + t])
                f = (2 * k + 8) * 2.0**-24 * 1.01 * w1
                for s in range(wa):
                    # MA < 0 marks an integer column whose float32 sums are exact:
                    # d > -0.5 is then d >= 0, ties count on both sides, nothing is near
                    bnd[s] = f * MA[s] if MA[s] >= 0.0 else -0.5
            if XQ is not None:
                _observed(XQ, SQ, i, flip, oq, indices, a, k, eq, weights, tq, wq)
                _lag_head(XQ64, indices, a, k, eq, weights, a, tq64, wq, k)
                _q_bounds(PQ, tq, tq64, k, loq, hiq, wq)
        elif X64 is not None:
            _geary_sum(X64, i, indices, a, k, eq, weights, a, t64, w64)
        done = p_end
        if not geary and k <= SHORT_K:  # one pass per draw, in a function of its own
            unit = (i, k, n, ukey, u, base)
            if eq:
                if SEQ is not None:  # alone, for numba to prune it
                    done = _short_draws(
                        None, X8, X16, X32, X64, XA, XA64, XQ, XQ64, obs, cg, cl, offs, unit,
                        draws, stop, cache,
                    )  # fmt: skip
            elif SW is not None:
                for t in range(8):
                    wbuf[t] = weights[a + t] if t < k else 0.0
                done = _short_draws(
                    wbuf, X8, X16, X32, X64, XA, XA64, XQ, XQ64, obs, cg, cl, offs, unit,
                    draws, stop, cache,
                )  # fmt: skip
        elif LONG is not None:
            for q in range(n_draws):
                off = 0 if direct else base + q * kmax
                _make_draw(buf, k, n, i, ukey, p_start + q, table, direct, ids, off, made, u, q)
                src = buf if direct else ids
                if geary:
                    if X64 is not None:
                        _geary_sum(X64, i, src, off, k, eq, weights, a, a64, w64)
                        for s in range(w64):
                            _count(a64[s], t64[s], cg64, cl64, s)
                else:
                    # a group present in the call but without a tile in this pass (the groups
                    # run one after the other) has width 0: skip it, or each draw pays the
                    # group's fixed cost for nothing
                    if X8 is not None:  # noqa: SIM102 - alone, for numba to prune it
                        if w8:
                            _lag_count(X8, src, off, k, eq, weights, a, a8, t8, cg8, cl8, w8)
                    if X16 is not None:  # noqa: SIM102 - alone, for numba to prune it
                        if w16:
                            _lag_count(X16, src, off, k, eq, weights, a, a16, t16, cg16, cl16, w16)
                    if X32 is not None:  # noqa: SIM102 - alone, for numba to prune it
                        if w32:
                            _lag_count(X32, src, off, k, eq, weights, a, a32, t32, cg32, cl32, w32)
                    if X64 is not None:  # noqa: SIM102 - alone, for numba to prune it
                        if w64:
                            _lag_count(X64, src, off, k, eq, weights, a, a64, t64, cg64, cl64, w64)
                    if XA is not None:  # noqa: SIM102 - alone, for numba to prune it
                        if wa:
                            _lag_count_f32(
                                XA, XA64, src, off, k, eq, weights, a, aa, ta, ta64, bnd, cga,
                                cla, wa,
                            )  # fmt: skip
                    if XQ is not None:  # noqa: SIM102 - alone, for numba to prune it
                        if wq:
                            _lag_count_q(
                                XQ, XQ64, src, off, k, weights, a, aq, loq, hiq, tq64, cgq,
                                clq, wq,
                            )  # fmt: skip
                if (
                    h > 0
                    and (q + 1) % check == 0
                    and _tail_done(cg, cl, flip, width, tail, h, q + 1)
                ):
                    done = p_start + q + 1
                    break
        drawn = done - p_start
        for s in range(width):
            c = cols[s]
            if c >= 0:
                n_ge, n_le = _oriented(cg, cl, flip, s, drawn)
                ge[i, c] += n_ge
                le[i, c] += n_le
                nperm[i, c] += drawn


def _pick3(G, tt, rows):  # pragma: no cover - replaced by the overload below in kernels
    """Tile tt of a group's (n_tiles, rows, w) array, an empty (rows, 0) one outside its
    tiles, None for an absent group."""


def _pick2(G, tt):  # pragma: no cover - replaced by the overload below in kernels
    """As :func:`_pick3` for a group's (n_tiles, w) array."""


@overload(_pick3, jit_options={"cache": CACHE})
def _pick3_impl(G, tt, rows):
    if isinstance(G, types.NoneType):  # an absent group: chosen when compiling
        return lambda G, tt, rows: None

    def impl(G, tt, rows):
        if 0 <= tt < G.shape[0]:
            return G[tt]
        return np.zeros((rows, 0), dtype=G.dtype)

    return impl


@overload(_pick2, jit_options={"cache": CACHE})
def _pick2_impl(G, tt):
    if isinstance(G, types.NoneType):
        return lambda G, tt: None

    def impl(G, tt):
        if 0 <= tt < G.shape[0]:
            return G[tt]
        return np.zeros(0, dtype=G.dtype)

    return impl


@njit(cache=CACHE)
def _block_counts(groups, starts, paths, geary, i0, i1, direct, kmax, graph, draws, stop, out):
    """Every pass of tiles for the units i0..i1-1 (one parallel task).

    Pass tt takes tile tt of each storage group (groups with fewer tiles take an empty
    one). (A plain function called from the parallel loop: _tile_pass is then compiled
    once, not once more for the parallel body.)
    """
    p_start, p_end = draws[2], draws[3]
    ids = np.empty(0 if direct else (i1 - i0) * (p_end - p_start) * kmax, dtype=np.int32)
    made = np.zeros(i1 - i0, dtype=np.int64)
    buf = np.empty(max(kmax, 8), dtype=np.int32)  # the type of ids; >= 8: fast draws
    cache = (direct, ids, made, buf, np.int64(kmax))  # never a literal type: one compile
    X8, S8, C8, X16, S16, C16, X32, S32, C32, X64, S64, C64, XA, SA, CA, XA64, MA = groups[:17]
    XQ, SQ, CQ, XQ64, PQ = groups[17:]
    n1 = graph[0].shape[0]
    n_pass = starts[6]
    for tt in range(n_pass):
        t0, t1, t2 = tt - starts[0], tt - starts[1], tt - starts[2]
        t3, t4, t5 = tt - starts[3], tt - starts[4], tt - starts[5]
        _tile_pass(
            _pick3(X8, t0, n1), _pick3(S8, t0, n1 - 1), _pick2(C8, t0),
            _pick3(X16, t1, n1), _pick3(S16, t1, n1 - 1), _pick2(C16, t1),
            _pick3(X32, t2, n1), _pick3(S32, t2, n1 - 1), _pick2(C32, t2),
            _pick3(X64, t3, n1), _pick3(S64, t3, n1 - 1), _pick2(C64, t3),
            _pick3(XA, t4, n1), _pick3(SA, t4, n1 - 1), _pick2(CA, t4),
            _pick3(XA64, t4, n1), _pick2(MA, t4),
            _pick3(XQ, t5, n1), _pick3(SQ, t5, n1 - 1), _pick2(CQ, t5),
            _pick3(XQ64, t5, n1), _pick3(PQ, t5, 4),
            paths[0], paths[1], paths[2], geary, i0, i1, graph, draws, stop, cache, out,
        )  # fmt: skip


@njit(parallel=True, cache=CACHE)
def tiled_counts(
    groups,
    starts,
    paths,
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

    One draw of neighbours serves every sector: the sectors come in up to six storage
    groups (memory traffic is the bottleneck, so each sector is gathered in the narrowest
    type that still gives float64's counts): uint8, uint16 and float32 for integer sums
    that stay exact, float64, group A, float64 values gathered as float32 with an error
    bound, and group Q, float64 values quantised to uint16 and summed in integers (cells
    too close to call are summed again in float64). Each group is cut into tiles; pass tt
    runs tile tt of every group with one draw per (unit, permutation), so the fixed cost of
    a draw is paid once for all the groups.

    groups : (X8, S8, C8, X16, S16, C16, X32, S32, C32, X64, S64, C64, XA, SA, CA, XA64, MA,
        XQ, SQ, CQ, XQ64, PQ), for each storage group g: Xg (n_tiles, n + 1, tile)
        C-contiguous values (``None``, with the group's other arrays, when the group is
        unused: its code is not compiled), the last row zeros (padding for blocks of four
        neighbours), the last tile zero-padded; Sg int8 (n_tiles, n, tile): orientation of
        the counts, the sign of the statistic's factor on the sum (sign of z_i for Moran, 1
        for Gi / Gi*; ignored when ``geary``), see :func:`_oriented`; Cg int64
        (n_tiles, tile): the output column of each tile column (-1: padding). Group A adds
        XA64, the float64 values (same shape as XA), and MA (n_tiles, tile) float64, each
        column's max |x| (-1: an integer column whose float32 sums are exact, compared
        exactly). Group Q (only when every row has equal weights) adds XQ64, the float64
        values, and PQ (n_tiles, 4, tile), each column's quantisation (:func:`_q_bounds`).
        Local Geary uses the float64 group only.
    starts : int64 (7,), the first pass of each group: pass tt runs tile tt - starts[g] of
        group g (when it has one). All zeros: every pass mixes the groups (when they fit
        one pass); else the groups run one after the other, each in tiles of the budget.
        ``starts[6]``: the number of passes.
    paths : (long, short_equal, short_weighted), each None when no unit takes that path
        (its code is not compiled), else 0: the general loop (units with more than 8
        neighbours, and Geary), units with at most 8 neighbours of equal weights, of
        unequal weights (see :func:`_short_draws`). A unit never runs a path given None.
    geary : False for lag statistics ``T = sum_t w_t x_j``, True for local Geary
        ``T = sum_t w_t (x_i - x_j)**2``.
    table : int64 (P_table, kmax) shared table, or shape (0, 0) for per-unit streams.
    p_start, p_end : draw numbers to run (stream positions, or table rows).
    tail, h, check : early stop of a (unit, pass) once every sector of the pass has its tail
        count >= h, tested every ``check`` draws; h <= 0 disables it.
    block : units per parallel task; with more than one pass, their draws are made once
        and reused for every pass.
    ge, le, nperm : int32 (n, S) #(sim >= obs), #(sim <= obs), draws used (added to).
    """
    n = ge.shape[0]
    kmax = 0
    for i in range(n):
        kmax = max(kmax, indptr[i + 1] - indptr[i])
    direct = starts[6] == 1
    graph = (indptr, indices, weights, equal)
    draws = (key, table, p_start, p_end)
    stop = (tail, h, check)
    out = (ge, le, nperm)
    n_blocks = (n + block - 1) // block
    for b in prange(n_blocks):
        _block_counts(
            groups,
            starts,
            paths,
            geary,
            b * block,
            min(n, (b + 1) * block),
            direct,
            kmax,
            graph,
            draws,
            stop,
            out,
        )
    return 0


@njit(inline="always", cache=CACHE)
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


@njit(parallel=True, cache=CACHE)
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
        ids = np.empty(max(k, 8), dtype=np.int64)  # >= 8: fast draws
        flip = np.ones(ts, dtype=np.int8)
        if not geary:
            for s in range(ts):
                flip[s] = _flip_of(sgn[i, cols[c0 + s]])
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
                _count(acc[s], tobs[s], cg, cl, s)
            drawn = p + 1 - p_start
            if h > 0 and drawn % check == 0 and _tail_done(cg, cl, flip, ts, tail, h, drawn):
                done = p + 1
                break
        drawn = done - p_start
        for s in range(ts):
            c = cols[c0 + s]
            n_ge, n_le = _oriented(cg, cl, flip, s, drawn)
            ge[i, c] += n_ge
            le[i, c] += n_le
            nperm[i, c] += drawn
    return 0


@njit(cache=CACHE)
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


@njit(cache=CACHE)
def global_cross_observed(Z, indptr, indices, weights, self_weights):
    """Observed z'Wz per column (same arithmetic as the permuted values)."""
    n, S = Z.shape
    out = np.empty(S)
    lag = np.empty(S)
    _cross(Z, indptr, indices, weights, self_weights, np.arange(n), lag, out)
    return out


@njit(cache=CACHE)
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


@njit(parallel=True, cache=CACHE)
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
