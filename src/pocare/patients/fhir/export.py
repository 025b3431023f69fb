"""What a FHIR client may see, as R5 resources (FHIR-BDP, FHIR-DISP, ATMP-TRACE, PAT-PRIVACY).

Scoping (docs/fhir.md, "Who sees what"): products (BiologicallyDerivedProduct and, once the QP has
certified the batch, BiologicallyDerivedProductDispense) follow custody's rule — an order made or
treated at a site where the client holds CUSTODY_VIEW; the clinical record (ServiceRequest, Consent,
Procedure, AdverseEvent, Observation, CarePlan) needs PATIENTS_VIEW at the patient's treating hospital.
A Patient is seen by either, and is pseudonymous (identifier = pseudonym) except for a disclosure
asked for with POST by a holder of PATIENTS_IDENTIFY at the treating hospital (``identify=True``),
which ``identity_disclose`` records in the ledger first.

Loading is by whole referrals and orders with a fixed set of queries, so a patient's Bundle costs the
same number of queries whatever the size of the record (benchmarks/patients_fhir.py).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db.models import Prefetch, Q, QuerySet

from pocare.accounts import selectors as access
from pocare.accounts.roles import Perm
from pocare.custody.labels import SHELF_LIFE_FIELDS
from pocare.custody.models import Collection, Handoff, HandoffKind, HandoffOutcome, TherapyOrder
from pocare.custody.selectors import orders_visible
from pocare.masterfile.models import MasterFileVersion
from pocare.patients import identity as sealed
from pocare.patients.fhir import (
    CS_AE_KIND,
    CS_BDP_PROPERTY,
    CS_GRADE,
    CS_PROCEDURE,
    CS_PRODUCT,
    CS_RELEASE_STATUS,
    EXT_RELEASE_STATUS,
    SID_ADVERSE_EVENT,
    SID_BATCH,
    SID_COI,
    SID_CONSENT,
    SID_DIN,
    SID_PSEUDONYM,
    SID_REFERRAL,
    SID_SITE,
)
from pocare.patients.models import (
    AdverseEvent,
    Consent,
    Patient,
    Referral,
    Stage,
    Visit,
    VisitStatus,
)

if TYPE_CHECKING:
    from pocare.manufacturing.models import Batch
    from pocare.network.models import Site
    from pocare.release.models import Certification

Resource = dict[str, Any]

PRODUCT_TYPES = ("BiologicallyDerivedProduct", "BiologicallyDerivedProductDispense")
CLINICAL_TYPES = ("ServiceRequest", "Consent", "Procedure", "AdverseEvent", "Observation", "CarePlan")
#: The resource types the endpoint serves (read, search by identifier and patient).
RESOURCE_TYPES = ("Patient", *PRODUCT_TYPES, *CLINICAL_TYPES)

#: Storage by the hand-off that put the product there: the temperature range as a FHIR Range (°C).
_STORAGE = {HandoffKind.CRYOPRESERVATION: ("cryopreserved", None, -150),
            HandoffKind.FRESH_HOLD: ("fresh", 2, 8)}
_HANDOFFS_USED = (HandoffKind.CRYOPRESERVATION, HandoffKind.FRESH_HOLD, HandoffKind.DISPATCH_TO_HOSPITAL,
                  HandoffKind.INFUSION)


# --- who sees what --------------------------------------------------------------------------------


def referrals_visible(user: Any) -> QuerySet[Referral]:
    """Referrals of patients treated where the client holds PATIENTS_VIEW (the Control Site: all)."""
    if not access.has_perm(user, Perm.PATIENTS_VIEW):
        return Referral.objects.none()
    sites = access.sites_with_perm(user, Perm.PATIENTS_VIEW)
    qs = Referral.objects.all()
    return qs if sites is None else qs.filter(patient__treating_site_id__in=sites)


def patients_visible(user: Any) -> QuerySet[Patient]:
    """Patients the client may see at least as a pseudonym: treated where it holds PATIENTS_VIEW, or
    the recipient of an order made or treated where it holds CUSTODY_VIEW."""
    sites = access.sites_with_perm(user, Perm.PATIENTS_VIEW) if access.has_perm(user, Perm.PATIENTS_VIEW) else set()
    if sites is None:
        return Patient.objects.all()
    orders = orders_visible(user).values("pk")
    return Patient.objects.filter(Q(treating_site_id__in=sites) | Q(referrals__order__in=orders)).distinct()


def clinical_sites(user: Any) -> set[int] | None:
    """Sites whose patients' clinical record the client sees (``None``: all)."""
    if not access.has_perm(user, Perm.PATIENTS_VIEW):
        return set()
    return access.sites_with_perm(user, Perm.PATIENTS_VIEW)


