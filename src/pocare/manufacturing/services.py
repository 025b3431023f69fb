"""Changes to the batch record: material lots, starting a batch, executing, verifying, skipping and
correcting steps, QC results, ending a batch (P11-10f, P11-10h, P11-10i, CH4-9, ATMP-TRACE).

Everything a step depends on is checked at the moment it happens, inside the transaction that
records it: the person passes the training gate, the unit is the right class, at the site,
calibrated and free, each material lot is released, unexpired and at the site, each value has the
right type and unit and lies in range. Every recorded step is signed. Nothing recorded is ever
changed: corrections are new rows beside the original.

Device data and alarms are in ``devices.py``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from pocare.accounts.models import User
from pocare.accounts.roles import Perm
from pocare.accounts.services import require_perm
from pocare.core import bounds
from pocare.core.units import amount_text
from pocare.custody import services as custody
from pocare.custody.models import HandoffKind, HandoffOutcome, OrderStatus
from pocare.ledger.models import Meaning
from pocare.ledger.services import event_record, reason_required
from pocare.ledger.signing import SigningCredentials, signature_apply, signing_authenticate
from pocare.manufacturing import derived as derived_
from pocare.manufacturing import evaluation
from pocare.manufacturing.events import ManufacturingEvent
from pocare.manufacturing.models import (
    FEFO_REASON_MAX,
    Batch,
    BatchAbort,
    BatchStatus,
    LotStatus,
    MaterialLot,
    MaterialUse,
    QcResult,
    StepExecution,
    StepStatus,
    StepValue,
)
from pocare.manufacturing.questions import (
    LOT_HOLDS,
    LOT_RELEASE_HOLDS,
    LOT_USE_HOLDS,
    MATERIALS_USED,
    ORDER_HOLDS,
    UnitReservation,
    first_out,
    unit_reservations,
)
from pocare.masterfile import plausibility, schema, windows
from pocare.masterfile.selectors import effective_version
from pocare.network.models import DeviceType, ManufacturingUnit, Site
from pocare.network.selectors import site_authorized_for, site_can_start_batch, site_today, unit_usable
from pocare.quality.models import Deviation, DeviationKind, DeviationStatus
from pocare.quality.services import deviation_open
from pocare.training.gate import step_gate

#: A step is *late* when it took longer than this many times its expected duration.
LATE_FACTOR = 1.5


def _now() -> dt.datetime:
    return timezone.now()


# --- the process of a batch ------------------------------------------------------------------------


def process_steps(batch: Batch) -> list[dict[str, Any]]:
    """The steps of the batch's master-file version, in order (each with its ``unit_operation``)."""
    return schema.iter_steps(batch.masterfile_version.content or {})


def _annex_device(version: Any, site: Site) -> str | None:
    for annex in (version.content or {}).get("site_annexes", []):
        if annex.get("site") == site.code and annex.get("device"):
            return str(annex["device"])
    return None


def device_class_for(version: Any, site: Site, equipment_class: str | None) -> str | None:
    """The device type a step needs at ``site``: the step's equipment class when it names a
    manufacturing device, replaced by the site annex's device where the master file permits one
    (e.g. a Lonza Cocoon at Munich). ``None``: the step needs no manufacturing unit (ancillary
    equipment such as a cell counter or biosafety cabinet is not tracked as a unit)."""
    if equipment_class not in DeviceType.values:
        return None
    return _annex_device(version, site) or equipment_class


def unit_problems(*, unit: ManufacturingUnit, batch_site: Site, device_class: str | None, at: dt.datetime,
                  batch: Batch | None = None, running: dict[int, str] | None = None, order: Any = None,
                  reservations: list[UnitReservation] | None = None) -> list[str]:
    """Why ``unit`` may not be used for a step needing ``device_class`` at ``at`` (empty: it may).
    ``running``: the batch in progress on each busy unit, when the caller loaded it once for many
    units (a page listing a site's units asks one query, not one per unit). With ``order`` (a batch
    about to start for it), a unit kept for another order over ``at`` (``manufacturing.unit_reservations``,
    a patient's booked manufacturing slot) is refused; ``reservations``: those asked once for many units."""
    problems = []
    usable, why = unit_usable(unit, at, site=batch_site)
    if not usable:
        problems.append(why)
    if device_class is not None and unit.device_type != device_class:
        problems.append(f"{unit} is a {DeviceType(unit.device_type).label}; this step needs a "
                        f"{DeviceType(device_class).label if device_class in DeviceType.values else device_class}.")
    if running is not None and batch is None:
        other = running.get(unit.pk)
    else:
        busy = Batch.objects.filter(unit=unit, status=BatchStatus.IN_PROGRESS)
        if batch is not None:
            busy = busy.exclude(pk=batch.pk)
        other = busy.values_list("reference", flat=True).first()
    if other:
        problems.append(f"{unit} is running batch {other}: one device makes one patient's batch at a time.")
    if order is not None and batch is None:
        if reservations is None:
            reservations = unit_reservations(unit_ids=[unit.pk], at=at, order=order)
        for kept in reservations:
            if kept.unit_id == unit.pk and kept.order_id != order.pk and kept.starts <= at < kept.ends:
                problems.append(f"{unit} is kept for {kept.label} from {kept.starts:%Y-%m-%d %H:%M} to "
                                f"{kept.ends:%Y-%m-%d %H:%M} UTC: another patient's booked manufacturing slot.")
    return problems


# --- material lots ---------------------------------------------------------------------------------


def lot_receive(*, actor: User, site: Site, material_code: str, name: str, lot_number: str,
                expiry_date: dt.date, reason: str, supplier: str = "") -> MaterialLot:
    """Receive a material lot at a site; it stays in quarantine until released."""
    require_perm(actor, Perm.MATERIALS_MANAGE, site=site)
    reason = reason_required(reason)
    errors = {}
    material_code, lot_number = (material_code or "").strip(), (lot_number or "").strip()
    if not material_code:
        errors["material_code"] = "Give the master file's material code, e.g. TS520."
    if not lot_number:
        errors["lot_number"] = "Give the supplier's lot number."
    if not isinstance(expiry_date, dt.date):
        errors["expiry_date"] = "Give the expiry date as YYYY-MM-DD."
    if errors:
        raise ValidationError(errors)
    if MaterialLot.objects.filter(site=site, material_code=material_code, lot_number=lot_number).exists():
        raise ValidationError({"lot_number": f"Lot {lot_number} of {material_code} is already received at "
                                             f"{site.code}."})
    with transaction.atomic():
        lot = MaterialLot.objects.create(
            site=site, material_code=material_code, name=(name or material_code).strip()[:200],
            lot_number=lot_number, supplier=supplier.strip(), expiry_date=expiry_date,
            received_by=actor, received_at=_now(),
        )
        event_record(actor=actor, event_type=ManufacturingEvent.LOT_RECEIVED, site=site, obj=lot, reason=reason,
                     new={"material_code": material_code, "lot_number": lot_number, "expiry_date": expiry_date,
                          "status": lot.status})
    return lot


