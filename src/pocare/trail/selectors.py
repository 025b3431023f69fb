"""Reads of the audit trail and signatures, scoped by site: a site sees its own chain, all its
lanes (and the network events about its own people), the Control Site sees everything."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from pocare.accounts import selectors as access
from pocare.accounts.roles import Perm
from pocare.ledger.models import AuditReview, Event, Signature, chains_with_lanes


def visible_chains(user: Any, perm: Perm = Perm.LEDGER_VIEW) -> list[str] | None:
    """Chains the person may read with ``perm`` (the sites where they hold it); ``None`` means all."""
    codes = access.site_codes_with_perm(user, perm)
    return None if codes is None else sorted(codes)


def events_visible(user: Any) -> QuerySet[Event]:
    if not access.has_perm(user, Perm.LEDGER_VIEW):
        return Event.objects.none()
    chains = visible_chains(user)
    qs = Event.objects.all()
    return qs if chains is None else qs.filter(chain__in=chains_with_lanes(chains))


def signatures_visible(user: Any) -> QuerySet[Signature]:
    if not access.has_perm(user, Perm.SIGNATURES_VIEW):
        return Signature.objects.none()
    chains = visible_chains(user, Perm.SIGNATURES_VIEW)
    qs = Signature.objects.all()
    return qs if chains is None else qs.filter(chain__in=chains_with_lanes(chains))


def reviews_visible(user: Any) -> QuerySet[AuditReview]:
    if not access.has_perm(user, Perm.LEDGER_VIEW):
        return AuditReview.objects.none()
    chains = visible_chains(user)
    qs = AuditReview.objects.select_related("reviewer")
    return qs if chains is None else qs.filter(chain__in=chains)
