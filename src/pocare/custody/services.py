"""Changes to the chain of identity and custody (ATMP-TRACE, ATMP-SM, ISBT-DIN, ISBT-COI, LABEL).

Each function is keyword-only, runs in one transaction and writes its ledger event on the
manufacturing site's chain. Two exceptions to "an error changes nothing", both on purpose:

* a hand-off whose scanned identifier does not match is *kept* (outcome *blocked*) with the
  deviation it opened, and only then is :class:`HandoffBlocked` raised;
* nothing else: a malformed logger upload, a hand-off out of order, a missing permission store
  nothing at all.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from pocare.accounts import selectors as access
from pocare.accounts.roles import Perm
from pocare.core import bounds
from pocare.custody import isbt
from pocare.custody.events import CustodyEvent
from pocare.custody.excursions import excursions_find, outside
from pocare.custody.labels import label_content
from pocare.custody.models import (
    Collection,
    Handoff,
    HandoffKind,
    HandoffOutcome,
    OrderStatus,
    Shipment,
    ShipmentLeg,
    TemperatureReading,
    TemperatureReadingCorrection,
    TemperatureUpload,
    TherapyOrder,
)
from pocare.custody.questions import DISPATCH_HOLDS
from pocare.ledger.canonical import content_hash
from pocare.ledger.models import Meaning
from pocare.ledger.services import event_record, reason_required
from pocare.ledger.signing import SigningCredentials, signature_apply, signing_authenticate
from pocare.masterfile import plausibility
from pocare.masterfile.selectors import effective_version
from pocare.network.models import Site, SiteKind, SiteStatus
from pocare.quality.models import DeviationKind
from pocare.quality.services import deviation_open

if TYPE_CHECKING:
    from pocare.accounts.models import User
    from pocare.manufacturing.models import Batch
    from pocare.masterfile.models import Product
    from pocare.quality.models import Deviation

#: How long cooled (2–8 °C) apheresis may wait for manufacture, when the collection does not say:
#: 48 hours from the end of collection, the usual limit for fresh apheresis in autologous CAR-T.
APHERESIS_STABILITY = dt.timedelta(hours=48)

#: The hand-offs before manufacture carry the collection bag's DIN; those after carry the COI.
DIN_KINDS = (HandoffKind.COLLECTION, HandoffKind.DISPATCH_TO_SITE, HandoffKind.RECEIPT_AT_SITE,
             HandoffKind.MANUFACTURE_START)
COI_KINDS = (HandoffKind.CRYOPRESERVATION, HandoffKind.FRESH_HOLD, HandoffKind.DISPATCH_TO_HOSPITAL,
             HandoffKind.RECEIPT_AT_HOSPITAL, HandoffKind.THAW, HandoffKind.INFUSION)
#: The hand-offs that happen at the manufacturing site; the others at the treating site.
AT_MANUFACTURING_SITE = frozenset({HandoffKind.RECEIPT_AT_SITE, HandoffKind.MANUFACTURE_START,
                                   HandoffKind.CRYOPRESERVATION, HandoffKind.FRESH_HOLD,
                                   HandoffKind.DISPATCH_TO_HOSPITAL})
MAX_READINGS = 100_000


class HandoffBlocked(ValidationError):
    """The presented identifier did not match: the blocked attempt and its deviation are recorded
    (committed, unless an outer transaction rolls back) and this names ``presented_identifier``."""

    def __init__(self, message: str, *, handoff: Handoff, deviation: Deviation) -> None:
        super().__init__({"presented_identifier": [message]})
        self.handoff = handoff
        self.deviation = deviation


# --- shared checks ---------------------------------------------------------------------------------


def _text(value: Any, field: str, what: str, max_length: int, *, required: bool = True) -> str:
    text = str(value or "").strip()
    if required and not text:
        raise ValidationError({field: f"Give the {what}."})
    if len(text) > max_length:
        raise ValidationError({field: f"The {what} has at most {max_length} characters."})
    return text


def _require(actor: User, perm: Perm, site: Site, doing: str) -> None:
    if access.is_read_only(actor) or not access.has_perm(actor, perm, site_id=site.pk):
        raise PermissionDenied(f"{actor.username} may not {doing} at {site.name} ({site.code}).")


def _aware(value: Any, field: str) -> dt.datetime:
    if not isinstance(value, dt.datetime) or timezone.is_naive(value):
        raise ValidationError({field: "Give the moment with its time zone."})
    return value


def _lock_order(order: TherapyOrder) -> TherapyOrder:
    locked = TherapyOrder.objects.select_for_update().get(pk=order.pk)
    order.status, order.coi = locked.status, locked.coi
    return locked


def _status_move(actor: User | None, order: TherapyOrder, to: OrderStatus, reason: str) -> None:
    old = order.status
    order.status = to
    order.save(update_fields=["status"])
    event_record(actor=actor, event_type=CustodyEvent.ORDER_STATUS_CHANGED, obj=order, site=order.site,
                 reason=reason, old={"status": old}, new={"status": str(to), "coi": order.coi})


# --- therapy orders ------------------------------------------------------------------------------------


def therapy_order_create(
    *,
    actor: User,
    site: Site,
    treating_site: Site,
    product: Product,
    recipient_id: str,
    recipient_weight_kg: Decimal,
    indication: str,
    reason: str,
    recipient_birth_year: int | None = None,
) -> TherapyOrder:
    """A treating physician or patient navigator at ``treating_site`` orders a patient's therapy,
    to be made at the POCare site ``site``. The order waits for the site to accept it."""
    _require(actor, Perm.ORDER_CREATE, treating_site, "order therapies")
    if site.kind == SiteKind.CONTROL:
        raise ValidationError({"site": "The Control Site does not manufacture; choose a POCare site."})
    if site.status in (SiteStatus.SUSPENDED, SiteStatus.CLOSED):
        raise ValidationError({"site": f"{site.name} is {SiteStatus(site.status).label.lower()}: it takes no orders."})
    recipient_id = _text(recipient_id, "recipient_id", "recipient identifier", 40)
    indication = _text(indication, "indication", "indication", 120)
    try:
        weight = Decimal(str(recipient_weight_kg))
    except (InvalidOperation, ValueError):
        raise ValidationError({"recipient_weight_kg": "Give the weight in kg, e.g. 72.5."}) from None
    if not weight.is_finite() or not Decimal("0.5") <= weight <= Decimal("400"):
        raise ValidationError({"recipient_weight_kg": "The weight is between 0.5 and 400 kg."})
    weight = weight.quantize(Decimal("0.1"))
    if recipient_birth_year is not None:
        this_year = timezone.now().year
        if not isinstance(recipient_birth_year, int) or not this_year - 130 <= recipient_birth_year <= this_year:
            raise ValidationError({"recipient_birth_year": f"Give a year between {this_year - 130} and {this_year}."})
    reason = reason_required(reason)
    with transaction.atomic():
        order = TherapyOrder.objects.create(
            site=site, treating_site=treating_site, product=product, recipient_id=recipient_id,
            recipient_birth_year=recipient_birth_year, recipient_weight_kg=weight, indication=indication,
            status=OrderStatus.REQUESTED, ordered_by=actor, ordered_at=timezone.now(),
        )
        event_record(actor=actor, event_type=CustodyEvent.ORDER_CREATED, obj=order, site=site, reason=reason,
                     new={"site": site.code, "treating_site": treating_site.code, "product": product.code,
                          "recipient_id": recipient_id, "recipient_weight_kg": weight, "indication": indication,
                          "recipient_birth_year": recipient_birth_year})
    return order


def _next_coi(site: Site, year: int) -> str:
    prefix = f"{isbt.COI_PREFIX}{site.facility_id}{year % 100:02d}"
    last = (TherapyOrder.objects.filter(coi__startswith=prefix).order_by("-coi").values_list("coi", flat=True)
            .first())
    sequence = int(last[len(prefix):len(prefix) + 6]) + 1 if last else 1
    return isbt.coi_build(site.facility_id, year, sequence)


def therapy_order_accept(*, actor: User, order: TherapyOrder, reason: str) -> TherapyOrder:
    """The manufacturing site's manager accepts the order: the Chain of Identity identifier is
    assigned (ISBT-COI) and never changes afterwards. The site must be able to make the product
    now (an effective master-file version there)."""
    site = order.site
    _require(actor, Perm.ORDER_ACCEPT, site, "accept therapy orders")
    reason = reason_required(reason)
    if effective_version(site=site, product=order.product) is None:
        raise ValidationError({"order": (
            f"{site.name} has no effective master-file version of {order.product.code} (authorization and "
            "operator training): it cannot accept this order yet.")})
    with transaction.atomic():
        Site.objects.select_for_update().get(pk=site.pk)  # one COI sequence per facility at a time
        locked = _lock_order(order)
        if locked.status != OrderStatus.REQUESTED or locked.coi:
            raise ValidationError({"order": (
                f"The order is {OrderStatus(locked.status).label.lower()}: only a requested order is accepted, "
                "and its COI is never reassigned.")})
        now = timezone.now()
        coi = _next_coi(site, now.astimezone(site.tz).year)
        order.coi, order.status, order.accepted_by, order.accepted_at = coi, OrderStatus.ACCEPTED, actor, now
        order.save(update_fields=["coi", "status", "accepted_by", "accepted_at"])
        event_record(actor=actor, event_type=CustodyEvent.ORDER_ACCEPTED, obj=order, site=site, reason=reason,
                     old={"status": OrderStatus.REQUESTED.value, "coi": None},
                     new={"status": OrderStatus.ACCEPTED.value, "coi": coi})
    return order


def order_cancel_problems(order: TherapyOrder, *, lock: bool = False) -> list[str]:
    """Why ``order`` may no longer be cancelled (empty: it may): a batch started, material collected, or
    an order already past accepted or cancelled. What happened to the patient's material cannot be undone,
    so the order stays its record (ATMP-TRACE). ``lock``: lock the order row first, inside the caller's
    transaction, so that no collection or batch arrives between this answer and what the caller does."""
    if lock:
        order = _lock_order(order)
    problems: list[str] = []
    batch = TherapyOrder.objects.filter(pk=order.pk, batch__isnull=False).values_list("batch__reference",
                                                                                     flat=True).first()
    if batch:
        problems.append(f"its batch {batch} has started")
    dins = list(order.collections.order_by("din").values_list("din", flat=True)[:3])
    if dins:
        problems.append(f"material collected for it (DIN {', '.join(dins)})")
    if order.status not in (OrderStatus.REQUESTED, OrderStatus.ACCEPTED):
        problems.append(f"it is {OrderStatus(order.status).label.lower()}")
    return problems


def therapy_order_cancel(*, actor: User, order: TherapyOrder, reason: str) -> TherapyOrder:
    """The treating hospital withdraws an order before any material exists (requested, or accepted with no
    collection recorded and no batch started): the patient is to be treated elsewhere or not at all. The
    refusal names what happened (:func:`order_cancel_problems`). An assigned COI stays on the cancelled
    order and is never given to another."""
    _require(actor, Perm.ORDER_CREATE, order.treating_site, "cancel therapy orders")
    reason = reason_required(reason)
    with transaction.atomic():
        if problems := order_cancel_problems(order, lock=True):
            raise ValidationError({"order": (
                f"Therapy order {order.coi or order.pk} is not cancelled: {'; '.join(problems)}. Only an order with "
                "no material collected and no batch started is cancelled.")})
        _status_move(actor, order, OrderStatus.CANCELLED, reason)
    return order


# --- collections ---------------------------------------------------------------------------------------


def _next_din(facility: str, year: int) -> tuple[str, str]:
    prefix = f"{facility}{year % 100:02d}"
    last = Collection.objects.filter(din__startswith=prefix).order_by("-din").values_list("din", flat=True).first()
    return isbt.din_build(facility, year, int(last[7:]) + 1 if last else 1)


def _donor_tests(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping) or not value:
        raise ValidationError({"donor_tests": "Give the donor test results, e.g. HIV: negative (one per line)."})
    tests: dict[str, str] = {}
    for marker, result in value.items():
        marker, result = str(marker).strip(), str(result).strip()
        if not marker or not result or len(marker) > 40 or len(result) > 80:
            raise ValidationError({"donor_tests": (
                "Each donor test is a marker (at most 40 characters) and its result (at most 80).")})
        tests[marker] = result
    return tests


def collection_record(
    *,
    actor: User,
    order: TherapyOrder,
    collection_started_at: dt.datetime,
    collection_ended_at: dt.datetime,
    volume_ml: Decimal,
    donor_tests: Mapping[str, str],
    reason: str,
    collection_site: Site | None = None,
    autologous: bool | None = None,
    flags: str = "00",
    expires_at: dt.datetime | None = None,
) -> Collection:
    """Record a collection of starting material (ATMP-SM) for an accepted order and assign its DIN
    (ISBT-DIN): the collection site's facility id, the year the collection ended there and the
    next sequence of that facility and year. ``expires_at`` defaults to the end of collection
    plus :data:`APHERESIS_STABILITY`."""
    collection_site = collection_site or order.treating_site
    _require(actor, Perm.CUSTODY_RECORD, collection_site, "record collections")
    started = _aware(collection_started_at, "collection_started_at")
    ended = _aware(collection_ended_at, "collection_ended_at")
    now = timezone.now()
    if ended <= started:
        raise ValidationError({"collection_ended_at": "The collection ends after it starts."})
    if ended > now + dt.timedelta(minutes=5):
        raise ValidationError({"collection_ended_at": "The end of collection is in the future."})
    if ended - started > dt.timedelta(hours=12):
        raise ValidationError({"collection_ended_at": "An apheresis lasts at most 12 hours; check the times."})
    try:
        volume = Decimal(str(volume_ml))
    except (InvalidOperation, ValueError):
        raise ValidationError({"volume_ml": "Give the volume in mL, e.g. 250."}) from None
    if not volume.is_finite() or not Decimal("1") <= volume <= Decimal("5000"):
        raise ValidationError({"volume_ml": "The volume is between 1 and 5000 mL."})
    tests = _donor_tests(donor_tests)
    flags = str(flags or "00").strip().upper()
    if len(flags) != 2 or not flags.isalnum() or not flags.isascii():
        raise ValidationError({"flags": "The DIN flags are two letters or digits (00 when not used)."})
    expiry = _aware(expires_at, "expires_at") if expires_at is not None else ended + APHERESIS_STABILITY
    if expiry <= ended:
        raise ValidationError({"expires_at": "The material expires after the end of collection."})
    if autologous is None:
        autologous = order.product.kind == "autologous"
    reason = reason_required(reason)
    with transaction.atomic():
        Site.objects.select_for_update().get(pk=collection_site.pk)  # one DIN sequence per facility at a time
        locked = _lock_order(order)
        if locked.status != OrderStatus.ACCEPTED:
            raise ValidationError({"order": (
                f"The order is {OrderStatus(locked.status).label.lower()}: collections are recorded for an "
                "accepted order (its COI is assigned before the first collection) that is not yet in manufacture.")})
        din, check = _next_din(collection_site.facility_id, ended.astimezone(collection_site.tz).year)
        collection = Collection.objects.create(
            order=order, din=din, flags=flags, check_character=check, collection_site=collection_site,
            collection_started_at=started, collection_ended_at=ended, autologous=bool(autologous),
            volume_ml=volume.quantize(Decimal("0.1")), donor_tests=tests, expires_at=expiry, recorded_by=actor,
            recorded_at=now,
        )
        event_record(actor=actor, event_type=CustodyEvent.COLLECTION_RECORDED, obj=collection, site=order.site,
                     reason=reason,
                     new={"coi": order.coi, "din": din, "flags": flags, "check_character": check,
                          "collection_site": collection_site.code, "started_at": started, "ended_at": ended,
                          "autologous": bool(autologous), "volume_ml": collection.volume_ml, "donor_tests": tests,
                          "expires_at": expiry})
    return collection


# --- hand-offs -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HandoffCheck:
    """What a scan at a hand-off is compared with, and whether it matches (no writes)."""

    expected: str
    presented: str
    matches: bool
    problem: str  # why it does not match, in words


def handoff_expected(*, order: TherapyOrder, kind: str, collection: Collection | None) -> str:
    """The identifier a hand-off scan must show: the collection bag's DIN (13 characters) before
    manufacture, the order's COI from the first product container on."""
    if kind in DIN_KINDS:
        if collection is None:
            raise ValidationError({"collection": "Name the collection whose bag is handed over."})
        return collection.din
    if not order.coi:
        raise ValidationError({"order": "The order has no COI yet: it must be accepted first."})
    return order.coi


