"""The demo is true to itself in time: every batch's custody, steps, QC and device data happen in
the order and on the days a real batch's would, under the master-file version in force then, and
the audit trail still verifies. Loads the whole demo once (two months of history)."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from pocare.custody.models import Collection, Handoff, HandoffKind, HandoffOutcome
from pocare.demo.batches import FROM_ACTIVATION, TIMES
from pocare.demo.clock import demo_clock
from pocare.ledger.verify import verify_all
from pocare.manufacturing.models import Alarm, Batch, BatchOrigin, DeviceReading, StepStatus, StepValue
from pocare.masterfile.selectors import effective_version
from tests.conftest import PASSWORD

#: The steps that take the samples QC tests.
SAMPLING = ("ipc-sterility-sampling", "release-sampling")
#: Hand-offs before the batch, in the order they must happen.
BEFORE = (HandoffKind.COLLECTION, HandoffKind.DISPATCH_TO_SITE, HandoffKind.RECEIPT_AT_SITE)


@pytest.fixture(scope="module")
def demo(django_db_setup: Any, django_db_blocker: Any) -> Iterator[dt.datetime]:
    """The whole demo with two months of history, loaded once for the module and rolled back."""
    from pocare.demo import loader

    with django_db_blocker.unblock():
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            before = timezone.now()
            loader.load(password=PASSWORD, history_months=2)
            yield before
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


def _batches() -> list[Batch]:
    return list(
        Batch.objects.select_related("site", "order", "masterfile_version__product")
        .prefetch_related("steps", "qc_results", "order__handoffs")
        .order_by("pk")
    )


def _completed(batch: Batch, kind: str) -> Handoff | None:
    done = [h for h in batch.order.handoffs.all() if h.kind == kind and h.outcome == HandoffOutcome.COMPLETED]
    return min(done, key=lambda h: h.occurred_at) if done else None


def _times(batch: Batch) -> list[tuple[str, dt.datetime]]:
    """The batch's moments in the order they must come (a missing one is left out)."""
    order = batch.order
    collection = Collection.objects.get(order=order)
    out = [("ordered", order.ordered_at), ("collection ended", collection.collection_ended_at)]
    out += [(str(kind), h.occurred_at) for kind in BEFORE if (h := _completed(batch, kind))]
    out.append(("batch start", batch.started_at))
    for step in sorted(batch.steps.all(), key=lambda s: s.position):
        assert step.started_at is not None
        out.append((f"step {step.position} {step.step_id} started", step.started_at))
        if step.performed_at is not None:
            out.append((f"step {step.position} {step.step_id} performed", step.performed_at))
        if step.verified_at is not None:
            assert step.performed_at is not None and step.verified_at >= step.performed_at, step.step_id
    # QC tests samples — the culture's (sterility, before harvest) and the release sample — so its
    # results follow the first sampling step; a cryopreserved product is frozen meanwhile (the
    # freezing may end after the first result is in).
    sampled = min((s.performed_at for s in batch.steps.all() if s.step_id in SAMPLING and s.performed_at), default=None)
    results = [q.entered_at for q in batch.qc_results.all()]
    if results:
        assert sampled is not None and sampled <= min(results), f"{batch.reference}: QC before its sample"
        assert all(q.tested_at <= q.entered_at for q in batch.qc_results.all()), batch.reference
        after = {
            a["id"]
            for a in batch.masterfile_version.content["specification"]["attributes"]
            if a.get("result_after_release")
        }  # a fresh product is released before these are in
        before = [q.entered_at for q in batch.qc_results.all() if q.attribute_id not in after]
        out.append(("last QC result needed for release", max([*before, out[-1][1]])))
    certification = getattr(batch, "certification", None)
    if certification is not None:
        out.append(("certified", certification.decided_at))
    if (dispatch := _completed(batch, HandoffKind.DISPATCH_TO_HOSPITAL)) is not None:
        out.append(("dispatch to hospital", dispatch.occurred_at))
    return out


@pytest.mark.django_db
def test_every_batch_happens_in_order(demo: dt.datetime) -> None:
    """DI-ALCOA (contemporaneous, consistent): collection ≤ shipment ≤ receipt ≤ batch start ≤ each
    step in process order ≤ (release sample ≤) QC results ≤ certification ≤ dispatch, for history
    and live batches."""
    batches = _batches()
    assert {b.origin for b in batches} >= {BatchOrigin.DEMO_HISTORY}
    assert len([b for b in batches if b.origin != BatchOrigin.DEMO_HISTORY]) == 2  # Madrid and Groningen
    for batch in batches:
        times = _times(batch)
        for (a, at), (b, bt) in itertools.pairwise(times):
            assert at <= bt, f"{batch.reference}: {a} {at} is after {b} {bt}"
        assert times[-1][1] <= timezone.now(), f"{batch.reference}: {times[-1][0]} is in the future"


