"""Release (REQUIREMENTS.md ATMP-REL, ATMP-OOS, A11-8, A11-12, POC-7): the signed review by exception,
the site's QC review, the QP's certification (or rejection) with a snapshot of the checklist it
relied on, and the out-of-specification release workflow. Nothing here is changed once written.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from pocare.manufacturing.models import ImmutableRecord


class ExceptionReview(ImmutableRecord):
    """The reviewer's signed review of a batch's exceptions (review by exception): what was listed
    when they signed is kept, so a later exception is not covered by it."""

    batch = models.ForeignKey("manufacturing.Batch", on_delete=models.PROTECT, related_name="exception_reviews")
    items = models.JSONField(help_text="The review items listed when signed.")
    items_hash = models.CharField(max_length=64)
    comment = models.TextField()
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reviewed_at = models.DateTimeField()

    class Meta:
        db_table = "release_exceptionreview"
        ordering = ["batch", "reviewed_at", "pk"]

    def __str__(self) -> str:
        return f"Review by exception of {self.batch.reference}"

    def signed_content(self) -> dict[str, Any]:
        return {"batch": self.batch_id, "items_hash": self.items_hash, "comment": self.comment,
                "reviewer": self.reviewer_id, "reviewed_at": self.reviewed_at}


class QcReview(ImmutableRecord):
    """Stage 1: the site's QC review of the batch (signed, reviewed)."""

    batch = models.ForeignKey("manufacturing.Batch", on_delete=models.PROTECT, related_name="qc_reviews")
    comment = models.TextField()
    checklist = models.JSONField(help_text="The checklist as evaluated when signed.")
    checklist_hash = models.CharField(max_length=64)
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reviewed_at = models.DateTimeField()

    class Meta:
        db_table = "release_qcreview"
        ordering = ["batch", "reviewed_at", "pk"]

    def __str__(self) -> str:
        return f"QC review of {self.batch.reference}"

    def signed_content(self) -> dict[str, Any]:
        return {"batch": self.batch_id, "comment": self.comment, "checklist_hash": self.checklist_hash,
                "reviewer": self.reviewer_id, "reviewed_at": self.reviewed_at}


class Decision(models.TextChoices):
    RELEASED = "released", "Certified for release"
    REJECTED = "rejected", "Rejected"


class Certification(ImmutableRecord):
    """Stage 2: the Control Site QP certifies the batch (released) or rejects it with a reason,
    signed; the checklist it relied on is kept with its hash. One per batch."""

    batch = models.OneToOneField("manufacturing.Batch", on_delete=models.PROTECT, related_name="certification")
    decision = models.CharField(max_length=10, choices=Decision.choices)
    reason = models.TextField()
    checklist = models.JSONField()
    checklist_hash = models.CharField(max_length=64)
    oos_release = models.ForeignKey("OosRelease", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    qp = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField()

    class Meta:
        db_table = "release_certification"
        ordering = ["-decided_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.batch.reference}: {self.get_decision_display()}"

    def signed_content(self) -> dict[str, Any]:
        return {"batch": self.batch_id, "decision": self.decision, "reason": self.reason,
                "checklist_hash": self.checklist_hash, "oos_release": self.oos_release_id, "qp": self.qp_id,
                "decided_at": self.decided_at}


class OosStatus(models.TextChoices):
    REQUESTED = "requested", "Requested by the treating physician"
    EVALUATED = "evaluated", "Risk evaluated by the QP"
    ACCEPTED = "accepted", "Accepted by the treating physician"
    DECLINED = "declined", "Declined"


class OosRelease(models.Model):
    """Out-of-specification administration (ATMP-OOS, EU GMP Part IV 11.5), as its own workflow: the
    treating physician's request, the QP's risk evaluation, the physician's recorded acceptance,
    and the notifications to sponsor or authority. Each stage is a signed service."""

    batch = models.ForeignKey("manufacturing.Batch", on_delete=models.PROTECT, related_name="oos_releases")
    status = models.CharField(max_length=10, choices=OosStatus.choices, default=OosStatus.REQUESTED)
    attributes = models.JSONField(help_text="The attributes out of specification when requested.")
    clinical_justification = models.TextField(help_text="Why administering avoids an immediate significant hazard.")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField()
    risk_evaluation = models.TextField(blank=True)
    evaluated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="+")
    evaluated_at = models.DateTimeField(null=True, blank=True)
    acceptance_statement = models.TextField(blank=True)
    accepted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+")
    accepted_at = models.DateTimeField(null=True, blank=True)
    notifications = models.JSONField(default=list, help_text="[{to, reference, at, by}] sponsor / authority notices.")

    class Meta:
        db_table = "release_oosrelease"
        ordering = ["-requested_at", "-pk"]

    def __str__(self) -> str:
        return f"OOS release request for {self.batch.reference}"

    def signed_content(self) -> dict[str, Any]:
        """The physician's request, as their signature (authored) binds to it; the later stages are
        signed through :class:`OosEvaluation` and :class:`OosAcceptance`, so that each signature binds
        to its own stage and a later stage leaves an earlier signature valid."""
        return {"oos": self.pk, "batch": self.batch_id, "stage": "request", "attributes": self.attributes,
                "justification": self.clinical_justification, "by": self.requested_by_id, "at": self.requested_at}


class OosEvaluation(OosRelease):
    """The QP's risk evaluation of an OOS release, as its signature (reviewed) binds to it."""

    class Meta:
        proxy = True

    def __str__(self) -> str:
        return f"Risk evaluation of the OOS release of {self.batch.reference}"

    def signed_content(self) -> dict[str, Any]:
        return {"oos": self.pk, "batch": self.batch_id, "stage": "evaluation", "risk": self.risk_evaluation,
                "by": self.evaluated_by_id, "at": self.evaluated_at}


class OosAcceptance(OosRelease):
    """The treating physician's acceptance of an OOS product, as their signature (approved) binds to it."""

    class Meta:
        proxy = True

    def __str__(self) -> str:
        return f"Physician's acceptance of the OOS product {self.batch.reference}"

    def signed_content(self) -> dict[str, Any]:
        return {"oos": self.pk, "batch": self.batch_id, "stage": "acceptance", "statement": self.acceptance_statement,
                "by": self.accepted_by_id, "at": self.accepted_at}
