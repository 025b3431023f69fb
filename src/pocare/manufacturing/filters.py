"""The filters of the batch and lot lists, shared by the pages and the API (pocare.core.listing)."""

from __future__ import annotations

import django_filters

from pocare.core.listing import Column, ListFilterSet, SortFilter, date_range
from pocare.manufacturing.models import Batch, BatchStatus, LotStatus, MaterialLot


class BatchFilter(ListFilterSet):
    search_fields = ("reference", "order__coi", "collection__din", "masterfile_version__product__code",
                     "site__code")
    default_sort = ("-started_at",)
    search_help = "Batch, COI, DIN, product or site"
    status = django_filters.ChoiceFilter(choices=BatchStatus.choices, empty_label="Any")
    site = django_filters.CharFilter(field_name="site__code", lookup_expr="iexact", label="Site",
                                     help_text="Site code, e.g. MAD")
    product = django_filters.CharFilter(field_name="masterfile_version__product__code", lookup_expr="iexact",
                                        label="Product", help_text="Product code, e.g. CD19-CART")
    started_from, started_until = date_range("started_at", "Started")
    sort = SortFilter(fields=(("reference", "reference"), ("site__code", "site"), ("started_at", "started"),
                              ("status", "status"), ("masterfile_version__number", "version")))

    class Meta:
        model = Batch
        fields: list[str] = []


BATCH_COLUMNS = (
    Column("batch", "reference"), Column("site", "site.code"), Column("unit", "unit.serial"),
    Column("coi", "order.coi"), Column("din", "collection.din"),
    Column("product", "masterfile_version.product.code"), Column("version", "masterfile_version.number"),
    Column("status", "status"), Column("origin", "origin"), Column("started_at_utc", "started_at"),
    Column("ended_at_utc", "ended_at"),
)


class LotFilter(ListFilterSet):
    search_fields = ("material_code", "name", "lot_number", "supplier", "site__code")
    default_sort = ("material_code", "expiry_date")
    search_help = "Material, name, lot number, supplier or site"
    status = django_filters.ChoiceFilter(choices=LotStatus.choices, empty_label="Any")
    site = django_filters.CharFilter(field_name="site__code", lookup_expr="iexact", label="Site")
    expiry_from, expiry_until = date_range("expiry_date", "Expiry")
    sort = SortFilter(fields=(("material_code", "material"), ("lot_number", "lot"), ("site__code", "site"),
                              ("expiry_date", "expiry"), ("status", "status"), ("received_at", "received")))

    class Meta:
        model = MaterialLot
        fields: list[str] = []


LOT_COLUMNS = (
    Column("material", "material_code"), Column("name", "name"), Column("lot", "lot_number"),
    Column("supplier", "supplier"), Column("site", "site.code"), Column("expiry", "expiry_date"),
    Column("status", "status"), Column("received_at_utc", "received_at"),
)
