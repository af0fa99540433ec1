"""adjust_pvalues against hand computations, the textbook definition and esda.fdr."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import reference as ref

import clustermap as cm
from clustermap.errors import SchemaError

# Benjamini & Hochberg (1995), section 4.1: 15 p-values from a clinical trial; at q = 0.05
# the procedure rejects the four smallest (p_(4) = 0.0095 <= 4 * 0.05 / 15 = 0.0133,
# p_(5) = 0.0201 > 5 * 0.05 / 15 = 0.0167, and no larger rank qualifies).
BH_1995 = [
    0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459,
    0.3240, 0.4262, 0.5719, 0.6528, 0.7590, 1.0000,
]  # fmt: skip


def test_bh_paper_example_rejects_four():
    adj = cm.adjust_pvalues(BH_1995, correction="fdr_bh")
    assert (adj <= 0.05).sum() == 4
    assert adj[3] == pytest.approx(0.0095 * 15 / 4)
    # hand value: p_(5) m / 5 = 0.0603, smaller than every later p_(s) m / s
    assert adj[4] == pytest.approx(0.0201 * 15 / 5)
    np.testing.assert_allclose(adj, ref.bh_adjusted(BH_1995), rtol=1e-12)


def test_small_hand_examples():
    p = [0.01, 0.04, 0.03, 0.20]
    # sorted 0.01, 0.03, 0.04, 0.20 -> 0.04, 0.06, 0.0533, 0.20 -> step-up min: .04 .0533 .0533 .2
    np.testing.assert_allclose(
        cm.adjust_pvalues(p, "fdr_bh"), [0.04, 0.16 / 3, 0.16 / 3, 0.20], rtol=1e-12
    )
    c = 1 + 1 / 2 + 1 / 3 + 1 / 4
    np.testing.assert_allclose(
        cm.adjust_pvalues(p, "fdr_by"), np.minimum(1, np.array([0.04, 0.16 / 3, 0.16 / 3, 0.2]) * c)
    )
    np.testing.assert_allclose(cm.adjust_pvalues(p, "bonferroni"), [0.04, 0.16, 0.12, 0.8])
    np.testing.assert_array_equal(cm.adjust_pvalues(p, None), p)


def test_nan_excluded_from_family():
    out = cm.adjust_pvalues([0.01, np.nan, 0.04], correction="fdr_bh")
    # family of 2: 0.01 * 2 / 1 = 0.02, 0.04 * 2 / 2 = 0.04
    np.testing.assert_allclose(out, [0.02, np.nan, 0.04])
    assert np.isnan(cm.adjust_pvalues([np.nan, np.nan])).all()


def test_families_by_axis():
    df = pd.DataFrame({"a": [0.01, 0.02, 0.5], "b": [0.03, np.nan, 0.04]}, index=["u1", "u2", "u3"])
    per_sector = cm.adjust_pvalues(df, axis=0)
    assert isinstance(per_sector, pd.DataFrame)
    assert list(per_sector.index) == ["u1", "u2", "u3"]
    np.testing.assert_allclose(per_sector["a"], ref.bh_adjusted([0.01, 0.02, 0.5]))
    np.testing.assert_allclose(per_sector["b"].dropna(), ref.bh_adjusted([0.03, 0.04]))
    whole = cm.adjust_pvalues(df, axis=None)
    flat = [0.01, 0.03, 0.02, 0.5, 0.04]  # row-major without the NaN
    expected = ref.bh_adjusted(flat)
    np.testing.assert_allclose(whole.to_numpy().ravel()[[0, 1, 2, 4, 5]], expected)
    per_unit = cm.adjust_pvalues(df, correction="bonferroni", axis=1)
    np.testing.assert_allclose(per_unit.loc["u1"], [0.02, 0.06])
    s = cm.adjust_pvalues(pd.Series([0.2, 0.01], index=["x", "y"], name="p"))
    assert list(s.index) == ["x", "y"] and s.name == "p"


def test_matches_esda_fdr_when_something_is_rejected():
    esda = pytest.importorskip("esda")
    rng = np.random.default_rng(0)
    p = np.concatenate([rng.uniform(size=900), rng.uniform(0, 0.002, size=100)])
    ours = cm.adjust_pvalues(p) <= 0.05
    thr = esda.fdr(p, 0.05)
    np.testing.assert_array_equal(ours, p <= thr)
    assert 80 < ours.sum() < 200
    # esda's quirk: with nothing rejected it returns alpha / n, while
    # adjust_pvalues rejects nothing
    q = rng.uniform(0.2, 1, size=50)
    assert esda.fdr(q, 0.05) == pytest.approx(0.05 / 50)
    assert not (cm.adjust_pvalues(q) <= 0.05).any()


def test_bad_input():
    with pytest.raises(SchemaError, match=r"\[0, 1\]"):
        cm.adjust_pvalues([0.5, 1.5])
    with pytest.raises(SchemaError, match="correction must be one of"):
        cm.adjust_pvalues([0.5], correction="sidak")
    with pytest.raises(SchemaError, match="axis"):
        cm.adjust_pvalues([[0.5]], axis=2)


def test_one_set_of_corrections_everywhere():
    """adjust_pvalues, LocalResult.significant and explore_local share names and values."""
    p = np.array([0.01, 0.04, 0.03, np.nan, 0.5])
    # Holm by hand: sorted 0.01, 0.03, 0.04, 0.5 -> 4 x 0.01, 3 x 0.03, max(0.09, 2 x 0.04), 0.5
    np.testing.assert_allclose(
        cm.adjust_pvalues(p, correction="holm"), [0.04, 0.09, 0.09, np.nan, 0.5]
    )
    np.testing.assert_allclose(
        cm.adjust_pvalues(p, correction="BH"), cm.adjust_pvalues(p, correction="fdr_bh")
    )
    with pytest.warns(FutureWarning, match="correction="):
        old = cm.adjust_pvalues(p, method="bonferroni")
    np.testing.assert_allclose(old, [0.04, 0.16, 0.12, np.nan, 1.0])
