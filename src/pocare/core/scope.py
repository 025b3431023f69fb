"""The site a Control Site person narrowed their pages to (the header's site switcher).

Only the session is read here, so every app's views may ask without knowing the web shell; the
switcher itself (which sites may be chosen) is ``pocare.web.scope``."""

from __future__ import annotations

from django.http import HttpRequest

SESSION_KEY = "pocare.scope"


def scoped_chain(request: HttpRequest) -> str:
    """The site code the person narrowed their view to, or '' for the whole network."""
    if not hasattr(request, "session"):
        return ""
    code = request.session.get(SESSION_KEY, "")
    return code if isinstance(code, str) else ""
