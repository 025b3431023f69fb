"""Plausible values only (DI-ALCOA "accurate"): what a recorded value or timestamp can possibly be,
apart from what the specification accepts.

A value outside its *specification* is a real measurement of a bad product or process: it is
recorded and goes the out-of-specification / deviation route. A value outside its *physical
bounds* (viability 101 %, endotoxin −1 EU/mL, a culture at −300 °C) or a timestamp outside the
window in which the record can exist (a device reading dated 1900 for a batch started in 2026)
is not a measurement at all: it is refused, nothing is stored, and the message names the field,
the value and what is allowed.

Physical bounds come from the master file: a parameter, monitored value or quality attribute may
carry ``physical: {min, max}``; when the author gives none, they follow from the unit
(:data:`UNIT_BOUNDS`). The same rule is used when a version stored before ``physical`` existed is
read, so every version has bounds. The time windows are the constants below. docs/governance.md
("Plausible values") describes both.

Pure module (no Django import): the master-file schema, the batch record, the device feed and the
chain of custody use the same rules.
"""

from __future__ import annotations

import datetime as dt
import math
import unicodedata
from collections.abc import Mapping
from typing import Any

#: The lowest temperature there is (0 K) and a ceiling no cell-therapy process or shipment reaches.
ABSOLUTE_ZERO_C = -273.15
MAX_PROCESS_C = 200.0

Bounds = tuple[float | None, float | None]

#: Physical bounds that follow from the unit when the master file states none. A fraction in
#: percent lies in 0–100; counts, concentrations, masses, volumes, durations, ratios and doses are
#: never negative; a temperature lies between absolute zero and 200 °C. No unit (pH, a ratio the
#: author leaves unitless): no default — the author states ``physical`` (pH 0–14 in the demo).
UNIT_BOUNDS: dict[str, Bounds] = {
    "%": (0.0, 100.0),
    "°C": (ABSOLUTE_ZERO_C, MAX_PROCESS_C),
    **dict.fromkeys((
        "cells", "cells/kg", "10^6 cells", "10^6 cells/kg", "EU/mL", "copies/cell", "pg/mL", "min", "h", "d",
        "mL", "L", "rpm", "MOI", "fold", "count", "bag", "vial", "kit", "mg", "µg", "g"), (0.0, None)),
}

# --- time windows (one place; docs/governance.md "Plausible values" quotes them) ------------------

#: How far ahead of the server clock a device or logger timestamp may be (their clocks drift).
CLOCK_SKEW = dt.timedelta(minutes=5)
#: How long before the batch's start a device reading may be dated: the device runs its program
#: and self-test while the operator starts the batch record.
DEVICE_BEFORE_BATCH_START = dt.timedelta(hours=1)
#: How long before the shipment is dispatched a logger reading may be dated: the logger is started
#: when the shipper is packed and conditioned, before the courier leaves (estimate).
LOGGER_BEFORE_DISPATCH = dt.timedelta(hours=12)
#: Text parameters: at most this many characters.
MAX_TEXT = 500


class Implausible(ValueError):
    """The value cannot exist; the message names the value and what is allowed."""


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def physical_bounds(spec: Mapping[str, Any]) -> Bounds:
    """The physical bounds of a parameter, monitored value or attribute (a master-file mapping):
    its ``physical`` section where given (either end may be left open), else those of its unit."""
    stated = spec.get("physical")
    if isinstance(stated, Mapping) and (stated.get("min") is not None or stated.get("max") is not None):
        return _finite(stated.get("min")), _finite(stated.get("max"))
    return UNIT_BOUNDS.get(str(spec.get("unit") or ""), (None, None))


def bounds_text(bounds: Bounds, unit: str = "") -> str:
    """``0–100 %``, ``≥ 0 EU/mL``, ``≤ 14``, or ``any number``."""
    low, high = bounds
    u = f" {unit}" if unit else ""
    if low is not None and high is not None:
        return f"{low:g} to {high:g}{u}"
    if low is not None:
        return f"≥ {low:g}{u}"
    if high is not None:
        return f"≤ {high:g}{u}"
    return "any finite number"


def outside(value: float, bounds: Bounds) -> bool:
    low, high = bounds
    return (low is not None and value < low) or (high is not None and value > high)


def check_physical(spec: Mapping[str, Any], value: float, *, name: str | None = None) -> None:
    """Raise :class:`Implausible` when ``value`` lies outside the physical bounds of ``spec``."""
    bounds = physical_bounds(spec)
    if outside(value, bounds):
        unit = str(spec.get("unit") or "")
        label = name or spec.get("name") or spec.get("id") or "value"
        raise Implausible(f"{label}: {value:g}{' ' + unit if unit else ''} is not a possible value; the physical "
                          f"range is {bounds_text(bounds, unit)} (a value outside it cannot be a measurement, "
                          "so nothing was recorded).")


def check_text(value: Any, *, name: str, max_length: int = MAX_TEXT) -> str:
    """A text value: a string (not a list, mapping, number or true/false), without control
    characters (tab and line breaks excepted), at most ``max_length`` characters; returned stripped."""
    if not isinstance(value, str):
        raise Implausible(f"{name}: {str(value)[:40]!r} is not text ({type(value).__name__}); "
                          "a text parameter takes a string.")
    text = value.strip()
    bad = next((c for c in text if unicodedata.category(c) in ("Cc", "Cs") and c not in "\t\r\n"), None)
    if bad is not None:
        raise Implausible(f"{name}: the control character U+{ord(bad):04X} is not allowed in text; "
                          "use printable characters.")
    if len(text) > max_length:
        raise Implausible(f"{name}: {len(text)} characters; at most {max_length}.")
    return text


def duration_text(span: dt.timedelta) -> str:
    """``1 h``, ``5 min``, ``12 h``: a window margin in words."""
    minutes = int(span.total_seconds() // 60)
    return f"{minutes // 60} h" if minutes % 60 == 0 else f"{minutes} min"


def _iso(at: dt.datetime) -> str:
    try:
        return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, ValueError):  # year 1 with a positive offset has no UTC time
        return at.isoformat()


def window_problem(at: dt.datetime, *, earliest: dt.datetime | None, latest: dt.datetime, what: str) -> str:
    """``""`` when ``at`` lies in ``[earliest, latest]``, else a sentence naming the time and the window."""
    try:
        inside = (earliest is None or at >= earliest) and at <= latest
    except OverflowError:  # year 1 or 9999 with an offset: outside any window
        inside = False
    if inside:
        return ""
    window = f"between {_iso(earliest)} and {_iso(latest)}" if earliest is not None else f"before {_iso(latest)}"
    try:
        early = earliest is not None and at < earliest
    except OverflowError:
        early = at.year < latest.year
    side = "before" if early else "after"
    return f"{_iso(at)} is {side} the window for {what}; allowed: {window}"
