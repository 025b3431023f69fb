"""The comparability monitor on the demo history (pocare.analytics.services): Groningen's CAR+ drift
is flagged by the chart rules and shown as not equivalent, the other sites' cells mostly
equivalent; signals are raised once, with stable fingerprints; one ledger event per run on the
network chain (POC-2, CMP-SITE, CMP-STAT)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command

from pocare.analytics import comparability as cmp
from pocare.analytics import selectors
from pocare.analytics.events import AnalyticsEvent
from pocare.analytics.models import ComparabilityResult
from pocare.analytics.services import MONITOR_SYSTEM, comparability_monitor_run
from pocare.demo import masterfile as masterfile_demo
from pocare.demo import network as network_demo
from pocare.demo.history import load_history
from pocare.ledger.models import NETWORK_CHAIN, Event
from pocare.ledger.verify import verify_all
from pocare.quality.models import QualitySignal
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def history(people):  # type: ignore[no-untyped-def]
    version = masterfile_demo.load_product_and_v1(password=PASSWORD)
    network_demo.load(password=PASSWORD, product=version.product)
    load_history(months=18, now=NOW)
    return version


def test_demo_drift_is_flagged_and_not_equivalent_and_signals_are_raised_once(history):
    """POC-2 CMP-SITE CMP-STAT: on 18 months of demo history, GRO's car-positive is flagged by a
    signalling rule and its equivalence is not shown; at least 90 % of the other cells are
    equivalent; the run raises signals with their evidence, records one network-chain event naming
    the system, and a second run raises nothing new."""
    data = selectors.version_data(None, history, until=NOW)
    car = data.assessment("car-positive")
    assert car is not None
    gro = car.sites["GRO"]
    assert gro.status == cmp.NOT_EQUIVALENT and float(gro.tost.ci_low) < -float(gro.tost.margin)
    assert {h.rule for h in gro.alarms} & set(cmp.SIGNAL_RULES)
    others = [c for a in data.assessments() for code, c in a.sites.items()
              if not (a.spec.id == "car-positive" and code == "GRO")]
    assert sum(c.status == cmp.EQUIVALENT for c in others) >= 0.9 * len(others)

    before = Event.objects.filter(event_type=AnalyticsEvent.MONITOR_RUN).count()
    run = comparability_monitor_run(now=NOW)
    raised = {(s.site.code, s.attribute_id, s.rule) for s in run.raised}
    assert ("GRO", "car-positive", "tost") in raised
    assert any(site == "GRO" and attr == "car-positive" and rule in cmp.SIGNAL_RULES for site, attr, rule in raised)
    tost = QualitySignal.objects.get(site__code="GRO", attribute_id="car-positive", rule="tost")
    assert tost.evidence["version"] == history.pk and tost.evidence["ci90"][0] < -tost.evidence["margin"]
    assert len(tost.fingerprint) == 64
    assert tost.evidence["attribute_name"] and len(tost.evidence["ci90"]) == 2

    # What the pages read: one stored row per site × numeric attribute, with when and from what.
    stored = ComparabilityResult.objects.filter(version=history)
    assert stored.count() == run.cells
    gro_row = stored.get(site__code="GRO", attribute_id="car-positive")
    assert gro_row.status == cmp.NOT_EQUIVALENT and gro_row.computed_at == NOW and gro_row.lots == gro.n
    assert gro_row.network_lots == car.network_n and len(gro_row.inputs_hash) == 64
    assert gro_row.cell["status_label"] == "not equivalent" and gro_row.cell["alarms"]

    event = Event.objects.filter(event_type=AnalyticsEvent.MONITOR_RUN).latest("id")
    assert Event.objects.filter(event_type=AnalyticsEvent.MONITOR_RUN).count() == before + 1
    assert event.chain == NETWORK_CHAIN and event.actor_id is None and event.actor_username == MONITOR_SYSTEM
    assert run.event == event and f'"cells":{run.cells}' in event.new_values

    again = comparability_monitor_run(now=NOW)
    assert again.raised == [] and again.already_raised == len(run.raised) + run.already_raised
    assert QualitySignal.objects.count() == len(run.raised)
    assert Event.objects.filter(event_type=AnalyticsEvent.MONITOR_RUN).count() == before + 2
    assert verify_all().ok


def test_command_runs_the_monitor(people, capsys):
    """POC-2: `pocare comparability run` (a scheduled job) runs the monitor and says what it did; a bad
    --now is refused naming the option."""
    from django.core.management.base import CommandError

    call_command("comparability", "run", "--now", "2026-11-20T10:00:00")
    assert "Comparability monitor:" in capsys.readouterr().out
    assert Event.objects.filter(event_type=AnalyticsEvent.MONITOR_RUN, object_id="2026-11-20T10:00:00+00:00").exists()
    with pytest.raises(CommandError, match="--now"):
        call_command("comparability", "run", "--now", "yesterday")
