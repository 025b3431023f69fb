"""The cost model (COST-BATCH): versioned and signed like the master file — drafted, approved by Control
Site QA with a signature that supersedes the version before; a wrong password stores nothing; only
``costs.manage`` drafts and approves; hostile content is refused naming its path, storing nothing."""

from __future__ import annotations

import html
import json
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from pocare.accounts.roles import ROLE_PERMS, Perm, Role
from pocare.costs import compute, services
from pocare.costs.events import CostsEvent
from pocare.costs.models import CostModel, CostModelStatus
from pocare.ledger.models import Event, Meaning, Signature
from pocare.ledger.signing import SigningCredentials, SigningRefused, signatures_for
from pocare.ledger.verify import signature_status
from tests.costs import helpers as c
from tests.manufacturing import helpers as h


def test_only_control_site_qa_manages_the_cost_model_and_the_control_site_reads_it():
    """COST-BATCH P11-10g: ``costs.manage`` is Control Site QA's alone; QA, the QP, the inspector, the planner
    (and a site's manager, for their site) read costs; the physician, operator and QC analyst do not."""
    assert [r for r in Role if Perm.COSTS_MANAGE in ROLE_PERMS[r]] == [Role.CONTROL_QA]
    readers = {r for r in Role if Perm.COSTS_VIEW in ROLE_PERMS[r]}
    assert readers == {Role.CONTROL_QA, Role.QP, Role.INSPECTOR, Role.PLANNER, Role.SITE_MANAGER}


@pytest.mark.django_db
def test_a_change_of_the_cost_model_is_a_new_version_signed_by_qa_that_supersedes_the_one_before(people):
    """COST-BATCH CH4-9 P11-50 P11-70: v1 drafted and approved (signed, meaning approved, with the reason);
    v2 drafted; a wrong password approves nothing and signs nothing; the right one approves v2, supersedes v1,
    and both signatures still hold. Each change is a ledger event with its reason."""
    qa = h.user("qa")
    v1 = c.approved(c.content())
    assert (v1.number, v1.status, v1.approved_by) == (1, CostModelStatus.APPROVED, qa)
    [signature] = signatures_for(v1)
    assert signature.meaning == Meaning.APPROVED and signature.event.reason == "Checked against the budget"
    v2 = services.cost_model_draft(actor=qa, content=c.content(overhead={"percent": 18}),
                                   reason="Overhead of the 2027 budget", effective_from="2027-01-01")
    assert (v2.number, v2.status) == (2, CostModelStatus.DRAFT)
    events, signatures = Event.objects.count(), Signature.objects.count()
    with pytest.raises(SigningRefused):
        services.cost_model_approve(actor=qa, model=v2, reason="Approved",
                                    credentials=SigningCredentials(username="qa", password="wrong password"))
    v2.refresh_from_db()
    v1.refresh_from_db()
    assert v2.status == CostModelStatus.DRAFT and v1.status == CostModelStatus.APPROVED
    assert Signature.objects.count() == signatures
    assert not Event.objects.filter(event_type=CostsEvent.MODEL_APPROVED, object_id=str(v2.pk)).exists()
    assert Event.objects.count() <= events + 1  # at most the failed signing attempt, recorded (P11-300)
    services.cost_model_approve(actor=qa, model=v2, reason="2027 budget approved", credentials=h.creds(qa))
    v1.refresh_from_db()
    v2.refresh_from_db()
    assert v1.status == CostModelStatus.SUPERSEDED and v1.superseded_at is not None
    assert v2.status == CostModelStatus.APPROVED
    for version in (v1, v2):
        [signature] = signatures_for(version)
        assert signature_status(signature)[0], "the approval still binds the version's content"
    approvals = Event.objects.filter(event_type=CostsEvent.MODEL_APPROVED).order_by("pk")
    assert [e.reason for e in approvals] == ["Checked against the budget", "2027 budget approved",
                                             "2027 budget approved"]
    with pytest.raises(ValidationError, match="not a draft"):
        services.cost_model_approve(actor=qa, model=v1, reason="again", credentials=h.creds(qa))


@pytest.mark.django_db
def test_a_version_never_takes_effect_before_the_one_it_supersedes(people):
    """COST-BATCH: the version effective on a day is the newest approved by then, so v2 may not start
    before v1 (a past batch is not repriced by moving a date behind a version's back)."""
    c.approved(c.content(), effective_from="2026-01-01")
    qa = h.user("qa")
    v2 = services.cost_model_draft(actor=qa, content=c.content(), reason="Back-dated", effective_from="2025-06-01")
    with pytest.raises(ValidationError, match="before cost model v1"):
        services.cost_model_approve(actor=qa, model=v2, reason="Approved", credentials=h.creds(qa))
    assert CostModel.objects.get(number=2).status == CostModelStatus.DRAFT


