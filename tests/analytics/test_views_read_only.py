"""The comparability pages and the product quality review, read only (CMP-STAT, P11-10g, POC-2): bad
input answered 400 naming the field, an unknown site and site people refused, the review's form
filled in. None of these tests stores anything the others read, so they share one world, built once
for the module (five months of demo history, ~5 s a build) and rolled back at its end; each test
runs in its own savepoint. The tests that write (monitor runs, reviews, jobs) are in test_views.py,
each on a world of its own."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

import pytest

from pocare.masterfile.models import MasterFileVersion
from tests.analytics.world import comparability_world
from tests.worlds import built_once

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def version(django_db_setup: Any, django_db_blocker: Any) -> Iterator[MasterFileVersion]:
    """The world, built once for the module and rolled back at its end (tests/worlds.py)."""
    with built_once(django_db_blocker, comparability_world) as version:
        yield version


@pytest.mark.parametrize(("url", "field"), [
    ("/analytics/comparability/?version=abc", "version"),
    ("/analytics/comparability/?version=999999", "version"),
    ("/analytics/comparability/sites/GRO/?version=abc", "version"),
    ("/analytics/comparability/sites/GRO/?attribute=sterility", "attribute"),
    ("/analytics/review/?product=CD19-CART&start=2026-05-01&end=2026-01-01", "end"),
    ("/analytics/review/?product=CD19-CART&start=not-a-date&end=2026-01-01", "start"),
    ("/analytics/review/?product=NOPE&start=2026-01-01&end=2026-02-01", "product"),
    ("/analytics/review/?product=CD19-CART&start=9999-12-30&end=9999-12-31", "end"),
])
def test_bad_input_is_a_400_naming_the_field(version, login, url, field):
    """CMP-STAT: a wrong query parameter is answered 400 with a message on that field, never a 500."""
    client = login("qa")
    path, _, query = url.partition("?")
    # Generating the review is recorded, so it is a POST with the same fields (GET never writes).
    response = client.post(path, dict(parse_qsl(query))) if path == "/analytics/review/" else client.get(url)
    assert response.status_code == 400
    html = response.content.decode()
    assert (f"{field}:" in html) or (f'id="id_{field}_error"' in html), html[:2000]


def test_unknown_site_is_404_and_site_people_are_refused(version, login, client):
    """P11-10g: an unknown site does not exist; site people do not hold the analytics permission."""
    assert login("qa").get("/analytics/comparability/sites/XXX/").status_code == 404
    client.post("/logout/")
    assert login("manager.gro").get("/analytics/comparability/").status_code == 403



def test_the_review_page_offers_the_last_year_in_its_date_pickers(version, login):
    """POC-2: the product quality review opens with its period filled in (the last year, as ISO
    dates the browser's date picker can show), so Generate works without typing a date."""
    import re

    client = login("qa")
    page = client.get("/analytics/review/").content.decode()
    today = dt.datetime.now(dt.UTC).date()
    start = re.search(r'<input type="date" name="start" value="([^"]*)"', page)
    end = re.search(r'<input type="date" name="end" value="([^"]*)"', page)
    assert start is not None and end is not None
    assert dt.date.fromisoformat(end.group(1)) == today
    assert dt.date.fromisoformat(start.group(1)) == today.replace(year=today.year - 1)
