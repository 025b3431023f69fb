"""Charts of the comparability pages and the product quality review: inline SVG, no JavaScript, no
library, readable on screen and on paper, in the style of ``pocare.network.charts``.

Pure Python (no Django import). Every chart has a ``<title>`` and an ``aria-label`` saying what it
shows; flagged points are marked by shape (a ring) as well as by colour, and carry the rules
that flagged them in their tooltip, so the chart reads without colour.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

COLOURS = {"line": "#2c6fb3", "point": "#2c6fb3", "bad": "#c0392b", "limit": "#c0392b", "centre": "#2f8f4e",
           "zone": "#b8c2cc", "text": "#1c2733", "muted": "#5b6775", "grid": "#e3e8ee", "band": "#e6f4ea",
           "baseline": "#f4f6f8", "bar": "#9cc0e6", "warn": "#c48a00"}
_FONT = 'font-family="sans-serif"'


def _nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo] if math.isfinite(lo) else []
    raw = (hi - lo) / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step) * step
    ticks = []
    v = start
    while v <= hi + step * 1e-9:
        ticks.append(round(v, 12))
        v += step
    return ticks


def _fmt(v: float) -> str:
    return f"{v:.4g}"


@dataclass
class _Frame:
    """A plot area with linear scales; ``x``/``y`` map data to pixels."""

    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    x0: float
    x1: float
    y0: float
    y1: float

    def x(self, v: float) -> float:
        span = (self.x1 - self.x0) or 1.0
        return self.left + (v - self.x0) / span * (self.width - self.left - self.right)

    def y(self, v: float) -> float:
        span = (self.y1 - self.y0) or 1.0
        return self.height - self.bottom - (v - self.y0) / span * (self.height - self.top - self.bottom)


def _frame(width: int, height: int, xs: tuple[float, float], ys: Sequence[float]) -> _Frame:
    finite = [v for v in ys if math.isfinite(v)]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
    if hi == lo:
        lo, hi = lo - 1, hi + 1
    pad = (hi - lo) * 0.06
    return _Frame(width, height, 58, 96, 14, 30, xs[0], xs[1], lo - pad, hi + pad)


def _open(width: int, height: int, title: str, css: str = "chart") -> list[str]:
    return [f'<svg xmlns="http://www.w3.org/2000/svg" class="{css}" role="img" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" aria-label="{escape(title)}">', f"<title>{escape(title)}</title>"]


def _axes(f: _Frame, parts: list[str], *, x_label: str, y_label: str) -> None:
    for t in _nice_ticks(f.y0, f.y1):
        y = f.y(t)
        parts.append(f'<line x1="{f.left}" y1="{y:.1f}" x2="{f.width - f.right}" y2="{y:.1f}" '
                     f'stroke="{COLOURS["grid"]}"/>')
        parts.append(f'<text x="{f.left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" {_FONT} '
                     f'fill="{COLOURS["muted"]}">{_fmt(t)}</text>')
    for t in _nice_ticks(f.x0, f.x1, 8):
        x = f.x(t)
        parts.append(f'<text x="{x:.1f}" y="{f.height - f.bottom + 15}" text-anchor="middle" font-size="11" '
                     f'{_FONT} fill="{COLOURS["muted"]}">{_fmt(t)}</text>')
    parts.append(f'<text x="{(f.left + f.width - f.right) / 2:.1f}" y="{f.height - 3}" text-anchor="middle" '
                 f'font-size="11" {_FONT} fill="{COLOURS["muted"]}">{escape(x_label)}</text>')
    parts.append(f'<text x="12" y="{(f.top + f.height - f.bottom) / 2:.1f}" font-size="11" {_FONT} '
                 f'fill="{COLOURS["muted"]}" text-anchor="middle" transform="rotate(-90 12 '
                 f'{(f.top + f.height - f.bottom) / 2:.1f})">{escape(y_label)}</text>')
    parts.append(f'<rect x="{f.left}" y="{f.top}" width="{f.width - f.left - f.right}" '
                 f'height="{f.height - f.top - f.bottom}" fill="none" stroke="{COLOURS["zone"]}"/>')


def _hline(f: _Frame, parts: list[str], value: float, label: str, colour: str, *, dash: str = "",
           width: float = 1.2) -> None:
    if not math.isfinite(value):
        return
    y = f.y(value)
    d = f' stroke-dasharray="{dash}"' if dash else ""
    parts.append(f'<line x1="{f.left}" y1="{y:.1f}" x2="{f.width - f.right}" y2="{y:.1f}" stroke="{colour}" '
                 f'stroke-width="{width}"{d}/>')
    parts.append(f'<text x="{f.width - f.right + 4}" y="{y + 4:.1f}" font-size="11" {_FONT} fill="{colour}">'
                 f"{escape(label)}</text>")


def _series(f: _Frame, parts: list[str], values: Sequence[float], flags: Mapping[int, Sequence[str]],
            labels: Sequence[str], unit: str, *, step_from: int = 1) -> None:
    pts = " ".join(f"{f.x(i + step_from):.1f},{f.y(v):.1f}" for i, v in enumerate(values))
    parts.append(f'<polyline points="{pts}" fill="none" stroke="{COLOURS["line"]}" stroke-width="1.3"/>')
    for i, v in enumerate(values):
        x, y = f.x(i + step_from), f.y(v)
        label = labels[i] if i < len(labels) else f"#{i + 1}"
        rules = flags.get(i, ())
        tip = f"{label}: {_fmt(v)}{(' ' + unit) if unit else ''}"
        if rules:
            tip += " — " + ", ".join(rules)
            parts.append(f'<g class="flagged"><title>{escape(tip)}</title>'
                         f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5.5" fill="none" stroke="{COLOURS["bad"]}" '
                         f'stroke-width="1.6"/><circle cx="{x:.1f}" cy="{y:.1f}" r="2.6" fill="{COLOURS["bad"]}"/></g>')
        else:
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.3" fill="{COLOURS["point"]}">'
                         f"<title>{escape(tip)}</title></circle>")


def control_chart_svg(values: Sequence[float], *, centre: float, sigma: float, flags: Mapping[int, Sequence[str]],
                      labels: Sequence[str], title: str, unit: str = "", baseline: int = 0,
                      spec: tuple[float | None, float | None] = (None, None), width: int = 720,
                      height: int = 260) -> str:
    """Individuals chart: values by lot, centre line, ±3σ limits (UCL/LCL), faint ±1σ and ±2σ zone
    lines, the phase I lots shaded, specification limits dotted, flagged points ringed."""
    n = len(values)
    lo_spec, hi_spec = spec
    ys = [*values, centre + 3 * sigma, centre - 3 * sigma]
    f = _frame(width, height, (0.5, n + 0.5), ys)
    parts = _open(width, height, title)
    if baseline:
        x0, x1 = f.x(0.5), f.x(min(baseline, n) + 0.5)
        parts.append(f'<rect x="{x0:.1f}" y="{f.top}" width="{x1 - x0:.1f}" height="{f.height - f.top - f.bottom}" '
                     f'fill="{COLOURS["baseline"]}"><title>Lots 1–{min(baseline, n)}: the limits were set on '
                     f'these (phase I)</title></rect>')
    _axes(f, parts, x_label="Lot (in order of manufacture)", y_label=unit or "value")
    for k in (1, 2):
        for sign in (1, -1):
            _hline(f, parts, centre + sign * k * sigma, "", COLOURS["zone"], dash="2 3", width=0.8)
    _hline(f, parts, centre + 3 * sigma, f"UCL {_fmt(centre + 3 * sigma)}", COLOURS["limit"], dash="6 3")
    _hline(f, parts, centre - 3 * sigma, f"LCL {_fmt(centre - 3 * sigma)}", COLOURS["limit"], dash="6 3")
    _hline(f, parts, centre, f"x̄ {_fmt(centre)}", COLOURS["centre"])
    for limit, name in ((lo_spec, "LSL"), (hi_spec, "USL")):
        if limit is not None and f.y0 <= limit <= f.y1:
            _hline(f, parts, limit, f"{name} {_fmt(limit)}", COLOURS["warn"], dash="1 3", width=1.5)
    _series(f, parts, values, flags, labels, unit)
    parts.append("</svg>")
    return "".join(parts)


def ewma_chart_svg(z: Sequence[float], *, ucl: Sequence[float], lcl: Sequence[float], centre: float,
                   flags: Sequence[int], labels: Sequence[str], title: str, unit: str = "", width: int = 720,
                   height: int = 200) -> str:
    """EWMA statistic with its exact (widening, then steady) limits."""
    n = len(z)
    f = _frame(width, height, (0.5, n + 0.5), [*z, *ucl, *lcl])
    parts = _open(width, height, title)
    _axes(f, parts, x_label="Lot", y_label=f"EWMA {unit}".strip())
    for limit in (ucl, lcl):
        pts = " ".join(f"{f.x(i + 1):.1f},{f.y(v):.1f}" for i, v in enumerate(limit))
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{COLOURS["limit"]}" stroke-dasharray="6 3"/>')
    if n:
        parts.append(f'<text x="{f.width - f.right + 4}" y="{f.y(ucl[-1]) + 4:.1f}" font-size="11" {_FONT} '
                     f'fill="{COLOURS["limit"]}">UCL {_fmt(ucl[-1])}</text>')
        parts.append(f'<text x="{f.width - f.right + 4}" y="{f.y(lcl[-1]) + 4:.1f}" font-size="11" {_FONT} '
                     f'fill="{COLOURS["limit"]}">LCL {_fmt(lcl[-1])}</text>')
    _hline(f, parts, centre, f"μ₀ {_fmt(centre)}", COLOURS["centre"])
    _series(f, parts, z, {i: ["EWMA outside its limits"] for i in flags}, labels, unit)
    parts.append("</svg>")
    return "".join(parts)


def cusum_chart_svg(upper: Sequence[float], lower: Sequence[float], *, h: float, flags: Sequence[int],
                    labels: Sequence[str], title: str, width: int = 720, height: int = 200) -> str:
    """Tabular CUSUM: C⁺ above zero, C⁻ drawn below zero, the decision interval ±H."""
    n = len(upper)
    neg = [-v for v in lower]
    f = _frame(width, height, (0.5, n + 0.5), [*upper, *neg, h, -h])
    parts = _open(width, height, title)
    _axes(f, parts, x_label="Lot", y_label="C⁺ / −C⁻")
    _hline(f, parts, h, f"H {_fmt(h)}", COLOURS["limit"], dash="6 3")
    _hline(f, parts, -h, f"−H {_fmt(-h)}", COLOURS["limit"], dash="6 3")
    _hline(f, parts, 0.0, "0", COLOURS["centre"])
    marks = {i: ["CUSUM beyond H"] for i in flags}
    _series(f, parts, upper, {i: r for i, r in marks.items() if upper[i] > h}, labels, "")
    _series(f, parts, neg, {i: r for i, r in marks.items() if lower[i] > h}, labels, "")
    parts.append("</svg>")
    return "".join(parts)


def histogram_svg(values: Sequence[float], *, lsl: float | None, usl: float | None, mean: float, sigma: float,
                  title: str, unit: str = "", bins: int = 14, width: int = 420, height: int = 220) -> str:
    """Capability histogram: the lots' values, the normal curve of mean and overall σ, and the
    specification limits."""
    finite = [v for v in values if math.isfinite(v)]
    parts = _open(width, height, title)
    if not finite:
        parts.append(f'<text x="10" y="20" font-size="12" {_FONT}>No values.</text></svg>')
        return "".join(parts)
    lo = min([*finite, *(x for x in (lsl, usl) if x is not None)])
    hi = max([*finite, *(x for x in (lsl, usl) if x is not None)])
    if math.isfinite(sigma) and sigma > 0:
        lo, hi = min(lo, mean - 3.5 * sigma), max(hi, mean + 3.5 * sigma)
    if hi == lo:
        lo, hi = lo - 1, hi + 1
    step = (hi - lo) / bins
    counts = [0] * bins
    for v in finite:
        counts[min(bins - 1, int((v - lo) / step))] += 1
    peak = max(counts)
    density_peak = len(finite) * step / (sigma * math.sqrt(2 * math.pi)) if sigma > 0 else 0
    f = _Frame(width, height, 40, 16, 14, 30, lo, hi, 0, max(peak, density_peak) * 1.1 or 1)
    _axes(f, parts, x_label=unit or "value", y_label="lots")
    for i, c in enumerate(counts):
        x0, x1 = f.x(lo + i * step), f.x(lo + (i + 1) * step)
        parts.append(f'<rect x="{x0 + 0.5:.1f}" y="{f.y(c):.1f}" width="{max(x1 - x0 - 1, 1):.1f}" '
                     f'height="{f.y(0) - f.y(c):.1f}" fill="{COLOURS["bar"]}"><title>{_fmt(lo + i * step)} to '
                     f'{_fmt(lo + (i + 1) * step)}: {c} lot(s)</title></rect>')
    if sigma > 0:
        pts = []
        for k in range(121):
            v = lo + (hi - lo) * k / 120
            dens = len(finite) * step * math.exp(-0.5 * ((v - mean) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
            pts.append(f"{f.x(v):.1f},{f.y(dens):.1f}")
        parts.append(f'<polyline points="{" ".join(pts)}" fill="none" stroke="{COLOURS["line"]}" stroke-width="1.5"/>')
    for limit, name in ((lsl, "LSL"), (usl, "USL")):
        if limit is not None:
            x = f.x(limit)
            parts.append(f'<line x1="{x:.1f}" y1="{f.top}" x2="{x:.1f}" y2="{f.height - f.bottom}" '
                         f'stroke="{COLOURS["bad"]}" stroke-width="1.5" stroke-dasharray="5 3"/>')
            parts.append(f'<text x="{x + 3:.1f}" y="{f.top + 11}" font-size="11" {_FONT} fill="{COLOURS["bad"]}">'
                         f"{name} {_fmt(limit)}</text>")
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class Interval:
    """One row of an interval plot: a site's difference to the network with its 90 % interval."""

    label: str
    estimate: float
    low: float
    high: float
    equivalent: bool