@pytest.mark.django_db
@pytest.mark.parametrize("username", ["qp", "inspector", "planner", "manager.mad", "operator.mad"])
def test_nobody_but_control_site_qa_drafts_or_approves_a_cost_model(people, username):
    """COST-BATCH P11-10g: the QP, the inspector, the planner and the site's people read costs at most;
    drafting and approving is refused in the service, storing nothing."""
    draft = services.cost_model_draft(actor=h.user("qa"), content=c.content(), reason="Draft for review")
    with pytest.raises(PermissionDenied):
        services.cost_model_draft(actor=h.user(username), content=c.content(), reason="mine")
    with pytest.raises(PermissionDenied):
        services.cost_model_approve(actor=h.user(username), model=draft, reason="ok", credentials=h.creds(username))
    assert list(CostModel.objects.values_list("number", "status")) == [(1, "draft")]


def _nested(depth: int) -> str:
    return '{"currency": "EUR", "materials": ' + '{"a": ' * depth + "1" + "}" * depth + "}"


HOSTILE: list[tuple[Any, str]] = [
    ({"currency": "EUR", "materials": {"TS520": float("nan")}}, "materials.TS520"),
    ('{"currency": "EUR", "materials": {"TS520": NaN}}', "materials.TS520"),
    ({"currency": "EUR", "labour": {"hourly_rates": {"operator": -1}}}, "labour.hourly_rates.operator"),
    ({"currency": "EUR", "materials": {"TS520": int("9" * 400)}}, "materials.TS520"),
    ('{"currency": "EUR", "materials": {"TS520": ' + "9" * 400 + "}}", "materials.TS520"),
    ('{"currency": "EUR", "qc_tests": {"viability": 1e400}}', "qc_tests.viability"),
    ({"currency": "EUR", "qc_tests": {"viability": "Infinity"}}, "qc_tests.viability"),
    ({"currency": "EUR", "materials": {"TS520": {"price": 3}}}, "materials.TS520"),
    ({"currency": "EUR", "materials": {"TS520": [3]}}, "materials.TS520"),
    ({"currency": "EUR", "materials": {"TS520": True}}, "materials.TS520"),
    ({"currency": "EUR", "materials": {"TS520": "0.00001"}}, "materials.TS520"),
    ({"currency": "EUR", "materials": {"TS520": 1_000_001}}, "materials.TS520"),
    ({"currency": "EUR", "labour": {"hourly_rates": {"operator": 1000.5}}}, "labour.hourly_rates.operator"),
    ({"currency": "EUR", "labour": {"hourly_rates": {"janitor": 20}}}, "labour.hourly_rates.janitor"),
    ({"currency": "EUR", "labour": {"site_hourly_rates": {"MAD": {"operator": 2000}}}},
     "labour.site_hourly_rates.MAD.operator"),
    ({"currency": "EUR", "labour": {"hourly_rate": {"operator": 20}}}, "labour.hourly_rate"),
    ({"currency": "EUR", "overhed": {"percent": 10}}, "overhed"),
    ({"currency": "EUR", "overhead": {"percent": 100.01}}, "overhead.percent"),
    ({"currency": "EUR", "overhead": {"percent": 10, "extra": 1}}, "overhead.extra"),
    ({"currency": "EUR", "equipment": {"hourly": {"toaster": 3}}}, "equipment.hourly.toaster"),
    ({"currency": "EUR", "materials": {"TS 520; drop": 3}}, "materials.TS 520; drop"),
    ({"currency": "USD"}, "currency"),
    ({}, "currency"),
    ([1, 2], "content"),
    (_nested(40), "materials"),
    (_nested(3), "materials.a"),
    ('{"currency": "EUR", "materials": {"TS520\\u0000": 3}}', "materials"),
    ({"currency": "EUR", "material_lots": {"TS520": {"L-1": -5}}}, "material_lots.TS520.L-1"),
    ({"currency": "EUR", "material_lots": {"TS520": {"L-1": 1_000_001}}}, "material_lots.TS520.L-1"),
    ('{"currency": "EUR", "material_lots": {"TS520": {"L-1": 1e400}}}', "material_lots.TS520.L-1"),
    ({"currency": "EUR", "material_lots": {"TS520": {"L\x001": 3}}}, "material_lots.TS520.L\x001"),
    ({"currency": "EUR", "material_lots": {"TS520": {" L-1": 3}}}, "material_lots.TS520. L-1"),
    ({"currency": "EUR", "material_lots": {"TS520": {"L" * 61: 3}}}, "material_lots.TS520." + "L" * 60),
    ({"currency": "EUR", "material_lots": {"TS520": 950}}, "material_lots.TS520"),
    ({"currency": "EUR", "material_lots": {"TS 520": {"L-1": 3}}}, "material_lots.TS 520"),
    ({"currency": "EUR", "material_lots": {f"M{i}": {f"L{j}": 1 for j in range(1_000)} for i in range(21)}},
     "material_lots"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("content", "path"), HOSTILE, ids=[f"{i}-{p}" for i, (_, p) in enumerate(HOSTILE)])
def test_hostile_content_is_refused_naming_its_path_and_nothing_is_stored(people, content, path):
    """COST-BATCH: every figure is a finite number from 0 to its bound (a rate at most 1,000 €/h, a price at
    most 1,000,000 €, overhead 0–100 %) with at most 4 decimals, in EUR; unknown keys, objects where a number
    belongs, 400-digit numbers, NaN and infinity, and JSON nested 40 deep are refused naming the path."""
    with pytest.raises(ValidationError) as refused:
        services.cost_model_draft(actor=h.user("qa"), content=content, reason="hostile")
    [message] = refused.value.message_dict["content"]
    assert message.startswith(path), message
    assert not CostModel.objects.exists()


@pytest.mark.django_db
def test_content_is_kept_normalized_and_its_hash_is_what_is_signed(people):
    """COST-BATCH P11-70: numbers are kept as exact decimal text (52.50 → "52.5"), given as JSON text or an
    object alike; the approval signature binds the number, the effective day and the content's hash."""
    qa = h.user("qa")
    text = json.dumps({"currency": "EUR", "labour": {"hourly_rates": {"operator": 52.50}},
                       "overhead": {"percent": "15.0"}})
    model = services.cost_model_draft(actor=qa, content=text, reason="From JSON", effective_from="2026-03-01")
    assert model.content == {"currency": "EUR", "labour": {"hourly_rates": {"operator": "52.5"}},
                             "overhead": {"percent": "15"}}
    assert model.signed_content() == {"cost_model": 1, "effective_from": "2026-03-01",
                                      "content_hash": model.content_hash}


@pytest.mark.django_db
def test_qa_drafts_and_approves_a_version_on_the_page_and_others_cannot(people):
    """COST-BATCH CH4-9 P11-50: on the cost model's page Control Site QA drafts v2 from v1's content with one
    price changed, then approves it with a signature (a wrong password approves nothing); a hostile price is
    refused naming its path and stores nothing; the planner reads the page but may not draft (403)."""
    from django.test import Client
    from django.urls import reverse

    from tests.conftest import PASSWORD

    c.approved(c.content())
    client = Client()
    client.force_login(h.user("qa"))
    url = reverse("costs:models")
    page = client.get(url).content.decode()
    assert "Draft a new version" in page and "Approve and sign" not in page
    body = json.loads(json.dumps(c.content()))
    body["logistics"]["per_shipment"] = 720
    bad = {**body, "overhead": {"percent": "1e400"}}
    refused = client.post(url, {"action": "draft", "content": json.dumps(bad), "effective_from": "2026-01-01",
                                "reason": "Budget 2027"})
    assert refused.status_code == 400 and "overhead.percent" in refused.content.decode()
    assert CostModel.objects.count() == 1
    drafted = client.post(url, {"action": "draft", "content": json.dumps(body), "effective_from": "2026-01-01",
                                "reason": "Courier price list 2027"})
    assert drafted.status_code == 302 and CostModel.objects.get(number=2).status == CostModelStatus.DRAFT
    assert "Approve and sign version 2" in client.get(url).content.decode()
    wrong = client.post(url, {"action": "approve", "number": "2", "reason": "Checked", "username": "qa",
                              "password": "not it"})
    assert wrong.status_code == 400 and CostModel.objects.get(number=2).status == CostModelStatus.DRAFT
    approved = client.post(url, {"action": "approve", "number": "2", "reason": "Checked", "username": "qa",
                                 "password": PASSWORD})
    assert approved.status_code == 302
    v2 = CostModel.objects.get(number=2)
    assert v2.status == CostModelStatus.APPROVED and v2.content["logistics"]["per_shipment"] == "720"
    assert CostModel.objects.get(number=1).status == CostModelStatus.SUPERSEDED
    for hostile in ({"action": "approve", "number": "9" * 400}, {"action": "guess"}):
        assert client.post(url, hostile).status_code == 400
    planner = Client()
    planner.force_login(h.user("planner"))
    assert planner.get(url).status_code == 200 and "Draft a new version" not in planner.get(url).content.decode()
    assert planner.post(url, {"action": "draft", "content": "{}", "effective_from": "2026-01-01",
                              "reason": "x"}).status_code == 403


def test_qa_sees_the_lots_received_lately_with_the_price_the_model_in_force_gives_each(people):
    """COST-BATCH: under the versions, Control Site QA sees the lots received in the last 90 days, newest first,
    each with the price of a unit under the version in force — the lot's own where the model names it, else its
    material's, or unpriced — linked to its stock card; the planner, who reads the page, does not."""
    from django.test import Client
    from django.urls import reverse

    from tests.supply import helpers as s

    own, other = s.received(5), s.received(5, site_code="LIS")
    c.approved(c.content(materials={s.SYRINGE: "1.5"}, material_lots={s.SYRINGE: {own.lot_number: "2.25"}}))
    client = Client()
    client.force_login(h.user("qa"))
    page = client.get(reverse("costs:models")).content.decode()
    section = page[page.index('id="lots"'):page.index('id="draft"')]

    def row(lot: Any) -> str:
        start = section.index(f'href="{reverse("supply:lot", args=[lot.pk])}"')
        return section[start:section.index("</tr>", start)]

    assert section.index(row(other)) < section.index(row(own))  # newest first
    assert ">2.25<" in row(own) and "the lot's own" in row(own)
    assert ">1.5<" in row(other) and "the material's" in row(other) and other.site.code in row(other)
    planner = Client()
    planner.force_login(h.user("planner"))
    listed = planner.get(reverse("costs:models"))
    assert listed.status_code == 200 and 'id="lots"' not in listed.content.decode()


def test_qa_drafts_lot_prices_from_the_invoice_prices_of_the_deliveries(people):
    """COST-BATCH SUP-STOCK: a lot delivered against a purchase with its invoice price shows that price beside the
    model's, marked when they differ; "Draft with the invoice prices" fills the draft with the version in force
    plus that lot at its invoice price (a lot whose invoice matches is left alone); saved and approved, the lot is
    priced at its own price."""
    from django.test import Client
    from django.urls import reverse

    from pocare.costs.models import CostModel
    from tests.supply import helpers as s
    from tests.supply.test_purchases import _deliver, _ordered

    request = _ordered(20)
    cheaper = _deliver(request, 8, "BD-INV-1", unit_price="1.1250").lot
    same = _deliver(request, 12, "BD-INV-2", unit_price="1.5").lot
    c.approved(c.content(materials={s.SYRINGE: "1.5"}))
    client = Client()
    client.force_login(h.user("qa"))
    page = client.get(reverse("costs:models")).content.decode()
    section = page[page.index('id="lots"'):page.index('id="draft"')]
    row = section[section.index(cheaper.lot_number):]
    row = row[:row.index("</tr>")]
    assert ">1.125 <span" in row and "differs" in row
    assert "Draft with the invoice prices of 1 lot" in section
    drafted = client.get(reverse("costs:models") + "?draft=invoices").content.decode()
    textarea = html.unescape(drafted[drafted.index('name="content"'):drafted.index("</textarea>")])
    content = json.loads(textarea[textarea.index(">") + 1:])
    assert content["material_lots"] == {s.SYRINGE: {cheaper.lot_number: "1.125"}}
    assert content["materials"] == {s.SYRINGE: "1.5"}
    assert "prices 1 lot at its invoice price" in drafted
    found = services.cost_model_draft(actor=h.user("qa"), content=content, reason="Invoices of BD-PO-7001",
                                      effective_from=timezone.now().date())
    services.cost_model_approve(actor=h.user("qa"), model=found, reason="Checked", credentials=h.creds("qa"))
    in_force = CostModel.objects.get(number=found.number)
    assert compute.material_price(in_force.content, s.SYRINGE, cheaper.lot_number) == (
        Decimal("1.125"), " (the lot's price)")
    assert compute.material_price(in_force.content, s.SYRINGE, same.lot_number)[1] == ""