@pytest.mark.django_db
def test_live_batches_run_over_their_process_days(demo: dt.datetime) -> None:
    """POC-1: the released batch took its days (activation day 0, transduction about 24 h later,
    wash and feed day 3–5, harvest day 7–10), not seconds; Madrid's is on day 0."""
    groningen = Batch.objects.get(order__recipient_id="GRO-PT-0388")
    steps = {s.step_id: s for s in groningen.steps.all()}
    activation = steps["activation"].performed_at
    assert activation is not None
    after = {sid: (steps[sid].performed_at - activation) for sid in FROM_ACTIVATION}  # type: ignore[operator]
    assert dt.timedelta(hours=18) <= after["transduction"] <= dt.timedelta(hours=30)
    assert dt.timedelta(days=3) <= after["culture-wash"] <= dt.timedelta(days=5)
    assert dt.timedelta(days=7) <= after["harvest"] <= dt.timedelta(days=10)
    assert all(s.status in (StepStatus.COMPLETE, StepStatus.SKIPPED) for s in steps.values())
    assert groningen.qc_results.count() == 5

    madrid = Batch.objects.get(order__recipient_id="MAD-PT-0419")
    assert abs((demo - madrid.started_at) - TIMES["madrid-start"]) < dt.timedelta(minutes=5)  # the load's seconds
    assert [s.step_id for s in madrid.steps.order_by("position")][-1] == "activation"


@pytest.mark.django_db
def test_device_data_falls_within_each_batch_run(demo: dt.datetime) -> None:
    """DI-ALCOA: no device reading or alarm before its batch started or after it ended."""
    for batch in _batches():
        end = batch.ended_at or timezone.now()
        readings = DeviceReading.objects.filter(batch=batch)
        alarms = Alarm.objects.filter(batch=batch)
        assert not readings.filter(at__lt=batch.started_at).exists(), batch.reference
        assert not readings.filter(at__gt=end).exists(), batch.reference
        assert not alarms.filter(raised_at__lt=batch.started_at).exists(), batch.reference
        assert not alarms.filter(raised_at__gt=end).exists(), batch.reference
    madrid = Batch.objects.get(order__recipient_id="MAD-PT-0419")
    assert DeviceReading.objects.filter(batch=madrid).exists() and Alarm.objects.filter(batch=madrid).exists()


@pytest.mark.django_db
def test_every_batch_is_made_under_the_version_in_force_at_its_start(demo: dt.datetime) -> None:
    """POC-1: the master-file version a batch keeps was effective at its site when it started
    (effective by then, the site authorized and trained on it) — history included."""
    for batch in _batches():
        version = batch.masterfile_version
        assert version.effective_at is not None and version.effective_at <= batch.started_at, batch.reference
        in_force = effective_version(site=batch.site, product=version.product, at=batch.started_at)
        assert in_force == version, f"{batch.reference} ({batch.started_at}): v{version.number}, in force {in_force}"


@pytest.mark.django_db
def test_stated_transit_time_is_the_difference_of_the_shown_times(demo: dt.datetime) -> None:
    """DI-ALCOA (accurate): "time from collection to receipt" equals receipt minus end of collection."""
    values = StepValue.objects.filter(parameter_id="transit-time").select_related("step__batch__order")
    assert values.exists()
    for value in values:
        batch = value.step.batch
        ended = Collection.objects.get(order=batch.order).collection_ended_at
        receipt = _completed(batch, HandoffKind.RECEIPT_AT_SITE)
        assert receipt is not None
        hours = (receipt.occurred_at - ended).total_seconds() / 3600
        assert abs(float(value.value) - hours) <= 0.05, f"{batch.reference}: {value.value} h stated, {hours:.2f} h"


@pytest.mark.django_db
def test_the_audit_trail_verifies_after_the_dated_load(demo: dt.datetime) -> None:
    """P11-10e: the hash chains are intact after the demo load under the demo clock."""
    report = verify_all()
    assert report.ok, [c for c in report.chains if not c.ok]


def test_the_demo_clock_dates_only_the_past_and_only_inside_its_block() -> None:
    """The clock never dates work in the future and leaves the real clock alone outside its block."""
    past = timezone.now() - dt.timedelta(days=3)
    with demo_clock(past):
        inside = timezone.now()
    assert past <= inside < past + dt.timedelta(minutes=1)
    assert timezone.now() - past > dt.timedelta(days=2)
    with pytest.raises(ValueError, match="past only"), demo_clock(timezone.now() + dt.timedelta(hours=1)):
        pass


