"""numba kernels for the distance-based measures (Kd / Kemp and M).

NumPy arrays in, NumPy arrays out; no pandas, no random numbers (random draws are made by
the caller with a seeded NumPy Generator and passed in, so results do not depend on the
number of threads).

Coordinates are always three float64 arrays ``x, y, z`` in kilometres:

* planar data: projected coordinates in km and ``z = 0``; distance = Euclidean distance;
* lon/lat data: 3-D coordinates on a sphere of radius ``EARTH_RADIUS_KM``; distance =
  great-circle distance ``2 R asin(chord / 2R)``.

Pairs are found with a uniform grid (cell size >= the search radius; cells keyed by an int64
and looked up by binary search, so the grid stays small whatever the extent). Work is split
into blocks of points whose number depends only on the number of points, never on the
thread count, and per-block buffers are reduced in block order: results are bit-identical for
any ``NUMBA_NUM_THREADS``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ..core.numba_cache import CACHE

EARTH_RADIUS_KM = 6371.0088
#: Gaussian kernel truncation of the exact Kd sums, in bandwidths (exp(-50) ~ 2e-22).
KD_TRUNCATE = 10.0
#: Mass below 0 of the pairs beyond 4 h is counted up to 9 h (Phi(-9) ~ 1e-19 beyond).
ERFC_CUT = 9.0
#: Number of histogram bins used to locate the quartiles of the pair distances exactly.
HIST_BINS = 65536
#: Work blocks of the histogram pass (memory: blocks x HIST_BINS int64).
HIST_BLOCKS = 16
#: Size of the binned-mode buffers (R density() grids: 2 n <= 8192 and 2 * 512).
MAIN_SIZE = 8192
MIRROR_SIZE = 1024
META = 16
#: Planar grids use cells of cutoff / 3 and look 3 cells around (49 cells covering 5.4
#: cutoff**2 instead of 9 cutoff**2 with cells of size cutoff); lon/lat (3-D) grids use
#: cells of size cutoff and 27 neighbours.
PLANAR_REACH = 3
MAX_CELLS = 49
# meta slots
BW, NBW, LO, UP, NMAIN, FROMM, LOM, UPM, WREFL, MAXD, NDENS, CORR, OK = range(13)


# ----------------------------------------------------------------------------- grid


@njit(cache=CACHE)
def _distance(x1, y1, z1, x2, y2, z2, spherical):
    dx = x1 - x2
    dy = y1 - y2
    dz = z1 - z2
    c = math.sqrt(dx * dx + dy * dy + dz * dz)
    if spherical:
        s = c / (2.0 * EARTH_RADIUS_KM)
        if s > 1.0:
            s = 1.0
        return 2.0 * EARTH_RADIUS_KM * math.asin(s)
    return c


@njit(cache=CACHE)
def _cell_size(cutoff, spherical):
    """Grid cell (in coordinate units) that guarantees neighbours within ``cutoff`` km."""
    if spherical:
        s = min(cutoff / (2.0 * EARTH_RADIUS_KM), math.pi / 2.0)
        return 2.0 * EARTH_RADIUS_KM * math.sin(s) * (1.0 + 1e-12) + 1e-9
    return cutoff * (1.0 + 1e-12) + 1e-12


@njit(cache=CACHE)
def build_grid(x, y, z, cutoff, spherical):
    """Sort points by grid cell.

    Returns order (int64[n]: sorted position -> point index), keys of the non-empty cells
    (int64[m], sorted), starts (int64[m + 1]) and params float64[8]
    (x0, y0, z0, cell, nx, ny, nz, reach).
    """
    n = x.shape[0]
    params = np.zeros(8)
    reach = 1 if spherical else PLANAR_REACH
    params[7] = reach
    if n == 0:
        params[3] = 1.0
        params[4] = 1
        params[5] = 1
        params[6] = 1
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(1, np.int64), params
    cell = _cell_size(cutoff, spherical) / reach
    x0 = x.min()
    y0 = y.min()
    z0 = z.min()
    ext = max(x.max() - x0, y.max() - y0, z.max() - z0)
    # at most ~1e6 cells per axis so that keys never overflow
    cell = max(cell, ext / 1.0e6, 1e-9)
    nx = int((x.max() - x0) / cell) + 1
    ny = int((y.max() - y0) / cell) + 1
    nz = int((z.max() - z0) / cell) + 1
    keys = np.empty(n, np.int64)
    for i in range(n):
        ix = int((x[i] - x0) / cell)
        iy = int((y[i] - y0) / cell)
        iz = int((z[i] - z0) / cell)
        keys[i] = (ix * ny + iy) * nz + iz
    order = np.argsort(keys, kind="mergesort")
    sk = keys[order]
    m = 1
    for i in range(1, n):
        if sk[i] != sk[i - 1]:
            m += 1
    ukeys = np.empty(m, np.int64)
    starts = np.empty(m + 1, np.int64)
    ukeys[0] = sk[0]
    starts[0] = 0
    j = 1
    for i in range(1, n):
        if sk[i] != sk[i - 1]:
            ukeys[j] = sk[i]
            starts[j] = i
            j += 1
    starts[m] = n
    params[0] = x0
    params[1] = y0
    params[2] = z0
    params[3] = cell
    params[4] = nx
    params[5] = ny
    params[6] = nz
    return order, ukeys, starts, params


@njit(cache=CACHE)
def _find_key(ukeys, key):
    lo = 0
    hi = ukeys.shape[0]
    while lo < hi:
        mid = (lo + hi) >> 1
        if ukeys[mid] < key:
            lo = mid + 1
        else:
            hi = mid
    if lo < ukeys.shape[0] and ukeys[lo] == key:
        return lo
    return -1


@njit(cache=CACHE)
def _cell_ranges(px, py, pz, ukeys, starts, params, out, half):
    """Fill out[k] with (start, stop, same cell) of the non-empty cells around a point.

    half: keep only the cells whose key is >= the point's own cell key (each pair of
    distinct cells is then visited from one side only; within the own cell the caller keeps
    b > a), for the univariate pair passes.
    """
    x0, y0, z0, cell = params[0], params[1], params[2], params[3]
    nx, ny, nz = int(params[4]), int(params[5]), int(params[6])
    reach = int(params[7])
    ix = math.floor((px - x0) / cell)
    iy = math.floor((py - y0) / cell)
    iz = math.floor((pz - z0) / cell)
    own = (ix * ny + iy) * nz + iz
    k = 0
    for gx in range(ix - reach, ix + reach + 1):
        if gx < 0 or gx >= nx:
            continue
        for gy in range(iy - reach, iy + reach + 1):
            if gy < 0 or gy >= ny:
                continue
            for gz in range(iz - reach, iz + reach + 1):
                if gz < 0 or gz >= nz:
                    continue
                key = (gx * ny + gy) * nz + gz
                if half and key < own:
                    continue
                u = _find_key(ukeys, key)
                if u >= 0:
                    out[k, 0] = starts[u]
                    out[k, 1] = starts[u + 1]
                    out[k, 2] = 1 if (half and key == own) else 0
                    k += 1
    return k


@njit(cache=CACHE)
def _pair_distances(
    a, ax, ay, az, bx, by, bz, spherical, ukeys, starts, params, ranges, uni, db, jb
):
    """Distances from reference point a to its candidate partners, in grid order.

    B is in grid order (point t of B is grid position t); when ``uni`` (A is B) only the
    partners b > a are listed. Fills db[:m] (km) and jb[:m] (positions in B); returns m.
    The planar loop has no branch, so it runs on SIMD lanes; lon/lat adds the arc step.
    """
    k = _cell_ranges(ax[a], ay[a], az[a], ukeys, starts, params, ranges, uni)
    xa = ax[a]
    ya = ay[a]
    za = az[a]
    m = 0
    for c in range(k):
        t0 = ranges[c, 0]
        t1 = ranges[c, 1]
        if ranges[c, 2] == 1 and t0 <= a:
            t0 = a + 1
        for t in range(t0, t1):
            dx = xa - bx[t]
            dy = ya - by[t]
            dz = za - bz[t]
            db[m + t - t0] = math.sqrt(dx * dx + dy * dy + dz * dz)
            jb[m + t - t0] = t
        if t1 > t0:
            m += t1 - t0
    if spherical:
        for e in range(m):
            s = db[e] / (2.0 * EARTH_RADIUS_KM)
            if s > 1.0:
                s = 1.0
            db[e] = 2.0 * EARTH_RADIUS_KM * math.asin(s)
    return m


# ----------------------------------------------------------------------------- Kd passes
#
# A pass visits every pair (a, b): a in the block [q0, q1) of the reference points, b a
# neighbour point found through the grid (ukeys, starts, params) built on B, B copied in
# grid order, with b > a when univariate (A is B), and distance <= the pass cutoff. The
# distances of a point's candidates are computed first in a branch-free (SIMD) loop
# (_pair_distances), then each pass walks them in the same order as before.


@njit(cache=CACHE)
def _pass_stats(
    q0,
    q1,
    ax,
    ay,
    az,
    bx,
    by,
    bz,
    uni,
    spherical,
    ukeys,
    starts,
    params,
    cutoff,
    centre,
    hist,
    stats,
):
    """stats: [count, sum(d - centre), sum((d - centre)**2)] and a histogram of d <= cutoff."""
    nb = hist.shape[0]
    scale = nb / cutoff
    ranges = np.empty((MAX_CELLS, 3), np.int64)
    # local accumulators: writing per-block slots for every pair would false-share
    c0 = 0.0
    c1 = 0.0
    c2 = 0.0
    db = np.empty(bx.shape[0])
    jb = np.empty(bx.shape[0], np.int64)
    for a in range(q0, q1):
        m = _pair_distances(
            a, ax, ay, az, bx, by, bz, spherical, ukeys, starts, params, ranges, uni, db, jb
        )
        for e in range(m):
            d = db[e]
            if d <= cutoff:
                c0 += 1.0
                u = d - centre
                c1 += u
                c2 += u * u
                ib = int(d * scale)
                if ib >= nb:
                    ib = nb - 1
                hist[ib] += 1
    stats[0] += c0
    stats[1] += c1
    stats[2] += c2


@njit(cache=CACHE)
def _pass_collect(
    q0,
    q1,
    ax,
    ay,
    az,
    bx,
    by,
    bz,
    uni,
    spherical,
    ukeys,
    starts,
    params,
    cutoff,
    nbins,
    is_wanted,
    buf,
    fill,
):
    """Collect the distances that fall in the histogram bins where ``is_wanted`` is True."""
    scale = nbins / cutoff
    ranges = np.empty((MAX_CELLS, 3), np.int64)
    f = fill[0]
    db = np.empty(bx.shape[0])
    jb = np.empty(bx.shape[0], np.int64)
    for a in range(q0, q1):
        m = _pair_distances(
            a, ax, ay, az, bx, by, bz, spherical, ukeys, starts, params, ranges, uni, db, jb
        )
        for e in range(m):
            d = db[e]
            if d <= cutoff:
                ib = int(d * scale)
                if ib >= nbins:
                    ib = nbins - 1
                # a table lookup: searching ``wanted`` was a mispredicted branch per pair
                if is_wanted[ib]:
                    buf[f] = d
                    f += 1
    fill[0] = f


@njit(cache=CACHE)
def _pass_extremes(
    q0, q1, ax, ay, az, bx, by, bz, uni, spherical, ukeys, starts, params, refl, out
):
    """out: [largest d <= refl (or -1), smallest d (pairs within refl only)]."""
    ranges = np.empty((MAX_CELLS, 3), np.int64)
    hi = out[0]
    lo = out[1]
    db = np.empty(bx.shape[0])
    jb = np.empty(bx.shape[0], np.int64)
    for a in range(q0, q1):
        m = _pair_distances(
            a, ax, ay, az, bx, by, bz, spherical, ukeys, starts, params, ranges, uni, db, jb
        )
        for e in range(m):
            d = db[e]
            if d <= refl:
                if d > hi:
                    hi = d
                if d < lo:
                    lo = d
    out[0] = hi
    out[1] = lo


@njit(cache=CACHE)
def _gauss_step(dr, h):
    """The constant ratio of the Gaussian recurrence of :func:`_gauss_window`."""
    return math.exp(-2.0 * dr * dr * (0.5 / (h * h)))


@njit(cache=CACHE)
def _gauss_window(acc, r, dr, uniform, centre, weight, h, cc):
    """acc[k] += weight * exp(-(r[k] - centre)**2 / (2 h**2)) for |r[k] - centre| <= T h.

    cc : ``_gauss_step(dr, h)``, computed once per pass instead of once per pair.
    """
    nr = r.shape[0]
    lo_v = centre - KD_TRUNCATE * h
    hi_v = centre + KD_TRUNCATE * h
    if hi_v < r[0] or lo_v > r[nr - 1]:
        return
    inv2h2 = 0.5 / (h * h)
    if uniform and dr < 20.0 * h:
        # (dr < 20 h keeps every factor below exp(200): no overflow, k eps relative error)
        # Gaussian recurrence on a regular grid: two exp() per pair instead of one per r
        k0 = math.ceil((lo_v - r[0]) / dr)
        if k0 < 0:
            k0 = 0
        k1 = math.floor((hi_v - r[0]) / dr)
        if k1 > nr - 1:
            k1 = nr - 1
        if k1 < k0:
            return
        u = r[k0] - centre
        e = math.exp(-u * u * inv2h2)
        q = math.exp(-(2.0 * u * dr + dr * dr) * inv2h2)
        for k in range(k0, k1 + 1):
            acc[k] += weight * e
            e *= q
            q *= cc
    else:
        lo = 0
        hi = nr
        while lo < hi:
            mid = (lo + hi) >> 1
            if r[mid] < lo_v:
                lo = mid + 1
            else:
                hi = mid
        for k in range(lo, nr):
            if r[k] > hi_v:
                break
            u = r[k] - centre
            acc[k] += weight * math.exp(-u * u * inv2h2)


@njit(cache=CACHE)
def _pass_exact(
    q0,
    q1,
    ax,
    ay,
    az,
    aw,
    bx,
    by,
    bz,
    bw,
    uni,
    weighted,
    spherical,
    ukeys,
    starts,
    params,
    r,
    uniform,
    h,
    cutoff,
    acc,
    corr,
):
    """Exact Gaussian sums with reflection at 0; corr[0] += W Phi(-d/h) for d > 4h."""
    nr = r.shape[0]
    dr = (r[nr - 1] - r[0]) / (nr - 1) if nr > 1 else 1.0
    refl = 4.0 * h
    ranges = np.empty((MAX_CELLS, 3), np.int64)
    inv = 1.0 / (h * math.sqrt(2.0))
    cc = _gauss_step(dr, h)
    cr = 0.0
    db = np.empty(bx.shape[0])
    jb = np.empty(bx.shape[0], np.int64)
    for a in range(q0, q1):
        m = _pair_distances(
            a, ax, ay, az, bx, by, bz, spherical, ukeys, starts, params, ranges, uni, db, jb
        )
        for e in range(m):
            b = jb[e]
            d = db[e]
            if d > cutoff:
                continue
            w = aw[a] * bw[b] if weighted else 1.0
            _gauss_window(acc, r, dr, uniform, d, w, h, cc)
            if d <= refl:
                _gauss_window(acc, r, dr, uniform, -d, w, h, cc)
            elif d < ERFC_CUT * h:
                # pairs beyond 9 h would add Phi(-9) ~ 1e-19 of their weight: skipped
                cr += w * 0.5 * math.erfc(d * inv)
    corr[0] += cr


@njit(cache=CACHE)
def _bin_one(y, v, w, xlo, xdelta, n):
    """Linear binning of one value exactly as R's BinDist (stats/src/massdist.c)."""
    xpos = (v - xlo) / xdelta
    fl = math.floor(xpos)
    if fl < -1.0 or fl > n:
        return
    ix = int(fl)
    fx = xpos - ix
    ixmax = n - 2
    if 0 <= ix <= ixmax:
        y[ix] += w * (1.0 - fx)
        y[ix + 1] += w * fx
    elif ix == -1:
        y[0] += w * fx
    elif ix == ixmax + 1:
        y[ix] += w * (1.0 - fx)


