"""The batch record: each check refusing and allowing at the moment of the step, verification,
corrections, QC results, review by exception, the API and the batch page's query count."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from pocare.custody.events import CustodyEvent
from pocare.custody.models import Handoff, HandoffKind, HandoffOutcome, OrderStatus
from pocare.ledger.models import Event, Signature
from pocare.ledger.verify import verify_all
from pocare.manufacturing import selectors, services
from pocare.manufacturing.events import ManufacturingEvent
from pocare.manufacturing.models import Batch, BatchStatus, MaterialLot, MaterialUse, StepStatus, StepValue
from pocare.network.models import ManufacturingUnit
from pocare.quality.models import Deviation
from tests.manufacturing import helpers as h

pytestmark = pytest.mark.django_db


@pytest.fixture
def batch():  # type: ignore[no-untyped-def]
    return h.started_batch("MAD")


def _run_to(batch: Batch, step_id: str) -> None:
    """Do every step before ``step_id`` with good values (skipping optional ones)."""
    while True:
        _, step = services.next_step(batch)
        if step["id"] == step_id:
            return
        h.do_step(batch)


def _record(batch: Batch, step_id: str, **kw):  # type: ignore[no-untyped-def]
    step = services.step_definition(batch, step_id)
    actor = kw.pop("actor", None) or h.performer_for(batch, step)
    return services.step_record(actor=actor, batch=batch, step_id=step_id,
                                values={**h.good_values(step), **kw.pop("values", {})},
                                materials=kw.pop("materials", None) or h.material_lots(batch, step),
                                credentials=h.creds(actor), **kw)


# --- starting a batch ------------------------------------------------------------------------------


def test_batch_keeps_the_version_effective_at_its_site_and_records_the_start_handoff(batch):
    """POC-1 ATMP-TRACE: the batch is made against the site's effective version and keeps it; the
    start of manufacture is a custody hand-off with the DIN scanned."""
    assert batch.masterfile_version.number == 1
    assert batch.status == BatchStatus.IN_PROGRESS
    start = Handoff.objects.get(order=batch.order, kind=HandoffKind.MANUFACTURE_START)
    assert start.outcome == HandoffOutcome.COMPLETED and start.batch == batch
    assert Signature.objects.filter(record_type="manufacturing.Batch", record_id=str(batch.pk),
                                    meaning="performed").exists()
    assert Event.objects.filter(event_type="manufacturing.batch_started", object_id=str(batch.pk)).exists()


def test_starting_a_batch_moves_the_order_into_manufacture_with_its_event(batch):
    """P11-10e DI-ALCOA ATMP-TRACE: the batch start moves the therapy order into manufacture through
    custody's service: one ledger event, by the operator who started it, with the old and new status."""
    order = batch.order
    order.refresh_from_db()
    assert order.status == OrderStatus.IN_MANUFACTURE
    move = Event.objects.get(event_type=CustodyEvent.ORDER_STATUS_CHANGED, object_id=str(order.pk))
    assert '"accepted"' in move.old_values and '"in_manufacture"' in move.new_values
    assert move.actor == batch.started_by and move.chain.split("/")[0] == batch.site.code


def test_a_batch_start_that_fails_leaves_the_order_accepted_and_its_trail_without_a_move(monkeypatch):
    """P11-10e: the order's move and the batch start are one transaction: when the start fails after
    the hand-off (here the signature), neither the batch, the hand-off nor the order's move remain."""
    h.world()
    order = h.received_order("MAD")
    operator = h.user("operator.mad")

    def refuse(**_: object) -> None:
        raise ValidationError({"signature": "refused for the test"})

    monkeypatch.setattr(services, "signature_apply", refuse)
    with pytest.raises(ValidationError, match="refused for the test"):
        services.batch_start(actor=operator, order=order, unit=h.unit_at("MAD"),
                             presented_identifier=order.collections.get().din, credentials=h.creds(operator))
    order.refresh_from_db()
    assert order.status == OrderStatus.ACCEPTED and not Batch.objects.filter(order=order).exists()
    assert not Handoff.objects.filter(order=order, kind=HandoffKind.MANUFACTURE_START).exists()
    assert not Event.objects.filter(event_type=CustodyEvent.ORDER_STATUS_CHANGED, object_id=str(order.pk)).exists()


