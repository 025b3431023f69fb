"""Changes to a patient's pathway: registration under a pseudonym and referral (docs/patients.md).

Each function is keyword-only, runs in one transaction, checks the actor's permission at the
treating hospital and writes its ledger event on that hospital's chain. The ledger event of a
registration names the pseudonym only: identifying data never enter the ledger (PAT-PRIVACY), which
keeps them erasable while the ledger stays append-only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from pocare.accounts.roles import Perm
from pocare.accounts.services import require_perm
from pocare.core import bounds
from pocare.core.checks import text_checked
from pocare.ledger.services import event_record, reason_required
from pocare.masterfile import schema
from pocare.masterfile.models import MasterFileVersion, VersionStatus
from pocare.masterfile.selectors import effective_version
from pocare.network.models import Site, SiteKind
from pocare.network.selectors import control_site
from pocare.patients import identity as sealed
from pocare.patients.events import PatientEvent
from pocare.patients.models import (
    ENDED_STAGES,
    Consent,
    ConsentDocument,
    EligibilityAssessment,
    Language,
    LostReason,
    Patient,
    Referral,
    ReferralSource,
    Stage,
)
from pocare.patients.selectors import STAGE_ORDER, stage_derived, stage_rank

if TYPE_CHECKING:
    from pocare.accounts.models import User
    from pocare.masterfile.models import Product

#: Crockford's base-32 alphabet without I, L, O, U: a pseudonym read aloud or typed is not misread.
_PSEUDONYM_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
PSEUDONYM_PREFIX = "PX-"


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
    born: dt.date = value
    return born


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
    name = text_checked(identity.name, "name", "patient's name", 200)
    birth_date = _birth_date(identity.birth_date)
    contact = text_checked(identity.contact, "contact", "contact", 200, required=False)
    address = text_checked(identity.address, "address", "address", 400, required=False)
    if language not in Language.values:
        raise ValidationError({"language": f"Choose one of {', '.join(Language.values)}."})
    region = text_checked(region, "region", "region", 40, required=False)
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
    indication = text_checked(indication, "indication", "indication", 120)
    weight = _weight(weight_kg)
    if source not in ReferralSource.values:
        raise ValidationError({"source": f"Choose one of {', '.join(ReferralSource.values)}."})
    external_system = text_checked(external_system, "external_system", "identifier system", 200, required=False)
    external_id = text_checked(external_id, "external_id", "identifier", 64, required=False)
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
        name=text_checked(identity.name, "name", "patient's name", 200),
        birth_date=birth_date.isoformat() if birth_date else "",
        contact=text_checked(identity.contact, "contact", "contact", 200, required=False),
        address=text_checked(identity.address, "address", "address", 400, required=False),
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


# --- the pathway: eligibility, consent, withdrawal, stages after booking, lost ---------------------
#
# Each service locks the referral, checks the stage it moves from, and records the old and the new
# stage. Nothing identifying enters the events: the referral is named by its number and pseudonym.

#: Consent documents: the code and the body are bounded so one document is one page of a screen.
MAX_CONSENT_BODY = 100_000
#: A clock skew allowed for a signature time "now" from another device.
SIGNED_AT_SKEW = dt.timedelta(minutes=5)


def _locked(referral: Referral) -> Referral:
    """The referral's row, locked for the transaction (two people acting at once: the second waits
    and sees the first's stage)."""
    return Referral.objects.select_related("patient", "patient__treating_site", "product").select_for_update(
        of=("self",)).get(pk=referral.pk)


def _repr(referral: Referral) -> str:
    return f"Referral {referral.pk} of {referral.patient.pseudonym}"


def _stage_set(referral: Referral, stage: str, at: dt.datetime) -> str:
    old = referral.stage
    referral.stage, referral.stage_changed_at = stage, at
    referral.save(update_fields=["stage", "stage_changed_at"])
    return old


def _stage_is(referral: Referral, *stages: str, doing: str) -> None:
    if referral.stage not in stages:
        allowed = " or ".join(Stage(s).label.lower() for s in stages)
        raise ValidationError({"stage": f"The referral is {referral.get_stage_display().lower()}; {doing} "
                                        f"needs a referral that is {allowed}."})


