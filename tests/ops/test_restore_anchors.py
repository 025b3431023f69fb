"""A restore from a backup older than the latest digest (docs/backup.md, "A restore from an older
backup"): `pocare restore` names the anchored history the archive does not hold before it replaces
anything, and refuses an archive whose history contradicts the digests; `pocare audit restored
--acknowledge` records the loss in the trail and anchors the cut-over, after which `audit verify
--digests` reports the loss on every run and still finds every other rewrite.

The main test restores over the suite's own database (its connection closed first, as POCare's
servers are stopped), so that the commands run on the restored trail in this process."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.urls import reverse

from pocare.accounts.models import User
from pocare.ledger import anchoring, triggers
from pocare.ledger.events import LedgerEvent
from pocare.ledger.models import ChainHead, Event
from pocare.network.models import Site
from pocare.ops.databases import Database
from tests.conftest import drop_triggers
from tests.ledger.helpers import raw, write_events
from tests.ledger.test_anchors import _rehash_from, _verify_digests_fails
from tests.ops.test_backup import _backup, _exists, _restore, target  # noqa: F401  (target: a fixture)


@pytest.fixture
def digests(tmp_path: Path, settings, monkeypatch) -> Path:  # type: ignore[no-untyped-def]
    """A key and a digest store of the test's own, for this process (settings) and for the
    `audit verify` that restore runs as a process (its environment)."""
    key, store = tmp_path / "keys" / "ed25519.pem", tmp_path / "digests"
    settings.POCARE_ANCHOR_KEY = key
    settings.POCARE_ANCHOR_TRUSTED_KEYS = [anchoring.public_key_path(key)]
    settings.STORAGES = {**settings.STORAGES, "digests": {
        "BACKEND": "pocare.ledger.anchoring.DigestDirectoryStorage", "OPTIONS": {"location": str(store)}}}
    monkeypatch.setenv("POCARE_ANCHOR_KEY", str(key))
    monkeypatch.setenv("POCARE_ANCHOR_TRUSTED_KEYS", str(anchoring.public_key_path(key)))
    monkeypatch.setenv("POCARE_DIGEST_DIR", str(store))
    call_command("audit", "anchor", "--init-key", stdout=io.StringIO())
    return store


def _verify_digests() -> str:
    out = io.StringIO()
    call_command("audit", "verify", "--digests", "--quiet", stdout=out)
    return out.getvalue()


def _acknowledge(*args: str) -> str:
    out = io.StringIO()
    call_command("audit", "restored", *args, stdout=out)
    return out.getvalue()


def _head(chain: str) -> int:
    return ChainHead.objects.get(chain=chain).seq


def test_an_older_backup_restored_reports_the_anchored_loss_and_an_acknowledgement_closes_it(
        tx_db, digests, tmp_path, login):
    """P11-10e, DI-ALCOA: anchor, back up, write and anchor more, restore the older archive over the
    database: the restore names, before replacing anything, each chain's anchored events it lacks;
    `verify --digests` fails and anchoring refuses until the loss is acknowledged with a deviation;
    then verify passes and shows the acknowledged loss on every run, later events are anchored and
    verified as before, and a rewrite before the cut or a tail deleted after it is still found."""
    mad, operator, qa = Site.objects.get(code="MAD"), User.objects.get(username="operator.mad"), User.objects.get(
        username="qa")
    write_events(operator, mad, 2)
    call_command("audit", "anchor", stdout=io.StringIO())
    kept = _head("MAD"), _head("NETWORK")
    archive = tmp_path / "older.tar"
    _backup(archive)
    write_events(operator, mad, 3)
    write_events(qa, None, 1)
    call_command("audit", "anchor", stdout=io.StringIO())
    anchored = _head("MAD"), _head("NETWORK")

    source = Database.from_settings(connection.settings_dict)
    connection.close()  # POCare's servers are stopped for a restore
    printed = _restore(archive, source, replace=True, yes=True)

    assert printed.index("are not in this archive") < printed.index("Restore proved.")
    assert f"events #{kept[0] + 1}–#{anchored[0]} of chain MAD, anchored " in printed
    assert f"events #{kept[1] + 1}–#{anchored[1]} of chain NETWORK" in printed
    assert "pocare audit restored --deviation" in printed
    assert (_head("MAD"), _head("NETWORK")) == kept
    _verify_digests_fails(f"MAD#{anchored[0]}", "were deleted and the head moved back")
    with pytest.raises(anchoring.AnchorError, match="Not anchored"):
        anchoring.anchor()

    looked = _acknowledge()  # without --acknowledge: shown, nothing written
    assert f"events #{kept[0] + 1}–#{anchored[0]} of chain MAD" in looked
    assert not Event.objects.filter(event_type=LedgerEvent.RESTORE_LOSS_ACKNOWLEDGED).exists()
    with pytest.raises(CommandError, match="--reason and --deviation"):
        _acknowledge("--acknowledge", "--reason", "restored after the disk failed")
    done = _acknowledge("--acknowledge", "--deviation", "DEV-2026-0042", "--reason", "Restored after the disk failed")

    ack = Event.objects.get(event_type=LedgerEvent.RESTORE_LOSS_ACKNOWLEDGED)
    assert ack.chain == "NETWORK" and ack.seq == kept[1] + 1 and ack.new["deviation"] == "DEV-2026-0042"
    assert {(x["chain"], x["from"], x["to"]) for x in ack.new["lost"]} == {
        ("MAD", kept[0] + 1, anchored[0]), ("NETWORK", kept[1] + 1, anchored[1])}
    assert f"Recorded in {ack.label}" in done
    carried = json.loads(sorted(digests.rglob("*.json"))[-1].read_bytes())["digest"]["acknowledges"]
    assert carried["event"] == {"chain": "NETWORK", "seq": ack.seq, "hash": ack.hash}
    assert carried["lost"] == ack.new["lost"]
    verified = _verify_digests()
    assert f"ACKNOWLEDGED LOSS events #{kept[0] + 1}–#{anchored[0]} of chain MAD" in verified
    assert f"acknowledged in {ack.label} (deviation DEV-2026-0042: Restored after the disk failed)" in verified
    assert "Audit trail intact." in verified
    page = login("qa").get(reverse("trail:verify")).content.decode()  # what QA sees, without running a check
    assert "Anchored history lost by a restore, acknowledged" in page and "DEV-2026-0042" in page
    assert f"#{kept[0] + 1}–#{anchored[0]}" in page and ack.label in page

    after = write_events(operator, mad, 2)  # MAD's positions after the cut again, with other events
    assert after[0].seq == kept[0] + 1
    call_command("audit", "anchor", stdout=io.StringIO())
    verified = _verify_digests()
    assert "Audit trail intact." in verified and "ACKNOWLEDGED LOSS" in verified
    with pytest.raises(anchoring.AnchorError, match="Nothing to acknowledge"):
        anchoring.restore_loss_acknowledge(reason="again", deviation="DEV-2026-0043")

    # A rewrite before the cut is found, as ever.
    drop_triggers()
    _rehash_from("MAD", kept[0], "forged before the cut")
    _verify_digests_fails(f"MAD#{kept[0]}", "edited")


def test_a_tail_deleted_after_the_acknowledgement_is_still_found(tx_db, digests, tmp_path):
    """P11-10e: the acknowledgement covers what the restore lost, not more: events deleted after the
    cut (the head moved back again) contradict the digest that carried the acknowledgement; an
    acknowledgement event written without the digest that carries it acknowledges nothing; and a
    digest acknowledging less than was lost is refused."""
    mad, operator = Site.objects.get(code="MAD"), User.objects.get(username="operator.mad")
    write_events(operator, mad, 1)
    call_command("audit", "anchor", stdout=io.StringIO())
    archive = tmp_path / "older.tar"
    _backup(archive)
    cut = _head("MAD")
    write_events(operator, mad, 3)
    call_command("audit", "anchor", stdout=io.StringIO())
    source = Database.from_settings(connection.settings_dict)
    connection.close()
    _restore(archive, source, replace=True, yes=True)

    report = anchoring.verify_digests()
    (loss,) = [p for p in report.problems if p.kind == anchoring.LOST]
    partial = [{"chain": "MAD", "from": loss.lost_from, "to": loss.seq - 1, "hash": loss.hash,
                "anchored_at": loss.anchored_at, "digests": loss.digests}]
    with pytest.raises(anchoring.AnchorError, match=f"MAD#{loss.seq}"):  # a key holder acknowledging less
        anchoring.anchor(acknowledges={"event": {"chain": "NETWORK", "seq": 1, "hash": "0" * 64}, "lost": partial})

    anchoring.restore_loss_acknowledge(reason="Restored", deviation="DEV-1")
    assert anchoring.verify_digests().ok
    written = write_events(operator, mad, 2)
    drop_triggers()
    raw("DELETE FROM ledger_event WHERE id IN (%s, %s)", [written[0].pk, written[1].pk])
    raw("DELETE FROM ledger_event WHERE chain = 'MAD' AND seq = %s", [cut])
    before_cut = Event.objects.filter(chain="MAD", seq=cut - 1).get()
    raw("UPDATE ledger_chainhead SET seq = %s, hash = %s WHERE chain = 'MAD'", [before_cut.seq, before_cut.hash])
    _verify_digests_fails(f"MAD#{cut}", "were deleted and the head moved back")

    forged = write_events(operator, None, 1)[0]  # made into an acknowledgement by hand, no digest carries it
    raw("UPDATE ledger_event SET event_type = %s WHERE id = %s",
        [LedgerEvent.RESTORE_LOSS_ACKNOWLEDGED.value, forged.pk])
    problems = anchoring.verify_digests().problems
    assert any(p.kind == anchoring.ACKNOWLEDGEMENT and p.seq == forged.seq for p in problems)


def test_restore_refuses_an_archive_whose_history_contradicts_the_digests(tx_db, digests, tmp_path, target):  # noqa: F811
    """P11-10e, DI-ALCOA: an archive holding, at a position a digest anchored, another event than the
    one signed is refused before anything is replaced: its history is not the anchored one."""
    mad, operator = Site.objects.get(code="MAD"), User.objects.get(username="operator.mad")
    events = write_events(operator, mad, 3)
    archive = tmp_path / "before.tar"
    _backup(archive)
    drop_triggers()  # the live chain rewritten and re-hashed, then anchored: the archive now differs
    _rehash_from("MAD", events[1].seq, "rewritten")
    triggers.install(connection)
    call_command("audit", "triggers", "--install", "--acknowledge", "--reason", "test", stdout=io.StringIO())
    call_command("audit", "anchor", stdout=io.StringIO())

    with pytest.raises(CommandError, match=r"restore refused \(archive\): The history in .* is not the anchored one: "
                                           rf".*MAD#{_head('MAD')}"):
        _restore(archive, target)
    assert not _exists(target)
