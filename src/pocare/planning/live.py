"""Parameters of the digital twin taken from the live network, so the twin describes the real
network: sites and their qualified units (capacity), observed manufacture durations (batch start to
the last performed step), QC turnaround (last step to the last QC result read), abort rate (aborted
batches, BatchStatus.ABORTED = manufacturing failure) and out-of-specification rate (batches with a
non-conforming QC result). Where the records hold too few batches, the DOMAIN.md defaults stay.
Demand is the patients referred at each site over the last year (the patients app's referrals, with
the therapy orders placed without one ÷ the eligible share), extrapolated to a year — or the referrals
a year the planner gives; never a silent default.

Stock (issue 18, "Resilience"): each site's usable stock of every material of the bill (released,
unexpired, not recalled: supply's reorder rule) in kits — batches' worth, the quantity ÷ the bill's
quantity per batch, rounded down — its regional depot's pool shared by the sites it serves, the lead
time of each material (the longest of its qualified approved suppliers) and the materials each
supplier alone supplies."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal
from typing import Any

from django.db.models import Count, Max, Min
from django.utils import timezone

from pocare.custody.models import TherapyOrder
from pocare.manufacturing.models import Batch, BatchStatus, QcResult, StepExecution
from pocare.masterfile.models import MasterFileVersion, VersionStatus
from pocare.network.models import ManufacturingUnit, Site, SiteKind, UnitStatus
from pocare.patients.models import Referral
from pocare.patients.outcome_selectors import referrals_per_site
from pocare.planning import travel, twin
from pocare.supply import reorder
from pocare.supply.models import QUALIFIED, ApprovedSupplier, LocationKind, StockLocation

MIN_BATCHES = 5  # fewer observed batches than this: keep the published defaults


#: The most recent finished batches the twin learns its durations and rates from: enough for an
#: empirical distribution (DOMAIN.md's published figures come from fewer), recent enough to describe
#: today's process, and a page that costs the same at 400 batches as at 10,000 (issue 15).
OBSERVED_BATCHES = 1000


def observed(user: Any = None) -> dict[str, Any]:
    """What the batch records say (network-wide), from the :data:`OBSERVED_BATCHES` finished batches
    started last. ``user`` is for scoping: planners see the network."""
    sites = []
    for site in Site.objects.exclude(kind=SiteKind.CONTROL).order_by("code"):
        units = ManufacturingUnit.objects.filter(site=site, status=UnitStatus.QUALIFIED).count()
        sites.append({"code": site.code, "name": site.name, "latitude": float(site.latitude),
                      "longitude": float(site.longitude), "units": units, "status": site.status})
    finished = list(Batch.objects.exclude(status=BatchStatus.IN_PROGRESS).order_by("-started_at", "-pk")
                    .only("pk", "started_at", "status")[:OBSERVED_BATCHES])
    ids = [b.pk for b in finished]
    last_step = dict(StepExecution.objects.filter(batch_id__in=ids, performed_at__isnull=False).values("batch_id")
                     .annotate(t=Max("performed_at")).values_list("batch_id", "t"))
    last_qc = dict(QcResult.objects.filter(batch_id__in=ids).values("batch_id").annotate(t=Max("tested_at"))
                   .values_list("batch_id", "t"))
    durations, qc_days = [], []
    for batch in finished:
        end = last_step.get(batch.pk)
        if batch.status == BatchStatus.COMPLETED and end is not None and end > batch.started_at:
            durations.append((end - batch.started_at).total_seconds() / 86400)
            qc = last_qc.get(batch.pk)
            if qc is not None and qc >= end:
                qc_days.append((qc - end).total_seconds() / 86400)
    aborted = sum(b.status == BatchStatus.ABORTED for b in finished)
    oos = (QcResult.objects.filter(batch_id__in=ids, conforms=False, corrects__isnull=True)
           .values("batch_id").distinct().count())
    return {"sites": sites, "manufacture_days": durations, "qc_days": qc_days, "batches": len(finished),
            "aborted": aborted, "oos_batches": oos}


#: The window of therapy orders that gives the live twin its demand, and the least history that
#: may be extrapolated to a year.
REFERRAL_WINDOW_DAYS = 365
MIN_HISTORY_DAYS = 28


def _history_start(since: dt.datetime) -> dt.datetime | None:
    """The later of ``since`` and the network's first order or referral (None: neither yet)."""
    firsts = [TherapyOrder.objects.aggregate(first=Min("ordered_at"))["first"],
              Referral.objects.aggregate(first=Min("referred_at"))["first"]]
    known = [f for f in firsts if f is not None]
    return max(since, min(known)) if known else None


