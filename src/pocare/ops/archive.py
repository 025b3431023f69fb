"""The backup archive: one tar file holding the database dump and a manifest that describes it.

``pocare backup`` writes, and ``pocare restore`` reads, an uncompressed tar of exactly two
members: the dump (``database.pgdump``, pg_dump's custom format, already compressed; or
``database.sqlite3``, a copy of the SQLite file) and ``manifest.json``, written after the dump
because it carries the dump's SHA-256. The manifest also states the row count of every table
and the head (position and hash) of every ledger chain and lane *in the snapshot that was
dumped*, so that a restore can prove it got back what was backed up (docs/backup.md).

No Django here: an inspector or a script can read an archive with the standard library alone.
An archive is hostile input until proved otherwise: only the two members are read, by name,
never extracted by their own paths, and every manifest field is checked with a message that
names it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from pocare.core.errors import FieldRefused

FORMAT = "pocare-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DUMP_MEMBERS = {"postgresql": "database.pgdump", "sqlite": "database.sqlite3"}
# A manifest is a few kilobytes per hundred tables and chains: anything near this is not one.
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
_COPY_CHUNK = 1024 * 1024
_SHA256 = re.compile(r"[0-9a-f]{64}")


class BackupRefused(FieldRefused):
    """A backup or restore that must not go ahead; ``field`` names what to change (an option,
    the archive, or a manifest field such as ``manifest.json: tables``). Nothing was changed."""


@dataclass(frozen=True)
class DatabaseState:
    """What a database holds, as the manifest states it: every table's row count, and the head
    (last position, its hash) of every ledger chain and lane."""

    tables: dict[str, int] = field(default_factory=dict)
    chains: dict[str, tuple[int, str]] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(self.tables.values())

    def differences(self, restored: DatabaseState, limit: int = 10) -> list[str]:
        """How ``restored`` differs from this (the manifest's) state, in words; [] when equal."""
        found = []
        for name in sorted(self.tables.keys() | restored.tables.keys()):
            want, got = self.tables.get(name), restored.tables.get(name)
            if want != got:
                found.append(f"table {name}: manifest {_count(want)}, restored {_count(got)}")
        for chain in sorted(self.chains.keys() | restored.chains.keys()):
            want_head, got_head = self.chains.get(chain), restored.chains.get(chain)
            if want_head != got_head:
                found.append(f"chain {chain}: manifest head {_head(want_head)}, restored {_head(got_head)}")
        return found[:limit] + ([f"… and {len(found) - limit} more"] if len(found) > limit else [])


def _count(n: int | None) -> str:
    return "no such table" if n is None else f"{n:,} rows"


def _head(head: tuple[int, str] | None) -> str:
    return "none" if head is None else f"#{head[0]} ({head[1][:12]}…)"


@dataclass(frozen=True)
class Manifest:
    """The manifest of one archive (format 1). ``created_at`` is UTC ISO 8601."""

    created_at: str
    pocare_version: str
    vendor: str
    server_version: str
    database_name: str
    dump_tool: str
    dump_bytes: int
    dump_sha256: str
    state: DatabaseState

    @property
    def dump_member(self) -> str:
        return DUMP_MEMBERS[self.vendor]

    def to_json(self) -> bytes:
        return json.dumps({
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created_at": self.created_at,
            "pocare_version": self.pocare_version,
            "database": {"vendor": self.vendor, "server_version": self.server_version, "name": self.database_name},
            "dump": {"member": self.dump_member, "tool": self.dump_tool, "bytes": self.dump_bytes,
                     "sha256": self.dump_sha256},
            "tables": dict(sorted(self.state.tables.items())),
            "chains": {c: {"seq": s, "hash": h} for c, (s, h) in sorted(self.state.chains.items())},
        }, indent=1, ensure_ascii=False).encode("utf-8")

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        """Parse and check a manifest; :class:`BackupRefused` names the first field that is wrong."""
        try:
            doc = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BackupRefused(f"{MANIFEST} is not JSON ({exc}).", field=MANIFEST) from exc
        doc = _mapping(doc, MANIFEST)
        if doc.get("format") != FORMAT:
            raise BackupRefused(f"This is not a POCare backup: 'format' must be {FORMAT!r}.", field=_f("format"))
        if doc.get("format_version") != FORMAT_VERSION:
            raise BackupRefused(f"Archive format version {doc.get('format_version')!r} is not one this POCare "
                                f"reads (it reads {FORMAT_VERSION}).", field=_f("format_version"))
        database = _mapping(doc.get("database"), _f("database"))
        dump = _mapping(doc.get("dump"), _f("dump"))
        vendor = _text(database.get("vendor"), _f("database.vendor"))
        if vendor not in DUMP_MEMBERS:
            raise BackupRefused(f"'database.vendor' must be one of {', '.join(DUMP_MEMBERS)}.",
                                field=_f("database.vendor"))
        if dump.get("member") != DUMP_MEMBERS[vendor]:
            raise BackupRefused(f"'dump.member' must be {DUMP_MEMBERS[vendor]!r} for a {vendor} backup.",
                                field=_f("dump.member"))
        sha = _text(dump.get("sha256"), _f("dump.sha256"))
        if not _SHA256.fullmatch(sha):
            raise BackupRefused("'dump.sha256' must be 64 lower-case hex digits.", field=_f("dump.sha256"))
        tables = {_text(name, _f("tables")): _whole(n, _f(f"tables.{name}"))
                  for name, n in _mapping(doc.get("tables"), _f("tables")).items()}
        chains = {}
        for chain, head in _mapping(doc.get("chains"), _f("chains")).items():
            head = _mapping(head, _f(f"chains.{chain}"))
            digest = _text(head.get("hash"), _f(f"chains.{chain}.hash"))
            chains[_text(chain, _f("chains"))] = (_whole(head.get("seq"), _f(f"chains.{chain}.seq")), digest)
        return cls(
            created_at=_text(doc.get("created_at"), _f("created_at")),
            pocare_version=_text(doc.get("pocare_version"), _f("pocare_version")),
            vendor=vendor,
            server_version=_text(database.get("server_version"), _f("database.server_version")),
            database_name=_text(database.get("name"), _f("database.name")),
            dump_tool=_text(dump.get("tool"), _f("dump.tool")),
            dump_bytes=_whole(dump.get("bytes"), _f("dump.bytes")),
            dump_sha256=sha,
            state=DatabaseState(tables=tables, chains=chains),
        )


def _f(name: str) -> str:
    return f"{MANIFEST}: {name}"


def _mapping(value: Any, name: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise BackupRefused(f"'{name}' must be a JSON object.", field=name)
    return value


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str) or len(value) > 1000:
        raise BackupRefused(f"'{name}' must be text (at most 1,000 characters).", field=name)
    return value


def _whole(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BackupRefused(f"'{name}' must be a whole number, 0 or more.", field=name)
    return value


class _Hashing(io.RawIOBase):
    """A file read through SHA-256: tarfile copies the dump into the archive and the hash is
    computed on the same pass."""

    def __init__(self, source: IO[bytes]) -> None:
        self.source, self.sha256, self.bytes = source, hashlib.sha256(), 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        chunk = self.source.read(-1 if size is None else size)
        self.sha256.update(chunk)
        self.bytes += len(chunk)
        return chunk


class _HashingWriter(io.RawIOBase):
    """The archive file written through SHA-256, so that its hash (what ``sha256sum`` prints, to
    check copies by) costs no second read."""

    def __init__(self, target: IO[bytes]) -> None:
        self.target, self.sha256, self.bytes = target, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def tell(self) -> int:  # tarfile asks where it is; the archive is written from its start
        return self.bytes

    def write(self, data: Any) -> int:
        self.sha256.update(data)
        self.bytes += len(data)
        return self.target.write(data)


def archive_write(path: Path, dump: Path, manifest: Manifest) -> tuple[Manifest, str]:
    """Write ``dump`` and the manifest (with the dump's size and SHA-256 filled in) to ``path``.

    Written to ``<path>.partial`` and linked into place only when complete and on disk, so a
    crash never leaves something at ``path`` that looks like a backup; an existing ``path`` is
    never overwritten (backups are copied off-site by name). Readable by the owner only: the dump
    holds every record, password hashes included. Returns the manifest as written and the
    archive's SHA-256.
    """
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            writer = _HashingWriter(out)
            with tarfile.TarFile(fileobj=writer, mode="w", format=tarfile.PAX_FORMAT, copybufsize=_COPY_CHUNK) as tar:
                info = tarfile.TarInfo(manifest.dump_member)
                info.size, info.mode, info.mtime = dump.stat().st_size, 0o600, int(time.time())
                with dump.open("rb") as source:
                    hashing = _Hashing(source)
                    tar.addfile(info, hashing)
                if hashing.bytes != info.size:
                    raise OSError(f"{dump} changed size while it was archived")
                manifest = _with_dump(manifest, hashing.bytes, hashing.sha256.hexdigest())
                raw = manifest.to_json()
                info = tarfile.TarInfo(MANIFEST)
                info.size, info.mode, info.mtime = len(raw), 0o600, int(time.time())
                tar.addfile(info, io.BytesIO(raw))
            out.flush()
            os.fsync(out.fileno())
        os.link(partial, path)  # fails, rather than replaces, if path appeared meanwhile
    finally:
        partial.unlink(missing_ok=True)
    return manifest, writer.sha256.hexdigest()


def _with_dump(manifest: Manifest, size: int, sha256: str) -> Manifest:
    fields = {**manifest.__dict__, "dump_bytes": size, "dump_sha256": sha256}
    return Manifest(**fields)


@dataclass
class Archive:
    """An archive opened for restore: its manifest (checked) and the tar member of its dump."""

    path: Path
    manifest: Manifest
    tar: tarfile.TarFile
    dump: tarfile.TarInfo

    def close(self) -> None:
        self.tar.close()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def dump_extract(self, dest: Path) -> None:
        """Copy the dump to ``dest``, refusing (and removing ``dest``) if its bytes are not the
        ones whose size and SHA-256 the manifest states."""
        source = self.tar.extractfile(self.dump)
        if source is None:  # not a regular file; archive_open already refused that
            raise BackupRefused("The archive's dump is not a file.", field="archive")
        sha256, size = hashlib.sha256(), 0
        try:
            with source, dest.open("xb") as out:
                while chunk := source.read(_COPY_CHUNK):
                    sha256.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
        if size != self.manifest.dump_bytes or sha256.hexdigest() != self.manifest.dump_sha256:
            dest.unlink(missing_ok=True)
            raise BackupRefused(
                f"The dump in {self.path} does not match its manifest: {size:,} bytes with SHA-256 "
                f"{sha256.hexdigest()[:16]}…, the manifest says {self.manifest.dump_bytes:,} bytes with "
                f"{self.manifest.dump_sha256[:16]}…. The archive was changed or damaged; use another copy.",
                field="archive")


def archive_open(path: Path) -> Archive:
    """Open ``path`` and check its shape and manifest (not yet the dump's hash: see
    :meth:`Archive.dump_extract`). The caller closes it."""
    if not path.is_file():
        raise BackupRefused(f"There is no archive file {path}.", field="archive")
    try:
        tar = tarfile.open(path, mode="r:")  # noqa: SIM115  (closed by Archive.close or below)
    except (tarfile.TarError, OSError) as exc:
        raise BackupRefused(f"{path} is not a POCare backup archive (not an uncompressed tar: {exc}).",
                            field="archive") from exc
    try:
        members = _members(tar, path)
        raw = _read(tar, members[MANIFEST])
        manifest = Manifest.from_json(raw)
        dump = members.get(manifest.dump_member)
        if dump is None:
            raise BackupRefused(f"{path} has no member {manifest.dump_member!r}, the dump its manifest names.",
                                field="archive")
        return Archive(path=path, manifest=manifest, tar=tar, dump=dump)
    except BaseException:
        tar.close()
        raise


def _members(tar: tarfile.TarFile, path: Path) -> dict[str, tarfile.TarInfo]:
    """The archive's members by name: regular files, at most the two known names, each once."""
    allowed = {MANIFEST, *DUMP_MEMBERS.values()}
    found: dict[str, tarfile.TarInfo] = {}
    try:
        for info in tar:
            if info.name not in allowed or info.name in found or not info.isreg() or len(found) == 2:
                raise BackupRefused(
                    f"{path} holds {info.name!r}, which a POCare backup does not: it holds {MANIFEST} and one "
                    f"dump ({', '.join(DUMP_MEMBERS.values())}), each once, as plain files.", field="archive")
            found[info.name] = info
    except tarfile.TarError as exc:
        raise BackupRefused(f"{path} is damaged ({exc}).", field="archive") from exc
    if MANIFEST not in found:
        raise BackupRefused(f"{path} has no {MANIFEST}: it is not a POCare backup, or it is cut short.",
                            field="archive")
    return found


def _read(tar: tarfile.TarFile, info: tarfile.TarInfo) -> bytes:
    if info.size > MAX_MANIFEST_BYTES:
        raise BackupRefused(f"{MANIFEST} is {info.size:,} bytes; a manifest is far smaller.", field=MANIFEST)
    source = tar.extractfile(info)
    assert source is not None  # a regular file (_members)
    with source:
        return source.read()
