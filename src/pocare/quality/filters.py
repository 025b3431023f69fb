"""The deviation list's filters, shared by the page and the API (pocare.core.listing)."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from django.utils import timezone

from pocare.core.listing import Column, ListFilterSet, SortFilter, date_range
from pocare.quality import selectors
from pocare.quality.models import Deviation, DeviationClass, DeviationKind, DeviationStatus, Notification


class DeviationFilter(ListFilterSet):
    search_fields = ("reference", "title", "site__code", "batch__reference", "order__coi", "product__code")
    search_help = "Reference, title, batch, COI, product or site"
    default_sort = ("-opened_at",)
    site = django_filters.CharFilter(field_name="site__code", lookup_expr="iexact", label="Site")
    status = django_filters.ChoiceFilter(choices=DeviationStatus.choices, empty_label="Any")
    classification = django_filters.ChoiceFilter(choices=[*DeviationClass.choices, ("none", "Not classified")],
                                                 method="classified", label="Class", empty_label="Any")
    kind = django_filters.ChoiceFilter(choices=DeviationKind.choices, empty_label="Any")
    overdue = django_filters.ChoiceFilter(choices=[("true", "Overdue only"), ("false", "Not overdue")],
                                          method="is_overdue", empty_label="Any")
    opened_from, opened_until = date_range("opened_at", "Opened")
    sort = SortFilter(fields=(("reference", "reference"), ("site__code", "site"), ("kind", "kind"),
                              ("classification", "class"), ("opened_at", "opened"), ("due_at", "due"),
                              ("status", "status")))

    class Meta:
        model = Deviation
        fields: list[str] = []

    def classified(self, queryset: QuerySet[Deviation], name: str, value: str) -> QuerySet[Deviation]:
        return queryset.filter(classification="" if value == "none" else value)

    def is_overdue(self, queryset: QuerySet[Deviation], name: str, value: Any) -> QuerySet[Deviation]:
        late = selectors.overdue_q(timezone.now())
        return queryset.filter(late) if value == "true" else queryset.exclude(late)


DEVIATION_COLUMNS = (
    Column("reference", "reference"), Column("site", "site.code"), Column("kind", "kind"),
    Column("status", "status"), Column("classification", "classification"), Column("title", "title"),
    Column("batch", "batch.reference"), Column("coi", "order.coi"), Column("product", "product.code"),
    Column("opened_at_utc", "opened_at"), Column("due_at_utc", "due_at"), Column("closed_at_utc", "closed_at"),
)


class NotificationFilter(ListFilterSet):
    search_fields = ("subject", "body")
    search_help = "Subject or message"
    default_sort = ("-created_at",)
    unread = django_filters.ChoiceFilter(choices=[("true", "Unread only"), ("false", "Read")], method="is_unread",
                                         empty_label="Any", label="Read")
    received_from, received_until = date_range("created_at", "Received")
    sort = SortFilter(fields=(("created_at", "when"), ("subject", "subject")))

    class Meta:
        model = Notification
        fields: list[str] = []

    def is_unread(self, queryset: QuerySet[Notification], name: str, value: str) -> QuerySet[Notification]:
        return queryset.filter(read_at__isnull=value == "true")


NOTIFICATION_COLUMNS = (
    Column("when_utc", "created_at"), Column("subject", "subject"), Column("message", "body"),
    Column("link", "url"), Column("read_at_utc", "read_at"),
)
