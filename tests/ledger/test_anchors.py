"""Anchors (docs/ledger.md, "Anchors"): the chain heads signed with a key outside the database into a
digest store, and `pocare audit verify --digests` proving every digest is still a prefix of today's
chains. Each rewrite below is one someone with database access can do without breaking the walk of
the chain (`audit verify` alone passes); the digests find it."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from pocare.accounts.models import User
from pocare.ledger import anchoring, canonical, triggers
from pocare.ledger.events import LedgerEvent
from pocare.ledger.models import AuditReview, ChainHead, Event
from pocare.ledger.verify import verify_all
from pocare.network.models import Site
from tests.conftest import drop_triggers
from tests.ledger.helpers import appending_elsewhere, own_digest_store, postgres_only, raw, write_events


@pytest.fixture
def digests(tmp_path: Path, settings) -> Path:  # type: ignore[no-untyped-def]
    """A signing key and a digest directory of the test's own, the key made by the command."""
    return own_digest_store(tmp_path, settings)


def _anchor() -> str:
    return anchoring.anchor().name


def _rehash_from(chain: str, seq: int, reason: str) -> None:
    """What an attacker with the triggers dropped does: edit the event at ``seq`` and re-hash every
    event after it, and the head, so that the chain walks clean."""
    prev = Event.objects.get(chain=chain, seq=seq).prev_hash
    for event in Event.objects.filter(chain=chain, seq__gte=seq).order_by("seq"):
        if event.seq == seq:
            event.reason = reason
        event.prev_hash = prev
        event.hash = canonical.event_hash(event.hashed_fields())
        raw("UPDATE ledger_event SET reason = %s, prev_hash = %s, hash = %s WHERE id = %s",
            [event.reason, event.prev_hash, event.hash, event.pk])
        prev = event.hash
    raw("UPDATE ledger_chainhead SET hash = %s WHERE chain = %s", [prev, chain])


def _digest_problems(chain: str) -> list[anchoring.DigestProblem]:
    return [p for p in anchoring.verify_digests().problems if p.chain == chain]


def _verify_digests_fails(*needles: str) -> str:
    """`pocare audit verify --digests` exits 1 and prints every needle."""
    out = []

    class Out:
        def write(self, s: str) -> None:
            out.append(s)

        def flush(self) -> None:
            pass

    with pytest.raises(CommandError) as exc:
        call_command("audit", "verify", "--digests", "--quiet", stdout=Out())
    text = "".join(out) + str(exc.value)
    assert exc.value.returncode == 1 and "NOT intact" in str(exc.value)
    for needle in needles:
        assert needle in text, text
    return text


@pytest.mark.django_db
def test_an_untouched_network_passes(digests, people, capsys):
    """P11-10e: anchored twice, with events between and after, the trail and every digest verify;
    the digest files are read-only and the key is readable by its owner alone."""
    mad = Site.objects.get(code="MAD")
    write_events(people["operator.mad"], mad, 2)
    call_command("audit", "anchor")
    write_events(people["operator.mad"], mad, 2)
    write_events(people["qa"], None, 1)
    call_command("audit", "anchor")
    write_events(people["operator.mad"], mad, 1)
    call_command("audit", "verify", "--digests", "--quiet")
    out = capsys.readouterr().out
    assert "Anchored" in out and "2 signed digests checked" in out and "Audit trail intact." in out
    assert "1 events in 1 chains came after the latest digest" in out
    files = sorted(digests.rglob("*.json"))
    assert len(files) == 2 and all(f.stat().st_mode & 0o777 == 0o444 for f in files)
    assert anchoring.private_key(Path(str(settings.POCARE_ANCHOR_KEY)))  # mode 600: accepted
    second = json.loads(files[1].read_bytes())
    assert second["digest"]["previous"]["name"] == files[0].relative_to(digests).as_posix()
    heads = {h["chain"]: h for h in second["digest"]["heads"]}
    assert heads["MAD"]["seq"] == ChainHead.objects.get(chain="MAD").seq - 1


