"""One time convention (STYLE; P11-50): a record's time in its site's zone with the zone's name, a
signature's with UTC beside it; pages, certificates and labels share the one function."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.template import Context, Template
from django.template.loader import render_to_string

from pocare.core import times

MADRID = zoneinfo.ZoneInfo("Europe/Madrid")
TEMPLATES = Path(__file__).resolve().parents[2] / "src" / "pocare"


def test_a_record_time_is_site_local_with_the_zone_name():
    """DI-ALCOA: winter and summer time at the site, each with its own abbreviation; a site object, an
    IANA name or a tzinfo all name the zone; no zone means UTC for a naive or UTC time."""
    winter = dt.datetime(2026, 12, 5, 13, 6, 9, tzinfo=dt.UTC)
    summer = dt.datetime(2026, 7, 1, 8, 0, tzinfo=dt.UTC)
    site = SimpleNamespace(time_zone="Europe/Madrid", tz=MADRID)
    assert times.site_time(winter, site) == "2026-12-05 14:06 CET"
    assert times.site_time(summer, "Europe/Madrid") == "2026-07-01 10:00 CEST"
    assert times.site_time(winter, MADRID, seconds=True) == "2026-12-05 14:06:09 CET"
    assert times.site_time(winter) == "2026-12-05 13:06 UTC"
    assert times.site_time(winter.replace(tzinfo=None)) == "2026-12-05 13:06 UTC"
    assert times.site_time(winter, "Not/AZone") == "2026-12-05 13:06 UTC"


def test_a_signature_time_has_utc_beside_it_with_the_date_when_it_differs():
    """P11-50: the manifestation's time at the site with UTC beside it; across midnight the UTC side
    carries its own date; a time already in UTC is not written twice."""
    evening = dt.datetime(2026, 12, 5, 23, 30, tzinfo=dt.UTC)
    assert times.site_time(evening, MADRID, with_utc=True) == "2026-12-06 00:30 CET (2026-12-05 23:30 UTC)"
    noon = dt.datetime(2026, 12, 5, 11, 0, 5, tzinfo=dt.UTC)
    assert times.site_time(noon, MADRID, with_utc=True, seconds=True) == "2026-12-05 12:00:05 CET (11:00:05 UTC)"
    assert times.site_time(noon, None, with_utc=True) == "2026-12-05 11:00 UTC"


def test_the_filters_write_a_time_element_and_survive_an_unrepresentable_value():
    """DI-ALCOA: ``site_time`` and ``signed_time`` give a ``<time>`` with the exact instant; a stored
    year-9999 time shows as invalid instead of breaking the page."""
    when = dt.datetime(2026, 12, 5, 13, 6, 9, tzinfo=dt.UTC)
    html = Template(
        "{% load times %}{{ t|site_time:'Europe/Madrid' }}|{{ t|signed_time:'Europe/Madrid' }}|"
        "{{ bad|site_time:'Europe/Madrid' }}|{{ none|site_time }}"
    ).render(Context({"t": when, "bad": dt.datetime(9999, 12, 31, 23, 0, tzinfo=dt.UTC), "none": None}))
    assert '<time datetime="2026-12-05T13:06:09+00:00"' in html and ">2026-12-05 14:06 CET</time>" in html
    assert ">2026-12-05 14:06:09 CET (13:06:09 UTC)</time>" in html
    assert "invalid timestamp" in html and html.endswith("|—")


@pytest.mark.django_db
def test_a_signature_manifestation_on_a_site_page_gives_site_time_and_utc(people):
    """P11-50: the shared signature block, on a page of a site, prints the signing time at the site
    with its zone and UTC beside it."""
    from pocare.network.models import Site

    site = Site.objects.get(code="MAD")
    signed = dt.datetime(2026, 12, 5, 13, 6, 9, tzinfo=dt.UTC)
    signature = SimpleNamespace(
        signer_printed_name="Jordi Ferrer",
        signer_username="qp",
        signed_at=signed,
        get_meaning_display="Released",
        record_repr="Certification",
        record_type="x",
        record_id="1",
        record_hash="ab" * 32,
        event_id=None,
    )
    html = render_to_string("ledger/_signature.html", {"signature": signature, "valid": True, "site": site})
    assert "2026-12-05 14:06:09 CET (13:06:09 UTC)" in html


def test_no_template_formats_a_time_of_day_by_hand():
    """DI-ALCOA: every time of day on a page goes through the one convention (``site_time``,
    ``signed_time``, or ``utc`` for records of no site), not Django's ``date`` filter, which writes
    no zone."""
    by_hand = re.compile(r'\|date:"[^"]*[HGgis][^"]*"')
    found = [
        f"{p.relative_to(TEMPLATES)}" for p in TEMPLATES.rglob("templates/**/*.html") if by_hand.search(p.read_text())
    ]
    assert found == []
