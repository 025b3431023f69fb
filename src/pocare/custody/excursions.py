"""Temperature excursions of a shipping data logger: the spans of consecutive readings outside the
limits. Pure module (no Django): usable on its own and tested without a database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Excursion:
    """Consecutive readings outside the limits: first and last reading's time, the extreme value
    (furthest from the limit it broke) and how many readings."""

    start: dt.datetime
    end: dt.datetime
    extreme: Decimal
    count: int
    side: str  # "high" or "low"

    def as_record(self) -> dict[str, str | int]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "extreme": str(self.extreme),
                "readings": self.count, "side": self.side}


def outside(value: Decimal, low: Decimal | None, high: Decimal | None) -> str:
    """``"low"``, ``"high"`` or ``""`` (within the limits, which are inclusive)."""
    if low is not None and value < low:
        return "low"
    if high is not None and value > high:
        return "high"
    return ""


def excursions_find(
    readings: Iterable[tuple[dt.datetime, Decimal]], low: Decimal | None, high: Decimal | None
) -> list[Excursion]:
    """The excursions in ``readings`` (sorted by time here) against inclusive ``low``/``high``
    limits (``None``: no limit on that side). A span ends at the first reading back inside, or
    when the reading crosses to the other side (a new span begins)."""
    found: list[Excursion] = []
    span: list[tuple[dt.datetime, Decimal]] = []
    side = ""

    def close() -> None:
        if span:
            values = [v for _, v in span]
            extreme = max(values) if side == "high" else min(values)
            found.append(Excursion(start=span[0][0], end=span[-1][0], extreme=extreme, count=len(span), side=side))

    for at, value in sorted(readings, key=lambda r: r[0]):
        now = outside(value, low, high)
        if now != side:
            close()
            span, side = [], now
        if now:
            span.append((at, value))
    close()
    return found
