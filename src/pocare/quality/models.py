"""Quality events (REQUIREMENTS.md DEV-CLASS, Q9-RISK, Q10-PQS, ATMP-OOS): deviations raised by the
batch record, QC, custody and device alarms, or by hand; their ICH Q9 risk classification (every
scoring kept), escalation rules and notifications, investigation with root cause, CAPA with
actions and effectiveness checks, QA's impact assessment and signed closure; and quality signals
raised by the comparability monitor. Nothing here is deleted.
"""

from __future__ import annotations

from typing import Any, NoReturn

from django.conf import settings
from django.db import models

from pocare.ledger.canonical import content_hash
from pocare.ledger.models import LedgerImmutableError
from pocare.ledger.records import ContentStamped


class _WrittenOnce(ContentStamped, models.Model):
    """A GMP record row written once: ``save`` inserts, nothing updates or deletes it. The event
    that records it carries its content hash (``ledger.records``), so an edit below the ORM is found."""

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise LedgerImmutableError(f"{type(self).__name__} rows are never changed; record a new one")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise LedgerImmutableError(f"{type(self).__name__} rows are kept for the life of the record")


class DeviationKind(models.TextChoices):
    """Where a deviation came from."""

    PROCESS = "process", "Process deviation (out-of-range step value)"
    LABORATORY = "laboratory", "Laboratory investigation (out-of-specification result)"
    CUSTODY = "custody", "Chain of identity or custody"
    TEMPERATURE = "temperature", "Temperature excursion in transport"
    ALARM = "alarm", "Device alarm"
    MATERIAL = "material", "Material"
    OTHER = "other", "Other (raised by hand)"


class DeviationStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"


class DeviationClass(models.TextChoices):
    """The class of a deviation from its ICH Q9 scoring (DEV-CLASS)."""

    CRITICAL = "critical", "Critical"
    MAJOR = "major", "Major"
    MINOR = "minor", "Minor"


class Impact(models.TextChoices):
    """QA's assessment of a deviation's impact on the product (ATMP-REL: a deviation at release is
    acceptable only when investigated, root-caused and assessed as of negligible impact)."""

    NEGLIGIBLE = "negligible", "Negligible impact on the product"
    NOT_NEGLIGIBLE = "not_negligible", "Impact on the product"


class Deviation(models.Model):
    """A departure from the master file, a specification or the chain of custody, with the record
    that revealed it (``source_type``/``source_id``) so a reviewer can go straight to it."""

    reference = models.CharField(max_length=24, unique=True, help_text="e.g. DEV-MAD-2026-0007")
    site = models.ForeignKey("network.Site", on_delete=models.PROTECT, related_name="deviations")
    kind = models.CharField(max_length=12, choices=DeviationKind.choices)
    status = models.CharField(max_length=8, choices=DeviationStatus.choices, default=DeviationStatus.OPEN)
    title = models.CharField(max_length=200)
    description = models.TextField()
    product = models.ForeignKey("masterfile.Product", null=True, blank=True, on_delete=models.PROTECT,
                                related_name="+")
    batch = models.ForeignKey("manufacturing.Batch", null=True, blank=True, on_delete=models.PROTECT,
                              related_name="deviations")
    order = models.ForeignKey("custody.TherapyOrder", null=True, blank=True, on_delete=models.PROTECT,
                              related_name="deviations")
    step_id = models.CharField(max_length=64, blank=True, help_text="Master-file step, when raised at a step.")
    source_type = models.CharField(max_length=100, blank=True, help_text="app_label.ModelName of the source record")
    source_id = models.CharField(max_length=64, blank=True)
    opened_at = models.DateTimeField()
    opened_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="+", help_text="Empty when a system (device feed, logger) opened it.")
    opened_by_system = models.CharField(max_length=60, blank=True)
    # Current state, kept beside the history rows below (each change is a service with its event).
    classification = models.CharField(max_length=8, choices=DeviationClass.choices, blank=True,
                                      help_text="The latest ICH Q9 classification (see DeviationClassification).")
    due_at = models.DateTimeField(null=True, blank=True, help_text="Investigation due, from the escalation rule.")
    impact = models.CharField(max_length=16, choices=Impact.choices, blank=True)
    impact_rationale = models.TextField(blank=True)
    impact_assessed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                           on_delete=models.PROTECT, related_name="+")
    impact_assessed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="+")
    closed_at = models.DateTimeField(null=True, blank=True)
    closure_summary = models.TextField(blank=True)

    class Meta:
        db_table = "quality_deviation"
        ordering = ["-opened_at", "-pk"]
        indexes = [models.Index(fields=["site", "status"], name="quality_dev_site_status_idx")]

    def __str__(self) -> str:
        return f"{self.reference}: {self.title}"

    def signed_content(self) -> dict[str, Any]:
        """The deviation as opened: fields that never change after opening, so a signature on the
        deviation itself never breaks when it is classified, investigated or closed. The impact and
        closure signatures are on their own written-once records (:class:`ImpactAssessment`,
        :class:`DeviationClosure`), whose signed content includes the hash of this content."""
        return {"reference": self.reference, "site": self.site_id, "kind": self.kind, "title": self.title,
                "description": self.description, "batch": self.batch_id, "order": self.order_id,
                "product": self.product_id, "step_id": self.step_id, "source_type": self.source_type,
                "source_id": self.source_id, "opened_at": self.opened_at, "opened_by": self.opened_by_id,
                "opened_by_system": self.opened_by_system}

    def content_hash(self) -> str:
        return content_hash(self.signed_content())

    @property
    def investigation(self) -> Investigation | None:
        """The investigation in force: the latest recorded (earlier ones stay, never overwritten)."""
        cached = getattr(self, "_prefetched_objects_cache", {}).get("investigations")
        if cached is not None:
            rows = list(cached)
            return max(rows, key=lambda i: (i.completed_at, i.pk)) if rows else None
        return self.investigations.order_by("-completed_at", "-pk").first()


