"""What ``pocare plan`` and ``pocare twin`` share: their output files are checked before any work
(an unwritable ``--out`` is refused in a second, not after the solve), and a small run, when the
environment asks for one, is said out loud."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.management.base import CommandError

from pocare.planning import report

#: The exit status of a command refused for its arguments (as argparse exits on a bad option).
USAGE_ERROR = 2


def outputs_checked(options: Mapping[str, Any]) -> None:
    """Every output file the command was asked to write (``--out``, ``--json``) can be written."""
    for option in ("out", "json"):
        if options.get(option):
            try:
                report.check_writable(options[option], f"--{option}")
            except ValueError as exc:
                raise CommandError(str(exc), returncode=USAGE_ERROR) from exc