@pytest.mark.django_db
def test_the_live_batches_read_their_receipt_and_harvest_values_from_the_records(demo: dt.datetime) -> None:
    """Issue 15, one fact, one value: the demo's live batches (recorded through the services) carry
    the derived receipt values and the culture day of harvest as their records state them, each
    event naming its source."""
    from pocare.custody.models import Shipment
    from pocare.ledger.models import Event
    from pocare.manufacturing.events import ManufacturingEvent

    for recipient in ("MAD-PT-0419", "GRO-PT-0388"):
        batch = Batch.objects.get(order__recipient_id=recipient)
        values = dict(StepValue.objects.filter(step__batch=batch, corrects__isnull=True)
                      .values_list("parameter_id", "value"))
        receipt = _completed(batch, HandoffKind.RECEIPT_AT_SITE)
        assert receipt is not None and values["din-matches"] is True
        logger = Shipment.objects.get(order=batch.order).readings.filter(at__lte=receipt.occurred_at).latest("at")
        assert values["shipper-temperature"] == float(logger.celsius), recipient
        step = batch.steps.get(step_id="receipt-identity")
        event = Event.objects.get(event_type=ManufacturingEvent.STEP_RECORDED, object_id=str(step.pk))
        assert set(event.new["derived"]) == {"din-matches", "shipper-temperature", "transit-time"}
    groningen = Batch.objects.get(order__recipient_id="GRO-PT-0388")
    steps = dict(groningen.steps.values_list("step_id", "performed_at"))
    day = StepValue.objects.get(step__batch=groningen, step__step_id="harvest", parameter_id="harvest-day").value
    assert day == round((steps["harvest"] - steps["activation"]).total_seconds() / 86400)


def test_every_derived_value_of_the_demo_is_what_its_record_states(demo: dt.datetime) -> None:
    """Issue 15, one fact, one value: in every batch of the demo, history and live, each value of a
    ``derived`` parameter equals what the record it names states now (the shipper logger's reading
    at receipt, the hand-off times, the scans, the step times): no value without a record behind it."""
    from pocare.manufacturing.derived import derive
    from pocare.manufacturing.services import process_steps

    checked = 0
    for batch in Batch.objects.select_related("order", "site", "masterfile_version").order_by("pk"):
        specs = {(s["id"], p["id"]): p for s in process_steps(batch) for p in s.get("parameters", [])
                 if p.get("type") == "derived"}
        for value in StepValue.objects.filter(step__batch=batch, corrects__isnull=True).select_related("step"):
            spec = specs.get((value.step.step_id, value.parameter_id))
            if spec is None:
                continue
            found = derive(batch, spec, value.step.performed_at)
            assert found.value is not None, f"{batch.reference} {value.parameter_id}: {found.missing}"
            stated = found.value if not isinstance(found.value, float) else round(found.value, 1)
            assert value.value == stated or abs(float(value.value) - float(stated)) <= 0.05, (
                f"{batch.reference} {value.parameter_id}: recorded {value.value}, the record states {found.value}")
            checked += 1
    assert checked >= 3 * Batch.objects.filter(origin=BatchOrigin.DEMO_HISTORY).count()


@pytest.mark.django_db
def test_each_hospital_has_a_booked_chain_and_an_infused_patient_in_follow_up(demo: dt.datetime) -> None:
    """Issue 17, PAT-LTFU, PAT-GRADE: at each hospital with demo patients, one consented patient is booked on
    a site and slot chain (apheresis before infusion, both at the hospital), and the infused referral has
    its follow-up planned from its infusion, the day-7 and day-14 visits done on their days, and a grade-1
    CRS after the infusion; every date lies between the infusion and now."""
    from pocare.patients.models import AdverseEventKind, Booking, Referral, Stage, VisitStatus

    now = timezone.now()
    hospitals = set(Referral.objects.values_list("patient__treating_site__code", flat=True))
    assert hospitals
    for code in sorted(hospitals):
        booked = Booking.objects.filter(referral__patient__treating_site__code=code,
                                        referral__stage=Stage.BOOKED).select_related("apheresis_slot", "infusion_slot")
        assert booked.exists(), code
        for b in booked:
            assert b.apheresis_slot.starts_at < b.infusion_slot.starts_at, code
        infused = Referral.objects.filter(patient__treating_site__code=code, stage=Stage.INFUSED)
        for referral in infused:
            assert referral.infused_at is not None and referral.infused_at < now
            visits = {v.day: v for v in referral.visits.all()}
            assert {7, 14} <= set(visits), code
            for day in (7, 14):
                if referral.infused_at + dt.timedelta(days=day, hours=1) < now:
                    assert visits[day].status == VisitStatus.DONE, (code, day)
                    assert visits[day].done_at is not None
                    assert referral.infused_at < visits[day].done_at < now, (code, day)
            crs = referral.adverse_events.get(kind=AdverseEventKind.CRS)
            assert crs.grade == 1 and crs.onset_on >= referral.infused_at.date()
            assert referral.infused_at <= crs.recorded_at < now


