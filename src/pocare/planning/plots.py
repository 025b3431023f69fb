"""SVG drawings for the planning reports and pages, from the data alone (no tile server is reachable
from a GMP network), drawn with :mod:`pocare.core.charts`: a map of demand points and sites over
coastlines and borders (Natural Earth, shipped: :mod:`pocare.planning.basemap`) in an
equirectangular projection scaled by the cosine of the mean latitude, histograms, load-versus-capacity
bars and line series. No Django import (a library module)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from pocare.core.charts import (
    Bar,
    Drawing,
    LegendItem,
    Margins,
    bars_svg,
    bin_counts,
    colour,
    columns,
    fmt_number,
    legend,
    marker,
    nice_range,
    nice_ticks,
    numeric_plot,
    tag,
    text,
)
from pocare.planning import basemap

W, H = 720, 420
_SERIES_COLOURS = ("blue", "red", "green", "purple")
_MAP_LEGEND = (LegendItem("dot", "ok", "≤ 1 h"), LegendItem("dot", "warn", "1–2 h"), LegendItem("dot", "bad", "> 2 h"),
               LegendItem("square", "blue", "existing site"), LegendItem("triangle", "purple", "chosen site"),
               LegendItem("dot", "grey", "city (area ∝ patients)"))


def _drawing(title: str, height: int = H) -> Drawing:
    """A white picture with the title written at its top left."""
    drawing = Drawing(W, height, title, background="white")
    drawing.add(text(20, 16, title, fill="ink", font_weight=700))
    return drawing


def _nothing(title: str, what: str) -> str:
    drawing = Drawing(W, 80, title, background="white")
    drawing.add(text(20, 30, f"{title}: {what}", fill="ink"))
    return drawing.svg()


def _travel_colour(minutes: Any) -> str:
    if minutes is None or (isinstance(minutes, float) and math.isnan(minutes)):
        return "grey"
    return "ok" if minutes <= 60 else "warn" if minutes <= 120 else "bad"


class _Projection:
    """Latitude and longitude to pixels: longitudes shrunk by the cosine of the mean latitude, one
    scale both ways, north up, fitted inside the picture's margins (and back, for the map's window)."""

    def __init__(self, every: Sequence[Mapping[str, Any]]) -> None:
        lats = [float(p["latitude"]) for p in every]
        lons = [float(p["longitude"]) for p in every]
        self.k = math.cos(math.radians(sum(lats) / len(lats)))
        x0, x1, self.y0, y1 = min(lons) * self.k, max(lons) * self.k, min(lats), max(lats)
        self.scale = (W - 40) / max(x1 - x0, (y1 - self.y0) * (W - 40) / (H - 60), 1e-6)
        self.x0 = x0

    def lonlat(self, lon: float, lat: float) -> tuple[float, float]:
        return 20 + (lon * self.k - self.x0) * self.scale, H - 30 - (lat - self.y0) * self.scale

    def __call__(self, p: Mapping[str, Any]) -> tuple[float, float]:
        return self.lonlat(float(p["longitude"]), float(p["latitude"]))

    def window(self) -> basemap.Box:
        """The longitudes and latitudes the whole picture shows."""
        west, east = self.x0 / self.k - 20 / (self.scale * self.k), (self.x0 + (W - 20) / self.scale) / self.k
        south, north = self.y0 - 30 / self.scale, self.y0 + (H - 30) / self.scale
        return basemap.Box(west, south, east, north)


def _basemap(drawing: Drawing, xy: _Projection) -> None:
    """Coastlines and borders (Natural Earth), clipped to the map area under the title."""
    box, clip_id = xy.window(), f"{drawing.uid}-map"
    drawing.add(tag("clipPath", tag("rect", x=0, y=24, width=W, height=H - 48), id=clip_id))
    for kind, paint, dash in (("coastline", "grey", None), ("border", "frame", "3 2")):
        d = basemap.path_d(kind, box, xy.lonlat)
        if d:
            drawing.add(tag("path", class_=f"map-{kind}", d=d, fill="none", stroke=colour(paint), stroke_width=0.8,
                            stroke_dasharray=dash, stroke_linejoin="round", clip_path=f"url(#{clip_id})"))


def network_map(points: Sequence[Mapping[str, Any]], chosen: Sequence[Mapping[str, Any]],
                existing: Sequence[Mapping[str, Any]] = (), *, title: str = "Demand and sites") -> str:
    """Coastlines and borders (Natural Earth 1:50m, offline), demand points as dots (area ∝ patients,
    colour by travel minutes to the nearest chosen site), existing sites as squares, chosen new
    sites as triangles. The map fits the demand and the sites in the region; sites outside it
    (``in_region`` false) are drawn only where they fall inside that window."""
    every = [*points, *(s for s in chosen if s.get("in_region", True))] or [*chosen, *existing]
    if not every:
        return _nothing(title, "nothing to draw")
    xy, drawing = _Projection(every), _drawing(title)
    _basemap(drawing, xy)
    seen = xy.window()
    existing = [s for s in existing if seen.holds(float(s["longitude"]), float(s["latitude"]))]
    chosen = [s for s in chosen if seen.holds(float(s["longitude"]), float(s["latitude"]))]
    top = max((float(p.get("patients", 0)) for p in points), default=1.0) or 1.0
    for p in sorted(points, key=lambda q: -float(q.get("patients", 0))):
        patients = float(p.get("patients", 0))
        note = f"{p.get('name', '')}: {patients:.1f} patients/yr, {p.get('minutes')} min"
        drawing.add(marker(*xy(p), "dot", _travel_colour(p.get("minutes")), note=note, opacity=0.55,
                           size=1.2 + 6 * math.sqrt(patients / top)))
    for s in existing:
        drawing.add(marker(*xy(s), "square", "blue", note=f"existing: {s.get('name', '')}", size=5, stroke="#000"))
    for s in (s for s in chosen if not s.get("existing")):
        drawing.add(marker(*xy(s), "triangle", "purple", note=f"chosen: {s.get('name', '')}", size=4, stroke="#000"))
    drawing.add(legend(_MAP_LEGEND, 20, H - 6))
    drawing.add(text(W - 20, 16, f"coastlines and borders: {basemap.SOURCE}", text_anchor="end"))
    return drawing.svg()


def histogram(values: Sequence[float], *, title: str, unit: str = "days", bins: int = 30) -> str:
    if not values:
        return _nothing(title, "no values")
    lo, hi = min(values), max(values)
    counts = bin_counts(values, lo, hi, bins)
    drawing = _drawing(title, 280)
    drawing.add(text(20, 34, f"n = {len(values)}, max bin {max(counts)}", fill="ink"))
    low, high, _ = nice_range(0, max(counts))
    plot = numeric_plot(drawing, Margins(50, 52, 30, 40), (lo, hi if hi > lo else lo + 1), (low, high))
    plot.y_grid(nice_ticks(low, high), lambda v: fmt_number(v, decimals=0))
    columns(plot, lo, hi, counts, "blue", lambda a, b, c: f"{a:.1f}–{b:.1f} {unit}: {c}")
    plot.x_labels(nice_ticks(*plot.x_domain, 8), lambda v: fmt_number(v, digits=4))
    plot.titles(unit)
    return drawing.svg()


def load_bars(rows: Sequence[Mapping[str, Any]], *, title: str, label: str = "name") -> str:
    """Expected load (patients/yr) against capacity per site: the load filled (red when over the
    capacity), the capacity outlined."""
    if not rows:
        return _nothing(title, "no sites")
    bars = [Bar(str(r[label])[:26], float(r["load"]), "bad" if float(r["load"]) > float(r["capacity"]) else "ok",
                f"{float(r['load']):.0f} / {float(r['capacity']):.0f}", outline=float(r["capacity"])) for r in rows]
    return bars_svg(bars, title=title, width=W, bar_height=14, gap=2, heading=True)


def lines(series: Mapping[str, Sequence[float]], *, title: str, x_label: str = "week") -> str:
    """One line per named series (e.g. total queue length per week, baseline vs scenario)."""
    every = [v for s in series.values() for v in s]
    if not every:
        return _nothing(title, "no values")
    n = max(len(s) for s in series.values())
    low, high, _ = nice_range(min(0.0, *every), max(every) or 1.0)
    drawing = _drawing(title, 280)
    plot = numeric_plot(drawing, Margins(50, 44, 30, 40), (0, max(1, n - 1)), (low, high))
    plot.y_grid(nice_ticks(low, high), lambda v: fmt_number(v, digits=4))
    plot.x_labels(nice_ticks(0, max(1, n - 1), 8), lambda v: fmt_number(v, decimals=0))
    plot.titles(x_label)
    items = []
    for k, (name, s) in enumerate(series.items()):
        paint = _SERIES_COLOURS[k % len(_SERIES_COLOURS)]
        plot.polyline([(float(i), v) for i, v in enumerate(s)], paint, width=1.5)
        items.append(LegendItem("line", paint, name))
    drawing.add(legend(items, 50, 34))
    return drawing.svg()


def cost_per_patient(points: Sequence[tuple[int, float]], *, title: str, centralized: float | None,
                     anchors: Sequence[tuple[str, float, int | None]] = (), break_even: int | None = None) -> str:
    """The cost per patient (€) against patients a year: the site's curve, the centralized price as a
    dashed line, each published anchor as a dotted line (or a point where it states its volume), the
    break-even volume as a vertical line. Values above the chart's top are drawn at the top (the first
    volumes, where the capital and fixed costs fall on few patients)."""
    if not points:
        return _nothing(title, "no volumes")
    top = max([v for _, v, _ in anchors] + ([centralized] if centralized else []) + [points[-1][1]]) * 1.3
    low, high, _ = nice_range(0.0, top)
    drawing = _drawing(title, H)
    plot = numeric_plot(drawing, Margins(70, 56, 110, 44), (float(points[0][0]), float(max(points[-1][0],
                                                                                          points[0][0] + 1))),
                        (low, high))
    plot.y_grid(nice_ticks(low, high), lambda v: fmt_number(v, decimals=0))
    plot.x_labels(nice_ticks(*plot.x_domain, 8), lambda v: fmt_number(v, decimals=0))
    plot.titles("patients a year", "€ per patient")
    items = [LegendItem("line", "blue", "this site: cost per patient")]
    anchored: list[LegendItem] = []
    if centralized:
        plot.hline(centralized, "red", label=f"€{centralized:,.0f}", dash="6 4")
        items.append(LegendItem("line", "red", "centralized price"))
    for k, (label, value, at) in enumerate(anchors):
        paint = ("green", "purple", "grey")[k % 3]
        if at is None:
            plot.hline(value, paint, dash="2 3", width=1.0)
            anchored.append(LegendItem("line", paint, f"{label} €{value:,.0f}"))
        else:
            plot.marker(float(at), value, "diamond", paint, note=f"{label}: €{value:,.0f} at {at} a year", size=4.0)
            anchored.append(LegendItem("diamond", paint, f"{label} €{value:,.0f}"))
    plot.polyline([(float(n), min(v, high)) for n, v in points], "blue", width=1.8)
    if break_even is not None:
        plot.vline(float(break_even), "ink", label=f"break-even {break_even}", dash="3 3", width=1.0)
    drawing.add(legend(items, 70, 34))
    drawing.add(legend(anchored, 70, 48))
    return drawing.svg()
