"""The custody pages and API: scoping by site, forms calling the services, blocked scans shown."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from pocare.custody.models import Handoff, HandoffOutcome, OrderStatus, TherapyOrder
from tests.custody.helpers import accepted, collect, effective_at, order

pytestmark = pytest.mark.django_db

#: An hour of logger readings a few hours before now: inside the window of a shipment dispatched
#: in the test (dispatch less 12 h to now plus 5 min).
HOUR = (timezone.now() - dt.timedelta(hours=3)).strftime("%Y-%m-%dT%H")
GOOD = f"timestamp,temperature_c\n{HOUR}:00:00Z,4.1\n{HOUR}:10:00Z,9.0\n"


def test_orders_are_seen_at_their_manufacturing_and_treating_sites_only(client, login, people):
    """P11-10g ATMP-TRACE: an order made at MAD for a LIS patient is visible at MAD, LIS and the
    Control Site; another site's people get 404 on its page and do not see it listed."""
    o = accepted("MAD", "LIS")
    for username, status in (("operator.mad", 200), ("physician.lis", 200), ("qa", 200), ("inspector", 200),
                             ("operator.muc", 404), ("navigator.gro", 404)):
        client.logout()
        login(username)
        assert client.get(f"/custody/orders/{o.pk}/").status_code == status, username
        listed = o.coi in client.get("/custody/").content.decode()
        assert listed == (status == 200), username
        api = client.get(f"/api/custody/orders/{o.pk}/")
        assert api.status_code == status, username
        ids = [row["id"] for row in client.get("/api/custody/orders/").json()["results"]]
        assert (o.pk in ids) == (status == 200)


def test_the_order_is_created_and_accepted_through_the_forms(client, login, people):
    """ISBT-COI P11-10g: the physician orders through the form, the site manager accepts it."""
    effective_at("MAD")
    login("physician.mad")
    assert client.get("/custody/orders/new/").status_code == 200
    response = client.post("/custody/orders/new/", {
        "treating_site": "MAD", "site": "MAD", "product": "CD19-CART", "recipient_id": "PT-77",
        "recipient_weight_kg": "81.0", "indication": "r/r LBCL", "reason": "Referral"})
    assert response.status_code == 302, response.content.decode()[:2000]
    o = TherapyOrder.objects.get(recipient_id="PT-77")
    bad = client.post("/custody/orders/new/", {"treating_site": "MAD", "site": "MAD", "product": "CD19-CART",
                                               "recipient_id": "", "recipient_weight_kg": "x", "reason": ""})
    assert bad.status_code == 400
    client.logout()
    login("manager.mad")
    page = client.get(f"/custody/orders/{o.pk}/").content.decode()
    assert "Accept and assign the COI" in page
    assert client.post(f"/custody/orders/{o.pk}/accept/", {"reason": "Slot free"}).status_code == 302
    o.refresh_from_db()
    assert o.status == OrderStatus.ACCEPTED and o.coi in client.get(f"/custody/orders/{o.pk}/").content.decode()


def test_collection_form_records_local_time_at_the_collection_site(client, login, people):
    """ATMP-SM ISBT-DIN: the collection form takes local times at the treating site; the DIN is shown."""
    o = accepted("MAD", "LIS")
    login("physician.lis")
    response = client.post(f"/custody/orders/{o.pk}/collections/", {
        "collection_started_at": "2026-01-10T08:00", "collection_ended_at": "2026-01-10T12:30", "volume_ml": "240",
        "donor_tests": "HIV: negative\nHBsAg: negative", "autologous": "on", "reason": "Apheresis"})
    assert response.status_code == 302, response.content.decode()[:3000]
    c = o.collections.get()
    assert c.collection_ended_at.astimezone(c.collection_site.tz).strftime("%H:%M") == "12:30"
    assert c.din in client.get(f"/custody/orders/{o.pk}/").content.decode()


def test_a_blocked_scan_on_the_page_shows_the_deviation_in_red(client, login, people):
    """ATMP-TRACE P11-10f: the scan form blocks another patient's bag; the page answers 409 naming
    the field, shows the attempt in the timeline with its deviation reference."""
    o = accepted()
    c = collect(o)
    other = collect(accepted(recipient="PT-2"))
    login("physician.mad")
    response = client.post(f"/custody/orders/{o.pk}/handoffs/", {
        "kind": "collection", "collection": c.pk, "presented_identifier": other.din_printed, "location": "Ward 3"})
    assert response.status_code == 409
    blocked = Handoff.objects.get(order=o, outcome=HandoffOutcome.BLOCKED)
    page = response.content.decode()
    assert blocked.deviation.reference in page and "handoff-blocked" in page and "Hand-off blocked" in page
    assert 'id="id_handoff_presented_identifier_error"' in page  # the hand-off form's own ids
    response = client.post(f"/custody/orders/{o.pk}/handoffs/", {
        "kind": "collection", "collection": c.pk, "presented_identifier": c.din_printed, "location": "Ward 3"})
    assert response.status_code == 302
    page = client.get(f"/custody/orders/{o.pk}/").content.decode()
    assert blocked.deviation.reference in page and "Completed" in page


