"""The network overview: every site the person may see, with its status and local time."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from pocare.accounts.decorators import requires
from pocare.accounts.roles import Perm
from pocare.ledger import selectors as ledger
from pocare.network.selectors import sites_overview, sites_visible


@requires(Perm.NETWORK_VIEW)
@require_GET
def sites(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    rows = [(site, now.astimezone(site.tz)) for site in sites_overview(request.user)]
    return render(request, "network/sites.html", {"rows": rows})


@requires(Perm.NETWORK_VIEW)
@require_GET
def site_detail(request: HttpRequest, code: str) -> HttpResponse:
    site = get_object_or_404(sites_visible(request.user), code=code)
    memberships = site.memberships.filter(revoked_at=None).select_related("user").order_by("role")
    events = ledger.events_visible(request.user).filter(chain=site.code).order_by("-id")[:15]
    return render(request, "network/site.html", {
        "site": site, "memberships": memberships, "events": events,
        "local_now": timezone.now().astimezone(site.tz),
    })
