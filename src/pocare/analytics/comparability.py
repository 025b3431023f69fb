"""The comparability assessment of one quality attribute across the sites (REQUIREMENTS.md POC-2,
CMP-SITE, CMP-STAT): per site, the control chart with every rule, capability, and equivalence of
the site's current lots to the rest of the network; across sites, one-way ANOVA and the
between-site variance. Pure (no Django import): the selectors give it arrays, the monitor and the
pages read what it returns.

The policy, in one place:

* A site's chart limits are set on its first ``BASELINE_LOTS`` lots under the master-file version
  (phase I; all its lots while it has fewer) and applied to all its lots.
* A site's *current lots* are its ``RECENT_LOTS`` most recent ones. They are what is tested for
  equivalence, and a rule is an *alarm* when it flags one of them.
* Equivalence: the current lots against the reference — every lot of the *other* sites under the
  same version (a site is never its own reference) — by TOST at ±1.5 σ_R (90 % interval), with
  the quality range (mean ± 3 σ_R, ≥ 90 % inside) beside it. A cell is *equivalent* when TOST
  shows it; *not equivalent* when TOST was run and its interval reaches past the margin; *too few
  lots* when the site has fewer than ``MIN_TEST_LOTS`` current lots (nothing was tested); *no
  reference* when no other site has lots. Only "not equivalent" is a finding about the product.
* Alarms that open a quality signal: Nelson 1, 2, 3, 5 and 6 (a point beyond 3σ, a shift, a trend)
  and the CUSUM. Nelson 4, 7, 8 (patterns of mixing and over-control), the Western Electric rules
  (Nelson 1, 5, 6 again and an eight-point run) and the EWMA are drawn and listed, not signalled,
  so one event does not open the same signal several times.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from pocare.analytics import capability as cap
from pocare.analytics import equivalence as eq
from pocare.analytics import spc

BASELINE_LOTS = 30
RECENT_LOTS = 12
MIN_TEST_LOTS = 3
MIN_CHART_LOTS = 2
SIGNAL_RULES = ("nelson-1", "nelson-2", "nelson-3", "nelson-5", "nelson-6", "cusum")
EXTRA_RULE_NAMES = {"ewma": "EWMA outside its limits", "cusum": "Tabular CUSUM beyond its decision interval"}

EQUIVALENT, NOT_EQUIVALENT, TOO_FEW, NO_REFERENCE, NO_DATA = (
    "equivalent", "not-equivalent", "too-few-lots", "no-reference", "no-data")
#: What each status says, everywhere it is shown (pages, PQR, signals, API ``status_label``).
STATUS_LABELS = {EQUIVALENT: "equivalent", NOT_EQUIVALENT: "not equivalent",
                 TOO_FEW: f"too few lots (n < {MIN_TEST_LOTS})", NO_REFERENCE: "no reference (no other site)",
                 NO_DATA: "no lots"}


def rule_name(rule: str) -> str:
    """What a rule id (``nelson-2``, ``we-1``, ``cusum``, ``tost``…) says, in words."""
    if rule in spc.RULES:
        return spc.RULES[rule].name
    return EXTRA_RULE_NAMES.get(rule, {"tost": "Not equivalent to the network (TOST)",
                                       "quality-range": "Fewer than 90 % of current lots in the quality range"}
                                .get(rule, rule))


@dataclass(frozen=True)
class AttributeSpec:
    """A quality attribute of the specification: numeric ones are charted; ``equals`` ones are not."""

    id: str
    name: str
    unit: str
    lsl: float | None
    usl: float | None
    numeric: bool


@dataclass(frozen=True)
class Series:
    """One site's lots of one attribute in the order they were made."""

    site: str
    references: tuple[str, ...]
    values: spc.FloatArray


@dataclass(frozen=True)
class RuleHit:
    """A rule that flagged points of a chart: the flagged indices, grouped into episodes, and
    whether it flagged one of the current lots."""

    rule: str
    name: str
    indices: tuple[int, ...]
    episodes: tuple[tuple[int, int], ...]
    recent: bool
    signals: bool


