"""Transfers of stock between sites (pocare.supply.transfers): the depot at Madrid sends a lot to Lisbon
with a data logger; stock at both sites is what the movements add up to, stock in transit is usable at
neither, the receipt releases the lot only when the logger read within the limits and the seal was
intact, and otherwise quarantines it and opens a deviation (or, when the lot there is already decided, holds
the stock on its transfer until QA releases or destroys it, signed); the logger's limits are the material's
storage range; wrong people and hostile input are refused."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from pocare.core import worklist
from pocare.ledger.canonical import content_hash
from pocare.ledger.models import Event, Signature
from pocare.manufacturing.models import LotStatus, MaterialLot
from pocare.network.models import Site
from pocare.quality.models import Deviation
from pocare.supply import answers, recall, selectors, services, transfers
from pocare.supply.models import LocationKind, MovementKind, StockMovement, Transfer, TransferStatus
from tests.conftest import PASSWORD
from tests.manufacturing import helpers as h
from tests.supply import helpers as s
from tests.supply.test_step import at_count_step, refused_at_step

pytestmark = pytest.mark.django_db


def _depot_lot(quantity: Any = 10) -> tuple[Any, MaterialLot]:
    depot = s.store("MAD", "DEPOT", kind=LocationKind.DEPOT, serves=("MAD", "LIS"))
    s.storage(s.SYRINGE, low="15", high="25")
    return depot, s.received(quantity, location=depot)


def _send(depot: Any, lot: MaterialLot, quantity: Any = 4, *, actor: str = "qc.mad", to: str = "LIS",
          **over: Any) -> Transfer:
    fields = {"quantity": quantity, "logger_id": "LOG-7781", "carrier": "Transportes Ibéricos, J. Sousa", "seal": "S-0042", "reason": "Weekly supply", **over}
    return transfers.transfer_dispatch(actor=h.user(actor), source=depot, destination=s.store(to), lot=lot, **fields)


def _csv(celsius: list[str], *, start: dt.datetime | None = None) -> str:
    start = start or timezone.now() - dt.timedelta(minutes=len(celsius) * 10)
    rows = [f"{(start + dt.timedelta(minutes=10 * i)).strftime('%Y-%m-%dT%H:%M:%SZ')},{c}"
            for i, c in enumerate(celsius)]
    return "timestamp,temperature_c\n" + "\n".join(rows) + "\n"


def _receive(transfer: Transfer, *, seal: bool = True) -> Transfer:
    return transfers.transfer_receive(actor=h.user("qc.lis"), transfer=transfer, handed_over_by="J. Sousa",
                                      seal_intact=seal, reason="Goods received")


def test_stock_at_both_sites_is_the_sum_of_movements_through_dispatch_and_receipt():
    """SUP-STOCK ATMP-TRACE: 10 at the MAD depot, 4 sent to LIS: in transit the 4 are at neither site
    (not usable at LIS, gone from MAD) and the trace shows the transfer; after a receipt with the logger
    in limits LIS holds 4 of a lot mirroring the source (released), MAD 6, every movement an event."""
    depot, lot = _depot_lot(10)
    sent = _send(depot, lot)
    assert sent.reference.startswith("TRF-") and sent.in_transit
    assert selectors.lot_stock(lot) == 6
    assert not MaterialLot.objects.filter(site__code="LIS", lot_number=lot.lot_number).exists()
    lis = Site.objects.get(code="LIS")
    assert not [f for f in selectors.fefo_proposal(site=lis, material_code=lot.material_code)
                if f.lot_number == lot.lot_number]  # in transit: not usable at the destination
    trace = recall.lot_trace(material_code=lot.material_code, lot_number=lot.lot_number)
    assert [t.reference for t in trace.transfers] == [sent.reference] and trace.transfers[0].in_transit

    stored = transfers.transfer_readings_upload(actor=h.user("qc.lis"), transfer=sent,
                                                csv_text=_csv(["18.5", "19", "21.25"]))
    assert stored == 3
    done = _receive(sent)
    there = done.destination_lot
    assert done.status == TransferStatus.RECEIVED and done.deviation is None and done.seal_intact
    assert there is not None and there.site.code == "LIS" and there.status == LotStatus.RELEASED
    assert (there.lot_number, there.supplier, there.expiry_date) == (lot.lot_number, lot.supplier, lot.expiry_date)
    assert selectors.lot_stock(there) == 4 and selectors.lot_stock(lot) == 6
    both = StockMovement.objects.filter(lot__lot_number=lot.lot_number, lot__material_code=lot.material_code)
    assert sum(m.quantity for m in both) == 10
    kinds = sorted(both.exclude(kind__in=[MovementKind.RELEASED]).values_list("kind", flat=True))
    assert kinds == ["received", "transferred_in", "transferred_out"]
    assert all(m.event_id for m in both)
    assert [f.quantity for f in selectors.fefo_proposal(site=lis, material_code=lot.material_code)
            if f.lot_number == lot.lot_number] == [4]
    types = set(Event.objects.values_list("event_type", flat=True))
    assert {"supply.transfer_dispatched", "supply.transfer_readings", "supply.transfer_received"} <= types
    trace = recall.lot_trace(material_code=lot.material_code, lot_number=lot.lot_number)
    assert sorted(held.site for held in trace.lots) == ["LIS", "MAD"]


@pytest.mark.parametrize("readings,seal,kind", [
    (["18", "31.5", "32", "20"], True, "temperature"),  # an excursion
    (None, True, "temperature"),  # no reading at all
    (["18", "19"], False, "custody"),  # the seal broken
])
def test_a_receipt_that_went_wrong_is_quarantined_with_a_deviation(readings, seal, kind):
    """SUP-STOCK: an excursion, missing readings or a broken seal: the lot at LIS is received in quarantine
    (its stock counted, not usable) and a deviation is opened at LIS naming the transfer."""
    depot, lot = _depot_lot(10)
    sent = _send(depot, lot)
    if readings:
        transfers.transfer_readings_upload(actor=h.user("qc.mad"), transfer=sent, csv_text=_csv(readings))
    done = _receive(sent, seal=seal)
    assert done.destination_lot is not None and done.destination_lot.status == LotStatus.QUARANTINE
    deviation = Deviation.objects.get(pk=done.deviation_id)
    assert deviation.kind == kind and deviation.site.code == "LIS" and done.reference in deviation.title
    assert selectors.lot_stock(done.destination_lot) == 4
    if readings and seal:
        assert done.excursions and done.excursions[0]["side"] == "high"


def test_stock_that_went_wrong_is_not_mixed_into_a_lot_already_released_at_the_site():
    """SUP-STOCK: LIS already holds the lot number, released; an excursion on the way does not touch that
    lot's signed release: the 4 are held on their transfer, counted at neither site, with a deviation."""
    depot, lot = _depot_lot(10)
    first = _send(depot, lot, 2)
    transfers.transfer_readings_upload(actor=h.user("qc.lis"), transfer=first, csv_text=_csv(["20"]))
    released = _receive(first).destination_lot
    second = _send(depot, lot, 4)
    transfers.transfer_readings_upload(actor=h.user("qc.lis"), transfer=second, csv_text=_csv(["20", "40"]))
    done = _receive(second)
    assert done.status == TransferStatus.HELD and done.deviation is not None and done.in_movement is None
    released.refresh_from_db()
    assert released.status == LotStatus.RELEASED and selectors.lot_stock(released) == 2
    assert selectors.lot_stock(lot) == 4


