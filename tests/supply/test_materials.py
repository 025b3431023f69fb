"""The materials page (docs/supply.md, "Materials and approved suppliers"): each material's storage range and
approved suppliers with their qualification and lead time; everyone who sees stock reads it, Control Site QA
changes it — a storage range, a supplier approved for a material (signed), qualified or disqualified
(signed), a lead time — each change a ledger event; hostile input is a 400 naming the field."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django.urls import reverse

from pocare.ledger.canonical import content_hash
from pocare.ledger.models import Event, Signature
from pocare.supply import services
from pocare.supply.models import ApprovedSupplier, MaterialStorage, Supplier, SupplierStatus
from tests.conftest import PASSWORD
from tests.manufacturing import helpers as h
from tests.supply import helpers as s

pytestmark = pytest.mark.django_db

URL = "/supply/materials/"


def _client(username: str) -> Client:
    client = Client()
    client.force_login(h.user(username))
    return client


def _approval() -> ApprovedSupplier:
    s.supplier()
    return ApprovedSupplier.objects.get(material_code=s.SYRINGE)


def test_everyone_who_sees_stock_reads_the_page_and_only_control_site_qa_changes_it():
    """SUP-STOCK: the QC analyst and the inspector read each material's suppliers, their qualification and
    lead time, without a form; QA sees the forms; the QC analyst's POST is a 403 and changes nothing."""
    _approval()
    s.storage(s.SYRINGE, low="15", high="25", condition="Room temperature")
    assert reverse("supply:materials") == URL
    for who in ("qc.mad", "inspector"):
        page = _client(who).get(URL)
        body = page.content.decode()
        assert page.status_code == 200 and "BD" in body and "lead time 14 days" in body and "15 to 25 °C" in body
        assert "Sign the approval" not in body
    assert "Sign the approval" in _client("qa").get(URL).content.decode()
    events = Event.objects.count()
    refused = _client("qc.mad").post(
        URL,
        {
            "action": "lead_time",
            "lead_time-approval": _approval().pk,
            "lead_time-lead_time_days": "30",
            "lead_time-reason": "x",
        },
    )
    assert refused.status_code == 403 and Event.objects.count() == events


def test_qa_records_a_storage_range_each_change_an_event_with_the_old_value():
    """SUP-STOCK: 2 to 8 °C, then ≤ -150 °C (vapour phase: no lowest): one row per material (one fact, one
    value), each change an event keeping the old range; an unchanged range is refused."""
    h.world()
    page = _client("qa").post(
        URL,
        {
            "action": "storage",
            "storage-material_code": s.SYRINGE,
            "storage-min_celsius": "2",
            "storage-max_celsius": "8",
            "storage-condition": "Refrigerated",
            "storage-reason": "Supplier's label",
        },
    )
    assert page.status_code == 302
    kept = MaterialStorage.objects.get(material_code=s.SYRINGE)
    assert (kept.min_celsius, kept.max_celsius, kept.range_text) == (Decimal(2), Decimal(8), "2 to 8 °C")
    services.material_storage_set(
        actor=h.user("qa"),
        material_code=s.SYRINGE,
        min_celsius="",
        max_celsius="-150,0",
        condition="Vapour phase of liquid nitrogen",
        reason="New presentation",
    )
    kept.refresh_from_db()
    assert (kept.min_celsius, kept.max_celsius, kept.range_text) == (None, Decimal(-150), "≤ -150 °C")
    assert MaterialStorage.objects.count() == 1
    change = Event.objects.filter(event_type="supply.material_storage").order_by("-pk").first()
    assert change is not None and Decimal(str(change.old["max_celsius"])) == 8
    with pytest.raises(ValidationError) as refused:
        services.material_storage_set(
            actor=h.user("qa"),
            material_code=s.SYRINGE,
            min_celsius=None,
            max_celsius="-150",
            condition="Vapour phase of liquid nitrogen",
            reason="Again",
        )
    assert "condition" in refused.value.message_dict
    with pytest.raises(PermissionDenied):
        services.material_storage_set(
            actor=h.user("qc.mad"),
            material_code=s.SYRINGE,
            min_celsius="2",
            max_celsius="8",
            condition="Refrigerated",
            reason="x",
        )


