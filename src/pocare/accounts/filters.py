"""The people list's filters, shared by the page and the API (pocare.core.listing)."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import Q, QuerySet
from django.utils import timezone

from pocare.accounts.models import ApiToken, Membership, TokenScope, User
from pocare.accounts.roles import Role
from pocare.core.listing import Column, ListFilterSet, SortFilter, date_range


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


class TokenFilter(ListFilterSet):
    search_fields = ("name", "prefix", "user__username", "user__printed_name")
    search_help = "Name, prefix or the person it acts as"
    default_sort = ("-created_at",)
    state = django_filters.ChoiceFilter(choices=[("in_use", "In use"), ("expired", "Expired"), ("revoked", "Revoked")],
                                        method="in_state", empty_label="Any")
    scope = django_filters.ChoiceFilter(choices=TokenScope.choices, empty_label="Any")
    user = django_filters.CharFilter(field_name="user__username", lookup_expr="iexact", label="Acts as",
                                     help_text="User id")
    created_from, created_until = date_range("created_at", "Created")
    sort = SortFilter(fields=(("name", "name"), ("user__username", "user"), ("created_at", "created"),
                              ("expires_at", "expires"), ("last_used_at", "last_used")))

    class Meta:
        model = ApiToken
        fields: list[str] = []

    def in_state(self, queryset: QuerySet[ApiToken], name: str, value: str) -> QuerySet[ApiToken]:
        """The states the page shows: revoked wins over expired; in use is neither."""
        now = timezone.now()
        expired = Q(expires_at__isnull=False, expires_at__lte=now)
        if value == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        if value == "expired":
            return queryset.filter(expired, revoked_at__isnull=True)
        return queryset.filter(revoked_at__isnull=True).exclude(expired)


def _token_state(token: ApiToken) -> str:
    if token.revoked_at is not None:
        return "revoked"
    return "expired" if token.expires_at is not None and token.expires_at <= timezone.now() else "in use"


TOKEN_COLUMNS = (
    Column("name", "name"), Column("prefix", "prefix"), Column("acts_as", "user.username"), Column("scope", "scope"),
    Column("state", _token_state), Column("created_at_utc", "created_at"), Column("expires_at_utc", "expires_at"),
    Column("last_used_at_utc", "last_used_at"), Column("last_used_ip", "last_used_ip"),
    Column("revoked_at_utc", "revoked_at"),
)
