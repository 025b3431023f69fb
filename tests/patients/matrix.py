"""How the generated permission test (tests/test_permission_matrix.py) names one patient at a given
site for the patients app's URLs: the site's test patient, with a signed consent and a booked chain,
so that every document exists (tests/patients/privacy_helpers.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _patient(site: str) -> dict[str, Any]:
    from tests.patients.privacy_helpers import booked, consent_signed, patient_at

    patient = patient_at(site)
    consent_signed(patient)
    booked(patient)
    return {"pseudonym": patient.pseudonym}


OBJECTS: dict[str, Callable[[str], dict[str, Any]]] = {
    "patients:identity": _patient,
    "patients:identity_erase": _patient,
    "patients:consent_document": _patient,
    "patients:leaflet": _patient,
    "patients:appointment_letter": _patient,
    "patients:questionnaire_document": _patient,
    "patients:questionnaire": _patient,
}
