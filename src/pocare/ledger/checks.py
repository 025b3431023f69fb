"""`pocare check` refuses to call a database healthy whose ledger can be edited in place.

The check carries no tag, so plain ``pocare check`` (and every command that runs the checks, such
as ``migrate`` and ``runserver``) reports missing triggers, not only ``check --database``. A
database that is not there yet, cannot be reached, or is not migrated is not an error here:
``migrate`` creates the triggers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.checks import Error, register
from django.db import connections
from django.db.utils import DatabaseError

from pocare.ledger.triggers import missing


def _exists(connection: Any) -> bool:
    """Whether there is a database to look at; connecting to SQLite would create an empty file."""
    if connection.vendor != "sqlite":
        return True
    name = str(connection.settings_dict["NAME"])
    return name == ":memory:" or "mode=memory" in name or Path(name).exists()


@register()
def ledger_triggers_present(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list[Error]:
    errors: list[Error] = []
    for alias in databases if databases is not None else list(connections):
        connection = connections[alias]
        try:
            if not _exists(connection) or "ledger_event" not in connection.introspection.table_names():
                continue  # not migrated yet; `migrate` will create them
            absent = missing(connection)
        except DatabaseError:
            continue  # not reachable: other commands say so; this check is about the triggers
        if absent:
            errors.append(
                Error(
                    f"append-only triggers missing on database '{alias}': {', '.join(absent)}",
                    hint="Run `pocare audit triggers --install` and then `pocare audit verify`.",
                    id="pocare.E001",
                )
            )
    return errors
