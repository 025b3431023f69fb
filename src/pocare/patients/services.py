"""Changes to a patient's pathway: registration under a pseudonym and referral (docs/patients.md).

Each function is keyword-only, runs in one transaction, checks the actor's permission at the
treating hospital and writes its ledger event on that hospital's chain. The ledger event of a
registration names the pseudonym only: identifying data never enter the ledger (PAT-PRIVACY), which
keeps them erasable while the ledger stays append-only.
"""

from __future__ import annotations

import datetime as dt
import secrets
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from pocare.accounts.roles import Perm
from pocare.accounts.services import require_perm
from pocare.core import bounds
from pocare.ledger.services import event_record, reason_required
from pocare.network.models import Site, SiteKind
from pocare.patients import identity as sealed
from pocare.patients.events import PatientEvent
from pocare.patients.models import Language, Patient, Referral, ReferralSource, Stage

if TYPE_CHECKING:
    from pocare.accounts.models import User
    from pocare.masterfile.models import Product

#: Crockford's base-32 alphabet without I, L, O, U: a pseudonym read aloud or typed is not misread.
_PSEUDONYM_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
PSEUDONYM_PREFIX = "PX-"


def _text(value: Any, field: str, what: str, max_length: int, *, required: bool = True) -> str:
    text = str(value if value is not None else "").strip()
    if required and not text:
        raise ValidationError({field: f"Give the {what}."})
    if problem := bounds.text_problem(text):
        raise ValidationError({field: f"The {what}: {problem}."})
    if len(text) > max_length:
        raise ValidationError({field: f"The {what} has at most {max_length} characters."})
    return text


def pseudonym_new() -> str:
    """A fresh random pseudonym, ``PX-`` and two groups of four characters (40 bits): never derived
    from who the patient is, so it reveals nothing and survives the erasure of the identity."""
    while True:
        body = "".join(secrets.choice(_PSEUDONYM_ALPHABET) for _ in range(8))
        pseudonym = f"{PSEUDONYM_PREFIX}{body[:4]}-{body[4:]}"
        if not Patient.objects.filter(pseudonym=pseudonym).exists():
            return pseudonym


def _birth_date(value: Any) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        try:
            value = dt.date.fromisoformat(str(value))
        except ValueError:
            raise ValidationError({"birth_date": "Give the date of birth as YYYY-MM-DD."}) from None
    today = timezone.now().date()
    if not today.replace(year=today.year - 120) <= value <= today:
        raise ValidationError({"birth_date": f"The date of birth is between {today.year - 120} and today."})
    return value


def patient_register(
    *,
    actor: User,
    treating_site: Site,
    identity: sealed.Identity,
    language: str = Language.EN,
    region: str = "",
    travel_minutes: int | None = None,
    deprivation_quintile: int | None = None,
    reason: str = "Patient registered for referral",
) -> Patient:
    """Register a patient at their treating hospital: a new pseudonym, the identifying data sealed
    (``identity``), and the pseudonymous facts the pathway and the outcomes use (birth year, region,
    travel time, deprivation quintile)."""
    require_perm(actor, Perm.PATIENTS_REFER, site=treating_site)
    if treating_site.kind == SiteKind.CONTROL:
        raise ValidationError({"treating_site": "The Control Site treats no patients; choose the hospital."})
    name = _text(identity.name, "name", "patient's name", 200)
    birth_date = _birth_date(identity.birth_date)
    contact = _text(identity.contact, "contact", "contact", 200, required=False)
    address = _text(identity.address, "address", "address", 400, required=False)
    if language not in Language.values:
        raise ValidationError({"language": f"Choose one of {', '.join(Language.values)}."})
    region = _text(region, "region", "region", 40, required=False)
    if travel_minutes is not None and (not isinstance(travel_minutes, int) or not 0 <= travel_minutes <= 48 * 60):
        raise ValidationError({"travel_minutes": "The travel time is between 0 and 2,880 minutes (48 hours)."})
    if deprivation_quintile is not None and deprivation_quintile not in (1, 2, 3, 4, 5):
        raise ValidationError({"deprivation_quintile": "The deprivation quintile is 1 (least) to 5 (most)."})
    reason = reason_required(reason)
    token, key_id = sealed.seal(sealed.Identity(name=name, birth_date=birth_date.isoformat() if birth_date else "",
                                                contact=contact, address=address))
    with transaction.atomic():
        patient = Patient.objects.create(
            pseudonym=pseudonym_new(), treating_site=treating_site, language=language, identity=token,
            identity_key=key_id, birth_year=birth_date.year if birth_date else None, region=region,
            travel_minutes=travel_minutes, deprivation_quintile=deprivation_quintile, registered_by=actor,
            registered_at=timezone.now(),
        )
        event_record(actor=actor, event_type=PatientEvent.REGISTERED, obj=patient, site=treating_site,
                     object_repr=patient.pseudonym, reason=reason,
                     new={"pseudonym": patient.pseudonym, "language": language, "birth_year": patient.birth_year,
                          "region": region, "travel_minutes": travel_minutes,
                          "deprivation_quintile": deprivation_quintile})
    return patient


