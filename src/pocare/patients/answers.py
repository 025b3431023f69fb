"""What this app answers when a lower app asks (docs/architecture.md, "Asking upward").

A withdrawn consent (PAT-CONSENT) holds everything derived from the patient's material: the
manufacture of the order (``manufacturing.order_holds``: a batch neither starts nor records a step),
the QP's certification (``release.certification_holds``: a failing line on the release checklist)
and the dispatch to the hospital (``custody.dispatch_holds``). The work queues of the pathway are
registered here too, as the web shell registers those of the apps below."""

from __future__ import annotations

from typing import Any

from pocare.patients.selectors import withdrawn_consent_hold, withdrawn_consent_holds


def consent_dispatch_hold(order: Any) -> str | None:
    """Custody's ``dispatch_holds``: the product of a withdrawn consent is not dispatched."""
    return withdrawn_consent_hold(order)


def consent_certification_holds(batch: Any) -> list[str]:
    """Release's ``certification_holds``: the batch of a withdrawn consent is not certified."""
    reason = withdrawn_consent_hold(getattr(batch, "order", None))
    return [reason] if reason else []


def _certification_holds_many(batches: list[Any]) -> list[list[str]]:
    """:func:`consent_certification_holds` for a page of batches, in one query (the release queue)."""
    reasons = withdrawn_consent_holds([batch.order_id for batch in batches])
    return [[reasons[batch.order_id]] if batch.order_id in reasons else [] for batch in batches]


consent_certification_holds.many = _certification_holds_many  # type: ignore[attr-defined]


def consent_order_hold(*, order: Any, at: Any = None) -> str | None:
    """Manufacturing's ``order_holds``: the material of a withdrawn consent is not manufactured."""
    return withdrawn_consent_hold(order)


def register() -> None:
    """Register this app's answers to the questions of the apps below it, and its work queues."""
    from pocare.custody.questions import DISPATCH_HOLDS  # lint: allow registered from ready(), once apps load
    from pocare.manufacturing.questions import (  # lint: allow registered from ready(), once apps load
        BOOKED_BATCHES,
        ORDER_HOLDS,
        UNIT_RESERVATIONS,
    )
    from pocare.patients import queues  # lint: allow registered from ready(), once apps load
    from pocare.patients.booking import (  # lint: allow registered from ready(), once apps load
        booked_batches,
        unit_reservations,
    )
    from pocare.release.questions import CERTIFICATION_HOLDS  # lint: allow registered from ready(), once apps load

    DISPATCH_HOLDS.register(consent_dispatch_hold)
    CERTIFICATION_HOLDS.register(consent_certification_holds)
    ORDER_HOLDS.register(consent_order_hold)
    # A booked manufacturing slot keeps its unit from another order's batch.
    UNIT_RESERVATIONS.register(unit_reservations)
    # The chains booked at a site tell supply what material the site will need (reorder points).
    BOOKED_BATCHES.register(booked_batches)
    queues.register()
