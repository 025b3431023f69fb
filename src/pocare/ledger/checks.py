"""`pocare check` refuses to call a database healthy whose ledger can be edited in place."""

from __future__ import annotations

from typing import Any

from django.core.checks import Error, register
from django.db import connections
from django.db.utils import DatabaseError


@register("database")
def ledger_triggers_present(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list[Error]:
    from pocare.ledger.triggers import missing

    errors: list[Error] = []
    for alias in databases or []:
        connection = connections[alias]
        try:
            absent = missing(connection)
        except DatabaseError:
            continue  # not migrated yet; `migrate` will create them
        if absent and "ledger_event" in connection.introspection.table_names():
            errors.append(
                Error(
                    f"append-only triggers missing: {', '.join(absent)}",
                    hint="Run `pocare audit triggers --install` and then `pocare audit verify`.",
                    id="pocare.E001",
                )
            )
    return errors
