"""Set-up for the privacy and document tests: a patient at a hospital with a referral, a signed
consent and a booked chain of slots.

The patient and the referral are made through the services. The consent and the booking are rows
made directly: their services (consent signing, slot-chain booking) are written beside this on other
branches of issue 17, and these helpers will call them once merged. What is tested here (identity,
erasure, documents) reads those rows and never writes them.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from django.utils import timezone

from pocare.accounts.models import User
from pocare.network.models import ManufacturingUnit, Site
from pocare.patients.identity import Identity
from pocare.patients.models import (
    Booking,
    ClinicSlot,
    Consent,
    ConsentDocument,
    Patient,
    Referral,
    SlotKind,
)
from pocare.patients.services import patient_register, referral_create

NAMES = {"MAD": ("Lucía Fernández Ruiz", "Calle de Alcalá 12, Madrid", "+34 600 123 456", "es"),
         "LIS": ("João Pereira Santos", "Rua Augusta 40, Lisboa", "+351 912 345 678", "pt"),
         "MUC": ("Johanna Bauer", "Leopoldstraße 8, München", "+49 151 2345 6789", "en")}


def _user(username: str) -> User:
    return User.objects.get(username=username)


def patient_at(code: str) -> Patient:
    """The site's test patient of these helpers (made once, known by its region ``<code>-R``, so that
    other tests' patients at the site are not taken for it), registered by the site's physician."""
    name, address, contact, language = NAMES.get(code, (f"Test Patient {code}", f"{code} street 1", "+00 0", "en"))
    for patient in Patient.objects.filter(treating_site__code=code, region=f"{code}-R").order_by("pk"):
        return patient
    return patient_register(actor=_user(f"physician.{code.lower()}"), treating_site=Site.objects.get(code=code),
                            identity=Identity(name=name, birth_date="1968-03-14", contact=contact, address=address),
                            language=language, region=f"{code}-R", travel_minutes=35, deprivation_quintile=3)


def referral_of(patient: Patient) -> Referral:
    from tests.custody.helpers import effective_at

    found = patient.referrals.first()
    if found is not None:
        return found
    code = patient.treating_site.code
    return referral_create(actor=_user(f"physician.{code.lower()}"), patient=patient,
                           product=effective_at(code).product,
                           indication="Relapsed/refractory diffuse large B-cell lymphoma", weight_kg="68.5")


def _unit_at(code: str) -> ManufacturingUnit:
    """A unit at the site, registered by QA as the manufacturing tests register one."""
    from tests.custody.helpers import effective_at
    from tests.manufacturing.matrix import _unit

    return _unit(effective_at(code), code)  # type: ignore[no-any-return]


CONSENT_BODY = {
    "en": "I agree to the collection of my cells and their manufacture into my treatment.",
    "es": "Acepto la extracción de mis células y su fabricación para mi tratamiento.",
    "pt": "Aceito a colheita das minhas células e o seu fabrico para o meu tratamento.",
}


def consent_signed(patient: Patient, *, language: str | None = None) -> Consent:
    """The patient's consent, signed in ``language`` (the patient's by default)."""
    referral = referral_of(patient)
    found = Consent.objects.filter(referral=referral).first()
    if found is not None:
        return found
    language = language or patient.language
    body = CONSENT_BODY[language]
    document, _ = ConsentDocument.objects.get_or_create(
        code="CD19-CART-ICF", version=3, language=language,
        defaults={"product": referral.product, "title": {"en": "Consent to CAR-T treatment",
                                                          "es": "Consentimiento para el tratamiento CAR-T",
                                                          "pt": "Consentimento para o tratamento CAR-T"}[language],
                  "body": body, "content_hash": hashlib.sha256(body.encode()).hexdigest(),
                  "effective_from": timezone.now() - dt.timedelta(days=30), "issued_by": _user("qa")})
    return Consent.objects.create(referral=referral, document=document,
                                  signed_at=timezone.now() - dt.timedelta(days=2),
                                  recorded_by=_user(f"physician.{patient.treating_site.code.lower()}"))


def booked(patient: Patient, *, apheresis_at: dt.datetime | None = None,
           infusion_at: dt.datetime | None = None) -> Booking:
    """The patient's active chain: apheresis and infusion at the treating hospital, a unit there."""
    referral = referral_of(patient)
    found = Booking.objects.filter(referral=referral, status="active").first()
    if found is not None:
        return found
    site = patient.treating_site
    apheresis_at = apheresis_at or dt.datetime(2027, 1, 12, 7, 30, tzinfo=dt.UTC)  # not on the demo's 08:00 slots
    infusion_at = infusion_at or dt.datetime(2027, 2, 9, 9, 30, tzinfo=dt.UTC)
    aph = ClinicSlot.objects.create(site=site, kind=SlotKind.APHERESIS, starts_at=apheresis_at,
                                    ends_at=apheresis_at + dt.timedelta(hours=4))
    inf = ClinicSlot.objects.create(site=site, kind=SlotKind.INFUSION, starts_at=infusion_at,
                                    ends_at=infusion_at + dt.timedelta(hours=2))
    unit = ManufacturingUnit.objects.filter(site=site).first() or _unit_at(site.code)
    return Booking.objects.create(
        referral=referral, apheresis_slot=aph, manufacturing_site=site, unit=unit,
        manufacturing_from=apheresis_at + dt.timedelta(hours=6), manufacturing_to=apheresis_at + dt.timedelta(days=12),
        infusion_slot=inf, booked_by=_user(f"navigator.{site.code.lower()}"), booked_at=timezone.now())
