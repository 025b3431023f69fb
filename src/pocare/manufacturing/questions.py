"""What manufacturing asks of the apps above it (pocare.core.registry)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pocare.core.registry import Question

#: What holds this lot from use at a step? Called as ``(lot=, at=)``; each answerer returns a
#: reason or ``None``. Asked wherever manufacturing judges a lot (``services.lot_problems``): when
#: a step records the lots it used, and on the release checklist's materials line (once per past
#: use). No app answers: the supply app holds a recalled lot through ``lot_use_holds`` at the step and
#: ``release.certification_holds`` on the checklist, which it answers for a page of batches at once.
LOT_HOLDS: Question[str | None] = Question(
    "manufacturing.lot_holds",
    "What holds this material lot from use at a step (a recall, missing stock)? A reason, or None.",
)

#: What holds this quantity of this lot from use at the step being recorded now? Called as
#: ``(lot=, quantity=, at=)``; each answerer returns a reason or ``None``. Asked only for a use
#: about to happen (``services._resolve_lots``), never when a past use is replayed (the release
#: checklist): stock and a supplier's qualification are judged at the moment of use. The supply app
#: answers (no stock left for the quantity, a disqualified supplier).
LOT_USE_HOLDS: Question[str | None] = Question(
    "manufacturing.lot_use_holds",
    "What holds this quantity of a material lot from use at the step now (no stock)? A reason, or None.",
)

@dataclass(frozen=True)
class FirstOut:
    """The lot of a material a step at a site should take first (first expiry, first out): released,
    unexpired, with at least the step's quantity in stock there, the first of those to expire."""

    lot_id: int
    lot_number: str
    expiry_date: dt.date
    in_stock: Decimal


#: Which lot of this material should a step at this site take now, first expiry first out? Called
#: as ``(site=, material_code=, quantity=, at=)``; each answerer returns a :class:`FirstOut` or
#: ``None`` (it keeps no stock of the material there). Asked when the step's form proposes its lots
#: (``selectors.lot_choices``) and when a step records its uses (``services._resolve_lots``): a lot
#: that expires later than the one proposed is used only with a reason, kept with the use (SUP-STOCK).
#: The supply app answers from the stock its movements add up to.
LOT_FIRST_OUT: Question[FirstOut | None] = Question(
    "manufacturing.lot_first_out",
    "Which lot of a material should a step at a site take first (first expiry, first out)? The lot, or None.",
)


def first_out(*, site: Any, material_code: str, quantity: Decimal, at: dt.datetime) -> FirstOut | None:
    """The lot every answer to :data:`LOT_FIRST_OUT` agrees expires first, or None."""
    answers = [a for a in LOT_FIRST_OUT.ask(site=site, material_code=material_code, quantity=quantity, at=at)
               if a is not None]
    return min(answers, key=lambda a: (a.expiry_date, a.lot_id), default=None)


#: What holds this lot in quarantine from release? Called as ``(lot=)``; each answerer returns a
#: reason or ``None``. Asked in ``services.lot_decide`` before a lot is released (a rejection is
#: never held). The supply app answers for a lot whose supplier is not approved for the material.
LOT_RELEASE_HOLDS: Question[str | None] = Question(
    "manufacturing.lot_release_holds",
    "What holds this material lot from release (a supplier not approved for it)? A reason, or None.",
)

#: The material uses a step has just written, in the step's own transaction. Called as
#: ``(step=StepExecution, uses=[MaterialUse, ...], actor=, at=)``; answers return nothing. An
#: answerer that cannot account for a use (not enough stock of the lot) raises ValidationError
#: naming ``materials.<code>``, and the whole step rolls back. The supply app answers by writing
#: the ``consumed`` stock movements (SUP-STOCK).
MATERIALS_USED: Question[None] = Question(
    "manufacturing.materials_used",
    "A step used these material lots (in its transaction): account for them (decrement stock) or refuse.",
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


#: How many batches are booked to start at these sites over a period, per product? Called as
#: ``(sites=[site_id, ...], starts=, ends=)``; each answerer returns ``{(site_id, product_id): count}``.
#: Asked by the supply app for the material its sites will need (reorder points from the booked schedule,
#: SUP-STOCK); the patients app answers with its active slot-chain bookings whose manufacturing window
#: starts in ``[starts, ends)``. A question of the batch record both can import: supply and patients sit
#: side by side and never import each other.
BOOKED_BATCHES: Question[dict[tuple[int, int], int]] = Question(
    "manufacturing.booked_batches",
    "How many batches are booked to start at these sites over a period, per product? {(site, product): n}",
)


def booked_batches(*, sites: list[int], starts: dt.datetime, ends: dt.datetime) -> dict[tuple[int, int], int]:
    """Every answer to :data:`BOOKED_BATCHES`, added up."""
    out: dict[tuple[int, int], int] = {}
    if not sites:
        return out
    for answer in BOOKED_BATCHES.ask(sites=sites, starts=starts, ends=ends):
        for key, count in answer.items():
            out[key] = out.get(key, 0) + count
    return out
