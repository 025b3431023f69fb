"""Derived step parameters: values read from the record that already states the fact (issue 15,
"one fact, one value").

A master-file parameter of ``type: derived`` names a ``source`` (``schema.DERIVATIONS``). It is not
typed by the operator: the step form shows the value read-only with the record it comes from, and
:func:`pocare.manufacturing.services.step_record` records it with the step, checked against the
parameter's range like any value. A typed value for it is refused, naming the field.

Each derivation reads one record: the custody order's collection and hand-offs, the chain-of-identity
scans, the apheresis shipment's temperature log, or the batch's step times.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pocare.custody import services as custody
from pocare.custody.models import Handoff, HandoffKind, HandoffOutcome, Shipment, ShipmentLeg
from pocare.manufacturing.models import Batch, StepExecution
from pocare.masterfile import schema


@dataclass(frozen=True)
class Derived:
    """A derived value (``None`` when its source record is missing, then ``missing`` says why) and
    where it came from, in words."""

    value: Any
    source: str
    missing: str = ""


def _local(batch: Batch, at: dt.datetime) -> str:
    return f"{at.astimezone(batch.site.tz):%Y-%m-%d %H:%M} {batch.site.code} time"


def _receipt(batch: Batch) -> Handoff | None:
    """The completed receipt of the batch's starting material at its site (the first, if several)."""
    return (Handoff.objects.filter(order_id=batch.order_id, collection_id=batch.collection_id,
                                   kind=HandoffKind.RECEIPT_AT_SITE, outcome=HandoffOutcome.COMPLETED)
            .order_by("occurred_at", "pk").first())


def _collection_to_receipt(batch: Batch, _spec: dict[str, Any], _at: dt.datetime) -> Derived:
    collection, receipt = batch.collection, _receipt(batch)
    if receipt is None:
        return Derived(None, "", f"the starting material DIN {collection.din} has no completed receipt hand-off")
    hours = round((receipt.occurred_at - collection.collection_ended_at).total_seconds() / 3600, 1)
    return Derived(hours, f"Custody order {batch.order.coi}: collection DIN {collection.din} ended "
                          f"{_local(batch, collection.collection_ended_at)}; received at the site "
                          f"{_local(batch, receipt.occurred_at)} by {receipt.performed_by_name}")


def _identity_scans(batch: Batch, _spec: dict[str, Any], _at: dt.datetime) -> Derived:
    collection, order = batch.collection, batch.order
    scans = {h.kind: h for h in Handoff.objects.filter(
        order_id=batch.order_id, collection_id=batch.collection_id, outcome=HandoffOutcome.COMPLETED,
        kind__in=[HandoffKind.RECEIPT_AT_SITE, HandoffKind.MANUFACTURE_START]).order_by("occurred_at", "pk")}
    missing = [label for kind, label in ((HandoffKind.RECEIPT_AT_SITE, "receipt at the site"),
                                         (HandoffKind.MANUFACTURE_START, "start of manufacture")) if kind not in scans]
    if missing:
        return Derived(None, "", f"no completed {' or '.join(missing)} scan of DIN {collection.din}")
    matched = [custody.handoff_check(order=order, kind=h.kind, collection=collection,
                                     presented_identifier=h.presented_identifier).matches
               and h.expected_identifier == collection.din for h in scans.values()]
    blocked = Handoff.objects.filter(order_id=batch.order_id, outcome=HandoffOutcome.BLOCKED).count()
    return Derived(all(matched), f"Chain of identity COI {order.coi}: "
                   + "; ".join(f"{h.get_kind_display().lower()} scanned {h.presented_identifier} "
                               f"{'=' if ok else '≠'} DIN {collection.din} ({_local(batch, h.occurred_at)})"
                               for h, ok in zip(scans.values(), matched, strict=True))
                   + (f"; {blocked} blocked scan{'s' if blocked != 1 else ''} on the order" if blocked else ""))


def _arrival_temperature(batch: Batch, _spec: dict[str, Any], _at: dt.datetime) -> Derived:
    receipt = _receipt(batch)
    shipment = (Shipment.objects.filter(order_id=batch.order_id, leg=ShipmentLeg.APHERESIS)
                .order_by("-dispatched_at", "-pk").first())
    if shipment is None:
        return Derived(None, "", f"order {batch.order.coi} has no apheresis shipment with a data logger")
    if receipt is None:
        return Derived(None, "", "the starting material has no completed receipt hand-off")
    # The latest valid reading at or before the receipt: a struck-out reading (corrected to no
    # value) is passed over, a corrected one read as corrected.
    for reading in (shipment.readings.filter(at__lte=receipt.occurred_at).select_related("correction")
                    .order_by("-at", "-pk")[:50]):
        correction = getattr(reading, "correction", None)
        celsius: Decimal | None = reading.celsius if correction is None else correction.celsius
        if celsius is None:
            continue
        return Derived(float(celsius), f"Shipment logger {shipment.logger_id}: reading {_local(batch, reading.at)}"
                                       + (" (corrected)" if correction is not None else "")
                                       + f", received {_local(batch, receipt.occurred_at)}")
    return Derived(None, "", f"the readings of logger {shipment.logger_id} up to the receipt are not uploaded")


def _culture_day(batch: Batch, spec: dict[str, Any], at: dt.datetime) -> Derived:
    anchor_id = spec.get("anchor")
    if anchor_id:
        anchor = (StepExecution.objects.filter(batch=batch, step_id=anchor_id, performed_at__isnull=False)
                  .order_by("performed_at").first())
        if anchor is None or anchor.performed_at is None:
            return Derived(None, "", f"the step {anchor_id!r} it counts from is not performed yet")
        since, what = anchor.performed_at, f"step {anchor_id} performed"
    else:
        since, what = batch.started_at, f"batch {batch.reference} started"
    # Whole days as the master file's windows count them: day d runs from 24·d − 12 h to 24·d + 12 h.
    hours = (at - since).total_seconds() / 3600
    days = math.floor(hours / 24 + 0.5)
    return Derived(days, f"Day 0: {what} {_local(batch, since)}; this step {_local(batch, at)}, "
                         f"{hours:.1f} h later")


_DERIVE = {
    "collection_to_receipt": _collection_to_receipt,
    "identity_scans": _identity_scans,
    "arrival_temperature": _arrival_temperature,
    "culture_day": _culture_day,
}
assert set(_DERIVE) == set(schema.DERIVATIONS), "every derivation of the schema is computed here"


def derive(batch: Batch, spec: dict[str, Any], at: dt.datetime) -> Derived:
    """The value of the derived parameter ``spec`` for ``batch``'s step performed at ``at``."""
    return _DERIVE[str(spec.get("source"))](batch, spec, at)


def derived_values(batch: Batch, step: dict[str, Any], at: dt.datetime) -> dict[str, Derived]:
    """Every derived parameter of ``step``, by parameter id."""
    return {p["id"]: derive(batch, p, at) for p in step.get("parameters", []) if p.get("type") == "derived"}


def typed_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The parameter as the value it records is checked: a derived one with its source's type."""
    return {**spec, "type": schema.value_type(spec)}