def observed_referrals(*, window_days: int = REFERRAL_WINDOW_DAYS, now: dt.datetime | None = None,
                       ) -> tuple[dict[str, int], float]:
    """Therapy orders placed without a patient referral per manufacturing site over the last
    ``window_days`` (or since the network's first order or referral, when that is later), and the
    days they span. An order is placed for a patient found eligible: the twin's referrals are these
    orders ÷ its eligible share (the referred patients are counted by :func:`observed_patients`)."""
    now = now or timezone.now()
    start = _history_start(now - dt.timedelta(days=window_days))
    if start is None:
        return {}, 0.0
    counts = dict(TherapyOrder.objects.filter(ordered_at__gte=start, ordered_at__lte=now, referral__isnull=True)
                  .values("site__code").annotate(n=Count("pk")).values_list("site__code", "n"))
    return counts, (now - start).total_seconds() / 86400


def observed_patients(*, window_days: int = REFERRAL_WINDOW_DAYS, now: dt.datetime | None = None,
                      ) -> dict[str, int]:
    """Patients referred per manufacturing site over the same window as :func:`observed_referrals`
    (issue 15: the twin's demand from the network's observed referrals; issue 17 records them)."""
    now = now or timezone.now()
    start = _history_start(now - dt.timedelta(days=window_days))
    return {} if start is None else referrals_per_site(start=start, end=now)


def _referrals(sites: list[dict[str, Any]], referrals_per_year: float | None, window_days: int,
               eligible_share: float) -> tuple[dict[str, float], str]:
    """Referrals a year per site and the words that say where they come from: as asked (shared by
    units), or those observed per site, extrapolated to a year: the patients referred, and the
    therapy orders placed without a referral divided by the eligible share."""
    units = sum(s["units"] for s in sites)
    if referrals_per_year is not None:
        return ({s["code"]: referrals_per_year * s["units"] / units for s in sites},
                f"{referrals_per_year:,.0f} referrals a year as given, shared by the sites' units.")
    now = timezone.now()
    counts, days = observed_referrals(window_days=window_days, now=now)
    patients = observed_patients(window_days=window_days, now=now)
    seen = sum(counts.get(s["code"], 0) for s in sites)
    referred = sum(patients.get(s["code"], 0) for s in sites)
    if days < MIN_HISTORY_DAYS or not seen + referred:
        raise ValueError(f"referrals: the network has {days:.0f} days of therapy orders and referrals at its sites "
                         f"with units, too few to extrapolate (at least {MIN_HISTORY_DAYS}); give the referrals a "
                         f"year.")
    per_year = {s["code"]: (patients.get(s["code"], 0) + counts.get(s["code"], 0) / eligible_share) * 365.0 / days
                for s in sites}
    return per_year, (f"{sum(per_year.values()):,.0f} referrals a year from the network's referrals and therapy "
                      f"orders in the last {days:.0f} days at the sites with units: {referred} patients referred, "
                      f"and {seen} orders placed without a referral ÷ {eligible_share:.2f} eligible (an order is "
                      f"placed for an eligible patient), × 365/{days:.0f}; per site "
                      + ", ".join(f"{code} {v:,.0f}" for code, v in per_year.items()) + ".")


def twin_network(user: Any = None, *, referrals_per_year: float | None = None,
                 window_days: int = REFERRAL_WINDOW_DAYS) -> tuple[twin.TwinConfig, dict[str, Any]]:
    """A twin configuration of the live network: one referring region per site (its catchment),
    transport hours between sites by the travel model. Demand: ``referrals_per_year`` shared by the
    units when given, otherwise the therapy orders observed per site (see :func:`_referrals`)."""
    data = observed(user)
    sites = [s for s in data["sites"] if s["units"] > 0]
    if not sites:
        raise ValueError("network: no site has a qualified manufacturing unit yet.")
    model = travel.TravelModel()
    lat = [s["latitude"] for s in sites]
    lon = [s["longitude"] for s in sites]
    hours = model.minutes(lat, lon, lat, lon) / 60.0
    per_site, demand = _referrals(sites, referrals_per_year, window_days, twin.TwinConfig.eligible_share)
    specs = tuple(twin.SiteSpec(s["code"], s["units"], s["latitude"], s["longitude"]) for s in sites)
    regions = tuple(twin.RegionSpec(f"near {s['code']}", per_site[s["code"]],
                                    {t["code"]: float(max(0.5, hours[i, j])) for j, t in enumerate(sites)},
                                    s["latitude"], s["longitude"]) for i, s in enumerate(sites))
    config = twin.TwinConfig(sites=specs, regions=regions)
    used: dict[str, Any] = {"batches": data["batches"], "sites": len(sites), "units": sum(s["units"] for s in sites),
                            "referrals_per_year": sum(per_site.values()), "demand": demand}
    return with_live_stock(_observed_times(config, data, used), used), used


#: The twin's lead time for a material no qualified supplier is approved for (supply's default).
DEFAULT_LEAD_TIME_DAYS = 14.0


def per_batch() -> dict[str, Decimal]:
    """Material code → quantity one batch uses, the largest over the master-file versions in force
    (fewer kits rather than more)."""
    out: dict[str, Decimal] = {}
    for version in MasterFileVersion.objects.filter(status=VersionStatus.EFFECTIVE).only("content"):
        for code, (_name, _unit, quantity) in reorder.bill_per_batch(version).items():
            out[code] = max(out.get(code, Decimal(0)), quantity)
    return out


