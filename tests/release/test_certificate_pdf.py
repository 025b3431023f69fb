"""The release certificate read back from its PDF (ATMP-REL, P11-50, A11-8): every attribute with its
acceptance criterion, result and conformity; the QP's signature in the site's time with its zone and
UTC beside it; and, for a specification long enough to need a second page, no results row split
across a page break and the table's header repeated on the next page."""

from __future__ import annotations

import copy
import datetime as dt

import pytest

from pocare.core.units import unit_text
from pocare.ledger.models import Signature
from pocare.manufacturing.models import Batch
from pocare.quality.models import Deviation
from pocare.release import services
from pocare.release.checklist import acceptance_text
from pocare.release.models import Certification
from tests import pdf_reading as pdfr
from tests.manufacturing import helpers as h
from tests.release import helpers as rh

pytestmark = pytest.mark.django_db

EXTRA = 36  # attributes added to the specification: with the demo's, the results fill more than a page
LONG = (
    "residual {i} of the vector-transduced cell population measured against the reference standard "
    "lot, reported as the mean of three replicates"
)


def _long_specification() -> list[dict[str, object]]:
    """The demo's version with ``EXTRA`` more attributes (long names that wrap onto several lines)."""
    version = h.world()
    content = copy.deepcopy(version.content)
    added = [
        {
            "id": f"extra-{i:02d}",
            "name": f"Attribute X{i:02d}: " + LONG.format(i=i),
            "method": f"Method M{i:02d}, validated flow cytometry panel",
            "unit": "%",
            "acceptance": {"min": 10 + i},
            "sample_point": "Final product",
            "release_critical": False,
        }
        for i in range(EXTRA)
    ]
    content["specification"]["attributes"] += added
    type(version).objects.filter(pk=version.pk).update(content=content)
    return content["specification"]["attributes"]


def _certified_pdf(client, login, batch: Batch) -> tuple[Certification, bytes]:  # type: ignore[no-untyped-def]
    rh.review_exceptions(batch)
    rh.qc_review(batch)
    cert = services.batch_certify(
        actor=h.user("qp"), batch=batch, reason="Meets the master file.", credentials=h.creds("qp")
    )
    login("qp")
    response = client.post(f"/release/batches/{batch.reference}/certificate/")
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"] == "application/pdf"
    pdfr.keep(f"certificate-{batch.reference}.pdf", response.content)
    return cert, response.content


@pytest.fixture
def long_certificate(client, login):  # type: ignore[no-untyped-def]
    attributes = _long_specification()
    batch = rh.completed_batch("MAD", bad={"extra-03"})  # one non-critical result out of specification
    rh.assess_negligible(Deviation.objects.get(batch=batch))  # its deviation, so that the QP may certify
    cert, pdf = _certified_pdf(client, login, batch)
    return attributes, batch, cert, pdf


def _columns(page, headers: list[str]) -> dict[str, tuple[float, float]]:  # type: ignore[no-untyped-def]
    """The x range of each results column, from the header words on the page."""
    found = {w.text: w.box for w in pdfr.words(page) if w.text in {h.split()[0].upper() for h in headers}}
    starts = [found[h.split()[0].upper()][0] for h in headers]
    return {
        h: (starts[i] - 1, (starts[i + 1] - 1) if i + 1 < len(starts) else page.width) for i, h in enumerate(headers)
    }


HEADERS = ["Attribute", "Method", "Acceptance criterion", "Result", "Conformity"]


