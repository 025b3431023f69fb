"""The demo's live batch record, executed through the same services a person uses (signed, checked
at the moment of each step) — beside the loaded history (``pocare.demo.history``):

- released, in-date lots of every material of the bill of materials at every active site;
- at Madrid, a batch in progress: apheresis received and checked, enrichment and activation done,
  device data streaming with one alarm waiting to be acknowledged;
- at Lisbon, an order whose apheresis has arrived, ready for the operator to start its batch;
- at Dublin, a new order waiting for the site to accept it;
- at Groningen, a batch made through every step with its QC results, waiting for release: one
  non-critical value out of range opened a deviation, so the QP's queue shows what stops it.

Idempotent: each part is skipped when it is already there.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.utils import timezone

from pocare.accounts.models import User
from pocare.custody import services as custody
from pocare.custody.models import HandoffKind, TherapyOrder
from pocare.ledger.signing import SigningCredentials
from pocare.manufacturing import devices, services
from pocare.manufacturing.models import Batch, BatchStatus, LotStatus, MaterialLot
from pocare.masterfile import schema
from pocare.masterfile.models import MasterFileVersion, Product
from pocare.network.models import ManufacturingUnit, Site, SiteKind, SiteStatus

#: Supplier and shelf life of the demo's current lots (fictitious lot numbers, real product names).
SHELF_LIFE_DAYS = 240
LIVE_MARK = "Demo live"


def _user(username: str) -> User:
    return User.objects.get(username=username)


def _creds(user: User, password: str) -> SigningCredentials:
    return SigningCredentials(username=user.username, password=password)


def load_lots(*, versions: list[MasterFileVersion], password: str) -> int:
    """One released lot of each material of ``versions`` at each active POCare site, received and
    released (signed) by the site's QC analyst. Returns how many lots were added."""
    materials: dict[str, str] = {}
    for version in versions:
        for step in schema.iter_steps(version.content):
            for m in step.get("materials", []):
                materials.setdefault(m["code"], m["name"])
    added = 0
    today = timezone.now().date()
    for site in Site.objects.filter(kind=SiteKind.HOSPITAL, status=SiteStatus.ACTIVE).order_by("code"):
        qc = _user(f"qc.{site.code.lower()}")
        for index, (code, name) in enumerate(sorted(materials.items())):
            usable = MaterialLot.objects.filter(site=site, material_code=code, status=LotStatus.RELEASED,
                                                expiry_date__gte=today)
            if usable.exists():
                continue
            lot = services.lot_receive(
                actor=qc, site=site, material_code=code, name=name, supplier="Demo supplier",
                lot_number=f"{site.code}{today:%y%m}-{index + 1:02d}-{code}"[:60],
                expiry_date=today + dt.timedelta(days=SHELF_LIFE_DAYS), reason="Demo: goods receipt",
            )
            services.lot_decide(actor=qc, lot=lot, decision=LotStatus.RELEASED,
                                reason="Demo: certificate of analysis checked", credentials=_creds(qc, password))
            added += 1
    return added


def _order(site: Site, *, password: str, recipient: str, weight: str, received: bool) -> Any:
    """A therapy order at ``site`` from its physician, accepted by its manager, collected and
    (``received``) delivered to the site."""
    s = site.code.lower()
    physician, manager, operator = _user(f"physician.{s}"), _user(f"manager.{s}"), _user(f"operator.{s}")
    order = custody.therapy_order_create(
        actor=physician, site=site, treating_site=site, product=Product.objects.get(code="CD19-CART"),
        recipient_id=recipient, recipient_weight_kg=Decimal(weight), indication="Relapsed DLBCL",
        recipient_birth_year=1961, reason=f"{LIVE_MARK}: referral accepted by the CAR-T board")
    if not received:
        return order
    order = custody.therapy_order_accept(actor=manager, order=order, reason=f"{LIVE_MARK}: device slot available")
    now = timezone.now()
    collection = custody.collection_record(
        actor=physician, order=order, collection_started_at=now - dt.timedelta(hours=22),
        collection_ended_at=now - dt.timedelta(hours=18), volume_ml=Decimal("265"),
        donor_tests={"HIV-1/2": "negative", "HBV": "negative", "HCV": "negative", "Syphilis": "negative"},
        reason=f"{LIVE_MARK}: leukapheresis")
    din = collection.din
    custody.handoff_record(actor=physician, order=order, kind=HandoffKind.COLLECTION, presented_identifier=din,
                           site=site, location="Apheresis unit", collection=collection)
    custody.handoff_record(actor=physician, order=order, kind=HandoffKind.DISPATCH_TO_SITE, presented_identifier=din,
                           site=site, location="Internal courier, 2–8 °C", collection=collection)
    custody.handoff_record(actor=operator, order=order, kind=HandoffKind.RECEIPT_AT_SITE, presented_identifier=din,
                           site=site, location="Cell therapy unit goods-in", collection=collection)
    return order


