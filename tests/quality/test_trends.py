"""Deviation trends: counts by site, kind, class, step and month, and their SVG charts."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from pocare.quality.models import Deviation
from pocare.quality.trends import deviation_trends, months_back
from tests.quality import helpers as h

pytestmark = pytest.mark.django_db


def test_trend_counts_by_site_kind_class_step_and_month():
    """Q10-PQS: trends for management review, every month listed (zero where quiet)."""
    h.rules()
    a = h.deviation("MAD", step_id="ipc-day5")
    h.classify(a, "major")
    c = h.deviation("MAD", step_id="ipc-day5")
    b = h.deviation("LIS", opened_days_ago=35)
    h.classify(b, "minor")
    now = timezone.now()
    start = (now - dt.timedelta(days=70)).replace(day=1)
    t = deviation_trends(Deviation.objects.filter(pk__in=[a.pk, b.pk, c.pk]), start=start, end=now)
    assert t.total == 3
    assert t.by_site == {"LIS": 1, "MAD": 2}
    assert t.by_class == {"major": 1, "minor": 1, "": 1}
    assert t.by_step == {"ipc-day5": 2}
    assert t.by_kind == {"Other": 3}
    assert sum(t.by_month.values()) == 3 and len(t.by_month) >= 3
    assert t.by_month[f"{now:%Y-%m}"] >= 2
    charts = t.charts()
    assert set(charts) == {"site", "kind", "class", "step", "month"}
    assert all(svg.startswith("<svg") for svg in charts.values())
    assert ">2<" in charts["site"] and "Deviations by site" in charts["site"]
    assert months_back(dt.datetime(2026, 3, 15, tzinfo=dt.UTC), 18) == dt.datetime(2024, 10, 1, tzinfo=dt.UTC)
    assert months_back(dt.datetime(2026, 3, 15, tzinfo=dt.UTC), 1) == dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
