"""The backup archive as hostile input: whatever file `pocare restore` is given, it refuses with a
message that names what is wrong (the archive, a manifest field, an option) before it touches any
database."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from pocare.ops.archive import MANIFEST, BackupRefused, DatabaseState, Manifest, archive_open, archive_write
from pocare.ops.backup import restore
from pocare.ops.databases import Database


def _archive(tmp_path: Path) -> Path:
    """A well-formed SQLite archive around a small stand-in dump (only its bytes matter here)."""
    dump = tmp_path / "dump.bin"
    dump.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 4)
    manifest = Manifest(created_at="2026-12-05T10:00:00Z", pocare_version="0.1.0", vendor="sqlite",
                        server_version="3.40.1", database_name="var/pocare.sqlite3", dump_tool="test",
                        dump_bytes=0, dump_sha256="0" * 64,
                        state=DatabaseState(tables={"ledger_event": 3}, chains={"MAD": (3, "a" * 64)}))
    path = tmp_path / "good.tar"
    archive_write(path, dump, manifest)
    return path


def _with_members(tmp_path: Path, members: dict[str, bytes]) -> Path:
    path = tmp_path / "hostile.tar"
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _manifest(archive: Path) -> dict[str, object]:
    with tarfile.open(archive) as tar:
        return dict(json.loads(tar.extractfile(MANIFEST).read()))  # type: ignore[union-attr]


def _refusal(path: Path) -> BackupRefused:
    with pytest.raises(BackupRefused) as refused:
        archive_open(path).close()
    return refused.value


def test_an_archive_round_trips_its_manifest_and_never_overwrites_a_file(tmp_path):
    path = _archive(tmp_path)
    with archive_open(path) as opened:
        assert opened.manifest.state == DatabaseState(tables={"ledger_event": 3}, chains={"MAD": (3, "a" * 64)})
        assert opened.manifest.dump_bytes == 16 + 1024
    with pytest.raises(FileExistsError):
        archive_write(path, tmp_path / "dump.bin", Manifest.from_json(json.dumps(_manifest(path)).encode()))
    assert path.stat().st_mode & 0o077 == 0, "an archive holds every record: its owner's only"


@pytest.mark.parametrize(("members", "field", "words"), [
    ({"manifest.json": b"{"}, "manifest.json", "is not JSON"),
    ({"manifest.json": b"[]"}, "manifest.json", "must be a JSON object"),
    ({"manifest.json": b'{"format": "zip"}'}, "manifest.json: format", "not a POCare backup"),
    ({"database.sqlite3": b"x"}, "archive", "has no manifest.json"),
    ({"manifest.json": b"{}", "../../etc/cron.d/x": b"x"}, "archive", "holds '../../etc/cron.d/x'"),
    ({"manifest.json": b"{}", "manifest.json ": b"{}"}, "archive", "holds 'manifest.json '"),
])
def test_a_file_that_is_not_a_pocare_archive_is_refused_naming_what_is_wrong(tmp_path, members, field, words):
    refused = _refusal(_with_members(tmp_path, members))
    assert refused.field == field and words in str(refused)


@pytest.mark.parametrize(("change", "field"), [
    ({"format_version": 2}, "manifest.json: format_version"),
    ({"tables": {"ledger_event": -1}}, "manifest.json: tables.ledger_event"),
    ({"tables": {"ledger_event": "3"}}, "manifest.json: tables.ledger_event"),
    ({"tables": ["ledger_event"]}, "manifest.json: tables"),
    ({"chains": {"MAD": {"seq": True, "hash": "a"}}}, "manifest.json: chains.MAD.seq"),
    ({"database": {"vendor": "oracle"}}, "manifest.json: database.vendor"),
    ({"dump": {"member": "database.pgdump"}}, "manifest.json: dump.member"),
])
def test_a_manifest_field_of_the_wrong_kind_is_refused_by_name(tmp_path, change, field):
    good = _archive(tmp_path)
    manifest = _manifest(good)
    for key, value in change.items():  # "database" and "dump" keep their other fields
        manifest[key] = {**manifest[key], **value} if key in ("database", "dump") else value  # type: ignore[dict-item]
    with tarfile.open(good) as tar:
        dump = tar.extractfile("database.sqlite3").read()  # type: ignore[union-attr]
    refused = _refusal(_with_members(tmp_path, {"database.sqlite3": dump, MANIFEST: json.dumps(manifest).encode()}))
    assert refused.field == field, str(refused)


def test_a_backup_is_restored_only_into_the_same_kind_of_database(tmp_path):
    """Checked from the manifest before any database is reached (the server named does not exist)."""
    target = Database(vendor="postgresql", name="pocare", host="no-such-host.invalid")
    with pytest.raises(BackupRefused, match="holds a sqlite database") as refused:
        restore(archive=_archive(tmp_path), target=target, replace=False, confirm=lambda q: False)
    assert refused.value.field == "--database-url"


def test_the_restore_command_says_why_it_refuses_and_exits_non_zero(tmp_path):
    not_tar = tmp_path / "notes.txt"
    not_tar.write_text("not an archive")
    with pytest.raises(CommandError, match=r"restore refused \(archive\): .* is not a POCare backup archive") as e:
        call_command("restore", str(not_tar), database_url=f"sqlite:///{tmp_path / 'x.sqlite3'}")
    assert e.value.returncode == 1
    assert not (tmp_path / "x.sqlite3").exists()
    for url, words in [("ftp://example.org/db", "is not a database URL"), ("postgres://db.example.org", "names no database"),
                       ("sqlite://", "in-memory")]:
        with pytest.raises(CommandError, match=rf"\(--database-url\): .*{words}"):
            call_command("restore", str(not_tar), database_url=url)
