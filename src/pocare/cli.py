"""The `pocare` command: Django's manage.py for POCare's users.

`pocare demo`, `pocare serve`, `pocare audit verify` and every Django command (`pocare migrate`,
`pocare check --deploy`, …) go through here.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pocare.settings")
    from django.core.management import execute_from_command_line  # once the settings module is named

    execute_from_command_line(["pocare", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
