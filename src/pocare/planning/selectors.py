"""Reads of the planning app. Runs belong to the network: whoever may see the planning pages
(PLANNING_VIEW — planner, Control Site QA, QP, inspector) sees every run."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from pocare.accounts import selectors as access
from pocare.accounts.roles import Perm
from pocare.planning.models import PlanningRun


def runs_visible(user: Any) -> QuerySet[PlanningRun]:
    if not access.has_perm(user, Perm.PLANNING_VIEW):
        return PlanningRun.objects.none()
    return PlanningRun.objects.select_related("created_by")


def run_for(user: Any, pk: int) -> PlanningRun | None:
    return runs_visible(user).filter(pk=pk).first()


def may_start(user: Any) -> bool:
    return access.has_perm(user, Perm.PLANNING_RUN) and not access.is_read_only(user)