def test_qa_approves_a_supplier_for_a_material_signed_and_disqualifies_it_signed():
    """SUP-STOCK: Control Site QA approves a qualified supplier for a material with its lead time, signed
    (meaning: approved) and the signature still verifies after a lead-time change; disqualifying it is signed
    (meaning: rejected) with the reason; a lot from it is then not released (the existing rule)."""
    s.supplier()  # BD for the syringe
    other = services.supplier_register(
        actor=h.user("qa"),
        name="Terumo",
        status=SupplierStatus.APPROVED,
        reason="Audit passed",
        credentials=h.creds("qa"),
    )
    qa = _client("qa")
    wrong = qa.post(
        URL,
        {
            "action": "approve",
            "approve-supplier": other.pk,
            "approve-material_code": s.SYRINGE,
            "approve-lead_time_days": "21",
            "approve-reason": "Specification agreed",
            "approve-username": "qa",
            "approve-password": "nope",
        },
    )
    assert wrong.status_code == 400 and not ApprovedSupplier.objects.filter(supplier=other).exists()
    page = qa.post(
        URL,
        {
            "action": "approve",
            "approve-supplier": other.pk,
            "approve-material_code": s.SYRINGE,
            "approve-lead_time_days": "21",
            "approve-reason": "Specification agreed",
            "approve-username": "qa",
            "approve-password": PASSWORD,
        },
    )
    assert page.status_code == 302
    approval = ApprovedSupplier.objects.get(supplier=other, material_code=s.SYRINGE)
    assert approval.lead_time_days == 21 and approval.approved_by == h.user("qa")
    signature = Signature.objects.get(record_type="supply.ApprovedSupplier", record_id=str(approval.pk))
    assert signature.meaning == "approved"
    qa.post(
        URL,
        {
            "action": "lead_time",
            "lead_time-approval": approval.pk,
            "lead_time-lead_time_days": "28",
            "lead_time-reason": "Supplier's confirmed delivery time",
        },
    )
    approval.refresh_from_db()
    assert approval.lead_time_days == 28
    assert content_hash(approval.signed_content()) == signature.record_hash
    change = Event.objects.get(event_type="supply.supplier_lead_time")
    assert (change.old, change.new) == ({"lead_time_days": 21}, {"lead_time_days": 28})
    page = qa.post(
        URL,
        {
            "action": "qualify",
            "qualify-supplier": other.pk,
            "qualify-status": "disqualified",
            "qualify-reason": "Audit finding AF-12: sterility assurance",
            "qualify-password": PASSWORD,
            "qualify-username": "qa",
        },
    )
    assert page.status_code == 302
    other.refresh_from_db()
    assert other.status == SupplierStatus.DISQUALIFIED
    assert Signature.objects.filter(record_type="supply.Supplier", record_id=str(other.pk), meaning="rejected").exists()
    lot = s.received(5, by=Supplier.objects.get(name="BD"), release=False)
    assert lot.pk  # BD still delivers; Terumo, disqualified, no longer does:
    with pytest.raises(ValidationError) as refused:
        s.received(5, by=other, release=False)
    assert "supplier" in refused.value.message_dict
    assert "Disqualified" in _client("qc.mad").get(URL).content.decode()


def test_a_lot_from_a_supplier_disqualified_on_the_page_is_not_released():
    """SUP-STOCK: the existing rule kept: a lot received from a supplier then disqualified is not released."""
    lot = s.received(5, release=False)
    supplier = Supplier.objects.get(name="BD")
    _client("qa").post(
        URL,
        {
            "action": "qualify",
            "qualify-supplier": supplier.pk,
            "qualify-status": "disqualified",
            "qualify-reason": "Recall history",
            "qualify-username": "qa",
            "qualify-password": PASSWORD,
        },
    )
    supplier.refresh_from_db()
    assert supplier.status == SupplierStatus.DISQUALIFIED
    with pytest.raises(ValidationError):
        services.stock_lot_decide(
            actor=h.user("qc.mad"), lot=lot, decision="released", reason="CoA checked", credentials=h.creds("qc.mad")
        )
    lot.refresh_from_db()
    assert lot.status == "quarantine"


