"""Extra-Poisson dispersion of establishment counts, and the tests and intervals that use it.

Establishments of a sector bunch in some units beyond what the units' activity predicts, for
reasons that make no cluster (a local firm that split into several establishments, a
municipal policy, a frailty of the place). A Poisson test then sees clusters in noise, above
all in big units, where a 50 % excess is both common and "significant". clustermap models
the count of sector *s* in unit *i* as negative binomial (NB2, a Poisson with a Gamma
frailty of variance ``alpha_s``):

``E[O_is] = E_is``, ``Var[O_is] = E_is + alpha_s E_is²``

and a sum over a window or a region ``W`` of independent units as negative binomial with the
same mean and variance ``E_W + alpha_s sum_{i in W} E_is²`` (docs/methods.md,
"Overdispersion"). ``alpha_s = 0`` is the Poisson model, and every function here then
gives exactly the Poisson answer.

``alpha_s`` is estimated per sector by :func:`estimate_dispersion` with a robust
quantile-matching rule, so that the clusters themselves (a few units in the far upper tail)
do not inflate it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import special

__all__ = [
    "estimate_dispersion",
    "negative_binomial_cdf",
    "negative_binomial_sf",
    "overdispersed_interval",
]

#: alphas tried by the estimator (0 = Poisson), log-spaced from 0.001 to 10
_GRID = np.r_[0.0, np.geomspace(1e-3, 10.0, 41)]


def _size(mean: np.ndarray, extra: np.ndarray) -> np.ndarray:
    """NB size ``r = mean² / extra`` (inf for a Poisson cell)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(extra > 0, mean**2 / np.where(extra > 0, extra, 1.0), np.inf)


def negative_binomial_sf(o: Any, mean: Any, extra: Any) -> np.ndarray:
    """``P(X >= o)`` for a count with mean ``mean`` and variance ``mean + extra``.

    ``extra = 0`` gives the Poisson tail exactly; ``extra > 0`` the negative binomial with
    size ``mean² / extra``. ``o <= 0`` gives 1.

    Examples
    --------
    Poisson(1): ``P(X >= 2) = 1 - 2/e``; the NB with the same mean and variance 2 has a
    heavier tail, equal to scipy's ``nbinom.sf(1, 1, 0.5)`` = 0.25:

    >>> negative_binomial_sf([2, 2], [1.0, 1.0], [0.0, 1.0]).round(4)
    array([0.2642, 0.25  ])
    """
    o, mean, extra = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (o, mean, extra)))
    out = np.ones(o.shape)
    pos = o > 0
    r = _size(mean, extra)
    poisson = pos & ~np.isfinite(r)
    nb = pos & np.isfinite(r)
    with np.errstate(all="ignore"):
        out[poisson] = special.gammainc(o[poisson], mean[poisson])
        # P(X >= o) = I_{mean / (r + mean)}(o, r)
        out[nb] = special.betainc(o[nb], r[nb], mean[nb] / (r[nb] + mean[nb]))
    return out


def negative_binomial_cdf(o: Any, mean: Any, extra: Any) -> np.ndarray:
    """``P(X <= o)`` (0 for ``o < 0``), the complement of :func:`negative_binomial_sf`.

    Examples
    --------
    >>> negative_binomial_cdf([0, 1, -1], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]).round(4)
    array([0.5 , 0.75, 0.  ])
    """
    o, mean, extra = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (o, mean, extra)))
    out = np.zeros(o.shape)
    ok = o >= 0
    r = _size(mean, extra)
    poisson = ok & ~np.isfinite(r)
    nb = ok & np.isfinite(r)
    with np.errstate(all="ignore"):
        out[poisson] = special.gammaincc(o[poisson] + 1, mean[poisson])
        out[nb] = special.betainc(r[nb], o[nb] + 1, r[nb] / (r[nb] + mean[nb]))
    return out


