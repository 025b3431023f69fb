"""How the generated permission test (tests/test_permission_matrix.py) names planning objects: a
finished run. Runs belong to the network, so the site code does not matter.

Kept on purpose as a row no service could make (finished, with no result and no ledger events):
``planning_run_start`` runs the study (about 1 s for the smallest plan) and the matrix names a run
in each of its ~110 planning cases; tests/planning drives runs through the services."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _run(site: str) -> dict[str, Any]:
    from django.utils import timezone

    from pocare.accounts.models import User
    from pocare.planning.models import PlanningRun, RunKind, RunStatus

    run = PlanningRun.objects.filter(status=RunStatus.DONE).first() or PlanningRun.objects.create(
        kind=RunKind.PLAN, parameters={}, status=RunStatus.DONE, progress=100, report_html="<p>matrix</p>",
        created_by=User.objects.get(username="planner"), created_at=timezone.now(), finished_at=timezone.now())
    return {"pk": run.pk}


OBJECTS: dict[str, Callable[[str], dict[str, Any]]] = {
    "planning:run": _run,
    "planning:run_report": _run,
}
