"""Is a site making the same product as the network? Equivalence per quality attribute, by the two
approaches of REQUIREMENTS.md CMP-STAT and DOMAIN.md, and the spread between sites (CMP-SITE).

Pure numpy/scipy (no Django import).

* **TOST** (Schuirmann 1987; EMA reflection paper on statistical methodology): the site's lots
  against the reference lots, difference of means d = x̄_test − x̄_ref; equivalent when the
  (1 − 2α) = 90 % confidence interval of d lies inside ±margin, i.e. both one-sided t tests
  reject at α = 5 %. The margin is pre-set: by default 1.5·σ_R, σ_R the standard deviation of the
  reference lots (FDA tier 1). Welch's unequal variances by default (``ttost_ind(usevar='unequal')``),
  pooled on request: 12 site lots against ~150 network lots with the site's SD 2–2.5× the network's
  and the true difference at the margin, pooled TOST calls the site equivalent 16–21 % of the time
  against a nominal 5 %, Welch 4–5 % (tests/analytics/test_equivalence_simulation.py; docs/analytics.md).
* **Quality range**: reference mean ± k·σ_R (k = 3); equivalent when at least 90 % of the test
  lots are inside (FDA 2019 draft; Yang, Novick & Burdick, PDA J 2016).
* **One-way ANOVA** across sites and the method-of-moments (ANOVA) estimate of the between-site
  variance σ²_site = (MS_between − MS_within)/n₀, n₀ = (N − Σnᵢ²/N)/(a − 1), truncated at 0.

"No significant difference" (a large ANOVA p-value) is not equivalence: only TOST or the quality
range show it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

from pocare.analytics.spc import BoolArray, FloatArray

MARGIN_SD = 1.5
QUALITY_RANGE_K = 3.0
QUALITY_RANGE_SHARE = 0.9
ALPHA = 0.05


def _finite(x: npt.ArrayLike, name: str) -> FloatArray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} must hold finite numbers only")
    return a


@dataclass(frozen=True)
class Tost:
    """TOST of the difference of means against ±margin; arrays of the groups' shape."""

    difference: FloatArray
    ci_low: FloatArray
    ci_high: FloatArray
    margin: FloatArray
    p_lower: FloatArray
    p_upper: FloatArray
    df: FloatArray
    equivalent: BoolArray
    alpha: float

    @property
    def p_value(self) -> FloatArray:
        """The TOST p-value: the larger of the two one-sided p-values."""
        return np.asarray(np.maximum(self.p_lower, self.p_upper), dtype=np.float64)


