"""Query-count baselines (NetBox style): list pages must not grow a query per row."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.jobs.run import run_queued_jobs
from tests.ledger.helpers import write_events

pytestmark = pytest.mark.django_db


def _queries(client, url: str) -> int:  # type: ignore[no-untyped-def]
    with CaptureQueriesContext(connection) as ctx:
        # Exports are POSTs (recorded; GET never writes) that queue a job: the request and the job
        # are counted together. The rest are pages.
        if "/export." in url:
            response = client.post(url)
            assert response.status_code == 302 and run_queued_jobs() == 1, url
            return len(ctx.captured_queries)
        response = client.get(url)
    assert response.status_code == 200, url
    return len(ctx.captured_queries)


@pytest.mark.parametrize("url", ["/audit/", "/api/audit/events/?limit=200", "/audit/export.json", "/"])
def test_list_pages_cost_the_same_for_ten_or_a_hundred_more_rows(client, login, people, url):
    login("qa")
    write_events(people["qa"], None, 10)
    few = _queries(client, url)
    write_events(people["qa"], None, 100)
    many = _queries(client, url)
    assert many <= few, f"{url}: {few} queries with fewer rows, {many} with more"
