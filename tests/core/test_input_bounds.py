"""Never a 500 from input (issue 13): every hostile value is a 4xx naming the field and what is
allowed, and nothing is stored."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from django import forms
from django.core.exceptions import ValidationError
from rest_framework import serializers

from pocare.core import bounds, fields
from pocare.custody.models import Collection
from pocare.ledger.models import Event
from pocare.manufacturing.models import DevicePush, DeviceReading
from pocare.masterfile.models import ChangeRequest
from tests.custody.helpers import accepted
from tests.manufacturing.matrix import device_batch
from tests.masterfile.helpers import effective_v1

pytestmark = pytest.mark.django_db


@pytest.fixture
def bearer(people):  # type: ignore[no-untyped-def]
    from pocare.accounts.services import token_issue

    def _bearer(username: str) -> dict[str, str]:
        _, key = token_issue(actor=None, user=people[username], name="test", reason="test")
        return {"HTTP_AUTHORIZATION": f"Bearer {key}"}

    return _bearer


def _nested(depth: int) -> object:
    value: object = 37.0
    for _ in range(depth):
        value = [value]
    return value


# (case id, how the row is spoiled, the field the answer must name, words of the answer)
HOSTILE_ROWS = [
    ("year-1-with-offset", {"time": "0001-01-01T00:00:00+05:00"}, "rows[0].time", "outside the allowed years 1900–2200"),
    ("year-9999-with-offset", {"time": "9999-12-31T23:00:00-05:00"}, "rows[0].time", "year 9999 is outside"),
    ("400-digit-number", {"value": 10**400}, "rows[0].value", "at most 30"),
    ("number-beyond-a-double", {"value": "RAW:1e400"}, "rows[0].value", "outside the range of numbers"),
    ("nan", {"value": "RAW:NaN"}, "rows[0].value", "not a number JSON allows"),
    ("nul-in-text", {"batch": "B\x00"}, "rows[0].batch", "NUL"),
    ("lone-surrogate", {"parameter": "ph\ud800"}, "rows[0].parameter", "surrogate"),
    ("nested-1000-deep", {"value": "RAW:" + "[" * 1000 + "37" + "]" * 1000}, "detail", "nested deeper than 32"),
    ("nested-40-deep", {"value": _nested(40)}, "rows[0].value", "nested deeper than 32"),
]


@pytest.mark.parametrize(("spoil", "field", "words"), [pytest.param(*c[1:], id=c[0]) for c in HOSTILE_ROWS])
def test_device_push_with_a_hostile_value_is_a_400_naming_the_field_and_stores_nothing(client, bearer, people,
                                                                                       spoil, field, words):
    """P11-10h DI-ALCOA: a device push with a time at year 1 or 9999 with an offset, a 400-digit or
    infinite number, NUL, a lone surrogate or JSON nested deeper than 32 answers 400 naming the field;
    no push, reading or ledger event is stored."""
    batch = device_batch("MAD")
    row = {"batch": batch.reference, "parameter": "ph", "time": "2026-03-01T08:00:00+01:00", "value": 7.2, **spoil}
    # json.dumps writes a lone surrogate as the escape \ud800, as a hostile client would send it;
    # "RAW:…" values go into the body as written (numbers JSON libraries will not write, deep nesting)
    body = json.dumps({"rows": [row]})
    for value in spoil.values():
        if isinstance(value, str) and value.startswith("RAW:"):
            body = body.replace(json.dumps(value), value[4:])
    headers = bearer("operator.mad")
    events, pushes = Event.objects.count(), DevicePush.objects.count()
    response = client.post("/api/device-data/", body, content_type="application/json",
                           HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()), **headers)
    assert response.status_code == 400, response.content[:300]
    answer = response.json()
    text = json.dumps(answer, ensure_ascii=False)
    assert field in text and words in text, answer
    assert (Event.objects.count(), DevicePush.objects.count(), DeviceReading.objects.count()) == (events, pushes, 0)


def test_a_json_body_over_the_size_limit_is_a_413_that_says_the_limit(client, bearer, people, settings):
    """DI-ALCOA: a JSON body larger than DATA_UPLOAD_MAX_MEMORY_SIZE answers 413 with the limit."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    body = json.dumps({"rows": [{"batch": "x" * 20_000}]})
    response = client.post("/api/device-data/", body, content_type="application/json",
                           HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()), **bearer("operator.mad"))
    assert response.status_code == 413
    assert "at most 10,000 bytes" in response.json()["detail"]


def test_logger_readings_at_year_1_with_an_offset_are_refused_by_the_api_and_in_a_csv(client, bearer, people):
    """DI-ALCOA: a logger timestamp at year 1 with +05:00 (which once overflowed converting to UTC)
    is refused naming the row and the allowed years, over the API and in an uploaded CSV; nothing stored."""
    from pocare.custody import services
    from pocare.custody.models import TemperatureReading
    from tests.custody.helpers import user

    o = accepted("MAD")
    shipment = services.shipment_dispatch(actor=user("operator.mad"), order=o, leg="apheresis", logger_id="TL-1",
                                          reason="Courier left")
    rows = [{"timestamp": "0001-01-01T00:00:00+05:00", "temperature_c": 4}]
    response = client.post(f"/api/custody/shipments/{shipment.pk}/temperatures/", {"rows": rows},
                           content_type="application/json", **bearer("physician.mad"))
    assert response.status_code == 400 and "rows[0].timestamp" in response.content.decode()
    with pytest.raises(ValidationError, match=r"row 1: timestamp .* in the years 1900–2200"):
        services.temperatures_upload(actor=user("physician.mad"), shipment=shipment, source="csv",
                                     csv_text="timestamp,temperature_c\n0001-01-01T00:00:00+05:00,4\n")
    assert TemperatureReading.objects.count() == 0


