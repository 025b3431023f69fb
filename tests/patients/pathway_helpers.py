"""Set-up of the pathway tests through the services people use: an answered checklist, a consent
document in each language, a referral brought to a stage."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from pocare.accounts.models import User
from pocare.masterfile import schema
from pocare.patients import services
from pocare.patients.models import ConsentDocument, Referral

BODY = {"en": "I agree to the collection of my blood cells and the manufacture of CAR-T cells from them.",
        "es": "Acepto la recogida de mis células sanguíneas y la fabricación de células CAR-T a partir de ellas.",
        "pt": "Aceito a colheita das minhas células sanguíneas e o fabrico de células CAR-T a partir delas."}


def user(username: str) -> User:
    return User.objects.get(username=username)


def answers(referral: Referral, **not_met: bool) -> dict[str, bool]:
    """Every criterion of the checklist in effect for ``referral`` met, but those given."""
    version = services.eligibility_version(referral)
    return {c["id"]: not_met.get(c["id"].replace("-", "_"), True) for c in schema.eligibility_criteria(version.content)}


def eligible(referral: Referral, by: str = "physician.mad") -> Referral:
    services.eligibility_assess(actor=user(by), referral=referral, answers=answers(referral), reason="Assessed")
    referral.refresh_from_db()
    return referral


def document(referral: Referral, language: str = "es", *, code: str = "CD19-ICF",
             effective_from: dt.datetime | None = None) -> ConsentDocument:
    return services.consent_document_issue(
        actor=user("qa"), product=referral.product, code=code, language=language,
        title=f"Informed consent ({language})", body=BODY[language], reason="Approved by the ethics committee",
        effective_from=effective_from or timezone.now() - dt.timedelta(days=1))


def consented(referral: Referral, by: str = "physician.mad") -> Referral:
    referral = eligible(referral, by)
    doc = document(referral, referral.patient.language)
    services.consent_sign(actor=user(by), referral=referral, document=doc, signed_at=timezone.now(),
                          reason="Signed in clinic")
    referral.refresh_from_db()
    return referral


def linked(referral: Referral, order: Any, by: str = "navigator.mad") -> Referral:
    """``referral`` (consented) linked to a therapy order made for it."""
    services.referral_order_link(actor=user(by), referral=referral, order=order, reason="Order for this referral")
    referral.refresh_from_db()
    return referral


def grow(site: str, n: int) -> None:
    """One round of referrals at ``site`` at every stage before treatment, through the services: referred,
    eligible, not eligible, consented, booked on an accepted order with its collection, withdrawn and
    lost (for the tests that pages do not grow)."""
    from pocare.masterfile.models import Product
    from pocare.network.models import Site
    from pocare.patients.identity import Identity
    from tests.custody.helpers import accepted, collect

    physician = f"physician.{site.lower()}"

    def refer() -> Referral:
        return services.patient_refer(actor=user(physician), treating_site=Site.objects.get(code=site),
                                      identity=Identity(name=f"Grow {site} {n}", birth_date="1970-01-01",
                                                        contact="", address=""),
                                      product=Product.objects.get(code="CD19-CART"), indication="r/r LBCL",
                                      weight_kg="70", language="es")

    refer()
    eligible(refer(), physician)
    ineligible = refer()
    services.eligibility_assess(actor=user(physician), referral=ineligible, answers=answers(ineligible, ecog=False),
                                reason="ECOG 3")
    consented(refer(), physician)
    booked = consented(refer(), physician)
    order = accepted(site, recipient=f"PATHWAY-{site}-{n}")
    collect(order)
    linked(booked, order, physician)
    services.consent_withdraw(actor=user(physician), referral=consented(refer(), physician), reason="Withdrew")
    services.referral_lose(actor=user(physician), referral=eligible(refer(), physician), lost_reason="died",
                           reason="Died before apheresis")