# --- the demo's stock (pocare.demo.supply) --------------------------------------------------------


def _stock_sites() -> list[Any]:
    from pocare.network.models import Site, SiteKind, SiteStatus

    return list(Site.objects.filter(kind=SiteKind.HOSPITAL, status=SiteStatus.ACTIVE).order_by("code"))


def _bill_in_force(site: Any) -> set[str]:
    from pocare.masterfile import schema
    from pocare.masterfile.models import Product

    version = effective_version(site=site, product=Product.objects.get(code="CD19-CART"), at=timezone.now())
    assert version is not None, site.code
    return {m["code"] for s in schema.iter_steps(version.content) for m in s.get("materials", [])}


def _on_hand(**where: Any) -> dict[tuple[str, str], Decimal]:
    """Stock by site code × material: the sum of the movements' signed quantities (no selector)."""
    from django.db.models import Sum

    from pocare.supply.models import StockMovement

    rows = (StockMovement.objects.filter(**where).values("location__site__code", "lot__material_code")
            .annotate(total=Sum("quantity")))
    return {(r["location__site__code"], r["lot__material_code"]): r["total"] for r in rows}


@pytest.mark.django_db
def test_every_active_site_has_a_store_with_stock_of_every_material_in_force(demo: dt.datetime) -> None:
    """SUP-STOCK: each active POCare site keeps a store holding stock of every material of the bill
    of materials of the version in force there, and the demo lots in it are released — but the delivery
    received this morning against Lisbon's purchase, which waits in quarantine for its QC release."""
    from pocare.manufacturing.models import LotStatus, MaterialLot
    from pocare.supply.models import LocationKind, PurchaseDelivery, StockLocation

    stocked = MaterialLot.objects.filter(movements__isnull=False).distinct()
    waiting = set(PurchaseDelivery.objects.values_list("lot_id", flat=True))
    assert stocked.exists() and len(waiting) == 1
    assert set(stocked.exclude(status=LotStatus.RELEASED).values_list("pk", flat=True)) == waiting
    on_hand = _on_hand()
    sites = _stock_sites()
    assert len(sites) >= 6
    for site in sites:
        assert StockLocation.objects.filter(site=site, kind=LocationKind.STORE).exists(), site.code
        store_stock = _on_hand(location__site=site, location__kind=LocationKind.STORE)
        for code in sorted(_bill_in_force(site)):
            assert on_hand.get((site.code, code), Decimal(0)) > 0, (site.code, code)
            assert store_stock.get((site.code, code), Decimal(0)) > 0, (site.code, code, "store")


@pytest.mark.django_db
def test_a_regional_depot_serves_several_sites_and_holds_stock(demo: dt.datetime) -> None:
    """SUP-STOCK: a regional depot, held by one site, serves at least two sites and holds stock
    (received there and partly moved to its site's store)."""
    from pocare.supply.models import LocationKind, MovementKind, StockLocation

    depots = list(StockLocation.objects.filter(kind=LocationKind.DEPOT).prefetch_related("serves"))
    assert len(depots) == 1
    depot = depots[0]
    assert len(depot.serves.all()) >= 2 and depot.site in depot.serves.all()
    assert sum(_on_hand(location=depot).values(), Decimal(0)) > 0
    assert depot.movements.filter(kind=MovementKind.TRANSFERRED_OUT).exists()


@pytest.mark.django_db
def test_the_depot_sent_lisbon_one_transfer_received_one_in_transit_and_two_purchases_wait(demo: dt.datetime) -> None:
    """SUP-STOCK, ATMP-TRACE: one transfer from the depot received at Lisbon with its logger's readings in
    the limits (the lot there released, no deviation), one in transit; two purchase requests, one of them
    awaiting approval; the trace of the received lot finds it at both sites and the transfer."""
    from pocare.manufacturing.models import LotStatus
    from pocare.supply.models import PurchaseRequest, PurchaseStatus, Transfer, TransferStatus
    from pocare.supply.recall import lot_trace

    sent = list(Transfer.objects.order_by("dispatched_at"))
    assert [t.status for t in sent] == [TransferStatus.RECEIVED, TransferStatus.IN_TRANSIT]
    done = sent[0]
    assert done.readings.count() > 5 and done.deviation is None and not done.excursions
    assert done.destination_lot is not None and done.destination_lot.status == LotStatus.RELEASED
    assert done.source.site.code == "MAD" and done.destination.site.code == "LIS"
    trace = lot_trace(material_code=done.source_lot.material_code, lot_number=done.source_lot.lot_number)
    assert {"MAD", "LIS"} <= {lot.site for lot in trace.lots} and done in trace.transfers
    statuses = sorted(PurchaseRequest.objects.values_list("status", flat=True))
    assert statuses == [PurchaseStatus.ORDERED, PurchaseStatus.REQUESTED]


