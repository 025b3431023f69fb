"""Browser test of the patient pathway (issue 17): a physician refers a patient through the referral form,
assesses eligibility and records the consent signed in the patient's language (Portuguese); the navigator,
with the interface switched to Spanish, books a site and slot chain; once the order is released and
infused (through the services) the follow-up schedule shows. A second patient's consent is withdrawn."""

from __future__ import annotations

import datetime as dt
import re
import tempfile
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from tests.browser import browser_login

pytestmark = pytest.mark.browser

#: Screenshots of each step, to look at: /tmp/e2e-pathway-*.png.
SHOTS = Path(tempfile.gettempdir()) / "e2e-pathway"


@pytest.fixture
def clinic(tx_db, patient_keys):  # type: ignore[no-untyped-def]
    """MAD able to make the product (master file effective, a qualified unit), the consent document issued
    in English, Spanish and Portuguese by Control Site QA, and daily apheresis and infusion slots open."""
    from pocare.masterfile.models import Product
    from pocare.network.models import ManufacturingUnit, Site
    from pocare.network.services import unit_register
    from pocare.patients import booking, services
    from pocare.patients.models import SlotKind
    from tests.custody.helpers import effective_at, user
    from tests.patients.pathway_helpers import BODY

    effective_at("MAD")
    mad = Site.objects.get(code="MAD")
    today = timezone.now().date()
    if not ManufacturingUnit.objects.filter(site=mad, status="qualified").exists():
        unit_register(actor=user("qa"), site=mad, device_type="clinimacs_prodigy", serial="E2E-MAD",
                      calibration_due=today + dt.timedelta(days=400), maintenance_due=today + dt.timedelta(days=400),
                      reason="Unit for the pathway test")
    product = Product.objects.get(code="CD19-CART")
    for language in ("en", "es", "pt"):
        services.consent_document_issue(actor=user("qa"), product=product, code="CD19-ICF", language=language,
                                        title=f"Consentimento informado ({language})", body=BODY[language],
                                        reason="Approved by the ethics committee",
                                        effective_from=timezone.now() - dt.timedelta(days=1))
    first = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(8), tzinfo=dt.UTC)
    for kind, hour, days in ((SlotKind.APHERESIS, 8, 30), (SlotKind.INFUSION, 13, 60)):
        starts = first.replace(hour=hour)
        booking.slots_open(actor=user("navigator.mad"), site=mad, kind=kind, starts=starts,
                           ends=starts + dt.timedelta(days=days - 1), every=24 * 60, duration=120,
                           reason="Clinic capacity")
    return mad


def _release_and_infuse(referral) -> None:  # type: ignore[no-untyped-def]
    """The booked order through acceptance, apheresis, manufacture, the QP's release and the infusion
    hand-off, each as the person at that place records it (tests/custody/helpers.py)."""
    from pocare.custody import services as custody
    from pocare.custody.models import HandoffKind
    from tests.custody.helpers import certify, collect, completed_batch, scan, to_manufacture, user

    order = referral.order
    custody.therapy_order_accept(actor=user(f"manager.{order.site.code.lower()}"), order=order,
                                 reason="Slot booked for the patient")
    collection = collect(order, ended=timezone.now() - dt.timedelta(minutes=5))
    to_manufacture(order, collection)
    batch = completed_batch(order, collection)
    scan(order, HandoffKind.FRESH_HOLD, order.coi, location="Fridge")
    certify(batch)
    for kind in (HandoffKind.DISPATCH_TO_HOSPITAL, HandoffKind.RECEIPT_AT_HOSPITAL, HandoffKind.INFUSION):
        scan(order, kind, order.coi, location="Haematology")


def _refer(page: Page, base: str, name: str) -> str:
    """The physician's referral form (English interface); the new patient's pseudonym."""
    page.goto(f"{base}/patients/refer/")
    page.get_by_label("Treating hospital").select_option("MAD")
    page.get_by_label("Patient's name").fill(name)
    page.get_by_label("Date of birth").fill("1961-05-02")
    page.get_by_label("Patient's language").select_option("pt")
    page.get_by_label("Product").select_option("CD19-CART")
    page.get_by_label("Weight (kg)").fill("71.5")
    page.get_by_label("Indication").fill("Relapsed/refractory DLBCL after two lines")
    page.get_by_label(re.compile("^Reason")).fill("Referred by the lymphoma board")
    page.get_by_role("button", name="Refer", exact=True).click()
    expect(page.get_by_text(re.compile(r"Patient \S+ referred\."))).to_be_visible()
    match = re.search(r"/patients/([^/]+)/$", page.url)
    assert match, page.url
    return match.group(1)


