"""Ledger event types of the quality app."""

from django.db import models

from pocare.ledger.events import event_types


@event_types
class QualityEvent(models.TextChoices):
    DEVIATION_OPENED = "quality.deviation_opened", "Deviation opened"
    DEVIATION_CLASSIFIED = "quality.deviation_classified", "Deviation classified (ICH Q9 scoring)"
    ESCALATION_RULE_SET = "quality.escalation_rule_set", "Escalation rule set"
    INVESTIGATION_RECORDED = "quality.investigation_recorded", "Investigation recorded"
    CAPA_ACTION_ADDED = "quality.capa_action_added", "CAPA action added"
    CAPA_ACTION_DONE = "quality.capa_action_done", "CAPA action done"
    CAPA_EFFECTIVENESS_CHECKED = "quality.capa_effectiveness_checked", "CAPA effectiveness checked"
    IMPACT_ASSESSED = "quality.impact_assessed", "Deviation impact assessed"
    DEVIATION_CLOSED = "quality.deviation_closed", "Deviation closed"
    NOTIFICATION_READ = "quality.notification_read", "Notification read"
    SIGNAL_RAISED = "quality.signal_raised", "Quality signal raised"
    SIGNAL_RESOLVED = "quality.signal_resolved", "Quality signal resolved"
