"""`pocare backup ARCHIVE`: back the configured database up into one archive with its manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from pocare.ops.archive import BackupRefused
from pocare.ops.backup import backup_make
from pocare.ops.databases import Database


class Command(BaseCommand):
    help = ("Back up POCare's database into ARCHIVE (a new file): pg_dump or SQLite's backup API, with a "
            "manifest of every table's row count and every audit chain's head (docs/backup.md).")
    # A database whose triggers are missing still needs its backup: the checks must not stop it.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("archive", type=Path, help="The archive to write, e.g. pocare-2026-12-05.tar.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            database = Database.from_settings(connections["default"].settings_dict)
            done = backup_make(database=database, archive=options["archive"])
        except BackupRefused as exc:
            raise CommandError(f"{exc.field}: {exc}") from exc
        state = done.manifest.state
        self.stdout.write(
            f"Backed up {database.label} into {done.archive} ({done.archive_bytes / 1e6:,.1f} MB) in "
            f"{done.seconds:.1f} s: {len(state.tables):,} tables, {state.rows:,} rows, "
            f"{len(state.chains):,} audit chains ({state.tables.get('ledger_event', 0):,} events).")
        self.stdout.write(f"SHA-256 of the archive: {done.archive_sha256}  (keep it with the copies)")
        if options["verbosity"] >= 2:
            self.stdout.write("  " + ", ".join(f"{step} {s:.2f} s" for step, s in done.phases.items()))
