"""What each site will need, and when to order it (SUP-STOCK): reorder points and maximum levels per site
and material, computed — never typed — from two sources, the larger winning:

- **the booked schedule**: the chains of slots booked by the patients app whose manufacturing starts at
  the site in the next :data:`HORIZON_WEEKS` weeks (asked through ``manufacturing.booked_batches``, since
  patients and supply do not import each other), each needing one bill of materials of the master-file
  version effective at the site;
- **history**: what the site's steps consumed over the last :data:`HISTORY_WEEKS` weeks.

Weekly demand *d* is the larger of the booked need spread over the horizon and the weekly consumption.
The reorder point covers the supplier's lead time (the longest ``lead_time_days`` of the material's
qualified approved suppliers; :data:`LEAD_TIME_WEEKS` for a material with none) and a week of safety,
``d × (lead time + SAFETY_WEEKS)``; the maximum adds the horizon, ``reorder point + d × HORIZON_WEEKS``; the quantity to
order brings usable stock back to the maximum. Usable stock is released, unexpired at the end of the
lead time, not recalled, at the site's own locations (a depot's stock is shown beside it, not counted:
it must first be transferred). A site is *short* when its usable stock does not cover even the chains
already booked: patients would wait.

Every figure is a fixed number of queries for all the sites a person sees (a work queue on the home page
reads it): the stock, the consumption, the lots near expiry, the bookings and the master-file versions.
The constants are this installation's planning assumptions, shown on the page beside the figures.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, Decimal
from typing import Any

from django.db.models import Max, Sum
from django.utils import timezone

from pocare.accounts.roles import Perm
from pocare.accounts.selectors import sites_with_perm
from pocare.manufacturing.models import LotStatus
from pocare.manufacturing.questions import booked_batches
from pocare.masterfile import schema
from pocare.masterfile.models import Product
from pocare.masterfile.selectors import effective_versions
from pocare.network.models import Site
from pocare.supply.models import (
    QUALIFIED,
    ApprovedSupplier,
    LocationKind,
    MovementKind,
    StockLocation,
    StockMovement,
)
from pocare.supply.purchases import open_quantities
from pocare.supply.recall import open_recalls, recalled_lots
from pocare.supply.services import bill_of_materials

#: How far ahead the booked schedule is read, and what the maximum level covers beyond the reorder point.
HORIZON_WEEKS = 4
#: How far back consumption is averaged.
HISTORY_WEEKS = 13
#: A supplier's delivery time for the materials of the bill (an estimate: no published figure; the
#: closed-system kits and reagents are typically delivered in one to three weeks).
LEAD_TIME_WEEKS = 2
#: Stock kept beyond the lead time's demand, against a late delivery or an extra patient.
SAFETY_WEEKS = 1
#: Lots with stock that expire within this many days are listed for use first or for write-off.
EXPIRY_ALERT_DAYS = 30

SHORT, REORDER, OK = "short", "reorder", "ok"


@dataclass(frozen=True)
class Need:
    """One site's position on one material."""

    site: str
    site_id: int
    material_code: str
    name: str
    unit: str
    stock: Decimal
    depot_stock: Decimal
    booked_batches: int
    booked_need: Decimal
    weekly_history: Decimal
    #: What the site's open purchase requests (requested, approved, ordered) already ask for.
    on_order: Decimal = Decimal(0)
    #: The longest lead time of the material's qualified approved suppliers, in weeks (else the constant).
    lead_time_weeks: Decimal = Decimal(LEAD_TIME_WEEKS)

    @property
    def weekly_demand(self) -> Decimal:
        return max(self.booked_need / HORIZON_WEEKS, self.weekly_history)

    @property
    def reorder_point(self) -> Decimal:
        return _up(self.weekly_demand * (self.lead_time_weeks + SAFETY_WEEKS))

    @property
    def max_level(self) -> Decimal:
        return _up(self.reorder_point + self.weekly_demand * HORIZON_WEEKS)

    @property
    def status(self) -> str:
        if self.stock < self.booked_need:
            return SHORT
        if self.weekly_demand > 0 and self.stock <= self.reorder_point:
            return REORDER
        return OK

    @property
    def order_quantity(self) -> Decimal:
        """What is still to order: up to the maximum, less what open purchase requests already ask for."""
        return max(Decimal(0), self.max_level - self.stock - self.on_order) if self.status != OK else Decimal(0)

    @property
    def weeks_of_cover(self) -> Decimal | None:
        """How many weeks the usable stock lasts at the weekly demand (None: no demand)."""
        return (self.stock / self.weekly_demand).quantize(Decimal("0.1")) if self.weekly_demand > 0 else None


