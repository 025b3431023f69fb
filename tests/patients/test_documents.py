"""The patient-facing documents: consent as signed, patient information, appointment letter and
follow-up questionnaire, in the patient's language, as HTML and as PDF read back as a reader would
(issue 17 "Languages"; PAT-CONSENT, PAT-LTFU, PAT-PRIVACY)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse

from pocare.ledger.models import Event
from tests import pdf_reading
from tests.patients.privacy_helpers import booked, consent_signed, patient_at

pytestmark = pytest.mark.django_db

NAME = "Lucía Fernández Ruiz"
#: A phrase of each document in each language (from the catalogues).
HEADINGS = {
    "leaflet": {"en": "Follow-up for 15 years", "es": "Seguimiento durante 15 años", "pt": "Seguimento durante 15 anos"},
    "appointment_letter": {"en": "Infusion of your cells", "es": "Infusión de sus células",
                           "pt": "Infusão das suas células"},
    "questionnaire_document": {"en": "Follow-up questionnaire", "es": "Cuestionario de seguimiento",
                               "pt": "Questionário de seguimento"},
}


@pytest.fixture
def madrid(people):  # type: ignore[no-untyped-def]
    patient = patient_at("MAD")  # Spanish-speaking
    consent_signed(patient, language="pt")  # signed in Portuguese: the consent stays in Portuguese
    # 12 Jan 2027 08:00 UTC is 09:00 in Madrid (CET); 9 Feb 2027 09:30 UTC is 10:30 CET.
    booked(patient, apheresis_at=dt.datetime(2027, 1, 12, 8, 0, tzinfo=dt.UTC),
           infusion_at=dt.datetime(2027, 2, 9, 9, 30, tzinfo=dt.UTC))
    return patient


def _url(name: str, patient, **query: str) -> str:  # type: ignore[no-untyped-def]
    url = reverse(f"patients:{name}", kwargs={"pseudonym": patient.pseudonym})
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


@pytest.mark.parametrize("name", sorted(HEADINGS))
@pytest.mark.parametrize("language", ["", "en", "es", "pt"])
def test_documents_are_in_the_patients_language_or_the_one_asked_for(client, login, madrid, name, language):
    """Issue 17 "Languages": each document in the patient's language (Spanish here) or in English,
    Spanish or Portuguese when asked; the pseudonym on it and never the name; GET writes nothing."""
    login("navigator.mad")
    before = Event.objects.count()
    response = client.get(_url(name, madrid, **({"language": language} if language else {})))
    body = response.content.decode()
    assert response.status_code == 200
    assert HEADINGS[name][language or "es"] in body
    assert f'lang="{language or "es"}"' in body
    assert madrid.pseudonym in body and NAME not in body
    assert Event.objects.count() == before


def test_the_appointment_letter_gives_times_in_the_hospitals_zone(client, login, madrid):
    """STYLE (time is explicit): apheresis and infusion in Madrid's time, with the zone written."""
    login("navigator.mad")
    body = client.get(_url("appointment_letter", madrid)).content.decode()
    assert "2027-01-12 09:00 CET" in body and "2027-02-09 10:30 CET" in body
    assert "Madrid POCare site" in body


def test_the_consent_is_the_text_signed_in_the_language_signed(client, login, madrid):
    """PAT-CONSENT: title, version, language, body, hash and signature date of the signed version, in
    the language it was signed in (Portuguese), whatever the patient's language or the one asked for."""
    consent = madrid.referrals.get().consents.get()
    login("physician.mad")
    for query in ({}, {"language": "en"}):
        body = client.get(_url("consent_document", madrid, **query)).content.decode()
        assert 'lang="pt"' in body and "Assinado em" in body
        assert consent.document.title in body and consent.document.body in body
        assert consent.document.content_hash in body and ">3<" in body
        assert consent.signed_at.astimezone(madrid.treating_site.tz).strftime("%Y-%m-%d %H:%M") in body


def _pdf_text(pdf: bytes) -> str:
    with pdf_reading.opened(pdf) as doc:
        return "\n".join(page.extract_text() or "" for page in doc.pages)


