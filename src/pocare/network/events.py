"""Ledger event types of the network app."""

from django.db import models

from pocare.ledger.events import event_types


@event_types
class NetworkEvent(models.TextChoices):
    SITE_REGISTERED = "network.site_registered", "Site registered"
    SITE_TRANSITIONED = "network.site_transitioned", "Site lifecycle transition"
    READINESS_RECORDED = "network.readiness_recorded", "Readiness checklist item recorded"
    PERFORMANCE_RUN_RECORDED = "network.performance_run_recorded", "Process performance run recorded"
    UNIT_REGISTERED = "network.unit_registered", "Manufacturing unit registered"
    UNIT_REQUALIFIED = "network.unit_requalified", "Manufacturing unit requalified"
    UNIT_STATUS_CHANGED = "network.unit_status_changed", "Manufacturing unit status changed"
    SITE_AUTHORIZED = "network.site_authorized", "Site authorized for a master file"
    AUTHORIZATION_REVOKED = "network.authorization_revoked", "Site authorization revoked"
    ANNUAL_REPORT_GENERATED = "network.annual_report_generated", "Annual report on the master file generated"
