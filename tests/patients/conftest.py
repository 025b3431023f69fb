"""Fixtures of the patients app's tests: a patient of Madrid's hospital and their referral, made
through the services (as a physician would), with a key file of the test's own."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _patient_keys(patient_keys):  # type: ignore[no-untyped-def]
    """Each test seals identities with keys of its own, in a file outside the database."""
    yield


@pytest.fixture
def patient(people):  # type: ignore[no-untyped-def]
    from pocare.network.models import Site
    from pocare.patients.identity import Identity
    from pocare.patients.services import patient_register

    return patient_register(actor=people["physician.mad"], treating_site=Site.objects.get(code="MAD"),
                            identity=Identity(name="Lucía Fernández Ruiz", birth_date="1968-03-14",
                                              contact="+34 600 123 456", address="Calle de Alcalá 12, Madrid"),
                            language="es", region="ES300", travel_minutes=35, deprivation_quintile=3)


@pytest.fixture
def referral(people, patient):  # type: ignore[no-untyped-def]
    from pocare.patients.services import referral_create
    from tests.custody.helpers import effective_at

    return referral_create(actor=people["physician.mad"], patient=patient, product=effective_at("MAD").product,
                           indication="Relapsed/refractory diffuse large B-cell lymphoma", weight_kg="68.5")
