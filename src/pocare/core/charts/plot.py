"""The plot area of a chart and what is drawn on it: grid and tick labels, axis titles, bands and
shaded spans, limit lines with their labels, lines and paths, markers with tooltips, event marks on
a time axis, the time axis itself (the site's zone written out) and legends."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, NamedTuple, TypeVar

from pocare.core.charts.scales import (
    DAY,
    Linear,
    TimeScale,
    time_ticks,
    zone_abbreviations,
    zone_name,
)
from pocare.core.charts.svg import Drawing, colour, num, tag, text, tip

X = TypeVar("X")


class Margins(NamedTuple):
    """Space around the plot area, in pixels."""

    left: int
    top: int
    right: int
    bottom: int


@dataclass
class Plot(Generic[X]):
    """The plot area of ``drawing``: ``x`` maps a data value (a number or a datetime) and ``y`` a
    number to pixels; ``left``/``top``/``right``/``bottom`` are its edges in pixels."""

    drawing: Drawing
    x: Callable[[X], float]
    y: Linear
    left: float
    top: float
    right: float
    bottom: float

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.bottom - self.top

    @property
    def x_domain(self) -> tuple[float, float]:
        """The data range across (of a :func:`numeric_plot`)."""
        scale = self.x
        assert isinstance(scale, Linear), "x_domain is that of a numeric_plot"
        return scale.d0, scale.d1

    def add(self, *parts: str) -> None:
        self.drawing.add(*parts)

    def y_grid(self, ticks: Sequence[float], label: Callable[[float], str]) -> None:
        """A horizontal grid line and a label at the left for each tick."""
        for t in ticks:
            y = self.y(t)
            self.add(tag("line", x1=self.left, y1=y, x2=self.right, y2=y, stroke=colour("grid")),
                     text(self.left - 6, y + 4, label(t), text_anchor="end"))

    def x_labels(self, ticks: Sequence[X], label: Callable[[X], str], *, grid: bool = False) -> None:
        """A label under the plot for each tick, with a vertical grid line if ``grid``."""
        for t in ticks:
            x = self.x(t)
            if grid:
                self.add(tag("line", x1=x, y1=self.top, x2=x, y2=self.bottom, stroke=colour("grid")))
            self.add(text(x, self.bottom + 15, label(t), text_anchor="middle"))

    def titles(self, x_title: str = "", y_title: str = "") -> None:
        """The x axis title under the plot, the y title turned along the left edge."""
        if x_title:
            self.add(text((self.left + self.right) / 2, self.drawing.height - 3, x_title, text_anchor="middle"))
        if y_title:
            middle = (self.top + self.bottom) / 2
            self.add(text(12, middle, y_title, text_anchor="middle", transform=f"rotate(-90 12 {num(middle)})"))

    def border(self) -> None:
        self.add(tag("rect", x=self.left, y=self.top, width=self.width, height=self.height, fill="none",
                     stroke=colour("frame")))

    def hband(self, low: float | None, high: float | None, fill: str, *, cls: str | None = None,
              note: str = "") -> None:
        """A band between two values of y (``None``: the edge of the plot)."""
        top = self.y(high) if high is not None else self.top
        bottom = self.y(low) if low is not None else self.bottom
        self.add(tag("rect", tip(note) if note else None, class_=cls, x=self.left, y=top, width=self.width,
                     height=max(bottom - top, 0.0), fill=colour(fill)))

    def vband(self, start: X, end: X, fill: str, *, note: str = "", opacity: float | None = None,
              overhang: float = 0.0) -> None:
        """A span between two values of x, the plot's height (plus ``overhang`` above and below)."""
        x0, x1 = self.x(start), self.x(end)
        self.add(tag("rect", tip(note) if note else None, x=x0 - overhang, y=self.top - overhang,
                     width=max(x1 - x0, 0.0) + 2 * overhang, height=self.height + 2 * overhang, fill=colour(fill),
                     fill_opacity=opacity))

    def hline(self, value: float, stroke: str, *, label: str = "", dash: str | None = None, width: float = 1.2,
              cls: str | None = None, label_at: str = "outside") -> None:
        """A line across the plot at ``value``, its label right of the plot (``outside``) or inside
        its right end, ``above`` or ``below`` the line."""
        y = self.y(value)
        self.add(tag("line", class_=cls, x1=self.left, y1=y, x2=self.right, y2=y, stroke=colour(stroke),
                     stroke_width=width, stroke_dasharray=dash))
        if label and label_at == "outside":
            self.right_label(value, label, stroke)
        elif label:
            self.add(text(self.right - 4, y - 4 if label_at == "above" else y + 12, label, fill=stroke,
                          text_anchor="end"))

    def right_label(self, value: float, label: str, fill: str) -> None:
        """Words just right of the plot at the height of ``value`` (what a line there is)."""
        self.add(text(self.right + 4, self.y(value) + 4, label, fill=fill))

    def vline(self, value: X, stroke: str, *, label: str = "", dash: str | None = None, width: float = 1.5) -> None:
        """A line down the plot at ``value``, its label at the top right of it."""
        x = self.x(value)
        self.add(tag("line", x1=x, y1=self.top, x2=x, y2=self.bottom, stroke=colour(stroke), stroke_width=width,
                     stroke_dasharray=dash))
        if label:
            self.add(text(x + 3, self.top + 11, label, fill=stroke))

    def polyline(self, points: Sequence[tuple[X, float]], stroke: str, *, width: float = 1.3,
                 dash: str | None = None) -> None:
        coords = " ".join(f"{self.x(a):.1f},{self.y(b):.1f}" for a, b in points)
        self.add(tag("polyline", points=coords, fill="none", stroke=colour(stroke), stroke_width=width,
                     stroke_dasharray=dash))

    def path(self, d: str, stroke: str, *, width: float = 1.3, cls: str | None = None) -> None:
        """Draw path data from :meth:`path_d`."""
        self.add(tag("path", class_=cls, d=d, fill="none", stroke=colour(stroke), stroke_width=width,
                     stroke_linejoin="round"))

    def path_d(self, segments: Sequence[Sequence[tuple[X, float]]]) -> str:
        """Path data that moves (does not draw) to the start of each segment: no line across a gap."""
        return " ".join(f"{'L' if i else 'M'}{self.x(a):.1f} {self.y(b):.1f}"
                        for segment in segments for i, (a, b) in enumerate(segment))

    def outside(self, d: str, low: float | None, high: float | None, stroke: str, *, width: float = 2.2) -> None:
        """Draw the path ``d`` again in ``stroke`` where it lies above ``high`` or below ``low``."""
        clip_id = f"{self.drawing.uid}-out"
        rects = []
        if high is not None:
            rects.append(tag("rect", x=self.left, y=self.top - 10, width=self.width,
                             height=max(self.y(high) - self.top + 10, 0.0)))
        if low is not None:
            rects.append(tag("rect", x=self.left, y=self.y(low), width=self.width,
                             height=max(self.bottom - self.y(low) + 10, 0.0)))
        self.add(tag("clipPath", "".join(rects), id=clip_id),
                 tag("path", d=d, fill="none", stroke=colour(stroke), stroke_width=width,
                     clip_path=f"url(#{clip_id})"))

    def marker(self, at: X, value: float, shape: str, fill: str, *, note: str = "", cls: str | None = None,
               size: float = 2.3, stroke: str | None = None) -> None:
        """A marker of ``shape`` (see :func:`marker`) at a data point, with ``note`` as its tooltip."""
        self.add(marker(self.x(at), self.y(value), shape, fill, note=note, cls=cls, size=size, stroke=stroke))

    def event(self, at: X, label: str, stroke: str, *, note: str, cls: str, dashed: bool = False) -> None:
        """Something that happened at ``at`` (an alarm): a line down the plot, a pointer on top and
        its label, grouped so that the tooltip covers all three."""
        x = self.x(at)
        pointer = f"M{x - 5:.1f} {num(self.top - 1)} L{x + 5:.1f} {num(self.top - 1)} L{x:.1f} {num(self.top + 7)}z"
        self.add(tag("g", tip(note)
                     + tag("line", x1=x, y1=self.top, x2=x, y2=self.bottom, stroke=colour(stroke), stroke_width=1.2,
                           stroke_dasharray="3 3" if dashed else None)
                     + tag("path", d=pointer, fill=colour(stroke))
                     + text(x + 7, self.top + 10, label, fill=stroke), class_=cls))


