"""Canonical content and hashing of ledger events and signed records.

Pure Python, no Django import: the same functions run in `pocare audit verify`, in the
inspector's offline verification script, and in the benchmarks. Only the standard library's
``json`` and ``hashlib`` are used, so anyone can recompute a hash from an export.

An event's hash is SHA-256 over the UTF-8 bytes of a compact JSON array of its fields, in a
fixed order, with the previous event's hash as one of them::

    ["pocare-ledger/1", chain, seq, prev_hash, event_type, occurred_at, actor_id,
     actor_username, actor_printed_name, object_type, object_id, object_repr, reason,
     request_id, old_values, new_values]

``occurred_at`` is ISO 8601 in UTC with microseconds and a ``Z``; ``old_values`` and
``new_values`` are themselves canonical JSON text (sorted keys, no spaces), stored as text so
that verifying never has to re-serialize them.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

FORMAT = "pocare-ledger/1"
GENESIS_HASH = "0" * 64

# Field order of the hashed array (after the FORMAT marker). Verifiers rely on it.
EVENT_FIELDS: tuple[str, ...] = (
    "chain",
    "seq",
    "prev_hash",
    "event_type",
    "occurred_at",
    "actor_id",
    "actor_username",
    "actor_printed_name",
    "object_type",
    "object_id",
    "object_repr",
    "reason",
    "request_id",
    "old_values",
    "new_values",
)

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode


def _plain(value: Any) -> Any:
    """Reduce a value to JSON's types, deterministically; refuse what has no canonical form."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("NaN and infinity have no canonical form")
        return value
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not allowed in the ledger; use UTC-aware ones")
        return format_timestamp(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((_plain(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    raise TypeError(f"{type(value).__name__} has no canonical form for the ledger")


def canonical_json(value: Any) -> str:
    """Canonical JSON text of ``value``: sorted keys, no whitespace, UTF-8 characters kept."""
    return _encode(_plain(value))


def format_timestamp(value: dt.datetime) -> str:
    """ISO 8601 in UTC with microseconds and a trailing Z (the canonical time format)."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def normalize_stored_timestamp(value: dt.datetime | str) -> str:
    """The canonical timestamp of a value read back from a database column.

    PostgreSQL returns aware datetimes; Django stores them in SQLite as naive UTC text
    ("2026-11-23 05:05:40.123456", without the fraction when it is zero).
    """
    if isinstance(value, dt.datetime):
        return format_timestamp(value if value.tzinfo else value.replace(tzinfo=dt.UTC))
    if len(value) == 26:
        return f"{value[:10]}T{value[11:]}Z"
    if len(value) == 19:
        return f"{value[:10]}T{value[11:]}.000000Z"
    return format_timestamp(dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC))


def event_hash(fields: Iterable[Any]) -> str:
    """SHA-256 (hex) of an event, given its fields in ``EVENT_FIELDS`` order."""
    payload = json.dumps([FORMAT, *fields], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def content_hash(content: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of a record's canonical content; what an electronic signature binds to."""
    return hashlib.sha256(canonical_json(content).encode("utf-8")).hexdigest()
