"""Ledger event types of the manufacturing app."""

from django.db import models

from pocare.ledger.events import event_types


@event_types
class ManufacturingEvent(models.TextChoices):
    LOT_RECEIVED = "manufacturing.lot_received", "Material lot received"
    LOT_DECIDED = "manufacturing.lot_decided", "Material lot released or rejected"
    BATCH_STARTED = "manufacturing.batch_started", "Batch started"
    BATCH_ENDED = "manufacturing.batch_ended", "Batch completed or aborted"
    STEP_STARTED = "manufacturing.step_started", "Batch step started"
    STEP_RECORDED = "manufacturing.step_recorded", "Batch step recorded and signed"
    STEP_VERIFIED = "manufacturing.step_verified", "Batch step verified by a second person"
    STEP_SKIPPED = "manufacturing.step_skipped", "Batch step skipped as not applicable"
    VALUE_CORRECTED = "manufacturing.value_corrected", "Recorded value corrected"
    DEVICE_DATA_PUSHED = "manufacturing.device_data_pushed", "Device process data received"
    READING_CORRECTED = "manufacturing.reading_corrected", "Device reading corrected or marked invalid"
    ALARM_RAISED = "manufacturing.alarm_raised", "Device alarm raised"
    ALARM_ACKNOWLEDGED = "manufacturing.alarm_acknowledged", "Device alarm acknowledged"
    QC_RESULT_RECORDED = "manufacturing.qc_result_recorded", "QC result recorded"
    QC_RESULT_CORRECTED = "manufacturing.qc_result_corrected", "QC result corrected"
    HISTORY_LOADED = "manufacturing.history_loaded", "Demo history batch loaded (not executed)"