def lot_decide(*, actor: User, lot: MaterialLot, decision: str, reason: str,
               credentials: SigningCredentials) -> MaterialLot:
    """Release or reject a lot in quarantine, signed (meaning: approved or rejected)."""
    require_perm(actor, Perm.MATERIALS_MANAGE, site=lot.site)
    if decision not in (LotStatus.RELEASED, LotStatus.REJECTED):
        raise ValidationError({"decision": "Choose released or rejected."})
    reason = reason_required(reason)
    if lot.status != LotStatus.QUARANTINE:
        raise ValidationError({"decision": f"{lot} is already {lot.get_status_display().lower()}."})
    if decision == LotStatus.RELEASED and (holds := lot_release_holds(lot)):
        raise ValidationError({"decision": " ".join(holds)})
    proof = signing_authenticate(actor=actor, credentials=credentials)
    with transaction.atomic():
        locked = MaterialLot.objects.select_for_update().get(pk=lot.pk)
        if locked.status != LotStatus.QUARANTINE:
            raise ValidationError({"decision": f"{lot} was decided meanwhile."})
        lot.status, lot.decided_by, lot.decided_at = decision, actor, _now()
        lot.save(update_fields=["status", "decided_by", "decided_at"])
        event_record(actor=actor, event_type=ManufacturingEvent.LOT_DECIDED, site=lot.site, obj=lot, reason=reason,
                     old={"status": LotStatus.QUARANTINE}, new={"status": decision})
        signature_apply(proof=proof, record=lot, site=lot.site, reason=reason,
                        meaning=Meaning.APPROVED if decision == LotStatus.RELEASED else Meaning.REJECTED)
    return lot


def lot_release_as_source(*, actor: User, lot: MaterialLot, source: MaterialLot, reason: str) -> MaterialLot:
    """Release a lot received at a site from another site's lot of the same material and lot number
    (a transfer between sites, supply's ``transfers``), on the strength of the source lot's release,
    signed there: the caller has checked that the goods travelled within their limits under an intact
    seal. Only a lot in quarantine that was never decided, from a released source lot."""
    require_perm(actor, Perm.MATERIALS_MANAGE, site=lot.site)
    reason = reason_required(reason)
    same = (source.material_code, source.lot_number) == (lot.material_code, lot.lot_number)
    if not same or source.site_id == lot.site_id:
        raise ValidationError({"lot": f"{lot} is not {source} received from another site."})
    if source.status != LotStatus.RELEASED:
        raise ValidationError({"lot": f"{source} at {source.site.code} is {source.get_status_display().lower()}."})
    with transaction.atomic():
        locked = MaterialLot.objects.select_for_update().get(pk=lot.pk)
        if locked.status != LotStatus.QUARANTINE or locked.decided_at is not None:
            raise ValidationError({"lot": f"{lot} was already decided at {lot.site.code}."})
        locked.status, locked.decided_by, locked.decided_at = LotStatus.RELEASED, source.decided_by, _now()
        locked.save(update_fields=["status", "decided_by", "decided_at"])
        event_record(actor=actor, event_type=ManufacturingEvent.LOT_DECIDED, site=locked.site, obj=locked,
                     reason=reason, old={"status": LotStatus.QUARANTINE},
                     new={"status": LotStatus.RELEASED, "as_source_lot": source.pk, "source_site": source.site.code,
                          "source_decided_at": source.decided_at})
    return locked


def lot_release_holds(lot: MaterialLot) -> list[str]:
    """Why the apps above hold ``lot`` from release (``manufacturing.lot_release_holds``; empty: none)."""
    return [reason for reason in LOT_RELEASE_HOLDS.ask(lot=lot) if reason]


def lot_problems(lot: MaterialLot, *, material_code: str, site: Site, at: dt.datetime) -> list[str]:
    """Why ``lot`` may not be used as ``material_code`` at ``site`` at ``at`` (empty: it may)."""
    problems = []
    if lot.material_code != material_code:
        problems.append(f"{lot} is {lot.material_code}, not {material_code}.")
    if lot.site_id != site.pk:
        problems.append(f"{lot} is stocked at another site, not at {site.code}.")
    if lot.status != LotStatus.RELEASED:
        problems.append(f"{lot} is {lot.get_status_display().lower()}, not released.")
    if lot.expiry_date < site_today(site, at):
        problems.append(f"{lot} expired on {lot.expiry_date.isoformat()}.")
    problems += [reason for reason in LOT_HOLDS.ask(lot=lot, at=at) if reason]
    return problems


# --- starting a batch ----------------------------------------------------------------------------


def _next_batch_reference(site: Site, year: int) -> str:
    prefix = f"{site.code}-{year}-"
    last = (Batch.objects.filter(reference__startswith=prefix).order_by("-reference")
            .values_list("reference", flat=True).first())
    return f"{prefix}{(int(last.rsplit('-', 1)[1]) + 1 if last else 1):04d}"


def batch_start_problems(*, order: Any, unit: ManufacturingUnit, at: dt.datetime | None = None) -> list[str]:
    """Everything that stops a batch from starting now for ``order`` on ``unit`` (empty: it may)."""
    at = at or _now()
    start = order_start_problems(order=order, at=at)
    return start.with_unit(unit, at=at)


@dataclass(frozen=True)
class OrderStart:
    """What stops a batch of an order from starting whatever the unit, and the device class its
    version needs; ``unit_checked`` is False when no version is effective (no unit can help)."""

    order: Any
    problems: list[str]
    device_class: str | None
    unit_checked: bool

    def with_unit(self, unit: ManufacturingUnit, *, at: dt.datetime, running: dict[int, str] | None = None,
                  reservations: list[UnitReservation] | None = None) -> list[str]:
        """The order's problems and ``unit``'s own (``running``, ``reservations``: see :func:`unit_problems`)."""
        if not self.unit_checked:
            return list(self.problems)
        return self.problems + unit_problems(unit=unit, batch_site=self.order.site, device_class=self.device_class,
                                             at=at, running=running, order=self.order, reservations=reservations)


def order_start_problems(*, order: Any, at: dt.datetime) -> OrderStart:
    """The part of :func:`batch_start_problems` that does not depend on the unit, asked once for a
    page that lists every unit of the site."""
    site = order.site
    problems = []
    ok, why = site_can_start_batch(site, at)
    if not ok:
        problems.append(why)
    if order.status != OrderStatus.ACCEPTED:
        problems.append(f"The therapy order is {order.get_status_display().lower()}; a batch starts for an "
                        "accepted order (with its chain-of-identity identifier).")
    if Batch.objects.filter(order=order).exists():
        problems.append("This therapy order already has its batch.")
    problems += [reason for reason in ORDER_HOLDS.ask(order=order, at=at) if reason]
    if not order.handoffs.filter(kind=HandoffKind.RECEIPT_AT_SITE, outcome=HandoffOutcome.COMPLETED).exists():
        problems.append("The starting material has not been received at the site (no completed receipt hand-off).")
    collection = order.collections.order_by("-collection_ended_at").first()
    if collection is not None and collection.expires_at is not None and collection.expires_at < at:
        problems.append(f"The starting material (DIN {collection.din}) expired "
                        f"{collection.expires_at.astimezone(site.tz):%Y-%m-%d %H:%M} {site.code} time; "
                        "it may not be manufactured.")
    version = effective_version(site=site, product=order.product, at=at)
    if version is None:
        problems.append(f"No {order.product.code} master-file version is effective at {site.code}.")
    else:
        authorized, why = site_authorized_for(site, version, at)
        if not authorized:
            problems.append(why)
        classes = {device_class_for(version, site, s.get("equipment_class"))
                   for s in schema.iter_steps(version.content)}
        classes.discard(None)
        device = next(iter(classes)) if len(classes) == 1 else None
        return OrderStart(order, problems, device, unit_checked=True)
    return OrderStart(order, problems, None, unit_checked=False)


