"""What this app answers when manufacturing asks (docs/architecture.md, "Asking upward").

- ``manufacturing.lot_release_holds``: a lot of a supplier-managed material is released only when
  its supplier is approved for the material and qualified (SUP-STOCK).
- ``manufacturing.lot_use_holds``: at the step, a lot from a supplier no longer qualified, or a
  stock-managed lot with less stock at the site than the step needs, is refused (a check before the
  step's transaction, to name the material early; the answer below decides under the lot's lock).
- ``manufacturing.materials_used``: in the step's transaction, the uses become ``consumed``
  movements; too little stock refuses the whole step.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from pocare.supply import selectors, services


def lot_release_hold(*, lot: Any) -> str | None:
    """Manufacturing's ``lot_release_holds``: a supplier not approved for the material holds the lot."""
    return selectors.supplier_problem(lot)


def lot_use_hold(*, lot: Any, quantity: Decimal, at: dt.datetime) -> str | None:
    """Manufacturing's ``lot_use_holds``: a supplier no longer qualified, or too little stock."""
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


def materials_used(*, step: Any, uses: list[Any], actor: Any, at: dt.datetime) -> None:
    """Manufacturing's ``materials_used``: the step's uses decrement stock (``services.stock_consume``)."""
    services.stock_consume(actor=actor, uses=uses, at=at)


def register() -> None:
    """Register this app's answers to the questions of the apps below it."""
    from pocare.manufacturing.questions import (  # lint: allow registered from ready(), once apps load
        LOT_RELEASE_HOLDS,
        LOT_USE_HOLDS,
        MATERIALS_USED,
    )

    LOT_RELEASE_HOLDS.register(lot_release_hold)
    LOT_USE_HOLDS.register(lot_use_hold)
    MATERIALS_USED.register(materials_used)
