"""Booking a patient's chain of slots (docs/patients.md): apheresis at the treating hospital, a
manufacturing unit over the process duration at a site, QC and release, an infusion slot — proposed
from real capacity, booked together or not at all.

- :func:`slots_open` — the navigator opens apheresis or infusion slots at their hospital.
- :func:`chain_propose` — for a referral, each candidate site's earliest feasible chain, ranked by the
  earliest infusion, then travel (planning's travel model, asked through ``patients.travel_minutes``).
  The data are read in a fixed number of queries; the computation is :mod:`pocare.patients.chain`.
- :func:`chain_book` — one transaction: the unit row locked, the unit re-checked free over the window
  against active bookings and running batches, the booking created (the database's partial unique
  constraints refuse a slot another navigator just took), the therapy order created for the pseudonym
  and linked, the referral moved to BOOKED.
- :func:`chain_rebook` moves the chain (the old booking MOVED, ``replaced_by`` the new), to another
  manufacturing site too (the old site's therapy order cancelled, a new one made, in the same transaction),
  and :func:`booking_cancel` cancels it; both with a reason, and both refused once material was collected
  or a batch started for the order.

Slots booked here are the ones ``batch_start`` uses: the patients app answers the question
``manufacturing.unit_reservations`` with the manufacturing window of every active booking.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from pocare.accounts import selectors as access
from pocare.accounts.roles import Perm
from pocare.accounts.services import require_perm
from pocare.custody.models import OrderStatus, TherapyOrder
from pocare.custody.services import (
    APHERESIS_STABILITY,
    order_cancel_problems,
    therapy_order_cancel,
    therapy_order_create,
)
from pocare.ledger.services import event_record, reason_required
from pocare.manufacturing.models import Batch, BatchStatus
from pocare.manufacturing.questions import UnitReservation
from pocare.masterfile import schema
from pocare.masterfile.selectors import effective_versions_by_site
from pocare.network.models import ManufacturingUnit, Site, SiteKind, SiteStatus, UnitStatus
from pocare.patients import chain
from pocare.patients.events import PatientEvent
from pocare.patients.models import Booking, BookingStatus, ClinicSlot, Referral, SlotKind, Stage
from pocare.patients.questions import travel_minutes

if TYPE_CHECKING:
    from pocare.accounts.models import User

#: QC and release after manufacture when the master file does not say (``process.release_lead_hours``):
#: three days, a rapid sterility test and the QP's certification *(estimate)*.
DEFAULT_RELEASE_LEAD = dt.timedelta(hours=72)
#: How long the material may wait for the start of manufacture after the end of collection: the
#: custody default for cooled fresh apheresis.
MATERIAL_HOLD = APHERESIS_STABILITY
#: How far ahead slots are opened and proposed.
HORIZON = dt.timedelta(days=366)
MAX_SLOTS = 2_000
SLOT_MINUTES = (15, 24 * 60)
EVERY_MINUTES = (15, 31 * 24 * 60)

_TOKEN = re.compile(r"^(\d{1,10})-(\d{1,10})-(\d{1,10})-(\d{1,10})-(\d{1,12})$")


def _aware(value: Any, field: str, *, now: dt.datetime) -> dt.datetime:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValidationError({field: "Give the date and time as YYYY-MM-DD HH:MM."}) from None
    if not isinstance(value, dt.datetime):
        raise ValidationError({field: "Give the date and time as YYYY-MM-DD HH:MM."})
    if timezone.is_naive(value):
        raise ValidationError({field: "Give the time with its time zone."})
    if not now - dt.timedelta(days=1) <= value <= now + HORIZON:
        raise ValidationError({field: f"Give a moment between yesterday and {(now + HORIZON):%Y-%m-%d}."})
    return value


def _minutes(value: Any, field: str, bounds: tuple[int, int], what: str) -> dt.timedelta:
    if isinstance(value, dt.timedelta):
        minutes = value.total_seconds() / 60
    else:
        try:
            minutes = float(str(value)[:12])
        except ValueError:
            raise ValidationError({field: f"Give the {what} in minutes."}) from None
    if not minutes == minutes or not bounds[0] <= minutes <= bounds[1] or minutes != int(minutes):
        raise ValidationError({field: f"The {what} is a whole number of minutes from {bounds[0]} to {bounds[1]:,}."})
    return dt.timedelta(minutes=int(minutes))


def _hospital(site: Site) -> None:
    if site.kind == SiteKind.CONTROL:
        raise ValidationError({"site": "The Control Site has no clinic; open slots at a hospital."})


def slots_open(
    *, actor: User, site: Site, kind: str, starts: Any, ends: Any, every: Any, duration: Any, reason: str
) -> list[ClinicSlot]:
    """Open ``kind`` (apheresis or infusion) slots at the hospital ``site`` from ``starts`` up to
    ``ends``, one every ``every`` lasting ``duration``: at most a year ahead and 2,000 slots at once.
    A slot already open at the same moment is kept as it is."""
    require_perm(actor, Perm.PATIENTS_BOOK, site=site)
    _hospital(site)
    if kind not in SlotKind.values:
        raise ValidationError({"kind": f"Choose one of {', '.join(SlotKind.values)}."})
    now = timezone.now()
    starts = _aware(starts, "starts", now=now)
    ends = _aware(ends, "ends", now=now)
    every = _minutes(every, "every", EVERY_MINUTES, "time between slots")
    duration = _minutes(duration, "duration", SLOT_MINUTES, "slot's length")
    if ends <= starts:
        raise ValidationError({"ends": "The last slot starts after the first."})
    if ends - starts > HORIZON:
        raise ValidationError({"ends": "Open at most a year of slots at once."})
    if duration > every:
        raise ValidationError(
            {"duration": "A slot ends before the next begins: the length is at most the time between slots."}
        )
    count = int((ends - starts) / every) + 1
    if count > MAX_SLOTS:
        raise ValidationError({"every": f"That makes {count:,} slots; open at most {MAX_SLOTS:,} at once."})
    reason = reason_required(reason)
    moments = [starts + i * every for i in range(count)]
    with transaction.atomic():
        taken = set(
            ClinicSlot.objects.filter(site=site, kind=kind, starts_at__in=moments).values_list("starts_at", flat=True)
        )
        created = ClinicSlot.objects.bulk_create(
            [ClinicSlot(site=site, kind=kind, starts_at=m, ends_at=m + duration) for m in moments if m not in taken]
        )
        event_record(
            actor=actor,
            event_type=PatientEvent.SLOTS_OPENED,
            site=site,
            reason=reason,
            object_type="patients.clinicslot",
            object_repr=f"{len(created)} {kind} slots at {site.code}",
            new={
                "kind": kind,
                "opened": len(created),
                "already_open": len(taken),
                "first": starts,
                "last": moments[-1],
                "every_minutes": every.total_seconds() / 60,
                "duration_minutes": duration.total_seconds() / 60,
            },
        )
    return created


# --- what the master file says ------------------------------------------------------------------


def process_duration(content: dict[str, Any]) -> dt.timedelta:
    """How long a unit is kept for one batch: the master file's ``max_duration_days``, or else the
    steps' expected durations added up."""
    days = (content.get("process") or {}).get("max_duration_days")
    if days:
        return dt.timedelta(days=float(days))
    return dt.timedelta(minutes=sum(int(s.get("expected_duration_min") or 0) for s in schema.iter_steps(content)))


