"""The queue in one process: same-transaction enqueue, backoff, cancel, retry, visibility, the
schedule on a fake clock, and planning runs as jobs (docs/jobs.md)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from pocare.jobs import schedule, selectors, services
from pocare.jobs.events import JobEvent
from pocare.jobs.models import Job, JobStatus
from pocare.jobs.tasks import UnknownTask, resolve
from pocare.jobs.worker import WorkerLoop
from pocare.ledger.models import Event
from pocare.planning import services as planning
from pocare.planning.events import PlanningEvent
from pocare.planning.models import PlanningRun, RunStatus
from tests import clock

pytestmark = pytest.mark.django_db
NOOP = "pocare.jobs.builtin.noop"
BOOM = "tests.jobs.tasks.boom"


def _work(**kw) -> int:  # type: ignore[no-untyped-def]
    return WorkerLoop(name="test-worker", with_schedule=False, own_connection=False, **kw).run(burst=True)


def test_a_rolled_back_change_enqueues_nothing(people):
    """A job is queued in the transaction of the change that asks for it: no change, no job."""
    with pytest.raises(RuntimeError), transaction.atomic():
        services.job_enqueue(task=NOOP, actor=people["qa"])
        raise RuntimeError("the change failed")
    assert not Job.objects.exists()
    with transaction.atomic():
        services.job_enqueue(task=NOOP, actor=people["qa"], kwargs={"x": 1})
    assert Job.objects.get().status == JobStatus.QUEUED
    assert _work() == 1
    job = Job.objects.get()
    assert job.status == JobStatus.DONE and job.result == {"x": 1} and job.tries == 1 and job.worker == "test-worker"


def test_only_marked_tasks_may_be_named(people):
    for path in ("tests.jobs.tasks.not_a_task", "os.system", "no.such.module.fn"):
        with pytest.raises(UnknownTask, match="task:"):
            services.job_enqueue(task=path)
    assert not Job.objects.exists()


def test_failures_are_retried_with_exponential_backoff_then_given_up(people, settings):
    """A failing job waits 10 s, then 20 s before its tries; after the last it is failed, with its error
    and a ledger event."""
    settings.POCARE_JOBS_BACKOFF_SECONDS = 10
    with transaction.atomic():
        job = services.job_enqueue(task=BOOM, kwargs={"message": "no disk"}, actor=people["qa"])
    assert job is not None
    start = timezone.now()
    assert _work() == 1
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED and job.tries == 1 and "RuntimeError: no disk" in job.error
    assert dt.timedelta(seconds=9) < job.run_after - start < dt.timedelta(seconds=12)
    clock.advance(dt.timedelta(seconds=8))
    assert _work() == 0  # not yet due
    clock.advance_to(job.run_after)
    assert _work() == 1
    job.refresh_from_db()
    assert job.tries == 2 and job.status == JobStatus.QUEUED
    assert dt.timedelta(seconds=19) < job.run_after - timezone.now() <= dt.timedelta(seconds=20)
    clock.advance_to(job.run_after)
    assert _work() == 1
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and job.tries == 3 and job.finished_at
    event = Event.objects.get(event_type=JobEvent.FAILED, object_id=str(job.pk))
    assert "no disk" in event.new_values and event.actor is None
    assert services.backoff(1) == dt.timedelta(seconds=10) and services.backoff(4) == dt.timedelta(seconds=80)
    settings.POCARE_JOBS_BACKOFF_CAP_SECONDS = 60
    assert services.backoff(10) == dt.timedelta(seconds=60)


def test_cancel_a_queued_job_with_a_reason_and_its_event(people):
    """A11-9: cancelling a job is a change with its reason in the audit trail; only the person who
    started it (or Control Site QA) may, and only while it is queued."""
    with transaction.atomic():
        job = services.job_enqueue(task=NOOP, actor=people["planner"])
    with pytest.raises(ValidationError, match="reason"):
        services.job_cancel(actor=people["planner"], job=job, reason=" ")
    with pytest.raises(PermissionDenied):
        services.job_cancel(actor=people["manager.mad"], job=job, reason="not mine")
    services.job_cancel(actor=people["planner"], job=job, reason="started by mistake")
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    event = Event.objects.get(event_type=JobEvent.CANCELLED)
    assert event.actor_username == "planner" and event.reason == "started by mistake"
    assert _work() == 0  # a cancelled job never runs
    with pytest.raises(ValidationError, match="only a queued job"):
        services.job_cancel(actor=people["qa"], job=job, reason="again")
    assert Event.objects.filter(event_type=JobEvent.CANCELLED).count() == 1


def test_retry_a_failed_job(people):
    """A11-9: retrying a failed job is recorded with its reason; Control Site QA may retry anyone's."""
    with transaction.atomic():
        job = services.job_enqueue(task=BOOM, actor=people["planner"], max_tries=1)
    _work()
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    with pytest.raises(ValidationError, match="only a queued job"):
        services.job_cancel(actor=people["planner"], job=job, reason="x")
    services.job_retry(actor=people["qa"], job=job, reason="disk replaced")  # QA may retry anyone's job
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED and job.max_tries == 1 + 3
    assert Event.objects.get(event_type=JobEvent.RETRIED).actor_username == "qa"
    with pytest.raises(ValidationError, match="only a failed job"):
        services.job_retry(actor=people["qa"], job=job, reason="twice")


