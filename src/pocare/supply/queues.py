"""The supply app's work queues (``pocare.core.worklist``), registered from its ``AppConfig.ready()``
(``answers.register``): materials short or below their reorder point, and lots expiring with stock — for
the people who manage a site's materials (its manager and QC analysts); purchase requests awaiting the
approval of the site's manager or QA; stock held on a transfer awaiting QA's decision."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.urls import reverse

from pocare.core.worklist import WorkItem, WorkQueue
from pocare.core.worklist import register as queue_register
from pocare.supply import purchases, reorder, transfers
from pocare.supply.models import PurchaseRequest, Transfer
from pocare.supply.selectors import amount


def _order(need: reorder.Need) -> WorkItem:
    short = need.status == reorder.SHORT
    what = (f"{amount(need.stock)} {need.unit} in stock, {amount(need.booked_need)} needed for "
            f"{need.booked_batches} booked batch{'es' if need.booked_batches != 1 else ''}" if short else
            f"{amount(need.stock)} {need.unit} in stock, reorder point {amount(need.reorder_point)}")
    return WorkItem(f"{need.site}: {need.name} ({need.material_code}) — {what}; order "
                    f"{amount(need.order_quantity)} {need.unit}", reverse("supply:reorder") + f"#need-{need.site}-"
                    f"{need.material_code}", late=short)


def _expiring(row: dict[str, Any]) -> WorkItem:
    return WorkItem(f"{row['location__site__code']} {row['location__code']}: {row['lot__material_code']} lot "
                    f"{row['lot__lot_number']}, {amount(row['total'])} {row['unit']} left",
                    reverse("supply:trace") + "?" + urlencode({"material_code": row["lot__material_code"],
                                                               "lot_number": row["lot__lot_number"]}),
                    row["lot__expiry_date"])


def _to_approve(request: PurchaseRequest) -> WorkItem:
    return WorkItem(f"{request.reference} {request.site.code}: {amount(request.quantity)} {request.unit} of "
                    f"{request.material_code} from {request.supplier}",
                    reverse("supply:purchase", args=[request.reference]), request.requested_at)


def _held(transfer: Transfer) -> WorkItem:
    return WorkItem(f"{transfer.reference} {transfer.destination.site.code}: {amount(transfer.quantity)} "
                    f"{transfer.unit} of {transfer.source_lot.material_code} lot {transfer.source_lot.lot_number} "
                    f"from {transfer.source.site.code}, held on arrival",
                    reverse("supply:transfer_disposition", args=[transfer.reference]), transfer.received_at)


REORDER = WorkQueue("supply-reorder", "Material to order", reorder.to_reorder, _order,
                    lambda: reverse("supply:reorder"), when_label="")
EXPIRING = WorkQueue("supply-expiring", f"Lots expiring within {reorder.EXPIRY_ALERT_DAYS} days", reorder.expiring,
                     _expiring, lambda: reverse("supply:stock"), when_label="Expires")

PURCHASES = WorkQueue("supply-purchase-approval", "Purchase requests to approve", purchases.awaiting_approval,
                      _to_approve, lambda: reverse("supply:purchases"), when_label="Requested")


HELD = WorkQueue("supply-held-transfers", "Stock held on transfers: release or destroy",
                 transfers.held_awaiting_decision, _held, lambda: reverse("supply:transfers"), when_label="Arrived")


def register() -> None:
    queue_register(REORDER)
    queue_register(EXPIRING)
    queue_register(PURCHASES)
    queue_register(HELD)
