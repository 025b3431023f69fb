"""Backups that are proved: `pocare backup` writes an archive whose manifest states what the
database held, and `pocare restore` puts it back only once it has proved it got exactly that.

A restore is built beside its target, never in it: a staging SQLite file in the target's
directory, or a staging PostgreSQL database on the target's server. The dump's SHA-256, the
row count of every table, every chain's head and `pocare audit verify` are all checked on the
staging copy; only then does it replace the target (a file rename, or two database renames).
Whatever refuses, the target is as it was (docs/backup.md).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

import pocare
from pocare.ledger import anchoring
from pocare.ops import databases as dbs
from pocare.ops.archive import (
    DUMP_MEMBERS,
    Archive,
    BackupRefused,
    DatabaseState,
    Manifest,
    archive_open,
    archive_write,
)
from pocare.ops.databases import Contents, Database


@contextmanager
def _timed(phases: dict[str, float], name: str) -> Iterator[None]:
    """Record how long a step took, so the commands (-v 2) and the benchmark say where time goes."""
    started = time.perf_counter()
    try:
        yield
    finally:
        phases[name] = phases.get(name, 0.0) + time.perf_counter() - started


@dataclass(frozen=True)
class BackupDone:
    archive: Path
    archive_sha256: str
    archive_bytes: int
    manifest: Manifest
    seconds: float
    phases: dict[str, float]  # step → seconds


def backup_make(*, database: Database, archive: Path) -> BackupDone:
    """Back ``database`` up into the new file ``archive`` (refused if it exists)."""
    if archive.exists():
        raise BackupRefused(f"{archive} exists already; a backup never overwrites one. Name a new file.",
                            field="archive")
    if not archive.parent.is_dir():
        raise BackupRefused(f"There is no directory {archive.parent} to write the archive in.", field="archive")
    started, phases = time.perf_counter(), dict[str, float]()
    created_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    # The dump is written beside the archive (same disk, so no surprise about /tmp's size), then
    # copied into it while it is hashed.
    with tempfile.TemporaryDirectory(dir=archive.parent, prefix=".pocare-backup-") as work:
        dump = Path(work) / DUMP_MEMBERS[database.vendor]
        with _timed(phases, "dump and count"):
            if database.vendor == "postgresql":
                state, server_version = dbs.pg_backup(database, dump)
                tool = dbs.pg_tool_version("pg_dump") + " --format=custom"
            else:
                state, server_version = dbs.sqlite_backup(database, dump)
                tool = f"SQLite online backup API (Python sqlite3, SQLite {server_version})"
        manifest = Manifest(created_at=created_at, pocare_version=pocare.__version__, vendor=database.vendor,
                            server_version=server_version, database_name=database.name, dump_tool=tool,
                            dump_bytes=0, dump_sha256="0" * 64, state=state)
        with _timed(phases, "archive and hash"):
            manifest, sha256 = archive_write(archive, dump, manifest)
    return BackupDone(archive=archive, archive_sha256=sha256, archive_bytes=archive.stat().st_size,
                      manifest=manifest, seconds=time.perf_counter() - started, phases=phases)


@dataclass(frozen=True)
class RestoreDone:
    target: Database
    manifest: Manifest
    replaced: Contents | None  # what the target held before, if it held anything
    verify: dict[str, Any]  # `pocare audit verify --json --digests` on the restored database
    anchors: list[str]  # what the digests say of the archive (anchored history beyond it, …)
    seconds: float
    phases: dict[str, float]  # step → seconds


def restore(*, archive: Path, target: Database, replace: bool, confirm: Callable[[str], bool],
            jobs: int = 1, notice: Callable[[str], None] = lambda line: None) -> RestoreDone:
    """Restore ``archive`` into ``target`` and prove it (module docstring), or refuse with
    :class:`BackupRefused` and leave ``target`` as it was.

    ``target`` must be empty or absent unless ``replace``; then ``confirm`` is asked (with a
    sentence that says what is lost) and must say yes. ``jobs``: pg_restore's parallel jobs.
    ``notice`` is told, before the target is replaced, what the trail's digests say of the archive
    (anchored history it does not hold); an archive that contradicts them is refused.
    """
    started, phases = time.perf_counter(), dict[str, float]()
    opened = archive_open(archive)
    try:
        manifest = opened.manifest
        _refuse_wrong_target(manifest, target)
        held = _refuse_unless_replaced(manifest, target, replace, confirm)
        _refuse_in_use(target)
        with _restored_copy(opened, target, jobs, phases) as staging:
            with _timed(phases, "count"):
                _refuse_other_state(manifest.state, _state(staging), archive)
            with _timed(phases, "audit verify"):
                report = audit_verify(staging)
            anchors = anchors_compare(report, archive)
            for line in anchors:
                notice(line)
            with _timed(phases, "install"):
                _install(staging, target, replace=replace)
    finally:
        opened.close()
    return RestoreDone(target=target, manifest=manifest, replaced=held, verify=report, anchors=anchors,
                       seconds=time.perf_counter() - started, phases=phases)


def _refuse_wrong_target(manifest: Manifest, target: Database) -> None:
    if manifest.vendor != target.vendor:
        raise BackupRefused(f"The archive holds a {manifest.vendor} database and {target.label} is {target.vendor}; "
                            f"restore into a {manifest.vendor} database (--database-url).", field="--database-url")
    if target.vendor == "postgresql" and target.name in dbs.PG_RESERVED:
        raise BackupRefused(f"'{target.name}' is the server's own database; restore into POCare's "
                            "(--database-url postgres://…/<name>).", field="--database-url")


def _refuse_unless_replaced(manifest: Manifest, target: Database, replace: bool,
                            confirm: Callable[[str], bool]) -> Contents | None:
    """What ``target`` holds (None if nothing), refused unless ``replace`` and confirmed."""
    before = _contents(target)
    if before is None or before.empty:
        return None
    if not replace:
        raise BackupRefused(
            f"{target.label} is not empty ({before.tables:,} tables, {before.rows:,} rows); restore does not "
            "overwrite a database unless --replace is given. Nothing was changed.", field="--replace")
    if not confirm(f"Replace {target.label} ({before.tables:,} tables, {before.rows:,} rows) with the backup of "
                   f"{manifest.database_name} made at {manifest.created_at}? Everything it holds now is lost."):
        raise BackupRefused("Replacing the database was not confirmed. Nothing was changed.", field="--replace")
    return before


def _contents(target: Database) -> Contents | None:
    return dbs.pg_contents(target) if target.vendor == "postgresql" else dbs.sqlite_contents(target)


def _refuse_in_use(target: Database) -> None:
    """The target is replaced by a rename, which must not happen under a running server."""
    if target.vendor == "postgresql":
        if n := dbs.pg_sessions(target):
            raise BackupRefused(f"{target.label} has {n} other session(s) open: stop POCare's servers and workers "
                                "first. Nothing was changed.", field="--database-url")
    elif dbs.sqlite_in_use(target):
        raise BackupRefused(f"{target.label} is open in another process: stop POCare's servers and workers first. "
                            "Nothing was changed.", field="--database-url")


@contextmanager
def _restored_copy(opened: Archive, target: Database, jobs: int, phases: dict[str, float]) -> Iterator[Database]:
    """The archive's dump, its SHA-256 checked, loaded into a fresh place beside ``target`` (a
    file in its directory, or a database on its server); removed afterwards unless installed.

    On PostgreSQL the dump is checked before the staging database is created, so that a changed
    archive leaves no trace on the server."""
    token = secrets.token_hex(4)
    if target.vendor == "sqlite":
        path = Path(target.name).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = target.renamed(str(path.with_name(f".{path.name}.restoring-{token}")))
        try:
            with _timed(phases, "extract and hash"):
                opened.dump_extract(Path(staging.name))  # the dump is the database file
            yield staging
        finally:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(staging.name + suffix).unlink(missing_ok=True)
        return
    with tempfile.TemporaryDirectory(prefix="pocare-restore-") as work:
        dump = Path(work) / opened.manifest.dump_member
        with _timed(phases, "extract and hash"):
            opened.dump_extract(dump)
        staging = target.renamed(f"{target.name[:40]}__restoring_{token}")
        try:
            dbs.pg_create(staging)
        except psycopg.Error as exc:
            raise BackupRefused(f"Cannot create the staging database {staging.name} on the target's server "
                                f"({exc}). Restore as a role that may create databases (CREATEDB).",
                                field="--database-url") from exc
        try:
            with _timed(phases, "pg_restore"):
                dbs.pg_load(dump, staging, jobs)
            yield staging
        finally:
            dbs.pg_drop(staging, force=True)  # gone already once installed (renamed to the target)


def _state(db: Database) -> DatabaseState:
    return dbs.pg_state(db) if db.vendor == "postgresql" else dbs.sqlite_state(Path(db.name))


def _refuse_other_state(expected: DatabaseState, restored: DatabaseState, archive: Path) -> None:
    differences = expected.differences(restored)
    if differences:
        raise BackupRefused(
            f"The database restored from {archive} is not the one its manifest describes: "
            + "; ".join(differences) + ". The archive was changed or damaged; use another copy. Nothing was changed.",
            field="archive")


def audit_verify(db: Database) -> dict[str, Any]:
    """Run `pocare audit verify --json --digests` on ``db`` and return its report; refuse unless
    the chains, signatures and triggers are intact (the digests are judged by :func:`anchors_compare`).

    A process of its own, with ``db`` as its DATABASE_URL: it is exactly the command an operator
    runs, on exactly the restored database, whatever this process is configured for; the digest
    store and keys are this installation's (its settings and environment).
    """
    done = subprocess.run(  # this Python, the pocare command line, fixed arguments
        [sys.executable, "-m", "pocare.cli", "audit", "verify", "--json", "--quiet", "--digests"],
        env={**os.environ, "DATABASE_URL": db.url}, capture_output=True, text=True)
    try:
        report: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise BackupRefused(f"`pocare audit verify` could not check the restored database (exit {done.returncode}): "
                            f"{(done.stderr or done.stdout).strip()[-1500:]} Nothing was changed.",
                            field="archive") from None
    if not report.get("ok"):  # exit 1 for a digest finding alone is anchors_compare's to judge
        problems = [f"chain {c['chain']} broken at {c['broken_event']}: {c['problem']}"
                    for c in report.get("chains", []) if not c.get("ok")][:5]
        problems += [f"signature #{p['signature_id']} on {p['record']}: {p['problem']}"
                     for p in report.get("invalid_signatures", [])][:5]
        if report.get("missing_triggers"):
            problems.append(f"append-only triggers missing: {', '.join(report['missing_triggers'])}")
        raise BackupRefused("The restored audit trail does not verify: " + "; ".join(problems or ["(no detail)"])
                            + ". The backup holds a trail that was already broken. Nothing was changed.",
                            field="archive")
    return report


def _install(staging: Database, target: Database, *, replace: bool) -> None:
    """Put the proved copy where the target is (the target gone only in the same step)."""
    now = _contents(target)
    if now is not None and not now.empty and not replace:  # it filled while the restore ran
        raise BackupRefused(f"{target.label} was written to while the restore ran; nothing was changed.",
                            field="--replace")
    _refuse_in_use(target)
    if target.vendor == "sqlite":
        dbs.sqlite_settle(Path(staging.name))
        dbs.sqlite_replace(Path(staging.name), Path(target.name))
        return
    if now is None:
        dbs.pg_rename(staging, target.name)
        return
    old = f"{target.name[:40]}__replaced_{secrets.token_hex(4)}"
    dbs.pg_rename(target, old)
    try:
        dbs.pg_rename(staging, target.name)
    except psycopg.Error:
        dbs.pg_rename(target.renamed(old), target.name)
        raise
    dbs.pg_drop(target.renamed(old))


def anchors_compare(report: dict[str, Any], archive: Path) -> list[str]:
    """What the trail's signed digests say of the restored copy (``report``: its `audit verify
    --json --digests`), as lines to show before the target is replaced.

    Anchored history beyond the archive's heads is what a restore from an older backup is: it is
    reported loudly with the next step, not refused. A digest that anchored, at a position the
    archive holds, another event (or none, with later ones present) is refused: the archive's
    history is not the anchored one."""
    digests = report.get("digests") or {}
    if digests.get("error"):
        return [f"WARNING the archive was not compared with the trail's signed digests: {digests['error']}. "
                "Compare before serving: `pocare audit verify --digests` once the key and the store are reachable."]
    if not digests.get("checked"):
        return ["No signed digest in the digest store: nothing anchored to compare the archive with."]
    problems = digests.get("problems", [])
    contradictions = [p for p in problems if p.get("kind") in (anchoring.EDITED, anchoring.MISSING)]
    if contradictions:
        raise BackupRefused(
            f"The history in {archive} is not the anchored one: " + "; ".join(
                f"digest {p['digest']}: {p['chain']}#{p['seq']}: {p['problem']}" for p in contradictions[:5])
            + ". The archive was rewritten, or belongs to another installation's trail. Nothing was changed.",
            field="archive")
    lines = []
    for p in problems:
        if p.get("kind") == anchoring.LOST:
            kind = "lane" if "/" in p["chain"] else "chain"
            lines.append(f"WARNING anchored history is not in this archive: events #{p['lost_from']:,}–#{p['seq']:,} "
                         f"of {kind} {p['chain']}, anchored {p['anchored_at'][:16].replace('T', ' ')} UTC "
                         f"(digest {p['digest']}), are not in this archive.")
        elif p.get("kind") == anchoring.TRIGGERS:
            lines.append(f"Note: {p['problem']} (a PostgreSQL restore re-creates the triggers: the acknowledgement "
                         "below records them, or `pocare audit triggers --install --acknowledge --reason ...`).")
        else:
            lines.append(f"WARNING digest store: digest {p['digest']}: {p['problem']}")
    if any(p.get("kind") == anchoring.LOST for p in problems):
        lines.append("Those events were signed into the digest store after this backup was made and are lost with "
                     "it. Before serving: open a deviation, then `pocare audit restored --deviation REF --reason "
                     "\"...\" --acknowledge` (docs/backup.md, 'A restore from an older backup'). Until then "
                     "`pocare audit verify --digests` fails and anchoring refuses.")
    elif not problems:
        lines.append(f"The archive agrees with all {digests['checked']:,} signed digests.")
    return lines