def batch_start(*, actor: User, order: Any, unit: ManufacturingUnit, presented_identifier: str,
                credentials: SigningCredentials, reason: str = "") -> Batch:
    """Start the batch of an accepted therapy order on a unit at its site, against the master-file
    version effective there now, which the batch keeps for ever (POC-1, DESIGN rule 5).

    The operator scans the starting material: the scan is the *start of manufacture* hand-off of the
    chain of custody, and a mismatch blocks the start and opens a deviation. The hand-off, a custody
    service, also moves the therapy order into manufacture with its ledger event, in this transaction:
    the order's status is custody's to change. Signed (performed).
    """
    site = order.site
    require_perm(actor, Perm.BATCH_EXECUTE, site=site)
    problems = batch_start_problems(order=order, unit=unit)
    if problems:
        raise ValidationError({"batch": problems})
    collection = order.collections.order_by("-collection_ended_at").first()
    if collection is None:
        raise ValidationError({"batch": "The order has no collection of starting material."})
    if not custody.handoff_check(order=order, kind=HandoffKind.MANUFACTURE_START, collection=collection,
                                 presented_identifier=presented_identifier).matches:
        # Recorded as a blocked hand-off with its deviation, in its own transaction, then refused.
        custody.handoff_record(actor=actor, order=order, kind=HandoffKind.MANUFACTURE_START,
                               presented_identifier=presented_identifier, site=site, collection=collection,
                               location=str(unit))
    proof = signing_authenticate(actor=actor, credentials=credentials)
    with transaction.atomic():
        ManufacturingUnit.objects.select_for_update().get(pk=unit.pk)  # one batch per unit at a time
        now = _now()
        problems = batch_start_problems(order=order, unit=unit, at=now)
        if problems:
            raise ValidationError({"batch": problems})
        version = effective_version(site=site, product=order.product, at=now)
        assert version is not None
        batch = Batch.objects.create(
            reference=_next_batch_reference(site, now.year), order=order, collection=collection, site=site,
            unit=unit, masterfile_version=version, started_by=actor, started_at=now,
        )
        custody.handoff_record(actor=actor, order=order, kind=HandoffKind.MANUFACTURE_START,
                               presented_identifier=presented_identifier, site=site, collection=collection,
                               batch=batch, location=str(unit))
        event_record(actor=actor, event_type=ManufacturingEvent.BATCH_STARTED, site=site, obj=batch,
                     reason=reason or "Batch started",
                     new={"reference": batch.reference, "coi": order.coi, "din": collection.din,
                          "unit": unit.serial, "version": str(version), "version_hash": version.content_hash})
        signature_apply(proof=proof, record=batch, meaning=Meaning.PERFORMED, site=site,
                        reason=reason or "Batch started")
    return batch


# --- steps -----------------------------------------------------------------------------------------


def _lock_batch(batch: Batch) -> Batch:
    locked = Batch.objects.select_for_update().get(pk=batch.pk)
    batch.status = locked.status
    return locked


def next_step(batch: Batch) -> tuple[int, dict[str, Any]] | None:
    """The position and definition of the step to do next (P11-10f), or None when all are done.
    A step waiting for its second-person verification is still 'next': nothing after it starts."""
    return next_step_of(process_steps(batch), dict(batch.steps.values_list("position", "status")))


def next_step_of(process: list[dict[str, Any]], done: dict[int, str]) -> tuple[int, dict[str, Any]] | None:
    """:func:`next_step` from the process and each recorded step's status by position, for a reader
    that loaded the steps already (the batch page)."""
    for position, step in enumerate(process):
        if done.get(position) not in (StepStatus.COMPLETE, StepStatus.SKIPPED):
            return position, step
    return None


def _find(batch: Batch, step_id: str) -> tuple[int, dict[str, Any]]:
    for position, step in enumerate(process_steps(batch)):
        if step["id"] == step_id:
            return position, step
    raise ValidationError({"step": f"There is no step {step_id!r} in {batch.masterfile_version}."})


def step_definition(batch: Batch, step_id: str) -> dict[str, Any]:
    """The master-file definition of ``step_id`` in the batch's version (ValidationError if none)."""
    return _find(batch, step_id)[1]


def _sequence_check(batch: Batch, step_id: str) -> tuple[int, dict[str, Any], StepExecution | None]:
    """Refuse anything but the next step of the process (P11-10f)."""
    if batch.status != BatchStatus.IN_PROGRESS:
        raise ValidationError({"batch": f"{batch} is {batch.get_status_display().lower()}: no more steps."})
    position, step = _find(batch, step_id)
    upcoming = next_step(batch)
    if upcoming is None:
        raise ValidationError({"step": f"Every step of {batch} is done."})
    if upcoming[0] != position:
        nxt = upcoming[1]
        existing = batch.steps.filter(position=upcoming[0]).first()
        if position < upcoming[0]:
            raise ValidationError({"step": f"Step {step_id!r} is already done; to change a value, correct it."})
        waiting = (" It is recorded and awaits second-person verification."
                   if existing is not None and existing.status == StepStatus.AWAITING_VERIFICATION else "")
        raise ValidationError({"step": (f"Steps follow the master file in order: the next step is "
                                        f"{nxt['id']!r} ({nxt['name']}), not {step_id!r}.{waiting}")})
    return position, step, batch.steps.filter(position=position).first()


def step_problems(*, person: User, batch: Batch, step: dict[str, Any], at: dt.datetime,
                  verifying: bool = False) -> list[str]:
    """What stops ``person`` from performing (or verifying) ``step`` of ``batch`` at ``at``: the
    training gate (role, site, version, qualification, version training) and the unit."""
    decision = step_gate(person=person, version=batch.masterfile_version, step_id=step["id"], site=batch.site,
                         at=at, verifying=verifying)
    problems = list(decision.reasons)
    problems += [reason for reason in ORDER_HOLDS.ask(order=batch.order, at=at) if reason]
    device = device_class_for(batch.masterfile_version, batch.site, step.get("equipment_class"))
    if device is not None:
        problems.extend(unit_problems(unit=batch.unit, batch_site=batch.site, device_class=device, at=at,
                                      batch=batch))
    return problems


