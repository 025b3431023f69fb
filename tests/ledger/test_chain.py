"""The audit trail: one event per change, in the same transaction, append-only, hash-chained."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, IntegrityError, connection, transaction
from hypothesis import given, settings
from hypothesis import strategies as st

from pocare.accounts.events import AccountEvent
from pocare.accounts.services import user_unlock
from pocare.ledger import canonical
from pocare.ledger.context import request_id_scope
from pocare.ledger.models import ChainHead, Event, LedgerImmutableError
from pocare.ledger.services import LedgerError, event_record
from pocare.ledger.verify import verify_all, verify_chain
from pocare.network.models import Site
from tests.conftest import drop_triggers
from tests.ledger.helpers import raw, write_events

pytestmark = pytest.mark.django_db


def test_a_service_change_writes_one_attributed_event(people):
    """P11-10e DI-ALCOA A11-9: who, when (UTC, server clock), what (old and new), why, which request."""
    qa, operator = people["qa"], people["operator.mad"]
    operator.failed_attempts = 3
    operator.locked_at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    operator.save()
    before = Event.objects.count()
    with request_id_scope("req-test-0001"):
        user_unlock(actor=qa, user=operator, reason="Identity confirmed by phone")
    assert Event.objects.count() == before + 1
    event = Event.objects.latest("id")
    assert event.event_type == AccountEvent.USER_UNLOCKED
    assert (event.actor, event.actor_username, event.actor_printed_name) == (qa, "qa", "Montserrat Puig")
    assert event.object_type == "accounts.User" and event.object_id == str(operator.pk)
    assert event.old == {"locked_at": "2026-01-01T00:00:00.000000Z", "failed_attempts": 3}
    assert event.new == {"locked_at": None, "failed_attempts": 0}
    assert event.reason == "Identity confirmed by phone"
    assert event.request_id == "req-test-0001"
    assert event.occurred_at.tzinfo is not None
    assert abs((dt.datetime.now(dt.UTC) - event.occurred_at).total_seconds()) < 60


def test_a_failed_service_leaves_no_event(people):
    """P11-10e: the change and its event commit or roll back together."""
    before = Event.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        write_events(people["qa"], None, 1)
        raise RuntimeError("the service failed after writing its event")
    assert Event.objects.count() == before


def test_events_of_unknown_type_are_refused(people):
    """P11-10e: only registered event types are written."""
    before = Event.objects.count()
    with pytest.raises(LedgerError, match="unregistered ledger event type"), transaction.atomic():
        event_record(actor=people["qa"], event_type="made.up_event", reason="x")
    assert Event.objects.count() == before


def test_events_outside_a_transaction_are_refused(tx_db):
    """P11-10e: an event is written only inside the service's transaction, so that the change and
    its event commit or roll back together; outside one (autocommit: no test transaction around
    it here) a registered event is refused and nothing is written."""
    from pocare.accounts.models import User

    qa = User.objects.get(username="qa")
    before = Event.objects.count()
    assert not connection.in_atomic_block
    with pytest.raises(LedgerError, match=r"inside the service's transaction\.atomic\(\)"):
        event_record(actor=qa, event_type=AccountEvent.LOGGED_IN, obj=qa, reason="outside")
    assert Event.objects.count() == before
    with transaction.atomic():
        event_record(actor=qa, event_type=AccountEvent.LOGGED_IN, obj=qa, reason="inside")
    assert Event.objects.count() == before + 1


def test_each_site_has_its_own_gapless_chain(people):
    """P11-10e: events chain per site; each links to the one before by hash."""
    mad = Site.objects.get(code="MAD")
    head_before = ChainHead.objects.get(chain="MAD")
    events = write_events(people["manager.mad"], mad, 3)
    assert [e.seq for e in events] == [head_before.seq + 1, head_before.seq + 2, head_before.seq + 3]
    assert events[0].prev_hash == head_before.hash
    assert events[1].prev_hash == events[0].hash and events[2].prev_hash == events[1].hash
    assert all(e.chain == "MAD" for e in events)
    assert events[2].hash == canonical.event_hash(events[2].hashed_fields())
    assert verify_chain("MAD").ok


def test_the_orm_has_no_way_to_change_or_remove_an_event(people):
    """P11-10e CH4-9: update, delete, bulk writes and re-saving are all refused."""
    event = write_events(people["qa"], None, 1)[0]
    with pytest.raises(LedgerImmutableError):
        Event.objects.filter(pk=event.pk).update(reason="changed")
    with pytest.raises(LedgerImmutableError):
        Event.objects.filter(pk=event.pk).delete()
    with pytest.raises(LedgerImmutableError):
        event.delete()
    event.reason = "changed"
    with pytest.raises(LedgerImmutableError):
        event.save()
    with pytest.raises(LedgerImmutableError):
        Event.objects.bulk_create([Event(chain="X", seq=1)])


@pytest.mark.parametrize("sql", [
    "UPDATE ledger_event SET reason = 'changed' WHERE id = %s",
    "DELETE FROM ledger_event WHERE id = %s",
    "UPDATE ledger_signature SET meaning = 'approved' WHERE id = %s",
    "DELETE FROM ledger_signature WHERE id = %s",
])
def test_database_triggers_refuse_update_and_delete(people, sql):
    """P11-10e: append-only below the ORM, on SQLite and PostgreSQL alike."""
    event = write_events(people["qa"], None, 1)[0]
    from pocare.ledger.models import Signature

    target = event.pk if "ledger_event" in sql else Signature.objects.first().pk
    with pytest.raises((DatabaseError, IntegrityError)), transaction.atomic():
        raw(sql, [target])
    assert Event.objects.get(pk=event.pk).reason == event.reason


def test_all_triggers_are_installed_by_the_migrations():
    from pocare.ledger.triggers import missing

    assert missing(connection) == []


def test_canonical_values_are_deterministic_and_refuse_naive_times():
    """DI-ALCOA: one canonical form per value, so hashes are reproducible anywhere."""
    assert canonical.canonical_json({"b": 1, "a": [1.5, "é"]}) == '{"a":[1.5,"é"],"b":1}'
    with pytest.raises(ValueError):
        canonical.canonical_json({"t": dt.datetime(2026, 1, 1)})
    with pytest.raises(TypeError):
        canonical.canonical_json({"x": object()})
    assert canonical.normalize_stored_timestamp("2026-11-23 05:05:40") == "2026-11-23T05:05:40.000000Z"


# --- tampering, even with the triggers dropped ------------------------------------------------


@pytest.fixture
def mad_chain(people):
    """Five fresh events on the MAD chain, with the triggers dropped as an attacker would."""
    events = write_events(people["operator.mad"], Site.objects.get(code="MAD"), 5)
    drop_triggers()
    return events


def _verify_fails_at(label: str, needle: str) -> None:
    report = verify_all(chains=["MAD"])
    assert not report.ok
    (chain,) = report.chains
    assert chain.broken_event == label, chain
    assert needle in chain.problem
    with pytest.raises(CommandError) as exc:
        call_command("audit", "verify", "--chain", "MAD", "--quiet")
    assert label in str(exc.value) and exc.value.returncode == 1


def test_verifying_a_chain_that_does_not_exist_is_an_error_not_intact(capsys):
    """P11-10e: `pocare audit verify --chain XYZ` for a chain with no events exits with an error
    naming the chains there are; it never reports an empty selection as intact."""
    with pytest.raises(CommandError, match="There is no chain 'XYZ'") as exc:
        call_command("audit", "verify", "--chain", "XYZ", "--quiet")
    assert "MAD" in str(exc.value) and exc.value.returncode == 1
    call_command("audit", "verify", "--chain", "MAD", "--quiet")
    assert "Audit trail intact." in capsys.readouterr().out


def test_verify_passes_an_intact_trail_and_counts_events(capsys):
    """P11-10e: `pocare audit verify` exits 0 and prints how many events it checked."""
    call_command("audit", "verify", "--quiet")
    out = capsys.readouterr().out
    total = Event.objects.count()
    assert f"{total:,} events checked" in out and "Audit trail intact." in out


def test_verify_names_an_edited_event(mad_chain):
    """P11-10e DI-ALCOA: an edited event is found and named."""
    raw("UPDATE ledger_event SET reason = 'nothing happened' WHERE id = %s", [mad_chain[2].pk])
    _verify_fails_at(mad_chain[2].label, "edited")


def test_verify_names_an_event_edited_together_with_its_hash(mad_chain):
    """P11-10e: recomputing the edited event's own hash breaks the link to the next one."""
    e = mad_chain[1]
    e.reason = "forged"
    forged_hash = canonical.event_hash(e.hashed_fields())
    raw("UPDATE ledger_event SET reason = 'forged', hash = %s WHERE id = %s", [forged_hash, e.pk])
    _verify_fails_at(mad_chain[2].label, "does not link")