def _weight(value: Any) -> Decimal:
    try:
        weight = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValidationError({"weight_kg": "Give the weight in kg, e.g. 72.5."}) from None
    if not weight.is_finite() or not Decimal("0.5") <= weight <= Decimal("400"):
        raise ValidationError({"weight_kg": "The weight is between 0.5 and 400 kg."})
    return weight.quantize(Decimal("0.1"))


def referral_create(
    *,
    actor: User,
    patient: Patient,
    product: Product,
    indication: str,
    weight_kg: Decimal | str | float,
    reason: str = "Patient referred",
    source: str = ReferralSource.FORM,
    external_system: str = "",
    external_id: str = "",
) -> Referral:
    """Refer ``patient`` for ``product``. From a hospital system (``source`` FHIR) the request's
    identifier is kept, and a second import of the same identifier is refused (the caller finds the
    first with :func:`referral_by_external_id`)."""
    require_perm(actor, Perm.PATIENTS_REFER, site=patient.treating_site)
    if patient.erased_at is not None:
        raise ValidationError({"patient": "This patient's identifying data were erased; a new referral "
                                          "registers the patient again."})
    indication = _text(indication, "indication", "indication", 120)
    weight = _weight(weight_kg)
    if source not in ReferralSource.values:
        raise ValidationError({"source": f"Choose one of {', '.join(ReferralSource.values)}."})
    external_system = _text(external_system, "external_system", "identifier system", 200, required=False)
    external_id = _text(external_id, "external_id", "identifier", 64, required=False)
    reason = reason_required(reason)
    with transaction.atomic():
        if external_id and Referral.objects.filter(external_system=external_system, external_id=external_id).exists():
            raise ValidationError({"external_id": f"A referral with identifier {external_id} from "
                                                  f"{external_system or 'this system'} exists already."})
        now = timezone.now()
        referral = Referral.objects.create(
            patient=patient, product=product, indication=indication, weight_kg=weight, referred_by=actor,
            referred_at=now, source=source, external_system=external_system, external_id=external_id,
            stage=Stage.REFERRED, stage_changed_at=now,
        )
        event_record(actor=actor, event_type=PatientEvent.REFERRED, obj=referral, site=patient.treating_site,
                     object_repr=f"Referral {referral.pk} of {patient.pseudonym}", reason=reason,
                     new={"patient": patient.pseudonym, "product": product.code, "indication": indication,
                          "weight_kg": weight, "source": source, "external_system": external_system,
                          "external_id": external_id})
    return referral


def referral_by_external_id(*, system: str, value: str) -> Referral | None:
    """The referral imported with the identifier (``system``, ``value``), if any."""
    return Referral.objects.filter(external_system=system, external_id=value).first()


