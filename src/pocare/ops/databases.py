"""The databases a backup is taken from and restored into, reached with their own drivers.

Backup and restore never use Django's connection: the database restored into is usually not the
one this process is configured for (a restore test, a new server), and may not exist yet. Each
database is named by a :class:`Database` (from the settings or from a ``--database-url``) and
opened with psycopg or sqlite3 directly; ``pg_dump`` and ``pg_restore`` get the same connection
parameters through libpq's environment variables, so a password never appears on a command line.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import dj_database_url
import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from pocare.ledger.models import Event
from pocare.ops.archive import BackupRefused, DatabaseState

VENDORS = {"django.db.backends.postgresql": "postgresql", "django.db.backends.sqlite3": "sqlite"}
EVENT_TABLE = Event._meta.db_table
# Databases a restore never replaces: the server's own.
PG_RESERVED = frozenset({"postgres", "template0", "template1"})


_LIBPQ_IDENTITY = frozenset({"PGHOST", "PGHOSTADDR", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", "PGSERVICE",
                             "PGSSLMODE", "PGOPTIONS"})


@dataclass(frozen=True)
class Database:
    """Where a database is: a PostgreSQL database on a server, or a SQLite file."""

    vendor: str
    name: str
    host: str = ""
    port: str = ""
    user: str = ""
    password: str = field(default="", repr=False)
    sslmode: str = ""

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Database:
        vendor = VENDORS.get(str(settings.get("ENGINE")))
        if vendor is None:
            raise BackupRefused(f"POCare backs up SQLite and PostgreSQL, not {settings.get('ENGINE')}.",
                                field="DATABASE_URL")
        name = str(settings.get("NAME") or "")
        if vendor == "sqlite" and (not name or name == ":memory:" or "mode=memory" in name):
            raise BackupRefused("An in-memory SQLite database has nothing to back up or restore into.",
                                field="DATABASE_URL")
        if not name:
            raise BackupRefused("The database URL names no database (postgres://user@host:5432/<name>).",
                                field="DATABASE_URL")
        options = settings.get("OPTIONS") or {}
        return cls(vendor=vendor, name=name, host=str(settings.get("HOST") or ""),
                   port=str(settings.get("PORT") or ""), user=str(settings.get("USER") or ""),
                   password=str(settings.get("PASSWORD") or ""), sslmode=str(options.get("sslmode", "")))

    @classmethod
    def from_url(cls, url: str, option: str = "--database-url") -> Database:
        """The database ``url`` names (``postgres://user@host:5432/name`` or ``sqlite:////abs/path``)."""
        try:
            parsed = dj_database_url.parse(url)
        except (ValueError, KeyError) as exc:
            raise BackupRefused(f"{option} is not a database URL this POCare reads ({exc}); use "
                                "postgres://user@host:5432/name or sqlite:////absolute/path.", field=option) from exc
        try:
            return cls.from_settings(parsed)
        except BackupRefused as exc:
            raise BackupRefused(str(exc), field=option) from exc

    def renamed(self, name: str) -> Database:
        return replace(self, name=name)

    @property
    def label(self) -> str:
        if self.vendor == "sqlite":
            return f"SQLite file {self.name}"
        return f"PostgreSQL database '{self.name}' on {self.host or 'localhost'}:{self.port or 5432}"

    @property
    def url(self) -> str:
        """A DATABASE_URL for this database (handed to `pocare audit verify` in its environment)."""
        if self.vendor == "sqlite":
            return f"sqlite:///{Path(self.name).resolve()}"
        # An empty host stays empty (libpq's default, the local socket); a socket directory is quoted.
        auth = quote(self.user, safe="") + (f":{quote(self.password, safe='')}" if self.password else "")
        netloc = (f"{auth}@" if auth else "") + quote(self.host, safe="") + (f":{self.port}" if self.port else "")
        return f"postgres://{netloc}/{quote(self.name, safe='')}" + (f"?sslmode={self.sslmode}" if self.sslmode else "")

    def libpq_env(self) -> dict[str, str]:
        """The environment for pg_dump / pg_restore: libpq's variables, not arguments. Variables
        that would name another server, database or role are dropped; the others (certificates,
        a password file) are libpq's to use."""
        env = {k: v for k, v in os.environ.items() if k not in _LIBPQ_IDENTITY}
        values = {"PGHOST": self.host, "PGPORT": self.port, "PGUSER": self.user, "PGPASSWORD": self.password,
                  "PGDATABASE": self.name, "PGSSLMODE": self.sslmode}
        return env | {k: v for k, v in values.items() if v}

    def pg_connect(self, **kwargs: Any) -> psycopg.Connection[Any]:
        params = {"dbname": self.name, "host": self.host, "port": self.port, "user": self.user,
                  "password": self.password, "sslmode": self.sslmode}
        return psycopg.connect(make_conninfo("", **{k: v for k, v in params.items() if v}), **kwargs)

    def sqlite_connect(self) -> sqlite3.Connection:
        """Open an existing SQLite file (never create one: a typing error must not make a database)."""
        if not Path(self.name).is_file():
            raise BackupRefused(f"There is no SQLite database file {self.name}.", field="DATABASE_URL")
        return sqlite3.connect(f"file:{quote(str(Path(self.name).resolve()))}?mode=rw", uri=True, timeout=30)


# --- what a database holds ---------------------------------------------------------------------------


def state_read(cur: Any, vendor: str) -> DatabaseState:
    """Every table's row count and every ledger chain's head, read on ``cur`` (a DB-API cursor,
    inside the snapshot the caller chose)."""
    tables = {}
    for schema, table in tables_list(cur, vendor):
        qualified = f"{_quoted(schema)}.{_quoted(table)}" if schema else _quoted(table)
        cur.execute(f"SELECT count(*) FROM {qualified}")  # noqa: S608  (names from the catalogue, quoted)
        tables[table if schema in ("", "public") else f"{schema}.{table}"] = int(cur.fetchone()[0])
    chains = _chain_heads(cur, vendor) if EVENT_TABLE in tables else {}
    return DatabaseState(tables=tables, chains=chains)


def tables_list(cur: Any, vendor: str) -> list[tuple[str, str]]:
    """(schema, table) of every table the dump holds: SQLite's own tables aside; on PostgreSQL,
    those of every schema but the system's."""
    if vendor == "sqlite":
        cur.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
                    "ORDER BY name")
        return [("", row[0]) for row in cur.fetchall()]
    cur.execute(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname <> 'information_schema' "
        "AND n.nspname NOT LIKE 'pg\\_%' ORDER BY 1, 2"
    )
    return [(row[0], row[1]) for row in cur.fetchall()]


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _chain_heads(cur: Any, vendor: str) -> dict[str, tuple[int, str]]:
    """The last event (seq, hash) of each chain and lane, as the events say (ChainHead, the lock row,
    is compared with them by `audit verify`). The chains are found by hopping along the
    (chain, seq) index, not by reading every event."""
    mark = "?" if vendor == "sqlite" else "%s"
    cur.execute(
        f"WITH RECURSIVE c(chain) AS (SELECT min(chain) FROM {EVENT_TABLE} UNION ALL "  # noqa: S608
        f"SELECT (SELECT min(chain) FROM {EVENT_TABLE} WHERE chain > c.chain) FROM c WHERE c.chain IS NOT NULL) "
        "SELECT chain FROM c WHERE chain IS NOT NULL"
    )
    heads = {}
    for (chain,) in cur.fetchall():
        cur.execute(f"SELECT seq, hash FROM {EVENT_TABLE} WHERE chain = {mark} ORDER BY seq DESC LIMIT 1",  # noqa: S608
                    [chain])
        seq, digest = cur.fetchone()
        heads[str(chain)] = (int(seq), str(digest))
    return heads


