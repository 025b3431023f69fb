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

from django.core.exceptions import ValidationError
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
