"""The work of a day: each person's home page lists what waits for them, scoped to their sites and
permissions, each item linked to where the work is done; the navigation shows how many wait."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from pocare.core import worklist
from tests.ledger.helpers import write_events
from tests.manufacturing import helpers as h
from tests.release import helpers as rh
from tests.web.helpers import awaiting_verification

pytestmark = pytest.mark.django_db


def home(client, login, username: str) -> str:  # type: ignore[no-untyped-def]
    client.logout()
    login(username)
    response = client.get("/")
    assert response.status_code == 200
    return response.content.decode()


def queue_section(page: str, key: str) -> str:
    """The HTML of one queue on the home page ('' when the person has nothing in it)."""
    match = re.search(rf'<article[^>]*data-queue="{key}".*?</article>', page, re.S)
    return match.group(0) if match else ""


def nav_count(page: str) -> int:
    match = re.search(r'<span class="badge badge-warn nav-count"[^>]*>(\d+)</span>', page)
    return int(match.group(1)) if match else 0


def test_a_step_awaits_the_second_person_not_the_performer_nor_another_site(client, login):
    """P11-10f P11-10g: the step recorded by Madrid's operator waits on Madrid's manager's home page,
    linked to the step; not on the performer's, not at Lisbon, not for QA (who does not execute)."""
    batch, step_id = awaiting_verification("MAD")
    page = home(client, login, "manager.mad")
    section = queue_section(page, "steps_to_verify")
    assert f"/manufacturing/batches/{batch.reference}/steps/{step_id}/" in section
    assert "awaits your verification" in section and "Pablo Ortega" in section
    assert nav_count(page) >= 1
    for other in ("operator.mad", "manager.lis", "qa", "inspector"):
        assert queue_section(home(client, login, other), "steps_to_verify") == "", other


def test_each_release_stage_waits_for_the_person_who_signs_it_next(client, login):
    """ATMP-REL POC-7: review by exception for the site's QC analyst (on the review page), then the QC
    review, then the QP's decision; never another site's batch, never the read-only inspector."""
    batch = rh.completed_batch("MAD")
    page = home(client, login, "qc.mad")
    assert f"/manufacturing/batches/{batch.reference}/review/" in queue_section(page, "exception_reviews")
    assert queue_section(page, "qc_reviews") == ""
    assert batch.reference not in home(client, login, "qc.lis")
    rh.review_exceptions(batch)
    page = home(client, login, "qc.mad")
    assert queue_section(page, "exception_reviews") == ""
    assert f"/release/batches/{batch.reference}/#stage1" in queue_section(page, "qc_reviews")
    assert queue_section(home(client, login, "qp"), "qp_decisions") == ""
    rh.qc_review(batch)
    assert f"/release/batches/{batch.reference}/#stage2" in queue_section(home(client, login, "qp"), "qp_decisions")
    for other in ("qa", "inspector", "qc.mad", "manager.mad"):
        assert queue_section(home(client, login, other), "qp_decisions") == "", other


def test_an_audit_trail_review_is_due_where_events_are_not_reviewed(client, login, people):
    """A11-9 A11-12: new events at Madrid put its trail in the Madrid manager's queue (with the count),
    not in Lisbon's; a signed review empties it."""
    write_events(people["manager.mad"], people["manager.mad"].memberships.first().site, 3)
    section = queue_section(home(client, login, "manager.mad"), "trail_reviews")
    assert "Audit trail of MAD" in section and "/audit/reviews/?chain=MAD" in section
    assert "Audit trail of MAD" not in home(client, login, "manager.lis")
    from pocare.trail.selectors import reviews_due
    from pocare.trail.services import trail_review_sign

    assert "MAD" in {due.chain for due in reviews_due(people["qa"], timezone.now())}  # QA reviews every site's trail

    trail_review_sign(actor=people["manager.mad"], chain="MAD", comment="Read.", credentials=h.creds("manager.mad"))
    assert "Audit trail of MAD" not in queue_section(home(client, login, "manager.mad"), "trail_reviews")


def test_overdue_deviations_and_capa_and_signals_reach_who_acts_on_them(client, login):
    """DEV-CLASS Q10-PQS: an overdue Madrid deviation waits for Madrid's manager and QA, not Lisbon's
    manager nor the operator; an overdue CAPA waits for its owner; an open signal for QA."""
    from pocare.quality import services as quality
    from tests.quality import helpers as qh
    from tests.quality.matrix import _signal

    d = qh.deviation("MAD", opened_days_ago=40)
    qh.classify(d, "major")
    quality.capa_action_add(actor=qh.user("manager.mad"), deviation=d, kind="corrective", description="Fix it",
                            owner=qh.user("operator.mad"), due_on=d.opened_at.date())
    assert d.reference in queue_section(home(client, login, "manager.mad"), "deviations_overdue")
    assert d.reference in queue_section(home(client, login, "qa"), "deviations_overdue")
    assert d.reference not in home(client, login, "manager.lis")
    operator = home(client, login, "operator.mad")
    assert queue_section(operator, "deviations_overdue") == ""
    assert f"/quality/deviations/{d.reference}/#capa-" in queue_section(operator, "capa_overdue")
    _signal("MAD")
    assert "/quality/signals/#signal-" in queue_section(home(client, login, "qa"), "signals")
    assert queue_section(home(client, login, "manager.mad"), "signals") == ""