# --- privacy: identifying data, viewed, changed, erased; key rotation (PAT-PRIVACY) -----------------
#
# The ledger events below name the pseudonym and *which* fields were read or changed, never a value:
# identifying data stay erasable while the ledger stays append-only.

IDENTITY_FIELDS = ("name", "birth_date", "contact", "address")


def _identity_checked(identity: sealed.Identity) -> sealed.Identity:
    """The identity with each field bounded and checked as at registration."""
    birth_date = _birth_date(identity.birth_date)
    return sealed.Identity(
        name=_text(identity.name, "name", "patient's name", 200),
        birth_date=birth_date.isoformat() if birth_date else "",
        contact=_text(identity.contact, "contact", "contact", 200, required=False),
        address=_text(identity.address, "address", "address", 400, required=False),
    )


def _identifiable(actor: User, patient: Patient) -> None:
    require_perm(actor, Perm.PATIENTS_IDENTIFY, site=patient.treating_site)
    if patient.erased_at is not None or not patient.identity:
        raise ValidationError({"patient": f"{patient.pseudonym}'s identifying data were erased on "
                                          f"{patient.erased_at:%Y-%m-%d} UTC; only the pseudonym remains."
                               if patient.erased_at else f"{patient.pseudonym} has no identifying data."})


def patient_identity_view(*, actor: User, patient: Patient,
                          reason: str = "Identifying data shown at the treating hospital") -> sealed.Identity:
    """The patient's identifying data, for a physician or navigator of the treating hospital; each
    reading is a ledger event (who, when, which patient; no data)."""
    _identifiable(actor, patient)
    reason = reason_required(reason)
    identity = sealed.unseal(patient.identity)  # type: ignore[arg-type]
    with transaction.atomic():
        event_record(actor=actor, event_type=PatientEvent.IDENTITY_VIEWED, obj=patient, site=patient.treating_site,
                     object_repr=patient.pseudonym, reason=reason,
                     new={"pseudonym": patient.pseudonym, "fields": list(IDENTITY_FIELDS)})
    return identity


def patient_identity_change(*, actor: User, patient: Patient, identity: sealed.Identity, reason: str) -> list[str]:
    """Correct the patient's identifying data (sealed again under the current key); returns the names
    of the fields that changed, which is all the ledger event holds. Nothing changed: nothing written."""
    _identifiable(actor, patient)
    new = _identity_checked(identity)
    reason = reason_required(reason)
    with transaction.atomic():
        locked = Patient.objects.select_for_update().get(pk=patient.pk)
        old = sealed.unseal(locked.identity)  # type: ignore[arg-type]
        changed = [f for f in IDENTITY_FIELDS if getattr(old, f) != getattr(new, f)]
        if not changed:
            return []
        token, key_id = sealed.seal(new)
        birth_year = int(new.birth_date[:4]) if new.birth_date else None
        old_year = locked.birth_year
        locked.identity, locked.identity_key, locked.birth_year = token, key_id, birth_year
        locked.save(update_fields=["identity", "identity_key", "birth_year"])
        values_old: dict[str, Any] = {"fields": changed}
        values_new: dict[str, Any] = {"fields": changed}
        if old_year != birth_year:  # pseudonymous, as at registration
            values_old["birth_year"], values_new["birth_year"] = old_year, birth_year
        event_record(actor=actor, event_type=PatientEvent.IDENTITY_CHANGED, obj=locked, site=locked.treating_site,
                     object_repr=locked.pseudonym, reason=reason, old=values_old, new=values_new)
    patient.identity, patient.identity_key, patient.birth_year = locked.identity, key_id, birth_year
    return changed