def release_lead(content: dict[str, Any]) -> dt.timedelta:
    """QC and release after manufacture: ``process.release_lead_hours``, or :data:`DEFAULT_RELEASE_LEAD`."""
    hours = (content.get("process") or {}).get("release_lead_hours")
    return DEFAULT_RELEASE_LEAD if hours is None else dt.timedelta(hours=float(hours))


# --- proposing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Proposal:
    """One site's chain for a referral, with the records it books."""

    site: Site
    unit: ManufacturingUnit
    apheresis_slot: ClinicSlot
    infusion_slot: ClinicSlot
    manufacturing_from: dt.datetime
    manufacturing_to: dt.datetime
    released_at: dt.datetime
    travel_minutes: float

    @property
    def token(self) -> str:
        """What the booking form posts back: the ids and the manufacturing start (epoch minutes)."""
        return (
            f"{self.site.pk}-{self.unit.pk}-{self.apheresis_slot.pk}-{self.infusion_slot.pk}-"
            f"{int(self.manufacturing_from.timestamp() // 60)}"
        )

    def describe(self) -> str:
        return (
            f"{self.site.code}: apheresis {self.apheresis_slot.starts_at:%Y-%m-%d %H:%M}, manufacture "
            f"{self.manufacturing_from:%Y-%m-%d} to {self.manufacturing_to:%Y-%m-%d}, infusion "
            f"{self.infusion_slot.starts_at:%Y-%m-%d %H:%M} UTC"
        )


