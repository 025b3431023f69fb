"""`pocare backup` and `pocare restore` on the suite's own database (SQLite or PostgreSQL, whichever
the suite runs on): a backup taken while the trail is being written restores to exactly what its
manifest states and verifies; a changed archive and a non-empty target are refused, the target
left as it was.

The restore target is a second database beside the test database (a file in ``tmp_path``, or
``test_<name>_restored`` on the same server), dropped afterwards.
"""

from __future__ import annotations

import io
import sqlite3
import tarfile
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import close_old_connections, connection

from pocare.accounts.models import User
from pocare.ledger.models import Event
from pocare.network.models import Site
from pocare.ops import databases as dbs
from pocare.ops.archive import MANIFEST, archive_open
from pocare.ops.databases import Database
from tests.ledger.helpers import write_events


@pytest.fixture
def source() -> Database:
    """The suite's test database, as `pocare backup` finds it (needs a database fixture first)."""
    return Database.from_settings(connection.settings_dict)


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Database]:
    """An absent database to restore into; afterwards, no staging copy may be left beside it."""
    if connection.vendor == "sqlite":
        db = Database(vendor="sqlite", name=str(tmp_path / "restored.sqlite3"))
        yield db
        assert not list(tmp_path.glob(".restored.sqlite3.restoring*")), "a staging file was left behind"
        return
    db = Database.from_settings(connection.settings_dict).renamed(f"{connection.settings_dict['NAME']}_restored")
    dbs.pg_drop(db)
    yield db
    with dbs.pg_maintenance(db) as conn:
        left = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", [f"{db.name[:40]}__%"]).fetchall()
    dbs.pg_drop(db)
    assert not left, f"staging databases were left behind: {left}"


def _exists(db: Database) -> bool:
    if db.vendor == "sqlite":
        return Path(db.name).exists()
    return dbs.pg_contents(db) is not None


def _rows(db: Database, query: str) -> list[tuple[object, ...]]:
    """Rows read from ``db`` with its own driver (not Django's connection, which is the source)."""
    if db.vendor == "sqlite":
        with closing(sqlite3.connect(db.name)) as conn:
            return list(conn.execute(query).fetchall())
    with db.pg_connect() as conn:
        return [tuple(r) for r in conn.execute(query).fetchall()]


def _restore(archive: Path, target: Database, **options: object) -> str:
    out = io.StringIO()
    call_command("restore", str(archive), database_url=target.url, stdout=out, **options)
    return out.getvalue()


def _backup(archive: Path) -> str:
    out = io.StringIO()
    call_command("backup", str(archive), stdout=out)
    return out.getvalue()


def test_a_backup_taken_while_the_trail_is_written_restores_to_its_manifest_and_verifies(tx_db, tmp_path, source,
                                                                                         target):
    """DI-ALCOA: records stay complete and available: a backup taken while two writers keep
    appending events holds one consistent moment of the database. Restored elsewhere, every table
    has the manifest's row count, every chain and lane ends at the manifest's head, every restored
    event is the source's own, and `pocare audit verify` passes."""
    stop, errors, written = threading.Event(), [], []

    def writer() -> None:
        try:
            close_old_connections()
            site, actor = Site.objects.get(code="MAD"), User.objects.get(username="operator.mad")
            while not stop.is_set():
                written.extend(write_events(actor, site, 1, reason="written during the backup"))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    writers = [threading.Thread(target=writer) for _ in range(2)]
    for t in writers:
        t.start()
    try:
        deadline = time.monotonic() + 30
        while len(written) < 20 and time.monotonic() < deadline and not errors:
            time.sleep(0.01)
        before = Event.objects.count()
        archive = tmp_path / "pocare.tar"
        printed = _backup(archive)
        after = Event.objects.count()
    finally:
        stop.set()
        for t in writers:
            t.join(timeout=60)
    assert not errors, errors
    with archive_open(archive) as opened:
        manifest = opened.manifest
    events = manifest.state.tables["ledger_event"]
    assert before <= events < after, "the writers did not write while the backup was taken"
    assert f"({events:,} events)" in printed

    printed = _restore(archive, target)

    assert "Restore proved." in printed
    assert f"audit trail intact: {events:,} events" in printed
    # No anchor key here (tests/ops/conftest.py): said, and not a refusal.
    assert "WARNING the archive was not compared with the trail's signed digests: No trusted anchor public key" in printed
    for table, count in manifest.state.tables.items():
        assert _rows(target, f'SELECT count(*) FROM "{table}"') == [(count,)], table
    restored = _rows(target, "SELECT chain, seq, hash FROM ledger_event")
    heads: dict[str, tuple[int, str]] = {}
    for chain, seq, digest in restored:
        if seq > heads.get(str(chain), (0, ""))[0]:
            heads[str(chain)] = (int(seq), str(digest))  # type: ignore[call-overload]
    assert heads == manifest.state.chains
    assert any(chain.startswith("MAD") for chain in heads)
    assert set(restored) <= set(Event.objects.values_list("chain", "seq", "hash")), "an event not in the source"


