"""The write path of the queue: enqueue, claim, finish, fail (retry with backoff or give up), reap the
jobs of dead workers, cancel and retry by a person.

Claiming is safe with several workers on one database: on PostgreSQL the candidate row is read with
``SELECT … FOR UPDATE SKIP LOCKED`` (a second worker skips it rather than waits), and on every
backend the claim is a conditional ``UPDATE … WHERE status = 'queued'`` whose row count says who won,
so on SQLite (where FOR UPDATE does not exist) two workers still never run one job twice.

A running job carries a lease: its worker writes ``heartbeat_at`` every few seconds. A job whose
heartbeat is older than the lease (its worker was killed, the machine lost power) is taken back by
any worker's reaper: failed with an error naming the worker, and retried if it has tries left.
"""

from __future__ import annotations

import datetime as dt
import logging
import traceback
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from pocare.accounts import selectors as access
from pocare.accounts.roles import Perm
from pocare.jobs.events import JobEvent
from pocare.jobs.files import JobFile, file_delete, file_save, safe_download_name
from pocare.jobs.models import Job, JobStatus, Worker
from pocare.jobs.tasks import UnknownTask, Unrecoverable, resolve
from pocare.ledger.models import Event
from pocare.ledger.services import event_record

log = logging.getLogger("pocare.jobs")

#: Longest error text kept on the row (a traceback's tail).
ERROR_CHARS = 4000


def backoff_base() -> float:
    return float(getattr(settings, "POCARE_JOBS_BACKOFF_SECONDS", 10.0))


def backoff_cap() -> float:
    return float(getattr(settings, "POCARE_JOBS_BACKOFF_CAP_SECONDS", 3600.0))


def lease_seconds() -> float:
    return float(getattr(settings, "POCARE_JOBS_LEASE_SECONDS", 30.0))


def backoff(tries: int) -> dt.timedelta:
    """The wait before try ``tries + 1``: base × 2^(tries − 1), capped (10 s, 20 s, 40 s, … ≤ 1 h)."""
    return dt.timedelta(seconds=min(backoff_cap(), backoff_base() * 2 ** max(0, tries - 1)))


def job_enqueue(*, task: str, kwargs: Mapping[str, Any] | None = None, actor: Any = None, label: str = "",
                site_code: str = "", run_after: dt.datetime | None = None, max_tries: int | None = None,
                slot_key: str | None = None) -> Job | None:
    """Queue a job in the caller's transaction: when the change that asks for it rolls back, no job
    exists. With ``slot_key`` the job is queued once per key (None when it already was)."""
    _, options = resolve(task)
    now = timezone.now()
    job = Job(task=task, kwargs=dict(kwargs or {}), label=(label or options.label or task)[:200],
              created_at=now, created_by=actor if getattr(actor, "is_authenticated", False) else None,
              site_code=site_code, run_after=run_after or now, max_tries=max_tries or options.max_tries,
              slot_key=slot_key)
    if slot_key is None:
        job.save()
        return job
    try:
        with transaction.atomic():  # a savepoint: a lost race for the slot leaves the caller's transaction usable
            job.save()
    except IntegrityError:
        return None
    return job


def job_claim(*, worker: str) -> Job | None:
    """Take the next due job for ``worker`` (running, one more try, a fresh heartbeat), or None."""
    for _ in range(5):
        now = timezone.now()
        with transaction.atomic():
            qs = Job.objects.filter(status=JobStatus.QUEUED, run_after__lte=now).order_by("run_after", "pk")
            if connection.features.has_select_for_update_skip_locked:
                qs = qs.select_for_update(skip_locked=True)
            job = qs.first()
            if job is None:
                return None
            won = Job.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(
                status=JobStatus.RUNNING, worker=worker, started_at=now, heartbeat_at=now,
                tries=job.tries + 1, finished_at=None)
        if won:
            job.status, job.worker, job.started_at, job.heartbeat_at = JobStatus.RUNNING, worker, now, now
            job.tries, job.finished_at = job.tries + 1, None
            return job
    return None


def job_heartbeat(*, job_id: int, worker: str) -> bool:
    """Renew the lease of a running job; False when the job is no longer this worker's."""
    return bool(Job.objects.filter(pk=job_id, status=JobStatus.RUNNING, worker=worker)
                .update(heartbeat_at=timezone.now()))


def _error_text(exc: BaseException) -> str:
    text = "".join(traceback.format_exception(exc))
    head = f"{type(exc).__name__}: {exc}"
    return head if len(text) <= len(head) else f"{head}\n\n{text[-ERROR_CHARS:]}"


