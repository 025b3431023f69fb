"""What the comparability pages and the product quality review show of an assessment: figures as
plain values and the SVG charts. Pure (no Django import)."""

from __future__ import annotations

import math
from typing import Any

from pocare.analytics import charts
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


def attribute_charts(assessment: cmp.AttributeAssessment, site: str, *, compact: bool = False) -> dict[str, Any]:
    """The charts and figures of one site × attribute (used by the site page and the review)."""
    spec = assessment.spec
    cell = assessment.sites[site]
    out: dict[str, Any] = {"spec": spec, "cell": cell, "view": cell_view(cell)}
    width = 620 if compact else 720
    if cell.chart is not None:
        ch = cell.chart
        refs = list(cell.series.references)
        flags: dict[int, list[str]] = {}
        for hit in cell.hits:
            if hit.rule in ("ewma", "cusum"):
                continue
            for i in hit.indices:
                flags.setdefault(i, []).append(hit.rule)
        values = [float(v) for v in cell.series.values]
        title = f"{spec.name} at {site}: individuals chart"
        out["control"] = charts.control_chart_svg(
            values, centre=float(ch.limits.centre), sigma=float(ch.limits.sigma), flags=flags, labels=refs,
            title=title, unit=spec.unit, baseline=ch.limits.baseline, spec=(spec.lsl, spec.usl), width=width)
        if not compact:
            out["ewma"] = charts.ewma_chart_svg(
                [float(v) for v in ch.ewma.z], ucl=[float(v) for v in ch.ewma.ucl],
                lcl=[float(v) for v in ch.ewma.lcl], centre=float(ch.limits.centre),
                flags=[int(i) for i in ch.ewma.flags.nonzero()[0]], labels=refs, unit=spec.unit,
                title=f"{spec.name} at {site}: EWMA (λ = {ch.ewma.lam}, L = {ch.ewma.width})")
            out["cusum"] = charts.cusum_chart_svg(
                [float(v) for v in ch.cusum.upper], [float(v) for v in ch.cusum.lower], h=float(ch.cusum.h),
                flags=[int(i) for i in (ch.cusum.upper_flags | ch.cusum.lower_flags).nonzero()[0]], labels=refs,
                title=f"{spec.name} at {site}: tabular CUSUM (k = {ch.cusum.k}σ, H = {float(ch.cusum.h):.3g})")
        out["limits"] = {"centre": float(ch.limits.centre), "sigma": float(ch.limits.sigma),
                         "ucl": float(ch.limits.ucl), "lcl": float(ch.limits.lcl),
                         "mr_bar": float(ch.limits.mr_bar), "baseline": ch.limits.baseline}
        out["hits"] = [{"rule": h.rule, "name": h.name, "signals": h.signals, "recent": h.recent,
                        "points": [refs[i] for i in h.indices]} for h in cell.hits]
    if cell.capability is not None:
        c = cell.capability
        out["capability"] = {k: finite(getattr(c, k)) for k in ("cp", "cp_low", "cp_high", "cpk", "cpk_low", "cpk_high",
                                                            "pp", "ppk", "ppk_low", "ppk_high", "sigma_within",
                                                            "sigma_overall", "mean")}
        out["histogram"] = charts.histogram_svg([float(v) for v in cell.series.values], lsl=spec.lsl, usl=spec.usl,
                                                mean=float(c.mean), sigma=float(c.sigma_overall),
                                                title=f"{spec.name} at {site}: capability histogram", unit=spec.unit)
    return out


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
    if highlight:
        rows = [r if r.label != highlight else charts.Interval(f"▶ {r.label}", r.estimate, r.low, r.high,
                                                               r.equivalent) for r in rows]
    return charts.interval_plot_svg(rows, margin=margin, unit=assessment.spec.unit,
                                    title=f"{assessment.spec.name}: each site's current lots versus the rest of "
                                          f"the network (±1.5 σ_R shaded; margins differ slightly by site)")
