"""ISBT 128 DINs and POCare's COIs (pure module, no database).

The check characters are compared with references that share no code with ``pocare.custody.isbt``
(which calls python-stdnum): check characters published for real DINs, and ISO 7064 mod 37-2
written below from the standard's definition. A check against python-stdnum itself could not
disagree with the code, which calls the same function.
"""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pocare.custody import isbt

# ISO/IEC 7064 MOD 37-2 (pure system, modulus 37, radix 2) over the alphabet 0-9 A-Z *, the
# characters valued 0..36 in that order (JPAC Red Book annex 2, table A2.1).
SYMBOLS = string.digits + string.ascii_uppercase + "*"
VALUE = {symbol: value for value, symbol in enumerate(SYMBOLS)}


def weighted_sum(data: str) -> int:
    """Σ value × 2ⁿ over the data characters, n = 1 for the rightmost (the check character, which
    the standard puts at position n = 0, is not part of the data)."""
    return sum(VALUE[char] * 2**n for n, char in enumerate(reversed(data), start=1))


def reference_check(data: str) -> str:
    """The check character from the defining congruence of a pure ISO 7064 system with one check
    character: check + Σ value × 2ⁿ ≡ 1 (mod 37). The one symbol of the 37 for which it holds is
    searched for, not solved, so no step of a library's formula is reused."""
    total = weighted_sum(data)
    (check,) = [value for value in range(37) if (total + value) % 37 == 1]
    return SYMBOLS[check]


# Published DIN check characters: (13 characters, check character, where it is published).
PUBLISHED = [
    # Read here: Table A2.2 of the annex works the example through, step by step.
    ("G123498654321", "H", "JPAC, Guidelines for the Blood Transfusion Services in the UK (Red Book), "
                           "annex 2 'ISBT 128 check character calculation', table A2.2"),
    # The two below are ICCBBA's worked examples. ICCBBA's documents are licensed and could not be
    # read here; each pair is as quoted, with the same section, by at least two independent public
    # ISBT 128 test suites.
    ("G123417654321", "A", "ICCBBA ST-001, ISBT 128 Standard Technical Specification, appendix A "
                           "(check character calculation example; barcode flags 70)"),
    ("A999917123456", "9", "ICCBBA IG-033, Implementation Guide: Use of the Donation "
                           "Identification Number [Data Structure 001] v1.2.0, figure 1"),
]

ALNUM = string.ascii_uppercase + string.digits
facilities = st.builds(lambda a, b: a + b, st.sampled_from(string.ascii_uppercase), st.text(ALNUM, min_size=4, max_size=4))


def test_the_reference_reproduces_the_red_book_worked_example():
    """ISBT-DIN: the reference written here gives every number of JPAC Red Book table A2.2 for
    G123 498 654 321: weighted sum 148354, mod 37 = 21, 38 − 21 = 17, check value 17 = H, and
    barcode flags 60 + 17 = 77."""
    total = weighted_sum("G123498654321")
    assert total == 148_354 and total % 37 == 21
    assert (38 - total % 37) % 37 == 17 == VALUE["H"]
    assert reference_check("G123498654321") == "H"
    assert 60 + VALUE[reference_check("G123498654321")] == 77


@pytest.mark.parametrize(("din13", "check", "source"), PUBLISHED)
def test_din_check_characters_match_published_examples(din13, check, source):
    """ISBT-DIN: the check character of a published DIN is the published one, for the code and for
    the reference; the DIN with it validates (also as printed with flags), with another it is refused."""
    assert isbt.din_check_character(din13) == check, source
    assert reference_check(din13) == check, source
    printed = f"{din13[:5]} {din13[5:7]} {din13[7:]} 00 {check}"
    assert isbt.din_validate(printed).din == din13
    with pytest.raises(isbt.IdentifierError, match=f"the right one is {check!r}"):
        isbt.din_validate(din13 + ("0" if check != "0" else "1"))


