"""The therapy-order list's filters, shared by the page and the API (pocare.core.listing)."""

from __future__ import annotations

import django_filters

from pocare.core.listing import Column, ListFilterSet, SortFilter, date_range
from pocare.custody.models import OrderStatus, TherapyOrder


class OrderFilter(ListFilterSet):
    search_fields = ("coi", "recipient_id", "collections__din", "product__code", "site__code",
                     "treating_site__code", "indication")
    search_help = "COI, DIN, recipient, product, site or indication"
    search_by_id = True  # a DIN lives on the order's collections
    default_sort = ("-ordered_at",)
    status = django_filters.ChoiceFilter(choices=OrderStatus.choices, empty_label="Any")
    site = django_filters.CharFilter(field_name="site__code", lookup_expr="iexact", label="Manufacturing site")
    treating_site = django_filters.CharFilter(field_name="treating_site__code", lookup_expr="iexact",
                                              label="Treating site")
    product = django_filters.CharFilter(field_name="product__code", lookup_expr="iexact")
    ordered_from, ordered_until = date_range("ordered_at", "Ordered")
    sort = SortFilter(fields=(("pk", "order"), ("coi", "coi"), ("recipient_id", "recipient"),
                              ("product__code", "product"), ("site__code", "site"),
                              ("treating_site__code", "treating_site"), ("status", "status"),
                              ("ordered_at", "ordered")))

    class Meta:
        model = TherapyOrder
        fields: list[str] = []


ORDER_COLUMNS = (
    Column("order", "pk"), Column("coi", "coi"), Column("recipient", "recipient_id"),
    Column("product", "product.code"), Column("site", "site.code"), Column("treating_site", "treating_site.code"),
    Column("indication", "indication"), Column("status", "status"), Column("ordered_at_utc", "ordered_at"),
    Column("accepted_at_utc", "accepted_at"),
)
