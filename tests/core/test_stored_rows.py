"""A stored bad row never breaks a page (issue 13): it renders as what it is."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone

from pocare.custody import services
from pocare.custody.models import TemperatureReading
from tests.custody.helpers import accepted, user

pytestmark = pytest.mark.django_db



def _good_csv() -> str:
    """Two plausible readings: inside the shipment's window (its dispatch less 12 h, to now)."""
    now = timezone.now().replace(microsecond=0)
    first, second = (now - dt.timedelta(minutes=m) for m in (20, 10))
    return f"timestamp,temperature_c\n{first.isoformat()},4.1\n{second.isoformat()},9.0\n"


# What a database holds after "0001-01-01T00:00:00+05:00" / "9999-12-31T23:00:00-05:00" were stored
# (PostgreSQL kept them as 1 BC and year 10000, which Python cannot load), written as each vendor does.
STORED = {
    "year-1": {"postgresql": "0001-12-31 19:00:00+00 BC", "sqlite": "0000-12-31 19:00:00"},
    "year-9999": {"postgresql": "10000-01-01 04:00:00+00", "sqlite": "10000-01-01 04:00:00"},
    "year-9999-loadable": {"postgresql": "9999-12-31 18:00:00+00", "sqlite": "9999-12-31 18:00:00"},
}


@pytest.mark.parametrize("case", list(STORED))
def test_a_restored_logger_reading_outside_the_years_shows_as_invalid_timestamp_and_the_order_page_answers(
        client, login, people, case):
    """DI-ALCOA: a logger reading whose time cannot be shown (stored before the input bounds, or
    brought back by a restore) renders as "invalid timestamp: …" beside the good readings and their
    chart; the order page answers 200 to everyone who may see it.

    The row is inserted with raw SQL, which no service would do: this simulates restoring a database
    that holds such a row, the one way it can exist now (the one place a test writes raw rows)."""
    o = accepted("MAD")
    shipment = services.shipment_dispatch(actor=user("operator.mad"), order=o, leg="apheresis", logger_id="TL-0042",
                                          reason="Courier left")
    upload = services.temperatures_upload(actor=user("physician.mad"), shipment=shipment, source="csv", csv_text=_good_csv())
    raw = STORED[case][connection.vendor]
    table = TemperatureReading._meta.db_table
    with connection.cursor() as cur:
        cur.execute(f"INSERT INTO {table} (upload_id, shipment_id, at, celsius, in_limits) "
                    "VALUES (%s, %s, %s, %s, %s)", [upload.pk, shipment.pk, raw, "4.00", True])
    for username in ("operator.mad", "qa"):
        client.logout()
        login(username)
        response = client.get(f"/custody/orders/{o.pk}/")
        assert response.status_code == 200, username
        page = response.content.decode()
        assert f"invalid timestamp: {raw[:10]}" in page or f"invalid timestamp: {raw[:11]}" in page, username
        assert "<svg" in page and "3 readings" in page  # the two good readings are still charted


@pytest.mark.parametrize("case", ["year-1", "year-9999"])
def test_a_restored_device_reading_outside_the_years_shows_as_invalid_timestamp_on_the_batch_device_page(
        client, login, people, case):
    """DI-ALCOA P11-10h: a device reading whose time cannot be shown renders as "invalid timestamp: …"
    on the batch's device page, whose charts still draw the good readings; the readings API answers.

    The row is inserted with raw SQL (simulating the restore of a database that holds it)."""
    import json
    import uuid

    from pocare.accounts.services import token_issue
    from pocare.manufacturing.models import DevicePush, DeviceReading
    from tests.manufacturing.matrix import device_batch

    batch = device_batch("MAD")
    _, key = token_issue(actor=None, user=people["operator.mad"], name="device", reason="test")
    rows = [{"batch": batch.reference, "parameter": "ph", "time": timezone.now().isoformat(), "value": 7.2}]
    pushed = client.post("/api/device-data/", json.dumps({"rows": rows}), content_type="application/json",
                         HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()), HTTP_AUTHORIZATION=f"Bearer {key}")
    assert pushed.status_code == 201, pushed.content
    push = DevicePush.objects.get()
    raw = STORED[case][connection.vendor]
    with connection.cursor() as cur:
        cur.execute(f"INSERT INTO {DeviceReading._meta.db_table} (push_id, batch_id, parameter_id, at, value, "
                    "out_of_limits) VALUES (%s, %s, %s, %s, %s, %s)", [push.pk, batch.pk, "ph", raw, 7.3, False])
    login("operator.mad")
    response = client.get(f"/manufacturing/batches/{batch.reference}/device/")
    assert response.status_code == 200
    page = response.content.decode()
    assert f"invalid timestamp: {raw[:10]}" in page and "<svg" in page
    api = client.get(f"/api/batches/{batch.reference}/device-data/")
    assert api.status_code == 200 and api.json()["count"] == 1


def test_the_time_filters_show_an_unrepresentable_time_as_invalid_timestamp():
    """DI-ALCOA: the page filters that write times (``utc``, ``in_zone``) show a time outside the
    years, or one that overflows in the site's zone, as "invalid timestamp: …" instead of raising."""
    import datetime as dt

    from pocare.web.templatetags.pocare import in_zone, utc

    late = dt.datetime(9999, 12, 31, 23, 0, tzinfo=dt.UTC)  # +08:00 would be year 10000
    early = dt.datetime(1, 1, 1, 0, 0, tzinfo=dt.UTC)
    for when in (late, early):
        assert "invalid timestamp: " in utc(when)
        assert "invalid timestamp: " in in_zone(when, "Asia/Singapore")
        assert "invalid timestamp: " in in_zone(when, "America/New_York")
    assert utc(dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)).endswith("2026-03-01 08:00:00 UTC</time>")