def _assess_and_consent(page: Page) -> None:
    """Every criterion met, then the Portuguese consent document chosen and signed."""
    page.get_by_role("link", name="Assess eligibility").click()
    for radio in page.get_by_label("Met", exact=True).all():
        radio.check()
    page.get_by_label(re.compile("^Reason")).fill("Checklist reviewed in clinic")
    page.get_by_role("button", name="Record the assessment").click()
    expect(page.get_by_text("Eligible.")).to_be_visible()
    page.get_by_role("link", name="Record consent").click()
    expect(page.get_by_text(re.compile("The patient.s language is Portugu[eê]s"))).to_be_visible()
    documents = page.get_by_label("Consent document signed")
    documents.select_option(documents.locator("option", has_text=re.compile("Portugu[eê]s")).get_attribute("value"))
    from pocare.network.models import Site

    signed = timezone.now().astimezone(Site.objects.get(code="MAD").tz)  # the hospital's local time, as labelled
    page.get_by_label("Signed", exact=True).fill(signed.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label(re.compile("^Reason")).fill("Signed after counselling")
    page.get_by_role("button", name="Record the consent").click()
    expect(page.get_by_text("Consent recorded.")).to_be_visible()


def test_referral_to_follow_up_across_two_languages(live_server, clinic, page: Page):
    """PAT-CONSENT PAT-LTFU: the physician refers, assesses and records the consent signed in Portuguese (the
    page shows the version and the language); the navigator switches to Spanish and books the chain after
    the confirmation; after release and infusion the referral is infused and its follow-up schedule shows."""
    from pocare.patients import tasks
    from pocare.patients.models import Booking, Referral, Stage

    base = live_server.url
    browser_login(page, base, "physician.mad")
    pseudonym = _refer(page, base, "Joana Ferreira Lima")
    _assess_and_consent(page)
    expect(page.get_by_text(re.compile(r"CD19-ICF version \d+, Portugu[eê]s"))).to_be_visible()
    page.screenshot(path=f"{SHOTS}-consent.png", full_page=True)
    referral = Referral.objects.get(patient__pseudonym=pseudonym)
    consent = referral.consents.get()
    assert referral.stage == Stage.CONSENTED and consent.document.language == "pt"

    browser_login(page, base, "navigator.mad")
    page.goto(f"{base}/patients/{pseudonym}/")
    page.locator("#language-select").select_option("es")  # submits itself (data-autosubmit)
    expect(page.locator("html")).to_have_attribute("lang", "es")
    expect(page.locator("#language-select")).to_have_value("es")
    page.goto(f"{base}/patients/{pseudonym}/booking/")
    expect(page.locator("html")).to_have_attribute("lang", "es")
    proposal = page.locator("details.confirm").first
    proposal.locator("summary").click()  # the confirmation opens with the reason to give
    proposal.locator("textarea").fill("Cadena acordada con la paciente")
    proposal.locator("button[type=submit]").click()
    booked = Booking.objects.get(referral=referral)
    expect(page.locator("table").first).to_contain_text(booked.unit.serial)
    expect(page.locator("table").first.locator(".badge-ok")).to_have_count(1)
    page.screenshot(path=f"{SHOTS}-booked-es.png", full_page=True)
    referral.refresh_from_db()
    assert referral.stage == Stage.BOOKED and referral.order is not None and booked.reason.startswith("Cadena")

    _release_and_infuse(referral)
    tasks.stage_sync(slot="")
    tasks.followup_daily(slot="")  # the daily job plans the schedule from day 0, the infusion
    referral.refresh_from_db()
    assert referral.stage == Stage.INFUSED and referral.infused_at is not None
    page.locator("#language-select").select_option("en-gb")
    expect(page.locator("html")).to_have_attribute("lang", "en-gb")
    page.goto(f"{base}/patients/{pseudonym}/follow-up/")
    expect(page.get_by_role("heading", name=f"Follow-up of {pseudonym}")).to_be_visible()
    for label in ("Day 7", "Day 14", "Day 28", "Year 15"):
        expect(page.locator("tr", has_text=label).first).to_be_visible()
    day7 = (referral.infused_at.astimezone(clinic.tz).date() + dt.timedelta(days=7)).isoformat()
    expect(page.locator("tr", has_text="Day 7").first).to_contain_text(day7)
    page.screenshot(path=f"{SHOTS}-followup.png", full_page=True)


def test_consent_withdrawn_after_confirmation(live_server, clinic, page: Page):
    """PAT-CONSENT: the physician withdraws a second patient's consent; the form asks for the confirmation
    first, then the patient's page shows "Consent withdrawn" and the referral has ended."""
    from pocare.patients.models import Referral, Stage

    base = live_server.url
    browser_login(page, base, "physician.mad")
    pseudonym = _refer(page, base, "Rui Almeida Costa")
    _assess_and_consent(page)
    page.get_by_role("button", name="Withdraw consent").click()  # the patient page's link, shown as a button
    expect(page.get_by_role("alert")).to_contain_text("CD19-ICF version")  # what the withdrawal holds
    page.get_by_label("The patient's reason").fill("The patient chose another treatment")
    page.get_by_role("button", name="Withdraw consent").click()  # not confirmed: refused, nothing stored
    expect(page.get_by_label(re.compile("^I confirm"))).to_be_visible()
    assert Referral.objects.get(patient__pseudonym=pseudonym).stage == Stage.CONSENTED
    page.get_by_label(re.compile("^I confirm")).check()
    page.get_by_role("button", name="Withdraw consent").click()
    expect(page.get_by_text("Consent withdrawn", exact=False).first).to_be_visible()
    expect(page.locator(".notice-warn", has_text="Consent withdrawn")).to_contain_text(
        "The patient chose another treatment")
    page.screenshot(path=f"{SHOTS}-withdrawn.png", full_page=True)
    assert Referral.objects.get(patient__pseudonym=pseudonym).stage == Stage.WITHDRAWN
