"""The one way POCare writes a time (STYLE: UTC-aware datetimes, shown in the site's zone with the zone).

A record's time is written in the zone of the site it belongs to, with the zone's abbreviation:
``2026-12-05 14:06 CET``. A signature manifestation (21 CFR 11.50) also gives UTC beside it, so the
time compares with the ledger's clock: ``2026-12-05 14:06 CET (13:06 UTC)``. A record of no site (a
person, a master-file version) is written in UTC, which is its zone. Pages use the template filters
``site_time`` and ``signed_time`` (``core/templatetags/times.py``); PDFs, labels and exports call
:func:`site_time` here, so that a certificate and a label say what the page says.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from pocare.core import render


def zone_of(where: Any) -> dt.tzinfo:
    """The zone of ``where``: a site (anything with ``tz`` or ``time_zone``), an IANA name or a tzinfo;
    UTC when it is none of these or names no zone."""
    if isinstance(where, dt.tzinfo):
        return where
    tz = getattr(where, "tz", None)
    if isinstance(tz, dt.tzinfo):
        return tz
    name = getattr(where, "time_zone", where)
    if isinstance(name, str) and name:
        try:
            return zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return dt.UTC
    return dt.UTC


def site_time(value: dt.datetime, where: Any = None, *, with_utc: bool = False, seconds: bool = False) -> str | None:
    """``value`` in the zone of ``where`` (its own zone when ``where`` is None, UTC when it is naive)
    with the zone's name (``2026-12-05 14:06 CET``), and with
    ``with_utc`` UTC beside it (``… (13:06 UTC)``, the date too when it differs). ``None`` when the
    stored value cannot be shown as a time (see :mod:`pocare.core.render`)."""
    keep_own = where is None and isinstance(value, dt.datetime) and value.tzinfo is not None
    local = render.to_zone(value, value.tzinfo if keep_own else zone_of(where))
    if local is None:
        return None
    fmt = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
    text = f"{local.strftime(fmt)} {local.tzname() or 'UTC'}"
    if not with_utc or (local.utcoffset() == dt.timedelta(0) and local.tzname() == "UTC"):
        return text
    utc = local.astimezone(dt.UTC)
    clock = "%H:%M:%S" if seconds else "%H:%M"
    beside = utc.strftime(clock if utc.date() == local.date() else f"%Y-%m-%d {clock}")
    return f"{text} ({beside} UTC)"
