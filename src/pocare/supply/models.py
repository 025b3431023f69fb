"""Supply (SUP-STOCK, ATMP-TRACE): suppliers and their qualification, which supplier is approved for
which material, the stock locations of each site (its store, or a regional depot serving several
sites), and every movement of a material lot at a location.

Stock is never a stored number: the stock of a lot at a location is the sum of its movements'
signed quantities (``selectors.stock_levels``). A movement is written once and never changed; a
mistake is put right by another movement (an adjustment after a cycle count, with its reason and
signature). The lot itself, its status (quarantine, released, rejected) and its use at a step stay
manufacturing's (``MaterialLot``, ``MaterialUse``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from pocare.manufacturing.models import ImmutableRecord


class SupplierStatus(models.TextChoices):
    """A supplier's qualification: its lots are released only while it is approved or conditional."""

    APPROVED = "approved", "Approved"
    CONDITIONAL = "conditional", "Approved with conditions"
    DISQUALIFIED = "disqualified", "Disqualified"


#: The statuses under which a supplier's lots may be released and used.
QUALIFIED = frozenset({SupplierStatus.APPROVED, SupplierStatus.CONDITIONAL})


class Supplier(models.Model):
    """A supplier of materials, qualified by Control Site QA (EU GMP 5.26–5.29). Its status changes
    only through ``services.supplier_qualify``, signed, with the date and the reason kept here and
    every earlier status in the ledger."""

    name = models.CharField(max_length=120, unique=True,
                            help_text="As on the lots' delivery notes: a lot names its supplier by this name.")
    status = models.CharField(max_length=14, choices=SupplierStatus.choices)
    status_changed_at = models.DateTimeField()
    status_reason = models.TextField()
    status_changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def qualified(self) -> bool:
        return self.status in QUALIFIED

    def signed_content(self) -> dict[str, Any]:
        """What the qualification signature binds to."""
        return {"supplier": self.name, "status": self.status, "since": self.status_changed_at,
                "reason": self.status_reason}


class ApprovedSupplier(models.Model):
    """A supplier approved for one material of the bill of materials (by the master file's code).
    A material with at least one approved supplier is *supplier-managed*: its lots are released
    only when they come from one of them, qualified."""

    material_code = models.CharField(max_length=64)
    supplier = models.ForeignKey(Supplier, on_delete=models.PROTECT, related_name="materials")
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    approved_at = models.DateTimeField()
    lead_time_days = models.PositiveSmallIntegerField(
        default=14, validators=[MinValueValidator(1), MaxValueValidator(365)],
        help_text="Days from an order to its delivery (1–365): the reorder point and the twin's resupply use it.")

    class Meta:
        ordering = ["material_code", "supplier__name"]
        constraints = [models.UniqueConstraint(fields=["material_code", "supplier"],
                                               name="supply_supplier_once_per_material"),
                       models.CheckConstraint(condition=models.Q(lead_time_days__gte=1, lead_time_days__lte=365),
                                              name="supply_lead_time_1_365")]

    def __str__(self) -> str:
        return f"{self.supplier} for {self.material_code}"

    def signed_content(self) -> dict[str, Any]:
        """What the approval's signature binds to: who is approved for what, by whom and when (not the lead
        time, which QA may change afterwards, each change an event)."""
        return {"supplier": self.supplier_id, "material_code": self.material_code, "approved_by": self.approved_by_id,
                "approved_at": self.approved_at}