def may_identify(user: Any, patient: Patient) -> bool:
    """PAT-PRIVACY: only PATIENTS_IDENTIFY held at the patient's treating hospital, and not once the
    identifying data are erased."""
    if patient.erased_at is not None or not patient.identity:
        return False
    sites = access.sites_with_perm(user, Perm.PATIENTS_IDENTIFY) if access.has_perm(
        user, Perm.PATIENTS_IDENTIFY) else set()
    return sites is None or patient.treating_site_id in sites


# --- loading ----------------------------------------------------------------------------------------


def _order_prefetches(prefix: str = "") -> list[Any]:
    return [
        Prefetch(f"{prefix}collections", queryset=Collection.objects.select_related("collection_site").order_by("pk")),
        Prefetch(f"{prefix}handoffs", queryset=Handoff.objects.filter(
            outcome=HandoffOutcome.COMPLETED, kind__in=_HANDOFFS_USED).select_related("site").order_by("occurred_at",
                                                                                                      "pk")),
    ]


_ORDER_RELATED = ("site", "treating_site", "product", "batch", "batch__site", "batch__masterfile_version",
                  "batch__certification")


#: Large JSON the export does not read (the master file's whole content, the checklist as certified):
#: decoding them per row cost more than the rest of a Bundle (benchmarks/patients_fhir.py).
_DEFERRED = ("batch__masterfile_version__content", "batch__certification__checklist")


def _shelf_lives(orders: Iterable[TherapyOrder]) -> None:
    """Give each batch ``_shelf_life``, the ``shelf_life`` section of its master-file version, read in one
    query of that section alone."""
    batches = [b for b in (_batch(o) for o in orders) if b is not None]
    if not batches:
        return
    sections = dict(MasterFileVersion.objects.filter(pk__in={b.masterfile_version_id for b in batches})
                    .values_list("pk", "content__shelf_life"))
    for batch in batches:
        batch._shelf_life = sections.get(batch.masterfile_version_id) or {}  # type: ignore[attr-defined]


def orders_load(qs: QuerySet[TherapyOrder]) -> list[TherapyOrder]:
    """Orders with what their products' resources read, in a fixed number of queries."""
    orders = list(qs.select_related(*_ORDER_RELATED, "referral", "referral__patient").defer(*_DEFERRED)
                  .prefetch_related(*_order_prefetches()))
    _shelf_lives(orders)
    return orders


def referrals_load(qs: QuerySet[Referral]) -> list[Referral]:
    """Referrals with their order's products and their clinical record, in a fixed number of queries."""
    referrals = list(qs.select_related("patient", "patient__treating_site", "product",
                                       *(f"order__{name}" for name in _ORDER_RELATED))
                     .defer(*(f"order__{name}" for name in _DEFERRED))
                .prefetch_related(*_order_prefetches("order__"),
                                  Prefetch("consents", queryset=Consent.objects.select_related("document")
                                           .defer("document__body")),
                                  Prefetch("visits", queryset=Visit.objects.order_by("day")),
                                  Prefetch("adverse_events", queryset=AdverseEvent.objects.order_by("onset_on", "pk"))))
    _shelf_lives(r.order for r in referrals if r.order is not None)
    return referrals


# --- building blocks ------------------------------------------------------------------------------


def instant(value: dt.datetime) -> str:
    """A FHIR instant / dateTime in UTC, to the second."""
    return value.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _ref(kind: str, rid: str, display: str = "") -> dict[str, str]:
    out = {"reference": f"{kind}/{rid}"}
    if display:
        out["display"] = display
    return out


def _site_ref(site: Site) -> dict[str, Any]:
    return {"identifier": {"system": SID_SITE, "value": site.code}, "display": site.name}


def _celsius(value: float) -> dict[str, Any]:
    return {"value": value, "unit": "°C", "system": "http://unitsofmeasure.org", "code": "Cel"}


def patient_id(patient: Patient) -> str:
    return patient.pseudonym


