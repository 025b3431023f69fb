"""How the generated permission test (tests/test_permission_matrix.py) names manufacturing objects at
a site: a batch in progress there, and an alarm on it raised by a device push of the site's operator.

``device_batch`` builds the batch with the ORM (there is no batch-start service to call yet) on the
demo master file v1, which the test database does not hold until the first call loads it.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.utils import timezone

_numbers = itertools.count(1)


def device_batch(site_code: str) -> Any:
    """A batch in progress at ``site_code`` on a Prodigy of that site, under the effective demo v1
    (monitoring culture-temperature 36–38 °C, co2 4.5–5.5 %, ph 6.8–7.6, dissolved-oxygen 20–100 %)."""
    from pocare.accounts.models import User
    from pocare.custody.models import Collection, OrderStatus, TherapyOrder
    from pocare.manufacturing.models import Batch
    from pocare.network.models import ManufacturingUnit, Site
    from pocare.network.services import unit_register
    from tests.masterfile.helpers import effective_v1

    version = effective_v1()
    site = Site.objects.get(code=site_code)
    slug = site_code.lower()
    operator = User.objects.get(username=f"operator.{slug}")
    physician = User.objects.get(username=f"physician.{slug}")
    manager = User.objects.get(username=f"manager.{slug}")
    now = timezone.now()
    n = next(_numbers)
    unit = ManufacturingUnit.objects.filter(site=site, device_type="clinimacs_prodigy").first() or unit_register(
        actor=User.objects.get(username="qa"), site=site, device_type="clinimacs_prodigy",
        serial=f"DEV-{site_code}-{n}", calibration_due=now.date() + dt.timedelta(days=90),
        maintenance_due=now.date() + dt.timedelta(days=120), reason="test set-up")
    order = TherapyOrder.objects.create(
        site=site, treating_site=site, product=version.product, recipient_id=f"PAT-{site_code}-{n}",
        recipient_weight_kg=Decimal("70.0"), indication="r/r LBCL", status=OrderStatus.IN_MANUFACTURE,
        coi=f"COI-{site_code}-{n:05d}", ordered_by=physician, ordered_at=now - dt.timedelta(days=3),
        accepted_by=manager, accepted_at=now - dt.timedelta(days=3))
    collection = Collection.objects.create(
        order=order, din=f"W{n:04d}26{n:06d}"[:13], check_character="A", collection_site=site,
        collection_started_at=now - dt.timedelta(days=2, hours=4), collection_ended_at=now - dt.timedelta(days=2),
        volume_ml=Decimal("250.0"), recorded_by=operator, recorded_at=now - dt.timedelta(days=2))
    return Batch.objects.create(
        reference=f"{site_code}-DEV-{n:04d}", order=order, collection=collection, site=site, unit=unit,
        masterfile_version=version, started_by=operator, started_at=now - dt.timedelta(days=1))


def _batch(site: str) -> dict[str, Any]:
    from pocare.manufacturing.models import Batch

    batch = Batch.objects.filter(site__code=site, status="in_progress").first() or device_batch(site)
    return {"reference": batch.reference}


def _alarm(site: str) -> dict[str, Any]:
    import uuid

    from pocare.accounts.models import User
    from pocare.manufacturing.devices import device_data_push
    from pocare.manufacturing.models import Alarm, Batch

    alarm = Alarm.objects.filter(batch__site__code=site, acknowledged_at=None).first()
    if alarm is None:
        batch = Batch.objects.get(reference=_batch(site)["reference"])
        at = (timezone.now() - dt.timedelta(minutes=10)).isoformat()
        device_data_push(actor=User.objects.get(username=f"operator.{site.lower()}"), idempotency_key=str(uuid.uuid4()),
                         rows=[{"batch": batch.reference, "parameter": "culture-temperature", "time": at,
                                "value": 39.2}])
        alarm = Alarm.objects.get(batch=batch, acknowledged_at=None)
    return {"pk": alarm.pk}


def _step(site: str) -> dict[str, Any]:
    return {**_batch(site), "step_id": "receipt-identity"}


def _attribute(site: str) -> dict[str, Any]:
    return {**_batch(site), "attribute_id": "viability"}


def _value(site: str) -> dict[str, Any]:
    """A recorded value at the site (rows made directly: the matrix checks access, not execution)."""
    from pocare.accounts.models import User
    from pocare.manufacturing.models import Batch, StepExecution, StepValue

    value = StepValue.objects.filter(step__batch__site__code=site).first()
    if value is None:
        batch = Batch.objects.get(reference=_batch(site)["reference"])
        operator = User.objects.get(username=f"operator.{site.lower()}")
        step = StepExecution.objects.create(batch=batch, position=0, step_id="receipt-identity",
                                            unit_operation="apheresis-receipt", status="complete",
                                            started_by=operator, started_at=timezone.now(), performed_by=operator,
                                            performed_at=timezone.now())
        value = StepValue.objects.create(step=step, parameter_id="transit-time", value=3, unit="h", in_range=True,
                                         entered_by=operator, entered_at=timezone.now())
    return {"pk": value.pk}


def _reading(site: str) -> dict[str, Any]:
    """A device reading at the site (rows made directly, like ``_value``)."""
    import uuid

    from pocare.accounts.models import User
    from pocare.manufacturing.models import Batch, DevicePush, DeviceReading

    reading = DeviceReading.objects.filter(batch__site__code=site).first()
    if reading is None:
        batch = Batch.objects.get(reference=_batch(site)["reference"])
        now = timezone.now()
        push = DevicePush.objects.create(idempotency_key=str(uuid.uuid4()), received_at=now, rows=1, sha256="0" * 64,
                                         pushed_by=User.objects.get(username=f"operator.{site.lower()}"))
        reading = DeviceReading.objects.create(push=push, batch=batch, parameter_id="culture-temperature",
                                               at=now - dt.timedelta(minutes=5), value=37.0)
    return {"pk": reading.pk}


def _order_to_start(site: str) -> dict[str, Any]:
    """An accepted order at the site with no batch yet."""
    from pocare.accounts.models import User
    from pocare.custody.models import OrderStatus, TherapyOrder
    from pocare.network.models import Site
    from tests.masterfile.helpers import effective_v1

    order = TherapyOrder.objects.filter(site__code=site, status=OrderStatus.ACCEPTED, batch__isnull=True).first()
    if order is None:
        version = effective_v1()
        n = next(_numbers)
        s = Site.objects.get(code=site)
        order = TherapyOrder.objects.create(
            site=s, treating_site=s, product=version.product, recipient_id=f"START-{site}-{n}",
            recipient_weight_kg=Decimal("70.0"), indication="r/r LBCL", status=OrderStatus.ACCEPTED,
            coi=f"CSTART{site}{n:05d}", ordered_by=User.objects.get(username=f"physician.{site.lower()}"),
            ordered_at=timezone.now(), accepted_by=User.objects.get(username=f"manager.{site.lower()}"),
            accepted_at=timezone.now())
    return {"order": order.pk}


OBJECTS: dict[str, Callable[[str], dict[str, Any]]] = {
    "manufacturing:batch": _batch,
    "manufacturing:batch_review": _batch,
    "manufacturing:step": _step,
    "manufacturing:qc_result": _attribute,
    "manufacturing:value_correct": _value,
    "manufacturing:batch_start": _order_to_start,
    "api-batch": _batch,
    "api-step-record": _step,
    "api-step-verify": _step,
    "api-qc-record": _batch,
    "manufacturing:batch_device": _batch,
    "manufacturing:alarm_acknowledge": _alarm,
    "manufacturing:batch_readings": _batch,
    "manufacturing:reading_correct": _reading,
    "api-batch-device-data": _batch,
    "api-batch-alarms": _batch,
    "api-alarm-acknowledge": _alarm,
}
