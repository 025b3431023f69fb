"""``pocare plan`` and ``pocare twin`` write HTML reports and print progress; ``live`` takes the twin's
parameters from the batch records."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import CommandError, call_command

from pocare.demo import masterfile as masterfile_demo
from pocare.demo import network as network_demo
from pocare.demo.history import load_history
from pocare.planning import live
from pocare.planning.models import PlanningRun
from tests.conftest import PASSWORD
from tests.planning.test_views import TWIN


def test_plan_command_writes_a_report(tmp_path):
    out = io.StringIO()
    report = tmp_path / "plan.html"
    call_command("plan", "--region", "PT", "--p", "3", "--max-candidates", "30", "--out", str(report), stdout=out)
    text = report.read_text()
    assert "<svg" in text and "MCLP" in text
    assert "100 %" in out.getvalue() and "Report:" in out.getvalue()
    with pytest.raises(CommandError, match="region"):
        call_command("plan", "--region", "XX", "--out", str(report), stdout=io.StringIO())


def test_twin_command_writes_a_report(tmp_path):
    out = io.StringIO()
    report = tmp_path / "twin.html"
    call_command("twin", "--scenario", "disruption", "--sites", "3", "--referrals", "200", "--replications", "2",
                 "--horizon-days", "90", "--scheduler", "in-process", "--out", str(report), stdout=out)
    assert "referral-to-infusion" in report.read_text()
    assert "disruption: share treated" in out.getvalue()


@pytest.mark.django_db
def test_live_parameters_come_from_the_batch_records(people):
    version = masterfile_demo.load_product_and_v1(password=PASSWORD)
    network_demo.load(password=PASSWORD, product=version.product)
    load_history(months=3, now=dt.datetime(2026, 11, 20, tzinfo=dt.UTC))
    seen = live.observed()
    assert seen["batches"] >= live.MIN_BATCHES and seen["manufacture_days"]
    config, used = live.twin_network(referrals_per_year=500)
    assert used["units"] == sum(s.units for s in config.sites) > 0
    assert used.get("manufacture") == "observed"
    assert config.manufacture.kind == "empirical"
    assert config.abort_rate == pytest.approx(seen["aborted"] / seen["batches"])


@pytest.mark.django_db
def test_the_live_twin_takes_its_demand_from_the_therapy_orders(people):
    """No silent 10,000: the referrals a year are the orders of the last year per site, extrapolated
    and divided by the eligible share; without enough history the planner is asked for them."""
    version = masterfile_demo.load_product_and_v1(password=PASSWORD)
    network_demo.load(password=PASSWORD, product=version.product)
    with pytest.raises(ValueError, match=r"^referrals: the network has 0 days of therapy orders"):
        live.twin_network()
    now = dt.datetime.now(dt.UTC)
    load_history(months=3, now=now - dt.timedelta(days=1))
    counts, days = live.observed_referrals()
    assert sum(counts.values()) > 0 and 28 <= days <= 366
    config, used = live.twin_network()
    per_site = {r.name.removeprefix("near "): r.referrals_per_year for r in config.regions}
    for code, n in counts.items():
        if code in per_site:
            assert per_site[code] == pytest.approx(n * 365 / days / config.eligible_share, rel=0.01)
    assert used["referrals_per_year"] == pytest.approx(sum(per_site.values()))
    assert "therapy orders" in used["demand"] and "÷ 0.85 eligible" in used["demand"]
    given, told = live.twin_network(referrals_per_year=1300)
    assert sum(r.referrals_per_year for r in given.regions) == pytest.approx(1300)
    assert "as given" in told["demand"]


@pytest.mark.django_db
def test_the_live_twin_form_left_blank_uses_the_orders(login, people, django_capture_on_commit_callbacks):
    version = masterfile_demo.load_product_and_v1(password=PASSWORD)
    network_demo.load(password=PASSWORD, product=version.product)
    load_history(months=3, now=dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
    client = login("planner")
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post("/planning/twin/new/", {**TWIN, "source": "live", "referrals_per_year": ""})
    assert response.status_code == 302
    parameters = PlanningRun.objects.get().parameters
    assert "referrals_per_year" not in parameters and "therapy orders" in parameters["demand"]
    total = sum(r["referrals_per_year"] for r in parameters["network"]["regions"])
    assert 0 < total < 10_000
