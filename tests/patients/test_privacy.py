"""The identity panel, correction, erasure on request and key rotation (PAT-PRIVACY)."""

from __future__ import annotations

import io
import json
import logging

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from pocare.ledger.models import Event
from pocare.ledger.verify import verify_all
from pocare.patients import identity as sealed
from pocare.patients.events import PatientEvent
from pocare.patients.identity import Identity, unseal
from pocare.patients.models import Patient
from pocare.patients.services import (
    patient_identity_change,
    patient_identity_erase,
    patient_identity_view,
    patient_keys_retire,
    patient_keys_rotate,
    patient_register,
)

pytestmark = pytest.mark.django_db

NAME, ADDRESS, PHONE = "Lucía Fernández Ruiz", "Calle de Alcalá 12, Madrid", "+34 600 123 456"


def _patient_events(patient: Patient, event_type: str) -> list[Event]:
    return list(Event.objects.filter(event_type=event_type, object_id=str(patient.pk)))


def _no_identifying_data_in_the_ledger() -> None:
    for event in Event.objects.all():
        text = json.dumps([event.old_values, event.new_values, event.object_repr, event.reason], default=str)
        for secret in ("Fernández", "Fern\\u00e1ndez", "Alcalá", "Alcal\\u00e1", "600 123", "1968-03-14"):
            assert secret not in text, (event.event_type, secret)


def test_the_panel_shows_nothing_on_get_and_records_each_showing(client, login, patient):
    """PAT-PRIVACY: GET shows the pseudonym only and writes nothing; "Show identifying data" is a POST
    that shows them and writes one ``patients.identity_viewed`` event holding no data."""
    url = reverse("patients:identity", kwargs={"pseudonym": patient.pseudonym})
    login("navigator.mad")
    before = Event.objects.count()
    page = client.get(url)
    assert page.status_code == 200 and patient.pseudonym in page.content.decode()
    assert NAME not in page.content.decode() and "Show identifying data" in page.content.decode()
    assert Event.objects.count() == before
    shown = client.post(url, {"action": "show"}).content.decode()
    assert NAME in shown and ADDRESS in shown and PHONE in shown and "1968-03-14" in shown
    viewed = _patient_events(patient, PatientEvent.IDENTITY_VIEWED)
    assert len(viewed) == 1 and viewed[0].actor_username == "navigator.mad"
    assert viewed[0].new["pseudonym"] == patient.pseudonym
    _no_identifying_data_in_the_ledger()


@pytest.mark.parametrize("username", ["operator.mad", "qc.mad", "manager.mad", "qa", "qp", "planner",
                                      "inspector", "physician.lis", "navigator.lis"])
def test_nobody_else_reaches_the_identity(client, login, people, patient, username):
    """PAT-PRIVACY: a manufacturing-site role at the same hospital, the Control Site and another
    hospital's physician get no panel (403 or 404), no data, and the service refuses them."""
    login(username)
    for name in ("patients:identity", "patients:identity_erase"):
        url = reverse(name, kwargs={"pseudonym": patient.pseudonym})
        for response in (client.get(url), client.post(url, {"action": "show", "confirm": patient.pseudonym,
                                                             "reason": "curious"})):
            assert response.status_code in (403, 404), (name, response.status_code)
            assert NAME not in response.content.decode()
    with pytest.raises(PermissionDenied):
        patient_identity_view(actor=people[username], patient=patient)
    assert Patient.objects.get(pk=patient.pk).erased_at is None
    assert not _patient_events(patient, PatientEvent.IDENTITY_VIEWED)


def test_a_correction_records_which_fields_changed_never_their_values(client, login, people, patient):
    """PAT-PRIVACY: the correction re-seals the data; its event names the fields that changed."""
    url = reverse("patients:identity", kwargs={"pseudonym": patient.pseudonym})
    login("physician.mad")
    response = client.post(url, {"action": "change", "name": NAME, "birth_date": "1968-03-15",
                                 "contact": "+34 600 999 888", "address": ADDRESS, "reason": "Typo at registration"})
    assert response.status_code == 302
    patient.refresh_from_db()
    assert unseal(patient.identity).contact == "+34 600 999 888"
    assert patient.birth_year == 1968
    (changed,) = _patient_events(patient, PatientEvent.IDENTITY_CHANGED)
    assert changed.new == {"fields": ["birth_date", "contact"]}
    assert "999 888" not in json.dumps([changed.old_values, changed.new_values])
    # The same data again: nothing changes, nothing is written.
    assert patient_identity_change(actor=people["physician.mad"], patient=patient, reason="again",
                                   identity=unseal(patient.identity)) == []
    assert len(_patient_events(patient, PatientEvent.IDENTITY_CHANGED)) == 1
    _no_identifying_data_in_the_ledger()


