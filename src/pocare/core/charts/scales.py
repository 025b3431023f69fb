"""Numbers and time on an axis: "nice" ticks, number formats, linear and time scales, and ticks at
round local times in the site's zone (across a daylight-saving change too). No SVG here."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from pocare.core.units import unit_text

#: The minus sign of typeset numbers (U+2212): a hyphen is shorter and reads as a dash on paper.
MINUS = "\u2212"
#: Steps of a "nice" axis within each power of ten.
_NICE = (1.0, 2.0, 2.5, 5.0, 10.0)
#: Time-axis steps, in seconds, from a minute to a week.
TIME_STEPS = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800)
DAY = 86400


def fmt_number(value: float, *, decimals: int | None = None, digits: int = 6) -> str:
    """``value`` with ``decimals`` fixed decimals, or else ``digits`` significant ones, written with a
    true minus sign; a value that rounds to zero has no sign."""
    text = f"{value:.{decimals}f}" if decimals is not None else f"{value:.{digits}g}"
    if text.startswith("-") and float(text) == 0:
        text = text[1:]
    return text.replace("-", MINUS)


def with_unit(text: str, unit: str) -> str:
    """``38 °C``, ``1.2 × 10⁶ cells`` (:mod:`pocare.core.units`), or the bare number without a unit."""
    return unit_text(f"{text} {unit}") if unit else text


def nice_step(span: float, target: int = 5) -> float:
    """The smallest step of 1, 2, 2.5 or 5 times a power of ten that cuts ``span`` in at most
    ``target`` parts."""
    raw = span / max(target, 1)
    if not math.isfinite(raw) or raw <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(raw))
    return next(f * power for f in _NICE if raw <= f * power * (1 + 1e-9))


def decimals_for(step: float) -> int:
    """How many decimals write every multiple of ``step`` exactly (0 for 20, 1 for 0.5, 2 for 0.25)."""
    for decimals in range(7):
        if abs(round(step, decimals) - step) <= abs(step) * 1e-6:
            return decimals
    return 6


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Ticks at a nice step inside ``[lo, hi]``."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo] if math.isfinite(lo) else []
    step = nice_step(hi - lo, count)
    first = math.ceil(lo / step - 1e-9)
    last = math.floor(hi / step + 1e-9)
    return [round(k * step, 12) for k in range(first, last + 1)]


def nice_range(lo: float, hi: float, count: int = 5, *, pad: float = 0.0) -> tuple[float, float, float]:
    """``(low, high, step)``: the range widened by ``pad`` (a fraction of it) on each side, then out
    to whole nice steps, so that the first and last ticks are its ends (0–97 gives 0–100 by 20)."""
    if hi - lo < 1e-9:
        lo, hi = lo - 1.0, hi + 1.0
    margin = (hi - lo) * pad
    step = nice_step(hi - lo + 2 * margin, count)
    return math.floor((lo - margin) / step + 1e-9) * step, math.ceil((hi + margin) / step - 1e-9) * step, step


def padded(values: Iterable[float], pad: float = 0.06) -> tuple[float, float]:
    """The range of the finite ``values``, widened by ``pad`` of itself on each side (``0–1`` when
    there is none; a single value gets ±1)."""
    finite = [v for v in values if math.isfinite(v)]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
    if hi == lo:
        lo, hi = lo - 1, hi + 1
    margin = (hi - lo) * pad
    return lo - margin, hi + margin


@dataclass(frozen=True)
class Linear:
    """Maps ``[d0, d1]`` (data) onto ``[r0, r1]`` (pixels); a zero-width domain maps to ``r0``."""

    d0: float
    d1: float
    r0: float
    r1: float
    _k: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_k", (self.r1 - self.r0) / ((self.d1 - self.d0) or 1.0))

    def __call__(self, value: float) -> float:
        return self.r0 + (value - self.d0) * self._k


@dataclass(frozen=True)
class TimeScale:
    """Maps aware datetimes in ``[t0, t1]`` onto ``[r0, r1]`` (elapsed seconds, whatever the zone)."""

    t0: dt.datetime
    t1: dt.datetime
    r0: float
    r1: float
    _k: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_k", (self.r1 - self.r0) / ((self.t1 - self.t0).total_seconds() or 1.0))

    def __call__(self, at: dt.datetime) -> float:
        return self.r0 + (at - self.t0).total_seconds() * self._k


def time_step(start: dt.datetime, end: dt.datetime, max_ticks: int) -> int:
    """The smallest step of :data:`TIME_STEPS` that gives at most ``max_ticks`` ticks."""
    span = (end - start).total_seconds()
    return next((s for s in TIME_STEPS if span / s <= max_ticks), TIME_STEPS[-1])


def time_ticks(start: dt.datetime, end: dt.datetime, tz: dt.tzinfo, max_ticks: int) -> tuple[list[dt.datetime], int]:
    """Tick moments (UTC) at round local times of ``tz`` in ``[start, end]``, and the step in seconds.

    Ticks step along the wall clock from local midnight: across a change to summer time the missing
    hour gets no tick, and across the change back the repeated hour is ticked once.
    """
    step = time_step(start, end, max_ticks)
    wall = start.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)  # naive: wall clock
    ticks: list[dt.datetime] = []
    while len(ticks) <= 4 * max_ticks:  # a guard; the steps above never reach it
        moment = wall.replace(tzinfo=tz).astimezone(dt.UTC)
        if moment > end:
            break
        if moment >= start and (not ticks or moment > ticks[-1]):
            ticks.append(moment)
        wall += dt.timedelta(seconds=step)
    return ticks, step


def zone_name(tz: dt.tzinfo) -> str:
    """The zone's IANA name (``Europe/Amsterdam``), or its abbreviation when it has none."""
    return str(getattr(tz, "key", "") or dt.datetime.now(tz).tzname() or "UTC")


def zone_abbreviations(tz: dt.tzinfo, moments: Iterable[dt.datetime]) -> str:
    """The abbreviations the zone uses at ``moments``, in order of first use (``CET/CEST``)."""
    return "/".join(dict.fromkeys(m.astimezone(tz).tzname() or "UTC" for m in moments))


def fmt_time(at: dt.datetime, tz: dt.tzinfo, pattern: str = "%Y-%m-%d %H:%M") -> str:
    """``at`` on the wall clock of ``tz`` with the zone's abbreviation (``2026-03-29 03:00 CEST``)."""
    local = at.astimezone(tz)
    return f"{local.strftime(pattern)} {local.tzname()}"
