"""The demo's live batch record, executed through the same services a person uses (signed, checked
at the moment of each step) — beside the loaded history (``pocare.demo.history``) — on the days a
real network would have done the work (``pocare.demo.clock``; the times are in :data:`TIMES`):

- released, in-date lots of every material of the bill of materials at every active site, received
  into stock a month before the load (``pocare.demo.supply``), from which the live steps consume;
- at Madrid, a batch in progress: apheresis collected yesterday, received and checked, enrichment
  and activation done this morning, device data streaming since activation with one alarm waiting
  to be acknowledged; its transduction is due tomorrow (day 1);
- at Lisbon, an order whose apheresis arrived this afternoon, ready for the operator to start;
- at Dublin, a new order waiting for the site to accept it;
- at Groningen, a batch made over nine days (activation day 0, transduction day 1, wash and feed
  day 4, IPC day 5, harvest day 9) with its QC results, waiting for release: one non-critical value
  out of range opened a deviation, so the QP's queue shows what stops it.

Idempotent: each part is skipped when it is already there.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.utils import timezone

from pocare.accounts.models import User
from pocare.custody import services as custody
from pocare.custody.models import HandoffKind, ShipmentLeg, TherapyOrder
from pocare.demo import supply
from pocare.demo.clock import demo_clock
from pocare.ledger.signing import SigningCredentials
from pocare.manufacturing import devices, services
from pocare.manufacturing.models import Batch, BatchStatus, LotStatus, MaterialLot
from pocare.masterfile import schema
from pocare.masterfile.models import MasterFileVersion, Product
from pocare.network.models import ManufacturingUnit, Site
from pocare.supply.selectors import fefo_proposal

LIVE_MARK = "Demo live"


def _user(username: str) -> User:
    return User.objects.get(username=username)


def _creds(user: User, password: str) -> SigningCredentials:
    return SigningCredentials(username=user.username, password=password)


def load_lots(*, versions: list[MasterFileVersion], password: str) -> int:
    """One released lot of each material of ``versions`` at each active POCare site, received into
    stock from its approved supplier and released (signed) by the site's QC analyst
    (``pocare.demo.supply.load_stock``). Returns how many lots were added."""
    return supply.load_stock(versions=versions, password=password)


def _lots_for(site: Site, at: dt.datetime) -> dict[str, str]:
    """The lot number the site takes of each material at ``at``: the first to expire of its
    released, unexpired lots in stock (``supply.selectors.fefo_proposal``); a material kept in no stock at the
    site takes its latest-expiring released lot, as before stock was kept."""
    lots = {m.material_code: m.lot_number for m in MaterialLot.objects.filter(site=site, status=LotStatus.RELEASED)}
    for code in list(lots):
        if proposed := fefo_proposal(site=site, material_code=code, at=at):
            lots[code] = proposed[0].lot_number
    return lots


def _good(step: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in step.get("parameters", []):
        if p["type"] == "derived":  # read from its record when the step is recorded, never typed
            continue
        if p.get("target") is not None:
            out[p["id"]] = p["target"]
        elif p["type"] in ("number", "integer"):
            low, high = p.get("min"), p.get("max")
            value = (low + high) / 2 if low is not None and high is not None else (low if low is not None else high)
            out[p["id"]] = round(value * 1.1, 1) if high is None else value
            if p["type"] == "integer":
                out[p["id"]] = int(out[p["id"]])
        elif p["type"] == "choice":
            out[p["id"]] = p["choices"][0]
        elif p["type"] == "boolean":
            out[p["id"]] = True
        elif p["type"] == "text":
            out[p["id"]] = "TS520-24K117"
        # a lot parameter is filled from the lot chosen under Materials
    return out


# --- when the live work was done --------------------------------------------------------------


def _h(hours: float) -> dt.timedelta:
    return dt.timedelta(hours=hours)


@dataclass(frozen=True)
class OrderTimes:
    """An order's life before its batch, anchored on the apheresis' receipt at the site."""

    received: dt.datetime

    @property
    def collection_ended(self) -> dt.datetime:
        return self.received - TRANSIT  # same hospital: about an hour door to door

    @property
    def collection_started(self) -> dt.datetime:
        return self.collection_ended - _h(4)  # leukapheresis, 3–5 h (estimate)

    @property
    def ordered(self) -> dt.datetime:
        return self.collection_started - dt.timedelta(days=12)  # referral to apheresis (estimate)

    @property
    def accepted(self) -> dt.datetime:
        return self.ordered + _h(20)

    @property
    def collected(self) -> dt.datetime:  # the collection hand-off: the bag labelled and sealed
        return self.collection_ended + dt.timedelta(minutes=5)

    @property
    def dispatched(self) -> dt.datetime:
        return self.collection_ended + dt.timedelta(minutes=25)


#: From the end of collection to the site's receipt (both in the same hospital).
TRANSIT = dt.timedelta(hours=1, minutes=12)
#: Day-bound steps, from the activation (day 0; DOMAIN.md: transduction day 1, IPC day 5, harvest
#: day 8–10): transduction about 24 h after activation, wash and feed on day 4, harvest on day 9.
FROM_ACTIVATION = {"transduction": _h(24), "culture-wash": _h(4 * 24), "ipc-day5": _h(5 * 24),
                   "expansion-harvest-decision": _h(8 * 24), "harvest": _h(9 * 24)}
#: Between one step's end and the next step's record; a second person verifies after VERIFY_AFTER.
STEP_GAP, VERIFY_AFTER = dt.timedelta(minutes=12), dt.timedelta(minutes=8)
#: The live work, before the moment the demo is loaded: lots received, Lisbon's apheresis received,
#: Dublin's order placed, Madrid's batch started, Groningen's harvest.
TIMES = {"lots": dt.timedelta(days=30), "lisbon-received": _h(5), "dublin-ordered": _h(1.5),
         "madrid-start": _h(8), "groningen-harvest": _h(10)}
#: QC turnaround after release sampling (DOMAIN.md: endotoxin ~1 h, flow panel 2–4 h).
QC_AFTER = {"endotoxin": _h(1.2), "viability": _h(2.5), "cd3": _h(3), "car-positive": _h(3.2), "dose": _h(3.5)}


@dataclass(frozen=True)
class StepTime:
    """When a step is recorded (its end) and, for a second-person step, verified."""

    step: dict[str, Any]
    recorded: dt.datetime
    verified: dt.datetime | None


def step_times(steps: list[dict[str, Any]], start: dt.datetime) -> list[StepTime]:
    """The times of ``steps`` for a batch started at ``start``: one after the other at their
    expected durations, the day-bound ones (:data:`FROM_ACTIVATION`) on their culture day."""
    out: list[StepTime] = []
    clock = start
    activation: dt.datetime | None = None
    for step in steps:
        sid = step["id"]
        begin = clock + STEP_GAP
        if activation is not None and sid in FROM_ACTIVATION:
            begin = max(begin, activation + FROM_ACTIVATION[sid])
        duration = dt.timedelta(minutes=1 if step.get("optional") else step.get("expected_duration_min") or 15)
        if sid == "activation":
            activation = begin
        recorded = begin + duration
        verified = recorded + VERIFY_AFTER if step.get("second_person_verification") else None
        out.append(StepTime(step, recorded, verified))
        clock = verified or recorded
    return out


def _order(site: Site, *, password: str, recipient: str, weight: str, times: OrderTimes | None,
           ordered: dt.datetime | None = None) -> Any:
    """A therapy order at ``site`` from its physician, accepted by its manager, collected and
    delivered to the site at ``times`` — or, without ``times``, only placed (at ``ordered``)."""
    s = site.code.lower()
    physician, manager, operator = _user(f"physician.{s}"), _user(f"manager.{s}"), _user(f"operator.{s}")
    placed = times.ordered if times is not None else ordered
    assert placed is not None, "an order is placed at some time"
    with demo_clock(placed):
        order = custody.therapy_order_create(
            actor=physician, site=site, treating_site=site, product=Product.objects.get(code="CD19-CART"),
            recipient_id=recipient, recipient_weight_kg=Decimal(weight), indication="Relapsed DLBCL",
            recipient_birth_year=1961, reason=f"{LIVE_MARK}: referral accepted by the CAR-T board")
    if times is None:
        return order
    with demo_clock(times.accepted):
        order = custody.therapy_order_accept(actor=manager, order=order, reason=f"{LIVE_MARK}: device slot available")
    with demo_clock(times.collection_ended + dt.timedelta(minutes=2)):
        collection = custody.collection_record(
            actor=physician, order=order, collection_started_at=times.collection_started,
            collection_ended_at=times.collection_ended, volume_ml=Decimal("265"),
            donor_tests={"HIV-1/2": "negative", "HBV": "negative", "HCV": "negative", "Syphilis": "negative"},
            reason=f"{LIVE_MARK}: leukapheresis")
    hops = ((times.collected, HandoffKind.COLLECTION, physician, "Apheresis unit"),
            (times.dispatched, HandoffKind.DISPATCH_TO_SITE, physician, "Internal courier, 2–8 °C"),
            (times.received, HandoffKind.RECEIPT_AT_SITE, operator, "Cell therapy unit goods-in"))
    for at, kind, who, where in hops:
        with demo_clock(at):
            custody.handoff_record(actor=who, order=order, kind=kind, presented_identifier=collection.din,
                                   site=site, location=where, collection=collection)
            if kind == HandoffKind.DISPATCH_TO_SITE:  # the bag leaves in a shipper with its data logger
                shipment = custody.shipment_dispatch(actor=who, order=order, leg=ShipmentLeg.APHERESIS,
                                                     logger_id=f"TL-{collection.din[-6:]}",
                                                     reason=f"{LIVE_MARK}: apheresis to the cell therapy unit")
    with demo_clock(times.received + dt.timedelta(minutes=10)):  # goods-in reads the logger
        custody.temperatures_upload(actor=operator, shipment=shipment, source="api", rows=_logger_rows(times))
    return order


def _logger_rows(times: OrderTimes) -> list[dict[str, Any]]:
    """The shipper's logger, one reading every 5 minutes from dispatch to receipt: cooling from the
    ward towards 4 °C (the receipt step reads the last one at or before the receipt)."""
    rows, at, n = [], times.dispatched, 0
    while at <= times.received:
        rows.append({"timestamp": at.isoformat(), "temperature_c": round(4.6 + 1.8 * 0.8 ** n, 2)})
        at, n = at + dt.timedelta(minutes=5), n + 1
    return rows


def _free_unit(site: Site, order: Any) -> ManufacturingUnit | None:
    busy = Batch.objects.filter(status=BatchStatus.IN_PROGRESS).values_list("unit_id", flat=True)
    return next((u for u in ManufacturingUnit.objects.filter(site=site).exclude(pk__in=busy).order_by("serial")
                 if not services.batch_start_problems(order=order, unit=u)), None)


def _start(site: Site, order: Any, at: dt.datetime, *, password: str) -> Batch | None:
    """The operator starts ``order``'s batch at ``at`` on a free unit (the start-of-manufacture scan)."""
    operator = _user(f"operator.{site.code.lower()}")
    with demo_clock(at):
        unit = _free_unit(site, order)
        if unit is None:
            return None
        return services.batch_start(actor=operator, order=order, unit=unit, credentials=_creds(operator, password),
                                    presented_identifier=order.collections.get().din,
                                    reason=f"{LIVE_MARK}: patient's batch started")