@pytest.mark.parametrize(("field", "value"), [
    ("name", ""), ("name", "A\x00B"), ("name", "x" * 201), ("birth_date", "0001-01-01"),
    ("birth_date", "9999-12-31"), ("birth_date", "1968-02-30"), ("contact", "c" * 201), ("address", "a" * 401),
    ("reason", ""),
])
def test_implausible_corrections_are_refused_and_nothing_is_stored(client, login, patient, field, value):
    """PAT-PRIVACY: each field is bounded and checked as at registration; a 400 naming the field."""
    form = {"action": "change", "name": NAME, "birth_date": "1968-03-14", "contact": PHONE, "address": ADDRESS,
            "reason": "Correction", field: value}
    before = bytes(Patient.objects.get(pk=patient.pk).identity)
    login("physician.mad")
    response = client.post(reverse("patients:identity", kwargs={"pseudonym": patient.pseudonym}), form)
    assert response.status_code == 400
    assert field in response.content.decode()
    assert bytes(Patient.objects.get(pk=patient.pk).identity) == before
    assert not _patient_events(patient, PatientEvent.IDENTITY_CHANGED)


def _manufactured(patient: Patient):  # type: ignore[no-untyped-def]
    """The patient's referral with a therapy order under the pseudonym, its collection (DIN, COI) and
    a started batch at Madrid, through the custody and manufacturing services. The referral is
    linked to the order directly: that link is the booking's (another branch of issue 17)."""
    from pocare.custody.models import HandoffKind
    from tests.custody.helpers import accepted, collect, scan
    from tests.manufacturing.matrix import batch_start_for
    from tests.patients.privacy_helpers import referral_of

    referral = referral_of(patient)
    order = accepted("MAD", recipient=patient.pseudonym)
    collection = collect(order)
    for kind in (HandoffKind.COLLECTION, HandoffKind.DISPATCH_TO_SITE, HandoffKind.RECEIPT_AT_SITE):
        scan(order, kind, collection.din_printed, collection)
    batch = batch_start_for(order)
    referral.order = order
    referral.save(update_fields=["order"])
    return referral, order, collection, batch


def test_erasure_keeps_the_pseudonym_and_everything_linked_to_it(client, login, patient):
    """PAT-PRIVACY (GDPR Art. 17, Reg. 1394/2007 Art. 15): after erasure the identity is gone, and the
    referral, the order, its COI and DIN, the batch and the whole ledger are still there and verify;
    the pseudonym still leads from the patient to the product."""
    referral, order, collection, batch = _manufactured(patient)
    assert verify_all().ok
    url = reverse("patients:identity_erase", kwargs={"pseudonym": patient.pseudonym})
    login("navigator.mad")
    page = client.get(url)
    assert page.status_code == 200 and "30 years" in page.content.decode()
    refused = client.post(url, {"confirm": "PX-WRONG", "reason": "Patient's written request of 2026-12-01"})
    assert refused.status_code == 400 and Patient.objects.get(pk=patient.pk).erased_at is None
    done = client.post(url, {"confirm": patient.pseudonym, "reason": "Patient's written request of 2026-12-01"})
    assert done.status_code == 302

    erased = Patient.objects.get(pk=patient.pk)
    assert erased.identity is None and erased.identity_key == "" and erased.erased_at is not None
    (event,) = _patient_events(patient, PatientEvent.IDENTITY_ERASED)
    assert event.new["identity"] == "erased" and event.reason.startswith("Patient's written request")
    # The chain from the pseudonym to the product is intact.
    again = Patient.objects.get(pseudonym=patient.pseudonym)
    linked = again.referrals.get()
    assert linked.pk == referral.pk and linked.order_id == order.pk
    assert linked.order.recipient_id == patient.pseudonym and linked.order.coi == order.coi
    assert linked.order.collections.get().din == collection.din
    assert linked.order.batch.reference == batch.reference
    report = verify_all()
    assert report.ok, report
    # The panel says so, and nothing can be shown any more.
    panel = client.get(reverse("patients:identity", kwargs={"pseudonym": patient.pseudonym})).content.decode()
    assert "erased" in panel and NAME not in panel
    assert client.post(reverse("patients:identity", kwargs={"pseudonym": patient.pseudonym}),
                       {"action": "show"}).status_code == 400
    assert client.post(url, {"confirm": patient.pseudonym, "reason": "again"}).status_code in (200, 400)
    assert len(_patient_events(patient, PatientEvent.IDENTITY_ERASED)) == 1
    _no_identifying_data_in_the_ledger()


