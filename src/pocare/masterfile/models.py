"""The POCare Master File (POC-1, POC-3, POC-5): one controlled, versioned document per product,
and the change requests that move it from one version to the next.

A version's content is authored as YAML (``document``), validated against the schema in
``schema.py`` and kept parsed in ``content``; ``content_hash`` is what signatures bind to.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.conf import settings
from django.db import models


class ProductKind(models.TextChoices):
    """Whose cells the product is made from."""

    AUTOLOGOUS = "autologous", "Autologous"
    ALLOGENEIC = "allogeneic", "Allogeneic"


class Product(models.Model):
    """A medicinal product made in the network under its own master file."""

    code = models.CharField(max_length=30, unique=True)
    name = models.CharField(max_length=200)
    indication = models.CharField(max_length=300)
    kind = models.CharField(max_length=12, choices=ProductKind.choices)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "masterfile_product"
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class VersionStatus(models.TextChoices):
    """Where a master-file version is in its lifecycle (see VERSION_TRANSITIONS)."""

    DRAFT = "draft", "Draft"
    IN_REVIEW = "in_review", "In review"
    APPROVED = "approved", "Approved"
    EFFECTIVE = "effective", "Effective"
    SUPERSEDED = "superseded", "Superseded"


#: draft →(author signs) in review →(reviewer signs, then the QP signs) approved
#: →(QA makes it effective) effective →(the next version becomes effective) superseded
VERSION_TRANSITIONS: dict[str, frozenset[str]] = {
    VersionStatus.DRAFT: frozenset({VersionStatus.IN_REVIEW}),
    VersionStatus.IN_REVIEW: frozenset({VersionStatus.APPROVED, VersionStatus.DRAFT}),
    VersionStatus.APPROVED: frozenset({VersionStatus.EFFECTIVE}),
    VersionStatus.EFFECTIVE: frozenset({VersionStatus.SUPERSEDED}),
    VersionStatus.SUPERSEDED: frozenset(),
}


class MasterFileVersion(models.Model):
    """One version of a product's master file. Author, reviewer and approving QP are three
    different people, each signing with meaning (authored, reviewed, approved)."""

    #: What ``signed_content`` follows, prefetched when many signatures are checked at once.
    signed_content_related: ClassVar[tuple[str, ...]] = ("product", "change_request")

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=12, choices=VersionStatus.choices, default=VersionStatus.DRAFT)
    document = models.TextField(help_text="The human-readable YAML source, as authored.")
    content = models.JSONField(help_text="The validated document (schema.MasterFileDocument).")
    content_hash = models.CharField(max_length=64)
    summary = models.TextField(blank=True, help_text="What this version changes.")
    change_request = models.OneToOneField(
        "ChangeRequest", null=True, blank=True, on_delete=models.PROTECT, related_name="version"
    )
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="+")
    approver = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="+")
    created_at = models.DateTimeField()
    effective_at = models.DateTimeField(null=True, blank=True)
    superseded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "masterfile_version"
        ordering = ["product", "-number"]
        constraints = [models.UniqueConstraint(fields=["product", "number"], name="masterfile_version_unique")]

    def __str__(self) -> str:
        return f"{self.product.code} master file v{self.number}"

    def signed_content(self) -> dict[str, Any]:
        """What each signature on the version binds to: the product, the number, the content and,
        for a version proposed by a change request, that request's assessment (risk, sites,
        training, comparability evidence) — so one signature approves both."""
        content: dict[str, Any] = {"product": self.product.code, "number": self.number,
                                   "content_hash": self.content_hash, "summary": self.summary}
        if self.change_request_id is not None:
            assert self.change_request is not None
            content["change_request"] = self.change_request.signed_content()
        return content


class RiskClass(models.TextChoices):
    """ICH Q9 risk class of a change, from severity × probability × detectability."""

    HIGH = "high", "High"
    MEDIUM = "medium", "Medium"
    LOW = "low", "Low"


class ChangeStatus(models.TextChoices):
    """Where a change request is: it follows the lifecycle of the version it proposes."""

    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    IMPLEMENTED = "implemented", "Implemented"


class ChangeRequest(models.Model):
    """A proposed change to a product's master file (Q9-RISK, Q10-PQS, CMP-SITE): what changes,
    its risk, the sites affected, the training and the comparability evidence it needs."""

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="change_requests")
    reference = models.CharField(max_length=20, unique=True, help_text="e.g. CR-2026-0001")
    title = models.CharField(max_length=200)
    description = models.TextField()
    base_version = models.ForeignKey(MasterFileVersion, on_delete=models.PROTECT, related_name="+")
    severity = models.PositiveSmallIntegerField(help_text="1 (negligible) … 5 (catastrophic)")
    probability = models.PositiveSmallIntegerField(help_text="1 (rare) … 5 (frequent)")
    detectability = models.PositiveSmallIntegerField(help_text="1 (always detected) … 5 (undetectable)")
    risk_class = models.CharField(max_length=8, choices=RiskClass.choices)
    sites = models.ManyToManyField("network.Site", related_name="change_requests", blank=True)
    training_steps = models.JSONField(default=list, help_text="Step ids operators must be trained on.")
    comparability_evidence = models.TextField(blank=True, help_text="Evidence required before approval.")
    status = models.CharField(max_length=12, choices=ChangeStatus.choices, default=ChangeStatus.DRAFT)
    raised_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    raised_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "masterfile_changerequest"
        ordering = ["-raised_at"]

    def __str__(self) -> str:
        return f"{self.reference}: {self.title}"

    @property
    def risk_priority(self) -> int:
        return self.severity * self.probability * self.detectability

    def signed_content(self) -> dict[str, Any]:
        """What a signature on the change request binds to: the request and its risk assessment."""
        return {"sites": sorted(self.sites.values_list("code", flat=True)) if self.pk else [],
                "reference": self.reference, "title": self.title, "description": self.description,
                "base_version": self.base_version_id, "severity": self.severity, "probability": self.probability,
                "detectability": self.detectability, "risk_class": self.risk_class,
                "training_steps": self.training_steps, "comparability_evidence": self.comparability_evidence}
