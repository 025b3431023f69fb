"""The network governance demo: units everywhere, authorizations, and Porto part-way through its
lifecycle — loaded through the services, idempotently."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from pocare.demo import network as demo
from pocare.ledger.models import Event
from pocare.network.models import ManufacturingUnit, Site, SiteAuthorization, SiteStatus
from pocare.network.selectors import DUE_SOON_DAYS, site_today, unit_usable
from pocare.network.services import site_transition
from tests.conftest import PASSWORD
from tests.network.conftest import creds

pytestmark = pytest.mark.django_db


def test_the_demo_loads_once_and_shows_the_lifecycle(people, product):
    """POC-3 POC-4: two units per site, one due soon, one overdue; every active site authorized; Porto
    in qualification with its making active refused for what is missing."""
    demo.load(password=PASSWORD, product=product)
    events = Event.objects.count()
    demo.load(password=PASSWORD, product=product)  # idempotent
    assert Event.objects.count() == events

    for code in ("MAD", "LIS", "MUC", "GRO", "MIL", "DUB"):
        assert ManufacturingUnit.objects.filter(site__code=code).count() == 2
    assert set(ManufacturingUnit.objects.filter(site__code="MUC").values_list("device_type", flat=True)) == {
        "lonza_cocoon"}
    units = list(ManufacturingUnit.objects.select_related("site"))
    unusable = [u for u in units if not unit_usable(u)[0]]
    assert [u.serial for u in unusable] == ["PRD-20-03987"]
    soon = [u for u in units if 0 <= (u.calibration_due - site_today(u.site)).days <= DUE_SOON_DAYS]
    assert [u.site.code for u in soon] == ["LIS"]

    assert set(SiteAuthorization.objects.values_list("site__code", flat=True)) == {
        "MAD", "LIS", "MUC", "GRO", "MIL", "DUB"}

    porto = Site.objects.get(code="OPO")
    assert porto.status == SiteStatus.QUALIFICATION and porto.facility_id == "P1007"
    assert [t.to_status for t in porto.transitions.order_by("at")] == ["onboarding", "qualification"]
    with pytest.raises(ValidationError) as exc:
        site_transition(actor=people["qa"], site=porto, to_status=SiteStatus.ACTIVE, reason="go",
                        credentials=creds(people["qa"]))
    message = exc.value.message_dict["evidence"][0]
    assert "1 more passed process performance run (2 of 3 on record)" in message
    assert message.count("has no recorded evidence") == 3
