"""Database triggers that make the ledger tables append-only, on SQLite and PostgreSQL.

The ORM already refuses updates and deletes; these refuse them to anyone with SQL access
(``UPDATE``, ``DELETE`` and, on PostgreSQL, ``TRUNCATE``). Created by migration
``ledger.0002``; ``pocare check`` and ``pocare audit verify`` report any that are missing
(SQLite drops a table's triggers when a migration rebuilds the table).

A trigger that is present is not necessarily the one POCare made: someone with database access
can drop the triggers, edit, and create them again. :func:`fingerprint` reads the triggers from
the catalog (on PostgreSQL with their object ids, which a drop and re-create changes), and every
anchored digest carries it (docs/ledger.md, "Anchors"), so a re-creation that no
``audit triggers --install`` event explains is found.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured

APPEND_ONLY_TABLES = ("ledger_event", "ledger_signature", "ledger_auditreview")


def _sqlite_statements(table: str) -> list[str]:
    return [
        f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {op} refused'); END"
        for op in ("UPDATE", "DELETE")
    ]


_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION pocare_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$
"""


def _pg_statements(table: str) -> dict[str, list[str]]:
    """Each trigger's name → the statements that (re-)create it."""
    return {
        f"{table}_append_only": [
            f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}",
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION pocare_refuse_change()",
        ],
        f"{table}_no_truncate": [
            f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}",
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION pocare_refuse_change()",
        ],
    }


def expected_triggers(vendor: str) -> dict[str, list[str]]:
    if vendor == "sqlite":
        return {t: [f"{t}_no_update", f"{t}_no_delete"] for t in APPEND_ONLY_TABLES}
    if vendor == "postgresql":
        return {t: [f"{t}_append_only", f"{t}_no_truncate"] for t in APPEND_ONLY_TABLES}
    return {}


def install(connection: Any) -> list[str]:
    """Create the append-only triggers that are missing (or disabled) on ``connection``'s database
    and return their names. Triggers in place are left alone, so that installing twice changes
    nothing in the catalog and :func:`fingerprint` stays the same."""
    if connection.vendor not in ("sqlite", "postgresql"):
        raise ImproperlyConfigured(f"POCare runs on SQLite or PostgreSQL, not {connection.vendor}")
    absent = missing(connection)
    if not absent:
        return []
    with connection.cursor() as cur:
        if connection.vendor == "sqlite":
            for table in APPEND_ONLY_TABLES:
                for sql in _sqlite_statements(table):
                    cur.execute(sql)  # IF NOT EXISTS: only the missing ones are created
        else:
            if not _pg_function_intact(cur):
                cur.execute(_PG_FUNCTION)
            for table in APPEND_ONLY_TABLES:
                for name, statements in _pg_statements(table).items():
                    if name in absent:
                        for sql in statements:
                            cur.execute(sql)
    return absent


def _pg_function_intact(cur: Any) -> bool:
    # Replacing the function keeps its object id but changes its source, which the fingerprint
    # holds: only a missing or changed function is written again.
    cur.execute("SELECT prosrc FROM pg_proc WHERE proname = 'pocare_refuse_change'")
    rows = cur.fetchall()
    body = _PG_FUNCTION.split("$$")[1]
    return len(rows) == 1 and rows[0][0] == body


def missing(connection: Any) -> list[str]:
    """Names of expected triggers that the database does not have."""
    expected = expected_triggers(connection.vendor)
    with connection.cursor() as cur:
        if connection.vendor == "sqlite":
            cur.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        else:
            cur.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgenabled <> 'D'")
        present = {row[0] for row in cur.fetchall()}
    return [name for names in expected.values() for name in names if name not in present]


@dataclass(frozen=True)
class Fingerprint:
    """The append-only triggers as the catalog holds them: each trigger's name → a short hash of
    its identity (definition; on PostgreSQL also its object id, its function's id and source, and
    whether it is enabled), and ``sha256`` over all of them."""

    triggers: dict[str, str]
    sha256: str

    def changed(self, other: Fingerprint) -> list[str]:
        """The triggers that differ between the two (present in one only, or not the same)."""
        names = set(self.triggers) | set(other.triggers)
        return sorted(n for n in names if self.triggers.get(n) != other.triggers.get(n))


_PG_CATALOG_SQL = (
    "SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid), t.oid, t.tgenabled, p.oid, md5(p.prosrc) "
    "FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid "
    "WHERE NOT t.tgisinternal AND c.relname = ANY(%s) AND pg_table_is_visible(c.oid)"
)


def fingerprint(connection: Any) -> Fingerprint:
    """Read every trigger on the append-only tables from the catalog (also any that POCare did
    not make: an extra trigger on a ledger table is a change too).

    On PostgreSQL a dropped and re-created trigger gets a new object id, so even an identical
    re-creation shows. SQLite has no object ids; there the identity is the definition and the
    trigger's place among the ledger tables' schema entries (the entry before it: a re-created
    trigger moves behind the entries made after it first was). See docs/ledger.md for what that misses.
    """
    identity: dict[str, Any] = {}
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute(_PG_CATALOG_SQL, [list(APPEND_ONLY_TABLES)])
            for table, name, definition, oid, enabled, fn_oid, fn_md5 in cur.fetchall():
                identity[name] = [table, definition, int(oid), str(enabled), int(fn_oid), fn_md5]
        else:
            marks = ", ".join(["%s"] * len(APPEND_ONLY_TABLES))
            cur.execute(f"SELECT type, name, tbl_name, sql FROM sqlite_master WHERE tbl_name IN ({marks}) "  # noqa: S608
                        "ORDER BY rowid", list(APPEND_ONLY_TABLES))
            entries = cur.fetchall()
            # The schema entry just before each trigger: a re-created trigger is written behind every
            # entry made since (an index of a later migration, the other triggers), and VACUUM, which
            # renumbers the entries, keeps their order.
            before = ""
            for kind, name, table, sql in entries:
                if kind == "trigger":
                    identity[name] = [table, sql, before]
                before = name
    triggers = {name: hashlib.sha256(json.dumps(value).encode()).hexdigest()[:16]
                for name, value in sorted(identity.items())}
    return Fingerprint(triggers, hashlib.sha256(json.dumps(triggers, sort_keys=True).encode()).hexdigest())
