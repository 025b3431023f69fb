"""What the comparability pages and the product quality review show of an assessment: figures as
plain values and the SVG charts. Pure (no Django import)."""

from __future__ import annotations

import hashlib
import json
import math
import pickle  # only to digest figures this process holds: nothing is ever unpickled
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from pocare.analytics import charts, multivariate
from pocare.analytics import comparability as cmp


def finite(value: Any) -> float | None:
    """A float, or None for NaN and infinities."""
    v = float(value)
    return v if math.isfinite(v) else None


def json_safe(value: Any) -> Any:
    """``value`` with tuples as lists and NaN/infinities as None, for a JSON field."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, float):
        return finite(value)
    return value


def cell_view(cell: cmp.SiteAssessment) -> dict[str, Any]:
    t, qr = cell.tost, cell.quality_range
    return {
        "site": cell.site, "status": cell.status, "status_label": cmp.STATUS_LABELS[cell.status],
        "reason": cell.reason, "n": cell.n,
        "current": int(cell.current_values.size),
        "alarms": [{"rule": h.rule, "name": h.name} for h in cell.alarms],
        "difference": finite(t.difference) if t is not None else None,
        "ci": (finite(t.ci_low), finite(t.ci_high)) if t is not None else None,
        "margin": finite(t.margin) if t is not None else None,
        "qr_share": finite(qr.share) if qr is not None else None,
        "cpk": finite(cell.capability.cpk) if cell.capability is not None else None,
    }


def chart_data(assessment: cmp.AttributeAssessment, site: str) -> dict[str, Any]:
    """The figures behind the charts of one site × attribute: lot values and batches, limits, EWMA,
    CUSUM, the rules that flagged points and the capability. The monitor stores them (JSON-safe)
    so that the site page draws its charts without reading a QC result."""
    cell = assessment.sites[site]
    out: dict[str, Any] = {"references": list(cell.series.references),
                           "values": [float(v) for v in cell.series.values]}
    if cell.chart is not None:
        ch = cell.chart
        refs = out["references"]
        flags: dict[int, list[str]] = {}
        for hit in cell.hits:
            if hit.rule in ("ewma", "cusum"):
                continue
            for i in hit.indices:
                flags.setdefault(int(i), []).append(hit.rule)
        out["flags"] = sorted(flags.items())
        out["limits"] = {"centre": float(ch.limits.centre), "sigma": float(ch.limits.sigma),
                         "ucl": float(ch.limits.ucl), "lcl": float(ch.limits.lcl),
                         "mr_bar": float(ch.limits.mr_bar), "baseline": ch.limits.baseline}
        out["ewma"] = {"z": [float(v) for v in ch.ewma.z], "ucl": [float(v) for v in ch.ewma.ucl],
                       "lcl": [float(v) for v in ch.ewma.lcl], "lam": ch.ewma.lam, "width": ch.ewma.width,
                       "flags": [int(i) for i in ch.ewma.flags.nonzero()[0]]}
        out["cusum"] = {"upper": [float(v) for v in ch.cusum.upper], "lower": [float(v) for v in ch.cusum.lower],
                        "h": float(ch.cusum.h), "k": ch.cusum.k,
                        "flags": [int(i) for i in (ch.cusum.upper_flags | ch.cusum.lower_flags).nonzero()[0]]}
        out["hits"] = [{"rule": h.rule, "name": h.name, "signals": h.signals, "recent": h.recent,
                        "points": [refs[i] for i in h.indices]} for h in cell.hits]
    if cell.capability is not None:
        c = cell.capability
        out["capability"] = {k: finite(getattr(c, k)) for k in ("cp", "cp_low", "cp_high", "cpk", "cpk_low", "cpk_high",
                                                            "pp", "ppk", "ppk_low", "ppk_high", "sigma_within",
                                                            "sigma_overall", "mean")}
    return out


def spec_view(spec: cmp.AttributeSpec) -> dict[str, Any]:
    """What the charts and their captions need of an attribute."""
    return {"id": spec.id, "name": spec.name, "unit": spec.unit, "lsl": spec.lsl, "usl": spec.usl}


#: Lots drawn on a site page's run charts (individuals, EWMA, CUSUM): the latest ones. The limits,
#: rules and capability are computed on every lot; a chart of 1,800 lots was 6 MB of SVG a site and
#: a second to draw at 11,030 batches (benchmarks/pages_at_scale.py); 100 lots are about a year of a
#: site's production. The histogram shows every lot.
CHART_LOTS = 100


def latest_lots(data: dict[str, Any], last: int) -> dict[str, Any]:
    """``data`` (:func:`chart_data`) cut to its latest ``last`` lots for the run charts, flags and
    phase-I shading moved with them; ``shown`` says which lots are drawn, of how many."""
    total = len(data["references"])
    start = max(0, total - last)
    if start == 0 or data.get("limits") is None:
        return data
    cut = dict(data, references=data["references"][start:], values=data["values"][start:],
               flags=[(int(i) - start, rules) for i, rules in data["flags"] if int(i) >= start],
               limits=dict(data["limits"], baseline=max(0, int(data["limits"]["baseline"]) - start)),
               shown={"first": start + 1, "last": total, "total": total})
    ewma, cusum = data["ewma"], data["cusum"]
    cut["ewma"] = dict(ewma, z=ewma["z"][start:], ucl=ewma["ucl"][start:], lcl=ewma["lcl"][start:],
                       flags=[int(i) - start for i in ewma["flags"] if int(i) >= start])
    cut["cusum"] = dict(cusum, upper=cusum["upper"][start:], lower=cusum["lower"][start:],
                        flags=[int(i) - start for i in cusum["flags"] if int(i) >= start])
    return cut


#: Charts drawn lately, by a digest of everything they are drawn from: a site's page draws the same
#: stored figures for every reader until the nightly run stores new ones (issue 15: drawing them was
#: half of the page). Per process, bounded; a different input is a different key, so nothing goes stale.
_DRAWN: OrderedDict[str, dict[str, Any]] = OrderedDict()
_DRAWN_MAX = 256
_DRAWN_LOCK = threading.Lock()


def draw_charts(spec: dict[str, Any], site: str, data: dict[str, Any], *, compact: bool = False,
                last: int | None = None) -> dict[str, Any]:
    """The SVG charts of one site × attribute from its figures (:func:`chart_data`, as computed or as
    stored), with the limits, rules and capability the page prints beside them. ``last``: draw only
    the latest lots on the run charts (:data:`CHART_LOTS` on the site page; the quality review draws
    its whole period). Drawn once per input in a process (:data:`_DRAWN`)."""
    try:  # pickle is C and ten times quicker than JSON here; the stored figures load in one order
        raw = pickle.dumps((spec, site, data, compact, last), protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError):
        raw = json.dumps([spec, site, data, compact, last], sort_keys=True, default=str).encode()
    key = hashlib.blake2b(raw, digest_size=20).hexdigest()
    with _DRAWN_LOCK:
        drawn = _DRAWN.get(key)
        if drawn is not None:
            _DRAWN.move_to_end(key)
    if drawn is None:
        drawn = _draw_charts(spec, site, data, compact=compact, last=last)
        with _DRAWN_LOCK:
            _DRAWN[key] = drawn
            while len(_DRAWN) > _DRAWN_MAX:
                _DRAWN.popitem(last=False)
    return dict(drawn)


def _draw_charts(spec: dict[str, Any], site: str, data: dict[str, Any], *, compact: bool,
                 last: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    width = 620 if compact else 720
    name, unit = spec["name"], spec["unit"]
    every_value = data.get("values", [])
    if last is not None:
        data = latest_lots(data, last)
        out["shown"] = data.get("shown")
    limits = data.get("limits")
    if limits is not None:
        refs, values = list(data["references"]), [float(v) for v in data["values"]]
        flags = {int(i): list(rules) for i, rules in data["flags"]}
        out["control"] = charts.control_chart_svg(
            values, centre=float(limits["centre"]), sigma=float(limits["sigma"]), flags=flags, labels=refs,
            title=f"{name} at {site}: individuals chart", unit=unit, baseline=limits["baseline"],
            spec=(spec["lsl"], spec["usl"]), width=width)
        if not compact:
            ewma, cusum = data["ewma"], data["cusum"]
            out["ewma"] = charts.ewma_chart_svg(
                [float(v) for v in ewma["z"]], ucl=[float(v) for v in ewma["ucl"]],
                lcl=[float(v) for v in ewma["lcl"]], centre=float(limits["centre"]), flags=list(ewma["flags"]),
                labels=refs, unit=unit, title=f"{name} at {site}: EWMA (λ = {ewma['lam']}, L = {ewma['width']})")
            out["cusum"] = charts.cusum_chart_svg(
                [float(v) for v in cusum["upper"]], [float(v) for v in cusum["lower"]], h=float(cusum["h"]),
                flags=list(cusum["flags"]), labels=refs,
                title=f"{name} at {site}: tabular CUSUM (k = {cusum['k']}σ, H = {float(cusum['h']):.3g})")
        out["limits"] = limits
        out["hits"] = data["hits"]
    capability = data.get("capability")
    if capability is not None:
        out["capability"] = capability
        out["histogram"] = charts.histogram_svg([float(v) for v in every_value], lsl=spec["lsl"], usl=spec["usl"],
                                                mean=float(capability["mean"]),
                                                sigma=float(capability["sigma_overall"]),
                                                title=f"{name} at {site}: capability histogram", unit=unit)
    return out


def attribute_charts(assessment: cmp.AttributeAssessment, site: str, *, compact: bool = False) -> dict[str, Any]:
    """The charts and figures of one site × attribute (used by the product quality review and the API)."""
    cell = assessment.sites[site]
    return {"spec": assessment.spec, "cell": cell, "view": cell_view(cell),
            **draw_charts(spec_view(assessment.spec), site, chart_data(assessment, site), compact=compact)}


def interval_rows(assessment: cmp.AttributeAssessment) -> tuple[list[charts.Interval], float]:
    rows, margins = [], []
    for code, cell in assessment.sites.items():
        if cell.n == 0:
            continue
        t = cell.tost
        if t is None or cell.status == cmp.TOO_FEW:
            rows.append(charts.Interval(code, math.nan, math.nan, math.nan, False))
            continue
        rows.append(charts.Interval(code, float(t.difference), float(t.ci_low), float(t.ci_high),
                                    cell.status == cmp.EQUIVALENT))
        if math.isfinite(float(t.margin)):
            margins.append(float(t.margin))
    return rows, (sum(margins) / len(margins) if margins else math.nan)


def interval_plot(assessment: cmp.AttributeAssessment, *, highlight: str | None = None) -> str:
    rows, margin = interval_rows(assessment)
    return draw_intervals(rows, margin, name=assessment.spec.name, unit=assessment.spec.unit, highlight=highlight)


def intervals_data(assessment: cmp.AttributeAssessment) -> dict[str, Any]:
    """The interval plot's rows and margin, as the monitor stores them (NaN as None)."""
    rows, margin = interval_rows(assessment)
    data: dict[str, Any] = json_safe({"rows": [[r.label, r.estimate, r.low, r.high, r.equivalent] for r in rows],
                                      "margin": margin})
    return data