def interval_plot_svg(rows: Sequence[Interval], *, margin: float, title: str, unit: str = "",
                      width: int = 520, row_height: int = 24) -> str:
    """Site versus network: each site's difference of means with its 90 % interval, the
    equivalence margin ±δ shaded; intervals inside are green squares, others red diamonds."""
    height = 34 + row_height * max(len(rows), 1) + 28
    values = [v for r in rows for v in (r.low, r.high) if math.isfinite(v)]
    m = margin if math.isfinite(margin) else 0.0
    span = max([abs(v) for v in values] + [m * 1.25, 1e-9])
    f = _Frame(width, height, 60, 70, 24, 30, -span * 1.08, span * 1.08, 0, 1)
    parts = _open(width, height, title)
    band0, band1 = f.x(-m), f.x(m)
    parts.append(f'<rect x="{band0:.1f}" y="{f.top}" width="{band1 - band0:.1f}" height="{height - f.top - f.bottom}" '
                 f'fill="{COLOURS["band"]}"><title>Equivalence margin ±{_fmt(m)} {escape(unit)}</title></rect>')
    for t in _nice_ticks(f.x0, f.x1, 6):
        x = f.x(t)
        parts.append(f'<line x1="{x:.1f}" y1="{f.top}" x2="{x:.1f}" y2="{height - f.bottom}" '
                     f'stroke="{COLOURS["grid"]}"/>')
        parts.append(f'<text x="{x:.1f}" y="{height - f.bottom + 14}" text-anchor="middle" font-size="11" {_FONT} '
                     f'fill="{COLOURS["muted"]}">{_fmt(t)}</text>')
    parts.append(f'<line x1="{f.x(0):.1f}" y1="{f.top}" x2="{f.x(0):.1f}" y2="{height - f.bottom}" '
                 f'stroke="{COLOURS["centre"]}"/>')
    for x, text in ((band0, f"−δ {_fmt(-m)}"), (band1, f"+δ {_fmt(m)}")):
        parts.append(f'<text x="{x:.1f}" y="{f.top - 6}" text-anchor="middle" font-size="11" {_FONT} '
                     f'fill="{COLOURS["centre"]}">{escape(text)}</text>')
    shown_unit = f" ({escape(unit)})" if unit else ""
    parts.append(f'<text x="{(f.left + width - f.right) / 2:.1f}" y="{height - 3}" text-anchor="middle" '
                 f'font-size="11" {_FONT} fill="{COLOURS["muted"]}">Difference to the rest of the network'
                 f"{shown_unit}, 90 % CI</text>")
    for i, r in enumerate(rows):
        y = f.top + 8 + i * row_height + row_height / 2
        parts.append(f'<text x="{f.left - 8}" y="{y + 4:.1f}" text-anchor="end" font-size="12" {_FONT} '
                     f'fill="{COLOURS["text"]}">{escape(r.label)}</text>')
        if not (math.isfinite(r.low) and math.isfinite(r.high)):
            parts.append(f'<text x="{f.x(0) + 6:.1f}" y="{y + 4:.1f}" font-size="11" {_FONT} '
                         f'fill="{COLOURS["muted"]}">too few lots</text>')
            continue
        colour = COLOURS["centre"] if r.equivalent else COLOURS["bad"]
        parts.append(f'<g><title>{escape(r.label)}: {_fmt(r.estimate)} ({_fmt(r.low)} to {_fmt(r.high)}) — '
                     f'{"equivalent" if r.equivalent else "equivalence not shown"}</title>'
                     f'<line x1="{f.x(r.low):.1f}" y1="{y:.1f}" x2="{f.x(r.high):.1f}" y2="{y:.1f}" stroke="{colour}" '
                     f'stroke-width="2.2"/>')
        cx = f.x(r.estimate)
        if r.equivalent:
            parts.append(f'<rect x="{cx - 4:.1f}" y="{y - 4:.1f}" width="8" height="8" fill="{colour}"/></g>')
        else:
            parts.append(f'<path d="M{cx:.1f} {y - 6:.1f} L{cx + 6:.1f} {y:.1f} L{cx:.1f} {y + 6:.1f} '
                         f'L{cx - 6:.1f} {y:.1f} z" fill="{colour}"/></g>')
        parts.append(f'<text x="{width - f.right + 6}" y="{y + 4:.1f}" font-size="11" {_FONT} fill="{colour}">'
                     f'{"equivalent" if r.equivalent else "not shown"}</text>')
    parts.append("</svg>")
    return "".join(parts)


def t2_chart_svg(values: Sequence[float], *, ucl: float, labels: Sequence[str], title: str, width: int = 720,
                 height: int = 200) -> str:
    """Hotelling's T² per lot with its phase II upper limit; lots above it ringed."""
    n = len(values)
    f = _frame(width, height, (0.5, n + 0.5), [0.0, *values, ucl])
    parts = _open(width, height, title)
    _axes(f, parts, x_label="Lot", y_label="T²")
    _hline(f, parts, ucl, f"UCL {_fmt(ucl)}", COLOURS["limit"], dash="6 3")
    _series(f, parts, values, {i: ["T² above its limit"] for i, v in enumerate(values) if v > ucl}, labels, "")
    parts.append("</svg>")
    return "".join(parts)
