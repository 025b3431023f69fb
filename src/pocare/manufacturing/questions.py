"""What manufacturing asks of the apps above it (pocare.core.registry)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from pocare.core.registry import Question

#: What holds this lot from use at a step? Called as ``(lot=, at=)``; each answerer returns a
#: reason or ``None``. Asked wherever manufacturing judges a lot (``services.lot_problems``): when
#: a step records the lots it used, and on the release checklist's materials line. The supply app
#: will answer for a recalled lot or stock that is not there; no app answers yet.
LOT_HOLDS: Question[str | None] = Question(
    "manufacturing.lot_holds",
    "What holds this material lot from use at a step (a recall, missing stock)? A reason, or None.",
)


@dataclass(frozen=True)
class UnitReservation:
    """A unit kept for a therapy order over ``[starts, ends)``: ``label`` names it for people
    (a booking of the patients app, by the order's pseudonymous recipient)."""

    unit_id: int
    order_id: int | None
    starts: dt.datetime
    ends: dt.datetime
    label: str


#: Which of these units are kept for an order at ``at``, or kept for ``order`` at any time? Called
#: as ``(units=[unit_id, ...], at=, order=)``; each answerer returns the reservations. Asked in
#: ``unit_problems`` when a batch is about to start: a unit kept for another order over ``at``
#: refuses this order's batch, and the unit kept for this order is offered first. The patients app
#: answers with the manufacturing window of each active slot-chain booking.
UNIT_RESERVATIONS: Question[list[UnitReservation]] = Question(
    "manufacturing.unit_reservations",
    "Which units are kept for a therapy order at a moment (a booked manufacturing slot)? The reservations.",
)


def unit_reservations(*, unit_ids: list[int], at: dt.datetime, order: Any = None) -> list[UnitReservation]:
    """Every answer to :data:`UNIT_RESERVATIONS`, in one list."""
    if not unit_ids:
        return []
    return [r for answer in UNIT_RESERVATIONS.ask(units=unit_ids, at=at, order=order) for r in answer]
#: What holds the manufacture of this therapy order? Called as ``(order=, at=)``; each answerer
#: returns a reason or ``None``. Asked in ``services.order_start_problems`` (no batch starts) and
#: when a step of the order's batch is started or recorded (``services.step_problems``). The
#: patients app answers for a withdrawn consent (PAT-CONSENT).
ORDER_HOLDS: Question[str | None] = Question(
    "manufacturing.order_holds",
    "What holds the manufacture of this therapy order (a withdrawn consent)? A reason, or None.",
)
