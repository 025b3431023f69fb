"""`pocare restore ARCHIVE`: restore a backup, proved against its manifest and the audit trail."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

import pocare
from pocare.ops.archive import BackupRefused
from pocare.ops.backup import restore
from pocare.ops.databases import Database


class Command(BaseCommand):
    help = ("Restore ARCHIVE (made by `pocare backup`) into an empty database: the configured one, or "
            "--database-url. It succeeds only if the dump is the one the manifest hashed, every table's row "
            "count and every audit chain's head equal the manifest, and `pocare audit verify` passes; "
            "otherwise nothing is changed (docs/backup.md).")
    # The target may be empty or not exist yet: checks that read the database have nothing to read.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("archive", type=Path, help="The archive written by `pocare backup`.")
        parser.add_argument("--database-url", help="Restore into this database instead of the configured one "
                            "(postgres://user@host:5432/name, created if absent; or sqlite:////absolute/path).")
        parser.add_argument("--replace", action="store_true",
                            help="Replace a database that is not empty (asks to confirm unless --yes).")
        parser.add_argument("--yes", action="store_true", help="Do not ask before replacing (with --replace).")
        parser.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1),
                            help="pg_restore's parallel jobs (PostgreSQL; default: up to 4, one per core).")

    def handle(self, *args: Any, **options: Any) -> None:
        if not 1 <= options["jobs"] <= 64:
            raise CommandError("--jobs: a whole number from 1 to 64.")
        try:
            url = options["database_url"]
            target = (Database.from_url(url) if url
                      else Database.from_settings(connections["default"].settings_dict))
            done = restore(archive=options["archive"], target=target, replace=options["replace"],
                           confirm=lambda question: options["yes"] or self._confirm(question), jobs=options["jobs"],
                           notice=self._notice)
        except BackupRefused as exc:
            raise CommandError(f"restore refused ({exc.field}): {exc}") from exc
        manifest, report = done.manifest, done.verify
        self.stdout.write(
            f"Restored {options['archive']} (backup of {manifest.vendor} '{manifest.database_name}' made at "
            f"{manifest.created_at} by POCare {manifest.pocare_version}) into {target.label} in {done.seconds:.1f} s"
            + (f", replacing {done.replaced.tables:,} tables and {done.replaced.rows:,} rows" if done.replaced else "")
            + ".")
        self.stdout.write(
            f"  dump SHA-256 as in the manifest; {len(manifest.state.tables):,} tables and {manifest.state.rows:,} "
            f"rows, {len(manifest.state.chains):,} chain heads as in the manifest.")
        self.stdout.write(
            f"  audit trail intact: {report['events']:,} events in {len(report['chains']):,} chains, "
            f"{report['signatures_checked']:,} signatures.")
        if options["verbosity"] >= 2:
            self.stdout.write("  " + ", ".join(f"{step} {s:.2f} s" for step, s in done.phases.items()))
        if manifest.pocare_version != pocare.__version__:
            self.stdout.write(self.style.WARNING(
                f"  The backup was made by POCare {manifest.pocare_version}; this is {pocare.__version__}: "
                "run `pocare migrate` on the restored database before serving it."))
        self.stdout.write(self.style.SUCCESS("Restore proved."))

    def _notice(self, line: str) -> None:
        """Shown as soon as it is known, before the target is replaced."""
        self.stdout.write(self.style.WARNING(line) if line.startswith("WARNING") else line)

    def _confirm(self, question: str) -> bool:
        try:
            answer = input(f"{question}\nType 'replace' to go on: ")
        except EOFError:  # no terminal to ask at: not confirmed
            return False
        return answer.strip() == "replace"
