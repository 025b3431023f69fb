"""The cost model (COST-BATCH): rates and prices kept by Control Site QA, versioned and signed.

A version is drafted (number 1, 2, …) with its content (``costs.content``), then approved by Control
Site QA with an electronic signature (meaning *approved*, with a reason); approving it supersedes the
version approved before. A version is never edited: a change is a new draft. The cost of a batch
uses the version effective at the batch's start (``selectors.model_effective``), and every figure
names the version it was priced with.
"""

from __future__ import annotations

from typing import Any, ClassVar

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

    #: A signature's check reads the site and the figures' hash, never the figures (``ledger.verify``).
    signed_content_related: ClassVar[tuple[str, ...]] = ("site",)
    signed_content_defer: ClassVar[tuple[str, ...]] = ("figures",)

    def signed_content(self) -> dict[str, Any]:
        return {"cost_report": self.pk, "site": self.site.code if self.site is not None else None,
                "period_start": self.period_start.isoformat(), "period_end": self.period_end.isoformat(),
                "figures_hash": self.figures_hash}


#: The categories a posting keeps, as ``compute.CATEGORIES`` orders them (a column ``<key>_cents`` each).
POSTED_CATEGORIES = ("labour", "materials", "qc", "equipment", "facility", "review", "logistics", "overhead")


class BatchCost(models.Model):
    """A cost posting: an ended batch's cost by category in cents, as ``rollup`` computes it from the
    records, kept so that a roll-up of a large network sums rows instead of pricing every line again
    (issue 18, docs/costs.md "Cost postings"). Derived, never signed and never a source: the cost pages
    and the signed report recompute from the records; ``costs.postings.postings_verify`` checks postings
    against a recomputation. ``watermark`` is the ledger event id the batch's records were read as of:
    an event after it that concerns the batch makes the posting pending (``costs.postings``)."""

    batch = models.OneToOneField("manufacturing.Batch", primary_key=True, on_delete=models.PROTECT,
                                 related_name="+")
    site = models.ForeignKey("network.Site", on_delete=models.PROTECT, related_name="+")
    month = models.CharField(max_length=7, help_text="YYYY-MM of the batch's end (UTC).")
    labour_cents = models.BigIntegerField()
    materials_cents = models.BigIntegerField()
    qc_cents = models.BigIntegerField()
    equipment_cents = models.BigIntegerField()
    facility_cents = models.BigIntegerField()
    review_cents = models.BigIntegerField()
    logistics_cents = models.BigIntegerField()
    overhead_cents = models.BigIntegerField()
    unpriced = models.PositiveIntegerField(help_text="Lines the model had no price for.")
    model = models.ForeignKey(CostModel, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                              help_text="The version that priced it; empty: none was in force at its start.")
    computed_at = models.DateTimeField()
    watermark = models.BigIntegerField(help_text="The ledger event id the records were read as of.")

    class Meta:
        indexes = [models.Index(fields=["site", "month"], name="costs_batchcost_site_month")]

    def __str__(self) -> str:
        return f"cost posting of batch {self.batch_id}"


class PostingState(models.Model):
    """The one row that says how far the refresh of the postings has read the ledger (``watermark``: an
    event id; every event up to it that concerns a cost input has been posted) and when it last ran."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    watermark = models.BigIntegerField(default=0)
    refreshed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"cost postings as of ledger event {self.watermark}"
