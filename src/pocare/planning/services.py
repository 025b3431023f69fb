"""Starting and finishing planning runs (the one write path of the app). A run is a service with a
ledger event for its start, the moment its work begins and its finish, on the network chain (site=None).
Starting needs the network
planner or Control Site QA role. In the web UI the work is a job (``pocare.jobs``), queued in the
transaction that records the start and run by a worker (``pocare worker``, or the one ``pocare serve
--with-worker`` starts): a worker that dies mid-run has its job taken back and the run re-run, and a
run whose job is given up on ends failed with its finish event. ``POCARE_DASK_SCHEDULER`` names a Dask
scheduler for the twin's replications in a deployment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from pocare.accounts import selectors as access
from pocare.accounts.roles import Perm
from pocare.jobs.services import job_enqueue
from pocare.jobs.tasks import task
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
    """Record a new run (ledger: started) and run it — as a job by default (queued in this transaction,
    so a start that rolls back queues nothing); ``background=False`` runs it here and now."""
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
            job_enqueue(task="pocare.planning.services.planning_run_work", kwargs={"run_id": run.pk}, actor=actor,
                        label=f"{run.get_kind_display()} run {run.pk}")
    if not background:
        planning_run_execute(run=run)
    return run


def planning_run_failed(*, run_id: int, error: str) -> None:
    """The run's job was given up on (its last try raised, or its worker died): the run ends failed,
    with its finish event. Called by the jobs app inside the transaction that records the failure."""
    run = PlanningRun.objects.select_for_update().get(pk=run_id)
    if run.status in (RunStatus.DONE, RunStatus.FAILED):
        return
    run.status, run.error, run.finished_at = RunStatus.FAILED, error, timezone.now()
    run.save(update_fields=["status", "error", "finished_at"])
    event_record(actor=None, system="planning", event_type=PlanningEvent.RUN_FINISHED, site=None, obj=run,
                 object_type="planning.PlanningRun", object_id=str(run.pk), object_repr=str(run),
                 reason="Planning run finished: its job failed", new={"status": RunStatus.FAILED.value,
                                                                      "error": error})


@task(max_tries=3, on_failure="pocare.planning.services.planning_run_failed", label="Planning run")
def planning_run_work(*, run_id: int) -> dict[str, Any]:
    """The job of a run: do its work. A run left running by a worker that died, or failed by a job
    that is retried, is worked on again (ledger: running, again)."""
    run = PlanningRun.objects.get(pk=run_id)
    if run.status == RunStatus.DONE:
        return {"run": run.pk, "status": run.status}
    planning_run_execute(run=run, resume=True)
    run.refresh_from_db()
    return {"run": run.pk, "status": run.status, "error": run.error}


def _set_progress(run: PlanningRun, pct: int) -> None:
    """Progress is operational state of the run row, not a GMP record: no ledger event."""
    pct = max(0, min(100, int(pct)))
    if pct != run.progress:
        run.progress = pct
        PlanningRun.objects.filter(pk=run.pk).update(progress=pct)


def planning_run_begin(*, run: PlanningRun, resume: bool = False) -> PlanningRun:
    """Move a queued run to running (ledger: running, by the planning system). A run that is not
    queued is refused and nothing is recorded — unless ``resume``: its job is tried again after its
    worker died (the run is still running) or after its job failed and was retried (the run failed)."""
    with transaction.atomic():
        locked = PlanningRun.objects.select_for_update().get(pk=run.pk)
        allowed = {RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.FAILED} if resume else {RunStatus.QUEUED}
        if locked.status not in allowed:
            raise ValidationError({"run": f"{run} is {locked.get_status_display().lower()}: only a queued run "
                                          "begins its work."})
        old_status = locked.status
        locked.status = run.status = RunStatus.RUNNING
        locked.error = run.error = ""
        locked.save(update_fields=["status", "error"])
        event_record(actor=None, system="planning", event_type=PlanningEvent.RUN_RUNNING, site=None, obj=run,
                     object_type="planning.PlanningRun", object_id=str(run.pk), object_repr=str(run),
                     reason="Planning run began its work" if old_status == RunStatus.QUEUED
                     else "Planning run began its work again (its job was tried again)",
                     old={"status": str(old_status)},
                     new={"status": RunStatus.RUNNING.value})
    return run


def planning_run_execute(*, run: PlanningRun, scheduler: str | None = None, resume: bool = False) -> PlanningRun:
    """Do the work of a queued run (ledger: running) and record the finish (ledger: finished, with
    the outcome). A study's own refusal (ValueError, RuntimeError, OSError) finishes the run failed;
    anything else propagates, so that its job is tried again."""
    planning_run_begin(run=run, resume=resume)
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
