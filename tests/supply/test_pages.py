"""The stock pages (SUP-STOCK): a delivery received from the stock page, released (signed), counted (signed),
transferred, issued to a batch and returned, and destroyed from the lot's stock card, each a movement the card then lists; every refusal is a
400 naming the field, storing nothing; another site's people neither see the card nor act on it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from pocare.manufacturing.models import MaterialLot
from pocare.supply import selectors
from pocare.supply.models import MovementKind, StockMovement
from tests.conftest import PASSWORD
from tests.manufacturing import helpers as h
from tests.supply import helpers as s


def _client(username: str) -> Client:
    client = Client()
    client.force_login(h.user(username))
    return client


def _receive(client: Client, **changes: Any) -> Any:
    supplier = s.supplier()
    data = {"location": s.store("MAD").pk, "supplier": supplier.pk, "material_code": s.SYRINGE,
            "lot_number": "BD-2026-0042", "expiry_date": (timezone.now().date() + dt.timedelta(days=300)).isoformat(),
            "quantity": "40", "reason": "Goods receipt, delivery note 7731 checked"}
    return client.post(reverse("supply:stock"), {**data, **changes})


@pytest.mark.django_db
def test_a_delivery_is_received_released_counted_transferred_and_destroyed_from_its_pages():
    """SUP-STOCK P11-200: the QC analyst receives 40 syringes into quarantine, releases them (signed), counts
    38 (signed adjustment of −2), moves 10 to a second location and destroys 1; the card lists each movement
    and the stock is what they add up to."""
    qc = _client("qc.mad")
    answer = _receive(qc)
    lot = MaterialLot.objects.get(lot_number="BD-2026-0042")
    assert answer.status_code == 302 and answer.url == reverse("supply:lot", args=[lot.pk])
    assert lot.status == "quarantine" and selectors.lot_stock(lot) == 40
    card = reverse("supply:lot", args=[lot.pk])
    assert "Release or reject" in qc.get(card).content.decode()
    assert qc.post(card, {"action": "decide", "decide-decision": "released", "decide-reason": "CoA checked",
                          "decide-username": "qc.mad", "decide-password": PASSWORD}).status_code == 302
    lot.refresh_from_db()
    assert lot.status == "released"
    assert qc.post(card, {"action": "count", "count-location": s.store("MAD").pk, "count-counted": "38",
                          "count-reason": "Cycle count, two broken in the box", "count-password": PASSWORD,
                          "count-username": "qc.mad"}).status_code == 302
    fridge = s.store("MAD", "FRIDGE")
    assert qc.post(card, {"action": "transfer", "transfer-source": s.store("MAD").pk,
                          "transfer-destination": fridge.pk, "transfer-quantity": "10",
                          "transfer-reason": "To the cleanroom fridge"}).status_code == 302
    assert qc.post(card, {"action": "destroy", "destroy-location": fridge.pk, "destroy-quantity": "1",
                          "destroy-reason": "Packaging torn"}).status_code == 302
    kinds = list(StockMovement.objects.filter(lot=lot).order_by("pk").values_list("kind", "quantity"))
    assert kinds == [(MovementKind.RECEIVED, Decimal(40)), (MovementKind.RELEASED, 0), (MovementKind.ADJUSTED, -2),
                     (MovementKind.TRANSFERRED_OUT, -10), (MovementKind.TRANSFERRED_IN, 10),
                     (MovementKind.DESTROYED, -1)]
    assert selectors.lot_stock(lot) == 37 and selectors.lot_stock(lot, location=fridge) == 9
    page = qc.get(card).content.decode()
    assert "Destroyed" in page and "Packaging torn" in page and "Release or reject" not in page


@pytest.mark.django_db
@pytest.mark.parametrize(("changes", "field"), [
    ({"quantity": "9" * 400}, "quantity"),
    ({"quantity": "-3"}, "quantity"),
    ({"quantity": "NaN"}, "quantity"),
    ({"expiry_date": "0001-01-01"}, "expiry_date"),
    ({"expiry_date": "9999-12-31"}, "expiry_date"),
    ({"lot_number": ""}, "lot_number"),
    ({"material_code": "NOT-IN-THE-BILL"}, "material_code"),
    ({"supplier": "999999"}, "supplier"),
])
def test_a_bad_delivery_is_a_400_naming_the_field_and_stores_nothing(changes, field):
    """SUP-STOCK: a quantity of 400 digits, negative or not a number, an expiry in year 1 or 9999, no lot
    number, a material not in any bill, a supplier that does not exist: a 400 naming the field, nothing
    stored, the page still works."""
    qc = _client("qc.mad")
    before = (MaterialLot.objects.count(), StockMovement.objects.count())
    answer = _receive(qc, **changes)
    assert answer.status_code == 400
    text = answer.content.decode()
    assert f'id="id_{field}_error"' in text or f"Field <strong>{field}</strong>" in text
    assert (MaterialLot.objects.count(), StockMovement.objects.count()) == before
    assert qc.get(reverse("supply:stock")).status_code == 200


@pytest.mark.django_db
def test_another_sites_people_neither_see_the_card_nor_act_and_bad_actions_are_refused():
    """SUP-STOCK A11-IAM: LIS's QC analyst gets a 404 for MAD's lot; the QP reads it and acts on nothing; an
    unknown action or a wrong password is a 400 and moves nothing."""
    lot = s.received(5)
    card = reverse("supply:lot", args=[lot.pk])
    assert _client("qc.lis").get(card).status_code == 404
    assert _client("qc.lis").post(card, {"action": "destroy", "destroy-location": s.store("MAD").pk,
                                         "destroy-quantity": "1", "destroy-reason": "x"}).status_code == 404
    qp = _client("qp")
    assert qp.get(card).status_code == 200 and "Cycle count" not in qp.get(card).content.decode()
    assert qp.post(card, {"action": "destroy"}).status_code == 403
    qc = _client("qc.mad")
    before = StockMovement.objects.count()
    assert qc.post(card, {"action": "launch"}).status_code == 400
    wrong = qc.post(card, {"action": "count", "count-location": s.store("MAD").pk, "count-counted": "4",
                           "count-reason": "Count", "count-username": "qc.mad", "count-password": "nope"})
    assert wrong.status_code == 400 and 'id="id_count-password_error"' in wrong.content.decode()
    assert StockMovement.objects.count() == before
    assert qc.get(reverse("supply:lot", args=[10**30])).status_code in (400, 404)


@pytest.mark.django_db
def test_material_is_issued_to_a_batch_in_progress_and_what_it_did_not_use_comes_back_from_the_card():
    """SUP-STOCK: from the lot's stock card the QC analyst issues 3 syringes to Madrid's batch in progress
    (outside the step's bill) and returns the 2 it did not use, each a movement naming the batch; stock is what
    the movements add up to. Returning more than left for the batch is a 400 naming the quantity; a batch of
    another site, one that never took the lot, 400 digits or none: a 400 naming the field; nothing moves."""
    from pocare.manufacturing.models import Batch

    batch = h.started_batch("MAD")
    lot = s.received(10)
    card = reverse("supply:lot", args=[lot.pk])
    store = s.store("MAD")
    qc = _client("qc.mad")

    def post(action: str, **changes: Any) -> Any:
        data = {"location": store.pk, "batch": batch.pk, "quantity": "3", "reason": "Spare kit", **changes}
        return qc.post(card, {"action": action, **{f"{action}-{k}": v for k, v in data.items()}})

    page = qc.get(card).content.decode()
    assert "Issue to a batch" in page and f'<option value="{batch.pk}">{batch}</option>' in page
    before = StockMovement.objects.count()
    other = Batch.objects.filter(site__code="LIS").first() or h.started_batch("LIS")
    for action, changes, field in [("issue", {"batch": other.pk}, "batch"), ("issue", {"quantity": "9" * 400},
                                                                               "quantity"),
                                   ("issue", {"quantity": ""}, "quantity"), ("return", {}, "batch")]:
        refused = post(action, **changes)
        assert refused.status_code == 400, (action, changes)
        text = refused.content.decode()
        assert f'id="id_{action}-{field}_error"' in text or f"<strong>{action}-{field}</strong>" in text, changes
    assert StockMovement.objects.count() == before
    assert post("issue").status_code == 302
    assert post("return", quantity="2", reason="Not opened").status_code == 302
    too_many = post("return", quantity="2")
    assert too_many.status_code == 400 and 'id="id_return-quantity_error"' in too_many.content.decode()
    moved = list(StockMovement.objects.filter(lot=lot, batch=batch).order_by("pk").values_list("kind", "quantity"))
    assert moved == [(MovementKind.ISSUED, Decimal(-3)), (MovementKind.RETURNED, Decimal(2))]
    assert selectors.lot_stock(lot) == 9
    page = qc.get(card).content.decode()
    assert "Not opened" in page and batch.reference in page
