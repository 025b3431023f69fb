"""The network's outcomes in the open (issue 17, docs/patients.md "Outcomes"): per site and for the
network, from one record per referred patient — referral-to-infusion and vein-to-vein times (median
and interquartile range), the share of referred patients treated, the patients lost while waiting and
why, response at day 100 (complete or partial response among the patients evaluated), CRS and ICANS
grade ≥ 3 rates with Wilson 95 % intervals — and access by region and deprivation quintile.

Small numbers are suppressed (PAT-PRIVACY): a count of fewer than 5 patients (0 included, so that
"< 5" never tells a reader the count is at least one) is published as "< 5", never the number, and a
time or a rate built from fewer than 5 patients is not published. Suppression is checked line by
line: every published total with its parts is an equation a reader can solve, so other cells are
withheld (secondary suppression) until no count of 1 to 4 can be worked out from a total minus the
others, nor narrowed to one value by the bounds a reader knows ("< 5" is 0 to 4; a withheld cell is
at least 5; an unpublished cell at least 0), and no withheld cell can be worked out either.

Pure Python (no Django): the selector (:mod:`pocare.patients.outcome_selectors`) reads the records,
this module computes the figures, the view shows them and writes the same figures as CSV.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from pocare.core.charts import Bar, bars_svg

#: Fewer patients than this in a cell: the cell is suppressed.
THRESHOLD = 5

#: The referral stages this module reads (the values of ``pocare.patients.models.Stage``; a test
#: checks they agree, since a pure module does not import the models).
INELIGIBLE, WITHDRAWN, LOST = "ineligible", "withdrawn", "lost"
#: The lost reasons (``LostReason`` values), in the order they are shown; a blank reason is "other".
LOST_REASONS = ("died", "progressed", "unfit", "manufacturing", "declined", "other")
RESPONDED = frozenset({"CR", "PR"})
EVALUATED = frozenset({"CR", "PR", "SD", "PD"})

NETWORK = "*"  # the network's group key

SMALL_TEXT = "< 5"
WITHHELD_TEXT = "withheld"


@dataclass(frozen=True)
class Record:
    """One referred patient: where they were referred and what happened, pseudonymous throughout."""

    patient: int
    referral: int
    site: str
    referred_at: dt.datetime
    stage: str
    region: str = ""
    travel_minutes: int | None = None
    deprivation_quintile: int | None = None
    collected_at: dt.datetime | None = None
    infused_at: dt.datetime | None = None
    lost_reason: str = ""
    response_day100: str = ""
    max_crs_grade: int | None = None
    max_icans_grade: int | None = None


def latest_per_patient(records: Iterable[Record]) -> list[Record]:
    """Each patient once, by their latest referral: the outcomes count patients, and a patient referred
    again (after a failed manufacture, say) is counted where their pathway ended."""
    latest: dict[int, Record] = {}
    for r in records:
        held = latest.get(r.patient)
        if held is None or (r.referred_at, r.referral) > (held.referred_at, held.referral):
            latest[r.patient] = r
    return sorted(latest.values(), key=lambda r: (r.referred_at, r.referral))


# --- Small statistics --------------------------------------------------------------------------------

Z95 = 1.959963984540054  # the standard normal's 97.5th percentile


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for ``k`` successes of ``n`` (Wilson 1927; Newcombe 1998): stays inside
    [0, 1] and covers well for the small samples and rare events these rates have."""
    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"wilson: need 0 <= k <= n and n > 0, got k={k}, n={n}")
    p = k / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Spread:
    """A time in days: median and interquartile range (quartiles by the inclusive method, as
    numpy's default), or nothing when fewer than :data:`THRESHOLD` patients have it."""

    median: float | None = None
    q1: float | None = None
    q3: float | None = None
    unit: str = "d"

    @property
    def shown(self) -> bool:
        return self.median is not None

    @property
    def text(self) -> str:
        if self.median is None:
            return "fewer than 5 patients"
        return f"{self.median:.1f} {self.unit} (IQR {self.q1:.1f}–{self.q3:.1f})"


def spread(values: Sequence[float], unit: str = "d") -> Spread:
    """Median and quartiles of ``values``, when at least :data:`THRESHOLD` patients give them."""
    if len(values) < THRESHOLD:
        return Spread(unit=unit)
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return Spread(statistics.median(values), q1, q3, unit)