@dataclass(frozen=True)
class Contents:
    """How much a database holds (to refuse overwriting one that holds anything)."""

    tables: int
    rows: int

    @property
    def empty(self) -> bool:
        return self.tables == 0


# --- PostgreSQL ----------------------------------------------------------------------------------


def pg_binary(name: str) -> str:
    """``pg_dump`` or ``pg_restore``: from POCARE_PG_BIN (a directory) if set, else from PATH."""
    directory = os.environ.get("POCARE_PG_BIN")
    path = str(Path(directory) / name) if directory else shutil.which(name)
    if not path or not Path(path).is_file():
        raise BackupRefused(f"{name} was not found (PATH, or POCARE_PG_BIN). On Debian: apt-get install "
                            "postgresql-client-<the server's major version>.", field="POCARE_PG_BIN")
    return path


def pg_tool_version(name: str) -> str:
    """``pg_dump (PostgreSQL) 15.20 (Debian …)``, for the manifest."""
    done = subprocess.run([pg_binary(name), "--version"], capture_output=True, text=True, check=True)  # noqa: S603
    return done.stdout.strip()


def pg_server_version(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute("SELECT version()").fetchone()
    return str(row[0]) if row else ""


def pg_backup(db: Database, dump: Path) -> tuple[DatabaseState, str]:
    """Dump ``db`` to ``dump`` (pg_dump custom format) and read its state *in the same snapshot*:
    a REPEATABLE READ transaction exports its snapshot, pg_dump takes it (``--snapshot``) and the
    counts and heads are read in it while pg_dump runs, so writers that commit meanwhile are in
    neither. Returns the state and the server's version."""
    with db.pg_connect() as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        row = conn.execute("SELECT pg_export_snapshot()").fetchone()
        assert row is not None
        dumping = subprocess.Popen(  # noqa: S603  (a fixed program and arguments; the snapshot id comes from the server)
            [pg_binary("pg_dump"), "--format=custom", f"--snapshot={row[0]}", f"--file={dump}", "--no-password"],
            env=db.libpq_env(), stderr=subprocess.PIPE, text=True)
        try:
            with conn.cursor() as cur:
                state = state_read(cur, "postgresql")
            version = pg_server_version(conn)
        finally:
            _, errors = dumping.communicate()  # the exporting transaction stays open until pg_dump is done
        conn.rollback()
    if dumping.returncode:
        raise BackupRefused(f"pg_dump failed (exit {dumping.returncode}): {errors.strip()[-2000:]}", field="pg_dump")
    return state, version


def pg_contents(db: Database) -> Contents | None:
    """What ``db`` holds; None when there is no such database."""
    try:
        conn = db.pg_connect()
    except psycopg.OperationalError as exc:
        if _missing_database(exc, db.name):
            return None
        raise BackupRefused(f"Cannot connect to {db.label}: {exc}".strip(), field="--database-url") from exc
    with conn, conn.cursor() as cur:
        state = state_read(cur, "postgresql")
    return Contents(tables=len(state.tables), rows=state.rows)


def _missing_database(exc: psycopg.OperationalError, name: str) -> bool:
    # libpq reports a missing database at connection time with no SQLSTATE; its text is stable.
    return f'database "{name}" does not exist' in str(exc)


@contextmanager
def pg_maintenance(db: Database) -> Iterator[psycopg.Connection[Any]]:
    """A connection to the server's ``postgres`` database, for CREATE, RENAME and DROP DATABASE."""
    with closing(db.renamed("postgres").pg_connect(autocommit=True)) as conn:
        yield conn


def pg_sessions(db: Database) -> int:
    """How many sessions (POCare's servers and workers, anyone) are connected to ``db``."""
    with pg_maintenance(db) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                           [db.name]).fetchone()
    return int(row[0]) if row else 0


