"""The site page: lifecycle panel with signing forms, readiness and runs recorded through forms."""

from __future__ import annotations

import pytest

from pocare.ledger.models import Event
from pocare.network.events import NetworkEvent
from pocare.network.models import ReadinessCheck, Site, SiteStatus
from tests.conftest import PASSWORD
from tests.network.conftest import complete_evidence

pytestmark = pytest.mark.django_db


def test_qa_sees_the_lifecycle_and_moves_a_site_with_a_signature(people, new_site, client, login):
    """POC-4 P11-200 P11-50: the next statuses are signing forms; the history shows the signature."""
    site = new_site(SiteStatus.PROPOSED)
    login("qa")
    page = client.get(f"/network/{site.code}/").content.decode()
    assert "Move to onboarding…" in page and "Move to closed…" in page and "Move to active" not in page
    assert 'class="state current"' in page  # the diagram highlights the current state
    assert 'name="username"' in page  # first signature of the session: both components
    response = client.post(f"/network/{site.code}/transition/", {"to_status": "onboarding", "reason": "Agreement signed",
                                                                "username": "qa", "password": PASSWORD})
    assert response.status_code == 302
    site.refresh_from_db()
    assert site.status == SiteStatus.ONBOARDING
    page = client.get(f"/network/{site.code}/").content.decode()
    assert "Agreement signed" in page and "Montserrat Puig" in page and "Approved" in page
    # same session: the password alone now
    assert 'name="username"' not in page.split('id="dlg-to-qualification"')[1].split("</dialog>")[0]
    response = client.post(f"/network/{site.code}/transition/", {"to_status": "qualification", "reason": "Handed over",
                                                                "password": PASSWORD})
    assert response.status_code == 302


def test_refusals_on_the_page_name_what_is_wrong(people, new_site, client, login):
    """P11-10f POC-4: a wrong password, a missing reason and missing evidence each come back as 400."""
    site = new_site(SiteStatus.QUALIFICATION)
    login("qa")
    url = f"/network/{site.code}/transition/"
    response = client.post(url, {"to_status": "onboarding", "reason": "Back", "username": "qa", "password": "wrong"})
    assert response.status_code == 400 and "Wrong user id or password" in response.content.decode()
    response = client.post(url, {"to_status": "active", "reason": "", "username": "qa", "password": PASSWORD})
    assert response.status_code == 400 and "This field is required" in response.content.decode()
    response = client.post(url, {"to_status": "active", "reason": "Go", "username": "qa", "password": PASSWORD})
    body = response.content.decode()
    assert response.status_code == 400 and "cannot become active yet" in body and "3 more passed" in body
    site.refresh_from_db()
    assert site.status == SiteStatus.QUALIFICATION
    complete_evidence(site, people["qa"])
    response = client.post(url, {"to_status": "active", "reason": "PPQ complete", "username": "qa",
                                 "password": PASSWORD})
    assert response.status_code == 302
    site.refresh_from_db()
    assert site.status == SiteStatus.ACTIVE


def test_a_site_manager_records_readiness_and_runs_at_their_site_only(people, client, login):
    """P11-10g POC-4: the manager records evidence for their site; another site's does not exist for them."""
    login("manager.mad")
    page = client.get("/network/MAD/").content.decode()
    assert "Record readiness evidence" in page and "Move to suspended" not in page
    response = client.post("/network/MAD/readiness/", {"item": "monitoring", "evidence": "EM-MAD-2026-01",
                                                       "reason": "EM programme live"})
    assert response.status_code == 302
    assert ReadinessCheck.objects.filter(site__code="MAD", item="monitoring").exists()
    assert Event.objects.filter(chain="MAD", event_type=NetworkEvent.READINESS_RECORDED).exists()
    response = client.post("/network/MAD/runs/", {"reference": "PPQ-MAD-9", "performed_on": "2026-01-10",
                                                  "outcome": "passed", "reason": "report approved"})
    assert response.status_code == 302
    assert Event.objects.filter(chain="MAD", event_type=NetworkEvent.PERFORMANCE_RUN_RECORDED).exists()
    assert client.post("/network/LIS/readiness/", {"item": "it", "evidence": "x", "reason": "x"}).status_code == 404
    response = client.post("/network/MAD/runs/", {"reference": "PPQ-MAD-10", "performed_on": "2199-01-01",
                                                  "outcome": "passed", "reason": "x"})
    assert response.status_code == 400 and "in the future" in response.content.decode()
    assert client.post("/network/MAD/transition/", {"to_status": "suspended", "reason": "x",
                                                    "password": "x"}).status_code == 403


def test_people_without_the_permission_see_no_forms(client, login):
    """P11-10g: an operator reads the site page but gets no controls."""
    login("operator.mad")
    page = client.get("/network/MAD/").content.decode()
    assert "Lifecycle" in page and "Manufacturing units" in page
    assert "Record readiness evidence" not in page and "Register a unit" not in page and "Move to" not in page


def test_the_network_page_shows_units_and_authorizations(client, login, people, product):
    """POC-3: every site with its units and what it is authorized for."""
    from pocare.network.services import site_authorize
    from tests.network.conftest import creds

    site_authorize(actor=people["qa"], site=Site.objects.get(code="GRO"), product=product, from_version=1,
                   valid_from=None, conditions="", reason="x", credentials=creds(people["qa"]))
    login("qa")
    page = client.get("/network/").content.decode()
    assert "Authorized for" in page and "CART19" in page and "Annual report on the master file" in page
