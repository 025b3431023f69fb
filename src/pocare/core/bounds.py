"""Transport-level bounds on input: what any value must satisfy before a form, serializer or service
looks at its meaning. Each check answers a message that names what is allowed, or ``None``.

- text: no NUL character (PostgreSQL cannot store it) and no lone surrogate (not encodable as UTF-8);
- numbers: at most :data:`MAX_NUMBER_DIGITS` digits, finite, inside the range of a double;
- dates and times: years :data:`YEAR_MIN`–:data:`YEAR_MAX`, checked *before* any time-zone conversion
  (year 1 or 9999 with an offset overflows when converted to UTC);
- JSON: at most :data:`MAX_JSON_DEPTH` levels of nesting; its strings and numbers as above (a string
  written as an ISO date counts as a date).

Domain plausibility (a reading inside its batch's window, a percentage 0–100) is the services' job.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Iterator
from typing import Any

MAX_JSON_DEPTH = 32
MAX_NUMBER_DIGITS = 30
#: Query-string values (searches, filters, next pages): SQLite refuses LIKE patterns over 50,000 bytes.
MAX_QUERY_VALUE_CHARS = 2000
YEAR_MIN, YEAR_MAX = 1900, 2200
#: Request bodies outside file uploads (also DATA_UPLOAD_MAX_MEMORY_SIZE): the largest legitimate
#: one is a master-file document (400 KB as text, up to ~2.4 MB once JSON-escaped worst case).
MAX_BODY_BYTES = 2_621_440

_SURROGATE = re.compile("[\ud800-\udfff]")
_NUMBER = re.compile(r"\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*")
_ISO_YEAR = re.compile(r"\s*([+-]?\d{4,})-\d{2}-\d{2}(?:[T ]\d.*)?", re.DOTALL)


class InputRefused(ValueError):
    """A value outside the transport bounds; ``field`` names where it was, ``message`` what is allowed."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field or "detail"
        self.message = message


def preview(value: str, limit: int = 24) -> str:
    """A short, printable preview of a refused value (never the whole of a huge string)."""
    shown = value[:limit].encode("unicode_escape", "backslashreplace").decode("ascii")
    return shown + ("…" if len(value) > limit else "")


def text_problem(value: str) -> str | None:
    if "\x00" in value:
        return "the NUL character (\\x00) is not allowed in text"
    if _SURROGATE.search(value):
        return "lone surrogate characters (\\ud800–\\udfff) are not allowed; send valid Unicode text"
    return None


def has_control(value: str, *, allowed: str = "") -> bool:
    """Whether ``value`` holds a control character (C0 or DEL: a NUL, a bell, an escape…) other than
    those in ``allowed`` (a line break and a tab, in text of several lines)."""
    return any((ord(c) < 32 or ord(c) == 127) and c not in allowed for c in value)


def number_text_problem(value: str) -> str | None:
    """For a value written as a number (form fields, query strings): too many digits, or not finite."""
    if not _NUMBER.fullmatch(value):
        return None
    if len(re.sub(r"\D", "", value.split("e")[0].split("E")[0])) > MAX_NUMBER_DIGITS:
        return f"{preview(value.strip())!r} has more digits than allowed; numbers may have at most {MAX_NUMBER_DIGITS}"
    try:
        number = float(value)
    except (ValueError, OverflowError):
        number = math.inf
    if not math.isfinite(number):
        return f"{preview(value.strip())!r} is outside the range of numbers (about ±1.8e308)"
    return None


def year_problem(year: int) -> str | None:
    if not YEAR_MIN <= year <= YEAR_MAX:
        return f"year {year} is outside the allowed years {YEAR_MIN}–{YEAR_MAX}"
    return None


def datetime_problem(value: dt.date) -> str | None:
    """A date or datetime (aware or not) whose own year, before any conversion, is outside the window."""
    return year_problem(value.year)


def iso_text_problem(value: str) -> str | None:
    """A value written as an ISO date or date-time whose year is outside the window (checked on the text)."""
    match = _ISO_YEAR.fullmatch(value)
    if match is None:
        return None
    try:
        return year_problem(int(match.group(1)))
    except ValueError:
        return None


def form_value_problem(value: str) -> str | None:
    """What a decoded form or query-string value may not be, whatever the field. (Dates are left to
    the form's own date fields, :mod:`pocare.core.fields`, so the error shows beside the field.)"""
    return text_problem(value) or number_text_problem(value)


# --- JSON ----------------------------------------------------------------------------------------


class _Refused:
    """Stands in (during decoding) for a number the bounds refuse, so the walk can name its place."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


def _parse_int(text: str) -> Any:
    if len(text.lstrip("-")) > MAX_NUMBER_DIGITS:
        return _Refused(f"{preview(text)!r} has more digits than allowed; numbers may have at most "
                        f"{MAX_NUMBER_DIGITS}")
    return int(text)


def _parse_float(text: str) -> Any:
    mantissa = re.split("[eE]", text)[0]
    if len(re.sub(r"\D", "", mantissa)) > MAX_NUMBER_DIGITS:
        return _Refused(f"{preview(text)!r} has more digits than allowed; numbers may have at most "
                        f"{MAX_NUMBER_DIGITS}")
    number = float(text)
    if not math.isfinite(number):
        return _Refused(f"{preview(text)!r} is outside the range of numbers (about ±1.8e308)")
    return number


def _parse_constant(text: str) -> Any:
    return _Refused(f"{text} is not a number JSON allows; send a finite number")


def _path(parts: tuple[str | int, ...]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _walk(value: Any, where: tuple[str | int, ...], depth: int) -> Iterator[tuple[str, str]]:
    """(field path, problem) for every refused value, depth-first without recursion."""
    stack: list[tuple[Any, tuple[str | int, ...], int]] = [(value, where, depth)]
    while stack:
        value, where, depth = stack.pop()
        if isinstance(value, dict | list) and depth > MAX_JSON_DEPTH:
            yield _path(where), f"JSON nested deeper than {MAX_JSON_DEPTH} levels"
            return
        if isinstance(value, dict):
            for key, item in value.items():
                problem = text_problem(key)
                if problem:
                    yield _path(where) or "detail", f"key {preview(key)!r}: {problem}"
                    continue
                stack.append((item, (*where, key), depth + 1))
        elif isinstance(value, list):
            stack.extend((item, (*where, i), depth + 1) for i, item in enumerate(value))
        elif isinstance(value, str):
            problem = text_problem(value) or iso_text_problem(value)
            if problem:
                yield _path(where) or "detail", problem
        elif isinstance(value, _Refused):
            yield _path(where) or "detail", value.message


def loads_json(text: str | bytes) -> Any:
    """Decode JSON within the bounds; raise :class:`InputRefused` naming the first field out of bounds,
    or ``ValueError`` for text that is not JSON."""
    try:
        data = json.loads(text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant)
    except RecursionError:
        raise InputRefused("detail", f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    for field, problem in _walk(data, (), 1):
        raise InputRefused(field, problem)
    return data