FORM_CASES = [
    ("year-1", {"collection_started_at": "0001-01-01T00:00"}, "collection_started_at", "year 1 is outside"),
    ("year-9999", {"collection_ended_at": "9999-12-31T23:59"}, "collection_ended_at", "year 9999 is outside"),
    ("nul", {"reason": "Apheresis\x00"}, "reason", "NUL"),
    ("400-digits", {"volume_ml": "9" * 400}, "volume_ml", "at most 30"),
]


@pytest.mark.parametrize(("spoil", "field", "words"), [pytest.param(*c[1:], id=c[0]) for c in FORM_CASES])
def test_a_form_with_a_hostile_value_is_a_400_page_naming_the_field_and_stores_nothing(client, login, people,
                                                                                      spoil, field, words):
    """DI-ALCOA ATMP-SM: the collection form (datetime-local fields at the site's wall-clock time)
    refuses a year outside 1900–2200, NUL and a 400-digit number with a 400 page naming the field."""
    o = accepted("MAD", "LIS")
    login("physician.lis")
    data = {"collection_started_at": "2026-01-10T08:00", "collection_ended_at": "2026-01-10T12:30",
            "volume_ml": "240", "donor_tests": "HIV: negative", "autologous": "on", "reason": "Apheresis", **spoil}
    events = Event.objects.count()
    response = client.post(f"/custody/orders/{o.pk}/collections/", data)
    assert response.status_code == 400
    page = response.content.decode()
    assert field in page and words in page, page[:3000]
    assert Collection.objects.count() == 0 and Event.objects.count() == events


def test_the_bounded_date_fields_refuse_years_outside_the_window_before_any_zone_conversion():
    """DI-ALCOA: the shared form and API fields refuse year 1 / 9999 with an offset (which would
    overflow converting to UTC) naming the allowed years; ModelSerializer builds them by default."""
    from django.db import models

    for value in ("0001-01-01T00:00:00+05:00", "9999-12-31T23:59:00-05:00", "1899-12-31T23:00:00Z"):
        with pytest.raises(ValidationError, match="outside the allowed years 1900–2200"):
            fields.DateTimeField().clean(value)
        with pytest.raises(serializers.ValidationError, match="outside the allowed years 1900–2200"):
            fields.ApiDateTimeField().run_validation(value)
    with pytest.raises(ValidationError, match="outside the allowed years"):
        fields.DateField().clean("0001-01-01")
    assert fields.DateTimeField().clean("2026-03-01T08:00:00+01:00").year == 2026
    mapping = serializers.ModelSerializer.serializer_field_mapping
    assert mapping[models.DateTimeField] is fields.ApiDateTimeField
    assert mapping[models.DateField] is fields.ApiDateField
    assert isinstance(fields.DateTimeField(), forms.DateTimeField)


def test_a_400_kb_master_file_of_nested_brackets_is_refused_over_the_api_in_under_a_second(client, bearer, people):
    """POC-3: a 400 KB master-file document of nested brackets (once 105 s of CPU, then a 500) is
    refused with its line in under a second; so is an alias bomb. Nothing is raised."""
    effective_v1()
    payload = {"product": "CD19-CART", "title": "Bomb", "description": "x", "severity": 3, "probability": 2,
               "detectability": 2, "sites": ["MAD"], "comparability_evidence": "x", "reason": "x"}
    bombs = {"product: " + "[" * 200_000 + "]" * 199_990: "nested deeper than 24 levels",
             "a: &a [x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a]\nc: [*b,*b,*b,*b,*b,*b,*b,*b]\n":
                 "YAML aliases (*a) are not allowed"}
    for document, words in bombs.items():
        started = time.perf_counter()
        response = client.post("/api/masterfile/changes/", {**payload, "document": document},
                               content_type="application/json", **bearer("qa2"))
        elapsed = time.perf_counter() - started
        assert response.status_code == 400 and words in response.content.decode()
        assert elapsed < 1.0, elapsed
    assert ChangeRequest.objects.count() == 0


def test_json_bounds_name_the_place_of_the_value():
    """DI-ALCOA: the JSON reader names the path of a refused value and keeps good JSON as it is."""
    assert bounds.loads_json('{"a": [1, 2.5, "x"]}') == {"a": [1, 2.5, "x"]}
    for text, where in (('{"a": [1, NaN]}', "a[1]"), ('{"a": {"b": "\\u0000"}}', "a.b"),
                        ('{"a": [' + "9" * 31 + "]}", "a[0]")):
        with pytest.raises(bounds.InputRefused) as caught:
            bounds.loads_json(text)
        assert caught.value.field == where


@pytest.mark.parametrize("since", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00"])
def test_a_device_data_query_at_year_1_or_9999_is_a_400_naming_since(client, login, people, since):
    """DI-ALCOA: the readings API's ``since`` filter refuses a moment outside the years before it is
    compared in UTC (it overflowed: a 500 the hostile schemathesis hooks found)."""
    from tests.manufacturing.matrix import device_batch

    batch = device_batch("MAD")
    login("operator.mad")
    response = client.get(f"/api/batches/{batch.reference}/device-data/", {"since": since})
    assert response.status_code == 400, response.content
    assert "since" in response.json() and "1900" in str(response.json()["since"])


def test_a_date_field_renders_an_iso_date_the_browser_picker_can_show():
    """DI-ALCOA: ``<input type="date">`` shows only YYYY-MM-DD; every date field of the house renders
    its value so, whatever the locale's date format."""
    import datetime as dt

    from django import forms

    from pocare.core.fields import DateField

    class Form(forms.Form):
        on = DateField()

    html = str(Form(initial={"on": dt.date(2025, 12, 5)})["on"])
    assert 'type="date"' in html and 'value="2025-12-05"' in html