def pg_create(db: Database) -> None:
    with pg_maintenance(db) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(sql.Identifier(db.name)))


def pg_drop(db: Database, *, force: bool = False) -> None:
    """Drop ``db`` if it exists; ``force`` ends its sessions first (a staging database whose
    pg_restore was interrupted: nobody else uses it)."""
    with pg_maintenance(db) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}" + (" WITH (FORCE)" if force else ""))
                     .format(sql.Identifier(db.name)))


def pg_rename(db: Database, new_name: str) -> None:
    with pg_maintenance(db) as conn:
        conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(db.name),
                                                                     sql.Identifier(new_name)))


def pg_load(dump: Path, into: Database, jobs: int) -> None:
    """pg_restore ``dump`` into the empty database ``into``. Objects belong to the role restoring
    (``--no-owner``) and keep no grants of the source server (``--no-privileges``), so that a
    restore works on a new server whose roles differ; the first error stops it.

    Its sessions commit without waiting for the disk (``synchronous_commit=off``): each of the
    schema's hundreds of statements (tables, indexes, constraints, triggers) is a commit, and
    this roughly halved the restore of a nearly empty database (at a million events the data
    dominates; benchmarks/README.md). A crash loses only the staging database, which is never
    used unless proved, and the rename that puts it in place commits durably, flushing the log
    written before it."""
    env = into.libpq_env() | {"PGOPTIONS": "-c synchronous_commit=off"}
    done = subprocess.run(  # noqa: S603  (a fixed program and arguments)
        [pg_binary("pg_restore"), f"--dbname={into.name}", "--no-owner", "--no-privileges", "--exit-on-error",
         f"--jobs={max(1, jobs)}", "--no-password", str(dump)],
        env=env, capture_output=True, text=True)
    if done.returncode:
        raise BackupRefused(f"pg_restore failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}",
                            field="archive")


