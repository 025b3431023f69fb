"""What the master file asks of the apps above it (pocare.core.registry)."""

from __future__ import annotations

from typing import Any

from pocare.core.registry import Question

#: Who at each site is not yet trained on each version? Called as ``(cases=[(site, version, at), ...])``
#: — many at once, so that a page asking it for every batch or every site asks once; each answerer
#: returns, for each case in order, ``[(person, [step ids they still lack]), ...]``. A version becomes
#: effective at a site only when no answer names anyone (P11-10i). Training answers; required, so
#: that without it no version is taken to be trained.
TRAINING_GAPS: Question[list[list[tuple[Any, list[str]]]]] = Question(
    "masterfile.training_gaps",
    "Who at each site is not yet trained on the steps of each version? Per (site, version, at): "
    "[(person, [step ids])].",
    required=True,
)
