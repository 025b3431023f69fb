"""Live charts of device process values for the batch record: inline SVG, no JavaScript, no library,
readable on screen and on paper (DI-ALCOA: legible).

Pure Python (no Django import), so a chart can be drawn, tested and benchmarked on its own.

A chart shows the values as a line, the alarm band of the master file, every value outside it as
a red mark (and the line red where it is outside), the moments alarms were raised, and a time
axis in the site's local time with the zone written out. Long series are reduced for drawing to
the first, last, lowest and highest value of each pixel column — which keeps every peak and
trough — and each column holding a value outside the limits keeps a mark at its most extreme one,
so no value outside the limits is ever hidden.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import math
import statistics
from collections.abc import Sequence
from html import escape
from typing import NamedTuple


class Point(NamedTuple):
    """One reading: when (aware), the value, and whether it is outside the alarm limits."""

    at: dt.datetime
    value: float
    out_of_limits: bool


class AlarmMark(NamedTuple):
    """An alarm drawn on the chart at the moment it was raised."""

    at: dt.datetime
    label: str
    acknowledged: bool


COLOURS = {"line": "#2c6fb3", "band": "#e6f4ea", "limit": "#2f8f4e", "bad": "#c0392b", "text": "#1c2733",
           "muted": "#5b6775", "grid": "#e3e8ee", "ack": "#8795a1"}
_FONT = 'font-family="sans-serif"'
#: Time-axis steps, in seconds, from a minute to a week.
_TIME_STEPS = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800)


def downsample(points: Sequence[Point], *, start: dt.datetime, end: dt.datetime,
               columns: int) -> tuple[list[Point], list[Point]]:
    """Reduce a time-ordered series to what can be drawn in ``columns`` pixel columns.

    Returns the points of the line (per column: first, lowest, highest, last, in time order) and
    the points to mark as outside the limits (per column: the highest and the lowest value
    outside). Series shorter than four points per column are returned whole.
    """
    flagged_all = [p for p in points if p.out_of_limits]
    if len(points) <= 4 * columns:
        return list(points), flagged_all
    span = (end - start).total_seconds() or 1.0
    line: list[Point] = []
    flagged: list[Point] = []
    bucket: list[Point] = []
    current = -1

    def flush() -> None:
        if not bucket:
            return
        keep = {id(bucket[0]): bucket[0], id(bucket[-1]): bucket[-1]}
        low, high = min(bucket, key=lambda p: p.value), max(bucket, key=lambda p: p.value)
        keep[id(low)], keep[id(high)] = low, high
        line.extend(sorted(keep.values(), key=lambda p: p.at))
        outside = [p for p in bucket if p.out_of_limits]
        if outside:
            marks = {id(p): p for p in (min(outside, key=lambda p: p.value), max(outside, key=lambda p: p.value))}
            flagged.extend(sorted(marks.values(), key=lambda p: p.at))

    for point in points:
        column = min(int((point.at - start).total_seconds() / span * columns), columns - 1)
        if column != current:
            flush()
            bucket = []
            current = column
        bucket.append(point)
    flush()
    return line, flagged


def _nice_step(span: float, target: int = 5) -> float:
    raw = span / max(target, 1)
    power = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * power:
            return factor * power
    return 10 * power


def _decimals(step: float) -> int:
    for decimals in range(6):
        if abs(round(step, decimals) - step) < step * 1e-6:
            return decimals
    return 6


def _fmt(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}".replace("-", "−")


def _zone_name(tz: dt.tzinfo) -> str:
    return str(getattr(tz, "key", "") or dt.datetime.now(tz).tzname() or "UTC")


def _time_ticks(start: dt.datetime, end: dt.datetime, tz: dt.tzinfo, max_ticks: int) -> tuple[list[dt.datetime], int]:
    """Tick moments at round local times (whole minutes, hours or days at the site)."""
    span = (end - start).total_seconds()
    step = next((s for s in _TIME_STEPS if span / s <= max_ticks), _TIME_STEPS[-1])
    local = start.astimezone(tz)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)  # wall clock, naive on purpose
    ticks: list[dt.datetime] = []
    wall = midnight
    while True:
        moment = wall.replace(tzinfo=tz).astimezone(dt.UTC)
        if moment > end:
            break
        if moment >= start and (not ticks or moment > ticks[-1]):
            ticks.append(moment)
        wall += dt.timedelta(seconds=step)
        if len(ticks) > 4 * max_ticks:  # cannot happen with the steps above; a guard all the same
            break
    return ticks, step


def _slug(name: str, unit: str) -> str:
    return "pc" + hashlib.sha1(f"{name}|{unit}".encode(), usedforsecurity=False).hexdigest()[:10]


def parameter_chart_svg(
    points: Sequence[tuple[dt.datetime, float, bool]],
    *,
    alarm_min: float | None,
    alarm_max: float | None,
    name: str,
    unit: str,
    alarms: Sequence[tuple[dt.datetime, str, bool]] = (),
    tz: dt.tzinfo = dt.UTC,
    width: int = 720,
    height: int = 280,
) -> str:
    """An SVG line chart of one process parameter of a batch.

    ``points`` are ``(at, value, out_of_limits)`` in time order (aware datetimes); ``alarms`` are
    ``(raised_at, label, acknowledged)``; ``tz`` is the site's zone, in which the time axis is
    drawn and named. Returns an ``<svg>`` element with a ``<title>`` and a ``<desc>`` that says in
    words what the chart shows.
    """
    series = [Point(*p) for p in points]
    marks = [AlarmMark(*a) for a in alarms]
    unit_text = f" {unit}" if unit else ""
    left, right, top = 62, 18, 52
    bottom = height - 64
    plot_w, plot_h = width - left - right, bottom - top
    cid = _slug(name, unit)
    zone = _zone_name(tz)

    # --- ranges ------------------------------------------------------------------------------------
    values = [p.value for p in series]
    limits = [v for v in (alarm_min, alarm_max) if v is not None]
    lo, hi = min(values + limits, default=0.0), max(values + limits, default=1.0)
    if hi - lo < 1e-9:
        lo, hi = lo - 1.0, hi + 1.0
    pad = (hi - lo) * 0.08
    y_step = _nice_step(hi - lo + 2 * pad)
    lo = math.floor((lo - pad) / y_step) * y_step
    hi = math.ceil((hi + pad) / y_step) * y_step
    decimals = _decimals(y_step)
    if series:
        t0, t1 = series[0].at, series[-1].at
    else:
        t1 = dt.datetime.now(dt.UTC)
        t0 = t1 - dt.timedelta(hours=1)
    if (t1 - t0).total_seconds() < 60:
        t0, t1 = t0 - dt.timedelta(minutes=30), t1 + dt.timedelta(minutes=30)
    span = (t1 - t0).total_seconds()

    def x(at: dt.datetime) -> float:
        return left + (at - t0).total_seconds() / span * plot_w

    def y(value: float) -> float:
        return bottom - (value - lo) / (hi - lo) * plot_h

    # --- words -----------------------------------------------------------------------------------
    outside = sum(1 for p in series if p.out_of_limits)
    limits_words = (f"{alarm_min:g}–{alarm_max:g}{unit_text}" if alarm_min is not None and alarm_max is not None
                    else f"≥ {alarm_min:g}{unit_text}" if alarm_min is not None
                    else f"≤ {alarm_max:g}{unit_text}" if alarm_max is not None else "none")
    title = f"{name}{f' ({unit})' if unit else ''}"
    if series:
        last = series[-1]
        last_local = last.at.astimezone(tz)
        summary = (f"Last {last.value:g}{unit_text} at {last_local:%d %b %H:%M} {last_local.tzname()}"
                   f"{' — outside the limits' if last.out_of_limits else ''}. {len(series)} readings, "
                   f"{outside} outside the alarm limits ({limits_words}).")
        desc = (f"{title}: {len(series)} readings from {t0.astimezone(tz):%Y-%m-%d %H:%M} to "
                f"{t1.astimezone(tz):%Y-%m-%d %H:%M} {zone}; {outside} outside the alarm limits "
                f"({limits_words}); lowest {min(values):g}, highest {max(values):g}{unit_text}; last value "
                f"{last.value:g}{unit_text}; {len(marks)} alarm(s).")
    else:
        summary = f"No device data yet. Alarm limits {limits_words}."
        desc = f"{title}: no device data yet; alarm limits {limits_words}."

    summary_colour = COLOURS["bad"] if series and series[-1].out_of_limits else COLOURS["muted"]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart parameter-chart" role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" style="max-width:100%;height:auto" '
        f'aria-labelledby="{cid}-t {cid}-d">',
        f'<title id="{cid}-t">{escape(title)}</title><desc id="{cid}-d">{escape(desc)}</desc>',
        f'<text x="{left}" y="18" font-size="14" font-weight="600" {_FONT} fill="{COLOURS["text"]}">'
        f"{escape(title)}</text>",
        f'<text x="{left}" y="36" font-size="12" {_FONT} fill="{summary_colour}">'
        f"{escape(summary)}</text>",
    ]

    # --- alarm band and limits ---------------------------------------------------------------------
    band_top = y(alarm_max) if alarm_max is not None else top
    band_bottom = y(alarm_min) if alarm_min is not None else bottom
    if limits:
        parts.append(f'<rect class="alarm-band" x="{left}" y="{band_top:.1f}" width="{plot_w}" '
                     f'height="{max(band_bottom - band_top, 0):.1f}" fill="{COLOURS["band"]}"/>')
    # horizontal grid and value labels
    tick = lo
    while tick <= hi + y_step / 2:
        ty = y(tick)
        parts.append(f'<line x1="{left}" y1="{ty:.1f}" x2="{left + plot_w}" y2="{ty:.1f}" stroke="{COLOURS["grid"]}"/>')
        parts.append(f'<text x="{left - 6}" y="{ty + 4:.1f}" text-anchor="end" font-size="11" {_FONT} '
                     f'fill="{COLOURS["muted"]}">{_fmt(tick, decimals)}</text>')
        tick += y_step
    for label, limit in (("max", alarm_max), ("min", alarm_min)):
        if limit is None:
            continue
        ly = y(limit)
        parts.append(f'<line class="alarm-limit" x1="{left}" y1="{ly:.1f}" x2="{left + plot_w}" y2="{ly:.1f}" '
                     f'stroke="{COLOURS["limit"]}" stroke-width="1.2" stroke-dasharray="6 4"/>')
        parts.append(f'<text x="{left + plot_w - 4}" y="{ly + (-4 if label == "max" else 12):.1f}" text-anchor="end" '
                     f'font-size="11" {_FONT} fill="{COLOURS["limit"]}">alarm {label} '
                     f"{escape(f'{limit:g}'.replace('-', '−') + unit_text)}</text>")

    # --- time axis ---------------------------------------------------------------------------------
    ticks, step = _time_ticks(t0, t1, tz, max_ticks=max(2, plot_w // 95))
    previous_day = None
    for moment in ticks:
        tx = x(moment)
        local = moment.astimezone(tz)
        parts.append(f'<line x1="{tx:.1f}" y1="{top}" x2="{tx:.1f}" y2="{bottom}" stroke="{COLOURS["grid"]}"/>')
        parts.append(f'<line x1="{tx:.1f}" y1="{bottom}" x2="{tx:.1f}" y2="{bottom + 4}" stroke="{COLOURS["muted"]}"/>')
        label = local.strftime("%d %b") if step >= 86400 else local.strftime("%H:%M")
        parts.append(f'<text x="{tx:.1f}" y="{bottom + 16}" text-anchor="middle" font-size="11" {_FONT} '
                     f'fill="{COLOURS["muted"]}">{label}</text>')
        if step < 86400 and local.date() != previous_day:
            parts.append(f'<text x="{tx:.1f}" y="{bottom + 29}" text-anchor="middle" font-size="11" {_FONT} '
                         f'font-weight="600" fill="{COLOURS["muted"]}">{local:%d %b}</text>')
        previous_day = local.date()
    zones = list(dict.fromkeys(t.astimezone(tz).tzname() or "UTC" for t in (t0, *ticks, t1)))
    parts.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 20}" text-anchor="middle" font-size="11" {_FONT} '
                 f'fill="{COLOURS["muted"]}">Local time at the site: {escape(zone)} ({escape("/".join(zones))})'
                 "</text>")
    parts.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" '
                 f'stroke="#b8c2cc"/>')

    # --- the series --------------------------------------------------------------------------------
    line, flagged = downsample(series, start=t0, end=t1, columns=plot_w)
    if line:
        steps = [(b.at - a.at).total_seconds() for a, b in itertools.pairwise(series)]
        gap = max(5 * statistics.median(steps), 60.0) if steps else math.inf
        commands = []
        for i, p in enumerate(line):
            move = i == 0 or (p.at - line[i - 1].at).total_seconds() > gap  # no line across a gap in the data
            commands.append(f"{'M' if move else 'L'}{x(p.at):.1f} {y(p.value):.1f}")
        path = " ".join(commands)
        parts.append(f'<path class="series" d="{path}" fill="none" stroke="{COLOURS["line"]}" stroke-width="1.6" '
                     'stroke-linejoin="round"/>')
        if limits:
            clips = []
            if alarm_max is not None:
                clips.append(f'<rect x="{left}" y="{top - 10}" width="{plot_w}" '
                             f'height="{max(band_top - top + 10, 0):.1f}"/>')
            if alarm_min is not None:
                clips.append(f'<rect x="{left}" y="{band_bottom:.1f}" width="{plot_w}" '
                             f'height="{max(bottom - band_bottom + 10, 0):.1f}"/>')
            parts.append(f'<clipPath id="{cid}-out">{"".join(clips)}</clipPath>')
            parts.append(f'<path d="{path}" fill="none" stroke="{COLOURS["bad"]}" stroke-width="2.2" '
                         f'clip-path="url(#{cid}-out)"/>')
        if len(line) == 1 or len(series) < 40:
            for p in line:
                if not p.out_of_limits:
                    parts.append(f'<circle cx="{x(p.at):.1f}" cy="{y(p.value):.1f}" r="2" fill="{COLOURS["line"]}"/>')
    for p in flagged:
        local = p.at.astimezone(tz)
        parts.append(f'<circle class="out-of-limits" cx="{x(p.at):.1f}" cy="{y(p.value):.1f}" r="3.5" '
                     f'fill="{COLOURS["bad"]}" stroke="#fff" stroke-width="1"><title>{p.value:g}{escape(unit_text)} '
                     f"at {local:%Y-%m-%d %H:%M:%S} {local.tzname()}: outside the alarm limits</title></circle>")

    # --- alarms --------------------------------------------------------------------------------------
    for mark in marks:
        if not t0 <= mark.at <= t1:
            continue
        ax = x(mark.at)
        colour = COLOURS["ack"] if mark.acknowledged else COLOURS["bad"]
        state = "acknowledged" if mark.acknowledged else "not acknowledged"
        local = mark.at.astimezone(tz)
        dash = ' stroke-dasharray="3 3"' if mark.acknowledged else ""
        parts.append(f'<g class="alarm-mark{" acknowledged" if mark.acknowledged else ""}">'
                     f"<title>{escape(mark.label)} raised {local:%Y-%m-%d %H:%M} {local.tzname()} ({state})</title>"
                     f'<line x1="{ax:.1f}" y1="{top}" x2="{ax:.1f}" y2="{bottom}" stroke="{colour}" '
                     f'stroke-width="1.2"{dash}/>'
                     f'<path d="M{ax - 5:.1f} {top - 1} L{ax + 5:.1f} {top - 1} L{ax:.1f} {top + 7}z" fill="{colour}"/>'
                     f'<text x="{ax + 7:.1f}" y="{top + 10}" font-size="11" {_FONT} fill="{colour}">'
                     f"{escape(mark.label)}</text></g>")

    # --- legend -------------------------------------------------------------------------------------
    lx, ly = left, height - 6
    parts.append(
        f'<g class="legend" font-size="11" {_FONT} fill="{COLOURS["muted"]}">'
        f'<line x1="{lx}" y1="{ly - 4}" x2="{lx + 18}" y2="{ly - 4}" stroke="{COLOURS["line"]}" stroke-width="1.6"/>'
        f'<text x="{lx + 22}" y="{ly}">value</text>'
        f'<rect x="{lx + 64}" y="{ly - 9}" width="18" height="10" fill="{COLOURS["band"]}" stroke="{COLOURS["limit"]}" '
        f'stroke-dasharray="4 2"/><text x="{lx + 86}" y="{ly}">within alarm limits</text>'
        f'<circle cx="{lx + 200}" cy="{ly - 4}" r="3.5" fill="{COLOURS["bad"]}"/>'
        f'<text x="{lx + 208}" y="{ly}">outside the limits</text>'
        f'<line x1="{lx + 318}" y1="{ly - 10}" x2="{lx + 318}" y2="{ly + 1}" stroke="{COLOURS["bad"]}" '
        f'stroke-width="1.2"/><text x="{lx + 324}" y="{ly}">alarm raised (grey: acknowledged)</text></g>'
    )
    parts.append("</svg>")
    return "".join(parts)
