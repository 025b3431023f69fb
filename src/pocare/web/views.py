"""The home page and the site switcher."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import i18n as i18n_views
from django.views.decorators.http import require_GET, require_POST

from pocare.accounts import selectors as access
from pocare.accounts.decorators import signed_in
from pocare.accounts.roles import Perm
from pocare.core import worklist
from pocare.core.scope import SESSION_KEY, scoped_chain
from pocare.ledger.models import chains_with_lanes
from pocare.network.selectors import sites_overview
from pocare.trail.selectors import events_visible
from pocare.web.context import Work
from pocare.web.scope import scope_options


@signed_in
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """What waits for the person (their work queues), the sites they see, and their latest audit events."""
    user = request.user
    work = Work(request)
    events = events_visible(user)
    if scope := scoped_chain(request):
        events = events.filter(chain__in=chains_with_lanes([scope]))
    context = {
        "queues": worklist.queues_for(user, work.counts),
        "sites": sites_overview(user),
        "recent": events.order_by("-id")[:10] if access.has_perm(user, Perm.LEDGER_VIEW) else [],
        "my_events": events_visible(user).filter(actor_username=user.username, actor_id=user.pk).order_by("-id")[:5]
        if access.has_perm(user, Perm.LEDGER_VIEW) else [],
    }
    return render(request, "web/home.html", context)


@signed_in
@require_POST
def language_switch(request: HttpRequest) -> HttpResponse:
    """The language of the pages for this person (English, Spanish, Portuguese): Django's
    ``set_language`` (a cookie; the patients' documents follow the patient's language instead)."""
    return i18n_views.set_language(request)


@signed_in
@require_POST
def scope_switch(request: HttpRequest) -> HttpResponse:
    """Narrow the view to one site (Control Site people) or back to the whole network."""
    code = request.POST.get("scope", "")
    allowed = {c for c, _ in scope_options(request)}
    request.session[SESSION_KEY] = code if code in allowed else ""
    target = request.POST.get("next", "")
    if not target.startswith("/") or not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = "/"  # a path only: redirect() would take any other word for a view name (a 500)
    return redirect(target)
