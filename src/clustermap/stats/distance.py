r"""Distance-based localisation on the points themselves: Duranton–Overman Kd and Marcon–Puech M.

Zonings blur clusters that straddle boundaries ("dots to boxes", Briant, Combes & Lafourcade
2010). These measures work on the establishments' coordinates, as the R package dbmss does:

* :func:`k_density`: Duranton & Overman (2005) K-density of the pairwise distances of a
  sector's establishments (``weighted=True``: the employment-weighted Kemp variant),
  bivariate (co-localisation) with ``neighbor=``; counterfactuals by random location over
  all sites; local and global (DO 2005 / dbmss ``GlobalEnvelope``) confidence bands; the
  localisation index Γ, the dispersion index Ψ and the distances where the sector is
  localised.
* :func:`m_function`: Marcon & Puech (2010) M, univariate or bivariate, weighted or not,
  with its random-location envelope, the point-level values (dbmss ``Individual = TRUE``)
  and a smoothed M surface for maps (:meth:`MResult.surface`).

Distances are in kilometres: Euclidean in a projected CRS, great-circle for longitude /
latitude data.

Kd methods
----------
``method="exact"`` (default) evaluates the estimator dbmss approximates, exactly:

.. math::

   \\hat K_d(r) = \\frac{\\sum_{a<b} W_{ab}\\,[\\phi_h(r-d_{ab}) + 1\\{d_{ab}\\le 4h\\}\\,
   \\phi_h(r+d_{ab})]}{\\sum_{a<b} W_{ab} - \\sum_{d_{ab}>4h} W_{ab}\\,\\Phi(-d_{ab}/h)}

with :math:`\\phi_h` the Gaussian density of standard deviation h, :math:`W_{ab}=1`
(unweighted) or :math:`w_a w_b` (Kemp), reflection of the distances below 4h about 0
and renormalisation by the mass left on [0, ∞) (both as in dbmss ``Kdhat``); the sums run over
every pair (the kernel is truncated at 10 h and the mass-below-0 term at 9 h, relative
errors below 1e-19). The bandwidth is
``bw.nrd0`` (Silverman) of the **unweighted** distances up to 2 max(r), computed exactly from all
pairs, times ``adjust``.

``method="binned"`` reproduces dbmss ``Kdhat(..., Original = TRUE, Approximate = 0)`` step
by step: the same bandwidth, then R ``stats::density()``'s linear binning of the (reflected)
distances onto a grid of 2 x 512 to 2 x 4096 points and an FFT convolution. It matches dbmss
to ~1e-11 relative; it differs from the exact sums by up to ~0.4 % of max Kd (binning error).
It costs one pass over the pairs instead of one Gaussian window per pair, so it is the cheaper
choice for very large sectors. dbmss ``Approximate = 1`` (the dbmss default when the whole
pattern has 10 000 points or more, with a bandwidth computed on distance-bin centres that can
be 4 times larger) is deliberately not offered.

Bandwidths are exact (every quartile from the sorted pair distances) for every observed curve
and for every simulation of sectors up to ~2 000 establishments (2 million pairs). Above that
size, each *simulated* curve takes its quartiles from a 65 536-bin histogram of its pair
distances, with linear interpolation inside the bin (an error below 2 max(r) / 65 536 km on
each quartile, e.g. 1.5 m for r up to 50 km), which saves one pass over the pairs; the
observed curve keeps the exact bandwidth.

Pair finding uses a grid index built once per point set; every random-location simulation
reuses the sites' coordinates and draws only which sites receive the sector's labels and
weights. Random draws are made in NumPy before the numba kernels run, from one stream per
sector (seeded by ``random_state`` and the sector's code), and the kernels split work in
blocks fixed by the data size, so a ``random_state`` gives identical numbers whatever the
number of threads, the other sectors of the call, or the Dask workers (``client=``) it runs
on.
"""

from __future__ import annotations

import math
import warnings
import zlib
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..core.distributed import resolve_client, run_blocks, sector_blocks
from ..core.options import as_options, resolve_seed, take_legacy
from ..core.parallel import numba_threads
from ..core.progress import bar
from ..core.schema import EMPLOYEES, ESTABLISHMENT_ID, SECTOR
from ..errors import ClustermapWarning, CRSError, SchemaError

if TYPE_CHECKING:  # pragma: no cover
    import matplotlib.axes

__all__ = [
    "KdOptions",
    "KdResult",
    "MResult",
    "MSurface",
    "PointColumns",
    "k_density",
    "m_function",
]

#: Columns of ``KdResult.table`` and ``MResult.table`` (tidy: one row per sector and r).
TABLE_COLUMNS = (
    SECTOR,
    "r",
    "observed",
    "local_lo",
    "local_hi",
    "global_lo",
    "global_hi",
    "sim_mean",
)
_METHODS = ("exact", "binned")
_SQRT_2PI = math.sqrt(2.0 * math.pi)


# ----------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class PointColumns:
    """How to read establishments as points from a table (``k_density``, ``m_function``).

    Attributes
    ----------
    x, y : str, default "x", "y"
        Coordinate columns of a DataFrame (kilometres unless ``crs`` is given).
    sector : str, default "sector"
        Column of the sector codes.
    weight : str, optional
        Column of the weights of the weighted statistics (default ``employees``).
    crs : optional
        CRS of ``x``/``y`` (e.g. 2154 or 4326); overrides a GeoDataFrame's CRS.

    Examples
    --------
    >>> PointColumns(sector="naf").sector
    'naf'
    """

    x: str = "x"
    y: str = "y"
    sector: str = SECTOR
    weight: str | None = None
    crs: Any = None


@dataclass(frozen=True)
class KdOptions:
    """The kernel estimate of :func:`k_density`.

    Attributes
    ----------
    method : {"exact", "binned"}, default "exact"
        "exact" sums the Gaussian kernel over every pair; "binned" reproduces dbmss
        ``Kdhat(Approximate = 0)`` (R ``density()`` binning + FFT).
    adjust : float, default 1
        Multiplier of the Silverman bandwidth (dbmss ``Adjust``).
    bandwidth : float, optional
        Fixed bandwidth in km for the observed and simulated curves (overrides the rule).

    Examples
    --------
    >>> KdOptions(method="binned").method
    'binned'
    """

    method: str = "exact"
    adjust: float = 1.0
    bandwidth: float | None = None

    def __post_init__(self) -> None:
        if self.method not in _METHODS:
            raise ValueError(f"'method' must be one of {_METHODS}; {self.method!r} was given.")
        if self.bandwidth is not None and not self.bandwidth > 0:
            raise ValueError(
                f"'bandwidth' must be a positive distance in km; got {self.bandwidth}."
            )


#: old keywords of k_density / m_function -> their new place
_LEGACY_COLUMNS = {
    "x": "columns.x",
    "y": "columns.y",
    "type": "columns.sector",
    "weight": "columns.weight",
    "crs": "columns.crs",
}
_LEGACY_KD = {
    **_LEGACY_COLUMNS,
    "sector": "sectors",
    "method": "options.method",
    "adjust": "options.adjust",
    "bandwidth": "options.bandwidth",
}


def _columns_and_options(func, columns, options, legacy, moved):
    old = take_legacy(func, legacy, moved, stacklevel=5)
    cols = as_options(PointColumns, columns, "columns", old.get("columns"))
    opts = as_options(KdOptions, options, "options", old.get("options"))
    return cols, opts, old.get("", {})


@dataclass
class _Points:
    x: np.ndarray  # km (planar) or 3-D sphere coordinates in km
    y: np.ndarray
    z: np.ndarray
    spherical: bool
    types: np.ndarray  # object array of str
    weights: np.ndarray  # float64 (1.0 when unweighted)
    ids: pd.Index
    cx: np.ndarray  # coordinates in the input CRS (for surfaces)
    cy: np.ndarray
    crs: Any
    dropped: dict[str, int] = field(default_factory=dict)


def _as_frame(data: Any) -> pd.DataFrame:
    if hasattr(data, "establishments") and not isinstance(data, pd.DataFrame):
        data = data.establishments
    if not isinstance(data, pd.DataFrame):
        raise TypeError(
            "Expected a clustermap Registry, a GeoDataFrame or a DataFrame of establishments; "
            f"got {type(data).__name__}. Read a file with clustermap.read_registry(path) or pass "
            "a DataFrame with x, y and type columns."
        )
    return data