def eligibility_version(referral: Referral) -> MasterFileVersion | None:
    """The master-file version whose checklist a referral is assessed against: the version effective
    at the treating hospital when it is a POCare site making the product; else the version in effect
    in the network (the newest made effective)."""
    version = effective_version(site=referral.patient.treating_site, product=referral.product)
    if version is not None:
        return version
    return (MasterFileVersion.objects.filter(product=referral.product, status=VersionStatus.EFFECTIVE)
            .order_by("-number").first())


def _answers(value: Any, criteria: list[dict[str, Any]]) -> dict[str, bool]:
    if not isinstance(value, Mapping):
        raise ValidationError({"answers": "Answer each criterion of the checklist as met (true) or not met (false)."})
    if len(value) > schema.MAX_ELIGIBILITY_CRITERIA:
        raise ValidationError({"answers": f"The checklist has at most {schema.MAX_ELIGIBILITY_CRITERIA} criteria."})
    ids = [c["id"] for c in criteria]
    unknown = sorted(str(k)[:64] for k in value if k not in ids)
    if unknown:
        raise ValidationError({"answers": f"Unknown criteria: {', '.join(unknown)}; the checklist has "
                                          f"{', '.join(ids)}."})
    missing = [i for i in ids if i not in value]
    if missing:
        raise ValidationError({"answers": f"Answer every criterion; not answered: {', '.join(missing)}."})
    wrong = [k for k, v in value.items() if not isinstance(v, bool)]
    if wrong:
        raise ValidationError({"answers": f"Answer {', '.join(sorted(wrong))} as met (true) or not met (false)."})
    return {i: value[i] for i in ids}


def eligibility_assess(*, actor: User, referral: Referral, answers: Mapping[str, bool],
                       reason: str = "Eligibility assessed") -> EligibilityAssessment:
    """Answer the product's eligibility checklist for a referral (the version effective for it, see
    :func:`eligibility_version`): every required criterion met makes it eligible, any not met ends
    the pathway as not eligible. Every criterion must be answered, and only the checklist's."""
    require_perm(actor, Perm.PATIENTS_REFER, site=referral.patient.treating_site)
    reason = reason_required(reason)
    with transaction.atomic():
        referral = _locked(referral)
        _stage_is(referral, Stage.REFERRED, doing="an eligibility assessment")
        version = eligibility_version(referral)
        criteria = schema.eligibility_criteria(version.content) if version is not None else []
        if version is None or not criteria:
            raise ValidationError({"answers": f"The {referral.product.code} master file in effect has no eligibility "
                                              "checklist; Control Site QA adds one by a change request."})
        checked = _answers(answers, criteria)
        eligible = all(checked[c["id"]] for c in criteria if c.get("required", True))
        now = timezone.now()
        assessment = EligibilityAssessment.objects.create(
            referral=referral, masterfile_version=version, answers=checked, eligible=eligible, assessed_by=actor,
            assessed_at=now)
        old = _stage_set(referral, Stage.ELIGIBLE if eligible else Stage.INELIGIBLE, now)
        event_record(actor=actor, event_type=PatientEvent.ELIGIBILITY_ASSESSED, obj=assessment,
                     site=referral.patient.treating_site, object_repr=_repr(referral), reason=reason,
                     old={"stage": old},
                     new={"stage": referral.stage, "eligible": eligible, "answers": checked,
                          "masterfile_version": f"{referral.product.code} v{version.number}",
                          "not_met": [c["id"] for c in criteria if not checked[c["id"]]]})
    return assessment


