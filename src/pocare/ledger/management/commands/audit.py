"""`pocare audit verify` checks every hash chain and signature; `pocare audit triggers` checks
(and with --install restores) the append-only triggers."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from pocare.ledger import triggers
from pocare.ledger.models import NETWORK_CHAIN
from pocare.ledger.review import chain_exists, site_chains
from pocare.ledger.verify import verify_all


class Command(BaseCommand):
    help = "Verify the audit trail (hash chains, signatures) or its append-only triggers."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        verify = sub.add_parser("verify", help="Recompute every hash chain and signature.")
        verify.add_argument("--chain", action="append",
                            help="Only this chain (a site code, with all its lanes, or one lane such as MAD/2); "
                                 "repeatable.")
        verify.add_argument("--json", action="store_true", help="Print the report as JSON.")
        verify.add_argument("--quiet", action="store_true", help="No progress on stderr.")
        trig = sub.add_parser("triggers", help="Report missing append-only triggers.")
        trig.add_argument("--install", action="store_true", help="Re-create missing triggers.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "triggers":
            self._triggers(install=options["install"])
        else:
            self._verify(chains=options["chain"], as_json=options["json"], quiet=options["quiet"])

    def _triggers(self, *, install: bool) -> None:
        if install:
            triggers.install(connection)
        absent = triggers.missing(connection)
        if absent:
            raise CommandError(f"append-only triggers missing: {', '.join(absent)}")
        self.stdout.write("All append-only triggers are in place.")

    def _verify(self, *, chains: list[str] | None, as_json: bool, quiet: bool) -> None:
        unknown = [c for c in chains or [] if not chain_exists(c)]
        if unknown:  # verifying nothing must not read as "intact"
            raise CommandError(f"There is no chain {', '.join(map(repr, unknown))}; "
                               f"the chains are: {', '.join([NETWORK_CHAIN, *site_chains()])}.")
        started = time.perf_counter()

        def progress(chain: str, n: int) -> None:
            if not quiet:
                sys.stderr.write(f"\r{chain}: {n:,} events verified…")
                sys.stderr.flush()

        report = verify_all(chains=chains, progress=progress)
        elapsed = time.perf_counter() - started
        if not quiet:
            sys.stderr.write("\r" + " " * 60 + "\r")
        absent = triggers.missing(connection)
        if as_json:
            self.stdout.write(json.dumps({
                "ok": report.ok and not absent,
                "events": report.events,
                "seconds": round(elapsed, 3),
                "chains": [vars(c) | {"ok": c.ok} for c in report.chains],
                "signatures_checked": report.signatures_checked,
                "invalid_signatures": [vars(p) for p in report.signature_problems],
                "missing_triggers": absent,
            }, indent=1))
        else:
            for chain in report.chains:
                if chain.ok:
                    self.stdout.write(f"  {chain.chain:<8} {chain.events:>10,} events  intact")
                else:
                    self.stdout.write(f"  {chain.chain:<8} BROKEN at {chain.broken_event}"
                                      f"{f' (event id {chain.broken_event_id})' if chain.broken_event_id else ''}: "
                                      f"{chain.problem}")
            for problem in report.signature_problems:
                self.stdout.write(f"  INVALID signature #{problem.signature_id} on {problem.record}: {problem.problem}")
            if absent:
                self.stdout.write(f"  WARNING append-only triggers missing: {', '.join(absent)}")
            rate = report.events / elapsed if elapsed else 0
            self.stdout.write(
                f"{report.events:,} events checked in {len(report.chains)} chains and "
                f"{report.signatures_checked:,} signatures in {elapsed:.2f} s ({rate:,.0f} events/s)."
            )
        if not report.ok:
            first = next((c for c in report.chains if not c.ok), None)
            what = f"first broken event {first.broken_event}" if first else "invalid signatures"
            raise CommandError(f"audit trail NOT intact: {what}", returncode=1)
        if not as_json:
            self.stdout.write(self.style.SUCCESS("Audit trail intact."))
