"""Quality events: deviations raised by the batch record, QC, custody and device alarms, or by hand.

This is the part the batch record needs (REQUIREMENTS.md DEV-CLASS, ATMP-OOS): a deviation is
opened, with its source record, site, product and batch, and never deleted. Classification,
investigation, CAPA and closing are the quality issue's (they extend this model).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


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

    class Meta:
        db_table = "quality_deviation"
        ordering = ["-opened_at", "-pk"]
        indexes = [models.Index(fields=["site", "status"], name="quality_dev_site_status_idx")]

    def __str__(self) -> str:
        return f"{self.reference}: {self.title}"
