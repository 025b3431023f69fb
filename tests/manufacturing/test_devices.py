"""Device data, alarms and live parameter charts of the batch record."""

from __future__ import annotations

import datetime as dt
import json
import uuid
import zoneinfo

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from pocare.accounts.services import token_issue
from pocare.core import charts as core_charts
from pocare.ledger.models import Event
from pocare.manufacturing import charts, devices
from pocare.manufacturing.events import ManufacturingEvent
from pocare.manufacturing.models import Alarm, Batch, DevicePush, DeviceReading
from pocare.quality.models import Deviation
from tests.manufacturing.matrix import device_batch

pytestmark = pytest.mark.django_db

PUSH_URL = "/api/device-data/"


@pytest.fixture
def batch(people) -> Batch:
    return device_batch("MAD")


@pytest.fixture
def bearer(people):
    def _bearer(username: str) -> dict[str, str]:
        _, key = token_issue(actor=None, user=people[username], name=f"device of {username}", reason="test")
        return {"HTTP_AUTHORIZATION": f"Bearer {key}"}

    return _bearer


def _at(minutes_ago: float) -> str:
    return (timezone.now() - dt.timedelta(minutes=minutes_ago)).isoformat()


def _rows(batch: Batch, values: list[float], parameter: str = "culture-temperature", start: float = 60) -> list[dict]:
    return [{"batch": batch.reference, "parameter": parameter, "time": _at(start - i), "value": v}
            for i, v in enumerate(values)]


def _push(client, headers, rows, key: str | None = None):  # type: ignore[no-untyped-def]
    return client.post(PUSH_URL, json.dumps({"rows": rows}), content_type="application/json",
                       HTTP_IDEMPOTENCY_KEY=key or str(uuid.uuid4()), **headers)


def _events(event_type: str) -> list[Event]:
    return list(Event.objects.filter(event_type=event_type).order_by("id"))


# --- pushing --------------------------------------------------------------------------------------


def test_a_good_push_stores_readings_and_one_event(client, bearer, batch, people):
    """P11-10h DI-ALCOA: a device push is stored with its source (the token's user), its readings and
    one ledger event on the site's chain with the counts and the SHA-256 of the rows."""
    rows = _rows(batch, [37.0, 37.1, 37.2]) + _rows(batch, [7.2, 7.3], parameter="ph")
    response = _push(client, bearer("operator.mad"), rows, key="prodigy-17-0001")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["created"] is True and body["rows"] == 5 and body["alarms_raised"] == []
    assert body["batches"] == [{"reference": batch.reference, "readings": 5, "out_of_limits": 0}]
    push = DevicePush.objects.get(idempotency_key="prodigy-17-0001")
    assert push.pushed_by == people["operator.mad"] and push.rows == 5
    assert push.sha256 == devices.rows_sha256(rows) == body["sha256"]
    stored = list(DeviceReading.objects.filter(batch=batch).order_by("parameter_id", "at"))
    assert [(r.parameter_id, r.value) for r in stored] == [
        ("culture-temperature", 37.0), ("culture-temperature", 37.1), ("culture-temperature", 37.2),
        ("ph", 7.2), ("ph", 7.3)]
    assert all(r.at.tzinfo is not None and not r.out_of_limits for r in stored)
    [event] = _events(ManufacturingEvent.DEVICE_DATA_PUSHED)
    assert event.chain == "MAD" and event.actor == people["operator.mad"]
    assert event.new["sha256"] == push.sha256 and event.new["rows"] == 5
    assert event.new["batches"] == {batch.reference: {"readings": 5, "out_of_limits": 0}}
    readings = client.get(f"/api/batches/{batch.reference}/device-data/?parameter=ph",
                          **bearer("manager.mad")).json()
    assert readings["count"] == 2 and {r["pushed_by"] for r in readings["results"]} == {"operator.mad"}


