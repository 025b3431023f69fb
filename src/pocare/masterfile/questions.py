"""What the master file asks of the apps above it (pocare.core.registry)."""

from __future__ import annotations

from typing import Any

from pocare.core.registry import Question

#: Who at this site is not yet trained on this version? Called as ``(site=, version=, at=)``;
#: each answerer returns ``[(person, [step ids they still lack]), ...]``. A version becomes
#: effective at a site only when no answer names anyone (P11-10i). Training answers; required, so
#: that without it no version is taken to be trained.
TRAINING_GAPS: Question[list[tuple[Any, list[str]]]] = Question(
    "masterfile.training_gaps",
    "Who at this site is not yet trained on the steps of this version? [(person, [step ids])].",
    required=True,
)
