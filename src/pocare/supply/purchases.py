"""Purchase requests (SUP-STOCK): what the reorder page says to order, raised by a site's materials
manager for a material from a supplier approved for it, then

    requested → approved (the site's manager or Control Site QA, signed with a reason) → ordered
    → received, in one delivery or several (``purchase_delivery``: each a supplier's lot with its
    quantity, received into quarantine through ``services.stock_receive``); the request closes when
    the deliveries add up to what was ordered, and a delivery of more than is outstanding is refused

or cancelled with a reason at any point before it is received. Each step a ledger event. What a request
still open has not yet delivered counts against the quantity to order (``open_quantities``), so
nothing is ordered twice. (``purchase_receive`` closes a request naming lots received on the stock
page, as before deliveries were recorded against it.)
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet, Sum
from django.utils import timezone

from pocare.accounts import selectors as access
from pocare.accounts.roles import Perm
from pocare.accounts.selectors import sites_with_any_perm, sites_with_perm
from pocare.accounts.services import require_perm
from pocare.core.checks import text_checked
from pocare.ledger.models import Meaning
from pocare.ledger.services import event_record, reason_required
from pocare.ledger.signing import SigningCredentials, signature_apply, signing_authenticate
from pocare.manufacturing.models import MaterialLot
from pocare.network.models import Site
from pocare.supply import selectors, services
from pocare.supply.events import SupplyEvent
from pocare.supply.models import (
    PURCHASE_OPEN,
    ApprovedSupplier,
    PurchaseDelivery,
    PurchaseRequest,
    PurchaseStatus,
    StockLocation,
    Supplier,
)

if TYPE_CHECKING:
    from pocare.accounts.models import User

#: The most one request asks for, as a multiple of what the reorder page proposes (a typing slip
#: otherwise); and never more than one movement may move (``services.MAX_QUANTITY``).
MAX_OVER_PROPOSAL = 3


def _reason(value: Any, field: str = "reason") -> str:
    return reason_required(text_checked(value, field, "reason", 2000))


def _next_reference(year: int) -> str:
    prefix = f"PR-{year}-"
    last = (PurchaseRequest.objects.filter(reference__startswith=prefix).order_by("-reference")
            .values_list("reference", flat=True).first())
    return f"{prefix}{(int(last.rsplit('-', 1)[1]) + 1 if last else 1):04d}"


def purchase_request(*, actor: User, site: Site, material_code: Any, supplier: Supplier, quantity: Any,
                     reason: Any, proposed: Decimal | None = None) -> PurchaseRequest:
    """Raise a request for ``quantity`` of a material for ``site`` from ``supplier`` (approved for it and
    qualified). ``proposed``: what the reorder page proposed; the request may ask for at most
    :data:`MAX_OVER_PROPOSAL` times as much."""
    require_perm(actor, Perm.MATERIALS_MANAGE, site=site)
    material_code = text_checked(material_code, "material_code", "material code", 64)
    quantity = services.quantity_checked(quantity)
    reason = _reason(reason)
    bill = services.bill_of_materials()
    if material_code not in bill:
        raise ValidationError({"material_code": f"{material_code} is in no master file's bill of materials."})
    if not supplier.qualified or not ApprovedSupplier.objects.filter(material_code=material_code,
                                                                     supplier=supplier).exists():
        raise ValidationError({"supplier": f"{supplier} is not an approved, qualified supplier of {material_code}."})
    if proposed is not None and proposed > 0 and quantity > proposed * MAX_OVER_PROPOSAL:
        raise ValidationError({"quantity": f"At most {MAX_OVER_PROPOSAL} times the proposed "
                                           f"{selectors.amount(proposed)} {bill[material_code]['unit']}."})
    now = timezone.now()
    with transaction.atomic():
        request = _create(site=site, material_code=material_code, quantity=quantity,
                          unit=bill[material_code]["unit"], supplier=supplier, reason=reason, actor=actor, now=now)
        event_record(actor=actor, event_type=SupplyEvent.PURCHASE_REQUESTED, site=site, obj=request, reason=reason,
                     new={"reference": request.reference, "material_code": material_code, "quantity": quantity,
                          "unit": request.unit, "supplier": supplier.name, "proposed": proposed})
    return request


def _create(**fields: Any) -> PurchaseRequest:
    now: dt.datetime = fields.pop("now")
    actor = fields.pop("actor")
    for _attempt in range(5):
        try:
            with transaction.atomic():
                return PurchaseRequest.objects.create(reference=_next_reference(now.year), requested_by=actor,
                                                      requested_at=now, **fields)
        except IntegrityError:
            continue
    raise ValidationError({"reference": "The request could not be numbered; try again."})


def _locked(request: PurchaseRequest, allowed: set[str], field: str, doing: str) -> PurchaseRequest:
    locked = PurchaseRequest.objects.select_for_update().get(pk=request.pk)
    if locked.status not in allowed:
        raise ValidationError({field: f"{locked.reference} is {locked.get_status_display().lower()}: it cannot be "
                                      f"{doing}."})
    return locked


def purchase_approve(*, actor: User, request: PurchaseRequest, reason: Any,
                     credentials: SigningCredentials) -> PurchaseRequest:
    """Approve a request, signed (meaning: approved) with its reason, by the site's manager or QA."""
    require_perm(actor, Perm.PURCHASE_APPROVE, site=request.site)
    reason = _reason(reason)
    proof = signing_authenticate(actor=actor, credentials=credentials)
    with transaction.atomic():
        locked = _locked(request, {PurchaseStatus.REQUESTED}, "reason", "approved")
        locked.status, locked.approved_by, locked.approved_at = PurchaseStatus.APPROVED, actor, timezone.now()
        locked.approval_reason = reason
        locked.save(update_fields=["status", "approved_by", "approved_at", "approval_reason"])
        event_record(actor=actor, event_type=SupplyEvent.PURCHASE_APPROVED, site=locked.site, obj=locked,
                     reason=reason, old={"status": PurchaseStatus.REQUESTED}, new={"status": locked.status})
        signature_apply(proof=proof, record=locked, site=locked.site, reason=reason, meaning=Meaning.APPROVED)
    return locked


