"""The FHIR R5 endpoint (docs/fhir.md): products and their dispense, the clinical record, pseudonymous
patients, import of ServiceRequests, OperationOutcomes for hostile and invalid input."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from pocare.ledger.models import Event
from pocare.patients.events import PatientEvent
from pocare.patients.fhir import EXT_RELEASE_STATUS, FHIR_JSON, SID_DIN, SID_PSEUDONYM
from pocare.patients.fhir.validation import resource_problems
from pocare.patients.models import Patient, Referral, ReferralSource
from tests.custody.helpers import accepted, certify, collect, completed_batch, effective_at
from tests.patients.fhir_helpers import bearer, link_order, manufactured, service_request

pytestmark = pytest.mark.django_db


def _get(client, url, who="physician.mad", **headers):  # type: ignore[no-untyped-def]
    response = client.get(url, **(bearer(who) if who else {}), **headers)
    assert response["Content-Type"].startswith(FHIR_JSON), response["Content-Type"]
    return response


def _valid(body):  # type: ignore[no-untyped-def]
    assert resource_problems(body) == [], resource_problems(body)
    return body


def _entries(bundle, rtype=None):  # type: ignore[no-untyped-def]
    return [e["resource"] for e in bundle.get("entry", []) if rtype is None or e["resource"]["resourceType"] == rtype]


def test_capability_statement_is_public_and_valid(client):
    """FHIR-BDP: /fhir/metadata states the resources, the search parameters and the release-status extension."""
    response = _get(client, "/fhir/metadata", who=None)
    body = _valid(response.json())
    assert response.status_code == 200 and body["fhirVersion"] == "5.0.0"
    types = {r["type"]: r for r in body["rest"][0]["resource"]}
    assert {"Patient", "BiologicallyDerivedProduct", "BiologicallyDerivedProductDispense", "ServiceRequest",
            "Consent", "Procedure", "AdverseEvent", "Observation", "CarePlan"} <= set(types)
    assert {p["name"] for p in types["ServiceRequest"]["searchParam"]} == {"identifier", "patient"}
    assert EXT_RELEASE_STATUS in types["BiologicallyDerivedProduct"]["documentation"]


def test_product_content(client, referral):
    """FHIR-BDP ATMP-TRACE: the final product is cells, names its DIN as biologicalSourceEvent, its
    processing facility, its parent apheresis material, its request; the release status is in the
    extension (awaiting certification before the QP decides, certified after)."""
    batch = manufactured(referral)
    collection = batch.collection
    body = _valid(_get(client, f"/fhir/BiologicallyDerivedProduct/batch-{batch.pk}").json())
    assert body["productCategory"]["code"] == "cells"
    assert body["biologicalSourceEvent"] == {"system": SID_DIN, "value": collection.din_printed}
    assert body["processingFacility"][0]["identifier"]["value"] == "MAD"
    assert body["parent"][0]["reference"] == f"BiologicallyDerivedProduct/apheresis-{collection.pk}"
    assert body["request"][0]["reference"] == f"ServiceRequest/referral-{referral.pk}"
    assert body["collection"]["source"]["reference"] == f"Patient/{referral.patient.pseudonym}"
    assert body["extension"][0]["url"] == EXT_RELEASE_STATUS
    assert body["extension"][0]["valueCoding"]["code"] == "awaiting-certification"
    assert body["productStatus"]["code"] == "unavailable"
    assert {"system": "https://pocare.eu/fhir/sid/batch", "value": batch.reference} in body["identifier"]

    parent = _valid(_get(client, f"/fhir/BiologicallyDerivedProduct/apheresis-{collection.pk}").json())
    assert parent["biologicalSourceEvent"]["value"] == collection.din_printed
    assert parent["collection"]["collectedPeriod"]["end"].startswith(str(collection.collection_ended_at.date()))

    certify(batch)
    _cryopreserved(batch)
    body = _valid(_get(client, f"/fhir/BiologicallyDerivedProduct/batch-{batch.pk}").json())
    assert body["extension"][0]["valueCoding"]["code"] == "certified"
    assert body["productStatus"]["code"] == "available"
    assert body["storageTempRequirements"]["high"]["value"] == -150
    assert body["property"][0]["type"]["coding"][0]["code"] == "storage-temperature"
    shelf_days = batch.masterfile_version.content["shelf_life"]["cryopreserved_product_days"]
    assert body["expirationDate"].startswith(str((batch.ended_at + dt.timedelta(days=shelf_days)).date()))


def _cryopreserved(batch):  # type: ignore[no-untyped-def]
    """The cryopreservation hand-off as the row custody's scan stores (the scan's chain is custody's test)."""
    from pocare.custody.models import Handoff, HandoffKind, HandoffOutcome

    operator = batch.started_by
    Handoff.objects.create(order=batch.order, batch=batch, kind=HandoffKind.CRYOPRESERVATION,
                           outcome=HandoffOutcome.COMPLETED, site=batch.site, time_zone="Europe/Madrid",
                           occurred_at=batch.ended_at, performed_by=operator, performed_by_name=operator.printed_name,
                           expected_identifier="x", presented_identifier="x")