def test_a_wrong_din_blocks_the_start_keeps_the_attempt_and_opens_a_deviation():
    """ATMP-TRACE ISBT-DIN: the scanned bag must be this order's; a mismatch blocks and is kept."""
    h.world()
    order = h.received_order("MAD")
    operator = h.user("operator.mad")
    with pytest.raises(ValidationError) as refused:
        services.batch_start(actor=operator, order=order, unit=h.unit_at("MAD"),
                             presented_identifier="P100126999999", credentials=h.creds(operator))
    assert "presented_identifier" in refused.value.message_dict
    assert not Batch.objects.filter(order=order).exists()
    blocked = Handoff.objects.get(order=order, kind=HandoffKind.MANUFACTURE_START)
    assert blocked.outcome == HandoffOutcome.BLOCKED and blocked.deviation is not None
    assert blocked.deviation.kind == "custody"


def test_expired_starting_material_cannot_be_manufactured():
    """ATMP-SM: the apheresis is manufactured only within its stability."""
    from pocare.custody.models import Collection

    h.world()
    order = h.received_order("MAD")
    Collection.objects.filter(order=order).update(expires_at=timezone.now() - dt.timedelta(minutes=5))
    with pytest.raises(ValidationError, match="expired"):
        services.batch_start(actor=h.user("operator.mad"), order=order, unit=h.unit_at("MAD"),
                             presented_identifier=order.collections.get().din, credentials=h.creds("operator.mad"))


def test_an_overdue_unit_cannot_start_a_batch():
    """POC-3 P11-10h: an overdue unit is unusable; the refusal says why."""
    h.world()
    order = h.received_order("MAD")
    unit = h.unit_at("MAD")
    ManufacturingUnit.objects.filter(pk=unit.pk).update(calibration_due=timezone.now().date() - dt.timedelta(days=1))
    unit.refresh_from_db()
    with pytest.raises(ValidationError, match="overdue"):
        services.batch_start(actor=h.user("operator.mad"), order=order, unit=unit,
                             presented_identifier=order.collections.get().din, credentials=h.creds("operator.mad"))


def test_a_unit_runs_one_batch_at_a_time(batch):
    """P11-10h: one device makes one patient's batch at a time."""
    order = h.received_order("MAD")
    with pytest.raises(ValidationError, match=f"running batch {batch.reference}"):
        services.batch_start(actor=h.user("operator.mad"), order=order, unit=batch.unit,
                             presented_identifier=order.collections.get().din, credentials=h.creds("operator.mad"))


def test_a_suspended_site_cannot_start_a_batch():
    """POC-3: a site that is not active starts no batch, and the refusal says why."""
    from pocare.network.services import site_transition

    h.world()
    order = h.received_order("LIS")
    site_transition(actor=h.user("qa"), site=order.site, to_status="suspended", reason="audit finding",
                    credentials=h.creds("qa"))
    with pytest.raises(ValidationError, match="suspended"):
        services.batch_start(actor=h.user("operator.lis"), order=order, unit=h.unit_at("LIS"),
                             presented_identifier=order.collections.get().din, credentials=h.creds("operator.lis"))


# --- sequence, gate, unit, lots, values ------------------------------------------------------------


def test_steps_follow_the_master_file_in_order(batch):
    """P11-10f: a later step cannot be recorded before the next one."""
    with pytest.raises(ValidationError, match="next step is 'receipt-identity'"):
        _record(batch, "apheresis-count")
    h.do_step(batch)
    assert services.next_step(batch)[1]["id"] == "apheresis-count"


def test_nothing_after_a_step_awaiting_verification_starts(batch):
    """P11-10f: a step waiting for its second person holds the batch."""
    _record(batch, "receipt-identity")
    with pytest.raises(ValidationError, match="awaits second-person verification"):
        _record(batch, "apheresis-count")


def test_a_qualification_revoked_mid_batch_stops_the_next_step(batch):
    """P11-10i P11-10g: the gate is asked at the moment of each step."""
    from pocare.training.models import Qualification
    from pocare.training.services import qualification_revoke

    h.do_step(batch)  # receipt-identity, with the operator still qualified
    qualification_revoke(actor=h.user("qa"), person=h.user("operator.mad"),
                         qualification=Qualification.objects.get(code="cell-counting"), reason="retraining needed")
    with pytest.raises(ValidationError, match=r"cell-counting.*revoked"):
        _record(batch, "apheresis-count")
    assert not StepValue.objects.filter(step__batch=batch, step__step_id="apheresis-count").exists()


