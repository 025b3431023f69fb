"""Hotelling's T² (pocare.analytics.multivariate) against statsmodels and the formulas (POC-2, CMP-STAT)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multivariate import test_mvmean as mvmean_test

from pocare.analytics import multivariate as mv


def test_t2_of_each_point_equals_the_quadratic_form():
    """POC-2: T²ᵢ = (xᵢ − x̄)ᵀ S⁻¹ (xᵢ − x̄), S the reference covariance (ddof 1)."""
    rng = np.random.default_rng(7)
    ref_lots = rng.multivariate_normal([1, 2, 3], [[1, 0.5, 0], [0.5, 2, 0.3], [0, 0.3, 1]], 200)
    ref = mv.reference_from(ref_lots)
    points = rng.normal(2, 1, (10, 3))
    inv = np.linalg.inv(np.cov(ref_lots, rowvar=False))
    expected = [float((p - ref_lots.mean(0)) @ inv @ (p - ref_lots.mean(0))) for p in points]
    np.testing.assert_allclose(mv.t2(points, ref), expected, rtol=1e-10)


def test_phase_two_limit_is_montgomery_11_19():
    """CMP-STAT: UCL = p(m + 1)(m − 1)/(m² − mp)·F(α; p, m − p) (Montgomery, Introduction to SQC, eq. 11.19)."""
    p, m = 3, 50
    assert mv.phase2_limit(p, m, 0.001) == pytest.approx(p * 51 * 49 / (2500 - 150) * stats.f.ppf(0.999, 3, 47))


def test_one_sample_agrees_with_statsmodels():
    """CMP-STAT: the one-sample test of a mean vector equals statsmodels' test_mvmean (F and p-value)."""
    rng = np.random.default_rng(8)
    sample = rng.normal([0.2, 0.0, -0.1, 0.3], 1, (40, 4))
    ours = mv.one_sample(sample, np.zeros(4))
    theirs = mvmean_test(sample, np.zeros(4))
    assert ours.f == pytest.approx(float(theirs.statistic)) and ours.p_value == pytest.approx(float(theirs.pvalue))
    assert (ours.df1, ours.df2) == (4, 36)


def test_too_few_lots_are_refused():
    """CMP-STAT: a covariance of p attributes needs more than p lots."""
    with pytest.raises(ValueError, match="more than 3 lots"):
        mv.reference_from(np.ones((3, 3)))
