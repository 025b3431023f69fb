"""Audit-trail review (A11-9, A11-12): a person reads a stretch of a site's chain and signs
that they reviewed it. Each review starts where the last one of that chain ended, on every lane
of the chain (docs/ledger.md, "Lanes").

The ledger keeps the review rows (only the ledger writes ledger rows); who may review which chain
is asked above, by ``pocare.trail.services.trail_review_sign``, which calls :func:`review_record`
with a signer it has already authenticated."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from pocare.ledger.events import LedgerEvent
from pocare.ledger.models import NETWORK_CHAIN, AuditReview, ChainHead, Meaning, lane_chains, site_chain
from pocare.ledger.services import HasSiteCode, event_record
from pocare.ledger.signing import SigningProof, signature_apply


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
    return reviews_pending([chain])[chain]


def reviews_pending(chains: list[str]) -> dict[str, list[LaneRange]]:
    """``review_pending`` of many chains in two queries, whatever their number: the latest review
    of each chain, and the heads of all their lanes."""
    latest = AuditReview.objects.filter(chain__in=chains).values("chain").annotate(last=Max("pk")).values("last")
    reviewed = {r.chain: r.ranges for r in AuditReview.objects.filter(pk__in=latest)}
    lanes = {chain: lane_chains(chain) for chain in chains}
    heads = {h.chain: h for h in ChainHead.objects.filter(chain__in=[lane for ls in lanes.values() for lane in ls])}
    return {
        chain: [
            LaneRange(lane, reviewed[chain][lane][1] + 1 if lane in reviewed.get(chain, {}) else 1,
                      heads[lane].seq if lane in heads else 0, heads[lane].hash if lane in heads else "")
            for lane in lanes[chain] if lane == chain or lane in heads
        ]
        for chain in chains
    }


def site_chains() -> list[str]:
    """Every site chain that holds an event (lanes folded into their site), by code."""
    chains = {site_chain(c) for c in ChainHead.objects.values_list("chain", flat=True)}
    return sorted(chains - {NETWORK_CHAIN})


def chain_exists(chain: str) -> bool:
    """Whether ``chain`` is the network chain or a site chain that holds at least one event."""
    return chain == NETWORK_CHAIN or ChainHead.objects.filter(chain=chain).exists()


def review_record(*, proof: SigningProof, chain: str, site: HasSiteCode | None, comment: str) -> AuditReview:
    """Sign the review of every not-yet-reviewed event of ``chain``, on all its lanes (meaning:
    reviewed), as the person ``proof`` authenticated. Refused when nothing is left to review."""
    first, *others = review_pending(chain)
    if not any(r.count for r in (first, *others)):
        raise ValidationError({"chain": "Every event of this chain has already been reviewed."})
    # Every lane is stated, a lane with nothing new too, so that the latest review alone says how
    # far each lane has been read.
    lanes = {r.chain: {"from_seq": r.from_seq, "to_seq": r.to_seq, "to_hash": r.to_hash} for r in others}
    actor = proof.user
    with transaction.atomic():
        review = AuditReview.objects.create(
            chain=chain, from_seq=first.from_seq, to_seq=first.to_seq, to_hash=first.to_hash, lanes=lanes,
            comment=comment, reviewer=actor, created_at=timezone.now(),
        )
        event_record(
            actor=actor, event_type=LedgerEvent.REVIEWED, obj=review, site=site,
            new={"chain": chain, "from_seq": first.from_seq, "to_seq": first.to_seq, "to_hash": first.to_hash,
                 **({"lanes": lanes} if lanes else {})},
        )
        signature_apply(proof=proof, record=review, meaning=Meaning.REVIEWED, site=site)
    return review
