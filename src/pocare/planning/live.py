"""Parameters of the digital twin taken from the live network, so the twin describes the real
network: sites and their qualified units (capacity), observed manufacture durations (batch start to
the last performed step), QC turnaround (last step to the last QC result read), abort rate (aborted
batches, BatchStatus.ABORTED = manufacturing failure) and out-of-specification rate (batches with a
non-conforming QC result). Where the records hold too few batches, the DOMAIN.md defaults stay."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from django.db.models import Max

from pocare.manufacturing.models import Batch, BatchStatus, QcResult, StepExecution
from pocare.network.models import ManufacturingUnit, Site, SiteKind, UnitStatus
from pocare.planning import travel, twin

MIN_BATCHES = 5  # fewer observed batches than this: keep the published defaults


def observed(user: Any = None) -> dict[str, Any]:
    """What the batch records say (network-wide). ``user`` is for scoping: planners see the network."""
    sites = []
    for site in Site.objects.exclude(kind=SiteKind.CONTROL).order_by("code"):
        units = ManufacturingUnit.objects.filter(site=site, status=UnitStatus.QUALIFIED).count()
        sites.append({"code": site.code, "name": site.name, "latitude": float(site.latitude),
                      "longitude": float(site.longitude), "units": units, "status": site.status})
    last_step = dict(StepExecution.objects.filter(performed_at__isnull=False).values("batch_id")
                     .annotate(t=Max("performed_at")).values_list("batch_id", "t"))
    last_qc = dict(QcResult.objects.values("batch_id").annotate(t=Max("tested_at")).values_list("batch_id", "t"))
    durations, qc_days = [], []
    finished = Batch.objects.exclude(status=BatchStatus.IN_PROGRESS).only("pk", "started_at", "status")
    for batch in finished:
        end = last_step.get(batch.pk)
        if batch.status == BatchStatus.COMPLETED and end is not None and end > batch.started_at:
            durations.append((end - batch.started_at).total_seconds() / 86400)
            qc = last_qc.get(batch.pk)
            if qc is not None and qc >= end:
                qc_days.append((qc - end).total_seconds() / 86400)
    total = finished.count()
    aborted = finished.filter(status=BatchStatus.ABORTED).count()
    oos = QcResult.objects.filter(conforms=False, corrects__isnull=True).values("batch_id").distinct().count()
    return {"sites": sites, "manufacture_days": durations, "qc_days": qc_days, "batches": total,
            "aborted": aborted, "oos_batches": oos}


def twin_network(user: Any = None, *, referrals_per_year: float = 1000.0) -> tuple[twin.TwinConfig, dict[str, Any]]:
    """A twin configuration of the live network: one referring region per site (its catchment) with
    referrals shared by the number of units, transport hours between sites by the travel model."""
    data = observed(user)
    sites = [s for s in data["sites"] if s["units"] > 0]
    if not sites:
        raise ValueError("network: no site has a qualified manufacturing unit yet.")
    model = travel.TravelModel()
    lat = [s["latitude"] for s in sites]
    lon = [s["longitude"] for s in sites]
    hours = model.minutes(lat, lon, lat, lon) / 60.0
    units = sum(s["units"] for s in sites)
    specs = tuple(twin.SiteSpec(s["code"], s["units"], s["latitude"], s["longitude"]) for s in sites)
    regions = tuple(twin.RegionSpec(f"near {s['code']}", referrals_per_year * s["units"] / units,
                                    {t["code"]: float(max(0.5, hours[i, j])) for j, t in enumerate(sites)},
                                    s["latitude"], s["longitude"]) for i, s in enumerate(sites))
    config = twin.TwinConfig(sites=specs, regions=regions)
    used: dict[str, Any] = {"batches": data["batches"], "sites": len(sites), "units": units}
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
    return config, used
