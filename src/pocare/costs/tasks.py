"""Scheduled work of the costs app (docs/jobs.md): the hourly refresh of the cost postings (docs/costs.md,
"Cost postings"), and the check of a signed cost report against the records, asked for on its page."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from pocare.accounts.models import User
from pocare.core.tasks import JOB_ENQUEUE, Unrecoverable, task
from pocare.costs import report, services
from pocare.costs.models import CostReport
from pocare.costs.postings import postings_refresh
from pocare.manufacturing.models import Batch

CHECK_TASK = "pocare.costs.tasks.cost_report_check_work"


@task(max_tries=3, label="Cost postings: post the batches whose records changed")
def postings_refresh_hourly(*, slot: str = "") -> dict[str, Any]:
    """Post every ended batch that has no cost posting or whose records changed since it was posted (ledger
    events after the watermark), and move the watermark."""
    run = postings_refresh()
    return {"slot": slot, "posted": run.posted, "watermark": run.watermark, "seconds": round(run.seconds, 2)}


def cost_report_check_request(*, actor: User, cost_report: CostReport) -> Any:
    """Queue the check of a signed report against the records as a job of ``actor``'s: a report holds up to
    5,000 batches, whose figures take longer to compute again than a page may (the page shows the last check)."""
    return JOB_ENQUEUE.ask_one(task=CHECK_TASK, kwargs={"actor_id": actor.pk, "report_id": cost_report.pk},
                               actor=actor, label=f"Check of cost report #{cost_report.pk} against the records")


@task(max_tries=2, label="Cost report check", result_template="costs/check_result.html")
def cost_report_check_work(*, actor_id: int, report_id: int) -> dict[str, Any]:
    """Compute the signed report's figures again from today's records and record whether they agree
    (``costs.report_checked``); the result is what the event says."""
    found = CostReport.objects.filter(pk=report_id).select_related("site").first()
    if found is None:
        raise Unrecoverable(f"report: no cost report #{report_id}.")
    start, end = found.period_start, found.period_end
    now = report.figures_for(report.batches_in(Batch.objects.all(), found.site, start, end), site=found.site,
                             start=start, end=end)
    event = services.cost_report_checked(actor=User.objects.get(pk=actor_id), cost_report=found, now=now)
    return {"report": found.pk, "url": reverse("costs:report", args=[found.pk]), "event": event.label, **event.new}
