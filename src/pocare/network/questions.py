"""What the network asks of the apps above it (pocare.core.registry)."""

from __future__ import annotations

from typing import Any

from pocare.core.registry import Question

#: What changed in this product's master file between ``start`` and ``end``? Called as
#: ``(product=, start=, end=)``; the one answer is ``(raised, approved)``: the change requests
#: raised in the period and those approved or implemented in it, for the annual report on the
#: master file (POC-1). The master file answers.
PRODUCT_CHANGES: Question[tuple[list[Any], list[Any]]] = Question(
    "network.product_changes",
    "Which change requests of this product's master file were raised, and which approved, in [start, end)?",
    single=True,
)