def test_a_person_from_another_site_cannot_perform_a_step(batch):
    """P11-10g: an operator of Lisbon has no role in Madrid's batch."""
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        _record(batch, "receipt-identity", actor=h.user("operator.lis"))


def test_a_unit_overdue_mid_batch_stops_a_device_step(batch):
    """P11-10h: the unit is checked at each step that uses it, not only at the start."""
    _run_to(batch, "prodigy-setup")
    ManufacturingUnit.objects.filter(pk=batch.unit_id).update(
        maintenance_due=timezone.now().date() - dt.timedelta(days=1))
    batch.unit.refresh_from_db()
    with pytest.raises(ValidationError, match="overdue"):
        _record(batch, "prodigy-setup")


@pytest.mark.parametrize("problem", ["quarantine", "expired", "other_site"])
def test_material_lots_must_be_released_unexpired_and_at_the_site(batch, problem):
    """ATMP-TRACE P11-10h: each lot is checked at the step; the refusal names the material."""
    from pocare.network.models import Site

    _run_to(batch, "apheresis-count")
    site = Site.objects.get(code="LIS" if problem == "other_site" else "MAD")
    if problem == "other_site":
        h.lots("LIS", batch.masterfile_version)
        lot = MaterialLot.objects.filter(site=site, material_code="SYR-5ML").first()
    else:
        lot = services.lot_receive(actor=h.user("qc.mad"), site=site, material_code="SYR-5ML", name="Syringe",
                                   lot_number=f"BAD-{problem}", reason="receipt",
                                   expiry_date=timezone.now().date() + dt.timedelta(days=30))
        if problem == "expired":
            services.lot_decide(actor=h.user("qc.mad"), lot=lot, decision="released", reason="ok",
                                credentials=h.creds("qc.mad"))
            MaterialLot.objects.filter(pk=lot.pk).update(expiry_date=timezone.now().date() - dt.timedelta(days=2))
    with pytest.raises(ValidationError) as refused:
        _record(batch, "apheresis-count", materials={"SYR-5ML": lot.lot_number})
    assert "materials.SYR-5ML" in refused.value.message_dict
    assert {"quarantine": "not released", "expired": "expired", "other_site": "at LIS, not SYR-5ML at MAD"}[problem] in \
        " ".join(refused.value.message_dict["materials.SYR-5ML"])


def test_values_of_the_wrong_type_or_unit_are_refused_naming_the_field(batch):
    """P11-10h DI-ALCOA: type and unit are checked; nothing is stored."""
    _run_to(batch, "apheresis-count")
    with pytest.raises(ValidationError) as refused:
        _record(batch, "apheresis-count", values={"tnc": "lots", "viability": 95}, units={"viability": "mL"})
    errors = refused.value.message_dict
    assert "not a number" in errors["values.tnc"][0]
    assert "unit 'mL' is wrong" in errors["values.viability"][0]
    assert not StepValue.objects.filter(step__batch=batch, step__step_id="apheresis-count").exists()


def test_a_critical_value_out_of_range_stops_the_step_until_a_deviation_is_raised(batch):
    """DEV-CLASS P11-10f: critical out of range is refused; with a deviation it is recorded."""
    _run_to(batch, "apheresis-count")
    with pytest.raises(ValidationError, match="critical parameter: the step stops here"):
        _record(batch, "apheresis-count", values={"viability": 65})
    outcome = _record(batch, "apheresis-count", values={"viability": 65},
                      deviation="Apheresis held 30 h before receipt; physician informed.")
    value = StepValue.objects.get(step=outcome.step, parameter_id="viability")
    assert value.in_range is False and value.deviation is not None
    assert value.deviation.kind == "process" and value.deviation.batch == batch
    assert "physician informed" in value.deviation.description


def test_a_non_critical_value_out_of_range_is_recorded_and_raises_a_deviation(batch):
    """DEV-CLASS: non-critical out of range records and raises its deviation automatically."""
    _run_to(batch, "apheresis-count")
    outcome = _record(batch, "apheresis-count", values={"cd3-fraction": 5})
    assert len(outcome.deviations) == 1
    assert outcome.step.status == StepStatus.COMPLETE