class MaterialStorage(models.Model):
    """How a material of the bill of materials is kept (SUP-STOCK, EU GMP 5.45): its temperature range in °C
    (either side may be open: ``≤ -150 °C`` has no lowest) and the condition in words ("2–8 °C refrigerated",
    "vapour phase of liquid nitrogen"). One row per material code, set by Control Site QA: one fact, one
    value, its earlier values in the ledger. A transfer between sites takes its logger limits from here.

    Kept by supply rather than on each master-file version's bill: the bill repeats a material in every
    version (and product) that uses it, so a range written there would be several values of one fact."""

    material_code = models.CharField(max_length=64, unique=True)
    min_celsius = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True,
                                      help_text="Lowest °C (inclusive); empty: no lowest.")
    max_celsius = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True,
                                      help_text="Highest °C (inclusive); empty: no highest.")
    condition = models.CharField(max_length=120, help_text="In words, as on the label: e.g. Refrigerated 2–8 °C.")
    set_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    set_at = models.DateTimeField()

    class Meta:
        ordering = ["material_code"]
        constraints = [
            models.CheckConstraint(condition=models.Q(min_celsius__isnull=False) | models.Q(max_celsius__isnull=False),
                                   name="supply_storage_some_limit"),
            models.CheckConstraint(condition=models.Q(min_celsius__isnull=True) | models.Q(max_celsius__isnull=True)
                                   | models.Q(min_celsius__lte=models.F("max_celsius")),
                                   name="supply_storage_low_below_high"),
        ]

    def __str__(self) -> str:
        return f"{self.material_code}: {self.range_text}"

    @property
    def range_text(self) -> str:
        """The range as people write it: ``2 to 8 °C``, ``≤ -150 °C``, ``≥ 15 °C``."""
        low, high = self.min_celsius, self.max_celsius
        if low is not None and high is not None:
            return f"{low.normalize():f} to {high.normalize():f} °C"
        if high is not None:
            return f"≤ {high.normalize():f} °C"
        return f"≥ {low.normalize():f} °C" if low is not None else "—"


class LocationKind(models.TextChoices):
    STORE = "store", "Site store"
    DEPOT = "depot", "Regional depot"


class StockLocation(models.Model):
    """Where stock is held: a site's store, or a regional depot (held by one site, serving several)."""

    site = models.ForeignKey("network.Site", on_delete=models.PROTECT, related_name="stock_locations",
                             help_text="The site that holds the location and answers for its stock.")
    code = models.CharField(max_length=20)
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=8, choices=LocationKind.choices, default=LocationKind.STORE)
    serves = models.ManyToManyField("network.Site", blank=True, related_name="depots",
                                    help_text="A depot's sites (a store serves its own site).")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["site", "code"]
        constraints = [models.UniqueConstraint(fields=["site", "code"], name="supply_location_code_per_site")]

    def __str__(self) -> str:
        return f"{self.code} ({self.get_kind_display().lower()})"


class MovementKind(models.TextChoices):
    """What happened to the stock; the sign of each kind's quantity is fixed (``SIGN``)."""

    RECEIVED = "received", "Received (into quarantine)"
    RELEASED = "released", "Released"
    REJECTED = "rejected", "Rejected"
    ISSUED = "issued", "Issued to a batch"
    CONSUMED = "consumed", "Consumed at a step"
    RETURNED = "returned", "Returned from a batch"
    EXPIRED = "expired", "Written off as expired"
    DESTROYED = "destroyed", "Destroyed"
    ADJUSTED = "adjusted", "Adjusted after a cycle count"
    TRANSFERRED_OUT = "transferred_out", "Transferred out"
    TRANSFERRED_IN = "transferred_in", "Transferred in"


#: The sign of each kind's quantity: +1 adds to the location's stock, -1 takes from it, 0 changes
#: nothing (a decision on the lot, kept on its stock card), None either way (a count's adjustment).
SIGN: dict[str, int | None] = {
    MovementKind.RECEIVED: 1, MovementKind.RELEASED: 0, MovementKind.REJECTED: 0, MovementKind.ISSUED: -1,
    MovementKind.CONSUMED: -1, MovementKind.RETURNED: 1, MovementKind.EXPIRED: -1, MovementKind.DESTROYED: -1,
    MovementKind.ADJUSTED: None, MovementKind.TRANSFERRED_OUT: -1, MovementKind.TRANSFERRED_IN: 1,
}