@dataclass
class SiteAssessment:
    """One site × attribute cell."""

    site: str
    series: Series
    chart: spc.ChartAnalysis | None = None
    capability: cap.Capability | None = None
    tost: eq.Tost | None = None
    quality_range: eq.QualityRange | None = None
    hits: list[RuleHit] = field(default_factory=list)
    recent_from: int = 0
    status: str = NO_DATA
    reason: str = ""

    @property
    def n(self) -> int:
        return int(self.series.values.size)

    @property
    def alarms(self) -> list[RuleHit]:
        """Signalling rules that flagged a current lot."""
        return [h for h in self.hits if h.recent and h.signals]

    @property
    def current_values(self) -> spc.FloatArray:
        return self.series.values[self.recent_from:]


@dataclass
class AttributeAssessment:
    """An attribute across the sites."""

    spec: AttributeSpec
    sites: dict[str, SiteAssessment]
    anova: eq.Anova | None = None
    network_mean: float = float("nan")
    network_sd: float = float("nan")
    network_n: int = 0


def _hits(chart: spc.ChartAnalysis, recent_from: int) -> list[RuleHit]:
    out: list[RuleHit] = []
    flags = dict(chart.rules)
    flags["ewma"] = chart.ewma.flags
    flags["cusum"] = chart.cusum.upper_flags | chart.cusum.lower_flags
    for rule, mask in flags.items():
        idx = spc.flagged(mask)
        if not idx:
            continue
        window = spc.RULES[rule].window if rule in spc.RULES else 1
        out.append(RuleHit(rule=rule, name=rule_name(rule), indices=tuple(idx),
                           episodes=tuple(spc.episodes(mask, window)), recent=idx[-1] >= recent_from,
                           signals=rule in SIGNAL_RULES))
    return out


def assess(spec: AttributeSpec, series: Mapping[str, Series], *,
           sites: Sequence[str] | None = None) -> AttributeAssessment:
    """Assess one numeric attribute across the sites that have lots (``sites`` lists those to show,
    with or without lots)."""
    names = list(sites) if sites is not None else sorted(series)
    result = AttributeAssessment(spec=spec, sites={})
    with_data = {s: v for s, v in series.items() if v.values.size}
    if with_data:
        every = np.concatenate([v.values for v in with_data.values()])
        result.network_n = int(every.size)
        result.network_mean = float(every.mean())
        result.network_sd = float(every.std(ddof=1)) if every.size > 1 else float("nan")
    groups = [v.values for v in with_data.values() if v.values.size]
    if len(groups) >= 2 and sum(g.size for g in groups) > len(groups):
        result.anova = eq.one_way_anova(groups)
    for site in names:
        s = series.get(site) or Series(site, (), np.zeros(0))
        cell = SiteAssessment(site=site, series=s)
        result.sites[site] = cell
        n = s.values.size
        if n == 0:
            cell.reason = "No lots under this version."
            continue
        cell.recent_from = max(0, n - RECENT_LOTS)
        if n >= MIN_CHART_LOTS:
            cell.chart = spc.chart_analyse(s.values, baseline=min(BASELINE_LOTS, n))
            cell.hits = _hits(cell.chart, cell.recent_from)
            if spec.lsl is not None or spec.usl is not None:
                cell.capability = cap.capability(s.values, lsl=spec.lsl, usl=spec.usl)
        others = [v.values for k, v in with_data.items() if k != site]
        reference = np.concatenate(others) if others else np.zeros(0)
        current = cell.current_values
        if reference.size < 2:
            cell.status = NO_REFERENCE
            cell.reason = "No reference: no other site has lots under this version."
            continue
        cell.tost = eq.tost(current, reference) if current.size >= 2 else None
        cell.quality_range = eq.quality_range(current, reference)
        cell.status = NOT_EQUIVALENT
        if current.size < MIN_TEST_LOTS or cell.tost is None:
            cell.status = TOO_FEW
            cell.reason = f"{current.size} current lot(s): at least {MIN_TEST_LOTS} are needed to test equivalence."
        elif bool(cell.tost.equivalent):
            cell.status = EQUIVALENT
            cell.reason = (f"90 % CI of the difference {float(cell.tost.ci_low):.3g} to {float(cell.tost.ci_high):.3g}"
                           f" inside ±{float(cell.tost.margin):.3g}.")
        else:
            cell.reason = (f"90 % CI of the difference {float(cell.tost.ci_low):.3g} to {float(cell.tost.ci_high):.3g}"
                           f" is not inside ±{float(cell.tost.margin):.3g}.")
    return result
