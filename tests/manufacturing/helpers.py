"""Set-up for the batch-record tests, through the real services: the demo master file v1 with its
units, authorizations and training, released material lots, and a therapy order that has reached
the site — then a batch started on it.

``world()`` loads what the demo's governance would (idempotent, inside the test's transaction);
``started_batch()`` returns a batch in progress whose next step is the first of the process.
"""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from typing import Any

from django.utils import timezone

from pocare.accounts.models import User
from pocare.ledger.signing import SigningCredentials
from pocare.manufacturing import selectors, services
from pocare.manufacturing.models import Batch, MaterialLot
from pocare.masterfile.models import MasterFileVersion
from pocare.network.models import ManufacturingUnit, Site
from tests.conftest import PASSWORD

_numbers = itertools.count(1)


def user(username: str) -> User:
    return User.objects.get(username=username)


def creds(who: User | str) -> SigningCredentials:
    person = who if isinstance(who, User) else user(who)
    return SigningCredentials(username=person.username, password=PASSWORD)


def world() -> MasterFileVersion:
    """The demo's product, master file v1 (effective), units, authorizations and training."""
    from pocare.demo import masterfile as masterfile_demo
    from pocare.demo import network as network_demo
    from pocare.demo import training as training_demo

    v1 = masterfile_demo.load_product_and_v1(password=PASSWORD)
    network_demo.load_units()
    network_demo.load_authorizations(product=v1.product, password=PASSWORD)
    training_demo.load(password=PASSWORD, versions=[v1])
    return v1


def lots(site_code: str, version: MasterFileVersion, *, expiry_days: int = 200) -> dict[str, MaterialLot]:
    """One released lot of every material of the version at the site (received and released by
    the site's QC analyst). Whatever else a test set up in supply, the lot is usable at any step: not
    stock-managed (no movement, so no stock to run out of), and from an approved supplier of the
    material when the material has one (docs/supply.md)."""
    from pocare.masterfile import schema
    from pocare.supply.models import QUALIFIED, ApprovedSupplier

    site = Site.objects.get(code=site_code)
    qc = user(f"qc.{site_code.lower()}")
    out: dict[str, MaterialLot] = {}
    for step in schema.iter_steps(version.content):
        for m in step.get("materials", []):
            if m["code"] in out:
                continue
            approved = sorted(ApprovedSupplier.objects.filter(material_code=m["code"], supplier__status__in=QUALIFIED)
                              .values_list("supplier__name", flat=True))
            usable = MaterialLot.objects.filter(site=site, material_code=m["code"], status="released",
                                                movements__isnull=True)
            lot = (usable.filter(supplier__in=approved) if approved else usable).first()
            if lot is None:
                lot = services.lot_receive(actor=qc, site=site, material_code=m["code"], name=m["name"],
                                           lot_number=f"L{next(_numbers):05d}-{m['code']}",
                                           expiry_date=timezone.now().date() + dt.timedelta(days=expiry_days),
                                           reason="test goods receipt", supplier=approved[0] if approved else "")
                services.lot_decide(actor=qc, lot=lot, decision="released", reason="CoA checked",
                                    credentials=creds(qc))
            out[m["code"]] = lot
    return out


def received_order(site_code: str = "MAD") -> Any:
    """An accepted therapy order whose apheresis was collected, dispatched and received at the site."""
    from pocare.custody import services as custody
    from pocare.custody.models import HandoffKind

    site = Site.objects.get(code=site_code)
    s = site_code.lower()
    physician, manager, operator = user(f"physician.{s}"), user(f"manager.{s}"), user(f"operator.{s}")
    from pocare.masterfile.models import Product

    order = custody.therapy_order_create(
        actor=physician, site=site, treating_site=site, product=Product.objects.get(code="CD19-CART"),
        recipient_id=f"PT-{next(_numbers):05d}", recipient_weight_kg=Decimal("72.5"), indication="LBCL",
        reason="test order")
    order = custody.therapy_order_accept(actor=manager, order=order, reason="capacity available")
    now = timezone.now()
    collection = custody.collection_record(
        actor=physician, order=order, collection_started_at=now - dt.timedelta(hours=5),
        collection_ended_at=now - dt.timedelta(hours=1), volume_ml=Decimal("250"),
        donor_tests={"HIV": "negative", "HBV": "negative", "HCV": "negative"}, reason="apheresis done")
    custody.handoff_record(actor=physician, order=order, kind=HandoffKind.COLLECTION, presented_identifier=collection.din,
                           site=site, location="Apheresis unit", collection=collection)
    custody.handoff_record(actor=physician, order=order, kind=HandoffKind.DISPATCH_TO_SITE,
                           presented_identifier=collection.din, site=site, location="Courier", collection=collection)
    shipment = custody.shipment_dispatch(actor=physician, order=order, leg="apheresis", logger_id="TL-TEST",
                                         reason="apheresis to the site")
    custody.temperatures_upload(actor=operator, shipment=shipment, source="api",
                                rows=[{"timestamp": shipment.dispatched_at.isoformat(), "temperature_c": 4.5}])
    custody.handoff_record(actor=operator, order=order, kind=HandoffKind.RECEIPT_AT_SITE,
                           presented_identifier=collection.din, site=site, location="Goods-in", collection=collection)
    return order