@pytest.mark.parametrize(("name", "language", "expected"), [
    ("consent_document", "", ["Consentimento para o tratamento CAR-T", "Impressão digital do texto"]),
    ("leaflet", "pt", ["Seguimento durante 15 anos", "A sua privacidade"]),
    ("leaflet", "en", ["Follow-up for 15 years", "Your privacy"]),
    ("appointment_letter", "", ["Infusión de sus células", "2027-01-12 09:00 CET", "2027-02-09 10:30 CET"]),
    ("questionnaire_document", "", ["Cuestionario de seguimiento", "nuevo cáncer", "No lo sé"]),
    ("questionnaire_document", "pt", ["Questionário de seguimento", "convulsões"]),
])
def test_the_pdfs_read_back_in_their_language(client, login, madrid, name, language, expected):
    """Issue 17 "Languages": the PDF of each document says, to an independent reader, what the page
    says in the language chosen, with the pseudonym and without the name."""
    login("navigator.mad")
    response = client.get(_url(name, madrid, format="pdf", **({"language": language} if language else {})))
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert madrid.pseudonym in response["Content-Disposition"]
    pdf_reading.keep(f"{name}-{language or 'own'}.pdf", response.content)
    text = " ".join(_pdf_text(response.content).split())
    for phrase in [*expected, madrid.pseudonym]:
        assert phrase in text, (phrase, text[:400])
    assert "Fernández" not in text


@pytest.mark.parametrize(("query", "status"), [
    ({"format": "doc"}, 400), ({"language": "xx"}, 400), ({"language": "e\x00s"}, 400),
    ({"format": "html", "language": "pt"}, 200),
])
def test_implausible_requests_are_refused(client, login, madrid, query, status):
    login("navigator.mad")
    assert client.get(_url("leaflet", madrid), query).status_code == status


def test_no_consent_or_booking_is_a_404_with_its_reason(client, login, people):
    """A document with nothing to show is not made up: no consent signed, no chain booked — 404."""
    patient = patient_at("MAD")
    login("physician.mad")
    for name in ("consent_document", "appointment_letter"):
        assert client.get(_url(name, patient)).status_code == 404
    assert client.get(_url("leaflet", patient)).status_code == 200


@pytest.mark.parametrize(("username", "status"), [
    ("operator.mad", 403), ("qc.mad", 403), ("manager.mad", 403), ("physician.lis", 404), ("planner", 403),
    ("qa", 200), ("qp", 200), ("physician.mad", 200),
])
def test_who_may_download_the_documents(client, login, madrid, username, status):
    """PAT-PRIVACY: the documents carry the pseudonym only: the treating hospital and the Control
    Site's QA and QP may read them; the manufacturing roles at the hospital and another hospital may not."""
    login(username)
    assert client.get(_url("leaflet", madrid)).status_code == status


def test_the_navigator_fills_in_the_questionnaire_on_the_web(client, login, madrid):
    """PAT-LTFU: the web questionnaire, in the patient's language, checks each answer (yes, no, do
    not know; details bounded) and reads them back; checking stores nothing (recording them as the visit
    due: tests/patients/test_followup.py)."""
    login("navigator.mad")
    url = _url("questionnaire", madrid)
    page = client.get(url).content.decode()
    assert "Cuestionario de seguimiento" in page and 'name="neurological"' in page
    answers = dict.fromkeys(("alive", "hospital_stays", "new_cancer", "infections", "neurological"), "no")
    before = Event.objects.count()
    done = client.post(url, {**answers, "alive": "yes", "infections": "yes",
                             "infections_detail": "Neumonía en marzo, ingreso 5 días"})
    assert done.status_code == 200 and "Las respuestas están completas" in done.content.decode()
    for bad in ({"alive": "perhaps"}, {"infections_detail": "x" * 1001}):
        refused = client.post(url, {**answers, **bad})
        assert refused.status_code == 400 and 'id="errors"' in refused.content.decode()
    assert client.post(url, {**answers, "infections_detail": "x\x00"}).status_code == 400  # the input bounds
    assert Event.objects.count() == before
    login("operator.mad")
    assert client.get(url).status_code == 403
    login("qa")
    assert client.post(url, answers).status_code == 403  # reads, but records no follow-up


def test_the_patients_page_links_every_document(madrid):
    """The include the patient's page uses (pathway) links each document as page and PDF, and the
    web questionnaire; every link answers."""
    from django.template.loader import render_to_string
    from django.test import Client

    from tests.conftest import PASSWORD

    html = render_to_string("patients/_documents.html", {"patient": madrid})
    links = [href.replace("&amp;", "&") for href in re.findall(r'href="([^"]+)"', html)]
    assert len(links) == 9
    client = Client()
    client.post("/login/", {"username": "navigator.mad", "password": PASSWORD})
    for link in links:
        assert client.get(link).status_code == 200, link