# --- verification, skipping, signatures, corrections -----------------------------------------------


def test_second_person_verification_needs_someone_else_who_passes_the_gate(batch):
    """P11-10g P11-100: the verifier is another person, qualified now; the verification is signed."""
    _record(batch, "receipt-identity")
    with pytest.raises(ValidationError, match="someone other"):
        services.step_verify(actor=h.user("operator.mad"), batch=batch, step_id="receipt-identity",
                             credentials=h.creds("operator.mad"))
    with pytest.raises(ValidationError, match="holds no active operator or site manager role"):
        services.step_verify(actor=h.user("qc.mad"), batch=batch, step_id="receipt-identity",
                             credentials=h.creds("qc.mad"))
    step = services.step_verify(actor=h.user("manager.mad"), batch=batch, step_id="receipt-identity",
                                credentials=h.creds("manager.mad"))
    meanings = set(Signature.objects.filter(record_type="manufacturing.StepExecution", record_id=str(step.pk))
                   .values_list("meaning", flat=True))
    assert meanings == {"performed", "verified"}


def test_only_optional_steps_are_skipped(batch):
    """P11-10f: a step is skipped only where the master file allows it, with a reason and a signature."""
    with pytest.raises(ValidationError, match="not optional"):
        services.step_skip(actor=h.user("operator.mad"), batch=batch, step_id="receipt-identity", reason="no",
                           credentials=h.creds("operator.mad"))
    _run_to(batch, "cryopreservation")
    step = services.step_skip(actor=h.user("operator.mad"), batch=batch, step_id="cryopreservation",
                              reason="Fresh product", credentials=h.creds("operator.mad"))
    assert step.status == StepStatus.SKIPPED
    batch.refresh_from_db()
    assert batch.status == BatchStatus.COMPLETED
    kinds = [i.kind for i in selectors.batch_page(batch).review]
    assert "Skipped step" in kinds


def test_a_correction_is_a_new_entry_beside_the_original_and_signed(batch):
    """CH4-9 A11-8 P11-10e: the original stays, the correction points at it with its reason."""
    _run_to(batch, "apheresis-count")
    outcome = _record(batch, "apheresis-count")
    original = StepValue.objects.get(step=outcome.step, parameter_id="tnc")
    correction = services.value_correct(actor=h.user("operator.mad"), value=original, new_value="4200",
                                        reason="Transcription error: counter printout says 4200",
                                        credentials=h.creds("operator.mad"))
    original.refresh_from_db()
    assert correction.corrects == original and original.value == 1000
    with pytest.raises(ValidationError, match="already been corrected"):
        services.value_correct(actor=h.user("operator.mad"), value=original, new_value="4300", reason="again",
                               credentials=h.creds("operator.mad"))
    page = selectors.batch_page(batch)
    view = next(s for s in page.steps if s.spec["id"] == "apheresis-count")
    tnc = next(v for v in view.values if v.spec["id"] == "tnc")
    assert [e.value for e in tnc.entries] == [1000, 4200]
    assert all(s.valid for s in view.signatures), "a correction must not break the step's signature"
    assert any(i.kind == "Correction" for i in page.review)


def test_editing_a_recorded_value_in_the_database_breaks_the_step_signature(batch):
    """P11-70: a signature is bound to what was signed; a raw edit shows it invalid."""
    h.do_step(batch)
    value = StepValue.objects.filter(step__batch=batch).first()
    with connection.cursor() as cur:
        cur.execute("UPDATE manufacturing_stepvalue SET value = %s WHERE id = %s", ['"tampered"', value.pk])
    page = selectors.batch_page(batch)
    step = page.steps[0]
    assert step.signatures and not any(s.valid for s in step.signatures)
    assert any(i.kind == "Invalid signature" for i in page.review)


