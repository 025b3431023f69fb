"""The pathway's scheduled work, as jobs (``pocare.jobs.schedule`` names them by dotted path)."""

from __future__ import annotations

from typing import Any

from pocare.jobs.tasks import task
from pocare.patients.services import referrals_stage_sync


@task(max_tries=3, label="Pathway stages from custody, batch and release")
def stage_sync(*, slot: str = "") -> dict[str, Any]:
    """Move each booked referral to the stage its order's records show (collected, in manufacture,
    released, infused) and keep the infusion as day 0 of the follow-up."""
    return {"slot": slot, "moved": referrals_stage_sync()}
