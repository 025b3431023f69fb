"""Ledger event types of the custody app."""

from django.db import models

from pocare.ledger.events import event_types


@event_types
class CustodyEvent(models.TextChoices):
    ORDER_CREATED = "custody.order_created", "Therapy order received"
    ORDER_ACCEPTED = "custody.order_accepted", "Therapy order accepted (COI assigned)"
    ORDER_STATUS_CHANGED = "custody.order_status_changed", "Therapy order status changed"
    COLLECTION_RECORDED = "custody.collection_recorded", "Collection recorded (DIN assigned)"
    HANDOFF_COMPLETED = "custody.handoff_completed", "Custody hand-off completed"
    HANDOFF_BLOCKED = "custody.handoff_blocked", "Custody hand-off blocked: identifier mismatch"
    SHIPMENT_CREATED = "custody.shipment_created", "Shipment with data logger dispatched"
    TEMPERATURES_UPLOADED = "custody.temperatures_uploaded", "Data-logger temperatures uploaded"
    TEMPERATURE_CORRECTED = "custody.temperature_corrected", "Logger reading corrected or marked invalid"
    LABEL_PRINTED = "custody.label_printed", "Labels printed"