@pytest.mark.django_db
def test_lisbons_order_is_partly_delivered_at_an_invoice_price_finance_drafts_from(demo: dt.datetime) -> None:
    """SUP-STOCK COST-BATCH: Lisbon's ordered request has one delivery so far, invoiced below the cost model's
    price of the material; the cost model page lists its lot as differing, and the draft from the invoices
    prices that lot at its invoice price."""
    from pocare.costs.models import CostModel, CostModelStatus
    from pocare.costs.selectors import content_with_invoice_prices, lots_received_priced
    from pocare.demo.costs import MATERIALS as PRICES
    from pocare.demo.supply import PART_DELIVERED, invoice_price
    from pocare.supply.models import PurchaseRequest, PurchaseStatus

    request = PurchaseRequest.objects.get(status=PurchaseStatus.ORDERED)
    delivery = request.deliveries.select_related("lot").get()
    code = request.material_code
    assert (delivery.quantity, delivery.unit_price) == (PART_DELIVERED, invoice_price(code))
    assert delivery.unit_price < PRICES[code]
    in_force = CostModel.objects.get(status=CostModelStatus.APPROVED)
    listed = lots_received_priced(in_force)
    assert [p.lot for p in listed if p.differs] == [delivery.lot]
    content, added = content_with_invoice_prices(in_force.content, listed)
    assert added == 1 and content["material_lots"][code] == {delivery.lot.lot_number: f"{delivery.unit_price.normalize():f}"}


@pytest.mark.django_db
def test_exactly_one_lot_in_stock_is_near_expiry(demo: dt.datetime) -> None:
    """SUP-STOCK: of the lots in stock, exactly one — the demo's near-expiry lot — expires within
    30 days; it is released and still in stock."""
    from django.db.models import Sum

    from pocare.demo.supply import NEAR_EXPIRY
    from pocare.manufacturing.models import LotStatus, MaterialLot

    in_stock = MaterialLot.objects.annotate(left=Sum("movements__quantity")).filter(left__gt=0)
    soon = [lot for lot in in_stock if lot.expiry_date <= timezone.now().date() + dt.timedelta(days=30)]
    assert [(lot.site.code, lot.material_code, lot.lot_number) for lot in soon] == [
        (NEAR_EXPIRY.site, NEAR_EXPIRY.material, NEAR_EXPIRY.lot_number)]
    lot = soon[0]
    assert lot.status == LotStatus.RELEASED and lot.expiry_date >= timezone.now().date()


@pytest.mark.django_db
def test_stock_is_what_was_received_less_what_the_live_batches_used(demo: dt.datetime) -> None:
    """SUP-STOCK, ATMP-TRACE: every material the live batches used came from stock, and each site's
    stock of each material equals what was received there less the quantities of the ``MaterialUse``
    rows of its stock-managed lots; each live delivery is several batches' worth of the bill."""
    from django.db.models import Sum

    from pocare.demo.supply import BATCHES_PER_DELIVERY, per_batch
    from pocare.manufacturing.models import MaterialUse
    from pocare.masterfile.models import MasterFileVersion
    from pocare.supply.models import MovementKind, StockMovement

    live_uses = MaterialUse.objects.exclude(step__batch__origin=BatchOrigin.DEMO_HISTORY)
    assert live_uses.count() >= 14
    managed = set(StockMovement.objects.values_list("lot_id", flat=True))
    assert all(use.lot_id in managed for use in live_uses), "a live step used a lot kept in no stock"
    received = _on_hand(kind=MovementKind.RECEIVED)
    used: dict[tuple[str, str], Decimal] = {}
    rows = (MaterialUse.objects.filter(lot_id__in=managed).values("lot__site__code", "material_code")
            .annotate(total=Sum("quantity")))
    for r in rows:
        used[(r["lot__site__code"], r["material_code"])] = r["total"]
    # What went between sites (the depot's transfers): out at the source on dispatch, in at the
    # destination once received; in transit it is at neither site.
    from pocare.supply.models import Transfer

    moved: dict[tuple[str, str], Decimal] = {}
    for t in Transfer.objects.select_related("source__site", "destination__site", "source_lot"):
        out = (t.source.site.code, t.source_lot.material_code)
        moved[out] = moved.get(out, Decimal(0)) - t.quantity
        if t.in_movement_id is not None:
            into = (t.destination.site.code, t.source_lot.material_code)
            moved[into] = moved.get(into, Decimal(0)) + t.quantity
    on_hand = _on_hand()
    assert set(on_hand) == set(received)
    for key, quantity in received.items():
        assert on_hand[key] == quantity - used.get(key, Decimal(0)) + moved.get(key, Decimal(0)), key
    needs = per_batch(MasterFileVersion.objects.filter(product__code="CD19-CART"))
    for (site_code, code), quantity in received.items():
        assert quantity >= BATCHES_PER_DELIVERY * needs[code], (site_code, code)
    assert any(v for k, v in used.items() if k[0] == "MAD") and any(v for k, v in used.items() if k[0] == "GRO")