def test_the_wrong_sites_people_are_refused():
    """SUP-STOCK: Lisbon does not send from Madrid's depot; Madrid does not receive at Lisbon; the depot
    does not send to a site it does not serve; another site sees neither the transfer nor its page."""
    depot, lot = _depot_lot(10)
    with pytest.raises(PermissionDenied):
        _send(depot, lot, actor="qc.lis")
    with pytest.raises(PermissionDenied):
        _send(depot, lot, to="MUC")
    sent = _send(depot, lot)
    with pytest.raises(PermissionDenied):
        transfers.transfer_receive(actor=h.user("qc.mad"), transfer=sent, handed_over_by="x", seal_intact=True,
                                   reason="Received")
    with pytest.raises(PermissionDenied):
        transfers.transfer_readings_upload(actor=h.user("qc.muc"), transfer=sent, csv_text=_csv(["20"]))
    url = reverse("supply:transfer", args=[sent.reference])
    assert _client("qc.muc").get(url).status_code == 404
    assert _client("qc.lis").get(url).status_code == 200 and _client("qa").get(url).status_code == 200
    refused = _client("qc.mad").post(url, {"action": "receive", "receive-handed_over_by": "x",
                                           "receive-seal_intact": "yes", "receive-reason": "Received"})
    assert refused.status_code == 403
    sent.refresh_from_db()
    assert sent.in_transit


def _client(username: str) -> Client:
    client = Client()
    client.force_login(h.user(username))
    return client


