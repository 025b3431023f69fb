"""Control charts and run rules (pocare.analytics.spc) against Montgomery's worked examples, hand-
derived cases of each published rule, pandas, and a plain loop (POC-2, CMP-SITE, CMP-STAT)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from pocare.analytics import spc

# Montgomery, Introduction to Statistical Quality Control, 6th ed., Example 6.5 / Table 6.6
# (mortgage loan processing cost, 20 weeks). Published: x̄ = 300.5, MR̄ = 7.79, UCL = 321.22,
# LCL = 279.78, MR chart UCL = 25.45. (The sums check by hand: Σx = 6010, ΣMR = 148 over 19.)
LOAN_COSTS = [310, 288, 297, 298, 307, 303, 294, 297, 308, 306, 294, 299, 297, 299, 314, 295, 293, 306, 301, 304]

# Montgomery, 6th ed., Table 9.1: 30 observations, the first 20 from N(10, 1), the last 10 from
# N(11, 1). Tabular CUSUM with μ0 = 10, σ = 1, k = 1/2, h = 5 (Example 9.1, Table 9.2): C⁺ first
# exceeds H = 5 at period 29 (C⁺₂₉ = 5.28), and at period 30 (5.30).
TABLE_9_1 = [9.45, 7.99, 9.29, 11.66, 12.16, 10.18, 8.04, 11.46, 9.20, 10.34, 9.03, 11.47, 10.51, 9.40, 10.08,
             9.37, 10.62, 10.31, 8.52, 10.84, 10.90, 9.33, 12.29, 11.50, 10.60, 11.08, 10.38, 11.62, 11.31, 10.52]


def test_individuals_chart_reproduces_montgomery_example_6_5():
    """POC-2: the individuals/MR chart of Montgomery Example 6.5, σ̂ = MR̄/1.128, to the published figures."""
    chart = spc.individuals_chart(LOAN_COSTS)
    assert float(chart.centre) == pytest.approx(300.5)
    assert float(chart.mr_bar) == pytest.approx(7.79, abs=0.005)
    assert float(chart.ucl) == pytest.approx(321.22, abs=0.005)
    assert float(chart.lcl) == pytest.approx(279.78, abs=0.005)
    assert float(chart.mr_ucl) == pytest.approx(25.45, abs=0.005)
    assert not any(spc.rule_flags(LOAN_COSTS, centre=chart.centre, sigma=chart.sigma)["nelson-1"])


def test_phase_one_limits_come_from_the_baseline_only():
    """CMP-SITE: limits set on the first lots are applied to the later ones, which do not move them."""
    x = np.r_[LOAN_COSTS, [400.0] * 5]
    chart = spc.individuals_chart(x, baseline=20)
    assert float(chart.centre) == pytest.approx(300.5) and chart.baseline == 20
    assert spc.chart_analyse(x, baseline=20).rules["nelson-1"][20:].all()


def test_tabular_cusum_reproduces_montgomery_example_9_1():
    """POC-2: tabular CUSUM (k = 0.5σ, H = 5σ) on Table 9.1 signals first at period 29, C⁺ = 5.28."""
    c = spc.cusum(TABLE_9_1, centre=10, sigma=1, k=0.5, h=5)
    assert [int(i) + 1 for i in np.flatnonzero(c.upper_flags)] == [29, 30]
    assert float(c.upper[28]) == pytest.approx(5.28, abs=0.005)
    assert float(c.upper[29]) == pytest.approx(5.30, abs=0.005)
    assert not c.lower_flags.any()
    # By hand: C⁺₁ = max(0, 9.45 − 10.5) = 0; C⁻₁ = max(0, 9.5 − 9.45) = 0.05; C⁻₂ = 0.05 + 1.51 = 1.56.
    assert float(c.upper[0]) == 0 and float(c.lower[0]) == pytest.approx(0.05)
    assert float(c.lower[1]) == pytest.approx(1.56)


def test_cusum_equals_the_recursion_written_out():
    """CMP-STAT: the closed form (partial sums minus their running minimum) is the Page recursion."""
    rng = np.random.default_rng(1)
    x = rng.normal(0.2, 1, 500)
    c = spc.cusum(x, centre=0, sigma=1, k=0.5, h=4)
    up = lo = 0.0
    for i, v in enumerate(x):
        up, lo = max(0.0, v - 0.5 + up), max(0.0, -0.5 - v + lo)
        assert float(c.upper[i]) == pytest.approx(up, abs=1e-9) and float(c.lower[i]) == pytest.approx(lo, abs=1e-9)


def test_ewma_statistic_and_exact_limits():
    """POC-2: EWMA on Table 9.1 with λ = 0.1, L = 2.7 (Montgomery Example 9.2). By hand: z₁ = 0.1·9.45
    + 0.9·10 = 9.945; the exact half-width at i = 1 is 2.7·√(0.1/1.9·(1 − 0.81)) = 0.27, steady state
    2.7·√(0.1/1.9) = 0.6194. The statistic equals pandas' ewm(adjust=False) started at μ₀."""
    e = spc.ewma(TABLE_9_1, centre=10, sigma=1, lam=0.1, width=2.7)
    assert float(e.z[0]) == pytest.approx(9.945)
    assert float(e.ucl[0]) == pytest.approx(10.27) and float(e.lcl[0]) == pytest.approx(9.73)
    assert float(e.ucl[-1]) == pytest.approx(10 + 2.7 * np.sqrt(0.1 / 1.9) * np.sqrt(1 - 0.9**60), abs=1e-9)
    reference = pd.Series([10.0, *TABLE_9_1]).ewm(alpha=0.1, adjust=False).mean().to_numpy()[1:]
    np.testing.assert_allclose(e.z, reference, rtol=1e-12)
    assert list(np.flatnonzero(e.flags)) == list(np.flatnonzero((reference > e.ucl) | (reference < e.lcl)))


