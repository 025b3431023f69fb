"""Logger readings: inside the shipment's time window, physically possible, one temperature per
moment, and corrected beside the original."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from pocare.custody import selectors, services
from pocare.custody.events import CustodyEvent
from pocare.custody.models import TemperatureReading, TemperatureReadingCorrection, TemperatureUpload
from pocare.ledger.models import Event, Signature
from pocare.ledger.signing import SigningCredentials
from pocare.masterfile import plausibility
from tests.conftest import PASSWORD
from tests.custody.helpers import accepted, collect, user

pytestmark = pytest.mark.django_db


def _shipment():  # type: ignore[no-untyped-def]
    o = accepted()
    collect(o)
    return services.shipment_dispatch(actor=user("physician.mad"), order=o, leg="apheresis", logger_id="TL-7",
                                      reason="Courier left")


def _ago(minutes: float) -> str:
    return (timezone.now() - dt.timedelta(minutes=minutes)).isoformat()


def _upload(shipment, rows):  # type: ignore[no-untyped-def]
    return services.temperatures_upload(actor=user("physician.mad"), shipment=shipment, source="api",
                                        rows=[{"timestamp": t, "temperature_c": c} for t, c in rows])


def _messages(exc: pytest.ExceptionInfo[ValidationError]) -> str:
    return " ".join(exc.value.message_dict["rows"])


def test_logger_readings_dated_1900_or_2999_are_refused_naming_the_window(people):
    """DI-ALCOA ATMP-TRACE: a reading before the dispatch less 12 h, or after now plus 5 min, is
    refused with its row, the time and the window; nothing is stored."""
    s = _shipment()
    with pytest.raises(ValidationError) as refused:
        _upload(s, [("1900-01-01T00:00:00Z", 4.0), ("2999-01-01T00:00:00Z", 4.0), (_ago(10), 4.0),
                    ("0001-01-01T00:00:00+01:00", 4.0)])
    text = _messages(refused)
    earliest = (s.dispatched_at - plausibility.LOGGER_BEFORE_DISPATCH).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert "row 1: timestamp 1900-01-01T00:00:00Z is before the window" in text and f"between {earliest}" in text
    assert "row 2: timestamp '2999-01-01T00:00:00Z' is not an ISO 8601 time" in text and "1900–2200" in text
    assert "row 4:" in text and "row 3:" not in text
    with pytest.raises(ValidationError) as late:
        _upload(s, [("2199-01-01T00:00:00Z", 4.0)])
    assert "row 1: timestamp 2199-01-01T00:00:00Z is after the window" in _messages(late)
    assert not TemperatureUpload.objects.exists() and not TemperatureReading.objects.exists()


def test_a_temperature_below_absolute_zero_is_refused(people):
    """DI-ALCOA: −300 °C cannot be logged; the message gives the physical range."""
    s = _shipment()
    with pytest.raises(ValidationError) as refused:
        _upload(s, [(_ago(10), -300)])
    assert "-273.15 to 200 °C" in _messages(refused)
    assert not TemperatureReading.objects.exists()


def test_two_logger_readings_at_one_moment_with_different_temperatures_are_refused(people):
    """DI-ALCOA: one temperature per moment — within an upload, and against what is stored; the
    refusal names the row, the time and both values."""
    s = _shipment()
    at = _ago(30)
    with pytest.raises(ValidationError) as refused:
        _upload(s, [(at, 4.0), (at, 9.5)])
    assert "row 2:" in _messages(refused) and "9.50 °C contradicts 4.00 °C earlier in this upload" in _messages(refused)
    assert not TemperatureReading.objects.exists()
    _upload(s, [(at, 4.0)])
    with pytest.raises(ValidationError) as refused:
        _upload(s, [(_ago(20), 5.0), (at, 6.0)])
    assert "6.00 °C contradicts 4.00 °C already stored" in _messages(refused)
    assert TemperatureReading.objects.count() == 1


def test_an_identical_repeat_of_a_logger_reading_is_stored_once(people):
    """DI-ALCOA: a logger read out twice repeats its readings: the repeat is skipped (counted on the
    upload's ledger event); a repeat with nothing new is refused as storing nothing."""
    s = _shipment()
    first, second = _ago(30), _ago(20)
    _upload(s, [(first, 4.0)])
    upload = _upload(s, [(first, 4.0), (second, 4.5), (second, 4.5)])
    assert upload.readings == 1 and TemperatureReading.objects.filter(shipment=s).count() == 2
    event = Event.objects.filter(event_type=CustodyEvent.TEMPERATURES_UPLOADED).order_by("-id").first()
    assert event.new["repeats_skipped"] == 2
    with pytest.raises(ValidationError, match="already stored for this shipment; nothing new"):
        _upload(s, [(first, 4.0)])


def test_a_logger_reading_is_corrected_beside_the_original_and_the_chart_uses_the_correction(people):
    """CH4-9 P11-10e: the correction (or the mark "invalid") is a new row with the reason, a ledger
    event and a signature; the reading keeps its value; once per reading."""
    s = _shipment()
    _upload(s, [(_ago(30), 4.0), (_ago(20), 45.0)])
    wrong = TemperatureReading.objects.get(shipment=s, celsius=Decimal("45.00"))
    who = user("physician.mad")
    creds = SigningCredentials(username=who.username, password=PASSWORD)
    with pytest.raises(ValidationError, match="physical range"):
        services.temperature_correct(actor=who, reading=wrong, celsius="-500", reason="x", credentials=creds)
    correction = services.temperature_correct(actor=who, reading=wrong, celsius=None,
                                              reason="Logger lay on the radiator before packing", credentials=creds)
    wrong.refresh_from_db()
    assert wrong.celsius == Decimal("45.00") and correction.celsius is None
    assert Event.objects.filter(event_type=CustodyEvent.TEMPERATURE_CORRECTED).count() == 1
    assert Signature.objects.filter(record_type="custody.TemperatureReadingCorrection", meaning="authored").exists()
    view = selectors.shipments_of(s.order)[0]
    assert view.readings == 2 and view.corrections == 1
    with pytest.raises(ValidationError, match="already been corrected"):
        services.temperature_correct(actor=who, reading=wrong, celsius="5", reason="again", credentials=creds)
    assert TemperatureReadingCorrection.objects.count() == 1


def test_the_logger_readings_page_shows_original_and_correction_made_through_the_form(client, login, people):
    """CH4-9 P11-10g: the correction form records beside the original; the readings page shows both."""
    s = _shipment()
    _upload(s, [(_ago(30), 4.0), (_ago(20), 45.0)])
    wrong = TemperatureReading.objects.get(shipment=s, celsius=Decimal("45.00"))
    login("physician.mad")
    order_page = client.get(f"/custody/orders/{s.order_id}/").content.decode()
    assert f"/custody/shipments/{s.pk}/readings/" in order_page
    url = f"/custody/readings/{wrong.pk}/correct/"
    both = client.post(url, {"value": "4.5", "invalid": "on", "reason": "x", "password": PASSWORD,
                             "username": "physician.mad"})
    assert both.status_code == 400 and not TemperatureReadingCorrection.objects.exists()
    done = client.post(url, {"value": "4.5", "reason": "Transcribed from the paper chart", "password": PASSWORD,
                             "username": "physician.mad"})
    assert done.status_code == 302
    page = client.get(f"/custody/shipments/{s.pk}/readings/").content.decode()
    assert "<s>45.00 °C</s>" in page and "<strong>4.50 °C</strong>" in page and "Transcribed from the paper" in page
