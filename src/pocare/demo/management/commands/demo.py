"""`pocare demo`: load the demo network into the configured database (safe to repeat)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import mail
from django.core.management.base import BaseCommand, CommandError
from django.test.utils import override_settings

from pocare.demo.history import HistorySummary
from pocare.demo.loader import load
from pocare.demo.people import DEMO_PASSWORD
from pocare.ledger import anchoring
from pocare.ledger.context import new_request_id, request_id_scope


class Command(BaseCommand):
    help = "Load the demo network (Control Site, six POCare sites, one person per role per site)."

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError("The demo has a public password; it is not loaded when POCARE_ENV=production.")
        summaries: list[HistorySummary] = []
        # Loading sends the e-mails a real network would (escalations, signals, set-password links):
        # they are kept in memory and counted on stderr, so stdout stays the same on every run.
        with request_id_scope(new_request_id("demo")), override_settings(
                EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
            mail.outbox = []
            logins = load(on_history=summaries.append)
            sent = len(mail.outbox)
        if sent:
            self.stderr.write(f"{sent} notification e-mail(s) generated while loading (not sent).")
        self.stdout.write(f"Demo network ready. Every demo person's password: {DEMO_PASSWORD}\n")
        self.stdout.write(f"  {'user id':<18} {'site':<5} {'role':<20} name")
        for login in logins:
            self.stdout.write(f"  {login.username:<18} {login.site:<5} {login.role:<20} {login.printed_name}")
        for summary in summaries:
            # The counts go to stdout, the same on every run; the time of this run to stderr.
            self.stdout.write(summary.counts_line())
            self.stderr.write(f"Demo history generated in {summary.seconds:.1f} s" if summary.loaded
                              else "Demo history already loaded; nothing generated")
        self._anchor()

    def _anchor(self) -> None:
        """Anchor the loaded trail, as the network's scheduled job would: the demo makes its own
        signing key under var/ on the first load (production keeps its key outside, docs/ledger.md),
        so `pocare audit verify --digests` has a digest to prove from the start. On stderr, since
        stdout is the same on every run."""
        key = settings.POCARE_ANCHOR_KEY
        try:
            if not key.exists():
                anchoring.key_init(key)
            anchored = anchoring.anchor()
        except anchoring.AnchorError as error:
            raise CommandError(f"The demo loaded, but its trail was not anchored: {error}") from error
        self.stderr.write(f"Trail anchored: {anchored.heads} chain and lane heads signed into {anchored.name}")
