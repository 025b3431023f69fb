"""How the generated permission test (tests/test_permission_matrix.py) names one custody object at a
given site: an accepted order made and treated there, with a collection and a shipment. Rows are
written directly (fast: the matrix calls this hundreds of times); the custody tests create them
through the services."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.utils import timezone


def _order(site: str) -> Any:
    from pocare.accounts.models import User
    from pocare.custody.isbt import coi_build, din_build
    from pocare.custody.models import Collection, Shipment, TherapyOrder
    from pocare.masterfile.models import Product
    from pocare.network.models import Site

    found = TherapyOrder.objects.filter(site__code=site, recipient_id="MATRIX").first()
    if found is not None:
        return found
    where = Site.objects.get(code=site)
    now = timezone.now()
    physician = User.objects.get(username=f"physician.{site.lower()}")
    product = Product.objects.filter(code="MATRIX").first() or Product.objects.create(
        code="MATRIX", name="Matrix product", indication="-", kind="autologous", created_at=now)
    order = TherapyOrder.objects.create(
        site=where, treating_site=where, product=product, recipient_id="MATRIX", recipient_weight_kg=Decimal(70),
        indication="-", status="accepted", coi=coi_build(where.facility_id, now.year, 999_999),
        ordered_by=physician, ordered_at=now, accepted_by=User.objects.get(username=f"manager.{site.lower()}"),
        accepted_at=now)
    din, check = din_build(where.facility_id, now.year, 999_999)
    Collection.objects.create(
        order=order, din=din, check_character=check, collection_site=where,
        collection_started_at=now - dt.timedelta(hours=5), collection_ended_at=now - dt.timedelta(hours=1),
        volume_ml=Decimal(200), donor_tests={"HIV": "negative"}, expires_at=now + dt.timedelta(hours=47),
        recorded_by=physician, recorded_at=now)
    Shipment.objects.create(order=order, leg="apheresis", logger_id="MATRIX", min_celsius=Decimal(2),
                            max_celsius=Decimal(8), dispatched_at=now, created_by=physician)
    return order


def _pk(site: str) -> dict[str, Any]:
    return {"pk": _order(site).pk}


def _shipment(site: str) -> dict[str, Any]:
    return {"pk": _order(site).shipments.get().pk}


def _temperature(site: str) -> dict[str, Any]:
    """A logged temperature of the site's shipment (rows made directly)."""
    from pocare.accounts.models import User
    from pocare.custody.models import TemperatureReading, TemperatureUpload

    shipment = _order(site).shipments.get()
    reading = TemperatureReading.objects.filter(shipment=shipment).first()
    if reading is None:
        now = timezone.now()
        upload = TemperatureUpload.objects.create(
            shipment=shipment, uploaded_at=now, uploaded_by=User.objects.get(username=f"physician.{site.lower()}"),
            source="api", readings=1, sha256="0" * 64)
        reading = TemperatureReading.objects.create(upload=upload, shipment=shipment, at=now, celsius=Decimal("4.5"),
                                                    in_limits=True)
    return {"pk": reading.pk}


def _label(site: str) -> dict[str, Any]:
    order = _order(site)
    return {"pk": order.pk, "container": f"bag-{order.collections.get().pk}"}


OBJECTS: dict[str, Callable[[str], dict[str, Any]]] = {
    "custody:order": _pk,
    "custody:order_accept": _pk,
    "custody:collection_new": _pk,
    "custody:handoff_new": _pk,
    "custody:shipment_new": _pk,
    "custody:upload_new": _shipment,
    "custody:shipment_readings": _shipment,
    "custody:temperature_correct": _temperature,
    "custody:label_svg": _label,
    "custody:labels_pdf": _pk,
    "api-custody-order": _pk,
    "api-custody-handoffs": _pk,
    "api-custody-temperatures": _shipment,
}
