"""How the permission matrix (tests/test_permission_matrix.py) names a patient and a referral of the
patients app at a site: made through the services, as the hospital's physician would."""

from __future__ import annotations

from typing import Any


def _referral(site: str) -> Any:
    from pocare.accounts.models import User
    from pocare.masterfile.models import Product
    from pocare.network.models import Site
    from pocare.patients.identity import Identity
    from pocare.patients.models import Referral
    from pocare.patients.services import patient_refer

    found = Referral.objects.filter(patient__treating_site__code=site).order_by("pk").first()
    if found is not None:
        return found
    return patient_refer(actor=User.objects.get(username=f"physician.{site.lower()}"),
                         treating_site=Site.objects.get(code=site),
                         identity=Identity(name="Matrix Patient", birth_date="1970-01-01", contact="", address=""),
                         product=Product.objects.get(code="CD19-CART"), indication="r/r LBCL", weight_kg="70")


def _product_v1() -> None:
    from tests.masterfile.helpers import effective_v1

    effective_v1()


def referral(site: str) -> dict[str, Any]:
    _product_v1()
    return {"pk": _referral(site).pk}


def patient(site: str) -> dict[str, Any]:
    _product_v1()
    return {"pseudonym": _referral(site).patient.pseudonym}


OBJECTS = {
    "patients:patient": patient,
    "patients:support": patient,
    "patients:eligibility": referral,
    "patients:consent": referral,
    "patients:withdraw": referral,
    "patients:lost": referral,
    "api-patients-referral": referral,
}
