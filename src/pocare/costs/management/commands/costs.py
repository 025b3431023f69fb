"""``pocare costs refresh`` and ``pocare costs verify-postings [--sample N]``: the cost postings (docs/costs.md,
"Cost postings")."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from pocare.costs.postings import postings_refresh, postings_verify

#: The largest sample (the whole table is checked without --sample).
MAX_SAMPLE = 10_000_000


class Command(BaseCommand):
    help = "The cost postings: post the batches whose records changed; check postings against the records."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("refresh", help="post every batch not posted or changed since (what the hourly job does)")
        verify = sub.add_parser("verify-postings", help="recompute posted batches from their records and compare")
        verify.add_argument("--sample", help="check this many postings chosen at random (default: all)")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "refresh":
            self.stdout.write(postings_refresh().line())
            return
        sample = None
        if options.get("sample") is not None:
            text = str(options["sample"]).strip()
            if not text.isdigit() or len(text) > 9 or not 1 <= int(text) <= MAX_SAMPLE:
                raise CommandError(f"--sample: give a whole number from 1 to {MAX_SAMPLE:,}.")
            sample = int(text)
        found = postings_verify(sample=sample)
        for d in found.differences:
            why = " (pending: the refresh will post it again)" if d.pending else ""
            changed = {k: (d.posted[k], d.recomputed[k]) for k in d.posted if d.posted[k] != d.recomputed[k]}
            self.stdout.write(f"  {d.reference}{why}: posted → records {changed}")
        self.stdout.write(f"cost postings: {found.checked:,} checked, {len(found.differences):,} differ")
        if any(not d.pending for d in found.differences):
            raise CommandError("postings differ from their records (not pending): see above.")
