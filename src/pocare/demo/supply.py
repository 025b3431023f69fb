"""The demo network's stock (SUP-STOCK, ATMP-TRACE), through the supply services a person uses:

- the suppliers the history's lots name (``history.plan.MATERIALS``: Miltenyi Biotec for the
  closed-system kits, reagents, media and cytokines, BD for the syringes, the vector manufacturer
  for the lentiviral vector, bioMérieux, Macopharma, Baxter), each registered and qualified by
  Control Site QA (signed) and approved for the materials of the bill of materials it supplies, with
  its lead time (:data:`LEAD_TIME_DAYS`: six weeks for the lentiviral vector, two for the rest);
- each material's storage conditions (:data:`STORAGE`), from which a transfer takes its logger limits;
- a store at every active POCare site, and the Iberian regional depot held by Madrid, serving
  Madrid, Lisbon and Porto;
- the live lots (``batches.load_lots``): one supplier lot of each material, delivered to every
  active site (several batches' worth, in the bill's unit), released by the site's QC analyst; at
  Madrid the delivery comes into the depot and part of it is moved to the store. The live batches'
  steps then consume from stock;
- one lot of TexMACS medium at Munich received months ago and now close to its expiry;
- two transfers from the depot to Lisbon's store (one received three days ago, its logger read within
  the limits, one in transit since this morning) and two purchase requests (Lisbon's approved, signed,
  and ordered; Madrid's awaiting approval) (``load_exchanges``).

Idempotent: a supplier, approval or location that exists is left as it is, and a site's material
that was ever received into stock is not received again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from pocare.accounts.models import User
from pocare.demo.clock import demo_clock
from pocare.demo.costs import MATERIALS as PRICES
from pocare.demo.history.plan import DEFAULT_MATERIAL, MATERIALS
from pocare.ledger.signing import SigningCredentials
from pocare.manufacturing.models import LotStatus, MaterialLot
from pocare.masterfile import schema
from pocare.masterfile.models import MasterFileVersion
from pocare.network.models import Site, SiteKind, SiteStatus
from pocare.network.selectors import site_today
from pocare.supply import purchases, services, transfers
from pocare.supply.models import (
    ApprovedSupplier,
    LocationKind,
    MaterialStorage,
    MovementKind,
    PurchaseRequest,
    StockLocation,
    StockMovement,
    Supplier,
    SupplierStatus,
    Transfer,
)

#: Control Site QA qualifies the suppliers and approves them per material.
QUALIFIER = "qa"
#: How each material is kept (°C, lowest and highest; None: open), as Control Site QA records it from the
#: suppliers' labels *(estimates for the demo)*: reagents, medium and cytokines refrigerated, the vector
#: frozen at ≤ -65 °C, the rest at room temperature.
STORAGE: dict[str, tuple[Decimal | None, Decimal | None, str]] = {
    **{code: (Decimal(2), Decimal(8), "Refrigerated 2–8 °C")
       for code in ("CD4-REAG", "CD8-REAG", "TRANSACT", "TEXMACS", "IL7", "IL15")},
    "LV-CAR19": (None, Decimal(-65), "Frozen at or below -65 °C"),
}
DEFAULT_STORAGE: tuple[Decimal | None, Decimal | None, str] = (Decimal(15), Decimal(25), "Room temperature 15–25 °C")
#: Each site's store, and the regional depot: held by Madrid, serving the Iberian sites.
STORE = "STORE"
DEPOT, DEPOT_SITE, DEPOT_SERVES = "DEPOT-IB", "MAD", ("MAD", "LIS", "OPO")
#: A delivery is this many batches' worth of the bill (per material, in the bill's unit); the depot
#: takes twice as much and sends one delivery's worth on to its site's store.
BATCHES_PER_DELIVERY = 10
DEPOT_DELIVERIES = 2
MARK = "Demo"
#: Days from an order to its delivery per material (estimates, no published figure): the lentiviral
#: vector is made to order by its CDMO; the rest are catalogue items. The twin's supply disruption of the
#: vector's supplier waits this long after the disruption ends.
LEAD_TIME_DAYS = {"LV-CAR19": 42}
DEFAULT_LEAD_TIME_DAYS = 14


@dataclass(frozen=True)
class NearExpiry:
    """A lot received months before the load that expires soon after it (an expiry alert)."""

    site: str
    material: str
    lot_number: str
    quantity: Decimal
    received_before_now: dt.timedelta
    expires_after_now: dt.timedelta


#: TexMACS medium at Munich, received 55 days before the load (a short-dated delivery), expiring 18
#: days after it.
NEAR_EXPIRY = NearExpiry("MUC", "TEXMACS", "6230918402", Decimal(12), dt.timedelta(days=55), dt.timedelta(days=18))
#: The sites keep their stock in POCare from this long before the load (their locations made).
STOCK_KEPT_FROM = dt.timedelta(days=60)


def _user(username: str) -> User:
    return User.objects.get(username=username)


def _creds(user: User, password: str) -> SigningCredentials:
    return SigningCredentials(username=user.username, password=password)


def supplier_of(code: str) -> str:
    """The supplier of a material, as the history's lots name it."""
    return MATERIALS.get(code, DEFAULT_MATERIAL)[0]