def handoff_check(*, order: TherapyOrder, kind: str, presented_identifier: str,
                  collection: Collection | None = None) -> HandoffCheck:
    """Compare a scan with what the hand-off expects. DINs are read with or without flags and check
    character (a wrong check character is a mismatch); spaces, hyphens and a leading ``=`` are ignored."""
    if kind in DIN_KINDS and collection is None:
        collection = _only_collection(order)
    expected = handoff_expected(order=order, kind=kind, collection=collection)
    presented = isbt.normalize(presented_identifier)
    if kind in DIN_KINDS:
        try:
            din = isbt.din_validate(presented)
        except isbt.IdentifierError as exc:
            return HandoffCheck(expected, presented, False, str(exc))
        if din.din != expected:
            return HandoffCheck(expected, presented, False, f"the label shows DIN {din.din}")
        return HandoffCheck(expected, presented, True, "")
    if presented != expected:
        return HandoffCheck(expected, presented, False, f"the label shows {presented or 'nothing'}")
    return HandoffCheck(expected, presented, True, "")


def _only_collection(order: TherapyOrder) -> Collection | None:
    collections = list(order.collections.order_by("pk")[:2])
    return collections[0] if len(collections) == 1 else None


def handoff_site(*, order: TherapyOrder, kind: str, collection: Collection | None = None) -> Site:
    """Where a hand-off of ``kind`` happens, and so the site it is recorded at: the manufacturing site
    from receipt to dispatch to the hospital; the collection's site for the collection and its dispatch
    (the order's only collection when none is named); the treating site for the rest."""
    if kind in AT_MANUFACTURING_SITE:
        return order.site
    if kind in (HandoffKind.COLLECTION, HandoffKind.DISPATCH_TO_SITE):
        collection = collection or _only_collection(order)
        if collection is not None:
            return collection.collection_site
    return order.treating_site