def _check_sims(simulations: int, alpha: float) -> int:
    if not 0 < alpha < 1:
        raise ValueError(f"'alpha' must be between 0 and 1; got {alpha}.")
    simulations = int(simulations)
    if simulations < 0:
        raise ValueError(f"'simulations' must be >= 0; got {simulations}.")
    return simulations


def _points(data: Any, cols: PointColumns, *, weighted: bool) -> _Points:
    import geopandas as gpd

    x, y, type, weight, crs = cols.x, cols.y, cols.sector, cols.weight, cols.crs
    from pyproj import CRS

    df = _as_frame(data)
    dropped: dict[str, int] = {}
    if type not in df.columns:
        raise SchemaError(
            f"Column {type!r} (establishment type / sector) is missing; the data have columns "
            f"{list(df.columns)[:12]}. Pass columns={{'sector': '<column name>'}}."
        )
    is_geo = isinstance(df, gpd.GeoDataFrame) and df.geometry.name in df.columns
    if is_geo:
        the_crs = df.crs if crs is None else CRS.from_user_input(crs)
        if the_crs is None:
            raise CRSError(
                "The GeoDataFrame has no CRS, so distances cannot be measured. Set it first, "
                "e.g. gdf.set_crs(2154) for Lambert-93 metres or gdf.set_crs(4326) for "
                "longitude/latitude."
            )
        geom = df.geometry
        missing = geom.isna() | geom.is_empty
        if (~missing).any() and not (geom[~missing].geom_type == "Point").all():
            raise SchemaError(
                "The geometry column must hold points (one per establishment); found "
                f"{sorted(set(geom[~missing].geom_type))}. Use gdf.representative_point()."
            )
        cx = np.full(len(df), np.nan)
        cy = np.full(len(df), np.nan)
        cx[~missing.to_numpy()] = geom[~missing].x.to_numpy()
        cy[~missing.to_numpy()] = geom[~missing].y.to_numpy()
    else:
        for col in (x, y):
            if col not in df.columns:
                raise SchemaError(
                    f"Coordinate column {col!r} is missing; the data have columns "
                    f"{list(df.columns)[:12]}. Pass columns={{'x': '<column>', 'y': '<column>'}}, "
                    "or a GeoDataFrame of points."
                )
        the_crs = None if crs is None else CRS.from_user_input(crs)
        cx = pd.to_numeric(df[x], errors="coerce").to_numpy(dtype=float)
        cy = pd.to_numeric(df[y], errors="coerce").to_numpy(dtype=float)
    keep = np.isfinite(cx) & np.isfinite(cy)
    if (~keep).sum():
        dropped["missing_coordinates"] = int((~keep).sum())
    types = df[type].to_numpy(dtype=object)
    tmiss = pd.isna(df[type]).to_numpy() & keep
    if tmiss.sum():
        dropped["missing_type"] = int(tmiss.sum())
        keep &= ~tmiss
    if weighted:
        wcol = weight if weight is not None else EMPLOYEES
        if wcol not in df.columns:
            raise SchemaError(
                f"Weight column {wcol!r} is missing; the data have columns "
                f"{list(df.columns)[:12]}. Pass columns={{'weight': '<column>'}} or weighted=False."
            )
        w = pd.to_numeric(df[wcol], errors="coerce").to_numpy(dtype=float)
        bad = ~(np.isfinite(w) & (w >= 0)) & keep
        if bad.sum():
            dropped["invalid_weight"] = int(bad.sum())
            keep &= ~bad
    else:
        w = np.ones(len(df))
    if dropped:
        detail = ", ".join(f"{k}: {v}" for k, v in dropped.items())
        warnings.warn(
            f"{sum(dropped.values())} of {len(df)} establishment(s) left out of the distance "
            f"measures ({detail}).",
            ClustermapWarning,
            stacklevel=3,
        )
    cx, cy, types, w = cx[keep], cy[keep], types[keep].astype(str), w[keep]
    ids = df.index[keep]
    if ESTABLISHMENT_ID in df.columns:
        ids = pd.Index(df[ESTABLISHMENT_ID].to_numpy()[keep], name=ESTABLISHMENT_ID)
    if the_crs is not None and the_crs.is_geographic:
        if np.any(np.abs(cy) > 90) or np.any(np.abs(cx) > 360):
            raise CRSError(
                f"The CRS {the_crs.to_string()} is geographic but some coordinates are outside "
                "longitude/latitude ranges. Check the CRS (e.g. Lambert-93 is EPSG:2154)."
            )
        lon = np.radians(cx)
        lat = np.radians(cy)
        from ._distance_kernels import EARTH_RADIUS_KM

        px = EARTH_RADIUS_KM * np.cos(lat) * np.cos(lon)
        py = EARTH_RADIUS_KM * np.cos(lat) * np.sin(lon)
        pz = EARTH_RADIUS_KM * np.sin(lat)
        spherical = True
    else:
        factor = 1.0  # DataFrame without crs: coordinates are kilometres
        if the_crs is not None:
            unit = the_crs.axis_info[0].unit_conversion_factor if the_crs.axis_info else None
            if unit is None:
                raise CRSError(
                    f"Cannot tell the unit of CRS {the_crs.to_string()}; reproject the data to "
                    "a projected CRS in metres, e.g. gdf.to_crs(2154)."
                )
            factor = unit / 1000.0
        px = cx * factor
        py = cy * factor
        pz = np.zeros_like(px)
        spherical = False
    return _Points(
        x=np.ascontiguousarray(px, dtype=np.float64),
        y=np.ascontiguousarray(py, dtype=np.float64),
        z=np.ascontiguousarray(pz, dtype=np.float64),
        spherical=spherical,
        types=types,
        weights=np.ascontiguousarray(w, dtype=np.float64),
        ids=ids,
        cx=cx,
        cy=cy,
        crs=the_crs,
        dropped=dropped,
    )


def _check_r(r: Any, *, name: str = "r") -> np.ndarray:
    arr = np.asarray(r, dtype=float).ravel()
    if arr.size < 2 or not np.all(np.isfinite(arr)) or arr[0] < 0 or np.any(np.diff(arr) <= 0):
        raise ValueError(
            f"{name!r} must be at least two finite, non-negative, strictly increasing distances "
            f"in km; got {np.asarray(r).ravel()[:6]}{'...' if np.size(r) > 6 else ''}."
        )
    if arr[-1] <= 0:
        raise ValueError(f"The largest {name!r} must be positive (km); got {arr[-1]}.")
    return np.ascontiguousarray(arr)


def _is_uniform(r: np.ndarray) -> bool:
    d = np.diff(r)
    return bool(np.allclose(d, d[0], rtol=1e-9, atol=0.0))


def _bbox_diagonal(pts: _Points) -> float:
    if pts.spherical:
        from ._distance_kernels import diameter

        idx = np.unique(
            np.r_[np.argmin(pts.cx), np.argmax(pts.cx), np.argmin(pts.cy), np.argmax(pts.cy)]
        )
        return float(diameter(pts.x[idx], pts.y[idx], pts.z[idx], True))
    return float(math.hypot(np.ptp(pts.x), np.ptp(pts.y)))


def _select_sectors(pts: _Points, sector: Any, min_count: int) -> list[str]:
    counts = pd.Series(pts.types).value_counts()
    if sector is None:
        chosen = sorted(counts.index[counts >= min_count])
        if not chosen:
            raise ValueError(
                f"No type has at least min_count={min_count} establishments (largest: "
                f"{counts.max() if len(counts) else 0}). Lower min_count or pass sector=."
            )
        return chosen
    chosen = [sector] if isinstance(sector, str) else list(sector)
    unknown = [s for s in chosen if s not in counts.index]
    if unknown:
        raise ValueError(
            f"Sector(s) {unknown} not found among the {len(counts)} types of the data "
            f"(e.g. {list(counts.index[:5])}). Check the code format, e.g. '25.62A'."
        )
    return [str(s) for s in chosen]


# ----------------------------------------------------------------------------- envelopes


