"""Scheduled work of the patients app (docs/jobs.md): the daily follow-up run (PAT-LTFU) and the hourly
reading of each booked patient's stage from the records below."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from django.urls import reverse
from django.utils import timezone

from pocare.core.tasks import task
from pocare.patients.followup import NOTICE_DAYS, followup_schedule_create, visit_miss, visit_remind
from pocare.patients.followup_selectors import REMINDER_DAYS
from pocare.patients.models import ENDED_STAGES, Referral, ReminderState, Visit, VisitStatus
from pocare.patients.services import referrals_stage_sync


def _slot_time(slot: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(slot) if slot else timezone.now()
    except ValueError:
        moment = timezone.now()
    return moment if timezone.is_aware(moment) else moment.replace(tzinfo=dt.UTC)


@task(max_tries=3, label="Follow-up: schedules, overdue and missed visits, reminders")
def followup_daily(*, slot: str = "") -> dict[str, Any]:
    """Plan the follow-up of every infused referral that has no visits yet; mark missed each planned visit
    whose window closed before today (the navigator sees it flagged); count per site the visits overdue
    (past their day, window still open) and those due within the work queue's horizon, which the
    navigators and physicians see in their work queue "Follow-up visits due"; and remind them of each visit
    that became due within :data:`~pocare.patients.followup.NOTICE_DAYS` days and of each that became
    overdue (a notification and an e-mail, once per visit and state, however often the job runs). Visits
    closed because the patient died are neither counted nor reminded."""
    now = _slot_time(slot)
    today = now.date()
    planned = 0
    for referral in (Referral.objects.filter(infused_at__isnull=False, visits__isnull=True)
                     .exclude(stage__in=ENDED_STAGES).select_related("patient__treating_site", "product")):
        followup_schedule_create(referral=referral, infused_at=referral.infused_at, actor=None)  # type: ignore[arg-type]
        planned += 1
    missed: Counter[str] = Counter()
    for visit in Visit.objects.filter(status=VisitStatus.PLANNED, due_on__lt=today).select_related(
            "referral__patient__treating_site"):
        closed = visit.due_on + dt.timedelta(days=visit.window_days)
        if closed < today:
            visit_miss(actor=None, visit=visit, reason=f"The window of {visit.label} closed on {closed:%Y-%m-%d} "
                                                       "with no visit recorded.")
            missed[visit.referral.patient.treating_site.code] += 1
    site = "referral__patient__treating_site__code"
    overdue = Counter(Visit.objects.filter(status=VisitStatus.PLANNED, due_on__lt=today).values_list(site, flat=True))
    reminders = Counter(Visit.objects.filter(status=VisitStatus.PLANNED, due_on__gte=today,
                                             due_on__lte=today + dt.timedelta(days=REMINDER_DAYS))
                        .values_list(site, flat=True))
    reminded, told = _remind(today, now)
    return {"slot": slot, "schedules_planned": planned, "visits_missed": dict(sorted(missed.items())),
            "visits_overdue": dict(sorted(overdue.items())), "reminders": dict(sorted(reminders.items())),
            "visits_reminded": reminded, "people_reminded": told}


def _remind(today: dt.date, now: dt.datetime) -> tuple[dict[str, int], int]:
    """Remind of each planned visit that became overdue, or due within NOTICE_DAYS days, and was not yet
    reminded in that state: how many visits per state, and how many notifications were sent."""
    planned = Visit.objects.filter(status=VisitStatus.PLANNED).select_related("referral__patient")
    waiting = {
        ReminderState.OVERDUE: planned.filter(due_on__lt=today),
        ReminderState.DUE: planned.filter(due_on__gte=today, due_on__lte=today + dt.timedelta(days=NOTICE_DAYS)),
    }
    counts: dict[str, int] = {}
    sent = 0
    for state, visits in waiting.items():
        for visit in visits.exclude(reminders__state=state).order_by("due_on", "pk"):
            url = reverse("patients:followup", args=[visit.referral.patient.pseudonym]) + f"#visit-{visit.pk}"
            reminder = visit_remind(visit=visit, state=state, url=url, now=now)
            if reminder is not None:
                counts[state] = counts.get(state, 0) + 1
                sent += reminder.recipients
    return counts, sent


@task(max_tries=3, label="Pathway stages from custody, batch and release")
def stage_sync(*, slot: str = "") -> dict[str, Any]:
    """Move each booked referral to the stage its order's records show (collected, in manufacture,
    released, infused) and keep the infusion as day 0 of the follow-up."""
    return {"slot": slot, "moved": referrals_stage_sync()}
