"""Control charts for individual values: the individuals / moving-range chart, EWMA and tabular
CUSUM, and the eight Nelson rules and four Western Electric rules, each giving the points that
triggered it (REQUIREMENTS.md POC-2, CMP-SITE).

Pure numpy (no Django import). Every function works on one series of shape ``(n,)`` or on many
series of the same length at once, shape ``(..., n)`` (the last axis is time); limits come back
with the leading shape. Values must be finite.

Conventions, as published:

* Individuals chart (Montgomery, *Introduction to Statistical Quality Control*, §6.4): centre x̄,
  σ̂ = MR̄ / d₂ with d₂ = 1.128 (moving ranges of two), limits x̄ ± 3σ̂; moving-range chart upper
  limit D₄·MR̄ with D₄ = 3.267. Limits may be set on the first ``baseline`` points (phase I) and
  applied to all (phase II).
* EWMA (Montgomery §9.2): zᵢ = λxᵢ + (1 − λ)zᵢ₋₁, z₀ = μ₀, with the exact, time-varying limits
  μ₀ ± Lσ√(λ/(2 − λ)·[1 − (1 − λ)²ⁱ]).
* Tabular CUSUM (Montgomery §9.1): C⁺ᵢ = max(0, xᵢ − (μ₀ + K) + C⁺ᵢ₋₁), C⁻ᵢ = max(0, (μ₀ − K) − xᵢ
  + C⁻ᵢ₋₁), C₀ = 0, K = kσ, H = hσ; a signal where C > H. No reset after a signal.
* Rules (Nelson, J. Qual. Technol. 16(4), 1984; Western Electric *Statistical Quality Control
  Handbook*, 1956), on z = (x − centre)/σ. "Beyond" is strict (a point on a limit is not beyond);
  a point exactly on the centre line is on neither side and breaks a same-side run; equal
  consecutive values break a rising, falling or alternating run. A rule flags the point that
  completes its pattern (its window is the ``window`` points ending there); a pattern still
  there at the next point flags that point too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.signal import lfilter

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int32]

#: d₂ and D₄ for moving ranges of two consecutive points (Montgomery, Appendix Table VI).
D2 = 1.128
D4 = 3.267


@dataclass(frozen=True)
class Rule:
    """One run rule: its id (``nelson-1`` … ``we-4``), what it says and how many points it spans."""

    id: str
    name: str
    window: int


NELSON_RULES: tuple[Rule, ...] = (
    Rule("nelson-1", "One point beyond 3σ", 1),
    Rule("nelson-2", "Nine points in a row on the same side of the centre line", 9),
    Rule("nelson-3", "Six points in a row steadily increasing or decreasing", 6),
    Rule("nelson-4", "Fourteen points in a row alternating up and down", 14),
    Rule("nelson-5", "Two out of three points in a row beyond 2σ on the same side", 3),
    Rule("nelson-6", "Four out of five points in a row beyond 1σ on the same side", 5),
    Rule("nelson-7", "Fifteen points in a row within 1σ of the centre line", 15),
    Rule("nelson-8", "Eight points in a row beyond 1σ, on either side", 8),
)
WESTERN_ELECTRIC_RULES: tuple[Rule, ...] = (
    Rule("we-1", "One point beyond 3σ", 1),
    Rule("we-2", "Two out of three consecutive points beyond 2σ on the same side", 3),
    Rule("we-3", "Four out of five consecutive points beyond 1σ on the same side", 5),
    Rule("we-4", "Eight consecutive points on the same side of the centre line", 8),
)
RULES: dict[str, Rule] = {r.id: r for r in (*NELSON_RULES, *WESTERN_ELECTRIC_RULES)}


def as_series(x: npt.ArrayLike) -> FloatArray:
    """``x`` as float64 with time on the last axis; refuses empty or non-finite input."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 0 or a.shape[-1] == 0:
        raise ValueError("a series needs at least one value")
    if not np.isfinite(a).all():
        raise ValueError("a series must hold finite numbers only")
    return a