@pytest.mark.parametrize("quantity", ["0", "-1", "9" * 400, "1\x00", "11", "1e400"])
def test_a_hostile_dispatch_stores_nothing_and_names_the_field(quantity):
    """SUP-STOCK: quantity 0, negative, 400 digits, NUL, more than the stock: 400 naming the field and
    nothing stored."""
    depot, lot = _depot_lot(10)
    before = StockMovement.objects.count()
    page = _client("qc.mad").post(reverse("supply:transfers"), {
        "source": depot.pk, "lot": lot.pk, "destination": s.store("LIS").pk, "quantity": quantity,
        "logger_id": "LOG-1", "carrier": "C", "seal": "S", "reason": "Supply"})
    body = page.content.decode()
    # The form names the field; a 400-digit number is refused before the view, naming it too.
    assert page.status_code == 400 and ('id="id_quantity_error"' in body or "Field <strong>quantity</strong>" in body), body
    assert not Transfer.objects.exists() and StockMovement.objects.count() == before


@pytest.mark.parametrize("field,value", [("logger_id", "LOG\x00"), ("seal", ""), ("carrier", "x" * 121)])
def test_a_hostile_logger_or_seal_is_refused_naming_the_field(field, value):
    """SUP-STOCK: a NUL, a missing seal, a carrier's name past its length: refused naming the field."""
    depot, lot = _depot_lot(10)
    with pytest.raises(ValidationError) as refused:
        _send(depot, lot, **{field: value})
    assert field in refused.value.message_dict
    assert not Transfer.objects.exists() and selectors.lot_stock(lot) == 10


def test_a_bad_logger_file_stores_nothing_and_a_lot_in_quarantine_is_not_sent():
    """SUP-STOCK: a file with an impossible reading stores nothing; a lot in quarantine is not sent."""
    depot, lot = _depot_lot(10)
    sent = _send(depot, lot)
    with pytest.raises(ValidationError) as refused:
        transfers.transfer_readings_upload(actor=h.user("qc.lis"), transfer=sent, csv_text=_csv(["20", "-500"]))
    assert "csv_file" in refused.value.message_dict and not sent.readings.exists()
    waiting = s.received(5, location=depot, release=False)
    with pytest.raises(ValidationError) as refused:
        _send(depot, waiting, 1)
    assert "lot" in refused.value.message_dict


def test_the_pages_dispatch_upload_and_receive():
    """SUP-STOCK: the list dispatches (then the detail page), the detail takes the CSV and the receipt."""
    depot, lot = _depot_lot(10)
    mad = _client("qc.mad")
    page = mad.post(reverse("supply:transfers"), {
        "source": depot.pk, "lot": lot.pk, "destination": s.store("LIS").pk, "quantity": "3",
        "logger_id": "LOG-1", "carrier": "C", "seal": "S-1",
        "reason": "Supply"})
    sent = Transfer.objects.get()
    assert page.status_code == 302 and page["Location"] == reverse("supply:transfer", args=[sent.reference])
    lis = _client("qc.lis")
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = lis.post(page["Location"], {"action": "upload", "upload-csv_file": SimpleUploadedFile(
        "log.csv", _csv(["20", "21"]).encode(), content_type="text/csv")})
    assert upload.status_code == 302 and sent.readings.count() == 2
    got = lis.post(page["Location"], {"action": "receive", "receive-handed_over_by": "Courier",
                                      "receive-seal_intact": "yes", "receive-reason": "Received"})
    assert got.status_code == 302
    sent.refresh_from_db()
    assert sent.status == TransferStatus.RECEIVED and sent.destination_lot.status == LotStatus.RELEASED
    listing = lis.get(reverse("supply:transfers")).content.decode()
    assert sent.reference in listing
    assert Decimal(selectors.lot_stock(sent.destination_lot)) == 3


@pytest.mark.skipif("connection.vendor == 'sqlite'",
                    reason="SQLite has one write lock for the whole database: no two dispatches run at once")
