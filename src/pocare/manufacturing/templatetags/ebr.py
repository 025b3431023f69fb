"""How the batch record shows values, units and ranges to people."""

from __future__ import annotations

import functools
from typing import Any

from django import template
from django.urls import get_script_prefix, reverse

register = template.Library()

_MARK = "8642097531"


@functools.cache
def _pattern(name: str, prefix: str) -> str:
    return reverse(name, args=[int(_MARK)]).replace(_MARK, "{}")


@register.filter
def pk_url(pk: Any, name: str) -> str:
    """``reverse(name, args=[pk])`` for a URL that takes one number, without resolving the URL map
    again for every row of a long record (the batch page has hundreds of such links)."""
    return _pattern(name, get_script_prefix()).format(int(pk))

@register.filter
def reading(value: Any) -> str:
    """A recorded value as people write it: 1500 not 1500.0, yes/no for booleans."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.6g}".replace(",", "\u2009") if abs(value) >= 10000 else f"{value:.6g}"
    if isinstance(value, int):
        return f"{value:,}".replace(",", "\u2009") if abs(value) >= 10000 else str(value)
    return str(value)


@register.filter
def bounds(spec: dict[str, Any]) -> str:
    """A parameter's or attribute's acceptable range: ``80–100``, ``≥ 1000``, ``≤ 10``, ``= TCT``."""
    spec = spec or {}
    acceptance = spec.get("acceptance", spec)
    low, high = acceptance.get("min"), acceptance.get("max")
    if low is not None and high is not None:
        return f"{reading(low)}–{reading(high)}" if low != high else f"= {reading(low)}"
    if low is not None:
        return f"≥ {reading(low)}"
    if high is not None:
        return f"≤ {reading(high)}"
    target = acceptance.get("equals", spec.get("target"))
    return "" if target is None else f"= {reading(target)}"
