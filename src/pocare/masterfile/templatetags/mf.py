"""Template filters of the master-file pages: values, ranges and acceptance criteria as people read them."""

from __future__ import annotations

from typing import Any

from django import template

from pocare.masterfile import diff, windows

register = template.Library()


@register.filter
def mf_value(value: Any) -> str:
    """A content value: ``—`` for nothing, yes/no, numbers without ``.0``."""
    return diff.show(value)


@register.filter
def mf_unit(unit: Any) -> str:
    """A unit as printed (``10⁶ cells``, :mod:`pocare.core.units`)."""
    return diff.unit_text(str(unit) if unit else "")


@register.filter
def mf_range(parameter: dict[str, Any]) -> str:
    """A parameter's target and acceptable range (``target 5 MOI; 5–10 MOI``)."""
    return diff.range_text(parameter)


@register.filter
def mf_window(window: dict[str, Any] | None) -> str:
    """A step's time window (``18–30 h after step activation (critical)``)."""
    return windows.window_text(window)


@register.filter
def mf_acceptance(attribute: dict[str, Any]) -> str:
    """An attribute's acceptance criterion with its unit (``≥ 70 %``)."""
    return diff.acceptance_text(attribute.get("acceptance"), attribute.get("unit"))


@register.filter
def version_status_class(status: Any) -> str:
    """Badge modifier for a version or change-request status."""
    return {
        "effective": "ok", "approved": "info", "implemented": "ok", "in_review": "warn", "submitted": "warn",
        "draft": "muted", "superseded": "muted", "rejected": "bad",
    }.get(str(status), "muted")


@register.filter
def risk_class_badge(risk: Any) -> str:
    """Badge modifier for a risk class."""
    return {"high": "bad", "medium": "warn", "low": "info"}.get(str(risk), "muted")


@register.filter
def cell_class(state: Any) -> str:
    """Badge modifier for a sites × versions cell."""
    return {"effective": "ok", "earlier": "muted", "training": "warn", "unauthorized": "muted",
            "pending": "info", "pending_training": "warn"}.get(str(state), "muted")
