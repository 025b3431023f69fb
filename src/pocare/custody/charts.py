"""A small temperature chart of a shipment's readings, drawn with :mod:`pocare.core.charts`: the
readings, the limits as dashed lines and the excursions shaded, on a time axis in UTC (a shipment
travels between sites). Pure module (no Django); every text is escaped by the chart module."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from pocare.core.charts import Drawing, Margins, fmt_number, nice_ticks, padded, time_axis, time_plot

WIDTH, HEIGHT = 560, 200
_MARGINS = Margins(left=40, top=14, right=52, bottom=50)


def _seconds(when: dt.datetime) -> float | None:
    try:
        return when.timestamp()
    except (OverflowError, ValueError):
        return None


def temperature_svg(
    readings: Sequence[tuple[dt.datetime, Decimal]], low: Decimal | None, high: Decimal | None,
    excursions: Sequence[tuple[dt.datetime, dt.datetime]] = (),
) -> str:
    """The chart, or an empty string without readings. A time that cannot be placed (year 1 with an
    offset, from a row stored before the input bounds) is left out of the chart, never an error."""
    readings = [r for r in readings if _seconds(r[0]) is not None]
    if not readings:
        return ""
    values = [float(v) for _, v in readings]
    limits = [(float(v), word) for v, word in ((low, "min"), (high, "max")) if v is not None]
    lo, hi = padded([*values, *(v for v, _ in limits)], 0.1)
    start, end = min(at for at, _ in readings), max(at for at, _ in readings)
    if start == end:
        start, end = start - dt.timedelta(minutes=30), end + dt.timedelta(minutes=30)
    drawing = Drawing(WIDTH, HEIGHT, "Logged temperatures with limits and excursions", css="temp-chart",
                      desc=f"{len(readings)} readings, {len(excursions)} excursion(s)")
    plot = time_plot(drawing, _MARGINS, start, end, (lo, hi))
    for a, b in excursions:
        if _seconds(a) is not None and _seconds(b) is not None:
            plot.vband(a, b, "#d33", note="excursion", opacity=0.18, overhang=2)
    plot.y_grid(nice_ticks(lo, hi, 4), lambda v: fmt_number(v, digits=4))
    plot.titles(y_title="°C")
    for value, word in limits:
        plot.hline(value, "#b00", label=f"{word} {fmt_number(value)}", dash="5 3", width=1.0)
    plot.polyline([(at, float(v)) for at, v in readings], "#1f5fa8", width=1.5)
    time_axis(plot, dt.UTC, caption="Time in {zone}")
    plot.border()
    return drawing.svg()
