"""Purchase requests (pocare.supply.purchases): raised from the reorder page by a site's materials manager,
approved (signed) by the site's manager or QA, ordered, received in one delivery or several (each a lot into
quarantine; never more than ordered) or cancelled; what an open request has still to deliver counts against
the quantity to order; the approval is a work-queue item; another site's is a 404."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from pocare.core import worklist
from pocare.ledger.canonical import content_hash
from pocare.ledger.models import Event, Signature
from pocare.manufacturing.models import LotStatus, MaterialLot
from pocare.network.models import Site
from pocare.supply import purchases, reorder, selectors
from pocare.supply.models import MovementKind, PurchaseRequest, PurchaseStatus, StockMovement
from tests.conftest import PASSWORD
from tests.manufacturing import helpers as h
from tests.supply import helpers as s

pytestmark = pytest.mark.django_db


def _raise(quantity: object = 20, *, who: str = "qc.mad", **over: object) -> PurchaseRequest:
    fields = {"site": Site.objects.get(code="MAD"), "material_code": s.SYRINGE, "supplier": s.supplier(),
              "quantity": quantity, "reason": "Below the reorder point", **over}
    return purchases.purchase_request(actor=h.user(who), **fields)  # type: ignore[arg-type]


def _client(username: str) -> Client:
    client = Client()
    client.force_login(h.user(username))
    return client


def test_a_purchase_request_goes_from_requested_to_received_with_a_signed_approval():
    """SUP-STOCK: requested by QC, approved by the site's manager (signed, with the reason), ordered,
    received naming the lot that delivered it; each step a ledger event; the approval is a work-queue
    item for the manager while it waits, and the operator cannot approve."""
    s.store("MAD")
    request = _raise(20)
    assert request.reference.startswith("PR-") and request.status == PurchaseStatus.REQUESTED
    assert request.unit == "count"
    queue = next(q for q in worklist.registered() if q.key == "supply-purchase-approval")
    assert [r.pk for r in queue.pending(h.user("manager.mad"))] == [request.pk]
    assert not list(queue.pending(h.user("manager.lis")))
    with pytest.raises(PermissionDenied):
        purchases.purchase_approve(actor=h.user("qc.mad"), request=request, reason="ok", credentials=h.creds("qc.mad"))
    with pytest.raises(ValidationError):
        purchases.purchase_order(actor=h.user("qc.mad"), request=request, order_number="PO-1")
    approved = purchases.purchase_approve(actor=h.user("manager.mad"), request=request, reason="Booked schedule",
                                          credentials=h.creds("manager.mad"))
    assert approved.status == PurchaseStatus.APPROVED
    assert Signature.objects.filter(record_type="supply.PurchaseRequest", record_id=str(request.pk),
                                    meaning="approved").exists()
    assert not list(queue.pending(h.user("manager.mad")))
    ordered = purchases.purchase_order(actor=h.user("qc.mad"), request=request, order_number="BD-PO-5531")
    lot = s.received(20)
    received = purchases.purchase_receive(actor=h.user("qc.mad"), request=ordered, lots=[lot], reason="Delivered")
    assert received.status == PurchaseStatus.RECEIVED and list(received.lots.all()) == [lot]
    types = list(Event.objects.filter(object_type="supply.PurchaseRequest", event_type__startswith="supply.").order_by("pk")
                 .values_list("event_type", flat=True))
    assert types == ["supply.purchase_requested", "supply.purchase_approved", "supply.purchase_ordered",
                     "supply.purchase_received"]
    with pytest.raises(ValidationError):
        purchases.purchase_cancel(actor=h.user("qc.mad"), request=received, reason="Too late")
    # The approval still verifies once the request has moved on (ordered, received).
    signature = Signature.objects.get(record_type="supply.PurchaseRequest", record_id=str(request.pk))
    assert content_hash(PurchaseRequest.objects.get(pk=request.pk).signed_content()) == signature.record_hash


def test_a_cancelled_request_keeps_its_reason_and_another_site_sees_nothing():
    """SUP-STOCK: cancelled with a reason; Lisbon's people get a 404 on Madrid's request; QA sees it."""
    s.store("MAD")
    request = _raise(5)
    cancelled = purchases.purchase_cancel(actor=h.user("manager.mad"), request=request, reason="Covered by a transfer")
    assert cancelled.status == PurchaseStatus.CANCELLED and cancelled.close_reason == "Covered by a transfer"
    url = reverse("supply:purchase", args=[request.reference])
    assert _client("qc.lis").get(url).status_code == 404
    assert _client("manager.lis").get(url).status_code == 404
    assert _client("qa").get(url).status_code == 200
    with pytest.raises(PermissionDenied):
        purchases.purchase_cancel(actor=h.user("qc.lis"), request=request, reason="x")


def test_open_requests_count_against_the_quantity_to_order():
    """SUP-STOCK: no double ordering: the reorder page's quantity to order is less what open requests
    already ask for; a cancelled request no longer counts."""
    s.store("MAD")
    lot = s.received(1)
    mad = Site.objects.get(code="MAD")
    # One syringe left against a consumption history: put a need on the books by hand.
    need = reorder.Need("MAD", mad.pk, s.SYRINGE, "Syringe", "count", Decimal(1), Decimal(0), 2, Decimal(10),
                        Decimal(5))
    assert need.order_quantity > 0
    with_order = reorder.Need(*[getattr(need, f) for f in ("site", "site_id", "material_code", "name", "unit", "stock",
                                                           "depot_stock", "booked_batches", "booked_need",
                                                           "weekly_history")],
                              on_order=need.order_quantity - 3)
    assert with_order.order_quantity == 3
    request = _raise(7)
    assert purchases.open_quantities({mad.pk}) == {(mad.pk, s.SYRINGE): Decimal(7)}
    purchases.purchase_cancel(actor=h.user("qc.mad"), request=request, reason="Wrong quantity")
    assert purchases.open_quantities({mad.pk}) == {}
    assert lot.pk


@pytest.mark.parametrize("quantity", ["0", "-3", "9" * 400, "2\x00", "1.23456"])
def test_a_hostile_request_stores_nothing_and_names_the_field(quantity):
    """SUP-STOCK: quantity 0, negative, 400 digits, NUL, too many decimals: 400 naming the field."""
    s.store("MAD")
    mad = Site.objects.get(code="MAD")
    page = _client("qc.mad").post(reverse("supply:purchases"), {
        "site": mad.pk, "material_code": s.SYRINGE, "supplier": s.supplier().pk, "quantity": quantity,
        "reason": "Below the reorder point"})
    body = page.content.decode()
    assert page.status_code == 400 and ('id="id_quantity_error"' in body or "Field <strong>quantity</strong>" in body)
    assert not PurchaseRequest.objects.exists()


def test_a_request_far_above_the_proposal_or_from_an_unapproved_supplier_is_refused():
    """SUP-STOCK: at most three times what the reorder page proposed; only an approved supplier."""
    s.store("MAD")
    with pytest.raises(ValidationError) as refused:
        _raise(100, proposed=Decimal(10))
    assert "quantity" in refused.value.message_dict
    with pytest.raises(ValidationError) as refused:
        _raise(5, supplier=s.supplier("Other", material="TS520"))
    assert "supplier" in refused.value.message_dict
    assert not PurchaseRequest.objects.exists()


def test_the_pages_raise_and_approve_with_a_signature():
    """SUP-STOCK: raised on the list page, approved on its page with a signature; a wrong password is
    refused naming the field and nothing changes."""
    s.store("MAD")
    mad = Site.objects.get(code="MAD")
    page = _client("qc.mad").post(reverse("supply:purchases"), {
        "site": mad.pk, "material_code": s.SYRINGE, "supplier": s.supplier().pk, "quantity": "12",
        "proposed": "10", "reason": "Below the reorder point"})
    request = PurchaseRequest.objects.get()
    assert page.status_code == 302 and page["Location"] == reverse("supply:purchase", args=[request.reference])
    manager = _client("manager.mad")
    assert request.reference in manager.get(reverse("supply:purchases")).content.decode()
    wrong = manager.post(page["Location"], {"action": "approve", "approve-reason": "ok",
                                            "approve-username": "manager.mad", "approve-password": "nope"})
    assert wrong.status_code == 400
    request.refresh_from_db()
    assert request.status == PurchaseStatus.REQUESTED
    done = manager.post(page["Location"], {"action": "approve", "approve-reason": "Booked schedule",
                                           "approve-username": "manager.mad", "approve-password": PASSWORD})
    assert done.status_code == 302
    request.refresh_from_db()
    assert request.status == PurchaseStatus.APPROVED and request.approved_by == h.user("manager.mad")
    assert reverse("supply:purchases") in _client("qc.mad").get(reverse("supply:reorder")).content.decode()


# --- deliveries: a request received in several lots ----------------------------------------------------


def _ordered(quantity: object = 20) -> PurchaseRequest:
    s.store("MAD")
    request = _raise(quantity)
    purchases.purchase_approve(actor=h.user("manager.mad"), request=request, reason="Booked schedule",
                               credentials=h.creds("manager.mad"))
    return purchases.purchase_order(actor=h.user("qc.mad"), request=request, order_number="BD-PO-7001")


def _deliver(request: PurchaseRequest, quantity: object, lot_number: str, **over: object):
    fields = {"location": s.store("MAD"), "lot_number": lot_number,
              "expiry_date": (timezone.now() + dt.timedelta(days=300)).date(), "quantity": quantity,
              "reason": "Delivery note checked", **over}
    return purchases.purchase_delivery(actor=h.user("qc.mad"), request=request, **fields)  # type: ignore[arg-type]


def test_a_request_is_received_in_several_deliveries_and_closes_when_complete():
    """SUP-STOCK: 20 ordered, delivered as 8 (lot A) then 12 (lot B): each delivery a lot received into
    quarantine (its stock counted, not usable), the request ordered / received / outstanding 20/8/12 after
    the first, and received (closed) after the second; what is outstanding, not what was ordered, counts
    against the quantity to order; each delivery an event, the closing one too."""
    request = _ordered(20)
    mad = Site.objects.get(code="MAD")
    first = _deliver(request, 8, "BD-A")
    assert first.lot.status == LotStatus.QUARANTINE and selectors.lot_stock(first.lot) == 8
    request.refresh_from_db()
    assert request.status == PurchaseStatus.ORDERED and purchases.delivered(request) == 8
    assert purchases.open_quantities({mad.pk}) == {(mad.pk, s.SYRINGE): Decimal(12)}
    page = _client("manager.mad").get(reverse("supply:purchase", args=[request.reference])).content.decode()
    assert "20 / 8 / 12 count" in page and "BD-A" in page
    second = _deliver(request, 12, "BD-B")
    request.refresh_from_db()
    assert request.status == PurchaseStatus.RECEIVED and request.closed_by == h.user("qc.mad")
    assert sorted(request.lots.values_list("lot_number", flat=True)) == ["BD-A", "BD-B"]
    assert second.movement.kind == MovementKind.RECEIVED and second.movement.quantity == 12
    assert purchases.open_quantities({mad.pk}) == {}
    types = list(Event.objects.filter(object_type="supply.PurchaseRequest", object_id=str(request.pk))
                 .order_by("pk").values_list("event_type", flat=True))
    assert types[-3:] == ["supply.purchase_delivered", "supply.purchase_delivered", "supply.purchase_received"]
    with pytest.raises(ValidationError) as refused:
        _deliver(request, 1, "BD-C")
    assert "quantity" in refused.value.message_dict  # closed: nothing more is received against it


def test_an_over_receipt_is_refused_naming_the_quantity_and_stores_nothing():
    """SUP-STOCK: 10 ordered, 6 received: a delivery of 5 is more than the 4 outstanding — refused naming
    ``quantity``, no lot, no movement; then 4 closes it."""
    request = _ordered(10)
    _deliver(request, 6, "BD-1")
    movements = StockMovement.objects.count()
    with pytest.raises(ValidationError) as refused:
        _deliver(request, 5, "BD-2")
    assert "quantity" in refused.value.message_dict and "Only 4 count" in str(refused.value)
    assert StockMovement.objects.count() == movements
    assert not MaterialLot.objects.filter(lot_number="BD-2").exists()
    _deliver(request, 4, "BD-2")
    request.refresh_from_db()
    assert request.status == PurchaseStatus.RECEIVED


def test_a_delivery_before_the_order_or_by_another_site_is_refused():
    """SUP-STOCK: a request not yet ordered takes no delivery; Lisbon's people receive nothing against
    Madrid's request, nor into a location of their own site."""
    s.store("MAD")
    waiting = _raise(10)
    with pytest.raises(ValidationError) as refused:
        _deliver(waiting, 1, "BD-X")
    assert "quantity" in refused.value.message_dict
    request = _ordered(10)
    with pytest.raises(PermissionDenied):
        purchases.purchase_delivery(actor=h.user("qc.lis"), request=request, location=s.store("LIS"),
                                    lot_number="BD-Y", expiry_date=timezone.now().date() + dt.timedelta(days=90),
                                    quantity=1, reason="x")
    with pytest.raises(ValidationError) as refused:
        _deliver(request, 1, "BD-Z", location=s.store("LIS"))
    assert "location" in refused.value.message_dict


