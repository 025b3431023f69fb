"""How the generated permission test (tests/test_permission_matrix.py) names one patients object at a
given site. FHIR (docs/fhir.md): the apheresis material of custody's matrix order at the site, and a
patient of the site's hospital whose referral is linked to that order."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _collection(site: str) -> Any:
    from tests.custody.matrix import _order

    return _order(site).collections.first()


def _fhir_product(site: str) -> dict[str, Any]:
    return {"resource_type": "BiologicallyDerivedProduct", "resource_id": f"apheresis-{_collection(site).pk}"}


def _fhir_patient(site: str) -> dict[str, Any]:
    from pocare.network.models import Site
    from pocare.patients.identity import Identity
    from pocare.patients.models import Referral
    from pocare.patients.services import patient_register, referral_create
    from tests.custody.helpers import user

    order = _collection(site).order
    referral = Referral.objects.filter(order=order).first()
    if referral is None:
        physician = user(f"physician.{site.lower()}")
        patient = patient_register(actor=physician, treating_site=Site.objects.get(code=site),
                                   identity=Identity(name="Matrix Patient"))
        referral = referral_create(actor=physician, patient=patient, product=order.product, indication="matrix",
                                   weight_kg="70")
        Referral.objects.filter(pk=referral.pk).update(order=order)
    return {"resource_id": referral.patient.pseudonym}


OBJECTS: dict[str, Callable[[str], dict[str, Any]]] = {
    "api-fhir-read": _fhir_product,
    "api-fhir-everything": _fhir_patient,
}
FIXED_KWARGS: dict[str, dict[str, Any]] = {
    "api-fhir-type": {"resource_type": "ServiceRequest"},
    "api-fhir-search": {"resource_type": "Patient"},
}
