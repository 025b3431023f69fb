"""What the FHIR exchange records: each disclosure of a patient's identifying data (PAT-PRIVACY)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.db import transaction

from pocare.accounts.roles import Perm
from pocare.accounts.services import require_perm
from pocare.ledger.services import event_record, reason_required
from pocare.patients.events import PatientEvent

if TYPE_CHECKING:
    from pocare.accounts.models import User
    from pocare.patients.models import Patient

#: What a disclosure over FHIR shows; the values themselves never enter the ledger.
DISCLOSED_FIELDS = ["name", "birth_date", "contact", "address"]


def identity_disclose(*, actor: User, patients: Iterable[Patient], channel: str, reason: str) -> None:
    """Record, before the answer leaves, that ``actor`` is shown each patient's identifying data:
    one ``patients.identity_viewed`` event per patient on the treating hospital's chain, naming the
    pseudonym, the channel and the fields, never their values."""
    reason = reason_required(reason)
    with transaction.atomic():
        for patient in patients:
            require_perm(actor, Perm.PATIENTS_IDENTIFY, site=patient.treating_site)
            event_record(actor=actor, event_type=PatientEvent.IDENTITY_VIEWED, obj=patient,
                         site=patient.treating_site, object_repr=patient.pseudonym, reason=reason,
                         new={"pseudonym": patient.pseudonym, "channel": channel, "fields": DISCLOSED_FIELDS})
