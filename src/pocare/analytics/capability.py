"""Process capability against the specification: Cp, Cpk (within-batch-to-batch σ̂ = MR̄/d₂), Pp,
Ppk (overall s), with confidence intervals (REQUIREMENTS.md POC-2; DOMAIN.md: Cpk ≥ 1.33 target,
1.0 minimum).

Pure numpy/scipy (no Django import); vectorized over leading axes like :mod:`pocare.analytics.spc`.

* Cp = (USL − LSL)/6σ̂, only for a two-sided specification; Cpk = min(USL − x̄, x̄ − LSL)/3σ̂, from
  the one side that exists when the specification is one-sided (Cpu or Cpl). Pp/Ppk the same with
  the overall sample standard deviation s.
* Cp interval from the χ² distribution: Ĉp·√(χ²_{α/2,ν}/ν) ≤ Cp ≤ Ĉp·√(χ²_{1−α/2,ν}/ν), ν = n − 1
  (Montgomery, *Introduction to SQC*, eq. 8.19).
* Cpk and Ppk intervals by Bissell's normal approximation (Bissell, Applied Statistics 39, 1990):
  Ĉpk ± z_{1−α/2}·√(1/(9n) + Ĉpk²/(2(n − 1))) (Montgomery eq. 8.21), used for the one-sided index too.
* The intervals of Cp and Cpk are those of the true index, computed from the overall s (the χ² and
  Bissell formulas hold for s with n − 1 degrees of freedom; for a stable process the within and
  overall σ are the same σ). Built on MR̄/d₂ instead, whose variance is larger than that of s, the
  "95 %" intervals covered the true index only 87–89 % of the time (n = 12–60, 2,000 simulated
  processes each; tests/analytics/test_capability.py), from s 95 %. So Cp and Cpk are printed from
  MR̄/d₂ (the short-term index) with the interval of the index from s — which is the interval of Pp
  and Ppk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

from pocare.analytics.spc import D2, FloatArray, as_series

TARGET_CPK = 1.33
MINIMUM_CPK = 1.0


@dataclass(frozen=True)
class Capability:
    """Capability indices and their intervals; NaN where an index is not defined (Cp of a one-sided
    specification, or σ̂ = 0, or fewer than two values)."""

    n: int
    mean: FloatArray
    sigma_within: FloatArray
    sigma_overall: FloatArray
    lsl: float | None
    usl: float | None
    cp: FloatArray
    cp_low: FloatArray
    cp_high: FloatArray
    cpk: FloatArray
    cpk_low: FloatArray
    cpk_high: FloatArray
    pp: FloatArray
    ppk: FloatArray
    ppk_low: FloatArray
    ppk_high: FloatArray
    pp_low: FloatArray
    pp_high: FloatArray
    confidence: float


def _k_index(mean: FloatArray, sigma: FloatArray, lsl: float | None, usl: float | None) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        sides = []
        if usl is not None:
            sides.append((usl - mean) / (3 * sigma))
        if lsl is not None:
            sides.append((mean - lsl) / (3 * sigma))
        out = np.minimum(sides[0], sides[1]) if len(sides) == 2 else sides[0]
    return np.asarray(np.where(sigma > 0, out, np.nan), dtype=np.float64)


def bissell_interval(index: FloatArray, n: int, confidence: float = 0.95) -> tuple[FloatArray, FloatArray]:
    """Bissell's approximate interval for Cpk (or Ppk, Cpu, Cpl) from ``n`` values."""
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    half = z * np.sqrt(1 / (9 * n) + index**2 / (2 * (n - 1)))
    return np.asarray(index - half, dtype=np.float64), np.asarray(index + half, dtype=np.float64)


def chi2_interval(cp: FloatArray, n: int, confidence: float = 0.95) -> tuple[FloatArray, FloatArray]:
    """The χ² interval for Cp from ``n`` values (ν = n − 1)."""
    nu = n - 1
    alpha = 1 - confidence
    lo = float(stats.chi2.ppf(alpha / 2, nu))
    hi = float(stats.chi2.ppf(1 - alpha / 2, nu))
    return np.asarray(cp * np.sqrt(lo / nu), dtype=np.float64), np.asarray(cp * np.sqrt(hi / nu), dtype=np.float64)


def capability(x: npt.ArrayLike, *, lsl: float | None, usl: float | None, sigma_within: npt.ArrayLike | None = None,
               confidence: float = 0.95) -> Capability:
    """Cp, Cpk, Pp, Ppk of ``x`` (last axis: the lots) against ``lsl``/``usl`` (either may be None,
    not both). ``sigma_within`` defaults to MR̄/1.128 of ``x`` in lot order. The intervals of every
    index come from the overall s (see the module's docstring)."""
    if lsl is None and usl is None:
        raise ValueError("a capability needs at least one specification limit")
    if lsl is not None and usl is not None and not usl > lsl:
        raise ValueError("the upper specification limit must be above the lower")
    if not 0 < confidence < 1:
        raise ValueError("confidence must be between 0 and 1")
    a = as_series(x)
    n = a.shape[-1]
    mean = np.asarray(a.mean(axis=-1), dtype=np.float64)
    if n < 2:
        nan = np.full(mean.shape, np.nan)
        return Capability(n, mean, nan, nan, lsl, usl, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan,
                          confidence)
    sw = (np.asarray(np.abs(np.diff(a, axis=-1)).mean(axis=-1) / D2, dtype=np.float64) if sigma_within is None
          else np.broadcast_to(np.asarray(sigma_within, dtype=np.float64), mean.shape))
    so = np.asarray(a.std(axis=-1, ddof=1), dtype=np.float64)
    if lsl is not None and usl is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            cp = np.asarray(np.where(sw > 0, (usl - lsl) / (6 * sw), np.nan), dtype=np.float64)
            pp = np.asarray(np.where(so > 0, (usl - lsl) / (6 * so), np.nan), dtype=np.float64)
    else:
        cp = np.full(mean.shape, np.nan)
        pp = np.full(mean.shape, np.nan)
    pp_low, pp_high = chi2_interval(pp, n, confidence)
    cpk = _k_index(mean, sw, lsl, usl)
    ppk = _k_index(mean, so, lsl, usl)
    ppk_low, ppk_high = bissell_interval(ppk, n, confidence)
    return Capability(n=n, mean=mean, sigma_within=np.asarray(sw, dtype=np.float64), sigma_overall=so, lsl=lsl,
                      usl=usl, cp=cp, cp_low=pp_low, cp_high=pp_high, cpk=cpk, cpk_low=ppk_low, cpk_high=ppk_high,
                      pp=pp, ppk=ppk, ppk_low=ppk_low, ppk_high=ppk_high, pp_low=pp_low, pp_high=pp_high,
                      confidence=confidence)