def handoffs_next(order: TherapyOrder, collection: Collection | None = None) -> list[str]:
    """The hand-off kinds that may be recorded next (for ``collection`` when given, before
    manufacture), in chain order."""
    done = list(order.handoffs.filter(outcome=HandoffOutcome.COMPLETED).values_list("kind", "collection_id"))
    return [k for k in HandoffKind if _sequence_problem(order, k, collection, done) is None]


def _sequence_problem(order: TherapyOrder, kind: str, collection: Collection | None,
                      done: Sequence[tuple[str, int | None]]) -> str | None:
    """Why ``kind`` may not be recorded now (``None`` when it may). ``done`` are the completed
    hand-offs of the order as (kind, collection id)."""
    kinds = {k for k, _ in done}
    label = HandoffKind(kind).label.lower()
    if kind in DIN_KINDS:
        if collection is None:
            return "name the collection whose bag is handed over"
        mine = {k for k, c in done if c == collection.pk}
        if kind in mine:
            return f"{label} of DIN {collection.din} is already recorded"
        before = DIN_KINDS[DIN_KINDS.index(HandoffKind(kind)) - 1] if kind != HandoffKind.COLLECTION else None
        if before is not None and before not in mine:
            return f"{label} comes after {HandoffKind(before).label.lower()} of DIN {collection.din}"
        if kind == HandoffKind.MANUFACTURE_START and HandoffKind.MANUFACTURE_START in kinds:
            return "manufacture has already started for this order"
        if kind != HandoffKind.MANUFACTURE_START and HandoffKind.MANUFACTURE_START in kinds:
            return "manufacture has started: the starting material's hand-offs are over"
        return None
    if kind in kinds:
        return f"{label} is already recorded for this order"
    stored = {HandoffKind.CRYOPRESERVATION, HandoffKind.FRESH_HOLD} & kinds
    one_storage = "after the start of manufacture, and only one of cryopreservation or fresh hold"
    needs: dict[str, tuple[bool, str]] = {
        HandoffKind.CRYOPRESERVATION: (HandoffKind.MANUFACTURE_START in kinds and not stored, one_storage),
        HandoffKind.FRESH_HOLD: (HandoffKind.MANUFACTURE_START in kinds and not stored, one_storage),
        HandoffKind.DISPATCH_TO_HOSPITAL: (bool(stored), "after cryopreservation or fresh hold"),
        HandoffKind.RECEIPT_AT_HOSPITAL: (HandoffKind.DISPATCH_TO_HOSPITAL in kinds,
                                          "after dispatch to the treating hospital"),
        HandoffKind.THAW: (HandoffKind.CRYOPRESERVATION in kinds and HandoffKind.RECEIPT_AT_HOSPITAL in kinds,
                           "only for a cryopreserved product, after its receipt at the hospital"),
        HandoffKind.INFUSION: (HandoffKind.RECEIPT_AT_HOSPITAL in kinds
                               and (HandoffKind.THAW in kinds or HandoffKind.CRYOPRESERVATION not in kinds),
                               "after receipt at the hospital (and, for a cryopreserved product, after thaw)"),
    }
    allowed, when = needs[kind]
    return None if allowed else f"{label} comes {when}"


