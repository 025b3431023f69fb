"""Reading the pathway (docs/patients.md): what a person may see of the referrals, the stage each is
at, what each waits for and what is late, and the holds a withdrawn consent puts on the material.

Every read is scoped by the pathway permission held at the patient's treating hospital
(``sites_with_perm``): the hospital's physician and navigator see their own patients, Control Site
QA and the QP see every pseudonym. Nothing here reads the sealed identity (PAT-PRIVACY).

Stages after booking are not typed: they follow from the records of the lower apps — the order's
collection (custody), its batch (manufacturing), the QP's certification (release) and the infusion
hand-off (custody) — read by :func:`stages_derived` in a fixed number of queries for a whole page.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop, ngettext

from pocare.accounts.roles import Perm
from pocare.accounts.selectors import sites_with_perm
from pocare.custody.models import Collection, Handoff, HandoffKind, HandoffOutcome
from pocare.manufacturing.models import Batch
from pocare.patients.models import (
    ENDED_STAGES,
    Booking,
    BookingStatus,
    Consent,
    ConsentDocument,
    Patient,
    Referral,
    Stage,
    Visit,
    VisitStatus,
)
from pocare.release.models import Certification, Decision

#: The pathway's stages in order: a stage read from the records below only moves a referral forward.
STAGE_ORDER: tuple[str, ...] = (Stage.REFERRED, Stage.ELIGIBLE, Stage.CONSENTED, Stage.BOOKED, Stage.COLLECTED,
                                Stage.MANUFACTURING, Stage.RELEASED, Stage.INFUSED, Stage.FOLLOW_UP,
                                Stage.COMPLETED)

#: A referral waiting longer than this at referral, eligibility or consent is late (the navigator's page).
LATE_AFTER = dt.timedelta(days=14)

#: What a referral at each stage waits for next (the physician's page).
#: Marked for extraction only: the pages translate them when shown (``{% translate r.waits_for %}``).
WAITS_FOR: dict[str, str] = {
    Stage.REFERRED: gettext_noop("Eligibility assessment"),
    Stage.ELIGIBLE: gettext_noop("Informed consent"),
    Stage.CONSENTED: gettext_noop("Booking of apheresis, manufacture and infusion"),
    Stage.BOOKED: gettext_noop("Apheresis"),
    Stage.COLLECTED: gettext_noop("Start of manufacture"),
    Stage.MANUFACTURING: gettext_noop("QC and QP certification"),
    Stage.RELEASED: gettext_noop("Infusion"),
    Stage.INFUSED: gettext_noop("Follow-up visits"),
    Stage.FOLLOW_UP: gettext_noop("Follow-up visits"),
}


def stage_rank(stage: str) -> int:
    """The place of ``stage`` on the pathway; -1 for a stage that ended it (ineligible, withdrawn, lost)."""
    return STAGE_ORDER.index(stage) if stage in STAGE_ORDER else -1


# --- scope -------------------------------------------------------------------------------------------


def _site_scope(user: Any, perm: Perm, path: str) -> Q | None:
    """The condition on the treating site for ``perm``; ``None`` when the person may see none."""
    sites = sites_with_perm(user, perm)
    if sites is None:
        return Q()
    if not sites:
        return None
    return Q(**{f"{path}__in": sites})


def referrals_visible(user: Any, perm: Perm = Perm.PATIENTS_VIEW) -> QuerySet[Referral]:
    """The referrals whose patient is treated at a site where ``user`` holds ``perm``."""
    scope = _site_scope(user, perm, "patient__treating_site_id")
    base = Referral.objects.select_related("patient", "patient__treating_site", "product", "order", "referred_by")
    return base.none() if scope is None else base.filter(scope)


def patients_visible(user: Any, perm: Perm = Perm.PATIENTS_VIEW) -> QuerySet[Patient]:
    """The patients whose treating hospital is a site where ``user`` holds ``perm``."""
    scope = _site_scope(user, perm, "treating_site_id")
    base = Patient.objects.select_related("treating_site")
    return base.none() if scope is None else base.filter(scope)


def patient_for(user: Any, pseudonym: str) -> Patient:
    """The patient of ``pseudonym`` if ``user`` may see them; 404 otherwise (as if it did not exist)."""
    patient = patients_visible(user).filter(pseudonym=str(pseudonym)[:20]).first()
    if patient is None:
        raise Http404("No such patient.")
    return patient


def referral_for(user: Any, pk: int, perm: Perm = Perm.PATIENTS_VIEW) -> Referral:
    referral = referrals_visible(user, perm).filter(pk=pk).first()
    if referral is None:
        raise Http404("No such referral.")
    return referral


def referrals_to_assess(user: Any) -> QuerySet[Referral]:
    """Work queue "eligibility to assess": referrals at a hospital where ``user`` refers patients."""
    return referrals_visible(user, Perm.PATIENTS_REFER).filter(stage=Stage.REFERRED).order_by("stage_changed_at", "pk")


def referrals_to_consent(user: Any) -> QuerySet[Referral]:
    """Work queue "consent to record": eligible referrals waiting for the patient's consent."""
    return referrals_visible(user, Perm.PATIENTS_REFER).filter(stage=Stage.ELIGIBLE).order_by("stage_changed_at", "pk")