@pytest.mark.django_db
def test_an_event_edited_and_the_chain_rehashed_is_found(digests, people):
    """P11-10e: an event edited and every later event re-hashed, head included, walks clean; the
    digest that signed a later head names the chain, the position, the hashes and the stretch the
    edit lies in (after the last position a digest still holds)."""
    mad, operator = Site.objects.get(code="MAD"), people["operator.mad"]
    first = write_events(operator, mad, 2)
    _anchor()
    later = write_events(operator, mad, 3)
    second = _anchor()
    drop_triggers()
    _rehash_from("MAD", later[1].seq, "forged")
    assert verify_all(chains=["MAD"]).ok  # the chain alone cannot tell
    (problem,) = _digest_problems("MAD")
    assert problem.digest == second and problem.seq == later[-1].seq
    assert f"the change lies in #{first[-1].seq + 1}–#{later[-1].seq}" in problem.problem
    assert later[-1].hash[:12] in problem.problem and "re-hashed" in problem.problem
    _verify_digests_fails(f"MAD#{later[-1].seq}", "edited", second)


@pytest.mark.django_db
def test_a_deleted_tail_with_the_head_moved_back_is_found(digests, people):
    """P11-10e: the last events deleted and the head row set back to the event before them walks
    clean; the digest that anchored the old head names what is missing."""
    events = write_events(people["operator.mad"], Site.objects.get(code="MAD"), 4)
    _anchor()
    drop_triggers()
    raw("DELETE FROM ledger_event WHERE id IN (%s, %s)", [events[2].pk, events[3].pk])
    raw("UPDATE ledger_chainhead SET seq = %s, hash = %s WHERE chain = 'MAD'", [events[1].seq, events[1].hash])
    assert verify_all(chains=["MAD"]).ok
    (problem,) = _digest_problems("MAD")
    assert problem.seq == events[3].seq
    assert f"events #{events[2].seq}–#{events[3].seq} were deleted and the head moved back" in problem.problem
    _verify_digests_fails(f"MAD#{events[3].seq}", "head moved back")


@pytest.mark.django_db
def test_a_chain_deleted_whole_is_found(digests, people):
    """P11-10e: a site's whole chain deleted, events and head, leaves nothing to walk; the digest
    that anchored it says so."""
    reviewed = AuditReview.objects.values("chain")  # a review would name the chain (test_lanes.py)
    site = Site.objects.exclude(code="MAD").exclude(code__in=reviewed).order_by("code").first()
    assert site is not None
    events = write_events(people["qa"], site, 2)
    _anchor()
    drop_triggers()
    raw("DELETE FROM ledger_eventsubject WHERE event_id IN (SELECT id FROM ledger_event WHERE chain = %s)", [site.code])
    raw("DELETE FROM ledger_signature WHERE chain = %s", [site.code])
    raw("DELETE FROM ledger_event WHERE chain = %s", [site.code])
    raw("DELETE FROM ledger_chainhead WHERE chain = %s", [site.code])
    assert verify_all().chains_ok
    (problem,) = _digest_problems(site.code)
    assert problem.seq == events[-1].seq and "deleted whole" in problem.problem
    _verify_digests_fails(f"{site.code}#{events[-1].seq}", "deleted whole")


def test_the_highest_lane_deleted_whole_is_found(tx_db, digests):
    """P11-10e: the highest lane of a site, not yet reviewed, deleted with its head: no later lane
    and no review names it (docs/ledger.md, "Lanes"), but the digest that anchored it does."""
    postgres_only()
    operator, mad = User.objects.get(username="operator.mad"), Site.objects.get(code="MAD")
    with appending_elsewhere("MAD"):
        lane = write_events(operator, mad, 2)
    assert {e.chain for e in lane} == {"MAD/1"}
    _anchor()
    drop_triggers()
    raw("DELETE FROM ledger_event WHERE chain = 'MAD/1'")
    raw("DELETE FROM ledger_chainhead WHERE chain = 'MAD/1'")
    assert verify_all(chains=["MAD"]).ok
    (problem,) = _digest_problems("MAD/1")
    assert problem.seq == 2 and "the lane MAD/1 has no events and no head" in problem.problem


