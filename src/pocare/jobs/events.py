"""Ledger event types of the jobs app: what a person does to a job, and a job given up on."""

from django.db import models

from pocare.ledger.events import event_types


@event_types
class JobEvent(models.TextChoices):
    CANCELLED = "jobs.cancelled", "Job cancelled"
    RETRIED = "jobs.retried", "Job retried"
    FAILED = "jobs.failed", "Job failed (no tries left)"
    FILE_DOWNLOADED = "jobs.file_downloaded", "Job's file downloaded"