def test_expiring_qualifications_and_training_to_sign(client, login):
    """P11-10i: a qualification running out within 30 days shows for its holder and the site's
    manager (who records training), not for another site; a record to sign for its trainee."""
    from tests.training import helpers as th

    th.train("operator.mad", title="Aseptic course", qualification_code="aseptic-gowning", days_ago=360)
    th.train("operator.mad", title="Unsigned course", sign=False)
    operator = home(client, login, "operator.mad")
    assert "expires" in queue_section(operator, "training_expiring")
    assert "Unsigned course" in queue_section(operator, "training_to_sign")
    assert "Pablo Ortega" in queue_section(home(client, login, "manager.mad"), "training_expiring")
    assert "Pablo Ortega" not in home(client, login, "manager.lis")


def test_an_empty_day_says_so():
    """A person with no role has no work and the page does not pretend otherwise."""
    from django.contrib.auth.models import AnonymousUser

    assert worklist.queues_for(AnonymousUser()) == []


def _queries(client, url: str = "/") -> int:  # type: ignore[no-untyped-def]
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("username", ["manager.mad", "qa"])
def test_the_home_page_costs_the_same_with_more_waiting(client, login, username):
    """The queues and the navigation badge cost a fixed number of queries: one COUNT per queue and
    one bounded read, whatever waits (two steps to verify and one deviation, then six and three)."""
    from tests.quality import helpers as qh

    def more(steps: int, deviations: int) -> None:
        for _ in range(steps):
            awaiting_verification("MAD")
        for _ in range(deviations):
            qh.classify(qh.deviation("MAD", opened_days_ago=40), "major")

    more(2, 1)
    login(username)
    few = _queries(client)
    more(4, 2)
    many = _queries(client)
    assert many <= few, f"home page of {username}: {few} queries with fewer items waiting, {many} with more"
    assert re.search(r"\d+ more →", client.get("/").content.decode()) or username == "qa"


def test_every_page_shows_the_count_in_the_navigation(client, login):
    """The badge is on every page, not only home, and names what it counts."""
    awaiting_verification("MAD")
    login("manager.mad")
    page = client.get("/manufacturing/").content.decode()
    assert nav_count(page) >= 1 and "wait" in page


def test_the_review_by_exception_is_signed_on_its_own_page(client, login):
    """ATMP-REL P11-200: the review page carries the signing form (with its confirmation) for the site's
    QC analyst; signing there returns to it and moves the batch to the QC review; a QC analyst of
    another site, the operator and the inspector get no form."""
    from pocare.release.models import ExceptionReview

    batch = rh.completed_batch("MAD")
    url = f"/manufacturing/batches/{batch.reference}/review/"
    login("qc.mad")
    page = client.get(url).content.decode()
    assert 'id="exceptions-form"' in page and "data-confirm=" in page
    response = client.post(f"/release/batches/{batch.reference}/exceptions-review/",
                           {"exc-comment": "Every item looked at.", "exc-username": "qc.mad",
                            "exc-password": rh.creds("qc.mad").password, "next": url})
    assert response.status_code == 302 and response["Location"] == url
    assert ExceptionReview.objects.filter(batch=batch).count() == 1
    assert "Review by exception signed." in client.get(url).content.decode()
    for other in ("operator.mad", "inspector"):
        client.logout()
        login(other)
        assert 'id="exceptions-form"' not in client.get(url).content.decode(), other
    client.logout()
    login("qc.mad")
    bad = client.post(f"/release/batches/{batch.reference}/exceptions-review/",
                      {"exc-comment": "x", "exc-password": "wrong", "next": "https://evil.example/"})
    assert bad.status_code == 400  # refused on the release page, never sent elsewhere


def test_the_steps_awaiting_verification_are_counted_through_their_partial_index(people):
    """The queue's count runs on every page of the people who verify: on PostgreSQL it reads the
    partial index of the few waiting steps, not every step of the network (issue 15: 96 ms over
    162,000 steps at 10,000 batches, 0.04 ms through the index)."""
    if connection.vendor != "postgresql":
        pytest.skip("the plan is PostgreSQL's (SQLite's small databases need no index here)")
    from pocare.manufacturing.selectors import steps_awaiting_verification

    pending = steps_awaiting_verification(people["manager.mad"])
    with connection.cursor() as cur:
        cur.execute("SET LOCAL enable_seqscan = off")  # a test database is tiny: show what the planner can use
        sql, params = pending.query.sql_with_params()
        cur.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cur.fetchall())
        cur.execute("SET LOCAL enable_seqscan = on")
    assert "mfg_step_awaiting_idx" in plan, plan
