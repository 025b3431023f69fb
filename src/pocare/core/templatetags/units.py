"""Units as people write them on every page and document (:mod:`pocare.core.units`):
``{{ attribute.unit|unit }}`` → ``10⁶ cells/kg``; ``{{ value|quantity:unit }}`` → ``1.2 × 10⁶ cells/kg``."""

from __future__ import annotations

from typing import Any

from django import template

from pocare.core.units import amount_text, quantity_text, unit_text

register = template.Library()


@register.filter
def unit(value: Any) -> str:
    """A unit, or a text containing one (a stored result, a criterion), as people write it."""
    return unit_text(value)


@register.filter
def quantity(value: Any, unit: Any) -> str:
    """A value followed by its unit."""
    return quantity_text(value, unit)


@register.filter
def amount(value: Any) -> str:
    """A stock quantity as people write it: ``2.5``, ``10`` (not ``2.500``, ``10.000``), ``—`` for none."""
    return amount_text(value)
