"""Equivalence and between-site variation (pocare.analytics.equivalence) against statsmodels, scipy
and Montgomery's random-effects example (POC-2, CMP-SITE, CMP-STAT)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.oneway import anova_oneway
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW, ttost_ind

from pocare.analytics import equivalence as eq


@pytest.mark.parametrize(("pooled", "usevar"), [(True, "pooled"), (False, "unequal")])
@pytest.mark.parametrize("shift", [0.0, 0.8, 2.0])
def test_tost_agrees_with_statsmodels(pooled, usevar, shift):
    """CMP-STAT: the TOST p-values equal statsmodels' ttost_ind, the 90 % interval its tconfint_diff,
    and 'equivalent' is exactly 'the 90 % CI inside ±margin'."""
    rng = np.random.default_rng(int(shift * 10) + pooled)
    test, ref = rng.normal(10 + shift, 1.2, 14), rng.normal(10, 1, 120)
    margin = 1.5 * ref.std(ddof=1)
    t = eq.tost(test, ref, pooled=pooled)
    p, (_, p1, _), (_, p2, _) = ttost_ind(test, ref, -margin, margin, usevar=usevar)
    assert float(t.p_value) == pytest.approx(p, rel=1e-9)
    assert float(t.p_lower) == pytest.approx(p1, rel=1e-9) and float(t.p_upper) == pytest.approx(p2, rel=1e-9)
    lo, hi = CompareMeans(DescrStatsW(test), DescrStatsW(ref)).tconfint_diff(alpha=0.10, usevar=usevar)
    assert float(t.ci_low) == pytest.approx(lo) and float(t.ci_high) == pytest.approx(hi)
    assert bool(t.equivalent) == (-margin < lo and hi < margin)


def test_tost_by_hand():
    """CMP-STAT: test lots 9, 11 and reference 9, 10, 11 — d = 0, pooled s² = (2 + 2)/3, se = √(4/3·(1/2 + 1/3)),
    90 % CI ±t(0.95; 3)·se; with margin 5 it is inside (equivalent), with margin 1 not (not shown)."""
    se = np.sqrt(4 / 3 * (1 / 2 + 1 / 3))
    half = stats.t.ppf(0.95, 3) * se
    t = eq.tost([9, 11], [9, 10, 11], margin=5, pooled=True)
    assert float(t.difference) == 0 and float(t.ci_high) == pytest.approx(half) and bool(t.equivalent)
    assert not bool(eq.tost([9, 11], [9, 10, 11], margin=1, pooled=True).equivalent)
    # Welch, the default: se = √(2/2 + 1/3), df = (4/3)²/(1²/1 + (1/3)²/2) = 1.6
    welch = eq.tost([9, 11], [9, 10, 11], margin=5)
    assert float(welch.df) == pytest.approx((4 / 3) ** 2 / (1 + (1 / 9) / 2))
    assert float(welch.ci_high) == pytest.approx(stats.t.ppf(0.95, float(welch.df)) * np.sqrt(4 / 3))
    assert float(eq.tost([9, 11], [9, 10, 11]).margin) == pytest.approx(1.5)  # 1.5·σ_R, σ_R = 1
    assert not bool(eq.tost([10], [9, 10, 11]).equivalent)  # one lot: nothing shown


def test_quality_range_by_hand():
    """CMP-STAT: reference 8, 10, 12 (mean 10, s 2) → range 4 to 16; 9 of 10 test lots inside is 90 %
    (equivalent, the bound included); 8 of 10 is not."""
    ref = [8, 10, 12]
    inside = [4, 16, 10, 10, 10, 10, 10, 10, 10, 17]
    qr = eq.quality_range(inside, ref)
    assert (qr.low, qr.high, qr.inside, qr.share, qr.equivalent) == (4.0, 16.0, 9, 0.9, True)
    assert not eq.quality_range([*inside[:-2], 17, 3], ref).equivalent


def test_anova_agrees_with_scipy_and_statsmodels():
    """CMP-SITE: F and p equal scipy.stats.f_oneway and statsmodels' anova_oneway, unbalanced groups."""
    rng = np.random.default_rng(4)
    groups = [rng.normal(m, 1, n) for m, n in ((0, 8), (0.5, 13), (1.2, 5), (0.1, 21))]
    a = eq.one_way_anova(groups)
    f, p = stats.f_oneway(*groups)
    assert a.f == pytest.approx(f) and a.p_value == pytest.approx(p)
    data = np.concatenate(groups)
    labels = np.repeat(np.arange(4), [len(g) for g in groups])
    res = anova_oneway(data, labels, use_var="equal")
    assert a.f == pytest.approx(res.statistic) and a.p_value == pytest.approx(res.pvalue)
    assert a.n0 == pytest.approx((47 - (64 + 169 + 25 + 441) / 47) / 3)