@pytest.mark.django_db
def test_every_material_has_an_approved_supplier_and_every_demo_lot_names_one(demo: dt.datetime) -> None:
    """SUP-STOCK, ATMP-TRACE: each material of the bill has a supplier approved for it and qualified
    (its registration and its approval for the material signed by Control Site QA) and its storage
    range, and every lot of the demo — history and live —
    names an approved, qualified supplier of its material."""
    from pocare.ledger.models import Signature
    from pocare.manufacturing.models import MaterialLot
    from pocare.supply.models import QUALIFIED, ApprovedSupplier, MaterialStorage, Supplier
    from pocare.supply.services import bill_of_materials

    approved: dict[str, set[str]] = {}
    for a in ApprovedSupplier.objects.select_related("supplier"):
        if a.supplier.status in QUALIFIED:
            approved.setdefault(a.material_code, set()).add(a.supplier.name.casefold())
    assert set(bill_of_materials()) <= set(approved)
    for supplier in Supplier.objects.all():
        assert Signature.objects.filter(record_type="supply.Supplier", record_id=str(supplier.pk),
                                        signer_username="qa").exists(), supplier
    for approval in ApprovedSupplier.objects.all():  # each approval for a material signed too
        assert Signature.objects.filter(record_type="supply.ApprovedSupplier", record_id=str(approval.pk),
                                        meaning="approved").exists(), approval
    # Every material of the bill has its storage range: a transfer takes its logger's limits from it.
    assert set(bill_of_materials()) <= set(MaterialStorage.objects.values_list("material_code", flat=True))
    lots = MaterialLot.objects.values_list("site__code", "material_code", "lot_number", "supplier")
    assert lots.exists()
    for site_code, code, number, supplier_name in lots:
        assert supplier_name.strip().casefold() in approved.get(code, set()), (site_code, code, number, supplier_name)


@pytest.mark.django_db
def test_a_recall_trace_of_a_demo_lot_finds_every_patient_that_received_it_and_back(demo: dt.datetime) -> None:
    """SUP-RECALL ATMP-TRACE: for the most used lot numbers of the demo (history and live), the forward trace
    names exactly the batches and patients whose recorded material uses carry that lot number, at every site;
    and each of those patients traced back lists that lot among the lots in contact with their cells."""
    from django.db.models import Count

    from pocare.manufacturing.models import MaterialUse
    from pocare.supply import recall

    busiest = (MaterialUse.objects.values("lot__material_code", "lot__lot_number")
               .annotate(n=Count("pk")).order_by("-n", "lot__material_code", "lot__lot_number")[:3])
    assert busiest and busiest[0]["n"] > 1
    for row in busiest:
        code, number = row["lot__material_code"], row["lot__lot_number"]
        recorded = set(MaterialUse.objects.filter(lot__material_code=code, lot__lot_number=number)
                       .values_list("step__batch__reference", "step__batch__order__recipient_id"))
        trace = recall.lot_trace(material_code=code, lot_number=number)
        assert {(r.batch, r.recipient) for r in trace.reached} == recorded
        for _, recipient in sorted(recorded)[:5]:
            back = recall.patient_trace(identifier=recipient)
            assert (code, number) in {(r.material_code, r.lot_number) for r in back.reached}, recipient


@pytest.mark.django_db
def test_every_demo_batch_has_a_cost_every_record_priced_and_a_plausible_total(demo: dt.datetime) -> None:
    """COST-BATCH: the demo's cost model (version 1, approved and signed by Control Site QA before the first
    batch) prices every completed batch of the demo, history and live, with no record left unpriced; the
    totals lie between the published anchors' order of magnitude (DKFZ's full cost below €60,000, ARI-0001's
    price about €89,000): from €30,000 to €120,000 a batch."""
    from pocare.costs.models import CostModel
    from pocare.costs.selectors import batch_cost
    from pocare.ledger.models import Signature

    model = CostModel.objects.get(number=1)
    assert Signature.objects.filter(record_type="costs.CostModel", record_id=str(model.pk), meaning="approved",
                                    signer_username="qa").exists()
    completed = Batch.objects.filter(status="completed").select_related("site").order_by("pk")
    assert completed.exists()
    for batch in completed[:40]:
        cost = batch_cost(batch)
        assert cost is not None, batch.reference
        assert not cost.sheet.unpriced, (batch.reference, [line.description for line in cost.sheet.unpriced])
        assert 30_000 <= cost.sheet.total <= 120_000, (batch.reference, cost.sheet.total)


