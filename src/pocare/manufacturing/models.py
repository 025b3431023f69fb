"""The electronic batch record (P11-10f, P11-10h, DI-ALCOA): one patient's batch at one site on one
unit, executed step by step against the master-file version it keeps for ever; the values and
materials of each step; device data and alarms; QC results.

Recorded values are never changed: a correction is a new row pointing at the one it corrects,
with its reason and its own signature, and both are shown (CH4-9). ``ImmutableRecord`` refuses
updates and deletes through the ORM.
"""

from __future__ import annotations

from typing import Any, ClassVar, NoReturn

from django.conf import settings
from django.db import models

from pocare.ledger.models import LedgerImmutableError
from pocare.ledger.records import ContentStamped


class ImmutableRecord(ContentStamped, models.Model):
    """A GMP record row written once: ``save`` inserts, nothing updates or deletes it. The event
    that records it carries its content hash (``ledger.records``), so an edit below the ORM is found."""

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise LedgerImmutableError(f"{type(self).__name__} rows are never changed; record a correction")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise LedgerImmutableError(f"{type(self).__name__} rows are kept for the life of the record")


class LotStatus(models.TextChoices):
    QUARANTINE = "quarantine", "Quarantine"
    RELEASED = "released", "Released"
    REJECTED = "rejected", "Rejected"


class MaterialLot(models.Model):
    """A lot of a material of the bill of materials, received at a site; usable in a step only
    when released, unexpired and at the batch's site."""

    site = models.ForeignKey("network.Site", on_delete=models.PROTECT, related_name="material_lots")
    material_code = models.CharField(max_length=64, help_text="The master file's material code, e.g. TS520.")
    name = models.CharField(max_length=200)
    lot_number = models.CharField(max_length=60)
    supplier = models.CharField(max_length=120, blank=True)
    expiry_date = models.DateField()
    status = models.CharField(max_length=12, choices=LotStatus.choices, default=LotStatus.QUARANTINE)
    received_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    received_at = models.DateTimeField()
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "manufacturing_materiallot"
        ordering = ["site", "material_code", "expiry_date"]
        constraints = [models.UniqueConstraint(fields=["site", "material_code", "lot_number"],
                                               name="manufacturing_lot_unique")]
        # A supplier's lot received at many sites: the recall finds them all (supply.recall).
        indexes = [models.Index(fields=["material_code", "lot_number"], name="manufacturing_lot_number")]

    def __str__(self) -> str:
        return f"{self.material_code} lot {self.lot_number}"

    def signed_content(self) -> dict[str, Any]:
        """What the release (or rejection) signature binds to; a lot is decided once."""
        return {"site": self.site_id, "material": self.material_code, "lot": self.lot_number,
                "expiry": self.expiry_date, "status": self.status, "decided_by": self.decided_by_id,
                "decided_at": self.decided_at}


class BatchStatus(models.TextChoices):
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETED = "completed", "Manufacture completed"
    ABORTED = "aborted", "Aborted (manufacturing failure)"


class BatchOrigin(models.TextChoices):
    """How the record came to be: executed in POCare, or loaded as history by the demo loader."""

    EXECUTED = "executed", "Executed in POCare"
    DEMO_HISTORY = "demo_history", "Demo history (loaded, not executed)"


class Batch(models.Model):
    """One patient's batch: a therapy order made at an active, authorized site on one unit,
    against the master-file version that was effective there when it started (kept for ever)."""

    reference = models.CharField(max_length=24, unique=True, help_text="e.g. MAD-2026-0042")
    order = models.OneToOneField("custody.TherapyOrder", on_delete=models.PROTECT, related_name="batch")
    collection = models.ForeignKey("custody.Collection", on_delete=models.PROTECT, related_name="batches")
    site = models.ForeignKey("network.Site", on_delete=models.PROTECT, related_name="batches")
    unit = models.ForeignKey("network.ManufacturingUnit", on_delete=models.PROTECT, related_name="batches")
    masterfile_version = models.ForeignKey("masterfile.MasterFileVersion", on_delete=models.PROTECT,
                                           related_name="batches")
    status = models.CharField(max_length=12, choices=BatchStatus.choices, default=BatchStatus.IN_PROGRESS)
    origin = models.CharField(max_length=14, choices=BatchOrigin.choices, default=BatchOrigin.EXECUTED)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.TextField(blank=True)

    class Meta:
        db_table = "manufacturing_batch"
        ordering = ["-started_at", "-pk"]
        # The batch list is newest first: for one site through the first index, for the Control Site
        # (every site) through the second, which reads only the page's rows instead of sorting every
        # batch of the network (issue 15: 47 ms at 11,000 batches, 0.5 ms with it).
        indexes = [models.Index(fields=["site", "started_at"], name="manufacturing_batch_site_idx"),
                   models.Index(fields=["started_at", "id"], name="mfg_batch_started_idx")]

    def __str__(self) -> str:
        return f"Batch {self.reference}"

    def signed_content(self) -> dict[str, Any]:
        return {"reference": self.reference, "order": self.order_id, "collection": self.collection_id,
                "site": self.site_id, "unit": self.unit_id, "version": self.masterfile_version_id,
                "started_by": self.started_by_id, "started_at": self.started_at}


