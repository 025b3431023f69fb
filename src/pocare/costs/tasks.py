"""Scheduled work of the costs app (docs/jobs.md): the hourly refresh of the cost postings (docs/costs.md,
"Cost postings")."""

from __future__ import annotations

from typing import Any

from pocare.core.tasks import task
from pocare.costs.postings import postings_refresh


@task(max_tries=3, label="Cost postings: post the batches whose records changed")
def postings_refresh_hourly(*, slot: str = "") -> dict[str, Any]:
    """Post every ended batch that has no cost posting or whose records changed since it was posted (ledger
    events after the watermark), and move the watermark."""
    run = postings_refresh()
    return {"slot": slot, "posted": run.posted, "watermark": run.watermark, "seconds": round(run.seconds, 2)}
