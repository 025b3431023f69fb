"""Ledger event types of the analytics app."""

from django.db import models

from pocare.ledger.events import event_types


@event_types
class AnalyticsEvent(models.TextChoices):
    MONITOR_RUN = "analytics.monitor_run", "Comparability monitor run"
    PQR_GENERATED = "analytics.pqr_generated", "Product quality review generated"
