"""Verification of the audit trail's hash chains and of electronic signatures.

Reads the event table with plain SQL in chain order (no ORM objects: a million events must
verify in a few seconds) and recomputes each hash from the stored fields. The first event
whose content, position or link does not match is reported by its label (``BCN#57``).

Speed: the database returns ``occurred_at`` already in its canonical text form (a rearranged
string instead of a parsed and re-formatted datetime; any value not in the expected form falls
back to the Python path), on SQLite the database also builds each event's hashed JSON array
(``json_array``; checked against Python, see ``_scan_sqlite``), each chain is read in segments
of consecutive sequence numbers, and a large verification run from a single-threaded process
(`pocare audit verify`) checks the segments in parallel worker processes. Every check needs only
an event and the one before it, so a segment is checked on its own and the segments are then
stitched together in order: the first event of each segment is checked against the last of the
previous one exactly as the single-pass walk would, and the first problem in chain order is the
one reported.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import multiprocessing
import multiprocessing.util
import os
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import connection, connections, transaction

from pocare.ledger.canonical import FORMAT, GENESIS_HASH, content_hash, normalize_stored_timestamp
from pocare.ledger.models import AuditReview, ChainHead, Event, Signature, lane_chain, lane_number, site_chain
from pocare.ledger.records import RecordProblem, stamped_record_problems

# The hashed fields in EVENT_FIELDS order, then the stored hash and the row id.
_COLUMNS = (
    "chain, seq, prev_hash, event_type, {occurred_at}, actor_id, actor_username, actor_printed_name, "
    "object_type, object_id, object_repr, reason, request_id, old_values, new_values, hash, id"
)
# ``occurred_at`` as canonical text (ISO 8601, UTC, microseconds, Z), computed by the database
# where that is exact; NULL otherwise, and then the Python path (normalize_stored_timestamp of
# the value as Django reads it) is taken for that row.
_OCCURRED_AT_SQL = {
    # Years 1000-9999 only: Python prints other years with a different number of digits.
    "postgresql": (
        "CASE WHEN occurred_at BETWEEN '1000-01-01 00:00:00+00' AND '9999-12-31 23:59:59.999999+00' "
        """THEN to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') END"""
    ),
    # Django stores naive UTC text, "YYYY-MM-DD HH:MM:SS.ffffff", without the fraction when it is 0.
    "sqlite": (
        "CASE WHEN occurred_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] "
        "[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]' "
        "THEN substr(occurred_at, 1, 10) || 'T' || substr(occurred_at, 12) || 'Z' "
        "WHEN occurred_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9]' "
        "THEN substr(occurred_at, 1, 10) || 'T' || substr(occurred_at, 12) || '.000000Z' END"
    ),
}
_BATCH = 5000
# A chain is read (and, in parallel runs, handed to a worker) in segments of this many events.
_SEGMENT = 50_000
# Below this many events (by the chain heads) a parallel run would not pay for its start-up.
PARALLEL_MIN_EVENTS = 150_000


def _json_encoder() -> Callable[[Any], str]:
    """``json.dumps(value, ensure_ascii=False, separators=(",", ":"))``, as canonical.event_hash
    computes it, without building a new encoder for every event."""
    base = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # no C accelerator: the standard, slower path (same output)
        return base.encode
    # The arguments json.JSONEncoder.iterencode passes, minus the circular-reference check.
    encode = make(None, base.default, json.encoder.encode_basestring, None, ":", ",", False, False, True)
    join = "".join
    return lambda value: join(encode(value, 0))