def _flags(x, rule, centre=0.0, sigma=1.0):
    return [int(i) for i in np.flatnonzero(spc.rule_flags(np.asarray(x, float), centre=centre, sigma=sigma)[rule])]


@pytest.mark.parametrize(("rule", "x", "expected"), [
    # Rule 1: beyond 3σ, strictly (3.0 itself is not beyond).
    ("nelson-1", [0, 3.5, 0, -3.01, 3.0], [1, 3]),
    # Rule 2: nine in a row on one side; a point on the centre line breaks the run.
    ("nelson-2", [0.5] * 9, [8]),
    ("nelson-2", [0.5] * 8 + [0] + [0.5] * 9, [17]),
    ("nelson-2", [-0.5] * 10, [8, 9]),
    # Rule 3: six points steadily rising (five rises); a tie breaks it.
    ("nelson-3", [0, 0.1, 0.2, 0.3, 0.4, 0.5], [5]),
    ("nelson-3", [0, 0.1, 0.2, 0.3, 0.4], []),
    ("nelson-3", [0, 0.1, 0.2, 0.2, 0.3, 0.4, 0.5], []),
    ("nelson-3", [0.5, 0.4, 0.3, 0.2, 0.1, 0.0, -0.1], [5, 6]),
    # Rule 4: fourteen points alternating up and down.
    ("nelson-4", [0, 0.5] * 7, [13]),
    ("nelson-4", [0, 0.5] * 6 + [0], []),
    # Rule 5: two of three beyond 2σ on the same side; the completing point is one of them.
    ("nelson-5", [2.5, 0, 2.5], [2]),
    ("nelson-5", [2.5, 2.5], [1]),
    ("nelson-5", [2.5, 0, 0, 2.5], []),
    ("nelson-5", [2.5, 0, -2.5], []),
    # Rule 6: four of five beyond 1σ on the same side.
    ("nelson-6", [1.5, 1.5, 0, 1.5, 1.5], [4]),
    ("nelson-6", [1.5, 1.5, 1.5, 0, 0], []),
    ("nelson-6", [1.5, 1.5, 1.5, 0, -1.5, 1.5], []),
    # Rule 7: fifteen in a row within 1σ (either side); |z| = 1 is not within.
    ("nelson-7", [0.5, -0.5] * 7 + [0.5], [14]),
    ("nelson-7", [0.5, -0.5] * 7 + [1.0], []),
    # Rule 8: eight in a row beyond 1σ, either side (none in zone C).
    ("nelson-8", [1.5, -1.5] * 4, [7]),
    ("nelson-8", [1.5, -1.5] * 3 + [1.5, 0.5], []),
    # Western Electric: 1–3 are Nelson's 1, 5, 6; rule 4 is eight on one side.
    ("we-1", [0, 3.5], [1]),
    ("we-2", [2.5, 0, 2.5], [2]),
    ("we-3", [1.5, 1.5, 0, 1.5, 1.5], [4]),
    ("we-4", [0.5] * 8, [7]),
    ("we-4", [0.5] * 7, []),
])
def test_each_rule_as_published(rule, x, expected):
    """POC-2: each Nelson (J. Qual. Technol. 1984) and Western Electric (Handbook 1956) rule on a series
    built by hand, with the point that completes the pattern as the flagged index."""
    assert _flags(x, rule) == expected