def _up(value: Decimal) -> Decimal:
    """Rounded up to a whole unit: nobody orders 2.3 kits."""
    return value.to_integral_value(rounding=ROUND_CEILING)


def keeping_sites(user: Any, perm: Perm) -> list[Site]:
    """The sites keeping stock (with a location) where ``user`` holds ``perm``."""
    ids = sites_with_perm(user, perm)
    keeping = Site.objects.filter(pk__in=StockLocation.objects.values("site_id")).order_by("code")
    return list(keeping if ids is None else keeping.filter(pk__in=ids))


def bill_per_batch(version: Any) -> dict[str, tuple[str, str, Decimal]]:
    """Material code → (name, unit, quantity per batch) of a master-file version."""
    out: dict[str, tuple[str, str, Decimal]] = {}
    for step in schema.iter_steps(version.content or {}):
        for line in step.get("materials", []):
            name, unit, quantity = out.get(line["code"], (line["name"], line["unit"], Decimal(0)))
            out[line["code"]] = (name, unit, quantity + Decimal(str(line["quantity"])))
    return out


def needs(*, user: Any, perm: Perm = Perm.SUPPLY_VIEW, at: dt.datetime | None = None) -> list[Need]:
    """Each stock-keeping site's position on each material it holds, consumed or will need, for the
    sites where ``user`` holds ``perm``: short first, then to reorder, then by site and material."""
    sites = keeping_sites(user, perm)
    if not sites:
        return []
    now = at or timezone.now()
    today = now.date()
    usable_until = today + dt.timedelta(weeks=LEAD_TIME_WEEKS)
    ids = [s.pk for s in sites]
    usable = usable_stock(ids, usable_until=usable_until)
    stock: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
    depot: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
    units: dict[tuple[int, str], str] = {}
    for row in usable:
        key = (row["location__site_id"], row["lot__material_code"])
        (depot if row["location__kind"] == LocationKind.DEPOT else stock)[key] += row["total"] or 0
        units[key] = row["unit"]
    consumed = (StockMovement.objects.filter(location__site_id__in=ids, kind=MovementKind.CONSUMED,
                                             occurred_at__gte=now - dt.timedelta(weeks=HISTORY_WEEKS),
                                             occurred_at__lt=now)
                .values("location__site_id", "lot__material_code").annotate(total=Sum("quantity")).order_by())
    weekly = {(r["location__site_id"], r["lot__material_code"]): -(r["total"] or 0) / HISTORY_WEEKS
              for r in consumed}
    booked = booked_batches(sites=ids, starts=now, ends=now + dt.timedelta(weeks=HORIZON_WEEKS))
    by_site = {s.pk: s for s in sites}
    products = {p.pk: p for p in Product.objects.filter(pk__in={product for _, product in booked})}
    cases = [(by_site[site_id], products[product_id], None) for site_id, product_id in sorted(booked)]
    need: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
    batches: dict[tuple[int, str], int] = defaultdict(int)
    names: dict[str, tuple[str, str]] = {}
    for (site, product, _), version in zip(cases, effective_versions(cases), strict=True):
        if version is None:
            continue  # nothing is made there under this product now: the booking's own problem
        for code, (name, unit, per_batch) in bill_per_batch(version).items():
            names.setdefault(code, (name, unit))
            count = booked[(site.pk, product.pk)]
            need[(site.pk, code)] += per_batch * count
            batches[(site.pk, code)] += count
    keys = set(stock) | set(depot) | set(weekly) | set(need)
    if any(code not in names for _, code in keys):
        names.update({code: (m["name"], m["unit"]) for code, m in bill_of_materials().items() if code not in names})
    ordered = open_quantities(ids)
    out = [Need(by_site[key[0]].code, key[0], key[1], names.get(key[1], (key[1], ""))[0],
                units.get(key) or names.get(key[1], ("", ""))[1], stock.get(key, Decimal(0)),
                depot.get(key, Decimal(0)), batches.get(key, 0), need.get(key, Decimal(0)),
                Decimal(weekly.get(key, 0)).quantize(Decimal("0.01")), ordered.get(key, Decimal(0)))
           for key in keys]
    lead = lead_times_weeks()
    out = [replace(n, lead_time_weeks=lead[n.material_code]) if n.material_code in lead else n for n in out]
    rank = {SHORT: 0, REORDER: 1, OK: 2}
    return sorted(out, key=lambda n: (rank[n.status], n.site, n.material_code))