def test_a_step_event_stamps_its_values_and_material_use_so_an_edit_is_found(batch):
    """P11-10e DI-ALCOA: the step's event carries the content hash of each value and material use it
    wrote (ledger.records); a material use edited with SQL (no signature of its own) is named by
    `audit verify` with the event that stamped it."""
    _run_to(batch, "apheresis-count")
    outcome = _record(batch, "apheresis-count")
    event = Event.objects.get(event_type=ManufacturingEvent.STEP_RECORDED, object_id=str(outcome.step.pk))
    stamped = set(event.new["content_sha256"])
    assert {f"manufacturing.StepValue:{v.pk}" for v in outcome.step.values.all()} <= stamped
    assert verify_all(chains=["MAD"]).ok
    while not MaterialUse.objects.filter(step__batch=batch).exists():
        h.do_step(batch)  # on to the first step that uses materials
    use = MaterialUse.objects.filter(step__batch=batch).latest("id")
    with connection.cursor() as cur:
        cur.execute("UPDATE manufacturing_materialuse SET quantity = quantity + 1 WHERE id = %s", [use.pk])
    report = verify_all(chains=["MAD"])
    assert report.chains_ok and [p.record for p in report.record_problems] == [f"manufacturing.MaterialUse {use.pk}"]


# --- QC results ----------------------------------------------------------------------------------


def test_qc_results_are_evaluated_and_oos_opens_a_laboratory_investigation(batch):
    """ATMP-OOS DEV-CLASS: results are judged against the specification when entered."""
    qc = h.user("qc.mad")
    ok = services.qc_result_record(actor=qc, batch=batch, attribute_id="viability", value="96.5",
                                   credentials=h.creds(qc))
    assert ok.conforms and ok.deviation is None
    oos = services.qc_result_record(actor=qc, batch=batch, attribute_id="car-positive", value="14",
                                    credentials=h.creds(qc))
    assert not oos.conforms and oos.deviation.kind == "laboratory"
    with pytest.raises(ValidationError, match="not a number"):
        services.qc_result_record(actor=qc, batch=batch, attribute_id="endotoxin", value="low",
                                  credentials=h.creds(qc))
    with pytest.raises(ValidationError, match="already has a result"):
        services.qc_result_record(actor=qc, batch=batch, attribute_id="viability", value="97",
                                  credentials=h.creds(qc))
    page = selectors.batch_page(batch)
    kinds = {i.kind for i in page.review}
    assert {"Out of specification", "Result pending after release"} <= kinds
    sterility = services.qc_result_record(actor=qc, batch=batch, attribute_id="sterility", value="No growth",
                                          credentials=h.creds(qc))
    assert sterility.conforms


def test_an_operator_cannot_enter_qc_results(batch):
    """P11-10g: QC results are entered by QC."""
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        services.qc_result_record(actor=h.user("operator.mad"), batch=batch, attribute_id="viability", value="96",
                                  credentials=h.creds("operator.mad"))


# --- the whole batch, pages and API ----------------------------------------------------------------


def test_a_whole_batch_writes_an_event_and_a_signature_per_step_and_the_chain_stays_intact(batch):
    """P11-10e P11-50 ATMP-TRACE: every step is audited and signed; audit verify stays green."""
    before = Event.objects.filter(chain="MAD").count()
    while services.next_step(batch) is not None:
        _, step = services.next_step(batch)
        if step.get("optional"):
            services.step_skip(actor=h.user("operator.mad"), batch=batch, step_id=step["id"], reason="fresh",
                               credentials=h.creds("operator.mad"))
        else:
            h.do_step(batch)
    batch.refresh_from_db()
    assert batch.status == BatchStatus.COMPLETED
    steps = batch.steps.count()
    assert Signature.objects.filter(record_type="manufacturing.StepExecution").count() >= steps
    assert Event.objects.filter(chain="MAD").count() - before >= 2 * steps
    report = verify_all(chains=["MAD"])
    assert report.ok, report


def test_batch_page_and_review_render_for_site_and_network_and_hide_from_other_sites(batch, client, login):
    """P11-10g P11-50: the page shows the record with signatures; another site gets a 404."""
    h.do_step(batch)
    login("operator.mad")
    page = client.get(f"/manufacturing/batches/{batch.reference}/")
    assert page.status_code == 200
    body = page.content.decode()
    assert batch.order.coi in body and "Performed" in body and "Verified" in body
    assert client.get(f"/manufacturing/batches/{batch.reference}/review/").status_code == 200
    client.logout()
    login("operator.lis")
    assert client.get(f"/manufacturing/batches/{batch.reference}/").status_code == 404
    client.logout()
    login("qp")
    assert client.get(f"/manufacturing/batches/{batch.reference}/").status_code == 200