def numeric_plot(drawing: Drawing, margins: Margins, x: tuple[float, float], y: tuple[float, float]) -> Plot[float]:
    """A plot area inside ``drawing`` with linear scales over the ``x`` and ``y`` domains."""
    left, top, right, bottom = margins.left, margins.top, drawing.width - margins.right, drawing.height - margins.bottom
    return Plot(drawing, Linear(x[0], x[1], left, right), Linear(y[0], y[1], bottom, top), left, top, right, bottom)


def time_plot(drawing: Drawing, margins: Margins, start: dt.datetime, end: dt.datetime,
              y: tuple[float, float]) -> Plot[dt.datetime]:
    """A plot area inside ``drawing`` with time from ``start`` to ``end`` across and a linear ``y``."""
    left, top, right, bottom = margins.left, margins.top, drawing.width - margins.right, drawing.height - margins.bottom
    return Plot(drawing, TimeScale(start, end, left, right), Linear(y[0], y[1], bottom, top), left, top, right, bottom)


def marker(x: float, y: float, shape: str, fill: str, *, note: str = "", cls: str | None = None, size: float = 2.3,
           stroke: str | None = None, opacity: float | None = None) -> str:
    """A marker at pixel ``x, y``: ``dot``, ``ring`` (a dot in a ring: a point that reads as flagged
    without colour), ``square``, ``diamond`` or ``triangle``; ``size`` is a dot's radius."""
    paint = colour(fill)
    inner = tip(note) if note else None
    edge = {"stroke": colour(stroke), "stroke_width": 1} if stroke else {}
    if shape == "ring":
        return tag("g", (inner or "") + tag("circle", cx=x, cy=y, r=size * 2.1, fill="none", stroke=paint,
                                            stroke_width=1.6) + tag("circle", cx=x, cy=y, r=size, fill=paint),
                   class_=cls)
    if shape == "dot":
        return tag("circle", inner, class_=cls, cx=x, cy=y, r=size, fill=paint, fill_opacity=opacity, **edge)
    if shape == "square":
        return tag("rect", inner, class_=cls, x=x - size, y=y - size, width=2 * size, height=2 * size, fill=paint,
                   fill_opacity=opacity, **edge)
    outline = {"diamond": ((0, -1.5), (1.5, 0), (0, 1.5), (-1.5, 0)),
               "triangle": ((0, -1.75), (1.5, 1.25), (-1.5, 1.25))}[shape]
    d = "M" + " L".join(f"{x + dx * size:.1f} {y + dy * size:.1f}" for dx, dy in outline) + " z"
    return tag("path", inner, class_=cls, d=d, fill=paint, fill_opacity=opacity, **edge)


