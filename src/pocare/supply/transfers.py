"""Transfers of stock between sites (SUP-STOCK, ATMP-TRACE): from a location at one site (a regional
depot, a store) to a location at another, with its custody and temperature data like any shipment.

- ``transfer_dispatch`` (the source site's materials manager): a released, unexpired, not recalled lot
  of a qualified supplier, no more than the location holds, a data logger (its temperature limits the
  material's storage range, ``MaterialStorage``, copied at dispatch), the carrier and the seal. A
  ``transferred_out`` movement at the source: the stock is now *in transit*, counted at neither site (its
  transfer says where it is).
- ``transfer_readings_upload`` (either site's materials manager): the logger's CSV, parsed and bounded as
  custody parses a shipment's logger, each reading judged by custody's pure ``excursions`` module.
- ``transfer_receive`` (the destination site's materials manager): who handed the goods over, whether the
  seal was intact, when they arrived. The lot of the same material and lot number at the destination
  site is found, or created mirroring the source lot (material, lot number, supplier, expiry); it is
  released only when the source lot is released, the logger read inside the limits and the seal was
  intact. Otherwise it is put (or stays) in quarantine and a deviation is opened at the destination,
  as custody does for a shipment. A ``transferred_in`` movement at the destination — unless the lot there
  was already released or rejected: then the stock is *held* on its transfer, counted nowhere.
- ``transfer_disposition`` (QA, signed): held stock released back to use (into the destination lot) or
  rejected and destroyed (arrived and destroyed there, so the stock card accounts for it).

A lot is one ``MaterialLot`` per site, and the recall keys on material and lot number: the trace finds
the lot at both sites, and the transfers of that lot number (``transfers_of``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from pocare.accounts import selectors as access
from pocare.accounts.roles import Perm
from pocare.accounts.selectors import sites_with_perm
from pocare.accounts.services import require_perm
from pocare.core.checks import text_checked
from pocare.custody.excursions import excursions_find, outside
from pocare.custody.services import logger_csv_rows, logger_rows_parse
from pocare.ledger.models import Meaning
from pocare.ledger.services import event_record, reason_required
from pocare.ledger.signing import SigningCredentials, signature_apply, signing_authenticate
from pocare.manufacturing import services as manufacturing
from pocare.manufacturing.models import LotStatus, MaterialLot
from pocare.masterfile import plausibility
from pocare.network.selectors import site_today
from pocare.quality.models import DeviationKind
from pocare.quality.services import deviation_open
from pocare.supply import recall, selectors, services
from pocare.supply.events import SupplyEvent
from pocare.supply.models import (
    Disposition,
    MaterialStorage,
    MovementKind,
    StockLocation,
    Transfer,
    TransferReading,
    TransferStatus,
)

if TYPE_CHECKING:
    from pocare.accounts.models import User

#: The most readings one transfer's logger keeps (a reading a minute for more than two months).
MAX_READINGS = 100_000
#: The size of a logger file read from the page: far more than MAX_READINGS lines of
#: ``timestamp,temperature_c``.
MAX_CSV_BYTES = 5_000_000


def _reason(value: Any) -> str:
    return reason_required(text_checked(value, "reason", "reason", 2000))


def _next_reference(year: int) -> str:
    prefix = f"TRF-{year}-"
    last = (Transfer.objects.filter(reference__startswith=prefix).order_by("-reference")
            .values_list("reference", flat=True).first())
    return f"{prefix}{(int(last.rsplit('-', 1)[1]) + 1 if last else 1):04d}"


def may_send(actor: User, source: StockLocation, destination: StockLocation) -> bool:
    """Whether ``actor`` may send from ``source`` to ``destination``: the source site's materials manager,
    to a site the source depot serves — or to any site when they manage the materials of both."""
    if access.is_read_only(actor) or not access.has_perm(actor, Perm.MATERIALS_MANAGE, site_id=source.site_id):
        return False
    if destination.site_id in {s.pk for s in source.serves.all()}:
        return True
    return access.has_perm(actor, Perm.MATERIALS_MANAGE, site_id=destination.site_id)


def storage_limits(material_code: str) -> tuple[Decimal | None, Decimal | None]:
    """The temperature limits a transfer of the material keeps: the material's storage range
    (``MaterialStorage``, set by Control Site QA); refused naming ``lot`` when none is recorded."""
    storage = MaterialStorage.objects.filter(material_code=material_code).first()
    if storage is None:
        raise ValidationError({"lot": f"No storage conditions are recorded for {material_code}: Control Site QA "
                                      "records its temperature range on the materials page before it is sent."})
    return storage.min_celsius, storage.max_celsius


def transfer_dispatch(*, actor: User, source: StockLocation, destination: StockLocation, lot: MaterialLot,
                      quantity: Any, logger_id: Any, carrier: Any, seal: Any, reason: Any) -> Transfer:
    """Send ``quantity`` of ``lot`` from ``source`` to ``destination`` at another site (module docstring),
    its logger's limits those of the material's storage range."""
    require_perm(actor, Perm.MATERIALS_MANAGE, site=source.site)
    quantity = services.quantity_checked(quantity)
    logger_id = text_checked(logger_id, "logger_id", "data logger's id", 60)
    carrier = text_checked(carrier, "carrier", "carrier (courier or driver)", 120)
    seal = text_checked(seal, "seal", "seal number", 60)
    reason = _reason(reason)
    low, high = storage_limits(lot.material_code)
    if source.site_id != lot.site_id:
        raise ValidationError({"source": f"{lot} is received at {lot.site.code}; {source} belongs to "
                                         f"{source.site.code}."})
    if destination.site_id == source.site_id:
        raise ValidationError({"destination": "Between two locations of one site, move the stock from the lot's "
                                              "stock card (a transfer within the site)."})
    if not may_send(actor, source, destination):
        raise PermissionDenied(f"{source} does not serve {destination.site.code}: only someone who manages the "
                               f"materials of both {source.site.code} and {destination.site.code} sends there.")
    with transaction.atomic():
        lot = services.lot_lock(lot)
        problems = manufacturing.lot_problems(lot, material_code=lot.material_code, site=lot.site, at=timezone.now())
        if (held := recall.lot_recall(lot)) is not None:
            problems.append(recall.recall_hold_text(held))
        if problem := selectors.supplier_problem(lot):
            problems.append(problem)
        if problems:
            raise ValidationError({"lot": " ".join(problems) + " Only released, usable material is sent."})
        unit, now = services.lot_unit_of(lot), timezone.now()
        out = services.movement_new(actor=actor, location=source, lot=lot, kind=MovementKind.TRANSFERRED_OUT,
                                    quantity=quantity, unit=unit, reason=reason, at=now)
        services.movements_write(actor=actor, event_type=SupplyEvent.TRANSFER_DISPATCHED, lot=lot, rows=[out],
                                 reason=reason, new={"to_site": destination.site.code, "to": destination.code,
                                                     "logger_id": logger_id, "min_celsius": low, "max_celsius": high,
                                                     "carrier": carrier, "seal": seal})
        transfer = _create(source=source, destination=destination, lot=lot, quantity=quantity, unit=unit,
                           reason=reason, logger_id=logger_id, low=low, high=high, carrier=carrier, seal=seal,
                           actor=actor, now=now, out=out)
        event_record(actor=actor, event_type=SupplyEvent.TRANSFER_DISPATCHED, site=source.site, obj=transfer,
                     reason=reason, new={"reference": transfer.reference, "lot_number": lot.lot_number,
                                         "material_code": lot.material_code, "quantity": quantity, "unit": unit,
                                         "from": f"{source.site.code} {source.code}",
                                         "to": f"{destination.site.code} {destination.code}"})
    return transfer


def _create(*, source: StockLocation, destination: StockLocation, lot: MaterialLot, quantity: Decimal, unit: str,
            reason: str, logger_id: str, low: Decimal | None, high: Decimal | None, carrier: str, seal: str,
            actor: User, now: dt.datetime, out: Any) -> Transfer:
    """The transfer's row, numbered; two dispatched at once may draw one number: the second takes the next."""
    for _attempt in range(5):
        try:
            with transaction.atomic():
                return Transfer.objects.create(
                    reference=_next_reference(now.year), source=source, destination=destination, source_lot=lot,
                    quantity=quantity, unit=unit, reason=reason, logger_id=logger_id, min_celsius=low,
                    max_celsius=high, carrier=carrier, seal=seal, dispatched_by=actor, dispatched_at=now,
                    out_movement=out)
        except IntegrityError:
            continue
    raise ValidationError({"reference": "The transfer could not be numbered; try again."})


