"""Changes to supply (SUP-STOCK, ATMP-TRACE): suppliers and their qualification, materials' storage
conditions, stock locations, and every movement of stock — received, released or rejected, issued,
consumed at a step, returned, expired, destroyed, adjusted after a cycle count, transferred between
locations.

Each function is keyword-only, checks the actor's permission, runs in one transaction and writes
its ledger event there. A movement that touches a lot locks the lot's row first, so that two people
(or two steps) moving the same lot at once are served one after the other, and the second sees the
stock the first left: stock never goes below zero. Consumption at a step is not called from here
but from the step's own transaction (``answers.materials_used``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from pocare.accounts.roles import Perm
from pocare.accounts.services import require_perm
from pocare.core import bounds
from pocare.core.checks import text_checked
from pocare.custody.services import PHYSICAL_CELSIUS
from pocare.ledger.models import Meaning
from pocare.ledger.services import event_record, reason_required
from pocare.ledger.signing import SigningCredentials, signature_apply, signing_authenticate
from pocare.manufacturing import services as manufacturing
from pocare.manufacturing.models import Batch, BatchStatus, LotStatus, MaterialLot, MaterialUse
from pocare.masterfile import plausibility, schema
from pocare.masterfile.models import MasterFileVersion, VersionStatus
from pocare.network.models import Site, SiteKind
from pocare.network.selectors import site_today
from pocare.supply import recall, selectors
from pocare.supply.events import SupplyEvent
from pocare.supply.models import (
    QUALIFIED,
    SIGN,
    ApprovedSupplier,
    LocationKind,
    MaterialStorage,
    MovementKind,
    StockLocation,
    StockMovement,
    Supplier,
    SupplierStatus,
)

if TYPE_CHECKING:
    from pocare.accounts.models import User

#: The most of one lot that one movement moves: more is a typing slip (a million syringes, a
#: million mL of medium), and the column keeps 11 digits before the decimals.
MAX_QUANTITY = Decimal(1_000_000)
#: How far ahead an expiry date may lie: materials of the bill keep for a few years at most.
MAX_SHELF_YEARS = 20
_PLACES = Decimal("0.001")


def _now() -> dt.datetime:
    return timezone.now()


# --- checking what people give -------------------------------------------------------------------


def _reason(reason: Any) -> str:
    text = text_checked(reason, "reason", "reason", 2000)
    return reason_required(text)


def quantity_checked(value: Any, field: str = "quantity", *, allow_zero: bool = False) -> Decimal:
    """``value`` as a quantity: a finite number, greater than 0 (or 0 with ``allow_zero``), at most
    :data:`MAX_QUANTITY`, with at most 3 decimals; refused naming ``field`` otherwise."""
    allowed = (f"a number {'from 0' if allow_zero else 'greater than 0'} up to {MAX_QUANTITY:,} "
               "with at most 3 decimals")
    return decimal_checked(value, field, "The quantity", allowed, maximum=MAX_QUANTITY, places=_PLACES,
                           allow_zero=allow_zero)


def decimal_checked(value: Any, field: str, noun: str, allowed: str, *, maximum: Decimal, places: Decimal,
                    allow_zero: bool) -> Decimal:
    """``value`` as a finite decimal from 0 (or above 0) to ``maximum`` with at most the decimals of
    ``places``; refused naming ``field`` (the message: ``noun`` must be ``allowed``) otherwise."""
    if isinstance(value, bool) or value is None or isinstance(value, Mapping | list | tuple | set):
        raise ValidationError({field: f"{noun} must be {allowed}."})
    text = str(value).strip()
    if problem := bounds.text_problem(text) or bounds.number_text_problem(text):
        raise ValidationError({field: f"{noun}: {problem}."})
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValidationError({field: f"{noun} must be {allowed}; {bounds.preview(text)!r} is not a number."}) \
            from None
    if not number.is_finite() or number > maximum or number < 0 or (number == 0 and not allow_zero):
        raise ValidationError({field: f"{noun} must be {allowed}."})
    if number != number.quantize(places):
        raise ValidationError({field: f"{noun} must be {allowed}."})
    return number.quantize(places)


def _expiry(value: Any, site: Site) -> dt.date:
    """The expiry date of a lot being received: a date (or YYYY-MM-DD), not already past at the
    site, at most :data:`MAX_SHELF_YEARS` ahead."""
    if isinstance(value, str):
        if problem := bounds.text_problem(value) or bounds.iso_text_problem(value):
            raise ValidationError({"expiry_date": f"The expiry date: {problem}."})
        try:
            value = dt.date.fromisoformat(value.strip())
        except ValueError:
            raise ValidationError({"expiry_date": "Give the expiry date as YYYY-MM-DD."}) from None
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        raise ValidationError({"expiry_date": "Give the expiry date as YYYY-MM-DD."})
    if problem := bounds.datetime_problem(value):
        raise ValidationError({"expiry_date": f"The expiry date: {problem}."})
    today = site_today(site)
    if value < today:
        raise ValidationError({"expiry_date": f"The lot expired on {value.isoformat()}; expired material is "
                                              "not received into stock."})
    if value > dt.date(today.year + MAX_SHELF_YEARS, today.month, min(today.day, 28)):
        raise ValidationError({"expiry_date": f"The expiry date is at most {MAX_SHELF_YEARS} years ahead."})
    return value


def bill_of_materials() -> dict[str, dict[str, Any]]:
    """Every material of the master files approved or in force, by code: its name and unit, as the
    newest such version lists it (the materials supply keeps are the master file's)."""
    out: dict[str, dict[str, Any]] = {}
    versions = (MasterFileVersion.objects
                .filter(status__in=[VersionStatus.APPROVED, VersionStatus.EFFECTIVE, VersionStatus.SUPERSEDED])
                .order_by("pk").only("content"))
    for version in versions:
        for step in schema.iter_steps(version.content or {}):
            for line in step.get("materials", []):
                out[str(line["code"])] = {"name": str(line["name"]), "unit": str(line["unit"])}
    return out


# --- suppliers -------------------------------------------------------------------------------------


def _status(status: Any) -> str:
    if status not in SupplierStatus.values:
        raise ValidationError({"status": f"Choose one of {', '.join(SupplierStatus.values)}."})
    return str(status)


def supplier_register(*, actor: User, name: str, status: str, reason: str,
                      credentials: SigningCredentials) -> Supplier:
    """Register a supplier with its first qualification status, signed by Control Site QA."""
    require_perm(actor, Perm.SUPPLIERS_QUALIFY)
    name = text_checked(name, "name", "supplier's name", 120)
    status, reason = _status(status), _reason(reason)
    if Supplier.objects.filter(name__iexact=name).exists():
        raise ValidationError({"name": f"{name} is already registered as a supplier."})
    proof = signing_authenticate(actor=actor, credentials=credentials)
    with transaction.atomic():
        supplier = Supplier.objects.create(name=name, status=status, status_changed_at=_now(),
                                           status_reason=reason, status_changed_by=actor)
        event_record(actor=actor, event_type=SupplyEvent.SUPPLIER_REGISTERED, obj=supplier, reason=reason,
                     new={"name": name, "status": status})
        signature_apply(proof=proof, record=supplier, site=None, reason=reason,
                        meaning=Meaning.REJECTED if status == SupplierStatus.DISQUALIFIED else Meaning.APPROVED)
    return supplier


def supplier_qualify(*, actor: User, supplier: Supplier, status: str, reason: str,
                     credentials: SigningCredentials) -> Supplier:
    """Change a supplier's qualification (approved, conditional, disqualified), signed, with its
    reason; the earlier status stays in the ledger. A disqualified supplier's lots are not released."""
    require_perm(actor, Perm.SUPPLIERS_QUALIFY)
    status, reason = _status(status), _reason(reason)
    proof = signing_authenticate(actor=actor, credentials=credentials)
    with transaction.atomic():
        locked = Supplier.objects.select_for_update().get(pk=supplier.pk)
        if locked.status == status:
            raise ValidationError({"status": f"{supplier} is already {locked.get_status_display().lower()}."})
        old = locked.status
        locked.status, locked.status_changed_at, locked.status_reason = status, _now(), reason
        locked.status_changed_by = actor
        locked.save(update_fields=["status", "status_changed_at", "status_reason", "status_changed_by"])
        event_record(actor=actor, event_type=SupplyEvent.SUPPLIER_QUALIFIED, obj=locked, reason=reason,
                     old={"status": old}, new={"status": status})
        signature_apply(proof=proof, record=locked, site=None, reason=reason,
                        meaning=Meaning.REJECTED if status == SupplierStatus.DISQUALIFIED else Meaning.APPROVED)
    return locked


def _lead_time(value: Any) -> int:
    """A lead time in whole days, 1–365 (a delivery takes at least a day; a year ahead is no longer
    planning but a typing slip); refused naming ``lead_time_days``."""
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit() and len(value.strip()) <= 3:
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 365:
        raise ValidationError({"lead_time_days": "The lead time is a whole number of days from 1 to 365."})
    return value


def supplier_approve_for(*, actor: User, supplier: Supplier, material_code: str, reason: str,
                         credentials: SigningCredentials, lead_time_days: int = 14) -> ApprovedSupplier:
    """Approve ``supplier`` for a material of the master file's bill of materials, with its lead time,
    signed by Control Site QA (meaning: approved) as its qualification is."""
    require_perm(actor, Perm.SUPPLIERS_QUALIFY)
    material_code = text_checked(material_code, "material_code", "material code", 64)
    lead_time_days = _lead_time(lead_time_days)
    reason = _reason(reason)
    if material_code not in bill_of_materials():
        raise ValidationError({"material_code": f"{material_code} is in no master file's bill of materials."})
    if supplier.status not in QUALIFIED:
        raise ValidationError({"supplier": f"{supplier} is {supplier.get_status_display().lower()}."})
    if ApprovedSupplier.objects.filter(material_code=material_code, supplier=supplier).exists():
        raise ValidationError({"material_code": f"{supplier} is already approved for {material_code}."})
    proof = signing_authenticate(actor=actor, credentials=credentials)
    with transaction.atomic():
        approval, created = ApprovedSupplier.objects.get_or_create(
            material_code=material_code, supplier=supplier,
            defaults={"approved_by": actor, "approved_at": _now(), "lead_time_days": lead_time_days})
        if not created:
            raise ValidationError({"material_code": f"{supplier} is already approved for {material_code}."})
        event_record(actor=actor, event_type=SupplyEvent.SUPPLIER_APPROVED, obj=approval, reason=reason,
                     new={"supplier": supplier.name, "material_code": material_code, "lead_time_days": lead_time_days})
        signature_apply(proof=proof, record=approval, site=None, reason=reason, meaning=Meaning.APPROVED)
    return approval


def supplier_lead_time_set(*, actor: User, approval: ApprovedSupplier, lead_time_days: int,
                           reason: str) -> ApprovedSupplier:
    """Change an approved supplier's lead time for its material (Control Site QA), with the reason."""
    require_perm(actor, Perm.SUPPLIERS_QUALIFY)
    lead_time_days = _lead_time(lead_time_days)
    reason = _reason(reason)
    with transaction.atomic():
        approval = ApprovedSupplier.objects.select_for_update().get(pk=approval.pk)
        old = approval.lead_time_days
        if old == lead_time_days:
            raise ValidationError({"lead_time_days": f"The lead time is already {old} days."})
        approval.lead_time_days = lead_time_days
        approval.save(update_fields=["lead_time_days"])
        event_record(actor=actor, event_type=SupplyEvent.SUPPLIER_LEAD_TIME, obj=approval, reason=reason,
                     old={"lead_time_days": old}, new={"lead_time_days": lead_time_days})
    return approval


# --- storage conditions ----------------------------------------------------------------------------


def celsius_limit(value: Any, field: str) -> Decimal | None:
    """A temperature limit in °C (``,`` or ``.`` as the decimal mark), or None (open on that side);
    refused naming ``field`` when it is no temperature matter can have (the physical range of the
    loggers, :data:`pocare.custody.services.PHYSICAL_CELSIUS`)."""
    if value is None:
        return None
    if isinstance(value, bool | Mapping | list | tuple | set):
        raise ValidationError({field: "Give a temperature in °C."})
    text = str(value).strip().replace(",", ".")
    if not text:
        return None
    if problem := bounds.text_problem(text):
        raise ValidationError({field: f"The temperature: {problem}."})
    low, high = (Decimal(str(b)) for b in PHYSICAL_CELSIUS)
    try:
        number = Decimal(text) if len(text) <= 12 else None
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite() or not low <= number <= high:
        raise ValidationError({field: f"{bounds.preview(text)!r} is not a possible temperature: the physical range is "
                                      f"{plausibility.bounds_text(PHYSICAL_CELSIUS, '°C')}."})
    if number != number.quantize(Decimal("0.01")):
        raise ValidationError({field: "Give the temperature to at most 2 decimals."})
    return number.quantize(Decimal("0.01"))


def material_storage_set(*, actor: User, material_code: Any, min_celsius: Any, max_celsius: Any, condition: Any,
                         reason: Any) -> MaterialStorage:
    """Set how a material of the bill is kept (Control Site QA): its range in °C, either side open but not
    both, and the condition in words; the old range stays in the ledger. Transfers take their limits here."""
    require_perm(actor, Perm.SUPPLIERS_QUALIFY)
    material_code = text_checked(material_code, "material_code", "material code", 64)
    low, high = celsius_limit(min_celsius, "min_celsius"), celsius_limit(max_celsius, "max_celsius")
    condition = text_checked(condition, "condition", "storage condition", 120)
    reason = _reason(reason)
    if material_code not in bill_of_materials():
        raise ValidationError({"material_code": f"{material_code} is in no master file's bill of materials."})
    if low is None and high is None:
        raise ValidationError({"max_celsius": "Give the lowest or the highest temperature (°C), or both."})
    if low is not None and high is not None and low > high:
        raise ValidationError({"max_celsius": f"The highest temperature ({high} °C) is below the lowest ({low} °C)."})
    with transaction.atomic():
        found = MaterialStorage.objects.select_for_update().filter(material_code=material_code).first()
        old = ({"min_celsius": found.min_celsius, "max_celsius": found.max_celsius, "condition": found.condition}
               if found is not None else None)
        new = {"min_celsius": low, "max_celsius": high, "condition": condition}
        if old == new:
            raise ValidationError({"condition": f"{material_code} is already kept so."})
        storage = found or MaterialStorage(material_code=material_code)
        storage.min_celsius, storage.max_celsius, storage.condition = low, high, condition
        storage.set_by, storage.set_at = actor, _now()
        storage.save()
        event_record(actor=actor, event_type=SupplyEvent.MATERIAL_STORAGE, obj=storage, reason=reason, old=old,
                     new={"material_code": material_code, **new})
    return storage


# --- locations -------------------------------------------------------------------------------------


def location_create(*, actor: User, site: Site, code: str, name: str, kind: str = LocationKind.STORE,
                    serves: Iterable[Site] = (), reason: str) -> StockLocation:
    """A stock location held by ``site``: its store, or a regional depot serving ``serves``."""
    require_perm(actor, Perm.MATERIALS_MANAGE, site=site)
    code = text_checked(code, "code", "location's code", 20)
    name = text_checked(name, "name", "location's name", 120)
    reason = _reason(reason)
    if kind not in LocationKind.values:
        raise ValidationError({"kind": f"Choose one of {', '.join(LocationKind.values)}."})
    if site.kind == SiteKind.CONTROL:
        raise ValidationError({"site": "The Control Site holds no stock; choose a manufacturing site."})
    served = list(serves)
    if served and kind != LocationKind.DEPOT:
        raise ValidationError({"serves": "Only a regional depot serves other sites."})
    if StockLocation.objects.filter(site=site, code=code).exists():
        raise ValidationError({"code": f"{site.code} already has a location {code}."})
    with transaction.atomic():
        location = StockLocation.objects.create(site=site, code=code, name=name, kind=kind, created_by=actor,
                                                created_at=_now())
        location.serves.set(served)
        event_record(actor=actor, event_type=SupplyEvent.LOCATION_CREATED, site=site, obj=location, reason=reason,
                     new={"code": code, "kind": kind, "serves": sorted(s.code for s in served)})
    return location


# --- movements -------------------------------------------------------------------------------------


def lot_lock(lot: MaterialLot) -> MaterialLot:
    """The lot's row, locked until the transaction ends: movements of one lot are served in turn."""
    return MaterialLot.objects.select_for_update().get(pk=lot.pk)


def lot_unit_of(lot: MaterialLot) -> str:
    unit = selectors.lot_unit(lot)
    if unit is None:
        raise ValidationError({"lot": f"{lot} was never received into stock here."})
    return unit


def _at_lot_site(location: StockLocation, lot: MaterialLot, field: str = "location") -> None:
    if location.site_id != lot.site_id:
        raise ValidationError({field: f"{lot} is received at another site; {location} belongs to "
                                      f"{location.site.code}."})


def movements_write(*, actor: User, event_type: str, lot: MaterialLot, rows: list[StockMovement], reason: str,
           new: Mapping[str, Any] | None = None) -> list[StockMovement]:
    """Write the movements and their one ledger event (which stamps their content), then link each
    row to the event. Refuses a movement that would leave its location's stock of the lot below zero."""
    by_location = selectors.lot_stock_by_location(lot)
    for row in rows:
        after = by_location.get(row.location_id, Decimal(0)) + row.quantity
        if after < 0:
            raise ValidationError({"quantity": (
                f"Only {selectors.amount(by_location.get(row.location_id, Decimal(0)))} {row.unit} of {lot} are at "
                f"{row.location}; stock never goes below zero.")})
        by_location[row.location_id] = after
    for row in rows:
        row.save()
    event = event_record(
        actor=actor, event_type=event_type, site=lot.site, obj=lot, records=rows, reason=reason,
        new={"material_code": lot.material_code, "lot_number": lot.lot_number,
             "movements": [{"location": r.location.code, "kind": r.kind, "quantity": r.quantity, "unit": r.unit}
                           for r in rows], **(new or {})})
    # The one change a movement row ever sees: the link to the event that stamped it (not stamped).
    StockMovement.objects.filter(pk__in=[r.pk for r in rows]).update(event=event)
    for row in rows:
        row.event = event
    return rows


def movement_new(*, actor: User, location: StockLocation, lot: MaterialLot, kind: str, quantity: Decimal, unit: str,
              reason: str, at: dt.datetime, batch: Batch | None = None, use: MaterialUse | None = None,
              ) -> StockMovement:
    sign = SIGN[kind]
    signed = quantity if sign is None else quantity * sign
    return StockMovement(location=location, lot=lot, kind=kind, quantity=signed, unit=unit, batch=batch, use=use,
                         actor=actor, occurred_at=at, reason=reason)


def stock_receive(*, actor: User, location: StockLocation, supplier: Supplier, material_code: str,
                  lot_number: str, expiry_date: Any, quantity: Any, unit: str, reason: str,
                  name: str = "") -> StockMovement:
    """Receive ``quantity`` of a supplier's lot at a location: the lot (manufacturing's, in
    quarantine until released) is received at the location's site on its first delivery, and each
    delivery is a ``received`` movement. Only a qualified supplier approved for the material delivers."""
    site = location.site
    require_perm(actor, Perm.MATERIALS_MANAGE, site=site)
    material_code = text_checked(material_code, "material_code", "material code", 64)
    lot_number = text_checked(lot_number, "lot_number", "supplier's lot number", 60)
    quantity = quantity_checked(quantity)
    unit = text_checked(unit, "unit", "unit", 20)
    reason = _reason(reason)
    expiry = _expiry(expiry_date, site)
    material = bill_of_materials().get(material_code)
    if material is None:
        raise ValidationError({"material_code": f"{material_code} is in no master file's bill of materials."})
    if unit != material["unit"]:
        raise ValidationError({"unit": f"{material_code} is counted in {material['unit']} (the master file's unit)."})
    if not ApprovedSupplier.objects.filter(material_code=material_code, supplier=supplier).exists():
        raise ValidationError({"supplier": f"{supplier} is not an approved supplier of {material_code}."})
    if supplier.status not in QUALIFIED:
        raise ValidationError({"supplier": f"{supplier} is {supplier.get_status_display().lower()}."})
    with transaction.atomic():
        lot = MaterialLot.objects.filter(site=site, material_code=material_code, lot_number=lot_number).first()
        if lot is None:
            lot = manufacturing.lot_receive(actor=actor, site=site, material_code=material_code,
                                            name=text_checked(name, "name", "material's name", 200, required=False)
                                            or material["name"], lot_number=lot_number, expiry_date=expiry,
                                            reason=reason, supplier=supplier.name)
        lot = lot_lock(lot)
        if lot.supplier.strip().casefold() != supplier.name.casefold():
            raise ValidationError({"supplier": f"{lot} came from {lot.supplier or 'no named supplier'}, "
                                               f"not {supplier}."})
        if lot.expiry_date != expiry:
            raise ValidationError({"expiry_date": f"{lot} expires on {lot.expiry_date.isoformat()}."})
        if lot.status == LotStatus.REJECTED:
            raise ValidationError({"lot_number": f"{lot} is rejected; no more of it is received."})
        row = movement_new(actor=actor, location=location, lot=lot, kind=MovementKind.RECEIVED, quantity=quantity,
                        unit=unit, reason=reason, at=_now())
        movements_write(actor=actor, event_type=SupplyEvent.STOCK_RECEIVED, lot=lot, rows=[row], reason=reason,
               new={"supplier": supplier.name})
    return row


def stock_lot_decide(*, actor: User, lot: MaterialLot, decision: str, reason: str,
                     credentials: SigningCredentials) -> MaterialLot:
    """Release or reject a lot (manufacturing's signed decision, refused for a supplier not approved)
    and note the decision on the stock card of each location holding it (a movement of 0).

    The note is written in a transaction of its own, just after the decision's: a refused signature
    is recorded (it counts toward the account's lock), which an enclosing transaction would undo."""
    reason = _reason(reason)
    decided = manufacturing.lot_decide(actor=actor, lot=lot, decision=decision, reason=reason,
                                       credentials=credentials)
    if not selectors.lot_managed(decided):
        return decided
    with transaction.atomic():
        locked = lot_lock(decided)
        unit = lot_unit_of(locked)
        kind = MovementKind.RELEASED if decision == LotStatus.RELEASED else MovementKind.REJECTED
        at = _now()
        locations = StockLocation.objects.filter(pk__in=list(selectors.lot_stock_by_location(locked)))
        rows = [movement_new(actor=actor, location=location, lot=locked, kind=kind, quantity=Decimal(0), unit=unit,
                          reason=reason, at=at) for location in locations.order_by("pk")]
        movements_write(actor=actor, event_type=SupplyEvent.STOCK_DECIDED, lot=locked, rows=rows, reason=reason,
               new={"status": decision})
    return decided


def _usable(lot: MaterialLot, field: str = "lot") -> None:
    """Refuse a lot that may not leave the store for a batch: not released, expired, or from a
    supplier no longer qualified (SUP-STOCK), or recalled (SUP-RECALL)."""
    if (held := recall.lot_recall(lot)) is not None:
        raise ValidationError({field: recall.recall_hold_text(held)})
    if lot.status != LotStatus.RELEASED:
        raise ValidationError({field: f"{lot} is {lot.get_status_display().lower()}, not released."})
    if lot.expiry_date < site_today(lot.site):
        raise ValidationError({field: f"{lot} expired on {lot.expiry_date.isoformat()}."})
    if problem := selectors.supplier_problem(lot):
        raise ValidationError({field: problem})


def stock_issue(*, actor: User, location: StockLocation, lot: MaterialLot, quantity: Any, batch: Batch,
                reason: str) -> StockMovement:
    """Issue material to a batch in progress outside a step's bill (a replacement, a spare kit):
    only released, unexpired material of a qualified supplier leaves the store."""
    require_perm(actor, Perm.MATERIALS_MANAGE, site=location.site)
    quantity, reason = quantity_checked(quantity), _reason(reason)
    _at_lot_site(location, lot)
    if batch.site_id != lot.site_id:
        raise ValidationError({"batch": f"{batch} is made at another site."})
    if batch.status != BatchStatus.IN_PROGRESS:
        raise ValidationError({"batch": f"{batch} is no longer in progress."})
    with transaction.atomic():
        lot = lot_lock(lot)
        _usable(lot)
        row = movement_new(actor=actor, location=location, lot=lot, kind=MovementKind.ISSUED, quantity=quantity,
                        unit=lot_unit_of(lot), reason=reason, at=_now(), batch=batch)
        movements_write(actor=actor, event_type=SupplyEvent.STOCK_ISSUED, lot=lot, rows=[row], reason=reason,
               new={"batch": batch.reference})
    return row


def stock_return(*, actor: User, location: StockLocation, lot: MaterialLot, quantity: Any, batch: Batch,
                 reason: str) -> StockMovement:
    """Return to stock what a batch did not use: never more than left the store for that batch
    (issued and consumed) less what came back already."""
    require_perm(actor, Perm.MATERIALS_MANAGE, site=location.site)
    quantity, reason = quantity_checked(quantity), _reason(reason)
    _at_lot_site(location, lot)
    with transaction.atomic():
        lot = lot_lock(lot)
        out = next((r for r in selectors.batch_reconciliation(batch) if r["lot_id"] == lot.pk), None)
        open_quantity = (out["issued"] + out["consumed"] - out["returned"]) if out else Decimal(0)
        if quantity > open_quantity:
            raise ValidationError({"quantity": f"Only {selectors.amount(open_quantity)} of {lot} left the store "
                                               f"for {batch} and did not come back."})
        row = movement_new(actor=actor, location=location, lot=lot, kind=MovementKind.RETURNED, quantity=quantity,
                        unit=lot_unit_of(lot), reason=reason, at=_now(), batch=batch)
        movements_write(actor=actor, event_type=SupplyEvent.STOCK_RETURNED, lot=lot, rows=[row], reason=reason,
               new={"batch": batch.reference})
    return row


def stock_destroy(*, actor: User, location: StockLocation, lot: MaterialLot, quantity: Any,
                  reason: str) -> StockMovement:
    """Destroy material at a location (damaged, rejected, a recall), with the reason."""
    require_perm(actor, Perm.MATERIALS_MANAGE, site=location.site)
    quantity, reason = quantity_checked(quantity), _reason(reason)
    _at_lot_site(location, lot)
    with transaction.atomic():
        lot = lot_lock(lot)
        row = movement_new(actor=actor, location=location, lot=lot, kind=MovementKind.DESTROYED, quantity=quantity,
                        unit=lot_unit_of(lot), reason=reason, at=_now())
        movements_write(actor=actor, event_type=SupplyEvent.STOCK_DESTROYED, lot=lot, rows=[row], reason=reason)
    return row


def stock_expire(*, actor: User, location: StockLocation, lot: MaterialLot, reason: str) -> StockMovement:
    """Write off what is left of an expired lot at a location."""
    require_perm(actor, Perm.MATERIALS_MANAGE, site=location.site)
    reason = _reason(reason)
    _at_lot_site(location, lot)
    with transaction.atomic():
        lot = lot_lock(lot)
        if lot.expiry_date >= site_today(lot.site):
            raise ValidationError({"lot": f"{lot} expires only on {lot.expiry_date.isoformat()}."})
        left = selectors.lot_stock(lot, location=location)
        if left <= 0:
            raise ValidationError({"lot": f"No stock of {lot} is left at {location}."})
        row = movement_new(actor=actor, location=location, lot=lot, kind=MovementKind.EXPIRED, quantity=left,
                        unit=lot_unit_of(lot), reason=reason, at=_now())
        movements_write(actor=actor, event_type=SupplyEvent.STOCK_EXPIRED, lot=lot, rows=[row], reason=reason)
    return row


def stock_adjust(*, actor: User, location: StockLocation, lot: MaterialLot, counted: Any, reason: str,
                 credentials: SigningCredentials) -> StockMovement:
    """Record a cycle count: the difference between what was counted and the stock the movements
    add up to becomes an ``adjusted`` movement, signed (meaning: verified), with its reason."""
    require_perm(actor, Perm.MATERIALS_MANAGE, site=location.site)
    counted_quantity = quantity_checked(counted, "counted", allow_zero=True)
    reason = _reason(reason)
    _at_lot_site(location, lot)
    proof = signing_authenticate(actor=actor, credentials=credentials)
    with transaction.atomic():
        lot = lot_lock(lot)
        book = selectors.lot_stock(lot, location=location)
        difference = counted_quantity - book
        if difference == 0:
            raise ValidationError({"counted": f"The count agrees with the stock ({selectors.amount(book)}); "
                                              "nothing to adjust."})
        row = movement_new(actor=actor, location=location, lot=lot, kind=MovementKind.ADJUSTED, quantity=difference,
                        unit=lot_unit_of(lot), reason=reason, at=_now())
        movements_write(actor=actor, event_type=SupplyEvent.STOCK_ADJUSTED, lot=lot, rows=[row], reason=reason,
               new={"book": book, "counted": counted_quantity})
        signature_apply(proof=proof, record=row, meaning=Meaning.VERIFIED, site=lot.site, reason=reason)
    return row


def stock_transfer(*, actor: User, source: StockLocation, destination: StockLocation, lot: MaterialLot,
                   quantity: Any, reason: str) -> tuple[StockMovement, StockMovement]:
    """Move stock of a lot between two locations of its site (the store and the depot it holds),
    as a ``transferred_out`` and a ``transferred_in`` movement in one event."""
    require_perm(actor, Perm.MATERIALS_MANAGE, site=source.site)
    quantity, reason = quantity_checked(quantity), _reason(reason)
    _at_lot_site(source, lot, "source")
    _at_lot_site(destination, lot, "destination")
    if source.pk == destination.pk:
        raise ValidationError({"destination": "Choose another location than the source."})
    with transaction.atomic():
        lot = lot_lock(lot)
        unit, at = lot_unit_of(lot), _now()
        out = movement_new(actor=actor, location=source, lot=lot, kind=MovementKind.TRANSFERRED_OUT, quantity=quantity,
                        unit=unit, reason=reason, at=at)
        into = movement_new(actor=actor, location=destination, lot=lot, kind=MovementKind.TRANSFERRED_IN,
                         quantity=quantity, unit=unit, reason=reason, at=at)
        movements_write(actor=actor, event_type=SupplyEvent.STOCK_TRANSFERRED, lot=lot, rows=[out, into], reason=reason,
               new={"from": source.code, "to": destination.code})
    return out, into


def stock_consume(*, actor: User, uses: list[MaterialUse], at: dt.datetime) -> list[StockMovement]:
    """The ``consumed`` movements of a step's material uses, in the step's transaction (the step
    asks ``manufacturing.materials_used``; ``answers.materials_used``). A use of a lot that is not
    stock-managed (no movement ever) is not counted. A use is taken from the site's locations that
    hold the lot, its store first; with too little stock, ValidationError names ``materials.<code>``
    and the step rolls back. The lots are locked in a fixed order, so two steps never deadlock."""
    written: list[StockMovement] = []
    for use in sorted(uses, key=lambda u: u.lot_id):
        lot = lot_lock(use.lot)
        ever = selectors.lot_stock_by_location(lot)
        if not ever:
            continue  # never received into stock: not stock-managed (docs/supply.md)
        by_location = {k: v for k, v in ever.items() if v > 0}
        key = f"materials.{use.material_code}"
        locations = sorted(StockLocation.objects.filter(pk__in=list(by_location), site_id=lot.site_id),
                           key=lambda loc: (loc.kind != LocationKind.STORE, loc.code))
        available = sum((by_location[loc.pk] for loc in locations), Decimal(0))
        if use.quantity > available:
            raise ValidationError({key: f"{use.material_code}: only {selectors.amount(available)} of lot "
                                        f"{lot.lot_number} are in stock at {lot.site.code}; the step needs "
                                        f"{selectors.amount(use.quantity)}."})
        unit, left = lot_unit_of(lot), Decimal(use.quantity)
        rows: list[StockMovement] = []
        step = use.step
        for location in locations:
            if left <= 0:
                break
            take = min(left, by_location[location.pk])
            rows.append(movement_new(actor=actor, location=location, lot=lot, kind=MovementKind.CONSUMED, quantity=take,
                                  unit=unit, reason=f"Used at step {step.step_id} of {step.batch.reference}",
                                  at=at, batch=step.batch, use=use))
            left -= take
        written += movements_write(actor=actor, event_type=SupplyEvent.STOCK_CONSUMED, lot=lot, rows=rows,
                          reason=f"Used at step {step.step_id} of {step.batch.reference}",
                          new={"batch": step.batch.reference, "step": step.step_id})
    return written
