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
