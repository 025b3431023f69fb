"""The documents a patient is given, in the patient's language (English, Spanish or Portuguese), as
HTML and as PDF (WeasyPrint, as the release certificate): the consent document as signed, the patient
information leaflet, the appointment letter and the follow-up questionnaire (docs/patients.md).

They name the patient by pseudonym only: a document can be printed, posted or left on a desk, and the
name is written on it by hand at the hospital (the pseudonym links it to the record). Each template in
``templates/patients/documents/`` says everything through ``{% translate %}`` (a test fails on a
visible word outside a translation tag, or on one without a Spanish and a Portuguese translation).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.http import Http404
from django.template.loader import render_to_string
from django.utils import timezone, translation

from pocare.core import times
from pocare.patients.models import (
    QUESTIONS,
    Booking,
    BookingStatus,
    Consent,
    Language,
    Patient,
    Referral,
    Visit,
    VisitStatus,
)


@dataclass(frozen=True)
class Kind:
    """One kind of document: its template and its file name."""

    slug: str
    template: str
    filename: str


KINDS = {
    "consent": Kind("consent", "patients/documents/consent.html", "consent"),
    "leaflet": Kind("leaflet", "patients/documents/leaflet.html", "patient-information"),
    "appointment": Kind("appointment", "patients/documents/appointment.html", "appointment-letter"),
    "questionnaire": Kind("questionnaire", "patients/documents/questionnaire.html", "follow-up-questionnaire"),
}



def _latest_referral(patient: Patient) -> Referral | None:
    return patient.referrals.select_related("product").order_by("-referred_at", "-pk").first()


def _consent(patient: Patient) -> Consent:
    consent = (Consent.objects.filter(referral__patient=patient).select_related("document", "referral__product")
               .order_by("-signed_at", "-pk").first())
    if consent is None:
        raise Http404("This patient has signed no consent yet: there is no consent document to give.")
    return consent


def _booking(patient: Patient) -> Booking:
    booking = (Booking.objects.filter(referral__patient=patient, status=BookingStatus.ACTIVE)
               .select_related("apheresis_slot__site", "infusion_slot__site", "manufacturing_site",
                               "referral__product").order_by("-booked_at", "-pk").first())
    if booking is None:
        raise Http404("This patient has no booked chain of slots: there is no appointment letter to give.")
    return booking


def _at(value: dt.datetime, site: Any) -> str:
    """A time at a hospital in the hospital's zone, with the zone written (``2026-12-05 09:00 CET``)."""
    return times.site_time(value, site) or ""


def _slot(slot: Any) -> dict[str, Any]:
    return {"site": slot.site, "starts": _at(slot.starts_at, slot.site), "ends": _at(slot.ends_at, slot.site)}


def context(kind: str, patient: Patient) -> tuple[dict[str, Any], str]:
    """What the document of ``kind`` shows for ``patient``, and the language it is written in: the
    patient's, but the consent document is in the language it was signed in. 404 when the patient
    has nothing to show yet (no consent signed, no booking)."""
    site = patient.treating_site
    referral = _latest_referral(patient)
    ctx: dict[str, Any] = {"patient": patient, "site": site, "referral": referral,
                           "product": referral.product if referral else None,
                           "printed": _at(timezone.now(), site)}
    language = patient.language
    if kind == "consent":
        consent = _consent(patient)
        language = consent.document.language
        ctx.update(consent=consent, document=consent.document, product=consent.referral.product,
                   signed=_at(consent.signed_at, site),
                   withdrawn=_at(consent.withdrawn_at, site) if consent.withdrawn_at else "")
    elif kind == "appointment":
        booking = _booking(patient)
        ctx.update(booking=booking, product=booking.referral.product,
                   apheresis=_slot(booking.apheresis_slot), infusion=_slot(booking.infusion_slot))
    elif kind == "questionnaire":
        visit = (Visit.objects.filter(referral__patient=patient, status=VisitStatus.PLANNED)
                 .order_by("due_on", "pk").first())
        ctx.update(visit=visit, questions=[{"name": q, "answer": "", "detail": ""} for q in QUESTIONS])
    elif kind != "leaflet":
        raise Http404(f"{kind[:20]!r} is not a patient document.")
    return ctx, language


def language_chosen(value: str | None, patient: Patient) -> str | None:
    """The language asked for (``?language=``), or None for the patient's own; refuses others."""
    if not value:
        return None
    if value not in Language.values:
        raise ValueError(f"language: choose one of {', '.join(Language.values)}.")
    return value


def document_html(kind: str, patient: Patient, *, language: str | None = None, **extra: Any) -> str:
    """The document as one HTML page (styles inline), in ``language`` or the document's own."""
    ctx, own = context(kind, patient)
    language = language or own
    with translation.override(language):
        return render_to_string(KINDS[kind].template, {**ctx, **extra, "language": language})


def pdf(html: str) -> bytes:
    """The HTML as a PDF. WeasyPrint needs Pango from the system: ImportError or OSError without it."""
    import weasyprint  # late: WeasyPrint needs Pango from the system; only the PDF answers 503 without it

    return bytes(weasyprint.HTML(string=html, base_url=None).write_pdf())