@settings(max_examples=2_000, deadline=None)
@given(facility=facilities, year=st.integers(0, 99), sequence=st.integers(1, 999_999))
def test_din_check_characters_agree_with_the_reference(facility, year, sequence):
    """ISBT-DIN: facility (a letter and 4 characters) + year (2) + sequence (6) = 13 characters,
    with the ISO 7064 mod 37-2 check character of the reference over them, for 2,000 DINs; the DIN
    with its check character validates and each of the 36 other characters is refused."""
    din13 = f"{facility}{year:02d}{sequence:06d}"
    check = reference_check(din13)
    assert isbt.din_build(facility, year, sequence) == (din13, check)
    assert isbt.din_check_character(din13) == check
    assert isbt.din_validate(din13 + check).din == din13
    for wrong in SYMBOLS.replace(check, ""):
        with pytest.raises(isbt.IdentifierError, match="Wrong check character"):
            isbt.din_validate(din13 + wrong)


def test_din_is_read_as_printed_or_scanned():
    """ISBT-DIN: spaces, the flags, the scanner's leading '=' are accepted; the check is recomputed."""
    din13, check = isbt.din_build("P1001", 2026, 1)
    assert din13 == "P100126000001"
    for text in (din13, din13 + check, f"P1001 26 000001 00 {check}", f"={din13}00", f"p1001-26-000001 {check}"):
        din = isbt.din_validate(text)
        assert din.din == din13 and din.check == check
    assert isbt.din_validate(f"{din13}00").flags == "00"
    assert isbt.din_validate(din13 + check).printed == f"P1001 26 000001 00 {check}"


@pytest.mark.parametrize(("text", "words"), [
    ("P10012600001", "has 12"),
    ("1P00126000001", "facility id"),
    ("P1001AB000001", "year"),
    ("P100126000X01", "sequence"),
    ("P100126000001#9", "flags"),
])
def test_din_errors_name_what_is_wrong(text, words):
    """ISBT-DIN: a malformed DIN is refused with a message naming the part that is wrong."""
    with pytest.raises(isbt.IdentifierError, match=words):
        isbt.din_validate(text)


def test_a_wrong_check_character_names_the_right_one():
    """ISBT-DIN: the message gives the check character that was given and the right one."""
    din13, check = isbt.din_build("P1001", 26, 42)
    wrong = "0" if check != "0" else "1"
    with pytest.raises(isbt.IdentifierError) as exc:
        isbt.din_validate(din13 + wrong)
    assert f"{wrong!r} was given" in str(exc.value) and f"the right one is {check!r}" in str(exc.value)
    assert isinstance(exc.value, ValueError)


def test_the_documented_examples_are_right():
    """ISBT-DIN, ISBT-COI: the examples printed in docs/custody.md and the isbt module docstring
    (P1001 26 000001 00 Q, C P1001 26 000001 *) carry the reference's check characters."""
    assert reference_check("P100126000001") == "Q" == isbt.din_validate("P1001 26 000001 00 Q").check
    assert reference_check("CP100126000001") == "*"
    assert isbt.coi_validate("C P1001 26 000001 *") == "CP100126000001*"
    assert isbt.coi_printed("CP100126000001*") == "C P1001 26 000001 *"


def test_coi_shape_and_check_character():
    """ISBT-COI: POCare's COI is C + facility + year + sequence + mod 37-2 check (15 characters); it
    validates and a changed check character is refused."""
    coi = isbt.coi_build("P1001", 2026, 7)
    assert len(coi) == 15 and coi.startswith("CP100126000007")
    assert coi[-1] == reference_check(coi[:14])
    assert isbt.coi_validate(isbt.coi_printed(coi)) == coi
    with pytest.raises(isbt.IdentifierError, match="check character"):
        isbt.coi_validate(coi[:14] + ("0" if coi[-1] != "0" else "1"))
    with pytest.raises(isbt.IdentifierError, match="facility"):
        isbt.coi_build("12345", 26, 1)


@settings(max_examples=500, deadline=None)
@given(facility=facilities, year=st.integers(0, 99), sequence=st.integers(1, 999_999))
def test_every_coi_agrees_with_the_reference(facility, year, sequence):
    """ISBT-COI: every COI the system can assign is C + facility + year + sequence with the
    reference's mod 37-2 check character over those 14 characters; it validates, and each of the
    36 other check characters is refused."""
    body = f"C{facility}{year:02d}{sequence:06d}"
    coi = isbt.coi_build(facility, year, sequence)
    assert coi == body + reference_check(body)
    assert isbt.coi_validate(coi) == coi
    for wrong in SYMBOLS.replace(coi[-1], ""):
        with pytest.raises(isbt.IdentifierError, match="Wrong check character"):
            isbt.coi_validate(body + wrong)
