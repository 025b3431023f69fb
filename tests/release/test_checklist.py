"""The release checklist: each line failing and passing, the batched training gate agreeing with
step_gate, changed data marked, and a query count that does not grow with the number of steps."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from pocare.custody import services as custody
from pocare.custody.models import HandoffKind
from pocare.manufacturing import services
from pocare.manufacturing.models import MaterialLot, StepExecution, StepValue
from pocare.network.models import ManufacturingUnit
from pocare.quality.models import Deviation
from pocare.release.checklist import BatchedGate, release_checklist
from pocare.training.gate import step_gate
from pocare.training.models import PersonQualification
from tests.manufacturing import helpers as h
from tests.release import helpers as rh

pytestmark = pytest.mark.django_db


@pytest.fixture
def batch():  # type: ignore[no-untyped-def]
    b = rh.completed_batch("MAD")
    rh.review_exceptions(b)
    return b


def state(b, line_id):  # type: ignore[no-untyped-def]
    return release_checklist(b).line(line_id)


def test_a_completed_batch_passes_every_line_with_results_pending_after_release(batch):
    """ATMP-REL: a batch made as the master file says passes; the results the master file lets come
    after release are pending, not failing, and each line links to its evidence."""
    checklist = release_checklist(batch)
    states = {ln.id: ln.state for ln in checklist.lines}
    assert states == {"masterfile": "pass", "steps": "pass", "windows": "pass", "people": "pass", "units": "pass", "materials": "pass",
                      "results": "pending", "deviations": "pass", "custody": "pass", "alarms": "pass",
                      "audit_trail": "pass", "exceptions_review": "pass",
                      "holds": "pass"}  # the patients app answers: no consent withdrawn for this batch
    assert checklist.all_pass and not checklist.failing
    assert all(ln.evidence.startswith("/") and ln.detail for ln in checklist.lines)
    assert "Sterility" in checklist.line("results").detail


def test_windows_line_passes_when_every_windowed_step_was_inside_its_window(batch):
    """P11-10f ATMP-REL: each step with a time window was performed inside it (by the stored times)."""
    line = state(batch, "windows")
    assert line.label == "Process time windows" and line.state == "pass"
    assert line.detail == "8 of 8 steps with a time window performed inside it."


def test_windows_line_lists_a_step_outside_its_window_and_passes_only_once_its_deviation_is_negligible():
    """P11-10f ATMP-REL DEV-CLASS: the wash of day 3–5 done on day 1 fails the line while its
    deviation is open, names the step, the window and the deviation, and passes (listed) once QA
    has assessed the deviation as of negligible impact."""
    b = h.started_batch("MAD")
    while services.next_step(b)[1]["id"] != "culture-wash":
        h.do_step(b)
    outcome = h.do_step(b, in_window=False)
    dev = outcome.deviations[0]
    b = rh.finish_steps(b)
    rh.enter_results(b)
    line = state(b, "windows")
    assert line.state == "fail" and "culture-wash performed" in line.detail and "too early" in line.detail
    assert f"Deviation {dev.reference} is open" in line.detail
    review = [i for i in release_checklist(b).review if i.kind == "Outside time window"]
    assert len(review) == 1 and dev.reference in review[0].text
    rh.assess_negligible(dev)
    line = state(b, "windows")
    assert line.state == "pass" and "7 of 8 steps with a time window performed inside it; 1 outside" in line.detail
    assert any(dev.reference in f and "negligible" in f for f in line.findings)


def test_masterfile_line_fails_when_the_version_was_not_effective_at_the_start(batch):
    """POC-1: the record says the batch started before its version was in force at the site."""
    from pocare.manufacturing.models import Batch

    Batch.objects.filter(pk=batch.pk).update(started_at=batch.masterfile_version.effective_at - dt.timedelta(days=1))
    batch.refresh_from_db()
    line = state(batch, "masterfile")
    assert line.state == "fail" and "effective" in line.detail


def test_steps_line_fails_for_an_unfinished_batch_and_for_a_broken_signature(batch):
    """P11-10f P11-50 P11-70: every step complete and signed, every signature still valid."""
    unfinished = h.started_batch("MAD")
    h.do_step(unfinished)
    assert state(unfinished, "steps").state == "fail"
    step = StepExecution.objects.filter(batch=batch).order_by("position").first()
    StepExecution.objects.filter(pk=step.pk).update(notes="edited behind the system's back")
    line = state(batch, "steps")
    assert line.state == "fail" and "no longer holds" in line.detail


def test_people_line_fails_when_a_qualification_did_not_hold_and_agrees_with_the_gate(batch):
    """P11-10i: every performer and verifier held role, qualification and training at the time —
    the batched evaluation agrees with step_gate, step by step, both when it holds and when not."""
    def compare() -> int:
        executions = list(StepExecution.objects.filter(batch=batch).select_related("performed_by", "verified_by"))
        people = [p for e in executions for p in (e.performed_by, e.verified_by) if p is not None]
        gate = BatchedGate(version=batch.masterfile_version, site=batch.site, people=people)
        refused = 0
        for e in executions:
            for person, at, verifying in ((e.performed_by, e.performed_at, False), (e.verified_by, e.verified_at, True)):
                if person is None or at is None:
                    continue
                mine = gate.reasons(person=person, step_id=e.step_id, at=at, verifying=verifying)
                theirs = step_gate(person=person, version=batch.masterfile_version, step_id=e.step_id,
                                   site=batch.site, at=at, verifying=verifying)
                assert (not mine) == theirs.allowed, (e.step_id, person.username, mine, theirs.reasons)
                refused += bool(mine)
        return refused

    assert compare() == 0
    assert state(batch, "people").state == "pass"
    operator = h.user("operator.mad")
    PersonQualification.objects.filter(person=operator).update(revoked_at=batch.started_at)
    assert compare() > 0
    line = state(batch, "people")
    assert line.state == "fail" and "did not hold a valid qualification" in line.detail


def test_units_line_replays_the_unit_history_and_fails_when_the_unit_was_overdue(batch):
    """ATMP-REL ATMP-TRACE: the unit was at the site, qualified and within calibration when used: a status change after
    the batch does not matter (replayed from the audit trail); an overdue due date does."""
    from pocare.network.services import unit_status_change

    unit = batch.unit
    unit_status_change(actor=h.user("manager.mad"), unit=unit, status="out_of_service", reason="broken after use")
    assert state(batch, "units").state == "pass"
    ManufacturingUnit.objects.filter(pk=unit.pk).update(calibration_due=batch.started_at.date() - dt.timedelta(days=3))
    line = state(batch, "units")
    assert line.state == "fail" and "overdue" in line.detail


def test_materials_line_fails_for_a_lot_expired_when_used(batch):
    """ATMP-TRACE: each lot released, unexpired and at the site when used."""
    assert state(batch, "materials").state == "pass"
    lot = MaterialLot.objects.filter(uses__step__batch=batch).first()
    MaterialLot.objects.filter(pk=lot.pk).update(expiry_date=batch.started_at.date() - dt.timedelta(days=1))
    line = state(batch, "materials")
    assert line.state == "fail" and "expired" in line.detail


def test_results_line_fails_for_a_missing_or_out_of_specification_result():
    """ATMP-REL ATMP-OOS: a missing release-critical result fails, one out of specification fails,
    one the master file allows after release is pending."""
    missing = rh.completed_batch("MAD", skip={"cd3"})
    line = state(missing, "results")
    assert line.state == "fail" and "CD3" in line.detail and "no result" in line.detail
    oos = rh.completed_batch("MAD", bad={"viability"})
    checklist = release_checklist(oos)
    assert checklist.line("results").state == "fail" and "out of specification" in checklist.line("results").detail
    assert [r.attribute_id for r in checklist.oos_results] == ["viability"]
    complete = rh.completed_batch("MAD", skip_after_release=False)
    assert state(complete, "results").state == "pass"


def test_deviations_line_fails_while_open_and_passes_when_negligible_or_closed(batch):
    """ATMP-REL: a deviation at release only when closed or assessed by QA as of negligible impact."""
    from pocare.quality.services import deviation_raise

    dev = deviation_raise(actor=h.user("operator.mad"), site=batch.site, title="Bag label smudged",
                          description="Label legible but smudged.", batch=batch)
    line = state(batch, "deviations")
    assert line.state == "fail" and dev.reference in line.detail
    rh.assess_negligible(dev)
    assert state(batch, "deviations").state == "pass"
    rh.close_deviation(Deviation.objects.get(pk=dev.pk))
    line = state(batch, "deviations")
    assert line.state == "pass" and any("closed" in f for f in line.findings)


def test_custody_line_lists_a_blocked_handoff_later_completed_and_fails_an_unresolved_one(batch):
    """ATMP-TRACE ISBT-COI: the chain is unbroken up to release; a blocked scan later completed is
    listed, one never completed fails."""
    order = batch.order
    with pytest.raises(custody.HandoffBlocked):
        custody.handoff_record(actor=h.user("operator.mad"), order=order, kind=HandoffKind.FRESH_HOLD,
                               presented_identifier="CP100126999999X", site=batch.site, location="Fridge")
    line = state(batch, "custody")
    assert line.state == "fail" and "never completed" in line.detail
    custody.handoff_record(actor=h.user("operator.mad"), order=order, kind=HandoffKind.FRESH_HOLD,
                           presented_identifier=order.coi, site=batch.site, location="Fridge")
    line = state(batch, "custody")
    assert line.state == "pass" and any("later completed" in f for f in line.findings)


def test_alarms_line_fails_until_the_alarm_is_acknowledged():
    """A11-ALARM: no unacknowledged device alarm at release."""
    from pocare.manufacturing.devices import alarm_acknowledge, device_data_push
    from pocare.manufacturing.models import Alarm

    b = h.started_batch("MAD")
    device_data_push(actor=h.user("operator.mad"), idempotency_key=str(uuid.uuid4()),
                     rows=[{"batch": b.reference, "parameter": "culture-temperature",
                            "time": (timezone.now() - dt.timedelta(minutes=1)).isoformat(), "value": 39.5}])
    rh.finish_steps(b)
    assert state(b, "alarms").state == "fail"
    alarm_acknowledge(actor=h.user("operator.mad"), alarm=Alarm.objects.get(batch=b), comment="Door opened briefly")
    assert state(b, "alarms").state == "pass"


def test_audit_trail_line_needs_a_signed_review_covering_the_batchs_last_event():
    """A11-12: the audit trail of the batch is reviewed before release; a later event of the batch
    (a correction) is not covered until reviewed again."""
    b = rh.finish_steps(h.started_batch("MAD"))
    rh.enter_results(b)
    line = state(b, "audit_trail")
    assert line.state == "fail" and "no signed audit-trail review" in line.detail
    rh.review_trail(b)
    assert state(b, "audit_trail").state == "pass"
    value = StepValue.objects.filter(step__batch=b, parameter_id="fill-volume").first()
    services.value_correct(actor=h.user("operator.mad"), value=value, new_value=44, reason="Transcription error",
                           credentials=h.creds("operator.mad"))
    assert state(b, "audit_trail").state == "fail"
    rh.review_trail(b)
    assert state(b, "audit_trail").state == "pass"


def test_exceptions_review_line_needs_a_signature_over_the_current_items():
    """ATMP-REL A11-9: review by exception signed, and over the items listed now — a new exception voids it."""
    b = rh.completed_batch("MAD")
    line = state(b, "exceptions_review")
    assert line.state == "fail" and "not signed" in line.detail
    rh.review_exceptions(b)
    assert state(b, "exceptions_review").state == "pass"
    value = StepValue.objects.filter(step__batch=b, parameter_id="fill-volume").first()
    services.value_correct(actor=h.user("operator.mad"), value=value, new_value=46, reason="Misread",
                           credentials=h.creds("operator.mad"))
    line = state(b, "exceptions_review")
    assert line.state == "fail" and "changed since" in line.detail


def test_changed_data_are_listed(batch):
    """A11-8: data changed after their first entry are marked, step values and QC results alike."""
    assert release_checklist(batch).changed == []
    value = StepValue.objects.filter(step__batch=batch, parameter_id="fill-volume").first()
    services.value_correct(actor=h.user("operator.mad"), value=value, new_value=47, reason="Misread clock",
                           credentials=h.creds("operator.mad"))
    result = batch.qc_results.get(attribute_id="viability")
    services.qc_result_correct(actor=h.user("qc.mad"), result=result, value="91", reason="Recount",
                               credentials=h.creds("qc.mad"))
    changed = release_checklist(batch).changed
    assert {(c.kind, c.reason) for c in changed} == {("step value", "Misread clock"), ("QC result", "Recount")}
    viability = next(r for r in release_checklist(batch).results if r.attribute_id == "viability")
    assert viability.corrected and viability.value.startswith("91")


def test_an_aborted_batch_cannot_enter_release():
    """ATMP-REL: an aborted batch (a manufacturing failure) is not releasable."""
    from pocare.release.services import qc_review_sign

    b = h.started_batch("MAD")
    h.do_step(b)
    services.batch_abort(actor=h.user("operator.mad"), batch=b, reason="Poor expansion",
                         credentials=h.creds("operator.mad"))
    b.refresh_from_db()
    assert state(b, "steps").state == "fail"
    with pytest.raises(ValidationError, match="aborted"):
        qc_review_sign(actor=h.user("qc.mad"), batch=b, comment="x", credentials=h.creds("qc.mad"))


def test_queries_do_not_grow_with_the_number_of_steps():
    """ATMP-REL: the checklist costs the same number of queries at 4 steps done as at 12 (no N+1)."""
    b = h.started_batch("MAD")
    for _ in range(4):
        h.do_step(b)
    release_checklist(b)  # warm caches (content types, the version's product)
    with CaptureQueriesContext(connection) as few:
        release_checklist(b)
    for _ in range(8):
        h.do_step(b)
    assert b.steps.count() == 12
    release_checklist(b)
    with CaptureQueriesContext(connection) as many:
        release_checklist(b)
    assert len(many) == len(few), [q["sql"][:120] for q in many.captured_queries]


def test_audit_trail_line_follows_the_batch_onto_the_lanes_of_its_sites_chain(tx_db):
    """A11-12: when a batch's events lie on two lanes of the site's chain (another writer held
    the first), the line passes only once a signed review reaches the last event on each."""
    from tests.ledger.helpers import appending_elsewhere, postgres_only

    postgres_only()
    b = rh.finish_steps(h.started_batch("MAD"))
    rh.enter_results(b)
    rh.review_trail(b)
    assert state(b, "audit_trail").state == "pass"
    value = StepValue.objects.filter(step__batch=b, parameter_id="fill-volume").first()
    with appending_elsewhere("MAD"):
        services.value_correct(actor=h.user("operator.mad"), value=value, new_value=44, reason="Transcription error",
                               credentials=h.creds("operator.mad"))
    line = state(b, "audit_trail")
    assert line.state == "fail" and "MAD/1#" in line.detail and "MAD#" in line.detail
    rh.review_trail(b)
    line = state(b, "audit_trail")
    assert line.state == "pass" and "MAD/1#" in line.detail


def test_the_checklists_of_many_batches_are_each_batchs_own_in_as_many_queries_as_one(batch):
    """ATMP-REL: the release queue evaluates a page of batches together; each batch's lines, results
    and changed data are exactly those of its own checklist, and the page costs the queries of one."""
    from pocare.manufacturing.models import Batch
    from pocare.release.checklist import release_checklists
    from tests.web.helpers import free_unit

    free_unit("MAD")
    unfinished = h.started_batch("MAD")
    h.do_step(unfinished)
    free_unit("LIS")
    elsewhere = rh.completed_batch("LIS", bad={"viability"})  # no review by exception, a result out of spec
    loaded = Batch.objects.select_related("site", "masterfile_version__product", "order", "collection")
    one, many = [loaded.get(pk=batch.pk)], list(loaded.filter(pk__in=[batch.pk, unfinished.pk, elsewhere.pk]))
    release_checklists(many)  # warm caches (content types)
    with CaptureQueriesContext(connection) as few_queries:
        release_checklists(one)
    with CaptureQueriesContext(connection) as many_queries:
        together = release_checklists(many)
    assert len(many_queries) == len(few_queries), [q["sql"][:120] for q in many_queries.captured_queries]
    assert [c.batch.pk for c in together] == [b.pk for b in many]
    for checklist in together:
        alone = release_checklist(checklist.batch)
        assert checklist.snapshot() == alone.snapshot()
        assert [ln.as_dict() for ln in checklist.lines] == [ln.as_dict() for ln in alone.lines]
    states = {c.batch.pk: {ln.id: ln.state for ln in c.lines} for c in together}
    assert states[unfinished.pk]["steps"] == "fail" and states[batch.pk]["steps"] == "pass"
    assert states[elsewhere.pk]["results"] == "fail" and states[elsewhere.pk]["exceptions_review"] == "fail"
