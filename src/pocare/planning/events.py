"""Ledger event types of the planning app."""

from django.db import models

from pocare.ledger.events import event_types


@event_types
class PlanningEvent(models.TextChoices):
    RUN_STARTED = "planning.run_started", "Planning run started"
    RUN_RUNNING = "planning.run_running", "Planning run running (work began)"
    RUN_FINISHED = "planning.run_finished", "Planning run finished"