def _execute(batch: Batch, *, password: str, values: dict[str, dict[str, Any]], last: str | None = None
             ) -> list[StepTime]:
    """Record (and verify) the batch's steps on their days, up to and including ``last`` (all when
    ``None``); an optional step is skipped (fresh product). Returns the times used."""
    site = batch.site
    s = site.code.lower()
    operator, manager, qc = _user(f"operator.{s}"), _user(f"manager.{s}"), _user(f"qc.{s}")
    assert batch.started_at is not None
    lots = _lots_for(site, batch.started_at)
    times = step_times(schema.iter_steps(batch.masterfile_version.content), batch.started_at)
    done: list[StepTime] = []
    for planned in times:
        step = planned.step
        with demo_clock(planned.recorded):
            if step.get("optional"):
                services.step_skip(actor=operator, batch=batch, step_id=step["id"],
                                   credentials=_creds(operator, password),
                                   reason="Fresh product: infused within 24 h, not frozen")
            else:
                who = qc if str(step.get("qualification", "")).startswith("qc-") else operator
                services.step_record(actor=who, batch=batch, step_id=step["id"],
                                     values={**_good(step), **values.get(step["id"], {})},
                                     materials={m["code"]: lots[m["code"]] for m in step.get("materials", [])},
                                     credentials=_creds(who, password))
        if planned.verified is not None and not step.get("optional"):
            with demo_clock(planned.verified):
                services.step_verify(actor=manager, batch=batch, step_id=step["id"],
                                     credentials=_creds(manager, password))
        done.append(planned)
        if step["id"] == last:
            break
    return done


