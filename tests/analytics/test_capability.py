"""Capability (pocare.analytics.capability): Montgomery's worked intervals, hand-computed indices,
one-sided specifications (POC-2, CMP-STAT)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from pocare.analytics import capability as cap


def test_cp_interval_reproduces_montgomery_example_8_5():
    """POC-2: Montgomery, Introduction to SQC 6th ed., Example 8.5 — USL 62, LSL 38, n = 20, s = 1.75:
    Ĉp = 24/(6·1.75) = 2.29 and the 95 % χ² interval 1.57 ≤ Cp ≤ 3.01 (the book carries Ĉp rounded to
    2.29 into the interval, as here)."""
    cp = np.float64(2.29)
    lo, hi = cap.chi2_interval(cp, 20, 0.95)
    assert float(lo) == pytest.approx(1.57, abs=0.005) and float(hi) == pytest.approx(3.01, abs=0.005)


def test_cpk_interval_reproduces_montgomery_example_8_6():
    """POC-2: Montgomery 6th ed., Example 8.6 — n = 20, Ĉpk = 1.33: Bissell's approximate 95 % interval
    0.88 ≤ Cpk ≤ 1.78."""
    lo, hi = cap.bissell_interval(np.float64(1.33), 20, 0.95)
    assert float(lo) == pytest.approx(0.88, abs=0.005) and float(hi) == pytest.approx(1.78, abs=0.005)


def test_indices_by_hand_two_sided_and_one_sided():
    """CMP-STAT: x = 10, 12, 10, 12 — mean 11, MR̄ = 2, σ̂ = 2/1.128, s = √(4/3). With LSL 5 and USL 17:
    Cp = Cpk = 12/(6σ̂) = 1.128, Pp = Ppk = 12/(6s) = 1.732. With LSL 5 only: Cp undefined, Cpk = Cpl =
    6/(3σ̂); with USL 17 only: Cpk = Cpu = 6/(3σ̂); off-centre (LSL 8) Cpk = 3/(3σ̂)."""
    x = [10.0, 12.0, 10.0, 12.0]
    sw, s = 2 / 1.128, np.sqrt(4 / 3)
    c = cap.capability(x, lsl=5, usl=17)
    assert float(c.cp) == pytest.approx(12 / (6 * sw)) and float(c.cpk) == pytest.approx(12 / (6 * sw))
    assert float(c.pp) == pytest.approx(12 / (6 * s)) and float(c.ppk) == pytest.approx(12 / (6 * s))
    lower = cap.capability(x, lsl=5, usl=None)
    assert np.isnan(lower.cp) and np.isnan(lower.pp)
    assert float(lower.cpk) == pytest.approx(6 / (3 * sw)) and float(lower.ppk) == pytest.approx(6 / (3 * s))
    upper = cap.capability(x, lsl=None, usl=17)
    assert float(upper.cpk) == pytest.approx(6 / (3 * sw))
    assert float(cap.capability(x, lsl=8, usl=17).cpk) == pytest.approx(3 / (3 * sw))


def test_intervals_follow_the_formulas_and_vectorize():
    """CMP-STAT: for many groups at once, the intervals equal the χ² and Bissell formulas group by group."""
    rng = np.random.default_rng(3)
    x = rng.normal(50, 2, (4, 40))
    c = cap.capability(x, lsl=40, usl=62)
    for g in range(4):
        one = cap.capability(x[g], lsl=40, usl=62)
        assert float(one.cpk) == pytest.approx(float(c.cpk[g]))
        n, cpk = 40, float(one.ppk)
        half = stats.norm.ppf(0.975) * np.sqrt(1 / (9 * n) + cpk**2 / (2 * (n - 1)))
        assert float(one.ppk_low) == pytest.approx(cpk - half) and float(one.ppk_high) == pytest.approx(cpk + half)
        assert (float(one.cpk_low), float(one.cpk_high)) == (float(one.ppk_low), float(one.ppk_high))  # from s
        cp = float(one.pp)
        assert float(one.cp_low) == pytest.approx(cp * np.sqrt(stats.chi2.ppf(0.025, 39) / 39))


def test_bad_specifications_are_refused():
    """CMP-STAT: no limit, or USL ≤ LSL, is a specification error."""
    with pytest.raises(ValueError, match="at least one"):
        cap.capability([1.0, 2.0], lsl=None, usl=None)
    with pytest.raises(ValueError, match="above"):
        cap.capability([1.0, 2.0], lsl=5, usl=5)
    assert np.isnan(cap.capability([1.0], lsl=0, usl=2).cpk)


@pytest.mark.parametrize("n", [12, 30, 60])
def test_the_95_percent_intervals_cover_the_true_index_95_percent_of_the_time(n):
    """POC-2, CMP-STAT: 2,000 simulated stable normal processes (seed fixed) with true Cp = 1.5 and
    Cpk = 1.33 (LSL −4, USL 5, σ = 1): the stated 95 % intervals of Cp and Cpk contain the truth at
    least 93 % of the time. Built on MR̄/d₂, as they were, they covered it only 87–90 %; that is
    measured here too, so the reason for building them on s stays visible (docs/analytics.md)."""
    rng = np.random.default_rng(20261205 + n)
    x = rng.normal(0.0, 1.0, (2000, n))
    c = cap.capability(x, lsl=-4.0, usl=5.0)
    cp_true, cpk_true = 9 / 6, 4 / 3
    cover_cp = float(((c.cp_low <= cp_true) & (cp_true <= c.cp_high)).mean())
    cover_cpk = float(((c.cpk_low <= cpk_true) & (cpk_true <= c.cpk_high)).mean())
    assert cover_cp >= 0.93 and cover_cpk >= 0.93, (cover_cp, cover_cpk)
    mr_lo, mr_hi = cap.bissell_interval(c.cpk, n)  # the old interval, around the MR̄-based Cpk
    cover_mr = float(((mr_lo <= cpk_true) & (cpk_true <= mr_hi)).mean())
    assert cover_mr < 0.91, cover_mr
