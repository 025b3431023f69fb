"""Ledger event types of the costs app."""

from django.db import models

from pocare.ledger.events import event_types


@event_types
class CostsEvent(models.TextChoices):
    MODEL_DRAFTED = "costs.model_drafted", "Cost model drafted"
    MODEL_APPROVED = "costs.model_approved", "Cost model approved (signed); the previous one superseded"
    REPORT_SIGNED = "costs.report_signed", "Cost report of a site and period signed"
    REPORT_EXPORTED = "costs.report_exported", "Cost report exported (CSV or PDF)"
    REPORT_CHECKED = "costs.report_checked", "Cost report checked against the records (its figures computed again)"
