"""The site lifecycle as a diagram, drawn with :mod:`pocare.core.charts` (inline SVG, no
JavaScript, readable when printed). Bar charts of counts are ``pocare.core.charts.bar_chart_svg``.

Pure Python (no Django import), so the diagram can be drawn and tested on its own.
"""

from __future__ import annotations

from pocare.core.charts import Drawing, colour, tag, text

#: Where each lifecycle state is drawn: (column, row). Closed spans the first three columns below.
_LIFECYCLE_BOXES = {
    "proposed": (0, 0), "onboarding": (1, 0), "qualification": (2, 0), "active": (3, 0), "suspended": (3, 1),
}
_LABELS = {"proposed": "Proposed", "onboarding": "Onboarding", "qualification": "Qualification",
           "active": "Active", "suspended": "Suspended", "closed": "Closed"}
_W, _H, _GAP, _TOP, _ROW2 = 132, 38, 44, 34, 118
_ARROWS = ('<defs><marker id="lc-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
           'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#5b6775"/></marker>'
           '<marker id="lc-arrow-back" viewBox="0 0 10 10" refX="1" refY="5" markerWidth="7" markerHeight="7" '
           'orient="auto"><path d="M10,0 L0,5 L10,10 z" fill="#5b6775"/></marker></defs>')


def _box(col: int, row: int) -> tuple[int, int]:
    return 8 + col * (_W + _GAP), _TOP if row == 0 else _ROW2


def _node(name: str, x: int, y: int, width: int, *, current: bool, reachable: bool) -> str:
    """A state: filled when current, outlined dashed in blue when it may come next."""
    fill, stroke = ("teal", "teal") if current else (("pale-blue", "blue") if reachable else ("shade", "frame"))
    label = _LABELS[name] + (" (now)" if current else "")
    rect = tag("rect", x=x, y=y, width=width, height=_H, rx=6, fill=colour(fill), stroke=colour(stroke),
               stroke_width=2 if current or reachable else 1,
               stroke_dasharray="5 3" if reachable and not current else None)
    words = text(x + width / 2, y + _H / 2 + 4.5, label, fill="white" if current else "ink", font_size=13,
                 text_anchor="middle", font_weight=700 if current else 500)
    return tag("g", rect + words, class_="state current" if current else "state")


def _arrow(x1: float, y1: float, x2: float, y2: float, *, both: bool = False) -> str:
    return tag("line", x1=x1, y1=y1, x2=x2, y2=y2, stroke=colour("muted"), stroke_width=1.4,
               marker_end="url(#lc-arrow)", marker_start="url(#lc-arrow-back)" if both else None)


def _moves() -> list[str]:
    """Every allowed move as an arrow: along the top row, qualification back to onboarding (an arc
    above), active ⇄ suspended, and into closed from every state but closed."""
    tops = [_box(col, 0) for col in range(4)]
    (ox, _), (qx, qy), (ax, ay), (sx, sy) = tops[1], tops[2], tops[3], _box(3, 1)
    closed_end = 8 + 3 * _W + 2 * _GAP + 3
    arc = (f"M{qx + _W / 2} {qy - 2} C{qx + _W / 2} {qy - 26}, {ox + _W / 2} {qy - 26}, {ox + _W / 2} {qy - 3}")
    return [
        *(_arrow(x + _W + 2, y + _H / 2, x + _W + _GAP - 2, y + _H / 2) for x, y in tops[:3]),
        tag("path", d=arc, fill="none", stroke=colour("muted"), stroke_width=1.4, marker_end="url(#lc-arrow)"),
        _arrow(ax + _W / 2, ay + _H + 3, ax + _W / 2, _ROW2 - 3, both=True),
        *(_arrow(x + _W / 2, y + _H + 2, x + _W / 2, _ROW2 - 3) for x, y in tops[:3]),
        _arrow(sx - 2, sy + _H / 2, closed_end, sy + _H / 2),
        _arrow(ax + 10, ay + _H + 2, closed_end, _ROW2 + 6),
    ]


def lifecycle_svg(current: str, reachable: frozenset[str] | set[str]) -> str:
    """The site lifecycle as a diagram: the current state filled, the states it may move to next
    outlined in blue, every allowed move drawn as an arrow (proposed → onboarding → qualification
    → active ⇄ suspended; qualification back to onboarding; any state but closed → closed)."""
    now = _LABELS.get(current, current)
    drawing = Drawing(4 * _W + 3 * _GAP + 16, _ROW2 + _H + 8, f"Site lifecycle: now {now}", css="lifecycle",
                      desc=f"Current state {now}; the states it may move to next are outlined.")
    drawing.add(_ARROWS, *_moves())
    for name, (col, row) in _LIFECYCLE_BOXES.items():
        drawing.add(_node(name, *_box(col, row), _W, current=name == current, reachable=name in reachable))
    drawing.add(_node("closed", 8, _ROW2, 3 * _W + 2 * _GAP, current=current == "closed",
                      reachable="closed" in reachable))
    return drawing.svg()