def shelf_life(code: str) -> dt.timedelta:
    return dt.timedelta(days=MATERIALS.get(code, DEFAULT_MATERIAL)[2])


def per_batch(versions: Iterable[MasterFileVersion]) -> dict[str, Decimal]:
    """What one batch uses of each material, in the bill's unit (the newest of ``versions``)."""
    newest = max(versions, key=lambda v: v.number)
    out: dict[str, Decimal] = {}
    for step in schema.iter_steps(newest.content):
        for line in step.get("materials", []):
            out[line["code"]] = out.get(line["code"], Decimal(0)) + Decimal(str(line["quantity"]))
    return out


def active_sites() -> list[Site]:
    return list(Site.objects.filter(kind=SiteKind.HOSPITAL, status=SiteStatus.ACTIVE).order_by("code"))


def load_suppliers(*, password: str) -> list[Supplier]:
    """Every supplier of the bill of materials in force, registered approved by Control Site QA
    (signed) and approved for each material it supplies; returns them."""
    qa = _user(QUALIFIER)
    by_supplier: dict[str, list[str]] = {}
    for code in sorted(services.bill_of_materials()):
        by_supplier.setdefault(supplier_of(code), []).append(code)
    suppliers = []
    for name, codes in sorted(by_supplier.items()):
        supplier = Supplier.objects.filter(name=name).first() or services.supplier_register(
            actor=qa, name=name, status=SupplierStatus.APPROVED, credentials=_creds(qa, password),
            reason=f"{MARK}: supplier audit passed; quality agreement signed")
        approved = set(ApprovedSupplier.objects.filter(supplier=supplier).values_list("material_code", flat=True))
        for code in codes:
            if code not in approved:
                services.supplier_approve_for(actor=qa, supplier=supplier, material_code=code,
                                              lead_time_days=LEAD_TIME_DAYS.get(code, DEFAULT_LEAD_TIME_DAYS),
                                              credentials=_creds(qa, password),
                                              reason=f"{MARK}: specification and certificate of analysis agreed")
        suppliers.append(supplier)
    kept = set(MaterialStorage.objects.values_list("material_code", flat=True))
    for code in sorted(set(services.bill_of_materials()) - kept):
        low, high, condition = STORAGE.get(code, DEFAULT_STORAGE)
        services.material_storage_set(actor=qa, material_code=code, min_celsius=low, max_celsius=high,
                                      condition=condition, reason=f"{MARK}: the supplier's storage conditions")
    return suppliers


def load_locations() -> dict[str, StockLocation]:
    """Each active site's store, made by its manager, and the regional depot; by site code (the
    depot under :data:`DEPOT`)."""
    out: dict[str, StockLocation] = {}
    for site in active_sites():
        manager = _user(f"manager.{site.code.lower()}")
        out[site.code] = StockLocation.objects.filter(site=site, code=STORE).first() or services.location_create(
            actor=manager, site=site, code=STORE, name=f"{site.city} cell therapy unit store",
            reason=f"{MARK}: the site's materials kept in POCare")
        if site.code == DEPOT_SITE:
            out[DEPOT] = StockLocation.objects.filter(site=site, code=DEPOT).first() or services.location_create(
                actor=manager, site=site, code=DEPOT, name="Iberian regional depot", kind=LocationKind.DEPOT,
                serves=Site.objects.filter(code__in=DEPOT_SERVES).order_by("code"),
                reason=f"{MARK}: regional depot for the Iberian sites")
    return out


def _receive(*, qc: User, location: StockLocation, code: str, name: str, lot_number: str, expiry: dt.date,
             quantity: Decimal, unit: str) -> MaterialLot:
    supplier = Supplier.objects.get(name=supplier_of(code))
    return services.stock_receive(
        actor=qc, location=location, supplier=supplier, material_code=code, name=name, lot_number=lot_number,
        expiry_date=expiry, quantity=quantity, unit=unit,
        reason=f"{MARK}: goods receipt, delivery note and temperature checked").lot


