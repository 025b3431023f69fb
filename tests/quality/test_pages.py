"""The quality pages and API: list filters and overdue highlight, the deviation page with its
forms and signatures, site scoping (404 for other sites), and 4xx for junk on the API."""

from __future__ import annotations

import pytest

from pocare.quality.models import Deviation
from tests.conftest import PASSWORD
from tests.quality import helpers as h

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _rules():  # type: ignore[no-untyped-def]
    h.rules()


def test_the_list_filters_and_highlights_overdue_deviations(client, login):
    """DEV-CLASS: overdue ones are highlighted and can be listed alone."""
    late = h.deviation("MAD", opened_days_ago=40, title="Late one")
    h.classify(late, "major")
    fresh = h.deviation("MAD", title="Fresh one")
    login("qa")
    page = client.get("/quality/?overdue=true").content.decode()
    assert late.reference in page and fresh.reference not in page and 'class="row-bad"' in page
    page = client.get("/quality/?classification=none&site=MAD").content.decode()
    assert fresh.reference in page and late.reference not in page
    refused = client.get("/quality/?status=bogus&kind=zzz")
    assert refused.status_code == 400 and "bogus" in refused.content.decode() and ">kind<" in refused.content.decode()


def test_other_sites_deviations_are_not_found(client, login):
    """P11-10g: another site's deviation answers 404 to site people, on the page and the API."""
    lis = h.deviation("LIS")
    login("manager.mad")
    assert client.get(f"/quality/deviations/{lis.reference}/").status_code == 404
    assert client.get(f"/api/deviations/{lis.reference}/").status_code == 404
    assert lis.reference not in client.get("/api/deviations/").content.decode()


def test_a_manager_classifies_and_investigates_from_the_page(client, login):
    """DEV-CLASS Q9-RISK: the page's forms call the services; a bad score names the field."""
    d = h.deviation("MAD")
    login("manager.mad")
    url = f"/quality/deviations/{d.reference}/"
    page = client.get(url).content.decode()
    assert "could harm the patient" in page and 'name="action" value="classify"' in page
    response = client.post(url, {"action": "classify", "severity": "9", "occurrence": "1", "detectability": "1",
                                 "rationale": "x"})
    assert response.status_code == 400 and "Select a valid choice" in response.content.decode()
    response = client.post(url, {"action": "classify", "severity": "4", "occurrence": "2", "detectability": "3",
                                 "rationale": "CQA at risk"})
    assert response.status_code == 302
    d.refresh_from_db()
    assert d.classification == "critical"
    response = client.post(url, {"action": "investigate", "findings": "Seal worn", "root_cause": "",
                                 "root_cause_category": "machine", "reason": "done"})
    assert response.status_code == 400 and "needs its root cause" in response.content.decode()
    page = client.get(url).content.decode()
    assert "Close and sign" not in page  # a site manager does not close


def test_qa_closes_from_the_page_and_the_signature_shows(client, login):
    """ATMP-REL P11-50: the closure's signature shows with printed name, meaning and validity."""
    d = h.ready_to_close("MAD")
    login("qa")
    url = f"/quality/deviations/{d.reference}/"
    response = client.post(url, {"action": "close", "summary": "Closed after review.", "confirm": "on",
                                 "username": "qa", "password": "wrong"})
    assert response.status_code == 400 and "Wrong user id or password" in response.content.decode()
    response = client.post(url, {"action": "close", "summary": "Closed after review.", "confirm": "on",
                                 "username": "qa", "password": PASSWORD})
    assert response.status_code == 302
    page = client.get(url).content.decode()
    assert "Montserrat Puig" in page and "Approved" in page and "Reviewed" in page and "valid" in page
    assert Deviation.objects.get(pk=d.pk).status == "closed"


def test_the_page_links_the_source_step_of_a_batch(people):
    """The deviation names its source record: the batch page's step anchor."""
    from pocare.quality.selectors import source_link
    from tests.manufacturing.matrix import device_batch

    batch = device_batch("MAD")
    d = h.deviation("MAD", batch=batch, step_id="ipc-day5")
    label, url = source_link(d)  # type: ignore[misc]
    assert url == f"/manufacturing/batches/{batch.reference}/#step-ipc-day5" and "ipc-day5" in label


def test_api_lists_classifies_and_closes_with_a_signature(client, login):
    """DEV-CLASS P11-200: the API classifies and closes (user id and password every time)."""
    d = h.ready_to_close("MAD")
    login("qa")
    listed = client.get("/api/deviations/?site=MAD&status=open").json()
    assert d.reference in [r["reference"] for r in listed["results"]]
    detail = client.get(f"/api/deviations/{d.reference}/").json()
    assert detail["classification"] == "major" and detail["investigation"]["root_cause"] == "Seal worn"
    response = client.post(f"/api/deviations/{d.reference}/close/",
                           {"summary": "Closed", "username": "qa", "password": PASSWORD},
                           content_type="application/json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "closed"
    again = client.post(f"/api/deviations/{d.reference}/close/",
                        {"summary": "Closed", "username": "qa", "password": PASSWORD},
                        content_type="application/json")
    assert again.status_code == 400 and "deviation" in again.json()


@pytest.mark.parametrize(("path", "body", "field"), [
    ("classify", {"severity": 0, "occurrence": 1, "detectability": 1, "rationale": "x"}, "severity"),
    ("classify", {"severity": "high", "occurrence": 1, "detectability": 1, "rationale": "x"}, "severity"),
    ("classify", {"severity": 3, "occurrence": 1, "detectability": 1}, "rationale"),
    ("classify", ["not", "an", "object"], None),
    ("close", {"summary": "x"}, "username"),
])
def test_api_answers_junk_with_a_4xx_naming_the_field(client, login, path, body, field):
    """P11-10g: bad input is a 4xx naming the field, never a 500."""
    d = h.deviation("MAD")
    login("qa")
    response = client.post(f"/api/deviations/{d.reference}/{path}/", body, content_type="application/json")
    assert 400 <= response.status_code < 500
    if field:
        assert field in response.json()


@pytest.mark.parametrize("query", ["status=nope", "classification=huge", "kind=x", "overdue=maybe"])
def test_api_list_refuses_unknown_filter_values(client, login, query):
    login("qa")
    response = client.get(f"/api/deviations/?{query}")
    assert response.status_code == 400 and query.split("=")[0] in response.json()


def test_an_operator_may_not_classify_over_the_api(client, login):
    """P11-10g: classify needs the investigate permission."""
    d = h.deviation("MAD")
    login("operator.mad")
    response = client.post(f"/api/deviations/{d.reference}/classify/",
                           {"severity": 3, "occurrence": 1, "detectability": 1, "rationale": "x"},
                           content_type="application/json")
    assert response.status_code == 403


def test_rules_trends_signals_and_notifications_pages_render(client, login):
    """DEV-CLASS Q10-PQS: the escalation rules, trend charts, signals and notifications pages."""
    d = h.deviation("MAD")
    h.classify(d, "critical")
    login("qa")
    rules = client.get("/quality/rules/").content.decode()
    assert "Set the rule" in rules and "In force" in rules
    trends = client.get("/quality/trends/").content.decode()
    assert "<svg" in trends and "Deviations by site" in trends
    assert client.get("/quality/signals/").status_code == 200
    notes = client.get("/quality/notifications/").content.decode()
    assert d.reference in notes
    home = client.get("/").content.decode()
    assert "unread notification" in home
    response = client.post("/quality/notifications/", {})
    assert response.status_code == 302
    assert "unread notification" not in client.get("/").content.decode()
