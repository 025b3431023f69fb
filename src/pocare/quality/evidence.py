"""What a quality signal's evidence says, in a sentence and a small chart, so that Control Site QA
reads "Groningen's CAR+ cells: 4 of the last 12 lots flagged …" rather than a dictionary
(REQUIREMENTS.md Q10-PQS monitoring; CMP-STAT). Pure (no Django import): the signals page passes
the site's name, the attribute's name and unit, and the evidence the comparability monitor stored.

Two kinds of evidence are written by the monitor (pocare.analytics.services):

* a control-chart rule: ``points`` (the flagged lots, batch and value), ``recent`` (the site's
  current lots, when stored), ``centre``, ``sigma``, ``ucl``, ``lcl``, ``rule_name``;
* an equivalence test: ``difference``, ``ci90``, ``margin`` (TOST), ``quality_range``, ``inside``,
  ``n``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pocare.core.charts import Drawing, Margins, fmt_number, numeric_plot, padded, with_unit

EQUIVALENCE_RULES = ("tost", "quality-range")
_SMALL = Margins(left=44, top=8, right=64, bottom=18)


def _n(value: Any, unit: str = "") -> str:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return "—"
    return with_unit(fmt_number(f, digits=4), unit) if math.isfinite(f) else "—"


def _possessive(name: str) -> str:
    return f"{name}'" if name.endswith("s") else f"{name}'s"


def _points(evidence: Mapping[str, Any], key: str) -> list[tuple[str, float]]:
    out = []
    for p in evidence.get(key) or []:
        if isinstance(p, Mapping) and isinstance(p.get("value"), (int, float)):
            out.append((str(p.get("batch", "")), float(p["value"])))
    return out


def sentence(*, site: str, attribute: str, unit: str, rule: str, rule_name: str,
             evidence: Mapping[str, Any]) -> str:
    """The evidence in words, for ``site``'s ``attribute`` and the ``rule`` that raised it."""
    who = f"{_possessive(site)} {attribute}"
    if rule == "tost":
        lo, hi = (evidence.get("ci90") or [None, None])[:2]
        return (f"{who}: the {evidence.get('n', '?')} current lots differ from the rest of the network by "
                f"{_n(evidence.get('difference'), unit)} (90 % CI {_n(lo)} to {_n(hi)}), which reaches past the "
                f"equivalence margin ±{_n(evidence.get('margin'), unit)}: not equivalent (TOST).")
    if rule == "quality-range":
        lo, hi = (evidence.get("quality_range") or [None, None])[:2]
        return (f"{who}: {evidence.get('inside', '?')} of the {evidence.get('n', '?')} current lots inside the "
                f"network's quality range {_n(lo)} to {_n(hi, unit)} (90 % needed).")
    flagged = _points(evidence, "points")
    recent = _points(evidence, "recent")
    name = rule_name or rule
    if not flagged:
        return f"{who}: {name[:1].lower()}{name[1:]} ({rule})."
    shown = {b for b, _ in recent}
    among = (f"{sum(b in shown for b, _ in flagged)} of the last {len(recent)} lots flagged" if recent
             else f"{len(flagged)} lot{'s' if len(flagged) != 1 else ''} flagged")
    batch, value = flagged[-1]
    return (f"{who}: {among} — {name[:1].lower()}{name[1:]} ({rule}); latest {batch} at {_n(value, unit)} "
            f"against the centre {_n(evidence.get('centre'), unit)} (limits {_n(evidence.get('lcl'))} to "
            f"{_n(evidence.get('ucl'), unit)}).")


def _finite(*values: Any) -> list[float]:
    return [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(float(v))]


def chart_svg(*, title: str, rule: str, evidence: Mapping[str, Any], width: int = 300, height: int = 96) -> str:
    """A small chart of the evidence: the lots with the centre and limits (flagged lots ringed in
    red), or the 90 % interval of the difference against the shaded margin. Empty when the evidence
    has nothing to draw."""
    if rule == "tost":
        return _interval_svg(title, evidence, width)
    if rule in EQUIVALENCE_RULES:
        return ""
    return _lots_svg(title, evidence, width, height)


def _lots_svg(title: str, evidence: Mapping[str, Any], width: int, height: int) -> str:
    flagged = _points(evidence, "points")
    lots = _points(evidence, "recent") or flagged
    if not lots:
        return ""
    marked = {b for b, _ in flagged}
    centre, ucl, lcl = (evidence.get(k) for k in ("centre", "ucl", "lcl"))
    lo, hi = padded(_finite(*(v for _, v in lots), centre, ucl, lcl), 0.08)
    drawing = Drawing(width, height, title, css="chart chart-small")
    plot = numeric_plot(drawing, _SMALL, (-0.5, len(lots) - 0.5), (lo, hi))
    plot.border()
    for value, name, dash in ((ucl, "UCL", "4 3"), (centre, "centre", None), (lcl, "LCL", "4 3")):
        for line in _finite(value):
            plot.hline(line, "grey" if name == "centre" else "red", label=f"{name} {_n(line)}", dash=dash, width=1)
    plot.polyline([(float(i), v) for i, (_, v) in enumerate(lots)], "blue", width=1.1)
    for i, (batch, value) in enumerate(lots):
        flag = batch in marked
        plot.marker(float(i), value, "ring" if flag else "dot", "red" if flag else "blue",
                    note=f"{batch}: {_n(value)}{' (flagged)' if flag else ''}")
    return drawing.svg()


def _interval_svg(title: str, evidence: Mapping[str, Any], width: int) -> str:
    ci = [*list(evidence.get("ci90") or []), None, None]
    values = _finite(evidence.get("margin"), evidence.get("difference"), ci[0], ci[1])
    if len(values) < 4:
        return ""
    m, d, lo, hi = values
    x0, x1 = padded([-m, m, lo, hi], 0.1)
    drawing = Drawing(width, 40, title, css="chart chart-small")
    plot = numeric_plot(drawing, Margins(left=8, top=6, right=8, bottom=16), (x0, x1), (0.0, 1.0))
    plot.vband(-m, m, "band", note=f"equivalence margin ±{_n(m)}")
    plot.vline(0.0, "grey", width=1)
    plot.polyline([(lo, 0.5), (hi, 0.5)], "red", width=2.2)
    plot.marker(d, 0.5, "diamond", "red", note=f"difference {_n(d)}, 90 % CI {_n(lo)} to {_n(hi)}", size=4)
    plot.x_labels([-m, m], _n)
    return drawing.svg()