def _release(*, qc: User, lot: MaterialLot, password: str) -> None:
    services.stock_lot_decide(actor=qc, lot=lot, decision=LotStatus.RELEASED, credentials=_creds(qc, password),
                              reason=f"{MARK}: certificate of analysis checked against the specification")


def load_stock(*, versions: list[MasterFileVersion], password: str) -> int:
    """One supplier lot of each material of ``versions`` delivered to every active site
    (:data:`BATCHES_PER_DELIVERY` batches' worth; the depot's site receives it at the depot and
    moves one delivery's worth to its store) and released, signed, by the site's QC analyst —
    dated by the caller's clock. A site's material ever received into stock is skipped. Returns
    how many lots were added."""
    load_suppliers(password=password)
    locations = load_locations()
    bill = services.bill_of_materials()
    needs = per_batch(versions)
    added = 0
    for site in active_sites():
        qc = _user(f"qc.{site.code.lower()}")
        today = site_today(site)
        stocked = set(StockMovement.objects.filter(location__site=site, kind=MovementKind.RECEIVED)
                      .exclude(lot__lot_number=NEAR_EXPIRY.lot_number)
                      .values_list("lot__material_code", flat=True))
        for index, (code, quantity) in enumerate(sorted(needs.items())):
            if code in stocked:
                continue
            # One supplier lot per material, delivered to every site (a recall finds it everywhere).
            number = f"{'LV19-' if code == 'LV-CAR19' else ''}{today:%y%m}-{index + 1:03d}"
            delivery = quantity * BATCHES_PER_DELIVERY
            depot = locations.get(DEPOT) if site.code == DEPOT_SITE else None
            lot = _receive(qc=qc, location=depot or locations[site.code], code=code, name=bill[code]["name"],
                           lot_number=number, expiry=today + shelf_life(code),
                           quantity=delivery * (DEPOT_DELIVERIES if depot else 1), unit=bill[code]["unit"])
            _release(qc=qc, lot=lot, password=password)
            if depot is not None:
                services.stock_transfer(actor=qc, source=depot, destination=locations[site.code], lot=lot,
                                        quantity=delivery, reason=f"{MARK}: the store's monthly supply from the depot")
            added += 1
    return added


def load_near_expiry(*, password: str, expires: dt.date) -> MaterialLot | None:
    """:data:`NEAR_EXPIRY`'s lot, expiring on ``expires`` (soon after the load), received into its
    site's store and released under the caller's clock (months before); skipped when there."""
    spec = NEAR_EXPIRY
    site = Site.objects.filter(code=spec.site, status=SiteStatus.ACTIVE).first()
    if site is None:
        return None
    found = MaterialLot.objects.filter(site=site, material_code=spec.material, lot_number=spec.lot_number).first()
    if found is not None:
        return found
    load_suppliers(password=password)
    store = load_locations()[site.code]
    material = services.bill_of_materials()[spec.material]
    qc = _user(f"qc.{site.code.lower()}")
    lot = _receive(qc=qc, location=store, code=spec.material, name=material["name"], lot_number=spec.lot_number,
                   expiry=expires, quantity=spec.quantity, unit=material["unit"])
    _release(qc=qc, lot=lot, password=password)
    return lot


#: The demo's transfers from the Iberian depot (held by Madrid) to Lisbon's store: one received three days
#: before the load with its logger read within the limits, one dispatched this morning and in transit.
TRANSFER_TO = "LIS"
TRANSFER_RECEIVED_BEFORE_NOW = dt.timedelta(days=3)
TRANSFER_IN_TRANSIT_SINCE = dt.timedelta(hours=5)


def _logger_csv(start: dt.datetime, hours: int, limits: tuple[Decimal | None, Decimal | None]) -> str:
    """A logger read every 30 minutes from ``start`` for ``hours``, within ``limits`` (±2 °C about their
    middle, or 5 °C inside an open range's one limit)."""
    low, high = limits
    middle = ((low + high) / 2 if low is not None and high is not None
              else (high - 5 if high is not None else (low or Decimal(0)) + 5))
    rows = [f"{(start + dt.timedelta(minutes=30 * i)):%Y-%m-%dT%H:%M:%SZ},{float(middle) - 2 + (i % 9) / 2:.1f}"
            for i in range(hours * 2 + 1)]
    return "timestamp,temperature_c\n" + "\n".join(rows) + "\n"