@dataclass(frozen=True)
class IndividualsChart:
    """Limits of the individuals (X) and moving-range (MR) charts; arrays of the leading shape."""

    centre: FloatArray
    sigma: FloatArray
    mr_bar: FloatArray
    ucl: FloatArray
    lcl: FloatArray
    mr_ucl: FloatArray
    baseline: int

    def z(self, x: FloatArray) -> FloatArray:
        """The series in σ units from the centre line."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return (x - self.centre[..., None]) / self.sigma[..., None]


def moving_range(x: npt.ArrayLike) -> FloatArray:
    """|xᵢ − xᵢ₋₁|, one shorter than the series."""
    a = as_series(x)
    return np.abs(np.diff(a, axis=-1))


def individuals_chart(x: npt.ArrayLike, *, baseline: int | None = None) -> IndividualsChart:
    """Individuals/moving-range limits from the first ``baseline`` points (default: all).

    σ̂ = MR̄/1.128; a series of one point (or constant) has σ̂ = 0 and no usable limits."""
    a = as_series(x)
    n = a.shape[-1]
    m = n if baseline is None else max(1, min(int(baseline), n))
    base = a[..., :m]
    centre = base.mean(axis=-1)
    mr_bar = np.abs(np.diff(base, axis=-1)).mean(axis=-1) if m > 1 else np.zeros_like(centre)
    sigma = mr_bar / D2
    return IndividualsChart(centre=np.asarray(centre, dtype=np.float64), sigma=np.asarray(sigma, dtype=np.float64),
                            mr_bar=np.asarray(mr_bar, dtype=np.float64),
                            ucl=np.asarray(centre + 3 * sigma, dtype=np.float64),
                            lcl=np.asarray(centre - 3 * sigma, dtype=np.float64),
                            mr_ucl=np.asarray(D4 * mr_bar, dtype=np.float64), baseline=m)


# --- run rules ---------------------------------------------------------------------------------------


def window_count(mask: BoolArray, k: int) -> IntArray:
    """How many of the last ``k`` points (fewer at the start) are true, at each point."""
    c = np.cumsum(mask, axis=-1, dtype=np.int32)
    out = c.copy()
    if k < mask.shape[-1]:
        out[..., k:] -= c[..., :-k]
    return out


def run_ends(mask: BoolArray, k: int) -> BoolArray:
    """True where the ``k`` points ending there are all true."""
    return window_count(mask, k) >= k


def _shifted(flags: BoolArray, n: int) -> BoolArray:
    """Pad ``flags`` (defined from point ``n - flags.shape[-1]`` on) with false at the start."""
    out = np.zeros((*flags.shape[:-1], n), dtype=np.bool_)
    if flags.shape[-1]:
        out[..., n - flags.shape[-1]:] = flags
    return out


def rule_flags(x: npt.ArrayLike, *, centre: npt.ArrayLike, sigma: npt.ArrayLike) -> dict[str, BoolArray]:
    """Every Nelson and Western Electric rule on ``x`` against ``centre`` and ``sigma``: per rule id a
    boolean array, true at the points that complete the rule's pattern. ``sigma`` must be > 0."""
    a = as_series(x)
    n = a.shape[-1]
    c = np.asarray(centre, dtype=np.float64)[..., None]
    s = np.asarray(sigma, dtype=np.float64)[..., None]
    if not (s > 0).all():
        raise ValueError("sigma must be positive to apply run rules")
    z = (a - c) / s
    above, below = z > 0, z < 0
    a1, b1, a2, b2 = z > 1, z < -1, z > 2, z < -2
    beyond3 = np.abs(z) > 3
    within1 = np.abs(z) < 1
    d = np.diff(a, axis=-1)
    rising, falling = d > 0, d < 0
    zigzag = (d[..., 1:] * d[..., :-1]) < 0  # element m: points m, m+1, m+2 go up-down or down-up
    two_of_three = (a2 & (window_count(a2, 3) >= 2)) | (b2 & (window_count(b2, 3) >= 2))
    four_of_five = (a1 & (window_count(a1, 5) >= 4)) | (b1 & (window_count(b1, 5) >= 4))
    return {
        "nelson-1": beyond3,
        "nelson-2": run_ends(above, 9) | run_ends(below, 9),
        "nelson-3": _shifted(run_ends(rising, 5) | run_ends(falling, 5), n),
        "nelson-4": _shifted(run_ends(zigzag, 12), n),
        "nelson-5": two_of_three,
        "nelson-6": four_of_five,
        "nelson-7": run_ends(within1, 15),
        "nelson-8": run_ends(np.abs(z) > 1, 8),
        "we-1": beyond3,
        "we-2": two_of_three,
        "we-3": four_of_five,
        "we-4": run_ends(above, 8) | run_ends(below, 8),
    }


def flagged(flags: BoolArray) -> list[int]:
    """The indices of a one-series flag array, as plain ints."""
    return [int(i) for i in np.flatnonzero(flags)]


def episodes(flags: BoolArray, window: int) -> list[tuple[int, int]]:
    """Group a one-series flag array into episodes: ``(first point of the first window, last flagged
    point)`` for flags whose windows touch or overlap. A sustained pattern is one episode."""
    out: list[tuple[int, int]] = []
    for i in flagged(flags):
        start = max(0, i - window + 1)
        if out and start <= out[-1][1] + 1:
            out[-1] = (out[-1][0], i)
        else:
            out.append((start, i))
    return out


# --- EWMA and CUSUM ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ewma:
    """The EWMA statistic and its exact limits, shape ``(..., n)``; ``flags`` where it is outside."""

    z: FloatArray
    ucl: FloatArray
    lcl: FloatArray
    flags: BoolArray
    lam: float
    width: float


