"""What this app answers when a lower app asks (docs/architecture.md, "Asking upward")."""

from __future__ import annotations


def register() -> None:
    """Register this app's answers to the questions of the apps below it."""
    # Imports inside register(), called from ready(): the booking module imports models.
    from pocare.manufacturing.questions import UNIT_RESERVATIONS
    from pocare.patients.booking import unit_reservations

    # A booked manufacturing slot keeps its unit from another order's batch.
    UNIT_RESERVATIONS.register(unit_reservations)