def _days(start: dt.datetime | None, end: dt.datetime | None) -> float | None:
    if start is None or end is None or end < start:
        return None
    return (end - start).total_seconds() / 86400


# --- Suppression ---------------------------------------------------------------------------------------

Key = tuple[str, str]  # (measure, group)
INF = math.inf


@dataclass(frozen=True)
class Line:
    """A published equation: ``total`` = the sum of ``parts``."""

    total: Key
    parts: tuple[Key, ...]


def suppress(values: Mapping[Key, int], lines: Iterable[Line], hidden: Iterable[Key] = (),
             protected: Iterable[Key] = (), threshold: int = THRESHOLD) -> dict[Key, str]:
    """The publication state of each cell: ``shown``, ``small`` (0 to ``threshold`` − 1 patients:
    published as "< 5"), ``withheld`` (secondary suppression) or ``hidden`` (never published). A
    hidden cell is a complement or a sum that no table shows; those of them in ``protected`` (a
    category of patients in its own right) are protected like a published small count.

    Each line is an equation a reader can solve with the bounds they know of its unpublished cells;
    while one of them pins a small cell, or a withheld one (which would then protect nothing), to one
    value, the smallest non-zero published part of that line is withheld (or, when no part is left,
    its total), until every line is safe."""
    lines = list(lines)
    hidden = set(hidden)
    sensitive = {k for k, v in values.items() if 0 < v < threshold and (k not in hidden or k in set(protected))}
    state = {k: ("hidden" if k in hidden else "small" if v < threshold else "shown") for k, v in values.items()}

    def bounds(key: Key) -> tuple[float, float]:
        return {"small": (0, threshold - 1), "withheld": (threshold, INF)}.get(state[key], (0, INF))

    def pinned(line: Line) -> bool:
        coef = {line.total: 1, **dict.fromkeys(line.parts, -1)}
        unknown = [c for c in coef if state[c] != "shown"]
        rest = -sum(coef[c] * values[c] for c in coef if state[c] == "shown")
        for c in unknown:
            if not (c in sensitive or state[c] == "withheld"):
                continue  # a small count is sensitive, and a withheld cell must stay unknown to protect one
            lo_sum = hi_sum = 0.0
            for o in unknown:
                if o == c:
                    continue
                lo, hi = bounds(o)
                lo_sum, hi_sum = (lo_sum + lo, hi_sum + hi) if coef[o] == 1 else (lo_sum - hi, hi_sum - lo)
            lo, hi = rest - hi_sum, rest - lo_sum
            if coef[c] == -1:
                lo, hi = -hi, -lo
            own_lo, own_hi = bounds(c)
            if max(lo, own_lo) >= min(hi, own_hi):
                return True
        return False

    changed = True
    while changed:
        changed = False
        for line in lines:
            while pinned(line):
                candidates = sorted((values[p], p) for p in line.parts if state[p] == "shown" and values[p] > 0)
                if candidates:
                    state[candidates[0][1]] = "withheld"
                elif state[line.total] == "shown" and values[line.total] > 0:
                    state[line.total] = "withheld"
                else:  # nothing left to withhold (cannot happen with consistent values)
                    raise ValueError(f"suppress: line {line} cannot be made safe")
                changed = True
    return state


# --- The figures ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Figure:
    """A published count: the number, or ``None`` with the words shown instead."""

    number: int | None
    state: str

    @property
    def text(self) -> str:
        if self.number is not None:
            return str(self.number)
        return SMALL_TEXT if self.state == "small" else WITHHELD_TEXT


@dataclass(frozen=True)
class Rate:
    """A published proportion with its Wilson 95 % interval, or nothing (``share`` is None) when its
    numerator or denominator is not published."""

    share: float | None = None
    low: float | None = None
    high: float | None = None

    @property
    def text(self) -> str:
        if self.share is None:
            return "not published"
        return f"{100 * self.share:.0f} % (95 % CI {100 * self.low:.0f}–{100 * self.high:.0f})"  # type: ignore[operator]


def _rate(k: Figure, n: Figure) -> Rate:
    if k.number is None or n.number is None or n.number < THRESHOLD:
        return Rate()
    low, high = wilson(k.number, n.number)
    return Rate(k.number / n.number, low, high)


