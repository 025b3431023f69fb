"""Starting and finishing planning runs (the one write path of the app). A run is a service with a
ledger event for its start, the moment its work begins and its finish, on the network chain (site=None).
Starting needs the network
planner or Control Site QA role. In the web UI the work runs in a background thread in-process (the
embedded default); ``POCARE_DASK_SCHEDULER`` names a Dask scheduler for the twin's replications in a
deployment."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import close_old_connections, transaction
from django.utils import timezone

from pocare.accounts import selectors as access
from pocare.accounts.roles import Perm
from pocare.ledger.services import event_record
from pocare.planning import demand, report, study, travel
from pocare.planning.events import PlanningEvent
from pocare.planning.models import PlanningRun, RunKind, RunStatus


def _scheduler() -> str:
    return os.environ.get("POCARE_DASK_SCHEDULER", "").strip() or "in-process"


def validate_parameters(kind: str, parameters: Mapping[str, Any]) -> None:
    """Fail early, naming the field, for what the study would refuse (cheap checks only)."""
    try:
        if kind == RunKind.PLAN:
            p = {**study.PLAN_DEFAULTS, **parameters}
            demand.cities(str(p["region"]), min_population=int(p["min_population"]))
            travel.TravelModel(circuity=float(p["circuity"]), speed_kmh=float(p["speed_kmh"]))
            for ind in p["indications"]:
                if ind not in demand.INDICATIONS:
                    raise ValueError(f"indications: {ind!r} unknown; use {', '.join(demand.INDICATIONS)}.")
        elif kind == RunKind.TWIN:
            study.twin_config(parameters)
        else:
            raise ValueError(f"kind: {kind!r} unknown; use plan or twin.")
    except ValueError as exc:
        field, _, _ = str(exc).partition(":")
        raise ValidationError({field.strip() if " " not in field.strip() else "parameters": str(exc)}) from exc


def planning_run_start(*, actor: Any, kind: str, parameters: Mapping[str, Any], reason: str = "",
                       background: bool = True) -> PlanningRun:
    """Record a new run (ledger: started) and run it — in a background thread by default."""
    if access.is_read_only(actor) or not access.has_perm(actor, Perm.PLANNING_RUN):
        raise PermissionDenied("Only the network planner or Control Site QA may start planning runs.")
    validate_parameters(kind, parameters)
    with transaction.atomic():
        run = PlanningRun.objects.create(kind=kind, parameters=dict(parameters), created_by=actor,
                                         created_at=timezone.now())
        event_record(actor=actor, event_type=PlanningEvent.RUN_STARTED, site=None, obj=run,
                     object_type="planning.PlanningRun", object_id=str(run.pk), object_repr=str(run),
                     reason=reason or f"{run.get_kind_display()} study started", new={"kind": kind,
                                                                                        "parameters": dict(parameters)})
    if background:
        transaction.on_commit(lambda: threading.Thread(target=_work_in_thread, args=(run.pk,), daemon=True).start())
    else:
        planning_run_execute(run=run)
    return run


def _work_in_thread(pk: int) -> None:
    close_old_connections()
    try:
        planning_run_execute(run=PlanningRun.objects.get(pk=pk))
    finally:
        close_old_connections()


def _set_progress(run: PlanningRun, pct: int) -> None:
    """Progress is operational state of the run row, not a GMP record: no ledger event."""
    pct = max(0, min(100, int(pct)))
    if pct != run.progress:
        run.progress = pct
        PlanningRun.objects.filter(pk=run.pk).update(progress=pct)


def planning_run_begin(*, run: PlanningRun) -> PlanningRun:
    """Move a queued run to running (ledger: running, by the planning system). A run is worked on
    once: a run that is not queued is refused and nothing is recorded."""
    with transaction.atomic():
        locked = PlanningRun.objects.select_for_update().get(pk=run.pk)
        if locked.status != RunStatus.QUEUED:
            raise ValidationError({"run": f"{run} is {locked.get_status_display().lower()}: only a queued run "
                                          "begins its work."})
        locked.status = run.status = RunStatus.RUNNING
        locked.save(update_fields=["status"])
        event_record(actor=None, system="planning", event_type=PlanningEvent.RUN_RUNNING, site=None, obj=run,
                     object_type="planning.PlanningRun", object_id=str(run.pk), object_repr=str(run),
                     reason="Planning run began its work", old={"status": RunStatus.QUEUED.value},
                     new={"status": RunStatus.RUNNING.value})
    return run


def planning_run_execute(*, run: PlanningRun, scheduler: str | None = None) -> PlanningRun:
    """Do the work of a queued run (ledger: running) and record the finish (ledger: finished, with
    the outcome)."""
    planning_run_begin(run=run)
    title = f"POCare {run.get_kind_display().lower()} run {run.pk}"
    try:
        if run.kind == RunKind.PLAN:
            result = study.plan_study(run.parameters, progress=lambda pct: _set_progress(run, pct))
        else:
            result = study.twin_study(run.parameters, progress=lambda pct: _set_progress(run, pct),
                                      scheduler=scheduler or _scheduler())
        html = report.document(result, title=title)
        status, error = RunStatus.DONE, ""
    except (ValueError, RuntimeError, OSError) as exc:
        result, html, status, error = None, "", RunStatus.FAILED, str(exc)
    with transaction.atomic():
        run.status, run.result, run.report_html, run.error = status, result, html, error
        run.progress = 100 if status == RunStatus.DONE else run.progress
        run.finished_at = timezone.now()
        run.save(update_fields=["status", "result", "report_html", "error", "progress", "finished_at"])
        outcome: dict[str, Any] = {"status": status, "error": error}
        if result is not None and result["kind"] == "plan":
            outcome.update(chosen=result["solution"]["chosen"], objective=result["solution"]["objective"],
                           gap=result["solution"]["gap"])
        elif result is not None:
            outcome.update(scenarios=[{"name": s["name"], "share_treated": s["summary"]["share_treated"]["mean"]}
                                      for s in result["scenarios"]])
        event_record(actor=None, system="planning", event_type=PlanningEvent.RUN_FINISHED, site=None, obj=run,
                     object_type="planning.PlanningRun", object_id=str(run.pk), object_repr=str(run),
                     reason="Planning run finished", new=outcome)
    return run
