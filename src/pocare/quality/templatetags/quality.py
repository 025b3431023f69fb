"""Template tags of the quality app: the notifications badge of the top bar."""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import reverse
from django.utils.html import format_html

from pocare.quality.selectors import unread_count

register = template.Library()


@register.simple_tag
def notifications_badge(user: Any) -> str:
    """A link to the person's notifications with the number unread (one count query)."""
    if not getattr(user, "is_authenticated", False):
        return ""
    count = unread_count(user)
    label = f"{count} unread notification{'s' if count != 1 else ''}" if count else "Notifications"
    return format_html('<a class="topbar-link" href="{}" title="{}" aria-label="{}">Notifications{}</a>',
                       reverse("quality:notifications"), label, label,
                       format_html(' <span class="badge badge-warn">{}</span>', count) if count else "")