class DeviationClassification(models.Model):
    """One ICH Q9 scoring of a deviation (Q9-RISK): severity, occurrence and detectability on the
    scales of ``pocare.quality.risk``, and the class they give. Re-scoring adds a row."""

    deviation = models.ForeignKey(Deviation, on_delete=models.PROTECT, related_name="classifications")
    severity = models.PositiveSmallIntegerField()
    occurrence = models.PositiveSmallIntegerField()
    detectability = models.PositiveSmallIntegerField()
    result = models.CharField(max_length=8, choices=DeviationClass.choices)
    rationale = models.TextField()
    classified_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    classified_at = models.DateTimeField()

    class Meta:
        db_table = "quality_deviationclassification"
        ordering = ["deviation", "classified_at", "pk"]

    def __str__(self) -> str:
        return f"{self.deviation.reference}: {self.result} (S{self.severity} O{self.occurrence} D{self.detectability})"


class EscalationRule(models.Model):
    """What the Control Site wants done for a class of deviation: whom to notify at once and how
    many days the investigation may take (DEV-CLASS: typically 30). The newest rule per class in
    force applies; older rules stay for the record."""

    deviation_class = models.CharField(max_length=8, choices=DeviationClass.choices)
    notify_roles = models.JSONField(default=list, help_text="Role values notified at once, e.g. ['control_qa', 'qp'].")
    investigation_days = models.PositiveSmallIntegerField(default=30)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "quality_escalationrule"
        ordering = ["deviation_class", "-created_at"]

    def __str__(self) -> str:
        return f"{self.get_deviation_class_display()}: {self.investigation_days} days"


class Notification(models.Model):
    """A message to one person about a quality event, shown in the UI (and e-mailed)."""

    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="notifications")
    deviation = models.ForeignKey(Deviation, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    signal = models.ForeignKey("QualitySignal", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    subject = models.CharField(max_length=200)
    body = models.TextField()
    url = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField()
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "quality_notification"
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.subject


class Investigation(models.Model):
    """The investigation of a deviation: what was found and its root cause. Recording it again
    (e.g. a root cause found after a minor deviation was re-classified major) adds a row; the
    latest is the one in force, the earlier ones stay."""

    deviation = models.ForeignKey(Deviation, on_delete=models.PROTECT, related_name="investigations")
    findings = models.TextField()
    root_cause = models.TextField()
    root_cause_category = models.CharField(max_length=30, help_text="e.g. people, method, material, machine, "
                                                                    "environment, measurement")
    completed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    completed_at = models.DateTimeField()

    class Meta:
        db_table = "quality_investigation"
        ordering = ["deviation", "completed_at", "pk"]

    def __str__(self) -> str:
        return f"Investigation of {self.deviation.reference}"


class CapaKind(models.TextChoices):
    CORRECTIVE = "corrective", "Corrective"
    PREVENTIVE = "preventive", "Preventive"


class CapaAction(models.Model):
    """One corrective or preventive action of a deviation's CAPA, with its owner, due date, and
    effectiveness check; it may lead to a change request of the master file."""

    deviation = models.ForeignKey(Deviation, on_delete=models.PROTECT, related_name="capa_actions")
    kind = models.CharField(max_length=12, choices=CapaKind.choices)
    description = models.TextField()
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    due_on = models.DateField()
    change_request = models.ForeignKey("masterfile.ChangeRequest", null=True, blank=True, on_delete=models.PROTECT,
                                       related_name="capa_actions")
    done_at = models.DateTimeField(null=True, blank=True)
    done_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                related_name="+")
    done_note = models.TextField(blank=True)
    effectiveness_due_on = models.DateField(null=True, blank=True)
    effective = models.BooleanField(null=True, help_text="Outcome of the effectiveness check; empty until checked.")
    effectiveness_note = models.TextField(blank=True)
    effectiveness_checked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                                 on_delete=models.PROTECT, related_name="+")
    effectiveness_checked_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        db_table = "quality_capaaction"
        ordering = ["deviation", "due_on", "pk"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} action on {self.deviation.reference}"