def live_stock(codes: list[str], *, at: dt.datetime | None = None) -> dict[str, Any]:
    """Kits per site and per depot (serving which of ``codes``), lead times and sole suppliers, from
    the stock movements (supply's usable stock), the bill of materials and the approvals. Five queries."""
    now = at or timezone.now()
    bill = per_batch()
    ids = dict(Site.objects.filter(code__in=codes).values_list("pk", "code"))
    depots = {d.pk: d for d in StockLocation.objects.filter(kind=LocationKind.DEPOT).prefetch_related("serves")}
    depot_sites = {d.site_id for d in depots.values()}
    usable_until = now.date() + dt.timedelta(weeks=reorder.LEAD_TIME_WEEKS)
    site_kits: dict[str, dict[str, Decimal]] = {code: {} for code in codes}
    pool: dict[int, dict[str, Decimal]] = {pk: {} for pk in depots}
    for row in reorder.usable_stock([*ids, *depot_sites], usable_until=usable_until):
        material, total = row["lot__material_code"], row["total"] or Decimal(0)
        if row["location_id"] in depots:
            pool[row["location_id"]][material] = pool[row["location_id"]].get(material, Decimal(0)) + total
        elif row["location__site_id"] in ids:
            kits = site_kits[ids[row["location__site_id"]]]
            kits[material] = kits.get(material, Decimal(0)) + total
    kits_of = {code: {m: _kits(q, bill.get(m)) for m, q in held.items()} for code, held in site_kits.items()}
    specs = []
    for pk, depot in sorted(depots.items(), key=lambda d: d[1].code):
        serves = tuple(sorted(s.code for s in depot.serves.all() if s.code in site_kits))
        if serves:
            specs.append(twin.DepotSpec(depot.code, serves, {m: _kits(q, bill.get(m)) for m, q in pool[pk].items()}))
    lead, sole = suppliers()
    return {"kits": kits_of, "depots": tuple(specs), "lead_times": lead, "suppliers": sole}


def suppliers() -> tuple[dict[str, float], dict[str, tuple[str, ...]]]:
    """Each material's lead time in days (the longest of its qualified approved suppliers) and each
    supplier's materials that only it supplies (what stops when it does). One query."""
    approvals = list(ApprovedSupplier.objects.filter(supplier__status__in=QUALIFIED)
                     .values_list("material_code", "supplier__name", "lead_time_days"))
    lead: dict[str, float] = {}
    by_material: dict[str, set[str]] = {}
    for material, supplier, days in approvals:
        lead[material] = max(lead.get(material, 0.0), float(days))
        by_material.setdefault(material, set()).add(supplier)
    sole: dict[str, list[str]] = {}
    for material, names in sorted(by_material.items()):
        if len(names) == 1:
            sole.setdefault(next(iter(names)), []).append(material)
    return lead, {name: tuple(materials) for name, materials in sorted(sole.items())}


def _kits(quantity: Decimal, per: Decimal | None) -> float:
    """Whole batches' worth of ``quantity`` (0 for a material no bill in force uses)."""
    return float(int(quantity / per)) if per and per > 0 and quantity > 0 else 0.0


def with_live_stock(config: twin.TwinConfig, used: dict[str, Any] | None = None) -> twin.TwinConfig:
    """``config`` with the live network's stock, depots, lead times and sole suppliers."""
    stock = live_stock([s.code for s in config.sites])
    config = replace(config, sites=tuple(replace(s, kits=stock["kits"].get(s.code, {})) for s in config.sites),
                     depots=stock["depots"], lead_time_days=DEFAULT_LEAD_TIME_DAYS,
                     lead_times=stock["lead_times"], suppliers=stock["suppliers"])
    if used is not None:
        used["stock"] = (f"{sum(len(k) for k in stock['kits'].values())} site × material stocks, "
                         f"{len(stock['depots'])} depot(s), {len(stock['suppliers'])} sole supplier(s)")
    return config


def _observed_times(config: twin.TwinConfig, data: dict[str, Any], used: dict[str, Any]) -> twin.TwinConfig:
    """Manufacture and QC durations and the failure rates from the batch records, when enough."""
    if len(data["manufacture_days"]) >= MIN_BATCHES:
        config = replace(config, manufacture=twin.Dist("empirical", values=tuple(data["manufacture_days"])))
        used["manufacture"] = "observed"
    if len(data["qc_days"]) >= MIN_BATCHES:
        config = replace(config, qc=twin.Dist("empirical", values=tuple(data["qc_days"])))
        used["qc"] = "observed"
    if data["batches"] >= MIN_BATCHES:
        config = replace(config, abort_rate=data["aborted"] / data["batches"],
                         oos_rate=min(1.0, data["oos_batches"] / data["batches"]))
        used["rates"] = "observed"
    return config
