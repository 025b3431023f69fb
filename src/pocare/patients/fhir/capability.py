"""The CapabilityStatement at ``/fhir/metadata``: what this server does (docs/fhir.md)."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from pocare.patients.fhir import BASE, EXT_RELEASE_STATUS, FHIR_JSON, FHIR_VERSION
from pocare.patients.fhir.export import RESOURCE_TYPES

_SEARCH = [
    {"name": "identifier", "type": "token", "documentation": "system|value, or value"},
    {"name": "patient", "type": "reference", "documentation": "Patient/<pseudonym>, or the pseudonym"},
]
_DOCUMENTATION = {
    "Patient": "Pseudonymous: identifier = pseudonym. Name, birth date, contact and address only to a client "
               "holding PATIENTS_IDENTIFY at the treating hospital, asked for by POST (Patient/_search or "
               "$everything), each disclosure recorded in the audit trail.",
    "BiologicallyDerivedProduct": "Apheresis material (id apheresis-<n>, DIN as biologicalSourceEvent) and final "
                                  f"product (id batch-<n>, parent = its apheresis material, release status in "
                                  f"the extension {EXT_RELEASE_STATUS}).",
    "BiologicallyDerivedProductDispense": "Only for a product the QP certified for release (FHIR-DISP).",
    "ServiceRequest": "The referral; create by POST (a ServiceRequest with its Patient contained, or a "
                      "transaction Bundle).",
}


def capability_statement() -> dict[str, Any]:
    resources = []
    for rtype in RESOURCE_TYPES:
        interactions = [{"code": "read"}, {"code": "search-type"}]
        if rtype == "ServiceRequest":
            interactions.append({"code": "create"})
        entry: dict[str, Any] = {"type": rtype, "interaction": interactions, "searchParam": _SEARCH}
        if rtype in _DOCUMENTATION:
            entry["documentation"] = _DOCUMENTATION[rtype]
        if rtype == "Patient":
            entry["operation"] = [{"name": "everything",
                                   "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"}]
        resources.append(entry)
    return {
        "resourceType": "CapabilityStatement",
        "url": f"{BASE}/CapabilityStatement/pocare",
        "name": "POCareFHIRServer",
        "title": "POCare FHIR R5 endpoint",
        "status": "active",
        "date": timezone.now().date().isoformat(),
        "publisher": "POCare",
        "kind": "instance",
        "implementation": {"description": "POCare: products, dispenses and the patient's pathway"},
        "fhirVersion": FHIR_VERSION,
        "format": [FHIR_JSON, "json"],
        "rest": [{
            "mode": "server",
            "documentation": "Authenticate with 'Authorization: Bearer <token>' (a POCare API token).",
            "security": {"description": "Bearer tokens issued by POCare (pocare token issue). A hospital's token "
                                        "sees its patients; a manufacturing site's token sees products and "
                                        "pseudonyms only."},
            "resource": resources,
            "interaction": [{"code": "transaction"}],
        }],
    }