@dataclass
class Row:
    """A site's (or the network's) figures."""

    group: str
    referred: Figure
    treated: Figure
    waiting: Figure
    ineligible: Figure
    withdrawn: Figure
    lost: Figure
    lost_by_reason: dict[str, Figure]
    treated_share: Rate
    referral_to_infusion: Spread
    vein_to_vein: Spread
    evaluated: Figure
    responders: Figure
    response: Rate
    crs3: Figure
    crs3_rate: Rate
    icans3: Figure
    icans3_rate: Rate


@dataclass
class AccessRow:
    """A region's (or a deprivation quintile's) patients: referred, treated, and their travel time."""

    group: str
    referred: Figure
    treated: Figure
    treated_share: Rate
    travel: Spread  # minutes, not days


@dataclass
class Outcomes:
    sites: list[Row]
    network: Row
    regions: list[AccessRow]
    quintiles: list[AccessRow]
    patients: int = 0
    states: dict[Key, str] = field(default_factory=dict, repr=False)


_STATUS = ("treated", "waiting", "ineligible", "withdrawn", "lost")
# Measures per group; those starting with "_" are never published (their complement is).
_GROUP_MEASURES = ("referred", *_STATUS, *(f"lost:{r}" for r in LOST_REASONS), "evaluated", "responders",
                   "_nonresponders", "_unevaluated", "crs3", "_crs_other", "icans3", "_icans_other")


def _status(r: Record) -> str:
    if r.infused_at is not None:
        return "treated"
    if r.stage == LOST:
        return "lost"
    if r.stage in (INELIGIBLE, WITHDRAWN):
        return r.stage
    return "waiting"


def _counts(r: Record) -> dict[str, int]:
    status = _status(r)
    c = dict.fromkeys(_GROUP_MEASURES, 0)
    c["referred"] = 1
    c[status] = 1
    if status == "lost":
        c[f"lost:{r.lost_reason if r.lost_reason in LOST_REASONS else 'other'}"] = 1
    if status == "treated":
        if r.response_day100 in EVALUATED:
            c["evaluated"] = 1
            c["responders" if r.response_day100 in RESPONDED else "_nonresponders"] = 1
        else:
            c["_unevaluated"] = 1
        c["crs3" if (r.max_crs_grade or 0) >= 3 else "_crs_other"] = 1
        c["icans3" if (r.max_icans_grade or 0) >= 3 else "_icans_other"] = 1
    return c


def _region(r: Record) -> str:
    return r.region or "unknown"


def _quintile(r: Record) -> str:
    return str(r.deprivation_quintile) if r.deprivation_quintile else "unknown"


_ACCESS: tuple[tuple[str, Callable[[Record], str]], ...] = (("region", _region), ("quintile", _quintile))


def _group_lines(g: str) -> list[Line]:
    def k(measure: str) -> Key:
        return (measure, g)

    return [
        Line(k("referred"), tuple(k(s) for s in _STATUS)),
        Line(k("lost"), tuple(k(f"lost:{r}") for r in LOST_REASONS)),
        Line(k("treated"), (k("evaluated"), k("_unevaluated"))),
        Line(k("evaluated"), (k("responders"), k("_nonresponders"))),
        Line(k("treated"), (k("crs3"), k("_crs_other"))),
        Line(k("treated"), (k("icans3"), k("_icans_other"))),
    ]


