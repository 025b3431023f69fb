"""The jobs page: the jobs a person started (every job for Control Site QA), with cancel (queued) and
retry (failed) behind a confirmation that asks for the reason. Views parse input and call services."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from pocare.accounts import selectors as access
from pocare.accounts.decorators import requires
from pocare.accounts.roles import Perm
from pocare.jobs import selectors, services
from pocare.jobs.models import JobStatus

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