class BatchAbort(ImmutableRecord):
    """Why and by whom a batch was stopped (a manufacturing failure); signed (rejected)."""

    batch = models.OneToOneField(Batch, on_delete=models.PROTECT, related_name="abort")
    reason = models.TextField()
    aborted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    aborted_at = models.DateTimeField()

    class Meta:
        db_table = "manufacturing_batchabort"

    def __str__(self) -> str:
        return f"{self.batch.reference} aborted"

    def signed_content(self) -> dict[str, Any]:
        return {"batch": self.batch_id, "reason": self.reason, "aborted_by": self.aborted_by_id,
                "aborted_at": self.aborted_at}


class StepStatus(models.TextChoices):
    IN_PROGRESS = "in_progress", "In progress"
    AWAITING_VERIFICATION = "awaiting_verification", "Awaiting second-person verification"
    COMPLETE = "complete", "Complete"
    SKIPPED = "skipped", "Skipped (not applicable)"


class StepExecution(models.Model):
    """One step of the batch's master-file version as it was done: who started, performed and
    verified it, when, on which unit. Its values, materials and signatures hang off it."""

    #: What ``signed_content`` follows, prefetched when many signatures are checked at once.
    signed_content_related: ClassVar[tuple[str, ...]] = ("values", "materials")

    batch = models.ForeignKey(Batch, on_delete=models.PROTECT, related_name="steps")
    position = models.PositiveIntegerField(help_text="Index of the step in the process, from 0.")
    step_id = models.CharField(max_length=64)
    unit_operation = models.CharField(max_length=64)
    status = models.CharField(max_length=24, choices=StepStatus.choices, default=StepStatus.IN_PROGRESS)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    started_at = models.DateTimeField()
    performed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="+")
    performed_at = models.DateTimeField(null=True, blank=True)
    verified_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+")
    verified_at = models.DateTimeField(null=True, blank=True)
    equipment = models.ForeignKey("network.ManufacturingUnit", null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="+", help_text="The unit used, when the step needs a device.")
    skip_reason = models.TextField(blank=True)
    notes = models.TextField(blank=True)
    window_deviation = models.ForeignKey(
        "quality.Deviation", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="The deviation of a performance outside the master file's time window (opened or referenced).")

    class Meta:
        db_table = "manufacturing_stepexecution"
        ordering = ["batch", "position"]
        constraints = [models.UniqueConstraint(fields=["batch", "position"], name="manufacturing_step_unique")]
        # The work queue "steps awaiting your verification" is counted on every page of the people who
        # verify; at any moment a handful of the network's steps wait, among hundreds of thousands done.
        # A partial index holds only those few (issue 15: a sequential scan of 162,000 steps otherwise).
        indexes = [models.Index(fields=["performed_at"], condition=models.Q(status="awaiting_verification"),
                                name="mfg_step_awaiting_idx")]

    def __str__(self) -> str:
        return f"{self.batch.reference} step {self.step_id}"

    @property
    def done(self) -> bool:
        return self.status in (StepStatus.COMPLETE, StepStatus.SKIPPED)

    def signed_content(self) -> dict[str, Any]:
        """What the performer's and the verifier's signatures bind to: the step as first recorded.
        Corrections are rows of their own with their own signatures, so a correction does not
        break the step's signature; an edit of an original value does. Reads ``values`` and
        ``materials`` through ``.all()`` so that a prefetched batch page costs no extra query."""
        values = sorted((v.parameter_id, v.value, v.unit) for v in self.values.all() if v.corrects_id is None)
        materials = sorted((m.material_code, m.lot_id, str(m.quantity)) for m in self.materials.all())
        return {"batch": self.batch_id, "step": self.step_id, "position": self.position,
                "performed_by": self.performed_by_id, "performed_at": self.performed_at,
                "equipment": self.equipment_id, "skip_reason": self.skip_reason, "notes": self.notes,
                "values": [list(v) for v in values], "materials": [list(m) for m in materials],
                **({"window_deviation": self.window_deviation_id} if self.window_deviation_id else {})}


