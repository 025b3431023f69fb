"""Reads of the planning app. Runs belong to the network: whoever may see the planning pages
(PLANNING_VIEW — planner, Control Site QA, QP, inspector) sees every run."""

from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from pocare.accounts import selectors as access
from pocare.accounts.roles import Perm
from pocare.costs import selectors as cost_selectors
from pocare.costs.models import CostModel
from pocare.manufacturing.models import Batch, BatchStatus
from pocare.masterfile.models import MasterFileVersion, Product
from pocare.masterfile.selectors import effective_version
from pocare.network.models import ManufacturingUnit, Site, SiteKind, UnitStatus
from pocare.planning.live import OBSERVED_BATCHES
from pocare.planning.models import PlanningRun
from pocare.planning.travel import TravelModel
from pocare.supply import autarky


def runs_visible(user: Any) -> QuerySet[PlanningRun]:
    if not access.has_perm(user, Perm.PLANNING_VIEW):
        return PlanningRun.objects.none()
    return PlanningRun.objects.select_related("created_by")


def run_for(user: Any, pk: int) -> PlanningRun | None:
    return runs_visible(user).filter(pk=pk).first()


def autarky_regions(user: Any) -> list[autarky.Region]:
    """Weeks of autarky per region, network-wide for whoever may see the planning pages (none else)."""
    if not access.has_perm(user, Perm.PLANNING_VIEW):
        return []
    return autarky.regions(user=user, perm=Perm.PLANNING_VIEW)


def may_start(user: Any) -> bool:
    return access.has_perm(user, Perm.PLANNING_RUN) and not access.is_read_only(user)


def travel_minutes(*, origin: Any, destinations: list[Any]) -> dict[int, float]:
    """Planning's answer to ``patients.travel_minutes``: minutes one way from ``origin`` to each
    destination site by the default travel model (great-circle km × circuity ÷ speed), 0 for the
    origin itself. The booking of a patient's slots ranks candidate sites by it."""
    if not destinations:
        return {}
    minutes = TravelModel().minutes([float(origin.latitude)], [float(origin.longitude)],
                                    [float(d.latitude) for d in destinations],
                                    [float(d.longitude) for d in destinations])[0]
    return {d.pk: 0.0 if d.pk == origin.pk else round(float(m), 1) for d, m in zip(destinations, minutes, strict=True)}


# -- the business case (docs/business-case.md) ---------------------------------------------------

@dataclass(frozen=True)
class BusinessInputs:
    """What a site's business case is computed from: the cost model in force today, the product's master-file
    version effective at the site, the site's device type and what its finished batches show."""

    site: Site
    model: CostModel | None
    version: MasterFileVersion | None
    device_type: str
    batches: int  # finished (completed or aborted) at the site
    aborted: int
    process_days: Decimal | None  # median unit occupation (start → end) of the site's completed batches


def business_sites(user: Any) -> QuerySet[Site]:
    """The manufacturing sites whose business case the person may read: ``costs.view`` held there (the
    Control Site's readers: every site)."""
    if not access.has_perm(user, Perm.COSTS_VIEW):
        return Site.objects.none()
    found = Site.objects.exclude(kind=SiteKind.CONTROL).order_by("code")
    sites = access.sites_with_perm(user, Perm.COSTS_VIEW)
    return found if sites is None else found.filter(pk__in=sites)


def business_inputs(site: Site) -> BusinessInputs:
    """The inputs of ``site``'s case in a fixed number of queries (the model, the product, its effective
    version, the site's unit, the site's last finished batches)."""
    model = cost_selectors.model_effective(timezone.now().astimezone(dt.UTC).date())
    product = Product.objects.order_by("code").first()
    version = effective_version(site=site, product=product) if product is not None else None
    unit = ManufacturingUnit.objects.filter(site=site, status=UnitStatus.QUALIFIED).order_by("pk").first()
    finished = list(Batch.objects.filter(site=site).exclude(status=BatchStatus.IN_PROGRESS)
                    .order_by("-started_at", "-pk").values("status", "started_at", "ended_at")[:OBSERVED_BATCHES])
    days = [(b["ended_at"] - b["started_at"]).total_seconds() / 86400 for b in finished
            if b["status"] == BatchStatus.COMPLETED and b["ended_at"] is not None and b["ended_at"] > b["started_at"]]
    return BusinessInputs(site=site, model=model, version=version,
                          device_type=unit.device_type if unit is not None else "other", batches=len(finished),
                          aborted=sum(b["status"] == BatchStatus.ABORTED for b in finished),
                          process_days=Decimal(str(round(statistics.median(days), 4))) if days else None)