@njit(cache=CACHE)
def _pass_binned(
    q0,
    q1,
    ax,
    ay,
    az,
    aw,
    bx,
    by,
    bz,
    bw,
    uni,
    weighted,
    spherical,
    ukeys,
    starts,
    params,
    meta,
    cutoff,
    ymain,
    ymirror,
    wrefl,
):
    """Linear binning of d and of the reflected -d, on the grids of both density() calls."""
    h = meta[BW]
    lo = meta[LO]
    n = int(meta[NMAIN])
    dmain = (meta[UP] - lo) / (n - 1)
    lom = meta[LOM]
    dmir = (meta[UPM] - lom) / 511.0
    do_mirror = meta[FROMM] < 0.0
    refl = 4.0 * h
    ranges = np.empty((MAX_CELLS, 3), np.int64)
    wr = 0.0
    db = np.empty(bx.shape[0])
    jb = np.empty(bx.shape[0], np.int64)
    for a in range(q0, q1):
        m = _pair_distances(
            a, ax, ay, az, bx, by, bz, spherical, ukeys, starts, params, ranges, uni, db, jb
        )
        for e in range(m):
            b = jb[e]
            d = db[e]
            if d > cutoff:
                continue
            w = aw[a] * bw[b] if weighted else 1.0
            _bin_one(ymain, d, w, lo, dmain, n)
            if do_mirror:
                _bin_one(ymirror, d, w, lom, dmir, 512)
            if d <= refl:
                wr += w
                _bin_one(ymain, -d, w, lo, dmain, n)
                if do_mirror:
                    _bin_one(ymirror, -d, w, lom, dmir, 512)
    wrefl[0] += wr