def job_run(*, job: Job, worker: str) -> Job:
    """Run a claimed job's task and record how it ended. The task manages its own transactions."""
    try:
        fn, _ = resolve(job.task)
        result = fn(**job.kwargs)
    except (Unrecoverable, PermissionDenied) as exc:  # another try would fail alike: give up now
        log.warning("job %s (%s) failed for good on try %s: %s", job.pk, job.task, job.tries, exc)
        return _job_failed(job_id=job.pk, worker=worker, error=f"{type(exc).__name__}: {exc}", final=True)
    except Exception as exc:  # any failure of a task is the job's failure, kept with its error
        log.warning("job %s (%s) failed on try %s: %s", job.pk, job.task, job.tries, exc)
        return _job_failed(job_id=job.pk, worker=worker, error=_error_text(exc))
    file_fields: dict[str, Any] = {}
    stored = None
    if isinstance(result, JobFile):
        try:
            stored = file_save(job_id=job.pk, made=result)
        except Exception as exc:  # the storage refused (full disk, S3 down): the try failed, it is retried
            log.warning("job %s (%s) could not store its file: %s", job.pk, job.task, exc)
            return _job_failed(job_id=job.pk, worker=worker, error=_error_text(exc))
        file_fields = {"file_name": stored.name, "file_content_type": result.content_type[:100],
                       "file_size": stored.size, "file_sha256": stored.sha256,
                       "file_download_name": safe_download_name(result.download_name)}
        result = {**result.summary, "file": file_fields["file_download_name"], "bytes": stored.size,
                  "sha256": stored.sha256}
    job.finished_at, job.result = timezone.now(), _jsonable(result)
    # The error of an earlier failed try stays on the row, as its history. Not this worker's any more
    # (its lease ran out and the job was taken back): the other try's outcome stands.
    if Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING, worker=worker).update(
            status=JobStatus.DONE, finished_at=job.finished_at, result=job.result, **file_fields):
        job.status = JobStatus.DONE
        for name, value in file_fields.items():
            setattr(job, name, value)
    else:
        if stored is not None:
            file_delete(stored.name)
        job.refresh_from_db()
    return job


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool, list, dict)):
        return value
    return str(value)


