"""The jobs over the API: the same jobs the page shows, filtered by status and task (read only)."""

from __future__ import annotations

from typing import Any

import django_filters
from django.urls import path
from rest_framework import generics, serializers

from pocare.accounts.roles import Perm
from pocare.jobs import selectors
from pocare.jobs.models import Job, JobStatus


class JobSerializer(serializers.ModelSerializer[Job]):
    started_by = serializers.CharField(source="created_by.username", default=None, read_only=True)

    class Meta:
        model = Job
        fields = ["id", "task", "label", "status", "started_by", "site_code", "created_at", "run_after",
                  "started_at", "heartbeat_at", "finished_at", "worker", "tries", "max_tries", "error", "result"]


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


urlpatterns = [path("jobs/", JobList.as_view(), name="api-jobs")]