class StockMovement(ImmutableRecord):
    """One movement of a material lot at a location (SUP-STOCK, ATMP-TRACE): a signed quantity in
    the material's unit, who, when, why, the batch and material use it went to, and the ledger
    event that recorded it. Written once; stock is the sum of these rows."""

    location = models.ForeignKey(StockLocation, on_delete=models.PROTECT, related_name="movements")
    lot = models.ForeignKey("manufacturing.MaterialLot", on_delete=models.PROTECT, related_name="movements")
    kind = models.CharField(max_length=16, choices=MovementKind.choices)
    quantity = models.DecimalField(max_digits=14, decimal_places=3,
                                   help_text="Signed: what the movement adds to (or takes from) the location.")
    unit = models.CharField(max_length=20)
    batch = models.ForeignKey("manufacturing.Batch", null=True, blank=True, on_delete=models.PROTECT,
                              related_name="stock_movements")
    use = models.ForeignKey("manufacturing.MaterialUse", null=True, blank=True, on_delete=models.PROTECT,
                            related_name="stock_movements", help_text="The use at a step it accounts for.")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    occurred_at = models.DateTimeField()
    reason = models.TextField()
    # Set once, in the movement's own transaction, right after the event that stamps the row's
    # content is written (the event cannot name itself before it exists); kept out of the stamp.
    event = models.ForeignKey("ledger.Event", null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    content_exclude: ClassVar[tuple[str, ...]] = ("event_id",)

    class Meta:
        ordering = ["occurred_at", "pk"]
        indexes = [models.Index(fields=["lot", "location"], name="supply_movement_lot"),
                   models.Index(fields=["location", "occurred_at"], name="supply_movement_location")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.quantity:f} {self.unit} of {self.lot_id} at {self.location_id}"

    def signed_content(self) -> dict[str, Any]:
        """What a cycle count's signature binds to: the adjustment as recorded."""
        return {"location": self.location_id, "lot": self.lot_id, "kind": self.kind, "quantity": self.quantity,
                "unit": self.unit, "actor": self.actor_id, "at": self.occurred_at, "reason": self.reason}


class RecallStatus(models.TextChoices):
    OPEN = "open", "Open: the lot is held"
    CLOSED = "closed", "Closed"


class Recall(models.Model):
    """A recall of a supplier's lot of a material (SUP-RECALL, EU GMP Chapter 8): every lot of
    ``material_code`` numbered ``lot_number`` received anywhere in the network is held while the recall
    is open — its stock is not issued nor used at a step, an unreleased batch that used it is not
    certified, a product made with it is not dispatched. Opened and closed by Control Site QA, each
    signed with its reason (``recall.recall_open``, ``recall.recall_close``)."""

    reference = models.CharField(max_length=20, unique=True, help_text="e.g. RCL-2026-0001")
    material_code = models.CharField(max_length=64)
    lot_number = models.CharField(max_length=60)
    reason = models.TextField(help_text="Why the lot is recalled: the supplier's notice, a complaint, a finding.")
    status = models.CharField(max_length=8, choices=RecallStatus.choices, default=RecallStatus.OPEN)
    opened_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    opened_at = models.DateTimeField()
    closed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="+")
    closed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.TextField(blank=True, help_text="How the recall ended: what was destroyed, returned or cleared.")

    class Meta:
        ordering = ["-opened_at", "-pk"]
        constraints = [models.UniqueConstraint(fields=["material_code", "lot_number"],
                                               condition=models.Q(status="open"), name="supply_recall_open_once")]
        indexes = [models.Index(fields=["status", "material_code", "lot_number"], name="supply_recall_open")]

    def __str__(self) -> str:
        return f"{self.reference}: {self.material_code} lot {self.lot_number}"

    @property
    def is_open(self) -> bool:
        return self.status == RecallStatus.OPEN

    def signed_content(self) -> dict[str, Any]:
        """What the signatures bind to: the lot, why, and (once closed) how it ended."""
        return {"reference": self.reference, "material_code": self.material_code, "lot_number": self.lot_number,
                "reason": self.reason, "status": self.status, "opened_at": self.opened_at,
                "closed_at": self.closed_at, "outcome": self.outcome}


class TransferStatus(models.TextChoices):
    IN_TRANSIT = "in_transit", "In transit"
    RECEIVED = "received", "Received"
    HELD = "held", "Arrived, held: something went wrong on the way"
    DESTROYED = "destroyed", "Held, then destroyed on QA's decision"


class Disposition(models.TextChoices):
    """QA's decision on stock held on a transfer (``transfers.transfer_disposition``), signed."""

    RELEASED = "released", "Released back to use"
    DESTROYED = "destroyed", "Rejected and destroyed"