def step_start(*, actor: User, batch: Batch, step_id: str) -> StepExecution:
    """Start the next step: the person and the unit are checked now, and the start time is kept
    (a step taking much longer than the master file expects shows as late in review)."""
    require_perm(actor, Perm.BATCH_EXECUTE, site=batch.site)
    with transaction.atomic():
        _lock_batch(batch)
        position, step, existing = _sequence_check(batch, step_id)
        if existing is not None:
            raise ValidationError({"step": f"Step {step_id!r} was started by {existing.started_by.printed_name} "
                                           "already."})
        now = _now()
        problems = step_problems(person=actor, batch=batch, step=step, at=now)
        if problems:
            raise ValidationError({"step": problems})
        execution = StepExecution.objects.create(batch=batch, position=position, step_id=step_id,
                                                 unit_operation=step["unit_operation"], started_by=actor,
                                                 started_at=now)
        event_record(actor=actor, event_type=ManufacturingEvent.STEP_STARTED, site=batch.site, obj=execution,
                     reason="Step started", new={"batch": batch.reference, "step": step_id, "position": position})
    return execution


@dataclass
class StepOutcome:
    """What recording a step produced: the step and any deviations it opened."""

    step: StepExecution
    deviations: list[Deviation] = field(default_factory=list)


@dataclass(frozen=True)
class _Checked:
    spec: dict[str, Any]
    result: evaluation.Evaluation


def _check_values(step: dict[str, Any], values: Mapping[str, Any], units: Mapping[str, str] | None,
                  deviation_note: str) -> dict[str, _Checked]:
    """Every parameter of the step evaluated, or a ValidationError naming each bad field
    (``values.<parameter id>``)."""
    specs = {p["id"]: p for p in step.get("parameters", [])}
    errors: dict[str, str] = {}
    for pid in values:
        if pid not in specs:
            allowed = ", ".join(specs) or "none"
            errors[f"values.{pid}"] = f"Step {step['id']!r} has no parameter {pid!r}; its parameters: {allowed}."
    checked: dict[str, _Checked] = {}
    for pid, spec in specs.items():
        if spec.get("type") == "lot":  # the lot chosen under Materials (see _lot_values)
            continue
        if spec.get("type") == "derived":  # read from its source record (see _derived_checked)
            if values.get(pid) not in (None, "") and not (isinstance(values[pid], str) and not values[pid].strip()):
                errors[f"values.{pid}"] = (
                    f"{spec['name']} is not typed: it is read from "
                    f"{schema.DERIVATIONS[spec['source']].reads}. Leave it out; correct that record if it is wrong.")
            continue
        if pid not in values or values[pid] is None or (isinstance(values[pid], str) and not values[pid].strip()):
            errors[f"values.{pid}"] = f"{spec['name']}: a value is required."
            continue
        try:
            result = evaluation.evaluate_parameter(spec, values[pid], (units or {}).get(pid))
        except evaluation.ValueRefused as exc:
            errors[f"values.{pid}"] = str(exc)
            continue
        checked[pid] = _Checked(spec, result)
        if result.in_range is False and spec.get("critical") and not deviation_note.strip():
            errors[f"values.{pid}"] = (f"{result.message} It is a critical parameter: the step stops here until "
                                       "a deviation is raised — describe what happened in 'deviation'.")
    if errors:
        raise ValidationError(errors)
    return checked


def _quantity_storable(quantity: Decimal) -> bool:
    """Whether ``quantity`` fits ``MaterialUse.quantity`` (10 digits, 3 of them decimals)."""
    return (quantity.is_finite() and abs(quantity) < 10_000_000
            and quantity == quantity.quantize(Decimal("0.001")))


class _Use(NamedTuple):
    """A line of the step's bill of materials with the lot chosen for it, checked."""

    line: dict[str, Any]
    lot: MaterialLot
    quantity: Decimal
    fefo_reason: str  # why not the lot that expires first; "" when it is that lot


def _fefo_reason(line: dict[str, Any], lot: MaterialLot, quantity: Decimal, given: Any,
                 batch: Batch, at: dt.datetime) -> tuple[str, str | None]:
    """(the reason kept with the use, the refusal): a lot that expires later than the one proposed
    first (``questions.first_out``) is used only with a reason (SUP-STOCK); a reason given for the
    lot proposed is not kept (there is nothing to explain)."""
    text = given if isinstance(given, str) else "" if given is None else None
    if text is None:
        return "", f"{line['name']}: the reason for not taking the lot that expires first must be text."
    text = text.strip()
    first = first_out(site=batch.site, material_code=line["code"], quantity=quantity, at=at)
    if first is None or first.lot_id == lot.pk or lot.expiry_date <= first.expiry_date:
        return "", None
    if not text:
        return "", (f"{line['name']}: lot {first.lot_number} (expires {first.expiry_date:%Y-%m-%d}, "
                    f"{amount_text(first.in_stock)} in stock) expires before lot {lot.lot_number} "
                    f"({lot.expiry_date:%Y-%m-%d}): take it (first expiry, first out), or say why not.")
    if len(text) > FEFO_REASON_MAX or bounds.has_control(text, allowed="\n\t"):
        return "", (f"{line['name']}: the reason for not taking lot {first.lot_number} must be printable text of at "
                    f"most {FEFO_REASON_MAX} characters.")
    return text, None


def _resolve_lots(batch: Batch, step: dict[str, Any], materials: Mapping[str, Any] | None,
                  at: dt.datetime) -> list[_Use]:
    """The lot used for each line of the step's bill of materials, each checked now. A line is a
    lot (its id or number) or ``{"lot":, "quantity":, "fefo_reason":}``."""
    given = dict(materials or {})
    lines = step.get("materials", [])
    codes = {m["code"] for m in lines}
    errors: dict[str, Any] = {}
    for code in given:
        if code not in codes:
            errors[f"materials.{code}"] = (f"Step {step['id']!r} uses no material {code!r}; its bill of materials: "
                                           f"{', '.join(sorted(codes)) or 'none'}.")
    out = []
    for line in lines:
        key = f"materials.{line['code']}"
        ref = given.get(line["code"])
        quantity = Decimal(str(line["quantity"]))
        reason_given: Any = None
        if isinstance(ref, Mapping):
            try:
                quantity = Decimal(str(ref.get("quantity", quantity)))
            except InvalidOperation:
                errors[key] = f"{line['name']}: the quantity must be a number."
                continue
            reason_given = ref.get("fefo_reason")
            ref = ref.get("lot")
        if not _quantity_storable(quantity):
            # NaN, infinity, a 400-digit number or a fourth decimal would fail in the database.
            errors[key] = (f"{line['name']}: the quantity must be a finite number below 10,000,000 with at "
                           "most 3 decimals.")
            continue
        if ref in (None, ""):
            errors[key] = f"{line['name']} ({line['code']}): scan or choose the lot used."
            continue
        lots = MaterialLot.objects.filter(site=batch.site, material_code=line["code"])
        lot = (lots.filter(pk=ref).first() if isinstance(ref, int) or str(ref).isdigit() else None) \
            or lots.filter(lot_number=str(ref).strip()).first()
        if lot is None:
            other = MaterialLot.objects.filter(lot_number=str(ref).strip()).select_related("site").first()
            errors[key] = (f"{line['name']}: lot {ref!r} " + (
                f"is {other.material_code} at {other.site.code}, not {line['code']} at {batch.site.code}."
                if other is not None else f"is not received at {batch.site.code}."))
            continue
        problems = lot_problems(lot, material_code=line["code"], site=batch.site, at=at)
        if problems:
            errors[key] = " ".join(problems)
            continue
        if quantity <= 0:
            errors[key] = f"{line['name']}: the quantity must be greater than 0."
            continue
        holds = [reason for reason in LOT_USE_HOLDS.ask(lot=lot, quantity=quantity, at=at) if reason]
        if holds:
            errors[key] = f"{line['name']}: " + " ".join(holds)
            continue
        fefo_reason, refused = _fefo_reason(line, lot, quantity, reason_given, batch, at)
        if refused:
            errors[key] = refused
            continue
        out.append(_Use(line, lot, quantity, fefo_reason))
    if errors:
        raise ValidationError(errors)
    return out


