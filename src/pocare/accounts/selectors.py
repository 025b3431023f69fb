"""What a person may see and do, computed from their active memberships.

Every read path (views, API, other apps' selectors) asks here; nothing trusts templates to hide
what a person may not see.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from pocare.accounts.models import ApiToken, Membership, User
from pocare.accounts.roles import NETWORK_ROLES, READ_ONLY_ROLES, ROLE_PERMS, Perm, Role

_CACHE = "_pocare_memberships"


def active_memberships(user: Any, *, at: dt.datetime | None = None) -> list[Membership]:
    """The person's memberships in force now (or ``at``); cached on the user for one request."""
    if not getattr(user, "is_authenticated", False) or not user.is_active or user.is_locked:
        return []
    if at is None:
        cached: list[Membership] | None = getattr(user, _CACHE, None)
        if cached is not None:
            return cached
    when = at or timezone.now()
    rows = [m for m in Membership.objects.filter(user=user).select_related("site") if m.is_active_at(when)]
    if at is None:
        setattr(user, _CACHE, rows)
    return rows


def forget_memberships(user: Any) -> None:
    if hasattr(user, _CACHE):
        delattr(user, _CACHE)


def roles_of(user: Any) -> set[Role]:
    return {Role(m.role) for m in active_memberships(user)}


def is_network_user(user: Any) -> bool:
    """Control Site roles see the whole network."""
    return any(m.role in NETWORK_ROLES for m in active_memberships(user))


def is_read_only(user: Any) -> bool:
    roles = roles_of(user)
    return bool(roles) and roles <= READ_ONLY_ROLES


def sites_with_perm(user: Any, perm: Perm) -> set[int] | None:
    """Ids of the sites where the person holds ``perm``; ``None`` means every site (a Control Site
    role that carries it).

    This is the one scoping rule of every read (issue 13): an object at a site is seen only with
    the permission it needs held *at that site*. A person with roles at two sites sees at each what
    the role held there allows; a Control Site planner who also operates at a site sees the batches
    of that site only, since planning does not carry the batch-record permission.
    """
    held = _memberships_with_perm(user, perm)
    return None if held is None else {m.site_id for m in held}


def site_codes_with_perm(user: Any, perm: Perm) -> set[str] | None:
    """The codes of the sites where the person holds ``perm`` (a site's code names its audit-trail
    chain); ``None`` means every site."""
    held = _memberships_with_perm(user, perm)
    return None if held is None else {m.site.code for m in held}


def _memberships_with_perm(user: Any, perm: Perm) -> list[Membership] | None:
    """The person's memberships in force that carry ``perm``; ``None`` when one of them is a Control
    Site role that carries it (it holds at every site)."""
    held = [m for m in active_memberships(user) if perm in ROLE_PERMS[Role(m.role)]]
    return None if any(m.role in NETWORK_ROLES for m in held) else held


def holds_network_wide(user: Any, perm: Perm) -> bool:
    """Whether the person holds ``perm`` at every site: through a Control Site role that carries
    it (a planner who is also a site manager does not hold the manager's permissions network-wide)."""
    return sites_with_perm(user, perm) is None


def sites_with_any_perm(user: Any, perms: Iterable[Perm]) -> set[int] | None:
    """The union of :func:`sites_with_perm` over ``perms`` (``None``: every site)."""
    out: set[int] = set()
    for perm in perms:
        sites = sites_with_perm(user, perm)
        if sites is None:
            return None
        out |= sites
    return out


def perms_of(user: Any, *, site_id: int | None = None) -> frozenset[Perm]:
    """Permissions the person holds — network-wide, or at ``site_id`` when given."""
    perms: set[Perm] = set()
    for m in active_memberships(user):
        if site_id is None or m.role in NETWORK_ROLES or m.site_id == site_id:
            perms |= ROLE_PERMS[Role(m.role)]
    return frozenset(perms)


def has_perm(user: Any, perm: Perm, *, site_id: int | None = None) -> bool:
    return perm in perms_of(user, site_id=site_id)


def users_visible(user: Any) -> QuerySet[User]:
    """People the viewer may see: everyone for the Control Site, their site's people otherwise."""
    if not has_perm(user, Perm.ACCOUNTS_VIEW):
        return User.objects.none()
    qs = User.objects.all()
    site_ids = sites_with_perm(user, Perm.ACCOUNTS_VIEW)
    if site_ids is not None:
        qs = qs.filter(memberships__site_id__in=site_ids).distinct()
    return qs.order_by("username")


def memberships_visible(user: Any) -> QuerySet[Membership]:
    qs = Membership.objects.select_related("user", "site")
    if not has_perm(user, Perm.ACCOUNTS_VIEW):
        return qs.none()
    site_ids = sites_with_perm(user, Perm.ACCOUNTS_VIEW)
    return qs if site_ids is None else qs.filter(site_id__in=site_ids)


def tokens_visible(user: Any) -> QuerySet[ApiToken]:
    if not getattr(user, "is_authenticated", False):
        return ApiToken.objects.none()
    if not has_perm(user, Perm.ACCOUNTS_MANAGE):
        return ApiToken.objects.filter(user=user)
    return ApiToken.objects.select_related("user")


def password_expired(user: User, *, max_age_days: int) -> bool:
    """True when the person must set a new password before going on (P11-300 ageing)."""
    if user.must_change_password:
        return True
    if user.password_changed_at is None:
        return False
    return timezone.now() - user.password_changed_at > dt.timedelta(days=max_age_days)


def sign_in_pauses(user: User) -> list[dict[str, Any]]:
    """Client addresses from which sign-in is paused for this person now (django-axes), with until when."""
    cooloff: dt.timedelta = settings.AXES_COOLOFF_TIME
    rows = AccessAttempt.objects.filter(
        username=user.username,
        attempt_time__gte=timezone.now() - cooloff,
        failures_since_start__gte=settings.AXES_FAILURE_LIMIT,
    ).order_by("-attempt_time")
    return [{"ip_address": r.ip_address, "failures": r.failures_since_start, "until": r.attempt_time + cooloff}
            for r in rows]