def purchase_order(*, actor: User, request: PurchaseRequest, order_number: Any) -> PurchaseRequest:
    """Record that an approved request was ordered, with the supplier's order confirmation."""
    require_perm(actor, Perm.MATERIALS_MANAGE, site=request.site)
    order_number = text_checked(order_number, "order_number", "supplier's order number", 60)
    with transaction.atomic():
        locked = _locked(request, {PurchaseStatus.APPROVED}, "order_number", "ordered (it is approved first)")
        locked.status, locked.ordered_by, locked.ordered_at = PurchaseStatus.ORDERED, actor, timezone.now()
        locked.order_number = order_number
        locked.save(update_fields=["status", "ordered_by", "ordered_at", "order_number"])
        event_record(actor=actor, event_type=SupplyEvent.PURCHASE_ORDERED, site=locked.site, obj=locked,
                     reason=f"Ordered: {order_number}", old={"status": PurchaseStatus.APPROVED},
                     new={"status": locked.status, "order_number": order_number})
    return locked


def purchase_receive(*, actor: User, request: PurchaseRequest, lots: list[MaterialLot], reason: Any
                     ) -> PurchaseRequest:
    """Close an ordered request as received, naming the lots of its material received at its site
    (through ``services.stock_receive``) that delivered it."""
    require_perm(actor, Perm.MATERIALS_MANAGE, site=request.site)
    reason = _reason(reason)
    if not lots:
        raise ValidationError({"lots": "Name the lot(s) the delivery was received as (receive them on the stock "
                                       "page first)."})
    wrong = [lot for lot in lots if lot.site_id != request.site_id or lot.material_code != request.material_code]
    if wrong:
        raise ValidationError({"lots": f"{', '.join(map(str, wrong))} is not {request.material_code} received at "
                                       f"{request.site.code}."})
    with transaction.atomic():
        locked = _locked(request, {PurchaseStatus.ORDERED}, "lots", "received (it is ordered first)")
        locked.status, locked.closed_by, locked.closed_at = PurchaseStatus.RECEIVED, actor, timezone.now()
        locked.close_reason = reason
        locked.save(update_fields=["status", "closed_by", "closed_at", "close_reason"])
        locked.lots.set(lots)
        event_record(actor=actor, event_type=SupplyEvent.PURCHASE_RECEIVED, site=locked.site, obj=locked,
                     reason=reason, old={"status": PurchaseStatus.ORDERED},
                     new={"status": locked.status, "lots": sorted(lot.lot_number for lot in lots)})
    return locked