def _finish_if_done(*, actor: User, batch: Batch) -> None:
    if next_step(batch) is None and batch.status == BatchStatus.IN_PROGRESS:
        batch.status, batch.ended_at = BatchStatus.COMPLETED, _now()
        batch.save(update_fields=["status", "ended_at"])
        event_record(actor=actor, event_type=ManufacturingEvent.BATCH_ENDED, site=batch.site, obj=batch,
                     reason="Every step of the master file is done", old={"status": BatchStatus.IN_PROGRESS},
                     new={"status": BatchStatus.COMPLETED})


def _lot_values(step: dict[str, Any], values: Mapping[str, Any],
                lots: list[_Use]) -> dict[str, _Checked]:
    """The ``lot`` parameters of the step, each filled from the lot chosen for its material under
    Materials (one fact, one value, ATMP-TRACE). A typed value must be that lot's number: a vector
    lot typed as ``LV19-99999999`` while ``LV19-26016869`` was chosen is refused, naming both."""
    chosen = {use.line["code"]: use.lot for use in lots}
    errors: dict[str, str] = {}
    out: dict[str, _Checked] = {}
    for spec in step.get("parameters", []):
        if spec.get("type") != "lot":
            continue
        pid, lot = spec["id"], chosen.get(str(spec.get("material")))
        if lot is None:
            errors[f"values.{pid}"] = f"{spec['name']}: choose the lot of {spec.get('material')} under Materials."
            continue
        typed = values.get(pid)
        if typed not in (None, "") and str(typed).strip().casefold() != lot.lot_number.casefold():
            errors[f"values.{pid}"] = (
                f"{spec['name']}: {str(typed).strip()[:60]!r} is not the lot chosen under Materials for "
                f"{spec.get('material')} ({lot.lot_number}); the {spec['name'].lower()} is the lot consumed — "
                "leave it empty or choose the right lot.")
            continue
        out[pid] = _Checked(spec, evaluation.Evaluation(lot.lot_number, None))
    if errors:
        raise ValidationError(errors)
    return out


def _derived_checked(batch: Batch, step: dict[str, Any], at: dt.datetime,
                     deviation_note: str) -> tuple[dict[str, _Checked], dict[str, str]]:
    """The ``derived`` parameters of the step, each read from its source record now and checked
    like a typed value (a critical one out of range stops the step until a deviation is described),
    and where each came from; a ValidationError names each parameter whose record is missing."""
    errors: dict[str, str] = {}
    out: dict[str, _Checked] = {}
    sources: dict[str, str] = {}
    for pid, found in derived_.derived_values(batch, step, at).items():
        spec = next(p for p in step["parameters"] if p["id"] == pid)
        if found.value is None:
            errors[f"values.{pid}"] = f"{spec['name']} cannot be read yet: {found.missing}."
            continue
        try:
            result = evaluation.evaluate_parameter(derived_.typed_spec(spec), found.value)
        except evaluation.ValueRefused as exc:
            errors[f"values.{pid}"] = f"{exc} (read from: {found.source})"
            continue
        if result.in_range is False and spec.get("critical") and not deviation_note.strip():
            errors[f"values.{pid}"] = (f"{result.message} (read from: {found.source}) It is a critical parameter: "
                                       "the step stops here until a deviation is raised — describe what happened "
                                       "in 'deviation'.")
            continue
        out[pid], sources[pid] = _Checked(spec, result), found.source
    if errors:
        raise ValidationError(errors)
    return out, sources


def step_window(batch: Batch, step: dict[str, Any], at: dt.datetime) -> windows.WindowCheck | None:
    """The step performed at ``at`` against its time window in the master file (None: no window)."""
    window = step.get("window")
    if not window:
        return None
    performed = dict(batch.steps.filter(performed_at__isnull=False).values_list("step_id", "performed_at"))
    anchor_at = windows.anchor_moment(window, batch_started_at=batch.started_at, performed=performed)
    return windows.check(step["id"], window, anchor_at=anchor_at, performed_at=at)


def _open_deviation_at(batch: Batch, step_id: str) -> Deviation | None:
    """An open deviation already raised for this step of the batch (QA or the site may raise one
    before a step they know will fall outside its window): referenced, not opened twice."""
    return (Deviation.objects.filter(batch=batch, step_id=step_id, status=DeviationStatus.OPEN)
            .order_by("opened_at", "pk").first())


def _window_gate(batch: Batch, step: dict[str, Any], at: dt.datetime, deviation: str) -> windows.WindowCheck | None:
    """Refuse a critical step outside its window until a deviation is described or already open
    for it (P11-10f); return the check of a step outside its window (None: inside, or no window)."""
    check = step_window(batch, step, at)
    if check is None or check.inside:
        return None
    if check.critical and not deviation.strip() and _open_deviation_at(batch, step["id"]) is None:
        raise ValidationError({"deviation": (
            f"{check.message()} It is a critical step: it is recorded only with a deviation — describe what "
            "happened in 'deviation' (or have one opened for this step first).")})
    return check


def _window_deviation(*, actor: User, batch: Batch, execution: StepExecution, check: windows.WindowCheck,
                      note: str) -> tuple[Deviation, bool]:
    """The deviation of a step performed outside its window: the open one raised for the step, or
    a new one (True) with the window, the anchor and the elapsed time."""
    existing = _open_deviation_at(batch, execution.step_id)
    if existing is not None:
        return existing, False
    kind = "Critical step" if check.critical else "Step"
    return deviation_open(
        actor=actor, site=batch.site, kind=DeviationKind.PROCESS, batch=batch, step_id=execution.step_id,
        source=execution, title=f"{kind} outside its time window: {execution.step_id}"[:200],
        description=check.message() + (f"\n\nOperator: {note.strip()}" if note.strip() else
                                       "\n\nRecorded and raised automatically (not a critical step)."),
    ), True


