"""Safe formatting of stored values for pages, charts and exports.

A stored datetime at year 1 or 9999 (accepted before the input bounds, or brought back by a restore)
overflows when shifted to another zone, and ``timestamp()``/``astimezone`` raise. Pages format through
these helpers so that such a row renders as ``invalid timestamp: …`` and the rest of the page works.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from django.db.models import CharField, Q, QuerySet
from django.db.models.functions import Cast
from django.utils.html import format_html
from django.utils.safestring import SafeString

from pocare.core import bounds


def raw_text(value: dt.datetime) -> str:
    """The stored value written out without any conversion (never raises)."""
    try:
        return value.isoformat()
    except (OverflowError, ValueError):
        return repr(value)


def invalid(value: Any) -> SafeString:
    return format_html('<span class="invalid-value">invalid timestamp: {}</span>',
                       raw_text(value) if isinstance(value, dt.datetime) else str(value))


def representable(value: dt.datetime) -> bool:
    """A datetime whose year is inside the allowed window and that converts to UTC and back."""
    if bounds.datetime_problem(value):
        return False
    try:
        if value.tzinfo is not None:
            value.astimezone(dt.UTC)
        return True
    except (OverflowError, ValueError):
        return False


def to_zone(value: dt.datetime, zone: dt.tzinfo | str | None = None) -> dt.datetime | None:
    """``value`` in ``zone`` (UTC when naive or not given), or ``None`` when it cannot be converted."""
    if not isinstance(value, dt.datetime) or not representable(value):
        return None
    when = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    try:
        tz = zoneinfo.ZoneInfo(zone) if isinstance(zone, str) and zone else (zone or dt.UTC)
        return when.astimezone(tz)
    except (OverflowError, ValueError, zoneinfo.ZoneInfoNotFoundError):
        return None


def safe_datetime(value: Any, fmt: str = "%Y-%m-%d %H:%M:%S UTC") -> str:
    """A datetime in UTC with ``fmt``, or ``invalid timestamp: <stored value>`` when it cannot be."""
    if not isinstance(value, dt.datetime):
        return "—" if value in (None, "") else str(value)
    when = to_zone(value)
    if when is None:
        return invalid(value)
    return when.strftime(fmt)


def safe_timestamp(value: dt.datetime) -> float | None:
    """POSIX seconds of ``value``, or ``None`` when it is outside the representable window (charts)."""
    when = to_zone(value)
    return when.timestamp() if when is not None else None


# --- rows a database holds but Python cannot load or a page cannot show ------------------------------

#: The window a stored time must lie in to be loaded and shown as a time (the years of the input bounds).
WINDOW_START = dt.datetime(bounds.YEAR_MIN, 1, 1, tzinfo=dt.UTC)
WINDOW_END = dt.datetime(bounds.YEAR_MAX + 1, 1, 1, tzinfo=dt.UTC)


def in_window(field: str) -> Q:
    """Rows whose ``field`` is a time inside the window (safe to load as ``datetime``)."""
    return Q(**{f"{field}__gte": WINDOW_START, f"{field}__lt": WINDOW_END})


def outside_window(queryset: QuerySet[Any], field: str, *also: str) -> list[dict[str, Any]]:
    """Rows of ``queryset`` whose ``field`` is outside the window, with that time as the database writes
    it (``raw``, text: PostgreSQL keeps years before 1 and after 9999 that Python cannot load at all)
    and the other ``also`` columns. A page shows these as ``invalid timestamp: <raw>``."""
    return list(queryset.exclude(in_window(field)).annotate(raw=Cast(field, output_field=CharField()))
                .values("pk", "raw", *also).order_by("pk"))