class StepValue(ImmutableRecord):
    """A value recorded for a parameter of a step, with its check against the master file at that
    moment. A correction is a new StepValue with ``corrects`` set, a reason and a signature."""

    step = models.ForeignKey(StepExecution, on_delete=models.PROTECT, related_name="values")
    parameter_id = models.CharField(max_length=64)
    value = models.JSONField(help_text="The typed value: number, whole number, text, true/false or a choice.")
    unit = models.CharField(max_length=20, blank=True)
    in_range = models.BooleanField(null=True, help_text="Empty when the parameter has no range or target.")
    critical = models.BooleanField(default=False)
    deviation = models.ForeignKey("quality.Deviation", null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="+")
    entered_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    entered_at = models.DateTimeField()
    corrects = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="correction")
    correction_reason = models.TextField(blank=True)

    class Meta:
        db_table = "manufacturing_stepvalue"
        ordering = ["step", "parameter_id", "entered_at", "pk"]

    def __str__(self) -> str:
        return f"{self.parameter_id} = {self.value}{(' ' + self.unit) if self.unit else ''}"

    def signed_content(self) -> dict[str, Any]:
        return {"step": self.step_id, "parameter": self.parameter_id, "value": self.value, "unit": self.unit,
                "in_range": self.in_range, "entered_by": self.entered_by_id, "entered_at": self.entered_at,
                "corrects": self.corrects_id, "reason": self.correction_reason}


FEFO_REASON_MAX = 500  # characters: why a step took a lot other than the first to expire


class MaterialUse(ImmutableRecord):
    """A material lot used at a step (ATMP-TRACE: everything in contact with the cells)."""

    step = models.ForeignKey(StepExecution, on_delete=models.PROTECT, related_name="materials")
    lot = models.ForeignKey(MaterialLot, on_delete=models.PROTECT, related_name="uses")
    material_code = models.CharField(max_length=64)
    quantity = models.DecimalField(max_digits=10, decimal_places=3)
    recorded_at = models.DateTimeField()
    #: Why this lot and not the one that expires first (first expiry, first out), when it was not.
    fefo_reason = models.TextField(blank=True, default="")

    # Added after uses were stamped: bound to the row's hash only where it holds a reason.
    content_when_set = ("fefo_reason",)

    class Meta:
        db_table = "manufacturing_materialuse"
        ordering = ["step", "material_code"]

    def __str__(self) -> str:
        return f"{self.material_code} × {self.quantity:g}"


class DevicePush(ImmutableRecord):
    """One push of process data by an automated system (token client). The idempotency key makes
    a repeated push store nothing twice. Keys belong to the client (the person the token acts
    as): another client's key is simply another key, so it neither collides nor reveals anything."""

    idempotency_key = models.CharField(max_length=100)
    pushed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    received_at = models.DateTimeField()
    rows = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64, help_text="Of the rows as received.")

    class Meta:
        db_table = "manufacturing_devicepush"
        ordering = ["received_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["pushed_by", "idempotency_key"], name="devicepush_key_per_client"),
        ]

    def __str__(self) -> str:
        return f"Device push {self.idempotency_key} ({self.rows} rows)"


class DeviceReading(ImmutableRecord):
    """One process value reported by the device for a batch (P11-10h: the pushing token names
    the source)."""

    push = models.ForeignKey(DevicePush, on_delete=models.PROTECT, related_name="readings")
    batch = models.ForeignKey(Batch, on_delete=models.PROTECT, related_name="readings")
    parameter_id = models.CharField(max_length=64)
    at = models.DateTimeField()
    value = models.FloatField()
    out_of_limits = models.BooleanField(default=False)

    class Meta:
        db_table = "manufacturing_devicereading"
        ordering = ["batch", "parameter_id", "at"]
        indexes = [models.Index(fields=["batch", "parameter_id", "at"], name="manufacturing_reading_idx")]

    def __str__(self) -> str:
        return f"{self.parameter_id} = {self.value:g} at {self.at:%Y-%m-%d %H:%M} UTC"


