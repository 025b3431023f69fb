"""`pocare token issue USER NAME --reason … [--scope read|write] [--days N]`: issue an API token for
a device or hospital system (scope ``write`` and 90 days unless said otherwise).

For the server's administrator (who has shell access anyway); people issue tokens in the API.
The key is printed once and never stored.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from pocare.accounts.models import TokenScope, User
from pocare.accounts.services import token_issue
from pocare.ledger.context import new_request_id, request_id_scope


class Command(BaseCommand):
    help = "Issue an API token for a machine client acting as an existing user."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["issue"])
        parser.add_argument("user", help="user id the client acts as")
        parser.add_argument("name", help="which device or system uses the token")
        parser.add_argument("--reason", required=True)
        parser.add_argument("--scope", choices=TokenScope.values, default=TokenScope.WRITE,
                            help="'read' tokens are refused every change (default: write)")
        parser.add_argument("--days", type=int, default=None,
                            help="life of the token in days (default POCARE_TOKEN_DEFAULT_DAYS, "
                                 "at most POCARE_TOKEN_MAX_AGE_DAYS)")

    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.filter(username=options["user"], is_active=True).first()
        if user is None:
            raise CommandError(f"No active user {options['user']!r}.")
        try:
            with request_id_scope(new_request_id("cli")):
                _, key = token_issue(actor=None, user=user, name=options["name"], reason=options["reason"],
                                     scope=options["scope"], days=options["days"])
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        self.stdout.write(key)