@pytest.mark.parametrize(("field", "value"), [
    ("quantity", "11"), ("quantity", "0"), ("quantity", "9" * 400), ("quantity", "1\x00"), ("quantity", "1e400"),
    ("lot_number", "LOT\x00"), ("lot_number", "x" * 61), ("expiry_date", "0001-01-01"), ("expiry_date", "9999-12-31"),
    ("reason", ""), ("unit_price", "-1"), ("unit_price", "NaN"), ("unit_price", "9" * 400), ("unit_price", "1e400"),
    ("unit_price", "0.00001"), ("unit_price", "1000001"), ("unit_price", "14,200"),
])
def test_the_delivery_form_refuses_hostile_input_with_a_400_naming_the_field(field, value):
    """SUP-STOCK COST-BATCH: more than outstanding, 0, 400 digits, NUL, an expiry in year 1 or 9999, no reason, an
    invoice price below 0, not a number, past €1,000,000 or with a fifth decimal: a 400 naming the field, and
    nothing is received."""
    request = _ordered(10)
    data = {"action": "deliver", "deliver-location": s.store("MAD").pk, "deliver-lot_number": "BD-9",
            "deliver-expiry_date": (timezone.now() + dt.timedelta(days=300)).date().isoformat(),
            "deliver-quantity": "3", "deliver-reason": "Delivery note checked", f"deliver-{field}": value}
    page = _client("qc.mad").post(reverse("supply:purchase", args=[request.reference]), data)
    body = page.content.decode()
    assert page.status_code == 400, body
    assert f'id="id_deliver-{field}_error"' in body or f"Field <strong>deliver-{field}</strong>" in body, body
    assert not request.deliveries.exists() and not MaterialLot.objects.filter(lot_number="BD-9").exists()


def test_the_page_receives_a_delivery():
    """SUP-STOCK COST-BATCH: the delivery form on the request's page (confirmed in the browser) receives the lot
    with the invoice price of a unit, shown among the deliveries."""
    request = _ordered(10)
    page = _client("qc.mad").post(reverse("supply:purchase", args=[request.reference]), {
        "action": "deliver", "deliver-location": s.store("MAD").pk, "deliver-lot_number": "BD-P",
        "deliver-expiry_date": (timezone.now() + dt.timedelta(days=300)).date().isoformat(),
        "deliver-quantity": "10", "deliver-unit_price": "0.85", "deliver-reason": "Delivery note checked"})
    assert page.status_code == 302
    request.refresh_from_db()
    assert request.status == PurchaseStatus.RECEIVED and purchases.delivered(request) == 10
    assert request.deliveries.get().unit_price == Decimal("0.85")
    shown = _client("qc.mad").get(reverse("supply:purchase", args=[request.reference])).content.decode()
    assert "Receive a delivery" not in shown and "10 / 10 / 0 count" in shown
    assert '<td class="num">0.85</td>' in shown
