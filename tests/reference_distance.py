"""Slow, obvious implementations of Kd, Kemp, M and R's density(), for testing.

Everything is O(n^2) NumPy on explicit pair lists: no grid, no truncation of the kernel, no
numba. Written from the formulas (docs/methods.md, dbmss Kdhat.R / Mhat.R, R density.default),
independently of src/clustermap/_distance_kernels.py.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr

EARTH_RADIUS_KM = 6371.0088


def pair_distances(xy_a, xy_b=None, spherical=False):
    """Distances of all pairs i < j (xy_b None) or of all A x B pairs, and pair indices."""
    if xy_b is None:
        i, j = np.triu_indices(len(xy_a), k=1)
        a, b = xy_a[i], xy_a[j]
    else:
        i, j = np.meshgrid(np.arange(len(xy_a)), np.arange(len(xy_b)), indexing="ij")
        i, j = i.ravel(), j.ravel()
        a, b = xy_a[i], xy_b[j]
    if spherical:  # columns are lon, lat in degrees: haversine
        lon1, lat1, lon2, lat2 = (np.radians(v) for v in (a[:, 0], a[:, 1], b[:, 0], b[:, 1]))
        hav = (
            np.sin((lat2 - lat1) / 2) ** 2
            + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
        )
        d = 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(hav, 0, 1)))
    else:
        d = np.hypot(a[:, 0] - b[:, 0], a[:, 1] - b[:, 1])
    return d, i, j


def bw_nrd0(x):
    """R stats::bw.nrd0."""
    x = np.asarray(x, dtype=float)
    hi = np.std(x, ddof=1)
    iqr = np.quantile(x, 0.75) - np.quantile(x, 0.25)
    lo = min(hi, iqr / 1.34)
    if not lo > 0:
        lo = hi or abs(x[0]) or 1.0
    return 0.9 * lo * len(x) ** (-0.2)


def kd_exact(xy_a, w_a, r, xy_b=None, w_b=None, weighted=False, spherical=False, bw=None):
    """Exact reflected Gaussian K-density (the estimator clustermap's method='exact' computes).

    Returns (kd, bandwidth).
    """
    r = np.asarray(r, dtype=float)
    d, i, j = pair_distances(xy_a, xy_b, spherical)
    if weighted:
        W = w_a[i] * (w_a[j] if xy_b is None else w_b[j])
    else:
        W = np.ones_like(d)
    h = bw_nrd0(d[d <= 2 * r.max()]) if bw is None else bw
    phi = lambda u: np.exp(-0.5 * (u / h) ** 2) / (h * math.sqrt(2 * math.pi))  # noqa: E731
    num = (W[None, :] * phi(r[:, None] - d[None, :])).sum(axis=1)
    refl = d <= 4 * h
    num += (W[refl][None, :] * phi(r[:, None] + d[refl][None, :])).sum(axis=1)
    den = W.sum() - (W[~refl] * ndtr(-d[~refl] / h)).sum()
    return num / den, h


def _bin_dist(x, w, lo, up, n):
    """R's BinDist, vectorised with np.add.at."""
    y = np.zeros(2 * n)
    delta = (up - lo) / (n - 1)
    pos = (x - lo) / delta
    ix = np.floor(pos).astype(np.int64)
    fx = pos - ix
    inside = (ix >= 0) & (ix <= n - 2)
    np.add.at(y, ix[inside], w[inside] * (1 - fx[inside]))
    np.add.at(y, ix[inside] + 1, w[inside] * fx[inside])
    left = ix == -1
    np.add.at(y, np.zeros(left.sum(), dtype=np.int64), w[left] * fx[left])
    right = ix == n - 1
    np.add.at(y, ix[right], w[right] * (1 - fx[right]))
    return y


def r_density(x, w, bw, frm, to, n_user=512):
    """R 4.2 stats::density.default (Gaussian, given weights summing to 1): (xout, yout)."""
    n = max(n_user, 512)
    if n > 512:
        n = int(2 ** math.ceil(math.log2(n)))
    n = int(n)
    lo, up = frm - 4 * bw, to + 4 * bw
    y = _bin_dist(x, w, lo, up, n)
    kords = np.linspace(0, 2 * (up - lo), 2 * n)
    kords[n + 1 :] = -kords[n - 1 : 0 : -1]
    kords = np.exp(-0.5 * (kords / bw) ** 2) / (bw * math.sqrt(2 * math.pi))
    conv = np.fft.ifft(np.fft.fft(y) * np.conj(np.fft.fft(kords))).real[:n]
    conv = np.maximum(conv, 0)
    xout = np.linspace(frm, to, math.ceil(n_user))
    return xout, np.interp(xout, np.linspace(lo, up, n), conv)


def kd_dbmss(xy_a, w_a, r, xy_b=None, w_b=None, weighted=False):
    """dbmss Kdhat(Original = TRUE, Approximate = 0) step by step (README §5)."""
    r = np.asarray(r, dtype=float)
    rmax = r.max()
    d, i, j = pair_distances(xy_a, xy_b)
    if weighted:
        W = w_a[i] * (w_a[j] if xy_b is None else w_b[j])
    else:
        W = np.ones_like(d)
    h = bw_nrd0(d[d <= 2 * rmax])
    refl = d <= 4 * h
    D = np.r_[d, -d[refl]]
    WW = np.r_[W, W[refl]]
    WW = WW / WW.sum()
    n_dens = min(max(512, D.max() / rmax * 128), 4096)
    xd, yd = r_density(D, WW, h, 0.0, rmax, n_dens)
    xm, ym = r_density(D, WW, h, D.min() - 3 * h, 0.0, 512)
    yd = yd / (1 - ym.mean() * (xm.max() - xm.min()))
    return np.interp(r, xd, yd), h


def m_values(xy, types, w, r, reference, neighbor=None):
    """dbmss Mhat (+ Individual values): returns (M[r], individual[n_ref, r])."""
    r = np.asarray(r, dtype=float)
    nb_type = reference if neighbor is None else neighbor
    is_ref = types == reference
    is_nb = types == nb_type
    ref = np.flatnonzero(is_ref)
    d = np.hypot(xy[ref, 0][:, None] - xy[:, 0][None, :], xy[ref, 1][:, None] - xy[:, 1][None, :])
    d[np.arange(len(ref)), ref] = np.inf  # j != i
    W = w.sum()
    if neighbor is None:
        g = (w[is_ref].sum() - w[ref]) / (W - w[ref])
    else:
        g = w[is_nb].sum() / (W - w[ref])
    local = np.empty((len(ref), len(r)))
    for k, rk in enumerate(r):
        within = d <= rk
        num = (within * (w * is_nb)[None, :]).sum(axis=1)
        den = (within * w[None, :]).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            local[:, k] = np.where(den > 0, num / den, np.nan)
    ok = np.isfinite(local)
    with np.errstate(invalid="ignore", divide="ignore"):
        m = np.where(ok, local, 0).sum(axis=0) / np.where(ok, g[:, None], 0).sum(axis=0)
    return m, local / g[:, None]


def nadaraya_watson(px, py, v, gx, gy, sx, sy):
    """Gaussian Nadaraya-Watson smoother evaluated on the grid gx x gy: values[ny, nx]."""
    X, Y = np.meshgrid(gx, gy)
    k = np.exp(-0.5 * ((X[..., None] - px) / sx) ** 2 - 0.5 * ((Y[..., None] - py) / sy) ** 2)
    return (k * v).sum(axis=-1) / k.sum(axis=-1)