def ewma(x: npt.ArrayLike, *, centre: npt.ArrayLike, sigma: npt.ArrayLike, lam: float = 0.2,
         width: float = 3.0) -> Ewma:
    """EWMA chart with λ = ``lam`` and limits at ``width``·σ_z (exact, time-varying)."""
    if not 0 < lam <= 1:
        raise ValueError("lam must be in (0, 1]")
    a = as_series(x)
    n = a.shape[-1]
    c = np.asarray(centre, dtype=np.float64)[..., None]
    s = np.asarray(sigma, dtype=np.float64)[..., None]
    zi = np.broadcast_to((1 - lam) * c, (*a.shape[:-1], 1)).astype(np.float64)
    z, _ = lfilter([lam], [1.0, lam - 1.0], a, axis=-1, zi=zi)
    i = np.arange(1, n + 1, dtype=np.float64)
    half = width * s * np.sqrt(lam / (2 - lam) * (1 - (1 - lam) ** (2 * i)))
    ucl = np.broadcast_to(c + half, a.shape)
    lcl = np.broadcast_to(c - half, a.shape)
    zz = np.asarray(z, dtype=np.float64)
    return Ewma(z=zz, ucl=np.asarray(ucl, dtype=np.float64), lcl=np.asarray(lcl, dtype=np.float64),
                flags=(zz > ucl) | (zz < lcl), lam=lam, width=width)


@dataclass(frozen=True)
class Cusum:
    """The tabular CUSUM: C⁺ and C⁻ (shape ``(..., n)``), the decision interval H (leading shape)
    and where each exceeds it."""

    upper: FloatArray
    lower: FloatArray
    h: FloatArray
    upper_flags: BoolArray
    lower_flags: BoolArray
    k: float


def _lindley(y: FloatArray) -> FloatArray:
    """Cᵢ = max(0, Cᵢ₋₁ + yᵢ), C₀ = 0, as Sᵢ − min(0, min_{j≤i} Sⱼ) with S the partial sums."""
    s = np.cumsum(y, axis=-1)
    floor = np.minimum(np.minimum.accumulate(s, axis=-1), 0.0)
    return np.asarray(s - floor, dtype=np.float64)


def cusum(x: npt.ArrayLike, *, centre: npt.ArrayLike, sigma: npt.ArrayLike, k: float = 0.5,
          h: float = 5.0) -> Cusum:
    """Tabular CUSUM with reference value K = kσ and decision interval H = hσ."""
    a = as_series(x)
    c = np.asarray(centre, dtype=np.float64)[..., None]
    s = np.asarray(sigma, dtype=np.float64)[..., None]
    upper = _lindley(a - (c + k * s))
    lower = _lindley((c - k * s) - a)
    hh = h * s
    return Cusum(upper=upper, lower=lower, h=np.asarray(hh[..., 0], dtype=np.float64),
                 upper_flags=upper > hh, lower_flags=lower > hh, k=k)


# --- one call for everything a chart shows -----------------------------------------------------------


@dataclass(frozen=True)
class ChartAnalysis:
    """A series' individuals limits, every run rule, EWMA and CUSUM (phase I limits applied to all)."""

    values: FloatArray
    limits: IndividualsChart
    rules: dict[str, BoolArray]
    ewma: Ewma
    cusum: Cusum
    mr_flags: BoolArray


def chart_analyse(x: npt.ArrayLike, *, baseline: int | None = None, lam: float = 0.2, ewma_width: float = 3.0,
                  k: float = 0.5, h: float = 5.0) -> ChartAnalysis:
    """Individuals limits from the first ``baseline`` points, then the rules, EWMA and CUSUM against
    them. Series whose σ̂ is 0 (constant, or one point) get no flags."""
    a = as_series(x)
    limits = individuals_chart(a, baseline=baseline)
    ok = limits.sigma > 0
    sigma = np.where(ok, limits.sigma, 1.0)
    rules = rule_flags(a, centre=limits.centre, sigma=sigma)
    e = ewma(a, centre=limits.centre, sigma=sigma, lam=lam, width=ewma_width)
    cs = cusum(a, centre=limits.centre, sigma=sigma, k=k, h=h)
    mask = np.asarray(ok)[..., None]
    rules = {key: flags & mask for key, flags in rules.items()}
    mr = np.abs(np.diff(a, axis=-1))
    mr_flags = _shifted(mr > limits.mr_ucl[..., None], a.shape[-1]) & mask
    return ChartAnalysis(values=a, limits=limits, rules=rules,
                         ewma=Ewma(z=e.z, ucl=e.ucl, lcl=e.lcl, flags=e.flags & mask, lam=lam, width=ewma_width),
                         cusum=Cusum(upper=cs.upper, lower=cs.lower, h=cs.h, upper_flags=cs.upper_flags & mask,
                                     lower_flags=cs.lower_flags & mask, k=k),
                         mr_flags=mr_flags)