@pytest.mark.django_db
def test_the_demos_second_model_prices_the_stocks_vector_lots_at_their_own_price(demo: dt.datetime) -> None:
    """COST-BATCH: version 2 of the demo's model (signed by Control Site QA) prices each vector lot delivered into
    the sites' stock at its own price; a live batch's vector line takes that price and says so, while its other
    lines keep their material's price; the history's lots keep version 1's price."""
    from pocare.costs.models import CostModel
    from pocare.costs.selectors import batch_cost
    from pocare.demo import costs as demo_costs

    v2 = CostModel.objects.get(number=2)
    assert v2.status == "approved" and v2.content["material_lots"]["LV-CAR19"]
    live = [b for b in Batch.objects.filter(origin=BatchOrigin.EXECUTED).order_by("pk")
            if b.steps.filter(materials__material_code="LV-CAR19").exists()]
    assert live, "a live batch has used the vector"
    cost = batch_cost(live[0])
    assert cost is not None and cost.model == v2
    lines = [line for line in cost.sheet.lines if line.category == "materials"]
    vector = [line for line in lines if line.description.startswith("LV-CAR19")]
    assert vector and all(line.unit_price == demo_costs.VECTOR_LOT_PRICE and "(the lot's price)" in line.description
                          for line in vector)
    assert all("(the lot's price)" not in line.description for line in lines if line not in vector)
    old = batch_cost(Batch.objects.filter(origin=BatchOrigin.DEMO_HISTORY, status="completed").order_by("pk").first())
    assert old is not None and old.model.number == 1
    assert {line.unit_price for line in old.sheet.lines if line.description.startswith("LV-CAR19")} == {
        Decimal(demo_costs.MATERIALS["LV-CAR19"])}


@pytest.mark.django_db
def test_a_demo_patient_treated_costs_their_batches_and_their_episode_recomputed_from_the_records(
        demo: dt.datetime) -> None:
    """COST-BATCH: an infused demo patient's cost is every batch made for them (each as its own cost page
    gives it) plus their clinical episode recomputed by hand from the records — an apheresis per collection,
    a lymphodepletion and an infusion per infusion hand-off, each follow-up visit done at its mode's price —
    with nothing unpriced; the page shows the pseudonym, never a name, and links each batch."""
    from django.test import Client
    from django.urls import reverse

    from pocare.costs import patient
    from pocare.costs.models import CostModel
    from pocare.costs.selectors import batch_cost
    from pocare.patients.models import Referral, Visit

    referral = (Referral.objects.filter(infused_at__isnull=False, order__isnull=False).select_related("patient")
                .order_by("pk").first())
    assert referral is not None and referral.order is not None
    cost = patient.patient_cost(referral.patient)
    batches = Batch.objects.filter(order=referral.order)
    assert {b.reference for b in cost.batches} == {b.reference for b in batches} and batches.exists()
    by_page = Decimal(0)
    for batch in batches:
        sheet = batch_cost(batch)
        assert sheet is not None
        by_page += sheet.sheet.total
    assert cost.batches_total == by_page
    clinical = CostModel.objects.get(number=1).content["clinical"]
    collections = Collection.objects.filter(order=referral.order).count()
    infusions = Handoff.objects.filter(order=referral.order, kind=HandoffKind.INFUSION,
                                       outcome=HandoffOutcome.COMPLETED).count()
    visits = Visit.objects.filter(referral=referral, status="done")
    assert collections >= 1 and infusions == 1 and visits.exists()
    by_hand = (collections * Decimal(clinical["apheresis"])
               + infusions * (Decimal(clinical["lymphodepletion"]) + Decimal(clinical["infusion"]))
               + sum((Decimal(clinical["visit"][v.mode]) for v in visits), Decimal(0)))
    assert cost.clinical_total == by_hand and cost.unpriced == 0 and cost.treated
    assert cost.total == by_page + by_hand

    from pocare.accounts.models import User

    client = Client()
    client.force_login(User.objects.get(username="qa"))
    page = client.get(reverse("costs:patient", args=[referral.patient.pseudonym]))
    html = page.content.decode()
    assert page.status_code == 200 and f"{cost.total:,.2f}" in html
    assert all(reverse("costs:batch", args=[b.reference]) in html for b in batches)
    operator = Client()
    operator.force_login(User.objects.get(username="operator.mad"))
    assert operator.get(reverse("costs:patient", args=[referral.patient.pseudonym])).status_code == 403
    assert client.get(reverse("costs:patient", args=["NO-SUCH"])).status_code == 404