def usable_stock(site_ids: list[int], *, usable_until: dt.date) -> Any:
    """Usable stock at the locations of ``site_ids`` (released, unexpired on ``usable_until``, not
    recalled), per site × location × material in one query: rows with ``location__site_id``,
    ``location_id``, ``location__kind``, ``lot__material_code``, ``unit`` and ``total``."""
    held = StockMovement.objects.filter(location__site_id__in=site_ids, lot__status=LotStatus.RELEASED,
                                        lot__expiry_date__gte=usable_until)
    if (recalled := recalled_lots(open_recalls())) is not None:
        held = held.exclude(recalled)
    return (held.values("location__site_id", "location_id", "location__kind", "lot__material_code", "unit")
            .annotate(total=Sum("quantity")).order_by())


def lead_times_weeks() -> dict[str, Decimal]:
    """Material code → the longest lead time of its qualified approved suppliers, in weeks (one query).
    The longest: the reorder point must hold whichever of them delivers."""
    rows = (ApprovedSupplier.objects.filter(supplier__status__in=QUALIFIED).values("material_code")
            .annotate(days=Max("lead_time_days")).order_by())
    return {r["material_code"]: (Decimal(r["days"]) / 7).quantize(Decimal("0.01")) for r in rows}


def to_reorder(user: Any) -> list[Need]:
    """Work queue "stock to order": the positions short or below their reorder point at the sites where
    ``user`` manages materials."""
    held = sites_with_perm(user, Perm.MATERIALS_MANAGE)
    if held is not None and not held:
        return []
    return [n for n in needs(user=user, perm=Perm.MATERIALS_MANAGE) if n.status != OK and n.order_quantity > 0]


def expiring(user: Any, *, at: dt.datetime | None = None) -> Any:
    """Work queue "lots expiring": lots with stock at the person's sites that expire within
    :data:`EXPIRY_ALERT_DAYS` days (or have expired and still hold stock), soonest first. One query."""
    ids = sites_with_perm(user, Perm.MATERIALS_MANAGE)
    if ids is not None and not ids:
        return StockMovement.objects.none()
    today = (at or timezone.now()).date()
    rows = StockMovement.objects.filter(lot__expiry_date__lte=today + dt.timedelta(days=EXPIRY_ALERT_DAYS))
    if ids is not None:
        rows = rows.filter(location__site_id__in=ids)
    return (rows.values("location__site__code", "location__code", "lot__material_code", "lot__lot_number",
                        "lot__expiry_date", "unit")
            .annotate(total=Sum("quantity")).filter(total__gt=0).order_by("lot__expiry_date", "lot__lot_number"))