def dispatch_holds(order: TherapyOrder) -> list[str]:
    """Why the order's product may not be dispatched to the hospital now, asked of the apps above
    custody (``custody.questions.DISPATCH_HOLDS``); empty when nothing holds it."""
    return [reason for reason in DISPATCH_HOLDS.ask(order) if reason]


def handoff_record(
    *,
    actor: User,
    order: TherapyOrder,
    kind: str,
    presented_identifier: str,
    site: Site,
    location: str,
    notes: str = "",
    collection: Collection | None = None,
    batch: Batch | None = None,
) -> Handoff:
    """Record one custody hand-off, in chain order (P11-10f), comparing the scanned identifier with
    the expected one (:func:`handoff_expected`): the DIN before manufacture, the COI after.

    The time is the server's (UTC) with the place's zone. A match records a *completed* hand-off,
    and moves the order on: ``manufacture_start`` → in manufacture, ``dispatch_to_hospital`` →
    dispatched, ``infusion`` → infused. Dispatch to the hospital needs the order's batch to be
    completed and certified for release by the QP.

    A mismatch records a *blocked* hand-off, opens a custody deviation, writes the ledger event —
    all in this function's own transaction (a savepoint inside an outer one), which has ended when
    :class:`HandoffBlocked` is raised. Called inside an outer ``transaction.atomic()`` (the batch
    start), the caller keeps the blocked attempt by catching ``HandoffBlocked`` and letting its
    transaction commit — or calls :func:`handoff_check` before opening its transaction.
    """
    kind = str(kind)
    if kind not in HandoffKind.values:
        raise ValidationError({"kind": f"{kind!r} is not a hand-off; use one of: {', '.join(HandoffKind.values)}."})
    _require(actor, Perm.CUSTODY_RECORD, site, "record custody hand-offs")
    if order.status in (OrderStatus.REQUESTED, OrderStatus.CANCELLED) or not order.coi:
        raise ValidationError({"order": "Hand-offs are recorded for an accepted order (with its COI)."})
    if collection is not None and collection.order_id != order.pk:
        raise ValidationError({"collection": f"DIN {collection.din} belongs to another order."})
    if kind in DIN_KINDS and collection is None:
        collection = _only_collection(order)
    if batch is not None and batch.order_id != order.pk:
        raise ValidationError({"batch": f"{batch} belongs to another order."})
    place = handoff_site(order=order, kind=kind, collection=collection)
    if site.pk != place.pk:
        raise ValidationError({"site": f"{HandoffKind(kind).label} happens at {place.name} ({place.code}), "
                                       f"not at {site.name}."})
    location = _text(location, "location", "location (room, ward or courier)", 200, required=False)
    notes = _text(notes, "notes", "notes", 4000, required=False)
    presented_raw = str(presented_identifier or "").strip()
    if not presented_raw:
        raise ValidationError({"presented_identifier": "Scan or type the identifier on the label."})
    if len(presented_raw) > 80:
        raise ValidationError({"presented_identifier": "An identifier has at most 80 characters."})
    check = handoff_check(order=order, kind=kind, presented_identifier=presented_raw, collection=collection)

    with transaction.atomic():
        locked = _lock_order(order)
        done = list(locked.handoffs.filter(outcome=HandoffOutcome.COMPLETED).values_list("kind", "collection_id"))
        problem = _sequence_problem(order, kind, collection, done)
        if problem is not None:
            raise ValidationError({"kind": f"Not now: {problem}."})
        if kind == HandoffKind.DISPATCH_TO_HOSPITAL and (holds := dispatch_holds(order)):
            raise ValidationError({"kind": " ".join(holds)})
        if batch is None and kind not in DIN_KINDS[:3]:
            batch = getattr(locked, "batch", None)  # the reverse of Batch.order, if a batch was started
        handoff = Handoff(
            order=order, collection=collection, batch=batch, kind=kind,
            outcome=HandoffOutcome.COMPLETED if check.matches else HandoffOutcome.BLOCKED, site=site,
            location=location, time_zone=site.time_zone, occurred_at=timezone.now(), performed_by=actor,
            performed_by_name=actor.printed_name or actor.username, expected_identifier=check.expected,
            presented_identifier=presented_raw, notes=notes,
        )
        handoff.save()
        record = {"coi": order.coi, "kind": kind, "site": site.code, "location": location,
                  "expected": check.expected, "presented": presented_raw,
                  "din": collection.din if collection is not None else None,
                  "batch": batch.reference if batch is not None else None, "time_zone": site.time_zone}
        if not check.matches:
            deviation = deviation_open(
                actor=actor, site=order.site, kind=DeviationKind.CUSTODY,
                title=f"Identifier mismatch at {HandoffKind(kind).label.lower()} ({order.coi})",
                description=(f"At {HandoffKind(kind).label.lower()} at {site.name}"
                             f"{f' ({location})' if location else ''}, {actor.printed_name or actor.username} "
                             f"scanned {presented_raw!r}; {check.expected} was expected — {check.problem}. "
                             "The hand-off was blocked."),
                source=handoff, order=order, batch=batch,
            )
            handoff.deviation = deviation
            handoff.save(update_fields=["deviation"])
            event_record(actor=actor, event_type=CustodyEvent.HANDOFF_BLOCKED, obj=handoff, site=order.site,
                         reason=f"Identifier mismatch; deviation {deviation.reference}",
                         new={**record, "outcome": HandoffOutcome.BLOCKED.value, "deviation": deviation.reference})
        else:
            event_record(actor=actor, event_type=CustodyEvent.HANDOFF_COMPLETED, obj=handoff, site=order.site,
                         reason=f"{HandoffKind(kind).label}: identifier verified",
                         new={**record, "outcome": HandoffOutcome.COMPLETED.value})
            moves = {HandoffKind.MANUFACTURE_START: OrderStatus.IN_MANUFACTURE,
                     HandoffKind.DISPATCH_TO_HOSPITAL: OrderStatus.DISPATCHED,
                     HandoffKind.INFUSION: OrderStatus.INFUSED}
            if kind in moves:
                _status_move(actor, locked, moves[HandoffKind(kind)], f"{HandoffKind(kind).label} recorded")
                order.status = locked.status
    if not check.matches:
        raise HandoffBlocked(
            f"Blocked: {check.expected} was expected, {presented_raw!r} was presented ({check.problem}). "
            f"The attempt is recorded and deviation {deviation.reference} is open.",
            handoff=handoff, deviation=deviation)
    return handoff


