"""The referral list's filters, shared by the pathway pages and the API (pocare.core.listing).
Pseudonymous: nothing here searches or shows the sealed identity (PAT-PRIVACY)."""

from __future__ import annotations

import django_filters
from django.utils.translation import gettext_lazy as _

from pocare.core.listing import Column, ListFilterSet, SortFilter, date_range
from pocare.patients.models import Referral, Stage


class ReferralFilter(ListFilterSet):
    search_fields = ("patient__pseudonym", "indication", "product__code", "patient__treating_site__code",
                     "order__coi")
    search_help = _("Pseudonym, indication, product, hospital or COI")
    default_sort = ("-referred_at",)
    stage = django_filters.ChoiceFilter(choices=[(value, _(label)) for value, label in Stage.choices],
                                        empty_label=_("Any"), label=_("Stage"))
    site = django_filters.CharFilter(field_name="patient__treating_site__code", lookup_expr="iexact",
                                     label=_("Treating hospital"), max_length=8)
    product = django_filters.CharFilter(field_name="product__code", lookup_expr="iexact", max_length=64,
                                        label=_("Product"))
    referred_from, referred_until = date_range("referred_at", _("Referred"))
    sort = SortFilter(fields=(("referred_at", "referred"), ("patient__pseudonym", "patient"),
                              ("patient__treating_site__code", "site"), ("product__code", "product"),
                              ("stage", "stage"), ("stage_changed_at", "since")))

    class Meta:
        model = Referral
        fields: list[str] = []


REFERRAL_COLUMNS = (
    Column("referral", "pk"), Column("pseudonym", "patient.pseudonym"),
    Column("treating_site", "patient.treating_site.code"), Column("product", "product.code"),
    Column("indication", "indication"), Column("stage", "stage"), Column("stage_since_utc", "stage_changed_at"),
    Column("referred_at_utc", "referred_at"), Column("source", "source"), Column("lost_reason", "lost_reason"),
    Column("order_coi", lambda r: r.order.coi if r.order_id else ""), Column("infused_at_utc", "infused_at"),
)