def _canonical_bytes() -> tuple[Callable[[Any], bytes], Callable[[Any], bytes]]:
    """(fast, exact) encoders of an event's hashed array as the bytes canonical.event_hash hashes.

    ``exact`` is canonical.event_hash's own encoding (``json``, compact, not ASCII-escaped, UTF-8).
    ``fast`` is orjson, which writes the same bytes for the strings, integers and nulls of an
    event (same separators and the same escapes: a quote, a backslash, the short forms for
    backspace, tab, newline, form feed and carriage return, six-character escapes for the other
    control characters, everything else as UTF-8; checked by the tests), in about a third of the
    time. The scan tries ``fast`` first and, where it does not give the stored hash, ``exact``
    before it calls an event edited: the verdict is always the exact encoding's, and orjson only
    makes the intact case cheaper.
    """
    dumps = _json_encoder()

    def exact(value: Any) -> bytes:
        return dumps(value).encode("utf-8")

    def fast(value: Any) -> bytes:
        try:
            return orjson.dumps(value)
        except TypeError:  # e.g. an integer beyond 64 bits: the exact encoding decides
            return b""

    return fast, exact


def with_their_lanes(chains: list[str]) -> list[str]:
    """The chains named, each site's (or the network's) with every lane it has in the database:
    ``["MAD"]`` → ``["MAD", "MAD/1", "MAD/2"]``. A lane named on its own stays alone."""
    sites = {c for c in chains if c == site_chain(c)}
    lanes = [c for c in chains_in_database() if c != site_chain(c) and site_chain(c) in sites]
    return sorted(set(chains) | set(lanes))


@dataclass
class ChainReport:
    chain: str
    events: int = 0
    problem: str = ""
    broken_event: str = ""  # label of the first broken event, e.g. "BCN#57"
    broken_event_id: int | None = None

    @property
    def ok(self) -> bool:
        return not self.problem


@dataclass
class SignatureProblem:
    signature_id: int
    record: str
    problem: str


@dataclass
class VerifyReport:
    chains: list[ChainReport] = field(default_factory=list)
    signatures_checked: int = 0
    signature_problems: list[SignatureProblem] = field(default_factory=list)
    records_checked: int = 0  # written-once rows whose content hash an event recorded
    record_problems: list[RecordProblem] = field(default_factory=list)

    @property
    def events(self) -> int:
        return sum(c.events for c in self.chains)

    @property
    def chains_ok(self) -> bool:
        return all(c.ok for c in self.chains)

    @property
    def ok(self) -> bool:
        return self.chains_ok and not self.signature_problems and not self.record_problems


def chains_in_database() -> list[str]:
    # DISTINCT chain, found by hopping along the (chain, seq) index from one chain to the next
    # instead of reading every event.
    with connection.cursor() as cur:
        cur.execute(
            "WITH RECURSIVE c(chain) AS (SELECT min(chain) FROM ledger_event UNION ALL "
            "SELECT (SELECT min(chain) FROM ledger_event WHERE chain > c.chain) FROM c WHERE c.chain IS NOT NULL) "
            "SELECT chain FROM c WHERE chain IS NOT NULL UNION SELECT chain FROM ledger_chainhead"
        )
        return sorted(row[0] for row in cur.fetchall())


@dataclass
class _Segment:
    """What a scan of one segment of a chain found (small, so workers can send it back)."""

    first: tuple[int, str, int, bool] | None = None  # seq, prev_hash, id, content matches hash
    events_after_first: int = 0  # events after the first that passed every check
    problem: tuple[int, int, str] | None = None  # seq, id, what is wrong: the first break after the first
    last_seq: int = 0
    last_hash: str = ""


def _segment_sql(vendor: str, lo: int | None, hi: int | None) -> str:
    columns = _COLUMNS.format(occurred_at=_OCCURRED_AT_SQL.get(vendor, "NULL"))
    where = "chain = %s" + (" AND seq > %s" if lo is not None else "") + (" AND seq <= %s" if hi is not None else "")
    return f"SELECT {columns} FROM ledger_event WHERE {where} ORDER BY seq"  # noqa: S608


def _stored_timestamp(event_id: int) -> str:
    """The Python path for a timestamp the database did not put in canonical form itself."""
    with connection.cursor() as cur:
        cur.execute("SELECT occurred_at FROM ledger_event WHERE id = %s", [event_id])
        return normalize_stored_timestamp(cur.fetchone()[0])


