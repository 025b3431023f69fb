"""Ledger event types of the supply app."""

from django.db import models

from pocare.ledger.events import event_types


@event_types
class SupplyEvent(models.TextChoices):
    SUPPLIER_REGISTERED = "supply.supplier_registered", "Supplier registered with its qualification"
    SUPPLIER_QUALIFIED = "supply.supplier_qualified", "Supplier's qualification changed"
    SUPPLIER_APPROVED = "supply.supplier_approved", "Supplier approved for a material"
    SUPPLIER_LEAD_TIME = "supply.supplier_lead_time", "Supplier's lead time for a material changed"
    MATERIAL_STORAGE = "supply.material_storage", "Material's storage conditions set"
    LOCATION_CREATED = "supply.location_created", "Stock location created"
    STOCK_RECEIVED = "supply.stock_received", "Material received into stock"
    STOCK_DECIDED = "supply.stock_decided", "Stock of a lot released or rejected"
    STOCK_ISSUED = "supply.stock_issued", "Material issued to a batch"
    STOCK_CONSUMED = "supply.stock_consumed", "Material consumed at a step"
    STOCK_RETURNED = "supply.stock_returned", "Material returned to stock from a batch"
    STOCK_EXPIRED = "supply.stock_expired", "Expired material written off"
    STOCK_DESTROYED = "supply.stock_destroyed", "Material destroyed"
    STOCK_ADJUSTED = "supply.stock_adjusted", "Stock adjusted after a cycle count (signed)"
    STOCK_TRANSFERRED = "supply.stock_transferred", "Material transferred between locations"
    TRANSFER_DISPATCHED = "supply.transfer_dispatched", "Material dispatched to another site"
    TRANSFER_READINGS = "supply.transfer_readings", "Transfer logger readings uploaded"
    TRANSFER_RECEIVED = "supply.transfer_received", "Material transfer received"
    TRANSFER_DISPOSED = "supply.transfer_disposed", "Stock held on a transfer released or destroyed by QA (signed)"
    PURCHASE_REQUESTED = "supply.purchase_requested", "Purchase request raised"
    PURCHASE_APPROVED = "supply.purchase_approved", "Purchase request approved (signed)"
    PURCHASE_ORDERED = "supply.purchase_ordered", "Purchase request ordered from the supplier"
    PURCHASE_DELIVERED = "supply.purchase_delivered", "Delivery received against a purchase request"
    PURCHASE_RECEIVED = "supply.purchase_received", "Purchase request received"
    PURCHASE_CANCELLED = "supply.purchase_cancelled", "Purchase request cancelled"
    RECALL_OPENED = "supply.recall_opened", "Material lot recalled (signed)"
    RECALL_CLOSED = "supply.recall_closed", "Recall closed (signed)"