@pytest.fixture(scope="module")
def archive(django_db_setup, django_db_blocker, tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    """A backup of the test database as the session set it up (the founding people and their events),
    shared by the tests that only read it (each works on its own changed copy)."""
    path = tmp_path_factory.mktemp("backup") / "pocare.tar"
    with django_db_blocker.unblock():
        _backup(path)
    return path


def _rewritten(archive: Path, into: Path, *, dump: bytes | None = None, manifest: bytes | None = None) -> Path:
    """A copy of ``archive`` with its dump or its manifest replaced, as someone changing it would."""
    changed = into / "changed.tar"
    with tarfile.open(archive) as old, tarfile.open(changed, "w") as new:
        for info in old.getmembers():
            data = old.extractfile(info).read()  # type: ignore[union-attr]
            if info.name == MANIFEST and manifest is not None:
                data = manifest
            elif info.name != MANIFEST and dump is not None:
                data = dump
            info.size = len(data)
            new.addfile(info, io.BytesIO(data))
    return changed


def _member(archive: Path, name: str) -> bytes:
    with tarfile.open(archive) as tar:
        return tar.extractfile(name).read()  # type: ignore[union-attr]


def test_restore_refuses_a_dump_whose_bytes_were_changed(db, archive, target, tmp_path):
    """DI-ALCOA: one byte of the dump changed (size kept) no longer has the manifest's SHA-256:
    refused before anything is restored, and the target is not created."""
    with tarfile.open(archive) as tar:
        dump_name = next(n for n in tar.getnames() if n != MANIFEST)
    dump = bytearray(_member(archive, dump_name))
    dump[len(dump) // 2] ^= 0x01
    changed = _rewritten(archive, tmp_path, dump=bytes(dump))

    with pytest.raises(CommandError, match=r"restore refused \(archive\): The dump in .* does not match its manifest"):
        _restore(changed, target)
    assert not _exists(target)


@pytest.mark.parametrize("change", ["row count", "chain head"])
def test_restore_refuses_an_archive_whose_manifest_was_changed(db, archive, target, tmp_path, change):
    """DI-ALCOA: a manifest that claims one more event than its dump holds, or another head of a
    chain, is refused once the restored copy is counted; the target is not created and the staging
    copy is gone."""
    raw = _member(archive, MANIFEST).decode()
    with archive_open(archive) as opened:
        state = opened.manifest.state
    if change == "row count":
        n = state.tables["ledger_event"]
        raw = raw.replace(f'"ledger_event": {n},', f'"ledger_event": {n + 1},')
        expected = f"table ledger_event: manifest {n + 1:,} rows, restored {n:,} rows"
    else:
        chain, (_, digest) = sorted(state.chains.items())[0]
        raw = raw.replace(digest, "0" * 64)
        expected = f"chain {chain}: manifest head #"
    changed = _rewritten(archive, tmp_path, manifest=raw.encode())

    with pytest.raises(CommandError, match="is not the one its manifest describes") as refused:
        _restore(changed, target)
    assert expected in str(refused.value)
    assert not _exists(target)


def test_restore_refuses_a_database_that_is_not_empty_unless_replaced_and_confirmed(db, archive, target, source,
                                                                                    monkeypatch):
    """Restoring over the source database itself is refused without --replace, and with --replace
    when the question is not answered 'replace'; with --replace --yes a target holding another
    table is replaced whole by the proved copy."""
    events = Event.objects.count()
    with pytest.raises(CommandError, match=r"\(--replace\): .* is not empty .*unless --replace is given"):
        _restore(archive, source)
    monkeypatch.setattr("builtins.input", lambda question: "yes")  # not the word asked for
    with pytest.raises(CommandError, match=r"was not confirmed\. Nothing was changed"):
        _restore(archive, source, replace=True)
    assert Event.objects.count() == events

    if target.vendor == "sqlite":
        with closing(sqlite3.connect(target.name)) as conn, conn:
            conn.execute("CREATE TABLE leftover (note TEXT)")
            conn.execute("INSERT INTO leftover VALUES ('from before')")
    else:
        dbs.pg_create(target)
        with target.pg_connect() as conn:
            conn.execute("CREATE TABLE leftover (note text)")
            conn.execute("INSERT INTO leftover VALUES ('from before')")
    with pytest.raises(CommandError, match=r"not empty \(1 tables, 1 rows\)"):
        _restore(archive, target)

    printed = _restore(archive, target, replace=True, yes=True)

    assert "replacing 1 tables and 1 rows" in printed and "Restore proved." in printed
    tables = {row[0] for row in _rows(target, "SELECT name FROM sqlite_master WHERE type = 'table'"
                                      if target.vendor == "sqlite" else "SELECT tablename FROM pg_tables")}
    assert "leftover" not in tables and "ledger_event" in tables
    assert _rows(target, "SELECT count(*) FROM ledger_event") == [(events,)]