# --- shipments and data loggers ----------------------------------------------------------------------


def _limit(value: Any) -> Decimal | None:
    if value is None:
        return None
    return Decimal(str(value)).quantize(Decimal("0.01"))


def shipment_dispatch(*, actor: User, order: TherapyOrder, leg: str, logger_id: str, reason: str) -> Shipment:
    """Dispatch a shipment with its data logger. The temperature limits of the leg are copied from
    the master-file version effective at the manufacturing site now, so later versions do not
    re-judge this shipment. Apheresis leaves the treating site; product leaves the POCare site."""
    leg = str(leg)
    if leg not in ShipmentLeg.values:
        raise ValidationError({"leg": f"{leg!r} is not a shipping leg; use one of: {', '.join(ShipmentLeg.values)}."})
    origin = order.treating_site if leg == ShipmentLeg.APHERESIS else order.site
    _require(actor, Perm.CUSTODY_RECORD, origin, "dispatch shipments")
    logger_id = _text(logger_id, "logger_id", "data logger's id", 60)
    reason = reason_required(reason)
    if order.status in (OrderStatus.REQUESTED, OrderStatus.CANCELLED, OrderStatus.INFUSED):
        raise ValidationError({"order": f"The order is {OrderStatus(order.status).label.lower()}: nothing is shipped."})
    version = effective_version(site=order.site, product=order.product)
    if version is None:
        raise ValidationError({"leg": (
            f"{order.site.name} has no effective master-file version of {order.product.code}: "
            "there are no transport limits to read the logger against.")})
    limits = ((version.content or {}).get("transport") or {}).get(leg) or {}
    low, high = _limit(limits.get("min")), _limit(limits.get("max"))
    with transaction.atomic():
        shipment = Shipment.objects.create(order=order, leg=leg, logger_id=logger_id, min_celsius=low,
                                           max_celsius=high, dispatched_at=timezone.now(), created_by=actor)
        event_record(actor=actor, event_type=CustodyEvent.SHIPMENT_CREATED, obj=shipment, site=order.site,
                     reason=reason,
                     new={"coi": order.coi, "leg": leg, "logger_id": logger_id, "min_celsius": low,
                          "max_celsius": high, "masterfile_version": version.number, "from_site": origin.code})
    return shipment