def _scan(chain: str, lo: int | None, hi: int | None) -> _Segment:
    """Check the events of ``chain`` with ``lo < seq <= hi`` (bounds optional) among themselves.

    The first event's position and link can only be judged against the previous segment, so
    for it only the content is checked here; every later event gets all three checks, in the
    same order as in a single walk of the chain: position, link, content.
    """
    if connection.vendor == "sqlite" and _sqlite_json_matches_python():
        # A value JSON cannot hold (a BLOB) makes SQLite refuse: then the Python path below.
        with contextlib.suppress(sqlite3.Error):
            return _scan_sqlite(chain, lo, hi)
    seg = _Segment()
    fast, exact = _canonical_bytes()
    sha256 = hashlib.sha256
    fmt = FORMAT
    # On PostgreSQL a server-side cursor streams the rows; inside a transaction it need not be
    # WITH HOLD (which would copy the whole result first). SQLite cursors stream anyway, and an
    # (IMMEDIATE) transaction there would take the write lock: none.
    with transaction.atomic() if connection.vendor == "postgresql" else contextlib.nullcontext():
        cursor = connection.chunked_cursor()
        try:
            cursor.execute(_segment_sql(connection.vendor, lo, hi),
                           [chain, *(b for b in (lo, hi) if b is not None)])
            rows = cursor.fetchmany(_BATCH)
            if not rows:
                return seg
            (chain_, seq, prev_hash, etype, occurred, actor_id, username, printed, otype, oid,
             orepr, reason, rid, old, new, stored_hash, id_) = rows[0]
            if occurred is None:
                occurred = _stored_timestamp(id_)
            hashed = (fmt, chain_, seq, prev_hash, etype, occurred, actor_id, username, printed,
                      otype, oid, orepr, reason, rid, old, new)
            content_ok = (sha256(fast(hashed)).hexdigest() == stored_hash
                          or sha256(exact(hashed)).hexdigest() == stored_hash)
            seg.first = (seq, prev_hash, id_, content_ok)
            if not content_ok:
                return seg
            expected_seq, prev, checked = seq + 1, stored_hash, 0
            rows = rows[1:]
            while rows:
                for row in rows:
                    (chain_, seq, prev_hash, etype, occurred, actor_id, username, printed, otype, oid,
                     orepr, reason, rid, old, new, stored_hash, id_) = row
                    if occurred is None:
                        occurred = _stored_timestamp(id_)
                    hashed = (fmt, chain_, seq, prev_hash, etype, occurred, actor_id, username, printed,
                              otype, oid, orepr, reason, rid, old, new)
                    if (
                        seq == expected_seq
                        and prev_hash == prev
                        and (sha256(fast(hashed)).hexdigest() == stored_hash
                             or sha256(exact(hashed)).hexdigest() == stored_hash)
                    ):
                        expected_seq, prev, checked = seq + 1, stored_hash, checked + 1
                        continue
                    # Position and link are checked first: if they hold, the content did not.
                    seg.problem = (seq, id_, _problem(chain, seq, expected_seq, prev_hash, prev, False))
                    break
                if seg.problem:
                    break
                rows = cursor.fetchmany(_BATCH)
        finally:
            cursor.close()
    seg.events_after_first, seg.last_seq, seg.last_hash = checked, expected_seq - 1, prev
    return seg


# SQLite: the database builds each event's hashed JSON array itself (json_array, in C), so that
# Python only hashes bytes and compares. For what it builds to hash to the stored hash it must be
# byte for byte the array canonical.event_hash hashed: JSON text decodes to one value only, and
# the array of strings, integers and nulls that was hashed has one encoding, so a match means the
# stored fields are exactly the hashed ones. Anything that does not match (an edit, a timestamp
# the SQL did not put in canonical form, a SQLite whose JSON escaping differs) is recomputed on
# the Python path before it is called edited, so this path can only ever be faster, never
# different in what it reports.
_SQLITE_SEGMENT_SQL = (
    "SELECT seq, prev_hash, hash, id, CAST(json_array(?, chain, seq, prev_hash, event_type, {occurred_at}, "
    "actor_id, actor_username, actor_printed_name, object_type, object_id, object_repr, reason, request_id, "
    "old_values, new_values) AS BLOB) FROM ledger_event WHERE {where} ORDER BY seq"
)
_SQLITE_JSON_PROBE = [
    "plain", "", 'quote " backslash \\ slash /', "".join(chr(c) for c in range(32)) + "\x7f",
    "é ñ € \u2028 \u2029 \ufeff 😀", '{"a":"b","c":[1,2]}', 0, 9_223_372_036_854_775_807, -1, None,
]
_sqlite_json_ok: bool | None = None


