"""What this app answers when manufacturing asks (docs/architecture.md, "Asking upward").

- ``manufacturing.lot_release_holds``: a lot of a supplier-managed material is released only when
  its supplier is approved for the material and qualified (SUP-STOCK).
- ``manufacturing.lot_use_holds``: at the step, a lot from a supplier no longer qualified, or a
  stock-managed lot with less stock at the site than the step needs, is refused (a check before the
  step's transaction, to name the material early; the answer below decides under the lot's lock).
- ``manufacturing.lot_first_out``: the lot a step should take first — released, unexpired, with
  enough stock at the site, the first to expire; a step that takes a later one says why (SUP-STOCK).
- ``manufacturing.materials_used``: in the step's transaction, the uses become ``consumed``
  movements; too little stock refuses the whole step.
- A recalled lot (``recall``, SUP-RECALL) is not released nor used at a step (the two questions above),
  a batch that used it is not certified (``release.certification_holds``) and its product is not
  dispatched (``custody.dispatch_holds``).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from pocare.manufacturing.questions import FirstOut
from pocare.supply import recall, selectors, services


def lot_release_hold(*, lot: Any) -> str | None:
    """Manufacturing's ``lot_release_holds``: a supplier not approved for the material, or a recall."""
    if (held := recall.lot_recall(lot)) is not None:
        return recall.recall_hold_text(held)
    return selectors.supplier_problem(lot)


def lot_use_hold(*, lot: Any, quantity: Decimal, at: dt.datetime) -> str | None:
    """Manufacturing's ``lot_use_holds``: a recall, a supplier no longer qualified, or too little stock."""
    if (held := recall.lot_recall(lot)) is not None:
        return recall.recall_hold_text(held)
    if problem := selectors.supplier_problem(lot):
        return problem
    by_location = selectors.lot_stock_by_location(lot)
    if not by_location:
        return None  # never received into stock: not stock-managed (docs/supply.md)
    available = sum((q for q in by_location.values() if q > 0), Decimal(0))
    if quantity > available:
        return (f"only {selectors.amount(available)} of lot {lot.lot_number} are in stock at {lot.site.code}; "
                f"the step needs {selectors.amount(quantity)}.")
    return None


def lot_first_out(*, site: Any, material_code: str, quantity: Decimal, at: dt.datetime) -> FirstOut | None:
    """Manufacturing's ``lot_first_out``: of the released, unexpired lots of the material with at
    least ``quantity`` in stock at the site, the first to expire (``selectors.fefo_proposal``)."""
    lot = selectors.first_to_take(selectors.fefo_proposal(site=site, material_code=material_code, at=at), quantity)
    return None if lot is None else FirstOut(lot.lot_id, lot.lot_number, lot.expiry_date, lot.quantity)


def materials_used(*, step: Any, uses: list[Any], actor: Any, at: dt.datetime) -> None:
    """Manufacturing's ``materials_used``: the step's uses decrement stock (``services.stock_consume``)."""
    services.stock_consume(actor=actor, uses=uses, at=at)


def recall_certification_holds(batch: Any) -> list[str]:
    """Release's ``certification_holds``: a batch that used a recalled lot is not certified."""
    return recall.batches_recall_holds([batch.pk]).get(batch.pk, [])


def _recall_certification_holds_many(batches: list[Any]) -> list[list[str]]:
    """:func:`recall_certification_holds` for a page of batches (the release queue), in two queries."""
    held = recall.batches_recall_holds([batch.pk for batch in batches])
    return [held.get(batch.pk, []) for batch in batches]


recall_certification_holds.many = _recall_certification_holds_many  # type: ignore[attr-defined]


def recall_dispatch_hold(order: Any) -> str | None:
    """Custody's ``dispatch_holds``: the product of a batch that used a recalled lot is not dispatched."""
    batch_id = getattr(getattr(order, "batch", None), "pk", None)
    reasons = recall.batches_recall_holds([batch_id]).get(batch_id, []) if batch_id is not None else []
    return reasons[0] if reasons else None


def register() -> None:
    """Register this app's answers to the questions of the apps below it."""
    from pocare.custody.questions import DISPATCH_HOLDS  # lint: allow registered from ready(), once apps load
    from pocare.manufacturing.questions import (  # lint: allow registered from ready(), once apps load
        LOT_FIRST_OUT,
        LOT_RELEASE_HOLDS,
        LOT_USE_HOLDS,
        MATERIALS_USED,
    )
    from pocare.release.questions import CERTIFICATION_HOLDS  # lint: allow registered from ready(), once apps load
    from pocare.supply import queues  # lint: allow registered from ready(), once apps load

    LOT_RELEASE_HOLDS.register(lot_release_hold)
    LOT_USE_HOLDS.register(lot_use_hold)
    LOT_FIRST_OUT.register(lot_first_out)
    MATERIALS_USED.register(materials_used)
    CERTIFICATION_HOLDS.register(recall_certification_holds)
    DISPATCH_HOLDS.register(recall_dispatch_hold)
    queues.register()