def _subject(referral_or_patient: Referral | Patient) -> dict[str, str]:
    patient = referral_or_patient.patient if isinstance(referral_or_patient, Referral) else referral_or_patient
    return _ref("Patient", patient_id(patient), patient.pseudonym)


def _product_code(product: Any) -> dict[str, Any]:
    return {"coding": [{"system": CS_PRODUCT, "code": product.code, "display": product.name}], "text": product.name}


def _batch(order: TherapyOrder) -> Batch | None:
    return getattr(order, "batch", None)


def _certification(batch: Batch | None) -> Certification | None:
    return getattr(batch, "certification", None) if batch is not None else None


def _referral_of(order: TherapyOrder) -> Referral | None:
    return getattr(order, "referral", None)


def release_status(batch: Batch) -> tuple[str, str]:
    """(code, display) of the release status extension (docs/fhir.md, "Release status")."""
    certification = _certification(batch)
    if certification is not None:
        return ("certified", "Certified for release by the QP") if certification.decision == "released" else (
            "rejected", "Rejected by the QP")
    return {"in_progress": ("in-manufacture", "In manufacture"), "aborted": ("aborted", "Manufacture aborted")}.get(
        batch.status, ("awaiting-certification", "Manufactured; awaiting QP certification"))


def _storage(order: TherapyOrder) -> tuple[str, int | None, int] | None:
    kinds = {h.kind for h in order.handoffs.all()}
    for kind, storage in _STORAGE.items():
        if kind in kinds:
            return storage
    return None


def _handoff(order: TherapyOrder, kind: str) -> Handoff | None:
    return next((h for h in order.handoffs.all() if h.kind == kind), None)


# --- products ---------------------------------------------------------------------------------------


def apheresis_product(order: TherapyOrder, collection: Collection) -> Resource:
    """The starting material (ATMP-SM): one collection, identified by its DIN."""
    referral = _referral_of(order)
    batch = _batch(order)
    din = {"system": SID_DIN, "value": collection.din_printed}
    resource: Resource = {
        "resourceType": "BiologicallyDerivedProduct", "id": f"apheresis-{collection.pk}",
        "productCategory": {"system": "http://hl7.org/fhir/product-category", "code": "cells", "display": "Cells"},
        "productCode": {"text": f"Apheresis ({'autologous' if collection.autologous else 'allogeneic'}), "
                                f"starting material for {order.product.name}"},
        "identifier": [din],
        "biologicalSourceEvent": din,
        "processingFacility": [_site_ref(collection.collection_site)],
        "productStatus": {"system": "http://hl7.org/fhir/biologicallyderived-product-status",
                          "code": "unavailable" if batch is not None else "available"},
        "collection": {"collectedPeriod": {"start": instant(collection.collection_started_at),
                                           "end": instant(collection.collection_ended_at)}},
        "property": [{"type": {"coding": [{"system": CS_BDP_PROPERTY, "code": "volume", "display": "Volume"}]},
                      "valueQuantity": {"value": float(collection.volume_ml), "unit": "mL",
                                        "system": "http://unitsofmeasure.org", "code": "mL"}},
                     {"type": {"coding": [{"system": CS_BDP_PROPERTY, "code": "autologous",
                                           "display": "Autologous"}]}, "valueBoolean": collection.autologous}],
    }
    if referral is not None:
        resource["collection"]["source"] = _subject(referral)
        resource["request"] = [_ref("ServiceRequest", f"referral-{referral.pk}")]
    if collection.expires_at:
        resource["expirationDate"] = instant(collection.expires_at)
    return resource


