"""Audit-trail review (A11-9, A11-12): a person reads a stretch of a site's chain and signs
that they reviewed it. Each review starts where the last one of that chain ended."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from pocare.accounts import selectors as access
from pocare.accounts.models import User
from pocare.accounts.roles import Perm
from pocare.ledger.events import LedgerEvent
from pocare.ledger.models import NETWORK_CHAIN, AuditReview, ChainHead, Meaning
from pocare.ledger.services import event_record
from pocare.ledger.signing import SigningCredentials, signature_apply, signing_authenticate
from pocare.network.models import Site


def review_next_range(chain: str) -> tuple[int, int, str]:
    """(from_seq, to_seq, to_hash) of the events of ``chain`` not yet reviewed."""
    last = AuditReview.objects.filter(chain=chain).order_by("-to_seq").first()
    head = ChainHead.objects.filter(chain=chain).first()
    start = (last.to_seq + 1) if last else 1
    return start, head.seq if head else 0, head.hash if head else ""


def trail_review_sign(
    *, actor: User, chain: str, comment: str, credentials: SigningCredentials
) -> AuditReview:
    """Sign the review of every not-yet-reviewed event of ``chain`` (meaning: reviewed)."""
    site = Site.objects.filter(code=chain).first()
    if chain != NETWORK_CHAIN and site is None:
        raise ValidationError({"chain": f"There is no chain {chain!r}."})
    if access.is_read_only(actor) or not access.has_perm(
        actor, Perm.LEDGER_REVIEW, site_id=site.pk if site else None
    ) or (site is None and not access.is_network_user(actor)):
        raise PermissionDenied("You may not review this audit trail.")
    if not comment.strip():
        raise ValidationError({"comment": "Say what you reviewed and what you found."})
    start, end, end_hash = review_next_range(chain)
    if end < start:
        raise ValidationError({"chain": "Every event of this chain has already been reviewed."})
    proof = signing_authenticate(actor=actor, credentials=credentials)
    with transaction.atomic():
        review = AuditReview.objects.create(
            chain=chain, from_seq=start, to_seq=end, to_hash=end_hash, comment=comment.strip(),
            reviewer=actor, created_at=timezone.now(),
        )
        event_record(
            actor=actor, event_type=LedgerEvent.REVIEWED, obj=review, site=site,
            new={"chain": chain, "from_seq": start, "to_seq": end, "to_hash": end_hash},
        )
        signature_apply(proof=proof, record=review, meaning=Meaning.REVIEWED, site=site)
    return review
