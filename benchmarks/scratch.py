"""Scratch databases for the benchmarks: a SQLite file under var/bench/ or a PostgreSQL database of
the benchmark's own (never the tests' ``test_postgres``), migrated, and dropped afterwards."""

from __future__ import annotations

from ledger import BENCH_DIR, PG_SERVER, migrate, pg_recreate


def prepare(backend: str, name: str) -> str:
    """A fresh, migrated database called ``name`` (``var/bench/<name>.sqlite3`` or a PostgreSQL
    database); returns its DATABASE_URL."""
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    if backend == "sqlite":
        for f in BENCH_DIR.glob(f"{name}.sqlite3*"):
            f.unlink()
        url = f"sqlite:///{BENCH_DIR / f'{name}.sqlite3'}"
    else:
        pg_recreate(name)
        url = f"{PG_SERVER}/{name}"
    migrate(url)
    return url


def drop(backend: str, name: str) -> None:
    """Remove what :func:`prepare` made."""
    if backend == "sqlite":
        for f in BENCH_DIR.glob(f"{name}.sqlite3*"):
            f.unlink()
    else:
        import psycopg

        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