def patient_identity_erase(*, actor: User, patient: Patient, reason: str) -> Patient:
    """Erase the patient's identifying data on their request (GDPR Art. 17): the sealed data are
    emptied and ``erased_at`` set; the pseudonym and every record linked to it (referral, order, chain
    of identity, batch, ledger) stay, so the product remains traceable for 30 years (Reg. 1394/2007
    Art. 15; GDPR Art. 17(3)(c) and 89)."""
    _identifiable(actor, patient)
    reason = reason_required(reason)
    with transaction.atomic():
        locked = Patient.objects.select_for_update().get(pk=patient.pk)
        if locked.erased_at is not None:
            raise ValidationError({"patient": f"{locked.pseudonym}'s identifying data were erased already."})
        locked.identity, locked.identity_key, locked.erased_at = None, "", timezone.now()
        locked.save(update_fields=["identity", "identity_key", "erased_at"])
        event_record(actor=actor, event_type=PatientEvent.IDENTITY_ERASED, obj=locked, site=locked.treating_site,
                     object_repr=locked.pseudonym, reason=reason,
                     old={"identity": "sealed", "fields": list(IDENTITY_FIELDS)},
                     new={"identity": "erased", "erased_at": locked.erased_at})
    patient.identity, patient.identity_key, patient.erased_at = None, "", locked.erased_at
    return patient


def patient_keys_rotate(*, actor: User | None = None, system: str = "pocare patient-keys rotate",
                        reason: str = "Patient key rotated") -> dict[str, Any]:
    """Rotate the key that seals identifying data: a new key goes first in the key file, then every
    sealed identity is opened and sealed again under it, in one transaction with one ledger event
    (on the network chain: the key file serves every hospital of the installation).

    Should the transaction fail, the identities stay sealed under the older key, which the file
    still holds: nothing becomes unreadable. The older keys stay until :func:`patient_keys_retire`."""
    if actor is not None:
        raise PermissionDenied("Keys are rotated by the installation's operator, from the command line.")
    reason = reason_required(reason)
    path = sealed._key_file()
    sealed.current_key_id()  # the file exists (made outside production) before a key is added
    old_ids = sealed.key_ids()
    new_id = sealed.keys_add_first(path)
    with transaction.atomic():
        resealed = 0
        for patient in Patient.objects.select_for_update().exclude(identity=None).only("pk", "identity"):
            patient.identity, patient.identity_key = sealed.reseal(patient.identity), new_id  # type: ignore[arg-type]
            patient.save(update_fields=["identity", "identity_key"])
            resealed += 1
        event_record(actor=None, system=system, event_type=PatientEvent.KEYS_ROTATED, reason=reason,
                     object_type="patients.keys", object_id=new_id, object_repr=f"Patient key {new_id}",
                     old={"keys": old_ids}, new={"key": new_id, "resealed": resealed})
    return {"key": new_id, "resealed": resealed}


def patient_keys_retire(*, actor: User | None = None, system: str = "pocare patient-keys retire",
                        reason: str = "Patient keys retired") -> list[str]:
    """Drop from the key file the older keys that seal no identity any more (after a rotation, once
    every server has been restarted and seals with the new first key); returns their ids. A key
    still named by a patient's ``identity_key`` stays."""
    if actor is not None:
        raise PermissionDenied("Keys are retired by the installation's operator, from the command line.")
    reason = reason_required(reason)
    with transaction.atomic():
        in_use = set(Patient.objects.exclude(identity=None).values_list("identity_key", flat=True).distinct())
        old_ids = sealed.key_ids()
        retired = [k for k in old_ids[1:] if k not in in_use]
        if not retired:
            return []
        event_record(actor=None, system=system, event_type=PatientEvent.KEYS_RETIRED, reason=reason,
                     object_type="patients.keys", object_id=old_ids[0], object_repr=f"Patient key {old_ids[0]}",
                     old={"keys": old_ids}, new={"keys": [k for k in old_ids if k not in retired],
                                                 "retired": retired})
        # The file changes last: should the event fail, every key is still there.
        sealed.keys_retire(sealed._key_file(), keep=in_use)
    return retired