def _may_touch(actor: User, transfer: Transfer) -> bool:
    return not access.is_read_only(actor) and any(
        access.has_perm(actor, Perm.MATERIALS_MANAGE, site_id=site_id)
        for site_id in (transfer.source.site_id, transfer.destination.site_id))


def transfer_readings_upload(*, actor: User, transfer: Transfer, csv_text: str) -> int:
    """Store the transfer's logger readings (CSV ``timestamp,temperature_c``), each judged against the
    transfer's limits; a bad row refuses the whole file (every bad row listed, nothing stored). An
    identical repeat of a stored reading is skipped; a contradicting one refused. Returns how many
    readings were stored."""
    if not _may_touch(actor, transfer):
        raise PermissionDenied(f"{actor.username} may not upload logger data for {transfer.reference}.")
    if not isinstance(csv_text, str) or len(csv_text) > MAX_CSV_BYTES:
        raise ValidationError({"csv_file": f"Upload a CSV file of at most {MAX_CSV_BYTES // 1_000_000} MB."})
    rows, problems = logger_csv_rows(csv_text)
    if not problems and not rows:
        problems = ["there are no readings"]
    if len(rows) > MAX_READINGS:
        problems.append(f"at most {MAX_READINGS:,} readings per transfer")
    readings: list[tuple[dt.datetime, Decimal]] = []
    now = timezone.now()
    if not problems:
        readings, problems = logger_rows_parse(rows, latest=now + plausibility.CLOCK_SKEW,
                                               earliest=transfer.dispatched_at - plausibility.LOGGER_BEFORE_DISPATCH)
    _refuse(problems)
    digest = hashlib.sha256(csv_text.encode("utf-8")).hexdigest()
    with transaction.atomic():
        locked = Transfer.objects.select_for_update().get(pk=transfer.pk)
        if not locked.in_transit:
            raise ValidationError({"csv_file": f"{locked.reference} was received on "
                                               f"{locked.received_at:%Y-%m-%d}: its readings are closed."})
        stored = dict(locked.readings.values_list("at", "celsius"))
        new: dict[dt.datetime, Decimal] = {}
        repeats = 0
        for n, (at, celsius) in enumerate(readings, 1):
            key = at.astimezone(dt.UTC)
            earlier = stored.get(key, new.get(key))
            if earlier is None:
                new[key] = celsius
            elif earlier == celsius:
                repeats += 1
            else:
                problems.append(f"row {n}: {key:%Y-%m-%dT%H:%M:%SZ}: {celsius} °C contradicts {earlier} °C read "
                                "for the same moment")
        if not problems and not new:
            problems.append(f"all {repeats} readings are already stored; nothing new to store")
        _refuse(problems)
        low, high = locked.min_celsius, locked.max_celsius
        TransferReading.objects.bulk_create([
            TransferReading(transfer=locked, at=at, celsius=c, in_limits=not outside(c, low, high),
                            uploaded_by=actor, sha256=digest) for at, c in sorted(new.items())], batch_size=1000)
        every = [*stored.items(), *new.items()]
        locked.excursions = [e.as_record() for e in excursions_find(every, low, high)]
        locked.save(update_fields=["excursions"])
        event_record(actor=actor, event_type=SupplyEvent.TRANSFER_READINGS, site=locked.destination.site,
                     obj=locked, reason=f"Logger {locked.logger_id} readings uploaded",
                     new={"reference": locked.reference, "readings": len(new), "repeats_skipped": repeats,
                          "sha256": digest, "excursions": locked.excursions})
    return len(new)