def final_product(order: TherapyOrder, batch: Batch) -> Resource:
    """The final product of a batch: its parent is the apheresis material it was made from."""
    referral = _referral_of(order)
    collection = next((c for c in order.collections.all() if c.pk == batch.collection_id), None)
    code, display = release_status(batch)
    certification = _certification(batch)
    released = certification is not None and certification.decision == "released"
    infused = _handoff(order, HandoffKind.INFUSION) is not None
    identifiers = [{"system": SID_BATCH, "value": batch.reference}]
    if order.coi:
        identifiers.append({"system": SID_COI, "value": order.coi})
    resource: Resource = {
        "resourceType": "BiologicallyDerivedProduct", "id": f"batch-{batch.pk}",
        "extension": [{"url": EXT_RELEASE_STATUS,
                       "valueCoding": {"system": CS_RELEASE_STATUS, "code": code, "display": display}}],
        "productCategory": {"system": "http://hl7.org/fhir/product-category", "code": "cells", "display": "Cells"},
        "productCode": _product_code(order.product),
        "identifier": identifiers,
        "processingFacility": [_site_ref(batch.site)],
        "productStatus": {"system": "http://hl7.org/fhir/biologicallyderived-product-status",
                          "code": "available" if released and not infused else "unavailable"},
    }
    if collection is not None:
        resource["biologicalSourceEvent"] = {"system": SID_DIN, "value": collection.din_printed}
        resource["parent"] = [_ref("BiologicallyDerivedProduct", f"apheresis-{collection.pk}",
                                   f"DIN {collection.din_printed}")]
        resource["collection"] = {"collectedPeriod": {"start": instant(collection.collection_started_at),
                                                      "end": instant(collection.collection_ended_at)}}
        if referral is not None:
            resource["collection"]["source"] = _subject(referral)
    if referral is not None:
        resource["request"] = [_ref("ServiceRequest", f"referral-{referral.pk}")]
    storage = _storage(order)
    if storage is not None:
        how, low, high = storage
        temperature: Resource = {"high": _celsius(high)}
        if low is not None:
            temperature["low"] = _celsius(low)
        resource["storageTempRequirements"] = temperature
        resource["property"] = [{"type": {"coding": [{"system": CS_BDP_PROPERTY, "code": "storage-temperature",
                                                      "display": f"Storage temperature ({how})"}]},
                                 "valueRange": temperature}]
        name, unit = SHELF_LIFE_FIELDS[how]
        amount = getattr(batch, "_shelf_life", {}).get(name)
        shelf_life = dt.timedelta(**{unit: amount}) if isinstance(amount, int | float) and amount > 0 else None
        if shelf_life is not None and batch.ended_at is not None:
            resource["expirationDate"] = instant(batch.ended_at + shelf_life)
    return resource


def dispense(order: TherapyOrder, batch: Batch) -> Resource | None:
    """FHIR-DISP: the dispense of a product to its patient, only once the QP certified it for release."""
    certification = _certification(batch)
    if certification is None or certification.decision != "released":
        return None
    referral = _referral_of(order)
    dispatched = _handoff(order, HandoffKind.DISPATCH_TO_HOSPITAL)
    resource: Resource = {
        "resourceType": "BiologicallyDerivedProductDispense", "id": f"dispense-{batch.pk}",
        "identifier": [{"system": SID_BATCH, "value": batch.reference}],
        "status": "issued" if dispatched is not None else "allocated",
        "originRelationshipType": {"text": "Autologous" if order.product.kind == "autologous" else "Allogeneic"},
        "product": _ref("BiologicallyDerivedProduct", f"batch-{batch.pk}", batch.reference),
        "preparedDate": instant(certification.decided_at),
        "destination": {"display": order.treating_site.name},
    }
    if referral is not None:
        resource["patient"] = _subject(referral)
        resource["basedOn"] = [_ref("ServiceRequest", f"referral-{referral.pk}")]
    else:  # an order made without a referral names its recipient by the hospital's pseudonymous id
        resource["patient"] = {"identifier": {"system": f"{SID_SITE}/{order.treating_site.code}/recipient",
                                              "value": order.recipient_id}}
    if dispatched is not None:
        resource["whenHandedOver"] = instant(dispatched.occurred_at)
    return resource


def products_of(order: TherapyOrder) -> list[Resource]:
    """The order's products: each apheresis collection, the final product, and its dispense."""
    out = [apheresis_product(order, c) for c in order.collections.all()]
    batch = _batch(order)
    if batch is not None:
        out.append(final_product(order, batch))
        given = dispense(order, batch)
        if given is not None:
            out.append(given)
    return out


# --- the clinical record ---------------------------------------------------------------------------

_SR_STATUS: dict[str, str] = {Stage.COMPLETED: "completed", Stage.INELIGIBLE: "revoked", Stage.WITHDRAWN: "revoked",
              Stage.LOST: "revoked"}


