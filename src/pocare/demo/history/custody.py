"""The history's custody rows: each batch's therapy order, its apheresis collection, its hand-offs
from vein to vein and the apheresis shipper's data-logger readings, inserted in bulk.

No custody service can make these: ``therapy_order_create``, ``collection_record`` and
``handoff_record`` stamp the server's clock, allocate the next COI and DIN at that moment and
check the previous hand-off as it happens; the history's records are months old, already
accepted, infused or cancelled, with their identifiers drawn in order of their own dates.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal

from pocare.custody.excursions import excursions_find, outside
from pocare.custody.models import (
    Collection,
    Handoff,
    HandoffKind,
    HandoffOutcome,
    Shipment,
    ShipmentLeg,
    TemperatureReading,
    TemperatureUpload,
    TherapyOrder,
)
from pocare.custody.services import APHERESIS_STABILITY
from pocare.demo.history.generator import Generator
from pocare.demo.history.plan import BatchPlan, DevPlan, HandoffPlan
from pocare.manufacturing.models import Batch

#: Hand-offs before manufacturing: they belong to the collection, not yet to a batch.
BEFORE_MANUFACTURE = (HandoffKind.COLLECTION, HandoffKind.DISPATCH_TO_SITE, HandoffKind.RECEIPT_AT_SITE)


def write_orders(gen: Generator, plans: list[BatchPlan]) -> list[TherapyOrder]:
    """One therapy order per batch, accepted, with its COI."""
    orders = [TherapyOrder(site=p.site, treating_site=p.site, product=gen.product, coi=p.coi,
                           **p.order) for p in plans]
    TherapyOrder.objects.bulk_create(orders)  # demo: back-dated, already accepted (see the module)
    return orders


def write_collections(plans: list[BatchPlan], orders: list[TherapyOrder]) -> list[Collection]:
    """The apheresis collection of each order, with its DIN."""
    collections = [Collection(order=o, din=p.din, flags="00", check_character=p.din_check,
                              collection_site=p.site, collection_started_at=p.collection["started"],
                              collection_ended_at=p.collection["ended"], autologous=True,
                              volume_ml=p.collection["volume_ml"], donor_tests=p.collection["donor_tests"],
                              expires_at=p.collection["ended"] + APHERESIS_STABILITY,
                              recorded_by=p.collection["recorded_by"], recorded_at=p.collection["recorded_at"])
                   for p, o in zip(plans, orders, strict=True)]
    Collection.objects.bulk_create(collections)  # demo: back-dated collections (see the module)
    return collections


def write_handoffs(plans: list[BatchPlan], orders: list[TherapyOrder], collections: list[Collection],
                   batches: list[Batch]) -> list[tuple[DevPlan, Handoff]]:
    """Every hand-off of every batch; returns the blocked ones with their deviation, which points
    back at the hand-off once both have ids."""
    handoffs: list[Handoff] = []
    sources: list[tuple[DevPlan, Handoff]] = []
    for p, o, c, b in zip(plans, orders, collections, batches, strict=True):
        for h in p.handoffs:
            handoff = Handoff(order=o, collection=c, batch=None if h.kind in BEFORE_MANUFACTURE else b,
                              kind=h.kind, outcome=h.outcome, site=p.site, location=h.location,
                              time_zone=p.site.time_zone, occurred_at=h.at, performed_by=h.by,
                              performed_by_name=h.by.printed_name, expected_identifier=h.expected,
                              presented_identifier=h.presented, deviation=h.dev.row if h.dev else None,
                              notes=h.notes)
            handoffs.append(handoff)
            if h.dev is not None:
                sources.append((h.dev, handoff))
    Handoff.objects.bulk_create(handoffs, batch_size=2000)  # demo: back-dated hand-offs (see the module)
    return sources


#: The shipper's logger reads every quarter of an hour in the history (the live demo's every 5 minutes).
LOGGER_EVERY = dt.timedelta(minutes=15)


def _limit(value: object) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def write_shipments(plans: list[BatchPlan], orders: list[TherapyOrder], batches: list[Batch]) -> int:
    """The apheresis shipment of each order with its data logger, and the logger's readings from the
    dispatch to the receipt, uploaded at goods-in: the shipper cools from the ward towards the
    temperature the receipt step then reads as its last reading (``manufacturing.derived``). The
    limits are the batch's master-file version's, as ``shipment_dispatch`` copies them. The number of
    readings written."""
    shipments: list[Shipment] = []
    made: list[tuple[Shipment, list[tuple[dt.datetime, Decimal]], HandoffPlan, Decimal | None, Decimal | None]] = []
    for p, o, b in zip(plans, orders, batches, strict=True):
        dispatch = next((h for h in p.handoffs if h.kind == HandoffKind.DISPATCH_TO_SITE), None)
        receipt = next((h for h in p.handoffs if h.kind == HandoffKind.RECEIPT_AT_SITE
                        and h.outcome == HandoffOutcome.COMPLETED), None)
        if p.shipper_celsius is None or dispatch is None or receipt is None:
            continue
        limits = ((b.masterfile_version.content or {}).get("transport") or {}).get(ShipmentLeg.APHERESIS) or {}
        low, high = _limit(limits.get("min")), _limit(limits.get("max"))
        shipment = Shipment(order=o, leg=ShipmentLeg.APHERESIS, logger_id=f"TL-{p.din[-6:]}", min_celsius=low,
                            max_celsius=high, dispatched_at=dispatch.at, created_by=dispatch.by)
        final = Decimal(str(p.shipper_celsius))
        readings: list[tuple[dt.datetime, Decimal]] = []
        at, n = dispatch.at, 0
        while at < receipt.at:
            readings.append((at, (final + Decimal("1.8") * Decimal("0.8") ** n).quantize(Decimal("0.01"))))
            at, n = at + LOGGER_EVERY, n + 1
        readings.append((receipt.at, final))  # the reading at the receipt: what the receipt step reads
        shipments.append(shipment)
        made.append((shipment, readings, receipt, low, high))
    Shipment.objects.bulk_create(shipments)  # demo: back-dated shipments (see the module)
    uploads: list[TemperatureUpload] = []
    rows: list[TemperatureReading] = []
    for shipment, readings, receipt, low, high in made:
        content = "timestamp,temperature_c\n" + "".join(f"{at.isoformat()},{c}\n" for at, c in readings)
        uploads.append(TemperatureUpload(
            shipment=shipment, uploaded_at=receipt.at + dt.timedelta(minutes=10), uploaded_by=receipt.by,
            source="csv", readings=len(readings), sha256=hashlib.sha256(content.encode()).hexdigest(),
            excursions=[e.as_record() for e in excursions_find(readings, low, high)]))
    TemperatureUpload.objects.bulk_create(uploads)  # demo: back-dated uploads (see the module)
    for upload, (shipment, readings, _, low, high) in zip(uploads, made, strict=True):
        rows.extend(TemperatureReading(upload=upload, shipment=shipment, at=at, celsius=c,
                                       in_limits=not outside(c, low, high)) for at, c in readings)
    TemperatureReading.objects.bulk_create(rows, batch_size=5000)  # demo: back-dated readings (see the module)
    return len(rows)
