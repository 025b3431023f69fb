"""What the patients app asks of the apps above it (pocare.core.registry)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pocare.core.registry import Question

#: How many minutes does it take to travel between the hospital and each site? Called as
#: ``(origin=Site, destinations=[Site, ...])``; the answer maps each destination's pk to minutes
#: one way (0 for the origin itself). Planning answers with its travel model
#: (``pocare.planning.travel``): the booking ranks the sites that could make a patient's product by it.
TRAVEL_MINUTES: Question[dict[int, float]] = Question(
    "patients.travel_minutes",
    "Travel minutes one way from a hospital to each candidate manufacturing site (planning's travel model).",
    single=True,
)


def travel_minutes(origin: Any, destinations: Sequence[Any]) -> dict[int, float]:
    """Minutes one way from ``origin`` to each of ``destinations``, by pk (asked of planning)."""
    return TRAVEL_MINUTES.ask_one(origin=origin, destinations=list(destinations))
