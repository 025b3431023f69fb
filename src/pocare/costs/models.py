"""The cost model (COST-BATCH): rates and prices kept by Control Site QA, versioned and signed.

A version is drafted (number 1, 2, …) with its content (``costs.content``), then approved by Control
Site QA with an electronic signature (meaning *approved*, with a reason); approving it supersedes the
version approved before. A version is never edited: a change is a new draft. The cost of a batch
uses the version effective at the batch's start (``selectors.model_effective``), and every figure
names the version it was priced with.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models


class CostModelStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    APPROVED = "approved", "Approved"
    SUPERSEDED = "superseded", "Superseded"


class CostModel(models.Model):
    number = models.PositiveIntegerField(unique=True)
    status = models.CharField(max_length=12, choices=CostModelStatus.choices, default=CostModelStatus.DRAFT)
    effective_from = models.DateField(help_text="The batches started on or after this day (UTC) are priced with it.")
    content = models.JSONField(help_text="Rates and prices, as checked by costs.content.content_checked.")
    content_hash = models.CharField(max_length=64, help_text="SHA-256 of the canonical content: what is signed.")
    reason = models.TextField(help_text="Why this version was drafted.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+")
    approved_at = models.DateTimeField(null=True, blank=True)
    superseded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-number"]
        constraints = [models.UniqueConstraint(fields=["status"], condition=models.Q(status="approved"),
                                               name="costs_one_approved_model")]

    def __str__(self) -> str:
        return f"cost model v{self.number}"

    def signed_content(self) -> dict[str, Any]:
        """What the approval signature binds to: the number, the day it takes effect and the content."""
        return {"cost_model": self.number, "effective_from": self.effective_from.isoformat(),
                "content_hash": self.content_hash}


class CostReport(models.Model):
    """A cost report of a site (or of the whole network, ``site`` empty) for a period, signed by Control
    Site QA: the figures as computed when signed (``costs.report.figures_for``) and their SHA-256, which
    the signature binds. The page recomputes them from the records and says whether they still agree."""

    site = models.ForeignKey("network.Site", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    period_start = models.DateField()
    period_end = models.DateField()
    figures = models.JSONField(help_text="The report's figures as signed (costs.report.figures_for).")
    figures_hash = models.CharField(max_length=64, help_text="SHA-256 of the canonical figures: what is signed.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        where = self.site.code if self.site is not None else "network"
        return f"cost report {where} {self.period_start}–{self.period_end}"

    def signed_content(self) -> dict[str, Any]:
        return {"cost_report": self.pk, "site": self.site.code if self.site is not None else None,
                "period_start": self.period_start.isoformat(), "period_end": self.period_end.isoformat(),
                "figures_hash": self.figures_hash}
