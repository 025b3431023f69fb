"""Units as people write them, in one place: ``10^6 cells/kg`` prints ``10⁶ cells/kg``, ``uL`` prints
``µL``, ``degC`` prints ``°C``. The master file, the records and the signed snapshots keep the unit as
the master file writes it (ASCII ``10^6``, typed on any keyboard and compared character by character
across sites); only what a person reads — pages, certificates, labels, charts, messages — goes
through :func:`unit_text`. In templates: ``{% load units %}`` ``{{ value|unit }}``.

It works on a unit alone and on a text that contains one: after a number the power of ten is a
product (``1.2 10^6 cells/kg`` → ``1.2 × 10⁶ cells/kg``, ``≥ 0.5 × 10⁶ cells/kg``), so a stored
result or criterion is printed without being parsed apart. No Django import
(the charts and the pure modules use it too).
"""

from __future__ import annotations

import re
from decimal import Decimal

_SUPERSCRIPT = str.maketrans("0123456789-+", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺")
#: ``10^6``, ``10^-3``, ``m^2``: a caret followed by an optional sign and digits.
_POWER = re.compile(r"\^([-+]?\d+)")
#: A number followed by a power of ten (``1.2 10^6``, ``0.5–5 10^6``) is a product: ``1.2 × 10⁶``.
_TIMES = re.compile(r"(\d)\s+10\^")
#: ASCII spellings of symbols a keyboard lacks, as whole words only (``u`` is micro before L, g,
#: m, mol; ``degC`` / ``deg C`` is degrees Celsius), so that free text around them is left alone.
_SYMBOLS = (
    (re.compile(r"(?<![\w/])u(L|l|g|m|mol|M)\b"), lambda m: "µ" + ("L" if m.group(1) == "l" else m.group(1))),
    (re.compile(r"\bdeg ?C\b"), lambda m: "°C"),
)


def unit_text(text: object) -> str:
    """``text`` with its units written as people write them; ``None`` is the empty text."""
    if text is None:
        return ""
    shown = str(text)
    if "^" in shown:
        shown = _TIMES.sub(r"\1 × 10^", shown)
        shown = _POWER.sub(lambda m: m.group(1).translate(_SUPERSCRIPT), shown)
    for pattern, replace in _SYMBOLS:
        shown = pattern.sub(replace, shown)
    return shown


def quantity_text(value: object, unit: object) -> str:
    """A value with its unit: ``quantity_text(1.2, "10^6 cells/kg")`` → ``1.2 × 10⁶ cells/kg``."""
    return unit_text(f"{'' if value is None else value} {unit or ''}".strip())


def amount_text(quantity: object) -> str:
    """A quantity as people write it: ``3``, ``2.5`` (not ``3.000``, ``2.500``), whichever database
    summed it; ``—`` for none."""
    if quantity is None or quantity == "":
        return "—"
    text = f"{Decimal(str(quantity)):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
