"""The periodic schedule: which task runs when, and the slot each run belongs to.

Every worker's loop calls :func:`schedule_tick` (every ``TICK_SECONDS``). For each entry it computes the
latest slot that has begun (today's 02:00, this hour's :05, …) and queues that slot's job with the
unique key ``<name>@<slot>``: however many workers tick, the database's unique constraint lets one
insert win, so each slot runs once. A slot missed while no worker ran (the server was down at 02:00)
is queued at the next tick — late, never lost; older missed slots are not replayed one by one.
Times are UTC.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from pocare.jobs.models import Job
from pocare.jobs.services import job_enqueue

TICK_SECONDS = 30.0


@dataclass(frozen=True)
class Every:
    """A scheduled task: ``period`` ``"hourly"`` (at ``minute``) or ``"daily"`` (at ``hour``:``minute``)."""

    name: str
    task: str
    period: str
    hour: int = 0
    minute: int = 0
    what: str = ""

    def slot(self, now: dt.datetime) -> dt.datetime:
        """The start of the latest slot at or before ``now``."""
        now = now.astimezone(dt.UTC)
        if self.period == "hourly":
            start = now.replace(minute=self.minute, second=0, microsecond=0)
            return start if start <= now else start - dt.timedelta(hours=1)
        if self.period == "daily":
            start = now.replace(hour=self.hour, minute=self.minute, second=0, microsecond=0)
            return start if start <= now else start - dt.timedelta(days=1)
        raise ValueError(f"period: {self.period!r} unknown; use hourly or daily.")

    def when(self) -> str:
        if self.period == "hourly":
            return f"hourly at :{self.minute:02d}"
        return f"daily at {self.hour:02d}:{self.minute:02d} UTC"


#: The schedule (docs/jobs.md prints it). The tasks live in the apps that own the work.
SCHEDULE: tuple[Every, ...] = (
    Every("trail-anchor", "pocare.jobs.builtin.trail_anchor", "hourly", minute=5,
          what="Sign every chain's and lane's head and append the digest to the digest store."),
    Every("comparability-monitor", "pocare.analytics.tasks.comparability_monitor", "daily", hour=2, minute=0,
          what="Control-chart rules and equivalence per site, raising quality signals."),
    Every("daily-checks", "pocare.analytics.tasks.daily_checks", "daily", hour=5, minute=30,
          what="Overdue deviations and CAPA; training, qualifications, material lots and unit calibration "
               "expiring or expired."),
    Every("follow-up", "pocare.patients.tasks.followup_daily", "daily", hour=6, minute=0,
          what="Follow-up schedules for infused patients, visits missed after their window, overdue visits and "
               "reminders (the work queue \"Follow-up visits due\")."),
    Every("pathway-stages", "pocare.patients.tasks.stage_sync", "hourly", minute=20,
          what="Each booked patient's pathway stage from the order's collection, batch, certification and "
               "infusion."),
    Every("cost-postings", "pocare.costs.tasks.postings_refresh_hourly", "hourly", minute=40,
          what="Post the cost of every ended batch whose records changed since (ledger events after the "
               "watermark), for the roll-up of a large network."),
)


def slot_key(entry: Every, slot: dt.datetime) -> str:
    return f"{entry.name}@{slot:%Y-%m-%dT%H:%MZ}"


def schedule_tick(*, now: dt.datetime | None = None, schedule: tuple[Every, ...] = SCHEDULE) -> list[Job]:
    """Queue each entry's current slot unless it is queued already; the jobs queued by this tick."""
    now = now or timezone.now()
    queued = []
    for entry in schedule:
        slot = entry.slot(now)
        key = slot_key(entry, slot)
        if Job.objects.filter(slot_key=key).exists():
            continue
        with transaction.atomic():
            job = job_enqueue(task=entry.task, label=f"{entry.name} ({entry.when()})", run_after=slot,
                              slot_key=key, kwargs={"slot": slot.isoformat()})
        if job is not None:
            queued.append(job)
    return queued
