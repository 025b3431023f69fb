"""Derived step parameters (issue 15, "one fact, one value"): a value another record already
states is read from that record, shown read-only with where it came from, recorded with the step,
and never typed. Typed values refused (storing nothing) on one batch for their module are in
test_derived_refusals.py."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from pocare.custody.models import Handoff, HandoffKind, HandoffOutcome, Shipment
from pocare.custody.services import temperature_correct
from pocare.ledger.models import Event
from pocare.manufacturing import derived, services
from pocare.manufacturing.events import ManufacturingEvent
from pocare.manufacturing.models import StepValue
from pocare.masterfile import schema
from tests.manufacturing import helpers as h

pytestmark = pytest.mark.django_db


@pytest.fixture
def batch():  # type: ignore[no-untyped-def]
    return h.started_batch("MAD")


def _receipt(batch):  # type: ignore[no-untyped-def]
    return Handoff.objects.get(order=batch.order, kind=HandoffKind.RECEIPT_AT_SITE, outcome=HandoffOutcome.COMPLETED)


def _values(batch, step_id: str) -> dict[str, object]:  # type: ignore[no-untyped-def]
    return dict(StepValue.objects.filter(step__batch=batch, step__step_id=step_id).values_list("parameter_id", "value"))


def test_the_receipt_values_are_read_from_the_custody_order_the_scans_and_the_logger(batch):
    """ATMP-TRACE DI-ALCOA: transit time = receipt hand-off − end of collection; DIN/COI match = the
    receipt and start scans of the collection's DIN; arrival temperature = the logger's reading at
    receipt. Each is recorded with the step, with its source in the step's ledger event."""
    outcome = h.do_step(batch)
    values = _values(batch, "receipt-identity")
    hours = (_receipt(batch).occurred_at - batch.collection.collection_ended_at).total_seconds() / 3600
    assert values["transit-time"] == round(hours, 1) and values["transit-time"] > 0
    assert values["din-matches"] is True
    assert values["shipper-temperature"] == 4.5  # the one reading the helper's logger uploaded
    event = Event.objects.get(event_type=ManufacturingEvent.STEP_RECORDED, object_id=str(outcome.step.pk))
    assert set(event.new["derived"]) == {"transit-time", "din-matches", "shipper-temperature"}
    assert batch.order.coi in event.new["derived"]["din-matches"]
    assert "TL-TEST" in event.new["derived"]["shipper-temperature"]


def test_the_arrival_temperature_follows_a_corrected_logger_reading(batch):
    """CH4-9: a logger reading corrected in custody is the temperature the receipt step reads."""
    reading = Shipment.objects.get(order=batch.order).readings.get()
    temperature_correct(actor=h.user("operator.mad"), reading=reading, celsius="9.5", reason="Logger misread",
                        credentials=h.creds("operator.mad"))
    step = services.step_definition(batch, "receipt-identity")
    found = derived.derive(batch, next(p for p in step["parameters"] if p["id"] == "shipper-temperature"),
                           dt.datetime.now(dt.UTC))
    assert found.value == 9.5 and "(corrected)" in found.source
    # Out of the 2–8 °C range and critical: the step stops until a deviation is described.
    with pytest.raises(ValidationError) as refused:
        h.do_step(batch)
    assert "9.5" in " ".join(refused.value.message_dict["values.shipper-temperature"])
    h.do_step(batch, deviation="Shipper arrived warm; QA informed")
    assert _values(batch, "receipt-identity")["shipper-temperature"] == 9.5


def test_the_culture_day_of_harvest_is_counted_from_the_activation(batch):
    """ATMP-REL: the culture day of harvest is the whole days between the activation and the harvest
    as recorded, not a number typed beside them."""
    while services.next_step(batch)[1]["id"] != "harvest":
        h.do_step(batch)
    h.do_step(batch)
    steps = dict(batch.steps.values_list("step_id", "performed_at"))
    hours = (steps["harvest"] - steps["activation"]).total_seconds() / 3600
    assert _values(batch, "harvest")["harvest-day"] == round(hours / 24) == 9  # the middle of 180–252 h


