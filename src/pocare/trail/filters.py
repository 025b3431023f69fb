"""The audit trail's filters, shared by the web browser and the API."""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.db.models import Q, QuerySet

from pocare.core.fields import IsoDateTimeFilter
from pocare.core.listing import Column, ListFilterSet, SortFilter, date_range
from pocare.ledger.events import registered
from pocare.ledger.models import AuditReview, Event, Meaning, Signature, chains_with_lanes, site_chain


class EventFilter(django_filters.FilterSet):
    chain = django_filters.CharFilter(
        method="in_chain", label="Site (chain)", help_text="Site code (all its lanes), NETWORK, or one lane (MAD/2)"
    )
    event_type = django_filters.ChoiceFilter(
        choices=lambda: list(registered().items()), label="Event type", empty_label="Any"
    )
    user = django_filters.CharFilter(field_name="actor_username", label="User id")
    object_type = django_filters.CharFilter(label="Object type", help_text="e.g. accounts.User")
    object_id = django_filters.CharFilter(label="Object id")
    request_id = django_filters.CharFilter(label="Request id")
    after = IsoDateTimeFilter(
        field_name="occurred_at", lookup_expr="gte", label="From (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    before = IsoDateTimeFilter(
        field_name="occurred_at", lookup_expr="lt", label="Until (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    q = django_filters.CharFilter(method="search", label="Text", help_text="in the object or the reason")

    class Meta:
        model = Event
        fields: list[str] = []

    def in_chain(self, queryset: QuerySet[Event], name: str, value: str) -> QuerySet[Event]:
        if value != site_chain(value):
            return queryset.filter(chain=value)
        return queryset.filter(chain__in=chains_with_lanes([value]))

    def search(self, queryset: QuerySet[Event], name: str, value: Any) -> QuerySet[Event]:
        return queryset.filter(Q(object_repr__icontains=value) | Q(reason__icontains=value))


class ReviewFilter(ListFilterSet):
    """The signed audit-trail reviews (pocare.core.listing)."""

    search_fields = ("comment", "reviewer__username", "reviewer__printed_name")
    search_help = "Finding or reviewer"
    default_sort = ("-created_at",)
    chain = django_filters.CharFilter(lookup_expr="iexact", label="Site (chain)")
    signed_from, signed_until = date_range("created_at", "Signed")
    sort = SortFilter(fields=(("pk", "review"), ("chain", "chain"), ("created_at", "signed")))

    class Meta:
        model = AuditReview
        fields: list[str] = []


REVIEW_COLUMNS = (
    Column("review", "pk"), Column("chain", "chain"), Column("from_seq", "from_seq"), Column("to_seq", "to_seq"),
    Column("to_hash", "to_hash"), Column("reviewer", "reviewer.username"), Column("signed_at_utc", "created_at"),
    Column("finding", "comment"),
)


class SignatureFilter(ListFilterSet):
    """Electronic signatures over the API (pocare.core.listing): who, what and when."""

    search_fields = ("signer_username", "signer_printed_name", "record_repr", "record_type")
    search_help = "Signer, record or record type"
    default_sort = ("-id",)
    chain = django_filters.CharFilter(method="in_chain", label="Site (chain)")
    meaning = django_filters.ChoiceFilter(choices=Meaning.choices, empty_label="Any")
    record_type = django_filters.CharFilter(label="Record type", help_text="e.g. manufacturing.StepExecution")
    record_id = django_filters.CharFilter(label="Record id")
    signer = django_filters.CharFilter(field_name="signer_username", label="Signer user id")
    signed_from, signed_until = date_range("signed_at", "Signed")
    sort = SortFilter(fields=(("id", "signature"), ("signed_at", "signed"), ("signer_username", "signer"),
                              ("record_type", "record_type")))

    class Meta:
        model = Signature
        fields: list[str] = []

    def in_chain(self, queryset: QuerySet[Signature], name: str, value: str) -> QuerySet[Signature]:
        return queryset.filter(chain__in=chains_with_lanes([site_chain(value)])) if value == site_chain(value) \
            else queryset.filter(chain=value)
