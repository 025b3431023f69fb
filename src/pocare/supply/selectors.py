"""Reads of supply (SUP-STOCK): stock computed from the movements, scoped to what the person may see.

Stock is the sum of the movements' signed quantities, grouped as asked, in one query: never a
number stored or cached beside them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import Q, QuerySet, Sum
from django.utils import timezone

from pocare.accounts.roles import Perm
from pocare.accounts.selectors import sites_with_perm
from pocare.core.units import amount_text
from pocare.manufacturing.models import LotStatus, MaterialLot
from pocare.network.models import Site
from pocare.network.selectors import site_today
from pocare.supply.models import QUALIFIED, ApprovedSupplier, LocationKind, StockLocation, StockMovement, Supplier

#: A quantity as people write it (``3``, not ``3.000``): the one rule of the pages and the messages.
amount = amount_text


def movements_visible(user: Any) -> QuerySet[StockMovement]:
    """The movements at the locations of the sites where ``user`` holds ``supply.view``."""
    sites = sites_with_perm(user, Perm.SUPPLY_VIEW)
    movements = StockMovement.objects.all()
    return movements if sites is None else movements.filter(location__site_id__in=sites)


def stock_levels(*, user: Any, site: Site | None = None, by_lot: bool = False, by_location: bool = False,
                 material_code: str | None = None, held_only: bool = False) -> list[dict[str, Any]]:
    """Stock per site × material (× lot with ``by_lot``, × location with ``by_location``) as the
    sum of the movements, in ONE query, for the sites ``user`` may see (``site``: that one only;
    ``material_code``: that material only; ``held_only``: without the rows that add up to 0, the lots
    used up — in the database, so years of them are never read).
    Each row: ``site``, ``material_code``, ``unit``, ``quantity`` and, as asked, ``lot_id``,
    ``lot_number``, ``expiry_date``, ``status``, ``location``."""
    movements = movements_visible(user)
    if site is not None:
        movements = movements.filter(location__site=site)
    if material_code:
        movements = movements.filter(lot__material_code=material_code)
    keys = ["location__site__code", "lot__material_code", "unit"]
    if by_lot:
        keys += ["lot_id", "lot__lot_number", "lot__expiry_date", "lot__status"]
    if by_location:
        keys += ["location__code"]
    rows = movements.values(*keys).annotate(total=Sum("quantity")).order_by(*keys)
    if held_only:
        rows = rows.exclude(total=0)
    names = {"location__site__code": "site", "lot__material_code": "material_code", "lot__lot_number": "lot_number",
             "lot__expiry_date": "expiry_date", "lot__status": "status", "location__code": "location"}
    return [{**{names.get(k, k): row[k] for k in keys}, "quantity": row["total"] or Decimal(0)} for row in rows]


def lot_stock(lot: MaterialLot, *, location: StockLocation | None = None, before: dt.datetime | None = None) -> Decimal:
    """The stock of ``lot`` at ``location`` (or at every location of its site), from its movements."""
    movements = StockMovement.objects.filter(lot=lot)
    if location is not None:
        movements = movements.filter(location=location)
    if before is not None:
        movements = movements.filter(occurred_at__lt=before)
    total: Decimal | None = movements.aggregate(total=Sum("quantity"))["total"]
    return total if total is not None else Decimal(0)


def lot_stock_by_location(lot: MaterialLot) -> dict[int, Decimal]:
    """The stock of ``lot`` at each location that ever held it, by location id (one query)."""
    rows = StockMovement.objects.filter(lot=lot).values("location_id").annotate(total=Sum("quantity"))
    return {row["location_id"]: row["total"] for row in rows.order_by("location_id")}


def lot_managed(lot: MaterialLot) -> bool:
    """Whether the lot's stock is kept here: it has at least one movement. A lot never received
    through supply (the demo's history, a site that does not yet keep stock) is not stock-managed,
    and its use at a step is not counted against stock (docs/supply.md)."""
    return StockMovement.objects.filter(lot=lot).exists()


def lot_unit(lot: MaterialLot) -> str | None:
    """The unit the lot's stock is counted in (that of its first movement), or None."""
    return StockMovement.objects.filter(lot=lot).order_by("pk").values_list("unit", flat=True).first()


@dataclass(frozen=True)
class FefoLot:
    """A lot proposed at a step, first expiry first out."""

    lot_id: int
    lot_number: str
    expiry_date: dt.date
    quantity: Decimal


def fefo_proposal(*, site: Site, material_code: str, at: dt.datetime | None = None) -> list[FefoLot]:
    """The released, unexpired lots of ``material_code`` with stock at ``site``'s locations, the
    first to expire first (one query): what a step should take, in that order (SUP-STOCK)."""
    today = site_today(site, at or timezone.now())
    rows = (StockMovement.objects
            .filter(location__site=site, lot__site=site, lot__material_code=material_code,
                    lot__status=LotStatus.RELEASED, lot__expiry_date__gte=today)
            .values("lot_id", "lot__lot_number", "lot__expiry_date")
            .annotate(total=Sum("quantity")).filter(total__gt=0)
            .order_by("lot__expiry_date", "lot_id"))
    return [FefoLot(r["lot_id"], r["lot__lot_number"], r["lot__expiry_date"], r["total"]) for r in rows]


def first_to_take(lots: list[FefoLot], quantity: Decimal) -> FefoLot | None:
    """Of :func:`fefo_proposal`'s lots, the one a step taking ``quantity`` takes: the first to expire that
    holds that much (a lot with one syringe left is not the one to take for two)."""
    return next((lot for lot in lots if lot.quantity >= quantity), None)


def supplier_named(name: str) -> Supplier | None:
    """The supplier a lot names (its free-text ``supplier``), matched without regard to case."""
    name = (name or "").strip()
    return Supplier.objects.filter(name__iexact=name).first() if name else None


def supplier_problem(lot: MaterialLot) -> str | None:
    """Why the lot's supplier does not let it be released or used (None: it does, or its material
    is not supplier-managed — no supplier is approved for it yet)."""
    approvals = ApprovedSupplier.objects.filter(material_code=lot.material_code).select_related("supplier")
    approved = {a.supplier.name.casefold(): a.supplier for a in approvals}
    if not approved:
        return None
    named = (lot.supplier or "").strip()
    if not named:
        return (f"{lot} names no supplier; {lot.material_code} comes only from an approved supplier "
                f"({', '.join(sorted(s.name for s in approved.values()))}).")
    supplier = approved.get(named.casefold())
    if supplier is None:
        return f"{lot} comes from {named}, which is not an approved supplier of {lot.material_code}."
    if supplier.status not in QUALIFIED:
        return f"{lot} comes from {supplier.name}, which is {supplier.get_status_display().lower()}."
    return None


def locations_of(site: Site) -> list[StockLocation]:
    """The locations a site holds, its stores first."""
    return sorted(StockLocation.objects.filter(site=site), key=lambda loc: (loc.kind != LocationKind.STORE, loc.code))


def batch_reconciliation(batch: Any) -> list[dict[str, Any]]:
    """Per lot, what left stock for ``batch`` and what came back (SUP-STOCK: issued equals consumed
    plus returned plus destroyed): ``issued`` and ``consumed`` (positive), ``returned``. One query."""
    rows = (StockMovement.objects.filter(batch=batch).values("lot_id", "lot__lot_number", "unit")
            .annotate(issued=Sum("quantity", filter=Q(kind="issued")),
                      consumed=Sum("quantity", filter=Q(kind="consumed")),
                      returned=Sum("quantity", filter=Q(kind="returned")))
            .order_by("lot_id"))
    return [{"lot_id": r["lot_id"], "lot_number": r["lot__lot_number"], "unit": r["unit"],
             "issued": -(r["issued"] or 0), "consumed": -(r["consumed"] or 0), "returned": r["returned"] or 0}
            for r in rows]