def _naive(z):
    """The rules written out literally, one window at a time (an independent implementation)."""
    n = len(z)
    out = {r: [] for r in spc.RULES}

    def win(i, k):
        return z[i - k + 1:i + 1] if i >= k - 1 else None

    for i in range(n):
        if abs(z[i]) > 3:
            out["nelson-1"].append(i)
        for k, name in ((9, "nelson-2"), (8, "we-4")):
            w = win(i, k)
            if w is not None and (all(v > 0 for v in w) or all(v < 0 for v in w)):
                out[name].append(i)
        w = win(i, 6)
        if w is not None and (all(b > a for a, b in itertools.pairwise(w)) or all(b < a for a, b in itertools.pairwise(w))):
            out["nelson-3"].append(i)
        w = win(i, 14)
        if w is not None and all((w[j + 1] - w[j]) * (w[j + 2] - w[j + 1]) < 0 for j in range(12)):
            out["nelson-4"].append(i)
        w = z[max(0, i - 2):i + 1]
        if (z[i] > 2 and sum(v > 2 for v in w) >= 2) or (z[i] < -2 and sum(v < -2 for v in w) >= 2):
            out["nelson-5"].append(i)
        w = z[max(0, i - 4):i + 1]
        if (z[i] > 1 and sum(v > 1 for v in w) >= 4) or (z[i] < -1 and sum(v < -1 for v in w) >= 4):
            out["nelson-6"].append(i)
        w = win(i, 15)
        if w is not None and all(abs(v) < 1 for v in w):
            out["nelson-7"].append(i)
        w = win(i, 8)
        if w is not None and all(abs(v) > 1 for v in w):
            out["nelson-8"].append(i)
    out["we-1"], out["we-2"], out["we-3"] = out["nelson-1"], out["nelson-5"], out["nelson-6"]
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vectorized_rules_equal_the_literal_definitions(seed):
    """CMP-STAT: on random series (with shifts, trends and zig-zags mixed in), every rule flags exactly
    the points the literal definition does, for all series at once and for each on its own."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (6, 300))
    x[1, 100:] += 1.5
    x[2, 50:80] = np.linspace(-1, 2, 30)
    x[3, 10:40] = np.tile([0.9, -0.9], 15)
    x[4] *= 0.3
    together = spc.rule_flags(x, centre=np.zeros(6), sigma=np.ones(6))
    for row in range(6):
        expected = _naive(list(x[row]))
        alone = spc.rule_flags(x[row], centre=0.0, sigma=1.0)
        for rule in spc.RULES:
            assert [int(i) for i in np.flatnonzero(together[rule][row])] == expected[rule], (row, rule)
            assert np.array_equal(alone[rule], together[rule][row])


def test_episodes_group_a_sustained_pattern():
    """CMP-SITE: a run that goes on flagging is one episode (one signal), from its first window."""
    flags = np.zeros(30, bool)
    flags[[10, 11, 12, 20]] = True
    assert spc.episodes(flags, 9) == [(2, 20)]  # the window ending at 20 starts at 12: touching
    assert spc.episodes(flags, 1) == [(10, 12), (20, 20)]
    flags[20], flags[25] = False, True
    assert spc.episodes(flags, 9) == [(2, 12), (17, 25)]


def test_bad_input_is_refused():
    """CMP-STAT: empty or non-finite series and σ ≤ 0 are refused, not charted."""
    with pytest.raises(ValueError, match="at least one"):
        spc.individuals_chart([])
    with pytest.raises(ValueError, match="finite"):
        spc.individuals_chart([1.0, float("nan")])
    with pytest.raises(ValueError, match="sigma"):
        spc.rule_flags([1.0, 2.0], centre=0, sigma=0)
    assert not any(v.any() for v in spc.chart_analyse([5.0, 5.0, 5.0]).rules.values())  # constant: σ̂ = 0