LAST_LIVE_STEP = "activation"
#: What the Madrid operator records in the live batch (the rest are the master file's targets).
MADRID_VALUES: dict[str, dict[str, Any]] = {
    "apheresis-count": {"tnc": 6120, "viability": 96.2, "cd3-fraction": 58.4},
    "cd4-cd8-selection": {"purity": 97.1, "recovery": 54.0, "selected-cells": 1980},
    "activation": {"cells-seeded": 100, "culture-temperature": 37.0},
}


def load_live(*, versions: list[MasterFileVersion], password: str, now: dt.datetime | None = None) -> Batch | None:
    """The Madrid batch in progress, the Lisbon order ready to start, the Dublin order waiting and
    the Groningen batch awaiting release, dated before ``now`` (default: the server clock) as in
    :data:`TIMES`; ``versions`` are the product's versions in force (their materials are stocked)."""
    if TherapyOrder.objects.filter(recipient_id="MAD-PT-0419").exists():
        return Batch.objects.filter(order__recipient_id="MAD-PT-0419").first()
    now = now or timezone.now()
    with demo_clock(now - TIMES["lots"]):
        load_lots(versions=versions, password=password)
    madrid, lisbon, dublin = (Site.objects.get(code=c) for c in ("MAD", "LIS", "DUB"))
    _order(lisbon, password=password, recipient="LIS-PT-0233", weight="64.0",
           times=OrderTimes(received=now - TIMES["lisbon-received"]))
    _order(dublin, password=password, recipient="DUB-PT-0107", weight="81.5", times=None,
           ordered=now - TIMES["dublin-ordered"])
    start = now - TIMES["madrid-start"]
    times = OrderTimes(received=start - _h(14))  # collected yesterday morning, set up this morning
    order = _order(madrid, password=password, recipient="MAD-PT-0419", weight="77.0", times=times)
    batch = _start(madrid, order, start, password=password)
    if batch is None:
        return None
    done = _execute(batch, password=password, values=MADRID_VALUES, last=LAST_LIVE_STEP)
    activation = next(t for t in done if t.step["id"] == LAST_LIVE_STEP)
    _device_feed(batch, since=activation.recorded - dt.timedelta(minutes=activation.step["expected_duration_min"]),
                 until=now)
    _completed_batch(Site.objects.get(code="GRO"), password=password, now=now)
    return batch