def _sqlite_json_matches_python() -> bool:
    """Whether this SQLite's json_array writes what Python's canonical JSON writes (probed once)."""
    global _sqlite_json_ok
    if _sqlite_json_ok is None:
        try:
            probe = sqlite3.connect(":memory:")
            try:
                marks = ", ".join("?" * len(_SQLITE_JSON_PROBE))
                (got,) = probe.execute(f"SELECT CAST(json_array({marks}) AS BLOB)", _SQLITE_JSON_PROBE).fetchone()
            finally:
                probe.close()
            _sqlite_json_ok = got == _json_encoder()(_SQLITE_JSON_PROBE).encode("utf-8")
        except sqlite3.Error:  # no JSON functions in this SQLite
            _sqlite_json_ok = False
    return _sqlite_json_ok


def _python_content_ok(event_id: int) -> bool:
    """The content check of one event on the Python path (as the PostgreSQL scan does it)."""
    with connection.cursor() as cur:
        columns = _COLUMNS.format(occurred_at=_OCCURRED_AT_SQL.get(connection.vendor, "NULL"))
        cur.execute(f"SELECT {columns} FROM ledger_event WHERE id = %s", [event_id])  # noqa: S608
        row = cur.fetchone()
    (chain_, seq, prev_hash, etype, occurred, actor_id, username, printed, otype, oid,
     orepr, reason, rid, old, new, stored_hash, id_) = row
    if occurred is None:
        occurred = _stored_timestamp(id_)
    return bool(hashlib.sha256(_json_encoder()([
        FORMAT, chain_, seq, prev_hash, etype, occurred, actor_id, username, printed,
        otype, oid, orepr, reason, rid, old, new,
    ]).encode("utf-8")).hexdigest() == stored_hash)


def _scan_sqlite(chain: str, lo: int | None, hi: int | None) -> _Segment:
    """``_scan`` on SQLite, reading through the driver's own cursor (no Django wrapper per row)."""
    seg = _Segment()
    sha256 = hashlib.sha256
    where = "chain = ?" + (" AND seq > ?" if lo is not None else "") + (" AND seq <= ?" if hi is not None else "")
    connection.ensure_connection()
    cursor = connection.connection.cursor()
    try:
        cursor.execute(_SQLITE_SEGMENT_SQL.format(occurred_at=_OCCURRED_AT_SQL["sqlite"], where=where),
                       [FORMAT, chain, *(b for b in (lo, hi) if b is not None)])
        rows = iter(cursor)
        first = next(rows, None)
        if first is None:
            return seg
        seq, prev_hash, stored_hash, id_, payload = first
        content_ok = sha256(payload).hexdigest() == stored_hash or _python_content_ok(id_)
        seg.first = (seq, prev_hash, id_, content_ok)
        if not content_ok:
            return seg
        expected_seq, prev, checked = seq + 1, stored_hash, 0
        for seq, prev_hash, stored_hash, id_, payload in rows:
            if seq == expected_seq and prev_hash == prev and (
                sha256(payload).hexdigest() == stored_hash or _python_content_ok(id_)
            ):
                expected_seq, prev, checked = seq + 1, stored_hash, checked + 1
                continue
            # Position and link are checked first: if they hold, the content did not.
            seg.problem = (seq, id_, _problem(chain, seq, expected_seq, prev_hash, prev, False))
            break
    finally:
        cursor.close()
    seg.events_after_first, seg.last_seq, seg.last_hash = checked, expected_seq - 1, prev
    return seg