# --- stages read from the records below --------------------------------------------------------------


def stages_derived(referrals: Iterable[Referral]) -> dict[int, tuple[str, dt.datetime | None]]:
    """For each referral with a therapy order, the stage its records show and the infusion time:
    INFUSED (a completed infusion hand-off), RELEASED (the batch certified by the QP), MANUFACTURING
    (a batch), COLLECTED (a collection), else BOOKED. Three queries whatever the number."""
    orders = {r.pk: r.order_id for r in referrals if r.order_id}
    if not orders:
        return {}
    ids = set(orders.values())
    collected = set(Collection.objects.filter(order_id__in=ids).values_list("order_id", flat=True))
    batches = dict(Batch.objects.filter(order_id__in=ids).values_list("order_id", "pk"))
    released = set(Certification.objects.filter(batch_id__in=batches.values(), decision=Decision.RELEASED)
                   .values_list("batch_id", flat=True)) if batches else set()
    infused: dict[int, dt.datetime] = {}
    for order_id, at in (Handoff.objects.filter(order_id__in=ids, kind=HandoffKind.INFUSION,
                                                outcome=HandoffOutcome.COMPLETED)
                         .order_by("occurred_at").values_list("order_id", "occurred_at")):
        infused.setdefault(order_id, at)
    out: dict[int, tuple[str, dt.datetime | None]] = {}
    for pk, order_id in orders.items():
        if order_id in infused:
            out[pk] = (Stage.INFUSED, infused[order_id])
        elif batches.get(order_id) in released:
            out[pk] = (Stage.RELEASED, None)
        elif order_id in batches:
            out[pk] = (Stage.MANUFACTURING, None)
        elif order_id in collected:
            out[pk] = (Stage.COLLECTED, None)
        else:
            out[pk] = (Stage.BOOKED, None)
    return out


def stage_derived(referral: Referral) -> tuple[str, dt.datetime | None] | None:
    """:func:`stages_derived` of one referral; ``None`` without a therapy order."""
    return stages_derived([referral]).get(referral.pk)


def _shown_stage(referral: Referral, derived: tuple[str, dt.datetime | None] | None) -> str:
    if derived is None or referral.stage in ENDED_STAGES or stage_rank(derived[0]) <= stage_rank(referral.stage):
        return referral.stage
    return derived[0]


def stage_of(referral: Referral) -> str:
    """The stage to show: the stored one, or the later one the records below already show (the
    scheduled sync stores it, see ``services.referral_stage_sync``)."""
    return _shown_stage(referral, stage_derived(referral))


# --- rows of the navigator's and the physician's pages ----------------------------------------------


