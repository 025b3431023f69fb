"""Reads of the network, scoped to what the viewer may see."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q, QuerySet

from pocare.accounts import selectors as access
from pocare.accounts.roles import Perm
from pocare.network.models import Site


def sites_visible(user: Any) -> QuerySet[Site]:
    """Every site for Control Site roles; a site user's own sites otherwise."""
    if not access.has_perm(user, Perm.NETWORK_VIEW):
        return Site.objects.none()
    site_ids = access.visible_site_ids(user)
    qs = Site.objects.all()
    return qs if site_ids is None else qs.filter(pk__in=site_ids)


def sites_overview(user: Any) -> QuerySet[Site]:
    """Sites with the number of people holding an active role there, for the network page."""
    return sites_visible(user).annotate(
        people=Count("memberships", filter=Q(memberships__revoked_at=None), distinct=True)
    )
