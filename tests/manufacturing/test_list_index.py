"""The batch list reads a page of the network's batches newest first through an index, not by
sorting every batch (issue 15)."""

from __future__ import annotations

import pytest
from django.db import connection

from pocare.manufacturing.selectors import batches_visible

pytestmark = pytest.mark.django_db


def test_the_network_batch_list_is_read_newest_first_through_its_index(people):
    """At 11,000 batches the Control Site's first page sorted them all (47 ms); through the index it
    reads the 50 it shows (0.5 ms). The plan is PostgreSQL's."""
    if connection.vendor != "postgresql":
        pytest.skip("the plan is PostgreSQL's")
    page = batches_visible(people["qa"]).order_by("-started_at", "-id")[:50]
    with connection.cursor() as cur:
        cur.execute("SET LOCAL enable_seqscan = off")  # a test database is tiny: show what the planner can use
        cur.execute("SET LOCAL enable_sort = off")
        sql, params = page.query.sql_with_params()
        cur.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cur.fetchall())
        cur.execute("SET LOCAL enable_seqscan = on")
        cur.execute("SET LOCAL enable_sort = on")
    assert "mfg_batch_started_idx" in plan, plan
