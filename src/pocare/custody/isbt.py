"""ISBT 128 Donation Identification Numbers and POCare's Chain of Identity identifiers (ISBT-DIN,
ISBT-COI). Pure module: no Django import, usable and testable as a library.

**DIN** (ISBT 128 Standard, data structure 001): 13 characters — the facility identification
number (5: a letter and four letters or digits), the year of collection (2 digits) and a sequence
number within facility and year (6 digits) — followed by two flag characters and, printed in a
box beside the eye-readable number, a check character computed with ISO 7064 mod 37-2 over the
13 characters (alphabet ``0-9 A-Z *``). The check character is not part of the bar code; it is
what people type to show they read the number right. Printed: ``P1001 26 000001 00 [Q]``.

**COI**: the ICCBBA Chain of Identity identifier (ST-028) has a licensed structure that POCare
does not claim to implement. POCare's own COI has this documented shape, 15 characters::

    C  facility(5)  year(2)  sequence(6)  check(1)      e.g.  C P1001 26 000001 *

``C`` marks a COI for people reading it (each hand-off expects one kind of identifier, so a
scanned COI is never taken for a DIN or the other way round), the facility is the POCare site that
accepted the order, the year is when it was accepted, the sequence counts COIs per facility and
year, and the check character is ISO 7064 mod 37-2 over the first 14 characters. One COI per
therapy order, assigned at acceptance (before the first collection), never edited.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from stdnum.iso7064 import mod_37_2

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*"
FACILITY = re.compile(r"^[A-Z][A-Z0-9]{4}$")
_SEPARATORS = re.compile(r"[\s\-]+")


class IdentifierError(ValueError):
    """A DIN or COI that is not well formed; the message says what is wrong and what is allowed."""


@dataclass(frozen=True)
class Din:
    """A parsed DIN: its 13 characters, flags (when given) and the check character."""

    din: str
    flags: str | None
    check: str
    check_given: bool

    @property
    def facility(self) -> str:
        return self.din[:5]

    @property
    def year(self) -> str:
        return self.din[5:7]

    @property
    def sequence(self) -> str:
        return self.din[7:]

    @property
    def printed(self) -> str:
        """Eye-readable, as on a label: ``P1001 26 000001 00 Q``."""
        return f"{self.facility} {self.year} {self.sequence} {self.flags or '00'} {self.check}"


def normalize(text: str) -> str:
    """Upper-case, without spaces or hyphens, and without the ISBT 128 data identifier ``=`` that a
    scanner reads in front of a DIN."""
    value = _SEPARATORS.sub("", str(text or "")).upper()
    return value[1:] if value.startswith("=") else value


def _check(chars: str) -> str:
    return str(mod_37_2.calc_check_digit(chars, alphabet=ALPHABET))


def _parts_problems(din13: str) -> list[str]:
    problems = []
    facility, year, sequence = din13[:5], din13[5:7], din13[7:]
    if not FACILITY.match(facility):
        problems.append(f"the facility id {facility!r} must be a letter followed by four letters or digits")
    if not (year.isdigit() and year.isascii()):
        problems.append(f"the year {year!r} must be two digits")
    if not (sequence.isdigit() and sequence.isascii()):
        problems.append(f"the sequence {sequence!r} must be six digits")
    return problems


def din_check_character(din13: str) -> str:
    """The ISO 7064 mod 37-2 check character of a 13-character DIN."""
    value = normalize(din13)
    if len(value) != 13:
        raise IdentifierError(f"A DIN has 13 characters before its flags and check; {value!r} has {len(value)}.")
    problems = _parts_problems(value)
    if problems:
        raise IdentifierError(f"{value} is not a DIN: " + "; ".join(problems) + ".")
    return _check(value)


def din_build(facility: str, year: int, sequence: int) -> tuple[str, str]:
    """The DIN of ``sequence`` at ``facility`` in ``year`` (the last two digits count) and its check."""
    facility = normalize(facility)
    if not FACILITY.match(facility):
        raise IdentifierError(f"The facility id {facility!r} must be a letter followed by four letters or digits.")
    if not 0 < sequence <= 999_999:
        raise IdentifierError(f"The sequence must be 1 to 999999, not {sequence}.")
    din13 = f"{facility}{year % 100:02d}{sequence:06d}"
    return din13, _check(din13)


def din_validate(text: str) -> Din:
    """Parse a DIN as typed or scanned: 13 characters, 13 + check (14), 13 + flags (15) or
    13 + flags + check (16); spaces, hyphens and a leading ``=`` are ignored. Raises
    :class:`IdentifierError` naming what is wrong — with the right check character when only that is."""
    value = normalize(text)
    if len(value) not in (13, 14, 15, 16):
        raise IdentifierError(
            f"A DIN has 13 characters (facility 5, year 2, sequence 6), optionally followed by 2 flag characters "
            f"and the check character; {value!r} has {len(value)}.")
    din13 = value[:13]
    problems = _parts_problems(din13)
    if problems:
        raise IdentifierError(f"{value} is not a DIN: " + "; ".join(problems) + ".")
    rest = value[13:]
    flags: str | None = None
    given: str | None = None
    if len(rest) == 1:
        given = rest
    elif len(rest) >= 2:
        flags, given = rest[:2], (rest[2] if len(rest) == 3 else None)
        if not flags.isalnum() or not flags.isascii():
            raise IdentifierError(f"The flags {flags!r} must be two letters or digits.")
    right = _check(din13)
    if given is not None and given != right:
        raise IdentifierError(
            f"Wrong check character for DIN {din13}: {given!r} was given, the right one is {right!r}.")
    return Din(din=din13, flags=flags, check=right, check_given=given is not None)


# --- Chain of Identity identifiers ------------------------------------------------------------------

COI_PREFIX = "C"
COI_LENGTH = 15


def coi_build(facility: str, year: int, sequence: int) -> str:
    """The COI of ``sequence`` at ``facility`` in ``year``, with its check character (15 characters)."""
    facility = normalize(facility)
    if not FACILITY.match(facility):
        raise IdentifierError(f"The facility id {facility!r} must be a letter followed by four letters or digits.")
    if not 0 < sequence <= 999_999:
        raise IdentifierError(f"The sequence must be 1 to 999999, not {sequence}.")
    body = f"{COI_PREFIX}{facility}{year % 100:02d}{sequence:06d}"
    return body + _check(body)


def coi_validate(text: str) -> str:
    """The normalized COI, or :class:`IdentifierError` saying what is wrong."""
    value = normalize(text)
    if len(value) != COI_LENGTH:
        raise IdentifierError(f"A COI has {COI_LENGTH} characters (C, facility 5, year 2, sequence 6, check); "
                              f"{value!r} has {len(value)}.")
    if not value.startswith(COI_PREFIX):
        raise IdentifierError(f"A COI starts with {COI_PREFIX!r}; {value!r} does not.")
    problems = _parts_problems(value[1:14])
    if problems:
        raise IdentifierError(f"{value} is not a COI: " + "; ".join(problems) + ".")
    right = _check(value[:14])
    if value[14] != right:
        raise IdentifierError(f"Wrong check character for COI {value[:14]}: {value[14]!r} was given, "
                              f"the right one is {right!r}.")
    return value


def coi_printed(coi: str) -> str:
    """Eye-readable: ``C P1001 26 000001 *``."""
    return f"{coi[0]} {coi[1:6]} {coi[6:8]} {coi[8:14]} {coi[14:]}" if len(coi) == COI_LENGTH else coi
