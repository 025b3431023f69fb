"""Reading the queue: the jobs a person may see, and the queue's health for the health endpoint."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db.models import Count, Max, Min, Q, QuerySet
from django.utils import timezone

from pocare.accounts import selectors as access
from pocare.accounts.roles import Perm
from pocare.core.monitoring import HealthCheck
from pocare.jobs.models import Job, JobStatus, Worker


def jobs_visible(user: Any) -> QuerySet[Job]:
    """The jobs the person started, and every job for whoever holds ``jobs.view`` (Control Site QA);
    at a site, that site's jobs for a site holder of it. Nobody else's."""
    if not getattr(user, "is_authenticated", False):
        return Job.objects.none()
    qs = Job.objects.select_related("created_by")
    codes = access.site_codes_with_perm(user, Perm.JOBS_VIEW)
    if codes is None:
        return qs
    return qs.filter(Q(created_by=user) | Q(site_code__in=codes, site_code__gt=""))


def queue_health(*, seen_within: float | None = None, now: dt.datetime | None = None) -> dict[str, Any]:
    """The queue at a glance, for the health endpoint and metrics: jobs by status, the age in seconds of
    the oldest job that is due and waits (0 when none), and whether a worker announced itself within
    ``seen_within`` seconds (default ``POCARE_JOBS_WORKER_SEEN_SECONDS``). ``ok`` is False when work is
    due and no worker is alive."""
    now = now or timezone.now()
    seen_within = float(settings.POCARE_JOBS_WORKER_SEEN_SECONDS if seen_within is None else seen_within)
    counts = {s.value: 0 for s in JobStatus}
    for row in Job.objects.values("status").annotate(n=Count("pk")).order_by():
        counts[row["status"]] = row["n"]
    oldest = Job.objects.filter(status=JobStatus.QUEUED, run_after__lte=now).aggregate(at=Min("run_after"))["at"]
    last_seen = Worker.objects.aggregate(at=Max("seen_at"))["at"]
    alive = last_seen is not None and (now - last_seen).total_seconds() <= seen_within
    oldest_age = max(0.0, (now - oldest).total_seconds()) if oldest else 0.0
    return {"queued": counts[JobStatus.QUEUED], "running": counts[JobStatus.RUNNING],
            "failed": counts[JobStatus.FAILED], "done": counts[JobStatus.DONE],
            "cancelled": counts[JobStatus.CANCELLED], "oldest_queued_seconds": round(oldest_age, 1),
            "worker_seen": alive, "worker_last_seen": last_seen.isoformat() if last_seen else None,
            "ok": alive or oldest is None}



def queue_check() -> HealthCheck:
    """The job queue's answer to ``core.health_checks`` (/health/, /metrics): failing when work is
    due and no worker announced itself lately, with the counts as figures."""
    h = queue_health()
    if h["ok"]:
        summary = (f"{h['queued']} queued, {h['running']} running, {h['failed']} failed; "
                   + ("a worker is alive" if h["worker_seen"] else "no work due"))
    else:
        summary = (f"{h['queued']} queued, the oldest due for {h['oldest_queued_seconds']:.0f} s, and no "
                   f"worker seen (last: {h['worker_last_seen'] or 'never'}): start `pocare worker`")
    return HealthCheck("jobs", ok=bool(h["ok"]), summary=summary, figures={
        "queued": h["queued"], "running": h["running"], "failed": h["failed"],
        "oldest_queued_seconds": h["oldest_queued_seconds"], "worker_seen": 1.0 if h["worker_seen"] else 0.0})