def stored_interval_plot(data: dict[str, Any], *, name: str, unit: str, highlight: str | None = None) -> str:
    """The interval plot from what :func:`intervals_data` stored."""
    def num(v: Any) -> float:
        return math.nan if v is None else float(v)

    rows = [charts.Interval(str(label), num(est), num(low), num(high), bool(eq))
            for label, est, low, high, eq in data.get("rows", [])]
    return draw_intervals(rows, num(data.get("margin")), name=name, unit=unit, highlight=highlight)


def draw_intervals(rows: list[charts.Interval], margin: float, *, name: str, unit: str,
                   highlight: str | None = None) -> str:
    if highlight:
        rows = [r if r.label != highlight else charts.Interval(f"▶ {r.label}", r.estimate, r.low, r.high,
                                                               r.equivalent) for r in rows]
    return charts.interval_plot_svg(rows, margin=margin, unit=unit,
                                    title=f"{name}: each site's current lots versus the rest of "
                                          f"the network (±1.5 σ_R shaded; margins differ slightly by site)")


def t2_figures(attributes: list[str], mine: Sequence[Sequence[float]], others: Sequence[Sequence[float]],
               labels: list[str]) -> dict[str, Any] | None:
    """Hotelling's T² of a site's lots (``mine``: one row of ``attributes`` per lot, labelled) against
    the other sites' lots; None when there are too few attributes or lots for it."""
    if len(attributes) < 2 or len(others) <= len(attributes) + 1 or not mine:
        return None
    ref = multivariate.reference_from(np.array(others, dtype=np.float64))
    values = [float(v) for v in multivariate.t2(np.array(mine, dtype=np.float64), ref)]
    ucl = float(multivariate.phase2_limit(ref.p, ref.m))
    return {"values": values, "ucl": ucl, "labels": labels, "attributes": attributes, "m": int(ref.m),
            "above": [labels[i] for i, v in enumerate(values) if v > ucl]}


def draw_t2(figures: dict[str, Any], site: str, *, last: int | None = None) -> dict[str, Any]:
    """The T² chart of :func:`t2_figures` (as computed or stored), with its figures. ``last``: draw
    only the latest lots, as the run charts do (``shown`` says which); the lots above the limit are
    still every one (the page names them all)."""
    title = (f"{site}: Hotelling's T² of {len(figures['attributes'])} attributes against the other sites' lots")
    values, labels = list(figures["values"]), list(figures["labels"])
    total = len(values)
    start = max(0, total - last) if last is not None else 0
    shown = {"first": start + 1, "last": total, "total": total} if start else None
    return {**figures, "shown": shown,
            "svg": charts.t2_chart_svg([float(v) for v in values[start:]], ucl=float(figures["ucl"]),
                                       labels=labels[start:], title=title)}