def test_shipment_and_csv_upload_through_the_page(client, login, people):
    """ATMP-TRACE: dispatching a shipment and uploading a CSV; the chart and the excursion show."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    o = accepted()
    collect(o)
    login("physician.mad")
    assert client.post(f"/custody/orders/{o.pk}/shipments/", {"leg": "apheresis", "logger_id": "TL-1",
                                                              "reason": "Courier"}).status_code == 302
    shipment = o.shipments.get()
    bad = client.post(f"/custody/shipments/{shipment.pk}/upload/",
                      {"csv_file": SimpleUploadedFile("log.csv", b"timestamp,temperature_c\nyesterday,4\n")})
    assert bad.status_code == 400 and "row 1:" in bad.content.decode()
    ok = client.post(f"/custody/shipments/{shipment.pk}/upload/",
                     {"csv_file": SimpleUploadedFile("log.csv", GOOD.encode())})
    assert ok.status_code == 302
    page = client.get(f"/custody/orders/{o.pk}/").content.decode()
    assert 'class="temp-chart"' in page and "1 excursion" in page and shipment.uploads.get().deviation.reference in page


def test_api_handoff_and_temperatures(client, login, people):
    """ATMP-TRACE P11-10f: the API records a scan (201), a mismatch answers 409 with the deviation,
    malformed input answers 400 naming the field."""
    from pocare.custody import services

    o = accepted()
    c = collect(o)
    login("physician.mad")
    url = f"/api/custody/orders/{o.pk}/handoffs/"
    created = client.post(url, {"kind": "collection", "presented_identifier": c.din, "collection": c.pk},
                          content_type="application/json")
    assert created.status_code == 201 and created.json()["outcome"] == "completed"
    blocked = client.post(url, {"kind": "dispatch_to_site", "presented_identifier": "P100126999999"},
                          content_type="application/json")
    assert blocked.status_code == 409 and blocked.json()["deviation"].startswith("DEV-MAD-")
    assert blocked.json()["handoff"]["outcome"] == "blocked"
    for body in ({"kind": "teleport", "presented_identifier": "x"}, {"kind": "collection"},
                 {"kind": "collection", "presented_identifier": "x", "collection": 99999999}):
        response = client.post(url, body, content_type="application/json")
        assert response.status_code == 400, (body, response.content)
    out_of_order = client.post(url, {"kind": "infusion", "presented_identifier": o.coi}, content_type="application/json")
    assert out_of_order.status_code == 400 and "kind" in out_of_order.json()
    shipment = services.shipment_dispatch(actor=people["physician.mad"], order=o, leg="apheresis", logger_id="L1",
                                          reason="x")
    turl = f"/api/custody/shipments/{shipment.pk}/temperatures/"
    bad = client.post(turl, {"rows": [{"timestamp": f"{HOUR}:00:00", "temperature_c": 4}]},
                      content_type="application/json")
    assert bad.status_code == 400 and "row 1:" in bad.json()["rows"][1]
    assert client.post(turl, {"rows": "x"}, content_type="application/json").status_code == 400
    assert client.post(turl, "{", content_type="application/json").status_code == 400
    ok = client.post(turl, {"rows": [{"timestamp": f"{HOUR}:00:00Z", "temperature_c": 4.5}]},
                     content_type="application/json")
    assert ok.status_code == 201 and ok.json()["readings"] == 1
    detail = client.get(f"/api/custody/orders/{o.pk}/").json()
    assert detail["coi"] == o.coi and len(detail["handoffs"]) == 2 and detail["collections"][0]["din"] == c.din
    client.logout()
    login("operator.lis")
    assert client.post(url, {"kind": "collection", "presented_identifier": c.din},
                       content_type="application/json").status_code == 404


def test_a_requested_order_shows_no_coi_and_no_scan_form(client, login, people):
    """ISBT-COI: before acceptance there is no COI and nothing to scan."""
    o = order()
    login("operator.mad")
    page = client.get(f"/custody/orders/{o.pk}/").content.decode()
    assert "COI not assigned yet" in page and "Verify and record" not in page