@pytest.mark.django_db
def test_the_demo_sites_business_case_reads_the_demos_model_and_records(demo: dt.datetime, client: Any) -> None:
    """COST-BATCH: the planner's business case of a demo site uses the demo's signed model (its capital, fixed
    and centralized-price figures), the master file effective there and the site's own finished batches
    (process days, failure rate); the cost per patient falls with volume, within the published anchors' order
    of magnitude at DKFZ's 18 patients a year."""
    from pocare.accounts.models import User
    from pocare.planning import business, selectors

    site = selectors.business_sites(User.objects.get(username="planner")).get(code="MAD")
    inputs = selectors.business_inputs(site)
    assert inputs.model is not None and inputs.version is not None and inputs.batches > 0
    assert inputs.process_days is not None and Decimal(5) < inputs.process_days < Decimal(20)
    found = business.site_case(inputs.model.content, inputs.version.content, site_code="MAD",
                               device_type=inputs.device_type, patients_max=100,
                               failure_rate=business.failure_rate_observed(inputs.batches, inputs.aborted),
                               process_days=inputs.process_days)
    per_patient = [y.per_patient for y in found.case.years]
    assert per_patient[0] > per_patient[17] > per_patient[99]
    assert Decimal(50_000) < per_patient[17] < Decimal(120_000) and not found.planned.unpriced
    client.force_login(User.objects.get(username="planner"))
    page = client.get("/planning/business-case/", {"site": "MAD"})
    assert page.status_code == 200 and b"Break-even" in page.content


@pytest.mark.django_db
def test_a_demo_batch_cost_is_recomputed_by_hand_from_its_rows(demo: dt.datetime) -> None:
    """COST-BATCH: a completed demo batch of the history, priced by hand from its own rows and the demo model's
    figures — each step's hours × the performer's role rate, 10 minutes per verification, each material use ×
    its price, each QC result entered (not corrections), the unit's hours × the device's and the cleanroom's
    rates, the QA and QP review hours, the order's shipments, 20 % overhead — equals the cost page's total."""
    from decimal import ROUND_HALF_UP

    from pocare.accounts.models import Membership
    from pocare.costs.models import CostModel
    from pocare.costs.selectors import batch_cost
    from pocare.custody.models import Shipment
    from pocare.manufacturing.models import MaterialUse, QcResult, StepExecution

    def money(x: Decimal) -> Decimal:
        return x.quantize(Decimal("0.01"), ROUND_HALF_UP)

    def hours(a: dt.datetime, b: dt.datetime) -> Decimal:
        return (Decimal(str((b - a).total_seconds())) / 3600).quantize(Decimal("0.0001"), ROUND_HALF_UP)

    content = CostModel.objects.get(number=1).content
    rates = {k: Decimal(v) for k, v in content["labour"]["hourly_rates"].items()}
    batch = (Batch.objects.filter(status="completed", origin=BatchOrigin.DEMO_HISTORY).select_related("unit", "site")
             .order_by("pk")[7])

    def rate(user_id: int | None, at: dt.datetime | None) -> Decimal:
        roles = {m.role for m in Membership.objects.filter(user_id=user_id, site=batch.site, granted_at__lte=at)
                 if (m.revoked_at is None or at < m.revoked_at) and (m.valid_until is None or at < m.valid_until)}
        return max(rates[r] for r in roles)

    labour = Decimal(0)
    for step in StepExecution.objects.filter(batch=batch):
        if step.status != "skipped" and step.performed_at is not None:
            labour += money(hours(step.started_at, step.performed_at) * rate(step.performed_by_id, step.performed_at))
        if step.verified_by_id is not None:
            verification = (Decimal(content["labour"]["verification_minutes"]) / 60).quantize(Decimal("0.0001"),
                                                                                               ROUND_HALF_UP)
            labour += money(verification * rate(step.verified_by_id, step.verified_at))
    materials = sum((money(u.quantity * Decimal(content["materials"][u.material_code]))
                     for u in MaterialUse.objects.filter(step__batch=batch)), Decimal(0))
    qc = sum((money(Decimal(content["qc_tests"][r.attribute_id]))
              for r in QcResult.objects.filter(batch=batch, corrects__isnull=True)), Decimal(0))
    unit_hours = hours(batch.started_at, batch.ended_at)
    equipment = money(unit_hours * Decimal(content["equipment"]["hourly"][batch.unit.device_type]))
    facility = money(unit_hours * Decimal(content["facility"]["hourly"]))
    review = money(Decimal(content["review"]["qa_hours"]) * rates["control_qa"]) + money(
        Decimal(content["review"]["qp_hours"]) * rates["qp"])
    logistics = Shipment.objects.filter(order_id=batch.order_id).count() * money(
        Decimal(content["logistics"]["per_shipment"]))
    base = labour + materials + qc + equipment + facility + review + logistics
    by_hand = base + money(base * Decimal(content["overhead"]["percent"]) / 100)
    cost = batch_cost(batch)
    assert cost is not None and not cost.sheet.unpriced
    assert cost.sheet.total == by_hand and materials > 0 and qc > 0 and labour > 0