def test_a_push_with_malformed_rows_is_rejected_whole_with_row_numbers(client, bearer, batch):
    """P11-10h DI-ALCOA: every row is checked before anything is stored; one bad row rejects the push,
    and the answer names each bad row and what is wrong with it."""
    good = {"batch": batch.reference, "parameter": "ph", "time": _at(5), "value": 7.1}
    rows = [
        good,
        {**good, "batch": "NOPE-2026-0001"},
        {**good, "parameter": "glucose"},
        {**good, "time": "2026-03-01T10:00:00"},  # no offset
        {**good, "time": (timezone.now() + dt.timedelta(hours=1)).isoformat()},
        {**good, "time": "yesterday"},
        {**good, "value": "seven"},
        {**good, "value": True},
        "not a row",
        {**good, "time": _at(6), "colour": "blue"},
    ]
    headers = bearer("operator.mad")
    before = Event.objects.count()
    response = _push(client, headers, rows)
    assert response.status_code == 400
    problems = response.json()["rows"]
    assert [(p["row"], p["field"]) for p in problems] == [
        (2, "batch"), (3, "parameter"), (4, "time"), (5, "time"), (6, "time"), (7, "value"), (8, "value"),
        (9, "row"), (10, "row")]
    assert "glucose" in problems[1]["problem"] and "ph" in problems[1]["problem"]
    assert "offset" in problems[2]["problem"] and "after the window" in problems[3]["problem"]
    assert DeviceReading.objects.count() == 0 and DevicePush.objects.count() == 0
    assert Event.objects.count() == before


def test_a_push_repeating_stored_values_or_for_an_ended_batch_is_rejected(client, bearer, batch):
    """DI-ALCOA P11-10h: one original value per moment — a second push of the same moments under a new
    key is refused; a batch that has ended takes no more device data."""
    headers = bearer("operator.mad")
    rows = _rows(batch, [37.0, 37.1])
    assert _push(client, headers, rows).status_code == 201
    again = _push(client, headers, rows)
    assert again.status_code == 400 and "already stored" in again.json()["rows"][0]["problem"]
    twice = _push(client, headers, [rows[0], rows[0]])
    assert twice.status_code == 400 and twice.json()["rows"][0]["row"] == 2
    Batch.objects.filter(pk=batch.pk).update(status="completed")
    ended = _push(client, headers, _rows(batch, [37.0], start=1))
    assert ended.status_code == 400 and "in progress" in ended.json()["rows"][0]["problem"]
    assert DeviceReading.objects.count() == 2


def test_a_repeated_idempotency_key_stores_nothing_twice(client, bearer, batch):
    """DI-ALCOA: a retried push (same key, same rows) stores nothing again and answers with the first
    push's result; the same key with other rows is a conflict."""
    headers = bearer("operator.mad")
    rows = _rows(batch, [37.0, 38.6, 37.2])
    first = _push(client, headers, rows, key="retry-me")
    assert first.status_code == 201
    readings, events = DeviceReading.objects.count(), Event.objects.count()
    second = _push(client, headers, rows, key="retry-me")
    assert second.status_code == 200
    assert second.json() == {**first.json(), "created": False}
    assert DeviceReading.objects.count() == readings and Event.objects.count() == events
    assert Alarm.objects.get().readings_outside == 1
    other = _push(client, headers, _rows(batch, [37.5]), key="retry-me")
    assert other.status_code == 409 and "different rows" in other.json()["detail"]
    stranger = _push(client, bearer("manager.mad"), rows, key="retry-me")
    assert stranger.status_code == 403  # managers do not push
    assert DevicePush.objects.count() == 1


def test_idempotency_keys_are_per_client_so_another_sites_key_neither_collides_nor_reveals(client, bearer, batch):
    """P11-10g P11-10h: a device at Lisbon using the key a Madrid device already used stores its own
    push (201), learns nothing of Madrid's, and Madrid's retry still answers as a repeat."""
    from tests.manufacturing.matrix import device_batch

    lis_batch = device_batch("LIS")
    mad, lis = bearer("operator.mad"), bearer("operator.lis")
    mad_rows = _rows(batch, [37.0, 37.1])
    first = _push(client, mad, mad_rows, key="prodigy-0001")
    assert first.status_code == 201
    other_site = _push(client, lis, _rows(lis_batch, [36.9]), key="prodigy-0001")
    assert other_site.status_code == 201, other_site.json()
    body = json.dumps(other_site.json())
    assert batch.reference not in body and other_site.json()["created"] is True
    assert lis_batch.reference in body
    retry = _push(client, mad, mad_rows, key="prodigy-0001")
    assert retry.status_code == 200 and retry.json() == {**first.json(), "created": False}
    assert DevicePush.objects.filter(idempotency_key="prodigy-0001").count() == 2
    assert DeviceReading.objects.filter(batch=lis_batch).count() == 1


