"""The comparability pages, the API and the product quality review (POC-2, CMP-SITE, CMP-STAT): what
Control Site QA sees, bad input answered 4xx naming the field, printing the review recorded in the
ledger, and site people kept out. The tests that only read the world (bad input, refusals, the
review's empty form) are in test_views_read_only.py."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from pocare.analytics.events import AnalyticsEvent
from pocare.analytics.services import comparability_monitor_run
from pocare.jobs.models import Job
from pocare.ledger.models import NETWORK_CHAIN, Event
from tests.analytics.world import NOW, comparability_world
from tests.jobs.run import download, job_of, run_queued_jobs
from tests.pdf_reading import opened

pytestmark = pytest.mark.django_db


@pytest.fixture
def version(people):  # type: ignore[no-untyped-def]
    """A world of each test's own: these tests write (monitor runs, reviews, jobs). The tests that
    only read it are in test_views_read_only.py, on one world for the module."""
    return comparability_world()


def test_matrix_page_shows_every_site_and_attribute(version, login):
    """CMP-SITE CMP-STAT: the matrix shows what the monitor stored — before its first run it says so;
    after it, a row per site with lots and a cell per numeric attribute, each stating its verdict in
    words (equivalent / not equivalent / too few lots), linking to the site's charts, with the moment
    it was computed in the Control Site's zone; qualitative attributes are named as not charted. The
    request reads no QC result (nothing is recomputed) and the versions are read once."""
    client = login("qa")
    assert "has not assessed this version yet" in client.get("/analytics/comparability/").content.decode()
    comparability_monitor_run(now=NOW)
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/analytics/comparability/")
    assert response.status_code == 200
    sql = [q["sql"] for q in queries.captured_queries]
    assert not any("manufacturing_qcresult" in q for q in sql), "the page recomputed from the QC results"
    assert sum('FROM "masterfile_masterfileversion"' in q for q in sql) <= 2  # the list, the default
    html = response.content.decode()
    assert "Computed 2026-11-20 11:00 CET by the comparability monitor" in re.sub(r"<[^>]+>", "", html)
    for code in ("MAD", "LIS", "MUC", "GRO", "MIL", "DUB"):
        assert f"/analytics/comparability/sites/{code}/?version={version.pk}" in html
    assert html.count('data-status="') == 6 * 7
    assert "equivalent" in html and "Sterility" in html and "Not charted" in html


def test_site_page_draws_the_charts(version, login):
    """POC-2 CMP-STAT: a site's page draws, per attribute, the individuals chart with its limits, EWMA,
    CUSUM, the capability histogram with the specification, the interval plot, and Hotelling's T² —
    from what the comparability monitor stored, with the moment it computed them: before its first
    run the page says so, and the request reads no QC result (nothing is recomputed)."""
    client = login("qp")
    before = client.get(f"/analytics/comparability/sites/GRO/?version={version.pk}").content.decode()
    assert "Nothing computed yet" in before and "individuals chart" not in before
    comparability_monitor_run(now=NOW)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"/analytics/comparability/sites/GRO/?version={version.pk}")
    assert not any("manufacturing_qcresult" in q["sql"] for q in queries.captured_queries), "recomputed"
    html = response.content.decode()
    assert "Computed 2026-11-20 11:00 CET by the comparability monitor" in re.sub(r"<[^>]+>", "", html)
    for title in ("individuals chart", "EWMA", "tabular CUSUM", "capability histogram", "versus the rest of",
                  "Hotelling"):
        assert title in html, title
    assert "UCL" in html and "LSL 20" in html and html.count("<svg") >= 7 * 5
    one = client.get(f"/analytics/comparability/sites/GRO/?version={version.pk}&attribute=car-positive")
    assert one.status_code == 200 and one.content.decode().count('class="card" id=') == 1


def test_api_matrix_and_site_charts(version, login):
    """CMP-STAT: the API gives the matrix as the monitor stored it (status, TOST interval, alarms per
    cell, when computed) and a site's chart data as the monitor stored it too — nothing before its
    first run, no QC result read on a request; bad parameters answer 400 naming the field."""
    client = login("planner")
    before = client.get(f"/api/analytics/sites/GRO/charts/?version={version.pk}").json()
    assert before["attributes"] == [] and before["computed_at"] is None
    comparability_monitor_run(now=NOW)
    matrix = client.get("/api/analytics/comparability/").json()
    assert matrix["version"]["id"] == version.pk and matrix["computed_at"].startswith("2026-11-20T10:00")
    cells = matrix["sites"][0]["cells"]
    assert set(cells) == {a["id"] for a in matrix["attributes"]} and "status" in cells["car-positive"]
    with CaptureQueriesContext(connection) as queries:
        site = client.get("/api/analytics/sites/GRO/charts/?attribute=car-positive").json()
    assert not any("manufacturing_qcresult" in q["sql"] for q in queries.captured_queries), "recomputed"
    assert site["computed_at"].startswith("2026-11-20T10:00")
    attr = site["attributes"][0]
    gro = next(r for r in matrix["sites"] if r["code"] == "GRO")["cells"]["car-positive"]
    assert attr["status"] == gro["status"] and attr["n"] == gro["n"] and attr["ci"] == gro["ci"]
    assert attr["id"] == "car-positive" and len(attr["values"]) == len(attr["batches"]) == attr["n"]
    assert {"centre", "ucl", "lcl", "sigma"} <= set(attr["limits"])
    bad = client.get("/api/analytics/comparability/?version=x")
    assert bad.status_code == 400 and "version" in bad.json()
    bad = client.get("/api/analytics/sites/GRO/charts/?attribute=nope")
    assert bad.status_code == 400 and "attribute" in bad.json()
    assert client.get("/api/analytics/sites/XXX/charts/").status_code == 404


def test_review_is_generated_from_the_records_and_printing_is_recorded(version, login):
    """POC-2: the product quality review lists batches per site, OOS results (qualitative ones counted),
    deviations, changes, comparability and capability with charts; each generation is a ledger event
    with the format and a hash of its content; the PDF is a PDF (or a 503 naming the missing library)."""
    client = login("qa")
    url = "/analytics/review/"
    fields = {"product": "CD19-CART", "start": "2026-01-01", "end": "2026-11-20"}
    before = Event.objects.filter(event_type=AnalyticsEvent.PQR_GENERATED).count()
    html = client.post(url, {**fields, "format": "html"}).content.decode()
    for heading in ("Batches per site", "Out-of-specification results", "Deviations and CAPA",
                    "Changes to the master file", "Comparability and capability", "Quality signals"):
        assert heading in html, heading
    assert "Cpk" in html and "<svg" in html
    event = Event.objects.filter(event_type=AnalyticsEvent.PQR_GENERATED).latest("id")
    assert event.chain == NETWORK_CHAIN and event.actor.username == "qa"
    assert '"format":"html"' in event.new_values and '"content_hash":"' in event.new_values
    pdf = client.post(url, {**fields, "format": "pdf"})
    if pdf.status_code == 503:
        assert b"PDF output is unavailable" in pdf.content
    else:  # a job makes the PDF; its page offers it, and the job records the generation
        assert Event.objects.filter(event_type=AnalyticsEvent.PQR_GENERATED).count() == before + 1
        got = download(client, pdf)
        assert got["Content-Type"] == "application/pdf" and got.content_bytes.startswith(b"%PDF")
        assert got["Content-Disposition"] == 'attachment; filename="pocare-pqr-CD19-CART-20260101-20261120.pdf"'
        text = _pdf_text(got.content_bytes)
        assert "Batches per site" in text and "Out-of-specification results" in text and "CD19-CART" in text
        event = Event.objects.filter(event_type=AnalyticsEvent.PQR_GENERATED).latest("id")
        assert Event.objects.filter(event_type=AnalyticsEvent.PQR_GENERATED).count() == before + 2
        assert event.actor.username == "qa" and '"format":"pdf"' in event.new_values
        assert got["X-POCare-Export-Event"] == event.label


def _pdf_text(data: bytes) -> str:
    with opened(data) as doc:
        return " ".join(" ".join((p.extract_text() or "").split()) for p in doc.pages)


def test_a_pdf_review_is_the_askers_and_bad_input_queues_nothing(version, login, client):
    """POC-2 P11-10g: the PDF review's job is the asker's: QA at the Control Site sees it; the site
    manager of Madrid does not find it (404); a bad period is refused at the form (400, naming the
    field) and queues nothing."""
    client = login("qa")
    asked = client.post("/analytics/review/", {"product": "CD19-CART", "start": "2026-01-01",
                                               "end": "2026-11-20", "format": "pdf"})
    if asked.status_code == 503:
        pytest.skip("no PDF engine here")
    job = job_of(asked)
    bad = client.post("/analytics/review/", {"product": "CD19-CART", "start": "2026-11-20", "end": "2026-01-01",
                                             "format": "pdf"})
    assert bad.status_code == 400 and Job.objects.count() == 1
    run_queued_jobs()
    client.logout()
    other = login("manager.mad")
    assert other.get(f"/jobs/{job.pk}/").status_code == 404
    assert other.post(f"/jobs/{job.pk}/file/").status_code == 404