def unit_at(site_code: str) -> ManufacturingUnit:
    """A usable unit of the site that runs no batch."""
    from pocare.manufacturing.models import BatchStatus

    busy = Batch.objects.filter(status=BatchStatus.IN_PROGRESS).values_list("unit_id", flat=True)
    return ManufacturingUnit.objects.filter(site__code=site_code, status="qualified").exclude(pk__in=busy) \
        .exclude(calibration_due__lt=timezone.now().date()).order_by("serial").first()  # type: ignore[return-value]


def unit_for_a_whole_batch(site_code: str) -> ManufacturingUnit:
    """A free unit of the site, requalified (through the service) when its calibration or maintenance
    falls due within the process: a test that runs batches on their process days moves the clock
    (tests/clock.py), so a second batch in one test would otherwise meet an overdue device."""
    from pocare.network.services import unit_requalify

    unit = unit_at(site_code)
    soon = timezone.now().date() + dt.timedelta(days=16)
    if unit is not None and min(unit.calibration_due, unit.maintenance_due) <= soon:
        due = soon + dt.timedelta(days=90)
        unit = unit_requalify(actor=user("qa"), unit=unit, calibration_due=due, maintenance_due=due,
                              reason="Calibrated and maintained before the next batch")
    return unit


def started_batch(site_code: str = "MAD") -> Batch:
    """A batch in progress at the site, started by its operator on a free unit."""
    version = world()
    lots(site_code, version)
    order = received_order(site_code)
    operator = user(f"operator.{site_code.lower()}")
    return services.batch_start(actor=operator, order=order, unit=unit_for_a_whole_batch(site_code),
                                presented_identifier=order.collections.get().din, credentials=creds(operator))


def good_values(step: dict[str, Any]) -> dict[str, Any]:
    """A value in range (the target, or the middle of the range) for every parameter of a step."""
    out: dict[str, Any] = {}
    for p in step.get("parameters", []):
        if p["type"] == "derived":  # read from its record, never typed
            continue
        if p.get("target") is not None:
            out[p["id"]] = p["target"]
        elif p["type"] in ("number", "integer"):
            low, high = p.get("min"), p.get("max")
            value = (low + high) / 2 if low is not None and high is not None else (low if low is not None else high)
            out[p["id"]] = int(value) if p["type"] == "integer" else value
        elif p["type"] == "choice":
            out[p["id"]] = p["choices"][0]
        elif p["type"] == "boolean":
            out[p["id"]] = True
        elif p["type"] == "text":
            out[p["id"]] = "LOT-TEST-1"
        # a lot parameter is filled from the lot chosen under Materials
    return out


def material_lots(batch: Batch, step: dict[str, Any]) -> dict[str, Any]:
    """The lot of each material: the one proposed first (first expiry, first out) where the site keeps
    stock of it, else its latest-expiring released lot."""
    proposed = selectors.lots_proposed(batch, step)
    return {m["code"]: proposed[m["code"]].lot_number if m["code"] in proposed else
            MaterialLot.objects.filter(site=batch.site, material_code=m["code"], status="released")
            .order_by("-expiry_date").first().lot_number for m in step.get("materials", [])}


def performer_for(batch: Batch, step: dict[str, Any]) -> User:
    """The site's QC analyst for QC steps, else its operator."""
    s = batch.site.code.lower()
    return user(f"qc.{s}" if step.get("qualification", "").startswith("qc-") else f"operator.{s}")


def into_window(batch: Batch, step: dict[str, Any]) -> None:
    """Move the test clock (tests/clock.py) to the middle of the step's time window, as a real
    batch would wait for its process day; nothing moves for a step without a window."""
    from pocare.masterfile import windows
    from tests import clock

    window = step.get("window")
    if not window:
        return
    performed = dict(batch.steps.filter(performed_at__isnull=False).values_list("step_id", "performed_at"))
    anchor_at = windows.anchor_moment(window, batch_started_at=batch.started_at, performed=performed)
    if anchor_at is not None:
        middle = (float(window["earliest_hours"]) + float(window["latest_hours"])) / 2
        clock.advance_to(anchor_at + dt.timedelta(hours=middle))


def do_step(batch: Batch, step_id: str | None = None, **overrides: Any) -> Any:
    """Record the next step (or ``step_id``) with good values, inside its time window (the test
    clock waits for it), and verify it when it needs it."""
    _, step = services.next_step(batch) if step_id is None else services._find(batch, step_id)
    if overrides.pop("in_window", True):
        into_window(batch, step)
    values = {**good_values(step), **overrides.pop("values", {})}
    actor = overrides.pop("actor", None) or performer_for(batch, step)
    outcome = services.step_record(actor=actor, batch=batch, step_id=step["id"], values=values,
                                   materials=overrides.pop("materials", None) or material_lots(batch, step),
                                   credentials=creds(actor), **overrides)
    if step.get("second_person_verification"):
        verifier = user(f"manager.{batch.site.code.lower()}")
        services.step_verify(actor=verifier, batch=batch, step_id=step["id"], credentials=creds(verifier))
    return outcome
