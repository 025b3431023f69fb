"""The training records list's filters, shared by the page and the API (pocare.core.listing)."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet

from pocare.core.listing import Column, ListFilterSet, SortFilter, date_range
from pocare.training.models import TrainingKind, TrainingRecord, TrainingStatus


class RecordFilter(ListFilterSet):
    search_fields = ("title", "trainee__username", "trainee__printed_name", "trainer__printed_name",
                     "qualification__code", "site__code")
    search_help = "Title, trainee, trainer, qualification or site"
    default_sort = ("-trained_on",)
    site = django_filters.CharFilter(field_name="site__code", lookup_expr="iexact", label="Site",
                                     help_text="Where it was held, e.g. MAD")
    trainee = django_filters.CharFilter(field_name="trainee__username", lookup_expr="iexact", label="Trainee",
                                        help_text="User id")
    kind = django_filters.ChoiceFilter(choices=TrainingKind.choices, empty_label="Any")
    status = django_filters.ChoiceFilter(choices=TrainingStatus.choices, empty_label="Any", label="Signatures")
    passed = django_filters.ChoiceFilter(choices=[("true", "Passed"), ("false", "Not passed")], method="outcome",
                                         empty_label="Any", label="Outcome")
    trained_from, trained_until = date_range("trained_on", "Trained", dates=True)
    sort = SortFilter(fields=(("trained_on", "trained"), ("title", "title"), ("trainee__username", "trainee"),
                              ("site__code", "site"), ("kind", "kind"), ("status", "status")))

    class Meta:
        model = TrainingRecord
        fields: list[str] = []

    def outcome(self, queryset: QuerySet[TrainingRecord], name: str, value: str) -> QuerySet[TrainingRecord]:
        return queryset.filter(passed=value == "true")


RECORD_COLUMNS = (
    Column("trained_on", "trained_on"), Column("title", "title"), Column("kind", "kind"),
    Column("trainee", "trainee.username"), Column("trainee_name", "trainee.printed_name"),
    Column("trainer", "trainer.username"), Column("site", "site.code"),
    Column("qualification", "qualification.code"), Column("passed", "passed"), Column("score", "score"),
    Column("status", "status"), Column("completed_at_utc", "completed_at"),
)
