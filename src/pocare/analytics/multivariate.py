"""Hotelling's T² across the numeric attributes of a batch (REQUIREMENTS.md POC-2): one statistic
per batch against the reference lots' mean vector and covariance, with the F-based limit; and the
one-sample test of a site's mean vector.

Pure numpy/scipy (no Django import). Montgomery, *Introduction to SQC*, §11.3:

* T²ᵢ = (xᵢ − x̄)ᵀ S⁻¹ (xᵢ − x̄) for a new batch, x̄ and S from m reference lots of p attributes;
  phase II upper limit p(m + 1)(m − 1)/(m² − mp) · F_{α; p, m−p} (eq. 11.19).
* One-sample test of a mean vector μ₀ from n lots: T² = n(x̄ − μ₀)ᵀ S⁻¹ (x̄ − μ₀), and
  (n − p)/(p(n − 1))·T² ~ F(p, n − p).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

from pocare.analytics.spc import FloatArray

ALPHA = 0.0027  # the false-alarm rate of a 3σ Shewhart limit


def _matrix(x: npt.ArrayLike, name: str) -> FloatArray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a matrix: lots × attributes")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} must hold finite numbers only")
    return a


@dataclass(frozen=True)
class Reference:
    """The reference lots' mean vector and covariance (ddof 1), and how many lots gave them."""

    mean: FloatArray
    cov: FloatArray
    m: int

    @property
    def p(self) -> int:
        return int(self.mean.shape[0])


def reference_from(lots: npt.ArrayLike) -> Reference:
    """Mean and covariance of reference lots (rows) × attributes (columns); needs m > p."""
    a = _matrix(lots, "reference")
    m, p = a.shape
    if m <= p:
        raise ValueError(f"a reference of {p} attributes needs more than {p} lots")
    return Reference(mean=a.mean(axis=0), cov=np.atleast_2d(np.cov(a, rowvar=False, ddof=1)), m=m)


def t2(points: npt.ArrayLike, reference: Reference) -> FloatArray:
    """T² of each row of ``points`` against ``reference`` (solved through a Cholesky factor)."""
    x = _matrix(points, "points")
    if x.shape[1] != reference.p:
        raise ValueError("points and reference must have the same attributes")
    chol = np.linalg.cholesky(reference.cov)
    w = np.linalg.solve(chol, (x - reference.mean).T)
    return np.asarray((w * w).sum(axis=0), dtype=np.float64)


def phase2_limit(p: int, m: int, alpha: float = ALPHA) -> float:
    """Upper limit for a new observation's T² against a reference of ``m`` lots and ``p`` attributes."""
    if m <= p:
        raise ValueError("the reference needs more lots than attributes")
    return float(p * (m + 1) * (m - 1) / (m * m - m * p) * stats.f.ppf(1 - alpha, p, m - p))


@dataclass(frozen=True)
class OneSample:
    """Hotelling's one-sample test of a mean vector."""

    t2: float
    f: float
    df1: int
    df2: int
    p_value: float


def one_sample(sample: npt.ArrayLike, mu0: npt.ArrayLike) -> OneSample:
    """Does the mean vector of ``sample`` (lots × attributes) differ from ``mu0``?"""
    a = _matrix(sample, "sample")
    n, p = a.shape
    if n <= p:
        raise ValueError(f"a test of {p} attributes needs more than {p} lots")
    mu = np.asarray(mu0, dtype=np.float64)
    diff = a.mean(axis=0) - mu
    cov = np.atleast_2d(np.cov(a, rowvar=False, ddof=1))
    stat = float(n * diff @ np.linalg.solve(cov, diff))
    f = (n - p) / (p * (n - 1)) * stat
    return OneSample(t2=stat, f=f, df1=p, df2=n - p, p_value=float(stats.f.sf(f, p, n - p)))