def test_dispense_only_after_qp_certification(client, referral):
    """FHIR-DISP: no BiologicallyDerivedProductDispense until the QP certified the batch for release."""
    batch = manufactured(referral)
    url = f"/fhir/BiologicallyDerivedProductDispense/dispense-{batch.pk}"
    assert _get(client, url).status_code == 404
    search = _get(client, f"/fhir/BiologicallyDerivedProductDispense?patient={referral.patient.pseudonym}").json()
    assert search["total"] == 0
    certify(batch)
    body = _valid(_get(client, url).json())
    assert body["status"] == "allocated"
    assert body["product"]["reference"] == f"BiologicallyDerivedProduct/batch-{batch.pk}"
    assert body["patient"]["reference"] == f"Patient/{referral.patient.pseudonym}"
    search = _valid(_get(client, f"/fhir/BiologicallyDerivedProductDispense?identifier={batch.reference}").json())
    assert [r["id"] for r in _entries(search)] == [f"dispense-{batch.pk}"]


def test_patient_bundle_is_valid_and_pseudonymous_by_get(client, referral):
    """PAT-PRIVACY FHIR-BDP: $everything by GET holds the pathway's resources, all valid, and no
    identifying data even for the treating physician; nothing is written."""
    batch = manufactured(referral)
    certify(batch)
    headers = bearer("physician.mad")
    before = Event.objects.count()
    response = client.get(f"/fhir/Patient/{referral.patient.pseudonym}/$everything", **headers)
    bundle = _valid(response.json())
    assert Event.objects.count() == before
    types = {r["resourceType"] for r in _entries(bundle)}
    assert types >= {"Patient", "ServiceRequest", "Procedure", "BiologicallyDerivedProduct",
                     "BiologicallyDerivedProductDispense"}
    text = json.dumps(bundle, ensure_ascii=False)
    assert "Lucía" not in text and "Alcalá" not in text and "1968-03-14" not in text
    patient = _entries(bundle, "Patient")[0]
    assert patient["identifier"] == [{"system": SID_PSEUDONYM, "value": referral.patient.pseudonym}]


def test_identity_disclosed_by_post_to_the_treating_hospital_and_recorded(client, referral):
    """PAT-PRIVACY: POST $everything discloses name and birth date to the treating physician, each
    disclosure a patients.identity_viewed event without the values; Control Site QA gets the pseudonym."""
    url = f"/fhir/Patient/{referral.patient.pseudonym}/$everything"
    response = client.post(url, **bearer("physician.mad"))
    assert response.status_code == 200
    patient = _entries(_valid(response.json()), "Patient")[0]
    assert patient["name"][0]["text"] == "Lucía Fernández Ruiz" and patient["birthDate"] == "1968-03-14"
    events = Event.objects.filter(event_type=PatientEvent.IDENTITY_VIEWED)
    assert events.count() == 1
    assert "Fernández" not in str(events.get().new_values) and referral.patient.pseudonym in str(events.get().new_values)

    response = client.post("/fhir/Patient/_search", {"identifier": referral.patient.pseudonym}, **bearer("qa"))
    assert response.status_code == 200
    patient = _entries(response.json(), "Patient")[0]
    assert "name" not in patient and patient["birthDate"] == "1968"
    assert events.count() == 1


