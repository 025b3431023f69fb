"""The release queue's filters (pocare.core.listing)."""

from __future__ import annotations

import django_filters

from pocare.core.listing import Column, ListFilterSet, SortFilter, date_range
from pocare.manufacturing.models import Batch


class QueueFilter(ListFilterSet):
    search_fields = ("reference", "order__coi", "collection__din", "masterfile_version__product__code",
                     "site__code")
    search_help = "Batch, COI, DIN, product or site"
    default_sort = ("ended_at",)
    site = django_filters.CharFilter(field_name="site__code", lookup_expr="iexact", label="Site")
    product = django_filters.CharFilter(field_name="masterfile_version__product__code", lookup_expr="iexact")
    completed_from, completed_until = date_range("ended_at", "Completed")
    sort = SortFilter(fields=(("reference", "reference"), ("site__code", "site"), ("ended_at", "completed")))

    class Meta:
        model = Batch
        fields: list[str] = []


QUEUE_COLUMNS = (
    Column("batch", "reference"), Column("site", "site.code"), Column("coi", "order.coi"),
    Column("product", "masterfile_version.product.code"), Column("version", "masterfile_version.number"),
    Column("completed_at_utc", "ended_at"),
)
