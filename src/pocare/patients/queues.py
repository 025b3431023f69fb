"""The patients app's work queues (``pocare.core.worklist``), registered from its ``AppConfig.ready()``."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from django.utils import timezone

from pocare.core.worklist import WorkItem, WorkQueue, register
from pocare.patients import followup_selectors


def _visit(visit: Any) -> WorkItem:
    patient = visit.referral.patient
    late = visit.due_on < timezone.now().date()
    return WorkItem(f"{patient.pseudonym} ({patient.treating_site.code}): follow-up {visit.label}"
                    + (" — overdue" if late else ""),
                    reverse("patients:followup", args=[patient.pseudonym]) + f"#visit-{visit.pk}", visit.due_on,
                    late=late)


def register_queues() -> None:
    register(WorkQueue("followup_due", "Follow-up visits due", followup_selectors.visits_due, _visit,
                       when_label="Due"))
