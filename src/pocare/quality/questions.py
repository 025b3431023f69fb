"""What quality asks of the apps above it (pocare.core.registry)."""

from __future__ import annotations

from pocare.core.registry import Question

#: Which record of this batch revealed the deviation, and where is it shown? Called as
#: ``(deviation)``; an answerer returns ``(label, url)`` or ``None``, and the first answer given
#: is used. Manufacturing answers for a QC result out of specification.
DEVIATION_SOURCE: Question[tuple[str, str] | None] = Question(
    "quality.deviation_source",
    "Which record of the deviation's batch revealed it, and where is that record shown? (label, url) or None.",
)