def _job_failed(*, job_id: int, worker: str | None, error: str,
                stale_before: dt.datetime | None = None, final: bool = False) -> Job:
    """A try failed: queue the next try after its backoff, or give up (ledger: failed; the task's
    ``on_failure`` runs in the same transaction). ``worker`` and ``stale_before`` guard the update so
    that two reapers, or a reaper and a worker that came back, record the failure once."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        if job.status != JobStatus.RUNNING or (worker is not None and job.worker != worker):
            return job
        if stale_before is not None and (job.heartbeat_at or job.started_at or stale_before) >= stale_before:
            return job
        now = timezone.now()
        job.error = error[: ERROR_CHARS + 400]
        if job.tries < job.max_tries and not final:
            job.status, job.run_after = JobStatus.QUEUED, now + backoff(job.tries)
            job.save(update_fields=["status", "run_after", "error"])
            return job
        job.status, job.finished_at = JobStatus.FAILED, now
        job.save(update_fields=["status", "finished_at", "error"])
        event_record(actor=None, system="jobs", event_type=JobEvent.FAILED, site=None, obj=job,
                     object_repr=str(job), reason=(f"Job given up after {job.tries} tries" if not final else
                                                   f"Job given up on try {job.tries}: another try would fail alike"),
                     new={"task": job.task, "tries": job.tries, "error": error.splitlines()[0][:500]})
        try:
            _, options = resolve(job.task)
        except UnknownTask:
            options = None
        if options is not None and options.on_failure:
            import_string(options.on_failure)(error=error.splitlines()[0][:500], **job.kwargs)
    return job


def jobs_reap(*, lease: float | None = None) -> list[int]:
    """Fail the running jobs whose worker stopped renewing their lease (killed, machine down): each is
    retried after its backoff or given up. The ids of the jobs taken back."""
    lease = lease_seconds() if lease is None else lease
    stale_before = timezone.now() - dt.timedelta(seconds=lease)
    stale = list(Job.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=stale_before)
                 .values_list("pk", "worker", "heartbeat_at"))
    taken = []
    for pk, worker, beat in stale:
        error = (f"WorkerLost: worker {worker} stopped answering while running this job "
                 f"(last heartbeat {beat:%Y-%m-%d %H:%M:%S} UTC, lease {lease:g} s).")
        job = _job_failed(job_id=pk, worker=worker, error=error, stale_before=stale_before)
        if job.status != JobStatus.RUNNING:
            taken.append(pk)
    return taken


def worker_seen(*, name: str, started_at: dt.datetime) -> None:
    """A worker announces itself (operational state for the health check, not a GMP record)."""
    now = timezone.now()
    if not Worker.objects.filter(name=name).update(seen_at=now):
        Worker.objects.get_or_create(name=name, defaults={"started_at": started_at, "seen_at": now})


def may_act(user: Any, job: Job, *, overseen: set[str] | bool | None = False) -> bool:
    """The person who started a job, and whoever sees every job (Control Site QA), may cancel or retry it.
    ``overseen``: the site codes where the person holds ``jobs.view`` (None: everywhere), when a page
    asks for many jobs at once; looked up when not given."""
    if not getattr(user, "is_authenticated", False) or access.is_read_only(user):
        return False
    if job.created_by_id is not None and job.created_by_id == user.pk:
        return True
    codes = access.site_codes_with_perm(user, Perm.JOBS_VIEW) if overseen is False else overseen
    return codes is None or (isinstance(codes, set) and bool(job.site_code) and job.site_code in codes)


def _check(actor: Any, job: Job, reason: str) -> None:
    if not may_act(actor, job):
        raise PermissionDenied("Only the person who started this job, or Control Site QA, may change it.")
    if not reason.strip():
        raise ValidationError({"reason": "Say why (a reason is required)."})


def _locked(job: Job, status: str, verb: str) -> Job:
    """The job's row, locked in the caller's transaction, refused unless it is in ``status``."""
    locked = Job.objects.select_for_update().get(pk=job.pk)
    if locked.status != status:
        raise ValidationError({"job": f"Job {job.pk} is {locked.get_status_display().lower()}: only a "
                                      f"{JobStatus(status).label.lower()} job can be {verb}."})
    return locked


def job_cancel(*, actor: Any, job: Job, reason: str) -> Job:
    """Cancel a queued job (ledger: cancelled). A running or finished job is refused."""
    _check(actor, job, reason)
    with transaction.atomic():
        locked = _locked(job, JobStatus.QUEUED, "cancelled")
        locked.status, locked.finished_at = JobStatus.CANCELLED, timezone.now()
        locked.save(update_fields=["status", "finished_at"])
        event_record(actor=actor, event_type=JobEvent.CANCELLED, site=None, obj=locked, object_repr=str(locked),
                     reason=reason, old={"status": JobStatus.QUEUED.value},
                     new={"status": JobStatus.CANCELLED.value, "task": locked.task})
    return locked


def job_retry(*, actor: Any, job: Job, reason: str) -> Job:
    """Queue a failed job again, now, with its task's tries afresh (ledger: retried)."""
    _check(actor, job, reason)
    with transaction.atomic():
        locked = _locked(job, JobStatus.FAILED, "retried")
        try:
            _, options = resolve(locked.task)
        except UnknownTask as exc:
            raise ValidationError({"job": str(exc)}) from exc
        locked.status, locked.run_after, locked.finished_at = JobStatus.QUEUED, timezone.now(), None
        locked.max_tries = locked.tries + options.max_tries
        locked.save(update_fields=["status", "run_after", "finished_at", "max_tries"])
        event_record(actor=actor, event_type=JobEvent.RETRIED, site=None, obj=locked, object_repr=str(locked),
                     reason=reason, old={"status": JobStatus.FAILED.value, "error": locked.error.splitlines()[0][:500]
                                         if locked.error else ""},
                     new={"status": JobStatus.QUEUED.value, "max_tries": locked.max_tries})
    return locked


class _SiteCode:
    """The chain of a job's site, for ``event_record`` (which needs only the code)."""

    def __init__(self, code: str) -> None:
        self.code = code


def job_file_downloaded(*, actor: Any, job: Job) -> Event:
    """Record that ``actor`` took a copy of the job's file (ledger: file downloaded, on the job's site
    chain, or the network's), with its name and SHA-256, so a copy shown later is matched to who took it."""
    if not job.file_name:
        raise ValidationError({"job": f"Job {job.pk} has no file."})
    with transaction.atomic():
        return event_record(actor=actor, event_type=JobEvent.FILE_DOWNLOADED,
                            site=_SiteCode(job.site_code) if job.site_code else None, obj=job,
                            object_repr=str(job),
                            new={"task": job.task, "file": job.file_download_name, "sha256": job.file_sha256,
                                 "bytes": job.file_size})