def test_the_certificate_states_criterion_result_and_conformity_of_every_attribute(long_certificate):
    """ATMP-REL ATMP-OOS: each attribute of the specification appears with its acceptance criterion, its
    result and pass / FAIL / pending; a results row is never split across pages and the header repeats."""
    attributes, batch, _, pdf = long_certificate
    with pdfr.opened(pdf) as doc:
        pages = [p for p in doc.pages if "ACCEPTANCE" in (p.extract_text() or "")]
        assert len(pages) >= 2, "the results table should need more than one page for this test"
        columns = {id(p): _columns(p, HEADERS) for p in pages}
        cells = [
            {
                c: _squash(pdfr.column_text(p.crop((0, _table_top(p), p.width, p.height)), *columns[id(p)][c]))
                for c in HEADERS
            }
            for p in pages
        ]
    results = {r.attribute_id: r for r in batch.qc_results.all()}
    for a in attributes:
        name = _squash(str(a["name"]))
        on = [i for i, page in enumerate(cells) if name in page["Attribute"]]
        assert len(on) == 1, f"{name!r} is not whole on one page (split across a page break?)"
        page = cells[on[0]]
        assert _squash(unit_text(acceptance_text(a))) in page["Acceptance criterion"], a["id"]
        if a["id"] in results:
            assert _squash(unit_text(results[a["id"]].display_value)) in page["Result"], a["id"]
    conformity = " ".join(p["Conformity"] for p in cells)
    assert conformity.count("FAIL") == 1 and "OUTOFSPECIFICATION" in conformity.upper()
    assert conformity.count("pass") >= EXTRA - 1 and "pending" in conformity


def _squash(text: str) -> str:
    """Text without its spaces: a cell may wrap a line after "EU/" or at a hyphen."""
    return "".join(text.split())


def _table_top(page) -> float:  # type: ignore[no-untyped-def]
    """Where the results table starts on a page (its header row)."""
    return min(w.box[1] for w in pdfr.words(page) if w.text == "CONFORMITY") - 2


def test_the_certificate_gives_the_signature_in_site_time_with_utc_beside_it(client, login):
    """P11-50 ATMP-REL: the QP's signature manifestation prints the printed name, the meaning and the
    time at the manufacturing site with its zone's name and UTC beside it, to the second; the decision
    time is site-local with its zone too."""
    batch = rh.completed_batch("MAD")
    cert, pdf = _certified_pdf(client, login, batch)
    signature = Signature.objects.get(record_type="release.Certification", record_id=str(cert.pk))
    local = signature.signed_at.astimezone(batch.site.tz)
    utc = signature.signed_at.astimezone(dt.UTC)
    # UTC beside it, with its own date when the day differs (signed after 23:00 UTC in winter).
    beside = f"{utc:%H:%M:%S}" if utc.date() == local.date() else f"{utc:%Y-%m-%d %H:%M:%S}"
    expected = f"{local:%Y-%m-%d %H:%M:%S} {local.tzname()} ({beside} UTC)"
    with pdfr.opened(pdf) as doc:
        text = " ".join(" ".join((p.extract_text() or "").split()) for p in doc.pages)
    assert local.tzname() in {"CET", "CEST"} and expected in text
    assert signature.signer_printed_name in text and "Released" in text and "Europe/Madrid" in text
    decided = cert.decided_at.astimezone(batch.site.tz)
    assert f"{decided:%Y-%m-%d %H:%M} {decided.tzname()}" in text


def test_the_certificate_prints_units_as_people_write_them(client, login):
    """ATMP-REL: the dose's unit, stored as the master file writes it (``10^6 cells/kg``), prints as
    ``× 10⁶ cells/kg`` in its acceptance criterion and its result; no caret reaches the document,
    while the record and the signed snapshot keep the stored form."""
    batch = rh.completed_batch("MAD")
    dose = batch.qc_results.get(attribute_id="dose")
    assert dose.unit == "10^6 cells/kg"
    cert, pdf = _certified_pdf(client, login, batch)
    with pdfr.opened(pdf) as doc:
        assert not any("^" in (p.extract_text() or "") for p in doc.pages)
        page = next(p for p in doc.pages if "ACCEPTANCE" in (p.extract_text() or ""))
        table = page.crop((0, _table_top(page), page.width, page.height))
        columns = _columns(page, HEADERS)
        criteria = _squash(pdfr.column_text(table, *columns["Acceptance criterion"]))
        results = _squash(pdfr.column_text(table, *columns["Result"]))
    assert _squash("≥ 0.5 × 10⁶ cells/kg, ≤ 5 × 10⁶ cells/kg") in criteria
    assert _squash(f"{dose.value_number:g} × 10⁶ cells/kg") in results
    assert any(r["value"] == dose.display_value for r in cert.checklist["results"])  # the snapshot keeps 10^6