def outcomes(records: Iterable[Record], *, visible: Iterable[str] | None = None,
             regions: Sequence[str] | None = None) -> Outcomes:
    """The figures of ``records`` (one per referral; each patient counted once, by their latest
    referral): a row for each site in ``visible`` (every site when ``None``), the network's row over
    all records, and access by region and by deprivation quintile over the network.

    Suppression is decided once, over every site, whoever reads: a reader who sees some sites' rows
    sees a part of the one publication, so two readers who compare what they saw learn nothing that
    the whole would not tell (each site's figures are safe against the network's totals)."""
    rows = latest_per_patient(records)
    groups = sorted({r.site for r in rows} | set(visible or ()))
    shown_sites = groups if visible is None else sorted(set(visible))

    def group_of(r: Record) -> str:
        return r.site

    values: dict[Key, int] = defaultdict(int)
    for g in [*groups, NETWORK]:
        for m in _GROUP_MEASURES:
            values[(m, g)] = 0
    times: dict[str, dict[str, list[float]]] = {g: {"r2i": [], "v2v": []} for g in [*groups, NETWORK]}
    for r in rows:
        g = group_of(r)
        for m, n in _counts(r).items():
            values[(m, g)] += n
            values[(m, NETWORK)] += n
        for key in (g, NETWORK):
            if (d := _days(r.referred_at, r.infused_at)) is not None:
                times[key]["r2i"].append(d)
            if (d := _days(r.collected_at, r.infused_at)) is not None:
                times[key]["v2v"].append(d)

    lines: list[Line] = []
    for g in [*groups, NETWORK]:
        lines += _group_lines(g)
    for m in _GROUP_MEASURES:
        lines.append(Line((m, NETWORK), tuple((m, g) for g in groups)))

    hidden = {k for k in values if k[0].startswith("_")}
    # Access: by region and by quintile, over the network; the untreated are never published.
    access_groups: dict[str, list[str]] = {}
    for dim, label_of in _ACCESS:
        found = sorted({label_of(r) for r in rows}, key=lambda v: (v == "unknown", v))
        if dim == "region" and regions is not None:
            found = sorted(set(found) | set(regions), key=lambda v: (v == "unknown", v))
        access_groups[dim] = found
        for a in found:
            for m in ("referred", "treated", "_untreated"):
                values[(f"{dim}:{m}", a)] = 0
        for r in rows:
            a = label_of(r)
            values[(f"{dim}:referred", a)] += 1
            values[(f"{dim}:treated" if r.infused_at is not None else f"{dim}:_untreated", a)] += 1
        values[(f"{dim}:_untreated", NETWORK)] = values[("referred", NETWORK)] - values[("treated", NETWORK)]
        hidden.add((f"{dim}:_untreated", NETWORK))
        hidden |= {(f"{dim}:_untreated", a) for a in found}
        for a in found:
            lines.append(Line((f"{dim}:referred", a), ((f"{dim}:treated", a), (f"{dim}:_untreated", a))))
        lines.append(Line(("referred", NETWORK), tuple((f"{dim}:referred", a) for a in found)))
        lines.append(Line(("treated", NETWORK), tuple((f"{dim}:treated", a) for a in found)))
        lines.append(Line((f"{dim}:_untreated", NETWORK), tuple((f"{dim}:_untreated", a) for a in found)))
        lines.append(Line(("referred", NETWORK), (("treated", NETWORK), (f"{dim}:_untreated", NETWORK))))

    # Of the unpublished complements, only the patients whose disease did not respond are a category
    # to protect: those not yet evaluated, those without severe CRS or ICANS, and the untreated (whose
    # parts the pathway table protects) are not.
    state = suppress(values, lines, hidden, protected={k for k in hidden if k[0] == "_nonresponders"})

    def fig(key: Key) -> Figure:
        s = state[key]
        if s == "hidden":
            raise KeyError(f"{key} is never published")
        return Figure(values[key] if s == "shown" else None, s)

    def row(g: str) -> Row:
        f = {m: fig((m, g)) for m in _GROUP_MEASURES if not m.startswith("_")}
        return Row(group=g, referred=f["referred"], treated=f["treated"], waiting=f["waiting"],
                   ineligible=f["ineligible"], withdrawn=f["withdrawn"], lost=f["lost"],
                   lost_by_reason={r: f[f"lost:{r}"] for r in LOST_REASONS},
                   treated_share=_rate(f["treated"], f["referred"]),
                   referral_to_infusion=spread(times[g]["r2i"]), vein_to_vein=spread(times[g]["v2v"]),
                   evaluated=f["evaluated"], responders=f["responders"],
                   response=_rate(f["responders"], f["evaluated"]),
                   crs3=f["crs3"], crs3_rate=_rate(f["crs3"], f["treated"]),
                   icans3=f["icans3"], icans3_rate=_rate(f["icans3"], f["treated"]))

    def access(dim: str, label_of: Callable[[Record], str]) -> list[AccessRow]:
        out = []
        for a in access_groups[dim]:
            referred, treated = fig((f"{dim}:referred", a)), fig((f"{dim}:treated", a))
            travel = spread([float(r.travel_minutes) for r in rows
                             if label_of(r) == a and r.travel_minutes is not None], unit="min")
            out.append(AccessRow(a, referred, treated, _rate(treated, referred), travel))
        return out

    return Outcomes(
        sites=[row(g) for g in shown_sites], network=row(NETWORK),
        regions=access("region", _region), quintiles=access("quintile", _quintile),
        patients=len(rows), states=state,
    )