# ----------------------------------------------------------------------------- Kd driver


@njit(cache=CACHE)
def _quartiles(npairs, hist, collected, bins_sorted):
    """Type-7 quartiles from the histogram and the values of the bins that hold them."""
    hq = np.array([(npairs - 1) * 0.25, (npairs - 1) * 0.75])
    vals = np.sort(collected)
    out = np.empty(2)
    for j in range(2):
        lo_rank = math.floor(hq[j])
        v = np.empty(2)
        for t in range(2):
            rank = lo_rank + t
            if rank > npairs - 1:
                rank = npairs - 1
            # bin of this rank and the count of values in earlier bins
            cum = 0
            ib = 0
            while cum + hist[ib] <= rank:
                cum += hist[ib]
                ib += 1
            # collected values from wanted bins before ib
            before = 0
            for b in bins_sorted:
                if b < ib:
                    before += hist[b]
            v[t] = vals[before + rank - cum]
        out[j] = v[0] + (hq[j] - lo_rank) * (v[1] - v[0])
    return out


@njit(cache=CACHE)
def _hist_quartiles(npairs, hist, cutoff):
    """Type-7 quartiles with each order statistic placed by linear interpolation in its bin."""
    width = cutoff / hist.shape[0]
    hq = np.array([(npairs - 1) * 0.25, (npairs - 1) * 0.75])
    out = np.empty(2)
    for j in range(2):
        lo_rank = math.floor(hq[j])
        v = np.empty(2)
        for t in range(2):
            rank = min(lo_rank + t, npairs - 1)
            cum = 0
            ib = 0
            while cum + hist[ib] <= rank:
                cum += hist[ib]
                ib += 1
            v[t] = width * (ib + (rank - cum + 0.5) / hist[ib])
        out[j] = v[0] + (hq[j] - lo_rank) * (v[1] - v[0])
    return out