def time_axis(plot: Plot[dt.datetime], tz: dt.tzinfo, *, spacing: int = 95,
              caption: str = "Local time at the site: {zone} ({abbreviations})") -> None:
    """Vertical grid lines at round local times of ``tz``, labelled ``HH:MM`` with the date under the
    first tick of each day (or ``DD Mon`` for steps of a day and more), and a line naming the zone
    and the abbreviations it uses over the axis (``Europe/Amsterdam (CET/CEST)``) in ``caption``.
    ``plot`` is a :func:`time_plot`."""
    scale = plot.x
    assert isinstance(scale, TimeScale), "time_axis draws on a time_plot"
    ticks, step = time_ticks(scale.t0, scale.t1, tz, max_ticks=max(2, int(plot.width) // spacing))
    previous_day = None
    for moment in ticks:
        x, local = plot.x(moment), moment.astimezone(tz)
        plot.add(tag("line", x1=x, y1=plot.top, x2=x, y2=plot.bottom, stroke=colour("grid")),
                 tag("line", x1=x, y1=plot.bottom, x2=x, y2=plot.bottom + 4, stroke=colour("muted")),
                 text(x, plot.bottom + 16, local.strftime("%d %b" if step >= DAY else "%H:%M"), text_anchor="middle"))
        if step < DAY and local.date() != previous_day:
            plot.add(text(x, plot.bottom + 29, local.strftime("%d %b"), text_anchor="middle", font_weight=600))
        previous_day = local.date()
    zones = zone_abbreviations(tz, (scale.t0, *ticks, scale.t1))
    words = caption.format(zone=zone_name(tz), abbreviations=zones)
    plot.add(text((plot.left + plot.right) / 2, plot.bottom + 44, words, text_anchor="middle"))


class LegendItem(NamedTuple):
    """One entry of a legend: a swatch of ``shape`` (``line``, ``band``, ``vline`` or a marker
    shape) in ``fill``, and its words."""

    shape: str
    fill: str
    label: str


def legend(items: Sequence[LegendItem], x: float, y: float, *, gap: float = 12) -> str:
    """The items in a row from ``x`` on the text baseline ``y``; each takes the room its words need
    (about 5.6 px a character at 11 px)."""
    parts = []
    for item in items:
        paint = colour(item.fill)
        if item.shape == "line":
            parts.append(tag("line", x1=x, y1=y - 4, x2=x + 18, y2=y - 4, stroke=paint, stroke_width=1.6))
            x += 22
        elif item.shape == "band":
            parts.append(tag("rect", x=x, y=y - 9, width=18, height=10, fill=colour("band"), stroke=paint,
                             stroke_dasharray="4 2"))
            x += 22
        elif item.shape == "vline":
            parts.append(tag("line", x1=x, y1=y - 10, x2=x, y2=y + 1, stroke=paint, stroke_width=1.2))
            x += 6
        else:
            parts.append(marker(x + 4, y - 4, item.shape, item.fill, size=3.5 if item.shape == "dot" else 4))
            x += 12
        parts.append(text(x, y, item.label))
        x += len(item.label) * 5.6 + gap
    return tag("g", "".join(parts), class_="legend")
