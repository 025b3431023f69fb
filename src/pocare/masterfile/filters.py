"""The change-request list's filters, shared by the page and the API (pocare.core.listing)."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet

from pocare.core.listing import Column, ListFilterSet, SortFilter, date_range
from pocare.masterfile.models import ChangeRequest, ChangeStatus, RiskClass


class ChangeRequestFilter(ListFilterSet):
    search_fields = ("reference", "title", "product__code", "sites__code")
    search_help = "Reference, title, product or site"
    search_by_id = True  # the sites are many to many
    default_sort = ("-raised_at",)
    status = django_filters.ChoiceFilter(choices=ChangeStatus.choices, empty_label="Any")
    risk_class = django_filters.ChoiceFilter(choices=RiskClass.choices, empty_label="Any", label="Risk")
    product = django_filters.CharFilter(field_name="product__code", lookup_expr="iexact")
    site = django_filters.CharFilter(method="concerning", label="Site", help_text="A site the change concerns")
    raised_from, raised_until = date_range("raised_at", "Raised")
    sort = SortFilter(fields=(("reference", "reference"), ("title", "title"), ("risk_class", "risk"),
                              ("status", "status"), ("raised_at", "raised")))

    class Meta:
        model = ChangeRequest
        fields: list[str] = []

    def concerning(self, queryset: QuerySet[ChangeRequest], name: str, value: str) -> QuerySet[ChangeRequest]:
        return queryset.filter(pk__in=ChangeRequest.objects.filter(sites__code__iexact=value).values("pk"))


def _sites(cr: ChangeRequest) -> str:
    return " ".join(s.code for s in cr.sites.all())


CHANGE_COLUMNS = (
    Column("reference", "reference"), Column("product", "product.code"), Column("base_version", "base_version.number"),
    Column("title", "title"), Column("risk_class", "risk_class"), Column("rpn", "risk_priority"),
    Column("sites", _sites), Column("status", "status"), Column("raised_by", "raised_by.username"),
    Column("raised_at_utc", "raised_at"), Column("decided_at_utc", "decided_at"),
)
