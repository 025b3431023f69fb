"""``pocare comparability run``: the comparability monitor, for a scheduled job (e.g. nightly)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from pocare.analytics.services import comparability_monitor_run


class Command(BaseCommand):
    help = "Run the comparability monitor: control-chart rules and equivalence per site, raising quality signals."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        run = sub.add_parser("run", help="assess every version, attribute and site now and raise signals")
        run.add_argument("--now", help="assess as of this UTC moment (ISO 8601), e.g. to replay a past run")

    def handle(self, *args: Any, **options: Any) -> None:
        now = None
        if options.get("now"):
            try:
                now = dt.datetime.fromisoformat(options["now"])
            except ValueError as exc:
                raise CommandError(f"--now: {options['now']!r} is not an ISO 8601 date-time.") from exc
            now = now.replace(tzinfo=dt.UTC) if now.tzinfo is None else now.astimezone(dt.UTC)
        run = comparability_monitor_run(now=now)
        self.stdout.write(run.line())
        for signal in run.raised:
            self.stdout.write(f"  raised: {signal.site.code} {signal.attribute_id} {signal.rule} — {signal.summary}")