def test_scoping_by_site(client, referral):
    """PAT-PRIVACY: another hospital sees nothing; the manufacturing site's operator sees the products and
    the pseudonym only (no clinical record, no birth year, no treating hospital)."""
    batch = manufactured(referral)
    pseudonym = referral.patient.pseudonym
    assert _get(client, f"/fhir/Patient/{pseudonym}", who="physician.lis").status_code == 404
    assert _get(client, f"/fhir/BiologicallyDerivedProduct/batch-{batch.pk}", who="physician.lis").status_code == 404
    assert _get(client, f"/fhir/ServiceRequest?patient={pseudonym}", who="physician.lis").json()["total"] == 0

    patient = _get(client, f"/fhir/Patient/{pseudonym}", who="operator.mad").json()
    assert set(patient) == {"resourceType", "id", "identifier"}
    assert _get(client, f"/fhir/BiologicallyDerivedProduct/batch-{batch.pk}", who="operator.mad").status_code == 200
    assert _get(client, f"/fhir/ServiceRequest/referral-{referral.pk}", who="operator.mad").status_code == 404
    bundle = _get(client, f"/fhir/Patient/{pseudonym}/$everything", who="operator.mad").json()
    assert {r["resourceType"] for r in _entries(bundle)} == {"Patient", "BiologicallyDerivedProduct"}
    response = client.post(f"/fhir/Patient/{pseudonym}/$everything", **bearer("operator.mad"))
    assert "name" not in _entries(response.json(), "Patient")[0]
    assert not Event.objects.filter(event_type=PatientEvent.IDENTITY_VIEWED).exists()


def test_search_by_identifier_and_patient(client, referral):
    """FHIR-BDP: search by the DIN, the batch reference, and by patient."""
    batch = manufactured(referral)
    din = batch.collection.din_printed
    found = _valid(_get(client, f"/fhir/BiologicallyDerivedProduct?identifier={SID_DIN}|{din}").json())
    assert [r["id"] for r in _entries(found)] == [f"apheresis-{batch.collection.pk}"]
    found = _get(client, f"/fhir/BiologicallyDerivedProduct?patient=Patient/{referral.patient.pseudonym}").json()
    assert {r["id"] for r in _entries(found)} == {f"apheresis-{batch.collection.pk}", f"batch-{batch.pk}"}
    found = _get(client, f"/fhir/Procedure?patient={referral.patient.pseudonym}").json()
    assert [r["code"]["coding"][0]["code"] for r in _entries(found)] == ["apheresis"]


def _post(client, body, who="physician.mad", url="/fhir/ServiceRequest", **kwargs):  # type: ignore[no-untyped-def]
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(url, data=data, content_type=FHIR_JSON, **bearer(who), **kwargs)


def test_import_creates_a_referral_once(client, people):
    """A ServiceRequest with its Patient contained makes a patient and a referral; the same identifier
    again answers the same referral."""
    code = effective_at("MAD").product.code
    response = _post(client, service_request(code))
    assert response.status_code == 201, response.json()
    body = _valid(response.json())
    referral = Referral.objects.get()
    assert referral.source == ReferralSource.FHIR and referral.external_id == "HIS-0001"
    assert referral.external_system == "urn:oid:2.16.724.4.99.1" and str(referral.weight_kg) == "71.5"
    assert referral.patient.treating_site.code == "MAD" and referral.patient.language == "es"
    assert response["Location"].endswith(f"/fhir/ServiceRequest/{body['id']}")
    assert Event.objects.filter(event_type=PatientEvent.FHIR_IMPORTED).count() == 1
    again = _post(client, service_request(code))
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    assert Referral.objects.count() == 1 and Patient.objects.count() == 1


def test_import_as_transaction_bundle(client, people):
    """A transaction Bundle with the ServiceRequest and its Patient entry makes the referral."""
    request = service_request(effective_at("MAD").product.code, identifier="HIS-0002")
    patient = request["contained"].pop(0)
    request["subject"] = {"reference": "urn:uuid:6d5e1c1e-8d62-4b4a-9f5e-2f0b9a3e7a11"}
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:6d5e1c1e-8d62-4b4a-9f5e-2f0b9a3e7a11", "resource": patient,
         "request": {"method": "POST", "url": "Patient"}},
        {"resource": request, "request": {"method": "POST", "url": "ServiceRequest"}}]}
    response = _post(client, bundle, url="/fhir/")
    assert response.status_code == 200, response.json()
    answer = _valid(response.json())
    assert answer["type"] == "transaction-response" and answer["entry"][0]["response"]["status"] == "201 Created"
    assert Referral.objects.get().external_id == "HIS-0002"


