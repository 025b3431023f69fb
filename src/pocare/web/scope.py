"""The site switcher: a Control Site person can narrow every page to one site."""

from __future__ import annotations

from django.http import HttpRequest

from pocare.accounts import selectors as access

SESSION_KEY = "pocare.scope"


def scoped_chain(request: HttpRequest) -> str:
    """The site code the person narrowed their view to, or '' for the whole network."""
    if not hasattr(request, "session"):
        return ""
    code = request.session.get(SESSION_KEY, "")
    return code if isinstance(code, str) else ""


def scope_options(request: HttpRequest) -> list[tuple[str, str]]:
    """Sites a Control Site person can switch to (site people see only their own anyway)."""
    from pocare.network.models import Site

    if not access.is_network_user(request.user):
        return []
    return [(s.code, s.name) for s in Site.objects.order_by("kind", "code")]
