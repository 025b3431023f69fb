"""Template filters of the POCare web UI: permissions, times with their zone, audit events."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django import template
from django.utils import timezone

from pocare.accounts import selectors as access
from pocare.accounts.roles import Perm
from pocare.core.templatetags import times
from pocare.ledger.events import registered

register = template.Library()

_MISSING = object()


@register.filter
def can(user: Any, perm: str) -> bool:
    """``{% if user|can:"accounts.manage" %}``: holds the permission and may write (not read-only).

    Only hides controls; the view and the service check again.
    """
    try:
        needed = Perm(perm)
    except ValueError:
        return False
    return access.has_perm(user, needed) and not access.is_read_only(user)


@register.filter
def has(user: Any, perm: str) -> bool:
    """``{% if user|has:"ledger.view" %}``: holds the permission (reading is enough)."""
    try:
        return access.has_perm(user, Perm(perm))
    except ValueError:
        return False


@register.filter
def is_current(membership: Any) -> bool:
    """A membership in force now (not revoked, not expired)."""
    return bool(membership.is_active_at(timezone.now()))


@register.filter
def current_roles(person: Any) -> list[Any]:
    """A person's memberships in force now (uses prefetched ``memberships`` when there)."""
    now = timezone.now()
    return [m for m in person.memberships.all() if m.is_active_at(now)]


def _as_datetime(value: Any) -> dt.datetime | None:
    if not isinstance(value, dt.datetime):
        return None
    when: dt.datetime = value
    if timezone.is_naive(when):
        when = timezone.make_aware(when, dt.UTC)
    return when


@register.filter
def utc(value: Any, precision: str = "seconds") -> str:
    """A time of a record of no site (a person, a master-file version, the audit trail's server clock)
    in UTC with the zone written out: ``2026-03-01 13:05:22 UTC`` (:mod:`pocare.core.times`)."""
    return times.time_html(value, dt.UTC, with_utc=False, seconds=precision != "minutes")


@register.filter
def in_zone(value: Any, zone: Any = "") -> str:
    """The older name of ``site_time`` (``core/templatetags/times.py``): a time in a site's zone with
    the zone's name, ``2026-12-05 14:05 CET``."""
    return times.time_html(value, zone or None, with_utc=False, seconds=False)


@register.filter
def utc_offset(value: Any) -> str:
    """``UTC+01:00`` for an aware datetime."""
    when = _as_datetime(value)
    if when is None or when.utcoffset() is None:
        return ""
    minutes = int(when.utcoffset().total_seconds() // 60)  # type: ignore[union-attr]
    sign = "+" if minutes >= 0 else "−"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


@register.filter
def event_label(event_type: str) -> str:
    """The words of a registered event type (``accounts.user_created`` → "Person created")."""
    value = str(event_type)
    label = registered().get(value)
    if label is None:  # a type whose module is not imported yet: say it in words anyway
        words = value.rsplit(".", 1)[-1].replace("_", " ").strip()
        label = words[:1].upper() + words[1:] if words else value
    return label


def _show(value: Any) -> str:
    if value is _MISSING:
        return ""
    if value is None:
        return "null"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


@register.filter
def event_diff(event: Any) -> list[dict[str, Any]]:
    """Rows of an event's old and new values, one per field, for a two-column table."""
    old, new = event.old, event.new
    keys = list(old) + [k for k in new if k not in old]
    rows = []
    for key in keys:
        before, after = old.get(key, _MISSING), new.get(key, _MISSING)
        rows.append(
            {
                "field": key.replace("_", " "),
                "key": key,
                "old": _show(before),
                "new": _show(after),
                "had_old": before is not _MISSING,
                "has_new": after is not _MISSING,
                "changed": before != after,
            }
        )
    return rows


@register.filter
def short_hash(value: Any, length: int = 12) -> str:
    text = str(value or "")
    return text[:length] + "…" if len(text) > length else text


@register.filter
def status_class(value: Any) -> str:
    """A CSS badge modifier for a status value (site status, membership state)."""
    return {
        "active": "ok",
        "qualification": "info",
        "onboarding": "info",
        "proposed": "muted",
        "suspended": "bad",
        "closed": "muted",
    }.get(str(value), "muted")


@register.filter
def minus(value: Any, other: Any) -> Any:
    """``{{ a|minus:b }}``: a − b for numbers ("" when either is not a number)."""
    try:
        return int(value) - int(other)
    except (TypeError, ValueError):
        return ""


@register.filter
def autocomplete(field: Any, hint: str) -> Any:
    """Render a bound field's widget with an ``autocomplete`` hint (password managers, a11y)."""
    return field.as_widget(attrs={"autocomplete": hint})
