"""A small temperature chart of a shipment's readings, as inline SVG: the readings, the limits as
dashed lines and the excursions shaded. Pure module (no Django); values are escaped by design
(only numbers and fixed words are written)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

WIDTH, HEIGHT, PAD = 560, 160, 30


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
    times = [r[0].timestamp() for r in readings]
    values = [float(r[1]) for r in readings]
    bounds = values + [float(v) for v in (low, high) if v is not None]
    vmin, vmax = min(bounds) - 1, max(bounds) + 1
    t0, t1 = min(times), max(times)
    span = (t1 - t0) or 1.0

    def x(t: float) -> float:
        return PAD + (t - t0) / span * (WIDTH - 2 * PAD)

    def y(v: float) -> float:
        return HEIGHT - PAD + 10 - (v - vmin) / (vmax - vmin) * (HEIGHT - 2 * PAD)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" class="temp-chart" '
             'role="img" aria-label="Logged temperatures with limits and excursions">']
    for start, end in excursions:
        a, b = _seconds(start), _seconds(end)
        if a is None or b is None:
            continue
        xa, xb = x(a), x(b)
        parts.append(f'<rect x="{xa - 2:.1f}" y="{PAD - 20}" width="{max(xb - xa, 0) + 4:.1f}" '
                     f'height="{HEIGHT - 2 * PAD + 30}" fill="#d33" fill-opacity="0.18">'
                     '<title>excursion</title></rect>')
    for limit, word in ((low, "min"), (high, "max")):
        if limit is not None:
            ly = y(float(limit))
            parts.append(f'<line x1="{PAD}" x2="{WIDTH - PAD}" y1="{ly:.1f}" y2="{ly:.1f}" stroke="#b00" '
                         f'stroke-dasharray="5 3"/><text x="{WIDTH - PAD + 2}" y="{ly + 4:.1f}" font-size="10" '
                         f'fill="#b00">{word} {float(limit):g}</text>')
    points = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in zip(times, values, strict=True))
    parts.append(f'<polyline points="{points}" fill="none" stroke="#1f5fa8" stroke-width="1.5"/>')
    parts.append(f'<text x="{PAD}" y="{HEIGHT - 4}" font-size="10">{readings[0][0]:%Y-%m-%d %H:%M} UTC</text>')
    parts.append(f'<text x="{WIDTH - PAD}" y="{HEIGHT - 4}" font-size="10" text-anchor="end">'
                 f'{readings[-1][0]:%Y-%m-%d %H:%M} UTC</text>')
    parts.append(f'<text x="2" y="{PAD - 8}" font-size="10">°C</text></svg>')
    return "".join(parts)
