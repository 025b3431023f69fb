"""The one write path into the audit trail.

Every service of every app calls :func:`event_record` inside its own transaction, after it has
made its change, so the change and its event commit or roll back together.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from django.db import connection, models
from django.utils import timezone

from pocare.ledger import canonical
from pocare.ledger.context import current_request_id
from pocare.ledger.events import LedgerEvent, is_registered
from pocare.ledger.models import NETWORK_CHAIN, ChainHead, Event

if TYPE_CHECKING:
    from pocare.accounts.models import User


class HasSiteCode(Protocol):
    code: str


class LedgerError(Exception):
    """A programming error in how the ledger is called (not a user error)."""


def chain_for(site: HasSiteCode | None) -> str:
    """The chain an event belongs to: its site's, or the network's."""
    return site.code if site is not None else NETWORK_CHAIN


def event_record(
    *,
    actor: User | None,
    event_type: str,
    reason: str = "",
    site: HasSiteCode | None = None,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str = "",
    object_repr: str = "",
    old: Mapping[str, Any] | None = None,
    new: Mapping[str, Any] | None = None,
    system: str = "",
) -> Event:
    """Append one event to the site's chain (or the network chain) in the caller's transaction.

    ``actor`` is the person acting; for unattended work (the demo loader, a device feed) pass
    ``actor=None`` and name the system in ``system``. ``old``/``new`` hold the changed values.
    """
    if not is_registered(event_type):
        raise LedgerError(f"unregistered ledger event type {event_type!r}")
    if not connection.in_atomic_block:
        raise LedgerError("event_record must run inside the service's transaction.atomic()")
    if actor is None and not system:
        raise LedgerError("an event needs an actor or, for unattended work, a system name")
    if obj is not None:
        object_type = object_type or obj._meta.label
        object_id = object_id or str(obj.pk)
        object_repr = object_repr or str(obj)[:200]

    chain = chain_for(site)
    head = _lock_head(chain)
    event = Event(
        chain=chain,
        seq=head.seq + 1,
        prev_hash=head.hash,
        event_type=str(event_type),
        occurred_at=timezone.now(),
        actor=actor,
        actor_username=actor.username if actor is not None else system,
        actor_printed_name=(actor.printed_name or actor.username) if actor is not None else f"POCare ({system})",
        object_type=object_type,
        object_id=object_id,
        object_repr=object_repr,
        reason=reason,
        request_id=current_request_id(),
        old_values=canonical.canonical_json(old or {}),
        new_values=canonical.canonical_json(new or {}),
    )
    event.hash = canonical.event_hash(event.hashed_fields())
    event.save()
    ChainHead.objects.filter(chain=chain).update(seq=event.seq, hash=event.hash)
    return event


def _lock_head(chain: str) -> ChainHead:
    """Lock the chain's head row for the rest of the transaction (creating it the first time).

    On PostgreSQL the row lock serializes appends to one chain while other chains proceed; on
    SQLite the IMMEDIATE transaction already holds the database's write lock.
    """
    head = ChainHead.objects.select_for_update().filter(chain=chain).first()
    if head is None:
        ChainHead.objects.bulk_create(
            [ChainHead(chain=chain, seq=0, hash=canonical.GENESIS_HASH)], ignore_conflicts=True
        )
        head = ChainHead.objects.select_for_update().get(chain=chain)
    return head


def record_changes(instance: models.Model, fields: list[str]) -> dict[str, Any]:
    """The current values of ``fields`` on ``instance``, for old/new values of an event."""
    return {name: getattr(instance, name) for name in fields}



# --- audit trail export and review ---------------------------------------------------------------

EXPORT_COLUMNS = (
    "id", "chain", "seq", "occurred_at", "event_type", "actor_username", "actor_printed_name",
    "object_type", "object_id", "object_repr", "reason", "request_id", "old_values", "new_values",
    "prev_hash", "hash",
)


def trail_export(
    *, actor: User, events: models.QuerySet[Event], fmt: str, filters: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], Event]:
    """Record that ``actor`` exported these events (the export is itself audited) and return them.

    The rows carry each event's hashes, so an export can be checked against the chain later.
    """
    from django.db import transaction

    from pocare.accounts import selectors as access
    from pocare.accounts.roles import Perm

    if not access.has_perm(actor, Perm.LEDGER_EXPORT):
        from django.core.exceptions import PermissionDenied

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
    from django.db import transaction

    with transaction.atomic():
        return event_record(
            actor=actor, event_type=LedgerEvent.VERIFIED, object_type="ledger.Event",
            object_repr=f"{events} events in {chains} chains",
            new={"ok": not broken and not invalid_signatures, "events": events, "broken": broken,
                 "invalid_signatures": invalid_signatures},
        )