def service_request(referral: Referral) -> Resource:
    """The referral as an order for the product, with the weight it was made for as a contained
    Observation (what the import reads back)."""
    identifiers = [{"system": SID_REFERRAL, "value": str(referral.pk)}]
    if referral.external_id:
        identifiers.insert(0, {"system": referral.external_system or SID_REFERRAL, "value": referral.external_id})
    return _drop_empty({
        "resourceType": "ServiceRequest", "id": f"referral-{referral.pk}",
        "contained": [{"resourceType": "Observation", "id": "weight", "status": "final",
                       "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7",
                                            "display": "Body weight"}]},
                       "subject": _subject(referral),
                       "valueQuantity": {"value": float(referral.weight_kg), "unit": "kg",
                                         "system": "http://unitsofmeasure.org", "code": "kg"}}],
        "identifier": identifiers,
        "status": _SR_STATUS.get(referral.stage, "active"),
        "intent": "order",
        "code": {"concept": _product_code(referral.product)},
        "subject": _subject(referral),
        "authoredOn": instant(referral.referred_at),
        "reason": [{"concept": {"text": referral.indication}}],
        "supportingInfo": [{"reference": {"reference": "#weight"}}],
        "performer": [_site_ref(referral.order.site)] if referral.order_id and referral.order else [],
    })


def _drop_empty(resource: Resource) -> Resource:
    return {k: v for k, v in resource.items() if v not in ([], None, "")}


def consent(referral: Referral, given: Consent) -> Resource:
    """PAT-CONSENT: the informed consent in the document version and language signed."""
    period: Resource = {"start": instant(given.signed_at)}
    if given.withdrawn_at:
        period["end"] = instant(given.withdrawn_at)
    document = given.document
    return {
        "resourceType": "Consent", "id": f"consent-{given.pk}",
        "identifier": [{"system": SID_CONSENT, "value": str(given.pk)}],
        "status": "inactive" if given.withdrawn_at else "active",
        "category": [{"text": "Informed consent to treatment with an advanced therapy"}],
        "subject": _subject(referral),
        "date": given.signed_at.astimezone(dt.UTC).date().isoformat(),
        "period": period,
        "decision": "permit",
        "sourceAttachment": [{"title": f"{document.title} ({document.code} v{document.version})",
                              "language": document.language}],
    }


def procedures(referral: Referral) -> list[Resource]:
    """Apheresis (from custody's collections) and infusion (from the infusion hand-off)."""
    out: list[Resource] = []
    order = referral.order
    if order is None:
        return out
    for collection in order.collections.all():
        out.append({
            "resourceType": "Procedure", "id": f"apheresis-{collection.pk}",
            "basedOn": [_ref("ServiceRequest", f"referral-{referral.pk}")],
            "status": "completed",
            "code": {"coding": [{"system": CS_PROCEDURE, "code": "apheresis", "display": "Leukapheresis"}],
                     "text": "Leukapheresis (collection of starting material)"},
            "subject": _subject(referral),
            "occurrencePeriod": {"start": instant(collection.collection_started_at),
                                 "end": instant(collection.collection_ended_at)},
            "location": {"display": collection.collection_site.name},
            "report": [],
            "used": [{"reference": _ref("BiologicallyDerivedProduct", f"apheresis-{collection.pk}")}],
        })
    infusion = _handoff(order, HandoffKind.INFUSION)
    batch = _batch(order)
    if infusion is not None:
        done: Resource = {
            "resourceType": "Procedure", "id": f"infusion-{infusion.pk}",
            "basedOn": [_ref("ServiceRequest", f"referral-{referral.pk}")],
            "status": "completed",
            "code": {"coding": [{"system": CS_PROCEDURE, "code": "infusion", "display": "Infusion"}],
                     "text": f"Infusion of {order.product.name}"},
            "subject": _subject(referral),
            "occurrenceDateTime": instant(infusion.occurred_at),
            "location": {"display": infusion.site.name},
        }
        if batch is not None:
            done["used"] = [{"reference": _ref("BiologicallyDerivedProduct", f"batch-{batch.pk}")}]
        out.append(done)
    return [{k: v for k, v in p.items() if v != []} for p in out]