def _epoch_minutes(value: dt.datetime) -> float:
    return value.timestamp() / 60


def _from_minutes(value: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(value * 60, tz=dt.UTC)


def may_book(user: Any, referral: Referral) -> bool:
    return access.has_perm(
        user, Perm.PATIENTS_BOOK, site_id=referral.patient.treating_site_id
    ) and not access.is_read_only(user)


def _free_slots(hospital: Site, kind: str, after: dt.datetime, *, keep: Booking | None) -> QuerySet[ClinicSlot]:
    """The hospital's slots of ``kind`` from ``after`` on that no active booking holds (those of
    ``keep``, the booking being moved, count as free)."""
    active = Booking.objects.filter(status=BookingStatus.ACTIVE)
    if keep is not None:
        active = active.exclude(pk=keep.pk)
    field = "apheresis_slot" if kind == SlotKind.APHERESIS else "infusion_slot"
    return (
        ClinicSlot.objects.filter(site=hospital, kind=kind, starts_at__gte=after, starts_at__lt=after + HORIZON)
        .exclude(Exists(active.filter(**{field: OuterRef("pk")})))
        .order_by("starts_at", "pk")
    )


@dataclass(frozen=True)
class _SiteTerms:
    site: Site
    duration: dt.timedelta
    lead: dt.timedelta
    travel: float


def _site_terms(referral: Referral, sites: QuerySet[Site], *, at: dt.datetime) -> list[_SiteTerms]:
    """The sites able to make the referral's product now (an effective master-file version), with
    the process duration and release lead of that version and the travel minutes from the hospital."""
    hospital = referral.patient.treating_site
    _, rows = effective_versions_by_site(referral.product, sites=sites, at=at)
    able = [row for row in rows if row.effective is not None]
    travel = travel_minutes(hospital, [row.site for row in able])
    return [
        _SiteTerms(
            row.site,
            process_duration(row.effective.content),
            release_lead(row.effective.content),
            travel.get(row.site.pk, 0.0),
        )
        for row in able
        if row.effective is not None
    ]


def _candidate_sites() -> QuerySet[Site]:
    return Site.objects.filter(status=SiteStatus.ACTIVE).exclude(kind=SiteKind.CONTROL)


def _busy(
    units: list[int], terms: dict[int, _SiteTerms], *, keep: Booking | None, now: dt.datetime
) -> dict[int, list[tuple[float, float]]]:
    """Each unit's taken intervals (epoch minutes): active bookings' manufacturing windows and the
    batches running on it, each until its start plus the site's process duration (at least now)."""
    busy: dict[int, list[tuple[float, float]]] = defaultdict(list)
    bookings = Booking.objects.filter(unit_id__in=units, status=BookingStatus.ACTIVE)
    if keep is not None:
        bookings = bookings.exclude(pk=keep.pk)
    for unit_id, starts, ends in bookings.values_list("unit_id", "manufacturing_from", "manufacturing_to"):
        busy[unit_id].append((_epoch_minutes(starts), _epoch_minutes(ends)))
    for unit_id, site_id, started in Batch.objects.filter(
        unit_id__in=units, status=BatchStatus.IN_PROGRESS
    ).values_list("unit_id", "site_id", "started_at"):
        duration = terms[site_id].duration if site_id in terms else dt.timedelta(days=30)
        busy[unit_id].append((_epoch_minutes(started), _epoch_minutes(max(started + duration, now))))
    return busy


def chain_propose(
    *, user: Any, referral: Referral, after: dt.datetime | None = None, moving: Booking | None = None
) -> list[Proposal]:
    """Each candidate site's earliest feasible chain for ``referral`` from ``after`` (default now),
    earliest infusion first, then the shorter travel. Empty for a user who may not book for the
    referral's hospital. ``moving``: the active booking to be moved (its slots and unit count as free).
    A fixed number of queries, however many sites, units and slots."""
    if not may_book(user, referral):
        return []
    now = timezone.now()
    after = max(after or now, now)
    hospital = referral.patient.treating_site
    terms = {t.site.pk: t for t in _site_terms(referral, _candidate_sites(), at=now)}
    units = list(
        ManufacturingUnit.objects.filter(site_id__in=terms, status=UnitStatus.QUALIFIED)
        .select_related("site")
        .order_by("site_id", "serial")
    )
    busy = _busy([u.pk for u in units], terms, keep=moving, now=now)
    aph = list(_free_slots(hospital, SlotKind.APHERESIS, after, keep=moving))
    inf = list(_free_slots(hospital, SlotKind.INFUSION, after, keep=moving))
    by_site: dict[int, list[ManufacturingUnit]] = defaultdict(list)
    for unit in units:
        by_site[unit.site_id].append(unit)
    # One computation per (duration, lead): sites under the same master-file version share it.
    groups: dict[tuple[dt.timedelta, dt.timedelta], list[chain.Candidate]] = defaultdict(list)
    for site_id, t in terms.items():
        groups[(t.duration, t.lead)].append(
            chain.Candidate(
                site_id, t.travel, tuple(chain.Unit(u.pk, tuple(busy.get(u.pk, ()))) for u in by_site.get(site_id, ()))
            )
        )
    aph_slots = [chain.Slot(s.pk, _epoch_minutes(s.starts_at), _epoch_minutes(s.ends_at)) for s in aph]
    inf_slots = [chain.Slot(s.pk, _epoch_minutes(s.starts_at), _epoch_minutes(s.ends_at)) for s in inf]
    found: list[chain.Chain] = []
    for (duration, lead), candidates in groups.items():
        problem = chain.Problem(
            duration=duration.total_seconds() / 60,
            release_lead=lead.total_seconds() / 60,
            hold=MATERIAL_HOLD.total_seconds() / 60,
            after=_epoch_minutes(after),
        )
        found.extend(chain.propose(problem, apheresis=aph_slots, infusion=inf_slots, sites=candidates))
    found.sort(key=chain.Chain.rank)
    slots = {s.pk: s for s in aph + inf}
    unit_by_pk = {u.pk: u for u in units}
    return [
        Proposal(
            terms[c.site].site,
            unit_by_pk[c.unit],
            slots[c.apheresis.key],
            slots[c.infusion.key],
            _from_minutes(c.manufacturing_start),
            _from_minutes(c.manufacturing_end),
            _from_minutes(c.ready),
            c.travel,
        )
        for c in found
    ]


def proposal_from_token(*, user: Any, referral: Referral, token: str) -> Proposal:
    """The proposal a booking form posted back (:attr:`Proposal.token`), its records read again.
    Whether it is still feasible is checked when it is booked."""
    if not may_book(user, referral):
        raise PermissionDenied("You may not book for this hospital.")
    match = _TOKEN.match(str(token or "")[:80])
    if match is None:
        raise ValidationError({"proposal": "Choose one of the proposed chains."})
    site_id, unit_id, aph_id, inf_id, start = (int(g) for g in match.groups())
    hospital = referral.patient.treating_site
    unit = ManufacturingUnit.objects.select_related("site").filter(pk=unit_id, site_id=site_id).first()
    slots = {s.pk: s for s in ClinicSlot.objects.filter(pk__in=[aph_id, inf_id], site=hospital)}
    aph, inf = slots.get(aph_id), slots.get(inf_id)
    if unit is None or aph is None or inf is None or aph.kind != SlotKind.APHERESIS or inf.kind != SlotKind.INFUSION:
        raise ValidationError({"proposal": "That chain is not one of this hospital's; choose a proposed chain."})
    terms = _site_terms(referral, _candidate_sites().filter(pk=site_id), at=timezone.now())
    if not terms:
        raise ValidationError({"proposal": f"{unit.site.code} cannot make {referral.product.code} now."})
    t = terms[0]
    try:
        starts = _from_minutes(start)
    except (OverflowError, OSError, ValueError):
        raise ValidationError({"proposal": "Choose one of the proposed chains."}) from None
    ends = starts + t.duration
    return Proposal(unit.site, unit, aph, inf, starts, ends, ends + t.lead, t.travel)


# --- booking --------------------------------------------------------------------------------------


class _Taken(Exception):
    """A slot or the unit went to another booking while this one was being made."""


def _unit_problems(proposal: Proposal, *, keep: Booking | None, now: dt.datetime) -> list[str]:
    """Whether the proposal is still feasible, with the unit's intervals read now (under its lock)."""
    terms = {
        proposal.site.pk: _SiteTerms(
            proposal.site,
            proposal.manufacturing_to - proposal.manufacturing_from,
            proposal.released_at - proposal.manufacturing_to,
            proposal.travel_minutes,
        )
    }
    busy = _busy([proposal.unit.pk], terms, keep=keep, now=now)
    unit = chain.Unit(proposal.unit.pk, tuple(busy.get(proposal.unit.pk, ())))
    site = chain.Candidate(proposal.site.pk, proposal.travel_minutes, (unit,))
    t = terms[proposal.site.pk]
    problem = chain.Problem(
        duration=t.duration.total_seconds() / 60,
        release_lead=t.lead.total_seconds() / 60,
        hold=MATERIAL_HOLD.total_seconds() / 60,
        after=_epoch_minutes(now),
    )
    planned = chain.Chain(
        proposal.site.pk,
        proposal.travel_minutes,
        chain.Slot(
            proposal.apheresis_slot.pk,
            _epoch_minutes(proposal.apheresis_slot.starts_at),
            _epoch_minutes(proposal.apheresis_slot.ends_at),
        ),
        proposal.unit.pk,
        _epoch_minutes(proposal.manufacturing_from),
        _epoch_minutes(proposal.manufacturing_to),
        _epoch_minutes(proposal.released_at),
        chain.Slot(
            proposal.infusion_slot.pk,
            _epoch_minutes(proposal.infusion_slot.starts_at),
            _epoch_minutes(proposal.infusion_slot.ends_at),
        ),
    )
    return chain.feasibility_problems(problem, planned, site)


def _slot_taken(proposal: Proposal, keep: Booking | None) -> bool:
    active = Booking.objects.filter(status=BookingStatus.ACTIVE)
    if keep is not None:
        active = active.exclude(pk=keep.pk)
    return active.filter(Q(apheresis_slot=proposal.apheresis_slot) | Q(infusion_slot=proposal.infusion_slot)).exists()


def _booking_values(booking: Booking) -> dict[str, Any]:
    """What the ledger keeps of a booking: pseudonymous (no identifying data), times in UTC."""
    return {
        "referral": booking.referral_id,
        "manufacturing_site": booking.manufacturing_site.code,
        "unit": booking.unit.serial,
        "apheresis_at": booking.apheresis_slot.starts_at,
        "manufacturing_from": booking.manufacturing_from,
        "manufacturing_to": booking.manufacturing_to,
        "infusion_at": booking.infusion_slot.starts_at,
        "status": booking.status,
    }


def _book(*, actor: User, referral: Referral, proposal: Proposal, reason: str, moving: Booking | None) -> Booking:
    """The shared part of booking and moving, inside the caller's transaction."""
    now = timezone.now()
    ManufacturingUnit.objects.select_for_update().get(pk=proposal.unit.pk)  # one booking of a unit at a time
    unit = ManufacturingUnit.objects.get(pk=proposal.unit.pk)
    if unit.status != UnitStatus.QUALIFIED or unit.site_id != proposal.site.pk:
        raise ValidationError({"proposal": f"{unit} is not a qualified unit of {proposal.site.code} any more."})
    if _slot_taken(proposal, moving):
        raise _Taken("its apheresis or infusion slot")
    problems = _unit_problems(proposal, keep=moving, now=now)
    if problems:
        if problems == ["the unit is taken during the manufacturing window"]:
            raise _Taken("its manufacturing unit")
        raise ValidationError({"proposal": "This chain is no longer feasible: " + "; ".join(problems) + "."})
    try:
        with transaction.atomic():
            return Booking.objects.create(
                referral=referral,
                apheresis_slot=proposal.apheresis_slot,
                manufacturing_site=proposal.site,
                unit=unit,
                manufacturing_from=proposal.manufacturing_from,
                manufacturing_to=proposal.manufacturing_to,
                infusion_slot=proposal.infusion_slot,
                status=BookingStatus.ACTIVE,
                reason=reason,
                booked_by=actor,
                booked_at=now,
            )
    except IntegrityError:
        raise _Taken("its apheresis or infusion slot") from None


def _taken_message(user: Any, referral: Referral, what: str, moving: Booking | None = None) -> ValidationError:
    following = chain_propose(user=user, referral=referral, moving=moving)
    nxt = f" The next proposal: {following[0].describe()}." if following else " No other chain is free now."
    return ValidationError({"proposal": f"This chain was just taken: {what} went to another booking.{nxt}"})


def _locked_referral(referral: Referral) -> Referral:
    return (
        Referral.objects.select_for_update(of=("self",))
        .select_related("patient__treating_site", "product", "order__site")
        .get(pk=referral.pk)
    )


def _still_movable(referral: Referral, what: str) -> None:
    """Refuse to move or cancel the chain once something irreversible happened to the referral's
    therapy order (material collected, a batch started), naming it; the order row stays locked until
    the caller's transaction ends, so nothing arrives meanwhile."""
    order = referral.order
    if order is None or order.status == OrderStatus.CANCELLED:
        return
    if problems := order_cancel_problems(order, lock=True):
        raise ValidationError(
            {
                "booking": f"The chain is no longer {what}: for therapy order "
                f"{order.coi or order.pk}, {'; '.join(problems)}."
            }
        )


def _order_at(*, actor: User, referral: Referral, order: TherapyOrder | None, site: Site, hospital: Site, reason: str,
              cancel_reason: str) -> TherapyOrder:
    """The referral's therapy order at ``site``: ``order`` if it is live there; otherwise a new one, the live one at
    another site cancelled first (``therapy_order_cancel`` refuses, naming why, once something irreversible
    happened to it)."""
    if order is not None and order.status != OrderStatus.CANCELLED and order.site_id == site.pk:
        return order
    if order is not None and order.status != OrderStatus.CANCELLED:
        therapy_order_cancel(actor=actor, order=order, reason=cancel_reason)
    return therapy_order_create(actor=actor, site=site, treating_site=hospital, product=referral.product,
                                recipient_id=referral.patient.pseudonym, recipient_weight_kg=referral.weight_kg,
                                indication=referral.indication, reason=reason)


def chain_book(*, actor: User, referral: Referral, proposal: Proposal, reason: str) -> Booking:
    """Book ``proposal`` for a consented referral: apheresis, manufacturing slot and infusion
    together or nothing; the therapy order for the patient's pseudonym at the manufacturing site is
    created (or the referral's own reused at that site; an own order at another site, left by a cancelled
    chain, is cancelled in the same transaction) and the referral is BOOKED."""
    hospital = referral.patient.treating_site
    require_perm(actor, Perm.PATIENTS_BOOK, site=hospital)
    reason = reason_required(reason)
    try:
        with transaction.atomic():
            referral = _locked_referral(referral)
            if referral.stage != Stage.CONSENTED:
                raise ValidationError(
                    {
                        "proposal": f"The referral is {referral.get_stage_display().lower()}; a chain "
                        "is booked once the patient has consented."
                    }
                )
            order = referral.order
            old_order = order.pk if order is not None else None
            booking = _book(actor=actor, referral=referral, proposal=proposal, reason=reason, moving=None)
            # Booked again after a cancelled chain, at another site: the order there steps aside, or the
            # refusal names what happened to it.
            order = _order_at(actor=actor, referral=referral, order=order, site=proposal.site, hospital=hospital,
                              reason=reason, cancel_reason=f"Booked at {proposal.site.code}: {reason}")
            old_stage = referral.stage
            referral.order, referral.stage, referral.stage_changed_at = order, Stage.BOOKED, booking.booked_at
            referral.save(update_fields=["order", "stage", "stage_changed_at"])
            event_record(
                actor=actor,
                event_type=PatientEvent.BOOKED,
                obj=booking,
                site=hospital,
                reason=reason,
                object_repr=f"Booking {booking.pk} of {referral.patient.pseudonym}",
                old={"stage": old_stage, "order": old_order},
                new={**_booking_values(booking), "order": order.pk, "stage": Stage.BOOKED},
            )
    except _Taken as taken:
        raise _taken_message(actor, referral, str(taken)) from None
    return booking


def chain_rebook(*, actor: User, booking: Booking, proposal: Proposal, reason: str) -> Booking:
    """Move an active booking to ``proposal`` with a reason: the old booking becomes MOVED, ``replaced_by``
    the new one. To another manufacturing site (:func:`chain_propose` with ``moving`` proposes every site), in
    the same transaction, the therapy order at the old site is cancelled (``custody.therapy_order_cancel``)
    and a new one is made at the new site. Refused, naming why, once material was collected or a batch
    started for the order: nothing moves, at any site."""
    referral = booking.referral
    hospital = referral.patient.treating_site
    require_perm(actor, Perm.PATIENTS_BOOK, site=hospital)
    reason = reason_required(reason)
    try:
        with transaction.atomic():
            referral = _locked_referral(referral)
            old = Booking.objects.select_for_update().get(pk=booking.pk)
            if old.status != BookingStatus.ACTIVE:
                raise ValidationError(
                    {"booking": f"This booking is {old.get_status_display().lower()}; move the active one."}
                )
            if referral.stage != Stage.BOOKED:
                raise ValidationError(
                    {
                        "booking": f"The referral is {referral.get_stage_display().lower()}: the chain "
                        "moves only before the apheresis."
                    }
                )
            _still_movable(referral, "moved")
            # The old booking steps aside first, so its slots and unit are free for the new one.
            old.status = BookingStatus.MOVED
            old.save(update_fields=["status"])
            new = _book(actor=actor, referral=referral, proposal=proposal, reason=reason, moving=old)
            old.replaced_by = new
            old.save(update_fields=["replaced_by"])
            order = referral.order
            old_order = order.pk if order is not None else None
            moved = _order_at(actor=actor, referral=referral, order=order, site=proposal.site, hospital=hospital,
                              reason=reason, cancel_reason=f"Moved to {proposal.site.code}: {reason}")
            if moved != order:
                referral.order = moved
                referral.save(update_fields=["order"])
            event_record(
                actor=actor,
                event_type=PatientEvent.REBOOKED,
                obj=new,
                site=hospital,
                reason=reason,
                object_repr=f"Booking {new.pk} of {referral.patient.pseudonym}",
                old={**_booking_values(old), "status": BookingStatus.ACTIVE, "booking": old.pk, "order": old_order},
                new={
                    **_booking_values(new),
                    "replaces": old.pk,
                    "order": referral.order.pk if referral.order else None,
                },
            )
    except _Taken as taken:
        raise _taken_message(actor, referral, str(taken), booking) from None
    return new


def booking_cancel(*, actor: User, booking: Booking, reason: str) -> Booking:
    """Cancel an active booking before the apheresis: its slots and unit are free again and the
    referral goes back to CONSENTED (its therapy order stays, for a new booking at the same site).
    Refused, naming why, once material was collected or a batch started for the order."""
    referral = booking.referral
    hospital = referral.patient.treating_site
    require_perm(actor, Perm.PATIENTS_BOOK, site=hospital)
    reason = reason_required(reason)
    with transaction.atomic():
        referral = _locked_referral(referral)
        booking = (
            Booking.objects.select_for_update()
            .select_related("manufacturing_site", "unit", "apheresis_slot", "infusion_slot")
            .get(pk=booking.pk)
        )
        if booking.status != BookingStatus.ACTIVE:
            raise ValidationError({"booking": f"This booking is {booking.get_status_display().lower()} already."})
        if referral.stage != Stage.BOOKED:
            raise ValidationError(
                {
                    "booking": f"The referral is {referral.get_stage_display().lower()}: a chain is "
                    "cancelled only before the apheresis."
                }
            )
        _still_movable(referral, "cancelled")
        booking.status = BookingStatus.CANCELLED
        booking.save(update_fields=["status"])
        referral.stage, referral.stage_changed_at = Stage.CONSENTED, timezone.now()
        referral.save(update_fields=["stage", "stage_changed_at"])
        event_record(
            actor=actor,
            event_type=PatientEvent.BOOKING_CANCELLED,
            obj=booking,
            site=hospital,
            reason=reason,
            object_repr=f"Booking {booking.pk} of {referral.patient.pseudonym}",
            old={"status": BookingStatus.ACTIVE, "stage": Stage.BOOKED},
            new={"status": BookingStatus.CANCELLED, "stage": Stage.CONSENTED},
        )
    return booking


# --- reads ----------------------------------------------------------------------------------------


def bookings_of(*, user: Any, referral: Referral) -> list[Booking]:
    """The referral's bookings, newest first, for those who see the hospital's patients."""
    if not access.has_perm(user, Perm.PATIENTS_VIEW, site_id=referral.patient.treating_site_id):
        return []
    return list(
        referral.bookings.select_related("manufacturing_site", "unit", "apheresis_slot", "infusion_slot", "booked_by")
    )


def slots_of(*, user: Any, site: Site, starts: dt.datetime, days: int = 28) -> list[tuple[ClinicSlot, bool]]:
    """The hospital's slots from ``starts`` over ``days``, each with whether an active booking holds it."""
    if not access.has_perm(user, Perm.PATIENTS_VIEW, site_id=site.pk):
        return []
    active = Booking.objects.filter(status=BookingStatus.ACTIVE)
    qs = (
        ClinicSlot.objects.filter(site=site, starts_at__gte=starts, starts_at__lt=starts + dt.timedelta(days=days))
        .annotate(
            held=Exists(active.filter(apheresis_slot=OuterRef("pk")))
            | Exists(active.filter(infusion_slot=OuterRef("pk")))
        )
        .order_by("starts_at", "kind")
    )
    return [(s, bool(s.held)) for s in qs[:MAX_SLOTS]]


def unit_reservations(*, units: list[int], at: dt.datetime, order: Any = None) -> list[UnitReservation]:
    """The patients app's answer to ``manufacturing.unit_reservations``: the active bookings'
    manufacturing windows on ``units`` over ``at``, and ``order``'s own whenever it is."""
    over = Q(manufacturing_from__lte=at, manufacturing_to__gt=at)
    if order is not None:
        over |= Q(referral__order=order)
    rows = Booking.objects.filter(over, unit_id__in=units, status=BookingStatus.ACTIVE).values_list(
        "unit_id", "referral__order_id", "manufacturing_from", "manufacturing_to", "referral__patient__pseudonym"
    )
    return [
        UnitReservation(unit_id, order_id, starts, ends, f"the booked manufacturing slot of {pseudonym}")
        for unit_id, order_id, starts, ends, pseudonym in rows
    ]


def booked_batches(*, sites: list[int], starts: dt.datetime, ends: dt.datetime) -> dict[tuple[int, int], int]:
    """The patients app's answer to ``manufacturing.booked_batches``: the active bookings whose
    manufacturing window starts at ``sites`` in ``[starts, ends)``, per (site, product). One query."""
    rows = (
        Booking.objects.filter(
            manufacturing_site_id__in=sites,
            status=BookingStatus.ACTIVE,
            manufacturing_from__gte=starts,
            manufacturing_from__lt=ends,
        )
        .values_list("manufacturing_site_id", "referral__product_id")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return {(site_id, product_id): n for site_id, product_id, n in rows}