def test_erasure_needs_a_reason_and_the_treating_hospital(people, patient):
    """PAT-PRIVACY: no erasure without a reason, nor by another hospital's physician."""
    with pytest.raises(ValidationError):
        patient_identity_erase(actor=people["physician.mad"], patient=patient, reason="")
    with pytest.raises(PermissionDenied):
        patient_identity_erase(actor=people["physician.lis"], patient=patient, reason="request")
    assert Patient.objects.get(pk=patient.pk).identity is not None


def test_key_rotation_reseals_every_identity_under_a_new_key(people, patient, settings):
    """PAT-PRIVACY: ``pocare patient-keys rotate`` puts a new key first, re-seals every identity in
    one transaction with one ledger event; ``retire`` then drops the old key and every identity still
    opens. ``init`` never replaces a key file."""
    second = patient_register(actor=people["physician.mad"], treating_site=patient.treating_site,
                              identity=Identity(name="Second Patient"))
    erased = patient_register(actor=people["physician.mad"], treating_site=patient.treating_site,
                              identity=Identity(name="Erased Patient"))
    patient_identity_erase(actor=people["physician.mad"], patient=erased, reason="request")
    old_key = patient.identity_key
    old_token = bytes(Patient.objects.get(pk=patient.pk).identity)
    out = io.StringIO()
    call_command("patient-keys", "rotate", "--reason", "Yearly rotation", stdout=out)
    assert "2 identities sealed again" in out.getvalue()
    assert len(json.loads(settings.POCARE_PATIENT_KEYS.read_text())["keys"]) == 2  # the old one stays
    call_command("patient-keys", "retire", stdout=out)
    assert f"retired {old_key}" in out.getvalue()
    (retired,) = Event.objects.filter(event_type=PatientEvent.KEYS_RETIRED)
    assert retired.new["retired"] == [old_key]
    keys = json.loads(settings.POCARE_PATIENT_KEYS.read_text())["keys"]
    assert len(keys) == 1 and keys[0]["id"] != old_key
    assert oct(settings.POCARE_PATIENT_KEYS.stat().st_mode & 0o777) == "0o600"
    sealed.keys_forget()
    for p, name in ((patient, NAME), (second, "Second Patient")):
        stored = Patient.objects.get(pk=p.pk)
        assert stored.identity_key == keys[0]["id"] and unseal(stored.identity).name == name
    assert bytes(Patient.objects.get(pk=patient.pk).identity) != old_token
    assert Patient.objects.get(pk=erased.pk).identity is None
    (event,) = Event.objects.filter(event_type=PatientEvent.KEYS_ROTATED)
    assert event.new == {"key": keys[0]["id"], "resealed": 2} and event.reason == "Yearly rotation"
    with pytest.raises(sealed.IdentityUnreadable):  # the retired key opened the old token; it is gone
        unseal(old_token)
    with pytest.raises(CommandError, match="exists already"):
        call_command("patient-keys", "init")
    with pytest.raises(PermissionDenied):
        patient_keys_rotate(actor=people["qa"])
    assert patient_keys_retire() == []  # nothing more to retire
    shown = io.StringIO()
    call_command("patient-keys", "show", stdout=shown)
    assert f"{keys[0]['id']} (seals new data): 2 identities" in shown.getvalue()
    assert keys[0]["key"] not in shown.getvalue()


def test_identifying_data_never_reach_the_logs(client, login, patient, caplog):
    """PAT-PRIVACY: registering, showing, correcting and erasing log no identifying data."""
    caplog.set_level(logging.DEBUG)
    url = reverse("patients:identity", kwargs={"pseudonym": patient.pseudonym})
    login("physician.mad")
    client.post(url, {"action": "show"})
    client.post(url, {"action": "change", "name": NAME, "birth_date": "1968-03-14", "contact": "+34 611 000 111",
                      "address": ADDRESS, "reason": "New phone"})
    client.post(url, {"action": "change", "name": "\x00", "reason": "bad"})
    client.post(reverse("patients:identity_erase", kwargs={"pseudonym": patient.pseudonym}),
                {"confirm": patient.pseudonym, "reason": "Request"})
    logged = "\n".join(r.getMessage() + str(getattr(r, "__dict__", "")) for r in caplog.records)
    for secret in ("Fernández", "Alcalá", "600 123", "611 000", "1968-03-14"):
        assert secret not in logged