def _local_envelope(sims: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pointwise quantiles (type 7) and mean of the simulations (rows = simulations)."""
    # without NaN, np.quantile gives nanquantile's numbers in one vectorised call (nanquantile
    # goes column by column)
    quantile = np.nanquantile if np.isnan(sims).any() else np.quantile
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lo = quantile(sims, alpha / 2, axis=0)
        hi = quantile(sims, 1 - alpha / 2, axis=0)
        mean = np.nanmean(sims, axis=0)
    return lo, hi, mean


def _global_envelope(sims: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Dbmss ``GlobalEnvelope``: drop extreme simulations until (1 - alpha) nsim remain.

    While more than the target remain, every simulation that is the minimum or the maximum at
    some r is dropped; the band is the min / max of those kept, interpolated towards the
    previous min / max by the shortfall below the target.
    """
    nsim = sims.shape[0]
    target = (1 - alpha) * nsim
    kept = np.arange(nsim)

    def _minmax(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        sub = sims[idx]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmin(sub, axis=0), np.nanmax(sub, axis=0)

    pmin, pmax = _minmax(kept)
    prev_min, prev_max = pmin, pmax
    valid = ~np.all(np.isnan(sims), axis=0)
    while kept.size > target:
        prev_min, prev_max = pmin, pmax
        sub = sims[kept][:, valid]
        filled_lo = np.where(np.isnan(sub), np.inf, sub)
        filled_hi = np.where(np.isnan(sub), -np.inf, sub)
        drop = np.unique(np.r_[np.argmin(filled_lo, axis=0), np.argmax(filled_hi, axis=0)])
        kept = np.delete(kept, drop)
        if kept.size < 2:
            raise ValueError(
                "The global envelope could not be computed: too few simulations. Increase "
                "'simulations' (100 or more is usual)."
            )
        pmin, pmax = _minmax(kept)
    nk = kept.size
    lo = pmin + (prev_min - pmin) / nsim * (target - nk)
    hi = pmax + (prev_max - pmax) / nsim * (target - nk)
    return lo, hi


def _runs(r: np.ndarray, flag: np.ndarray) -> list[tuple[float, float]]:
    out = []
    i = 0
    n = len(flag)
    while i < n:
        if flag[i]:
            j = i
            while j + 1 < n and flag[j + 1]:
                j += 1
            out.append((float(r[i]), float(r[j])))
            i = j + 1
        else:
            i += 1
    return out


# ----------------------------------------------------------------------------- Kd core


def _kd_finish_binned(ymain, ymirror, meta, r, w_total) -> np.ndarray:
    """The FFT half of R density(), twice, as in dbmss Kdhat(Approximate = 0)."""
    from . import _distance_kernels as K

    h = meta[K.BW]
    n = int(meta[K.NMAIN])
    lo, up = meta[K.LO], meta[K.UP]
    total = w_total + meta[K.WREFL]
    y = np.zeros(2 * n)
    y[:n] = ymain[:n] / total
    kords = np.linspace(0.0, 2.0 * (up - lo), 2 * n)
    kords[n + 1 :] = -kords[n - 1 : 0 : -1]
    kern = np.exp(-0.5 * (kords / h) ** 2) / (h * _SQRT_2PI)
    conv = np.fft.ifft(np.fft.fft(y) * np.conj(np.fft.fft(kern))).real[:n]
    conv = np.maximum(conv, 0.0)
    xd = np.linspace(0.0, r[-1], math.ceil(meta[K.NDENS]))
    dens = np.interp(xd, np.linspace(lo, up, n), conv)
    mass = 0.0
    if meta[K.FROMM] < 0:
        fm, lom, upm = meta[K.FROMM], meta[K.LOM], meta[K.UPM]
        y2 = np.zeros(1024)
        y2[:512] = ymirror[:512] / total
        k2 = np.linspace(0.0, 2.0 * (upm - lom), 1024)
        k2[513:] = -k2[511:0:-1]
        kern2 = np.exp(-0.5 * (k2 / h) ** 2) / (h * _SQRT_2PI)
        c2 = np.maximum(np.fft.ifft(np.fft.fft(y2) * np.conj(np.fft.fft(kern2))).real[:512], 0)
        yy = np.interp(np.linspace(fm, 0.0, 512), np.linspace(lom, upm, 512), c2)
        mass = float(yy.mean() * (0.0 - fm))
    return np.interp(r, xd, dens / (1.0 - mass))


def _kd_finish_many(accs, ymains, ymirrors, metas, r, w_total, method):
    """:func:`_kd_finish` of many simulations at once (same arithmetic, row by row).

    The FFTs of the simulations that share a grid size run as one 2-D call (numpy transforms
    each row on its own: the same numbers as one call per row) and the elementwise steps work
    on whole blocks; only the interpolations stay per row. Returns (curves, bandwidths).
    """
    from . import _distance_kernels as K

    nsim = metas.shape[0]
    sims = np.full((nsim, len(r)), np.nan)
    ok = metas[:, K.OK] != 0
    bws = np.where(ok, metas[:, K.BW], np.nan)
    if not ok.any():
        return sims, bws
    if method == "exact":
        h = metas[ok, K.BW][:, None]
        sims[ok] = accs[ok] / (h * _SQRT_2PI) / (w_total - metas[ok, K.CORR][:, None])
        return sims, bws
    mass = np.zeros(nsim)
    mir = np.flatnonzero(ok & (metas[:, K.FROMM] < 0))
    if mir.size:
        m = metas[mir]
        h = m[:, K.BW][:, None]
        total = (w_total + m[:, K.WREFL])[:, None]
        y2 = np.zeros((mir.size, 1024))
        y2[:, :512] = ymirrors[mir, :512] / total
        k2 = np.linspace(0.0, 2.0 * (m[:, K.UPM] - m[:, K.LOM]), 1024, axis=1)
        k2[:, 513:] = -k2[:, 511:0:-1]
        kern2 = np.exp(-0.5 * (k2 / h) ** 2) / (h * _SQRT_2PI)
        c2 = np.fft.ifft(np.fft.fft(y2, axis=1) * np.conj(np.fft.fft(kern2, axis=1)), axis=1)
        c2 = np.maximum(c2.real[:, :512], 0)
        for row, k in enumerate(mir):
            fm, lom, upm = metas[k, K.FROMM], metas[k, K.LOM], metas[k, K.UPM]
            yy = np.interp(np.linspace(fm, 0.0, 512), np.linspace(lom, upm, 512), c2[row])
            mass[k] = float(yy.mean() * (0.0 - fm))
    ns = metas[:, K.NMAIN].astype(np.int64)
    for n in np.unique(ns[ok]):
        idx = np.flatnonzero(ok & (ns == n))
        m = metas[idx]
        h = m[:, K.BW][:, None]
        lo, up = m[:, K.LO], m[:, K.UP]
        total = (w_total + m[:, K.WREFL])[:, None]
        y = np.zeros((idx.size, 2 * n))
        y[:, :n] = ymains[idx, :n] / total
        kords = np.linspace(0.0, 2.0 * (up - lo), 2 * n, axis=1)
        kords[:, n + 1 :] = -kords[:, n - 1 : 0 : -1]
        kern = np.exp(-0.5 * (kords / h) ** 2) / (h * _SQRT_2PI)
        conv = np.fft.ifft(np.fft.fft(y, axis=1) * np.conj(np.fft.fft(kern, axis=1)), axis=1)
        conv = np.maximum(conv.real[:, :n], 0.0)
        for row, k in enumerate(idx):
            xd = np.linspace(0.0, r[-1], math.ceil(metas[k, K.NDENS]))
            dens = np.interp(xd, np.linspace(lo[row], up[row], n), conv[row])
            sims[k] = np.interp(r, xd, dens / (1.0 - mass[k]))
    return sims, bws


def _w_total(uni: bool, weighted: bool, aw: np.ndarray, bw: np.ndarray) -> float:
    """Sum of the pair weights over *all* pairs (the Kd normalisation)."""
    if uni:
        n = bw.shape[0]
        if weighted:
            return float((bw.sum() ** 2 - (bw**2).sum()) / 2.0)
        return n * (n - 1) / 2.0
    return float(aw.sum() * bw.sum()) if weighted else float(aw.shape[0]) * bw.shape[0]


def _kd_finish(acc, ymain, ymirror, meta, r, w_total, method) -> tuple[np.ndarray, float, int]:
    from . import _distance_kernels as K

    if meta[K.OK] == 0:
        return np.full(r.shape, np.nan), np.nan, int(meta[K.NBW])
    h = float(meta[K.BW])
    if method == "exact":
        kd = acc / (h * _SQRT_2PI) / (w_total - meta[K.CORR])
    else:
        kd = _kd_finish_binned(ymain, ymirror, meta, r, w_total)
    return kd, h, int(meta[K.NBW])


def _is_small(n1: int, n2: int, uni: bool) -> bool:
    from ._distance_kernels import SMALL_PAIRS

    pairs = n1 * (n1 - 1) // 2 if uni else n1 * n2
    return pairs <= SMALL_PAIRS


def _kd_curve(
    ax,
    ay,
    az,
    aw,
    bx,
    by,
    bz,
    bw,
    *,
    uni,
    weighted,
    spherical,
    r,
    uniform,
    adjust,
    method,
    fixed_bw,
    exact_bw=True,
) -> tuple[np.ndarray, float, int]:
    """Kd at r, the bandwidth used and the number of pairs the bandwidth was computed on."""
    from . import _distance_kernels as K

    m = 0 if method == "exact" else 1
    if uni:
        ax, ay, az, aw = bx, by, bz, bw
    w_total = _w_total(uni, weighted, aw, bw)
    args = (ax, ay, az, aw, bx, by, bz, bw, uni, weighted, spherical, r, uniform, adjust)
    if _is_small(ax.shape[0], bx.shape[0], uni):
        out = K.kd_small(*args, m, fixed_bw)
    else:
        out = K.kd_compute(*args, m, fixed_bw, K._n_blocks(ax.shape[0]), exact_bw)
    return _kd_finish(*out, r, w_total, method)


def _kd_small_many(xyz, w1, w2, draws, uni, weighted, spherical, r, uniform, adjust, m,
                   fixed_bw):  # fmt: skip
    """The serial Kd kernel on every draw, one chunk of draws per thread.

    Rows of ``draws``: n1 reference sites, then n2 neighbour sites; returns (acc, ymain,
    ymirror, meta) stacked over the draws. The kernel runs without the GIL; a numba
    ``prange`` wrapper around it would cost about 6.5 s more of compilation at a machine's
    first use.
    """
    import numba

    from . import _distance_kernels as K

    sx, sy, sz = xyz
    n1 = len(w1)

    def one(k: int):
        a = draws[k, :n1]
        xa, ya, za = sx[a], sy[a], sz[a]
        if uni:
            return K.kd_small(xa, ya, za, w1, xa, ya, za, w1, True, weighted, spherical, r,
                              uniform, adjust, m, fixed_bw)  # fmt: skip
        b = draws[k, n1:]
        return K.kd_small(xa, ya, za, w1, sx[b], sy[b], sz[b], w2, False, weighted, spherical,
                          r, uniform, adjust, m, fixed_bw)  # fmt: skip

    nsim = draws.shape[0]
    workers = max(1, min(numba.get_num_threads(), nsim))
    chunks = np.array_split(np.arange(nsim), workers)  # one task per thread
    with ThreadPoolExecutor(max_workers=workers) as pool:
        parts = list(pool.map(lambda ks: [one(k) for k in ks], chunks))
    outs = [o for part in parts for o in part]
    return tuple(np.stack([o[j] for o in outs]) for j in range(4))


def _kd_simulations(
    pts, w1, w2, draws, *, uni, weighted, spherical, r, uniform, adjust, method, fixed_bw
) -> tuple[np.ndarray, np.ndarray]:
    """Simulated curves (one row per draw) and their bandwidths."""
    nsim = draws.shape[0]
    sims = np.full((nsim, len(r)), np.nan)
    bws = np.full(nsim, np.nan)
    if nsim == 0:
        return sims, bws
    w_total = _w_total(uni, weighted, w1, w1 if uni else w2)
    m = 0 if method == "exact" else 1
    n1, n2 = len(w1), len(w2)
    if _is_small(n1, n2, uni):
        accs, yms, yrs, metas = _kd_small_many(
            (pts.x, pts.y, pts.z), w1, w2, draws, uni, weighted, spherical, r, uniform, adjust,
            m, fixed_bw,
        )  # fmt: skip
        return _kd_finish_many(accs, yms, yrs, metas, r, w_total, method)
    for k in range(nsim):
        a = _take(pts, draws[k, :n1], w1)
        b = a if uni else _take(pts, draws[k, n1:], w2)
        sims[k], bws[k], _ = _kd_curve(
            *a,
            *b,
            uni=uni,
            weighted=weighted,
            spherical=spherical,
            r=r,
            uniform=uniform,
            adjust=adjust,
            method=method,
            fixed_bw=fixed_bw,
            exact_bw=False,
        )
    return sims, bws


# ----------------------------------------------------------------------------- results


class _BaseResult:
    table: pd.DataFrame
    summary: pd.DataFrame
    parameters: dict[str, Any]
    simulations: dict[str, np.ndarray]
    _ylabel = ""
    _null = None

    def _one(self, sector: str | None) -> str:
        sectors = list(self.summary.index)
        if sector is None:
            if len(sectors) != 1:
                raise ValueError(
                    f"This result holds {len(sectors)} sectors; pass sector= one of {sectors[:8]}."
                )
            return sectors[0]
        if sector not in sectors:
            raise ValueError(f"Sector {sector!r} is not in this result; choose from {sectors[:8]}.")
        return sector

    def curve(self, sector: str | None = None) -> pd.DataFrame:
        """The rows of :attr:`table` for one sector, indexed by r.

        Parameters
        ----------
        sector : str, optional
            Needed when the result holds several sectors.

        Returns
        -------
        pandas.DataFrame
            Columns ``observed``, ``local_lo``, ``local_hi``, ``global_lo``, ``global_hi``,
            ``sim_mean``.
        """
        s = self._one(sector)
        return self.table[self.table[SECTOR] == s].drop(columns=SECTOR).set_index("r")

    def plot(self, ax: matplotlib.axes.Axes | None = None, sector: str | None = None):
        """Plot the observed curve with its local band (shaded) and global band (dashed).

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Axes to draw on; a new figure is made when None.
        sector : str, optional
            Needed when the result holds several sectors.

        Returns
        -------
        matplotlib.axes.Axes
        """
        try:
            import matplotlib.pyplot as plt
        except ImportError as err:  # pragma: no cover
            raise ImportError(
                "plot() needs matplotlib: pip install 'clustermap[plot]' or "
                "conda install matplotlib."
            ) from err
        s = self._one(sector)
        c = self.curve(s)
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        r = c.index.to_numpy()
        if c["local_lo"].notna().any():
            ax.fill_between(r, c["local_lo"], c["local_hi"], color="0.85", label="local band")
            ax.plot(r, c["global_lo"], "k--", lw=0.8, label="global band")
            ax.plot(r, c["global_hi"], "k--", lw=0.8)
        if self._null is not None:
            ax.axhline(self._null, color="0.5", lw=0.6)
        ax.plot(r, c["observed"], color="C3", lw=1.6, label="observed")
        ax.set_xlabel("distance r (km)")
        ax.set_ylabel(self._ylabel)
        ax.set_title(s)
        ax.legend(frameon=False)
        return ax


@dataclass(repr=False)
class KdResult(_BaseResult):
    """Duranton–Overman K-density of one or several sectors, with its confidence bands.

    Attributes
    ----------
    table : pandas.DataFrame
        Tidy, one row per sector and r: ``sector``, ``r`` (km), ``observed`` (Kd, per km),
        ``local_lo``, ``local_hi`` (pointwise alpha/2 and 1 - alpha/2 quantiles of the
        simulations), ``global_lo``, ``global_hi`` (DO 2005 / dbmss global band),
        ``sim_mean``.
    summary : pandas.DataFrame
        One row per sector (index ``sector``): ``neighbor``, ``n``, ``n_neighbor``,
        ``weight_total``, ``bandwidth`` (km, used for the observed curve),
        ``bandwidth_pairs`` (pairs within 2 max(r) it was computed on),
        ``sim_bandwidth_median``, ``gamma`` (Γ = Σ_r max(Kd - global_hi, 0)), ``psi``
        (Ψ = Σ_r max(global_lo - Kd, 0), counted only when Γ = 0), ``localised``,
        ``dispersed``, ``localised_ranges`` (list of (r_from, r_to) where Kd > global_hi).
    parameters : dict
        Every argument used (method, weighted, simulations, alpha, adjust, random_state...).
    simulations : dict
        Sector -> array (simulations x r) of the simulated curves.

    Examples
    --------
    Two tight groups of 10 points among 100 random sites; Γ sums the excess of Kd over the
    global upper band along the r grid:

    >>> rng = np.random.default_rng(0)
    >>> field = pd.DataFrame({"x": rng.uniform(0, 100, 100), "y": rng.uniform(0, 100, 100),
    ...                       "sector": "other"})
    >>> grp = pd.DataFrame({"x": np.r_[rng.normal(20, 1, 10), rng.normal(70, 1, 10)],
    ...                     "y": np.r_[rng.normal(20, 1, 10), rng.normal(60, 1, 10)],
    ...                     "sector": "A"})
    >>> res = cm.k_density(pd.concat([field, grp]), "A", r=np.arange(0, 41.0),
    ...                    simulations=19, alpha=0.1, random_state=1)
    >>> res
    <KdResult: 1 sector(s), 1 localised, method='exact', 19 simulations>
    >>> t = res.table
    >>> bool(np.isclose(res.gamma, (t["observed"] - t["global_hi"]).clip(lower=0).sum()))
    True
    >>> res.psi  # dispersion is counted only when the sector is not localised
    0.0
    """

    table: pd.DataFrame
    summary: pd.DataFrame
    parameters: dict[str, Any]
    simulations: dict[str, np.ndarray] = field(default_factory=dict)
    _ylabel = "Kd(r)"

    @property
    def bandwidth(self) -> float | pd.Series:
        """Bandwidth (km) of the observed curve: a float for one sector, else a Series."""
        b = self.summary["bandwidth"]
        return float(b.iloc[0]) if len(b) == 1 else b

    @property
    def gamma(self) -> float | pd.Series:
        """Localisation index Γ (float for one sector, else a Series by sector)."""
        g = self.summary["gamma"]
        return float(g.iloc[0]) if len(g) == 1 else g

    @property
    def psi(self) -> float | pd.Series:
        """Dispersion index Ψ (float for one sector, else a Series by sector)."""
        p = self.summary["psi"]
        return float(p.iloc[0]) if len(p) == 1 else p

    def localised_ranges(self, sector: str | None = None) -> list[tuple[float, float]]:
        """Distance ranges (km) where Kd is above the global upper band.

        Parameters
        ----------
        sector : str, optional
            Needed when the result holds several sectors.

        Returns
        -------
        list of (float, float)
        """
        return list(self.summary.loc[self._one(sector), "localised_ranges"])

    def __repr__(self) -> str:
        n_loc = int(self.summary["localised"].sum()) if len(self.summary) else 0
        return (
            f"<KdResult: {len(self.summary)} sector(s), {n_loc} localised, method="
            f"{self.parameters.get('method')!r}, {self.parameters.get('simulations')} "
            "simulations>"
        )


@dataclass
class MSurface:
    """A smoothed map of point-level M values, ready for an image overlay.

    Attributes
    ----------
    values : numpy.ndarray
        ``(ny, nx)`` smoothed M; row 0 is the **southern** (smallest y) row: flip it
        (``values[::-1]``) for image formats whose first row is the top.
    x, y : numpy.ndarray
        Cell-centre coordinates (CRS units) of the columns and rows.
    bounds : tuple
        ``(xmin, ymin, xmax, ymax)`` of the cell edges, in the CRS.
    crs : pyproj.CRS or None
        CRS of ``x``, ``y`` and ``bounds`` (None: the kilometre coordinates given).
    r : float
        Distance (km) of the M values smoothed.
    bandwidth : tuple
        Gaussian standard deviations (x, y) in CRS units (Scott's rule by default).

    Examples
    --------
    Sector A fills the left half of a 10 x 10 lattice; the surface is a kernel-weighted
    average of the point-level M values, so it stays within their range:

    >>> g = np.arange(10.0)
    >>> xx, yy = np.meshgrid(g, g)
    >>> df = pd.DataFrame({"x": xx.ravel(), "y": yy.ravel(),
    ...                    "sector": np.where(xx.ravel() < 5, "A", "B")})
    >>> res = cm.m_function(df, "A", r=[1, 2], simulations=0)
    >>> surface = res.surface(1, resolution=16)
    >>> surface.values.shape, tuple(round(float(b), 1) for b in surface.bounds)
    ((16, 16), (0.0, 0.0, 4.0, 9.0))
    >>> point_m = res.individual["A"][1.0]
    >>> bool(point_m.min() <= np.nanmin(surface.values) <= np.nanmax(surface.values)
    ...      <= point_m.max())
    True
    """

    values: np.ndarray
    x: np.ndarray
    y: np.ndarray
    bounds: tuple[float, float, float, float]
    crs: Any
    r: float
    bandwidth: tuple[float, float]


@dataclass(repr=False)
class MResult(_BaseResult):
    """Marcon–Puech M of one or several reference sectors, with its envelope.

    Attributes
    ----------
    table : pandas.DataFrame
        Tidy, one row per sector and r: ``sector``, ``r`` (km), ``observed`` (M),
        ``local_lo``, ``local_hi``, ``global_lo``, ``global_hi``, ``sim_mean``. M is NaN
        where no reference point has a neighbour (e.g. r = 0).
    summary : pandas.DataFrame
        One row per reference sector: ``neighbor``, ``n``, ``weight_total``,
        ``concentrated`` / ``dispersed`` (M above the global band / below it at some r),
        ``concentrated_ranges``.
    individual : dict
        Sector -> DataFrame of point-level M values (rows: reference establishments,
        columns: r); dbmss ``Mhat(..., Individual = TRUE)``.
    parameters : dict
        Every argument used.
    simulations : dict
        Sector -> array (simulations x r).

    Examples
    --------
    Sector A fills the left half of a 10 x 10 lattice of sites. At r = 1 an interior A
    point has only A neighbours (local ratio 1) against a global ratio of 49/99:

    >>> g = np.arange(10.0)
    >>> xx, yy = np.meshgrid(g, g)
    >>> df = pd.DataFrame({"x": xx.ravel(), "y": yy.ravel(),
    ...                    "sector": np.where(xx.ravel() < 5, "A", "B")})
    >>> res = cm.m_function(df, "A", r=[1, 2], simulations=19, random_state=0)
    >>> res
    <MResult: 1 sector(s), 19 simulations>
    >>> round(float(res.individual["A"].loc[0, 1.0]), 4), round(99 / 49, 4)
    (2.0204, 2.0204)
    >>> res.summary.loc["A", "concentrated_ranges"]
    [(1.0, 2.0)]
    """

    table: pd.DataFrame
    summary: pd.DataFrame
    parameters: dict[str, Any]
    individual: dict[str, pd.DataFrame] = field(default_factory=dict)
    simulations: dict[str, np.ndarray] = field(default_factory=dict)
    _coords: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    _crs: Any = None
    _ylabel = "M(r)"
    _null = 1.0

    def __repr__(self) -> str:
        return (
            f"<MResult: {len(self.summary)} sector(s), "
            f"{self.parameters.get('simulations')} simulations>"
        )

    def surface(
        self,
        r: float,
        sector: str | None = None,
        *,
        resolution: int = 128,
        bandwidth: float | tuple[float, float] | None = None,
    ) -> MSurface:
        """Smooth the point-level M values at distance ``r`` into a grid (dbmss ``Smooth``).

        Nadaraya–Watson smoothing with a Gaussian kernel: each cell gets
        Σ_i K(g - x_i) M_i(r) / Σ_i K(g - x_i) over the reference points whose M_i(r) is
        defined, on a ``resolution`` x ``resolution`` grid over their bounding box.

        Parameters
        ----------
        r : float
            One of the distances of the result (km); the nearest one is used.
        sector : str, optional
            Needed when the result holds several sectors.
        resolution : int, default 128
            Cells along each axis.
        bandwidth : float or (float, float), optional
            Kernel standard deviation(s) in CRS units; default Scott's rule per axis,
            sd(x) n^(-1/6) (as spatstat ``bw.scott``).

        Returns
        -------
        MSurface
        """
        s = self._one(sector)
        ind = self.individual[s]
        cols = np.asarray(ind.columns, dtype=float)
        k = int(np.argmin(np.abs(cols - r)))
        vals = ind.iloc[:, k].to_numpy(dtype=float)
        px, py = self._coords[s]
        ok = np.isfinite(vals)
        if ok.sum() < 2:
            raise ValueError(f"Fewer than two reference points have an M value at r={cols[k]}.")
        px, py, vals = px[ok], py[ok], vals[ok]
        n = len(vals)
        if bandwidth is None:
            sx = float(np.std(px, ddof=1)) * n ** (-1 / 6)
            sy = float(np.std(py, ddof=1)) * n ** (-1 / 6)
        elif np.ndim(bandwidth) == 0:
            sx = sy = float(bandwidth)
        else:
            sx, sy = (float(b) for b in bandwidth)
        if not (sx > 0 and sy > 0):
            raise ValueError("The smoothing bandwidth must be positive.")
        x0, x1 = float(px.min()), float(px.max())
        y0, y1 = float(py.min()), float(py.max())
        dx = (x1 - x0) / resolution or 1.0
        dy = (y1 - y0) / resolution or 1.0
        gx = x0 + dx * (np.arange(resolution) + 0.5)
        gy = y0 + dy * (np.arange(resolution) + 0.5)
        from ._distance_kernels import smooth_grid

        num, den = smooth_grid(px, py, vals, gx, gy, sx, sy)
        with np.errstate(invalid="ignore", divide="ignore"):
            values = np.where(den > 1e-300, num / den, np.nan)
        return MSurface(
            values=values,
            x=gx,
            y=gy,
            bounds=(x0, y0, x0 + dx * resolution, y0 + dy * resolution),
            crs=self._crs,
            r=float(cols[k]),
            bandwidth=(sx, sy),
        )


# ----------------------------------------------------------------------------- k_density


def k_density(
    data: Any,
    sectors: str | Sequence[str] | None = None,
    *,
    neighbor: str | None = None,
    r: Sequence[float] | np.ndarray | None = None,
    weighted: bool = False,
    simulations: int = 100,
    alpha: float = 0.05,
    min_count: int = 20,
    columns: PointColumns | Mapping[str, Any] | None = None,
    random_state: int | np.random.Generator | None = None,
    n_jobs: int | None = None,
    client: Any = None,
    options: KdOptions | Mapping[str, Any] | None = None,
    **legacy: Any,
) -> KdResult:
    """Duranton–Overman K-density (Kd, or Kemp when weighted) with random-location bands.

    Parameters
    ----------
    data : Registry, geopandas.GeoDataFrame or pandas.DataFrame
        Establishments: a clustermap Registry (its ``establishments``), a GeoDataFrame of
        points (any CRS; lon/lat gives great-circle distances), or a DataFrame with ``x`` and
        ``y`` columns (in kilometres unless ``crs`` is given).
    sectors : str, list of str or None
        Sector code(s) to measure (values of the sector column). None: every sector with at
        least ``min_count`` establishments. (``sector=`` is the old spelling.)
    neighbor : str, optional
        Second sector for the bivariate (co-localisation) Kd of ``sectors`` x ``neighbor``
        pairs (DO 2008); ``sectors`` must then be a single code.
    r : array-like, optional
        Distances in km (sorted, >= 0). Default: 512 values from 0 to a third of the
        bounding-box diagonal of all establishments (dbmss ``MaxRange = "ThirdW"``).
    weighted : bool, default False
        Kemp: each pair weighs w_a w_b (weight column, default ``employees``).
    simulations : int, default 100
        Random-location counterfactuals (0: no bands). Each re-draws the sector's
        establishments among all sites (weights attached) and recomputes its bandwidth.
    alpha : float, default 0.05
        Risk level of the local and global bands.
    min_count : int, default 20
        Smallest sector analysed when ``sectors=None``.
    columns : PointColumns or dict, optional
        Column names of a DataFrame (``x``, ``y``, ``sector``, ``weight``) and the ``crs``
        of its coordinates (:class:`PointColumns`; the old keywords ``x=``, ``y=``,
        ``type=``, ``weight=``, ``crs=`` still work for one release).
    random_state : int or numpy.random.Generator, optional
        Seed of the simulations; None draws one. ``parameters["random_state"]`` holds the
        seed used, so any run can be reproduced.
    n_jobs : int, optional
        numba threads (default: numba's setting; -1: all). Results do not depend on it.
    client : dask.distributed.Client or str, optional
        Run blocks of sectors as tasks of a Dask cluster (a client, a scheduler address or
        ``"local"``; needs ``pip install 'clustermap[dask]'``); each sector's simulations
        come from its own stream, so the result equals the single-machine one.
    options : KdOptions or dict, optional
        The kernel estimate: ``method`` ("exact" or dbmss' "binned"), ``adjust`` and a
        fixed ``bandwidth`` (:class:`KdOptions`; the old keywords still work).

    Returns
    -------
    KdResult

    Notes
    -----
    Γ and Ψ are sums over the r grid (DO 2005 use a 1-km grid to 180 km). A sector is
    "localised" when Kd exceeds the global upper band at some r of the grid.

    Examples
    --------
    Two tight groups of 10 points in a field of 100 random sites:

    >>> rng = np.random.default_rng(0)
    >>> field = pd.DataFrame({"x": rng.uniform(0, 100, 100), "y": rng.uniform(0, 100, 100),
    ...                       "sector": "other"})
    >>> grp = pd.DataFrame({"x": np.r_[rng.normal(20, 1, 10), rng.normal(70, 1, 10)],
    ...                     "y": np.r_[rng.normal(20, 1, 10), rng.normal(60, 1, 10)],
    ...                     "sector": "A"})
    >>> res = cm.k_density(pd.concat([field, grp]), "A", r=np.arange(0, 41.0),
    ...                    simulations=19, alpha=0.1, random_state=1)
    >>> bool(res.summary.loc["A", "localised"]), res.localised_ranges("A")[0][0]
    (True, 0.0)
    >>> round(res.bandwidth, 2)  # km: bw.nrd0 of the 190 pair distances up to 80 km
    9.79
    """
    cols, opts, renamed = _columns_and_options("k_density", columns, options, legacy, _LEGACY_KD)
    sector = renamed.get("sectors", sectors)
    method, adjust, bandwidth = opts.method, opts.adjust, opts.bandwidth
    simulations = _check_sims(simulations, alpha)
    pts = _points(data, cols, weighted=weighted)
    if neighbor is not None and (sector is None or not isinstance(sector, str)):
        raise ValueError("A bivariate Kd (neighbor=...) needs a single sector=, e.g. '25.62A'.")
    sectors = _select_sectors(pts, sector, min_count)
    if neighbor is not None:
        _select_sectors(pts, neighbor, 0)
        if neighbor == sectors[0]:
            neighbor = None
    r_arr = np.linspace(0.0, _bbox_diagonal(pts) / 3.0, 512) if r is None else _check_r(r)
    uniform = _is_uniform(r_arr)
    random_state = resolve_seed(random_state)
    client = resolve_client(client)
    if client is not None and len(sectors) > 1:
        kw = {"neighbor": neighbor, "r": r_arr, "weighted": weighted, "options": opts}
        return _sharded(
            "k_density",
            data,
            sectors,
            client,
            random_state=random_state,
            n_jobs=n_jobs,
            simulations=simulations,
            alpha=alpha,
            min_count=min_count,
            columns=cols,
            **kw,
        )
    n_sites = len(pts.x)
    rows = []
    summaries = []
    sims_out: dict[str, np.ndarray] = {}
    fixed = float(bandwidth) if bandwidth is not None else 0.0
    with numba_threads(n_jobs):
        for s in bar(sectors, desc="envelopes", unit="sector"):
            ref = np.flatnonzero(pts.types == s)
            nb = np.flatnonzero(pts.types == neighbor) if neighbor is not None else ref[:0]
            uni = neighbor is None
            if len(ref) < (2 if uni else 1) or (not uni and len(nb) < 1):
                raise ValueError(f"Sector {s!r} has too few establishments ({len(ref)}) for Kd.")
            kw = {
                "uni": uni,
                "weighted": weighted,
                "spherical": pts.spherical,
                "r": r_arr,
                "uniform": uniform,
                "adjust": adjust,
                "method": method,
                "fixed_bw": fixed,
            }
            kd, h, npairs = _kd_curve(
                pts.x[ref],
                pts.y[ref],
                pts.z[ref],
                pts.weights[ref],
                *(_take(pts, nb) if not uni else _take(pts, ref)),
                **kw,
            )
            if not np.isfinite(h):
                raise ValueError(
                    f"Sector {s!r}: fewer than two pairs of establishments lie within "
                    f"2 max(r) = {2 * r_arr[-1]:.3g} km, so no bandwidth can be computed. "
                    "Increase max(r) or pass bandwidth=."
                )
            n1, n2 = len(ref), len(nb)
            rng = _sector_rng(random_state, s)
            draws = np.empty((simulations, n1 + n2), dtype=np.int64)
            for k in range(simulations):
                draws[k] = rng.choice(n_sites, size=n1 + n2, replace=False)
            sims, sim_bw = _kd_simulations(
                pts,
                np.ascontiguousarray(pts.weights[ref]),
                np.ascontiguousarray(pts.weights[nb]),
                draws,
                **kw,
            )
            rows.append(_tidy(s, r_arr, kd, sims, alpha))
            sims_out[s] = sims
            summaries.append(
                _kd_summary(s, neighbor, ref, nb, pts, h, npairs, sim_bw, r_arr, kd, rows[-1])
            )
    table = pd.concat(rows, ignore_index=True)
    summary = pd.DataFrame(summaries).set_index(SECTOR)
    params = {
        "method": method,
        "weighted": weighted,
        "neighbor": neighbor,
        "simulations": simulations,
        "alpha": alpha,
        "adjust": adjust,
        "bandwidth": bandwidth,
        "random_state": random_state,
        "spherical": pts.spherical,
        "n_sites": n_sites,
        "r_max": float(r_arr[-1]),
        "n_r": len(r_arr),
        "dropped": pts.dropped,
        "null": "random location over all sites",
    }
    return KdResult(table=table, summary=summary, parameters=params, simulations=sims_out)


def _sector_rng(seed: int, sector: Any) -> np.random.Generator:
    """The stream of one sector's simulations: the same whatever other sectors are run."""
    return np.random.default_rng([seed, zlib.crc32(str(sector).encode("utf-8"))])


def _sharded(name: str, data: Any, sectors: list[Any], client: Any, **kwargs: Any):
    """``k_density`` or ``m_function`` over blocks of sectors on ``client``'s workers."""
    blocks = [[sectors[i] for i in b] for b in sector_blocks(len(sectors), client)]
    parts = run_blocks(client, _distance_block, [data], blocks, name=name, stacklevel=4, **kwargs)
    merged: dict[str, Any] = {
        "table": pd.concat([p.table for p in parts], ignore_index=True),
        "summary": pd.concat([p.summary for p in parts]),
        "parameters": parts[0].parameters,
        "simulations": {k: v for p in parts for k, v in p.simulations.items()},
    }
    if name == "k_density":
        return KdResult(**merged)
    merged["individual"] = {k: v for p in parts for k, v in p.individual.items()}
    merged["_coords"] = {k: v for p in parts for k, v in p._coords.items()}
    return MResult(**merged, _crs=parts[0]._crs)


def _distance_block(block: list[Any], data: Any, *, name: str, **kwargs: Any):
    """One task of :func:`_sharded`."""
    return {"k_density": k_density, "m_function": m_function}[name](data, block, **kwargs)


def _take(pts: _Points, idx: np.ndarray, w: np.ndarray | None = None):
    return (
        np.ascontiguousarray(pts.x[idx]),
        np.ascontiguousarray(pts.y[idx]),
        np.ascontiguousarray(pts.z[idx]),
        np.ascontiguousarray(pts.weights[idx] if w is None else w, dtype=np.float64),
    )


def _tidy(s: str, r: np.ndarray, obs: np.ndarray, sims: np.ndarray, alpha: float) -> pd.DataFrame:
    nan = np.full(r.shape, np.nan)
    if sims.shape[0] >= 2:
        llo, lhi, mean = _local_envelope(sims, alpha)
        try:
            glo, ghi = _global_envelope(sims, alpha)
        except ValueError as err:
            warnings.warn(f"Sector {s!r}: {err}", ClustermapWarning, stacklevel=3)
            glo = ghi = nan
    else:
        llo = lhi = mean = glo = ghi = nan
    return pd.DataFrame(
        {
            SECTOR: s,
            "r": r,
            "observed": obs,
            "local_lo": llo,
            "local_hi": lhi,
            "global_lo": glo,
            "global_hi": ghi,
            "sim_mean": mean,
        }
    )


def _kd_summary(s, neighbor, ref, nb, pts, h, npairs, sim_bw, r, kd, tab) -> dict[str, Any]:
    above = (kd > tab["global_hi"].to_numpy()) & np.isfinite(tab["global_hi"].to_numpy())
    below = (kd < tab["global_lo"].to_numpy()) & np.isfinite(tab["global_lo"].to_numpy())
    gamma = float(np.sum(np.where(above, kd - tab["global_hi"].to_numpy(), 0.0)))
    psi = float(np.sum(np.where(below, tab["global_lo"].to_numpy() - kd, 0.0)))
    if gamma > 0:
        psi = 0.0
    return {
        SECTOR: s,
        "neighbor": neighbor,
        "n": len(ref),
        "n_neighbor": len(nb) if neighbor is not None else len(ref),
        "weight_total": float(pts.weights[ref].sum()),
        "bandwidth": h,
        "bandwidth_pairs": npairs,
        "sim_bandwidth_median": float(np.nanmedian(sim_bw)) if len(sim_bw) else np.nan,
        "gamma": gamma,
        "psi": psi,
        "localised": bool(above.any()),
        "dispersed": bool(gamma == 0 and below.any()),
        "localised_ranges": _runs(r, above),
    }


# ----------------------------------------------------------------------------- m_function


def _check_m_r(r: Any) -> np.ndarray:
    r_arr = np.asarray(r, dtype=float).ravel()
    if r_arr.size < 1 or not np.all(np.isfinite(r_arr)) or r_arr[0] < 0:
        raise ValueError(f"'r' must be finite non-negative distances in km; got {r_arr[:6]}.")
    if np.any(np.diff(r_arr) <= 0):
        raise ValueError("'r' must be strictly increasing.")
    return np.ascontiguousarray(r_arr)


def _default_m_r(diag: float) -> np.ndarray:
    steps = np.r_[
        0,
        np.arange(1, 21),
        np.arange(22, 41, 2),
        np.arange(45, 101, 5),
        np.arange(110, 201, 10),
        np.arange(220, 401, 20),
    ]
    return diag * steps / 800.0


def m_function(
    data: Any,
    reference: str | Sequence[str] | None = None,
    *,
    neighbor: str | None = None,
    r: Sequence[float] | np.ndarray | None = None,
    weighted: bool = False,
    simulations: int = 100,
    alpha: float = 0.05,
    min_count: int = 20,
    columns: PointColumns | Mapping[str, Any] | None = None,
    random_state: int | np.random.Generator | None = None,
    n_jobs: int | None = None,
    client: Any = None,
    **legacy: Any,
) -> MResult:
    """Marcon–Puech M (univariate or bivariate, weighted or not) with its envelope.

    For reference type S, neighbour type T (= S by default) and weights w:

    M(r) = Σ_i [Σ_{j≠i, d_ij≤r, j∈T} w_j / Σ_{j≠i, d_ij≤r} w_j] / Σ_i g_i, with
    g_i = (W_T − w_i)/(W − w_i) (univariate) or W_T/(W − w_i) (bivariate), both sums over the
    reference points that have at least one neighbour within r (dbmss ``Mhat``). M = 1 when
    the sector is distributed like all activity; M > 1 means relative concentration.

    Parameters
    ----------
    data : Registry, geopandas.GeoDataFrame or pandas.DataFrame
        Establishments (see :func:`k_density`).
    reference : str, list of str or None
        Reference sector(s); None: every sector with at least ``min_count`` establishments.
    neighbor : str, optional
        Neighbour sector for the bivariate M (``reference`` must be a single code).
    r : array-like, optional
        Distances in km. Default: the 63 dbmss steps, D x (0, 1, ..., 20, 22, ..., 400) / 800
        with D the bounding-box diagonal (so up to D / 2).
    weighted : bool, default False
        Weight points by the ``weight`` column (default ``employees``); otherwise every point
        weighs 1 (counts).
    simulations : int, default 100
        Random-location simulations: all (weight, type) marks permuted over all sites.
    alpha : float, default 0.05
        Risk level of the bands.
    min_count : int, default 20
        Smallest sector analysed when ``reference=None``.
    columns : PointColumns or dict, optional
        As in :func:`k_density`.
    random_state : int or numpy.random.Generator, optional
        Seed of the simulations; None draws one. ``parameters["random_state"]`` holds the
        seed used, so any run can be reproduced.
    n_jobs : int, optional
        numba threads (default: numba's setting; -1: all). Results do not depend on it.
    client : dask.distributed.Client or str, optional
        Run blocks of sectors as tasks of a Dask cluster (a client, a scheduler address or
        ``"local"``; needs ``pip install 'clustermap[dask]'``); each sector's simulations
        come from its own stream, so the result equals the single-machine one.

    Returns
    -------
    MResult

    Examples
    --------
    Sector A occupies the left half of a 10 x 10 lattice of sites, B the right half. At
    r = 1, the 40 A points off the border have only A neighbours (local ratio 1), the 10 on
    the border 3/4 or 2/3; each global ratio is 49/99:

    >>> g = np.arange(10.0)
    >>> xx, yy = np.meshgrid(g, g)
    >>> df = pd.DataFrame({"x": xx.ravel(), "y": yy.ravel(),
    ...                    "sector": np.where(xx.ravel() < 5, "A", "B")})
    >>> res = cm.m_function(df, "A", r=[1, 2], simulations=0)
    >>> res.curve()["observed"].round(4).tolist()
    [1.9127, 1.8422]
    """
    cols, _, _ = _columns_and_options("m_function", columns, None, legacy, _LEGACY_COLUMNS)
    simulations = _check_sims(simulations, alpha)
    from . import _distance_kernels as K

    pts = _points(data, cols, weighted=weighted)
    if neighbor is not None and (reference is None or not isinstance(reference, str)):
        raise ValueError("A bivariate M (neighbor=...) needs a single reference=, e.g. '25.62A'.")
    sectors = _select_sectors(pts, reference, min_count)
    if neighbor is not None:
        _select_sectors(pts, neighbor, 0)
        if neighbor == sectors[0]:
            neighbor = None
    r_arr = _default_m_r(_bbox_diagonal(pts)) if r is None else _check_m_r(r)
    random_state = resolve_seed(random_state)
    client = resolve_client(client)
    if client is not None and len(sectors) > 1:
        return _sharded(
            "m_function",
            data,
            sectors,
            client,
            random_state=random_state,
            n_jobs=n_jobs,
            neighbor=neighbor,
            r=r_arr,
            weighted=weighted,
            simulations=simulations,
            alpha=alpha,
            min_count=min_count,
            columns=cols,
        )
    order, ukeys, starts, params = K.build_grid(
        pts.x, pts.y, pts.z, max(float(r_arr[-1]), 1e-9), pts.spherical
    )
    # the shared structure: all sites in grid order, thresholds and their lookup table
    sx, sy, sz = (np.ascontiguousarray(a[order]) for a in (pts.x, pts.y, pts.z))
    grid_pos = np.empty(len(order), dtype=np.int64)
    grid_pos[order] = np.arange(len(order))
    thr2, lut = K.m_thresholds(r_arr, pts.spherical)
    w = pts.weights
    w_total = float(w.sum())
    # the simulations gather one weight per neighbour: float32 halves the bytes when it
    # holds every weight exactly (head-count bands, counts); sums stay float64
    w32 = w.astype(np.float32)
    w_store = w32 if np.array_equal(w32, w) else w
    rows, summaries = [], []
    individual: dict[str, pd.DataFrame] = {}
    coords: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    sims_out: dict[str, np.ndarray] = {}
    n_sites = len(w)
    with numba_threads(n_jobs):
        for s in bar(sectors, desc="envelopes", unit="sector"):
            is_ref = pts.types == s
            is_nb = is_ref if neighbor is None else (pts.types == neighbor)
            ref = np.flatnonzero(is_ref)
            w_ref = float(w[ref].sum())
            w_nb = float(w[is_nb].sum())
            totals = (w_ref, w_nb, w_total)
            site_v = np.where(is_nb, -w, w)[order]
            nb_acc, all_acc = K.m_individual(
                grid_pos[ref], sx, sy, sz, site_v, thr2, lut, ukeys, starts, params
            )
            obs, indiv = _m_observed(nb_acc, all_acc, w[ref], neighbor is not None, totals)
            individual[s] = pd.DataFrame(indiv, index=pts.ids[ref], columns=r_arr)
            coords[s] = (pts.cx[ref], pts.cy[ref])
            sims = _m_simulated(
                _sector_rng(random_state, s),
                simulations,
                len(r_arr),
                n_sites,
                w_store,
                is_ref,
                is_nb,
                (sx, sy, sz, thr2, lut, ukeys, starts, params),
                (neighbor is not None, *totals),
            )
            tab = _tidy(s, r_arr, obs, sims, alpha)
            rows.append(tab)
            sims_out[s] = sims
            summaries.append(_m_summary(s, neighbor, len(ref), w_ref, obs, tab, r_arr))
    params_out = {
        "weighted": weighted,
        "neighbor": neighbor,
        "simulations": simulations,
        "alpha": alpha,
        "random_state": random_state,
        "spherical": pts.spherical,
        "n_sites": n_sites,
        "dropped": pts.dropped,
        "null": "random location over all sites",
    }
    return MResult(
        table=pd.concat(rows, ignore_index=True),
        summary=pd.DataFrame(summaries).set_index(SECTOR),
        parameters=params_out,
        individual=individual,
        simulations=sims_out,
        _coords=coords,
        _crs=pts.crs,
    )


def _m_observed(nb_acc, all_acc, wi, bivariate: bool, totals: tuple[float, float, float]):
    """Observed M at each r and each reference establishment's own ratio."""
    w_ref, w_nb, w_total = totals
    with np.errstate(invalid="ignore", divide="ignore"):
        g = (w_nb / (w_total - wi)) if bivariate else ((w_ref - wi) / (w_total - wi))
        local = np.where(all_acc > 0, nb_acc / all_acc, np.nan)
        has = all_acc > 0
        num = np.where(has, local, 0.0).sum(axis=0)
        den = np.where(has, g[:, None], 0.0).sum(axis=0)
        obs = np.where(den > 0, num / den, np.nan)
        return obs, local / g[:, None]


def _m_simulated(rng, simulations, n_r, n_sites, w_store, is_ref, is_nb, grid, totals):
    """M of ``simulations`` random relocations of all marks, drawn in batches."""
    from . import _distance_kernels as K

    sims = np.full((simulations, n_r), np.nan)
    batch = max(1, min(simulations, 20_000_000 // max(n_sites, 1)))
    done = 0
    while done < simulations:
        nb_ = min(batch, simulations - done)
        perms = np.stack([rng.permutation(n_sites) for _ in range(nb_)]).astype(np.int64)
        sims[done : done + nb_] = K.m_simulations(perms, w_store, is_ref, is_nb, *grid, *totals)
        done += nb_
    return sims


def _m_summary(s, neighbor, n, w_ref, obs, tab, r_arr) -> dict[str, Any]:
    ghi, glo = tab["global_hi"].to_numpy(), tab["global_lo"].to_numpy()
    above = np.isfinite(ghi) & (obs > ghi)
    below = np.isfinite(glo) & (obs < glo)
    return {
        SECTOR: s,
        "neighbor": neighbor,
        "n": n,
        "weight_total": w_ref,
        "concentrated": bool(above.any()),
        "dispersed": bool(below.any()),
        "concentrated_ranges": _runs(r_arr, above),
    }