def test_the_api_refuses_a_derived_value_with_a_400_naming_it(batch, client):
    from pocare.accounts.services import token_issue

    _, key = token_issue(actor=None, user=h.user("operator.mad"), name="mes", reason="test")
    url = f"/api/batches/{batch.reference}/steps/receipt-identity/record/"
    refused = client.post(url, {"values": {"shipper-temperature": 4}, "username": "operator.mad",
                                "password": h.PASSWORD}, content_type="application/json",
                          HTTP_AUTHORIZATION=f"Bearer {key}")
    assert refused.status_code == 400 and "shipper-temperature" in refused.content.decode()
    assert not StepValue.objects.filter(step__batch=batch).exists()


def test_the_step_form_shows_derived_values_read_only_with_their_source_and_ignores_a_posted_one(
        batch, client, login):
    login("operator.mad")
    url = f"/manufacturing/batches/{batch.reference}/steps/receipt-identity/"
    page = client.get(url).content.decode()
    assert "Read from the record" in page and 'id="derived-transit-time"' in page
    assert f"Custody order {batch.order.coi}" in page and "Shipment logger TL-TEST" in page
    assert 'name="v_transit-time"' not in page and 'name="v_shipper-temperature"' not in page
    posted = client.post(url, {"action": "record", "v_shipper-temperature": "99", "username": "operator.mad",
                               "password": h.PASSWORD})
    assert posted.status_code in (302, 303)
    assert _values(batch, "receipt-identity")["shipper-temperature"] == 4.5
    # The batch page offers no correction of a value read from the record, only of typed ones.
    batch_page = client.get(f"/manufacturing/batches/{batch.reference}/").content.decode()
    receipt = batch_page[batch_page.index('id="step-receipt-identity"'):batch_page.index('id="step-apheresis-count"')]
    assert receipt.count(">from the record</small>") == 3 and "value_correct" not in receipt and "/correct/" not in receipt


def test_a_corrected_derived_value_is_refused():
    """The record it is read from is what gets corrected."""
    b = h.started_batch("MAD")
    outcome = h.do_step(b)
    value = StepValue.objects.get(step=outcome.step, parameter_id="transit-time")
    with pytest.raises(ValidationError) as refused:
        services.value_correct(actor=h.user("operator.mad"), value=value, new_value=2, reason="x",
                               credentials=h.creds("operator.mad"))
    assert "correct that record" in " ".join(refused.value.message_dict["new_value"])


# --- the schema --------------------------------------------------------------------------------------


def _doc(replace: str, by: str) -> str:
    from pathlib import Path

    import pocare.demo

    text = (Path(pocare.demo.__file__).parent / "documents" / "cd19-cart-v1.yaml").read_text()
    assert replace in text
    return text.replace(replace, by)


TRANSIT = "type: derived, source: collection_to_receipt, unit: h,"


@pytest.mark.parametrize(("by", "path", "words"), [
    ("type: derived, unit: h,", "parameters[2].source", "collection_to_receipt"),
    ("type: number, source: collection_to_receipt, unit: h,", "parameters[2].source", "only to parameters of type derived"),
    ("type: derived, source: collection_to_receipt, unit: min,", "parameters[2].unit", "'h'"),
    ("type: derived, source: weather, unit: h,", "parameters[2].source", "culture_day"),
    ("type: derived, source: collection_to_receipt, anchor: activation, unit: h,", "parameters[2].anchor",
     "only to the source culture_day"),
])
def test_the_schema_names_the_field_of_a_wrong_derived_parameter(by: str, path: str, words: str) -> None:
    with pytest.raises(schema.DocumentError) as refused:
        schema.parse_document(_doc(TRANSIT, by))
    problems = [str(p) for p in refused.value.problems if p.path.endswith(path)]
    assert problems and words in " ".join(problems), refused.value.problems


def test_a_culture_day_anchor_must_be_an_earlier_step() -> None:
    with pytest.raises(schema.DocumentError) as refused:
        schema.parse_document(_doc("anchor: activation, unit: d", "anchor: formulation, unit: d"))
    assert any(p.path.endswith("parameters[0].anchor") and "not an earlier step" in p.message
               for p in refused.value.problems)


def test_a_changed_source_shows_in_the_diff() -> None:
    from pocare.masterfile.diff import diff_content

    old = schema.parse_document(_doc(TRANSIT, TRANSIT)).model_dump()
    new = schema.parse_document(_doc(TRANSIT, "type: number, unit: h,")).model_dump()
    changes = [(c.field, c.old, c.new) for s in diff_content(old, new).steps for c in s.changes]
    assert any(f == "parameter transit-time: source" for f, _, _ in changes), changes
