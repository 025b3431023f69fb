"""Small inline SVG charts for pages and PDFs: no JavaScript, no library, readable when printed.

Pure Python (no Django import), so a chart can be drawn and tested on its own.
"""

from __future__ import annotations

from html import escape

PALETTE = {"ok": "#2f8f4e", "info": "#2c6fb3", "bad": "#c0392b", "muted": "#8795a1", "warn": "#c48a00"}


def bar_chart_svg(
    rows: list[tuple[str, int, str]], *, title: str, unit: str = "", width: int = 520, bar_height: int = 20
) -> str:
    """A horizontal bar chart: one ``(label, value, colour name)`` per bar, values written beside
    the bars so the chart reads without colour. Returns an ``<svg>`` element with a ``<title>``."""
    label_width = max([len(label) for label, _, _ in rows] + [4]) * 7 + 12
    value_space = 70
    plot = max(width - label_width - value_space, 60)
    top = 6
    gap = 6
    height = top + len(rows) * (bar_height + gap) + 4
    biggest = max([value for _, value, _ in rows] + [1])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    for i, (label, value, colour) in enumerate(rows):
        y = top + i * (bar_height + gap)
        length = round(plot * value / biggest) if value else 0
        fill = PALETTE.get(colour, colour if colour.startswith("#") else PALETTE["info"])
        text_y = y + bar_height * 0.7
        shown = f"{value} {unit}".strip() if unit and value != 1 else (f"{value} {unit.rstrip('s')}".strip()
                                                                         if unit else str(value))
        parts.append(
            f'<text x="{label_width - 8}" y="{text_y:.1f}" text-anchor="end" font-size="12" '
            f'font-family="sans-serif" fill="#1c2733">{escape(label)}</text>'
        )
        parts.append(
            f'<rect x="{label_width}" y="{y}" width="{max(length, 1)}" height="{bar_height}" rx="2" fill="{fill}"/>'
        )
        parts.append(
            f'<text x="{label_width + length + 6}" y="{text_y:.1f}" font-size="12" font-family="sans-serif" '
            f'fill="#1c2733">{escape(shown)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


#: Where each lifecycle state is drawn: (column, row). Closed spans the first three columns below.
_LIFECYCLE_BOXES = {
    "proposed": (0, 0), "onboarding": (1, 0), "qualification": (2, 0), "active": (3, 0), "suspended": (3, 1),
}
_LABELS = {"proposed": "Proposed", "onboarding": "Onboarding", "qualification": "Qualification",
           "active": "Active", "suspended": "Suspended", "closed": "Closed"}


def lifecycle_svg(current: str, reachable: frozenset[str] | set[str]) -> str:
    """The site lifecycle as a diagram: the current state filled, the states it may move to next
    outlined in blue, every allowed move drawn as an arrow (proposed → onboarding → qualification
    → active ⇄ suspended; qualification back to onboarding; any state but closed → closed)."""
    w, h, gx, top, row2 = 132, 38, 44, 34, 118
    width = 4 * w + 3 * gx + 16

    def box(col: int, row: int) -> tuple[int, int]:
        return 8 + col * (w + gx), top if row == 0 else row2

    def node(name: str, x: int, y: int, bw: int) -> str:
        is_current, is_next = name == current, name in reachable
        fill = "#0d5f78" if is_current else ("#e2edfa" if is_next else "#f4f6f8")
        stroke = "#0d5f78" if is_current else ("#2c6fb3" if is_next else "#b8c2cc")
        colour = "#ffffff" if is_current else "#1c2733"
        dash = ' stroke-dasharray="5 3"' if is_next and not is_current else ""
        label = _LABELS[name] + (" (now)" if is_current else "")
        return (f'<g class="state{" current" if is_current else ""}"><rect x="{x}" y="{y}" width="{bw}" height="{h}" '
                f'rx="6" fill="{fill}" stroke="{stroke}" stroke-width="{2 if is_current or is_next else 1}"{dash}/>'
                f'<text x="{x + bw / 2}" y="{y + h / 2 + 4.5}" text-anchor="middle" font-size="13" '
                f'font-family="sans-serif" font-weight="{700 if is_current else 500}" fill="{colour}">'
                f"{escape(label)}</text></g>")

    def arrow(x1: float, y1: float, x2: float, y2: float, *, both: bool = False) -> str:
        start = ' marker-start="url(#lc-arrow-back)"' if both else ""
        return (f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#5b6775" stroke-width="1.4" '
                f'marker-end="url(#lc-arrow)"{start}/>')

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="lifecycle" role="img" width="{width}" '
        f'height="{row2 + h + 8}" viewBox="0 0 {width} {row2 + h + 8}" '
        f'aria-label="Site lifecycle; current state {escape(_LABELS.get(current, current))}">',
        f"<title>Site lifecycle: now {escape(_LABELS.get(current, current))}</title>",
        '<defs><marker id="lc-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#5b6775"/></marker>'
        '<marker id="lc-arrow-back" viewBox="0 0 10 10" refX="1" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto"><path d="M10,0 L0,5 L10,10 z" fill="#5b6775"/></marker></defs>',
    ]
    # forward moves along the top row
    for col in range(3):
        x, y = box(col, 0)
        parts.append(arrow(x + w + 2, y + h / 2, x + w + gx - 2, y + h / 2))
    # qualification back to onboarding: an arc above the row
    qx, qy = box(2, 0)
    ox, _ = box(1, 0)
    parts.append(f'<path d="M{qx + w / 2} {qy - 2} C{qx + w / 2} {qy - 26}, {ox + w / 2} {qy - 26}, {ox + w / 2} '
                 f'{qy - 3}" fill="none" stroke="#5b6775" stroke-width="1.4" marker-end="url(#lc-arrow)"/>')
    # active ⇄ suspended
    ax, ay = box(3, 0)
    parts.append(arrow(ax + w / 2, ay + h + 3, ax + w / 2, row2 - 3, both=True))
    # into closed: from the first three states, from suspended and from active
    closed_x, closed_w = 8, 3 * w + 2 * gx
    for col in range(3):
        x, y = box(col, 0)
        parts.append(arrow(x + w / 2, y + h + 2, x + w / 2, row2 - 3))
    sx, sy = box(3, 1)
    parts.append(arrow(sx - 2, sy + h / 2, closed_x + closed_w + 3, sy + h / 2))
    parts.append(arrow(ax + 10, ay + h + 2, closed_x + closed_w + 3, row2 + 6))
    for name, (col, row) in _LIFECYCLE_BOXES.items():
        x, y = box(col, row)
        parts.append(node(name, x, y, w))
    parts.append(node("closed", closed_x, row2, closed_w))
    parts.append("</svg>")
    return "".join(parts)