def test_people_see_their_own_jobs_and_qa_sees_all(people, login):
    """A site person at another site sees nothing of others' jobs, on the page, over the API, and by
    naming one in a POST; Control Site QA sees and may act on every job."""
    with transaction.atomic():
        mine = services.job_enqueue(task=NOOP, actor=people["manager.mad"], label="Madrid's job")
        theirs = services.job_enqueue(task=NOOP, actor=people["manager.lis"], label="Lisbon's job")
        scheduled = services.job_enqueue(task=NOOP, label="Scheduled job")
    assert set(selectors.jobs_visible(people["manager.mad"])) == {mine}
    assert set(selectors.jobs_visible(people["qa"])) == {mine, theirs, scheduled}
    client = login("manager.mad")
    page = client.get("/jobs/").content.decode()
    assert "Madrid&#x27;s job" in page or "Madrid's job" in page
    assert "Lisbon" not in page and "Scheduled job" not in page and "Cancel…" in page
    api = client.get("/api/jobs/").json()
    assert [row["id"] for row in api["results"]] == [mine.pk]
    before = Event.objects.count()
    response = client.post("/jobs/", {"job": theirs.pk, "action": "cancel", "reason": "mine now"})
    assert response.status_code == 404 and Event.objects.count() == before
    theirs.refresh_from_db()
    assert theirs.status == JobStatus.QUEUED
    response = client.post("/jobs/", {"job": mine.pk, "action": "explode", "reason": "x"})
    assert response.status_code == 400 and "action" in response.content.decode()
    response = client.post("/jobs/", {"job": mine.pk, "action": "cancel", "reason": ""})
    assert response.status_code == 400 and "reason" in response.content.decode()
    assert client.get("/jobs/?status=sideways").status_code == 400
    response = client.post("/jobs/", {"job": mine.pk, "action": "cancel", "reason": "not needed"})
    assert response.status_code == 302
    mine.refresh_from_db()
    assert mine.status == JobStatus.CANCELLED and Event.objects.count() == before + 1
    qa = login("qa")
    page = qa.get("/jobs/").content.decode()
    assert "Lisbon" in page and "Scheduled job" in page
    assert qa.get("/api/jobs/?status=cancelled").json()["count"] == 1


