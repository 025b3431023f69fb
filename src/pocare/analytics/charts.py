"""Charts of the comparability pages and the product quality review, drawn with
:mod:`pocare.core.charts`: inline SVG, no JavaScript, readable on screen and on paper.

Pure Python (no Django import). Every chart has a ``<title>`` that says what it shows; flagged
points are marked by shape (a ring) as well as by colour, and carry the rules that flagged them in
their tooltip, so the chart reads without colour.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pocare.core.charts import (
    Drawing,
    Margins,
    Plot,
    bin_counts,
    colour,
    columns,
    fmt_number,
    marker,
    nice_ticks,
    numeric_plot,
    padded,
    tag,
    text,
    tip,
    with_unit,
)
from pocare.core.units import unit_text

_LOTS = Margins(left=58, top=14, right=96, bottom=30)


def _fmt(v: float) -> str:
    return fmt_number(v, digits=4)


def _lot_plot(drawing: Drawing, n: int, ys: Sequence[float]) -> Plot[float]:
    """Lots 1…n across, the values padded a little above and below."""
    return numeric_plot(drawing, _LOTS, (0.5, n + 0.5), padded(ys, 0.06))


def _axes(plot: Plot[float], *, x_title: str, y_title: str) -> None:
    plot.y_grid(nice_ticks(plot.y.d0, plot.y.d1), _fmt)
    plot.x_labels(nice_ticks(*plot.x_domain, 8), _fmt)
    plot.titles(x_title, y_title)
    plot.border()


def _series(plot: Plot[float], values: Sequence[float], flags: Mapping[int, Sequence[str]],
            labels: Sequence[str], unit: str) -> None:
    """The values of lots 1…n joined by a line; a flagged lot ringed, the rules in its tooltip."""
    plot.polyline([(i + 1, v) for i, v in enumerate(values)], "line")
    for i, v in enumerate(values):
        rules = flags.get(i, ())
        note = f"{labels[i] if i < len(labels) else f'#{i + 1}'}: {with_unit(_fmt(v), unit)}"
        if rules:
            plot.marker(i + 1, v, "ring", "bad", note=f"{note} — {', '.join(rules)}", cls="flagged", size=2.6)
        else:
            plot.marker(i + 1, v, "dot", "line", note=note)


def control_chart_svg(values: Sequence[float], *, centre: float, sigma: float, flags: Mapping[int, Sequence[str]],
                      labels: Sequence[str], title: str, unit: str = "", baseline: int = 0,
                      spec: tuple[float | None, float | None] = (None, None), width: int = 720,
                      height: int = 260) -> str:
    """Individuals chart: values by lot, centre line, ±3σ limits (UCL/LCL), faint ±1σ and ±2σ zone
    lines, the phase I lots shaded, specification limits dotted, flagged points ringed."""
    n = len(values)
    drawing = Drawing(width, height, title)
    plot = _lot_plot(drawing, n, [*values, centre + 3 * sigma, centre - 3 * sigma])
    if baseline:
        plot.vband(0.5, min(baseline, n) + 0.5, "shade",
                   note=f"Lots 1–{min(baseline, n)}: the limits were set on these (phase I)")
    _axes(plot, x_title="Lot (in order of manufacture)", y_title=unit_text(unit) or "value")
    for k in (1, 2, -1, -2):
        plot.hline(centre + k * sigma, "frame", dash="2 3", width=0.8)
    plot.hline(centre + 3 * sigma, "bad", label=f"UCL {_fmt(centre + 3 * sigma)}", dash="6 3")
    plot.hline(centre - 3 * sigma, "bad", label=f"LCL {_fmt(centre - 3 * sigma)}", dash="6 3")
    plot.hline(centre, "ok", label=f"x̄ {_fmt(centre)}")
    for limit, name in spec_limits(spec):
        if plot.y.d0 <= limit <= plot.y.d1:
            plot.hline(limit, "warn", label=f"{name} {_fmt(limit)}", dash="1 3", width=1.5)
    _series(plot, values, flags, labels, unit)
    return drawing.svg()


def spec_limits(spec: tuple[float | None, float | None]) -> list[tuple[float, str]]:
    """The specification limits that are set, named LSL and USL."""
    return [(limit, name) for limit, name in zip(spec, ("LSL", "USL"), strict=True) if limit is not None]


def ewma_chart_svg(z: Sequence[float], *, ucl: Sequence[float], lcl: Sequence[float], centre: float,
                   flags: Sequence[int], labels: Sequence[str], title: str, unit: str = "", width: int = 720,
                   height: int = 200) -> str:
    """EWMA statistic with its exact (widening, then steady) limits."""
    n = len(z)
    drawing = Drawing(width, height, title)
    plot = _lot_plot(drawing, n, [*z, *ucl, *lcl])
    _axes(plot, x_title="Lot", y_title=unit_text(f"EWMA {unit}".strip()))
    for limit in (ucl, lcl):
        plot.polyline([(i + 1, v) for i, v in enumerate(limit)], "bad", width=1.0, dash="6 3")
    if n:
        plot.right_label(ucl[-1], f"UCL {_fmt(ucl[-1])}", "bad")
        plot.right_label(lcl[-1], f"LCL {_fmt(lcl[-1])}", "bad")
    plot.hline(centre, "ok", label=f"μ₀ {_fmt(centre)}")
    _series(plot, z, {i: ["EWMA outside its limits"] for i in flags}, labels, unit)
    return drawing.svg()


def cusum_chart_svg(upper: Sequence[float], lower: Sequence[float], *, h: float, flags: Sequence[int],
                    labels: Sequence[str], title: str, width: int = 720, height: int = 200) -> str:
    """Tabular CUSUM: C⁺ above zero, C⁻ drawn below zero, the decision interval ±H."""
    neg = [-v for v in lower]
    drawing = Drawing(width, height, title)
    plot = _lot_plot(drawing, len(upper), [*upper, *neg, h, -h])
    _axes(plot, x_title="Lot", y_title="C⁺ / −C⁻")
    plot.hline(h, "bad", label=f"H {_fmt(h)}", dash="6 3")
    plot.hline(-h, "bad", label=f"−H {_fmt(-h)}", dash="6 3")
    plot.hline(0.0, "ok", label="0")
    marks = {i: ["CUSUM beyond H"] for i in flags}
    _series(plot, upper, {i: r for i, r in marks.items() if upper[i] > h}, labels, "")
    _series(plot, neg, {i: r for i, r in marks.items() if lower[i] > h}, labels, "")
    return drawing.svg()


def _normal_curve(plot: Plot[float], lo: float, hi: float, *, n: int, step: float, mean: float, sigma: float) -> None:
    """The normal density of ``mean`` and ``sigma``, scaled to ``n`` values in bins of ``step``."""
    def density(v: float) -> float:
        return n * step * math.exp(-0.5 * ((v - mean) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))

    xs = [lo + (hi - lo) * k / 120 for k in range(121)]
    plot.polyline([(v, density(v)) for v in xs], "line", width=1.5)


def histogram_svg(values: Sequence[float], *, lsl: float | None, usl: float | None, mean: float, sigma: float,
                  title: str, unit: str = "", bins: int = 14, width: int = 420, height: int = 220) -> str:
    """Capability histogram: the lots' values, the normal curve of mean and overall σ, and the
    specification limits."""
    finite = [v for v in values if math.isfinite(v)]
    drawing = Drawing(width, height, title)
    if not finite:
        drawing.add(text(10, 20, "No values.", fill="ink", font_size=12))
        return drawing.svg()
    limits = spec_limits((lsl, usl))
    lo, hi = min([*finite, *(v for v, _ in limits)]), max([*finite, *(v for v, _ in limits)])
    if math.isfinite(sigma) and sigma > 0:
        lo, hi = min(lo, mean - 3.5 * sigma), max(hi, mean + 3.5 * sigma)
    if hi == lo:
        lo, hi = lo - 1, hi + 1
    step, counts = (hi - lo) / bins, bin_counts(finite, lo, hi, bins)
    peak = len(finite) * step / (sigma * math.sqrt(2 * math.pi)) if sigma > 0 else 0
    plot = numeric_plot(drawing, Margins(40, 14, 16, 30), (lo, hi), (0, max(max(counts), peak) * 1.1 or 1))
    _axes(plot, x_title=unit_text(unit) or "value", y_title="lots")
    columns(plot, lo, hi, counts, "light-blue", lambda a, b, c: f"{_fmt(a)} to {_fmt(b)}: {c} lot(s)")
    if sigma > 0:
        _normal_curve(plot, lo, hi, n=len(finite), step=step, mean=mean, sigma=sigma)
    for limit, name in limits:
        plot.vline(limit, "bad", label=f"{name} {_fmt(limit)}", dash="5 3")
    return drawing.svg()


@dataclass(frozen=True)
class Interval:
    """One row of an interval plot: a site's difference to the network with its 90 % interval."""

    label: str
    estimate: float
    low: float
    high: float
    equivalent: bool