#: The highest invoice price of one unit a delivery may state (a lentiviral vector dose is ~€15,000), as
#: the cost model's prices (docs/costs.md): what a slip of the keyboard past it cannot reach.
MAX_UNIT_PRICE = Decimal(1_000_000)


def unit_price_checked(value: Any) -> Decimal | None:
    """An invoice price of one unit: empty for none, else a number from 0 to :data:`MAX_UNIT_PRICE` with at
    most 4 decimals; refused naming ``unit_price``."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return services.decimal_checked(
        value, "unit_price", "The invoice price",
        f"a number from 0 to {MAX_UNIT_PRICE:,} with at most 4 decimals (the price of one unit), or empty",
        maximum=MAX_UNIT_PRICE, places=Decimal("0.0001"), allow_zero=True)


def purchase_delivery(*, actor: User, request: PurchaseRequest, location: StockLocation, lot_number: Any,
                      expiry_date: Any, quantity: Any, reason: Any, unit_price: Any = None) -> PurchaseDelivery:
    """Receive one delivery against an ordered request: ``quantity`` of the supplier's lot ``lot_number`` into
    quarantine at ``location`` (``services.stock_receive``, as any goods receipt), at most what is still
    outstanding (refused naming ``quantity``), with the invoice price of a unit when it is known. When the
    deliveries add up to the order, the request is received and closed. The request's row is locked: two
    deliveries at once are counted one after the other."""
    require_perm(actor, Perm.MATERIALS_MANAGE, site=request.site)
    quantity = services.quantity_checked(quantity)
    price = unit_price_checked(unit_price)
    reason = _reason(reason)
    if location.site_id != request.site_id:
        raise ValidationError({"location": f"{location} is not at {request.site.code}, which ordered the goods."})
    with transaction.atomic():
        locked = _locked(request, {PurchaseStatus.ORDERED}, "quantity", "received (it is ordered first)")
        received = delivered(locked)
        outstanding = locked.quantity - received
        if quantity > outstanding:
            raise ValidationError({"quantity": (
                f"Only {selectors.amount(outstanding)} {locked.unit} of {locked.reference} are outstanding "
                f"(ordered {selectors.amount(locked.quantity)}, received {selectors.amount(received)}): "
                "more than was ordered is not received against it.")})
        movement = services.stock_receive(actor=actor, location=location, supplier=locked.supplier,
                                          material_code=locked.material_code, lot_number=lot_number,
                                          expiry_date=expiry_date, quantity=quantity, unit=locked.unit,
                                          reason=f"{locked.reference}: {reason}")
        now = timezone.now()
        delivery = PurchaseDelivery.objects.create(request=locked, movement=movement, lot=movement.lot,
                                                   quantity=quantity, unit_price=price, received_by=actor,
                                                   received_at=now)
        locked.lots.add(movement.lot)
        total = received + quantity
        event_record(actor=actor, event_type=SupplyEvent.PURCHASE_DELIVERED, site=locked.site, obj=locked,
                     reason=reason, new={"lot_number": movement.lot.lot_number, "quantity": quantity,
                                         "ordered": locked.quantity, "received": total,
                                         "outstanding": locked.quantity - total, "location": location.code,
                                         **({"unit_price": price} if price is not None else {})})
        if total == locked.quantity:
            count = locked.deliveries.count()
            locked.status, locked.closed_by, locked.closed_at = PurchaseStatus.RECEIVED, actor, now
            locked.close_reason = f"Received in full in {count} deliver{'y' if count == 1 else 'ies'}"
            locked.save(update_fields=["status", "closed_by", "closed_at", "close_reason"])
            event_record(actor=actor, event_type=SupplyEvent.PURCHASE_RECEIVED, site=locked.site, obj=locked,
                         reason=locked.close_reason, old={"status": PurchaseStatus.ORDERED},
                         new={"status": locked.status, "lots": sorted({d.lot.lot_number for d in
                                                                       locked.deliveries.select_related("lot")})})
    return delivery


def delivered(request: PurchaseRequest) -> Decimal:
    """What the deliveries against ``request`` add up to (one query)."""
    total = request.deliveries.aggregate(total=Sum("quantity"))["total"]
    return total if total is not None else Decimal(0)


def purchase_cancel(*, actor: User, request: PurchaseRequest, reason: Any) -> PurchaseRequest:
    """Cancel a request not yet received, with the reason (by the site's materials people or approvers)."""
    if access.is_read_only(actor) or not any(access.has_perm(actor, perm, site_id=request.site_id)
                                             for perm in (Perm.MATERIALS_MANAGE, Perm.PURCHASE_APPROVE)):
        raise PermissionDenied(f"{actor.username} may not cancel {request.site.code}'s purchase requests.")
    reason = _reason(reason)
    with transaction.atomic():
        locked = _locked(request, set(PURCHASE_OPEN), "reason", "cancelled")
        old = locked.status
        locked.status, locked.closed_by, locked.closed_at = PurchaseStatus.CANCELLED, actor, timezone.now()
        locked.close_reason = reason
        locked.save(update_fields=["status", "closed_by", "closed_at", "close_reason"])
        event_record(actor=actor, event_type=SupplyEvent.PURCHASE_CANCELLED, site=locked.site, obj=locked,
                     reason=reason, old={"status": old}, new={"status": locked.status})
    return locked


# --- reads -------------------------------------------------------------------------------------------------


def requests_visible(user: Any) -> QuerySet[PurchaseRequest]:
    """The requests of the sites where ``user`` sees stock or approves purchases."""
    sites = sites_with_any_perm(user, [Perm.SUPPLY_VIEW, Perm.PURCHASE_APPROVE])
    found = PurchaseRequest.objects.select_related("site", "supplier", "requested_by", "approved_by")
    return found if sites is None else found.filter(site_id__in=sites)


def open_quantities(site_ids: list[int] | set[int]) -> dict[tuple[int, str], Decimal]:
    """What the open requests (requested, approved, ordered) of the sites still have to deliver, by
    (site id, material code): what they ask for less what their deliveries brought (already in stock).
    Two queries."""
    rows = (PurchaseRequest.objects.filter(site_id__in=site_ids, status__in=PURCHASE_OPEN)
            .values("site_id", "material_code").annotate(total=Sum("quantity")).order_by())
    out: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
    for row in rows:
        out[(row["site_id"], row["material_code"])] += row["total"] or Decimal(0)
    came = (PurchaseDelivery.objects.filter(request__site_id__in=site_ids, request__status__in=PURCHASE_OPEN)
            .values("request__site_id", "request__material_code").annotate(total=Sum("quantity")).order_by())
    for delivered_row in came:
        key = (delivered_row["request__site_id"], delivered_row["request__material_code"])
        out[key] -= delivered_row["total"] or Decimal(0)
    return dict(out)


def awaiting_approval(user: Any) -> QuerySet[PurchaseRequest]:
    """Work queue "purchase requests to approve": requested at the sites where ``user`` approves them."""
    if access.is_read_only(user):
        return PurchaseRequest.objects.none()
    sites = sites_with_perm(user, Perm.PURCHASE_APPROVE)
    found = PurchaseRequest.objects.filter(status=PurchaseStatus.REQUESTED).select_related("site", "supplier")
    return (found if sites is None else found.filter(site_id__in=sites)).order_by("requested_at", "pk")
