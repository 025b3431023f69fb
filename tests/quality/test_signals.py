"""Quality signals from the comparability monitor: raised once per fingerprint, routed to Control
Site QA, resolved to a deviation, a change request or a documented decision."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from pocare.ledger.canonical import content_hash
from pocare.ledger.models import Event
from pocare.ledger.signing import signatures_for
from pocare.network.models import Site
from pocare.quality import services
from pocare.quality.models import Notification
from tests.conftest import PASSWORD
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
    """Q10-PQS P11-200: each signal ends linked to an open deviation of its site, a change request or a
    documented decision, signed by QA (meaning: reviewed) over the resolution."""
    signal, _ = _raise("one")
    lis = h.deviation("LIS")
    with pytest.raises(ValidationError) as exc:
        services.signal_resolve(actor=h.user("qa"), signal=signal, outcome="deviation", deviation=lis, reason="x", credentials=h.creds("qa"))
    assert "deviation" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        services.signal_resolve(actor=h.user("qa"), signal=signal, outcome="decision", reason="x", credentials=h.creds("qa"))
    assert "decision" in exc.value.message_dict
    with pytest.raises(PermissionDenied):
        services.signal_resolve(actor=h.user("manager.mad"), signal=signal, outcome="decision", decision="ok",
                                reason="x", credentials=h.creds("qa"))
    mad = h.deviation("MAD")
    services.signal_resolve(actor=h.user("qa"), signal=signal, outcome="deviation", deviation=mad,
                            reason="Investigate as a deviation", credentials=h.creds("qa"))
    signal.refresh_from_db()
    assert signal.status == "resolved" and signal.deviation == mad and signal.resolved_by == h.user("qa")
    signature = signatures_for(signal).get()
    assert signature.meaning == "reviewed" and signature.signer == h.user("qa")
    assert signature.record_hash == content_hash(signal.signed_content())
    with pytest.raises(ValidationError):
        services.signal_resolve(actor=h.user("qa"), signal=signal, outcome="decision", decision="x", reason="x", credentials=h.creds("qa"))
    other, _ = _raise("two")
    services.signal_resolve(actor=h.user("qa"), signal=other, outcome="decision",
                            decision="Within the expected range after the new counting method", reason="reviewed",
                            credentials=h.creds("qa"))


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
                                                                 "reason": "x", "username": "qa",
                                                                 "password": PASSWORD},
                          content_type="application/json")
    assert missing.status_code == 400 and "deviation" in missing.json()
    unsigned = client.post(f"/api/signals/{signal.pk}/resolve/", {"outcome": "decision", "decision": "Noise",
                                                                  "reason": "reviewed"}, content_type="application/json")
    assert unsigned.status_code == 400 and "password" in unsigned.json()
    ok = client.post(f"/api/signals/{signal.pk}/resolve/", {"outcome": "decision", "decision": "Noise",
                                                            "reason": "reviewed", "username": "qa",
                                                            "password": PASSWORD}, content_type="application/json")
    assert ok.status_code == 200 and ok.json()["status"] == "resolved"


def _monitor_like(site: str, rule: str, fingerprint: str):  # type: ignore[no-untyped-def]
    """A signal with the evidence the comparability monitor writes (pocare.analytics.services)."""
    if rule == "tost":
        ev = {"n": 12, "difference": -9.2, "ci90": [-12.5, -6.0], "margin": 9.9, "attribute_name": "CAR+ cells",
              "unit": "%"}
    else:
        recent = [{"batch": f"{site}-{i}", "value": 45.0 + (i % 3)} for i in range(9)]
        recent += [{"batch": f"{site}-9", "value": 38.0}, {"batch": f"{site}-10", "value": 37.5}]
        ev = {"points": recent[-2:], "recent": recent, "centre": 46.0, "ucl": 52.0, "lcl": 40.0,
              "rule_name": "Two out of three points in a row beyond 2σ on the same side",
              "attribute_name": "CAR+ cells", "unit": "%"}
    return services.signal_raise(site=Site.objects.get(code=site), product=product(), attribute_id="car-positive",
                                 rule=rule, summary=f"{rule} at {site}", evidence=ev, fingerprint=fingerprint)[0]


def test_signals_page_groups_tells_the_evidence_and_resolves_signed_with_a_listed_deviation(client, login):
    """Q10-PQS CMP-STAT P11-200: the signals page groups signals by site and attribute, tells each one's
    evidence as a sentence with a small chart (no Python dict), opens one signal's resolution form at a time
    (a link per open signal; a signal that is not open or not there is refused naming ``resolve``), offers as
    deviations only the open deviations of the signal's site, shows a refused form on its own signal only, and
    resolves with a signature."""
    one = _monitor_like("MAD", "nelson-5", "page-1")
    _monitor_like("MAD", "tost", "page-2")
    three = _monitor_like("LIS", "nelson-5", "page-3")
    mad, lis = h.deviation("MAD"), h.deviation("LIS")
    login("qa")
    html = client.get("/quality/signals/").content.decode()
    assert html.count('class="card signal-group"') == 2  # MAD car-positive, LIS car-positive
    # One form at a time: each open signal links to its own; the link opens it, with its site's deviations.
    assert 'name="password"' not in html and f'href="?resolve={one.pk}#signal-{one.pk}"' in html
    for wrong in ("abc", "9" * 400, str(one.pk + 10_000), "-1"):
        refused = client.get("/quality/signals/", {"resolve": wrong})
        assert refused.status_code == 400 and "resolve" in refused.content.decode()
    html = client.get("/quality/signals/", {"resolve": one.pk}).content.decode()
    assert html.count('name="password"') == 1
    assert "2 of the last 11 lots flagged — two out of three points in a row beyond 2σ" in html
    assert "differ from the rest of the network by −9.2 %" in html and "not equivalent (TOST)" in html
    assert "{&#x27;" not in html and "{'" not in html  # no dict shown
    assert html.count("<svg") >= 3
    start = html.index(f'id="signal-{one.pk}"')
    form_one = html[start:html.index("</tr>", start)]
    assert f'value="{mad.reference}"' in form_one and lis.reference not in form_one
    # A wrong password: the error shows on that signal's form, not on the others.
    bad = client.post("/quality/signals/", {"signal": one.pk, "outcome": "deviation", "deviation": mad.reference,
                                            "reason": "Investigate", "username": "qa", "password": "wrong"})
    page = bad.content.decode()
    assert bad.status_code == 400 and page.count('class="field-error"') == 1
    start = page.index(f'id="signal-{one.pk}"')
    assert start < page.index(f'id="id_signal{one.pk}_password_error"') < page.index("</tr>", start)
    typed = client.post("/quality/signals/", {"signal": three.pk, "outcome": "deviation", "deviation": "DEV-TYPED",
                                              "reason": "x", "username": "qa", "password": PASSWORD})
    assert typed.status_code == 400 and "Select a valid choice" in typed.content.decode()
    one.refresh_from_db()
    assert one.status == "open"
    ok = client.post("/quality/signals/", {"signal": one.pk, "outcome": "deviation", "deviation": mad.reference,
                                           "reason": "Investigate", "username": "qa", "password": PASSWORD})
    assert ok.status_code == 302
    one.refresh_from_db()
    assert one.status == "resolved" and one.deviation == mad and signatures_for(one).count() == 1


def test_a_site_with_many_open_deviations_offers_the_latest_and_still_takes_an_older_one(client, login):
    """Q10-PQS: each signal's picker offers the site's 25 deviations opened last and says how many are
    open (a form per signal × hundreds of open deviations made the page megabytes); a posted older one
    of the same site is still accepted, and one of another site still is not."""
    from pocare.quality.views import DEVIATION_CHOICES

    signal = _monitor_like("MAD", "nelson-5", "many-1")
    opened = [h.deviation("MAD") for _ in range(DEVIATION_CHOICES + 2)]
    login("qa")
    html = client.get("/quality/signals/", {"resolve": signal.pk}).content.decode()
    start = html.index(f'id="signal-{signal.pk}"')
    form = html[start:html.index("</tr>", start)]
    picker = form[form.index('name="deviation"'):]
    assert picker[:picker.index("</select>")].count("<option") == DEVIATION_CHOICES + 1  # and "— choose —"
    assert f"The {DEVIATION_CHOICES} opened last of {DEVIATION_CHOICES + 2} open at the site" in form
    oldest = min(opened, key=lambda d: (d.opened_at, d.pk))
    assert f'value="{oldest.reference}"' not in form
    other = client.post("/quality/signals/", {"signal": signal.pk, "outcome": "deviation",
                                              "deviation": h.deviation("LIS").reference, "reason": "x",
                                              "username": "qa", "password": PASSWORD})
    assert other.status_code == 400 and "Select a valid choice" in other.content.decode()
    ok = client.post("/quality/signals/", {"signal": signal.pk, "outcome": "deviation", "deviation": oldest.reference,
                                           "reason": "Linked to the oldest open one", "username": "qa",
                                           "password": PASSWORD})
    assert ok.status_code == 302
    signal.refresh_from_db()
    assert signal.status == "resolved" and signal.deviation == oldest


def test_the_signals_page_shows_a_page_of_them_open_first(client, login):
    """Q10-PQS: with more signals than a page holds, the page shows the open ones first, newest first,
    and says how many there are in all; the status filter reaches the others."""
    from pocare.quality.models import QualitySignal, SignalStatus
    from pocare.quality.views import SIGNALS_SHOWN

    raised = [_raise(fingerprint=f"bulk-{n}")[0] for n in range(SIGNALS_SHOWN + 5)]
    QualitySignal.objects.filter(pk__in=[s.pk for s in raised[-3:]]).update(status=SignalStatus.RESOLVED)
    login("qa")
    page = client.get("/quality/signals/")
    assert page.status_code == 200
    body = page.content.decode()
    assert f"The {SIGNALS_SHOWN} first of {SIGNALS_SHOWN + 5} signals" in body
    shown = {s["signal"].pk for g in page.context["groups"] for s in g["signals"]}
    assert len(shown) == SIGNALS_SHOWN and not shown & {s.pk for s in raised[-3:]}  # the resolved newest: not first
    resolved = client.get("/quality/signals/?status=resolved")
    assert {s["signal"].pk for g in resolved.context["groups"] for s in g["signals"]} == {s.pk for s in raised[-3:]}
    assert "signals-shown" not in resolved.content.decode()