# --- CSV and charts --------------------------------------------------------------------------------------

CSV_HEADER = ("section", "group", "measure", "value", "low_95", "high_95")


def csv_rows(result: Outcomes, *, network_label: str = "Network") -> list[tuple[str, ...]]:
    """The same figures as the page, one a row, suppressed identically (a suppressed cell's value is
    "< 5" or "withheld", never a number)."""
    out: list[tuple[str, ...]] = [CSV_HEADER]

    def pct(v: float | None) -> str:
        return "" if v is None else f"{v:.4f}"

    def rate(section: str, group: str, measure: str, r: Rate) -> None:
        out.append((section, group, measure, pct(r.share) if r.share is not None else "not published",
                    pct(r.low), pct(r.high)))

    def days(section: str, group: str, measure: str, s: Spread) -> None:
        if s.median is None:
            out.append((section, group, f"{measure}_median", "fewer than 5 patients", "", ""))
            return
        out.append((section, group, f"{measure}_median", f"{s.median:.1f}", "", ""))
        out.append((section, group, f"{measure}_q1", f"{s.q1:.1f}", "", ""))
        out.append((section, group, f"{measure}_q3", f"{s.q3:.1f}", "", ""))

    for r in [*result.sites, result.network]:
        g = network_label if r.group == NETWORK else r.group
        for name in ("referred", "treated", "waiting", "ineligible", "withdrawn", "lost"):
            out.append(("pathway", g, name, getattr(r, name).text, "", ""))
        for reason, f in r.lost_by_reason.items():
            out.append(("lost", g, reason, f.text, "", ""))
        rate("pathway", g, "treated_share", r.treated_share)
        days("times", g, "referral_to_infusion_days", r.referral_to_infusion)
        days("times", g, "vein_to_vein_days", r.vein_to_vein)
        out.append(("response_day100", g, "evaluated", r.evaluated.text, "", ""))
        out.append(("response_day100", g, "cr_or_pr", r.responders.text, "", ""))
        rate("response_day100", g, "cr_or_pr_share", r.response)
        out.append(("safety", g, "crs_grade3plus", r.crs3.text, "", ""))
        rate("safety", g, "crs_grade3plus_rate", r.crs3_rate)
        out.append(("safety", g, "icans_grade3plus", r.icans3.text, "", ""))
        rate("safety", g, "icans_grade3plus_rate", r.icans3_rate)
    for section, access_rows in (("region", result.regions), ("deprivation_quintile", result.quintiles)):
        for a in access_rows:
            out.append((section, a.group, "referred", a.referred.text, "", ""))
            out.append((section, a.group, "treated", a.treated.text, "", ""))
            rate(section, a.group, "treated_share", a.treated_share)
            if a.travel.median is None:
                out.append((section, a.group, "travel_minutes_median", "fewer than 5 patients", "", ""))
            else:
                out.append((section, a.group, "travel_minutes_median", f"{a.travel.median:.0f}", "", ""))
    return out


def time_chart(rows: Sequence[tuple[str, Spread]], *, title: str, none_text: str) -> str:
    """Medians as bars, each with its IQR in words (a suppressed one as an empty grey bar)."""
    bars = [Bar(label, s.median or 0.0, "info" if s.shown else "grey", s.text if s.shown else none_text,
                outline=s.q3) for label, s in rows]
    return bars_svg(bars or [Bar("—", 0.0, "grey", none_text)], title=title)


def rate_chart(rows: Sequence[tuple[str, Rate]], *, title: str, none_text: str, fill: str = "info") -> str:
    """Shares in per cent as bars, each with its 95 % interval in words."""
    bars = [Bar(label, 100 * r.share if r.share is not None else 0.0, fill if r.share is not None else "grey",
                r.text if r.share is not None else none_text) for label, r in rows]
    return bars_svg(bars or [Bar("—", 0.0, "grey", none_text)], title=title)


def count_chart(rows: Sequence[tuple[str, Figure]], *, title: str) -> str:
    """Counts as bars; a suppressed one is an empty grey bar with "< 5" or "withheld" beside it."""
    bars = [Bar(label, float(f.number or 0), "info" if f.number is not None else "grey", f.text) for label, f in rows]
    return bars_svg(bars or [Bar("—", 0.0, "grey", "0")], title=title)
