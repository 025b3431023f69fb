"""The one write path into the audit trail.

Every service of every app calls :func:`event_record` inside its own transaction, after it has
made its change, so the change and its event commit or roll back together.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.signals import post_save, pre_save
from django.utils import timezone

from pocare.ledger import canonical
from pocare.ledger.context import current_request_id
from pocare.ledger.events import is_registered
from pocare.ledger.models import (
    MAX_LANES,
    NETWORK_CHAIN,
    ChainHead,
    Event,
    EventSubject,
    lane_chains,
    subject_keys,
)
from pocare.ledger.records import STAMP_KEY, content_stamps

if TYPE_CHECKING:
    from pocare.accounts.models import User


class HasSiteCode(Protocol):
    code: str


class LedgerError(Exception):
    """A programming error in how the ledger is called (not a user error)."""


def reason_required(reason: Any, field: str = "reason") -> str:
    """The reason a person gives for a GMP-relevant change, stripped; refused when empty, naming
    ``field``. Kept whole: the audit trail records it as given."""
    text = reason.strip() if isinstance(reason, str) else ""
    if not text:
        raise ValidationError({field: "Say why: the reason is recorded in the audit trail."})
    return text


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
    records: Iterable[models.Model] = (),
) -> Event:
    """Append one event to the site's chain (or the network chain) in the caller's transaction.

    ``actor`` is the person acting; for unattended work (the demo loader, a device feed) pass
    ``actor=None`` and name the system in ``system``. ``old``/``new`` hold the changed values.
    Written-once rows among ``obj`` and ``records`` get their content hash into ``new``
    (``ledger.records``), so that `audit verify` finds them edited, signed or not.
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

    base = chain_for(site)
    # Everything that does not depend on the chain's head is prepared before the head is locked:
    # appends to a busy chain wait for one another only while the event is hashed and written.
    actor_username = actor.username if actor is not None else system
    actor_printed_name = (actor.printed_name or actor.username) if actor is not None else f"POCare ({system})"
    request_id = current_request_id()
    stamps = content_stamps([obj, *records])
    if stamps:
        new = {**(new or {}), STAMP_KEY: stamps}
    old_values = canonical.canonical_json(old or {})
    new_values = canonical.canonical_json(new or {})

    conn = connections[DEFAULT_DB_ALIAS]
    subjects = subject_keys(old or {}, new or {})

    def new_event(chain: str, seq: int, prev_hash: str) -> Event:
        event = Event(
            chain=chain,
            seq=seq,
            prev_hash=prev_hash,
            event_type=str(event_type),
            occurred_at=timezone.now(),
            actor=actor,
            actor_username=actor_username,
            actor_printed_name=actor_printed_name,
            object_type=object_type,
            object_id=object_id,
            object_repr=object_repr,
            reason=reason,
            request_id=request_id,
            old_values=old_values,
            new_values=new_values,
        )
        event.hash = canonical.event_hash(event.hashed_fields())
        return event

    key = (str(conn.settings_dict["NAME"]), base)
    state = _guesses.get(conn)
    if state is None:
        state = _guesses[conn] = _Guesses()
    guess = state.heads.get(key)
    if guess is not None and key not in state.contended and _single_statement_append(conn):
        # Nobody else appended to the lane this connection used last: one statement appends if
        # its head is still the one this connection left and nobody is appending to it now, both
        # checked atomically by the database.
        event = new_event(guess[0], guess[1] + 1, guess[2])
        if _append_if_head_is(conn, event):
            state.heads[key] = (event.chain, event.seq, event.hash)
            _index_subjects(event, subjects)
            return event
        state.contended.add(key)
    chain, seq, prev_hash = _lock_lane(conn, base, guess[0] if guess else None)
    if (chain, seq, prev_hash) == guess:
        state.contended.discard(key)  # nobody appended in between: try the single statement again
    event = new_event(chain, seq + 1, prev_hash)
    _append(conn, event)
    state.heads[key] = (event.chain, event.seq, event.hash)
    _index_subjects(event, subjects)
    return event


def _index_subjects(event: Event, keys: set[str]) -> None:
    # In the event's transaction, so the index never lacks a committed event. Most events state
    # no COI or DIN and cost nothing here.
    if keys:
        EventSubject.objects.bulk_create([EventSubject(event=event, key=k) for k in sorted(keys)])


@dataclass
class _Guesses:
    """What one connection knows of the chains it appended to.

    ``heads``: (database, chain) → the lane and head after this connection's last append to the
    chain. Only a guess (another connection may have appended since, or the transaction rolled
    back), which the database checks atomically before the event is inserted. Chains where the
    guess failed are ``contended`` and locked first, until an append finds the head where this
    connection left it again. Kept per connection, not per process, so that the lane a
    transaction already holds is the one its next append to the chain waits for, if it waits.
    """

    heads: dict[tuple[str, str], tuple[str, int, str]] = field(default_factory=dict)
    contended: set[tuple[str, str]] = field(default_factory=set)


