"""`pocare account unlock USER --reason …`: unlock an account when no Control Site QA can;
`pocare account link USER --provider KEY --subject SUB --reason …`: link a person to their account at
a hospital's identity provider (docs/access.md "Hospital sign-on"), e.g. for the first QA.

For the server's administrator (who has shell access anyway), when every Control Site QA is
locked or gone. The unlock is a ledger event like any other (``system="cli:account-unlock"``, with
the reason) and also clears the person's sign-in throttle.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from pocare.accounts.models import User
from pocare.accounts.oidc import providers
from pocare.accounts.services import identity_link, user_unlock
from pocare.ledger.context import new_request_id, request_id_scope


class Command(BaseCommand):
    help = "Unlock a person's account, or link it to a hospital sign-on (recorded in the audit trail with the reason)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["unlock", "link"])
        parser.add_argument("user", help="user id of the person")
        parser.add_argument("--provider", help="link: the provider's key in POCARE_OIDC_PROVIDERS")
        parser.add_argument("--subject", help="link: the person's subject at that provider")
        parser.add_argument("--reason", required=True, help="why (for example: identity confirmed by phone)")

    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.filter(username=options["user"], is_active=True).first()
        if user is None:
            raise CommandError(f"No active user {options['user']!r}.")
        if options["action"] == "link":
            self._link(user, options)
            return
        try:
            with request_id_scope(new_request_id("cli")):
                user_unlock(actor=None, user=user, reason=options["reason"])
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        self.stdout.write(f"{user.username} is unlocked; the unlock is in the audit trail.")

    def _link(self, user: User, options: dict[str, Any]) -> None:
        configured = providers()
        provider = configured.get(options["provider"] or "")
        if provider is None:
            raise CommandError(f"--provider must be one of: {', '.join(configured) or '(none configured)'}.")
        if not options["subject"]:
            raise CommandError("--subject is required: the person's subject at the provider.")
        try:
            with request_id_scope(new_request_id("cli")):
                identity_link(actor=None, user=user, provider_key=provider.key, issuer=provider.issuer,
                              subject=options["subject"], reason=options["reason"])
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        self.stdout.write(f"{user.username} signs in with {provider.name} as {options['subject']}; "
                          "the link is in the audit trail and grants no role.")
