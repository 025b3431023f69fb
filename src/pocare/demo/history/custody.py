"""The history's custody rows: each batch's therapy order, its apheresis collection and its
hand-offs from vein to vein, inserted in bulk.

No custody service can make these: ``therapy_order_create``, ``collection_record`` and
``handoff_record`` stamp the server's clock, allocate the next COI and DIN at that moment and
check the previous hand-off as it happens; the history's records are months old, already
accepted, infused or cancelled, with their identifiers drawn in order of their own dates.
"""

from __future__ import annotations

from pocare.custody.models import Collection, Handoff, HandoffKind, TherapyOrder
from pocare.custody.services import APHERESIS_STABILITY
from pocare.demo.history.generator import Generator
from pocare.demo.history.plan import BatchPlan, DevPlan
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
