"""How the generated permission test (tests/test_permission_matrix.py) names patients objects at a
site: a patient treated there (by pseudonym) and the hospital's slot calendar (by site code)."""

from __future__ import annotations

from typing import Any


def patient_at(site_code: str) -> dict[str, Any]:
    """A patient treated at ``site_code``, kept on purpose as a row no service could make (no sealed
    identity: the matrix checks who reaches the pages, not the identity keys)."""
    from django.utils import timezone

    from pocare.accounts.models import User
    from pocare.network.models import Site
    from pocare.patients.models import Patient

    pseudonym = f"PX-MTRX-{site_code[:4]:0>4}"
    site = Site.objects.get(code=site_code)
    Patient.objects.get_or_create(pseudonym=pseudonym, defaults={
        "treating_site": site, "registered_by": User.objects.get(username=f"physician.{site_code.lower()}"),
        "registered_at": timezone.now()})
    return {"pseudonym": pseudonym}


OBJECTS = {
    "patients_booking:booking": patient_at,
    "patients_booking:slots": lambda site: {"code": site},
}
