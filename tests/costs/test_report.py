"""The cost report of a site and period (COST-BATCH): its figures are the sum of each batch's own cost, read
back from its CSV and its PDF; Control Site QA signs it and the signed figures are kept and checked against
the records; it is seen only where costs are read; hostile periods are refused naming the field."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from pocare.costs import report, selectors
from pocare.costs.models import CostReport
from pocare.ledger.models import Event, Signature
from pocare.manufacturing.models import Batch, QcResult
from tests import pdf_reading as pdfr
from tests.conftest import PASSWORD
from tests.costs import helpers as c
from tests.jobs.run import run_queued_jobs
from tests.manufacturing import helpers as h
from tests.release.helpers import completed_batch


def _client(username: str) -> Client:
    client = Client()
    client.force_login(h.user(username))
    return client


def _world() -> tuple[list[Batch], dt.date, dt.date]:
    """Two completed batches at Madrid and one at Lisbon, priced by one approved model."""
    batches = [completed_batch("MAD"), completed_batch("MAD"), completed_batch("LIS")]
    c.approved(c.content(materials={"TS520": 950, "LV-CAR19": 15000}, qc_tests={"viability": 120}))
    today = timezone.now().date()
    return batches, today - dt.timedelta(days=60), today


def _query(site: str, start: dt.date, end: dt.date, **more: str) -> dict[str, str]:
    return {"site": site, "start": start.isoformat(), "end": end.isoformat(), **more}


@pytest.mark.django_db
def test_the_report_is_the_sum_of_each_batch_cost_and_its_csv_reads_back(people):
    """COST-BATCH: Madrid's report for the period lists its two batches (not Lisbon's), each with the total of
    its own cost page; the category totals and the total are their sums; the CSV read back gives the same rows
    and the total line; the cost per patient treated is absent while no one is infused."""
    batches, start, end = _world()
    page = _client("qa").get(reverse("costs:reports"), _query("MAD", start, end))
    assert page.status_code == 200
    html = page.content.decode()
    expected = {}
    for batch in batches[:2]:
        cost = selectors.batch_cost(Batch.objects.get(pk=batch.pk))
        assert cost is not None
        expected[batch.reference] = cost.sheet.total
        assert batch.reference in html and f"{cost.sheet.total:,.2f}" in html
    assert batches[2].reference not in html
    total = sum(expected.values(), Decimal(0))
    assert f"{total:,.2f}" in html and "No patient has been infused" in html

    reply = _client("qa").get(reverse("costs:reports"), _query("MAD", start, end, export="csv"))
    assert reply.status_code == 200 and reply["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(reply.content.decode())))
    head, body, last = rows[0], rows[1:-1], rows[-1]
    assert head[0] == "batch" and "materials" in head and head[-2] == "total (EUR)"
    assert {r[0]: Decimal(r[-2]) for r in body} == expected
    assert last[0] == "TOTAL" and Decimal(last[-2]) == total
    for k, key in enumerate(head[6:-2], start=6):
        assert Decimal(last[k]) == sum((Decimal(r[k]) for r in body), Decimal(0)), key


@pytest.mark.django_db
def test_qa_signs_the_report_the_signed_figures_are_kept_and_checked_against_the_records(people):
    """COST-BATCH P11-50: Control Site QA signs Madrid's report (meaning approved, with the reason); the figures
    stored are those computed, bound by their hash; the page's check (a job, recorded in the ledger) finds that the
    records agree, and after a QC result is entered on one of its batches, the next check says they differ and
    names the batch. A wrong password stores nothing.
    The PDF and the CSV of the signed report are ledger events; the PDF's text reads back the signer and the
    total."""
    batches, start, end = _world()
    client = _client("qa")
    wrong = client.post(reverse("costs:report_sign"), {**_query("MAD", start, end), "reason": "Quarter close",
                                                       "username": "qa", "password": "not it"})
    assert wrong.status_code == 400 and not CostReport.objects.exists()
    signed = client.post(reverse("costs:report_sign"), {**_query("MAD", start, end), "reason": "Quarter close",
                                                        "username": "qa", "password": PASSWORD})
    found = CostReport.objects.get()
    assert signed.status_code == 302 and signed["Location"] == reverse("costs:report", args=[found.pk])
    assert found.figures["batches"] == 2 and found.figures_hash == report.figures_hash(found.figures)
    signature = Signature.objects.get(record_type="costs.CostReport", record_id=str(found.pk))
    assert signature.meaning == "approved" and signature.event.reason == "Quarter close"
    page = client.get(reverse("costs:report", args=[found.pk])).content.decode()
    assert "not checked" in page and "badge-ok\" title=\"The signed record still hashes" in page
    listed = client.get(reverse("costs:reports")).content.decode()  # the list reads its figures' totals only
    row = listed[listed.index(f'href="{reverse("costs:report", args=[found.pk])}"'):]
    assert row.index('<td class="num">2</td>') < row.index(f'<td class="num">{found.figures["total"]}</td>') < 400

    def check() -> str:  # the button queues the check as a job; its page and the report's show the result
        queued = client.post(reverse("costs:report", args=[found.pk]), {"check": "1"})
        assert queued.status_code == 302 and run_queued_jobs() == 1
        assert client.get(queued["Location"]).status_code == 200
        return client.get(reverse("costs:report", args=[found.pk])).content.decode()

    assert "agrees" in check() and Event.objects.filter(event_type="costs.report_checked").count() == 1
    QcResult.objects.create(batch=batches[0], attribute_id="viability", value_number=91.0, value_text="", unit="%",
                            conforms=True, method="test", tested_at=timezone.now(), entered_by=h.user("qc.mad"),
                            entered_at=timezone.now(), correction_reason="")
    page = client.get(reverse("costs:report", args=[found.pk])).content.decode()
    assert "agrees" in page  # the page shows the last check; it does not compute 5,000 batches on a GET
    page = check()
    assert "differs" in page and batches[0].reference in page
    assert f"<span class=\"code\">{selectors.last_check(found).label}</span>" in page

    got = client.post(reverse("costs:report", args=[found.pk]), {"format": "csv"})
    assert got.status_code == 200 and "TOTAL,MAD" in got.content.decode()
    assert Event.objects.filter(event_type="costs.report_exported").count() == 1
    pdf = client.post(reverse("costs:report", args=[found.pk]), {"format": "pdf"})
    if pdf.status_code == 503:
        pytest.skip("WeasyPrint has no Pango here")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    with pdfr.opened(pdf.content) as doc:
        text = " ".join(" ".join((p.extract_text() or "").split()) for p in doc.pages)
    assert f"Cost report #{found.pk}" in text and f"{Decimal(found.figures['total']):,.2f}" in text
    assert signature.signer_printed_name in text and "Quarter close" in text and found.figures_hash in text
    assert "ARI-0001" not in text or "per patient treated" in text


@pytest.mark.django_db
def test_the_report_is_seen_only_where_costs_are_read_and_signed_only_by_qa(people):
    """COST-BATCH A11-IAM: Madrid's manager computes Madrid's report but not Lisbon's or the network's (400,
    naming the site) and sees Madrid's signed reports only (another site's is a 404); the manager may not
    sign (403); an operator may not read costs (403)."""
    _, start, end = _world()
    manager = _client("manager.mad")
    assert manager.get(reverse("costs:reports"), _query("MAD", start, end)).status_code == 200
    for site in ("LIS", ""):
        refused = manager.get(reverse("costs:reports"), _query(site, start, end))
        assert refused.status_code == 400 and "site" in refused.content.decode().lower()
    qa = _client("qa")
    for site in ("MAD", "LIS"):
        qa.post(reverse("costs:report_sign"), {**_query(site, start, end), "reason": "Close", "username": "qa",
                                               "password": PASSWORD})
    mad, lis = CostReport.objects.get(site__code="MAD"), CostReport.objects.get(site__code="LIS")
    assert manager.get(reverse("costs:report", args=[mad.pk])).status_code == 200
    assert manager.get(reverse("costs:report", args=[lis.pk])).status_code == 404
    assert manager.post(reverse("costs:report_sign"), {**_query("MAD", start, end), "reason": "x",
                                                       "password": PASSWORD}).status_code == 403
    assert _client("operator.mad").get(reverse("costs:reports")).status_code == 403
    listing = manager.get(reverse("costs:reports")).content.decode()
    assert f'href="{reverse("costs:report", args=[mad.pk])}"' in listing
    assert f'href="{reverse("costs:report", args=[lis.pk])}"' not in listing


@pytest.mark.django_db
def test_hostile_periods_are_refused_naming_the_field_and_store_nothing(people):
    """COST-BATCH: year 1 and 9999, a last day before the first, more than ten years, a day in the future, NUL
    and a 400-digit site: each a 400 naming the field, and signing refuses them too, storing nothing; a period
    with no batch is not signed."""
    _, start, end = _world()
    client = _client("qa")
    today = timezone.now().date()
    cases = [
        ({"start": "0001-01-01"}, "start"), ({"end": "9999-12-31"}, "end"),
        ({"start": end.isoformat(), "end": start.isoformat()}, "end"),
        ({"start": "2001-01-01", "end": today.isoformat()}, "end"),
        ({"end": (today + dt.timedelta(days=3)).isoformat()}, "end"),
        ({"site": "MAD\x00"}, "site"), ({"site": "9" * 400}, "site"), ({"start": "2026-13-45"}, "start"),
    ]
    for change, field in cases:
        query = {**_query("MAD", start, end), **change}
        got = client.get(reverse("costs:reports"), query)
        assert got.status_code == 400, change
        text = got.content.decode()
        # NUL is refused before any view by the middleware, on a page that names the field.
        assert f'id="id_{field}_error"' in text or ("Value not accepted" in text and field in text), change
        signed = client.post(reverse("costs:report_sign"), {**query, "reason": "x", "username": "qa",
                                                            "password": PASSWORD})
        assert signed.status_code == 400, change
    empty = client.post(reverse("costs:report_sign"), {**_query("MAD", dt.date(2001, 1, 1), dt.date(2001, 2, 1)),
                                                       "reason": "x", "username": "qa", "password": PASSWORD})
    assert empty.status_code == 400 and "nothing to sign" in empty.content.decode()
    assert not CostReport.objects.exists()
    assert client.get(reverse("costs:reports")).status_code == 200


@pytest.mark.django_db
def test_the_demo_signs_one_report_per_site_when_the_network_is_past_the_limit(people, monkeypatch):
    """COST-BATCH: the demo signs the network's report for the last 18 months; a network grown past what one
    signed report holds (the page benchmark's) gets one signed report per site with batches instead, each
    holding only its site's batches — rather than the demo's load failing at its last step."""
    from pocare.demo import costs as demo_costs

    batches, _, today = _world()
    monkeypatch.setattr(report, "MAX_BATCHES", 2)
    signed = demo_costs.load_report(password=PASSWORD, today=today)
    assert sorted((r.site.code, r.figures["batches"]) for r in signed) == [("LIS", 1), ("MAD", 2)]
    assert demo_costs.load_report(password=PASSWORD, today=today) == signed  # once
    CostReport.objects.all().delete()
    monkeypatch.setattr(report, "MAX_BATCHES", 3)
    (network,) = demo_costs.load_report(password=PASSWORD, today=today)
    assert network.site is None and network.figures["batches"] == len(batches)
