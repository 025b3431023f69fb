"""Reads of the planning app. Runs belong to the network: whoever may see the planning pages
(PLANNING_VIEW — planner, Control Site QA, QP, inspector) sees every run."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from pocare.accounts import selectors as access
from pocare.accounts.roles import Perm
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