_guesses: weakref.WeakKeyDictionary[BaseDatabaseWrapper, _Guesses] = weakref.WeakKeyDictionary()


def lane_count(conn: BaseDatabaseWrapper) -> int:
    """How many lanes a chain may spread over on ``conn``: ``POCARE_LEDGER_LANES`` where the
    database locks rows (PostgreSQL); 1 on SQLite, whose write lock serializes every append."""
    if not conn.features.has_select_for_update:
        return 1
    return max(1, min(MAX_LANES, int(getattr(settings, "POCARE_LEDGER_LANES", 1))))


# The lane this connection used last if it is free, else the first free one (lane 0 first).
_SKIP_LOCKED_SQL = (
    "SELECT chain, seq, hash FROM ledger_chainhead WHERE chain = ANY(%s) "
    "ORDER BY chain <> %s, chain LIMIT 1 FOR UPDATE SKIP LOCKED"
)


def _lock_lane(conn: BaseDatabaseWrapper, base: str, last_lane: str | None) -> tuple[str, int, str]:
    """Lock the head of a lane of chain ``base`` that no other transaction is appending to and
    return (lane, seq, hash): the lane this connection used last when it is free, so that busy
    writers settle on lanes of their own, else the first free one, so that a quiet site writes
    one chain.

    Only when every lane is busy is a new one opened; with all ``POCARE_LEDGER_LANES`` open and
    busy, the append waits for the lane this connection used last. If its transaction appended to
    the chain before, that is a lane it holds already, so a transaction never waits for a lane of
    a chain while holding another lane of it.
    """
    lanes = lane_chains(base, lane_count(conn))
    if len(lanes) > 1:
        with conn.cursor() as cur:
            cur.execute(_SKIP_LOCKED_SQL, [lanes, last_lane or base])
            row = cur.fetchone()
            if row is not None:
                return row[0], row[1], row[2]
            cur.execute("SELECT chain FROM ledger_chainhead WHERE chain = ANY(%s)", [lanes])
            opened = {r[0] for r in cur.fetchall()}
        closed = [lane for lane in lanes if lane not in opened]
        lane = closed[0] if closed else (last_lane if last_lane in lanes else lanes[0])
    else:
        lane = lanes[0]
    seq, hash_ = _lock_head_row(conn, lane)
    return lane, seq, hash_


def _lock_head(chain: str) -> ChainHead:
    """Lock the chain's head row for the rest of the transaction (creating it the first time).

    On PostgreSQL the row lock serializes appends to one chain while other chains proceed; on
    SQLite the IMMEDIATE transaction already holds the database's write lock.
    """
    seq, hash_ = _lock_head_row(connection, chain)
    head = ChainHead(chain=chain, seq=seq, hash=hash_)
    head._state.adding, head._state.db = False, connection.alias
    return head


def _lock_head_row(conn: BaseDatabaseWrapper, chain: str) -> tuple[int, str]:
    """``_lock_head`` as a plain (seq, hash), without building a model instance."""
    sql = "SELECT seq, hash FROM ledger_chainhead WHERE chain = %s"
    if conn.features.has_select_for_update:
        sql += " FOR UPDATE"
    with conn.cursor() as cur:
        cur.execute(sql, [chain])
        row = cur.fetchone()
    if row is None:
        ChainHead.objects.bulk_create(
            [ChainHead(chain=chain, seq=0, hash=canonical.GENESIS_HASH)], ignore_conflicts=True
        )
        head = ChainHead.objects.select_for_update().get(chain=chain)
        return head.seq, head.hash
    return row[0], row[1]


