"""The writes of reading the trail: a signed review, and the record that someone exported or
verified it (an export and a verification are themselves audited, A11-9)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction

from pocare.accounts import selectors as access
from pocare.accounts.models import User
from pocare.accounts.roles import Perm
from pocare.ledger import canonical
from pocare.ledger.events import LedgerEvent
from pocare.ledger.models import NETWORK_CHAIN, AuditReview, Event
from pocare.ledger.review import chain_exists, review_record
from pocare.ledger.services import event_record
from pocare.ledger.signing import SigningCredentials, signing_authenticate

EXPORT_COLUMNS = (
    "id", "chain", "seq", "occurred_at", "event_type", "actor_username", "actor_printed_name",
    "object_type", "object_id", "object_repr", "reason", "request_id", "old_values", "new_values",
    "prev_hash", "hash",
)


@dataclass
class _Chain:
    """A site chain named by its code: where the review's event and signature are chained."""

    code: str


def trail_review_sign(
    *, actor: User, chain: str, comment: str, credentials: SigningCredentials
) -> AuditReview:
    """Sign the review of every not-yet-reviewed event of ``chain``, on all its lanes (meaning:
    reviewed). The network chain needs the permission held network-wide (a Control Site role that
    carries it), a site's chain needs it held at that site."""
    if not chain_exists(chain):
        raise ValidationError({"chain": f"There is no chain {chain!r}."})
    allowed = access.site_codes_with_perm(actor, Perm.LEDGER_REVIEW)
    if access.is_read_only(actor) or (allowed is not None and chain not in allowed):
        raise PermissionDenied("You may not review this audit trail.")
    if not comment.strip():
        raise ValidationError({"comment": "Say what you reviewed and what you found."})
    proof = signing_authenticate(actor=actor, credentials=credentials)
    site = None if chain == NETWORK_CHAIN else _Chain(chain)
    return review_record(proof=proof, chain=chain, site=site, comment=comment.strip())


def trail_export(
    *, actor: User, events: models.QuerySet[Event], fmt: str, filters: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], Event]:
    """Record that ``actor`` exported these events (the export is itself audited) and return them.

    The rows carry each event's hashes, so an export can be checked against the chain later.
    """
    if not access.has_perm(actor, Perm.LEDGER_EXPORT):
        raise PermissionDenied("You may not export the audit trail.")
    rows = [
        {**{c: getattr(e, c) for c in EXPORT_COLUMNS if c not in {"occurred_at"}},
         "occurred_at": canonical.format_timestamp(e.occurred_at)}
        for e in events
    ]
    chains = sorted({r["chain"] for r in rows})
    with transaction.atomic():
        event = event_record(
            actor=actor,
            event_type=LedgerEvent.EXPORTED,
            object_type="ledger.Event",
            object_repr=f"{len(rows)} events as {fmt}",
            new={"format": fmt, "events": len(rows), "chains": chains, "filters": dict(filters)},
        )
    return rows, event


def trail_verified(*, actor: User, events: int, chains: int, broken: list[str], invalid_signatures: list[int]) -> Event:
    """Record that a person verified the audit trail and what they found."""
    with transaction.atomic():
        return event_record(
            actor=actor, event_type=LedgerEvent.VERIFIED, object_type="ledger.Event",
            object_repr=f"{events} events in {chains} chains",
            new={"ok": not broken and not invalid_signatures, "events": events, "broken": broken,
                 "invalid_signatures": invalid_signatures},
        )