def adverse_event(referral: Referral, event: AdverseEvent) -> list[Resource]:
    """The adverse event and its grade as an Observation (PAT-GRADE: the ASTCT grade computed from the
    inputs, with the reasons)."""
    grade_id = f"ae-{event.pk}-grade"
    code_system = CS_GRADE
    ae: Resource = {
        "resourceType": "AdverseEvent", "id": f"ae-{event.pk}",
        "identifier": [{"system": SID_ADVERSE_EVENT, "value": str(event.pk)}],
        "status": "completed",
        "actuality": "actual",
        "code": {"coding": [{"system": CS_AE_KIND, "code": event.kind, "display": event.get_kind_display()}],
                 "text": event.term or event.get_kind_display()},
        "subject": _subject(referral),
        "occurrenceDateTime": event.onset_on.isoformat(),
        "recordedDate": instant(event.recorded_at),
        "seriousness": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/adverse-event-seriousness",
                                    "code": "serious" if event.serious else "non-serious",
                                    "display": "Serious" if event.serious else "Non-serious"}]},
        "supportingInfo": [{"itemReference": _ref("Observation", grade_id)}],
    }
    if referral.order_id and referral.order is not None and _batch(referral.order) is not None:
        batch = _batch(referral.order)
        assert batch is not None
        ae["suspectEntity"] = [{"instanceReference": _ref("BiologicallyDerivedProduct", f"batch-{batch.pk}")}]
    reasons = [str(r) for r in (event.reasons or [])]
    grade: Resource = {
        "resourceType": "Observation", "id": grade_id,
        "status": "final",
        "code": {"coding": [{"system": code_system, "code": f"{event.kind}-grade",
                             "display": f"{event.get_kind_display()} grade (ASTCT consensus)"
                             if event.kind != "other" else "Adverse event grade"}]},
        "subject": _subject(referral),
        "focus": [_ref("AdverseEvent", f"ae-{event.pk}")],
        "effectiveDateTime": event.onset_on.isoformat(),
        "valueInteger": event.grade,
    }
    if reasons:
        grade["note"] = [{"text": "; ".join(reasons)[:2000]}]
    return [ae, grade]


_APPOINTMENT: dict[str, str] = {VisitStatus.PLANNED: "proposed", VisitStatus.DONE: "fulfilled",
                                VisitStatus.MISSED: "noshow", VisitStatus.CLOSED: "cancelled"}


def care_plan(referral: Referral) -> Resource | None:
    """PAT-LTFU: the follow-up schedule, each visit a contained Appointment (R5's CarePlan.activity
    refers to what is planned; a proposed visit has its window, a done one when it was done)."""
    visits = list(referral.visits.all())
    if not visits and referral.infused_at is None:
        return None
    contained, activities = [], []
    for visit in visits:
        low = visit.due_on - dt.timedelta(days=visit.window_days)
        high = visit.due_on + dt.timedelta(days=visit.window_days)
        appointment: Resource = {
            "resourceType": "Appointment", "id": f"visit-{visit.day}",
            "status": _APPOINTMENT.get(visit.status, "proposed"),
            "description": visit.label,
            "requestedPeriod": [{"start": low.isoformat(), "end": high.isoformat()}],
            "participant": [{"actor": _subject(referral), "status": "accepted"}],
        }
        if visit.status == VisitStatus.DONE and visit.done_at:
            appointment["start"] = appointment["end"] = instant(visit.done_at)
        elif visit.status == VisitStatus.CLOSED:
            appointment["cancellationReason"] = {"text": "The patient died"}
        elif visit.status == VisitStatus.MISSED:
            appointment["start"] = f"{low.isoformat()}T00:00:00Z"
            appointment["end"] = f"{high.isoformat()}T23:59:59Z"
        contained.append(appointment)
        activities.append({"plannedActivityReference": {"reference": f"#visit-{visit.day}"}})
    plan: Resource = {
        "resourceType": "CarePlan", "id": f"followup-{referral.pk}",
        "contained": contained,
        "basedOn": [_ref("ServiceRequest", f"referral-{referral.pk}")],
        "status": ("revoked" if any(v.status == VisitStatus.CLOSED for v in visits)  # ended early: death
                   else "completed" if referral.stage == Stage.COMPLETED else "active"),
        "intent": "plan",
        "title": "Long-term follow-up after infusion",
        "subject": _subject(referral),
        "activity": activities,
    }
    if referral.infused_at:
        plan["period"] = {"start": instant(referral.infused_at)}
    return {k: v for k, v in plan.items() if v != []}