def test_two_pushes_racing_with_one_key_store_it_once(batch, people, monkeypatch):
    """DI-ALCOA: when a retry arrives while the first push is being stored, the key's uniqueness in
    the database decides: the loser answers as a repeat and stores nothing."""
    rows = _rows(batch, [37.0, 37.3])
    validate = devices._validate_rows

    def first_push_lands_meanwhile(actor, rows_, now):  # type: ignore[no-untyped-def]
        monkeypatch.setattr(devices, "_validate_rows", validate)
        devices.device_data_push(actor=actor, idempotency_key="race", rows=rows_)
        return validate(actor, rows_, now)

    monkeypatch.setattr(devices, "_validate_rows", first_push_lands_meanwhile)
    result = devices.device_data_push(actor=people["operator.mad"], idempotency_key="race", rows=rows)
    assert result.created is False and result.batches[0].readings == 2
    assert DevicePush.objects.count() == 1 and DeviceReading.objects.count() == 2
    assert len(_events(ManufacturingEvent.DEVICE_DATA_PUSHED)) == 1


def test_a_token_of_a_user_at_another_site_is_refused(client, bearer, batch):
    """P11-10h P11-10g: a device token acts as one person: another site's batches do not exist for it,
    and people who do not push device data are refused outright."""
    response = _push(client, bearer("operator.lis"), _rows(batch, [37.0]))
    assert response.status_code == 400
    assert response.json()["rows"][0] == {"row": 1, "field": "batch",
                                          "problem": f"no batch {batch.reference!r} at your sites"}
    assert _push(client, bearer("physician.mad"), _rows(batch, [37.0])).status_code == 403
    assert _push(client, bearer("qa"), _rows(batch, [37.0])).status_code == 403  # Control Site oversees only
    assert client.post(PUSH_URL, json.dumps({"rows": _rows(batch, [37.0])}), content_type="application/json",
                       HTTP_IDEMPOTENCY_KEY="x").status_code in (401, 403)
    lis = bearer("manager.lis")
    assert client.get(f"/api/batches/{batch.reference}/device-data/", **lis).status_code == 404
    assert client.get(f"/api/batches/{batch.reference}/alarms/", **lis).status_code == 404
    assert DeviceReading.objects.count() == 0


def test_a_push_of_thousands_of_points_costs_a_bounded_number_of_queries(bearer, batch, people):
    """P11-10h: readings are written in bulk; the query count does not grow with the rows."""
    start = batch.started_at - dt.timedelta(minutes=50)  # inside the window: the batch's start less 1 h, to now
    rows = [{"batch": batch.reference, "parameter": pid, "time": (start + dt.timedelta(seconds=i)).isoformat(),
             "value": value + (2.5 if pid == "culture-temperature" and 500 <= i < 520 else 0)}
            for pid, value in (("culture-temperature", 37.0), ("ph", 7.2)) for i in range(2000)]
    with CaptureQueriesContext(connection) as ctx:
        result = devices.device_data_push(actor=people["operator.mad"], idempotency_key="bulk-1", rows=rows)
    assert result.created and result.batches[0].readings == 4000 and result.batches[0].out_of_limits == 20
    assert len(result.alarms_raised) == 1
    # Inserts of readings are batched by the database's limit on parameters (a few on PostgreSQL, more
    # on SQLite); everything else is a fixed handful of queries.
    others = [q for q in ctx.captured_queries if not q["sql"].startswith('INSERT INTO "manufacturing_devicereading"')]
    assert len(others) < 25, [q["sql"][:80] for q in others]
    assert DeviceReading.objects.filter(batch=batch).count() == 4000


# --- alarms ---------------------------------------------------------------------------------------