# The event's columns. For each kind of field: the Python type whose values go to the database
# unchanged (as Field.get_db_prep_save would return them; any other value goes through the
# field), and the cast the single-statement append needs. A new kind of field fails here.
_FIELD_KINDS: dict[str, tuple[type | None, str]] = {
    "CharField": (str, ""),
    "TextField": (str, ""),
    "PositiveBigIntegerField": (int, "::bigint"),
    "ForeignKey": (int, "::bigint"),
    "DateTimeField": (None, "::timestamptz"),
}
_EVENT_FIELDS = [f for f in Event._meta.concrete_fields if not f.primary_key]
_FIELD_ROWS = [(f, f.attname, _FIELD_KINDS[f.get_internal_type()][0]) for f in _EVENT_FIELDS]
_INSERT_SQL = (
    f"INSERT INTO ledger_event ({', '.join(str(f.column) for f in _EVENT_FIELDS)}) "  # noqa: S608
    f"VALUES ({', '.join(['%s'] * len(_EVENT_FIELDS))})"
)
_ADVANCE_SQL = "UPDATE ledger_chainhead SET seq = %s, hash = %s WHERE chain = %s"
# One round trip on PostgreSQL: insert the event and advance the (locked) head together.
_PG_APPEND_SQL = (
    f"WITH new_event AS ({_INSERT_SQL} RETURNING id) "  # noqa: S608
    f"{_ADVANCE_SQL} RETURNING (SELECT id FROM new_event)"
)
# The same, but only if the head is still (seq, hash) and no other transaction holds it: the
# sub-select locks the head row, skipping it when it is locked, and, as in READ COMMITTED it
# re-checks its condition on the latest committed version, a concurrent append makes it (and so
# the UPDATE and the INSERT, which selects from it) do nothing. Numbers and times are cast, as
# SELECT (unlike VALUES) would read a NULL as text; text stays untyped, so that a too long value
# is refused by its column as in a plain INSERT (an explicit cast would truncate it).
_PG_APPEND_IF_HEAD_SQL = (
    "WITH head AS (UPDATE ledger_chainhead SET seq = %s, hash = %s WHERE chain = ("  # noqa: S608
    "SELECT chain FROM ledger_chainhead WHERE chain = %s AND seq = %s AND hash = %s "
    "FOR UPDATE SKIP LOCKED) RETURNING chain), "
    f"new_event AS (INSERT INTO ledger_event ({', '.join(str(f.column) for f in _EVENT_FIELDS)}) "
    f"SELECT {', '.join('%s' + _FIELD_KINDS[f.get_internal_type()][1] for f in _EVENT_FIELDS)} "
    "FROM head RETURNING id) SELECT id FROM new_event"
)


def _db_values(conn: BaseDatabaseWrapper, event: Event) -> list[Any]:
    """The event's column values as ``save()`` would send them (Field.get_db_prep_save)."""
    values = []
    for f, attname, pass_through in _FIELD_ROWS:
        value = getattr(event, attname)
        values.append(value if type(value) is pass_through else f.get_db_prep_save(value, conn))
    return values


def _append(conn: BaseDatabaseWrapper, event: Event) -> None:
    """Insert ``event`` and advance its chain's head, as ``event.save()`` followed by
    ``ChainHead.objects.filter(chain=...).update(seq=..., hash=...)`` would, in fewer statements
    (PostgreSQL: one; SQLite: two, in-process)."""
    vendor = conn.vendor
    if vendor not in ("postgresql", "sqlite"):
        event.save()
        ChainHead.objects.filter(chain=event.chain).update(seq=event.seq, hash=event.hash)
        return
    event._prepare_related_fields_for_save(operation_name="save")  # type: ignore[attr-defined] # as save() does
    if pre_save.has_listeners(Event):
        pre_save.send(sender=Event, instance=event, raw=False, using=conn.alias, update_fields=None)
    values = _db_values(conn, event)
    with conn.cursor() as cur:
        if vendor == "postgresql":
            cur.execute(_PG_APPEND_SQL, [*values, event.seq, event.hash, event.chain])
            row = cur.fetchone()
            if row is None:
                raise LedgerError(f"the head of chain {event.chain} vanished while locked")
            event.pk = row[0]
        else:
            cur.execute(_INSERT_SQL, values)
            event.pk = cur.lastrowid
            cur.execute(_ADVANCE_SQL, [event.seq, event.hash, event.chain])
    event._state.adding, event._state.db = False, conn.alias
    if post_save.has_listeners(Event):
        post_save.send(sender=Event, instance=event, created=True, update_fields=None, raw=False,
                       using=conn.alias)


def _single_statement_append(conn: BaseDatabaseWrapper) -> bool:
    # PostgreSQL only (a round trip saved); without model signals to send (the plain path sends them).
    return conn.vendor == "postgresql" and not (pre_save.has_listeners(Event) or post_save.has_listeners(Event))


def _append_if_head_is(conn: BaseDatabaseWrapper, event: Event) -> bool:
    """PostgreSQL: append ``event`` in one statement if its chain's head is still the event it
    links to (``seq - 1``, ``prev_hash``) and no other transaction is appending to it, locking the
    head as ``_lock_head`` would; else change nothing (and wait for nobody) and return False."""
    event._prepare_related_fields_for_save(operation_name="save")  # type: ignore[attr-defined]
    with conn.cursor() as cur:
        cur.execute(_PG_APPEND_IF_HEAD_SQL, [
            event.seq, event.hash, event.chain, event.seq - 1, event.prev_hash, *_db_values(conn, event),
        ])
        row = cur.fetchone()
    if row is None:
        return False
    event.pk = row[0]
    event._state.adding, event._state.db = False, conn.alias
    return True


def record_changes(instance: models.Model, fields: list[str]) -> dict[str, Any]:
    """The current values of ``fields`` on ``instance``, for old/new values of an event."""
    return {name: getattr(instance, name) for name in fields}