def _central_share(o: np.ndarray, mean: np.ndarray, alpha: float) -> float:
    """Expected share of randomised PIT values in [1/4, 3/4] (1/2 under the right alpha)."""
    extra = alpha * mean**2
    f0 = negative_binomial_cdf(o - 1, mean, extra)
    f1 = negative_binomial_cdf(o, mean, extra)
    width = np.maximum(f1 - f0, 1e-300)
    inside = np.clip(np.minimum(f1, 0.75) - np.maximum(f0, 0.25), 0.0, None)
    return float(np.mean(inside / width))


def _alpha_of_sector(o: np.ndarray, mean: np.ndarray) -> float:
    """The alpha whose model puts half the units' PIT values in the central half."""
    shares = np.array([_central_share(o, mean, a) for a in _GRID])
    if shares[0] >= 0.5:
        return 0.0
    above = np.flatnonzero(shares >= 0.5)
    if not len(above):
        return float(_GRID[-1])
    j = int(above[0])
    if j == 1:
        return float(_GRID[1] * (0.5 - shares[0]) / (shares[1] - shares[0]))
    lo, hi = np.log(_GRID[j - 1]), np.log(_GRID[j])
    t = (0.5 - shares[j - 1]) / (shares[j] - shares[j - 1])
    return float(np.exp(lo + t * (hi - lo)))


def estimate_dispersion(
    x: Any,
    *,
    min_expected: float = 1.0,
    max_units: int = 1000,
    prior_units: int = 100,
    totals: Any = None,
) -> pd.DataFrame:
    """Extra-Poisson dispersion ``alpha`` of every sector of a units × sectors count table.

    Expected counts are relative to all activity, ``E_is = n_i· n_·s / N``. For each sector
    the units with ``E_is >= min_expected`` (the ``max_units`` largest) are kept, and
    ``alpha`` is chosen so that, under the negative binomial with variance
    ``E + alpha E²``, the randomised probability integral transform of the observed counts
    puts exactly half of them in the central half ``[1/4, 3/4]``: the interquartile rule of
    a robust scale estimate, exact for counts of any size (the expected share is 1/2 under
    the true ``alpha`` whatever ``E``). Clusters sit in the far upper tail, so a few of them
    move the estimate by at most their share of the units.

    Sectors with few such units have a noisy estimate; it is shrunk towards the median of
    the well-measured sectors (``prior_units`` or more units): ``alpha_s = (m_s a_s +
    prior_units a_0) / (m_s + prior_units)``. With no well-measured sector, ``a_0`` is the
    unit-weighted mean of all estimates (0 when nothing can be estimated).

    Parameters
    ----------
    x : scipy.sparse matrix or array-like
        Establishment counts, units × sectors.
    min_expected : float, default 1.0
        Units whose expected count is below this carry almost no information on ``alpha``.
    max_units : int, default 1000
        Largest expected counts used per sector (bounds the cost).
    prior_units : int, default 100
        Weight of the pooled value in the shrinkage, in units.
    totals : array-like, optional
        The activity expected counts are proportional to (default the row sums of ``x``), as
        in the window test.

    Returns
    -------
    pandas.DataFrame
        One row per sector (column of ``x``): ``alpha`` (the value used), ``alpha_sector``
        (the sector's own estimate, NaN without any unit) and ``units_used``.

    Examples
    --------
    Counts drawn from a Gamma(3)-Poisson mixture (true ``alpha`` = 1/3) in 2 000 units, with
    a sector of pure Poisson counts beside it:

    >>> rng = np.random.default_rng(0)
    >>> n_i = rng.integers(20, 400, 2000).astype(float)
    >>> frailty = rng.gamma(3.0, 1 / 3.0, 2000)
    >>> a = rng.poisson(0.05 * n_i * frailty)
    >>> b = rng.poisson(0.05 * n_i)
    >>> x = np.c_[a, b, np.maximum(n_i - a - b, 0)]
    >>> est = estimate_dispersion(x)
    >>> est["alpha_sector"].round(2).tolist()[:2]
    [0.35, 0.0]
    """
    x = sp.csc_matrix(x, dtype=float)
    n_i = np.asarray(x.sum(axis=1)).ravel() if totals is None else np.asarray(totals, float)
    n_s = np.asarray(x.sum(axis=0)).ravel()
    total = float(n_s.sum())
    order = np.argsort(-n_i, kind="stable")
    sorted_n = n_i[order]
    own = np.full(x.shape[1], np.nan)
    used = np.zeros(x.shape[1], dtype=np.int64)
    for s in range(x.shape[1]):
        if n_s[s] <= 0 or total <= 0:
            continue
        m = min(int(np.searchsorted(-sorted_n, -min_expected * total / n_s[s], "right")), max_units)
        if m == 0:
            continue
        rows = order[:m]
        o = np.asarray(x[rows, s].toarray()).ravel()
        own[s] = _alpha_of_sector(o, n_i[rows] * n_s[s] / total)
        used[s] = m
    good = used >= prior_units
    if good.any():
        pooled = float(np.median(own[good]))
    elif used.sum() > 0:
        pooled = float(np.nansum(own * used) / used.sum())
    else:
        pooled = 0.0
    shrunk = np.where(used > 0, (used * np.nan_to_num(own) + prior_units * pooled), 0.0)
    alpha = np.where(used > 0, shrunk / (used + prior_units), pooled)
    return pd.DataFrame({"alpha": alpha, "alpha_sector": own, "units_used": used})