@njit(cache=CACHE)
def _wanted_bins(npairs, hist):
    hq = np.array([(npairs - 1) * 0.25, (npairs - 1) * 0.75])
    found = np.full(4, -1, np.int64)
    for j in range(2):
        lo_rank = math.floor(hq[j])
        for t in range(2):
            rank = min(lo_rank + t, npairs - 1)
            cum = 0
            ib = 0
            while cum + hist[ib] <= rank:
                cum += hist[ib]
                ib += 1
            found[2 * j + t] = ib
    return np.unique(found)


@njit(cache=CACHE)
def _n_blocks(n):
    return max(1, min((n + 63) // 64, 128))


@njit(cache=CACHE, parallel=True)
def kd_compute(
    ax,
    ay,
    az,
    aw,
    bx,
    by,
    bz,
    bw,
    uni,
    weighted,
    spherical,
    r,
    uniform,
    adjust,
    method,
    fixed_bw,
    nblocks,
    exact_bw,
):
    """One Kd curve, in up to four passes over the pairs.

    ax, ay, az, aw : reference points (ignored when ``uni``: B is used for both);
    r : sorted float64[nr], r[0] >= 0; method 0 = exact sums, 1 = R density() binning;
    fixed_bw : use this bandwidth when > 0 (otherwise bw.nrd0 of the distances <= 2 max(r),
    times ``adjust``); nblocks : number of work blocks (fix it for reproducibility);
    exact_bw : exact quartiles (one more pass over the pairs) or quartiles interpolated in
    a HIST_BINS-bin histogram of the distances (bins of 2 max(r) / 65 536 km).
    Returns (acc float64[nr], ymain float64[8192], ymirror float64[1024], meta float64[16]);
    the caller normalises ``acc`` (exact) or runs the FFT on the bins (binned).
    """
    nr = r.shape[0]
    rmax = r[nr - 1]
    meta = np.zeros(META)
    acc = np.zeros(nr)
    ymain = np.zeros(MAIN_SIZE)
    ymirror = np.zeros(MIRROR_SIZE)
    if uni:
        ax = bx
        ay = by
        az = bz
        aw = bw
    nA = ax.shape[0]
    # each pass works on B copied in the order of its grid (sequential memory access)
    obx, oby, obz, obw = bx, by, bz, bw
    h = fixed_bw
    if not h > 0.0:
        cut_a = 2.0 * rmax if rmax > 0.0 else 1.0
        order, ukeys, starts, params = build_grid(obx, oby, obz, cut_a, spherical)
        bx, by, bz, bw = obx[order], oby[order], obz[order], obw[order]
        if uni:
            ax, ay, az, aw = bx, by, bz, bw
        nbh = min(nblocks, HIST_BLOCKS)
        hists = np.zeros((nbh, HIST_BINS), np.int64)
        stats = np.zeros((nbh, 3))
        for pb in prange(nbh):
            ib = _spread(pb, nbh)  # uneven blocks: a fixed shuffle over the threads
            q0 = (nA * ib) // nbh
            q1 = (nA * (ib + 1)) // nbh
            _pass_stats(
                q0,
                q1,
                ax,
                ay,
                az,
                bx,
                by,
                bz,
                uni,
                spherical,
                ukeys,
                starts,
                params,
                cut_a,
                rmax,
                hists[ib],
                stats[ib],
            )
        hist = np.zeros(HIST_BINS, np.int64)
        tot = np.zeros(3)
        for ib in range(nbh):
            hist += hists[ib]
            tot += stats[ib]
        npairs = int(tot[0])
        meta[NBW] = npairs
        if npairs < 2:
            return acc, ymain, ymirror, meta
        if not exact_bw:
            qs = _hist_quartiles(npairs, hist, cut_a)
        else:
            wanted = _wanted_bins(npairs, hist)
            size = 0
            is_wanted = np.zeros(HIST_BINS, np.bool_)
            for b in wanted:
                size += hist[b]
                is_wanted[b] = True
            bufs = np.zeros((nblocks, size))
            fills = np.zeros((nblocks, 1), np.int64)
            for pb in prange(nblocks):
                ib = _spread(pb, nblocks)  # uneven blocks: a fixed shuffle over the threads
                q0 = (nA * ib) // nblocks
                q1 = (nA * (ib + 1)) // nblocks
                _pass_collect(
                    q0,
                    q1,
                    ax,
                    ay,
                    az,
                    bx,
                    by,
                    bz,
                    uni,
                    spherical,
                    ukeys,
                    starts,
                    params,
                    cut_a,
                    HIST_BINS,
                    is_wanted,
                    bufs[ib],
                    fills[ib],
                )
            coll = np.empty(size)
            p = 0
            for ib in range(nblocks):
                f = fills[ib, 0]
                coll[p : p + f] = bufs[ib, :f]
                p += f
            qs = _quartiles(npairs, hist, coll, wanted)
        mean_u = tot[1] / npairs
        var = (tot[2] - tot[1] * mean_u) / (npairs - 1)
        sd = math.sqrt(max(var, 0.0))
        lo = min(sd, (qs[1] - qs[0]) / 1.34)
        if not lo > 0.0:
            lo = sd if sd > 0.0 else 1.0
        h = 0.9 * lo * npairs ** (-0.2) * adjust
    meta[BW] = h
    meta[OK] = 1.0
    refl = 4.0 * h
    if method == 0:
        cut_c = max(rmax, refl) + KD_TRUNCATE * h
    else:
        # extremes of the reflected distances, needed by the second density() call
        order, ukeys, starts, params = build_grid(obx, oby, obz, refl, spherical)
        bx, by, bz, bw = obx[order], oby[order], obz[order], obw[order]
        if uni:
            ax, ay, az, aw = bx, by, bz, bw
        ext = np.zeros((nblocks, 2))
        for ib in range(nblocks):
            ext[ib, 0] = -1.0
            ext[ib, 1] = np.inf
        for pb in prange(nblocks):
            ib = _spread(pb, nblocks)  # uneven blocks: a fixed shuffle over the threads
            q0 = (nA * ib) // nblocks
            q1 = (nA * (ib + 1)) // nblocks
            _pass_extremes(
                q0,
                q1,
                ax,
                ay,
                az,
                bx,
                by,
                bz,
                uni,
                spherical,
                ukeys,
                starts,
                params,
                refl,
                ext[ib],
            )
        maxd_refl = -1.0
        for ib in range(nblocks):
            maxd_refl = max(maxd_refl, ext[ib, 0])
        if uni:
            maxd = diameter(bx, by, bz, spherical)
        else:
            maxd = cross_diameter(ax, ay, az, bx, by, bz, spherical)
        meta[MAXD] = maxd
        ndens = min(max(512.0, maxd / rmax * 128.0), 4096.0)
        n = max(ndens, 512.0)
        if n > 512.0:
            n = 2.0 ** math.ceil(math.log2(n))
        meta[NDENS] = ndens
        meta[NMAIN] = n
        meta[LO] = 0.0 - 4.0 * h
        meta[UP] = rmax + 4.0 * h
        if maxd_refl >= 0.0:
            fromm = -maxd_refl - 3.0 * h
        else:
            fromm = 1.0  # no reflected distance: the mirrored mass is 0
        meta[FROMM] = fromm
        meta[LOM] = fromm - 4.0 * h
        meta[UPM] = 0.0 + 4.0 * h
        cut_c = max(meta[UP] + 2.0 * (meta[UP] - meta[LO]) / (n - 1), refl)
    order, ukeys, starts, params = build_grid(obx, oby, obz, cut_c, spherical)
    bx, by, bz, bw = obx[order], oby[order], obz[order], obw[order]
    if uni:
        ax, ay, az, aw = bx, by, bz, bw
    if method == 0:
        accs = np.zeros((nblocks, nr))
        corrs = np.zeros((nblocks, 1))
        for pb in prange(nblocks):
            ib = _spread(pb, nblocks)  # uneven blocks: a fixed shuffle over the threads
            q0 = (nA * ib) // nblocks
            q1 = (nA * (ib + 1)) // nblocks
            _pass_exact(
                q0,
                q1,
                ax,
                ay,
                az,
                aw,
                bx,
                by,
                bz,
                bw,
                uni,
                weighted,
                spherical,
                ukeys,
                starts,
                params,
                r,
                uniform,
                h,
                cut_c,
                accs[ib],
                corrs[ib],
            )
        corr = 0.0
        for ib in range(nblocks):
            acc += accs[ib]
            corr += corrs[ib, 0]
        meta[CORR] = corr
    else:
        ym = np.zeros((nblocks, MAIN_SIZE))
        yr = np.zeros((nblocks, MIRROR_SIZE))
        wr = np.zeros((nblocks, 1))
        for pb in prange(nblocks):
            ib = _spread(pb, nblocks)  # uneven blocks: a fixed shuffle over the threads
            q0 = (nA * ib) // nblocks
            q1 = (nA * (ib + 1)) // nblocks
            _pass_binned(
                q0,
                q1,
                ax,
                ay,
                az,
                aw,
                bx,
                by,
                bz,
                bw,
                uni,
                weighted,
                spherical,
                ukeys,
                starts,
                params,
                meta,
                cut_c,
                ym[ib],
                yr[ib],
                wr[ib],
            )
        w_refl = 0.0
        for ib in range(nblocks):
            ymain += ym[ib]
            ymirror += yr[ib]
            w_refl += wr[ib, 0]
        meta[WREFL] = w_refl
    return acc, ymain, ymirror, meta


@njit(cache=CACHE)
def diameter(x, y, z, spherical):
    """Largest pair distance: convex hull then all hull pairs (planar), brute force else."""
    if x.shape[0] < 2:
        return 0.0
    idx = _hull_or_all(x, y, spherical)
    m = idx.shape[0]
    best = 0.0
    for s in range(m):
        i = idx[s]
        for t in range(s + 1, m):
            j = idx[t]
            d = _distance(x[i], y[i], z[i], x[j], y[j], z[j], spherical)
            if d > best:
                best = d
    return best


@njit(cache=CACHE)
def cross_diameter(ax, ay, az, bx, by, bz, spherical):
    """Largest distance between a point of A and a point of B (brute force over hulls)."""
    ia = _hull_or_all(ax, ay, spherical)
    ib = _hull_or_all(bx, by, spherical)
    best = 0.0
    for i in ia:
        for j in ib:
            d = _distance(ax[i], ay[i], az[i], bx[j], by[j], bz[j], spherical)
            if d > best:
                best = d
    return best


@njit(cache=CACHE)
def _hull_or_all(x, y, spherical):
    n = x.shape[0]
    if spherical or n <= 64:
        return np.arange(n)
    oy = np.argsort(y, kind="mergesort")
    order = oy[np.argsort(x[oy], kind="mergesort")]
    hull = np.empty(2 * n, np.int64)
    k = 0
    for t in range(n):
        i = order[t]
        while k >= 2:
            a = hull[k - 2]
            b = hull[k - 1]
            if (x[b] - x[a]) * (y[i] - y[a]) - (y[b] - y[a]) * (x[i] - x[a]) <= 0.0:
                k -= 1
            else:
                break
        hull[k] = i
        k += 1
    lower = k + 1
    for t in range(n - 2, -1, -1):
        i = order[t]
        while k >= lower:
            a = hull[k - 2]
            b = hull[k - 1]
            if (x[b] - x[a]) * (y[i] - y[a]) - (y[b] - y[a]) * (x[i] - x[a]) <= 0.0:
                k -= 1
            else:
                break
        hull[k] = i
        k += 1
    return hull[: max(k - 1, 1)].copy()


# ----------------------------------------------------------------------------- M
#
# The sites are passed in grid order (sx[t] is the t-th site of the grid built once on all
# sites, the structure every simulation shares); distances are compared squared with the
# squared thresholds thr2 (planar: r**2; lon/lat: squared chord of r), so no sqrt / asin.


@njit(cache=CACHE)
def m_thresholds(r, spherical):
    """Squared comparison thresholds of r and a lookup table over [0, max thr2]."""
    nr = r.shape[0]
    thr2 = np.empty(nr)
    for k in range(nr):
        if spherical:
            s = min(r[k] / (2.0 * EARTH_RADIUS_KM), math.pi / 2.0)
            c = 2.0 * EARTH_RADIUS_KM * math.sin(s)
            thr2[k] = c * c
        else:
            thr2[k] = r[k] * r[k]
    nl = 4096
    lut = np.zeros(nl + 1, np.int64)
    top = thr2[nr - 1]
    k = 0
    for q in range(nl + 1):
        v = top * q / nl
        while k < nr - 1 and thr2[k] < v:
            k += 1
        lut[q] = k
    return thr2, lut


@njit(cache=CACHE)
def _lower_bound(ukeys, key):
    lo = 0
    hi = ukeys.shape[0]
    while lo < hi:
        mid = (lo + hi) >> 1
        if ukeys[mid] < key:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=CACHE)
def _m_spans(px, py, pz, radius, ukeys, starts, params, out):
    """The points of the cells within ``radius`` of a point, as runs of grid positions.

    Cells are visited in ascending key order (so the points come in grid order) and cells
    with consecutive keys form one run: the gy cells of one gx on a flat grid (restricted to
    those the disc of ``radius`` reaches in that column), the gz cells of one (gx, gy)
    otherwise. ``radius`` is in coordinate units (km, or chord km for lon/lat) and is the
    grid's cutoff (reach 3 on planar grids, 1 on lon/lat grids). ``out`` needs 2 * reach + 1
    rows (flat) or (2 * reach + 1) ** 2 rows.
    """
    x0, y0, z0, cell = params[0], params[1], params[2], params[3]
    nx, ny, nz = int(params[4]), int(params[5]), int(params[6])
    rad = radius * (1.0 + 1e-9) + 1e-9  # a superset: the exact test is made on each point
    # cells are at least a whole fraction of the radius (build_grid pads them by 1e-12)
    reach = max(1, math.ceil(radius / cell - 1e-9))
    ix = math.floor((px - x0) / cell)
    iy = math.floor((py - y0) / cell)
    iz = math.floor((pz - z0) / cell)
    gy0 = max(iy - reach, 0)
    gy1 = min(iy + reach, ny - 1)
    gz0 = max(iz - reach, 0)
    gz1 = min(iz + reach, nz - 1)
    k = 0
    if gy1 < gy0 or gz1 < gz0:
        return 0
    for gx in range(max(ix - reach, 0), min(ix + reach, nx - 1) + 1):
        if nz == 1:
            # the part of column gx that the disc reaches
            if gx < ix:
                dx = px - (x0 + (gx + 1) * cell)
            elif gx > ix:
                dx = (x0 + gx * cell) - px
            else:
                dx = 0.0
            dx = max(dx - 1e-9 * cell, 0.0)
            if dx > rad:
                continue
            ry = math.sqrt(rad * rad - dx * dx) + 1e-9 * cell
            a0 = max(gy0, math.floor((py - ry - y0) / cell))
            a1 = min(gy1, math.floor((py + ry - y0) / cell))
            if a1 < a0:
                continue
            a = _lower_bound(ukeys, gx * ny + a0)
            b = _lower_bound(ukeys, gx * ny + a1 + 1)
            if b > a:
                out[k, 0] = starts[a]
                out[k, 1] = starts[b]
                k += 1
        else:
            for gy in range(gy0, gy1 + 1):
                a = _lower_bound(ukeys, (gx * ny + gy) * nz + gz0)
                b = _lower_bound(ukeys, (gx * ny + gy) * nz + gz1 + 1)
                if b > a:
                    out[k, 0] = starts[a]
                    out[k, 1] = starts[b]
                    k += 1
    return k


@njit(cache=CACHE)
def _m_work(N, nr):
    """Work buffers of :func:`_m_neighbours` for N sites and nr distances (one per task)."""
    return (
        np.empty((M_RUNS, 3), np.int64),
        np.empty(N),
        np.empty(N, np.int64),
        np.empty(N, np.int64),
        np.empty(nr + 1, np.int64),
    )


@njit(cache=CACHE)
def _m_neighbours(i, grid, work):
    """The sites within max(r) of site i (j != i, grid order) and their r class; their number.

    grid : (sx, sy, sz, thr2, lut, ukeys, starts, params, flat), the sites in grid order and
    their grid; flat: every sz is 0 (planar data), so dz is skipped (adding dz * dz = 0
    changes nothing). work : ``_m_work(N, nr)``, (ranges, buf_d, buf_j, buf_k, cstart). On
    return the sites whose first r with d <= r is r[k] are buf_j[cstart[k]:cstart[k + 1]]
    (grid order within a class).
    """
    sx, sy, sz, thr2, lut, ukeys, starts, params, flat = grid
    ranges, buf_d, buf_j, buf_k, cstart = work
    nr = thr2.shape[0]
    top = thr2[nr - 1]
    nl = lut.shape[0] - 1
    scale = nl / top if top > 0.0 else 0.0
    xi = sx[i]
    yi = sy[i]
    zi = sz[i]
    kc = _m_spans(xi, yi, zi, math.sqrt(top), ukeys, starts, params, ranges)
    cnt = 0
    for c in range(kc):
        # branch-free compaction of the neighbours within max(r), in grid order
        for j in range(ranges[c, 0], ranges[c, 1]):
            dx = sx[j] - xi
            dy = sy[j] - yi
            if flat:
                d2 = dx * dx + dy * dy
            else:
                dz = sz[j] - zi
                d2 = dx * dx + dy * dy + dz * dz
            buf_d[cnt] = d2
            buf_j[cnt] = j
            cnt += (d2 <= top) & (j != i)
    for k in range(nr + 1):
        cstart[k] = 0
    for e in range(cnt):
        d2 = buf_d[e]
        k = lut[int(d2 * scale)]
        while d2 > thr2[k]:
            k += 1
        buf_k[e] = buf_j[e]
        buf_j[e] = k
        cstart[k + 1] += 1
    # counting sort by class: buf_k holds the sites, buf_j their classes, then the result
    for k in range(nr):
        cstart[k + 1] += cstart[k]
    for e in range(cnt):
        k = buf_j[e]
        buf_d[e] = cstart[k]
        cstart[k] += 1
    for k in range(nr, 0, -1):
        cstart[k] = cstart[k - 1]
    cstart[0] = 0
    for e in range(cnt):
        buf_j[int(buf_d[e])] = buf_k[e]
    return cnt


@njit(cache=CACHE)
def _m_accumulate(cstart, buf_j, site_v, nb_acc, all_acc):
    """Cumulated weights of all neighbours / neighbour-type neighbours, by r.

    site_v : the sites' weights, negated for the neighbour type (weights are >= 0; a zero
    weight adds nothing to either sum, so its sign does not matter). One gather gives both
    sums, and float32 storage (when every weight is a float32) halves the bytes read; the
    sums are float64 either way. Each class is summed in four interleaved partial sums
    (a fixed order: the same numbers on any machine and thread count), which keeps four
    additions in flight instead of one.
    """
    nr = nb_acc.shape[0]
    for k in range(nr):
        a0 = a1 = a2 = a3 = 0.0
        b0 = b1 = b2 = b3 = 0.0
        e = cstart[k]
        end = cstart[k + 1]
        while e + 4 <= end:
            v0 = np.float64(site_v[buf_j[e]])
            v1 = np.float64(site_v[buf_j[e + 1]])
            v2 = np.float64(site_v[buf_j[e + 2]])
            v3 = np.float64(site_v[buf_j[e + 3]])
            a0 += abs(v0)
            a1 += abs(v1)
            a2 += abs(v2)
            a3 += abs(v3)
            if v0 < 0.0:
                b0 -= v0
            if v1 < 0.0:
                b1 -= v1
            if v2 < 0.0:
                b2 -= v2
            if v3 < 0.0:
                b3 -= v3
            e += 4
        while e < end:
            v0 = np.float64(site_v[buf_j[e]])
            a0 += abs(v0)
            if v0 < 0.0:
                b0 -= v0
            e += 1
        all_acc[k] = (a0 + a1) + (a2 + a3)
        nb_acc[k] = (b0 + b1) + (b2 + b3)
    for k in range(1, nr):
        nb_acc[k] += nb_acc[k - 1]
        all_acc[k] += all_acc[k - 1]


@njit(cache=CACHE)
def _all_zero(a):
    return not np.any(a != 0.0)


#: Sites per parallel task of the M kernels (work buffers are allocated once per task).
M_BLOCK = 64


@njit(cache=CACHE)
def _spread(b, nb):
    """The task run at parallel position b of nb: a fixed shuffle of the blocks.

    Blocks are runs of sites in grid order, so their cost follows the density of the
    area; prange hands each thread a contiguous range of positions, and the shuffle gives
    each range blocks from everywhere. (Results do not depend on it.)
    """
    step = 7919  # b * step mod nb is a permutation when gcd(step, nb) == 1
    while math.gcd(step, nb) != 1:
        step += 1
    return (b * step) % nb


#: Rows of the run buffer of :func:`_m_spans` (7 runs on a planar grid, 9 on a lon/lat one).
M_RUNS = 64


@njit(cache=CACHE, parallel=True)
def m_individual(ref_sites, sx, sy, sz, site_v, thr2, lut, ukeys, starts, params):
    """Cumulated neighbour-type weight and total weight around each reference site.

    ref_sites : int64[n_ref] positions in grid order; site_v : the sites' weights in grid
    order, negated for the neighbour type. Returns (nb, all), float64[n_ref, nr].
    """
    n = ref_sites.shape[0]
    N = sx.shape[0]
    nr = thr2.shape[0]
    nb_out = np.zeros((n, nr))
    all_out = np.zeros((n, nr))
    grid = (sx, sy, sz, thr2, lut, ukeys, starts, params, _all_zero(sz))
    nblk = (n + M_BLOCK - 1) // M_BLOCK
    for pb in prange(nblk):
        b = _spread(pb, nblk)
        work = _m_work(N, nr)
        for q in range(b * M_BLOCK, min(n, (b + 1) * M_BLOCK)):
            _m_neighbours(ref_sites[q], grid, work)
            _m_accumulate(work[4], work[2], site_v, nb_out[q], all_out[q])
    return nb_out, all_out


@njit(cache=CACHE, parallel=True)
def m_simulations(
    perms,
    w,
    is_ref,
    is_nb,
    sx,
    sy,
    sz,
    thr2,
    lut,
    ukeys,
    starts,
    params,
    bivariate,
    w_ref_total,
    w_nb_total,
    w_total,
):
    """M under random location, one permutation of the marks over the sites per row.

    perms : int64[nsim, N]; the site in grid position t receives the weight and type of point
    perms[s, t]. A site is a reference point in a few of the simulations: its neighbours
    (the costly part) are found once and serve all of them. Each simulation's sum then runs
    over its reference sites in grid order, serially (fixed summation order).
    """
    nsim = perms.shape[0]
    N = sx.shape[0]
    nr = thr2.shape[0]
    flat = _all_zero(sz)
    # the simulations in which each site is a reference (ascending), CSR by site
    ptr = np.zeros(N + 1, np.int64)
    for s in range(nsim):
        for t in range(N):
            if is_ref[perms[s, t]]:
                ptr[t + 1] += 1
    for t in range(N):
        ptr[t + 1] += ptr[t]
    sims_of = np.empty(ptr[N], np.int64)
    fill = ptr[:N].copy()
    for s in range(nsim):
        for t in range(N):
            if is_ref[perms[s, t]]:
                sims_of[fill[t]] = s
                fill[t] += 1
    # each simulation's site weights, negated for the neighbour type (in w's dtype)
    site_v = np.empty((nsim, N), w.dtype)
    for s in prange(nsim):
        for t in range(N):
            p = perms[s, t]
            site_v[s, t] = -w[p] if is_nb[p] else w[p]
    # local ratio and global ratio of every (site, simulation) where the site is a reference
    local = np.full((ptr[N], nr), np.nan)
    glob = np.empty(ptr[N])
    nblk = (N + M_BLOCK - 1) // M_BLOCK
    grid = (sx, sy, sz, thr2, lut, ukeys, starts, params, flat)
    for pb in prange(nblk):
        b = _spread(pb, nblk)
        work = _m_work(N, nr)
        nb_acc = np.zeros(nr)
        all_acc = np.zeros(nr)
        for t in range(b * M_BLOCK, min(N, (b + 1) * M_BLOCK)):
            if ptr[t + 1] == ptr[t]:
                continue
            _m_neighbours(t, grid, work)
            for e in range(ptr[t], ptr[t + 1]):
                s = sims_of[e]
                _m_accumulate(work[4], work[2], site_v[s], nb_acc, all_acc)
                wi = np.float64(abs(site_v[s, t]))
                if bivariate:
                    glob[e] = w_nb_total / (w_total - wi)
                else:
                    glob[e] = (w_ref_total - wi) / (w_total - wi)
                for k in range(nr):
                    if all_acc[k] > 0.0:
                        local[e, k] = nb_acc[k] / all_acc[k]
    num = np.zeros((nsim, nr))
    den = np.zeros((nsim, nr))
    for t in range(N):  # grid order within each simulation
        for e in range(ptr[t], ptr[t + 1]):
            s = sims_of[e]
            for k in range(nr):
                if not math.isnan(local[e, k]):
                    num[s, k] += local[e, k]
                    den[s, k] += glob[e]
    out = np.full((nsim, nr), np.nan)
    for s in range(nsim):
        for k in range(nr):
            if den[s, k] > 0.0:
                out[s, k] = num[s, k] / den[s, k]
    return out


@njit(cache=CACHE)
def smooth_grid(px, py, values, gx, gy, sigx, sigy):
    """Nadaraya-Watson Gaussian smoothing of point values on a regular grid (separable)."""
    n = px.shape[0]
    nx = gx.shape[0]
    ny = gy.shape[0]
    kx = np.empty((n, nx))
    ky = np.empty((n, ny))
    for i in range(n):
        for a in range(nx):
            u = (gx[a] - px[i]) / sigx
            kx[i, a] = math.exp(-0.5 * u * u)
        for b in range(ny):
            u = (gy[b] - py[i]) / sigy
            ky[i, b] = math.exp(-0.5 * u * u)
    num = np.zeros((ny, nx))
    den = np.zeros((ny, nx))
    for i in range(n):
        v = values[i]
        for b in range(ny):
            kb = ky[i, b]
            if kb == 0.0:
                continue
            for a in range(nx):
                kk = kb * kx[i, a]
                num[b, a] += kk * v
                den[b, a] += kk
    return num, den


# ----------------------------------------------------------------------------- small Kd
#
# When all pairs fit in memory (n(n - 1)/2 or n1 n2 <= SMALL_PAIRS) a single brute-force
# pass stores every distance, and the rest works on that array. This serial path is what the
# random-location simulations use (one simulation per thread).

SMALL_PAIRS = 2_000_000
#: Histogram bins that locate the quartiles of a stored set of pair distances (the values of
#: the bins holding the order statistics are then sorted: same quartiles as a full sort).
SMALL_QBINS = 2048


@njit(nogil=True, cache=CACHE)
def kd_small(
    ax, ay, az, aw, bx, by, bz, bw, uni, weighted, spherical, r, uniform, adjust, method, fixed_bw
):
    """Same contract as :func:`kd_compute`, serial, storing every pair distance."""
    nr = r.shape[0]
    rmax = r[nr - 1]
    meta = np.zeros(META)
    acc = np.zeros(nr)
    ymain = np.zeros(MAIN_SIZE)
    ymirror = np.zeros(MIRROR_SIZE)
    if uni:
        ax = bx
        ay = by
        az = bz
        aw = bw
    n1 = ax.shape[0]
    n2 = bx.shape[0]
    npair = n1 * (n1 - 1) // 2 if uni else n1 * n2
    d = np.empty(npair)
    wp = np.empty(npair)
    maxd = 0.0
    p = 0
    for a in range(n1):
        b0 = a + 1 if uni else 0
        for b in range(b0, n2):
            dd = _distance(ax[a], ay[a], az[a], bx[b], by[b], bz[b], spherical)
            d[p] = dd
            wp[p] = aw[a] * bw[b] if weighted else 1.0
            p += 1
            if dd > maxd:
                maxd = dd
    h = fixed_bw
    if not h > 0.0:
        cut_a = 2.0 * rmax
        # one pass: count, sum (in pair order, as before) and a histogram that locates the
        # quartile order statistics; then only the values of <= 4 bins are sorted
        scale = SMALL_QBINS / cut_a if cut_a > 0.0 else 0.0
        hist = np.zeros(SMALL_QBINS, np.int64)
        m = 0
        mean = 0.0
        for i in range(npair):
            di = d[i]
            if di <= cut_a:
                m += 1
                mean += di
                ib = int(di * scale)
                if ib >= SMALL_QBINS:
                    ib = SMALL_QBINS - 1
                hist[ib] += 1
        meta[NBW] = m
        if m < 2:
            return acc, ymain, ymirror, meta
        mean /= m
        wanted = _wanted_bins(m, hist)
        size = 0
        is_wanted = np.zeros(SMALL_QBINS, np.bool_)
        for b in wanted:
            size += hist[b]
            is_wanted[b] = True
        coll = np.empty(size)
        # one more pass: the squared deviations (pair order, as before) and the values of the
        # <= 4 bins that hold the quartile order statistics (a table lookup, no search)
        ss = 0.0
        f = 0
        for i in range(npair):
            di = d[i]
            if di <= cut_a:
                ss += (di - mean) ** 2
                ib = int(di * scale)
                if ib >= SMALL_QBINS:
                    ib = SMALL_QBINS - 1
                if is_wanted[ib]:
                    coll[f] = di
                    f += 1
        sd = math.sqrt(ss / (m - 1))
        qs = _quartiles(m, hist, coll, wanted)
        q1 = qs[0]
        q3 = qs[1]
        lo = min(sd, (q3 - q1) / 1.34)
        if not lo > 0.0:
            lo = sd if sd > 0.0 else 1.0
        h = 0.9 * lo * m ** (-0.2) * adjust
    meta[BW] = h
    meta[OK] = 1.0
    refl = 4.0 * h
    dr = (r[nr - 1] - r[0]) / (nr - 1) if nr > 1 else 1.0
    if method == 0:
        cut_c = max(rmax, refl) + KD_TRUNCATE * h
        inv = 1.0 / (h * math.sqrt(2.0))
        cc = _gauss_step(dr, h)
        corr = 0.0
        for i in range(npair):
            di = d[i]
            if di > cut_c:
                continue
            _gauss_window(acc, r, dr, uniform, di, wp[i], h, cc)
            if di <= refl:
                _gauss_window(acc, r, dr, uniform, -di, wp[i], h, cc)
            elif di < ERFC_CUT * h:
                corr += wp[i] * 0.5 * math.erfc(di * inv)
        meta[CORR] = corr
        return acc, ymain, ymirror, meta
    maxd_refl = -1.0
    for i in range(npair):
        if d[i] <= refl and d[i] > maxd_refl:
            maxd_refl = d[i]
    meta[MAXD] = maxd
    ndens = min(max(512.0, maxd / rmax * 128.0), 4096.0)
    n = max(ndens, 512.0)
    if n > 512.0:
        n = 2.0 ** math.ceil(math.log2(n))
    meta[NDENS] = ndens
    meta[NMAIN] = n
    lo = 0.0 - 4.0 * h
    meta[LO] = lo
    meta[UP] = rmax + 4.0 * h
    fromm = -maxd_refl - 3.0 * h if maxd_refl >= 0.0 else 1.0
    meta[FROMM] = fromm
    meta[LOM] = fromm - 4.0 * h
    meta[UPM] = 0.0 + 4.0 * h
    ni = int(n)
    dmain = (meta[UP] - lo) / (ni - 1)
    lom = meta[LOM]
    dmir = (meta[UPM] - lom) / 511.0
    do_mirror = fromm < 0.0
    # beyond these, (v - xlo) / xdelta > n + 1 whatever the rounding: _bin_one adds nothing
    skip_main = lo + (ni + 2) * dmain
    skip_mir = lom + 514 * dmir
    w_refl = 0.0
    for i in range(npair):
        di = d[i]
        w = wp[i]
        if di <= skip_main:
            _bin_one(ymain, di, w, lo, dmain, ni)
        if do_mirror and di <= skip_mir:
            _bin_one(ymirror, di, w, lom, dmir, 512)
        if di <= refl:
            w_refl += w
            _bin_one(ymain, -di, w, lo, dmain, ni)
            if do_mirror:
                _bin_one(ymirror, -di, w, lom, dmir, 512)
    meta[WREFL] = w_refl
    return acc, ymain, ymirror, meta
