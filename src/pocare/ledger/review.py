"""Audit-trail review (A11-9, A11-12): a person reads a stretch of a site's chain and signs
that they reviewed it. Each review starts where the last one of that chain ended, on every lane
of the chain (docs/ledger.md, "Lanes")."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from pocare.accounts import selectors as access
from pocare.accounts.models import User
from pocare.accounts.roles import Perm
from pocare.ledger.events import LedgerEvent
from pocare.ledger.models import NETWORK_CHAIN, AuditReview, ChainHead, Meaning, lane_chains
from pocare.ledger.services import event_record
from pocare.ledger.signing import SigningCredentials, signature_apply, signing_authenticate
from pocare.network.models import Site


@dataclass(frozen=True)
class LaneRange:
    """Events ``from_seq``..``to_seq`` of one lane, the last of which hashes to ``to_hash``."""

    chain: str
    from_seq: int
    to_seq: int
    to_hash: str

    @property
    def count(self) -> int:
        return max(0, self.to_seq - self.from_seq + 1)


def review_pending(chain: str) -> list[LaneRange]:
    """Each lane of ``chain`` (the chain itself first) with its events not yet reviewed; a lane
    with nothing new has a count of 0."""
    last = AuditReview.objects.filter(chain=chain).order_by("-pk").first()
    reviewed = last.ranges if last else {}
    heads = {h.chain: h for h in ChainHead.objects.filter(chain__in=lane_chains(chain))}
    return [
        LaneRange(lane, reviewed[lane][1] + 1 if lane in reviewed else 1,
                  heads[lane].seq if lane in heads else 0, heads[lane].hash if lane in heads else "")
        for lane in lane_chains(chain) if lane == chain or lane in heads
    ]


def trail_review_sign(
    *, actor: User, chain: str, comment: str, credentials: SigningCredentials
) -> AuditReview:
    """Sign the review of every not-yet-reviewed event of ``chain``, on all its lanes (meaning:
    reviewed)."""
    site = Site.objects.filter(code=chain).first()
    if chain != NETWORK_CHAIN and site is None:
        raise ValidationError({"chain": f"There is no chain {chain!r}."})
    # The network chain only with the permission held network-wide (a Control Site role that
    # carries it), a site's chain with it held at that site.
    allowed = access.sites_with_perm(actor, Perm.LEDGER_REVIEW)
    if access.is_read_only(actor) or (allowed is not None and (site is None or site.pk not in allowed)):
        raise PermissionDenied("You may not review this audit trail.")
    if not comment.strip():
        raise ValidationError({"comment": "Say what you reviewed and what you found."})
    first, *others = review_pending(chain)
    if not any(r.count for r in (first, *others)):
        raise ValidationError({"chain": "Every event of this chain has already been reviewed."})
    # Every lane is stated, a lane with nothing new too, so that the latest review alone says how
    # far each lane has been read.
    lanes = {r.chain: {"from_seq": r.from_seq, "to_seq": r.to_seq, "to_hash": r.to_hash} for r in others}
    proof = signing_authenticate(actor=actor, credentials=credentials)
    with transaction.atomic():
        review = AuditReview.objects.create(
            chain=chain, from_seq=first.from_seq, to_seq=first.to_seq, to_hash=first.to_hash, lanes=lanes,
            comment=comment.strip(), reviewer=actor, created_at=timezone.now(),
        )
        event_record(
            actor=actor, event_type=LedgerEvent.REVIEWED, obj=review, site=site,
            new={"chain": chain, "from_seq": first.from_seq, "to_seq": first.to_seq, "to_hash": first.to_hash,
                 **({"lanes": lanes} if lanes else {})},
        )
        signature_apply(proof=proof, record=review, meaning=Meaning.REVIEWED, site=site)
    return review