def test_two_dispatches_of_the_last_stock_at_once_one_wins(tx_db):
    """SUP-STOCK: two people send the last 5 of a lot at the same moment: one transfer is dispatched, the
    other refused naming the quantity; stock never goes below zero."""
    import threading

    from django.db import close_old_connections

    depot, lot = _depot_lot(5)
    s.store("LIS")
    barrier = threading.Barrier(2)
    outcomes: list[object] = [None, None]

    def send(i: int) -> None:
        close_old_connections()
        try:
            barrier.wait(timeout=30)
            outcomes[i] = _send(depot, lot, 5, actor=("qc.mad", "manager.mad")[i])
        except Exception as exc:
            outcomes[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    refused = [o for o in outcomes if isinstance(o, ValidationError)]
    assert len(refused) == 1 and "quantity" in refused[0].message_dict, outcomes
    assert Transfer.objects.count() == 1 and selectors.lot_stock(lot) == 0


# --- the logger's limits: the material's storage range ----------------------------------------------------


def test_the_loggers_limits_are_the_materials_storage_range_copied_at_dispatch():
    """SUP-STOCK: the transfer's limits are the material's storage range as Control Site QA recorded it (2 to
    8 °C), not typed per transfer; a later change of the range applies to the next transfer, not to one on
    its way; a range open on one side (≤ -150 °C, vapour phase) is open on that side of the logger too."""
    s.storage(s.SYRINGE, low="2", high="8", condition="Refrigerated")
    depot, lot = _depot_lot(10)
    first = _send(depot, lot, 2)
    assert (first.min_celsius, first.max_celsius) == (Decimal(2), Decimal(8))
    services.material_storage_set(actor=h.user("qa"), material_code=s.SYRINGE, min_celsius=None,
                                  max_celsius="-150", condition="Vapour phase of liquid nitrogen",
                                  reason="Supplier's new label")
    second = _send(depot, lot, 2)
    first.refresh_from_db()
    assert (first.min_celsius, first.max_celsius) == (Decimal(2), Decimal(8))
    assert (second.min_celsius, second.max_celsius) == (None, Decimal(-150))
    transfers.transfer_readings_upload(actor=h.user("qc.lis"), transfer=second, csv_text=_csv(["-170", "-120"]))
    second.refresh_from_db()
    assert [e["side"] for e in second.excursions] == ["high"]


def test_a_material_without_storage_conditions_is_not_sent():
    """SUP-STOCK: no storage range recorded for the material: the dispatch is refused naming ``lot`` (QA
    records it first), nothing moves."""
    depot = s.store("MAD", "DEPOT", kind=LocationKind.DEPOT, serves=("MAD", "LIS"))
    lot = s.received(10, location=depot)
    with pytest.raises(ValidationError) as refused:
        _send(depot, lot)
    assert "lot" in refused.value.message_dict and "storage" in str(refused.value)
    assert not Transfer.objects.exists() and selectors.lot_stock(lot) == 10


# --- QA's disposition of stock held on a transfer ----------------------------------------------------------


def _held() -> tuple[Transfer, MaterialLot]:
    """2 of the lot received at LIS in limits (released there), then 4 more held on arrival (40 °C)."""
    depot, lot = _depot_lot(10)
    first = _send(depot, lot, 2)
    transfers.transfer_readings_upload(actor=h.user("qc.lis"), transfer=first, csv_text=_csv(["20"]))
    released = _receive(first).destination_lot
    assert released is not None
    second = _send(depot, lot, 4)
    transfers.transfer_readings_upload(actor=h.user("qc.lis"), transfer=second, csv_text=_csv(["20", "40"]))
    held = _receive(second)
    assert held.status == TransferStatus.HELD
    return held, released


def test_held_stock_is_never_proposed_issued_nor_used_and_qa_releases_it_back_signed():
    """SUP-STOCK: while held, LIS's FEFO proposal offers only the 2 received in limits and a step needing 5 is
    refused (too little stock: the step's question ``lot_use_holds``); the QC analyst may not decide; Control Site QA
    releases the 4 back to use, signed (meaning: released) with the reason: they join the lot (6), an
    event records the decision and the signature binds to it; a second decision is refused. While held it
    waits in QA's work queue, not the analyst's nor the inspector's."""
    held, released = _held()
    lis = Site.objects.get(code="LIS")
    queue = next(q for q in worklist.registered() if q.key == "supply-held-transfers")
    assert [t.pk for t in queue.pending(h.user("qa"))] == [held.pk]
    assert not list(queue.pending(h.user("qc.lis"))) and not list(queue.pending(h.user("inspector")))
    assert [(f.lot_id, f.quantity) for f in selectors.fefo_proposal(site=lis, material_code=s.SYRINGE)] == [
        (released.pk, 2)]
    assert "only 2" in (answers.lot_use_hold(lot=released, quantity=Decimal(5), at=timezone.now()) or "")
    assert "only 2" in refused_at_step(at_count_step("LIS"), released, 5)
    with pytest.raises(PermissionDenied):
        transfers.transfer_disposition(actor=h.user("qc.lis"), transfer=held, decision="released",
                                       reason="Stable", credentials=h.creds("qc.lis"))
    done = transfers.transfer_disposition(actor=h.user("qa"), transfer=held, decision="released",
                                          reason="40 °C for 10 minutes is within the syringe's stability data",
                                          credentials=h.creds("qa"))
    assert done.status == TransferStatus.RECEIVED and done.disposition == "released" and done.in_movement
    assert done.disposed_by == h.user("qa") and selectors.lot_stock(released) == 6
    assert [f.quantity for f in selectors.fefo_proposal(site=lis, material_code=s.SYRINGE)] == [6]
    signature = Signature.objects.get(record_type="supply.Transfer", record_id=str(held.pk))
    assert signature.meaning == "released"
    assert content_hash(Transfer.objects.get(pk=held.pk).signed_content()) == signature.record_hash
    assert Event.objects.filter(event_type="supply.transfer_disposed", object_type="supply.Transfer").exists()
    assert not list(queue.pending(h.user("qa")))
    with pytest.raises(ValidationError) as refused:
        transfers.transfer_disposition(actor=h.user("qa"), transfer=held, decision="destroyed", reason="Again",
                                       credentials=h.creds("qa"))
    assert "decision" in refused.value.message_dict


def test_qa_destroys_held_stock_and_the_stock_card_shows_where_it_went():
    """SUP-STOCK: destroyed, signed (meaning: rejected): the 4 are recorded arriving at LIS and destroyed
    there (a transferred_in and a destroyed movement, one event), so LIS's stock stays 2 and every unit sent
    is accounted for (10 received = 4 at MAD + 2 at LIS + 4 destroyed)."""
    held, released = _held()
    done = transfers.transfer_disposition(actor=h.user("qa"), transfer=held, decision="destroyed",
                                          reason="Outside the stability data", credentials=h.creds("qa"))
    assert done.status == TransferStatus.DESTROYED and done.disposition == "destroyed"
    assert selectors.lot_stock(released) == 2
    kinds = list(StockMovement.objects.filter(lot=released).order_by("pk").values_list("kind", flat=True))
    assert kinds[-2:] == [MovementKind.TRANSFERRED_IN, MovementKind.DESTROYED]
    both = StockMovement.objects.filter(lot__lot_number=released.lot_number)
    assert sum(m.quantity for m in both if m.kind != MovementKind.DESTROYED) == 10
    assert Signature.objects.get(record_type="supply.Transfer", record_id=str(held.pk)).meaning == "rejected"


@pytest.mark.parametrize(("field", "value"), [("decision", "bogus"), ("decision", "released\x00"), ("reason", ""),
                                              ("reason", "x\x00y"), ("password", "wrong")])
def test_the_disposition_page_refuses_hostile_input_naming_the_field(field, value):
    """SUP-STOCK: an unknown decision, a NUL, no reason, a wrong password: a 400 naming the field and the
    stock stays held; the page asks to confirm; the QC analyst's POST is a 403 and the page shows them no
    form; a GET writes nothing."""
    held, _released = _held()
    url = reverse("supply:transfer_disposition", args=[held.reference])
    qa = _client("qa")
    events = Event.objects.count()
    shown = qa.get(url)
    assert shown.status_code == 200 and "data-confirm" in shown.content.decode() and Event.objects.count() == events
    data = {"decision": "released", "reason": "Stable", "username": "qa", "password": PASSWORD, field: value}
    page = qa.post(url, data)
    body = page.content.decode()
    assert page.status_code == 400, body
    assert f'id="id_{field}_error"' in body or f"Field <strong>{field}</strong>" in body or \
        (field == "password" and "password" in body.lower()), body
    held.refresh_from_db()
    assert held.status == TransferStatus.HELD
    lis = _client("qc.lis")
    assert "Sign the decision" not in lis.get(url).content.decode()
    assert lis.post(url, {"decision": "released", "reason": "x", "password": PASSWORD}).status_code == 403
    assert _client("qc.muc").get(url).status_code == 404


def test_the_disposition_page_records_the_decision():
    """SUP-STOCK: QA's signed decision through the page; the transfer's page then shows it."""
    held, released = _held()
    url = reverse("supply:transfer_disposition", args=[held.reference])
    page = _client("qa").post(url, {"decision": "released", "reason": "Within stability data", "username": "qa",
                                    "password": PASSWORD})
    assert page.status_code == 302
    held.refresh_from_db()
    assert held.disposition == "released" and selectors.lot_stock(released) == 6
    shown = _client("qc.lis").get(reverse("supply:transfer", args=[held.reference])).content.decode()
    assert "released back to use" in shown