def test_verify_names_a_deleted_event(mad_chain):
    """P11-10e: a deleted event leaves a gap that is named."""
    raw("DELETE FROM ledger_event WHERE id = %s", [mad_chain[2].pk])
    _verify_fails_at(mad_chain[3].label, "missing")


def test_verify_finds_deleted_last_events(mad_chain):
    """P11-10e: deleting the tail is found through the chain head."""
    raw("DELETE FROM ledger_event WHERE id IN (%s, %s)", [mad_chain[3].pk, mad_chain[4].pk])
    _verify_fails_at(mad_chain[3].label, "deleted")


def test_verify_names_an_inserted_event(mad_chain):
    """P11-10e: an event slipped into the middle (sequence numbers shifted) is found."""
    raw("UPDATE ledger_event SET seq = seq + 1000000 WHERE chain = 'MAD' AND seq >= %s", [mad_chain[2].seq])
    raw("UPDATE ledger_event SET seq = seq - 1000000 + 1 WHERE chain = 'MAD' AND seq >= 1000000")
    forged = mad_chain[1]
    raw(
        "INSERT INTO ledger_event (chain, seq, prev_hash, hash, event_type, occurred_at, actor_id, "
        "actor_username, actor_printed_name, object_type, object_id, object_repr, reason, request_id, "
        "old_values, new_values) SELECT chain, %s, hash, hash, event_type, occurred_at, actor_id, "
        "actor_username, actor_printed_name, object_type, object_id, object_repr, 'inserted', request_id, "
        "old_values, new_values FROM ledger_event WHERE id = %s",
        [mad_chain[2].seq, forged.pk],
    )
    _verify_fails_at(f"MAD#{mad_chain[2].seq}", "edited")


