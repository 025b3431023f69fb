"""What release asks of the apps above it (pocare.core.registry)."""

from __future__ import annotations

from pocare.core.registry import Question

#: Is anything holding this batch from certification? Called as ``(batch)``; each answerer
#: returns a list of reasons (empty: nothing holds it). When any app answers, the release
#: checklist has a line "Holds from other apps" that fails while a reason is given, so the QP
#: cannot certify (ATMP-REL). The patients app will answer for a withdrawn consent, the supply
#: app for a recalled lot; no app answers yet, and the checklist is then as it always was.
CERTIFICATION_HOLDS: Question[list[str]] = Question(
    "release.certification_holds",
    "Is anything holding this batch from certification (a withdrawn consent, a recall)? Reasons.",
)
