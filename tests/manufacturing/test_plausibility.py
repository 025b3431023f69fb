"""Plausible values only: physical bounds apart from the specification, text that is text, device
timestamps inside the batch's window, and device readings corrected beside the original."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from pocare.accounts.services import token_issue
from pocare.ledger.models import Event, Signature
from pocare.manufacturing import devices, evaluation, services
from pocare.manufacturing.events import ManufacturingEvent
from pocare.manufacturing.models import Batch, DeviceReading, DeviceReadingCorrection, QcResult, StepValue
from pocare.masterfile import plausibility
from pocare.quality.models import Deviation
from tests.manufacturing import helpers as h
from tests.manufacturing.matrix import device_batch

pytestmark = pytest.mark.django_db


@pytest.fixture
def batch():  # type: ignore[no-untyped-def]
    return h.started_batch("MAD")


def _qc(batch: Batch, attribute_id: str, value: object, **kw):  # type: ignore[no-untyped-def]
    qc = h.user("qc.mad")
    return services.qc_result_record(actor=qc, batch=batch, attribute_id=attribute_id, value=value,
                                     credentials=h.creds(qc), **kw)


# --- physical bounds: QC results and step values --------------------------------------------------


def test_negative_endotoxin_is_refused_as_impossible_not_accepted_as_conforming(batch):
    """DI-ALCOA: endotoxin −1 EU/mL meets "≤ 0.5" but cannot exist: refused, naming the field, the
    value and the physical range; no result, no deviation."""
    with pytest.raises(ValidationError) as refused:
        _qc(batch, "endotoxin", "-1")
    message = " ".join(refused.value.message_dict["value"])
    assert "-1 EU/mL" in message and "≥ 0 EU/mL" in message
    assert not QcResult.objects.filter(batch=batch).exists() and not Deviation.objects.filter(batch=batch).exists()


def test_viability_above_100_percent_is_refused_but_a_low_viability_goes_the_oos_route(batch):
    """DI-ALCOA ATMP-OOS: 101 % is refused (0 to 100 %); 55 % is possible and out of specification,
    so it is recorded and opens a laboratory investigation as before."""
    with pytest.raises(ValidationError, match=r"101 % is not a possible value; the physical range is 0 to 100 %"):
        _qc(batch, "viability", 101)
    assert not QcResult.objects.filter(batch=batch).exists()
    low = _qc(batch, "viability", "55")
    assert not low.conforms and low.deviation is not None and low.deviation.kind == "laboratory"


def test_a_qc_text_result_must_be_text_without_control_characters(batch):
    """DI-ALCOA: a qualitative result is a string: not a nested list, not a control character."""
    for bad in ([[["no growth"]]], "no\x07growth"):
        with pytest.raises(ValidationError) as refused:
            _qc(batch, "sterility", bad)
        assert "value" in refused.value.message_dict
    assert not QcResult.objects.filter(batch=batch).exists()


def test_a_qc_result_cannot_be_read_before_the_batch_started(batch):
    """DI-ALCOA: a result read before the batch (its sample) existed is refused, naming tested_at."""
    with pytest.raises(ValidationError) as refused:
        _qc(batch, "viability", "95", tested_at=batch.started_at - dt.timedelta(days=400))
    assert "tested_at" in refused.value.message_dict
    assert not QcResult.objects.filter(batch=batch).exists()


def test_a_qc_result_waits_for_its_sample_and_is_not_read_before_the_sample_was_taken(batch):
    """DI-ALCOA: mycoplasma is sampled at step ipc-sterility-sampling (the master file's
    sample_step): no result before that step is recorded, and none read before it was performed."""
    with pytest.raises(ValidationError, match="is taken at step 'ipc-sterility-sampling', which is not recorded"):
        _qc(batch, "mycoplasma", "not detected")
    while services.next_step(batch)[1]["id"] != "expansion-harvest-decision":
        h.do_step(batch)
    h.do_step(batch)
    h.do_step(batch)  # ipc-sterility-sampling
    sampled = batch.steps.get(step_id="ipc-sterility-sampling").performed_at
    with pytest.raises(ValidationError) as refused:
        _qc(batch, "mycoplasma", "not detected", tested_at=sampled - dt.timedelta(hours=2))
    assert "is before the window" in " ".join(refused.value.message_dict["tested_at"])
    assert not QcResult.objects.filter(batch=batch).exists()
    assert _qc(batch, "mycoplasma", "not detected").conforms


def test_a_negative_cell_count_is_refused_at_the_step_and_nothing_is_stored(batch):
    """DI-ALCOA: a step value outside the physical bounds of its unit (cells ≥ 0) is refused before
    the step is recorded — it is not an out-of-range value raising a deviation."""
    h.do_step(batch)  # the receipt: its values are read from the custody records
    step = services.step_definition(batch, "apheresis-count")
    actor = h.performer_for(batch, step)
    stored = StepValue.objects.count()
    with pytest.raises(ValidationError) as refused:
        services.step_record(actor=actor, batch=batch, step_id="apheresis-count",
                             values={**h.good_values(step), "tnc": -2}, credentials=h.creds(actor))
    message = " ".join(refused.value.message_dict["values.tnc"])
    assert "-2" in message and "≥ 0" in message
    assert StepValue.objects.count() == stored and not Deviation.objects.exists()


def test_a_text_parameter_refuses_json_structures_numbers_and_control_characters():
    """DI-ALCOA: a text parameter takes a string — `[[["x"]]]` was stored as its repr before."""
    spec = {"id": "vector-lot", "name": "Vector lot", "type": "text"}
    for bad in ([[["x"]]], {"lot": "x"}, 12345, True, "LV\x00-1", "LV\x1b[31m"):
        with pytest.raises(evaluation.ValueRefused):
            evaluation.evaluate_parameter(spec, bad)
    assert evaluation.evaluate_parameter(spec, "  LV-2026-117 ").value == "LV-2026-117"


def test_a_numeric_parameter_refuses_non_finite_numbers():
    """DI-ALCOA: NaN and infinity are not measurements."""
    spec = {"id": "purity", "name": "Purity", "type": "number", "unit": "%", "min": 80, "max": 100}
    for bad in (float("nan"), float("inf"), "-inf", "NaN"):
        with pytest.raises(evaluation.ValueRefused):
            evaluation.evaluate_parameter(spec, bad)


def test_physical_bounds_follow_the_unit_unless_the_master_file_states_them():
    """POC-3 DI-ALCOA: % is 0–100, °C absolute zero to 200, counts and concentrations ≥ 0; a stated
    ``physical`` wins (the potency surviving fraction may exceed 100 %); no unit, no default."""
    assert plausibility.physical_bounds({"unit": "%"}) == (0.0, 100.0)
    assert plausibility.physical_bounds({"unit": "°C"}) == (-273.15, 200.0)
    assert plausibility.physical_bounds({"unit": "EU/mL"}) == (0.0, None)
    assert plausibility.physical_bounds({"unit": "%", "physical": {"min": 0, "max": None}}) == (0.0, None)
    assert plausibility.physical_bounds({"physical": {"min": 0, "max": 14}}) == (0.0, 14.0)
    assert plausibility.physical_bounds({}) == (None, None)


# --- device data: window, bounds, one value per moment --------------------------------------------


@pytest.fixture
def device(people):  # type: ignore[no-untyped-def]
    return device_batch("MAD")


@pytest.fixture
def bearer(people):  # type: ignore[no-untyped-def]
    _, key = token_issue(actor=None, user=people["operator.mad"], name="prodigy", reason="test")
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def _push(client, headers, rows):  # type: ignore[no-untyped-def]
    return client.post("/api/device-data/", json.dumps({"rows": rows}), content_type="application/json",
                       HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()), **headers)


def _row(batch: Batch, time: str, value: float, parameter: str = "culture-temperature") -> dict:
    return {"batch": batch.reference, "parameter": parameter, "time": time, "value": value}


def test_device_readings_dated_1900_or_2999_are_refused_naming_the_window(client, bearer, device):
    """P11-10h DI-ALCOA: a reading dated before the batch's start less 1 h, or after now plus 5 min,
    is refused with the row, the field, the time and the window; nothing is stored. Years no reading
    can have (2999, year 1 with an offset) are refused earlier, by the input bounds, naming the field."""
    response = _push(client, bearer, [_row(device, "1900-01-01T00:00:00Z", 37.0),
                                      _row(device, "2199-01-01T00:00:00Z", 37.0)])
    assert response.status_code == 400, response.content
    problems = response.json()["rows"]
    assert [(p["row"], p["field"]) for p in problems] == [(1, "time"), (2, "time")]
    assert "1900-01-01T00:00:00Z is before the window" in problems[0]["problem"]
    assert "2199-01-01T00:00:00Z is after the window" in problems[1]["problem"]
    earliest = (device.started_at - plausibility.DEVICE_BEFORE_BATCH_START).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert f"between {earliest} and" in problems[0]["problem"]
    for impossible in ("2999-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00"):
        refused = _push(client, bearer, [_row(device, impossible, 37.0)])
        assert refused.status_code == 400, refused.content
        assert "rows[0].time" in refused.content.decode() and "1900" in refused.content.decode()
    assert not DeviceReading.objects.filter(batch=device).exists()


def test_a_device_value_outside_its_physical_bounds_is_refused(client, bearer, device):
    """P11-10h DI-ALCOA: pH 15 (the master file says 0–14) and −5 % dissolved oxygen are refused."""
    at = (timezone.now() - dt.timedelta(minutes=5)).isoformat()
    response = _push(client, bearer, [_row(device, at, 15, "ph"), _row(device, at, -5, "dissolved-oxygen")])
    assert response.status_code == 400
    problems = response.json()["rows"]
    assert [(p["row"], p["field"]) for p in problems] == [(1, "value"), (2, "value")]
    assert "0 to 14" in problems[0]["problem"] and "0 to 100 %" in problems[1]["problem"]
    assert not DeviceReading.objects.exists()


def test_a_device_reading_that_contradicts_a_stored_one_at_the_same_moment_is_refused(client, bearer, device):
    """DI-ALCOA: one value per parameter and moment: a second push at the same instant is refused,
    saying whether it contradicts the stored value or repeats it."""
    at = (timezone.now() - dt.timedelta(minutes=5)).isoformat()
    assert _push(client, bearer, [_row(device, at, 37.0)]).status_code == 201
    contradicting = _push(client, bearer, [_row(device, at, 39.5)])
    assert contradicting.status_code == 400
    assert "contradicts the value 37" in contradicting.json()["rows"][0]["problem"]
    repeated = _push(client, bearer, [_row(device, at, 37.0)])
    assert repeated.status_code == 400 and "same value is already stored" in repeated.json()["rows"][0]["problem"]
    assert DeviceReading.objects.filter(batch=device).count() == 1


# --- correcting a device reading ------------------------------------------------------------------


def _stored_reading(device: Batch, value: float = 37.0) -> DeviceReading:
    at = (timezone.now() - dt.timedelta(minutes=5)).isoformat()
    devices.device_data_push(actor=h.user("operator.mad"), idempotency_key=str(uuid.uuid4()),
                             rows=[_row(device, at, value)])
    return DeviceReading.objects.get(batch=device)


def test_a_device_reading_is_corrected_beside_the_original_signed_with_its_reason(device):
    """CH4-9 P11-10e DI-ALCOA: the correction is a new row with the reason, a ledger event and a
    signature; the reading keeps its value; the chart shows the corrected value."""
    reading = _stored_reading(device, 3.7)
    operator = h.user("operator.mad")
    correction = devices.reading_correct(actor=operator, reading=reading, value="37.0",
                                         reason="Decimal point lost in the device export", credentials=h.creds(operator))
    reading.refresh_from_db()
    assert reading.value == 3.7 and correction.value == 37.0 and correction.reading == reading
    event = Event.objects.get(event_type=ManufacturingEvent.READING_CORRECTED)
    assert event.reason == "Decimal point lost in the device export"
    assert Signature.objects.filter(record_type="manufacturing.DeviceReadingCorrection",
                                    record_id=str(correction.pk), meaning="authored").exists()
    assert [v for _, v, _ in devices.series_of(device, ["culture-temperature"])["culture-temperature"]] == [37.0]
    with pytest.raises(ValidationError, match="already been corrected"):
        devices.reading_correct(actor=operator, reading=reading, value=None, reason="again",
                                credentials=h.creds(operator))


def test_a_device_reading_marked_invalid_leaves_the_chart_and_needs_a_possible_value_otherwise(device):
    """CH4-9 DI-ALCOA: a correction to an impossible value is refused; marking invalid keeps the
    reading and leaves it out of the chart."""
    reading = _stored_reading(device)
    operator = h.user("operator.mad")
    with pytest.raises(ValidationError, match="physical range"):
        devices.reading_correct(actor=operator, reading=reading, value=-400, reason="x", credentials=h.creds(operator))
    with pytest.raises(ValidationError, match="reason"):
        devices.reading_correct(actor=operator, reading=reading, value=None, reason=" ", credentials=h.creds(operator))
    assert not DeviceReadingCorrection.objects.exists()
    devices.reading_correct(actor=operator, reading=reading, value=None, reason="Probe unplugged",
                            credentials=h.creds(operator))
    assert DeviceReading.objects.filter(pk=reading.pk, value=37.0).exists()
    assert devices.series_of(device, ["culture-temperature"])["culture-temperature"] == []


def test_the_readings_page_shows_the_original_and_its_correction_made_through_the_form(client, login, device):
    """CH4-9 P11-10g: an operator corrects a reading on its page; the readings page shows the struck
    original, the correction and the reason; an inspector sees them but gets no form."""
    reading = _stored_reading(device, 3.7)
    login("operator.mad")
    url = f"/manufacturing/readings/{reading.pk}/correct/"
    assert client.get(url).status_code == 200
    refused = client.post(url, {"value": "", "reason": "x", "password": h.PASSWORD, "username": "operator.mad"})
    assert refused.status_code == 400 and not DeviceReadingCorrection.objects.exists()
    done = client.post(url, {"value": "37", "reason": "Decimal point lost", "password": h.PASSWORD,
                             "username": "operator.mad"})
    assert done.status_code == 302, done.content.decode()[:2000]
    page = client.get(f"/manufacturing/batches/{device.reference}/device/readings/").content.decode()
    assert "<s>3.7</s>" in page and "<strong>37.0</strong>" in page and "Decimal point lost" in page
    login("inspector")
    page = client.get(f"/manufacturing/batches/{device.reference}/device/readings/").content.decode()
    assert "Decimal point lost" in page and "/correct/" not in page
