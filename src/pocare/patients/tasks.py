"""Scheduled work of the patients app (docs/jobs.md): the daily follow-up run (PAT-LTFU) and the hourly
reading of each booked patient's stage from the records below."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from django.urls import reverse
from django.utils import timezone

from pocare.accounts.roles import Perm
from pocare.core.tasks import task
from pocare.network.models import Site
from pocare.patients.followup import followup_schedule_create, visit_miss
from pocare.patients.followup_selectors import REMINDER_DAYS
from pocare.patients.models import ENDED_STAGES, Referral, Visit, VisitStatus
from pocare.patients.services import referrals_stage_sync
from pocare.quality.services import reminder_send


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
    (past their day, window still open) and those due within the reminder horizon, which the navigators
    and physicians see in their work queue "Follow-up visits due" — and remind them of those (a
    notification and an e-mail, once a day per hospital)."""
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
    reminded = _remind(overdue, reminders, now)
    return {"slot": slot, "schedules_planned": planned, "visits_missed": dict(sorted(missed.items())),
            "visits_overdue": dict(sorted(overdue.items())), "reminders": dict(sorted(reminders.items())),
            "people_reminded": reminded}


def _remind(overdue: Counter[str], due: Counter[str], now: dt.datetime) -> int:
    """Tell the navigators and physicians of each hospital with visits overdue or due soon (a notification
    in POCare and an e-mail, once a day), linking their work queue."""
    sent = 0
    for site in Site.objects.filter(code__in=set(overdue) | set(due)).order_by("code"):
        late, soon = overdue.get(site.code, 0), due.get(site.code, 0)
        details = f"{late} visit{'s' * (late != 1)} overdue, {soon} due within {REMINDER_DAYS} days"
        body = ("Patients' follow-up visits wait to be recorded (or marked missed with a reason). Overdue visits "
                "are past their day with their window still open; a window that closes with no visit is marked "
                "missed by the daily run.")
        sent += len(reminder_send(site=site, perm=Perm.FOLLOWUP_RECORD, topic=f"Follow-up at {site.code}",
                                  details=details, body=body,
                                  url=reverse("web:home") + "#queue-followup_due", now=now))
    return sent


@task(max_tries=3, label="Pathway stages from custody, batch and release")
def stage_sync(*, slot: str = "") -> dict[str, Any]:
    """Move each booked referral to the stage its order's records show (collected, in manufacture,
    released, infused) and keep the infusion as day 0 of the follow-up."""
    return {"slot": slot, "moved": referrals_stage_sync()}