class DeviceReadingCorrection(ImmutableRecord):
    """A correction of a device reading, kept beside the original (CH4-9, DI-ALCOA): the corrected
    value, or none when the reading is struck out as invalid (a sensor fault, a wrong clock), with
    the reason, who and when, and the corrector's signature. The reading stays as the device sent it."""

    reading = models.OneToOneField(DeviceReading, on_delete=models.PROTECT, related_name="correction")
    value = models.FloatField(null=True, blank=True, help_text="Empty: the reading is invalid, with no replacement.")
    reason = models.TextField()
    corrected_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    corrected_at = models.DateTimeField()

    class Meta:
        db_table = "manufacturing_devicereadingcorrection"
        ordering = ["corrected_at", "pk"]

    def __str__(self) -> str:
        now = "invalid" if self.value is None else f"{self.value:g}"
        return f"Correction of reading {self.reading_id}: {now}"

    def signed_content(self) -> dict[str, Any]:
        return {"reading": self.reading_id, "value": self.value, "reason": self.reason,
                "corrected_by": self.corrected_by_id, "corrected_at": self.corrected_at}


class Alarm(models.Model):
    """A device value outside the master file's alarm limits; readings of the same parameter that
    stay outside while the alarm is open are counted on it. A person acknowledges it (A11-ALARM)."""

    batch = models.ForeignKey(Batch, on_delete=models.PROTECT, related_name="alarms")
    parameter_id = models.CharField(max_length=64)
    first_reading = models.ForeignKey(DeviceReading, on_delete=models.PROTECT, related_name="+")
    raised_at = models.DateTimeField(help_text="Time of the first reading outside the limits (device clock).")
    alarm_min = models.FloatField(null=True, blank=True)
    alarm_max = models.FloatField(null=True, blank=True)
    extreme_value = models.FloatField()
    readings_outside = models.PositiveIntegerField(default=1)
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                        related_name="+")
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledgement = models.TextField(blank=True)
    deviation = models.ForeignKey("quality.Deviation", null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="+")

    class Meta:
        db_table = "manufacturing_alarm"
        ordering = ["raised_at", "pk"]

    def __str__(self) -> str:
        return f"Alarm {self.parameter_id} on {self.batch.reference}"

    def signed_content(self) -> dict[str, Any]:
        return {"batch": self.batch_id, "parameter": self.parameter_id, "raised_at": self.raised_at,
                "extreme": self.extreme_value, "acknowledged_by": self.acknowledged_by_id,
                "acknowledged_at": self.acknowledged_at, "acknowledgement": self.acknowledgement}


class QcResult(ImmutableRecord):
    """A QC result for a quality attribute of the batch's specification, evaluated against its
    acceptance criterion when entered. Out of specification opens a laboratory investigation."""

    batch = models.ForeignKey(Batch, on_delete=models.PROTECT, related_name="qc_results")
    attribute_id = models.CharField(max_length=64)
    value_number = models.FloatField(null=True, blank=True)
    value_text = models.CharField(max_length=100, blank=True)
    unit = models.CharField(max_length=20, blank=True)
    conforms = models.BooleanField()
    method = models.CharField(max_length=200)
    tested_at = models.DateTimeField(help_text="When the test was read (UTC).")
    entered_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    entered_at = models.DateTimeField()
    deviation = models.ForeignKey("quality.Deviation", null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="+")
    corrects = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="correction")
    correction_reason = models.TextField(blank=True)

    class Meta:
        db_table = "manufacturing_qcresult"
        ordering = ["batch", "attribute_id", "entered_at", "pk"]

    def __str__(self) -> str:
        return f"{self.attribute_id} = {self.display_value}"

    @property
    def display_value(self) -> str:
        if self.value_number is not None:
            return f"{self.value_number:g}{(' ' + self.unit) if self.unit else ''}"
        return self.value_text

    def signed_content(self) -> dict[str, Any]:
        return {"batch": self.batch_id, "attribute": self.attribute_id, "number": self.value_number,
                "text": self.value_text, "unit": self.unit, "conforms": self.conforms,
                "tested_at": self.tested_at, "entered_by": self.entered_by_id, "corrects": self.corrects_id,
                "reason": self.correction_reason}
