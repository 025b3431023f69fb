"""Stored planning runs: a site-selection study or a digital-twin study, its parameters, progress,
result and HTML report. A run is started and finished by services that write ledger events."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class RunKind(models.TextChoices):
    PLAN = "plan", "Site selection"
    TWIN = "twin", "Digital twin"


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class PlanningRun(models.Model):
    """One study a planner ran: what was asked (parameters), how far it got, what it found."""

    kind = models.CharField(max_length=4, choices=RunKind.choices)
    parameters = models.JSONField(default=dict)
    status = models.CharField(max_length=8, choices=RunStatus.choices, default=RunStatus.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0, help_text="0–100 %")
    result = models.JSONField(null=True, blank=True)
    report_html = models.TextField(blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} run {self.pk}"