def tost_from_moments(*, n_test: npt.ArrayLike, mean_test: npt.ArrayLike, var_test: npt.ArrayLike,
                      n_ref: npt.ArrayLike, mean_ref: npt.ArrayLike, var_ref: npt.ArrayLike, margin: npt.ArrayLike,
                      alpha: float = ALPHA, pooled: bool = False) -> Tost:
    """TOST from group sizes, means and variances (ddof 1); every argument broadcasts, so many
    site × attribute comparisons are one call. Groups with fewer than two lots on either side, or
    a zero margin, are not equivalent (NaN statistics)."""
    n1 = np.asarray(n_test, dtype=np.float64)
    n2 = np.asarray(n_ref, dtype=np.float64)
    m1, m2 = np.asarray(mean_test, dtype=np.float64), np.asarray(mean_ref, dtype=np.float64)
    v1, v2 = np.asarray(var_test, dtype=np.float64), np.asarray(var_ref, dtype=np.float64)
    delta = np.asarray(margin, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        if pooled:
            df = n1 + n2 - 2
            sp2 = ((n1 - 1) * v1 + (n2 - 1) * v2) / df
            se = np.sqrt(sp2 * (1 / n1 + 1 / n2))
        else:
            a1, a2 = v1 / n1, v2 / n2
            se = np.sqrt(a1 + a2)
            df = (a1 + a2) ** 2 / (a1**2 / (n1 - 1) + a2**2 / (n2 - 1))
        d = m1 - m2
        valid = (n1 >= 2) & (n2 >= 2) & (se > 0) & (delta > 0)
        se = np.where(valid, se, np.nan)
        df = np.where(valid, df, np.nan)
        p_lower = stats.t.sf((d + delta) / se, df)  # H0: d ≤ −margin
        p_upper = stats.t.cdf((d - delta) / se, df)  # H0: d ≥ +margin
        t = stats.t.ppf(1 - alpha, df)
    lo, hi = d - t * se, d + t * se
    eq = valid & (p_lower < alpha) & (p_upper < alpha)
    return Tost(difference=np.asarray(d, dtype=np.float64), ci_low=np.asarray(lo, dtype=np.float64),
                ci_high=np.asarray(hi, dtype=np.float64), margin=np.asarray(np.broadcast_to(delta, d.shape),
                                                                             dtype=np.float64),
                p_lower=np.asarray(p_lower, dtype=np.float64), p_upper=np.asarray(p_upper, dtype=np.float64),
                df=np.asarray(df, dtype=np.float64), equivalent=np.asarray(eq, dtype=np.bool_), alpha=alpha)


def tost(test: npt.ArrayLike, reference: npt.ArrayLike, *, margin: float | None = None, margin_sd: float = MARGIN_SD,
         alpha: float = ALPHA, pooled: bool = False) -> Tost:
    """TOST of ``test`` lots against ``reference`` lots; the margin defaults to ``margin_sd``·σ_R."""
    t, r = _finite(test, "test"), _finite(reference, "reference")
    v1 = float(t.var(ddof=1)) if t.size > 1 else float("nan")
    v2 = float(r.var(ddof=1)) if r.size > 1 else float("nan")
    delta = margin if margin is not None else margin_sd * float(np.sqrt(v2))
    return tost_from_moments(n_test=t.size, mean_test=t.mean() if t.size else np.nan, var_test=v1, n_ref=r.size,
                             mean_ref=r.mean() if r.size else np.nan, var_ref=v2, margin=delta, alpha=alpha,
                             pooled=pooled)


@dataclass(frozen=True)
class QualityRange:
    """Reference mean ± k·σ_R and the share of test lots inside it."""

    low: float
    high: float
    inside: int
    n: int
    share: float
    equivalent: bool
    k: float
    required_share: float


def quality_range(test: npt.ArrayLike, reference: npt.ArrayLike, *, k: float = QUALITY_RANGE_K,
                  required_share: float = QUALITY_RANGE_SHARE) -> QualityRange:
    """The quality-range approach: equivalent when ≥ ``required_share`` of the test lots lie in
    the reference mean ± ``k``·σ_R (bounds inclusive)."""
    t, r = _finite(test, "test"), _finite(reference, "reference")
    if r.size < 2 or t.size < 1:
        return QualityRange(float("nan"), float("nan"), 0, int(t.size), float("nan"), False, k, required_share)
    mean, sd = float(r.mean()), float(r.std(ddof=1))
    low, high = mean - k * sd, mean + k * sd
    inside = int(((t >= low) & (t <= high)).sum())
    share = inside / t.size
    return QualityRange(low, high, inside, int(t.size), share, share >= required_share, k, required_share)


@dataclass(frozen=True)
class Anova:
    """One-way ANOVA across groups and the random-effects (method of moments) variance components."""

    f: float
    p_value: float
    df_between: int
    df_within: int
    ms_between: float
    ms_within: float
    n0: float
    sigma2_between: float
    sigma2_within: float

    @property
    def between_share(self) -> float:
        """σ²_between / (σ²_between + σ²_within): how much of the variation is between sites."""
        total = self.sigma2_between + self.sigma2_within
        return self.sigma2_between / total if total > 0 else float("nan")


def one_way_anova(groups: Sequence[npt.ArrayLike]) -> Anova:
    """One-way ANOVA of ``groups`` (each the lots of one site) and σ²_between by the method of
    moments, truncated at 0. Needs two groups or more and more lots than groups."""
    arrays = [_finite(g, "group") for g in groups]
    arrays = [g for g in arrays if g.size]
    a = len(arrays)
    sizes = np.array([g.size for g in arrays], dtype=np.float64)
    total = float(sizes.sum())
    if a < 2 or total <= a:
        raise ValueError("ANOVA needs at least two groups with data and more lots than groups")
    means = np.array([g.mean() for g in arrays])
    grand = float((means * sizes).sum() / total)
    ss_between = float((sizes * (means - grand) ** 2).sum())
    ss_within = float(sum(((g - m) ** 2).sum() for g, m in zip(arrays, means, strict=True)))
    df_b, df_w = a - 1, int(total) - a
    ms_b, ms_w = ss_between / df_b, ss_within / df_w
    f = ms_b / ms_w if ms_w > 0 else float("inf")
    p = float(stats.f.sf(f, df_b, df_w)) if ms_w > 0 else 0.0
    n0 = (total - float((sizes**2).sum()) / total) / df_b
    return Anova(f=f, p_value=p, df_between=df_b, df_within=df_w, ms_between=ms_b, ms_within=ms_w, n0=n0,
                 sigma2_between=max(0.0, (ms_b - ms_w) / n0), sigma2_within=ms_w)


@dataclass(frozen=True)
class Moments:
    """Sizes, means and variances (ddof 1) of groups, arrays of one shape."""

    n: FloatArray
    mean: FloatArray
    var: FloatArray


def moments(x: npt.ArrayLike) -> Moments:
    """Moments of equal-length groups: the last axis holds each group's lots."""
    a = np.asarray(x, dtype=np.float64)
    n = np.full(a.shape[:-1], float(a.shape[-1]))
    return Moments(n=n, mean=np.asarray(a.mean(axis=-1), dtype=np.float64),
                   var=np.asarray(a.var(axis=-1, ddof=1), dtype=np.float64))


def leave_one_out(m: Moments, axis: int = 0) -> Moments:
    """For each group along ``axis``, the moments of all the *other* groups pooled together (the
    rest of the network), from the groups' own moments: no data is touched twice."""
    n_total = m.n.sum(axis=axis, keepdims=True)
    s1 = (m.n * m.mean).sum(axis=axis, keepdims=True)
    n_rest = n_total - m.n
    mean_rest = (s1 - m.n * m.mean) / n_rest
    # Σ over the others of (n_j − 1)·var_j + n_j·(mean_j − mean_rest)², by expanding the square.
    within = ((m.n - 1) * m.var).sum(axis=axis, keepdims=True) - (m.n - 1) * m.var
    sq = (m.n * m.mean**2).sum(axis=axis, keepdims=True) - m.n * m.mean**2
    m2 = within + sq - n_rest * mean_rest**2
    return Moments(n=np.asarray(n_rest, dtype=np.float64), mean=np.asarray(mean_rest, dtype=np.float64),
                   var=np.asarray(m2 / (n_rest - 1), dtype=np.float64))