def overdispersed_interval(
    o: Any, e: Any, extra: Any, conf_level: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Interval of the rate ratio ``theta = mean / e`` of counts with extra variance.

    The count has mean ``theta e`` and variance ``theta e + theta² extra`` (``extra`` is the
    extra variance at ``theta = 1``: ``alpha sum E_i²`` for a region). The bounds invert the
    exact tails: ``P(X >= o | theta_low) = P(X <= o | theta_high) = (1 - conf_level) / 2``.
    With ``extra = 0`` this is the exact Poisson (Garwood) interval.

    Examples
    --------
    >>> from clustermap.stats.lq import garwood_interval
    >>> low, high = overdispersed_interval([30.0], [10.0], [0.0])
    >>> g_low, g_high, _ = garwood_interval(np.array([30.0]), np.array([10.0]), 0.95)
    >>> bool(np.allclose([low[0], high[0]], [g_low[0], g_high[0]], rtol=1e-9))
    True

    One unit with ``alpha`` 0.5 (extra variance 0.5 × 10²): an LQ of 3 is no longer sure to
    exceed 1 (scipy's ``nbinom`` with size 2 gives the same bounds, 0.997 and 25.907):

    >>> low, high = overdispersed_interval([30.0], [10.0], [50.0])
    >>> round(float(low[0]), 3), round(float(high[0]), 3)
    (0.997, 25.907)
    """
    o, e, extra = (np.atleast_1d(np.asarray(v, dtype=float)) for v in (o, e, extra))
    tail = (1.0 - conf_level) / 2.0

    def solve(upper: bool) -> np.ndarray:
        lo = np.full(o.shape, -30.0)
        hi = np.full(o.shape, np.log(np.maximum(o, 1.0) / np.maximum(e, 1e-300)) + 12.0)
        for _ in range(80):  # bisection on log theta
            mid = (lo + hi) / 2.0
            theta = np.exp(mid)
            mean, ext = theta * e, theta**2 * extra
            if upper:  # P(X <= o) decreases with theta
                too_low = negative_binomial_cdf(o, mean, ext) > tail
            else:  # P(X >= o) increases with theta
                too_low = negative_binomial_sf(o, mean, ext) < tail
            lo = np.where(too_low, mid, lo)
            hi = np.where(too_low, hi, mid)
        return np.exp((lo + hi) / 2.0)

    low = np.where(o > 0, solve(upper=False), 0.0)
    return low, solve(upper=True)
