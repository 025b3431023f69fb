"""The master-file pages and API: what each person sees and may sign, and bad input as 4xx with
nothing changed."""

from __future__ import annotations

import pytest

from pocare.jobs.models import Job
from pocare.ledger.models import Event, Meaning
from pocare.ledger.signing import signatures_for
from pocare.masterfile.events import MasterFileEvent
from pocare.masterfile.models import ChangeRequest, MasterFileVersion, VersionStatus
from tests.conftest import PASSWORD
from tests.jobs.run import download
from tests.masterfile.helpers import V2_TEXT, draft_v1, effective_v1, raise_change
from tests.pdf_reading import opened

pytestmark = pytest.mark.django_db


def test_the_master_file_page_shows_each_sites_effective_version(client, login):
    """POC-1 POC-3: the sites × versions table is on the master-file page."""
    effective_v1()
    login("qa")
    page = client.get("/masterfile/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "Effective version at each site" in body and "MAD" in body and "not authorized" in body
    assert 'href="/masterfile/"' in client.get("/").content.decode()  # the navigation entry


def test_a_version_page_shows_content_signatures_and_the_next_action(client, login):
    """P11-50: a signed record shows each signer's printed name, meaning and time on every display."""
    v1 = effective_v1()
    login("qa")
    body = client.get(f"/masterfile/versions/{v1.pk}/").content.decode()
    for text in ("Marc Vidal", "Authored", "Montserrat Puig", "Reviewed", "Jordi Ferrer", "Approved", "UTC",
                 "Day-5 in-process control", "≥ 70 %", "lonza_cocoon", "made effective"):
        assert text in body, text
    yaml = client.get(f"/masterfile/versions/{v1.pk}/document.yaml")
    assert yaml.status_code == 200 and yaml.content.decode().startswith("# POCare Master File")


def test_the_whole_lifecycle_through_the_pages_by_three_people(client, login):
    """POC-4 P11-200 P11-10g: author, reviewer and QP sign in the browser, each with user id and password."""
    v = draft_v1()
    login("qa2")
    page = client.get(f"/masterfile/versions/{v.pk}/").content.decode()
    assert "Sign as author and submit for review" in page
    response = client.post(f"/masterfile/versions/{v.pk}/submit/", {
        "submit-reason": "ready", "submit-username": "qa2", "submit-password": PASSWORD})
    assert response.status_code == 302
    v.refresh_from_db()
    assert v.status == VersionStatus.IN_REVIEW
    # the author is not offered the review, and a forged post is refused with the rule
    assert "Sign as reviewed" not in client.get(f"/masterfile/versions/{v.pk}/").content.decode()
    response = client.post(f"/masterfile/versions/{v.pk}/review/", {
        "review-reason": "self", "review-password": PASSWORD})
    assert response.status_code == 400 and "three different people" in response.content.decode()
    client.logout()
    login("qa")
    response = client.post(f"/masterfile/versions/{v.pk}/review/", {
        "review-reason": "ok", "review-username": "qa", "review-password": PASSWORD})
    assert response.status_code == 302
    client.logout()
    login("qp")
    # approval is irreversible: it needs the confirmation box
    response = client.post(f"/masterfile/versions/{v.pk}/approve/", {
        "approve-reason": "ok", "approve-username": "qp", "approve-password": PASSWORD})
    assert response.status_code == 400 and "Tick the box" in response.content.decode()
    response = client.post(f"/masterfile/versions/{v.pk}/approve/", {
        "approve-reason": "ok", "approve-username": "qp", "approve-password": PASSWORD, "approve-confirm": "on"})
    assert response.status_code == 302
    client.logout()
    login("qa")
    response = client.post(f"/masterfile/versions/{v.pk}/effective/", {
        "effective-reason": "go", "effective-username": "qa", "effective-password": PASSWORD,
        "effective-confirm": "on"})
    assert response.status_code == 302
    v.refresh_from_db()
    assert v.status == VersionStatus.EFFECTIVE
    assert [s.meaning for s in signatures_for(v).order_by("id")] == [
        Meaning.AUTHORED, Meaning.REVIEWED, Meaning.APPROVED, Meaning.APPROVED]


@pytest.mark.parametrize("data", [
    {},
    {"submit-reason": "", "submit-username": "qa2", "submit-password": PASSWORD},
    {"submit-reason": "x", "submit-username": "qa2", "submit-password": "wrong"},
    {"submit-reason": "x", "submit-username": "qa", "submit-password": PASSWORD},
])
def test_bad_signing_input_is_a_400_and_changes_nothing(client, login, data):
    """P11-200 P11-100: missing reason, wrong password or another's user id: refused, nothing changed."""
    v = draft_v1()
    login("qa2")
    before = Event.objects.exclude(event_type="ledger.signing_failed").count()
    response = client.post(f"/masterfile/versions/{v.pk}/submit/", data)
    assert response.status_code == 400
    v.refresh_from_db()
    assert v.status == VersionStatus.DRAFT
    assert Event.objects.exclude(event_type="ledger.signing_failed").count() == before


def test_people_without_the_role_are_refused_before_anything_happens(client, login):
    """P11-10g: an operator cannot return a version; the refusal is 403 and writes nothing."""
    v = draft_v1()
    login("qa2")
    client.post(f"/masterfile/versions/{v.pk}/submit/", {"submit-reason": "r", "submit-username": "qa2",
                                                           "submit-password": PASSWORD})
    client.logout()
    login("operator.mad")
    before = Event.objects.count()
    assert client.post(f"/masterfile/versions/{v.pk}/return/", {"return-reason": "x"}).status_code in (403, 404)
    assert Event.objects.count() == before


def test_raising_a_change_in_the_browser_shows_schema_errors_with_their_lines(client, login):
    """POC-3 Q9-RISK: errors name the line and field; nothing is raised until the document is valid."""
    effective_v1()
    login("qa2")
    form = client.get("/masterfile/changes/new/")
    assert form.status_code == 200 and "# POCare Master File" in form.content.decode()  # prefilled with v1
    data = {"product": "CD19-CART", "title": "Extend expansion", "description": "Two more days.", "severity": "3",
            "probability": "2", "detectability": "2", "sites": ["MAD", "LIS"], "comparability_evidence": "Runs.",
            "reason": "PQR", "document": V2_TEXT.replace("unit: MOI, min: 5", "unit: moi, min: 5")}
    response = client.post("/masterfile/changes/new/", data)
    body = response.content.decode()
    assert response.status_code == 400 and ChangeRequest.objects.count() == 0
    line = V2_TEXT[:V2_TEXT.index("{id: moi,")].count("\n") + 1
    assert f"line {line}" in body and "process.unit_operations[3].steps[0].parameters[1].unit" in body
    assert "unit &#x27;moi&#x27; is not allowed" in body
    response = client.post("/masterfile/changes/new/", {**data, "document": V2_TEXT})
    assert response.status_code == 302
    cr = ChangeRequest.objects.get()
    assert response.url == f"/masterfile/changes/{cr.pk}/"
    page = client.get(response.url).content.decode()
    assert "Medium risk" in page and "ipc-day5" in page and "parameter car-positive: min" in page


@pytest.mark.parametrize(("field", "value"), [("severity", "9"), ("sites", ["CTRL"]), ("product", "NOPE"),
                                             ("title", "")])
def test_a_malformed_change_form_is_a_400_naming_the_field(client, login, field, value):
    """Q10-PQS: bad input names the field; nothing is raised."""
    effective_v1()
    login("qa2")
    data = {"product": "CD19-CART", "title": "x", "description": "y", "severity": "3", "probability": "2",
            "detectability": "2", "sites": ["MAD"], "comparability_evidence": "Runs.", "reason": "r",
            "document": V2_TEXT, field: value}
    response = client.post("/masterfile/changes/new/", data)
    assert response.status_code == 400 and ChangeRequest.objects.count() == 0


def test_rejecting_a_change_in_the_browser_needs_confirmation_and_a_signature(client, login):
    """Q10-PQS P11-50: rejection is signed."""
    cr = raise_change()
    login("qp")
    url = f"/masterfile/changes/{cr.pk}/reject/"
    assert client.post(url, {"reject-reason": "no", "reject-username": "qp", "reject-password": PASSWORD}
                       ).status_code == 400
    response = client.post(url, {"reject-reason": "no", "reject-username": "qp", "reject-password": PASSWORD,
                                 "reject-confirm": "on"})
    assert response.status_code == 302
    cr.refresh_from_db()
    assert cr.status == "rejected"


def test_site_people_see_their_sites_changes_and_not_others(client, login):
    """P11-10g: another site's change request does not exist for a site person."""
    mad = raise_change(sites=("MAD",))
    lis = raise_change(sites=("LIS",), document=V2_TEXT.replace("min: 8, max: 100", "min: 9, max: 100"))
    login("manager.mad")
    assert client.get(f"/masterfile/changes/{mad.pk}/").status_code == 200
    assert client.get(f"/masterfile/changes/{lis.pk}/").status_code == 404
    lis_version = MasterFileVersion.objects.get(change_request=lis)
    assert client.get(f"/masterfile/versions/{lis_version.pk}/").status_code == 404
    listing = client.get("/masterfile/changes/").content.decode()
    assert mad.reference in listing and lis.reference not in listing


def test_the_diff_page_compares_any_two_versions_and_refuses_nonsense(client, login):
    """POC-4: a readable diff between any two versions; bad parameters are a 400."""
    cr = raise_change()
    v1 = MasterFileVersion.objects.get(number=1)
    login("qa")
    page = client.get(f"/masterfile/diff/?a={v1.pk}&b={cr.version.pk}")
    assert page.status_code == 200 and "parameter harvest-day: max" in page.content.decode()
    assert client.get("/masterfile/diff/").status_code == 200
    for query in ("?a=x&b=1", f"?a={v1.pk}", "?a=99999&b=99998"):
        assert client.get(f"/masterfile/diff/{query}").status_code == 400, query


def test_dossier_html_and_pdf_are_exported_and_recorded(client, login):
    """P11-10b POC-3 POC-5 P11-50: the DMMF dossier as HTML and PDF, every export in the ledger."""
    raise_change()
    login("qa")
    html = download(client, client.post("/masterfile/products/CD19-CART/dossier/"))
    assert html["Content-Type"] == "text/html; charset=utf-8"
    body = html.content_bytes.decode()
    for text in ("POCare Control Site", "Madrid POCare site", "Manufacturing process", "Release specification",
                 "Site annexes", "Change history", "Medium", "Electronic signatures", "Marc Vidal", "Authored",
                 "valid", "UTC"):
        assert text in body, text
    pdf = download(client, client.post("/masterfile/products/CD19-CART/dossier.pdf"))
    assert pdf.content_bytes.startswith(b"%PDF")
    assert pdf["Content-Disposition"].startswith('attachment; filename="pocare-dmmf-CD19-CART-')
    with opened(pdf.content_bytes) as doc:
        text = " ".join(" ".join((p.extract_text() or "").split()) for p in doc.pages)
    assert "Release specification" in text and "CD19-CART" in text
    events = Event.objects.filter(event_type=MasterFileEvent.DOSSIER_EXPORTED).order_by("id")
    assert [e.new["format"] for e in events] == ["html", "pdf"]
    import hashlib

    assert events[1].new["sha256"] == hashlib.sha256(pdf.content_bytes).hexdigest() == pdf["X-POCare-File-SHA256"]
    count = Job.objects.count()
    assert client.post("/masterfile/products/CD19-CART/dossier/", {"version": "7"}).status_code == 400
    assert client.post("/masterfile/products/NOPE/dossier/").status_code == 404
    assert Job.objects.count() == count  # refused input queues nothing
    job = Job.objects.latest("pk")
    client.logout()
    login("manager.mad")  # another person, at a site: QA's job is not theirs to see
    assert client.get(f"/jobs/{job.pk}/").status_code == 404
    assert client.post(f"/jobs/{job.pk}/file/").status_code == 404


def test_the_dossier_pdf_answers_503_when_the_pdf_engine_cannot_load(client, login, monkeypatch):
    """P11-10b: without the PDF engine the export fails clearly, and no export is recorded."""
    import builtins

    effective_v1()
    real_import = builtins.__import__

    def no_weasyprint(name, *args, **kwargs):
        if name == "weasyprint":
            raise OSError("cannot load library 'libpango-1.0-0'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_weasyprint)
    login("qa")
    before = Event.objects.filter(event_type=MasterFileEvent.DOSSIER_EXPORTED).count()
    response = client.post("/masterfile/products/CD19-CART/dossier.pdf")
    assert response.status_code == 503 and "libpango" in response.content.decode()
    assert Event.objects.filter(event_type=MasterFileEvent.DOSSIER_EXPORTED).count() == before


# --- the API --------------------------------------------------------------------------------------


@pytest.fixture
def bearer(people):
    from pocare.accounts.services import token_issue

    def _bearer(username):
        _, key = token_issue(actor=None, user=people[username], name="test", reason="test")
        return {"HTTP_AUTHORIZATION": f"Bearer {key}"}

    return _bearer


def test_the_api_lists_products_versions_with_content_and_signatures(client, bearer):
    """P11-10b P11-50: versions over the API carry content, YAML and signatures with validity."""
    v1 = effective_v1()
    qa = bearer("qa")
    products = client.get("/api/masterfile/products/", **qa).json()["results"]
    assert products[0]["code"] == "CD19-CART" and products[0]["effective_version"] == 1
    versions = client.get("/api/masterfile/versions/", **qa).json()["results"]
    assert versions[0]["number"] == 1 and versions[0]["status"] == "effective"
    detail = client.get(f"/api/masterfile/versions/{v1.pk}/", **qa).json()
    assert detail["content"]["product"]["code"] == "CD19-CART" and detail["document"].startswith("# POCare")
    assert [s["meaning"] for s in detail["signatures"]] == ["authored", "reviewed", "approved", "approved"]
    assert all(s["valid"] for s in detail["signatures"]) and len(detail["required_training_steps"]) == 15


def test_raising_a_change_over_the_api(client, bearer):
    """Q9-RISK POC-3: POST raises a change; schema errors are a 400 listing lines and paths."""
    effective_v1()
    qa2 = bearer("qa2")
    payload = {"product": "CD19-CART", "title": "Extend", "description": "Two days more", "severity": 3,
               "probability": 2, "detectability": 2, "sites": ["MAD", "LIS"], "comparability_evidence": "Runs",
               "document": V2_TEXT.replace("kind: autologous", "kind: xeno"), "reason": "PQR"}
    bad = client.post("/api/masterfile/changes/", payload, content_type="application/json", **qa2)
    assert bad.status_code == 400
    problem = bad.json()["problems"][0]
    assert problem["path"] == "product.kind" and problem["line"] == V2_TEXT[:V2_TEXT.index("kind: auto")].count("\n") + 1
    assert bad.json()["document"][0].startswith(f"line {problem['line']}: product.kind:")
    assert ChangeRequest.objects.count() == 0
    good = client.post("/api/masterfile/changes/", {**payload, "document": V2_TEXT}, content_type="application/json",
                       **qa2)
    assert good.status_code == 201, good.content
    body = good.json()
    assert body["risk_class"] == "medium" and body["sites"] == ["LIS", "MAD"]
    assert body["training_steps"] == ["ipc-day5", "expansion-harvest-decision", "harvest"]
    assert client.get(f"/api/masterfile/changes/{body['id']}/", **qa2).json()["reference"] == body["reference"]


@pytest.mark.parametrize(("change", "field"), [
    ({"severity": 7}, "severity"), ({"sites": []}, "sites"), ({"sites": ["ZZZ"]}, "sites"),
    ({"product": "NOPE"}, "product"), ({"document": ""}, "document"), ({"reason": ""}, "reason"),
    ({"comparability_evidence": ""}, "comparability_evidence"), ({"sites": ["CTRL"]}, "sites"),
])
def test_malformed_change_requests_over_the_api_are_400_naming_the_field(client, bearer, change, field):
    """Q10-PQS: the API names the field and changes nothing."""
    effective_v1()
    payload = {"product": "CD19-CART", "title": "Extend", "description": "Two days more", "severity": 3,
               "probability": 2, "detectability": 2, "sites": ["MAD"], "comparability_evidence": "Runs",
               "document": V2_TEXT, "reason": "PQR", **change}
    headers = bearer("qa")
    before = Event.objects.count()
    response = client.post("/api/masterfile/changes/", payload, content_type="application/json", **headers)
    assert response.status_code == 400 and field in response.json(), response.json()
    assert Event.objects.count() == before


def test_api_scoping_and_write_permission(client, bearer):
    """P11-10g: site people see their sites' changes only; operators cannot raise changes."""
    lis = raise_change(sites=("LIS",))
    mad = bearer("manager.mad")
    assert client.get(f"/api/masterfile/changes/{lis.pk}/", **mad).status_code == 404
    assert client.get("/api/masterfile/changes/", **mad).json()["results"] == []
    assert client.get(f"/api/masterfile/versions/{lis.version.pk}/", **mad).status_code == 404
    response = client.post("/api/masterfile/changes/", {"product": "CD19-CART"}, content_type="application/json",
                           **bearer("operator.mad"))
    assert response.status_code == 403


def test_change_lists_cost_the_same_for_one_or_three_requests(client, login):
    """Query-count baseline: the change-request page and API list do not grow a query per row."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries(url):
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        return len(ctx.captured_queries)

    raise_change()
    login("qa")
    few = {url: queries(url) for url in ("/masterfile/changes/", "/api/masterfile/changes/")}
    for minimum in (9, 10):
        raise_change(document=V2_TEXT.replace('"%", min: 8, max: 100', f'"%", min: {minimum}, max: 100'))
    many = {url: queries(url) for url in few}
    assert many == few