def test_the_step_page_refuses_an_out_of_range_critical_value_and_names_it(batch, client, login):
    """DEV-CLASS P11-10f: the form shows the refusal on the field."""
    h.do_step(batch)
    login("operator.mad")
    url = f"/manufacturing/batches/{batch.reference}/steps/apheresis-count/"
    lot = h.material_lots(batch, services.step_definition(batch, "apheresis-count"))["SYR-5ML"]
    lot_pk = MaterialLot.objects.get(lot_number=lot).pk
    form = {"action": "record", "v_tnc": "1500", "v_viability": "65", "v_cd3-fraction": "50", "m_SYR-5ML": lot_pk,
            "username": "operator.mad", "password": h.PASSWORD}
    refused = client.post(url, form)
    assert refused.status_code == 400
    assert "outside the acceptable range" in refused.content.decode()
    done = client.post(url, {**form, "password": h.PASSWORD, "deviation": "Sample clotted; recount ordered."})
    assert done.status_code == 302
    assert Deviation.objects.filter(batch=batch, kind="process").exists()


def test_batch_page_queries_do_not_grow_with_the_steps_done(batch, client, login):
    """The batch page costs the same number of queries after 2 or after 8 steps."""
    url = f"/manufacturing/batches/{batch.reference}/"

    def queries() -> int:
        login("qc.mad")  # again: the steps wait for their process days, past the inactivity logout
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        return len(ctx.captured_queries)

    h.do_step(batch)
    h.do_step(batch)
    few = queries()
    for _ in range(6):
        h.do_step(batch)
    many = queries()
    assert many <= few, f"{few} queries after 2 steps, {many} after 8"


def test_steps_are_recorded_through_the_api_with_a_token(batch, client):
    """P11-200 P11-10h: a machine client signs with user id and password every time."""
    from pocare.accounts.services import token_issue

    _, key = token_issue(actor=None, user=h.user("operator.mad"), name="mes", reason="test")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    step = services.step_definition(batch, "receipt-identity")
    url = f"/api/batches/{batch.reference}/steps/receipt-identity/record/"
    junk = client.post(url, {"values": "nope"}, content_type="application/json", **auth)
    assert junk.status_code == 400
    no_user = client.post(url, {"values": h.good_values(step), "username": "", "password": h.PASSWORD},
                          content_type="application/json", **auth)
    assert no_user.status_code in (400, 403)
    ok = client.post(url, {"values": h.good_values(step), "username": "operator.mad", "password": h.PASSWORD},
                     content_type="application/json", **auth)
    assert ok.status_code == 201, ok.content
    assert ok.json()["status"] == "awaiting_verification"
    detail = client.get(f"/api/batches/{batch.reference}/", **auth)
    assert detail.status_code == 200 and detail.json()["steps"][0]["step_id"] == "receipt-identity"
    _, lis_key = token_issue(actor=None, user=h.user("operator.lis"), name="mes", reason="test")
    assert client.get(f"/api/batches/{batch.reference}/", HTTP_AUTHORIZATION=f"Bearer {lis_key}").status_code == 404


def test_the_verifier_sees_each_correction_with_its_original_and_reason_and_the_performer_gets_no_verify_form(
        batch, client, login):
    """P11-10g CH4-9: the second person verifies what was recorded, corrections included: the page
    shows the original value, who corrected it, when and why. The person who performed the step is
    not offered the verify form at all (four eyes), rather than being refused after their password."""
    while services.next_step(batch)[1]["id"] != "transduction":
        h.do_step(batch)
    h.into_window(batch, services.step_definition(batch, "transduction"))
    outcome = _record(batch, "transduction")
    original = StepValue.objects.get(step=outcome.step, parameter_id="vector-volume")
    services.value_correct(actor=h.user("operator.mad"), value=original, new_value=float(original.value) + 0.5,
                           reason="The syringe read 0.5 mL more than typed",
                           credentials=h.creds("operator.mad"))
    url = f"/manufacturing/batches/{batch.reference}/steps/transduction/"
    login("manager.mad")
    page = client.get(url).content.decode()
    assert "Verify and sign" in page and "corrected" in page
    assert f"was <s>{original.value:g} mL</s>" in page or f"was <s>{original.value} mL</s>" in page
    assert "The syringe read 0.5 mL more than typed" in page
    login("operator.mad")
    page = client.get(url).content.decode()
    assert "Verify and sign" not in page and 'id="verify-not-yours"' in page
