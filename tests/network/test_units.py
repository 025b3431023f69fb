"""Manufacturing units: who registers and requalifies them, and when a unit may be used (P11-10h)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from pocare.ledger.models import Event
from pocare.network.events import NetworkEvent
from pocare.network.models import ManufacturingUnit, Site, UnitStatus
from pocare.network.selectors import site_today, unit_due_state, unit_usable
from pocare.network.services import unit_register, unit_requalify, unit_status_change

pytestmark = pytest.mark.django_db


def _unit(actor, code="MAD", serial="PRD-T-0001", cal=90, maint=120):  # type: ignore[no-untyped-def]
    site = Site.objects.get(code=code)
    today = site_today(site)
    return unit_register(actor=actor, site=site, device_type="clinimacs_prodigy", serial=serial,
                         calibration_due=today + dt.timedelta(days=cal), maintenance_due=today + dt.timedelta(days=maint),
                         reason="IQ/OQ complete", model="CliniMACS Prodigy")


def test_a_site_manager_registers_a_unit_at_their_site_and_it_is_recorded(people):
    """P11-10h P11-10e: the unit and its due dates are on the site's chain with the reason."""
    unit = _unit(people["manager.mad"])
    assert unit.status == UnitStatus.QUALIFIED and unit.qualified_at is not None
    assert unit_usable(unit) == (True, "")
    event = Event.objects.get(event_type=NetworkEvent.UNIT_REGISTERED, object_id=str(unit.pk))
    assert event.chain == "MAD" and event.actor_username == "manager.mad" and event.reason == "IQ/OQ complete"
    assert event.new["serial"] == "PRD-T-0001" and event.new["calibration_due"] == unit.calibration_due.isoformat()


@pytest.mark.parametrize("username", ["manager.lis", "operator.mad", "qc.mad", "qp", "planner", "inspector"])
def test_nobody_else_registers_units_at_a_site(people, username):
    """P11-10g: a site manager cannot manage another site's units; operators and the QP cannot either."""
    with pytest.raises(PermissionDenied):
        _unit(people[username])
    assert not ManufacturingUnit.objects.filter(serial="PRD-T-0001").exists()


def test_an_overdue_unit_is_unusable_until_requalified(people):
    """P11-10h: overdue calibration or maintenance makes the unit unusable; requalifying restores it."""
    qa = people["qa"]
    unit = _unit(qa, cal=-1)
    ok, why = unit_usable(unit)
    assert not ok and "overdue" in why and "calibration was due" in why and "until requalified" in why
    today = site_today(unit.site)
    unit = unit_requalify(actor=people["manager.mad"], unit=unit, calibration_due=today + dt.timedelta(days=180),
                          maintenance_due=today + dt.timedelta(days=200), reason="Calibrated, service visit SV-77")
    assert unit_usable(unit) == (True, "")
    event = Event.objects.get(event_type=NetworkEvent.UNIT_REQUALIFIED, object_id=str(unit.pk))
    assert event.old["calibration_due"] == (today - dt.timedelta(days=1)).isoformat()
    assert event.new["calibration_due"] == (today + dt.timedelta(days=180)).isoformat()


def test_a_unit_is_judged_on_the_date_asked_about(people):
    """P11-10h: usable today, unusable the day after its maintenance is due."""
    unit = _unit(people["qa"], cal=100, maint=10)
    later = dt.datetime.combine(unit.maintenance_due + dt.timedelta(days=1), dt.time(12), tzinfo=unit.site.tz)
    assert unit_usable(unit)[0] is True
    ok, why = unit_usable(unit, at=later)
    assert not ok and "maintenance was due" in why


def test_a_unit_of_another_site_is_not_usable_here(people):
    """P11-10h: a unit is used only at its own site."""
    unit = _unit(people["qa"], code="LIS")
    ok, why = unit_usable(unit, site=Site.objects.get(code="MAD"))
    assert not ok and "belongs to Lisbon POCare site (LIS), not to Madrid POCare site (MAD)" in why
    assert unit_usable(unit, site=Site.objects.get(code="LIS")) == (True, "")


def test_out_of_service_and_retired_units_are_unusable(people):
    """P11-10h: out of service until requalified; retired for good."""
    qa = people["qa"]
    unit = _unit(qa)
    unit = unit_status_change(actor=qa, unit=unit, status=UnitStatus.OUT_OF_SERVICE, reason="Pump alarm")
    assert unit_usable(unit) == (False, f"{unit} is out of service.")
    event = Event.objects.get(event_type=NetworkEvent.UNIT_STATUS_CHANGED, object_id=str(unit.pk))
    assert event.old == {"status": "qualified"} and event.new == {"status": "out_of_service"}
    with pytest.raises(ValidationError) as exc:
        unit_status_change(actor=qa, unit=unit, status=UnitStatus.QUALIFIED, reason="fixed")
    assert "requalified" in exc.value.message_dict["status"][0]
    today = site_today(unit.site)
    unit = unit_requalify(actor=qa, unit=unit, calibration_due=today + dt.timedelta(days=30),
                          maintenance_due=today + dt.timedelta(days=30), reason="Pump replaced, OQ repeated")
    assert unit_usable(unit)[0]
    unit = unit_status_change(actor=qa, unit=unit, status=UnitStatus.RETIRED, reason="End of life")
    with pytest.raises(ValidationError) as exc:
        unit_requalify(actor=qa, unit=unit, calibration_due=today + dt.timedelta(days=30),
                       maintenance_due=today + dt.timedelta(days=30), reason="again")
    assert "retired" in exc.value.message_dict["status"][0]