def _refuse(problems: list[str]) -> None:
    if problems:
        shown = problems[:50] + ([f"… and {len(problems) - 50} more rows"] if len(problems) > 50 else [])
        raise ValidationError({"csv_file": [f"Nothing was stored: {len(problems)} problem(s).", *shown]})


def _arrival(value: Any, transfer: Transfer, now: dt.datetime) -> dt.datetime:
    if value in (None, ""):
        return now
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise ValidationError({"arrived_at": "Give the time the goods arrived, with its time zone."})
    if value < transfer.dispatched_at or value > now + plausibility.CLOCK_SKEW:
        raise ValidationError({"arrived_at": f"The goods arrived between their dispatch "
                                             f"({transfer.dispatched_at:%Y-%m-%d %H:%M} UTC) and now."})
    return value


def transfer_receive(*, actor: User, transfer: Transfer, handed_over_by: Any, seal_intact: Any, reason: Any,
                     arrived_at: Any = None) -> Transfer:
    """Receive a transfer at its destination (module docstring): the lot found or created at the
    destination site, released or quarantined by what the logger and the seal say, ``transferred_in``."""
    destination = transfer.destination
    require_perm(actor, Perm.MATERIALS_MANAGE, site=destination.site)
    handed_over_by = text_checked(handed_over_by, "handed_over_by", "name of who handed the goods over", 120)
    if not isinstance(seal_intact, bool):
        raise ValidationError({"seal_intact": "Say whether the seal was intact."})
    reason = _reason(reason)
    now = timezone.now()
    arrived = _arrival(arrived_at, transfer, now)
    with transaction.atomic():
        locked = Transfer.objects.select_for_update().select_related("source__site", "destination__site",
                                                                     "source_lot").get(pk=transfer.pk)
        if not locked.in_transit:
            raise ValidationError({"transfer": f"{locked.reference} was already received."})
        source_lot = locked.source_lot
        readings = list(locked.readings.values_list("at", "celsius"))
        found = excursions_find(readings, locked.min_celsius, locked.max_celsius)
        problems = []
        if not readings:
            problems.append(f"no reading of logger {locked.logger_id} was uploaded")
        if found:
            problems.append(f"logger {locked.logger_id} read outside {_limits_text(locked)} in {len(found)} span(s): "
                            + "; ".join(f"{e.start:%Y-%m-%d %H:%M} to {e.end:%Y-%m-%d %H:%M} UTC, "
                                        f"{'highest' if e.side == 'high' else 'lowest'} {e.extreme} °C"
                                        for e in found))
        if not seal_intact:
            problems.append(f"the seal {locked.seal} was not intact")
        source_released = (source_lot.status == LotStatus.RELEASED
                           and source_lot.expiry_date >= site_today(destination.site))
        if not source_released:
            problems.append(f"{source_lot} is no longer released and usable at {locked.source.site.code}")
        site = destination.site
        lot = MaterialLot.objects.filter(site=site, material_code=source_lot.material_code,
                                         lot_number=source_lot.lot_number).first()
        if lot is None:
            lot = manufacturing.lot_receive(
                actor=actor, site=site, material_code=source_lot.material_code, name=source_lot.name,
                lot_number=source_lot.lot_number, expiry_date=source_lot.expiry_date, supplier=source_lot.supplier,
                reason=f"Transfer {locked.reference} from {locked.source.site.code}")
        lot = services.lot_lock(lot)
        # Stock that went wrong on the way is never mixed into a lot already decided at the site: it is
        # held on its transfer (counted nowhere) until QA decides on the deviation.
        held = bool(problems) and lot.status != LotStatus.QUARANTINE
        into = None
        if not held:
            if not problems:
                _release_mirrored(lot=lot, source_lot=source_lot, transfer=locked, actor=actor)
                lot.refresh_from_db()
            into = services.movement_new(actor=actor, location=destination, lot=lot,
                                         kind=MovementKind.TRANSFERRED_IN, quantity=locked.quantity,
                                         unit=locked.unit, reason=reason, at=now)
            services.movements_write(actor=actor, event_type=SupplyEvent.TRANSFER_RECEIVED, lot=lot, rows=[into],
                                     reason=reason, new={"from_site": locked.source.site.code,
                                                         "transfer": locked.reference})
        if problems:
            only_seal = bool(readings) and not found and source_released
            locked.deviation = deviation_open(
                actor=actor, site=site, kind=DeviationKind.CUSTODY if only_seal else DeviationKind.TEMPERATURE,
                title=f"Material transfer {locked.reference}: {lot} "
                      f"{'held on arrival' if held else 'received in quarantine'}",
                description=(f"{locked.quantity:f} {locked.unit} of {lot} from {locked.source.site.code} "
                             f"{locked.source.code}: " + "; ".join(problems) + "."),
                source=locked)
        locked.status = TransferStatus.HELD if held else TransferStatus.RECEIVED
        locked.destination_lot, locked.in_movement = lot, into
        locked.handed_over_by, locked.received_by, locked.seal_intact = handed_over_by, actor, seal_intact
        locked.arrived_at, locked.received_at = arrived, now
        locked.excursions = [e.as_record() for e in found]
        locked.save()
        event_record(actor=actor, event_type=SupplyEvent.TRANSFER_RECEIVED, site=site, obj=locked, reason=reason,
                     old={"status": TransferStatus.IN_TRANSIT},
                     new={"status": TransferStatus.RECEIVED, "handed_over_by": handed_over_by,
                          "seal_intact": seal_intact, "arrived_at": arrived, "readings": len(readings),
                          "excursions": locked.excursions, "lot_status": lot.status,
                          "deviation": locked.deviation.reference if locked.deviation else None})
    return locked