@dataclass(frozen=True)
class PathwayRow:
    """One referral as the pathway pages show it."""

    referral: Referral
    stage: str
    next_date: dt.datetime | dt.date | None
    next_what: str
    late: str
    waits_for: str

    @property
    def stage_label(self) -> str:
        return Stage(self.stage).label

    @property
    def patient(self) -> Patient:
        return self.referral.patient


def _late(referral: Referral, stage: str, booking: Booking | None, overdue: Visit | None, now: dt.datetime) -> str:
    waited = now - referral.stage_changed_at
    """What is late, in the language of the request (the pages and the API show it as it is)."""
    if stage in (Stage.REFERRED, Stage.ELIGIBLE, Stage.CONSENTED) and waited > LATE_AFTER:
        return ngettext("%(what)s waited %(days)d day", "%(what)s waited %(days)d days", waited.days) % {
            "what": gettext(WAITS_FOR[stage]), "days": waited.days}
    if stage == Stage.BOOKED and booking is not None and booking.apheresis_slot.ends_at < now:
        return gettext("Apheresis slot passed with no collection recorded")
    if overdue is not None:
        return gettext("%(visit)s visit overdue since %(date)s") % {"visit": gettext(overdue.label),
                                                                   "date": overdue.due_on.isoformat()}
    return ""


def pathway_rows(referrals: Sequence[Referral], *, now: dt.datetime | None = None) -> list[PathwayRow]:
    """The rows of a page of referrals: stage (with the one the records show), the next date (the
    booked apheresis or infusion, or the next follow-up visit), what is late and what each waits
    for — a fixed number of queries for the page."""
    now = now or timezone.now()
    referrals = list(referrals)
    pks = [r.pk for r in referrals]
    derived = stages_derived(referrals)
    bookings = {b.referral_id: b for b in Booking.objects.filter(referral_id__in=pks, status=BookingStatus.ACTIVE)
                .select_related("apheresis_slot", "infusion_slot")}
    next_visit: dict[int, Visit] = {}
    overdue: dict[int, Visit] = {}
    for visit in Visit.objects.filter(referral_id__in=pks, status=VisitStatus.PLANNED).order_by("due_on", "pk"):
        next_visit.setdefault(visit.referral_id, visit)
        if visit.due_on + dt.timedelta(days=visit.window_days) < now.date():
            overdue.setdefault(visit.referral_id, visit)
    rows = []
    for referral in referrals:
        stage = _shown_stage(referral, derived.get(referral.pk))
        booking = bookings.get(referral.pk)
        when: dt.datetime | dt.date | None = None
        what = ""
        if booking is not None and stage_rank(stage) < stage_rank(Stage.COLLECTED) and stage not in ENDED_STAGES:
            when, what = booking.apheresis_slot.starts_at, "Apheresis"
        elif booking is not None and stage_rank(Stage.COLLECTED) <= stage_rank(stage) < stage_rank(Stage.INFUSED):
            when, what = booking.infusion_slot.starts_at, "Infusion"
        elif referral.pk in next_visit and stage not in ENDED_STAGES:
            when, what = next_visit[referral.pk].due_on, next_visit[referral.pk].label
        rows.append(PathwayRow(referral, stage, when, what,
                               "" if stage in ENDED_STAGES else _late(referral, stage, booking,
                                                                     overdue.get(referral.pk), now),
                               WAITS_FOR.get(stage, "")))
    return rows


# --- one referral's pathway ------------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineEntry:
    stage: str
    label: str
    at: dt.datetime | None
    done: bool
    current: bool


