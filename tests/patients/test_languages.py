"""The staff's language switcher and the LocaleMiddleware (issue 17 "Languages"): the pages follow the
language chosen, the site works in each, and a patient's document follows the patient, not the staff."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.urls import reverse

from tests.patients.privacy_helpers import patient_at

pytestmark = pytest.mark.django_db


def test_the_locale_middleware_sits_where_django_wants_it():
    """After the session (it reads the choice) and before CommonMiddleware (Django's order)."""
    order = settings.MIDDLEWARE
    locale = order.index("django.middleware.locale.LocaleMiddleware")
    assert order.index("django.contrib.sessions.middleware.SessionMiddleware") < locale
    assert locale < order.index("django.middleware.common.CommonMiddleware")
    assert [code for code, _ in settings.LANGUAGES] == ["en-gb", "es", "pt"]


@pytest.mark.parametrize("language", ["es", "pt", "en-gb"])
def test_staff_choose_the_language_of_the_pages(client, login, language):
    login("navigator.mad")
    response = client.post(reverse("web:language"), {"language": language, "next": "/"})
    assert response.status_code == 302 and response["Location"] == "/"
    home = client.get("/")
    assert home.status_code == 200
    assert f'<html lang="{language}"' in home.content.decode()
    assert f'<option value="{language}" lang="{language}" selected>' in home.content.decode()


def test_the_switcher_refuses_a_get_and_an_unknown_language(client, login):
    login("navigator.mad")
    assert client.get(reverse("web:language")).status_code == 405
    client.post(reverse("web:language"), {"language": "xx", "next": "/"})
    assert '<html lang="en-gb"' in client.get("/").content.decode()


def test_a_browser_asking_for_spanish_still_gets_every_page(client, login):
    """The site still works under each language: the home page and the patients' pages render."""
    patient = patient_at("MAD")
    login("navigator.mad")
    for accept in ("es-ES,es;q=0.9", "pt-PT", "de-DE", "en-US"):
        assert client.get("/", HTTP_ACCEPT_LANGUAGE=accept).status_code == 200
        assert client.get(reverse("patients:identity", kwargs={"pseudonym": patient.pseudonym}),
                          HTTP_ACCEPT_LANGUAGE=accept).status_code == 200


def test_a_patients_document_follows_the_patient_not_the_staff(client, login):
    """Issue 17 "Languages": staff reading in Portuguese print a Spanish patient's leaflet in Spanish."""
    patient = patient_at("MAD")  # Spanish
    login("navigator.mad")
    client.post(reverse("web:language"), {"language": "pt", "next": "/"})
    body = client.get(reverse("patients:leaflet", kwargs={"pseudonym": patient.pseudonym})).content.decode()
    assert "Seguimiento durante 15 años" in body and 'lang="es"' in body
    panel = client.get(reverse("patients:identity", kwargs={"pseudonym": patient.pseudonym})).content.decode()
    assert "Mostrar os dados identificativos" in panel  # the staff's own page is in the staff's language
