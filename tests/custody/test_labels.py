"""Labels of the collection bag, the in-process container and the final product."""

from __future__ import annotations

import datetime as dt

import pytest

from pocare.custody import labels
from pocare.custody.events import CustodyEvent
from pocare.custody.isbt import coi_printed
from pocare.custody.models import HandoffKind
from pocare.ledger.models import Event
from tests.custody.helpers import accepted, collect, completed_batch, scan, to_manufacture

pytestmark = pytest.mark.django_db


def test_the_bag_label_has_every_label_field(people):
    """LABEL ISBT-DIN ISBT-COI ATMP-TRACE: unique product id and proper name, recipient id, end of
    collection with its zone, processing facility, expiry, DIN and COI; the bar code is the DIN."""
    o = accepted("MAD", "LIS")
    c = collect(o)
    content = labels.label_content(o, f"bag-{c.pk}")
    local_end = c.collection_ended_at.astimezone(c.collection_site.tz)
    assert content.recipient_id == o.recipient_id and c.din_printed in content.product_id
    assert o.product.name in content.proper_name and "autologous" in content.proper_name
    assert local_end.strftime("%Y-%m-%d %H:%M") in content.collection_end
    assert local_end.tzname() in content.collection_end
    assert "P1001" in content.processing_facility and content.expiry
    assert content.din == c.din_printed and content.coi == coi_printed(o.coi)
    assert content.barcode == f"={c.din}{c.flags}"
    svg = labels.label_svg(content)
    assert svg.startswith("<svg") and o.recipient_id in svg and c.din in svg and "<path" in svg
    import xml.etree.ElementTree as ET

    ET.fromstring(svg)  # noqa: S314 (our own output) — well-formed
    modules = labels.code128_modules(content.barcode)
    assert modules.startswith("11010010000") and modules.endswith("1100011101011")  # start B, stop
    assert "<svg" in labels.code128_svg(content.barcode) and "<svg" in labels.qr_svg(content)
    assert o.recipient_id in labels.qr_payload(content)
    with pytest.raises(labels.LabelError):
        labels.label_content(o, "bag-999999")


def test_product_labels_carry_the_coi_and_an_expiry(people):
    """LABEL ISBT-COI ATMP-TRACE: in-process and final labels show COI and DIN; the final product's
    expiry follows from its storage and the end of manufacture."""
    o = accepted()
    c = collect(o)
    assert labels.containers_of(o) == [f"bag-{c.pk}"]
    to_manufacture(o, c)
    batch = completed_batch(o, c)
    scan(o, HandoffKind.CRYOPRESERVATION, o.coi)
    assert labels.containers_of(o) == [f"bag-{c.pk}", "in-process", "final"]
    final = labels.label_content(o, "final")
    assert final.barcode == o.coi and batch.reference in final.product_id and final.din == c.din_printed
    assert batch.masterfile_version.content["shelf_life"]["cryopreserved_product_days"] == 365
    expiry = (batch.ended_at + dt.timedelta(days=365)).astimezone(o.site.tz)
    assert expiry.strftime("%Y-%m-%d %H:%M") in final.expiry and "cryopreserved" in final.expiry
    assert "in-process" in labels.label_content(o, "in-process").expiry.lower()


def test_a_final_label_gets_no_invented_expiry_when_the_master_file_states_none(people):
    """LABEL POC-1: the expiry comes from the batch's master-file version; without a shelf life for
    how the product is kept, the label says so instead of printing a date."""
    o = accepted()
    c = collect(o)
    to_manufacture(o, c)
    batch = completed_batch(o, c)
    scan(o, HandoffKind.FRESH_HOLD, o.coi)
    version = batch.masterfile_version
    content = {**version.content, "shelf_life": {"cryopreserved_product_days": 365}}
    type(version).objects.filter(pk=version.pk).update(content=content)
    expiry = labels.label_content(o, "final").expiry
    assert expiry.startswith("Not set") and f"version {version.number}" in expiry and "fresh" in expiry


def test_label_downloads_are_recorded(client, login, people):
    """LABEL P11-10e: the SVG label and the PDF sheet download, and each printing is a ledger event."""
    o = accepted()
    c = collect(o)
    login("physician.mad")
    response = client.post(f"/custody/orders/{o.pk}/labels/bag-{c.pk}.svg")
    assert response.status_code == 200 and response["Content-Type"] == "image/svg+xml"
    assert c.din.encode() in response.content
    response = client.post(f"/custody/orders/{o.pk}/labels.pdf")
    assert response.status_code in (200, 503)
    if response.status_code == 200:
        assert response.content.startswith(b"%PDF")
    assert Event.objects.filter(event_type=CustodyEvent.LABEL_PRINTED, object_id=str(o.pk)).count() == (
        2 if response.status_code == 200 else 1)
    assert client.post(f"/custody/orders/{o.pk}/labels/final.svg").status_code == 404