def _write_values(*, actor: User, batch: Batch, execution: StepExecution, checked: dict[str, _Checked],
                  deviation: str, at: dt.datetime) -> tuple[list[Deviation], list[StepValue]]:
    """The step's values, each out-of-range one with its deviation; returns the deviations opened
    and the rows written (the step's event stamps their content, ledger.records)."""
    opened: list[Deviation] = []
    rows = []
    for pid, c in checked.items():
        dev = None
        if c.result.in_range is False:
            critical = bool(c.spec.get("critical"))
            dev = deviation_open(
                actor=actor, site=batch.site, kind=DeviationKind.PROCESS, batch=batch, step_id=execution.step_id,
                source=execution,
                title=f"{'Critical' if critical else 'Non-critical'} parameter out of range at {execution.step_id}: "
                      f"{c.spec['name']}"[:200],
                description=c.result.message + (f"\n\nOperator: {deviation.strip()}" if deviation.strip() else
                                                "\n\nRecorded and raised automatically (non-critical)."),
            )
            opened.append(dev)
        rows.append(StepValue(step=execution, parameter_id=pid, value=c.result.value,
                              unit=c.spec.get("unit") or "", in_range=c.result.in_range,
                              critical=bool(c.spec.get("critical")), deviation=dev, entered_by=actor,
                              entered_at=at))
    return opened, StepValue.objects.bulk_create(rows)


def _perform(*, actor: User, batch: Batch, position: int, step: dict[str, Any], execution: StepExecution | None,
             notes: str, at: dt.datetime) -> StepExecution:
    """The step's execution row, performed now by ``actor``."""
    if execution is None:
        execution = StepExecution.objects.create(batch=batch, position=position, step_id=step["id"],
                                                 unit_operation=step["unit_operation"], started_by=actor,
                                                 started_at=at)
    elif execution.status != StepStatus.IN_PROGRESS:
        raise ValidationError({"step": f"Step {step['id']!r} is already recorded; it awaits verification."})
    device = device_class_for(batch.masterfile_version, batch.site, step.get("equipment_class"))
    execution.equipment = batch.unit if device is not None else None
    execution.performed_by, execution.performed_at = actor, at
    execution.notes = (notes or "").strip()
    execution.status = (StepStatus.AWAITING_VERIFICATION if step.get("second_person_verification")
                        else StepStatus.COMPLETE)
    execution.save(update_fields=["equipment", "performed_by", "performed_at", "notes", "status"])
    return execution


def step_record(*, actor: User, batch: Batch, step_id: str, values: Mapping[str, Any],
                credentials: SigningCredentials, materials: Mapping[str, Any] | None = None,
                units: Mapping[str, str] | None = None, notes: str = "", deviation: str = "") -> StepOutcome:
    """Record the values and materials of the next step and sign it (meaning: performed).

    Checked now, in the transaction that records it: the sequence, the gate, the unit, every lot,
    every value, each lot parameter against its chosen lot, and the step's time window (by the
    server's clock). A critical value out of range, or a critical step outside its window, is
    refused until ``deviation`` describes it — then the deviation is opened; a non-critical one is
    recorded and raises its deviation automatically. A step the master file wants verified waits
    for a second person.
    """
    require_perm(actor, Perm.BATCH_EXECUTE, site=batch.site)
    position, step = _find(batch, step_id)
    checked = _check_values(step, values, units, deviation)
    _lot_values(step, values, _resolve_lots(batch, step, materials, _now()))
    _derived_checked(batch, step, _now(), deviation)
    _window_gate(batch, step, _now(), deviation)
    proof = signing_authenticate(actor=actor, credentials=credentials)
    with transaction.atomic():
        _lock_batch(batch)
        position, step, execution = _sequence_check(batch, step_id)
        now = _now()
        problems = step_problems(person=actor, batch=batch, step=step, at=now)
        if problems:
            raise ValidationError({"step": problems})
        lots = _resolve_lots(batch, step, materials, now)
        derived, sources = _derived_checked(batch, step, now, deviation)
        checked = {**checked, **_lot_values(step, values, lots), **derived}
        window = _window_gate(batch, step, now, deviation)
        execution = _perform(actor=actor, batch=batch, position=position, step=step, execution=execution,
                             notes=notes, at=now)
        opened, value_rows = _write_values(actor=actor, batch=batch, execution=execution, checked=checked,
                                           deviation=deviation, at=now)
        if window is not None:
            window_dev, new = _window_deviation(actor=actor, batch=batch, execution=execution, check=window,
                                                note=deviation)
            opened += [window_dev] if new else []
            execution.window_deviation = window_dev
            execution.save(update_fields=["window_deviation"])
        uses = MaterialUse.objects.bulk_create([
            MaterialUse(step=execution, lot=use.lot, material_code=use.line["code"], quantity=use.quantity,
                        recorded_at=now, fefo_reason=use.fefo_reason) for use in lots])
        if uses:
            # Stock is decremented here, in the step's transaction: a refusal rolls the step back.
            MATERIALS_USED.ask(step=execution, uses=uses, actor=actor, at=now)
        event_record(
            actor=actor, event_type=ManufacturingEvent.STEP_RECORDED, site=batch.site, obj=execution,
            records=[*value_rows, *uses],
            reason=f"Step {step_id} performed",
            new={"batch": batch.reference, "step": step_id,
                 "values": {pid: c.result.value for pid, c in checked.items()},
                 "out_of_range": sorted(pid for pid, c in checked.items() if c.result.in_range is False),
                 "materials": {use.line["code"]: use.lot.lot_number for use in lots},
                 **({"fefo_reasons": {use.line["code"]: use.fefo_reason for use in lots if use.fefo_reason}}
                    if any(use.fefo_reason for use in lots) else {}),
                 **({"derived": sources} if sources else {}),
                 "window": None if window is None else {"state": window.state,
                                                        "elapsed_h": round(window.elapsed_hours, 2),
                                                        "deviation": execution.window_deviation.reference
                                                        if execution.window_deviation else None},
                 "deviations": [d.reference for d in opened], "status": execution.status},
        )
        signature_apply(proof=proof, record=execution, meaning=Meaning.PERFORMED, site=batch.site,
                        reason=f"Step {step_id} performed")
        _finish_if_done(actor=actor, batch=batch)
    return StepOutcome(execution, opened)


