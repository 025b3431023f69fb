"""The planning-run list's filters (pocare.core.listing)."""

from __future__ import annotations

import django_filters

from pocare.core.listing import Column, ListFilterSet, SortFilter, date_range
from pocare.planning.models import PlanningRun, RunKind, RunStatus


class RunFilter(ListFilterSet):
    search_fields = ("created_by__username", "created_by__printed_name", "error")
    search_help = "Who started it, or an error"
    default_sort = ("-created_at",)
    kind = django_filters.ChoiceFilter(choices=RunKind.choices, empty_label="Any")
    status = django_filters.ChoiceFilter(choices=RunStatus.choices, empty_label="Any")
    started_from, started_until = date_range("created_at", "Started")
    sort = SortFilter(fields=(("pk", "run"), ("kind", "kind"), ("status", "status"), ("created_at", "started"),
                              ("finished_at", "finished")))

    class Meta:
        model = PlanningRun
        fields: list[str] = []


RUN_COLUMNS = (
    Column("run", "pk"), Column("kind", "kind"), Column("status", "status"), Column("progress", "progress"),
    Column("started_by", "created_by.username"), Column("started_at_utc", "created_at"),
    Column("finished_at_utc", "finished_at"), Column("error", "error"),
)
