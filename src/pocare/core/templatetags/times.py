"""Times on pages, one convention (:mod:`pocare.core.times`): ``{{ step.performed_at|site_time:site }}``
writes ``2026-12-05 14:06 CET``; ``{{ signature.signed_at|signed_time:site }}`` writes the
manifestation's ``2026-12-05 14:06 CET (13:06 UTC)``. The argument is a site, an IANA zone name or
nothing (UTC). Each is a ``<time>`` element whose ``datetime`` is the exact instant."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from pocare.core import render, times

register = template.Library()


def time_html(value: Any, where: Any, *, with_utc: bool, seconds: bool) -> SafeString | str:
    """``value`` as a ``<time>`` element written by :func:`pocare.core.times.site_time` (its UTC time
    in the title when UTC is not written beside it)."""
    if not isinstance(value, dt.datetime):
        return "—" if value in (None, "") else str(value)
    text = times.site_time(value, where, with_utc=with_utc, seconds=seconds)
    if text is None:  # stored before the input bounds, or by a restore
        return render.invalid(value)
    utc = render.to_zone(value) or value
    title = "" if with_utc else utc.strftime("%Y-%m-%d %H:%M:%S UTC")
    return format_html('<time datetime="{}" title="{}">{}</time>', utc.isoformat(), title, text)


@register.filter
def site_time(value: Any, where: Any = None) -> SafeString | str:
    """A record's time in its site's zone, with the zone: ``2026-12-05 14:06 CET``."""
    return time_html(value, where, with_utc=False, seconds=False)


@register.filter
def signed_time(value: Any, where: Any = None) -> SafeString | str:
    """A signature's time in the site's zone with UTC beside it (Part 11.50), to the second:
    ``2026-12-05 14:06:09 CET (13:06:09 UTC)``."""
    return time_html(value, where, with_utc=True, seconds=True)