def test_round_trip(client, people):
    """Export → validate → import: the exported ServiceRequest validates and, sent back, finds its
    referral; with a new identifier and the patient named by pseudonym it refers the same patient again."""
    response = _post(client, service_request(effective_at("MAD").product.code))
    exported = _valid(_get(client, f"/fhir/ServiceRequest/{response.json()['id']}").json())
    exported.pop("id")
    again = _post(client, exported)
    assert again.status_code == 200, again.json()
    assert again.json()["id"] == response.json()["id"]

    pseudonym = Patient.objects.get().pseudonym
    exported["identifier"] = [{"system": "urn:oid:2.16.724.4.99.1", "value": "HIS-0003"}]
    exported["contained"].append({"resourceType": "Patient", "id": "p",
                                  "identifier": [{"system": SID_PSEUDONYM, "value": pseudonym}]})
    exported["subject"] = {"reference": "#p"}
    created = _post(client, exported)
    assert created.status_code == 201, created.json()
    assert Referral.objects.count() == 2 and Patient.objects.count() == 1


def _deep(n: int) -> str:
    return '{"resourceType": "ServiceRequest", "x": ' + "[" * n + "]" * n + "}"


INVALID = [
    ("not json", "{not json", 400, "Resource"),
    ("NUL", json.dumps({"resourceType": "ServiceRequest", "status": "a\x00b"}), 400, "status"),
    ("400 digits", '{"resourceType": "ServiceRequest", "priority": ' + "9" * 400 + "}", 400, "priority"),
    ("nesting 20,000 deep", _deep(20_000), 400, ""),
    ("year 1", "B", 400, "authoredOn"),
    ("wrong resource type", "C", 400, "resourceType"),
    ("status outside its required binding", "D", 422, "ServiceRequest.status"),
    ("a date that is not one", "E", 400, "ServiceRequest.authoredOn"),
    ("no identifier", "F", 422, "ServiceRequest.identifier"),
    ("unknown product", "G", 422, "ServiceRequest.code.concept.coding[0].code"),
    ("no weight", "H", 422, "ServiceRequest.supportingInfo"),
    ("implausible weight", "I", 422, "ServiceRequest.contained.where(resourceType='Observation').valueQuantity"),
    ("no patient name", "J", 422, "ServiceRequest.contained[0].name"),
    ("another hospital", "K", 422, "ServiceRequest.contained[0].managingOrganization.identifier.value"),
    ("unknown element", "L", 400, "ServiceRequest.colour"),
]


def _invalid_body(kind: str, code: str) -> str:
    request = service_request(code)
    if kind == "B":
        request["authoredOn"] = "0001-01-01"
    elif kind == "C":
        request = {"resourceType": "Nonsense"}
    elif kind == "D":
        request["status"] = "sent"
    elif kind == "E":
        request["authoredOn"] = "yesterday"
    elif kind == "F":
        request.pop("identifier")
    elif kind == "G":
        request["code"]["concept"]["coding"][0]["code"] = "NOT-A-PRODUCT"
    elif kind == "H":
        request.pop("supportingInfo")
    elif kind == "I":
        request["contained"][1]["valueQuantity"]["value"] = 4000
    elif kind == "J":
        request["contained"][0].pop("name")
    elif kind == "K":
        request["contained"][0]["managingOrganization"]["identifier"]["value"] = "LIS"
    elif kind == "L":
        request["colour"] = "blue"
    return json.dumps(request)


@pytest.mark.parametrize(("label", "body", "http_status", "expression"), INVALID, ids=[i[0] for i in INVALID])
def test_invalid_input_gets_an_operation_outcome_and_stores_nothing(client, people, label, body, http_status,
                                                                    expression):
    """Each kind of invalid input: a 4xx OperationOutcome naming the element, and no patient or referral."""
    code = effective_at("MAD").product.code
    if len(body) == 1:
        body = _invalid_body(body, code)
    before = Event.objects.count()
    response = _post(client, body)
    assert response.status_code == http_status, (label, response.status_code, response.content[:300])
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome" and _valid(outcome)
    expressions = [e for issue in outcome["issue"] for e in issue["expression"]]
    assert any(expression in e for e in expressions), (label, outcome)
    assert not Patient.objects.exists() and not Referral.objects.exists()
    assert not Event.objects.filter(event_type__startswith="patients.").exists()
    assert Event.objects.count() >= before


