"""`pocare audit verify` checks every hash chain and signature (with --digests, against every
signed digest too); `pocare audit triggers` checks (and with --install restores) the append-only
triggers; `pocare audit anchor` signs the chain heads into the digest store (docs/ledger.md)."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from pocare.ledger import anchoring, triggers
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
        verify.add_argument("--digests", action="store_true",
                            help="Also prove every signed digest in the digest store is a prefix of today's chains.")
        trig = sub.add_parser("triggers", help="Report missing or re-created append-only triggers.")
        trig.add_argument("--install", action="store_true",
                          help="Re-create missing triggers and record it in the trail.")
        trig.add_argument("--acknowledge", action="store_true",
                          help="With --install: record the triggers as they are now although none was missing "
                               "(after a re-creation was found and investigated); needs --reason.")
        trig.add_argument("--reason", default="", help="Why (recorded in the trail).")
        anchor = sub.add_parser("anchor", help="Sign every chain's and lane's head into the digest store.")
        anchor.add_argument("--init-key", action="store_true",
                            help="Make the signing key (POCARE_ANCHOR_KEY) and print its public key's fingerprint.")
        restored = sub.add_parser(
            "restored", help="After a restore from a backup older than the latest digest: show the anchored history "
                             "it lost; with --acknowledge, record that in the trail and anchor the cut-over.")
        restored.add_argument("--deviation", default="", help="The deviation opened for the loss (its reference).")
        restored.add_argument("--reason", default="", help="Why (recorded in the trail).")
        restored.add_argument("--acknowledge", action="store_true",
                              help="Record the acknowledgement (irreversible: it stays in the trail and the digests).")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["action"] == "triggers":
                self._triggers(install=options["install"], acknowledge=options["acknowledge"],
                               reason=options["reason"])
            elif options["action"] == "anchor":
                self._anchor(init_key=options["init_key"])
            elif options["action"] == "restored":
                self._restored(deviation=options["deviation"], reason=options["reason"],
                               acknowledge=options["acknowledge"])
            else:
                self._verify(chains=options["chain"], as_json=options["json"], quiet=options["quiet"],
                             digests=options["digests"])
        except anchoring.AnchorError as exc:
            raise CommandError(str(exc)) from None

    def _anchor(self, *, init_key: bool) -> None:
        if init_key:
            public = anchoring.key_init(settings.POCARE_ANCHOR_KEY)
            self.stdout.write(f"Anchor key made: {settings.POCARE_ANCHOR_KEY} (private, mode 600) and "
                              f"{anchoring.public_key_path(settings.POCARE_ANCHOR_KEY)} (public).")
            self.stdout.write(f"Public key fingerprint (SHA-256): {anchoring.key_fingerprint(public)}")
            return
        started = time.perf_counter()
        done = anchoring.anchor()
        self.stdout.write(f"Anchored {done.heads} chain and lane heads in {done.name} "
                          f"(key {done.key[:16]}…, {time.perf_counter() - started:.2f} s).")

    def _restored(self, *, deviation: str, reason: str, acknowledge: bool) -> None:
        if not acknowledge:  # first look: what would be acknowledged, nothing written
            report = anchoring.verify_digests()
            lost = [p for p in report.problems if p.kind == anchoring.LOST]
            for p in lost:
                self.stdout.write(f"  LOST {_loss_line(p.chain, p.lost_from or 1, p.seq or 0, p.anchored_at)}")
            others = [p for p in report.problems if p.kind not in (anchoring.LOST, anchoring.TRIGGERS)]
            for p in others:
                self.stdout.write(f"  NOT ACKNOWLEDGEABLE digest {p.digest}: {p.line()}")
            if not lost:
                raise CommandError("Nothing to acknowledge: every anchored position is in the database.")
            if others:
                raise CommandError("The digests find more than history lost at the chains' ends; investigate "
                                   "(`pocare audit verify --digests`), no acknowledgement covers it.")
            self.stdout.write("Open a deviation for this loss, then run again with --deviation REF --reason \"...\" "
                              "--acknowledge: it is recorded in the trail and anchored, and shown by every "
                              "`audit verify --digests` from then on.")
            return
        done = anchoring.restore_loss_acknowledge(reason=reason, deviation=deviation)
        for loss in done.lost:
            self.stdout.write(f"  acknowledged: {_loss_line(**_stretch(loss))}")
        self.stdout.write(self.style.SUCCESS(f"Recorded in {done.event} and anchored in digest {done.digest}."))

    def _triggers(self, *, install: bool, acknowledge: bool, reason: str) -> None:
        if acknowledge and not (install and reason.strip()):
            raise CommandError("--acknowledge goes with --install and a --reason (recorded in the trail).")
        if install:
            created = anchoring.triggers_install(system="audit triggers --install", reason=reason.strip(),
                                                 acknowledge=acknowledge)
            if created:
                self.stdout.write(f"Re-created: {', '.join(created)} (recorded in the trail).")
        absent = triggers.missing(connection)
        if absent:
            raise CommandError(f"append-only triggers missing: {', '.join(absent)}")
        against, changed = anchoring.triggers_since_recorded()
        if changed:
            raise CommandError(f"append-only triggers changed since {against}: {', '.join(changed)} were dropped and "
                               "re-created (or altered) with no install recorded. Investigate; then "
                               "`pocare audit triggers --install --acknowledge --reason ...`.")
        self.stdout.write("All append-only triggers are in place"
                          + (f", as recorded by {against}." if against else
                             "; nothing recorded yet to compare them with (run `pocare audit anchor`)."))

    def _verify(self, *, chains: list[str] | None, as_json: bool, quiet: bool, digests: bool = False) -> None:
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
        digest_report, digest_error = None, ""
        if digests:
            try:
                digest_report = anchoring.verify_digests()
            except (anchoring.AnchorError, OSError) as exc:  # no key, an unreadable store: a finding, said
                digest_error = str(exc)
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
                "records_checked": report.records_checked,
                "record_problems": [vars(p) for p in report.record_problems],
                **({"digests": {
                    "ok": digest_report.ok, "checked": digest_report.digests, "points": digest_report.points,
                    "latest": digest_report.latest, "unanchored_events": digest_report.unanchored,
                    "problems": [vars(p) for p in digest_report.problems],
                    "acknowledged_losses": digest_report.acknowledged,
                }} if digest_report is not None else {"digests": {"ok": False, "error": digest_error}}
                   if digest_error else {}),
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
            for record in report.record_problems:
                self.stdout.write(f"  EDITED record {record.record} (content hash recorded in {record.event}): "
                                  f"{record.problem}")
            if absent:
                self.stdout.write(f"  WARNING append-only triggers missing: {', '.join(absent)}")
            if digest_report is not None:
                self._digest_lines(digest_report)
            if digest_error:
                self.stdout.write(f"  DIGESTS cannot be checked: {digest_error}")
            rate = report.events / elapsed if elapsed else 0
            self.stdout.write(
                f"{report.events:,} events checked in {len(report.chains)} chains and "
                f"{report.signatures_checked:,} signatures in {elapsed:.2f} s ({rate:,.0f} events/s)."
            )
        if not report.ok:
            first = next((c for c in report.chains if not c.ok), None)
            what = (f"first broken event {first.broken_event}" if first else
                    "invalid signatures" if report.signature_problems else "records edited outside POCare")
            raise CommandError(f"audit trail NOT intact: {what}", returncode=1)
        if digest_report is not None and not digest_report.ok:
            first_problem = digest_report.problems[0] if digest_report.problems else None
            raise CommandError("audit trail NOT intact: " + (
                f"digest {first_problem.digest}: {first_problem.line()}" if first_problem else
                "no signed digest in the store to verify against (run `pocare audit anchor`)"), returncode=1)
        if digest_error:
            raise CommandError(f"audit trail NOT intact: the digests cannot be checked: {digest_error}", returncode=1)
        if not as_json:
            self.stdout.write(self.style.SUCCESS("Audit trail intact."))

    def _digest_lines(self, report: anchoring.DigestReport) -> None:
        for loss in report.acknowledged:  # every time: an acknowledged loss never goes quiet
            self.stdout.write(f"  ACKNOWLEDGED LOSS {_loss_line(**_stretch(loss))}"
                              f" — acknowledged in {loss['event']} (deviation {loss['deviation']}: {loss['reason']}), "
                              f"digest {loss['acknowledged_in']}")
        for problem in report.problems:
            self.stdout.write(f"  DIGEST {problem.digest}: {problem.line()}")
        self.stdout.write(f"{report.digests:,} signed digests checked ({report.points:,} anchored positions)"
                          + (f", the latest of {report.latest}." if report.latest else "."))
        if report.unanchored:
            total = sum(report.unanchored.values())
            self.stdout.write(f"{total:,} events in {len(report.unanchored)} chains came after the latest digest "
                              "and are not anchored yet.")


def _stretch(loss: dict[str, Any]) -> dict[str, Any]:
    return {"chain": loss["chain"], "first": loss["from"], "last": loss["to"], "anchored_at": loss["anchored_at"]}


def _loss_line(chain: str, first: int, last: int, anchored_at: str) -> str:
    """``events #1,204–#1,250 of chain MAD, anchored 2026-12-06 04:00 UTC, are not in the database``."""
    return (f"events #{first:,}–#{last:,} of {'lane' if '/' in chain else 'chain'} {chain}, anchored "
            f"{anchored_at[:16].replace('T', ' ')} UTC, are not in the database")