@pytest.mark.parametrize(
    ("action", "field", "value"),
    [
        ("storage", "min_celsius", "-400"),
        ("storage", "max_celsius", "9" * 400),
        ("storage", "max_celsius", "1e5"),
        ("storage", "min_celsius", "2\x00"),
        ("storage", "max_celsius", "nan"),
        ("storage", "max_celsius", "-10"),
        ("storage", "condition", ""),
        ("storage", "material_code", "NOPE"),
        ("storage", "reason", "x\x00"),
        ("lead_time", "lead_time_days", "0"),
        ("lead_time", "lead_time_days", "366"),
        ("lead_time", "lead_time_days", "9" * 400),
        ("lead_time", "lead_time_days", "1.5"),
        ("lead_time", "lead_time_days", "14"),
        ("lead_time", "reason", ""),
        ("approve", "lead_time_days", "-3"),
        ("approve", "material_code", "SYR\x00"),
        ("qualify", "status", "excellent"),
        ("qualify", "reason", ""),
        ("register", "name", ""),
        ("register", "name", "Acme\x00Bio"),
        ("register", "name", "X" * 121),
        ("register", "name", "terumo"),
        ("register", "status", "excellent"),
        ("register", "reason", ""),
    ],
)
def test_hostile_input_is_a_400_naming_the_field_and_changes_nothing(action, field, value):
    """SUP-STOCK: an impossible temperature (-400 °C, 400 digits, 100 000 °C, NaN, a highest below the
    lowest), a NUL, an unknown material or status, a lead time of 0, 366, 400 digits, a fraction or
    unchanged, no reason: a 400 naming the field; nothing is stored, no event."""
    approval = _approval()
    other = services.supplier_register(
        actor=h.user("qa"),
        name="Terumo",
        status=SupplierStatus.APPROVED,
        reason="Audit passed",
        credentials=h.creds("qa"),
    )
    valid = {
        "storage": {
            "material_code": s.SYRINGE,
            "min_celsius": "2",
            "max_celsius": "8",
            "condition": "Refrigerated",
            "reason": "Label",
        },
        "lead_time": {"approval": approval.pk, "lead_time_days": "30", "reason": "Confirmed"},
        "approve": {
            "supplier": other.pk,
            "material_code": s.SYRINGE,
            "lead_time_days": "20",
            "reason": "Agreed",
            "username": "qa",
            "password": PASSWORD,
        },
        "qualify": {
            "supplier": other.pk,
            "status": "conditional",
            "reason": "Finding",
            "username": "qa",
            "password": PASSWORD,
        },
        "register": {"name": "Acme Bio", "status": "approved", "reason": "Audit", "username": "qa",
                     "password": PASSWORD},
    }[action]
    events = Event.objects.count()
    data = {"action": action, **{f"{action}-{k}": v for k, v in {**valid, field: value}.items()}}
    page = _client("qa").post(URL, data)
    body = page.content.decode()
    assert page.status_code == 400, body
    assert f'id="id_{action}-{field}_error"' in body or f"Field <strong>{action}-{field}</strong>" in body, body
    assert Event.objects.count() == events
    assert not MaterialStorage.objects.exists() and ApprovedSupplier.objects.count() == 1
    assert ApprovedSupplier.objects.get().lead_time_days == 14
    assert Supplier.objects.count() == 2


def test_qa_registers_a_new_supplier_signed_and_then_approves_it_for_a_material():
    """SUP-STOCK: Control Site QA registers a new supplier on the page with its first qualification, signed
    (meaning: approved; a supplier registered disqualified is signed rejected), a ledger event with the reason;
    the new supplier is then offered for approval for a material; others cannot register one."""
    s.supplier()
    qa = _client("qa")
    form = {"action": "register", "register-name": "Miltenyi Biotec", "register-status": "conditional",
            "register-reason": "Questionnaire QQ-2026-31; audit due in 2027", "register-username": "qa",
            "register-password": PASSWORD}
    assert _client("qc.mad").post(URL, form).status_code == 403 and not Supplier.objects.filter(
        name="Miltenyi Biotec").exists()
    wrong = qa.post(URL, {**form, "register-password": "not-the-password"})
    assert wrong.status_code == 400 and not Supplier.objects.filter(name="Miltenyi Biotec").exists()
    page = qa.post(URL, form)
    assert page.status_code == 302
    supplier = Supplier.objects.get(name="Miltenyi Biotec")
    assert supplier.status == SupplierStatus.CONDITIONAL and supplier.status_changed_by == h.user("qa")
    signature = Signature.objects.get(record_type="supply.Supplier", record_id=str(supplier.pk))
    assert signature.meaning == "approved" and signature.signer_username == "qa"
    assert signature.event.reason.startswith("Questionnaire QQ-2026-31")
    event = Event.objects.filter(event_type="supply.supplier_registered").latest("pk")
    assert event.new == {"name": "Miltenyi Biotec", "status": "conditional"}
    body = qa.get(URL).content.decode()
    assert "Miltenyi Biotec is registered, approved with conditions (signed)." in body
    assert f'<option value="{supplier.pk}">Miltenyi Biotec</option>' in body  # offered for a material now
    again = qa.post(URL, {**form, "register-name": "miltenyi biotec"})
    assert again.status_code == 400 and "already registered" in again.content.decode()
    assert Supplier.objects.filter(name__iexact="miltenyi biotec").count() == 1


def test_an_unknown_action_is_a_400_naming_it_and_a_get_writes_nothing():
    """SUP-STOCK: the page's actions are named; another is refused; reading the page writes no event."""
    _approval()
    events = Event.objects.count()
    assert _client("qa").get(URL).status_code == 200 and Event.objects.count() == events
    page = _client("qa").post(URL, {"action": "delete"})
    assert page.status_code == 400 and "action" in page.content.decode()