def _parse_when(value: Any) -> dt.datetime | None:
    text = str(value or "").strip()
    if not text:
        return None
    if text.endswith(("z", "Z")):
        text = text[:-1] + "+00:00"
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if bounds.datetime_problem(when):  # before any conversion to UTC, which would overflow
        return None
    return when if when.tzinfo is not None and when.utcoffset() is not None else None


#: What a logged temperature can possibly be (°C): absolute zero to 200 °C.
PHYSICAL_CELSIUS = plausibility.UNIT_BOUNDS["°C"]


def logger_rows_parse(rows: Iterable[Any], *, earliest: dt.datetime, latest: dt.datetime,
                      ) -> tuple[list[tuple[dt.datetime, Decimal]], list[str]]:
    """(readings, problems): each problem names the row number (1 = first data row) and the reason.
    A reading is plausible between ``earliest`` (the dispatch less LOGGER_BEFORE_DISPATCH) and
    ``latest`` (now plus CLOCK_SKEW), and between absolute zero and 200 °C."""
    readings: list[tuple[dt.datetime, Decimal]] = []
    problems: list[str] = []
    low, high = (Decimal(str(b)) for b in PHYSICAL_CELSIUS)
    for n, row in enumerate(rows, 1):
        if not isinstance(row, Mapping):
            problems.append(f"row {n}: give timestamp and temperature_c")
            continue
        raw_at, raw_t = row.get("timestamp"), row.get("temperature_c")
        when = _parse_when(raw_at)
        why = []
        if when is None:
            why.append(f"timestamp {str(raw_at or '')[:40]!r} is not an ISO 8601 time with an offset or Z "
                       f"in the years {bounds.YEAR_MIN}–{bounds.YEAR_MAX}")
        else:
            outside_window = plausibility.window_problem(
                when, earliest=earliest, latest=latest,
                what=f"this shipment's logger (its dispatch less "
                     f"{plausibility.duration_text(plausibility.LOGGER_BEFORE_DISPATCH)}, to now plus "
                     f"{plausibility.duration_text(plausibility.CLOCK_SKEW)})")
            if outside_window:
                why.append(f"timestamp {outside_window}")
                when = None
        celsius: Decimal | None = None
        if isinstance(raw_t, bool) or not isinstance(raw_t, str | int | float | Decimal | None):
            raw_t = None
        try:
            celsius = Decimal(str(raw_t).strip()) if raw_t is not None and str(raw_t).strip() else None
        except InvalidOperation:
            celsius = None
        if celsius is None or not celsius.is_finite() or not low <= celsius <= high:
            why.append(f"temperature_c {str(raw_t if raw_t is not None else '')[:20]!r} is not a possible "
                       f"temperature: the physical range is {plausibility.bounds_text(PHYSICAL_CELSIUS, '°C')}")
        if why:
            problems.append(f"row {n}: " + "; ".join(why))
        elif when is not None and celsius is not None:
            readings.append((when, celsius.quantize(Decimal("0.01"))))
    return readings, problems


