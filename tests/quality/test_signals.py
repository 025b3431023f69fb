"""Quality signals from the comparability monitor: raised once per fingerprint, routed to Control
Site QA, resolved to a deviation, a change request or a documented decision."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from pocare.ledger.models import Event
from pocare.network.models import Site
from pocare.quality import services
from pocare.quality.models import Notification
from tests.masterfile.helpers import product
from tests.quality import helpers as h

pytestmark = pytest.mark.django_db


def _raise(fingerprint: str = "mad-viability-we1-2026-11", site: str = "MAD"):  # type: ignore[no-untyped-def]
    return services.signal_raise(site=Site.objects.get(code=site), product=product(), attribute_id="viability",
                                 rule="we-1", summary="Viability beyond the lower 3-sigma limit",
                                 evidence={"batch": "MAD-2026-0040", "value": 71.2, "lcl": 78.4},
                                 fingerprint=fingerprint)


def test_the_same_signal_is_raised_once_and_qa_is_notified():
    """Q10-PQS: monitoring signals reach Control Site QA once, recorded by the system."""
    signal, created = _raise()
    again, created_again = _raise()
    assert created and not created_again and again.pk == signal.pk
    events = Event.objects.filter(event_type="quality.signal_raised", object_id=str(signal.pk))
    assert events.count() == 1 and events.get().actor_username == "comparability-monitor"
    assert set(Notification.objects.filter(signal=signal).values_list("recipient__username", flat=True)) == \
        {"qa", "qa2"}


def test_signal_input_is_checked():
    with pytest.raises(ValidationError) as exc:
        services.signal_raise(site=Site.objects.get(code="MAD"), product=product(), attribute_id="v", rule="we-1",
                              summary="x", evidence=[], fingerprint="f")  # type: ignore[arg-type]
    assert "evidence" in exc.value.message_dict


def test_qa_resolves_a_signal_with_a_deviation_or_a_decision():
    """Q10-PQS: each signal ends linked to a deviation, a change request or a documented decision."""
    signal, _ = _raise("one")
    lis = h.deviation("LIS")
    with pytest.raises(ValidationError) as exc:
        services.signal_resolve(actor=h.user("qa"), signal=signal, outcome="deviation", deviation=lis, reason="x")
    assert "deviation" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        services.signal_resolve(actor=h.user("qa"), signal=signal, outcome="decision", reason="x")
    assert "decision" in exc.value.message_dict
    with pytest.raises(PermissionDenied):
        services.signal_resolve(actor=h.user("manager.mad"), signal=signal, outcome="decision", decision="ok",
                                reason="x")
    mad = h.deviation("MAD")
    services.signal_resolve(actor=h.user("qa"), signal=signal, outcome="deviation", deviation=mad,
                            reason="Investigate as a deviation")
    signal.refresh_from_db()
    assert signal.status == "resolved" and signal.deviation == mad and signal.resolved_by == h.user("qa")
    with pytest.raises(ValidationError):
        services.signal_resolve(actor=h.user("qa"), signal=signal, outcome="decision", decision="x", reason="x")
    other, _ = _raise("two")
    services.signal_resolve(actor=h.user("qa"), signal=other, outcome="decision",
                            decision="Within the expected range after the new counting method", reason="reviewed")


def test_signals_api_lists_and_resolves(client, login):
    """Q10-PQS: the API lists signals and QA resolves one; junk is a 400 naming the field."""
    signal, _ = _raise("api")
    login("qa")
    listed = client.get("/api/signals/?status=open").json()
    assert signal.pk in [s["id"] for s in listed["results"]]
    assert client.get("/api/signals/?status=zzz").status_code == 400
    bad = client.post(f"/api/signals/{signal.pk}/resolve/", {"outcome": "shrug", "reason": "x"},
                      content_type="application/json")
    assert bad.status_code == 400 and "outcome" in bad.json()
    missing = client.post(f"/api/signals/{signal.pk}/resolve/", {"outcome": "deviation", "deviation": "DEV-NOPE",
                                                                 "reason": "x"}, content_type="application/json")
    assert missing.status_code == 400 and "deviation" in missing.json()
    ok = client.post(f"/api/signals/{signal.pk}/resolve/", {"outcome": "decision", "decision": "Noise",
                                                            "reason": "reviewed"}, content_type="application/json")
    assert ok.status_code == 200 and ok.json()["status"] == "resolved"