def test_out_of_limit_values_raise_one_collapsed_alarm(client, bearer, batch):
    """A11-ALARM: values outside the master file's alarm limits raise one alarm per batch and parameter
    while it is open (readings counted on it, extreme kept) — not one per point — with one ledger event;
    after acknowledgement, new values outside raise a new alarm."""
    headers = bearer("operator.mad")
    response = _push(client, headers, _rows(batch, [37.0, 38.5, 39.1, 38.7, 37.4], start=60))
    assert response.status_code == 201
    [alarm] = Alarm.objects.all()
    assert response.json()["alarms_raised"][0]["id"] == alarm.pk
    assert (alarm.parameter_id, alarm.readings_outside, alarm.extreme_value) == ("culture-temperature", 3, 39.1)
    assert (alarm.alarm_min, alarm.alarm_max) == (36.0, 38.0) and alarm.first_reading.value == 38.5
    assert DeviceReading.objects.filter(out_of_limits=True).count() == 3
    assert len(_events(ManufacturingEvent.ALARM_RAISED)) == 1
    # more values outside while the alarm is open: counted on it, the extreme follows
    assert _push(client, headers, _rows(batch, [39.6, 38.2], start=40)).status_code == 201
    alarm.refresh_from_db()
    assert (alarm.readings_outside, alarm.extreme_value) == (5, 39.6)
    assert Alarm.objects.count() == 1 and len(_events(ManufacturingEvent.ALARM_RAISED)) == 1
    assert _events(ManufacturingEvent.DEVICE_DATA_PUSHED)[-1].new["alarms_continued"] == {str(alarm.pk): 2}
    # another parameter has its own alarm; the low side counts as outside too
    assert _push(client, headers, _rows(batch, [6.5, 6.4], parameter="ph", start=30)).status_code == 201
    ph = Alarm.objects.get(parameter_id="ph")
    assert (ph.readings_outside, ph.extreme_value) == (2, 6.4)
    # acknowledged: the next excursion is a new alarm
    devices.alarm_acknowledge(actor=batch.started_by, alarm=alarm, comment="Door closed, chamber recovering")
    assert _push(client, headers, _rows(batch, [38.4], start=20)).status_code == 201
    assert Alarm.objects.filter(parameter_id="culture-temperature").count() == 2
    assert len(_events(ManufacturingEvent.ALARM_RAISED)) == 3


def test_acknowledging_writes_a_ledger_event_and_cannot_be_repeated(client, bearer, batch, people):
    """A11-ALARM DI-ALCOA: a person acknowledges an alarm with a comment — who, when and what they said
    are in the audit trail — once only; it may open a deviation of kind alarm."""
    _push(client, bearer("operator.mad"), _rows(batch, [39.0]))
    alarm = Alarm.objects.get()
    with pytest.raises(devices.ValidationError):
        devices.alarm_acknowledge(actor=people["operator.mad"], alarm=alarm, comment="  ")
    with pytest.raises(PermissionDenied):
        devices.alarm_acknowledge(actor=people["qc.mad"], alarm=alarm, comment="seen")
    with pytest.raises(PermissionDenied):
        devices.alarm_acknowledge(actor=people["operator.lis"], alarm=alarm, comment="seen")
    done = devices.alarm_acknowledge(actor=people["operator.mad"], alarm=alarm, comment="Lid re-seated",
                                     raise_deviation=True)
    assert done.acknowledged_by == people["operator.mad"] and done.acknowledged_at is not None
    assert done.acknowledgement == "Lid re-seated"
    deviation = Deviation.objects.get()
    assert done.deviation == deviation and deviation.kind == "alarm" and deviation.batch == batch
    assert deviation.source_type == "manufacturing.Alarm" and deviation.source_id == str(alarm.pk)
    [event] = _events(ManufacturingEvent.ALARM_ACKNOWLEDGED)
    assert event.chain == "MAD" and event.actor == people["operator.mad"] and event.reason == "Lid re-seated"
    assert event.new["comment"] == "Lid re-seated" and event.new["deviation"] == deviation.reference
    with pytest.raises(devices.AlarmAlreadyAcknowledged):
        devices.alarm_acknowledge(actor=people["manager.mad"], alarm=alarm, comment="again")
    assert len(_events(ManufacturingEvent.ALARM_ACKNOWLEDGED)) == 1


