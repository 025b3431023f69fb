"""What manufacturing asks of the apps above it (pocare.core.registry)."""

from __future__ import annotations

from pocare.core.registry import Question

#: What holds this lot from use at a step? Called as ``(lot=, at=)``; each answerer returns a
#: reason or ``None``. Asked wherever manufacturing judges a lot (``services.lot_problems``): when
#: a step records the lots it used, and on the release checklist's materials line. The supply app
#: will answer for a recalled lot or stock that is not there; no app answers yet.
LOT_HOLDS: Question[str | None] = Question(
    "manufacturing.lot_holds",
    "What holds this material lot from use at a step (a recall, missing stock)? A reason, or None.",
)

#: What holds the manufacture of this therapy order? Called as ``(order=, at=)``; each answerer
#: returns a reason or ``None``. Asked in ``services.order_start_problems`` (no batch starts) and
#: when a step of the order's batch is started or recorded (``services.step_problems``). The
#: patients app answers for a withdrawn consent (PAT-CONSENT).
ORDER_HOLDS: Question[str | None] = Question(
    "manufacturing.order_holds",
    "What holds the manufacture of this therapy order (a withdrawn consent)? A reason, or None.",
)
