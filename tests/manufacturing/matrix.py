"""How the generated permission test (tests/test_permission_matrix.py) names manufacturing objects at
a site: a batch in progress there, and an alarm on it raised by a device push of the site's operator.

``device_batch`` starts the batch through the services on the demo master file v1, which the test
database does not hold until the first call loads it.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from typing import Any

from django.utils import timezone

_numbers = itertools.count(1)


def device_batch(site_code: str) -> Any:
    """A batch in progress at ``site_code`` on the site's device (a Prodigy; at Munich the Cocoon its
    annex names), under the effective demo v1 (monitoring culture-temperature 36–38 °C, co2
    4.5–5.5 %, ph 6.8–7.6, dissolved-oxygen 20–100 %), made through the services: v1 effective at
    the site (authorized, operator trained), released lots, an accepted order with its COI whose
    collection (with its DIN) was received at the site, and the batch started by the site's operator."""
    from tests.custody.helpers import effective_at
    from tests.manufacturing.helpers import received_order

    effective_at(site_code)
    return batch_start_for(received_order(site_code))


def batch_start_for(order: Any) -> Any:
    """The batch of an order whose starting material was received at its site: released lots there,
    and the start signed by the site's operator on a unit of the device the version needs."""
    from pocare.manufacturing import services
    from pocare.masterfile.selectors import effective_version
    from tests.manufacturing import helpers as h

    code = order.site.code
    version = effective_version(site=order.site, product=order.product)
    h.lots(code, version)
    operator = h.user(f"operator.{code.lower()}")
    return services.batch_start(actor=operator, order=order, unit=_unit(version, code),
                                presented_identifier=order.collections.get().din, credentials=h.creds(operator))


def _unit(version: Any, site_code: str) -> Any:
    """A free, usable unit of the device the version needs at the site, registered by QA when the
    site has none."""
    from pocare.accounts.models import User
    from pocare.manufacturing.models import Batch, BatchStatus
    from pocare.manufacturing.services import device_class_for
    from pocare.network.models import DeviceType, ManufacturingUnit, Site
    from pocare.network.services import unit_register

    site, today = Site.objects.get(code=site_code), timezone.now().date()
    device = device_class_for(version, site, DeviceType.PRODIGY)
    busy = Batch.objects.filter(status=BatchStatus.IN_PROGRESS).values_list("unit_id", flat=True)
    free = ManufacturingUnit.objects.filter(site=site, device_type=device, status="qualified") \
        .exclude(pk__in=busy).exclude(calibration_due__lt=today).order_by("serial").first()
    return free or unit_register(
        actor=User.objects.get(username="qa"), site=site, device_type=device,
        serial=f"DEV-{site_code}-{next(_numbers)}", calibration_due=today + dt.timedelta(days=90),
        maintenance_due=today + dt.timedelta(days=120), reason="test set-up")


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
    """A value recorded at the site: the batch's first step, recorded with good values by a qualified
    operator (the demo's training records, loaded by ``world``)."""
    from pocare.manufacturing.models import Batch, StepValue
    from tests.manufacturing.helpers import do_step, world

    value = StepValue.objects.filter(step__batch__site__code=site).first()
    if value is None:
        batch = Batch.objects.get(reference=_batch(site)["reference"])
        world()
        do_step(batch)
        value = StepValue.objects.filter(step__batch=batch).first()
    return {"pk": value.pk}


def _reading(site: str) -> dict[str, Any]:
    """A device reading at the site, pushed in range by the site's operator (like ``_alarm``)."""
    import uuid

    from pocare.accounts.models import User
    from pocare.manufacturing.devices import device_data_push
    from pocare.manufacturing.models import Batch, DeviceReading

    reading = DeviceReading.objects.filter(batch__site__code=site).first()
    if reading is None:
        batch = Batch.objects.get(reference=_batch(site)["reference"])
        at = (timezone.now() - dt.timedelta(minutes=5)).isoformat()
        device_data_push(actor=User.objects.get(username=f"operator.{site.lower()}"), idempotency_key=str(uuid.uuid4()),
                         rows=[{"batch": batch.reference, "parameter": "culture-temperature", "time": at,
                                "value": 37.0}])
        reading = DeviceReading.objects.get(batch=batch)
    return {"pk": reading.pk}


def _order_to_start(site: str) -> dict[str, Any]:
    """An accepted order at the site with no batch yet (its starting material received there)."""
    from pocare.custody.models import OrderStatus, TherapyOrder
    from tests.custody.helpers import effective_at
    from tests.manufacturing.helpers import received_order

    order = TherapyOrder.objects.filter(site__code=site, status=OrderStatus.ACCEPTED, batch__isnull=True).first()
    if order is None:
        effective_at(site)
        order = received_order(site)
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
