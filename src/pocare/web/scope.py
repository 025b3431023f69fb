"""The site switcher: a Control Site person can narrow every page to one site (the choice is kept
in the session, ``pocare.core.scope``)."""

from __future__ import annotations

from django.http import HttpRequest

from pocare.accounts import selectors as access
from pocare.network.models import Site


def scope_options(request: HttpRequest) -> list[tuple[str, str]]:
    """Sites a Control Site person can switch to (site people see only their own anyway)."""
    if not access.is_network_user(request.user):
        return []
    return [(s.code, s.name) for s in Site.objects.order_by("kind", "code")]
