"""The jobs over the API: the same jobs the page shows, filtered by status and task (read only)."""

from __future__ import annotations

from typing import Any

import django_filters
from django.http import Http404
from django.http.response import HttpResponseBase
from django.urls import path, reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from pocare.accounts.roles import Perm
from pocare.jobs import selectors
from pocare.jobs.models import Job, JobStatus
from pocare.jobs.views import file_response


class JobSerializer(serializers.ModelSerializer[Job]):
    started_by = serializers.CharField(source="created_by.username", default=None, read_only=True)

    class Meta:
        model = Job
        fields = ["id", "task", "label", "status", "started_by", "site_code", "created_at", "run_after",
                  "started_at", "heartbeat_at", "finished_at", "worker", "tries", "max_tries", "error", "result",
                  "file", "page"]

    file = serializers.SerializerMethodField(help_text="The file the job made: its name, type, size, SHA-256 "
                                                       "and the URL to POST for it; null while it has none.")
    page = serializers.SerializerMethodField(help_text="The job's page (it follows the job until done).")

    def get_file(self, job: Job) -> dict[str, Any] | None:
        if not job.file_name or job.status != JobStatus.DONE:
            return None
        return {"name": job.file_download_name, "content_type": job.file_content_type, "bytes": job.file_size,
                "sha256": job.file_sha256, "url": reverse("api-job-file", kwargs={"pk": job.pk})}

    def get_page(self, job: Job) -> str:
        return reverse("jobs:job", kwargs={"pk": job.pk})


class JobFilter(django_filters.FilterSet):  # type: ignore[misc]
    status = django_filters.ChoiceFilter(choices=JobStatus.choices)
    task = django_filters.CharFilter(max_length=200)

    class Meta:
        model = Job
        fields = ["status", "task"]


class JobList(generics.ListAPIView[Job]):
    """The jobs the caller started (every job for Control Site QA), newest first."""

    required_perm = Perm.NETWORK_VIEW
    serializer_class = JobSerializer
    filterset_class = JobFilter

    def get_queryset(self) -> Any:
        return selectors.jobs_visible(self.request.user).order_by("-created_at", "-pk")


class JobDetail(generics.RetrieveAPIView[Job]):
    """One job the caller may see (404 otherwise): poll it until ``status`` is done, then POST to
    ``file.url`` for what it made."""

    required_perm = Perm.NETWORK_VIEW
    serializer_class = JobSerializer

    def get_queryset(self) -> Any:
        return selectors.jobs_visible(self.request.user)


class JobFileDownload(APIView):
    """The file a job made (its bytes, with ``X-POCare-File-SHA256``); the download is recorded, so it is
    a POST. 404 for a job the caller may not see, or one that has made no file."""

    required_perm = Perm.NETWORK_VIEW
    recorded_read = True

    @extend_schema(request=None, responses={(200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY)})
    def post(self, request: Request, pk: int) -> HttpResponseBase:
        job = selectors.jobs_visible(request.user).filter(pk=pk).first()
        if job is None:
            raise Http404("No such job of yours.")
        return file_response(request.user, job)


def accepted(job: Job) -> Response:
    """The answer of an API call that queued a job: 202, with the job and where to follow it."""
    url = reverse("api-job", kwargs={"pk": job.pk})
    body = {"job": job.pk, "status": job.status, "url": url, "page": reverse("jobs:job", kwargs={"pk": job.pk})}
    return Response(body, status=202, headers={"Location": url})


urlpatterns = [path("jobs/", JobList.as_view(), name="api-jobs"),
               path("jobs/<int:pk>/", JobDetail.as_view(), name="api-job"),
               path("jobs/<int:pk>/file/", JobFileDownload.as_view(), name="api-job-file")]