def transfer_disposition(*, actor: User, transfer: Transfer, decision: Any, reason: Any,
                         credentials: SigningCredentials) -> Transfer:
    """QA's decision on stock held on a transfer (it arrived out of its limits, or with a broken seal, at a
    site whose lot of that number was already decided): ``released`` back to use — it joins the destination
    lot (a ``transferred_in`` movement), which must be released and usable — or ``destroyed`` — it arrives
    and is destroyed at once (``transferred_in`` and ``destroyed``: the stock card shows where it went).
    Signed (meaning: released or rejected) with the reason, by QA who may close the site's deviations;
    until then the stock is counted nowhere, so no proposal offers it and no step or issue takes it."""
    destination = transfer.destination
    require_perm(actor, Perm.DEVIATION_CLOSE, site=destination.site)
    if decision not in Disposition.values:
        raise ValidationError({"decision": f"Choose one of {', '.join(Disposition.values)}."})
    reason = _reason(reason)
    proof = signing_authenticate(actor=actor, credentials=credentials)
    with transaction.atomic():
        locked = Transfer.objects.select_for_update().select_related("destination__site").get(pk=transfer.pk)
        if not locked.held:
            raise ValidationError({"decision": f"{locked.reference} is {locked.get_status_display().lower()}: only "
                                               "stock held on arrival waits for QA's decision."})
        lot = locked.destination_lot
        assert lot is not None  # a held transfer names the lot it was held from (transfer_receive)
        lot = services.lot_lock(lot)
        now = timezone.now()
        into = services.movement_new(actor=actor, location=destination, lot=lot, kind=MovementKind.TRANSFERRED_IN,
                                     quantity=locked.quantity, unit=locked.unit, reason=reason, at=now)
        rows = [into]
        if decision == Disposition.RELEASED:
            problems = manufacturing.lot_problems(lot, material_code=lot.material_code, site=lot.site, at=now)
            if (held := recall.lot_recall(lot)) is not None:
                problems.append(recall.recall_hold_text(held))
            if problem := selectors.supplier_problem(lot):
                problems.append(problem)
            if problems:
                raise ValidationError({"decision": " ".join(problems) + " Held stock is released only into a "
                                                   "released, usable lot; destroy it instead."})
        else:
            rows.append(services.movement_new(actor=actor, location=destination, lot=lot,
                                              kind=MovementKind.DESTROYED, quantity=locked.quantity,
                                              unit=locked.unit, reason=reason, at=now))
        services.movements_write(actor=actor, event_type=SupplyEvent.TRANSFER_DISPOSED, lot=lot, rows=rows,
                                 reason=reason, new={"transfer": locked.reference, "disposition": decision})
        locked.status = TransferStatus.RECEIVED if decision == Disposition.RELEASED else TransferStatus.DESTROYED
        locked.in_movement = into
        locked.disposition, locked.disposed_by, locked.disposed_at = decision, actor, now
        locked.disposition_reason = reason
        locked.save(update_fields=["status", "in_movement", "disposition", "disposed_by", "disposed_at",
                                   "disposition_reason"])
        event_record(actor=actor, event_type=SupplyEvent.TRANSFER_DISPOSED, site=destination.site, obj=locked,
                     reason=reason, old={"status": TransferStatus.HELD},
                     new={"status": locked.status, "disposition": decision, "quantity": locked.quantity,
                          "lot": str(lot), "deviation": locked.deviation.reference if locked.deviation else None})
        signature_apply(proof=proof, record=locked, site=destination.site, reason=reason,
                        meaning=Meaning.RELEASED if decision == Disposition.RELEASED else Meaning.REJECTED)
    return locked


