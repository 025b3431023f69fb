"""What custody asks of the apps above it (pocare.core.registry)."""

from __future__ import annotations

from pocare.core.registry import Question

#: What holds the dispatch of this order's product to the hospital? Called as ``(order)``; each
#: answerer returns the reason it holds the product, or ``None``. Release answers today (no
#: completed batch certified by the QP, ATMP-REL, POC-7); the patients app will answer for a
#: withdrawn consent and the supply app for a recalled lot. Required: without an answerer,
#: custody refuses to dispatch rather than assume that nothing holds the product.
DISPATCH_HOLDS: Question[str | None] = Question(
    "custody.dispatch_holds",
    "What holds the dispatch of this order's product to the hospital? A reason, or None.",
    required=True,
)