def step_verify(*, actor: User, batch: Batch, step_id: str, credentials: SigningCredentials,
                comment: str = "") -> StepExecution:
    """Second-person verification of a recorded step, by someone other than the performer who
    passes the gate as verifier now (signed: verified)."""
    require_perm(actor, Perm.BATCH_EXECUTE, site=batch.site)
    position, step = _find(batch, step_id)
    execution = batch.steps.filter(position=position).first()
    if execution is None or execution.status != StepStatus.AWAITING_VERIFICATION:
        raise ValidationError({"step": f"Step {step_id!r} is not waiting for verification."})
    if execution.performed_by_id == actor.pk:
        raise ValidationError({"step": "The second person must be someone other than the one who performed the step."})
    proof = signing_authenticate(actor=actor, credentials=credentials)
    with transaction.atomic():
        _lock_batch(batch)
        execution = StepExecution.objects.select_for_update().get(pk=execution.pk)
        if execution.status != StepStatus.AWAITING_VERIFICATION:
            raise ValidationError({"step": f"Step {step_id!r} was verified meanwhile."})
        now = _now()
        problems = step_problems(person=actor, batch=batch, step=step, at=now, verifying=True)
        if problems:
            raise ValidationError({"step": problems})
        execution.status, execution.verified_by, execution.verified_at = StepStatus.COMPLETE, actor, now
        execution.save(update_fields=["status", "verified_by", "verified_at"])
        event_record(actor=actor, event_type=ManufacturingEvent.STEP_VERIFIED, site=batch.site, obj=execution,
                     reason=(comment or "").strip() or f"Step {step_id} verified",
                     old={"status": StepStatus.AWAITING_VERIFICATION}, new={"status": StepStatus.COMPLETE})
        signature_apply(proof=proof, record=execution, meaning=Meaning.VERIFIED, site=batch.site,
                        reason=(comment or "").strip() or f"Step {step_id} verified")
        _finish_if_done(actor=actor, batch=batch)
    return execution


def step_skip(*, actor: User, batch: Batch, step_id: str, reason: str,
              credentials: SigningCredentials) -> StepExecution:
    """Skip the next step as not applicable — only a step the master file marks optional (for
    example freezing a product that goes fresh), with a reason, signed (performed)."""
    require_perm(actor, Perm.BATCH_EXECUTE, site=batch.site)
    reason = reason_required(reason)
    position, step = _find(batch, step_id)
    if not step.get("optional"):
        raise ValidationError({"step": f"Step {step_id!r} is not optional in the master file: it cannot be skipped."})
    proof = signing_authenticate(actor=actor, credentials=credentials)
    with transaction.atomic():
        _lock_batch(batch)
        position, step, execution = _sequence_check(batch, step_id)
        now = _now()

        decision = step_gate(person=actor, version=batch.masterfile_version, step_id=step_id, site=batch.site, at=now)
        if not decision.allowed:
            raise ValidationError({"step": decision.reasons})
        if execution is None:
            execution = StepExecution(batch=batch, position=position, step_id=step_id,
                                      unit_operation=step["unit_operation"], started_by=actor, started_at=now)
        execution.status, execution.skip_reason = StepStatus.SKIPPED, reason
        execution.performed_by, execution.performed_at = actor, now
        execution.save()
        event_record(actor=actor, event_type=ManufacturingEvent.STEP_SKIPPED, site=batch.site, obj=execution,
                     reason=reason, new={"batch": batch.reference, "step": step_id})
        signature_apply(proof=proof, record=execution, meaning=Meaning.PERFORMED, site=batch.site, reason=reason)
        _finish_if_done(actor=actor, batch=batch)
    return execution


def value_correct(*, actor: User, value: StepValue, new_value: Any, reason: str,
                  credentials: SigningCredentials) -> StepValue:
    """Correct a recorded value: a new entry beside the original, pointing at it, with the reason
    and its own signature (meaning: authored). The original stays as it was (CH4-9, A11-8)."""
    execution = value.step
    batch = execution.batch
    require_perm(actor, Perm.BATCH_EXECUTE, site=batch.site)
    reason = reason_required(reason)
    if StepValue.objects.filter(corrects=value).exists():
        raise ValidationError({"value": "This entry has already been corrected; correct the latest entry instead."})
    spec = next((p for p in (_find(batch, execution.step_id)[1].get("parameters") or [])
                 if p["id"] == value.parameter_id), None)
    if spec is None:
        raise ValidationError({"value": f"Parameter {value.parameter_id!r} is not in the step any more."})
    if spec.get("type") == "lot":
        raise ValidationError({"new_value": f"{spec['name']} is the lot consumed under Materials "
                                            f"({spec.get('material')}), not a value of its own: it cannot be "
                                            "corrected apart from the material record."})
    if spec.get("type") == "derived":
        raise ValidationError({"new_value": f"{spec['name']} is read from "
                                            f"{schema.DERIVATIONS[spec['source']].reads}, not typed: correct "
                                            "that record, not this value."})
    try:
        result = evaluation.evaluate_parameter(spec, new_value)
    except evaluation.ValueRefused as exc:
        raise ValidationError({"new_value": str(exc)}) from None
    if result.value == value.value:
        raise ValidationError({"new_value": "The corrected value is the same as the entry it corrects."})
    proof = signing_authenticate(actor=actor, credentials=credentials)
    with transaction.atomic():
        _lock_batch(batch)
        if StepValue.objects.filter(corrects=value).exists():
            raise ValidationError({"value": "This entry was corrected meanwhile."})
        now = _now()
        dev = None
        if result.in_range is False:
            dev = deviation_open(
                actor=actor, site=batch.site, kind=DeviationKind.PROCESS, batch=batch, step_id=execution.step_id,
                source=execution, title=f"Corrected value out of range at {execution.step_id}: {spec['name']}"[:200],
                description=f"{result.message}\n\nCorrection of {value.value!r}: {reason}",
            )
        correction = StepValue.objects.create(
            step=execution, parameter_id=value.parameter_id, value=result.value, unit=value.unit,
            in_range=result.in_range, critical=value.critical, deviation=dev, entered_by=actor, entered_at=now,
            corrects=value, correction_reason=reason,
        )
        event_record(actor=actor, event_type=ManufacturingEvent.VALUE_CORRECTED, site=batch.site, obj=correction,
                     reason=reason, old={"value": value.value, "entry": value.pk},
                     new={"value": result.value, "in_range": result.in_range, "batch": batch.reference,
                          "step": execution.step_id, "parameter": value.parameter_id})
        signature_apply(proof=proof, record=correction, meaning=Meaning.AUTHORED, site=batch.site, reason=reason)
    return correction


# --- QC results ----------------------------------------------------------------------------------


def specification(batch: Batch) -> list[dict[str, Any]]:
    """The quality attributes of the batch's master-file version."""
    return list((batch.masterfile_version.content or {}).get("specification", {}).get("attributes", []))


def _attribute(batch: Batch, attribute_id: str) -> dict[str, Any]:
    attrs = {a["id"]: a for a in specification(batch)}
    if attribute_id not in attrs:
        raise ValidationError({"attribute": f"{attribute_id!r} is not in the specification of "
                                            f"{batch.masterfile_version}; its attributes: {', '.join(attrs)}."})
    return attrs[attribute_id]


def _sample_taken_at(batch: Batch, attribute: dict[str, Any]) -> tuple[dt.datetime, str]:
    """When the attribute's sample came to exist, and what that moment is: the performance of the
    master file's ``sample_step`` when it names one (refused while that step is not done), else the
    batch's start."""
    step_id = attribute.get("sample_step")
    if not step_id:
        return batch.started_at, "its start"
    done = batch.steps.filter(step_id=step_id, status__in=[StepStatus.COMPLETE, StepStatus.AWAITING_VERIFICATION],
                              performed_at__isnull=False).first()
    if done is None or done.performed_at is None:
        raise ValidationError({"attribute": f"The sample for {attribute['name']} is taken at step {step_id!r}, which "
                                            f"is not recorded for {batch.reference} yet: there is no sample to test."})
    return done.performed_at, f"step {step_id}"