def _limits_text(transfer: Transfer) -> str:
    low, high = transfer.min_celsius, transfer.max_celsius
    return f"{low if low is not None else '—'} to {high if high is not None else '—'} °C"


def _release_mirrored(*, lot: MaterialLot, source_lot: MaterialLot, transfer: Transfer, actor: User) -> None:
    """Release a lot created at the destination for this transfer, as its source lot was released (signed
    there): the same supplier's lot, same expiry, kept within its limits under an intact seal on the way.
    A lot the destination already held keeps its own status (its own decision, signed or to come)."""
    fresh = lot.received_at >= transfer.dispatched_at and lot.decided_at is None and not selectors.lot_managed(lot)
    if not fresh or lot.status != LotStatus.QUARANTINE:
        return
    manufacturing.lot_release_as_source(
        actor=actor, lot=lot, source=source_lot,
        reason=f"Transfer {transfer.reference}: released at {transfer.source.site.code}, logger within "
               f"{_limits_text(transfer)}, seal intact")


# --- reads -------------------------------------------------------------------------------------------------


def transfers_visible(user: Any) -> QuerySet[Transfer]:
    """The transfers from or to the sites where ``user`` holds ``supply.view``."""
    sites = sites_with_perm(user, Perm.SUPPLY_VIEW)
    found = Transfer.objects.select_related("source__site", "destination__site", "source_lot", "destination_lot")
    if sites is None:
        return found
    return found.filter(Q(source__site_id__in=sites) | Q(destination__site_id__in=sites))


