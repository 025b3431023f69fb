"""Registration under a pseudonym and referral (PAT-PRIVACY)."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from pocare.ledger.models import Event
from pocare.network.models import Site
from pocare.patients.identity import Identity, unseal
from pocare.patients.models import Patient, Stage
from pocare.patients.services import patient_register

pytestmark = pytest.mark.django_db


def test_identity_is_sealed_and_never_in_the_ledger(patient, referral):
    """PAT-PRIVACY: the name is stored encrypted, opens with the key file, and no ledger event holds it."""
    stored = bytes(Patient.objects.get(pk=patient.pk).identity)
    assert b"Luc" not in stored and b"Fern" not in stored
    assert unseal(stored).name == "Lucía Fernández Ruiz"
    assert patient.pseudonym.startswith("PX-") and len(patient.pseudonym) == 12
    assert referral.stage == Stage.REFERRED
    for event in Event.objects.filter(event_type__startswith="patients."):
        text = str(event.new_values) + str(event.old_values) + event.object_repr
        assert "Fernández" not in text and "Alcalá" not in text and "600 123" not in text


def test_only_the_treating_hospital_registers(people):
    """PAT-PRIVACY: an operator at the hospital, and a physician of another hospital, may not register."""
    mad = Site.objects.get(code="MAD")
    for who in ("operator.mad", "physician.lis", "qa"):
        with pytest.raises(PermissionDenied):
            patient_register(actor=people[who], treating_site=mad, identity=Identity(name="A. Patient"))
    assert not Patient.objects.exists()


@pytest.mark.parametrize(("field", "identity", "extra"), [
    ("name", Identity(name=""), {}),
    ("name", Identity(name="A\x00B"), {}),
    ("name", Identity(name="x" * 201), {}),
    ("birth_date", Identity(name="A", birth_date="0001-01-01"), {}),
    ("birth_date", Identity(name="A", birth_date="9999-12-31"), {}),
    ("birth_date", Identity(name="A", birth_date="1968-02-30"), {}),
    ("travel_minutes", Identity(name="A"), {"travel_minutes": 10**400}),
    ("deprivation_quintile", Identity(name="A"), {"deprivation_quintile": 6}),
    ("language", Identity(name="A"), {"language": "xx"}),
])
def test_implausible_registrations_are_refused(people, field, identity, extra):
    with pytest.raises(ValidationError) as refused:
        patient_register(actor=people["physician.mad"], treating_site=Site.objects.get(code="MAD"),
                         identity=identity, **extra)
    assert field in refused.value.message_dict
    assert not Patient.objects.exists()
