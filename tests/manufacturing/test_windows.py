"""Process time windows and lot parameters at the moment a step is recorded: inside, early, late,
a critical step refused until a deviation, a deviation opened once, what review by exception and
the release checklist show — and a lot parameter that is the lot consumed, never a second value.

The time compared is the server's clock when the step is recorded; the test clock
(tests/clock.py) waits for the process days the way a real batch does."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from pocare.manufacturing import selectors, services
from pocare.manufacturing.models import Batch, StepExecution, StepStatus, StepValue
from pocare.quality.models import Deviation
from pocare.quality.services import deviation_open
from tests import clock
from tests.manufacturing import helpers as h

pytestmark = pytest.mark.django_db


@pytest.fixture
def batch():  # type: ignore[no-untyped-def]
    return h.started_batch("MAD")


def _run_to(batch: Batch, step_id: str) -> None:
    while (upcoming := services.next_step(batch)) is not None and upcoming[1]["id"] != step_id:
        h.do_step(batch)


def _activated_at(batch: Batch) -> dt.datetime:
    at = StepExecution.objects.get(batch=batch, step_id="activation").performed_at
    assert at is not None
    return at


def _record(batch: Batch, step_id: str, **kw):  # type: ignore[no-untyped-def]
    step = services.step_definition(batch, step_id)
    actor = kw.pop("actor", None) or h.performer_for(batch, step)
    outcome = services.step_record(actor=actor, batch=batch, step_id=step_id,
                                   values={**h.good_values(step), **kw.pop("values", {})},
                                   materials=kw.pop("materials", None) or h.material_lots(batch, step),
                                   credentials=h.creds(actor), **kw)
    if step.get("second_person_verification"):
        verifier = h.user(f"manager.{batch.site.code.lower()}")
        services.step_verify(actor=verifier, batch=batch, step_id=step_id, credentials=h.creds(verifier))
    return outcome


def test_a_step_inside_its_window_is_recorded_without_a_deviation(batch):
    """P11-10f: transduction 24 h after activation lies in its 18–30 h window: recorded, no deviation."""
    _run_to(batch, "transduction")
    clock.advance_to(_activated_at(batch) + dt.timedelta(hours=24))
    outcome = _record(batch, "transduction")
    assert outcome.deviations == [] and outcome.step.window_deviation is None
    view = next(s for s in selectors.batch_page(batch).steps if s.spec["id"] == "transduction")
    assert view.window is not None and view.window.inside and round(view.window.elapsed_hours) == 24


def test_a_critical_step_too_early_is_refused_naming_the_window_the_anchor_and_the_elapsed_time(batch):
    """P11-10f: transduction one minute after activation is refused — the message names the
    window, the anchor and the elapsed time, on the field 'deviation' — and nothing is stored."""
    _run_to(batch, "transduction")
    clock.advance_to(_activated_at(batch) + dt.timedelta(minutes=1))
    deviations = Deviation.objects.count()
    with pytest.raises(ValidationError) as refused:
        _record(batch, "transduction")
    message = refused.value.message_dict["deviation"][0]
    assert "Step transduction performed 1 min after step activation" in message
    assert "too early for its time window, 18 h–30 h after step activation" in message
    assert "critical step" in message
    assert not StepExecution.objects.filter(batch=batch, step_id="transduction").exists()
    assert Deviation.objects.count() == deviations


def test_a_critical_step_too_late_is_recorded_with_the_deviation_the_operator_describes(batch):
    """P11-10f DEV-CLASS: 40 h after activation, with a deviation described: recorded, and exactly
    one deviation opened, naming the window and the elapsed time."""
    _run_to(batch, "transduction")
    clock.advance_to(_activated_at(batch) + dt.timedelta(hours=40))
    outcome = _record(batch, "transduction", deviation="Vector delivery delayed by the courier.")
    assert len(outcome.deviations) == 1
    dev = outcome.deviations[0]
    assert outcome.step.window_deviation == dev and dev.step_id == "transduction"
    assert dev.title == "Critical step outside its time window: transduction"
    assert "40.0 h after step activation" in dev.description and "too late" in dev.description
    assert "Vector delivery delayed" in dev.description


def test_a_non_critical_step_out_of_window_is_recorded_and_opens_its_deviation_once(batch):
    """P11-10f DEV-CLASS: the wash and feed of day 3–5 recorded on day 1 is recorded (not a critical
    step) and opens one deviation; the next steps do not open it again."""
    _run_to(batch, "culture-wash")
    outcome = _record(batch, "culture-wash")  # right after transduction, about day 1
    assert outcome.step.status == StepStatus.COMPLETE
    assert [d.title for d in outcome.deviations] == ["Step outside its time window: culture-wash"]
    assert "too early" in outcome.deviations[0].description
    h.do_step(batch)  # ipc-day5, inside its window
    assert Deviation.objects.filter(batch=batch, step_id="culture-wash").count() == 1
    assert not Deviation.objects.filter(batch=batch, step_id="ipc-day5").exists()


def test_a_late_non_critical_step_opens_a_deviation_saying_late(batch):
    """P11-10f: the day-5 in-process control on day 7 (after its 108–132 h window) is late."""
    _run_to(batch, "ipc-day5")
    clock.advance_to(_activated_at(batch) + dt.timedelta(hours=160))
    outcome = _record(batch, "ipc-day5")
    assert len(outcome.deviations) == 1 and "too late" in outcome.deviations[0].description


def test_a_deviation_already_open_for_the_step_is_referenced_not_opened_again(batch):
    """P11-10f DEV-CLASS: the site raised the deviation before the late transduction; the critical
    step is then recorded without a new description, pointing at that deviation."""
    _run_to(batch, "transduction")
    planned = deviation_open(actor=h.user("manager.mad"), site=batch.site, kind="process", batch=batch,
                             step_id="transduction", title="Vector thaw delayed",
                             description="The vector vial arrived a day late; transduction on day 2.")
    clock.advance_to(_activated_at(batch) + dt.timedelta(hours=36))
    before = Deviation.objects.filter(batch=batch).count()
    outcome = _record(batch, "transduction")
    assert outcome.deviations == [] and outcome.step.window_deviation == planned
    assert Deviation.objects.filter(batch=batch).count() == before


def test_review_by_exception_lists_a_step_outside_its_window_with_its_deviation(batch):
    """P11-10f A11-12: review by exception shows the step outside its window, the elapsed time and
    its deviation; steps inside their window are not listed."""
    _run_to(batch, "culture-wash")
    outcome = _record(batch, "culture-wash")
    items = [i for i in selectors.batch_page(batch).review if i.kind == "Outside time window"]
    assert len(items) == 1 and items[0].anchor == "step-culture-wash"
    assert "culture-wash performed" in items[0].text and outcome.deviations[0].reference in items[0].text


def test_the_step_page_refuses_a_critical_step_out_of_window_on_the_deviation_field(batch, client, login):
    """P11-10f: through the step page, the refusal is a form error (400) naming the window, and
    the page warns before anyone signs."""
    _run_to(batch, "transduction")
    login("operator.mad")
    url = f"/manufacturing/batches/{batch.reference}/steps/transduction/"
    page = client.get(url).content.decode()
    assert "time window <strong>18 h–30 h after step activation (critical)</strong>" in page
    assert "If recorded now: Step transduction performed" in page
    step = services.step_definition(batch, "transduction")
    lot = h.material_lots(batch, step)["LV-CAR19"]
    lot_pk = batch.site.material_lots.get(material_code="LV-CAR19", lot_number=lot).pk
    form = {"action": "record", "v_moi": "5", "v_vector-volume": "2", "m_LV-CAR19": str(lot_pk),
            "password": h.PASSWORD}
    refused = client.post(url, form)
    assert refused.status_code == 400
    assert "too early for its time window" in refused.content.decode()


# --- one fact, one value: a lot parameter is the lot consumed -------------------------------------


def test_a_typed_vector_lot_that_is_not_the_lot_chosen_is_refused_naming_both(batch):
    """ATMP-TRACE DI-ALCOA: typed LV19-99999999 while another vial is chosen under Materials: refused
    on values.vector-lot, naming both lots; nothing is recorded."""
    _run_to(batch, "transduction")
    h.into_window(batch, services.step_definition(batch, "transduction"))
    with pytest.raises(ValidationError) as refused:
        _record(batch, "transduction", values={"vector-lot": "LV19-99999999"})
    chosen = h.material_lots(batch, services.step_definition(batch, "transduction"))["LV-CAR19"]
    message = refused.value.message_dict["values.vector-lot"][0]
    assert "'LV19-99999999' is not the lot chosen under Materials for LV-CAR19" in message and chosen in message
    assert not StepExecution.objects.filter(batch=batch, step_id="transduction").exists()


def test_the_vector_lot_is_filled_from_the_lot_consumed_and_cannot_be_corrected_apart(batch):
    """ATMP-TRACE CH4-9: left empty (or typed right), the vector lot is the lot consumed; the value
    and the material record state the same lot, and a correction of it alone is refused."""
    _run_to(batch, "transduction")
    h.into_window(batch, services.step_definition(batch, "transduction"))
    outcome = _record(batch, "transduction")
    value = StepValue.objects.get(step=outcome.step, parameter_id="vector-lot")
    use = outcome.step.materials.get(material_code="LV-CAR19")
    assert value.value == use.lot.lot_number
    with pytest.raises(ValidationError) as refused:
        services.value_correct(actor=h.user("operator.mad"), value=value, new_value="LV19-00000001",
                               reason="typo", credentials=h.creds("operator.mad"))
    assert "cannot be corrected apart from the material record" in refused.value.message_dict["new_value"][0]


def test_a_typed_lot_matching_the_chosen_one_is_accepted(batch):
    """ATMP-TRACE: the operator may type the lot; it is checked against the chosen one."""
    _run_to(batch, "prodigy-setup")
    step = services.step_definition(batch, "prodigy-setup")
    tubing = h.material_lots(batch, step)["TS520"]
    outcome = _record(batch, "prodigy-setup", values={"tubing-set-lot": f" {tubing.lower()} "})
    assert StepValue.objects.get(step=outcome.step, parameter_id="tubing-set-lot").value == tubing


def test_the_api_refuses_a_critical_step_out_of_window_with_a_400_naming_the_field(batch, client):
    """P11-10f: a machine client gets 400 on 'deviation' with the window, then 201 with a deviation."""
    from pocare.accounts.services import token_issue

    _run_to(batch, "transduction")
    _, key = token_issue(actor=None, user=h.user("operator.mad"), name="mes", reason="test")
    step = services.step_definition(batch, "transduction")
    url = f"/api/batches/{batch.reference}/steps/transduction/record/"
    body = {"values": h.good_values(step), "materials": h.material_lots(batch, step), "username": "operator.mad",
            "password": h.PASSWORD}
    refused = client.post(url, body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert refused.status_code == 400, refused.content
    assert "too early for its time window, 18 h–30 h after step activation" in str(refused.json()["deviation"])
    ok = client.post(url, {**body, "deviation": "Planned: short process under study protocol."},
                     content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert ok.status_code == 201, ok.content
    assert Deviation.objects.filter(batch=batch, step_id="transduction").count() == 1