def held_awaiting_decision(user: Any) -> QuerySet[Transfer]:
    """Work queue "Stock held on transfers": the transfers held on arrival at the sites where ``user`` closes
    deviations (Control Site QA), oldest first."""
    if access.is_read_only(user):
        return Transfer.objects.none()
    sites = sites_with_perm(user, Perm.DEVIATION_CLOSE)
    found = (Transfer.objects.filter(status=TransferStatus.HELD)
             .select_related("source__site", "destination__site", "source_lot"))
    return (found if sites is None else found.filter(destination__site_id__in=sites)).order_by("received_at", "pk")


def transfers_of(*, material_code: str, lot_number: str, user: Any = None) -> list[Transfer]:
    """The transfers of a supplier's lot (for its trace), newest first, as ``user`` may see them."""
    found = transfers_visible(user) if user is not None else Transfer.objects.select_related(
        "source__site", "destination__site")
    return list(found.filter(source_lot__material_code=material_code, source_lot__lot_number=lot_number))


def destinations_for(actor: User, source: StockLocation) -> QuerySet[StockLocation]:
    """Where ``actor`` may send from ``source``: locations at the sites it serves, or at sites whose
    materials ``actor`` also manages; never at the source's own site."""
    managed = sites_with_perm(actor, Perm.MATERIALS_MANAGE)
    served = Q(site_id__in=source.serves.values("pk"))
    allowed = served | (Q() if managed is None else Q(site_id__in=managed))
    return (StockLocation.objects.filter(allowed).exclude(site_id=source.site_id)
            .select_related("site").order_by("site__code", "code"))
