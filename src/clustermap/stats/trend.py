"""Trend tests for short series: Mann–Kendall and the conditional test of two Poisson rates.

- :func:`mann_kendall`: the monotonic trend test of emerging-hot-spot tools. ``S`` counts the
  increasing pairs minus the decreasing ones; without ties and for ``n <= 10`` its null
  distribution is exact (the number of permutations with a given number of inversions,
  Mahonian numbers), otherwise the normal approximation with the tie correction and the
  continuity correction is used (Kendall 1975).
- :func:`rate_change_test`: is the relative risk ``observed / expected`` at the second date
  different from the first? Given ``n = o1 + o2``, ``o2`` is binomial with
  ``p0 = e2 / (e1 + e2)`` when the two relative risks are equal (Przyborowski & Wilenski 1940).
  Any factor common to both dates (a commune's lasting advantage) cancels. When the two counts
  share establishments (stocks at two dates) they are positively correlated and the test is
  conservative.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
from scipy import stats

__all__ = ["mann_kendall", "rate_change_test"]

#: longest series whose Mann–Kendall p-value is computed exactly (without ties)
EXACT_MAX_N = 10


@cache
def _inversion_counts(n: int) -> tuple[int, ...]:
    """Number of permutations of ``n`` items with k inversions, k = 0 .. n(n-1)/2."""
    counts = [1]
    for m in range(2, n + 1):
        new = [0] * (len(counts) + m - 1)
        for k, c in enumerate(counts):
            for j in range(m):
                new[k + j] += c
        counts = new
    return tuple(counts)


def mann_kendall(values: np.ndarray) -> tuple[int, float, float]:
    """Mann–Kendall trend test of a series in time order.

    Parameters
    ----------
    values : array-like
        The series (NaN values are dropped).

    Returns
    -------
    tuple
        ``(S, tau, p)``: the statistic, Kendall's tau (``S`` over the number of pairs) and
        the two-sided p-value (1 for fewer than 3 values).

    Examples
    --------
    Five increasing values: S = 10, and 1 permutation in 5! = 120 is as extreme on each side:

    >>> s, tau, p = mann_kendall([1.0, 2.0, 3.0, 4.0, 5.0])
    >>> s, tau, round(p, 6), round(2 / 120, 6)
    (10, 1.0, 0.016667, 0.016667)
    """
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    n = len(x)
    if n < 3:
        return 0, 0.0, 1.0
    diff = np.sign(x[None, :] - x[:, None])
    s = int(np.triu(diff, 1).sum())
    pairs = n * (n - 1) // 2
    tau = s / pairs
    _, ties = np.unique(x, return_counts=True)
    if n <= EXACT_MAX_N and (ties == 1).all():
        counts = np.array(_inversion_counts(n), dtype=float)
        s_values = pairs - 2 * np.arange(len(counts))  # S of each inversion count
        tail = counts[np.abs(s_values) >= abs(s)].sum() / math.factorial(n)
        return s, tau, float(min(1.0, tail))
    var = (n * (n - 1) * (2 * n + 5) - float((ties * (ties - 1) * (2 * ties + 5)).sum())) / 18
    if s == 0 or var <= 0:
        return s, tau, 1.0
    z = (abs(s) - 1) / math.sqrt(var)
    return s, tau, float(min(1.0, 2 * stats.norm.sf(z)))


def rate_change_test(o1: float, e1: float, o2: float, e2: float) -> tuple[float, float]:
    """Exact conditional test that two Poisson relative risks ``o / e`` are equal.

    Parameters
    ----------
    o1, e1 : float
        Observed and expected counts at the first date.
    o2, e2 : float
        The same at the second date.

    Returns
    -------
    tuple
        ``(ratio, p)``: the ratio of the relative risks ``(o2 / e2) / (o1 / e1)`` (inf when
        ``o1`` is 0) and the two-sided p-value (twice the smaller tail, at most 1).

    Examples
    --------
    5 establishments against 3.7 expected, then 232 against 25: the relative risk rose
    about 6.9-fold, far beyond chance. Given the 237, the second date's share is binomial
    with p0 = 25 / 28.7 under no change; 232 or more has probability 3.1e-9:

    >>> ratio, p = rate_change_test(5, 3.7, 232, 25.0)
    >>> round(ratio, 2), f"{p:.2e}"
    (6.87, '6.14e-09')
    >>> rate_change_test(10, 5.0, 20, 10.0)[0]
    1.0
    """
    n = round(float(o1 + o2))
    if n == 0 or e1 <= 0 or e2 <= 0:
        return float("nan"), 1.0
    p0 = e2 / (e1 + e2)
    k = round(float(o2))
    upper = stats.binom.sf(k - 1, n, p0)
    lower = stats.binom.cdf(k, n, p0)
    ratio = (o2 / e2) / (o1 / e1) if o1 > 0 else float("inf")
    return float(ratio), float(min(1.0, 2 * min(upper, lower)))
