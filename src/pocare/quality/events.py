"""Ledger event types of the quality app."""

from django.db import models

from pocare.ledger.events import event_types


@event_types
class QualityEvent(models.TextChoices):
    DEVIATION_OPENED = "quality.deviation_opened", "Deviation opened"