class Transfer(models.Model):
    """Stock of a lot sent from a location at one site to a location at another (a regional depot to a
    site it serves, or between two sites whose materials managers both agree), with its custody and
    temperature data like any shipment (SUP-STOCK, ATMP-TRACE). Dispatch writes the ``transferred_out``
    movement at the source; the stock is then in transit, usable nowhere, until the destination's
    materials manager receives it into the lot of the same number at the destination site
    (``transferred_in``), released only when the logger read inside the limits and the seal was intact."""

    reference = models.CharField(max_length=20, unique=True, help_text="e.g. TRF-2026-0001")
    source = models.ForeignKey(StockLocation, on_delete=models.PROTECT, related_name="transfers_out")
    destination = models.ForeignKey(StockLocation, on_delete=models.PROTECT, related_name="transfers_in")
    source_lot = models.ForeignKey("manufacturing.MaterialLot", on_delete=models.PROTECT, related_name="+")
    destination_lot = models.ForeignKey("manufacturing.MaterialLot", null=True, blank=True,
                                        on_delete=models.PROTECT, related_name="+")
    quantity = models.DecimalField(max_digits=14, decimal_places=3)
    unit = models.CharField(max_length=20)
    status = models.CharField(max_length=12, choices=TransferStatus.choices, default=TransferStatus.IN_TRANSIT)
    reason = models.TextField()
    # Dispatch: the data logger, its limits (°C, inclusive; None: open), the carrier and seal.
    logger_id = models.CharField(max_length=60)
    min_celsius = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    max_celsius = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    carrier = models.CharField(max_length=120, help_text="Who takes the goods: the courier or driver.")
    seal = models.CharField(max_length=60, help_text="The shipper's seal number.")
    dispatched_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    dispatched_at = models.DateTimeField()
    out_movement = models.ForeignKey(StockMovement, on_delete=models.PROTECT, related_name="+")
    # Receipt: who handed the goods over, who received them, whether the seal was intact, when.
    handed_over_by = models.CharField(max_length=120, blank=True)
    received_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+")
    arrived_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(null=True, blank=True)
    seal_intact = models.BooleanField(null=True, blank=True)
    in_movement = models.ForeignKey(StockMovement, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+")
    excursions = models.JSONField(default=list, blank=True)
    deviation = models.ForeignKey("quality.Deviation", null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="+")
    # QA's disposition of stock held on arrival: released back to use or destroyed, signed.
    disposition = models.CharField(max_length=10, choices=Disposition.choices, blank=True)
    disposed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+")
    disposed_at = models.DateTimeField(null=True, blank=True)
    disposition_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-dispatched_at", "-pk"]
        indexes = [models.Index(fields=["status", "dispatched_at"], name="supply_transfer_status")]

    def __str__(self) -> str:
        return self.reference

    @property
    def in_transit(self) -> bool:
        return self.status == TransferStatus.IN_TRANSIT

    @property
    def held(self) -> bool:
        return self.status == TransferStatus.HELD

    def signed_content(self) -> dict[str, Any]:
        """What QA's disposition signature binds to: the stock held, where, why it was held and the decision."""
        return {"reference": self.reference, "source_lot": self.source_lot_id,
                "destination_lot": self.destination_lot_id, "quantity": self.quantity, "unit": self.unit,
                "excursions": self.excursions, "seal_intact": self.seal_intact, "deviation": self.deviation_id,
                "disposition": self.disposition, "disposed_at": self.disposed_at, "reason": self.disposition_reason}


class TransferReading(models.Model):
    """One reading of a transfer's data logger, judged against the transfer's limits when uploaded."""

    transfer = models.ForeignKey(Transfer, on_delete=models.PROTECT, related_name="readings")
    at = models.DateTimeField()
    celsius = models.DecimalField(max_digits=6, decimal_places=2)
    in_limits = models.BooleanField()
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    sha256 = models.CharField(max_length=64, help_text="Of the file the reading came in.")

    class Meta:
        ordering = ["transfer", "at"]
        constraints = [models.UniqueConstraint(fields=["transfer", "at"], name="supply_transfer_reading_once")]

    def __str__(self) -> str:
        return f"{self.celsius} °C at {self.at:%Y-%m-%d %H:%M:%S}"


class PurchaseStatus(models.TextChoices):
    REQUESTED = "requested", "Requested: awaiting approval"
    APPROVED = "approved", "Approved"
    ORDERED = "ordered", "Ordered from the supplier"
    RECEIVED = "received", "Received"
    CANCELLED = "cancelled", "Cancelled"


#: The statuses of a request still to be delivered: its quantity counts against what to order.
PURCHASE_OPEN = frozenset({PurchaseStatus.REQUESTED, PurchaseStatus.APPROVED, PurchaseStatus.ORDERED})


class PurchaseRequest(models.Model):
    """A request to buy a material for a site from an approved supplier, raised from the reorder page by
    the site's materials manager; approved (signed, with reason) by the site's manager or QA, ordered,
    then received (naming the lots received through ``stock_receive``) or cancelled with a reason."""

    reference = models.CharField(max_length=20, unique=True, help_text="e.g. PR-2026-0001")
    site = models.ForeignKey("network.Site", on_delete=models.PROTECT, related_name="purchase_requests")
    material_code = models.CharField(max_length=64)
    quantity = models.DecimalField(max_digits=14, decimal_places=3)
    unit = models.CharField(max_length=20)
    supplier = models.ForeignKey(Supplier, on_delete=models.PROTECT, related_name="purchase_requests")
    status = models.CharField(max_length=10, choices=PurchaseStatus.choices, default=PurchaseStatus.REQUESTED)
    reason = models.TextField()
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField()
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+")
    approved_at = models.DateTimeField(null=True, blank=True)
    approval_reason = models.TextField(blank=True)
    ordered_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    ordered_at = models.DateTimeField(null=True, blank=True)
    order_number = models.CharField(max_length=60, blank=True, help_text="The supplier's order confirmation.")
    closed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="+")
    closed_at = models.DateTimeField(null=True, blank=True)
    close_reason = models.TextField(blank=True)
    lots = models.ManyToManyField("manufacturing.MaterialLot", blank=True, related_name="+")

    class Meta:
        ordering = ["-requested_at", "-pk"]
        indexes = [models.Index(fields=["site", "status", "material_code"], name="supply_purchase_open")]

    def __str__(self) -> str:
        return f"{self.reference}: {self.material_code} for {self.site_id}"

    @property
    def is_open(self) -> bool:
        return self.status in PURCHASE_OPEN

    def signed_content(self) -> dict[str, Any]:
        """What the approval signature binds to: what is bought, for which site, from whom, how much, when
        and why it was approved — not the status, which moves on (ordered, received) after the signature."""
        return {"reference": self.reference, "site": self.site_id, "material_code": self.material_code,
                "quantity": self.quantity, "unit": self.unit, "supplier": self.supplier_id,
                "approved_at": self.approved_at, "reason": self.approval_reason}


