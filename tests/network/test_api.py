"""The network API: units and transitions per site, scoped; signed transitions and requalification
with 4xx on bad input."""

from __future__ import annotations

import datetime as dt

import pytest

from pocare.accounts.services import token_issue
from pocare.ledger.models import Event
from pocare.network.events import NetworkEvent
from pocare.network.models import ManufacturingUnit, Site, SiteStatus
from pocare.network.selectors import site_today
from pocare.network.services import unit_register
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def bearer(people):  # type: ignore[no-untyped-def]
    def _bearer(username: str) -> dict[str, str]:
        _, key = token_issue(actor=None, user=people[username], name="test client", reason="test")
        return {"HTTP_AUTHORIZATION": f"Bearer {key}"}

    return _bearer


@pytest.fixture
def units(people):  # type: ignore[no-untyped-def]
    made = {}
    for code, cal in (("MAD", 60), ("MAD", -2), ("LIS", 90)):
        site = Site.objects.get(code=code)
        today = site_today(site)
        unit = unit_register(actor=people["qa"], site=site, device_type="clinimacs_prodigy",
                             serial=f"PRD-API-{code}-{cal}", calibration_due=today + dt.timedelta(days=cal),
                             maintenance_due=today + dt.timedelta(days=100), reason="test")
        made[(code, cal)] = unit
    return made


def test_units_are_listed_per_site_and_scoped(client, bearer, units):
    """P11-10g P11-10h: a site person sees their site's units with usability; another site is 404."""
    mad = client.get("/api/sites/MAD/units/", **bearer("operator.mad")).json()["results"]
    assert {u["serial"] for u in mad} == {"PRD-API-MAD-60", "PRD-API-MAD--2"}
    overdue = next(u for u in mad if u["serial"] == "PRD-API-MAD--2")
    assert overdue["usable"] is False and "overdue" in overdue["unusable_reason"]
    assert client.get("/api/sites/LIS/units/", **bearer("operator.mad")).status_code == 404
    every = client.get("/api/units/", **bearer("operator.mad")).json()["results"]
    assert {u["site"] for u in every} == {"MAD"}
    network = client.get("/api/units/?site=LIS", **bearer("qp")).json()["results"]
    assert [u["serial"] for u in network] == ["PRD-API-LIS-90"]


def test_a_transition_over_the_api_is_signed_with_both_components(client, bearer, people):
    """P11-200 POC-4: user id and password in the body, every time; the response carries the signature."""
    qa = bearer("qa")
    body = {"to_status": "suspended", "reason": "Audit finding", "username": "qa", "password": PASSWORD}
    response = client.post("/api/sites/MAD/transitions/", body, content_type="application/json", **qa)
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["from_status"] == "active" and data["to_status"] == "suspended"
    [signature] = data["signatures"]
    assert signature["signer_printed_name"] == "Montserrat Puig" and signature["meaning"] == "approved"
    assert signature["valid"] is True
    listing = client.get("/api/sites/MAD/transitions/", **bearer("manager.mad")).json()["results"]
    assert [t["to_status"] for t in listing] == ["suspended"]
    assert client.get("/api/sites/MAD/transitions/", **bearer("manager.lis")).status_code == 404


def test_wrong_credentials_are_403_and_change_nothing(client, bearer):
    """P11-200 P11-100: a wrong password or another person's user id is 403, naming the field."""
    qa = bearer("qa")
    for body, field in (({"username": "qa", "password": "wrong"}, "password"),
                        ({"username": "qp", "password": PASSWORD}, "username")):
        response = client.post("/api/sites/MAD/transitions/", {"to_status": "suspended", "reason": "x", **body},
                               content_type="application/json", **qa)
        assert response.status_code == 403 and field in response.json(), response.json()
    assert Site.objects.get(code="MAD").status == SiteStatus.ACTIVE
    assert not Event.objects.filter(event_type=NetworkEvent.SITE_TRANSITIONED).exists()


@pytest.mark.parametrize(("body", "field"), [
    ({"to_status": "paused"}, "to_status"),
    ({"to_status": "onboarding"}, "to_status"),  # not allowed from active
    ({"reason": ""}, "reason"),
    ({"password": None}, "password"),
])
def test_bad_transition_input_is_400_naming_the_field(client, bearer, body, field):
    """Bad input → 400 with the field named; nothing changes."""
    full = {"to_status": "suspended", "reason": "x", "username": "qa", "password": PASSWORD, **body}
    full = {k: v for k, v in full.items() if v is not None}
    response = client.post("/api/sites/MAD/transitions/", full, content_type="application/json", **bearer("qa"))
    assert response.status_code == 400 and field in response.json(), response.json()
    assert Site.objects.get(code="MAD").status == SiteStatus.ACTIVE


def test_missing_evidence_is_400_naming_evidence(client, bearer, new_site):
    """POC-4: qualification → active without evidence is refused with what is missing."""
    site = new_site(SiteStatus.QUALIFICATION)
    response = client.post(f"/api/sites/{site.code}/transitions/",
                           {"to_status": "active", "reason": "x", "username": "qa", "password": PASSWORD},
                           content_type="application/json", **bearer("qa"))
    assert response.status_code == 400 and "readiness item" in response.json()["evidence"][0]


@pytest.mark.parametrize("username", ["manager.mad", "qp", "inspector"])
def test_only_control_site_qa_posts_transitions(client, bearer, username):
    """P11-10g: others are refused with 403."""
    response = client.post("/api/sites/MAD/transitions/", {"to_status": "suspended", "reason": "x",
                                                           "username": username, "password": PASSWORD},
                           content_type="application/json", **bearer(username))
    assert response.status_code == 403


def test_requalify_over_the_api(client, bearer, units):
    """P11-10h P11-10g: the site's manager requalifies an overdue unit; bad dates are 400; other sites 404."""
    unit = units[("MAD", -2)]
    url = f"/api/units/{unit.pk}/requalify/"
    manager = bearer("manager.mad")
    bad = client.post(url, {"calibration_due": "2020-01-01", "maintenance_due": "2099-01-01", "reason": "x"},
                      content_type="application/json", **manager)
    assert bad.status_code == 400 and "calibration_due" in bad.json()
    assert client.post(url, {"calibration_due": "tomorrow", "maintenance_due": "2099-01-01", "reason": "x"},
                       content_type="application/json", **manager).status_code == 400
    ok = client.post(url, {"calibration_due": "2099-01-01", "maintenance_due": "2099-02-01", "reason": "Calibrated"},
                     content_type="application/json", **manager)
    assert ok.status_code == 200 and ok.json()["usable"] is True
    assert Event.objects.filter(event_type=NetworkEvent.UNIT_REQUALIFIED, object_id=str(unit.pk)).count() == 1
    lis_unit = units[("LIS", 90)]
    assert client.post(f"/api/units/{lis_unit.pk}/requalify/", {"calibration_due": "2099-01-01",
                                                                "maintenance_due": "2099-01-01", "reason": "x"},
                       content_type="application/json", **manager).status_code == 404
    assert client.post(url, {"calibration_due": "2099-01-01", "maintenance_due": "2099-01-01", "reason": "x"},
                       content_type="application/json", **bearer("operator.mad")).status_code == 403
    assert ManufacturingUnit.objects.get(pk=lis_unit.pk).calibration_due != dt.date(2099, 1, 1)