def clinical_of(referral: Referral) -> list[Resource]:
    out = [service_request(referral)]
    out += [consent(referral, c) for c in referral.consents.all()]
    out += procedures(referral)
    for event in referral.adverse_events.all():
        out += adverse_event(referral, event)
    plan = care_plan(referral)
    if plan is not None:
        out.append(plan)
    return out


def patient_resource(patient: Patient, *, detail: bool, identity: sealed.Identity | None = None) -> Resource:
    """The patient: the pseudonym always; language, birth year and treating hospital for those who see
    the clinical record (``detail``); name, birth date, contact and address only in ``identity``,
    which the caller has recorded as disclosed."""
    resource: Resource = {
        "resourceType": "Patient", "id": patient_id(patient),
        "identifier": [{"system": SID_PSEUDONYM, "value": patient.pseudonym}],
    }
    if detail:
        resource["communication"] = [{"language": {"coding": [{"system": "urn:ietf:bcp:47",
                                                               "code": patient.language}]}}]
        resource["managingOrganization"] = _site_ref(patient.treating_site)
        if patient.birth_year:
            resource["birthDate"] = f"{patient.birth_year:04d}"
    if identity is not None:
        resource["name"] = [{"use": "official", "text": identity.name}]
        if identity.birth_date:
            resource["birthDate"] = identity.birth_date
        if identity.contact:
            resource["telecom"] = [{"system": "email" if "@" in identity.contact else "phone",
                                    "value": identity.contact}]
        if identity.address:
            resource["address"] = [{"text": identity.address}]
    return resource


# --- what a client asks for -------------------------------------------------------------------------


@dataclass
class Found:
    """Resources found for a client, and the patients whose identity the answer discloses."""

    resources: list[Resource] = field(default_factory=list)
    disclosed: list[Patient] = field(default_factory=list)
    #: More may match than were returned (a search stopped at its ``_count``): the Bundle states no total.
    partial: bool = False


def _patient_resources(user: Any, patients: Iterable[Patient], *, identify: bool, found: Found) -> None:
    sites = clinical_sites(user)
    for patient in patients:
        detail = sites is None or patient.treating_site_id in sites
        identity = None
        if identify and may_identify(user, patient):
            assert patient.identity is not None
            identity = sealed.unseal(patient.identity)
            found.disclosed.append(patient)
        found.resources.append(patient_resource(patient, detail=detail, identity=identity))


def everything(user: Any, patient: Patient, *, identify: bool = False) -> Found:
    """``Patient/<id>/$everything``: the patient and, for each referral, its clinical record (with
    PATIENTS_VIEW at the treating hospital) and its order's products (with CUSTODY_VIEW there)."""
    found = Found()
    _patient_resources(user, [patient.__class__.objects.select_related("treating_site").get(pk=patient.pk)],
                       identify=identify, found=found)
    sites = clinical_sites(user)
    clinical = sites is None or patient.treating_site_id in sites
    orders = set(orders_visible(user).filter(referral__patient=patient).values_list("pk", flat=True))
    for referral in referrals_load(Referral.objects.filter(patient=patient).order_by("pk")):
        if clinical:
            found.resources += clinical_of(referral)
        if referral.order_id in orders and referral.order is not None:
            found.resources += products_of(referral.order)
    return found


_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
#: Resource id → the referrals (clinical types) or orders (product types) that hold it.
_ID_LOOKUPS: dict[str, tuple[tuple[str, Callable[[int], Q]], ...]] = {
    "BiologicallyDerivedProduct": (("batch-", lambda pk: Q(batch__pk=pk)),
                                   ("apheresis-", lambda pk: Q(collections__pk=pk))),
    "BiologicallyDerivedProductDispense": (("dispense-", lambda pk: Q(batch__pk=pk)),),
    "ServiceRequest": (("referral-", lambda pk: Q(pk=pk)),),
    "Consent": (("consent-", lambda pk: Q(consents__pk=pk)),),
    "Procedure": (("apheresis-", lambda pk: Q(order__collections__pk=pk)),
                  ("infusion-", lambda pk: Q(order__handoffs__pk=pk))),
    "AdverseEvent": (("ae-", lambda pk: Q(adverse_events__pk=pk)),),
    "Observation": (("ae-", lambda pk: Q(adverse_events__pk=pk)),),
    "CarePlan": (("followup-", lambda pk: Q(pk=pk)),),
}
_MAX_PK = 2**62