class PurchaseDelivery(models.Model):
    """One delivery against a purchase request (SUP-STOCK): a supplier's lot received into quarantine at the
    request's site through ``services.stock_receive`` (its ``received`` movement), with its quantity. A
    request is received in as many deliveries as the supplier makes; it closes when they add up to what was
    ordered, and never takes more (``purchases.purchase_delivery``)."""

    request = models.ForeignKey(PurchaseRequest, on_delete=models.PROTECT, related_name="deliveries")
    movement = models.OneToOneField(StockMovement, on_delete=models.PROTECT, related_name="+")
    lot = models.ForeignKey("manufacturing.MaterialLot", on_delete=models.PROTECT, related_name="+")
    quantity = models.DecimalField(max_digits=14, decimal_places=3)
    unit_price = models.DecimalField(
        max_digits=11, decimal_places=4, null=True, blank=True,
        help_text="The invoice price of one unit, in the cost model's currency (none: not given at receipt). "
                  "Control Site finance drafts lot prices from it (docs/costs.md).")
    received_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    received_at = models.DateTimeField()

    class Meta:
        ordering = ["request", "received_at", "pk"]
        constraints = [models.CheckConstraint(condition=models.Q(quantity__gt=0), name="supply_delivery_positive")]

    def __str__(self) -> str:
        return f"{self.quantity:f} of {self.request_id} as lot {self.lot_id}"


class ReceiptKey(models.Model):
    """The ``Idempotency-Key`` of a goods receipt sent over the API (``receipts.receipt_over_api``), per
    client: a retry with the same key and body stores nothing again and answers with the first receipt;
    the same key with another body is refused. Keys are the client's own: another client's never collide."""

    client = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    key = models.CharField(max_length=100)
    body_sha256 = models.CharField(max_length=64, help_text="SHA-256 of the receipt's canonical JSON.")
    movement = models.OneToOneField(StockMovement, on_delete=models.PROTECT, related_name="+")
    received_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["client", "key"], name="supply_receipt_key_once")]

    def __str__(self) -> str:
        return f"{self.key} of {self.client_id}"