def test_a_body_over_the_limit_is_refused(client, people, settings):
    """A huge body: 413 OperationOutcome, nothing stored."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    request = service_request(effective_at("MAD").product.code)
    request["note"] = [{"text": "x" * 20_000}]
    response = _post(client, request)
    assert response.status_code == 413 and response.json()["resourceType"] == "OperationOutcome"
    assert not Referral.objects.exists()


@pytest.mark.parametrize(("url", "http_status", "expression"), [
    ("/fhir/ServiceRequest?name=x", 400, "name"),
    ("/fhir/ServiceRequest?_count=100000", 400, "_count"),
    ("/fhir/ServiceRequest?identifier=a%00b", 400, "identifier"),
    ("/fhir/ServiceRequest?identifier=a&identifier=b", 400, "identifier"),
    ("/fhir/Medication?identifier=a", 404, "Medication"),
    ("/fhir/ServiceRequest/referral-" + "9" * 400, 404, ""),
    ("/fhir/Patient/nobody", 404, "Patient.id"),
])
def test_bad_searches_and_reads(client, people, url, http_status, expression):
    """Hostile query strings get a 4xx OperationOutcome naming the parameter; a read of an unknown id
    names the element, not the id asked for (PAT-PRIVACY: a pseudonym typed elsewhere is not echoed)."""
    response = _get(client, url)
    assert response.status_code == http_status
    if expression:
        assert expression in json.dumps(response.json()["issue"])
    if http_status == 404:
        assert url.rsplit("/", 1)[-1][:20] not in json.dumps(response.json())


def test_who_may_call(client, people):
    """No token: 401 OperationOutcome; a read-scope token may not import; an operator may not refer."""
    response = client.get("/fhir/ServiceRequest")
    assert response.status_code == 401 and response.json()["resourceType"] == "OperationOutcome"
    response = client.get("/fhir/ServiceRequest", HTTP_AUTHORIZATION="Bearer nonsense")
    assert response.status_code == 401 and response.json()["issue"][0]["code"] == "login"
    body = json.dumps(service_request(effective_at("MAD").product.code))
    response = client.post("/fhir/ServiceRequest", data=body, content_type=FHIR_JSON,
                           **bearer("physician.mad", scope="read"))
    assert response.status_code == 403
    assert _post(client, body, who="operator.mad").status_code == 403
    assert not Referral.objects.exists()


def test_order_without_referral_is_exported_without_a_patient_reference(client, people):
    """ATMP-TRACE FHIR-DISP: products of an order made without a referral still export, valid: no Patient
    reference, the dispense names the recipient by the hospital's identifier."""
    order = accepted("MAD", recipient="HOSP-77")
    collection = collect(order)
    certify(completed_batch(order, collection))
    body = _valid(_get(client, f"/fhir/BiologicallyDerivedProduct/apheresis-{collection.pk}", who="qa").json())
    assert "source" not in body["collection"] and "request" not in body
    given = _valid(_get(client, f"/fhir/BiologicallyDerivedProductDispense/dispense-{order.batch.pk}",
                        who="qa").json())
    assert given["patient"]["identifier"]["value"] == "HOSP-77"


