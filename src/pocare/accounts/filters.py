"""The people list's filters, shared by the page and the API (pocare.core.listing)."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import Q, QuerySet
from django.utils import timezone

from pocare.accounts.models import Membership, User
from pocare.accounts.roles import Role
from pocare.core.listing import Column, ListFilterSet, SortFilter


class PersonFilter(ListFilterSet):
    search_fields = ("username", "printed_name", "email")
    search_help = "Name, user id or e-mail"
    default_sort = ("username",)
    site = django_filters.CharFilter(method="with_role_at", label="Site", help_text="Holds a role there now")
    role = django_filters.ChoiceFilter(choices=Role.choices, method="holding", empty_label="Any")
    active = django_filters.ChoiceFilter(choices=[("true", "Active"), ("false", "Deactivated")],
                                         method="is_active", empty_label="Any", label="Status")
    sort = SortFilter(fields=(("username", "username"), ("printed_name", "name"), ("last_login", "last_login"),
                              ("is_active", "active")))

    class Meta:
        model = User
        fields: list[str] = []

    def _holding(self, queryset: QuerySet[User], **lookup: Any) -> QuerySet[User]:
        now = timezone.now()
        in_force = Membership.objects.filter(Q(valid_until__isnull=True) | Q(valid_until__gt=now),
                                             revoked_at__isnull=True, granted_at__lte=now, **lookup)
        return queryset.filter(pk__in=in_force.values("user_id"))

    def with_role_at(self, queryset: QuerySet[User], name: str, value: str) -> QuerySet[User]:
        return self._holding(queryset, site__code__iexact=value)

    def holding(self, queryset: QuerySet[User], name: str, value: str) -> QuerySet[User]:
        return self._holding(queryset, role=value)

    def is_active(self, queryset: QuerySet[User], name: str, value: str) -> QuerySet[User]:
        return queryset.filter(is_active=value == "true")


def _roles(person: User) -> str:
    now = timezone.now()
    return "; ".join(f"{m.get_role_display()} at {m.site.code}" for m in person.memberships.all()
                     if m.is_active_at(now))


PERSON_COLUMNS = (
    Column("username", "username"), Column("printed_name", "printed_name"), Column("email", "email"),
    Column("roles_in_force", _roles), Column("active", "is_active"), Column("last_login_utc", "last_login"),
)
