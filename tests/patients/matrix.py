"""How the generated permission test (tests/test_permission_matrix.py) names patients' objects at a
site: a patient of the site's hospital (by pseudonym), referred and infused a week ago with the
follow-up schedule planned (PAT-LTFU), one with a signed consent and a booked chain so that every
patient document exists (tests/patients/privacy_helpers.py), the hospital's slot calendar (by site code), and for FHIR (docs/fhir.md) the apheresis material of
custody's matrix order at the site and a patient whose referral is linked to that order."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any


def followup_referral(site: str) -> Any:
    """An infused referral of a patient treated at ``site``, its schedule planned (made once per site)."""
    from django.utils import timezone

    from pocare.accounts.models import User
    from pocare.network.models import Site
    from pocare.patients.followup import followup_schedule_create
    from pocare.patients.identity import Identity
    from pocare.patients.models import Referral
    from pocare.patients.services import patient_register, referral_create
    from tests.custody.helpers import effective_at

    found = Referral.objects.filter(patient__treating_site__code=site, visits__isnull=False).first()
    if found is not None:
        return found
    physician = User.objects.get(username=f"physician.{site.lower()}")
    patient = patient_register(actor=physician, treating_site=Site.objects.get(code=site),
                               identity=Identity(name=f"Matrix Patient {site}"))
    referral = referral_create(actor=physician, patient=patient, product=effective_at("MAD").product,
                               indication="Relapsed large B-cell lymphoma", weight_kg="70")
    Referral.objects.filter(pk=referral.pk).update(referred_at=timezone.now() - dt.timedelta(days=40))
    referral.refresh_from_db()
    followup_schedule_create(referral=referral, infused_at=timezone.now() - dt.timedelta(days=7), actor=physician)
    referral.refresh_from_db()
    return referral


def _patient(site: str) -> dict[str, Any]:
    return {"pseudonym": followup_referral(site).patient.pseudonym}


def _visit(site: str) -> dict[str, Any]:
    referral = followup_referral(site)
    return {"pseudonym": referral.patient.pseudonym, "pk": referral.visits.order_by("day").first().pk}


def _adverse_event(site: str) -> dict[str, Any]:
    referral = followup_referral(site)
    return {"pseudonym": referral.patient.pseudonym, "referral": referral.pk}


def _recorded_adverse_event(site: str) -> dict[str, Any]:
    """A graded adverse event (CTCAE grade 1) of the site's follow-up patient, to correct."""
    from django.utils import timezone

    from pocare.accounts.models import User
    from pocare.patients.followup import adverse_event_record

    referral = followup_referral(site)
    event = referral.adverse_events.first() or adverse_event_record(
        actor=User.objects.get(username=f"physician.{site.lower()}"), referral=referral, kind="other",
        term="Headache", onset_on=timezone.localdate(), inputs={"grade": 1})
    return {"pseudonym": referral.patient.pseudonym, "pk": event.pk}


def _documented(site: str) -> dict[str, Any]:
    from tests.patients.privacy_helpers import booked, consent_signed, patient_at

    patient = patient_at(site)
    consent_signed(patient)
    booked(patient)
    return {"pseudonym": patient.pseudonym}


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


def _pathway_referral(site: str) -> Any:
    """The pathway's own referral at ``site`` (just referred), made as the hospital's physician would."""
    from pocare.accounts.models import User
    from pocare.masterfile.models import Product
    from pocare.network.models import Site
    from pocare.patients.identity import Identity
    from pocare.patients.models import Referral
    from pocare.patients.services import patient_refer
    from tests.masterfile.helpers import effective_v1

    effective_v1()
    found = Referral.objects.filter(patient__treating_site__code=site, indication="r/r LBCL").order_by("pk").first()
    if found is not None:
        return found
    return patient_refer(actor=User.objects.get(username=f"physician.{site.lower()}"),
                         treating_site=Site.objects.get(code=site),
                         identity=Identity(name="Matrix Patient", birth_date="1970-01-01", contact="", address=""),
                         product=Product.objects.get(code="CD19-CART"), indication="r/r LBCL", weight_kg="70")


def _referral_pk(site: str) -> dict[str, Any]:
    return {"pk": _pathway_referral(site).pk}


def _pathway_patient(site: str) -> dict[str, Any]:
    return {"pseudonym": _pathway_referral(site).patient.pseudonym}


OBJECTS: dict[str, Callable[[str], dict[str, Any]]] = {
    "patients:patient": _pathway_patient,
    "patients:support": _pathway_patient,
    "patients:eligibility": _referral_pk,
    "patients:consent": _referral_pk,
    "patients:withdraw": _referral_pk,
    "patients:lost": _referral_pk,
    "api-patients-referral": _referral_pk,
    "api-fhir-read": _fhir_product,
    "api-fhir-everything": _fhir_patient,
    "patients:identity": _documented,
    "patients:identity_erase": _documented,
    "patients:consent_document": _documented,
    "patients:leaflet": _documented,
    "patients:appointment_letter": _documented,
    "patients:questionnaire_document": _documented,
    "patients:questionnaire": _documented,
    "patients:followup": _patient,
    "patients:followup_visit": _visit,
    "patients:adverse_event_new": _adverse_event,
    "patients:adverse_event_correct": _recorded_adverse_event,
    "patients:booking": _patient,
    "patients:slots": lambda site: {"code": site},
}
FIXED_KWARGS: dict[str, dict[str, Any]] = {
    "api-fhir-type": {"resource_type": "ServiceRequest"},
    "api-fhir-search": {"resource_type": "Patient"},
}
