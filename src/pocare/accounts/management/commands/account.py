"""`pocare account unlock USER --reason …`: unlock an account when no Control Site QA can.

For the server's administrator (who has shell access anyway), when every Control Site QA is
locked or gone. The unlock is a ledger event like any other (``system="cli:account-unlock"``, with
the reason) and also clears the person's sign-in throttle.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from pocare.accounts.models import User
from pocare.accounts.services import user_unlock
from pocare.ledger.context import new_request_id, request_id_scope


class Command(BaseCommand):
    help = "Unlock a person's account (recorded in the audit trail with the reason)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["unlock"])
        parser.add_argument("user", help="user id of the person to unlock")
        parser.add_argument("--reason", required=True, help="why (for example: identity confirmed by phone)")

    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.filter(username=options["user"], is_active=True).first()
        if user is None:
            raise CommandError(f"No active user {options['user']!r}.")
        try:
            with request_id_scope(new_request_id("cli")):
                user_unlock(actor=None, user=user, reason=options["reason"])
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        self.stdout.write(f"{user.username} is unlocked; the unlock is in the audit trail.")
