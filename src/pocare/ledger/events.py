"""Typed ledger event types.

Each app declares its event types as a ``TextChoices`` class decorated with
:func:`event_types`; the ledger refuses any event type that is not registered, so the audit
trail's vocabulary is closed and browsable.
"""

from __future__ import annotations

from typing import TypeVar

from django.db import models

T = TypeVar("T", bound=type[models.TextChoices])

_REGISTRY: dict[str, str] = {}


def event_types(choices: T) -> T:
    """Register a TextChoices class of event types (values look like ``app.noun_verb``)."""
    for member in choices:
        if member.value in _REGISTRY:
            raise ValueError(f"event type {member.value!r} registered twice")
        _REGISTRY[str(member.value)] = str(member.label)
    return choices


def registered() -> dict[str, str]:
    """All event types known to the ledger, value → label, sorted by value."""
    return dict(sorted(_REGISTRY.items()))


def is_registered(value: str) -> bool:
    return value in _REGISTRY


@event_types
class LedgerEvent(models.TextChoices):
    EXPORTED = "ledger.trail_exported", "Audit trail exported"
    VERIFIED = "ledger.trail_verified", "Audit trail verified"
    REVIEWED = "ledger.trail_reviewed", "Audit trail reviewed and signed"
    SIGNED = "ledger.record_signed", "Record signed electronically"
    SIGNING_FAILED = "ledger.signing_failed", "Signing refused: wrong credentials"
    TRIGGERS_INSTALLED = "ledger.triggers_installed", "Append-only triggers installed"
    RESTORE_LOSS_ACKNOWLEDGED = ("ledger.restore_loss_acknowledged",
                                 "Anchored history lost by a restore acknowledged")
