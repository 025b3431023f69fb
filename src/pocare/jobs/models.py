"""The queue: one row per job, and one per worker process that has announced itself.

A job's row is operational state (like a planning run's progress): the work a job does records its
own ledger events, and what a person does to a job (cancel, retry) and a job given up on are
ledger events of this app (``jobs.events``)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class Job(models.Model):
    """A piece of work for a worker: the task's dotted path and its keyword arguments (JSON), when it
    may run, how often it was tried, and how it ended. ``slot_key`` makes a scheduled run unique per
    slot, so several workers' schedulers enqueue it once."""

    task = models.CharField(max_length=200)
    kwargs = models.JSONField(default=dict, blank=True)
    label = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=12, choices=JobStatus.choices, default=JobStatus.QUEUED)
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    site_code = models.CharField(max_length=16, blank=True)
    run_after = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=120, blank=True)
    tries = models.PositiveIntegerField(default=0)
    max_tries = models.PositiveIntegerField(default=5)
    error = models.TextField(blank=True)
    result = models.JSONField(null=True, blank=True)
    slot_key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    # The file a job made (a bundle, a PDF, an export; ``pocare.jobs.files``): its name in
    # STORAGES["default"] (unguessable), what it is, its size and SHA-256, and the name it downloads as.
    file_name = models.CharField(max_length=300, blank=True)
    file_content_type = models.CharField(max_length=100, blank=True)
    file_size = models.PositiveBigIntegerField(null=True, blank=True)
    file_sha256 = models.CharField(max_length=64, blank=True)
    file_download_name = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["status", "run_after"], name="jobs_ready"),
                   models.Index(fields=["created_by", "-created_at"], name="jobs_by_starter")]

    def __str__(self) -> str:
        return f"Job {self.pk} {self.label or self.task}"


class Worker(models.Model):
    """A worker process as it last announced itself (every loop): the health check asks whether any
    worker was seen lately."""

    name = models.CharField(max_length=120, unique=True)
    started_at = models.DateTimeField()
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.name
