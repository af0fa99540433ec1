"""Overdispersion: negative-binomial tails against scipy, the robust estimator against the
truth of simulated Gamma-Poisson counts, and the traded / local rule by hand."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from clustermap.detect.types import dissimilarity_types, resolve_types
from clustermap.stats.dispersion import (
    estimate_dispersion,
    negative_binomial_cdf,
    negative_binomial_sf,
    overdispersed_interval,
)


def test_tails_equal_scipy_nbinom_and_poisson():
    rng = np.random.default_rng(1)
    o = rng.integers(0, 60, 500).astype(float)
    mean = rng.uniform(0.2, 40, 500)
    alpha = rng.uniform(0.01, 2, 500)
    extra = alpha * mean**2
    size = 1 / alpha
    p = size / (size + mean)
    np.testing.assert_allclose(
        negative_binomial_sf(o, mean, extra), stats.nbinom.sf(o - 1, size, p), rtol=1e-10
    )
    np.testing.assert_allclose(
        negative_binomial_cdf(o, mean, extra), stats.nbinom.cdf(o, size, p), rtol=1e-10
    )
    zero = np.zeros_like(mean)
    np.testing.assert_allclose(
        negative_binomial_sf(o, mean, zero), stats.poisson.sf(o - 1, mean), rtol=1e-10
    )
    np.testing.assert_allclose(
        negative_binomial_cdf(o, mean, zero), stats.poisson.cdf(o, mean), rtol=1e-10
    )


def _gamma_poisson(alpha, seed, n=3000, share=0.02):
    rng = np.random.default_rng(seed)
    n_i = rng.integers(20, 2000, n).astype(float)
    frailty = rng.gamma(1 / alpha, alpha, n) if alpha > 0 else np.ones(n)
    x = rng.poisson(share * n_i * frailty)
    return rng, np.c_[x, rng.poisson((1 - share) * n_i)]


@pytest.mark.parametrize("alpha", [0.1, 1 / 3, 1.0])
def test_estimate_recovers_the_frailty_variance(alpha):
    """Mean of 10 draws within 10 % of the truth, each within 25 %."""
    est = [estimate_dispersion(_gamma_poisson(alpha, s)[1])["alpha_sector"][0] for s in range(10)]
    assert np.mean(est) == pytest.approx(alpha, rel=0.1)
    assert np.all(np.abs(np.array(est) / alpha - 1) < 0.25)


def test_estimate_is_not_inflated_by_clusters():
    """Clusters in 2 % of the units: the robust estimate moves by little, the method of
    moments (sum((O - E)² - O) / sum(E²)) doubles."""
    rng, x = _gamma_poisson(1 / 3, 0)
    y = x.copy()
    idx = rng.choice(len(x), 60, replace=False)
    y[idx, 0] = y[idx, 0] * 5 + 20
    clean = estimate_dispersion(x)["alpha_sector"][0]
    robust = estimate_dispersion(y)["alpha_sector"][0]
    assert robust == pytest.approx(clean, rel=0.1)
    n_i = y.sum(axis=1)
    e = n_i * y[:, 0].sum() / y.sum()
    moments = ((y[:, 0] - e) ** 2 - y[:, 0]).sum() / (e**2).sum()
    assert moments > 1.8 * robust


def test_pure_poisson_counts_give_almost_no_dispersion():
    est = [estimate_dispersion(_gamma_poisson(0.0, s)[1])["alpha_sector"][0] for s in range(10)]
    assert np.median(est) < 0.002
    assert max(est) < 0.02


def test_small_sectors_are_shrunk_towards_the_well_measured_ones():
    """A sector with 10 usable units gets (10 a + 100 a_0) / 110, a_0 the median of the
    sectors with >= 100 units."""
    rng = np.random.default_rng(3)
    n_i = np.r_[np.full(1990, 50.0), np.full(10, 5000.0)]  # ten towns among villages
    big = [rng.poisson(0.05 * n_i * rng.gamma(2.0, 0.5, 2000)) for _ in range(3)]
    small = rng.poisson(0.002 * n_i)  # expected >= 1 in the ten towns only
    x = np.c_[(*big, small, n_i)]
    est = estimate_dispersion(x)
    assert (est["units_used"][:3] >= 100).all()
    used = est["units_used"][3]
    assert 0 < used < 100
    pooled = np.median(est["alpha_sector"][est["units_used"] >= 100])
    own = est["alpha_sector"][3]
    assert est["alpha"][3] == pytest.approx((used * own + 100 * pooled) / (used + 100))


def test_interval_has_its_coverage_under_the_model():
    """95 % intervals of the rate ratio cover the truth about 95 % of the time."""
    rng = np.random.default_rng(4)
    e, alpha, theta = 20.0, 0.3, 2.0
    mean = theta * e
    draws = rng.poisson(mean * rng.gamma(1 / alpha, alpha, 2000))
    low, high = overdispersed_interval(draws, np.full(2000, e), np.full(2000, alpha * e**2))
    coverage = np.mean((low <= theta) & (theta <= high))
    assert 0.93 <= coverage <= 0.99


def test_dissimilarity_by_hand_and_noise_correction():
    # regions of 100, 100 and 800; sector 0 like all activity, sector 1 all in region 0
    x = np.array([[10, 60, 30], [10, 0, 90], [80, 0, 720]])
    out = dissimilarity_types(x)
    p = np.array([0.1, 0.1, 0.8])
    assert out["dissimilarity"][1] == pytest.approx(0.5 * (0.9 + 0.1 + 0.8))
    expected = 0.5 * np.sqrt(2 * p * (1 - p) / np.pi).sum() / np.sqrt(60)
    assert out["expected"][1] == pytest.approx(expected)
    assert out["type"].tolist() == ["local", "traded", "local"]
    # a small sector spread at random like all activity is not called traded
    rng = np.random.default_rng(0)
    regions = rng.integers(100, 5000, 96)
    sector = rng.multinomial(40, regions / regions.sum())
    table = np.c_[sector, regions - sector]
    assert dissimilarity_types(table)["type"][0] == "local"


def test_types_come_from_the_user_then_the_categories_then_the_data():
    sectors = np.array(["25.62A", "56.30Z", "mine"], dtype=object)
    import pandas as pd

    comparison = np.array([[50, 10, 40], [0, 500, 0], [0, 500, 0]])
    types, source = resolve_types(pd.Index(sectors), "subclass", "auto", "naf", comparison)
    assert types.tolist() == ["traded", "local", "traded"]
    assert source.tolist() == ["categories", "categories", "data"]
    types, source = resolve_types(
        pd.Index(sectors), "subclass", {"25.62A": "local"}, "naf", comparison
    )
    assert types.tolist()[0] == "local" and source.tolist()[0] == "user"
    assert source.tolist()[1:] == ["data", "data"]
    types, _ = resolve_types(pd.Index(sectors), "subclass", None, "naf", comparison)
    assert types.tolist() == ["", "", ""]