def _id_query(resource_type: str, rid: str) -> Q | None:
    for prefix, lookup in _ID_LOOKUPS.get(resource_type, ()):
        rest = rid.removeprefix(prefix)
        if rid.startswith(prefix):
            rest = rest.removesuffix("-grade") if resource_type == "Observation" else rest
            if rest.isdigit() and len(rest) < 19 and int(rest) < _MAX_PK:
                return lookup(int(rest))
    return None


def _of_type(resource_type: str, resources: list[Resource]) -> list[Resource]:
    return [r for r in resources if r["resourceType"] == resource_type]


def _build(user: Any, resource_type: str, *, orders: Q | None = None, referrals: Q | None = None,
           patients: QuerySet[Patient] | None = None, identify: bool = False, limit: int = 1000) -> Found:
    found = Found()
    if resource_type == "Patient":
        assert patients is not None
        rows: list[Any] = list(patients.select_related("treating_site")[:limit])
        _patient_resources(user, rows, identify=identify, found=found)
    elif resource_type in PRODUCT_TYPES:
        qs = orders_visible(user).filter(orders or Q()).distinct().order_by("-pk")
        rows = orders_load(qs[:limit])
        for order in rows:
            found.resources += _of_type(resource_type, products_of(order))
    else:
        visible = referrals_visible(user).filter(referrals or Q()).distinct().order_by("-pk")
        rows = referrals_load(visible[:limit])
        for referral in rows:
            found.resources += _of_type(resource_type, clinical_of(referral))
    found.partial = len(rows) >= limit
    return found


def read(user: Any, resource_type: str, rid: str, *, identify: bool = False) -> Found:
    """The one resource ``resource_type/rid`` the client may see (an empty answer otherwise)."""
    if resource_type not in RESOURCE_TYPES or not _ID.match(rid):
        return Found()
    if resource_type == "Patient":
        found = _build(user, "Patient", patients=patients_visible(user).filter(pseudonym=rid), identify=identify)
    else:
        query = _id_query(resource_type, rid)
        if query is None:
            return Found()
        if resource_type in PRODUCT_TYPES:
            found = _build(user, resource_type, orders=query)
        else:
            found = _build(user, resource_type, referrals=query)
    found.resources = [r for r in found.resources if r["id"] == rid]
    return found


def _token_matches(resource: Resource, system: str | None, value: str) -> bool:
    return any(i.get("value") == value and (system is None or i.get("system") == system)
               for i in resource.get("identifier") or [])


def search(user: Any, resource_type: str, *, identifier: tuple[str | None, str] | None = None,
           patient: str | None = None, count: int = 50, identify: bool = False) -> Found:
    """Search ``resource_type`` by ``identifier`` ((system or None, value)) and/or ``patient`` (its id,
    the pseudonym); with neither, the newest resources (at most ``count``; ``partial`` when more may
    match: there are no further pages, the client narrows the search)."""
    q_orders, q_referrals, patients = Q(), Q(), patients_visible(user)
    if patient is not None:
        q_orders &= Q(referral__patient__pseudonym=patient)
        q_referrals &= Q(patient__pseudonym=patient)
        patients = patients.filter(pseudonym=patient)
    if identifier is not None:
        _system, value = identifier
        if resource_type == "Patient":
            patients = patients.filter(pseudonym=value)
        elif resource_type in PRODUCT_TYPES:
            din = value.replace(" ", "")[:13]
            q_orders &= (Q(batch__reference=value) | Q(coi=value) | Q(collections__din=din)) if value else Q(pk=None)
        elif resource_type == "ServiceRequest":
            q_referrals &= Q(external_id=value) | (Q(pk=int(value)) if value.isdigit() and len(value) < 19 else Q(
                pk=None))
        else:
            prefix = {"Consent": "consent-", "AdverseEvent": "ae-"}.get(resource_type)
            query = _id_query(resource_type, f"{prefix}{value}") if prefix else None
            q_referrals &= query if query is not None else Q(pk=None)
    key_limit = count if identifier is None else 1000
    found = _build(user, resource_type, orders=q_orders, referrals=q_referrals, patients=patients,
                   identify=identify, limit=key_limit)
    if identifier is not None:
        found.resources = [r for r in found.resources if _token_matches(r, identifier[0], identifier[1])]
    found.partial = found.partial or len(found.resources) > count
    found.resources = found.resources[:count]
    return found
