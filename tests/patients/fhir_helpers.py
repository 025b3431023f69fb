"""Set-up for the FHIR tests: a referral linked to its therapy order and the order's chain (collection,
batch, certification) through tests/custody/helpers.py; bearer tokens for personas; ServiceRequests
to import."""

from __future__ import annotations

import copy
from typing import Any

from pocare.accounts.models import TokenScope
from pocare.accounts.services import token_issue
from pocare.custody.models import Collection, TherapyOrder
from pocare.patients.fhir import CS_PRODUCT, SID_SITE
from pocare.patients.models import Referral
from tests.custody.helpers import accepted, collect, completed_batch, user


def link_order(referral: Referral, code: str = "MAD") -> tuple[TherapyOrder, Collection]:
    """An accepted order made at ``code`` for the referral's patient, with its apheresis collection,
    linked to the referral (as booking does)."""
    order = accepted(code, referral.patient.treating_site.code, recipient=referral.patient.pseudonym)
    Referral.objects.filter(pk=referral.pk).update(order=order)
    referral.refresh_from_db()
    return order, collect(order)


def manufactured(referral: Referral, code: str = "MAD") -> Any:
    """The referral's order with a completed batch (not yet certified)."""
    order, collection = link_order(referral, code)
    return completed_batch(order, collection)


def bearer(username: str, *, scope: str = TokenScope.WRITE) -> dict[str, str]:
    """Headers of a bearer token issued for ``username``."""
    _, key = token_issue(actor=None, user=user(username), name=f"fhir {username}", reason="FHIR client", scope=scope)
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def service_request(product_code: str, *, identifier: str = "HIS-0001", weight: Any = 71.5,
                    name: str = "Ana Sousa Lima", site: str = "MAD") -> dict[str, Any]:
    """A ServiceRequest with its Patient contained, as a hospital information system sends it."""
    return copy.deepcopy({
        "resourceType": "ServiceRequest",
        "contained": [
            {"resourceType": "Patient", "id": "p", "name": [{"text": name}], "birthDate": "1971-05-02",
             "telecom": [{"system": "phone", "value": "+34 611 222 333"}],
             "address": [{"line": ["Calle Mayor 1"], "city": "Madrid"}],
             "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "es"}]}}],
             "managingOrganization": {"identifier": {"system": SID_SITE, "value": site}}},
            {"resourceType": "Observation", "id": "w", "status": "final",
             "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
             "valueQuantity": {"value": weight, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}},
        ],
        "identifier": [{"system": "urn:oid:2.16.724.4.99.1", "value": identifier}],
        "status": "active", "intent": "order",
        "code": {"concept": {"coding": [{"system": CS_PRODUCT, "code": product_code}]}},
        "subject": {"reference": "#p"},
        "reason": [{"concept": {"text": "Relapsed/refractory diffuse large B-cell lymphoma"}}],
        "supportingInfo": [{"reference": {"reference": "#w"}}],
    })