def test_alarms_are_acknowledged_over_the_api_once(client, bearer, batch):
    """A11-ALARM: the API acknowledges an alarm once (then 409), and lists the batch's alarms."""
    _push(client, bearer("operator.mad"), _rows(batch, [35.0, 34.2]))
    alarm = Alarm.objects.get()
    manager = bearer("manager.mad")
    url = f"/api/alarms/{alarm.pk}/acknowledge/"
    assert client.post(url, {"comment": ""}, content_type="application/json", **manager).status_code == 400
    response = client.post(url, {"comment": "Heater reset"}, content_type="application/json", **manager)
    assert response.status_code == 200, response.content
    assert response.json()["acknowledged_by"] == "manager.mad" and response.json()["open"] is False
    again = client.post(url, {"comment": "again"}, content_type="application/json", **manager)
    assert again.status_code == 409 and "already acknowledged" in again.json()["alarm"][0]
    listed = client.get(f"/api/batches/{batch.reference}/alarms/", **manager).json()["results"]
    assert [(a["id"], a["extreme_value"], a["readings_outside"]) for a in listed] == [(alarm.pk, 34.2, 2)]
    assert client.post(url, {"comment": "x"}, content_type="application/json",
                       **bearer("operator.lis")).status_code == 404


# --- the panel and the charts ---------------------------------------------------------------------


def test_the_device_fragment_renders_charts_and_alarms_with_acknowledgement(client, bearer, login, batch):
    """A11-ALARM DI-ALCOA: the batch's device panel draws a chart per monitored parameter and lists the
    alarms with an acknowledge form (with a confirmation); for HTMX it is a fragment, otherwise a page;
    acknowledging from it is recorded and shown."""
    _push(client, bearer("operator.mad"), _rows(batch, [37.0, 38.9, 37.1]) + _rows(batch, [7.2], parameter="ph"))
    alarm = Alarm.objects.get()
    client.logout()
    login("operator.mad")
    url = f"/manufacturing/batches/{batch.reference}/device/"
    fragment = client.get(url, HTTP_HX_REQUEST="true")
    html = fragment.content.decode()
    assert fragment.status_code == 200 and "<html" not in html and "HX-Request" in fragment["Vary"]
    assert html.count("<svg") == 4 and "Culture chamber temperature" in html and "Dissolved oxygen" in html
    assert 'class="out-of-limits"' in html and "Europe/Madrid" in html
    assert f'hx-post="/manufacturing/alarms/{alarm.pk}/acknowledge/"' in html and "hx-confirm=" in html
    assert 'name="raise_deviation"' in html and "1 alarm not acknowledged" in html
    page = client.get(url)
    assert page.status_code == 200 and "<html" in page.content.decode()
    assert 'hx-trigger="every 15s' in page.content.decode()
    ack_url = f"/manufacturing/alarms/{alarm.pk}/acknowledge/"
    refused = client.post(ack_url, {"comment": ""}, HTTP_HX_REQUEST="true")
    assert refused.status_code == 422 and "comment" in refused.content.decode().lower()
    done = client.post(ack_url, {"comment": "Incubator door was open", "raise_deviation": "on"},
                       HTTP_HX_REQUEST="true")
    assert done.status_code == 200 and "acknowledged; recorded in the audit trail" in done.content.decode()
    alarm.refresh_from_db()
    assert alarm.acknowledgement == "Incubator door was open" and alarm.deviation is not None
    assert "Incubator door was open" in done.content.decode() and alarm.deviation.reference in done.content.decode()
    assert client.post(ack_url, {"comment": "again"}).status_code == 400
    client.logout()
    login("qc.mad")  # sees the panel, may not acknowledge
    html = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "hx-post" not in html and "Acknowledged by" in html