@pytest.mark.django_db
def test_forged_altered_and_deleted_digests_are_found(digests, people):
    """P11-10e: a digest altered after signing, one signed with a key that is not trusted, and a
    digest deleted from the store are each reported; the trail itself is untouched."""
    mad = Site.objects.get(code="MAD")
    write_events(people["operator.mad"], mad, 1)
    _anchor()
    write_events(people["operator.mad"], mad, 1)
    second, third, fourth = _anchor(), _anchor(), _anchor()
    assert anchoring.verify_digests().ok
    # Altered: the second digest's MAD head rewritten to suit a rewritten chain, signature kept.
    path = digests / second
    envelope = json.loads(path.read_bytes())
    for head in envelope["digest"]["heads"]:
        if head["chain"] == "MAD":
            head["hash"] = "f" * 64
    path.chmod(0o644)
    path.write_text(json.dumps(envelope))
    # Forged: a well-formed digest signed by another key.
    other = Ed25519PrivateKey.generate()
    forged_digest = {**envelope["digest"], "created_at": "2999-01-01T00:00:00.000000Z"}
    forged = {"digest": forged_digest,
              "signature": base64.b64encode(other.sign(canonical.canonical_json(forged_digest).encode())).decode(),
              "public_key": base64.b64encode(anchoring._raw(other.public_key())).decode(),
              "key": anchoring.key_fingerprint(other.public_key())}
    (digests / "2999-01-01").mkdir()
    (digests / "2999-01-01" / "29990101T000000000000Z.json").write_text(json.dumps(forged))
    # Deleted: the third digest.
    (digests / third).chmod(0o644)
    (digests / third).unlink()
    problems = {p.digest: p.problem for p in anchoring.verify_digests().problems}
    assert "the signature does not verify" in problems[second]
    assert "not a trusted anchor key" in problems["2999-01-01/29990101T000000000000Z.json"]
    assert f"follows digest {third}, which the store no longer holds" in problems[fourth]
    assert set(problems) == {second, fourth, "2999-01-01/29990101T000000000000Z.json"}
    _verify_digests_fails("signature does not verify", "not a trusted anchor key", "no longer holds")


@pytest.mark.django_db
def test_triggers_dropped_and_recreated_are_found(digests, people):
    """P11-10e: the append-only triggers dropped and created again by hand are all present, but
    `audit triggers` and `audit verify --digests` find them changed since the last digest; an
    install recorded in the trail (with its reason) is what explains a change."""
    call_command("audit", "anchor")
    call_command("audit", "triggers")  # as the digest recorded them
    drop_triggers()
    with connection.cursor() as cur:  # by hand, as someone with database access would
        for table in triggers.APPEND_ONLY_TABLES:
            if connection.vendor == "sqlite":
                for sql in triggers._sqlite_statements(table):
                    cur.execute(sql)
            else:
                for statements in triggers._pg_statements(table).values():
                    cur.execute(statements[1])
    assert triggers.missing(connection) == []
    with pytest.raises(CommandError, match=r"changed since digest .* ledger_event_"):
        call_command("audit", "triggers")
    (problem,) = [p for p in anchoring.verify_digests().problems if p.digest == "(now)"]
    assert "ledger_event_" in problem.problem and "re-created" in problem.problem
    _verify_digests_fails("append-only triggers differ")
    # Investigated: the install is recorded with its reason, and the triggers match it from then on.
    call_command("audit", "triggers", "--install", "--acknowledge", "--reason", "Re-created during the test")
    installed = Event.objects.filter(event_type=LedgerEvent.TRIGGERS_INSTALLED).latest("id")
    assert installed.reason == "Re-created during the test" and installed.actor_username == "audit triggers --install"
    call_command("audit", "triggers")
    assert anchoring.verify_digests().ok


@pytest.mark.django_db
def test_anchoring_refuses_to_vouch_for_a_rewritten_history_or_an_unsafe_key(digests, people):
    """P11-10e: a new digest is never signed over a chain the last digest contradicts, nor with a
    key others can read; and a key is never overwritten."""
    events = write_events(people["operator.mad"], Site.objects.get(code="MAD"), 2)
    _anchor()
    drop_triggers()
    _rehash_from("MAD", events[0].seq, "forged")
    with pytest.raises(anchoring.AnchorError, match=f"MAD#{events[1].seq}"):
        _anchor()
    key = Path(str(settings.POCARE_ANCHOR_KEY))
    with pytest.raises(CommandError, match="never overwritten"):
        call_command("audit", "anchor", "--init-key")
    key.chmod(0o640)
    with pytest.raises(CommandError, match="readable by others"):
        call_command("audit", "anchor")