def test_verify_names_reordered_events(mad_chain):
    """P11-10e: swapping two events' positions is found."""
    a, b = mad_chain[1], mad_chain[3]
    raw("UPDATE ledger_event SET seq = 0 WHERE id = %s", [a.pk])
    raw("UPDATE ledger_event SET seq = %s WHERE id = %s", [a.seq, b.pk])
    raw("UPDATE ledger_event SET seq = %s WHERE id = %s", [b.seq, a.pk])
    _verify_fails_at(a.label, "")


def test_verify_finds_an_event_appended_outside_the_ledger(mad_chain):
    """P11-10e: a correctly hashed event added with raw SQL (head not advanced) is still found."""
    last = mad_chain[-1]
    forged = Event(**{f.attname: getattr(last, f.attname) for f in Event._meta.concrete_fields})
    forged.pk, forged.seq, forged.prev_hash, forged.reason = None, last.seq + 1, last.hash, "appended"
    forged.hash = canonical.event_hash(forged.hashed_fields())
    forged.save()  # a fresh row: the ORM allows inserts, as an attacker's SQL would
    report = verify_all(chains=["MAD"])
    assert not report.ok and report.chains[0].broken_event == f"MAD#{last.seq + 1}"
    assert "outside the ledger" in report.chains[0].problem


def test_every_migrate_restores_missing_triggers():
    """P11-10e: a migration that rebuilds a ledger table (SQLite) cannot leave it editable."""
    from pocare.ledger.triggers import missing

    drop_triggers()
    assert missing(connection)
    call_command("migrate", verbosity=0)
    assert missing(connection) == []


# --- verify's fast path on SQLite: the database writes the hashed JSON ------------------------------

AWKWARD = 'quote " backslash \\ slash / tab\tnewline\n\x01\x1f\x7f é € \u2028 \ufeff 😀 {"a":[1]}'


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite builds the hashed JSON itself; PostgreSQL rows go through Python")
def test_sqlite_writes_the_hashed_json_byte_for_byte(people):
    """P11-10e: verify's fast path on SQLite hashes JSON that SQLite's json_array wrote; for quotes,
    backslashes, control characters, line separators and emoji it is exactly what
    canonical.event_hash hashed, so no event is checked against anything but its own fields."""
    from pocare.ledger import verify

    events = write_events(people["operator.mad"], Site.objects.get(code="MAD"), 3, reason=AWKWARD)
    assert verify._sqlite_json_matches_python()
    sql = verify._SQLITE_SEGMENT_SQL.format(occurred_at=verify._OCCURRED_AT_SQL["sqlite"], where="chain = ?")
    payloads = {seq: payload for seq, _p, _h, _i, payload in
                connection.connection.cursor().execute(sql, [canonical.FORMAT, "MAD"]).fetchall()}
    for e in events:
        e.refresh_from_db()
        assert payloads[e.seq] == json.dumps([canonical.FORMAT, *e.hashed_fields()], ensure_ascii=False,
                                             separators=(",", ":")).encode("utf-8")
    assert verify_all(chains=["MAD"]).ok


