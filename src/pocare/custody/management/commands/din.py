"""`pocare din CODE`: the check character of a 13-character DIN, or whether a DIN with its check
character (or flags and check) is valid — exit status 1 when it is not."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from pocare.custody import isbt


class Command(BaseCommand):
    requires_system_checks: list[str] = []  # pure arithmetic: no database, no settings to check
    help = "ISBT 128 DIN: print the check character of 13 characters, or check a DIN with its check character."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("code", nargs="+", help="The DIN; spaces allowed (e.g. P1001 26 000001 Q).")

    def handle(self, *args: Any, **options: Any) -> None:
        text = " ".join(options["code"])
        value = isbt.normalize(text)
        try:
            if len(value) == 13:
                check = isbt.din_check_character(value)
                self.stdout.write(f"check character: {check}")
                self.stdout.write(f"printed DIN: {value[:5]} {value[5:7]} {value[7:]} 00 {check}")
                return
            din = isbt.din_validate(value)
        except isbt.IdentifierError as exc:
            raise CommandError(f"invalid: {exc}") from exc
        if not din.check_given:
            raise CommandError(f"invalid: {value} has flags but no check character; the check character of "
                               f"{din.din} is {din.check}.")
        self.stdout.write(f"valid: {din.printed}")
