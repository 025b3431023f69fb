"""The chain of identity and custody (ATMP-TRACE, ATMP-SM, ISBT-DIN, ISBT-COI): a patient's therapy
order with its Chain of Identity identifier, the collections with their DINs, every hand-off of
the material from the patient's vein back to the patient's vein, and the shipping data loggers.

Nothing here is deleted: a refused hand-off (the presented label did not match) is kept beside
the one that later succeeded.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models


class OrderStatus(models.TextChoices):
    """Where a therapy order is. Each move is a custody service; see ORDER_TRANSITIONS."""

    REQUESTED = "requested", "Requested"
    ACCEPTED = "accepted", "Accepted (COI assigned)"
    IN_MANUFACTURE = "in_manufacture", "In manufacture"
    DISPATCHED = "dispatched", "Product dispatched"
    INFUSED = "infused", "Infused"
    CANCELLED = "cancelled", "Cancelled"


class TherapyOrder(models.Model):
    """One therapy event for one patient: ordered by the treating physician at a hospital and
    manufactured at a POCare site. Accepting it assigns the Chain of Identity identifier (COI),
    which is never edited afterwards (ISBT-COI)."""

    site = models.ForeignKey("network.Site", on_delete=models.PROTECT, related_name="therapy_orders",
                             help_text="The POCare site that manufactures the product.")
    treating_site = models.ForeignKey("network.Site", on_delete=models.PROTECT, related_name="+",
                                      help_text="Where the patient is treated (collection and infusion).")
    product = models.ForeignKey("masterfile.Product", on_delete=models.PROTECT, related_name="therapy_orders")
    recipient_id = models.CharField(max_length=40, help_text="The hospital's pseudonymous patient identifier.")
    recipient_birth_year = models.PositiveSmallIntegerField(null=True, blank=True)
    recipient_weight_kg = models.DecimalField(max_digits=5, decimal_places=1)
    indication = models.CharField(max_length=120)
    status = models.CharField(max_length=16, choices=OrderStatus.choices, default=OrderStatus.REQUESTED)
    coi = models.CharField(max_length=20, unique=True, null=True, blank=True,
                           help_text="Chain of Identity identifier, assigned when the order is accepted.")
    ordered_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    ordered_at = models.DateTimeField()
    accepted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+")
    accepted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "custody_therapyorder"
        ordering = ["-ordered_at", "-pk"]
        # A patient's orders by the hospital's pseudonym: the recall's trace back (supply.recall).
        indexes = [models.Index(fields=["recipient_id"], name="custody_order_recipient")]

    def __str__(self) -> str:
        return f"{self.coi or 'order #' + str(self.pk)} ({self.recipient_id})"


class Collection(models.Model):
    """A collection of starting material (apheresis) for a therapy order, identified by its DIN
    (ISBT-DIN) and described as ATMP-SM asks: collection site, date, autologous or allogeneic,
    donor tests."""

    order = models.ForeignKey(TherapyOrder, on_delete=models.PROTECT, related_name="collections")
    din = models.CharField(max_length=13, unique=True, help_text="Facility (5) + year (2) + sequence (6).")
    flags = models.CharField(max_length=2, default="00")
    check_character = models.CharField(max_length=1, help_text="ISO 7064 mod 37-2 over the 13 characters.")
    collection_site = models.ForeignKey("network.Site", on_delete=models.PROTECT, related_name="+")
    collection_started_at = models.DateTimeField()
    collection_ended_at = models.DateTimeField()
    autologous = models.BooleanField(default=True)
    volume_ml = models.DecimalField(max_digits=7, decimal_places=1)
    donor_tests = models.JSONField(default=dict, help_text="Infectious-disease markers, e.g. {'HIV': 'negative'}.")
    expires_at = models.DateTimeField(null=True, blank=True,
                                      help_text="Until when the starting material may be used (on its label).")
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField()

    class Meta:
        db_table = "custody_collection"
        ordering = ["collection_ended_at", "pk"]

    def __str__(self) -> str:
        return f"DIN {self.din_printed}"

    @property
    def din_printed(self) -> str:
        """The DIN as printed in eye-readable form: the 13 characters, flags and the boxed check."""
        return f"{self.din} {self.flags} {self.check_character}"


class HandoffKind(models.TextChoices):
    """The hand-offs along the chain, in the order they happen (see HANDOFF_ORDER)."""

    COLLECTION = "collection", "Collection"
    DISPATCH_TO_SITE = "dispatch_to_site", "Dispatch to the POCare site"
    RECEIPT_AT_SITE = "receipt_at_site", "Receipt at the POCare site"
    MANUFACTURE_START = "manufacture_start", "Start of manufacture"
    CRYOPRESERVATION = "cryopreservation", "Cryopreservation"
    FRESH_HOLD = "fresh_hold", "Fresh hold (2–8 °C)"
    DISPATCH_TO_HOSPITAL = "dispatch_to_hospital", "Dispatch to the treating hospital"
    RECEIPT_AT_HOSPITAL = "receipt_at_hospital", "Receipt at the treating hospital"
    THAW = "thaw", "Thaw"
    INFUSION = "infusion", "Infusion"


class HandoffOutcome(models.TextChoices):
    COMPLETED = "completed", "Completed"
    BLOCKED = "blocked", "Blocked: identifier mismatch"


class Handoff(models.Model):
    """One hand-off of the material: who, where, when (UTC, with the place's time zone), and the
    scans of the identifier expected and the one presented. A mismatch blocks the hand-off (the
    attempt is kept, outcome *blocked*) and opens a deviation."""

    order = models.ForeignKey(TherapyOrder, on_delete=models.PROTECT, related_name="handoffs")
    collection = models.ForeignKey(Collection, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="handoffs")
    batch = models.ForeignKey("manufacturing.Batch", null=True, blank=True, on_delete=models.PROTECT,
                              related_name="handoffs")
    kind = models.CharField(max_length=24, choices=HandoffKind.choices)
    outcome = models.CharField(max_length=10, choices=HandoffOutcome.choices)
    site = models.ForeignKey("network.Site", on_delete=models.PROTECT, related_name="+",
                             help_text="Where the hand-off happened.")
    location = models.CharField(max_length=200, blank=True, help_text="Room, ward or courier, as people say it.")
    time_zone = models.CharField(max_length=64, help_text="The place's IANA time zone at the time.")
    occurred_at = models.DateTimeField(help_text="UTC, from the server clock.")
    performed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    performed_by_name = models.CharField(max_length=200)
    expected_identifier = models.CharField(max_length=40)
    presented_identifier = models.CharField(max_length=80)
    deviation = models.ForeignKey("quality.Deviation", null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="+")
    notes = models.TextField(blank=True)

    class Meta:
        db_table = "custody_handoff"
        ordering = ["occurred_at", "pk"]
        indexes = [models.Index(fields=["order", "kind"], name="custody_handoff_order_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.get_outcome_display().split(':')[0].lower()})"

    @property
    def blocked(self) -> bool:
        return self.outcome == HandoffOutcome.BLOCKED

    @property
    def blocked_reason(self) -> str:
        """Why the scan was refused, in words ('' for a completed hand-off)."""
        if not self.blocked:
            return ""
        return (f"identifier mismatch: presented {self.presented_identifier!r}, "
                f"expected {self.expected_identifier!r}")

    def signed_content(self) -> dict[str, Any]:
        return {"order": self.order_id, "kind": self.kind, "outcome": self.outcome, "site": self.site_id,
                "occurred_at": self.occurred_at, "performed_by": self.performed_by_id,
                "expected": self.expected_identifier, "presented": self.presented_identifier}


class ShipmentLeg(models.TextChoices):
    """Which limits of the master file's ``transport`` section a shipment is read against."""

    APHERESIS = "apheresis", "Apheresis to the POCare site"
    FRESH_PRODUCT = "fresh_product", "Fresh product to the hospital"
    CRYOPRESERVED_PRODUCT = "cryopreserved_product", "Cryopreserved product to the hospital"


class Shipment(models.Model):
    """A shipment with its data logger; the temperature limits are copied from the effective
    master file when it is dispatched, so later changes to the master file do not re-judge it."""

    order = models.ForeignKey(TherapyOrder, on_delete=models.PROTECT, related_name="shipments")
    leg = models.CharField(max_length=24, choices=ShipmentLeg.choices)
    logger_id = models.CharField(max_length=60)
    min_celsius = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    max_celsius = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    dispatched_at = models.DateTimeField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        db_table = "custody_shipment"
        ordering = ["dispatched_at", "pk"]

    def __str__(self) -> str:
        return f"{self.get_leg_display()} (logger {self.logger_id})"


class TemperatureUpload(models.Model):
    """One upload of a data logger's readings (CSV or API), with what excursion detection found."""

    shipment = models.ForeignKey(Shipment, on_delete=models.PROTECT, related_name="uploads")
    uploaded_at = models.DateTimeField()
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    source = models.CharField(max_length=10, help_text="csv or api")
    readings = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64, help_text="Of the uploaded content, as received.")
    excursions = models.JSONField(default=list, help_text="[{start, end, extreme, readings}] outside the limits.")
    deviation = models.ForeignKey("quality.Deviation", null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="+")

    class Meta:
        db_table = "custody_temperatureupload"
        ordering = ["uploaded_at", "pk"]

    def __str__(self) -> str:
        return f"Logger upload of {self.readings} readings"