def _one_per_moment(shipment: Shipment, readings: list[tuple[dt.datetime, Decimal]],
                    ) -> tuple[list[tuple[dt.datetime, Decimal]], int, list[str]]:
    """(new readings, identical repeats skipped, problems). The logger has one temperature per
    moment: a reading that contradicts another at the same instant — in this upload or stored
    before for this shipment — is refused; an identical repeat (a logger read out twice) is
    stored once and otherwise skipped."""
    stored: dict[dt.datetime, Decimal] = dict(shipment.readings.filter(
        at__gte=min(at for at, _ in readings), at__lte=max(at for at, _ in readings)).values_list("at", "celsius"))
    first: dict[dt.datetime, Decimal] = {}
    new: list[tuple[dt.datetime, Decimal]] = []
    problems: list[str] = []
    repeats = 0
    for n, (at, celsius) in enumerate(readings, 1):
        key = at.astimezone(dt.UTC)
        earlier = stored.get(key, first.get(key))
        if earlier is None:
            first[key] = celsius
            new.append((key, celsius))
        elif earlier == celsius:
            repeats += 1
        else:
            where = "already stored" if key in stored else "earlier in this upload"
            problems.append(f"row {n}: timestamp {key:%Y-%m-%dT%H:%M:%SZ}: {celsius} °C contradicts {earlier} °C "
                            f"{where} for the same moment; one reading per moment (correct a stored reading "
                            "beside the original instead)")
    return new, repeats, problems


def _refuse_upload(field: str, problems: list[str]) -> None:
    if problems:
        shown = problems[:50] + ([f"… and {len(problems) - 50} more rows"] if len(problems) > 50 else [])
        raise ValidationError({field: [f"Nothing was stored: {len(problems)} problem(s).", *shown]})


def temperatures_upload(
    *,
    actor: User,
    shipment: Shipment,
    source: str,
    rows: Sequence[Mapping[str, Any]] | None = None,
    csv_text: str | None = None,
) -> TemperatureUpload:
    """Store a data logger's readings (CSV with columns ``timestamp,temperature_c``, or rows from the
    API) with the sha256 of what was received, and judge them against the shipment's limits.
    A malformed row rejects the whole upload (every bad row is listed, nothing is stored); an
    excursion opens a temperature deviation."""
    order = shipment.order
    if not any(access.has_perm(actor, Perm.CUSTODY_RECORD, site_id=s.pk) for s in (order.site, order.treating_site)) \
            or access.is_read_only(actor):
        raise PermissionDenied(f"{actor.username} may not upload logger data for this order.")
    if source not in ("csv", "api"):
        raise ValidationError({"source": "csv or api."})
    if (rows is None) == (csv_text is None):
        raise ValidationError({"rows": "Give either rows or CSV text."})
    field = "rows" if rows is not None else "csv_text"
    if csv_text is not None:
        content = csv_text.encode("utf-8")
        parsed_rows, problems = logger_csv_rows(csv_text)
    else:
        assert rows is not None
        content = json.dumps(list(rows), sort_keys=True, separators=(",", ":"), default=str).encode("utf-8")
        parsed_rows, problems = [dict(r) for r in rows], []
    if not problems and not parsed_rows:
        problems.append("there are no readings")
    if len(parsed_rows) > MAX_READINGS:
        problems.append(f"at most {MAX_READINGS:,} readings per upload")
    readings: list[tuple[dt.datetime, Decimal]] = []
    now = timezone.now()
    repeats = 0
    if not problems:
        readings, problems = logger_rows_parse(parsed_rows, latest=now + plausibility.CLOCK_SKEW,
                                         earliest=shipment.dispatched_at - plausibility.LOGGER_BEFORE_DISPATCH)
    _refuse_upload(field, problems)
    with transaction.atomic():
        # One reading per moment, checked under the shipment's lock so two uploads cannot both pass.
        Shipment.objects.select_for_update().filter(pk=shipment.pk).first()
        readings, repeats, problems = _one_per_moment(shipment, readings)
        if not problems and not readings:
            problems.append(f"all {repeats} readings are already stored for this shipment; nothing new to store")
        _refuse_upload(field, problems)
        low, high = shipment.min_celsius, shipment.max_celsius
        found = excursions_find(readings, low, high)
        upload = TemperatureUpload.objects.create(
            shipment=shipment, uploaded_at=now, uploaded_by=actor, source=source, readings=len(readings),
            sha256=hashlib.sha256(content).hexdigest(), excursions=[e.as_record() for e in found])
        TemperatureReading.objects.bulk_create([
            TemperatureReading(upload=upload, shipment=shipment, at=at, celsius=celsius,
                               in_limits=not outside(celsius, low, high))
            for at, celsius in sorted(readings, key=lambda r: r[0])
        ], batch_size=1000)
        if found:
            spans = "; ".join(f"{e.start.isoformat()} to {e.end.isoformat()}: {e.count} reading(s), "
                              f"{'highest' if e.side == 'high' else 'lowest'} {e.extreme} °C" for e in found)
            limits = f"{low if low is not None else '—'} to {high if high is not None else '—'} °C"
            upload.deviation = deviation_open(
                actor=actor, site=order.site, kind=DeviationKind.TEMPERATURE,
                title=f"Temperature excursion: {shipment.get_leg_display().lower()} ({order.coi})",
                description=(f"Logger {shipment.logger_id} read outside the limits {limits} in {len(found)} "
                             f"span(s): {spans}."),
                source=upload, order=order,
            )
            upload.save(update_fields=["deviation"])
        event_record(actor=actor, event_type=CustodyEvent.TEMPERATURES_UPLOADED, obj=upload, site=order.site,
                     reason=f"Logger {shipment.logger_id} readings uploaded ({source})",
                     new={"coi": order.coi, "shipment": shipment.pk, "readings": len(readings),
                          "repeats_skipped": repeats, "sha256": upload.sha256, "excursions": upload.excursions,
                          "deviation": upload.deviation.reference if upload.deviation else None})
    return upload