#: Of Lisbon's ordered request, what the supplier has delivered so far (the rest is outstanding).
PART_DELIVERED = 4
#: The invoice of that delivery: 7 % below the cost model's price of the material (an estimate: a new
#: contract), so the cost model page shows Control Site finance a lot whose invoice differs (docs/costs.md).
INVOICE_DISCOUNT = Decimal("0.93")


def invoice_price(code: str) -> Decimal:
    """The demo's invoice price of a unit of ``code``: the cost model's (demo.costs), less the discount."""
    return (Decimal(PRICES.get(code, 100)) * INVOICE_DISCOUNT).quantize(Decimal("0.01"))


def load_exchanges(*, password: str, now: dt.datetime) -> int:
    """Transfers from the depot to :data:`TRANSFER_TO` (one received, one in transit) and two purchase
    requests (Lisbon's approved, ordered and partly delivered with its invoice price, Madrid's awaiting
    approval), each dated by the demo clock.
    Skipped when the demo's transfers exist. Returns how many records were added."""
    depot = StockLocation.objects.filter(code=DEPOT, site__code=DEPOT_SITE).first()
    there = StockLocation.objects.filter(code=STORE, site__code=TRANSFER_TO).first()
    if depot is None or there is None or Transfer.objects.filter(reason__startswith=MARK).exists():
        return 0
    stocked = (StockMovement.objects.filter(location=depot, lot__status=LotStatus.RELEASED)
               .values_list("lot_id", flat=True).order_by("lot_id"))
    lots = list(MaterialLot.objects.filter(pk__in=list(stocked)).order_by("material_code"))
    if not lots:
        return 0
    qc, receiver = _user(f"qc.{DEPOT_SITE.lower()}"), _user(f"qc.{TRANSFER_TO.lower()}")
    added = 0
    for lot, since, receive in ((lots[0], TRANSFER_RECEIVED_BEFORE_NOW + dt.timedelta(hours=6), True),
                                (lots[-1], TRANSFER_IN_TRANSIT_SINCE, False)):
        with demo_clock(now - since):
            sent = transfers.transfer_dispatch(
                actor=qc, source=depot, destination=there, lot=lot, quantity=1, logger_id=f"TT4-{lot.pk:05d}",
                carrier="Transportes Ibéricos (driver R. Alves)",
                seal=f"IB-{lot.pk:06d}", reason=f"{MARK}: Lisbon's weekly supply from the Iberian depot")
        added += 1
        if receive:
            with demo_clock(now - TRANSFER_RECEIVED_BEFORE_NOW):
                transfers.transfer_readings_upload(actor=receiver, transfer=sent,
                                                   csv_text=_logger_csv(sent.dispatched_at, 5,
                                                                        (sent.min_celsius, sent.max_celsius)))
                transfers.transfer_receive(actor=receiver, transfer=sent, handed_over_by="R. Alves",
                                           seal_intact=True, reason=f"{MARK}: shipper and seal checked on arrival")
    if not PurchaseRequest.objects.exists():
        bill = services.bill_of_materials()
        for site_code, code, approve in ((TRANSFER_TO, lots[0].material_code, True),
                                         (DEPOT_SITE, lots[-1].material_code, False)):
            site = Site.objects.get(code=site_code)
            with demo_clock(now - dt.timedelta(days=2 if approve else 0, hours=3)):
                request = purchases.purchase_request(
                    actor=_user(f"qc.{site_code.lower()}"), site=site, material_code=code,
                    supplier=Supplier.objects.get(name=supplier_of(code)), quantity=BATCHES_PER_DELIVERY,
                    reason=f"{MARK}: below the reorder point ({bill[code]['name']})")
                if approve:
                    manager = _user(f"manager.{site_code.lower()}")
                    purchases.purchase_approve(actor=manager, request=request, credentials=_creds(manager, password),
                                               reason=f"{MARK}: needed for the booked schedule")
                    purchases.purchase_order(actor=qc if site_code == DEPOT_SITE else receiver, request=request,
                                             order_number=f"PO-{site_code}-{request.pk:05d}")
            if approve:  # a first part delivered this morning, invoiced below the cost model's price
                with demo_clock(now - dt.timedelta(hours=5)):
                    store = StockLocation.objects.get(code=STORE, site=site)
                    purchases.purchase_delivery(
                        actor=_user(f"qc.{site_code.lower()}"), request=request, location=store,
                        lot_number=f"{code}-{request.pk:04d}-A", expiry_date=now.date() + dt.timedelta(days=365),
                        quantity=PART_DELIVERED, unit_price=invoice_price(code),
                        reason=f"{MARK}: delivery note checked against the order, the rest to follow")
            added += 1
    return added
