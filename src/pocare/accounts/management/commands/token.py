"""`pocare token issue USER NAME --reason …`: issue an API token for a device or hospital system.

For the server's administrator (who has shell access anyway); people issue tokens in the API.
The key is printed once and never stored.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from pocare.accounts.models import User
from pocare.accounts.services import token_issue
from pocare.ledger.context import new_request_id, request_id_scope


class Command(BaseCommand):
    help = "Issue an API token for a machine client acting as an existing user."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["issue"])
        parser.add_argument("user", help="user id the client acts as")
        parser.add_argument("name", help="which device or system uses the token")
        parser.add_argument("--reason", required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.filter(username=options["user"], is_active=True).first()
        if user is None:
            raise CommandError(f"No active user {options['user']!r}.")
        with request_id_scope(new_request_id("cli")):
            _, key = token_issue(actor=None, user=user, name=options["name"], reason=options["reason"])
        self.stdout.write(key)