def _clinical_record(referral, people):  # type: ignore[no-untyped-def]
    """Consent, infusion, visits and a graded CRS, as rows: the services that make them belong to the
    pathway's and follow-up's parts of the app (other modules); this test needs only what they store."""
    import datetime as dt

    from django.utils import timezone

    from pocare.custody.models import Handoff, HandoffKind, HandoffOutcome
    from pocare.patients.models import AdverseEvent, Consent, ConsentDocument, Visit, VisitStatus

    order, collection = link_order(referral)
    physician = people["physician.mad"]
    now = timezone.now()
    document = ConsentDocument.objects.create(code="ICF-CART", product=referral.product, version=2, language="es",
                                              title="Consentimiento informado", body="…", content_hash="0" * 64,
                                              effective_from=now - dt.timedelta(days=30), issued_by=physician)
    Consent.objects.create(referral=referral, document=document, signed_at=now - dt.timedelta(days=20),
                           recorded_by=physician)
    infusion = Handoff.objects.create(
        order=order, collection=collection, kind=HandoffKind.INFUSION, outcome=HandoffOutcome.COMPLETED,
        site=order.treating_site, time_zone="Europe/Madrid", occurred_at=now - dt.timedelta(days=8),
        performed_by=physician, performed_by_name=physician.printed_name, expected_identifier="x",
        presented_identifier="x")
    day0 = (now - dt.timedelta(days=8)).date()
    done = Visit.objects.create(referral=referral, label="Day 7", day=7, due_on=day0 + dt.timedelta(days=7),
                                window_days=1, status=VisitStatus.DONE, done_at=now - dt.timedelta(days=1),
                                recorded_by=physician, alive=True)
    Visit.objects.create(referral=referral, label="Day 14", day=14, due_on=day0 + dt.timedelta(days=14),
                         window_days=2)
    event = AdverseEvent.objects.create(referral=referral, visit=done, kind="crs", onset_on=day0 + dt.timedelta(days=7),
                                        inputs={"temperature_c": 39.2, "vasopressors": 1}, grade=3,
                                        reasons=["Fever ≥ 38 °C", "Hypotension needing one vasopressor"],
                                        serious=True, recorded_by=physician, recorded_at=now)
    return infusion, event


def test_clinical_record_resources(client, referral, people):
    """PAT-CONSENT PAT-GRADE PAT-LTFU: consent in the version and language signed, the infusion as a
    Procedure, the CRS with its computed grade as an Observation, the follow-up schedule as a CarePlan
    of Appointments, all valid R5."""
    infusion, event = _clinical_record(referral, people)
    bundle = _valid(_get(client, f"/fhir/Patient/{referral.patient.pseudonym}/$everything").json())
    consent = _entries(bundle, "Consent")[0]
    assert consent["status"] == "active" and consent["sourceAttachment"][0]["language"] == "es"
    assert "v2" in consent["sourceAttachment"][0]["title"]
    codes = {r["code"]["coding"][0]["code"]: r for r in _entries(bundle, "Procedure")}
    assert set(codes) == {"apheresis", "infusion"} and codes["infusion"]["id"] == f"infusion-{infusion.pk}"
    adverse = _entries(bundle, "AdverseEvent")[0]
    assert adverse["seriousness"]["coding"][0]["code"] == "serious"
    grade = _entries(bundle, "Observation")[0]
    assert grade["valueInteger"] == 3 and "vasopressor" in grade["note"][0]["text"]
    assert adverse["supportingInfo"][0]["itemReference"]["reference"] == f"Observation/{grade['id']}"
    plan = _entries(bundle, "CarePlan")[0]
    assert [(a["description"], a["status"]) for a in plan["contained"]] == [("Day 7", "fulfilled"),
                                                                              ("Day 14", "proposed")]
    found = _valid(_get(client, f"/fhir/AdverseEvent?identifier={event.pk}").json())
    assert [r["id"] for r in _entries(found)] == [f"ae-{event.pk}"]
    assert _get(client, f"/fhir/Observation/ae-{event.pk}-grade").status_code == 200
    assert _get(client, f"/fhir/CarePlan/followup-{referral.pk}", who="operator.mad").status_code == 404


def test_a_search_stopped_at_its_count_states_no_total(client, referral):
    """FHIR-BDP: a search that returns ``_count`` resources while more may match says so (an
    OperationOutcome entry of search mode ``outcome``) instead of a ``total`` it does not know; a search
    that found everything states its total. Both Bundles validate."""
    from pocare.patients.services import referral_create
    from tests.custody.helpers import effective_at

    referral_create(actor=referral.referred_by, patient=referral.patient, product=effective_at("MAD").product,
                    indication="Relapsed follicular lymphoma", weight_kg="70")
    stopped = _valid(_get(client, "/fhir/ServiceRequest?_count=1").json())
    assert "total" not in stopped and len(_entries(stopped, "ServiceRequest")) == 1
    outcome = [e for e in stopped["entry"] if e["search"]["mode"] == "outcome"]
    assert outcome and "More resources may match" in outcome[0]["resource"]["issue"][0]["diagnostics"]
    whole = _valid(_get(client, "/fhir/ServiceRequest?_count=200").json())
    assert whole["total"] == len(_entries(whole)) >= 2
    assert all(e["search"]["mode"] == "match" for e in whole["entry"])