def test_verify_falls_back_to_python_for_a_time_the_database_does_not_format(mad_chain):
    """P11-10e: a timestamp outside the years 1000-9999 is not put in canonical form by the
    database; verify then hashes the event in Python and still finds the edit."""
    raw("UPDATE ledger_event SET occurred_at = %s WHERE id = %s",
        [dt.datetime(26, 1, 1, tzinfo=dt.UTC), mad_chain[2].pk])
    _verify_fails_at(mad_chain[2].label, "edited")


def test_an_append_after_a_rolled_back_one_links_to_the_real_head(people):
    """P11-10e: the process remembers the head it left, but a rolled-back append leaves the chain
    where it was; the next append is checked against the database and links to the real head."""
    site, actor = Site.objects.get(code="MAD"), people["operator.mad"]
    (kept,) = write_events(actor, site, 1)
    with pytest.raises(RuntimeError), transaction.atomic():
        write_events(actor, site, 1, reason="rolled back")
        raise RuntimeError("the service failed after its event")
    (after,) = write_events(actor, site, 1, reason="after the rollback")
    assert (after.seq, after.prev_hash) == (kept.seq + 1, kept.hash)
    assert ChainHead.objects.get(chain="MAD").seq == after.seq
    assert verify_all(chains=["MAD"]).ok


# --- verify's fast encoder (orjson) writes exactly what canonical.event_hash hashes ----------------

_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)))  # UTF-8 text (no lone surrogates)
_VALUE = st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**64 - 1), _TEXT)


@settings(max_examples=2000, deadline=None)
@given(st.lists(_VALUE, max_size=16))
def test_the_fast_encoder_writes_the_canonical_bytes(values):
    """P11-10e: verify hashes each event's array with orjson; for strings (any character, control
    characters and line separators included), 64-bit integers and nulls its bytes are exactly
    those canonical.event_hash hashes, so a hash that matches one matches the other."""
    from pocare.ledger.verify import _canonical_bytes

    fast, exact = _canonical_bytes()
    array = [canonical.FORMAT, AWKWARD, *values]
    assert fast(array) == exact(array) == json.dumps(array, ensure_ascii=False, separators=(",", ":")).encode()


def test_where_the_fast_encoder_cannot_the_exact_one_decides():
    """P11-10e: an integer orjson cannot write gives no bytes from the fast encoder, and the scan
    falls back to the exact encoding (it never calls an event edited on the fast encoder's word)."""
    from pocare.ledger.verify import _canonical_bytes

    fast, exact = _canonical_bytes()
    array = [canonical.FORMAT, 2**70]
    assert fast(array) == b"" and exact(array) == b'["pocare-ledger/1",1180591620717411303424]'


# --- what a walk of the chain cannot see: a consistent rewrite after a signed review ------------------


def test_a_rewritten_and_rehashed_history_contradicts_the_signed_review(people):
    """P11-10e A11-9: someone who edits an event and re-hashes everything after it (head included)
    makes a chain that walks clean; the signed review that read past that point still holds the
    old hash, and verify names the position where the two disagree."""
    from pocare.ledger.signing import SigningCredentials
    from pocare.trail.services import trail_review_sign
    from tests.conftest import PASSWORD

    events = write_events(people["operator.mad"], Site.objects.get(code="MAD"), 3)
    review = trail_review_sign(actor=people["manager.mad"], chain="MAD", comment="Read.",
                               credentials=SigningCredentials(username="manager.mad", password=PASSWORD))
    assert verify_all(chains=["MAD"]).ok
    drop_triggers()
    prev = events[0].prev_hash
    for event in Event.objects.filter(chain="MAD", seq__gte=events[0].seq).order_by("seq"):
        if event.pk == events[0].pk:
            event.reason = "rewritten"
        event.prev_hash = prev
        event.hash = canonical.event_hash(event.hashed_fields())
        raw("UPDATE ledger_event SET reason = %s, prev_hash = %s, hash = %s WHERE id = %s",
            [event.reason, event.prev_hash, event.hash, event.pk])
        prev = event.hash
    raw("UPDATE ledger_chainhead SET hash = %s WHERE chain = 'MAD'", [prev])
    report = verify_all(chains=["MAD"])
    (chain,) = report.chains
    assert not report.ok and chain.broken_event == f"MAD#{review.to_seq}"
    assert f"signed review {review.pk} read up to MAD#{review.to_seq}" in chain.problem
