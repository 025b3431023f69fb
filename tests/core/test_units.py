"""Units as people write them, from one function (pocare.core.units) used by every page, document,
chart and message; the stored unit stays as the master file writes it (issue 15)."""

from __future__ import annotations

import pytest

from pocare.core.units import quantity_text, unit_text


@pytest.mark.parametrize(("stored", "shown"), [
    ("10^6 cells/kg", "10⁶ cells/kg"),
    ("10^6 cells", "10⁶ cells"),
    ("1.2 10^6 cells/kg", "1.2 × 10⁶ cells/kg"),
    ("≥ 0.5 10^6 cells/kg, ≤ 5 10^6 cells/kg", "≥ 0.5 × 10⁶ cells/kg, ≤ 5 × 10⁶ cells/kg"),
    ("10^-3 g", "10⁻³ g"),
    ("uL", "µL"), ("25 ul", "25 µL"), ("ug", "µg"), ("umol/L", "µmol/L"),
    ("degC", "°C"), ("4 deg C", "4 °C"),
    ("°C", "°C"), ("µg", "µg"), ("EU/mL", "EU/mL"), ("%", "%"), ("copies/cell", "copies/cell"),
    ("negative", "negative"), ("upper bag debris", "upper bag debris"), ("", ""), (None, ""),
])
def test_a_unit_prints_as_people_write_it(stored, shown):
    """Powers of ten as superscripts (a product after a number), micro and degree signs; words around
    a unit, and units already written properly, are left alone."""
    assert unit_text(stored) == shown


def test_a_quantity_is_its_value_and_unit():
    assert quantity_text(2.75, "10^6 cells/kg") == "2.75 × 10⁶ cells/kg"
    assert quantity_text(3, "") == "3" and quantity_text(None, "%") == "%"


@pytest.mark.django_db
def test_the_batch_page_prints_units_properly_and_the_record_keeps_them_stored(client, login, people):
    """ATMP-REL: the batch record and the QC result page show the dose and its criterion as
    ``× 10⁶ cells/kg``, never the master file's ASCII ``10^6``; the stored result keeps ``10^6 cells/kg``."""
    from tests.release.helpers import completed_batch

    batch = completed_batch("MAD")
    dose = batch.qc_results.get(attribute_id="dose")
    login("qa")
    page = client.get(f"/manufacturing/batches/{batch.reference}/").content.decode()
    assert f"{dose.value_number:g} × 10⁶ cells/kg" in page and "10^6" not in page
    qc = client.get(f"/manufacturing/batches/{batch.reference}/qc/dose/").content.decode()
    assert "0.5–5 × 10⁶ cells/kg" in qc and "10^6" not in qc
    assert dose.unit == "10^6 cells/kg"