def test_random_effects_reproduce_montgomery_loom_example():
    """CMP-SITE: Montgomery, Design and Analysis of Experiments, Example 13.1 (loom strength, 4 looms ×
    4 determinations): MS_treatments = 29.73, MS_E = 1.90, σ̂²_τ = (29.73 − 1.90)/4 = 6.96, σ̂² = 1.90."""
    looms = [[98, 97, 99, 96], [91, 90, 93, 92], [96, 95, 97, 95], [95, 96, 99, 98]]
    a = eq.one_way_anova(looms)
    assert a.ms_between == pytest.approx(29.73, abs=0.005) and a.ms_within == pytest.approx(1.90, abs=0.005)
    assert a.sigma2_between == pytest.approx(6.96, abs=0.005) and a.n0 == 4


def test_random_effects_equal_reml_on_balanced_data_and_truncate_at_zero():
    """CMP-SITE: on balanced data the ANOVA (method-of-moments) estimates equal REML (statsmodels
    MixedLM) when positive; when sites vary less than lots, σ²_between is 0, not negative."""
    import statsmodels.formula.api as smf

    rng = np.random.default_rng(5)
    site_effect = rng.normal(0, 1.5, 6)
    values = site_effect[:, None] + rng.normal(0, 1, (6, 12))
    a = eq.one_way_anova(list(values))
    df = pd.DataFrame({"y": values.ravel(), "site": np.repeat(np.arange(6), 12)})
    fit = smf.mixedlm("y ~ 1", df, groups=df["site"]).fit(reml=True)
    assert a.sigma2_between == pytest.approx(float(fit.cov_re.iloc[0, 0]), rel=1e-3)
    assert a.sigma2_within == pytest.approx(float(fit.scale), rel=1e-3)
    flat = eq.one_way_anova([[1, 5, 3], [2, 4, 3], [3, 3.1, 2.9]])
    assert flat.ms_between < flat.ms_within and flat.sigma2_between == 0.0


def test_leave_one_out_moments_equal_direct_pooling():
    """CMP-SITE: each site's reference (the other sites pooled) from moments equals pooling the raw lots."""
    rng = np.random.default_rng(6)
    x = rng.normal(5, 2, (7, 30))
    rest = eq.leave_one_out(eq.moments(x), axis=0)
    for i in range(7):
        others = np.delete(x, i, axis=0).ravel()
        assert float(rest.n[i]) == others.size
        assert float(rest.mean[i]) == pytest.approx(others.mean())
        assert float(rest.var[i]) == pytest.approx(others.var(ddof=1))


def test_not_equivalent_and_too_few_lots_are_told_apart():
    """CMP-STAT: a site whose TOST ran and failed is "not equivalent"; a site with fewer than 3 current
    lots was not tested and is "too few lots (n < 3)"; a site alone under a version has "no reference"."""
    from pocare.analytics import comparability as cmp

    rng = np.random.default_rng(11)
    spec = cmp.AttributeSpec("x", "X", "", None, None, True)

    def series(site: str, values: np.ndarray) -> cmp.Series:
        return cmp.Series(site, tuple(f"{site}-{i}" for i in range(values.size)), values)

    network = rng.normal(50, 1, 60)
    result = cmp.assess(spec, {"NET": series("NET", network), "OFF": series("OFF", rng.normal(60, 1, 12)),
                               "NEW": series("NEW", rng.normal(50, 1, 2))})
    assert result.sites["OFF"].status == cmp.NOT_EQUIVALENT
    assert result.sites["NEW"].status == cmp.TOO_FEW and "at least 3" in result.sites["NEW"].reason
    assert cmp.STATUS_LABELS[cmp.TOO_FEW] == "too few lots (n < 3)"
    assert cmp.STATUS_LABELS[cmp.NOT_EQUIVALENT] == "not equivalent"
    alone = cmp.assess(spec, {"NET": series("NET", network)})
    assert alone.sites["NET"].status == cmp.NO_REFERENCE
