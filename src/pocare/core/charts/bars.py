"""Bars: horizontal bars with their values written beside them (counts by site, load against
capacity), and the bins and columns of a histogram."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pocare.core.charts.plot import Plot
from pocare.core.charts.svg import Drawing, colour, tag, text, tip


@dataclass(frozen=True)
class Bar:
    """One horizontal bar: its label, length, colour (a role such as ``ok``/``bad``, a palette name
    or ``#rrggbb``), the words written after it, and an optional outline drawn to ``outline``
    (a capacity, a target) around it."""

    label: str
    value: float
    fill: str = "info"
    shown: str = ""
    outline: float | None = None


def bars_svg(bars: Sequence[Bar], *, title: str, width: int = 520, bar_height: int = 20, gap: int = 6,
             heading: bool = False) -> str:
    """Horizontal bars, one a row, the label left and the words right of each, so the chart reads
    without colour; the title written above them if ``heading``. Lengths are to scale with the
    longest bar or outline."""
    label_width = max([len(b.label) for b in bars] + [4]) * 7 + 12
    plot = max(width - label_width - 70, 60)
    biggest = max([b.value for b in bars] + [b.outline or 0 for b in bars] + [1])
    top = 30 if heading else 6
    drawing = Drawing(width, top + len(bars) * (bar_height + gap) + 4, title)
    if heading:
        drawing.add(text(8, 16, title, fill="ink", font_size=12, font_weight=700))
    for i, bar in enumerate(bars):
        y = top + i * (bar_height + gap)
        length = round(plot * bar.value / biggest) if bar.value else 0
        end = length
        baseline = y + bar_height * 0.7
        drawing.add(text(label_width - 8, baseline, bar.label, fill="ink", font_size=12, text_anchor="end"))
        if bar.outline is not None:
            end = max(end, round(plot * bar.outline / biggest))
            drawing.add(tag("rect", x=label_width, y=y, width=round(plot * bar.outline / biggest), height=bar_height,
                            fill="none", stroke=colour("ink")))
        inset = 4 if bar.outline is not None else 0
        drawing.add(tag("rect", x=label_width, y=y + inset, width=max(length, 1), height=bar_height - 2 * inset,
                        rx=2, fill=colour(bar.fill)))
        drawing.add(text(label_width + end + 6, baseline, bar.shown or f"{bar.value:g}", fill="ink", font_size=12))
    return drawing.svg()


#: A "muted" bar is grey: the muted text colour is too dark for a bar that should recede.
_QUIET = {"muted": "grey"}


def count_words(value: int, unit: str) -> str:
    """``6 sites``, ``1 site``, or the bare number without a unit."""
    if not unit:
        return str(value)
    return f"{value} {unit.rstrip('s')}" if value == 1 else f"{value} {unit}"


def bar_chart_svg(rows: Sequence[tuple[str, int, str]], *, title: str, unit: str = "", width: int = 520,
                  bar_height: int = 20) -> str:
    """Counts as horizontal bars: one ``(label, count, colour)`` a bar, the count written beside it
    with its unit (``6 sites``, ``1 site``)."""
    bars = [Bar(label, value, _QUIET.get(fill, fill), count_words(value, unit)) for label, value, fill in rows]
    return bars_svg(bars, title=title, width=width, bar_height=bar_height)


def bin_counts(values: Sequence[float], lo: float, hi: float, bins: int) -> list[int]:
    """How many ``values`` fall in each of ``bins`` equal bins over ``[lo, hi]`` (the last one closed)."""
    width = (hi - lo) / bins or 1.0
    counts = [0] * bins
    for v in values:
        counts[max(0, min(bins - 1, int((v - lo) / width)))] += 1
    return counts


def columns(plot: Plot[float], lo: float, hi: float, counts: Sequence[int], fill: str,
            note: Callable[[float, float, int], str]) -> None:
    """The columns of a histogram over ``[lo, hi]``, each with ``note(start, end, count)`` as its tooltip."""
    step = (hi - lo) / max(len(counts), 1)
    for i, count in enumerate(counts):
        start, end = lo + i * step, lo + (i + 1) * step
        x0, x1 = plot.x(start), plot.x(end)
        plot.add(tag("rect", tip(note(start, end, count)), x=x0 + 0.5, y=plot.y(count), width=max(x1 - x0 - 1, 1.0),
                     height=plot.y(0) - plot.y(count), fill=colour(fill)))