def _tested_at(tested_at: dt.datetime | None, now: dt.datetime, batch: Batch,
               sample: tuple[dt.datetime, str] | None = None) -> dt.datetime:
    if tested_at is None:
        return now
    if timezone.is_naive(tested_at):
        raise ValidationError({"tested_at": "Give the time with its time zone (for example 2026-12-01T10:00Z)."})
    # The sample cannot be tested before it exists, nor the test read in the future.
    earliest, since = sample or (batch.started_at, "its start")
    why = plausibility.window_problem(tested_at, earliest=earliest, latest=now + plausibility.CLOCK_SKEW,
                                      what=f"QC results of {batch.reference} (the sample, {since}, to now)")
    if why:
        raise ValidationError({"tested_at": f"When the test was read: {why}."})
    return tested_at


def qc_result_record(*, actor: User, batch: Batch, attribute_id: str, value: Any, credentials: SigningCredentials,
                     unit: str | None = None, tested_at: dt.datetime | None = None) -> QcResult:
    """Enter a QC result for an attribute of the specification, evaluated at once against its
    acceptance criterion and signed (performed). Out of specification opens a laboratory
    investigation (ATMP-OOS). A second result for the same attribute is a correction."""
    require_perm(actor, Perm.QC_RECORD, site=batch.site)
    attribute = _attribute(batch, attribute_id)
    if batch.qc_results.filter(attribute_id=attribute_id).exists():
        raise ValidationError({"attribute": f"{attribute['name']} already has a result; enter a correction with "
                                            "a reason instead."})
    try:
        result = evaluation.evaluate_qc(attribute, value, unit)
    except evaluation.ValueRefused as exc:
        raise ValidationError({"value": str(exc)}) from None
    now = _now()
    when = _tested_at(tested_at, now, batch, _sample_taken_at(batch, attribute))
    proof = signing_authenticate(actor=actor, credentials=credentials)
    with transaction.atomic():
        _lock_batch(batch)
        if batch.qc_results.filter(attribute_id=attribute_id).exists():
            raise ValidationError({"attribute": f"{attribute['name']} got a result meanwhile."})
        return _qc_write(actor=actor, batch=batch, attribute=attribute, result=result, tested_at=when, proof=proof)


def _qc_write(*, actor: User, batch: Batch, attribute: dict[str, Any], result: evaluation.QcEvaluation,
              tested_at: dt.datetime, proof: Any, corrects: QcResult | None = None, reason: str = "") -> QcResult:
    now = _now()
    dev = None
    if not result.conforms:
        dev = deviation_open(
            actor=actor, site=batch.site, kind=DeviationKind.LABORATORY, batch=batch,
            title=f"Out of specification: {attribute['name']}"[:200],
            description=f"{result.message}\nMethod: {attribute.get('method', '')}. Laboratory investigation opened "
                        "automatically." + (f"\n\nCorrection: {reason}" if reason else ""),
        )
    qc = QcResult.objects.create(
        batch=batch, attribute_id=attribute["id"], value_number=result.number, value_text=result.text,
        unit=attribute.get("unit") or "", conforms=result.conforms, method=attribute.get("method", "")[:200],
        tested_at=tested_at, entered_by=actor, entered_at=now, deviation=dev, corrects=corrects,
        correction_reason=reason,
    )
    event_record(
        actor=actor, site=batch.site, obj=qc, reason=reason or f"QC result {attribute['id']}",
        event_type=ManufacturingEvent.QC_RESULT_CORRECTED if corrects else ManufacturingEvent.QC_RESULT_RECORDED,
        old={"value": corrects.display_value, "conforms": corrects.conforms} if corrects else None,
        new={"batch": batch.reference, "attribute": attribute["id"], "value": qc.display_value,
             "conforms": qc.conforms, "deviation": dev.reference if dev else None},
    )
    signature_apply(proof=proof, record=qc, site=batch.site, reason=reason or f"QC result {attribute['id']}",
                    meaning=Meaning.AUTHORED if corrects else Meaning.PERFORMED)
    return qc


def qc_result_correct(*, actor: User, result: QcResult, value: Any, reason: str,
                      credentials: SigningCredentials, unit: str | None = None) -> QcResult:
    """Correct a QC result: a new result beside the original, with the reason and a signature."""
    batch = result.batch
    require_perm(actor, Perm.QC_RECORD, site=batch.site)
    reason = reason_required(reason)
    if QcResult.objects.filter(corrects=result).exists():
        raise ValidationError({"result": "This result has already been corrected; correct the latest one."})
    attribute = _attribute(batch, result.attribute_id)
    try:
        evaluated = evaluation.evaluate_qc(attribute, value, unit)
    except evaluation.ValueRefused as exc:
        raise ValidationError({"value": str(exc)}) from None
    proof = signing_authenticate(actor=actor, credentials=credentials)
    with transaction.atomic():
        _lock_batch(batch)
        if QcResult.objects.filter(corrects=result).exists():
            raise ValidationError({"result": "This result was corrected meanwhile."})
        return _qc_write(actor=actor, batch=batch, attribute=attribute, result=evaluated, tested_at=result.tested_at,
                         proof=proof, corrects=result, reason=reason)


# --- ending a batch --------------------------------------------------------------------------------


def batch_abort(*, actor: User, batch: Batch, reason: str, credentials: SigningCredentials) -> Batch:
    """Stop a batch that cannot be finished (a manufacturing failure), with a reason and a
    signature (rejected). Its record stays complete up to the point it stopped."""
    require_perm(actor, Perm.BATCH_EXECUTE, site=batch.site)
    reason = reason_required(reason)
    if batch.status != BatchStatus.IN_PROGRESS:
        raise ValidationError({"batch": f"{batch} is already {batch.get_status_display().lower()}."})
    proof = signing_authenticate(actor=actor, credentials=credentials)
    with transaction.atomic():
        _lock_batch(batch)
        if batch.status != BatchStatus.IN_PROGRESS:
            raise ValidationError({"batch": f"{batch} ended meanwhile."})
        now = _now()
        batch.status, batch.ended_at, batch.end_reason = BatchStatus.ABORTED, now, reason
        batch.save(update_fields=["status", "ended_at", "end_reason"])
        abort = BatchAbort.objects.create(batch=batch, reason=reason, aborted_by=actor, aborted_at=now)
        event_record(actor=actor, event_type=ManufacturingEvent.BATCH_ENDED, site=batch.site, obj=batch,
                     reason=reason, old={"status": BatchStatus.IN_PROGRESS}, new={"status": BatchStatus.ABORTED})
        signature_apply(proof=proof, record=abort, meaning=Meaning.REJECTED, site=batch.site, reason=reason)
    return batch