class TemperatureReading(models.Model):
    """One logged temperature."""

    upload = models.ForeignKey(TemperatureUpload, on_delete=models.PROTECT, related_name="rows")
    shipment = models.ForeignKey(Shipment, on_delete=models.PROTECT, related_name="readings")
    at = models.DateTimeField()
    celsius = models.DecimalField(max_digits=6, decimal_places=2)
    in_limits = models.BooleanField()

    class Meta:
        db_table = "custody_temperaturereading"
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.celsius} °C at {self.at:%Y-%m-%d %H:%M} UTC"


class TemperatureReadingCorrection(models.Model):
    """A correction of a logged temperature, kept beside the original (CH4-9, DI-ALCOA): the
    corrected value, or none when the reading is struck out as invalid, with the reason, who and
    when, and the corrector's signature. The reading stays as the logger recorded it."""

    reading = models.OneToOneField(TemperatureReading, on_delete=models.PROTECT, related_name="correction")
    celsius = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True,
                                  help_text="Empty: the reading is invalid, with no replacement.")
    reason = models.TextField()
    corrected_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    corrected_at = models.DateTimeField()

    class Meta:
        db_table = "custody_temperaturereadingcorrection"
        ordering = ["corrected_at", "pk"]

    def __str__(self) -> str:
        now = "invalid" if self.celsius is None else f"{self.celsius} °C"
        return f"Correction of logger reading {self.reading_id}: {now}"

    def signed_content(self) -> dict[str, Any]:
        return {"reading": self.reading_id, "celsius": None if self.celsius is None else str(self.celsius),
                "reason": self.reason, "corrected_by": self.corrected_by_id, "corrected_at": self.corrected_at}
