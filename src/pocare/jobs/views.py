"""The jobs page: the jobs a person started (every job for Control Site QA), with cancel (queued) and
retry (failed) behind a confirmation that asks for the reason. Views parse input and call services."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_http_methods, require_POST

from pocare.accounts import selectors as access
from pocare.accounts.decorators import requires
from pocare.accounts.roles import Perm
from pocare.jobs import selectors, services
from pocare.jobs.files import file_open
from pocare.jobs.models import Job, JobStatus
from pocare.jobs.tasks import UnknownTask, resolve

#: The page shows this many jobs, newest first (older ones through the API's pages).
PAGE_ROWS = 100
ACTIONS = {"cancel": services.job_cancel, "retry": services.job_retry}


def _status_filter(request: HttpRequest) -> str:
    status = request.GET.get("status", "")
    if status and status not in JobStatus.values:
        raise ValidationError({"status": f"{status!r} is not a job status; use {', '.join(JobStatus.values)}."})
    return status


def _page(request: HttpRequest, *, errors: dict[str, list[str]] | None = None, status_code: int = 200) -> HttpResponse:
    try:
        status = _status_filter(request)
    except ValidationError as exc:
        status, errors, status_code = "", exc.message_dict, 400
    jobs = selectors.jobs_visible(request.user).defer("kwargs", "result")
    if status:
        jobs = jobs.filter(status=status)
    rows = list(jobs[:PAGE_ROWS])
    overseen = access.site_codes_with_perm(request.user, Perm.JOBS_VIEW)
    for job in rows:
        job.may_act = services.may_act(request.user, job, overseen=overseen)  # type: ignore[attr-defined]
    return render(request, "jobs/jobs.html", {"jobs": rows, "status": status, "statuses": JobStatus.choices,
                                              "errors": errors or {}, "page_rows": PAGE_ROWS}, status=status_code)


@requires(Perm.NETWORK_VIEW)
@require_http_methods(["GET", "POST"])
def jobs(request: HttpRequest) -> HttpResponseBase:
    """The jobs the person may see (GET); cancel or retry one (POST: ``job``, ``action``, ``reason``)."""
    if request.method != "POST":
        return _page(request)
    action = request.POST.get("action", "")
    if action not in ACTIONS:
        return _page(request, errors={"action": [f"{action!r} is not an action; use cancel or retry."]},
                     status_code=400)
    raw = request.POST.get("job", "")
    job = None
    if raw.isdigit() and len(raw) <= 18:
        job = selectors.jobs_visible(request.user).filter(pk=int(raw)).first()
    if job is None:
        return _page(request, errors={"job": [f"{raw[:40]!r} names no job of yours."]}, status_code=404)
    try:
        ACTIONS[action](actor=request.user, job=job, reason=request.POST.get("reason", "")[:1000])
    except PermissionDenied:
        raise
    except ValidationError as exc:
        return _page(request, errors=exc.message_dict, status_code=400)
    return redirect("jobs:jobs")


def _visible_job(request: HttpRequest, pk: int) -> Job:
    job = selectors.jobs_visible(request.user).filter(pk=pk).first()
    if job is None:
        raise Http404("No such job of yours.")
    return job


@requires(Perm.NETWORK_VIEW)
@require_http_methods(["GET"])
def job(request: HttpRequest, pk: int) -> HttpResponse:
    """One job: its state while it waits or runs (the fragment polls itself with htmx), then what it
    made — a Download button when it made a file — or its error. 404 for a job the person may not see."""
    found = _visible_job(request, pk)
    context = {"job": found, "pending": found.status in (JobStatus.QUEUED, JobStatus.RUNNING),
               "may_act": services.may_act(request.user, found), "result_template": _result_template(found)}
    template = "jobs/_job.html" if request.headers.get("HX-Request") else "jobs/job.html"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _result_template(job: Job) -> str:
    """The template the job's task shows its result with (``@task(result_template=...)``), or ""."""
    try:
        _, options = resolve(job.task)
    except UnknownTask:  # a task renamed since: the raw result still shows
        return ""
    return options.result_template


def file_response(user: Any, job: Job) -> HttpResponseBase:
    """The job's file as an attachment, its download recorded (ledger: file downloaded); 404 while the
    job has made none. The caller has checked that ``user`` may see the job."""
    if job.status != JobStatus.DONE or not job.file_name:
        raise Http404("This job has made no file (yet).")
    event = services.job_file_downloaded(actor=user, job=job)
    response = FileResponse(file_open(job.file_name), as_attachment=True, filename=job.file_download_name,
                            content_type=job.file_content_type or "application/octet-stream")
    response["X-POCare-File-SHA256"] = job.file_sha256
    response["X-POCare-Download-Event"] = event.label
    if isinstance(job.result, dict) and isinstance(job.result.get("event"), str):
        response["X-POCare-Export-Event"] = job.result["event"]
    return response


@requires(Perm.NETWORK_VIEW, recorded_read=True)
@require_POST
def job_file(request: HttpRequest, pk: int) -> HttpResponseBase:
    """The file a job made, to whoever may see the job; each download is recorded, so it is a POST
    (GET never writes). 404 for a job the person may not see, or one with no file."""
    return file_response(request.user, _visible_job(request, pk))