def _interval_row(plot: Plot[float], r: Interval, y: float) -> None:
    """One site: its label, then its interval and estimate (a green square when equivalent, else a
    red diamond) and the verdict in words, or "too few lots"."""
    plot.add(text(plot.left - 8, y + 4, r.label, fill="ink", font_size=12, text_anchor="end"))
    if not (math.isfinite(r.low) and math.isfinite(r.high)):
        plot.add(text(plot.x(0) + 6, y + 4, "too few lots"))
        return
    paint = "ok" if r.equivalent else "bad"
    verdict = "equivalent" if r.equivalent else "not equivalent"
    note = f"{r.label}: {_fmt(r.estimate)} ({_fmt(r.low)} to {_fmt(r.high)}) — {verdict}"
    body = (tag("line", x1=plot.x(r.low), y1=y, x2=plot.x(r.high), y2=y, stroke=colour(paint), stroke_width=2.2)
            + marker(plot.x(r.estimate), y, "square" if r.equivalent else "diamond", paint, size=4))
    plot.add(tag("g", tip(note) + body),
             text(plot.right + 6, y + 4, "equivalent" if r.equivalent else "not equivalent", fill=paint))


def interval_plot_svg(rows: Sequence[Interval], *, margin: float, title: str, unit: str = "",
                      width: int = 520, row_height: int = 24) -> str:
    """Site versus network: each site's difference of means with its 90 % interval, the
    equivalence margin ±δ shaded; intervals inside are green squares, others red diamonds."""
    height = 34 + row_height * max(len(rows), 1) + 28
    m = margin if math.isfinite(margin) else 0.0
    span = max([abs(v) for r in rows for v in (r.low, r.high) if math.isfinite(v)] + [m * 1.25, 1e-9]) * 1.08
    drawing = Drawing(width, height, title)
    plot = numeric_plot(drawing, Margins(60, 24, 70, 30), (-span, span), (0, 1))
    plot.vband(-m, m, "band", note=with_unit(f"Equivalence margin ±{_fmt(m)}", unit))
    plot.x_labels(nice_ticks(-span, span, 6), _fmt, grid=True)
    plot.vline(0.0, "ok", width=1.0)
    for value, words in ((-m, f"−δ {_fmt(-m)}"), (m, f"+δ {_fmt(m)}")):
        plot.add(text(plot.x(value), plot.top - 6, words, fill="ok", text_anchor="middle"))
    plot.titles(f"Difference to the rest of the network{f' ({unit_text(unit)})' if unit else ''}, 90 % CI")
    for i, r in enumerate(rows):
        _interval_row(plot, r, plot.top + 8 + i * row_height + row_height / 2)
    return drawing.svg()


def t2_chart_svg(values: Sequence[float], *, ucl: float, labels: Sequence[str], title: str, width: int = 720,
                 height: int = 200) -> str:
    """Hotelling's T² per lot with its phase II upper limit; lots above it ringed."""
    drawing = Drawing(width, height, title)
    plot = _lot_plot(drawing, len(values), [0.0, *values, ucl])
    _axes(plot, x_title="Lot", y_title="T²")
    plot.hline(ucl, "bad", label=f"UCL {_fmt(ucl)}", dash="6 3")
    _series(plot, values, {i: ["T² above its limit"] for i, v in enumerate(values) if v > ucl}, labels, "")
    return drawing.svg()