def test_the_chart_shows_limits_local_time_and_every_value_outside():
    """DI-ALCOA A11-ALARM: the chart is legible — alarm band, local time with the zone, alarm marks — and
    drawing a long series in fewer points never hides a value outside the limits."""
    start = dt.datetime(2026, 3, 28, 20, 0, tzinfo=dt.UTC)  # across the Madrid change to summer time
    spikes = {333, 1200, 2500, 4001, 4002}
    points = [(start + dt.timedelta(minutes=i), 39.5 if i in spikes else 37.0 + (i % 7) * 0.05, i in spikes)
              for i in range(5000)]
    line, flagged = core_charts.downsample([core_charts.TimePoint(*p) for p in points], start=points[0][0],
                                           end=points[-1][0], columns=640)
    assert len(line) <= 4 * 640 and {p.value for p in line} >= {39.5}
    flagged_minutes = {int((p.at - start).total_seconds() // 60) for p in flagged}
    assert {333, 1200, 2500} <= flagged_minutes and flagged_minutes & {4001, 4002}  # adjacent ones share a pixel
    svg = charts.parameter_chart_svg(points, alarm_min=36.0, alarm_max=38.0, name="Culture chamber temperature",
                                     unit="°C", alarms=[(start + dt.timedelta(minutes=333), "A1", False)],
                                     tz=zoneinfo.ZoneInfo("Europe/Madrid"))
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "Europe/Madrid (CET/CEST)" in svg and "alarm max 38 °C" in svg and 'class="alarm-band"' in svg
    assert svg.count('class="out-of-limits"') == len(flagged) and 'class="alarm-mark"' in svg
    assert "5000 readings" in svg and "A1" in svg
    empty = charts.parameter_chart_svg([], alarm_min=6.8, alarm_max=7.6, name="Culture <pH>", unit="")
    assert "No device data yet" in empty and "Culture &lt;pH&gt;" in empty and "<pH>" not in empty


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "headers", "field"), [
    ({"rows": []}, {}, "rows"),
    ({"rows": "all of them"}, {}, "rows"),
    ({"lines": []}, {}, "rows"),
    ([1, 2, 3], {}, "rows"),
    ({"rows": [{"batch": "X"}]}, {"HTTP_IDEMPOTENCY_KEY": ""}, "Idempotency-Key"),
    ({"rows": [{"batch": "X"}]}, {"HTTP_IDEMPOTENCY_KEY": "k" * 101}, "idempotency_key"),
    ({"rows": [None, {"value": 10**400}]}, {}, "rows[1].value"),
    ({"rows": [{"value": 1e400}]}, {}, "rows[0].value"),
])
def test_junk_pushes_get_a_400_naming_the_problem(client, bearer, batch, body, headers, field):
    """P11-10h: bad input gets a 400 that names what is wrong, never a 500, and stores nothing."""
    before = Event.objects.count()
    headers = {"HTTP_IDEMPOTENCY_KEY": str(uuid.uuid4()), **headers}
    response = client.post(PUSH_URL, json.dumps(body), content_type="application/json",
                           **headers, **bearer("operator.mad"))
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert DevicePush.objects.count() == 0 and Event.objects.count() == before + 1  # the token issue


def test_junk_queries_and_bodies_get_a_4xx(client, bearer, batch):
    """P11-10h: malformed queries and bodies are answered 4xx, never 500."""
    headers = bearer("operator.mad")
    base = f"/api/batches/{batch.reference}/device-data/"
    assert client.get(base + "?since=yesterday", **headers).status_code == 400
    assert client.get(base + "?since=2026-01-01T00:00:00", **headers).status_code == 400
    assert "ph" in client.get(base + "?parameter=glucose", **headers).json()["parameter"][0]
    assert client.get(base + "?since=2026-01-01T00:00:00%2B01:00&limit=5", **headers).status_code == 200
    assert client.get("/api/batches/NOPE/device-data/", **headers).status_code == 404
    assert client.post(PUSH_URL, "{not json", content_type="application/json", HTTP_IDEMPOTENCY_KEY="k",
                       **headers).status_code == 400
    assert client.post(PUSH_URL, "rows=1", content_type="application/x-www-form-urlencoded",
                       HTTP_IDEMPOTENCY_KEY="k", **headers).status_code == 415
    assert client.post("/api/alarms/999999/acknowledge/", {"comment": "x"}, content_type="application/json",
                       **headers).status_code == 404
