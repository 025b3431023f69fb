"""Reads of the follow-up (PAT-LTFU, PAT-GRADE) for a person: only what their roles at the treating
hospital, or at the Control Site, let them see, under the patient's pseudonym."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from pocare.accounts.roles import Perm
from pocare.accounts.selectors import sites_with_perm
from pocare.patients.models import (
    ANSWER_LABELS,
    QUESTION_LABELS,
    AdverseEvent,
    FollowUpCorrection,
    Patient,
    Referral,
    Visit,
    VisitStatus,
)

#: A visit is shown in the navigator's and physician's work queue from this many days before it is due
#: (the reminder), and stays there until it is recorded or missed.
REMINDER_DAYS = 14


def _scoped(qs: QuerySet[Any], user: Any, perm: Perm, site_field: str) -> QuerySet[Any]:
    if not getattr(user, "is_authenticated", False):
        return qs.none()
    sites = sites_with_perm(user, perm)
    return qs if sites is None else qs.filter(**{f"{site_field}__in": sites})


def patient_for(user: Any, pseudonym: str) -> Patient:
    """The patient of ``pseudonym`` if ``user`` may see their pathway; 404 otherwise (the same answer for
    an unknown pseudonym and one of another hospital)."""
    patient: Patient | None = _scoped(Patient.objects.select_related("treating_site"), user, Perm.PATIENTS_VIEW,
                                      "treating_site_id").filter(pseudonym=pseudonym[:20]).first()
    if patient is None:
        raise Http404("No such patient of yours.")
    return patient


def may_record(user: Any, patient: Patient) -> bool:
    sites = sites_with_perm(user, Perm.FOLLOWUP_RECORD)
    return sites is None or patient.treating_site_id in sites


def may_correct(user: Any, patient: Patient) -> bool:
    """Whether ``user`` corrects the patient's recorded visits and adverse events: the treating hospital's
    physician."""
    sites = sites_with_perm(user, Perm.FOLLOWUP_CORRECT)
    return sites is None or patient.treating_site_id in sites


def corrections_of(record: Visit | AdverseEvent) -> list[FollowUpCorrection]:
    """The signed corrections of a visit or an adverse event, oldest first, each with the values it
    replaced (``rows``: field, before, after)."""
    field = "visit" if isinstance(record, Visit) else "adverse_event"
    found = list(FollowUpCorrection.objects.filter(**{field: record}).select_related("corrected_by"))
    for correction in found:
        _rows(correction)
    return found


#: How a correction names the fields it changed (translated when shown).
CORRECTED_FIELDS = {"mode": gettext_noop("How"), "done_at": gettext_noop("Done at"),
                    "alive": gettext_noop("Patient alive"), "response": gettext_noop("Disease response"),
                    "new_malignancy": gettext_noop("New malignancy"),
                    "malignancy_description": gettext_noop("New malignancy: description"),
                    "persistence": gettext_noop("Product persistence"), "inputs": gettext_noop("Grading inputs"),
                    "grade": gettext_noop("Grade"), "reasons": gettext_noop("Reasons for the grade"),
                    "serious": gettext_noop("Serious"), "term": gettext_noop("Term (CTCAE)")}


def _shown(value: Any) -> str:
    """A corrected value as the page shows it, in the request's language."""
    if value is None or value == "" or value == [] or value == {}:
        return "—"
    if isinstance(value, bool):
        return gettext("Yes") if value else gettext("No")
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_shown(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "; ".join(_shown(v) for v in value)
    return str(value)


def _rows(correction: FollowUpCorrection) -> None:
    correction.rows = [  # type: ignore[attr-defined]
        (gettext(CORRECTED_FIELDS.get(name, name)), _shown(correction.old.get(name)), _shown(correction.new.get(name)))
        for name in correction.new]


def visit_state(visit: Visit, today: dt.date) -> str:
    """``done``, ``missed``, ``overdue`` (past its day, inside its window), ``due`` (window open) or
    ``planned``: what the timeline shows and flags."""
    if visit.status != VisitStatus.PLANNED:
        return str(visit.status)
    if today > visit.due_on:
        return "overdue"
    if today >= visit.due_on - dt.timedelta(days=visit.window_days):
        return "due"
    return "planned"


@dataclass
class Timeline:
    """A patient's follow-up: per referral infused, its visits (each with its state) and adverse events."""

    referral: Referral
    visits: list[Visit]
    adverse_events: list[AdverseEvent]

    @property
    def overdue(self) -> int:
        return sum(1 for v in self.visits if getattr(v, "state", "") in ("overdue", "missed"))


def timelines(user: Any, patient: Patient, *, today: dt.date | None = None) -> list[Timeline]:
    """The patient's referrals with follow-up (infused or with visits), newest first, with the corrections
    of their visits and adverse events, in four queries."""
    today = today or timezone.localdate(timezone=patient.treating_site.tz)
    referrals = list(patient.referrals.filter(Q(infused_at__isnull=False) | Q(visits__isnull=False))
                     .select_related("product").distinct().order_by("-referred_at", "-pk"))
    ids = [r.pk for r in referrals]
    visits: dict[int, list[Visit]] = {i: [] for i in ids}
    previous: dict[int, int] = {}
    for visit in Visit.objects.filter(referral_id__in=ids).order_by("day"):
        visit.state = visit_state(visit, today)  # type: ignore[attr-defined]
        visit.recordable = (visit.status == VisitStatus.PLANNED  # type: ignore[attr-defined]
                            and today >= visit.record_opens_on(previous.get(visit.referral_id, 0)))
        previous[visit.referral_id] = visit.day
        visit.answer_rows = [  # type: ignore[attr-defined]
            (QUESTION_LABELS.get(q, q), ANSWER_LABELS.get(a.get("answer", ""), ""), a.get("detail", ""))
            for q, a in (visit.answers or {}).items() if isinstance(a, dict)]
        visits[visit.referral_id].append(visit)
    events: dict[int, list[AdverseEvent]] = {i: [] for i in ids}
    for event in (AdverseEvent.objects.filter(referral_id__in=ids).select_related("visit")
                  .order_by("-onset_on", "-pk")):
        event.corrections_shown = []  # type: ignore[attr-defined]
        events[event.referral_id].append(event)
    by_visit = {v.pk: v for vs in visits.values() for v in vs}
    by_event = {e.pk: e for es in events.values() for e in es}
    for v in by_visit.values():
        v.corrections_shown = []  # type: ignore[attr-defined]
    for correction in (FollowUpCorrection.objects.filter(Q(visit__referral_id__in=ids)
                                                         | Q(adverse_event__referral_id__in=ids))
                       .select_related("corrected_by")):
        _rows(correction)
        owner: Any = (by_visit.get(correction.visit_id) if correction.visit_id is not None
                      else by_event.get(correction.adverse_event_id or 0))
        if owner is not None:
            owner.corrections_shown.append(correction)
    return [Timeline(r, visits[r.pk], events[r.pk]) for r in referrals]


def visit_for(user: Any, patient: Patient, pk: int) -> Visit:
    visit = Visit.objects.select_related("referral__patient__treating_site", "referral__product").filter(
        pk=pk, referral__patient=patient).first()
    if visit is None:
        raise Http404("No such visit of this patient.")
    return visit


def adverse_event_for(user: Any, patient: Patient, pk: int) -> AdverseEvent:
    event = AdverseEvent.objects.select_related("referral__patient__treating_site", "referral__product",
                                                "visit").filter(pk=pk, referral__patient=patient).first()
    if event is None:
        raise Http404("No such adverse event of this patient.")
    return event


def visits_due(user: Any) -> QuerySet[Visit]:
    """The work queue "Follow-up visits due": planned visits due within :data:`REMINDER_DAYS` days, or past
    their day, of the patients treated where ``user`` records follow-up; the earliest first."""
    horizon = timezone.now().date() + dt.timedelta(days=REMINDER_DAYS)
    qs = Visit.objects.filter(status=VisitStatus.PLANNED, due_on__lte=horizon).select_related(
        "referral__patient__treating_site").order_by("due_on", "pk")
    return _scoped(qs, user, Perm.FOLLOWUP_RECORD, "referral__patient__treating_site_id")
