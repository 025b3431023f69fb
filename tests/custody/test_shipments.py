"""Shipments with data loggers: limits from the master file, CSV and API uploads, excursions."""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from pocare.custody import services
from pocare.custody.models import TemperatureReading, TemperatureUpload
from pocare.quality.models import Deviation, DeviationKind
from tests.custody.helpers import accepted, collect, user

pytestmark = pytest.mark.django_db

#: An hour of logger readings a few hours before now: inside the window of a shipment dispatched
#: in the test (dispatch less 12 h to now plus 5 min).
HOUR = (timezone.now() - dt.timedelta(hours=3)).strftime("%Y-%m-%dT%H")
GOOD = f"timestamp,temperature_c\n{HOUR}:00:00Z,4.1\n{HOUR}:10:00+01:00,5.0\n{HOUR}:20:00Z,6.2\n"


def _shipment(leg: str = "apheresis"):  # type: ignore[no-untyped-def]
    o = accepted()
    collect(o)
    who = "physician.mad" if leg == "apheresis" else "operator.mad"
    return services.shipment_dispatch(actor=user(who), order=o, leg=leg, logger_id="TL-0042", reason="Courier left")


def test_limits_are_copied_from_the_effective_master_file(people):
    """ATMP-TRACE POC-1: the leg's limits come from the effective version's transport section."""
    s = _shipment()
    assert (s.min_celsius, s.max_celsius) == (Decimal("2.00"), Decimal("8.00"))
    cryo = services.shipment_dispatch(actor=people["operator.mad"], order=s.order, leg="cryopreserved_product",
                                      logger_id="LN2-7", reason="Dry shipper")
    assert cryo.min_celsius is None and cryo.max_celsius == Decimal("-150.00")
    with pytest.raises(ValidationError) as exc:
        services.shipment_dispatch(actor=people["operator.mad"], order=s.order, leg="teleport", logger_id="x",
                                   reason="x")
    assert "leg" in exc.value.message_dict


def test_csv_within_limits_is_stored_with_its_sha256(people):
    """ATMP-TRACE DI-ALCOA: the readings and the sha256 of the file as received are kept."""
    s = _shipment()
    upload = services.temperatures_upload(actor=people["physician.mad"], shipment=s, source="csv", csv_text=GOOD)
    assert upload.readings == 3 and upload.excursions == [] and upload.deviation is None
    assert upload.sha256 == hashlib.sha256(GOOD.encode()).hexdigest()
    assert TemperatureReading.objects.filter(upload=upload, in_limits=True).count() == 3


def test_malformed_csv_is_rejected_whole_naming_the_rows(people):
    """DI-ALCOA ATMP-TRACE: bad rows reject the whole upload, each listed with its row number and
    reason, and nothing is stored."""
    s = _shipment()
    bad = (f"timestamp,temperature_c\n{HOUR}:00:00Z,4.1\n2026-03-01 08:10,5\n"
           f"{HOUR}:20:00Z,warm\n{HOUR}:30:00Z,4,extra\n")
    with pytest.raises(ValidationError) as exc:
        services.temperatures_upload(actor=people["physician.mad"], shipment=s, source="csv", csv_text=bad)
    messages = exc.value.message_dict["csv_text"]
    assert any(m.startswith("row 4:") and "columns" in m for m in messages)
    bad2 = f"timestamp,temperature_c\n{HOUR}:00:00Z,4.1\n2026-03-01 08:10,5\n{HOUR}:20:00Z,warm\n"
    with pytest.raises(ValidationError) as exc:
        services.temperatures_upload(actor=people["physician.mad"], shipment=s, source="csv", csv_text=bad2)
    messages = exc.value.message_dict["csv_text"]
    assert any(m.startswith("row 2:") and "offset" in m for m in messages)
    assert any(m.startswith("row 3:") and "temperature_c" in m for m in messages)
    assert not any(m.startswith("row 1:") for m in messages)
    with pytest.raises(ValidationError, match="columns are timestamp,temperature_c"):
        services.temperatures_upload(actor=people["physician.mad"], shipment=s, source="csv", csv_text="a,b\n1,2\n")
    assert not TemperatureUpload.objects.exists() and not TemperatureReading.objects.exists()


def test_an_excursion_opens_a_temperature_deviation(people):
    """ATMP-TRACE: readings above 8 °C form an excursion, recorded on the upload with a deviation."""
    s = _shipment()
    t0 = timezone.now().replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=3)
    rows = [{"timestamp": (t0 + dt.timedelta(minutes=10 * i)).isoformat(), "temperature_c": v}
            for i, v in enumerate([4, 5, 9.5, 12.25, 7, 6])]
    upload = services.temperatures_upload(actor=people["physician.mad"], shipment=s, source="api", rows=rows)
    assert upload.excursions == [{"start": (t0 + dt.timedelta(minutes=20)).isoformat(),
                                  "end": (t0 + dt.timedelta(minutes=30)).isoformat(), "extreme": "12.25",
                                  "readings": 2, "side": "high"}]
    deviation = Deviation.objects.get(pk=upload.deviation_id)
    assert deviation.kind == DeviationKind.TEMPERATURE and deviation.order == s.order
    assert "TL-0042" in deviation.description
    assert TemperatureReading.objects.filter(upload=upload, in_limits=False).count() == 2


def test_uploads_need_the_record_permission_at_the_orders_sites(people):
    """P11-10g: another site's operator or the inspector may not upload."""
    from django.core.exceptions import PermissionDenied

    s = _shipment()
    for username in ("operator.lis", "inspector", "navigator.mad"):
        with pytest.raises(PermissionDenied):
            services.temperatures_upload(actor=people[username], shipment=s, source="csv", csv_text=GOOD)
