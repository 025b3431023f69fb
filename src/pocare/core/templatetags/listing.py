"""Sortable column headers for the list pages (:mod:`pocare.core.listing`)."""

from __future__ import annotations

from django import template
from django.utils.html import format_html
from django.utils.translation import gettext as _

from pocare.core.listing import Listing

register = template.Library()


@register.simple_tag
def sort_header(listing: Listing, key: str, label: str) -> str:
    """A ``<th>`` whose link sorts by ``key``, ascending first, then descending; it says which way."""
    current = listing.sort
    if current == key:
        following, state, arrow = f"-{key}", "ascending", " ▲"
    elif current == f"-{key}":
        following, state, arrow = key, "descending", " ▼"
    else:
        following, state, arrow = key, "none", ""
    title = _("Sort by %(column)s") % {"column": str(label).lower()}
    return format_html('<th scope="col" aria-sort="{}"><a href="{}" title="{}">{}{}</a></th>',
                       state, listing.url_with(sort=following), title, label, arrow)
