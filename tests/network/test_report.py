"""The annual report on the master file (POC-4): generated from the records, as a page and a PDF,
each generation recorded in the ledger."""

from __future__ import annotations

import sys
from urllib.parse import parse_qsl

import pytest
from django.utils import timezone

from pocare.core.charts import bar_chart_svg
from pocare.ledger.canonical import content_hash
from pocare.ledger.models import Event
from pocare.network.charts import lifecycle_svg
from pocare.network.events import NetworkEvent
from pocare.network.models import Site, SiteStatus
from pocare.network.report import BATCHES_NOTE, annual_report_build
from pocare.network.services import site_authorize, site_transition
from tests.jobs.run import download, job_of, run_queued_jobs
from tests.network.conftest import creds
from tests.pdf_reading import opened

pytestmark = pytest.mark.django_db
YEAR = timezone.now().year


@pytest.fixture
def eventful_year(people, product, new_site):  # type: ignore[no-untyped-def]
    qa = people["qa"]
    site_transition(actor=qa, site=Site.objects.get(code="MIL"), to_status=SiteStatus.SUSPENDED,
                    reason="Sterility failure under investigation", credentials=creds(qa))
    site_transition(actor=qa, site=Site.objects.get(code="DUB"), to_status=SiteStatus.CLOSED,
                    reason="Hospital ends the programme", credentials=creds(qa))
    site_authorize(actor=qa, site=Site.objects.get(code="MAD"), product=product, from_version=1, valid_from=None,
                   conditions="", reason="PPQ passed", credentials=creds(qa))
    return new_site(SiteStatus.PROPOSED)


def test_the_report_counts_what_the_records_say(eventful_year, product):
    """POC-4: sites added, suspended, closed; authorizations; batches 0 with the note, not invented."""
    report = annual_report_build(year=YEAR, product=product)
    assert [t.site.code for t in report.suspended] == ["MIL"] and [t.site.code for t in report.closed] == ["DUB"]
    assert eventful_year in report.sites_added
    statuses = {row.site.code: row.status_at_end for row in report.sites}
    assert statuses["MIL"] == "suspended" and statuses["DUB"] == "closed" and statuses["MAD"] == "active"
    assert [a.site.code for a in report.authorizations_in_force] == ["MAD"]
    assert all(row.batches == 0 for row in report.sites) and report.batches_note == BATCHES_NOTE
    # last year: nothing of this happened yet
    before = annual_report_build(year=YEAR - 1, product=product)
    assert not before.sites and not before.transitions and not before.authorizations_in_force


