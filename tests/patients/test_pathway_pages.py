"""The pathway pages: the navigator's and the physician's lists, the referral form, a patient's page
by pseudonym, and the eligibility, consent, withdrawal and lost forms — scoped to the treating
hospital, refusing hostile input with a 400 and storing nothing, never showing the identity."""

from __future__ import annotations

import pytest
from django.urls import reverse

from pocare.patients.models import Patient, Referral, Stage
from tests.patients.pathway_helpers import answers, document, eligible

pytestmark = pytest.mark.django_db

NAME = "Lucía Fernández Ruiz"


def _form(referral: Referral) -> dict[str, str]:
    return {f"c_{k}": "yes" if v else "no" for k, v in answers(referral).items()}


def test_the_navigator_sees_each_patient_of_the_hospital_with_stage_and_what_is_late(client, login, referral):
    """PAT-PRIVACY: the list and its CSV show the pseudonym, never the name."""
    login("navigator.mad")
    page = client.get(reverse("patients:navigator"))
    assert page.status_code == 200
    text = page.content.decode()
    assert referral.patient.pseudonym in text and "Referred" in text and NAME not in text
    csv = b"".join(client.get(reverse("patients:navigator"), {"export": "csv"}).streaming_content).decode()
    assert referral.patient.pseudonym in csv and NAME not in csv
    assert client.get(reverse("patients:navigator"), {"stage": "nonsense"}).status_code == 400
    assert client.get(reverse("patients:navigator"), {"q": "a\x00b"}).status_code == 400


def test_another_hospital_does_not_see_the_patient(client, login, referral):
    login("physician.lis")
    assert referral.patient.pseudonym not in client.get(reverse("patients:navigator")).content.decode()
    assert client.get(reverse("patients:patient", args=[referral.patient.pseudonym])).status_code == 404
    assert client.get(reverse("patients:eligibility", args=[referral.pk])).status_code == 404


def test_the_control_site_sees_the_pseudonym_only(client, login, referral):
    login("qa")
    page = client.get(reverse("patients:patient", args=[referral.patient.pseudonym]))
    assert page.status_code == 200
    text = page.content.decode()
    assert referral.patient.pseudonym in text and NAME not in text and "identity/" not in text


def test_the_physician_sees_what_each_referral_waits_for(client, login, referral):
    login("physician.mad")
    text = client.get(reverse("patients:physician")).content.decode()
    assert referral.patient.pseudonym in text and "Eligibility assessment" in text
    login("navigator.mad")  # the navigator referred nobody
    assert referral.patient.pseudonym not in client.get(reverse("patients:physician")).content.decode()


def test_the_referral_form_registers_and_refers_together_or_not_at_all(client, login):
    from tests.custody.helpers import effective_at

    effective_at("MAD")
    login("physician.mad")
    before = Patient.objects.count()
    data = {"treating_site": "MAD", "product": "CD19-CART", "name": "Ana Souto", "birth_date": "1961-07-02",
            "language": "pt", "indication": "r/r DLBCL after two lines", "weight_kg": "61.0", "reason": "Referral"}
    refused = client.post(reverse("patients:refer"), {**data, "name": "Ana\x00"})
    assert refused.status_code == 400 and Patient.objects.count() == before
    refused = client.post(reverse("patients:refer"), {**data, "birth_date": "9999-01-01"})
    assert refused.status_code == 400 and Patient.objects.count() == before
    refused = client.post(reverse("patients:refer"), {**data, "weight_kg": "9" * 400})
    assert refused.status_code == 400 and Patient.objects.count() == before
    done = client.post(reverse("patients:refer"), data)
    assert done.status_code == 302
    patient = Patient.objects.latest("pk")
    assert done.url == reverse("patients:patient", args=[patient.pseudonym]) and "Ana" not in done.url
    assert patient.referrals.get().stage == Stage.REFERRED and patient.language == "pt"


