"""Helpers for ledger tests: write events through the service, tamper with raw SQL."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.db import close_old_connections, connection, transaction

from pocare.accounts.events import AccountEvent
from pocare.accounts.models import User
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


def postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("lanes need row locks (PostgreSQL); SQLite's write lock serializes every append")


@contextmanager
def appending_elsewhere(code: str, events: int = 1) -> Iterator[list[Event]]:
    """Another connection appends to ``code``'s chain and keeps its transaction open (holding the
    lane it wrote on) until the block ends, then commits."""
    ready, release, written, errors = threading.Event(), threading.Event(), [], []

    def hold() -> None:
        try:
            close_old_connections()
            site = Site.objects.get(code=code)
            actor = User.objects.get(username=f"operator.{code.lower()}")
            with transaction.atomic():
                written.extend(write_events(actor, site, events, reason="holding a lane"))
                ready.set()
                release.wait(30)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
            ready.set()
        finally:
            connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    assert ready.wait(30)
    try:
        yield written
    finally:
        release.set()
        thread.join(30)
    assert not errors, errors


def own_digest_store(tmp_path: Path, settings: Any) -> Path:
    """A signing key and a digest directory of the test's own, the key made by `audit anchor --init-key`;
    no digest yet. Returns the directory."""
    from django.core.management import call_command

    from pocare.ledger import anchoring

    key = tmp_path / "keys" / "ed25519.pem"
    settings.POCARE_ANCHOR_KEY = key
    settings.POCARE_ANCHOR_TRUSTED_KEYS = [anchoring.public_key_path(key)]
    settings.STORAGES = {**settings.STORAGES, "digests": {
        "BACKEND": "pocare.ledger.anchoring.DigestDirectoryStorage",
        "OPTIONS": {"location": str(tmp_path / "digests")},
    }}
    with open(os.devnull, "w") as quiet:
        call_command("audit", "anchor", "--init-key", stdout=quiet)
    return tmp_path / "digests"