def test_the_report_page_is_generated_and_recorded(eventful_year, client, login):
    """POC-4 P11-10e: the page shows the year's facts and a chart; generating it is a ledger event."""
    login("qp")
    assert client.get("/network/annual-report/").status_code == 200  # the choice only
    assert not Event.objects.filter(event_type=NetworkEvent.ANNUAL_REPORT_GENERATED).exists()
    response = client.post("/network/annual-report/", {"year": YEAR, "product": "CART19"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "Sterility failure under investigation" in page and "Hospital ends the programme" in page
    assert "batch records begin with the batch record capability" in page.lower()
    assert "<svg" in page and "Sites by status" in page
    event = Event.objects.get(event_type=NetworkEvent.ANNUAL_REPORT_GENERATED)
    assert event.chain == "CTRL" and event.actor_username == "qp"
    assert event.new["year"] == YEAR and event.new["product"] == "CART19" and event.new["format"] == "html"
    assert len(event.new["content_hash"]) == 64


def test_the_report_as_pdf(eventful_year, client, login):
    """P11-10b POC-4: a human-readable copy as PDF, its generation recorded."""
    login("inspector")
    asked = client.post("/network/annual-report/", {"year": YEAR, "product": "CART19", "format": "pdf"})
    assert not Event.objects.filter(event_type=NetworkEvent.ANNUAL_REPORT_GENERATED).exists()  # queued, not made
    response = download(client, asked)
    assert response["Content-Type"] == "application/pdf"
    assert response.content_bytes.startswith(b"%PDF") and len(response.content_bytes) > 5000
    assert f"pocare-annual-report-{YEAR}-CART19.pdf" in response["Content-Disposition"]
    with opened(response.content_bytes) as doc:
        text = " ".join(" ".join((p.extract_text() or "").split()) for p in doc.pages)
    assert f"Annual report on the POCare Master File {YEAR}" in text and "(CART19)" in text
    event = Event.objects.get(event_type=NetworkEvent.ANNUAL_REPORT_GENERATED)
    assert event.new["format"] == "pdf" and event.actor_username == "inspector"
    assert response["X-POCare-Export-Event"] == event.label
    client.logout()
    login("manager.mad")  # another person, at a site: the job is not theirs
    job = job_of(asked)
    assert client.get(f"/jobs/{job.pk}/").status_code == 404
    assert client.post(f"/jobs/{job.pk}/file/").status_code == 404


def test_a_pdf_job_on_a_server_without_weasyprint_fails_at_once_saying_why(client, login, monkeypatch):
    """P11-10b: when the worker cannot make PDFs the job fails on its first try with the reason (the
    request, on a server that can, had queued it); nothing is recorded but the failure."""
    login("qa")
    job = job_of(client.post("/network/annual-report/", {"year": YEAR, "format": "pdf"}))
    monkeypatch.setitem(sys.modules, "weasyprint", None)  # import fails in the worker
    run_queued_jobs()
    job.refresh_from_db()
    assert job.status == "failed" and job.tries == 1 and "PDF output is unavailable" in job.error
    assert not Event.objects.filter(event_type=NetworkEvent.ANNUAL_REPORT_GENERATED).exists()
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert "The job failed" in page and "PDF output is unavailable" in page and "job-download" not in page


def test_without_weasyprint_the_pdf_answers_503(client, login, monkeypatch):
    """P11-10b: when the PDF engine is missing the answer says so and nothing is recorded."""
    monkeypatch.setitem(sys.modules, "weasyprint", None)  # import fails
    login("qa")
    response = client.post("/network/annual-report/", {"year": YEAR, "format": "pdf"})
    assert response.status_code == 503 and "PDF output is unavailable" in response.content.decode()
    assert not Event.objects.filter(event_type=NetworkEvent.ANNUAL_REPORT_GENERATED).exists()


@pytest.mark.parametrize("query", ["year=abc", "year=1999", f"year={YEAR + 1}", f"year={YEAR}&product=NOPE",
                                   f"year={YEAR}&format=docx"])
def test_bad_report_requests_are_400(client, login, query):
    """Bad input → 400 naming the field; nothing recorded."""
    login("qa")
    response = client.post("/network/annual-report/", dict(parse_qsl(query)))
    assert response.status_code == 400
    assert not Event.objects.filter(event_type=NetworkEvent.ANNUAL_REPORT_GENERATED).exists()


@pytest.mark.parametrize("username", ["manager.mad", "operator.mad", "planner"])
def test_only_qa_qp_and_inspectors_see_the_report(client, login, username):
    """P11-10g: REPORTS_VIEW only."""
    login(username)
    assert client.post("/network/annual-report/", {"year": YEAR}).status_code == 403


def test_the_report_hash_is_of_what_it_states(eventful_year, product, people):
    """DI-ALCOA: the event's hash is the hash of the report's summary at generation."""
    from pocare.network.services import annual_report_generate

    report = annual_report_generate(actor=people["qa"], year=YEAR, product=product, fmt="html")
    assert report.event is not None
    assert report.event.new["content_hash"] == content_hash(report.summary())


def test_the_charts_are_plain_svg_with_values_in_words():
    """The charts read without colour and without JavaScript."""
    svg = bar_chart_svg([("Active", 6, "ok"), ("Suspended <x>", 1, "bad")], title="Sites", unit="sites")
    assert svg.startswith("<svg") and "6 sites" in svg and "1 site" in svg and "&lt;x&gt;" in svg
    diagram = lifecycle_svg("qualification", {"active", "onboarding", "closed"})
    assert "Qualification (now)" in diagram and diagram.count('stroke-dasharray="5 3"') == 3
