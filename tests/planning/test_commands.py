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
from tests.conftest import PASSWORD


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