def _problem(chain: str, seq: int, expected_seq: int, prev_hash: str, prev: str, content_ok: bool) -> str:
    """What is wrong with an event at ``seq`` where ``expected_seq`` and a link to ``prev`` were
    due; empty if nothing. Checked in this order: position, link, content."""
    if seq != expected_seq:
        if seq > expected_seq:
            return f"events {chain}#{expected_seq}–{seq - 1} are missing (deleted)"
        return "sequence number repeats or goes backwards (inserted or reordered)"
    if prev_hash != prev:
        return "does not link to the event before it (inserted, deleted or reordered)"
    if not content_ok:
        return "content does not match its hash (edited)"
    return ""


def _segments(estimated_events: int) -> list[tuple[int | None, int | None]]:
    """Sequence ranges ``(lo, hi]`` covering a chain; the first and last are open-ended, so every
    row is read whatever the estimate (the chain head) says."""
    n = max(1, math.ceil(estimated_events / _SEGMENT))
    bounds = [i * _SEGMENT for i in range(1, n)]
    return list(zip([None, *bounds], [*bounds, None], strict=True))


class _ChainWalk:
    """Stitches the segments of one chain, in order, into the result of a single walk."""

    def __init__(self, chain: str, progress: Callable[[int], None] | None) -> None:
        self.report = ChainReport(chain=chain)
        self.expected_seq, self.prev = 1, GENESIS_HASH
        self.done = False
        self.progress = progress

    def add(self, seg: _Segment) -> None:
        if self.done or seg.first is None:
            return
        report, chain = self.report, self.report.chain
        seq, prev_hash, id_, content_ok = seg.first
        problem = _problem(chain, seq, self.expected_seq, prev_hash, self.prev, content_ok)
        if problem:
            self._broken(seq, id_, problem)
            return
        before = report.events
        report.events += 1 + seg.events_after_first
        if seg.problem:
            self._broken(*seg.problem)
            return
        self.expected_seq, self.prev = seg.last_seq + 1, seg.last_hash
        if self.progress is not None and report.events // 100_000 > before // 100_000:
            self.progress(report.events - report.events % 100_000)

    def _broken(self, seq: int, id_: int, problem: str) -> None:
        self.report.problem = problem
        self.report.broken_event = f"{self.report.chain}#{seq}"
        self.report.broken_event_id = id_
        self.done = True

    def finish(self) -> ChainReport:
        """Compare the chain's end with its head row (so that deleted last events are found)."""
        report, chain = self.report, self.report.chain
        if self.done:
            return report
        head = ChainHead.objects.filter(chain=chain).first()
        last_seq, last_hash = self.expected_seq - 1, self.prev
        if head is not None and (head.seq != last_seq or head.hash != last_hash):
            if head.seq > last_seq:
                report.problem = (f"the chain ends at #{last_seq} but its head records #{head.seq}: "
                                  "the last events were deleted")
                report.broken_event = f"{chain}#{last_seq + 1}"
            else:
                report.problem = f"events after the recorded head #{head.seq} were added outside the ledger"
                report.broken_event = f"{chain}#{head.seq + 1}"
        return report


def _head_seqs(chains: list[str]) -> dict[str, int]:
    """The chains' lengths as their heads record them: an estimate, used only to plan segments."""
    return dict(ChainHead.objects.filter(chain__in=chains).values_list("chain", "seq"))


def verify_chain(chain: str, *, progress: Callable[[int], None] | None = None) -> ChainReport:
    """Walk one chain from its first event; stop at the first break and say what broke."""
    walk = _ChainWalk(chain, progress)
    for lo, hi in _segments(_head_seqs([chain]).get(chain, 0)):
        walk.add(_scan(chain, lo, hi))
        if walk.done:
            break
    return walk.finish()