def temperature_correct(*, actor: User, reading: TemperatureReading, celsius: Any, reason: str,
                        credentials: SigningCredentials) -> TemperatureReadingCorrection:
    """Correct a logged temperature beside the original (CH4-9, DI-ALCOA): ``celsius`` is the
    corrected value, or ``None`` to mark the reading invalid with no replacement (a logger fault,
    a reading taken before the logger was in the shipper). With a reason and the corrector's
    signature (authored); once per reading. The reading, and what its upload found, stay as they
    were; the order page shows both."""
    shipment = reading.shipment
    order = shipment.order
    if not any(access.has_perm(actor, Perm.CUSTODY_RECORD, site_id=s.pk) for s in (order.site, order.treating_site)) \
            or access.is_read_only(actor):
        raise PermissionDenied(f"{actor.username} may not correct logger data for this order.")
    reason = reason_required(reason)
    value: Decimal | None = None
    if celsius is not None and str(celsius).strip():
        low, high = (Decimal(str(b)) for b in PHYSICAL_CELSIUS)
        try:
            value = Decimal(str(celsius).strip().replace(",", "."))
        except InvalidOperation:
            value = None
        if value is None or not value.is_finite() or not low <= value <= high:
            raise ValidationError({"celsius": f"{str(celsius)[:20]!r} is not a possible temperature: the physical "
                                              f"range is {plausibility.bounds_text(PHYSICAL_CELSIUS, '°C')}."})
        value = value.quantize(Decimal("0.01"))
        if value == reading.celsius:
            raise ValidationError({"celsius": "The corrected value is the same as the reading it corrects."})
    proof = signing_authenticate(actor=actor, credentials=credentials)
    with transaction.atomic():
        TemperatureReading.objects.select_for_update().filter(pk=reading.pk).first()
        if TemperatureReadingCorrection.objects.filter(reading=reading).exists():
            raise ValidationError({"reading": "This reading has already been corrected; the correction stands "
                                              "beside it."})
        correction = TemperatureReadingCorrection.objects.create(
            reading=reading, celsius=value, reason=reason, corrected_by=actor, corrected_at=timezone.now())
        event_record(actor=actor, event_type=CustodyEvent.TEMPERATURE_CORRECTED, obj=correction, site=order.site,
                     reason=reason, old={"reading": reading.pk, "celsius": reading.celsius, "at": reading.at},
                     new={"coi": order.coi, "shipment": shipment.pk, "logger_id": shipment.logger_id,
                          "celsius": value, "invalid": value is None})
        signature_apply(proof=proof, record=correction, meaning=Meaning.AUTHORED, site=order.site, reason=reason)
    return correction


def logger_csv_rows(text: str) -> tuple[list[dict[str, str]], list[str]]:
    """The CSV's data rows as dicts, or the problems with its header."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        return [], ["the file is empty"]
    except csv.Error as exc:
        return [], [f"header: {exc}"]
    if "timestamp" not in header or "temperature_c" not in header:
        return [], [f"header: the columns are timestamp,temperature_c (found {','.join(header)[:80] or 'none'})"]
    it, tc = header.index("timestamp"), header.index("temperature_c")
    rows: list[dict[str, str]] = []
    problems: list[str] = []
    try:
        for n, cells in enumerate(reader, 1):
            if not any(c.strip() for c in cells):
                problems.append(f"row {n}: empty line")
                continue
            if len(cells) != len(header):
                problems.append(f"row {n}: {len(cells)} columns, the header has {len(header)}")
                continue
            rows.append({"timestamp": cells[it], "temperature_c": cells[tc]})
            if len(rows) > MAX_READINGS:
                break
    except csv.Error as exc:
        problems.append(f"row {len(rows) + len(problems) + 1}: {exc}")
    if problems:
        return rows, problems
    return rows, []


# --- labels ---------------------------------------------------------------------------------------------


def labels_print(*, actor: User, order: TherapyOrder, containers: Sequence[str], fmt: str) -> str:
    """Record that labels were printed (who, which containers, the hash of their content) and
    return the content hash. The labels themselves are built by :mod:`pocare.custody.labels`."""
    if not any(access.has_perm(actor, Perm.CUSTODY_RECORD, site_id=s.pk) for s in (order.site, order.treating_site)) \
            or access.is_read_only(actor):
        raise PermissionDenied(f"{actor.username} may not print labels for this order.")
    if fmt not in ("svg", "pdf"):
        raise ValidationError({"format": "svg or pdf."})
    contents = [label_content(order, c).as_record() for c in containers]
    digest = content_hash({"labels": contents})
    with transaction.atomic():
        event_record(actor=actor, event_type=CustodyEvent.LABEL_PRINTED, obj=order, site=order.site,
                     reason=f"{len(contents)} label(s) printed as {fmt}",
                     new={"coi": order.coi, "containers": list(containers), "format": fmt, "content_hash": digest})
    return digest