def timeline(referral: Referral) -> list[TimelineEntry]:
    """Each stage of the pathway with the date it was reached (from the records that show it)."""
    stage = stage_of(referral)
    at: dict[str, dt.datetime | None] = {Stage.REFERRED: referral.referred_at}
    assessment = referral.eligibility.order_by("-assessed_at").first()
    if assessment is not None and assessment.eligible:
        at[Stage.ELIGIBLE] = assessment.assessed_at
    consent = referral.consents.order_by("-signed_at").first()
    if consent is not None:
        at[Stage.CONSENTED] = consent.signed_at
    booking = referral.bookings.order_by("booked_at").first()
    if booking is not None:
        at[Stage.BOOKED] = booking.booked_at
    order = referral.order if referral.order_id else None
    if order is not None:
        collection = order.collections.order_by("collection_ended_at").first()
        at[Stage.COLLECTED] = collection.collection_ended_at if collection else None
        batch = Batch.objects.filter(order=order).select_related("certification").first()
        at[Stage.MANUFACTURING] = batch.started_at if batch else None
        certification = getattr(batch, "certification", None) if batch else None
        if certification is not None and certification.decision == Decision.RELEASED:
            at[Stage.RELEASED] = certification.decided_at
        derived = stage_derived(referral)
        at[Stage.INFUSED] = referral.infused_at or (derived[1] if derived else None)
    reached = stage_rank(stage)
    if stage in ENDED_STAGES and stage != Stage.COMPLETED:
        reached = max((stage_rank(s) for s, when in at.items() if when), default=0)
    entries = [TimelineEntry(s, Stage(s).label, at.get(s), stage_rank(s) <= reached,
                             s == stage) for s in STAGE_ORDER[:8]]
    if stage in ENDED_STAGES and stage != Stage.COMPLETED:
        entries.append(TimelineEntry(stage, Stage(stage).label, referral.stage_changed_at, True, True))
    return entries


def consent_current(referral: Referral) -> Consent | None:
    """The referral's latest consent (withdrawn or not), with its document."""
    return referral.consents.select_related("document", "recorded_by").order_by("-signed_at", "-pk").first()


def consent_documents_in_force(referral: Referral, at: dt.datetime | None = None) -> list[ConsentDocument]:
    """The consent documents for the referral's product in force now, one per (code, language),
    the patient's language first."""
    at = at or timezone.now()
    newest: dict[tuple[str, str], ConsentDocument] = {}
    for document in (ConsentDocument.objects.filter(product=referral.product, effective_from__lte=at)
                     .order_by("code", "language", "-version")):
        newest.setdefault((document.code, document.language), document)
    language = referral.patient.language
    return sorted(newest.values(), key=lambda d: (d.language != language, d.code, d.language))


# --- the holds of a withdrawn consent ---------------------------------------------------------------


def _hold_text(consent: Consent) -> str:
    return (f"Consent withdrawn by patient {consent.referral.patient.pseudonym} on "
            f"{consent.withdrawn_at:%Y-%m-%d} (PAT-CONSENT): everything derived from the patient's material "
            "is on hold.")


def withdrawn_consent_holds(order_ids: Iterable[int | None]) -> dict[int, str]:
    """For the orders among ``order_ids`` whose referral's consent was withdrawn, the hold's words
    (pseudonym only, PAT-PRIVACY): one query whatever the number."""
    ids = {pk for pk in order_ids if pk is not None}
    if not ids:
        return {}
    out: dict[int, str] = {}
    for consent in (Consent.objects.filter(referral__order_id__in=ids, withdrawn_at__isnull=False)
                    .select_related("referral__patient").order_by("-withdrawn_at")):
        out.setdefault(consent.referral.order_id, _hold_text(consent))  # type: ignore[arg-type]
    return out


def withdrawn_consent_hold(order: Any) -> str | None:
    """Why the order's material is held, if the patient withdrew consent for its referral."""
    if order is None or getattr(order, "pk", None) is None:
        return None
    return withdrawn_consent_holds([order.pk]).get(order.pk)


def patient_visible(user: Any, pseudonym: str, perm: Perm = Perm.PATIENTS_VIEW) -> Patient | None:
    """The patient of that pseudonym if ``user`` may see them with ``perm``; else None (a pseudonym
    elsewhere is not confirmed to exist)."""
    if not pseudonym or len(pseudonym) > 20:
        return None
    return patients_visible(user, perm).filter(pseudonym=pseudonym).first()
