"""Goods receipts sent by the systems around a site (an ERP, a warehouse scanner) over the API
(SUP-STOCK). A receipt is the same as on the stock page — ``services.stock_receive``, or
``purchases.purchase_delivery`` when it names the purchase request it delivers — with what an
integration needs besides: the site, location and supplier named by code and name, and an
``Idempotency-Key`` per receipt, so that a retry after a lost answer never receives the goods twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from pocare.accounts.models import User
from pocare.accounts.roles import Perm
from pocare.accounts.selectors import sites_with_perm
from pocare.ledger.canonical import content_hash
from pocare.network.models import Site
from pocare.supply import purchases, selectors, services
from pocare.supply.models import PurchaseDelivery, PurchaseRequest, ReceiptKey, StockLocation, StockMovement

MAX_KEY_LENGTH = 100


class ReceiptKeyConflict(Exception):
    """The client used the key before for another receipt."""


@dataclass(frozen=True)
class Receipt:
    movement: StockMovement
    delivery: PurchaseDelivery | None
    created: bool  # False: a retry, answered with the first receipt


def receipt_over_api(*, actor: User, idempotency_key: Any, receipt: Mapping[str, Any]) -> Receipt:
    """Receive goods as ``receipt`` says (``site``, ``location``, ``supplier``, ``material_code``,
    ``lot_number``, ``expiry_date``, ``quantity``, ``reason``; optionally ``unit``, and ``purchase`` with
    its ``unit_price``), once per key: the same key with the same receipt answers with the first one and
    stores nothing; with another receipt it raises :class:`ReceiptKeyConflict`. A site where ``actor`` does
    not receive stock reads as one that does not exist (a 400 naming ``site``)."""
    key = idempotency_key.strip() if isinstance(idempotency_key, str) else ""
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ValidationError({"Idempotency-Key": f"Give each receipt a unique key of 1 to {MAX_KEY_LENGTH} "
                                                  "printable characters (a UUID, say), and repeat it on a retry."})
    digest = content_hash(dict(receipt))
    if (found := _replayed(actor, key, digest)) is not None:
        return found
    try:
        with transaction.atomic():
            movement, delivery = _receive(actor, receipt)
            ReceiptKey.objects.create(client=actor, key=key, body_sha256=digest, movement=movement,
                                      received_at=timezone.now())
    except IntegrityError:
        # The same key sent twice at once: the other request stored it first; this one stored nothing.
        if (found := _replayed(actor, key, digest)) is not None:
            return found
        raise
    return Receipt(movement, delivery, created=True)


def _replayed(actor: User, key: str, digest: str) -> Receipt | None:
    """The first receipt under ``key`` when its body is ``digest``; None when the key is new."""
    earlier = ReceiptKey.objects.filter(client=actor, key=key).select_related("movement").first()
    if earlier is None:
        return None
    if earlier.body_sha256 != digest:
        raise ReceiptKeyConflict(f"The Idempotency-Key {key!r} was used for another receipt "
                                 f"({earlier.received_at:%Y-%m-%d %H:%M} UTC): send a new key for a new receipt.")
    delivery = PurchaseDelivery.objects.filter(movement=earlier.movement).first()
    return Receipt(earlier.movement, delivery, created=False)


def _receive(actor: User, receipt: Mapping[str, Any]) -> tuple[StockMovement, PurchaseDelivery | None]:
    site = _site(actor, str(receipt["site"]))
    location = StockLocation.objects.filter(site=site, code=receipt["location"]).first()
    if location is None:
        codes = ", ".join(StockLocation.objects.filter(site=site).order_by("code").values_list("code", flat=True))
        raise ValidationError({"location": f"{site.code} has no location {receipt['location']!r}; its locations: "
                                           f"{codes or 'none yet'}."})
    purchase_ref = receipt.get("purchase") or ""
    if purchase_ref:
        request = PurchaseRequest.objects.filter(site=site, reference=purchase_ref).first()
        if request is None:
            raise ValidationError({"purchase": f"{site.code} has no purchase request {purchase_ref!r}."})
        for field in ("material_code", "supplier"):
            ordered = request.material_code if field == "material_code" else request.supplier.name
            if str(receipt[field]).casefold() != ordered.casefold():
                raise ValidationError({field: f"{request.reference} ordered {ordered}, not {receipt[field]!r}."})
        delivery = purchases.purchase_delivery(
            actor=actor, request=request, location=location, lot_number=receipt["lot_number"],
            expiry_date=receipt["expiry_date"], quantity=receipt["quantity"], reason=receipt["reason"],
            unit_price=receipt.get("unit_price"))
        return delivery.movement, delivery
    if receipt.get("unit_price") not in (None, ""):
        raise ValidationError({"unit_price": "An invoice price is recorded with the purchase it delivers: name the "
                                             "purchase request, or leave the price out."})
    supplier = selectors.supplier_named(str(receipt["supplier"]))
    if supplier is None:
        raise ValidationError({"supplier": f"No supplier is registered as {receipt['supplier']!r}."})
    material = services.bill_of_materials().get(str(receipt["material_code"]))
    if material is None:
        raise ValidationError({"material_code": f"{receipt['material_code']} is in no master file's bill of "
                                                "materials."})
    unit = receipt.get("unit") or material["unit"]
    movement = services.stock_receive(
        actor=actor, location=location, supplier=supplier, material_code=receipt["material_code"],
        lot_number=receipt["lot_number"], expiry_date=receipt["expiry_date"], quantity=receipt["quantity"],
        unit=unit, reason=receipt["reason"])
    return movement, None


def _site(actor: User, code: str) -> Site:
    """The site ``code`` names, where ``actor`` receives stock (``manufacturing.materials``)."""
    held = sites_with_perm(actor, Perm.MATERIALS_MANAGE)
    site = Site.objects.filter(code__iexact=code).first()
    if site is None or (held is not None and site.pk not in held):
        raise ValidationError({"site": f"No site where you receive stock has the code {code!r}."})
    return site
