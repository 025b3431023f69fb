"""Live charts of device process values for the batch record, drawn with :mod:`pocare.core.charts`:
inline SVG, no JavaScript, readable on screen and on paper (DI-ALCOA: legible).

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
from collections.abc import Sequence
from typing import NamedTuple

from pocare.core.charts import (
    Drawing,
    LegendItem,
    Margins,
    Plot,
    TimePoint,
    TimeScale,
    decimals_for,
    downsample,
    fmt_number,
    fmt_time,
    gap_seconds,
    legend,
    nice_range,
    segments,
    text,
    time_axis,
    time_plot,
    with_unit,
    zone_name,
)
from pocare.core.units import unit_text


class AlarmMark(NamedTuple):
    """An alarm drawn on the chart at the moment it was raised."""

    at: dt.datetime
    label: str
    acknowledged: bool


_MARGINS = Margins(left=62, top=52, right=18, bottom=64)
_LEGEND = (LegendItem("line", "line", "value"), LegendItem("band", "green", "within alarm limits"),
           LegendItem("dot", "bad", "outside the limits"),
           LegendItem("vline", "bad", "alarm raised (grey: acknowledged)"))


def _limits_words(alarm_min: float | None, alarm_max: float | None, unit: str) -> str:
    if alarm_min is not None and alarm_max is not None:
        return with_unit(f"{fmt_number(alarm_min)}–{fmt_number(alarm_max)}", unit)
    if alarm_min is not None:
        return "≥ " + with_unit(fmt_number(alarm_min), unit)
    return "≤ " + with_unit(fmt_number(alarm_max), unit) if alarm_max is not None else "none"


def _words(series: Sequence[TimePoint], limits: str, title: str, tz: dt.tzinfo, unit: str,
           alarms: int) -> tuple[str, str]:
    """The line under the title and the description for screen readers."""
    if not series:
        return f"No device data yet. Alarm limits {limits}.", f"{title}: no device data yet; alarm limits {limits}."
    last, outside = series[-1], sum(1 for p in series if p.flagged)
    values = [p.value for p in series]
    last_value = with_unit(fmt_number(last.value), unit)
    summary = (f"Last {last_value} at {fmt_time(last.at, tz, '%d %b %H:%M')}"
               f"{' — outside the limits' if last.flagged else ''}. {len(series)} readings, "
               f"{outside} outside the alarm limits ({limits}).")
    desc = (f"{title}: {len(series)} readings from {series[0].at.astimezone(tz):%Y-%m-%d %H:%M} to "
            f"{last.at.astimezone(tz):%Y-%m-%d %H:%M} {zone_name(tz)}; {outside} outside the alarm limits "
            f"({limits}); lowest {fmt_number(min(values))}, highest {with_unit(fmt_number(max(values)), unit)}; "
            f"last value {last_value}; {alarms} alarm(s).")
    return summary, desc


def _time_span(series: Sequence[TimePoint]) -> tuple[dt.datetime, dt.datetime]:
    """The series' first and last moments, widened to an hour around them when shorter than a minute."""
    if series:
        t0, t1 = series[0].at, series[-1].at
    else:
        t1 = dt.datetime.now(dt.UTC)
        t0 = t1 - dt.timedelta(hours=1)
    if (t1 - t0).total_seconds() < 60:
        t0, t1 = t0 - dt.timedelta(minutes=30), t1 + dt.timedelta(minutes=30)
    return t0, t1


def _limit_lines(plot: Plot[dt.datetime], alarm_min: float | None, alarm_max: float | None, unit: str) -> None:
    """The edges of the alarm band, dashed, each labelled inside the plot's right end."""
    for word, limit, place in (("max", alarm_max, "above"), ("min", alarm_min, "below")):
        if limit is not None:
            plot.hline(limit, "green", label=f"alarm {word} {with_unit(fmt_number(limit), unit)}", dash="6 4",
                       cls="alarm-limit", label_at=place)


def _series(plot: Plot[dt.datetime], series: Sequence[TimePoint], alarm_min: float | None, alarm_max: float | None,
            unit: str, tz: dt.tzinfo) -> None:
    """The line (red where outside the band), small dots on short series, a mark on every value outside."""
    scale = plot.x
    assert isinstance(scale, TimeScale)
    line, flagged = downsample(series, start=scale.t0, end=scale.t1, columns=int(plot.width))
    if line:
        d = plot.path_d(segments(line, gap_seconds(series)))
        plot.path(d, "line", width=1.6, cls="series")
        if alarm_min is not None or alarm_max is not None:
            plot.outside(d, alarm_min, alarm_max, "bad")
        if len(line) == 1 or len(series) < 40:
            for p in (p for p in line if not p.flagged):
                plot.marker(p.at, p.value, "dot", "line", size=2)
    for p in flagged:
        note = f"{with_unit(fmt_number(p.value), unit)} at {fmt_time(p.at, tz, '%Y-%m-%d %H:%M:%S')}: " \
               "outside the alarm limits"
        plot.marker(p.at, p.value, "dot", "bad", note=note, cls="out-of-limits", size=3.5, stroke="white")


def _alarms(plot: Plot[dt.datetime], marks: Sequence[AlarmMark], t0: dt.datetime, t1: dt.datetime,
            tz: dt.tzinfo) -> None:
    for mark in (m for m in marks if t0 <= m.at <= t1):
        state = "acknowledged" if mark.acknowledged else "not acknowledged"
        plot.event(mark.at, mark.label, "grey" if mark.acknowledged else "bad", dashed=mark.acknowledged,
                   note=f"{mark.label} raised {fmt_time(mark.at, tz)} ({state})",
                   cls="alarm-mark acknowledged" if mark.acknowledged else "alarm-mark")


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
    series, marks = [TimePoint(*p) for p in points], [AlarmMark(*a) for a in alarms]
    title = f"{name}{f' ({unit_text(unit)})' if unit else ''}"
    summary, desc = _words(series, _limits_words(alarm_min, alarm_max, unit), title, tz, unit, len(marks))
    limits = [v for v in (alarm_min, alarm_max) if v is not None]
    values = [p.value for p in series] + limits
    lo, hi, step = nice_range(min(values, default=0.0), max(values, default=1.0), pad=0.08)
    t0, t1 = _time_span(series)
    drawing = Drawing(width, height, title, desc=desc, css="chart parameter-chart", key=f"{name}|{unit}")
    plot = time_plot(drawing, _MARGINS, t0, t1, (lo, hi))
    drawing.add(text(plot.left, 18, title, fill="ink", font_size=14, font_weight=600),
                text(plot.left, 36, summary, fill="bad" if series and series[-1].flagged else "muted", font_size=12))
    if limits:
        plot.hband(alarm_min, alarm_max, "band", cls="alarm-band")
    plot.y_grid([lo + k * step for k in range(round((hi - lo) / step) + 1)],
                lambda v: fmt_number(v, decimals=decimals_for(step)))
    _limit_lines(plot, alarm_min, alarm_max, unit)
    time_axis(plot, tz)
    plot.border()
    _series(plot, series, alarm_min, alarm_max, unit, tz)
    _alarms(plot, marks, t0, t1, tz)
    drawing.add(legend(_LEGEND, plot.left, height - 6))
    return drawing.svg()
