"""Reads of the audit trail and signatures, scoped by site: a site sees its own chain, all its
lanes (and the network events about its own people), the Control Site sees everything."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Max, QuerySet

from pocare.accounts import selectors as access
from pocare.accounts.roles import Perm
from pocare.ledger.events import LedgerEvent
from pocare.ledger.models import (
    NETWORK_CHAIN,
    AuditReview,
    ChainHead,
    Event,
    Signature,
    chains_with_lanes,
    site_chain,
)


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


@dataclass(frozen=True)
class ReviewDue:
    """A site's audit trail (all its lanes) with events no signed review covers yet (A11-9)."""

    chain: str
    events: int


#: A site's trail is reviewed at least this often (the review signs its own event, so a trail is
#: never without an unreviewed event for long; what is due is the periodic review).
REVIEW_EVERY = dt.timedelta(days=7)


def reviews_due(user: Any, now: dt.datetime) -> list[ReviewDue]:
    """The chains the person reviews (where they hold LEDGER_REVIEW; the Control Site: every chain)
    with events no signed review covers, and no review for :data:`REVIEW_EVERY`. Three queries,
    whatever the size of the trail: the heads of the lanes, the last review of each chain, and those
    reviews."""
    if not access.has_perm(user, Perm.LEDGER_REVIEW) or access.is_read_only(user):
        return []
    chains = visible_chains(user, Perm.LEDGER_REVIEW)
    heads = ChainHead.objects.all() if chains is None else ChainHead.objects.filter(chain__in=chains_with_lanes(chains))
    seqs = dict(heads.values_list("chain", "seq"))
    names = {site_chain(lane) for lane in seqs}
    last_ids = AuditReview.objects.filter(chain__in=names).values("chain").annotate(last=Max("pk")).values("last")
    reviewed: dict[str, tuple[int, int, str]] = {}
    recent = set()
    for review in AuditReview.objects.filter(pk__in=last_ids):
        reviewed.update(review.ranges)
        if review.created_at > now - REVIEW_EVERY:
            recent.add(review.chain)
    unreviewed: dict[str, int] = {}
    for lane, seq in seqs.items():
        done = reviewed[lane][1] if lane in reviewed else 0
        if seq > done and site_chain(lane) not in recent:
            unreviewed[site_chain(lane)] = unreviewed.get(site_chain(lane), 0) + seq - done
    order = sorted(unreviewed, key=lambda c: (c != NETWORK_CHAIN, c))
    return [ReviewDue(chain, unreviewed[chain]) for chain in order]


def restore_losses_acknowledged(chains: list[str] | None) -> list[dict[str, Any]]:
    """Anchored history a restore lost and someone acknowledged (`pocare audit restored`), on the
    chains given (``None``: all), oldest first: each stretch with the acknowledging event, its
    deviation and reason. Read from the trail; `audit verify --digests` proves each against the
    signed digest that carries it."""
    losses = []
    for event in Event.objects.filter(event_type=LedgerEvent.RESTORE_LOSS_ACKNOWLEDGED).order_by("id"):
        for loss in event.new.get("lost", []):
            if chains is None or site_chain(str(loss.get("chain", ""))) in chains:
                losses.append({**loss, "event": event, "deviation": event.new.get("deviation", ""),
                               "anchored": str(loss.get("anchored_at", ""))[:16].replace("T", " ")})
    return losses


def last_verification(user: Any) -> Event | None:
    """The person's latest recorded verification of the trail (``ledger.verified``), for the verify page.
    Verifications are few, so the event-type index finds them without reading the person's other events."""
    return (Event.objects.filter(event_type=LedgerEvent.VERIFIED, actor_username=user.username)
            .order_by("-id").first())
