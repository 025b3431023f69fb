"""Training and qualification (P11-10i): who is trained and qualified for what, until when.

The gate every later capability asks — may this person perform (or verify) this step of this
master-file version at this site now, and if not, why not — is ``gate.step_gate``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from pocare.accounts.roles import Role


class Qualification(models.Model):
    """Something a person can be qualified for (e.g. ``prodigy-operation``, ``aseptic-gowning``),
    valid for a number of months before requalification. Master-file steps name the
    qualification their operator needs."""

    code = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    validity_months = models.PositiveSmallIntegerField(default=12)
    pass_mark = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True,
                                    help_text="Assessment pass mark in %, if assessed.")

    class Meta:
        db_table = "training_qualification"
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class CurrentCurriculum(models.Manager["CurriculumItem"]):
    """Curriculum items in force (removed ones stay in the table, for the record)."""

    def get_queryset(self) -> models.QuerySet[CurriculumItem]:
        return super().get_queryset().filter(removed_at__isnull=True)


class CurriculumItem(models.Model):
    """A qualification required of everyone holding a role (the per-role curriculum).

    Removing an item ends it (``removed_at``) rather than deleting it, so what a role required on
    any past day can always be answered; ``objects`` sees the items in force, ``history`` all.
    """

    role = models.CharField(max_length=20, choices=Role.choices)
    qualification = models.ForeignKey(Qualification, on_delete=models.PROTECT, related_name="curriculum")
    removed_at = models.DateTimeField(null=True, blank=True)
    removed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")

    history = models.Manager()
    objects = CurrentCurriculum()

    class Meta:
        db_table = "training_curriculumitem"
        ordering = ["role", "qualification__code"]
        default_manager_name = "objects"
        base_manager_name = "history"
        constraints = [
            models.UniqueConstraint(fields=["role", "qualification"], condition=models.Q(removed_at__isnull=True),
                                    name="training_curriculum_unique")
        ]

    def __str__(self) -> str:
        return f"{self.get_role_display()}: {self.qualification}"


class TrainingKind(models.TextChoices):
    COURSE = "course", "Course"
    ASSESSMENT = "assessment", "Assessment"
    VERSION = "version", "Master-file version training"
    DRILL = "drill", "Simulation drill"
    ROTATION = "rotation", "Cross-site rotation"
    REQUALIFICATION = "requalification", "Requalification"


class TrainingStatus(models.TextChoices):
    AWAITING_TRAINEE = "awaiting_trainee", "Awaiting the trainee's signature"
    COMPLETE = "complete", "Complete"


class TrainingRecord(models.Model):
    """A training event: recorded and signed by the trainer (meaning: verified), then signed by
    the trainee (meaning: performed). It counts only when both have signed."""

    trainee = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="training_records")
    trainer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    site = models.ForeignKey("network.Site", on_delete=models.PROTECT, related_name="training_records")
    kind = models.CharField(max_length=20, choices=TrainingKind.choices)
    title = models.CharField(max_length=200)
    qualification = models.ForeignKey(Qualification, null=True, blank=True, on_delete=models.PROTECT,
                                      related_name="records")
    masterfile_version = models.ForeignKey("masterfile.MasterFileVersion", null=True, blank=True,
                                           on_delete=models.PROTECT, related_name="training_records")
    steps = models.JSONField(default=list, help_text="Master-file step ids covered.")
    score = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    pass_mark = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    passed = models.BooleanField()
    trained_on = models.DateField()
    notes = models.TextField(blank=True)
    status = models.CharField(max_length=20, choices=TrainingStatus.choices,
                              default=TrainingStatus.AWAITING_TRAINEE)
    created_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "training_record"
        ordering = ["-trained_on", "-id"]

    def __str__(self) -> str:
        return f"{self.trainee} — {self.title} ({self.trained_on})"

    def signed_content(self) -> dict[str, Any]:
        return {"trainee": self.trainee_id, "trainer": self.trainer_id, "site": self.site_id, "kind": self.kind,
                "title": self.title, "qualification": self.qualification_id,
                "masterfile_version": self.masterfile_version_id, "steps": self.steps, "score": self.score,
                "pass_mark": self.pass_mark, "passed": self.passed, "trained_on": self.trained_on,
                "notes": self.notes}


class PersonQualification(models.Model):
    """A person's qualification, valid from a date until it expires (or is revoked).
    Requalification adds a new row; nothing is overwritten."""

    person = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="qualifications")
    qualification = models.ForeignKey(Qualification, on_delete=models.PROTECT, related_name="holders")
    valid_from = models.DateTimeField()
    valid_until = models.DateTimeField()
    record = models.ForeignKey(TrainingRecord, on_delete=models.PROTECT, related_name="qualifications_granted")
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    revocation_reason = models.TextField(blank=True)

    class Meta:
        db_table = "training_personqualification"
        ordering = ["person", "qualification", "-valid_until"]

    def __str__(self) -> str:
        return f"{self.person} — {self.qualification} until {self.valid_until:%Y-%m-%d}"