def consent_document_hash(*, code: str, version: int, language: str, title: str, body: str) -> str:
    """The SHA-256 of what the patient reads and signs (code, version, language, title, body)."""
    canonical = json.dumps({"code": code, "version": version, "language": language, "title": title, "body": body},
                           sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _code(value: Any) -> str:
    code = text_checked(value, "code", "document code", 40)
    if not code[0].isalnum() or not set(code) <= _CODE_CHARS:
        raise ValidationError({"code": "The document code has letters, digits, '-', '_' or '.', starting with a "
                                       "letter or digit (e.g. CD19-ICF)."})
    return code


_CODE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def consent_document_issue(*, actor: User, product: Product, code: str, language: str, title: str, body: str,
                           reason: str, effective_from: dt.datetime | None = None) -> ConsentDocument:
    """Issue the next version of the consent document ``code`` in ``language`` (Control Site QA, who
    authors the master file): never edited, a change is a new version; its content hash is what a
    consent binds to. In force from ``effective_from`` (default now) until the next version."""
    control = control_site()
    require_perm(actor, Perm.MASTERFILE_AUTHOR, site=control)
    code = _code(code)
    if language not in Language.values:
        raise ValidationError({"language": f"Choose one of {', '.join(Language.values)}."})
    title = text_checked(title, "title", "title", 200)
    body = text_checked(body, "body", "document text", MAX_CONSENT_BODY)
    reason = reason_required(reason)
    now = timezone.now()
    effective_from = effective_from or now
    if (problem := bounds.datetime_problem(effective_from)) or timezone.is_naive(effective_from):
        raise ValidationError({"effective_from": problem or "Give the time with its time zone."})
    with transaction.atomic():
        others = ConsentDocument.objects.select_for_update().filter(code=code)
        if others.exclude(product=product).exists():
            raise ValidationError({"code": f"The document {code} is the consent of another product; choose "
                                           "another code."})
        last = others.filter(language=language).order_by("-version").first()
        if last is not None and effective_from < last.effective_from:
            raise ValidationError({"effective_from": f"Version {last.version} is in force from "
                                                     f"{last.effective_from:%Y-%m-%d %H:%M} UTC; the next "
                                                     "starts later."})
        version = (last.version if last else 0) + 1
        document = ConsentDocument.objects.create(
            code=code, product=product, version=version, language=language, title=title, body=body,
            content_hash=consent_document_hash(code=code, version=version, language=language, title=title,
                                               body=body),
            effective_from=effective_from, issued_by=actor)
        event_record(actor=actor, event_type=PatientEvent.CONSENT_DOCUMENT_ISSUED, obj=document, site=control,
                     object_repr=str(document), reason=reason,
                     old={"version": last.version if last else None},
                     new={"code": code, "product": product.code, "version": version, "language": language,
                          "title": title, "content_hash": document.content_hash,
                          "effective_from": effective_from})
    return document


def consent_document_in_force(*, code: str, language: str, at: dt.datetime | None = None) -> ConsentDocument | None:
    """The version of ``code`` in ``language`` in force at ``at``: the newest whose start has come."""
    return (ConsentDocument.objects.filter(code=code, language=language, effective_from__lte=at or timezone.now())
            .order_by("-version").first())


def _signed_at(value: Any, referral: Referral) -> dt.datetime:
    if not isinstance(value, dt.datetime) or timezone.is_naive(value):
        raise ValidationError({"signed_at": "Give the date and time of the signature, with its time zone."})
    if problem := bounds.datetime_problem(value):
        raise ValidationError({"signed_at": f"The signature time: {problem}."})
    if value > timezone.now() + SIGNED_AT_SKEW:
        raise ValidationError({"signed_at": "The signature time is in the future; give when the patient signed."})
    if value < referral.referred_at - SIGNED_AT_SKEW:
        raise ValidationError({"signed_at": f"The signature time is before the referral "
                                            f"({referral.referred_at:%Y-%m-%d %H:%M} UTC)."})
    return value


def consent_sign(*, actor: User, referral: Referral, document: ConsentDocument, signed_at: dt.datetime,
                 reason: str = "Informed consent signed", language_reason: str = "") -> Consent:
    """Record the patient's informed consent (PAT-CONSENT) to ``document``, the version and language
    signed kept: the document must be the product's, in force when signed, and in the patient's
    language unless ``language_reason`` says why not. Only an eligible referral is consented."""
    require_perm(actor, Perm.PATIENTS_REFER, site=referral.patient.treating_site)
    reason = reason_required(reason)
    language_reason = text_checked(language_reason, "language_reason", "reason for another language", 500,
                            required=False)
    with transaction.atomic():
        referral = _locked(referral)
        _stage_is(referral, Stage.ELIGIBLE, doing="a consent")
        signed_at = _signed_at(signed_at, referral)
        if document.product_id != referral.product_id:
            raise ValidationError({"document": f"{document} is the consent for another product, not "
                                               f"{referral.product.code}."})
        in_force = consent_document_in_force(code=document.code, language=document.language, at=signed_at)
        if in_force is None or in_force.pk != document.pk:
            raise ValidationError({"document": f"{document} was not in force when the patient signed"
                                               + (f"; version {in_force.version} was." if in_force else ".")})
        patient_language = referral.patient.language
        if document.language != patient_language and not language_reason:
            raise ValidationError({"language_reason": f"The document is in {document.get_language_display()}, the "
                                                      f"patient's language is {Language(patient_language).label}: "
                                                      "sign the patient's language, or say why not."})
        consent = Consent.objects.create(referral=referral, document=document, signed_at=signed_at,
                                         recorded_by=actor)
        old = _stage_set(referral, Stage.CONSENTED, timezone.now())
        event_record(actor=actor, event_type=PatientEvent.CONSENT_SIGNED, obj=consent,
                     site=referral.patient.treating_site, object_repr=_repr(referral), reason=reason,
                     old={"stage": old},
                     new={"stage": Stage.CONSENTED, "document": document.code, "version": document.version,
                          "language": document.language, "content_hash": document.content_hash,
                          "signed_at": signed_at, "patient_language": patient_language,
                          **({"language_reason": language_reason} if language_reason else {})})
    return consent


def consent_withdraw(*, actor: User, referral: Referral, reason: str) -> Consent:
    """The patient withdraws consent: the referral ends (withdrawn) and everything derived from the
    patient's material is held — manufacture, certification and dispatch of the order's product
    (the answers in :mod:`pocare.patients.answers`). ``reason`` is the patient's, as recorded."""
    require_perm(actor, Perm.PATIENTS_REFER, site=referral.patient.treating_site)
    reason = text_checked(reason_required(reason), "reason", "reason", 2000)
    with transaction.atomic():
        referral = _locked(referral)
        consent = referral.consents.select_for_update().filter(withdrawn_at=None).order_by("-signed_at").first()
        if consent is None or referral.stage == Stage.WITHDRAWN:
            raise ValidationError({"referral": "This referral has no consent in force to withdraw."})
        now = timezone.now()
        consent.withdrawn_at, consent.withdrawal_reason, consent.withdrawal_recorded_by = now, reason, actor
        consent.save(update_fields=["withdrawn_at", "withdrawal_reason", "withdrawal_recorded_by"])
        old = _stage_set(referral, Stage.WITHDRAWN, now)
        event_record(actor=actor, event_type=PatientEvent.CONSENT_WITHDRAWN, obj=consent,
                     site=referral.patient.treating_site, object_repr=_repr(referral), reason=reason,
                     old={"stage": old, "withdrawn_at": None},
                     new={"stage": Stage.WITHDRAWN, "withdrawn_at": now, "document": consent.document.code,
                          "version": consent.document.version,
                          "order": referral.order.coi if referral.order_id and referral.order else None})
    return consent


def referral_lose(*, actor: User, referral: Referral, lost_reason: str, reason: str) -> Referral:
    """The patient was lost before treatment, and why (``lost_reason``, one of
    :class:`LostReason`): the referral ends as lost, which the outcomes count."""
    require_perm(actor, Perm.PATIENTS_REFER, site=referral.patient.treating_site)
    if lost_reason not in LostReason.values:
        raise ValidationError({"lost_reason": f"Choose one of {', '.join(LostReason.values)}."})
    reason = text_checked(reason_required(reason), "reason", "reason", 2000)
    with transaction.atomic():
        referral = _locked(referral)
        if referral.stage in ENDED_STAGES or stage_rank(referral.stage) >= stage_rank(Stage.INFUSED):
            raise ValidationError({"stage": f"The referral is {referral.get_stage_display().lower()}; only a "
                                            "patient not yet infused is lost before treatment."})
        old = _stage_set(referral, Stage.LOST, timezone.now())
        referral.lost_reason = lost_reason
        referral.save(update_fields=["lost_reason"])
        event_record(actor=actor, event_type=PatientEvent.LOST, obj=referral, site=referral.patient.treating_site,
                     object_repr=_repr(referral), reason=reason, old={"stage": old},
                     new={"stage": Stage.LOST, "lost_reason": lost_reason})
    return referral


def referral_stage_sync(*, referral: Referral) -> Referral:
    """Move the referral to the stage its records show after booking (collected, in manufacture,
    released, infused: :func:`pocare.patients.selectors.stage_derived`), and keep the infusion as
    day 0 of the follow-up. Only forward, never out of an ended stage; the system acts (a scheduled
    job and the booking), so the event names no person."""
    with transaction.atomic():
        referral = _locked(referral)
        derived = stage_derived(referral)
        if derived is None:
            return referral
        stage, infused_at = derived
        moves = referral.stage not in ENDED_STAGES and stage_rank(stage) > stage_rank(referral.stage)
        sets_day0 = infused_at is not None and referral.infused_at is None and referral.stage not in ENDED_STAGES
        if not (moves or sets_day0):
            return referral
        old = {"stage": referral.stage, "infused_at": referral.infused_at}
        if moves:
            _stage_set(referral, stage, timezone.now())
        if sets_day0:
            referral.infused_at = infused_at
            referral.save(update_fields=["infused_at"])
        event_record(actor=None, system="pathway stage sync", event_type=PatientEvent.STAGE_CHANGED, obj=referral,
                     site=referral.patient.treating_site, object_repr=_repr(referral),
                     reason="Stage read from the chain of custody, the batch record and the certification",
                     old=old, new={"stage": referral.stage, "infused_at": referral.infused_at,
                                   "order": referral.order.coi if referral.order else None})
    return referral


def referrals_stage_sync() -> int:
    """:func:`referral_stage_sync` for every referral with an order still on its way; the number moved."""
    moved = 0
    open_stages = [s for s in STAGE_ORDER if stage_rank(s) < stage_rank(Stage.INFUSED)]
    for referral in Referral.objects.filter(order__isnull=False, stage__in=open_stages).order_by("pk"):
        before = (referral.stage, referral.infused_at)
        after = referral_stage_sync(referral=referral)
        moved += (after.stage, after.infused_at) != before
    return moved


def referral_order_link(*, actor: User, referral: Referral, order: Any, reason: str) -> Referral:
    """Link a consented referral to the therapy order made for it (custody), when the order was made
    outside the booking (a hospital's own order, the demo): the referral is then booked, and its
    later stages follow the order's records. The order must be for the same product and hospital
    and belong to no other referral."""
    require_perm(actor, Perm.PATIENTS_BOOK, site=referral.patient.treating_site)
    reason = reason_required(reason)
    with transaction.atomic():
        referral = _locked(referral)
        if referral.order_id is not None:
            held = referral.order.coi if referral.order else referral.order_id
            raise ValidationError({"order": f"The referral already has its order {held}."})
        _stage_is(referral, Stage.CONSENTED, doing="a therapy order")
        if order.product_id != referral.product_id or order.treating_site_id != referral.patient.treating_site_id:
            raise ValidationError({"order": "The order is for another product or another treating hospital."})
        if Referral.objects.filter(order=order).exists():
            raise ValidationError({"order": "The order belongs to another referral."})
        referral.order = order
        referral.save(update_fields=["order"])
        old = _stage_set(referral, Stage.BOOKED, timezone.now())
        event_record(actor=actor, event_type=PatientEvent.STAGE_CHANGED, obj=referral,
                     site=referral.patient.treating_site, object_repr=_repr(referral), reason=reason,
                     old={"stage": old, "order": None}, new={"stage": Stage.BOOKED, "order": order.coi or order.pk})
    return referral_stage_sync(referral=referral)


def patient_refer(*, actor: User, treating_site: Site, identity: sealed.Identity, product: Product, indication: str,
                  weight_kg: Decimal | str | float, language: str = Language.EN, region: str = "",
                  travel_minutes: int | None = None, deprivation_quintile: int | None = None,
                  reason: str = "Patient referred") -> Referral:
    """The referral form: register the patient (:func:`patient_register`) and refer them
    (:func:`referral_create`) together, or neither."""
    with transaction.atomic():
        patient = patient_register(actor=actor, treating_site=treating_site, identity=identity, language=language,
                                   region=region, travel_minutes=travel_minutes,
                                   deprivation_quintile=deprivation_quintile, reason=reason)
        return referral_create(actor=actor, patient=patient, product=product, indication=indication,
                               weight_kg=weight_kg, reason=reason)


def patient_support_set(*, actor: User, patient: Patient, support: str, reason: str = "Support arranged") -> Patient:
    """The navigator notes the travel and accommodation support arranged for the patient. The note
    is pseudonymous by rule (no address: the identity holds it); the event keeps old and new."""
    require_perm(actor, Perm.PATIENTS_BOOK, site=patient.treating_site)
    support = text_checked(support, "support", "support note", 2000, required=False)
    reason = reason_required(reason)
    with transaction.atomic():
        patient = Patient.objects.select_for_update().get(pk=patient.pk)
        old = patient.support
        if old == support:
            return patient
        patient.support = support
        patient.save(update_fields=["support"])
        event_record(actor=actor, event_type=PatientEvent.SUPPORT_NOTED, obj=patient, site=patient.treating_site,
                     object_repr=patient.pseudonym, reason=reason, old={"support": old}, new={"support": support})
    return patient
