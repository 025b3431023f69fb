"""Helpers for ledger tests: write events through the service, tamper with raw SQL."""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction

from pocare.accounts.events import AccountEvent
from pocare.ledger.models import Event
from pocare.ledger.services import event_record
from pocare.network.models import Site


def write_events(actor: Any, site: Site | None, n: int, reason: str = "test") -> list[Event]:
    events = []
    for i in range(n):
        with transaction.atomic():
            events.append(event_record(actor=actor, event_type=AccountEvent.LOGGED_IN, obj=actor,
                                       site=site, reason=f"{reason} {i}", new={"i": i}))
    return events


def raw(sql: str, params: list[Any] | None = None) -> None:
    with connection.cursor() as cur:
        cur.execute(sql, params or [])