def _device_feed(batch: Batch, *, since: dt.datetime, until: dt.datetime) -> None:
    """The device's feed since the culture began at activation: one value every 1.5 minutes, with
    a short temperature excursion twenty minutes ago that the operator must acknowledge."""
    ticks = int((until - since).total_seconds() // 90)
    rows = []
    for tick in range(ticks, 0, -1):
        at = (until - dt.timedelta(seconds=90 * tick)).isoformat()
        drift = 1.4 if tick in (14, 13) else 0.0
        rows += [
            {"batch": batch.reference, "parameter": "culture-temperature", "time": at, "value": 37.0 + drift
             + 0.05 * ((tick * 7) % 5 - 2)},
            {"batch": batch.reference, "parameter": "co2", "time": at, "value": 5.0 + 0.02 * ((tick * 3) % 5 - 2)},
            {"batch": batch.reference, "parameter": "ph", "time": at, "value": 7.35 - 0.1 * (1 - tick / ticks)},
            {"batch": batch.reference, "parameter": "dissolved-oxygen", "time": at,
             "value": 92 - 20 * (1 - tick / ticks)},
        ]
    devices.device_data_push(actor=_user(f"operator.{batch.site.code.lower()}"),
                             idempotency_key=f"demo-{batch.reference}-1", rows=rows)


#: The release results of the Groningen batch (ARI-0001 specification, DOMAIN.md); sterility,
#: mycoplasma, VCN, RCL and potency may follow release and are left pending.
GRONINGEN_QC = {"viability": "94.8", "cd3": "97.2", "car-positive": "31.5", "dose": "1.1", "endotoxin": "0.12"}


def _completed_batch(site: Site, *, password: str, now: dt.datetime) -> Batch | None:
    """A batch at ``site`` executed through every step on its days (the freezing step skipped: fresh
    product), harvested this morning, with its release QC results; one non-critical CD3+ fraction
    below range raised a deviation."""
    version = MasterFileVersion.objects.filter(product__code="CD19-CART", number=1).first()
    if version is None:
        return None
    plan = step_times(schema.iter_steps(version.content), now)  # shift-invariant: placed below
    harvest = next(t.recorded for t in plan if t.step["id"] == "harvest")
    start = now - TIMES["groningen-harvest"] - (harvest - now)
    times = OrderTimes(received=start - _h(14))
    order = _order(site, password=password, recipient=f"{site.code}-PT-0388", weight="69.5", times=times)
    batch = _start(site, order, start, password=password)
    if batch is None:
        return None
    values = dict(MADRID_VALUES)
    values["apheresis-count"] = {**values["apheresis-count"], "cd3-fraction": 8.5}  # below the 10 % expected
    done = _execute(batch, password=password, values=values)
    sampled = next(t.recorded for t in done if t.step["id"] == "release-sampling")
    qc = _user(f"qc.{site.code.lower()}")
    for attribute_id, value in sorted(GRONINGEN_QC.items(), key=lambda kv: QC_AFTER[kv[0]]):
        with demo_clock(sampled + QC_AFTER[attribute_id]):
            services.qc_result_record(actor=qc, batch=batch, attribute_id=attribute_id, value=value,
                                      credentials=_creds(qc, password))
    return batch