class ImpactAssessment(_WrittenOnce):
    """QA's signed assessment (meaning: reviewed) of a deviation's impact on the product. A new
    assessment adds a row; the deviation's ``impact`` fields copy the latest for reading."""

    deviation = models.ForeignKey(Deviation, on_delete=models.PROTECT, related_name="impact_assessments")
    impact = models.CharField(max_length=16, choices=Impact.choices)
    rationale = models.TextField()
    deviation_hash = models.CharField(max_length=64, help_text="Hash of the deviation's signed content.")
    assessed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    assessed_at = models.DateTimeField()

    class Meta:
        db_table = "quality_impactassessment"
        ordering = ["deviation", "assessed_at", "pk"]

    def __str__(self) -> str:
        return f"Impact of {self.deviation.reference}: {self.get_impact_display()}"

    def signed_content(self) -> dict[str, Any]:
        return {"deviation": self.deviation_id, "deviation_hash": self.deviation_hash, "impact": self.impact,
                "rationale": self.rationale, "assessed_by": self.assessed_by_id, "assessed_at": self.assessed_at}


class DeviationClosure(_WrittenOnce):
    """QA's signed closure (meaning: approved) of a deviation, with a snapshot of what was closed —
    the classification, investigation, impact assessment and CAPA actions in force — and its
    hash, so the signature binds to exactly what QA saw. Effectiveness checks may come later."""

    deviation = models.OneToOneField(Deviation, on_delete=models.PROTECT, related_name="closure")
    summary = models.TextField()
    snapshot = models.JSONField(help_text="What was closed, as the closure saw it.")
    snapshot_hash = models.CharField(max_length=64)
    closed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    closed_at = models.DateTimeField()

    class Meta:
        db_table = "quality_deviationclosure"

    def __str__(self) -> str:
        return f"Closure of {self.deviation.reference}"

    def signed_content(self) -> dict[str, Any]:
        return {"deviation": self.deviation_id, "summary": self.summary, "snapshot_hash": self.snapshot_hash,
                "closed_by": self.closed_by_id, "closed_at": self.closed_at}


class SignalStatus(models.TextChoices):
    OPEN = "open", "Open"
    RESOLVED = "resolved", "Resolved"


class SignalOutcome(models.TextChoices):
    DEVIATION = "deviation", "Linked to a deviation"
    CHANGE_REQUEST = "change_request", "Linked to a change request"
    DECISION = "decision", "Documented decision (no action)"


class QualitySignal(models.Model):
    """A signal from the comparability monitor (a control-chart rule violated, an equivalence not
    shown) routed to Control Site QA, who links it to a deviation, a change request or a decision."""

    site = models.ForeignKey("network.Site", on_delete=models.PROTECT, related_name="quality_signals")
    product = models.ForeignKey("masterfile.Product", on_delete=models.PROTECT, related_name="+")
    attribute_id = models.CharField(max_length=64)
    rule = models.CharField(max_length=60, help_text="e.g. nelson-2, we-1, tost, quality-range")
    summary = models.TextField()
    evidence = models.JSONField(default=dict, help_text="The points or statistics that raised it.")
    fingerprint = models.CharField(max_length=64, unique=True, help_text="Same signal twice is raised once.")
    status = models.CharField(max_length=10, choices=SignalStatus.choices, default=SignalStatus.OPEN)
    raised_at = models.DateTimeField()
    outcome = models.CharField(max_length=16, choices=SignalOutcome.choices, blank=True)
    deviation = models.ForeignKey(Deviation, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    change_request = models.ForeignKey("masterfile.ChangeRequest", null=True, blank=True, on_delete=models.PROTECT,
                                       related_name="+")
    decision = models.TextField(blank=True)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+")
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "quality_qualitysignal"
        ordering = ["-raised_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.site.code} {self.attribute_id}: {self.rule}"

    def signed_content(self) -> dict[str, Any]:
        """What QA's signature on the resolution binds to: the signal and how it was resolved."""
        return {"signal": self.pk, "fingerprint": self.fingerprint, "site": self.site_id, "rule": self.rule,
                "attribute_id": self.attribute_id, "outcome": self.outcome, "deviation": self.deviation_id,
                "change_request": self.change_request_id, "decision": self.decision,
                "resolved_by": self.resolved_by_id, "resolved_at": self.resolved_at}
