"""ISBT 128 DINs and POCare's COIs (pure module, no database)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.iso7064 import mod_37_2

from pocare.custody import isbt

ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
facilities = st.builds(lambda a, b: a + b, st.sampled_from(ALNUM[:26]), st.text(ALNUM, min_size=4, max_size=4))


@settings(max_examples=10_000, deadline=None)
@given(facility=facilities, year=st.integers(0, 99), sequence=st.integers(1, 999_999))
def test_din_check_characters_agree_with_python_stdnum(facility, year, sequence):
    """ISBT-DIN: facility (a letter and 4 characters) + year (2) + sequence (6) = 13 characters, with
    the ISO 7064 mod 37-2 check character over them — the same as python-stdnum's for 10,000 DINs,
    and a DIN with its check character validates while any other check character is refused."""
    din13, check = isbt.din_build(facility, year, sequence)
    assert len(din13) == 13 and din13[:5] == facility
    assert din13[5:7] == f"{year:02d}" and din13[7:] == f"{sequence:06d}"
    assert check == mod_37_2.calc_check_digit(din13)
    assert mod_37_2.is_valid(din13 + check)
    assert isbt.din_check_character(din13) == check
    assert isbt.din_validate(din13 + check).din == din13
    wrong = isbt.ALPHABET[(isbt.ALPHABET.index(check) + 1) % 37]
    with pytest.raises(isbt.IdentifierError):
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


def test_coi_shape_and_check_character():
    """ISBT-COI: POCare's COI is C + facility + year + sequence + mod 37-2 check (15 characters); it
    validates and a changed check character is refused."""
    coi = isbt.coi_build("P1001", 2026, 7)
    assert len(coi) == 15 and coi.startswith("CP100126000007")
    assert coi[-1] == mod_37_2.calc_check_digit(coi[:14])
    assert isbt.coi_validate(isbt.coi_printed(coi)) == coi
    with pytest.raises(isbt.IdentifierError, match="check character"):
        isbt.coi_validate(coi[:14] + ("0" if coi[-1] != "0" else "1"))
    with pytest.raises(isbt.IdentifierError, match="facility"):
        isbt.coi_build("12345", 26, 1)


@settings(max_examples=500, deadline=None)
@given(facility=facilities, year=st.integers(0, 99), sequence=st.integers(1, 999_999))
def test_every_coi_built_validates(facility, year, sequence):
    """ISBT-COI: every COI the system can assign passes its own validation."""
    coi = isbt.coi_build(facility, year, sequence)
    assert isbt.coi_validate(coi) == coi
