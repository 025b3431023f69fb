"""GET never writes: no page, fragment, download or API read adds to the audit trail.

A link can be followed from anywhere (an e-mail, another site, an <img>); if following it wrote a
ledger event, anyone could write the trail in a signed-in person's name. Downloads that are GMP
events (labels, certificates, the inspector bundle, dossiers, trail exports and reports) are
POSTs. The walk covers every URL in the resolver, as the permission matrix does.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from pocare.ledger.models import Event
from tests.test_permission_matrix import OWN, ROUTES

pytestmark = pytest.mark.django_db

#: Query strings that make a GET do the most it can (the form a download or a run used to take).
QUERIES: dict[str, list[str]] = {
    "trail:verify": ["", "?run=1"],
    "trail:export": ["", "?chain=MAD"],
    "network:annual_report": ["", "?year=2026", "?year=2026&format=pdf"],
    "analytics:review": ["", "?format=html", "?format=pdf"],
    "quality:notifications": ["", "?read=all"],
}

GET_ROUTES = [r for r in ROUTES if "GET" in r.allowed_methods()]


@pytest.mark.parametrize("username", ["qa", "qp", "inspector", "manager.mad"])
def test_no_get_request_writes_the_audit_trail(client, login, username):
    """P11-10e P11-10g: following any link — every GET URL of the web UI and the API, with the query
    strings that used to trigger a download or a run — leaves the ledger as it was."""
    urls = []
    for route in GET_ROUTES:
        url = reverse(route.name, kwargs=route.kwargs_for(OWN) if route.kwargs_for else None)
        urls += [(route.name, url + query) for query in QUERIES.get(route.name, [""])]
    login(username)  # the login itself is an event; everything after it must not be
    writes = {}
    for name, url in urls:
        before = Event.objects.count()
        response = client.get(url)
        assert response.status_code < 500, (name, url, response.status_code)
        if Event.objects.count() != before:
            writes[url] = (name, response.status_code, list(
                Event.objects.order_by("-id")[: Event.objects.count() - before].values_list("event_type", flat=True)))
    assert not writes, "\n".join(f"{u}: {w}" for u, w in writes.items())
    assert len(urls) >= 90  # the walk really walked (100 URLs when this was written)