def pg_state(db: Database) -> DatabaseState:
    with db.pg_connect() as conn, conn.cursor() as cur:
        return state_read(cur, "postgresql")


# --- SQLite --------------------------------------------------------------------------------------


def sqlite_backup(db: Database, dump: Path) -> tuple[DatabaseState, str]:
    """Copy ``db`` to ``dump`` with SQLite's online backup API in one step: the copy is one read
    transaction, so it is a consistent snapshot while other connections keep writing (WAL mode lets
    them). The state is read from the copy, so it describes exactly what was copied."""
    with closing(db.sqlite_connect()) as source, closing(sqlite3.connect(dump)) as copy:
        source.backup(copy)  # pages=-1: every page in one step, one snapshot
        copy.execute("PRAGMA journal_mode=DELETE")  # the copy is one self-contained file, no -wal beside it
        state = state_read(copy.cursor(), "sqlite")
    return state, sqlite3.sqlite_version


def sqlite_contents(db: Database) -> Contents | None:
    path = Path(db.name)
    if not path.exists():
        return None
    if path.stat().st_size == 0:
        return Contents(tables=0, rows=0)
    try:
        with closing(db.sqlite_connect()) as conn:
            state = state_read(conn.cursor(), "sqlite")
    except sqlite3.DatabaseError as exc:
        raise BackupRefused(f"{db.name} is not a SQLite database POCare can read ({exc}); restore refuses to "
                            "overwrite it. Move it away or name another file.", field="--database-url") from exc
    return Contents(tables=len(state.tables), rows=state.rows)


def sqlite_state(path: Path) -> DatabaseState:
    with closing(sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True)) as conn:
        return state_read(conn.cursor(), "sqlite")


def sqlite_in_use(db: Database) -> bool:
    """Whether another connection has ``db`` open for reading or writing: a full checkpoint of its
    write-ahead log cannot finish then. (It also empties the log, so that the file can be replaced.)"""
    if not Path(db.name).exists():
        return False
    with closing(db.sqlite_connect()) as conn:
        conn.execute("PRAGMA busy_timeout = 1000")  # a connection that holds on for a second is in use
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            try:
                conn.execute("BEGIN EXCLUSIVE")
                conn.rollback()
            except sqlite3.OperationalError:
                return True
            return False
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return bool(busy)


def sqlite_settle(path: Path) -> None:
    """Make ``path`` one self-contained file (its write-ahead log folded in and removed) before it
    is moved into place: a server opening it sets WAL again."""
    with closing(sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=rw", uri=True)) as conn:
        conn.execute("PRAGMA journal_mode=DELETE")


def sqlite_replace(staging: Path, target: Path) -> None:
    """Move the proved copy over the target: the target's emptied log files go first, or SQLite
    would apply them to the new file."""
    for suffix in ("-wal", "-shm", "-journal"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    os.replace(staging, target)