def test_a_scheduled_check_runs_on_time_on_a_fake_clock(people):
    """The schedule queues each slot once, due at its slot, however many workers tick; the worker runs
    it when the clock reaches it and not before."""
    every = (schedule.Every("test-nightly", NOOP, "daily", hour=2, minute=0),)
    now = timezone.now()
    next_slot = every[0].slot(now) + dt.timedelta(days=1)
    first = schedule.schedule_tick(schedule=every)  # the slot that began before now: late, not lost
    assert len(first) == 1 and first[0].run_after == every[0].slot(now)
    assert schedule.schedule_tick(schedule=every) == []  # a second worker's tick queues nothing more
    assert _work() == 1
    clock.advance_to(next_slot - dt.timedelta(seconds=1))
    assert schedule.schedule_tick(schedule=every) == [] and _work() == 0
    clock.advance_to(next_slot)
    queued = schedule.schedule_tick(schedule=every) + schedule.schedule_tick(schedule=every)
    assert len(queued) == 1 and queued[0].run_after == next_slot
    assert queued[0].slot_key == f"test-nightly@{next_slot:%Y-%m-%dT%H:%MZ}"
    assert _work() == 1
    job = Job.objects.get(pk=queued[0].pk)
    assert job.status == JobStatus.DONE and job.started_at >= next_slot
    assert job.result == {"slot": next_slot.isoformat()}


def test_the_schedule_names_real_tasks_and_the_daily_checks_run(people):
    for entry in schedule.SCHEDULE:
        resolve(entry.task)
    from pocare.analytics.tasks import daily_checks

    result = daily_checks(slot="")
    assert set(result) >= {"deviations_overdue", "capa_overdue", "qualifications_expiring", "lots_expired",
                           "lots_expiring", "units_calibration_due"}


def test_queue_health(people):
    health = selectors.queue_health()
    assert health["queued"] == 0 and health["worker_seen"] is False and health["ok"] is True
    with transaction.atomic():
        services.job_enqueue(task=NOOP, run_after=timezone.now() - dt.timedelta(seconds=30))
    health = selectors.queue_health()
    assert health["queued"] == 1 and health["oldest_queued_seconds"] >= 30 and health["ok"] is False
    _work()
    health = selectors.queue_health()
    assert health["done"] == 1 and health["worker_seen"] is True and health["ok"] is True


TWIN = {"sites": 2, "units_per_site": 2, "days": 120, "replications": 2, "seed": 1}


def test_a_planning_run_is_a_job_and_one_whose_job_is_given_up_ends_failed(people, monkeypatch):
    """A run's job is queued in the start's transaction; a worker runs it. A run whose job fails every
    try ends failed with its finish event; retrying the job re-runs it."""
    with pytest.raises(RuntimeError), transaction.atomic():
        planning.planning_run_start(actor=people["planner"], kind="plan", parameters={"region": "PT"})
        raise RuntimeError("rolled back")
    assert not Job.objects.exists() and not PlanningRun.objects.exists()

    def crash(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise MemoryError("out of memory in the study")  # not one of the study's own refusals

    monkeypatch.setattr(planning.study, "plan_study", crash)
    run = planning.planning_run_start(actor=people["planner"], kind="plan", parameters={"region": "PT"})
    job = Job.objects.get()
    assert job.created_by == people["planner"] and job.max_tries == 3
    for _ in range(3):
        _work()
        job.refresh_from_db()
        clock.advance_to(job.run_after)
    run.refresh_from_db()
    assert job.status == JobStatus.FAILED and run.status == RunStatus.FAILED and "MemoryError" in run.error
    finished = Event.objects.get(event_type=PlanningEvent.RUN_FINISHED, object_id=str(run.pk))
    assert "MemoryError" in finished.new_values
    monkeypatch.undo()
    services.job_retry(actor=people["planner"], job=job, reason="more memory")
    _work()
    run.refresh_from_db()
    assert run.status == RunStatus.DONE and run.result["kind"] == "plan"
    assert Event.objects.filter(event_type=PlanningEvent.RUN_FINISHED, object_id=str(run.pk)).count() == 2
