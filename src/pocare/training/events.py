"""Ledger event types of training."""

from django.db import models

from pocare.ledger.events import event_types


@event_types
class TrainingEvent(models.TextChoices):
    QUALIFICATION_DEFINED = "training.qualification_defined", "Qualification defined"
    CURRICULUM_CHANGED = "training.curriculum_changed", "Curriculum changed"
    RECORDED = "training.recorded", "Training recorded (trainer signed)"
    ACKNOWLEDGED = "training.acknowledged", "Training signed by the trainee"
    QUALIFIED = "training.qualified", "Qualification granted"
    QUALIFICATION_REVOKED = "training.qualification_revoked", "Qualification revoked"