def _good(step: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in step.get("parameters", []):
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


LAST_LIVE_STEP = "activation"
#: What the Madrid operator records in the live batch (the rest are the master file's targets).
MADRID_VALUES = {
    "receipt-identity": {"shipper-temperature": 4.6, "transit-time": 3.5},
    "apheresis-count": {"tnc": 6120, "viability": 96.2, "cd3-fraction": 58.4},
    "cd4-cd8-selection": {"purity": 97.1, "recovery": 54.0, "selected-cells": 1980},
    "activation": {"cells-seeded": 100, "culture-temperature": 37.0},
}


def load_live(*, versions: list[MasterFileVersion], password: str) -> Batch | None:
    """The Madrid batch in progress, the Lisbon order ready to start and the Dublin order waiting;
    ``versions`` are the product's versions in force (their materials are stocked)."""
    if TherapyOrder.objects.filter(recipient_id="MAD-PT-0419").exists():
        return Batch.objects.filter(order__recipient_id="MAD-PT-0419").first()
    load_lots(versions=versions, password=password)
    madrid, lisbon, dublin = (Site.objects.get(code=c) for c in ("MAD", "LIS", "DUB"))
    _order(lisbon, password=password, recipient="LIS-PT-0233", weight="64.0", received=True)
    _order(dublin, password=password, recipient="DUB-PT-0107", weight="81.5", received=False)
    order = _order(madrid, password=password, recipient="MAD-PT-0419", weight="77.0", received=True)
    operator, manager = _user("operator.mad"), _user("manager.mad")
    busy = Batch.objects.filter(status=BatchStatus.IN_PROGRESS).values_list("unit_id", flat=True)
    unit = next((u for u in ManufacturingUnit.objects.filter(site=madrid).exclude(pk__in=busy).order_by("serial")
                 if not services.batch_start_problems(order=order, unit=u)), None)
    if unit is None:
        return None
    batch = services.batch_start(actor=operator, order=order, unit=unit, credentials=_creds(operator, password),
                                 presented_identifier=order.collections.get().din,
                                 reason=f"{LIVE_MARK}: patient's batch started")
    lots = {m.material_code: m.lot_number for m in MaterialLot.objects.filter(site=madrid, status=LotStatus.RELEASED)}
    while True:  # in process order, up to and including activation
        upcoming = services.next_step(batch)
        if upcoming is None:
            break
        step = upcoming[1]
        step_id = step["id"]
        services.step_record(actor=operator, batch=batch, step_id=step_id,
                             values={**_good(step), **MADRID_VALUES.get(step_id, {})},
                             materials={m["code"]: lots[m["code"]] for m in step.get("materials", [])},
                             credentials=_creds(operator, password))
        if step.get("second_person_verification"):
            services.step_verify(actor=manager, batch=batch, step_id=step_id, credentials=_creds(manager, password))
        if step_id == LAST_LIVE_STEP:
            break
    now = timezone.now()
    rows = []
    # The device's feed since it was set up for this batch: readings are plausible only from the
    # batch's start less DEVICE_BEFORE_BATCH_START (an hour), so the feed covers the last 54 minutes,
    # one value every 1.5 minutes.
    for tick in range(36, 0, -1):
        at = (now - dt.timedelta(minutes=1.5 * tick)).isoformat()
        drift = 1.4 if tick in (7, 6) else 0.0  # a short temperature excursion the operator must acknowledge
        rows += [
            {"batch": batch.reference, "parameter": "culture-temperature", "time": at, "value": 37.0 + drift
             + 0.05 * ((tick * 7) % 5 - 2)},
            {"batch": batch.reference, "parameter": "co2", "time": at, "value": 5.0 + 0.02 * ((tick * 3) % 5 - 2)},
            {"batch": batch.reference, "parameter": "ph", "time": at, "value": 7.25 - 0.004 * (36 - tick)},
            {"batch": batch.reference, "parameter": "dissolved-oxygen", "time": at, "value": 62 - 0.3 * (36 - tick)},
        ]
    devices.device_data_push(actor=operator, idempotency_key=f"demo-{batch.reference}-1", rows=rows)
    _completed_batch(Site.objects.get(code="GRO"), password=password)
    return batch


#: Until the live batches are dated like real ones (steps on their process days), the Groningen batch
#: is recorded seconds apart: each step outside its master-file time window carries a deviation.
WINDOW_NOTE = "Demo: the live batch is recorded in seconds, not on the process days of the master file."

#: The release results of the Groningen batch (ARI-0001 specification, DOMAIN.md); sterility,
#: mycoplasma, VCN, RCL and potency may follow release and are left pending.
GRONINGEN_QC = {"viability": "94.8", "cd3": "97.2", "car-positive": "31.5", "dose": "1.1", "endotoxin": "0.12"}


def _completed_batch(site: Site, *, password: str) -> Batch | None:
    """A batch at ``site`` executed through every step (the freezing step skipped: fresh product)
    with its release QC results, one non-critical CD3+ fraction below range raising a deviation."""
    order = _order(site, password=password, recipient=f"{site.code}-PT-0388", weight="69.5", received=True)
    s = site.code.lower()
    operator, manager, qc = _user(f"operator.{s}"), _user(f"manager.{s}"), _user(f"qc.{s}")
    busy = Batch.objects.filter(status=BatchStatus.IN_PROGRESS).values_list("unit_id", flat=True)
    unit = next((u for u in ManufacturingUnit.objects.filter(site=site).exclude(pk__in=busy).order_by("serial")
                 if not services.batch_start_problems(order=order, unit=u)), None)
    if unit is None:
        return None
    batch = services.batch_start(actor=operator, order=order, unit=unit, credentials=_creds(operator, password),
                                 presented_identifier=order.collections.get().din,
                                 reason=f"{LIVE_MARK}: patient's batch started")
    lots = {m.material_code: m.lot_number for m in MaterialLot.objects.filter(site=site, status=LotStatus.RELEASED)}
    while (upcoming := services.next_step(batch)) is not None:
        step = upcoming[1]
        if step.get("optional"):
            services.step_skip(actor=operator, batch=batch, step_id=step["id"], credentials=_creds(operator, password),
                               reason="Fresh product: infused within 24 h, not frozen")
            continue
        who = qc if str(step.get("qualification", "")).startswith("qc-") else operator
        values = {**_good(step), **MADRID_VALUES.get(step["id"], {})}
        if step["id"] == "apheresis-count":
            values["cd3-fraction"] = 8.5  # below the 10 % the master file expects: non-critical, a deviation
        services.step_record(actor=who, batch=batch, step_id=step["id"], values=values,
                             materials={m["code"]: lots[m["code"]] for m in step.get("materials", [])},
                             credentials=_creds(who, password), deviation=WINDOW_NOTE)
        if step.get("second_person_verification"):
            services.step_verify(actor=manager, batch=batch, step_id=step["id"], credentials=_creds(manager, password))
    for attribute_id, value in GRONINGEN_QC.items():
        services.qc_result_record(actor=qc, batch=batch, attribute_id=attribute_id, value=value,
                                  credentials=_creds(qc, password))
    return batch
