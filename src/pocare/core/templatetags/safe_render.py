"""Rendering of stored values that may be unrepresentable (a row from before a bound existed, or from
a restore): such a value shows as what it is ("invalid timestamp: …") instead of breaking the page."""

from __future__ import annotations

from django import template

from pocare.core.render import safe_datetime

register = template.Library()
register.filter("safe_datetime", safe_datetime)
