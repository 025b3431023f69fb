"""How the generated permission test (tests/test_permission_matrix.py) names one custody object at a
given site: an accepted order made and treated there, with a collection and a shipment, made through
the custody services as the custody tests make them (tests/custody/helpers.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.utils import timezone


def _order(site: str) -> Any:
    from pocare.custody import services
    from pocare.custody.models import TherapyOrder
    from tests.custody.helpers import accepted, collect, user

    found = TherapyOrder.objects.filter(site__code=site, recipient_id="MATRIX").first()
    if found is not None:
        return found
    order = accepted(site, recipient="MATRIX")
    collect(order)
    services.shipment_dispatch(actor=user(f"physician.{site.lower()}"), order=order, leg="apheresis",
                               logger_id="MATRIX", reason="matrix")
    return order


def _pk(site: str) -> dict[str, Any]:
    return {"pk": _order(site).pk}


def _shipment(site: str) -> dict[str, Any]:
    return {"pk": _order(site).shipments.get().pk}


def _temperature(site: str) -> dict[str, Any]:
    """A logged temperature of the site's shipment, uploaded by the site's physician."""
    from pocare.custody import services
    from pocare.custody.models import TemperatureReading
    from tests.custody.helpers import user

    shipment = _order(site).shipments.get()
    reading = TemperatureReading.objects.filter(shipment=shipment).first()
    if reading is None:
        services.temperatures_upload(actor=user(f"physician.{site.lower()}"), shipment=shipment, source="api",
                                     rows=[{"timestamp": timezone.now().isoformat(), "temperature_c": 4.5}])
        reading = TemperatureReading.objects.get(shipment=shipment)
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