def _parallel_workers(estimated_events: int) -> int:
    """How many processes to verify with: more than one only for a large trail, from a
    single-threaded process outside any transaction (the management command), where forking is
    safe and the workers see the same committed data."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    if (
        cpus < 2
        or estimated_events < PARALLEL_MIN_EVENTS
        or "fork" not in multiprocessing.get_all_start_methods()
        or sys.platform == "darwin"
        or threading.active_count() != 1
        or multiprocessing.current_process().daemon  # daemonic processes may not have children
        or any(c.in_atomic_block for c in connections.all(initialized_only=True))
        or connection.vendor not in _OCCURRED_AT_SQL
        or (connection.vendor == "sqlite" and getattr(connection, "is_in_memory_db", lambda: True)())
    ):
        return 1
    return min(cpus, max(1, estimated_events // _SEGMENT))


def _worker_init() -> None:
    # The parent closed its connections before forking: each worker opens its own, and closes
    # it when the pool shuts down.
    multiprocessing.util.Finalize(None, connections.close_all, exitpriority=10)


def _scan_task(task: tuple[str, int | None, int | None]) -> _Segment:
    return _scan(*task)


def _chain_progress(progress: Callable[[str, int], None] | None, chain: str) -> Callable[[int], None] | None:
    if progress is None:
        return None
    return lambda n: progress(chain, n)


def _verify_chains(chains: list[str], progress: Callable[[str, int], None] | None) -> list[ChainReport]:
    heads = _head_seqs(chains)
    walks = [_ChainWalk(c, _chain_progress(progress, c)) for c in chains]
    # (index of the walk, segment) in chain order, then sequence order
    tasks = [(i, (c, lo, hi)) for i, c in enumerate(chains) for lo, hi in _segments(heads.get(c, 0))]
    workers = _parallel_workers(sum(heads.get(c, 0) for c in chains))
    if workers == 1:
        for i, task in tasks:
            if not walks[i].done:
                walks[i].add(_scan(*task))
    else:
        connections.close_all()  # never share a connection with a forked child
        pool = multiprocessing.get_context("fork").Pool(workers, initializer=_worker_init)
        try:
            for (i, _), seg in zip(tasks, pool.imap(_scan_task, [t for _, t in tasks]), strict=True):
                walks[i].add(seg)
            pool.close()
            pool.join()
        finally:
            pool.terminate()
    return [walk.finish() for walk in walks]


def _lanes_and_reviews(reports: list[ChainReport], sites: set[str] | None) -> list[ChainReport]:
    """What walking each chain cannot see: a lane lost whole, and history a signed review read
    that is no longer there.

    Lanes open in order, so lanes ``MAD/1`` … ``MAD/n-1`` exist wherever ``MAD/n`` does; and every
    signed review states, for every lane of its chain, the last position it read and that
    event's hash. A lane missing below another, or named by a review but gone (events and head
    deleted together), is reported as a broken chain of its own; a lane whose event at a reviewed
    position is missing or hashes differently (the chain rewritten and re-hashed from there on)
    is reported broken at that position. Returns the reports of lanes not in ``reports``;
    ``reports`` is updated in place. ``sites``: only these sites' chains (None: all).
    """
    by_chain = {r.chain: r for r in reports}
    anchors: dict[str, dict[int, tuple[int, str]]] = {}  # lane -> position -> (review id, hash)
    reviews = AuditReview.objects.order_by("pk")
    if sites is not None:
        reviews = reviews.filter(chain__in=sites)
    for review in reviews:
        for lane, (_from, to, to_hash) in review.ranges.items():
            if to >= 1 and to_hash:
                anchors.setdefault(lane, {})[to] = (review.pk, to_hash)
    expected = set(anchors)
    for chain in by_chain:
        expected |= {lane_chain(site_chain(chain), i) for i in range(lane_number(chain))}
    gone = []
    for lane in sorted(expected - set(by_chain)):
        named = f"signed review {min(anchors[lane].values())[0]} read it" if lane in anchors else "a later lane exists"
        gone.append(ChainReport(chain=lane, broken_event=f"{lane}#1", problem=(
            f"the lane has no events and no head, but {named}: its events were deleted")))
    for lane, points in anchors.items():
        r = by_chain.get(lane)
        if r is None or not r.ok:
            continue
        stored = dict(Event.objects.filter(chain=lane, seq__in=list(points)).values_list("seq", "hash"))
        for seq in sorted(points):
            review_id, to_hash = points[seq]
            if stored.get(seq) != to_hash:
                r.problem = (f"signed review {review_id} read up to {lane}#{seq} (hash {to_hash[:12]}…), which the "
                             f"chain no longer holds: events it covered were deleted or rewritten")
                r.broken_event, r.broken_event_id = f"{lane}#{seq}", None
                break
    return gone


def signature_status(signature: Signature) -> tuple[bool, str]:
    """Whether a signature still holds: its record exists and hashes as it did at signing."""
    return signature_statuses([signature])[signature.pk]


def signature_statuses(signatures: Iterable[Signature]) -> dict[int, tuple[bool, str]]:
    """:func:`signature_status` of many signatures, by signature id: the records of each type are
    read in one query, with what their signed content follows (a model's ``signed_content_related``,
    for ``prefetch_related``), so that a list of signatures costs a few queries, not two a row."""
    signatures = list(signatures)
    wanted: dict[str, set[str]] = {}
    for sig in signatures:
        wanted.setdefault(sig.record_type, set()).add(sig.record_id)
    records: dict[tuple[str, str], Any] = {}
    models: dict[str, Any] = {}
    for record_type, ids in wanted.items():
        try:
            model = models[record_type] = apps.get_model(record_type)
        except (LookupError, ValueError):
            continue
        pks = _valid_pks(model, ids)
        # A model names the relations its signed content reads (prefetched) and the large columns it does not
        # read (deferred: a signed cost report's figures are bound through their hash, never decoded here).
        rows = (model._default_manager.filter(pk__in=pks).defer(*getattr(model, "signed_content_defer", ()))
                .prefetch_related(*getattr(model, "signed_content_related", ())))
        records.update({(record_type, str(r.pk)): r for r in rows})
    hashes: dict[tuple[str, str], str] = {}
    out: dict[int, tuple[bool, str]] = {}
    for sig in signatures:
        key = (sig.record_type, sig.record_id)
        record = records.get(key)
        if sig.record_type not in models:
            out[sig.pk] = (False, f"unknown record type {sig.record_type}")
        elif record is None:
            out[sig.pk] = (False, "the signed record no longer exists")
        else:
            if key not in hashes:
                hashes[key] = content_hash(record.signed_content())
            out[sig.pk] = ((True, "") if hashes[key] == sig.record_hash
                           else (False, "the record changed after it was signed"))
    return out


def _valid_pks(model: Any, ids: set[str]) -> list[Any]:
    """The ids that are a primary key of ``model`` (a malformed one names no record, as a lookup of it
    one by one found none)."""
    out = []
    for value in ids:
        try:
            out.append(model._meta.pk.to_python(value))
        except ValidationError:
            continue
    return out


def signature_matches_event(signature: Signature, event: Event) -> bool:
    """A signature row must say what its ledger event says (catches edits of the signature row)."""
    new = event.new
    return (
        new.get("record_hash") == signature.record_hash
        and new.get("meaning") == signature.meaning
        and event.actor_id == signature.signer_id
        and event.object_type == signature.record_type
        and event.object_id == signature.record_id
    )


def verify_all(*, chains: list[str] | None = None, progress: Callable[[str, int], None] | None = None) -> VerifyReport:
    """Verify every chain (or the named ones), every signature and every written-once row whose
    content hash an event recorded (``ledger.records``)."""
    report = VerifyReport()
    if chains:
        chains = with_their_lanes(chains)
    report.chains = _verify_chains(list(chains or chains_in_database()), progress)
    report.chains += _lanes_and_reviews(report.chains, {site_chain(c) for c in chains} if chains else None)
    report.chains.sort(key=lambda c: c.chain)
    signatures = Signature.objects.select_related("event")
    if chains:
        signatures = signatures.filter(chain__in=chains)
    for signature in signatures.iterator(chunk_size=2000):
        report.signatures_checked += 1
        valid, why = signature_status(signature)
        if valid and not signature_matches_event(signature, signature.event):
            valid, why = False, "the signature row differs from its ledger event"
        if not valid:
            report.signature_problems.append(
                SignatureProblem(signature.pk, f"{signature.record_type} {signature.record_id}", why)
            )
    report.records_checked, report.record_problems = stamped_record_problems(chains or None)
    return report
