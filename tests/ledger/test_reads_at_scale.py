"""Pages read the trail at any size: one patient's events by key, counts without scanning, a fixed
number of queries whatever the number of chains."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from pocare.accounts.events import AccountEvent
from pocare.ledger.models import Event, EventSubject
from pocare.ledger.services import event_record
from pocare.network.models import Site
from pocare.trail import views as trail_views
from tests.custody.helpers import accepted, collect, scan
from tests.ledger.helpers import write_events

pytestmark = pytest.mark.django_db


def _event(actor, **values):  # type: ignore[no-untyped-def]
    with transaction.atomic():
        return event_record(actor=actor, event_type=AccountEvent.LOGGED_IN, obj=actor, reason="test", **values)


def test_an_event_is_indexed_by_the_coi_and_din_it_states_and_by_nothing_else(people):
    """ATMP-TRACE: the COI and DIN an event states, in its old or its new values, index it."""
    stated = _event(people["qa"], old={"din": "P100226000043"}, new={"coi": "CP100226000041Q", "note": "x"})
    plain = _event(people["qa"], new={"coi": "", "i": 1})
    assert sorted(stated.subjects.values_list("key", flat=True)) == ["CP100226000041Q", "P100226000043"]
    assert not plain.subjects.exists()
    assert not EventSubject.objects.filter(key="x").exists()


def test_a_rolled_back_event_leaves_no_index_row(people):
    """P11-10e: the index row commits or rolls back with its event."""
    before = EventSubject.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        event_record(actor=people["qa"], event_type=AccountEvent.LOGGED_IN, obj=people["qa"],
                     reason="test", new={"coi": "CP100226000041Q"})
        raise RuntimeError
    assert EventSubject.objects.count() == before


def test_the_order_page_lists_the_events_that_state_its_coi(client, login, people):
    """ATMP-TRACE A11-9: the order's own events, its collection's and its hand-offs' are shown
    (found through the key index), another order's are not."""
    mine, other = accepted("MAD"), accepted("MAD", recipient="PT-0002")
    c = collect(mine)
    scan(mine, "collection", c.din_printed, c)
    ids = set(EventSubject.objects.filter(key=mine.coi).values_list("event_id", flat=True))
    kinds = set(Event.objects.filter(pk__in=ids).values_list("object_type", flat=True))
    assert {"custody.TherapyOrder", "custody.Collection", "custody.Handoff"} <= kinds
    login("qa")
    page = client.get(f"/custody/orders/{mine.pk}/")
    shown = {e.pk for e in page.context["events"]}
    assert shown and shown <= ids
    assert not shown & set(EventSubject.objects.filter(key=other.coi).values_list("event_id", flat=True))


def test_the_trail_counts_from_the_chain_heads_and_agrees_with_counting_rows(client, login, people):
    """A11-9: the unfiltered count of a site's trail is its chains' lengths, equal to its rows."""
    write_events(people["qa"], Site.objects.get(code="MAD"), 7)
    login("qa")
    for query in ("", "?chain=MAD", "?chain=NETWORK"):
        with CaptureQueriesContext(connection) as ctx:
            page = client.get(f"/audit/{query}").context["page"]
        chain = query.partition("=")[2]
        rows = Event.objects.filter(chain__startswith=chain) if chain else Event.objects.all()
        assert page.paginator.count == rows.count() > 0, query
        assert not any("COUNT(" in q["sql"].upper() and "ledger_event" in q["sql"] for q in ctx.captured_queries)


def test_a_filtered_count_stops_at_the_cap_and_says_so(client, login, people, monkeypatch):
    """A11-9: a filtered trail larger than the cap says "more than", with no link to a last page."""
    monkeypatch.setattr(trail_views, "COUNT_CAP", 9)
    write_events(people["qa"], None, 7, reason="alpha")
    write_events(people["qa"], None, 3, reason="alphabet")
    login("qa")
    page = client.get("/audit/?q=alpha")
    assert page.context["page"].paginator.capped
    text = page.content.decode()
    assert "more than" in text and "Oldest" not in text
    few = client.get("/audit/?q=alphabet")
    listed = [e.pk for e in few.context["page"]]
    assert not few.context["page"].paginator.capped and few.context["page"].paginator.count == 3
    assert listed == sorted(listed, reverse=True), "few matches are still shown newest first"


def test_the_api_counts_the_trail_as_the_browser_does(client, login, people, monkeypatch):
    """A11-9: the API's trail list counts from the chain heads when unfiltered (no COUNT over the
    ledger: 0.4 s at 2 M events) and stops at the cap when filtered, its count agreeing with rows."""
    write_events(people["qa"], Site.objects.get(code="MAD"), 7, reason="alpha")
    login("qa")
    for query in ("", "?chain=MAD"):
        with CaptureQueriesContext(connection) as ctx:
            body = client.get(f"/api/audit/events/{query}").json()
        chain = query.partition("=")[2]
        rows = Event.objects.filter(chain__startswith=chain) if chain else Event.objects.all()
        assert body["count"] == rows.count() > 0, query
        assert not any("COUNT(" in q["sql"].upper() and "ledger_event" in q["sql"] for q in ctx.captured_queries)
    monkeypatch.setattr(trail_views, "COUNT_CAP", 5)
    capped = client.get("/api/audit/events/?q=alpha&limit=3").json()
    assert capped["count"] == 5 and len(capped["results"]) == 3
    monkeypatch.setattr(trail_views, "COUNT_CAP", 10_000)
    few = client.get("/api/audit/events/?q=alpha").json()
    ids = [e["id"] for e in few["results"]]
    assert few["count"] == 7 and ids == sorted(ids, reverse=True)


def test_the_trails_text_search_can_use_the_trigram_indexes_on_postgresql(people):
    """A11-9: on PostgreSQL the text filter's query (Django's icontains) matches the trigram
    indexes' expression, so a search reads the index, not every event."""
    if connection.vendor != "postgresql":
        pytest.skip("trigram indexes are PostgreSQL's")
    write_events(people["qa"], None, 3, reason="thaw at bedside")
    search = Event.objects.filter(reason__icontains="bedside")
    with connection.cursor() as cur:
        cur.execute("SET LOCAL enable_seqscan = off")  # a tiny table: make the planner show what it can use
        sql, params = search.query.sql_with_params()
        cur.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cur.fetchall())
        cur.execute("SET LOCAL enable_seqscan = on")
    assert "ledger_event_reason_trgm" in plan, plan
    assert search.count() == 3


def _review_page_queries(client) -> int:  # type: ignore[no-untyped-def]
    with CaptureQueriesContext(connection) as ctx:
        assert client.get("/audit/reviews/").status_code == 200
    return len(ctx.captured_queries)


def test_the_review_page_costs_the_same_for_two_chains_or_six(client, login, people):
    """A11-9 A11-12: the chains waiting for review are read in a fixed number of queries."""
    login("qa")
    write_events(people["qa"], Site.objects.get(code="MAD"), 1)
    few = _review_page_queries(client)
    for code in Site.objects.exclude(code="MAD").values_list("code", flat=True)[:5]:
        write_events(people["qa"], Site.objects.get(code=code), 2)
    page = client.get("/audit/reviews/")
    assert len(page.context["pending"]) >= 6
    assert _review_page_queries(client) <= few
