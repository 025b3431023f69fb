"""SVG drawings for the planning reports and pages, from the data alone (no tile server is reachable
from a GMP network): a map of demand points and sites in an equirectangular projection scaled by the
cosine of the mean latitude, histograms, load-versus-capacity bars and line series.
No Django import (a library module)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

W, H = 720, 420


def _frame(body: list[str], title: str, width: int = W, height: int = H) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" role="img" '
            f'aria-label="{escape(title)}" style="max-width:{width}px;font:11px sans-serif">'
            f'<title>{escape(title)}</title><rect width="{width}" height="{height}" fill="#fff"/>'
            + "".join(body) + "</svg>")


def network_map(points: Sequence[Mapping[str, Any]], chosen: Sequence[Mapping[str, Any]],
                existing: Sequence[Mapping[str, Any]] = (), *, title: str = "Demand and sites") -> str:
    """Demand points as dots (area ∝ patients, colour by travel minutes to the nearest chosen site),
    existing sites as squares, chosen new sites as triangles."""
    every = list(points) + list(chosen) + list(existing)
    if not every:
        return _frame([f'<text x="20" y="30">{escape(title)}: nothing to draw</text>'], title)
    lats = [float(p["latitude"]) for p in every]
    lons = [float(p["longitude"]) for p in every]
    k = math.cos(math.radians(sum(lats) / len(lats)))
    x0, x1 = min(lons) * k, max(lons) * k
    y0, y1 = min(lats), max(lats)
    span = max(x1 - x0, (y1 - y0) * (W - 40) / (H - 60), 1e-6)
    scale = (W - 40) / span

    def xy(lat: float, lon: float) -> tuple[float, float]:
        return 20 + (lon * k - x0) * scale, H - 20 - (lat - y0) * scale

    body = [f'<text x="20" y="16" font-weight="bold">{escape(title)}</text>']
    top = max((float(p.get("patients", 0)) for p in points), default=1.0) or 1.0
    for p in sorted(points, key=lambda q: -float(q.get("patients", 0))):
        x, y = xy(float(p["latitude"]), float(p["longitude"]))
        minutes = p.get("minutes")
        colour = ("#999" if minutes is None or (isinstance(minutes, float) and math.isnan(minutes)) else
                  "#2b8a3e" if minutes <= 60 else "#e8a317" if minutes <= 120 else "#c92a2a")
        r = 1.2 + 6 * math.sqrt(float(p.get("patients", 0)) / top)
        body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" fill="{colour}" fill-opacity="0.55">'
                    f'<title>{escape(str(p.get("name", "")))}: {float(p.get("patients", 0)):.1f} patients/yr, '
                    f'{minutes} min</title></circle>')
    for s in existing:
        x, y = xy(float(s["latitude"]), float(s["longitude"]))
        body.append(f'<rect x="{x - 5:.1f}" y="{y - 5:.1f}" width="10" height="10" fill="#1c7ed6" stroke="#000">'
                    f'<title>existing: {escape(str(s.get("name", "")))}</title></rect>')
    for s in chosen:
        if s.get("existing"):
            continue
        x, y = xy(float(s["latitude"]), float(s["longitude"]))
        body.append(f'<path d="M{x:.1f},{y - 7:.1f} L{x + 6:.1f},{y + 5:.1f} L{x - 6:.1f},{y + 5:.1f} Z" '
                    f'fill="#7048e8" stroke="#000"><title>chosen: {escape(str(s.get("name", "")))}</title></path>')
    legend = [("#2b8a3e", "≤ 1 h"), ("#e8a317", "1–2 h"), ("#c92a2a", "> 2 h")]
    for i, (colour, text) in enumerate(legend):
        body.append(f'<circle cx="{W - 150 + i * 48}" cy="12" r="4" fill="{colour}"/>'
                    f'<text x="{W - 143 + i * 48}" y="16">{text}</text>')
    body.append(f'<text x="20" y="{H - 4}">■ existing site  ▲ chosen site  ● city (area ∝ patients)</text>')
    return _frame(body, title)


def histogram(values: Sequence[float], *, title: str, unit: str = "days", bins: int = 30) -> str:
    if not values:
        return _frame([f'<text x="20" y="30">{escape(title)}: no values</text>'], title, height=80)
    lo, hi = min(values), max(values)
    width = (hi - lo) / bins or 1.0
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, int((v - lo) / width))] += 1
    top = max(counts)
    h = 260
    bw = (W - 80) / bins
    body = [f'<text x="20" y="16" font-weight="bold">{escape(title)}</text>']
    for i, c in enumerate(counts):
        bh = (h - 60) * c / top
        body.append(f'<rect x="{50 + i * bw:.1f}" y="{h - 30 - bh:.1f}" width="{bw - 1:.1f}" height="{bh:.1f}" '
                    f'fill="#4c6ef5"><title>{lo + i * width:.1f}–{lo + (i + 1) * width:.1f} {unit}: {c}</title></rect>')
    body.append(f'<text x="50" y="{h - 12}">{lo:.1f}</text><text x="{W - 60}" y="{h - 12}">{hi:.1f} {unit}</text>')
    body.append(f'<text x="20" y="40">n = {len(values)}, max bin {top}</text>')
    return _frame(body, title, height=h)


def load_bars(rows: Sequence[Mapping[str, Any]], *, title: str, label: str = "name") -> str:
    """Expected load (patients/yr) against capacity per site."""
    if not rows:
        return _frame([f'<text x="20" y="30">{escape(title)}: no sites</text>'], title, height=80)
    top = max(max(float(r["load"]), float(r["capacity"])) for r in rows) or 1.0
    rh = 16
    h = 40 + rh * len(rows)
    body = [f'<text x="20" y="16" font-weight="bold">{escape(title)}</text>']
    for i, r in enumerate(rows):
        y = 30 + i * rh
        lw = (W - 260) * float(r["load"]) / top
        cw = (W - 260) * float(r["capacity"]) / top
        over = float(r["load"]) > float(r["capacity"])
        body.append(f'<text x="10" y="{y + 11}">{escape(str(r[label]))[:26]}</text>'
                    f'<rect x="180" y="{y + 2}" width="{cw:.1f}" height="{rh - 4}" fill="none" stroke="#333"/>'
                    f'<rect x="180" y="{y + 4}" width="{lw:.1f}" height="{rh - 8}" '
                    f'fill="{"#c92a2a" if over else "#2b8a3e"}"/>'
                    f'<text x="{190 + max(lw, cw):.1f}" y="{y + 11}">{float(r["load"]):.0f} / '
                    f'{float(r["capacity"]):.0f}</text>')
    return _frame(body, title, height=h)


def lines(series: Mapping[str, Sequence[float]], *, title: str, x_label: str = "week") -> str:
    """One line per named series (e.g. total queue length per week, baseline vs scenario)."""
    every = [v for s in series.values() for v in s]
    if not every:
        return _frame([f'<text x="20" y="30">{escape(title)}: no values</text>'], title, height=80)
    top = max(every) or 1.0
    n = max(len(s) for s in series.values())
    h = 280
    colours = ["#1c7ed6", "#c92a2a", "#2b8a3e", "#7048e8"]
    body = [f'<text x="20" y="16" font-weight="bold">{escape(title)}</text>']
    for k, (name, s) in enumerate(series.items()):
        pts = " ".join(f"{50 + (W - 80) * i / max(1, n - 1):.1f},{h - 30 - (h - 70) * v / top:.1f}"
                       for i, v in enumerate(s))
        colour = colours[k % len(colours)]
        body.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="1.5"/>'
                    f'<text x="{W - 200}" y="{34 + 14 * k}" fill="{colour}">{escape(name)}</text>')
    body.append(f'<text x="50" y="{h - 12}">0</text><text x="{W - 80}" y="{h - 12}">{n - 1} {x_label}s</text>'
                f'<text x="10" y="44">{top:.0f}</text>')
    return _frame(body, title, height=h)
