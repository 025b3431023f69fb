"""Ledger event types of the network app."""

from django.db import models

from pocare.ledger.events import event_types


@event_types
class NetworkEvent(models.TextChoices):
    SITE_REGISTERED = "network.site_registered", "Site registered"