def test_eligibility_consent_and_withdrawal_through_the_pages(client, login, referral):
    """PAT-CONSENT: the checklist answered, the consent recorded in the patient's language, the
    withdrawal only once confirmed."""
    login("physician.mad")
    url = reverse("patients:eligibility", args=[referral.pk])
    page = client.get(url)
    assert page.status_code == 200 and "ECOG performance status 0 or 1" in page.content.decode()
    assert client.post(url, {**_form(referral), "c_ecog": "maybe", "reason": "r"}).status_code == 400
    assert client.post(url, {**_form(referral), "reason": "Clinic review"}).status_code == 302
    referral.refresh_from_db()
    assert referral.stage == Stage.ELIGIBLE

    doc = document(referral, "es")
    url = reverse("patients:consent", args=[referral.pk])
    assert "CD19-ICF v1" in client.get(url).content.decode()
    refused = client.post(url, {"document": doc.pk, "signed_at": "0001-01-01T10:00", "reason": "Signed"})
    assert refused.status_code == 400
    done = client.post(url, {"document": doc.pk, "signed_at": "2026-01-01T10:00", "reason": "Signed"})
    assert done.status_code == 400  # before the referral: refused by the service, shown on the form
    from django.utils import timezone

    now = timezone.now().astimezone(referral.patient.treating_site.tz).strftime("%Y-%m-%dT%H:%M")
    assert client.post(url, {"document": doc.pk, "signed_at": now, "reason": "Signed"}).status_code == 302
    referral.refresh_from_db()
    assert referral.stage == Stage.CONSENTED
    text = client.get(reverse("patients:patient", args=[referral.patient.pseudonym])).content.decode()
    assert "CD19-ICF version 1, Español" in text

    url = reverse("patients:withdraw", args=[referral.pk])
    assert "will be held" in client.get(url).content.decode()
    assert client.post(url, {"reason": "No longer wishes"}).status_code == 400  # not confirmed
    referral.refresh_from_db()
    assert referral.stage == Stage.CONSENTED
    assert client.post(url, {"reason": "No longer wishes", "confirm": "on"}).status_code == 302
    referral.refresh_from_db()
    assert referral.stage == Stage.WITHDRAWN
    assert "on hold" in client.get(reverse("patients:patient", args=[referral.patient.pseudonym])).content.decode()


def test_lost_and_support_through_the_pages(client, login, referral):
    login("navigator.mad")
    eligible(referral, "navigator.mad")
    url = reverse("patients:lost", args=[referral.pk])
    assert client.post(url, {"lost_reason": "teleported", "reason": "x"}).status_code == 400
    assert client.post(url, {"lost_reason": "died", "reason": "Died of infection"}).status_code == 302
    referral.refresh_from_db()
    assert (referral.stage, referral.lost_reason) == (Stage.LOST, "died")
    support = reverse("patients:support", args=[referral.patient.pseudonym])
    assert client.post(support, {"support": "Hotel near the hospital\x00", "reason": "r"}).status_code == 400
    assert client.post(support, {"support": "Hotel for the carer, 4 weeks", "reason": "Booked"}).status_code == 302
    text = client.get(reverse("patients:navigator")).content.decode()
    assert "Hotel for the carer" in text and "Lost before treatment" in text


def test_the_work_queues_show_eligibility_and_consent_waiting(client, login, referral):
    login("physician.mad")
    text = client.get(reverse("web:home")).content.decode()
    assert "Eligibility to assess" in text and referral.patient.pseudonym in text
    eligible(referral)
    text = client.get(reverse("web:home")).content.decode()
    assert "Consent to record" in text


def test_consent_documents_are_issued_at_the_control_site_only(client, login, referral):
    login("qa")
    url = reverse("patients:documents")
    data = {"product": "CD19-CART", "code": "CD19-ICF", "language": "pt", "title": "Consentimento",
            "body": "Aceito.", "reason": "Aprovado"}
    assert client.post(url, {**data, "language": "xx"}).status_code == 400
    assert client.post(url, data).status_code == 302
    assert "Consentimento" in client.get(url).content.decode()
    login("physician.mad")
    assert client.post(url, data).status_code == 403


def test_the_referrals_api_is_pseudonymous_filtered_and_scoped(client, login, referral):
    """PAT-PRIVACY: the API names the pseudonym, never the identity; another hospital sees nothing."""
    eligible(referral)
    login("navigator.mad")
    listed = client.get(reverse("api-patients-referrals"), {"stage": "eligible"}).json()
    assert [r["pseudonym"] for r in listed["results"]] == [referral.patient.pseudonym]
    assert client.get(reverse("api-patients-referrals"), {"stage": "referred"}).json()["results"] == []
    assert client.get(reverse("api-patients-referrals"), {"stage": "x\x00"}).status_code == 400
    detail = client.get(reverse("api-patients-referral", args=[referral.pk])).json()
    assert detail["eligibility"][0]["eligible"] is True and NAME not in str(detail)
    login("physician.lis")
    assert client.get(reverse("api-patients-referrals")).json()["results"] == []
    assert client.get(reverse("api-patients-referral", args=[referral.pk])).status_code == 404
