"""A ServiceRequest from a hospital system becomes a referral (docs/fhir.md, "Import").

Accepted: a ServiceRequest with its Patient contained (``subject`` = ``#id``), or a transaction
Bundle holding one ServiceRequest and its Patient (``subject`` = the Patient entry's ``fullUrl``).
The resource is validated first (fhir.resources R5, required bindings, invariants); then the
mapping is checked: the request's business ``identifier`` (kept as the referral's external system
and id: a second import of it answers the referral made by the first), the product by its code in
``CS_PRODUCT`` (ServiceRequest.code.concept), the indication from ``reason``, the weight from a
contained body-weight Observation (LOINC 29463-7, kg) named in ``supportingInfo``. The Patient is
either one POCare knows (its pseudonym as identifier) or a new one registered with the identifying
data given (name, birthDate, telecom, address) sealed. Any problem is an :class:`InvalidResource`
naming the element by FHIRPath, and nothing is stored.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from pocare.accounts import selectors as access
from pocare.accounts.roles import Perm
from pocare.ledger.services import event_record
from pocare.masterfile.models import Product
from pocare.network.models import Site
from pocare.patients import identity as sealed
from pocare.patients.events import PatientEvent
from pocare.patients.fhir import CS_PRODUCT, SID_PSEUDONYM, SID_REFERRAL, SID_SITE
from pocare.patients.fhir.validation import InvalidResource, Issue, resource_problems
from pocare.patients.models import Language, Patient, Referral, ReferralSource
from pocare.patients.services import patient_register, referral_by_external_id, referral_create

if TYPE_CHECKING:
    from pocare.accounts.models import User

SR = "ServiceRequest"
_LOINC_WEIGHT = ("http://loinc.org", "29463-7")
#: A service's field name → the element it came from.
_FIELD_PATHS = {"name": "Patient.name", "birth_date": "Patient.birthDate", "contact": "Patient.telecom",
                "address": "Patient.address", "language": "Patient.communication", "indication": f"{SR}.reason",
                "weight_kg": f"{SR}.contained.where(resourceType='Observation').valueQuantity",
                "external_id": f"{SR}.identifier", "external_system": f"{SR}.identifier.system",
                "treating_site": "Patient.managingOrganization", "region": "Patient.address",
                "reason": f"{SR}.note"}


def _refuse(expression: str, message: str, code: str = "invalid") -> InvalidResource:
    return InvalidResource([Issue(expression, message, code)])


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _parts(payload: Any) -> tuple[dict[str, Any], dict[str, Any], str]:
    """(the ServiceRequest, its Patient, the FHIRPath prefix of the Patient)."""
    if not isinstance(payload, dict):
        raise _refuse("Resource", "Send a ServiceRequest, or a transaction Bundle with a ServiceRequest and its "
                                  "Patient, as a JSON object.", "structure")
    problems = resource_problems(payload)
    if problems:
        raise InvalidResource(problems)
    rtype = payload["resourceType"]
    if rtype == "Bundle":
        if payload.get("type") not in ("transaction", "batch", "collection"):
            raise _refuse("Bundle.type", "A Bundle sent here is a transaction (or batch, or collection).", "value")
        entries = _list(payload.get("entry"))
        requests = [(i, e) for i, e in enumerate(entries) if (e.get("resource") or {}).get("resourceType") == SR]
        if len(requests) != 1:
            raise _refuse("Bundle.entry", f"The Bundle holds exactly one ServiceRequest (it holds {len(requests)}).",
                          "business-rule")
        request = requests[0][1]["resource"]
        subject = ((request.get("subject") or {}).get("reference") or "")
        for i, entry in enumerate(entries):
            resource = entry.get("resource") or {}
            if resource.get("resourceType") == "Patient" and subject and subject in (
                    entry.get("fullUrl"), f"Patient/{resource.get('id')}"):
                return request, resource, f"Bundle.entry[{i}].resource"
        raise _refuse(f"Bundle.entry[{requests[0][0]}].resource.subject",
                      "The ServiceRequest's subject names a Patient entry of the Bundle (its fullUrl).", "required")
    if rtype != SR:
        raise _refuse("resourceType", "Send a ServiceRequest (or a transaction Bundle holding one).", "not-supported")
    subject = ((payload.get("subject") or {}).get("reference") or "")
    for i, inner in enumerate(_list(payload.get("contained"))):
        if inner.get("resourceType") == "Patient" and subject == f"#{inner.get('id')}":
            return payload, inner, f"{SR}.contained[{i}]"
    if subject.startswith("Patient/"):  # a patient this server knows, by its id (the pseudonym)
        return payload, {"resourceType": "Patient", "identifier": [
            {"system": SID_PSEUDONYM, "value": subject.removeprefix("Patient/")}]}, f"{SR}.subject"
    raise _refuse(f"{SR}.subject", "The subject is a patient of this server (Patient/<pseudonym>), the Patient "
                                   "contained in the request ('#<id>'), or send a transaction Bundle with the "
                                   "Patient.", "required")


def _identifier(request: dict[str, Any]) -> tuple[str, str]:
    for i, ident in enumerate(_list(request.get("identifier"))):
        value = str(ident.get("value") or "").strip()
        if value:
            system = str(ident.get("system") or "").strip()
            if not system:
                raise _refuse(f"{SR}.identifier[{i}].system", "Give the identifier's system (the ordering "
                                                              "system's URI), so the request is known again.")
            if len(value) > 64 or len(system) > 200:
                raise _refuse(f"{SR}.identifier[{i}]", "The identifier has at most 64 characters and its system "
                                                       "at most 200.", "too-long")
            return system, value
    raise _refuse(f"{SR}.identifier", "Give the request's business identifier (system and value): importing the "
                                      "same request twice then finds the first referral.", "required")


def _product(request: dict[str, Any]) -> Product:
    codings = _list(((request.get("code") or {}).get("concept") or {}).get("coding"))
    for i, coding in enumerate(codings):
        if coding.get("system") == CS_PRODUCT:
            product = Product.objects.filter(code=str(coding.get("code") or "")[:30]).first()
            if product is None:
                raise _refuse(f"{SR}.code.concept.coding[{i}].code",
                              f"{str(coding.get('code'))[:30]!r} is not a product of the network's master file.",
                              "code-invalid")
            return product
    raise _refuse(f"{SR}.code.concept.coding", f"Code the product ordered in {CS_PRODUCT} (the master file's "
                                               "product code).", "required")


def _indication(request: dict[str, Any]) -> str:
    for reason in _list(request.get("reason")):
        concept = reason.get("concept") or {}
        text = concept.get("text") or next((c.get("display") or c.get("code") for c in _list(concept.get("coding"))
                                            if c.get("display") or c.get("code")), "")
        if text:
            return str(text)
    raise _refuse(f"{SR}.reason", "Give the indication as the request's reason (reason.concept).", "required")


def _weight(request: dict[str, Any]) -> Decimal:
    named = {str((info.get("reference") or {}).get("reference") or "").removeprefix("#")
             for info in _list(request.get("supportingInfo"))}
    for i, inner in enumerate(_list(request.get("contained"))):
        codes = {(c.get("system"), c.get("code")) for c in _list((inner.get("code") or {}).get("coding"))}
        if inner.get("resourceType") == "Observation" and _LOINC_WEIGHT in codes and inner.get("id") in named:
            quantity = inner.get("valueQuantity") or {}
            if quantity.get("code") not in ("kg", None) and quantity.get("unit") != "kg":
                raise _refuse(f"{SR}.contained[{i}].valueQuantity", "Give the body weight in kg (UCUM 'kg').", "value")
            if not isinstance(quantity.get("value"), int | float | Decimal):
                raise _refuse(f"{SR}.contained[{i}].valueQuantity.value", "Give the body weight in kg.", "required")
            return Decimal(str(quantity["value"]))
    raise _refuse(f"{SR}.supportingInfo", "Name a contained body-weight Observation (LOINC 29463-7, kg) in "
                                          "supportingInfo: the dose is computed from it.", "required")


def _treating_site(actor: User, patient: dict[str, Any], where: str) -> Site:
    refer_sites = access.sites_with_perm(actor, Perm.PATIENTS_REFER) if access.has_perm(
        actor, Perm.PATIENTS_REFER) else set()
    organisation = (patient.get("managingOrganization") or {}).get("identifier") or {}
    if organisation.get("system") == SID_SITE and organisation.get("value"):
        site = Site.objects.filter(code=str(organisation["value"])[:20]).first()
        if site is None or (refer_sites is not None and site.pk not in refer_sites):
            raise _refuse(f"{where}.managingOrganization.identifier.value",
                          "Name a hospital where you may refer patients.", "business-rule")
        return site
    if refer_sites is None or len(refer_sites) != 1:
        raise _refuse(f"{where}.managingOrganization", f"Name the treating hospital by identifier ({SID_SITE}).",
                      "required")
    return Site.objects.get(pk=next(iter(refer_sites)))


def _known_patient(actor: User, patient: dict[str, Any], where: str) -> Patient | None:
    for i, ident in enumerate(_list(patient.get("identifier"))):
        if ident.get("system") == SID_PSEUDONYM:
            pseudonym = str(ident.get("value"))[:20]
            found = Patient.objects.select_related("treating_site").filter(pseudonym=pseudonym).first()
            if found is None or not access.has_perm(actor, Perm.PATIENTS_REFER, site_id=found.treating_site_id):
                expression = where if where.endswith(".subject") else f"{where}.identifier[{i}].value"
                raise _refuse(expression, "No patient of your hospital has this pseudonym.",
                              "not-found")
            return found
    return None


def _identity(patient: dict[str, Any], where: str) -> sealed.Identity:
    names = _list(patient.get("name"))
    name = ""
    if names:
        first = names[0]
        name = str(first.get("text") or " ".join([*map(str, _list(first.get("given"))),
                                                   str(first.get("family") or "")])).strip()
    if not name:
        raise _refuse(f"{where}.name", "Give the patient's name (name.text, or given and family): a new patient is "
                                       "registered under a pseudonym with the name sealed.", "required")
    telecom = next((str(t.get("value")) for t in _list(patient.get("telecom")) if t.get("value")), "")
    address = ""
    for entry in _list(patient.get("address")):
        address = str(entry.get("text") or ", ".join(
            [*map(str, _list(entry.get("line"))), *(str(entry[k]) for k in ("postalCode", "city", "country")
                                                     if entry.get(k))]))
        if address:
            break
    return sealed.Identity(name=name, birth_date=str(patient.get("birthDate") or ""), contact=telecom,
                           address=address)


def _language(patient: dict[str, Any], where: str) -> str:
    for i, communication in enumerate(_list(patient.get("communication"))):
        for coding in _list((communication.get("language") or {}).get("coding")):
            code = str(coding.get("code") or "").split("-")[0].lower()
            if code in Language.values:
                return code
        raise _refuse(f"{where}.communication[{i}].language",
                      f"The patient's language is one of {', '.join(Language.values)} (BCP 47).", "code-invalid")
    return Language.EN


def _as_issues(exc: ValidationError, where: str) -> InvalidResource:
    issues = []
    for field_name, messages in (exc.message_dict if hasattr(exc, "error_dict") else {"": exc.messages}).items():
        path = _FIELD_PATHS.get(field_name, SR)
        if path.startswith("Patient"):
            path = where + path[len("Patient"):]
        issues += [Issue(path, str(m), "business-rule") for m in messages]
    return InvalidResource(issues)


def service_request_import(*, actor: User, payload: Any,
                           reason: str = "Referral received as a FHIR ServiceRequest") -> tuple[Referral, bool]:
    """Make a referral (and, for a new patient, register them) from ``payload``; ``(referral, True)``
    when made, ``(the existing referral, False)`` when this request's identifier was imported before.
    Raises :class:`InvalidResource` (nothing stored) or ``PermissionDenied``."""
    if not access.has_perm(actor, Perm.PATIENTS_REFER) or access.is_read_only(actor):
        raise PermissionDenied(f"{actor.username} may not refer patients ({Perm.PATIENTS_REFER}).")
    request, patient_json, where = _parts(payload)
    system, value = _identifier(request)
    existing = _existing(actor, system, value)
    if existing is not None:
        return existing, False
    product = _product(request)
    indication = _indication(request)
    weight = _weight(request)
    known = _known_patient(actor, patient_json, where)
    try:
        with transaction.atomic():
            if known is None:
                patient = patient_register(actor=actor, treating_site=_treating_site(actor, patient_json, where),
                                           identity=_identity(patient_json, where),
                                           language=_language(patient_json, where), reason=reason)
            else:
                patient = known
            referral = referral_create(actor=actor, patient=patient, product=product, indication=indication,
                                       weight_kg=weight, reason=reason, source=ReferralSource.FHIR,
                                       external_system=system, external_id=value)
            event_record(actor=actor, event_type=PatientEvent.FHIR_IMPORTED, obj=referral,
                         site=patient.treating_site, object_repr=f"Referral {referral.pk} of {patient.pseudonym}",
                         reason=reason, new={"resource": SR, "identifier_system": system, "identifier": value,
                                             "patient": patient.pseudonym, "new_patient": known is None})
    except ValidationError as exc:
        raise _as_issues(exc, where) from None
    return referral, True


def _existing(actor: User, system: str, value: str) -> Referral | None:
    """The referral this identifier names, if the actor's hospital made it; refused if another's did."""
    if system == SID_REFERRAL:
        found = Referral.objects.select_related("patient").filter(pk=int(value)).first() if (
            value.isdigit() and len(value) < 19) else None
        if found is None:
            raise _refuse(f"{SR}.identifier", f"No referral {value[:20]} exists; identifiers of {SID_REFERRAL} are "
                                              "POCare's own.", "not-found")
    else:
        found = referral_by_external_id(system=system, value=value)
        if found is None:
            return None
    if not access.has_perm(actor, Perm.PATIENTS_VIEW, site_id=found.patient.treating_site_id):
        raise _refuse(f"{SR}.identifier", "This identifier is already used by another hospital's request; give "
                                          "your system's own identifier.", "duplicate")
    return found
