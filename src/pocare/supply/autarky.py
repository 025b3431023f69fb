"""Weeks of autarky per region (SUP-STOCK, issue 18 "Resilience"): how long each region of the network
would go on making batches on the stock it holds if no delivery came.

A **region** is the sites a regional depot serves, with the depot; a site that no depot serves is a
region alone. For each material a region needs (weekly demand > 0), its weeks of autarky are the
region's usable stock (its sites' own locations and its depot) ÷ the region's weekly demand; the
region's weeks are the smallest over its materials, and that material is the **limiting** one.
Usable stock and weekly demand are those of the reorder points (:mod:`pocare.supply.reorder`): released,
not recalled, unexpired at the end of the lead time; demand the larger of the booked chains and the
consumption. A fixed number of queries whatever the network's size.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.utils import timezone

from pocare.accounts.roles import Perm
from pocare.supply import reorder
from pocare.supply.models import LocationKind, StockLocation


@dataclass(frozen=True)
class Cover:
    """One material in one region."""

    material_code: str
    name: str
    unit: str
    stock: Decimal
    weekly_demand: Decimal

    @property
    def weeks(self) -> Decimal | None:
        if self.weekly_demand <= 0:
            return None
        return (self.stock / self.weekly_demand).quantize(Decimal("0.1"))


@dataclass(frozen=True)
class Region:
    """A depot and the sites it serves, or a site alone (``depot`` empty)."""

    name: str
    depot: str
    sites: tuple[str, ...]
    covers: tuple[Cover, ...]

    @property
    def limiting(self) -> Cover | None:
        """The material that runs out first (None: the region needs nothing)."""
        needed = [c for c in self.covers if c.weeks is not None]
        return min(needed, key=lambda c: (c.weeks, c.material_code)) if needed else None

    @property
    def weeks(self) -> Decimal | None:
        limiting = self.limiting
        return limiting.weeks if limiting is not None else None


def regions(*, user: Any, perm: Perm = Perm.PLANNING_VIEW, at: dt.datetime | None = None) -> list[Region]:
    """The regions of the stock-keeping sites where ``user`` holds ``perm``, fewest weeks first (a
    region needing nothing last). A depot's region holds only the served sites ``user`` may see."""
    now = at or timezone.now()
    needs = reorder.needs(user=user, perm=perm, at=now)
    sites = reorder.keeping_sites(user, perm)
    if not sites:
        return []
    by_id = {s.pk: s.code for s in sites}
    depots = list(StockLocation.objects.filter(kind=LocationKind.DEPOT, site_id__in=list(by_id))
                  .prefetch_related("serves").order_by("code", "pk"))
    region_of: dict[str, str] = {}
    members: dict[str, list[str]] = {}
    for depot in depots:
        served = [s.code for s in depot.serves.all() if s.pk in by_id and s.code not in region_of]
        for code in served:
            region_of[code] = depot.code
        members[depot.code] = served
    for code in sorted(by_id.values()):
        if code not in region_of:
            region_of[code] = code
            members[code] = [code]
    stock: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    demand: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    names: dict[str, tuple[str, str]] = {}
    for n in needs:
        region = region_of[n.site]
        stock[(region, n.material_code)] += n.stock
        demand[(region, n.material_code)] += n.weekly_demand
        names.setdefault(n.material_code, (n.name, n.unit))
    depot_codes = {d.pk: d.code for d in depots}
    usable_until = now.date() + dt.timedelta(weeks=reorder.LEAD_TIME_WEEKS)
    for row in reorder.usable_stock(list(by_id), usable_until=usable_until):
        if row["location_id"] in depot_codes:
            stock[(depot_codes[row["location_id"]], row["lot__material_code"])] += row["total"] or 0
    out = []
    for name, sites_in in members.items():
        materials = sorted({m for (r, m) in set(stock) | set(demand) if r == name})
        covers = tuple(Cover(m, *names.get(m, (m, "")), stock.get((name, m), Decimal(0)),
                             demand.get((name, m), Decimal(0))) for m in materials)
        out.append(Region(name, name if name in depot_codes.values() else "", tuple(sorted(sites_in)), covers))
    return sorted(out, key=lambda r: (r.weeks is None, r.weeks or 0, r.name))