@pytest.mark.parametrize(("field", "kwargs"), [
    ("device_type", {"device_type": "toaster"}),
    ("serial", {"serial": "  "}),
    ("calibration_due", {"calibration_due": "next year"}),
    ("reason", {"reason": ""}),
])
def test_bad_unit_input_names_the_field(people, field, kwargs):
    """Bad input is refused, naming the field; nothing is registered."""
    site = Site.objects.get(code="MAD")
    args = {"device_type": "clinimacs_prodigy", "serial": "PRD-BAD", "calibration_due": dt.date(2030, 1, 1),
            "maintenance_due": dt.date(2030, 1, 1), "reason": "x", **kwargs}
    before = Event.objects.count()
    with pytest.raises(ValidationError) as exc:
        unit_register(actor=people["qa"], site=site, **args)
    assert field in exc.value.message_dict and Event.objects.count() == before


def test_a_serial_is_registered_once_and_requalifying_needs_future_dates(people):
    """A serial identifies one unit network-wide; a requalification's next due dates lie ahead."""
    qa = people["qa"]
    unit = _unit(qa)
    with pytest.raises(ValidationError) as exc:
        _unit(qa, code="LIS")
    assert "already registered" in exc.value.message_dict["serial"][0]
    with pytest.raises(ValidationError) as exc:
        unit_requalify(actor=qa, unit=unit, calibration_due=site_today(unit.site), maintenance_due=dt.date(2099, 1, 1),
                       reason="x")
    assert "after today" in exc.value.message_dict["calibration_due"][0]


def test_due_dates_are_ok_soon_or_overdue():
    """Due within 30 days is 'soon' (amber); past the date is 'overdue' (red)."""
    today = dt.date(2026, 6, 1)
    assert unit_due_state(dt.date(2026, 5, 31), today) == "overdue"
    assert unit_due_state(today, today) == "soon"
    assert unit_due_state(dt.date(2026, 7, 1), today) == "soon"
    assert unit_due_state(dt.date(2026, 7, 2), today) == "ok"


def test_the_site_page_highlights_due_dates_and_a_manager_cannot_touch_another_sites_unit(people, client, login):
    """P11-10g: 404 for another site's unit, 403 for those without the permission; due dates coloured."""
    qa = people["qa"]
    overdue = _unit(qa, serial="PRD-OVERDUE", cal=-3)
    _unit(qa, serial="PRD-SOON", cal=12)
    login("manager.mad")
    page = client.get("/network/MAD/").content.decode()
    assert "due-overdue" in page and "due-soon" in page and "PRD-OVERDUE" in page and "Register a unit" in page
    assert "Not usable" in page
    client.logout()
    lis_unit = _unit(qa, code="LIS", serial="PRD-LIS-1")
    login("manager.mad")
    assert client.get(f"/network/units/{lis_unit.pk}/").status_code == 404
    response = client.post(f"/network/units/{lis_unit.pk}/", {"action": "status", "status": "retired", "reason": "x"})
    assert response.status_code == 404
    assert client.post("/network/LIS/units/", {"device_type": "clinimacs_prodigy", "serial": "X1",
                                               "calibration_due": "2030-01-01", "maintenance_due": "2030-01-01",
                                               "reason": "x"}).status_code == 404
    lis_unit.refresh_from_db()
    assert lis_unit.status == UnitStatus.QUALIFIED
    # requalify an overdue unit through the page
    response = client.post(f"/network/units/{overdue.pk}/", {"action": "requalify", "calibration_due": "2099-01-01",
                                                            "maintenance_due": "2099-02-01", "reason": "Calibrated"})
    assert response.status_code == 302
    overdue.refresh_from_db()
    assert unit_usable(overdue)[0]
    client.logout()
    login("operator.mad")
    assert client.post(f"/network/units/{overdue.pk}/", {"action": "status", "status": "retired",
                                                        "reason": "x"}).status_code == 403


def test_the_unit_form_names_the_bad_field(people, client, login):
    """Bad input → 400 with a message at the field; nothing changed."""
    login("manager.mad")
    before = Event.objects.count()
    response = client.post("/network/MAD/units/", {"device_type": "clinimacs_prodigy", "serial": "PRD-F-1",
                                                  "calibration_due": "soon", "maintenance_due": "2030-01-01",
                                                  "reason": "x"})
    assert response.status_code == 400 and "Enter a valid date" in response.content.decode()
    assert Event.objects.count() == before
