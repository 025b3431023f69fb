"""Database triggers that make the ledger tables append-only, on SQLite and PostgreSQL.

The ORM already refuses updates and deletes; these refuse them to anyone with SQL access
(``UPDATE``, ``DELETE`` and, on PostgreSQL, ``TRUNCATE``). Created by migration
``ledger.0002``; ``pocare check`` and ``pocare audit verify`` report any that are missing
(SQLite drops a table's triggers when a migration rebuilds the table).
"""

from __future__ import annotations

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


def _pg_statements(table: str) -> list[str]:
    return [
        f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}",
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION pocare_refuse_change()",
        f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}",
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION pocare_refuse_change()",
    ]


def expected_triggers(vendor: str) -> dict[str, list[str]]:
    if vendor == "sqlite":
        return {t: [f"{t}_no_update", f"{t}_no_delete"] for t in APPEND_ONLY_TABLES}
    if vendor == "postgresql":
        return {t: [f"{t}_append_only", f"{t}_no_truncate"] for t in APPEND_ONLY_TABLES}
    return {}


def install(connection: Any) -> None:
    """Create (or re-create) the append-only triggers on ``connection``'s database."""
    with connection.cursor() as cur:
        if connection.vendor == "sqlite":
            for table in APPEND_ONLY_TABLES:
                for sql in _sqlite_statements(table):
                    cur.execute(sql)
        elif connection.vendor == "postgresql":
            cur.execute(_PG_FUNCTION)
            for table in APPEND_ONLY_TABLES:
                for sql in _pg_statements(table):
                    cur.execute(sql)
        else:
            raise ImproperlyConfigured(f"POCare runs on SQLite or PostgreSQL, not {connection.vendor}")


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
