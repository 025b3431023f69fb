"""Content stamps: the records that no signature covers are still bound to the trail.

A signed record is checked by its signature (the SHA-256 of its content at signing). Many GMP
rows carry none — the demo history's QC results, step values and material use were loaded, not
signed — and someone with database access could edit them unseen. So every row of a
written-once model (:class:`ContentStamped`) gets its content hash into the ledger event that
records it: ``event_record(obj=row)`` or ``event_record(records=[rows…])`` add
``"content_sha256": {"manufacturing.QcResult:17": "<sha256>", …}`` to the event's new values,
inside the hash chain. ``pocare audit verify`` recomputes the hash of each stamped row as it is
now and reports a row whose content changed or that is gone (:func:`stamped_record_problems`).

Only written-once rows are stamped: their content never changes legitimately, so the hash in the
event that created them holds for ever. A row a service later changes would need a new stamp in
every event that changes it; those records are covered by their signatures and their events'
old and new values instead.
"""

from __future__ import annotations

import decimal
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from django.apps import apps
from django.db import connection, models

from pocare.ledger.canonical import content_hash

STAMP_KEY = "content_sha256"


class ContentStamped:
    """Mixin for a model whose rows are written once and never changed: the ledger event that
    records a row carries the hash of :meth:`audited_content`, and verify recomputes it."""

    #: Fields left out of the content (none so far: every column of a written-once row counts).
    content_exclude: ClassVar[tuple[str, ...]] = ()
    #: Columns added after rows were written (each with an empty default): counted only when they
    #: hold something other than their default, so that every row stamped before the column
    #: existed keeps the hash its event recorded, and a row that uses the column is bound by it.
    content_when_set: ClassVar[tuple[str, ...]] = ()

    def audited_content(self) -> dict[str, Any]:
        """Every column but the primary key, each as the database gives it back (so that the hash
        of the row written and of the row read later agree); a column of ``content_when_set`` only
        when it holds more than its default."""
        content = {attname: convert(getattr(self, attname)) for attname, convert in _columns(type(self))}
        for attname in self.content_when_set:
            if content.get(attname) in ("", None):
                content.pop(attname, None)
        return content


_COLUMNS: dict[type, list[tuple[str, Callable[[Any], Any]]]] = {}


def _columns(model: type) -> list[tuple[str, Callable[[Any], Any]]]:
    """(attname, how its value reads back) per audited column of ``model``, worked out once: a
    stamp is made on every append that records such a row, so it should cost microseconds."""
    columns = _COLUMNS.get(model)
    if columns is None:
        meta = model._meta  # type: ignore[attr-defined]
        columns = _COLUMNS[model] = [(f.attname, _as_stored(f)) for f in meta.concrete_fields
                                     if not f.primary_key and f.attname not in model.content_exclude]  # type: ignore[attr-defined]
    return columns


def _same(value: Any) -> Any:
    return value


def _as_stored(field: models.Field[Any, Any]) -> Callable[[Any], Any]:
    """How a value of ``field`` reads back from its column: a decimal to its places, text as text."""
    if isinstance(field, models.DecimalField):
        places = decimal.Decimal(1).scaleb(-(field.decimal_places or 0))
        return lambda v: None if v is None else str(decimal.Decimal(str(v)).quantize(places))
    if isinstance(field, models.CharField | models.TextField):
        return lambda v: None if v is None else str(v)
    if isinstance(field, models.FloatField):
        return lambda v: None if v is None else float(v)
    if isinstance(field, models.BooleanField):
        return lambda v: None if v is None else bool(v)
    return _same


def record_key(record: models.Model) -> str:
    return f"{record._meta.label}:{record.pk}"


def content_stamps(records: Iterable[models.Model | None]) -> dict[str, str]:
    """``label:pk`` → the content hash of each written-once row among ``records`` (others skipped)."""
    stamps: dict[str, str] = {}
    for record in records:
        if isinstance(record, ContentStamped) and isinstance(record, models.Model) and record.pk is not None:
            stamps[record_key(record)] = content_hash(record.audited_content())
    return stamps


@dataclass
class RecordProblem:
    record: str  # "manufacturing.QcResult 17"
    event: str  # the event that stamped it, "MAD#345"
    problem: str


_STAMPED_SQL = "SELECT id, chain, seq, new_values FROM ledger_event WHERE new_values LIKE %s"


def stamped_record_problems(chains: list[str] | None = None) -> tuple[int, list[RecordProblem]]:
    """Recompute the content hash of every stamped row (the latest stamp of each counts) and
    return how many were checked and the rows that changed or are gone."""
    sql, params = _STAMPED_SQL, [f'%"{STAMP_KEY}":{{%']
    if chains:
        sql += f" AND chain IN ({', '.join(['%s'] * len(chains))})"
        params += chains
    latest: dict[str, tuple[str, str]] = {}  # key -> (hash, event label)
    with connection.cursor() as cur:
        cur.execute(sql + " ORDER BY id", params)
        for _id, chain, seq, new_values in cur.fetchall():
            stamps = json.loads(new_values).get(STAMP_KEY)
            if isinstance(stamps, dict):
                for key, hash_ in stamps.items():
                    latest[key] = (str(hash_), f"{chain}#{seq}")
    by_model: dict[str, list[str]] = {}
    for key in latest:
        label, _, pk = key.rpartition(":")
        by_model.setdefault(label, []).append(pk)
    problems = []
    for label, pks in sorted(by_model.items()):
        try:
            model = apps.get_model(label)
        except (LookupError, ValueError):
            problems += [RecordProblem(f"{label} {pk}", latest[f"{label}:{pk}"][1], "unknown record type")
                         for pk in pks]
            continue
        rows: dict[str, models.Model] = {}
        for i in range(0, len(pks), 2000):
            rows.update({str(pk): row for pk, row in model._default_manager.in_bulk(pks[i:i + 2000]).items()})
        for pk in sorted(pks, key=lambda p: (len(p), p)):
            stamped, event = latest[f"{label}:{pk}"]
            row = rows.get(pk)
            if row is None:
                problems.append(RecordProblem(f"{label} {pk}", event, "the row is gone: deleted outside POCare"))
            elif content_hash(row.audited_content()) != stamped:  # type: ignore[attr-defined]
                problems.append(RecordProblem(f"{label} {pk}", event, (
                    "its content no longer hashes as the event recorded it: edited outside POCare")))
    return len(latest), problems
