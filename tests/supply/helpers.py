"""Set-up for the supply tests, through the real services: a supplier qualified by Control Site QA
and approved for a material of the demo master file, a store at the site, and a lot received into
it and released by the site's QC analyst."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from typing import Any

from django.utils import timezone

from pocare.manufacturing.models import MaterialLot
from pocare.network.models import Site
from pocare.supply import services
from pocare.supply.models import (
    ApprovedSupplier,
    LocationKind,
    MaterialStorage,
    StockLocation,
    Supplier,
    SupplierStatus,
)
from tests.manufacturing import helpers as h

_numbers = itertools.count(1)

#: The demo master file's 5 mL syringe, counted one by one; used at the apheresis count.
SYRINGE = "SYR-5ML"


def supplier(name: str = "BD", *, material: str = SYRINGE, status: str = SupplierStatus.APPROVED) -> Supplier:
    """A supplier registered by Control Site QA (signed) and approved for ``material``."""
    h.world()
    found = Supplier.objects.filter(name=name).first()
    if found is None:
        found = services.supplier_register(actor=h.user("qa"), name=name, status=status,
                                           reason="Audited and qualified", credentials=h.creds("qa"))
    if not ApprovedSupplier.objects.filter(supplier=found, material_code=material).exists():
        services.supplier_approve_for(actor=h.user("qa"), supplier=found, material_code=material,
                                      reason="Qualified for this material", credentials=h.creds("qa"))
    return found


def storage(material: str = SYRINGE, low: Any = "15", high: Any = "25",
            condition: str = "Room temperature") -> MaterialStorage:
    """The material's storage range, recorded by Control Site QA (kept if already recorded)."""
    h.world()
    found = MaterialStorage.objects.filter(material_code=material).first()
    return found or services.material_storage_set(actor=h.user("qa"), material_code=material, min_celsius=low,
                                                  max_celsius=high, condition=condition,
                                                  reason="Supplier's label")


def store(site_code: str = "MAD", code: str = "STORE", kind: str = LocationKind.STORE,
          serves: tuple[str, ...] = ()) -> StockLocation:
    """The site's location ``code`` (made by the site manager on first use)."""
    site = Site.objects.get(code=site_code)
    found = StockLocation.objects.filter(site=site, code=code).first()
    if found is not None:
        return found
    return services.location_create(actor=h.user(f"manager.{site_code.lower()}"), site=site, code=code,
                                    name=f"{site_code} {code.lower()}", kind=kind, reason="New location",
                                    serves=[Site.objects.get(code=c) for c in serves])


def received(quantity: Any = 10, *, site_code: str = "MAD", material: str = SYRINGE, release: bool = True,
             expiry_days: int = 200, location: StockLocation | None = None, by: Supplier | None = None,
             unit: str = "count") -> MaterialLot:
    """A new lot of ``material`` received into the site's store (and released, signed, by QC)."""
    qc = h.user(f"qc.{site_code.lower()}")
    movement = services.stock_receive(
        actor=qc, location=location or store(site_code), supplier=by or supplier(material=material),
        material_code=material, lot_number=f"SUP-{next(_numbers):05d}",
        expiry_date=timezone.now().date() + dt.timedelta(days=expiry_days), quantity=quantity, unit=unit,
        reason="Goods receipt, delivery note checked")
    lot = movement.lot
    if release:
        services.stock_lot_decide(actor=qc, lot=lot, decision="released", reason="CoA checked",
                                  credentials=h.creds(qc))
        lot.refresh_from_db()
    return lot


def total(rows: list[dict[str, Any]], **match: Any) -> Decimal:
    return sum((r["quantity"] for r in rows if all(r.get(k) == v for k, v in match.items())), Decimal(0))
