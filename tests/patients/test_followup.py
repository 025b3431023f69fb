"""Follow-up after infusion on the master file's schedule (PAT-LTFU) and graded adverse events reaching
Control Site QA and the QP (PAT-GRADE)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from pocare.ledger.models import Event
from pocare.masterfile.diff import diff_content
from pocare.masterfile.models import MasterFileVersion
from pocare.masterfile.schema import DocumentError, document_content, parse_document
from pocare.patients.followup import (
    DEFAULT_SCHEDULE,
    adverse_event_record,
    followup_schedule,
    followup_schedule_create,
    visit_miss,
    visit_record,
)
from pocare.patients.followup_selectors import timelines, visits_due
from pocare.patients.models import AdverseEvent, Visit, VisitStatus
from pocare.patients.tasks import followup_daily
from pocare.quality.models import Notification, QualitySignal
from tests.masterfile.helpers import V2_TEXT

pytestmark = pytest.mark.django_db

CRS_3 = {"temperature_c": 39.2, "hypotension": True, "vasopressors": 1}


def _infused(people, referral, days_ago: int = 10):  # type: ignore[no-untyped-def]
    infused_at = timezone.now() - dt.timedelta(days=days_ago)
    referral.referred_at = infused_at - dt.timedelta(days=60)
    referral.save(update_fields=["referred_at"])
    visits = followup_schedule_create(referral=referral, infused_at=infused_at, actor=people["physician.mad"])
    referral.refresh_from_db()
    return visits


def _visit(referral, label: str) -> Visit:  # type: ignore[no-untyped-def]
    return Visit.objects.get(referral=referral, label=label)


# --- the schedule ------------------------------------------------------------------------------------

def test_schedule_from_the_master_file_to_year_15(people, referral):
    """PAT-LTFU: the demo CD19 CAR-T (integrating vector) plans days 7, 14, 28, 100, month 6 and yearly to
    year 15, from day 0 the infusion; planning again changes nothing."""
    visits = _infused(people, referral)
    assert [v.label for v in visits][:6] == ["Day 7", "Day 14", "Day 28", "Day 100", "Month 6", "Year 1"]
    assert visits[-1].label == "Year 15" and visits[-1].day == 15 * 365 and len(visits) == 20
    day0 = referral.infused_at.astimezone(referral.patient.treating_site.tz).date()
    assert visits[0].due_on == day0 + dt.timedelta(days=7)
    assert {v.mode for v in visits if v.day > 5 * 365} == {"questionnaire"}
    again = followup_schedule_create(referral=referral, infused_at=referral.infused_at, actor=people["navigator.mad"])
    assert [v.pk for v in again] == [v.pk for v in visits]
    assert Event.objects.filter(event_type="patients.visits_planned").count() == 1
    assert "master file CD19-CART" in Event.objects.get(event_type="patients.visits_planned").new["source"]


def test_default_schedule_when_the_master_file_states_none(referral):
    """PAT-LTFU: a version without ``follow_up`` falls back to the 15-year default, and says so."""
    version = MasterFileVersion(product=referral.product, number=99, content={})
    points, source = followup_schedule(version)
    assert points == [dict(p) for p in DEFAULT_SCHEDULE] and "default" in source
    assert [p["day"] for p in points[:5]] == [7, 14, 28, 100, 180] and points[-1]["day"] == 5475


def test_schedule_refuses_an_infusion_in_the_future_and_other_hospitals(people, referral):
    with pytest.raises(ValidationError) as refused:
        followup_schedule_create(referral=referral, infused_at=timezone.now() + dt.timedelta(days=1),
                                 actor=people["physician.mad"])
    assert "infused_at" in refused.value.message_dict
    for who in ("physician.lis", "operator.mad", "qa"):
        with pytest.raises(PermissionDenied):
            followup_schedule_create(referral=referral, infused_at=timezone.now(), actor=people[who])
    assert not Visit.objects.exists()


@pytest.mark.parametrize(("old", "new", "path"), [
    ("{label: Day 14, day: 14, window_days: 2,", "{label: Day 14, day: 7, window_days: 2,", "follow_up[1].day"),
    ("{label: Day 28, day: 28, window_days: 4,", "{label: Day 28, day: 28, window_days: 20,",
     "follow_up[2].window_days"),
    ("{label: Day 7, day: 7, window_days: 1, mode: in_person}", "{label: Day 7, day: 7, mode: by_pigeon}",
     "follow_up[0].mode"),
    ("{label: Day 7, day: 7,", "{label: Day 7, day: 0,", "follow_up[0].day"),
])
def test_master_file_schedule_is_validated(old, new, path):
    """PAT-LTFU: days in order and once, windows that do not overlap, known modes."""
    assert old in V2_TEXT
    with pytest.raises(DocumentError) as refused:
        parse_document(V2_TEXT.replace(old, new))
    assert path in {p.path for p in refused.value.problems}


def test_master_file_diff_shows_a_changed_follow_up_visit():
    old = document_content(parse_document(V2_TEXT))
    new = document_content(parse_document(V2_TEXT.replace("{label: Day 100, day: 100, window_days: 10,",
                                                          "{label: Day 100, day: 100, window_days: 14,")))
    diff = diff_content(old, new)
    assert [(d.kind, d.key, d.changes[0].old, d.changes[0].new) for d in diff.follow_up] == [
        ("changed", "100", "10", "14")]
    assert not diff.empty


# --- visits ------------------------------------------------------------------------------------------

def test_day_7_visit_recorded(people, referral):
    """PAT-LTFU: survival, response, new malignancy and persistence recorded, with a ledger event."""
    _infused(people, referral)
    visit = visit_record(actor=people["physician.mad"], visit=_visit(referral, "Day 7"), mode="in_person",
                         done_at=timezone.now() - dt.timedelta(days=3), alive=True, response="PR",
                         new_malignancy=False, persistence="detected", reason="Day-7 visit")
    assert visit.status == VisitStatus.DONE and visit.response == "PR" and visit.recorded_by == people["physician.mad"]
    event = Event.objects.get(event_type="patients.visit_recorded")
    assert event.new["response"] == "PR" and event.old["status"] == "planned"
    with pytest.raises(ValidationError):
        visit_record(actor=people["physician.mad"], visit=visit, mode="in_person", done_at=timezone.now(),
                     alive=True)


@pytest.mark.parametrize(("change", "field"), [
    ({"done_at": "future"}, "done_at"),
    ({"done_at": "before"}, "done_at"),
    ({"done_at": dt.datetime(2026, 1, 1)}, "done_at"),  # naive on purpose
    ({"mode": "phone"}, "mode"),
    ({"mode": "telepathy"}, "mode"),
    ({"alive": None}, "alive"),
    ({"response": "XX"}, "response"),
    ({"new_malignancy": True}, "malignancy_description"),
    ({"new_malignancy": True, "malignancy_description": "T-cell lymphoma\x00"}, "malignancy_description"),
    ({"malignancy_description": "x" * 2001, "new_malignancy": True}, "malignancy_description"),
    ({"persistence": "maybe"}, "persistence"),
])
def test_implausible_visits_are_refused(people, referral, change, field):
    """PAT-LTFU: a visit in the future or before infusion, by phone where the schedule wants an
    examination, or with unknown values is refused naming the field, and nothing is stored."""
    _infused(people, referral)
    values = {"mode": "in_person", "done_at": timezone.now() - dt.timedelta(days=2), "alive": True}
    values.update(change)
    if values["done_at"] == "future":
        values["done_at"] = timezone.now() + dt.timedelta(hours=2)
    elif values["done_at"] == "before":
        values["done_at"] = referral.infused_at - dt.timedelta(hours=1)
    with pytest.raises(ValidationError) as refused:
        visit_record(actor=people["physician.mad"], visit=_visit(referral, "Day 7"), **values)
    assert field in refused.value.message_dict
    assert _visit(referral, "Day 7").status == VisitStatus.PLANNED


def test_later_years_by_questionnaire(people, referral):
    """PAT-LTFU: from year 6 the yearly contact may be a questionnaire (tested on a patient infused 6 years ago)."""
    _infused(people, referral, days_ago=6 * 365 + 5)
    visit = visit_record(actor=people["navigator.mad"], visit=_visit(referral, "Year 6"), mode="questionnaire",
                         done_at=timezone.now() - dt.timedelta(days=1), alive=True, new_malignancy=False)
    assert visit.mode == "questionnaire"
    with pytest.raises(ValidationError) as refused:
        visit_record(actor=people["navigator.mad"], visit=_visit(referral, "Year 5"), mode="questionnaire",
                     done_at=timezone.now() - dt.timedelta(days=300), alive=True)
    assert "mode" in refused.value.message_dict


def test_a_visit_is_not_recorded_years_before_its_time_point(people, referral, client, login):
    """PAT-LTFU: a visit may be recorded out of its window (it happened), but not nearer the time point
    before it: Year 15 is not recorded ten days after infusion, and the timeline offers "Record" only
    for the visits that may be recorded now."""
    from django.urls import reverse

    _infused(people, referral)  # ten days ago
    with pytest.raises(ValidationError, match="belongs to an earlier time point") as refused:
        visit_record(actor=people["physician.mad"], visit=_visit(referral, "Year 15"), mode="in_person",
                     done_at=timezone.now(), alive=True)
    assert "done_at" in refused.value.message_dict
    early_day7 = visit_record(actor=people["physician.mad"], visit=_visit(referral, "Day 7"), mode="in_person",
                              done_at=referral.infused_at + dt.timedelta(days=4), alive=True)  # out of window
    assert early_day7.status == VisitStatus.DONE
    login("physician.mad")
    page = client.get(reverse("patients:followup", args=[referral.patient.pseudonym])).content.decode()
    day14, year15 = _visit(referral, "Day 14"), _visit(referral, "Year 15")
    assert reverse("patients:followup_visit", args=[referral.patient.pseudonym, day14.pk]) in page
    assert reverse("patients:followup_visit", args=[referral.patient.pseudonym, year15.pk]) not in page


def test_only_the_treating_hospital_records_follow_up(people, referral):
    _infused(people, referral)
    for who in ("physician.lis", "operator.mad", "qa", "qp"):
        with pytest.raises(PermissionDenied):
            visit_record(actor=people[who], visit=_visit(referral, "Day 7"), mode="in_person",
                         done_at=timezone.now(), alive=True)
    assert not Event.objects.filter(event_type="patients.visit_recorded").exists()


def test_visit_missed_with_a_reason(people, referral):
    _infused(people, referral)
    with pytest.raises(ValidationError):
        visit_miss(actor=people["navigator.mad"], visit=_visit(referral, "Day 7"), reason="")
    visit = visit_miss(actor=people["navigator.mad"], visit=_visit(referral, "Day 7"), reason="Patient in ICU abroad")
    assert visit.status == VisitStatus.MISSED
    assert Event.objects.get(event_type="patients.visit_missed").reason == "Patient in ICU abroad"


def test_a_death_closes_the_schedule(people, referral):
    """PAT-LTFU: a visit recording that the patient died closes the visits still planned, in the same
    transaction and with a ledger event; the daily job neither reminds of them nor marks them missed, and
    the FHIR CarePlan says the plan ended early."""
    from pocare.patients.fhir.export import care_plan

    _infused(people, referral, days_ago=30)
    visit_record(actor=people["physician.mad"], visit=_visit(referral, "Day 28"), mode="in_person",
                 done_at=timezone.now() - dt.timedelta(days=1), alive=False)
    statuses = dict(Visit.objects.filter(referral=referral).values_list("label", "status"))
    assert statuses["Day 28"] == VisitStatus.DONE
    assert statuses["Day 7"] == statuses["Day 100"] == statuses["Year 15"] == VisitStatus.CLOSED
    closed = Event.objects.get(event_type="patients.visits_closed")
    assert "died" in closed.reason and "Day 28" in closed.reason and len(closed.new["visits"]) == 19
    summary = followup_daily(slot=timezone.now().isoformat())
    assert summary["visits_missed"] == {} and summary["visits_overdue"] == {} and summary["reminders"] == {}
    assert summary["visits_reminded"] == {} and summary["people_reminded"] == 0
    assert not visits_due(people["navigator.mad"]).exists()
    plan = care_plan(referral)
    assert plan is not None and plan["status"] == "revoked"
    assert {a["status"] for a in plan["contained"]} == {"fulfilled", "cancelled"}


def test_a_recorded_visit_is_corrected_with_its_reason(people, referral, client, login):
    """PAT-LTFU (ALCOA, P11-200): a visit recorded wrongly is corrected by the treating hospital's physician
    through its page, with a reason and their password (a signature bound to the correction); the values
    replaced are kept beside it and shown on the follow-up page, and the ledger keeps them too. A death
    recorded in error, corrected, plans the closed visits again; a correction changing nothing, without a
    reason, with a wrong password, by the navigator or by another hospital is refused."""
    from django.urls import reverse

    from pocare.ledger.models import Signature
    from pocare.patients.models import FollowUpCorrection
    from tests.conftest import PASSWORD

    _infused(people, referral, days_ago=30)
    day7 = visit_record(actor=people["physician.mad"], visit=_visit(referral, "Day 7"), mode="in_person",
                        done_at=(timezone.now() - dt.timedelta(days=23)).replace(second=0, microsecond=0), alive=False)
    assert Visit.objects.filter(referral=referral, status=VisitStatus.CLOSED).count() == 19
    url = reverse("patients:followup_visit", args=[referral.patient.pseudonym, day7.pk])
    local = day7.done_at.astimezone(referral.patient.treating_site.tz).strftime("%Y-%m-%dT%H:%M")
    form = {"action": "correct", "mode": "in_person", "done_at": local, "alive": "yes", "response": "PR",
            "new_malignancy": "no", "malignancy_description": "", "persistence": "", "reason": "",
            "username": "physician.mad", "password": PASSWORD}
    login("navigator.mad")
    page = client.get(url).content.decode()
    assert "Correct this visit" not in page and "physician corrects" in page
    assert client.post(url, {**form, "reason": "Wrong patient"}).status_code == 403
    login("physician.mad")
    page = client.get(url).content.decode()
    assert "Correct this visit" in page and 'value="correct"' in page and 'name="password"' in page
    refused = client.post(url, form)
    assert refused.status_code == 400 and Visit.objects.get(pk=day7.pk).alive is False
    assert client.post(url, {**form, "alive": "no", "response": "", "new_malignancy": "",
                             "reason": "Same"}).status_code == 400  # nothing changed
    wrong = client.post(url, {**form, "reason": "Entered for the wrong patient", "password": "not it"})
    assert wrong.status_code == 400 and Visit.objects.get(pk=day7.pk).alive is False
    assert not FollowUpCorrection.objects.exists()
    login("physician.lis")
    assert client.post(url, {**form, "reason": "Wrong patient"}).status_code == 404
    login("physician.mad")
    done = client.post(url, {**form, "reason": "Entered for the wrong patient: alive, partial response"})
    assert done.status_code == 302, done.content.decode()[:3000]
    day7.refresh_from_db()
    assert day7.alive is True and day7.response == "PR"
    correction = FollowUpCorrection.objects.get(visit=day7)
    assert correction.old == {"alive": False, "response": "", "new_malignancy": None}
    assert correction.new == {"alive": True, "response": "PR", "new_malignancy": False}
    signature = Signature.objects.get(record_type="patients.FollowUpCorrection", record_id=str(correction.pk))
    assert signature.signer == people["physician.mad"] and signature.meaning == "authored"
    corrected = Event.objects.get(event_type="patients.visit_corrected")
    assert corrected.old == {"alive": False, "response": "", "new_malignancy": None}
    assert corrected.new == {"alive": True, "response": "PR", "new_malignancy": False, "correction": correction.pk}
    assert not Visit.objects.filter(referral=referral, status=VisitStatus.CLOSED).exists()
    assert Event.objects.filter(event_type="patients.visits_reopened").count() == 1
    timeline = client.get(reverse("patients:followup", args=[referral.patient.pseudonym])).content.decode()
    assert f'id="correction-{correction.pk}"' in timeline and "Recorded first (kept)" in timeline
    assert "<del>No</del>" in timeline and "Entered for the wrong patient" in timeline


def test_adverse_event_corrected_is_graded_again_and_signalled(people, referral):
    """PAT-GRADE: the physician corrects a CRS recorded without its vasopressor; the grade is computed again
    from the corrected inputs (1 → 3, never typed), the inputs and grade replaced are kept, the correction
    is signed and in the ledger, and — grade 3 now — the quality signal reaches Control Site QA and the QP
    as for a new event. The navigator does not correct; a wrong password changes nothing."""
    from pocare.ledger.signing import SigningCredentials, SigningRefused
    from pocare.patients.followup import adverse_event_correct
    from pocare.patients.models import FollowUpCorrection
    from tests.conftest import PASSWORD

    _infused(people, referral)
    event = adverse_event_record(actor=people["physician.mad"], referral=referral, kind="crs",
                                 onset_on=timezone.localdate() - dt.timedelta(days=2),
                                 inputs={"temperature_c": 38.6})
    assert event.grade == 1 and not QualitySignal.objects.exists()
    good = SigningCredentials(password=PASSWORD, username="physician.mad")
    with pytest.raises(PermissionDenied):
        adverse_event_correct(actor=people["navigator.mad"], event=event, inputs=CRS_3, serious=False,
                              reason="Vasopressor missed", credentials=good)
    with pytest.raises(SigningRefused):
        adverse_event_correct(actor=people["physician.mad"], event=event, inputs=CRS_3, serious=False,
                              reason="Vasopressor missed", credentials=SigningCredentials(
                                  password="wrong", username="physician.mad"))
    with pytest.raises(ValidationError) as same:
        adverse_event_correct(actor=people["physician.mad"], event=event, inputs={"temperature_c": 38.6},
                              serious=False, reason="Nothing", credentials=good)
    assert "inputs" in same.value.message_dict
    with pytest.raises(ValidationError) as typed:
        adverse_event_correct(actor=people["physician.mad"], event=event, inputs={**CRS_3, "grade": 1},
                              serious=False, reason="Typed", credentials=good)
    assert "grade" in typed.value.message_dict
    event.refresh_from_db()
    assert event.grade == 1 and not FollowUpCorrection.objects.exists()
    correction = adverse_event_correct(actor=people["physician.mad"], event=event, inputs=CRS_3, serious=False,
                                       reason="Noradrenaline given on day 2 was not entered", credentials=good)
    event.refresh_from_db()
    assert event.grade == 3 and any("vasopressor" in r for r in event.reasons)
    assert correction.old["grade"] == 1 and correction.old["inputs"]["temperature_c"] == 38.6
    assert correction.new["grade"] == 3
    assert Event.objects.get(event_type="patients.adverse_event_corrected").new["grade"] == 3
    signal = QualitySignal.objects.get()
    assert "on correction" in signal.summary and referral.patient.pseudonym in signal.summary
    assert set(Notification.objects.filter(signal=signal).values_list("recipient__username", flat=True)) >= {"qa",
                                                                                                          "qp"}
    # Corrected again (the temperature), still grade 3: no second signal.
    adverse_event_correct(actor=people["physician.mad"], event=event, inputs={**CRS_3, "temperature_c": 39.0},
                          serious=False, reason="Temperature misread", credentials=good)
    assert QualitySignal.objects.count() == 1 and FollowUpCorrection.objects.count() == 2


def test_adverse_event_correction_page(people, referral, client, login):
    """PAT-GRADE: the correction page shows the event as recorded, previews the grade of the inputs typed
    (nothing stored), and records the signed correction; refused input names its field; only the treating
    hospital's physician reaches it."""
    from django.urls import reverse

    from tests.conftest import PASSWORD

    _infused(people, referral)
    event = adverse_event_record(actor=people["physician.mad"], referral=referral, kind="crs",
                                 onset_on=timezone.localdate() - dt.timedelta(days=2),
                                 inputs={"temperature_c": 38.6})
    url = reverse("patients:adverse_event_correct", args=[referral.patient.pseudonym, event.pk])
    login("navigator.mad")
    assert client.get(url).status_code == 403
    login("physician.lis")
    assert client.get(url).status_code == 404
    login("physician.mad")
    page = client.get(url)
    assert page.status_code == 200 and "As recorded now" in page.content.decode()
    fields = {"temperature_c": "39.2", "hypotension": "on", "vasopressors": "1", "oxygen_device": "none",
              "reason": "Vasopressor missed", "username": "physician.mad", "password": PASSWORD}
    preview = client.get(url, {"temperature_c": "39.2", "hypotension": "on", "vasopressors": "1", "preview": "1"},
                         headers={"HX-Request": "true"})
    assert preview.status_code == 200 and 'data-grade="3"' in preview.content.decode()
    bad = client.post(url, {**fields, "temperature_c": "1" * 400})
    assert bad.status_code == 400 and "temperature" in bad.content.decode().lower()
    nul = client.post(url, {**fields, "reason": "x\x00"})
    assert nul.status_code == 400
    event.refresh_from_db()
    assert event.grade == 1
    done = client.post(url, fields)
    assert done.status_code == 302, done.content.decode()[:3000]
    event.refresh_from_db()
    assert event.grade == 3
    timeline = client.get(reverse("patients:followup", args=[referral.patient.pseudonym])).content.decode()
    assert "Recorded first (kept)" in timeline and "CRS grade 3" in timeline


def test_a_grade_5_adverse_event_closes_the_schedule(people, referral):
    """PAT-LTFU PAT-GRADE: an adverse event of CTCAE grade 5 (death) closes the planned visits too."""
    _infused(people, referral)
    adverse_event_record(actor=people["physician.mad"], referral=referral, kind="other", term="Sepsis",
                         onset_on=timezone.localdate(), inputs={"grade": 5}, serious=True)
    assert not Visit.objects.filter(referral=referral, status=VisitStatus.PLANNED).exists()
    assert Event.objects.filter(event_type="patients.visits_closed").count() == 1


def test_questionnaire_answers_are_recorded_as_the_visit_due(people, referral, client, login):
    """PAT-LTFU: in year 6 the navigator fills in the web questionnaire with the patient and records it as
    the Year 6 visit: survival and a new cancer read from the answers, every answer kept on the visit and
    shown on the timeline — once the answers were checked and read back (a ticked confirmation). An
    infection reported reminds the navigator to record it as an adverse event (graded). Not while a visit
    in person is the one due; not without knowing whether the patient is alive; not for another
    hospital's navigator."""
    from django.urls import reverse

    _infused(people, referral, days_ago=6 * 365 + 5)
    url = reverse("patients:questionnaire", args=[referral.patient.pseudonym])
    answers = dict.fromkeys(("alive", "hospital_stays", "new_cancer", "infections", "neurological"), "no")
    answers.update(alive="yes", new_cancer="yes", new_cancer_detail="Basal cell carcinoma, March, Hospital del Mar",
                   infections="yes", infections_detail="Pneumonia in May, 5 days in hospital")
    login("navigator.mad")
    early = client.post(url, {**answers, "record": "1", "confirm": "1"})  # Day 7, in person, is the first planned
    assert early.status_code == 400 and "No follow-up visit" in early.content.decode()
    assert 'name="record"' not in client.get(url).content.decode()
    followup_daily(slot=timezone.now().isoformat())  # the windows of day 7 … year 5 closed: missed
    assert 'name="record"' not in client.get(url).content.decode()  # the answers are checked first
    checked = client.post(url, answers).content.decode()
    assert "Registrar como la visita Año 6" in checked and 'name="confirm"' in checked  # in the patient's language
    unconfirmed = client.post(url, {**answers, "record": "1"})
    assert unconfirmed.status_code == 400 and 'name="confirm"' in unconfirmed.content.decode()
    assert _visit(referral, "Year 6").status == VisitStatus.PLANNED
    unknown = client.post(url, {**answers, "alive": "unknown", "record": "1", "confirm": "1"})
    assert unknown.status_code == 400 and "say whether the patient is alive" in unknown.content.decode()
    assert 'value="unknown" checked' in unknown.content.decode()  # the answers typed are kept
    login("navigator.lis")
    assert client.post(url, {**answers, "record": "1", "confirm": "1"}).status_code == 404
    login("navigator.mad")
    done = client.post(url, {**answers, "record": "1", "confirm": "1"})
    assert done.status_code == 302 and done.url.endswith(f"#visit-{_visit(referral, 'Year 6').pk}")
    visit = _visit(referral, "Year 6")
    assert (visit.status, visit.mode, visit.alive, visit.new_malignancy) == ("done", "questionnaire", True, True)
    assert visit.malignancy_description.startswith("Basal cell") and visit.answers["infections"]["answer"] == "yes"
    assert Event.objects.get(event_type="patients.visit_recorded", object_id=str(visit.pk)).new["answers"]
    timeline = client.get(reverse("patients:followup", args=[referral.patient.pseudonym])).content.decode()
    assert "New cancer or blood disorder" in timeline and "Basal cell carcinoma" in timeline
    assert "The answers report infections: record each event as an adverse event" in timeline


def test_questionnaire_answers_belong_to_a_questionnaire_visit(people, referral):
    """PAT-LTFU: answers are checked like the form's, and an examination in person carries none."""
    _infused(people, referral, days_ago=6 * 365 + 5)
    answers = {q: {"answer": "no", "detail": ""} for q in ("alive", "hospital_stays", "new_cancer",
                                                            "infections", "neurological")}
    for bad, field in (({**answers, "alive": {"answer": "maybe"}}, "alive"), ({**answers, "x" * 400: "no"}, "answers"),
                       ({**answers, "infections": {"answer": "yes", "detail": "x\x00"}}, "infections_detail")):
        with pytest.raises(ValidationError) as refused:
            visit_record(actor=people["navigator.mad"], visit=_visit(referral, "Year 6"), mode="phone",
                         done_at=timezone.now(), alive=True, answers=bad)
        assert field in refused.value.message_dict
    with pytest.raises(ValidationError) as refused:
        visit_record(actor=people["navigator.mad"], visit=_visit(referral, "Day 7"), mode="in_person",
                     done_at=timezone.now(), alive=True, answers=answers)
    assert "answers" in refused.value.message_dict
    assert not Visit.objects.filter(referral=referral, status=VisitStatus.DONE).exists()


# --- adverse events ----------------------------------------------------------------------------------

def test_crs_graded_from_its_inputs_reaches_qa_and_the_qp(people, referral):
    """PAT-GRADE: fever 39.2 °C and one vasopressor is CRS grade 3, computed with its reasons; being grade 3
    it raises a quality signal and notifies Control Site QA and the QP under the pseudonym only."""
    _infused(people, referral)
    event = adverse_event_record(actor=people["physician.mad"], referral=referral, visit=_visit(referral, "Day 7"),
                                 kind="crs", onset_on=timezone.now().date() - dt.timedelta(days=5),
                                 inputs=CRS_3, reason="CRS on day 5")
    assert event.grade == 3
    assert any("one vasopressor is grade 3" in r for r in event.reasons)
    assert Event.objects.get(event_type="patients.adverse_event_recorded").new["grade"] == 3
    signal = QualitySignal.objects.get()
    assert signal.attribute_id == "adverse-event" and referral.patient.pseudonym in signal.summary
    recipients = set(Notification.objects.filter(signal=signal).values_list("recipient__username", flat=True))
    assert {"qa", "qp"} <= recipients
    for text in [signal.summary, str(signal.evidence),
                 *Notification.objects.filter(signal=signal).values_list("body", flat=True)]:
        assert "Fernández" not in text and "1968" not in text and "Alcalá" not in text


def test_a_typed_grade_is_never_taken_for_crs(people, referral):
    """PAT-GRADE: the grade is computed; a typed ``grade`` among CRS inputs is refused."""
    _infused(people, referral)
    with pytest.raises(ValidationError) as refused:
        adverse_event_record(actor=people["physician.mad"], referral=referral, kind="crs",
                             onset_on=timezone.now().date(), inputs={**CRS_3, "grade": 1})
    assert "grade" in refused.value.message_dict
    assert not AdverseEvent.objects.exists()


def test_mild_icans_raises_no_signal_and_a_serious_other_event_does(people, referral):
    """PAT-GRADE: ICE 8 is ICANS grade 1 (no signal); a serious CTCAE event of grade 2 raises one."""
    _infused(people, referral)
    icans = adverse_event_record(actor=people["physician.mad"], referral=referral, kind="icans",
                                 onset_on=timezone.now().date(),
                                 inputs={"orientation": 2, "naming": 3, "commands": 1, "writing": 1, "attention": 1})
    assert icans.grade == 1 and not QualitySignal.objects.exists()
    other = adverse_event_record(actor=people["physician.mad"], referral=referral, kind="other",
                                 term="Febrile neutropenia", onset_on=timezone.now().date(), inputs={"grade": 2},
                                 serious=True)
    assert other.grade == 2 and QualitySignal.objects.get().rule == "serious-adverse-event"


@pytest.mark.parametrize(("values", "field"), [
    ({"kind": "crs", "inputs": {"temperature_c": 47}}, "temperature_c"),
    ({"kind": "crs", "inputs": {"temperature_c": 39, "oxygen_device": "helmet"}}, "oxygen_device"),
    ({"kind": "icans", "inputs": {"consciousness": "alert"}}, "orientation"),
    ({"kind": "other", "inputs": {"grade": 2}}, "term"),
    ({"kind": "other", "term": "Rash", "inputs": {"grade": 6}}, "grade"),
    ({"kind": "fever", "inputs": {}}, "kind"),
    ({"kind": "crs", "inputs": CRS_3, "onset_on": dt.date(9999, 12, 31)}, "onset_on"),
    ({"kind": "crs", "inputs": CRS_3, "onset_on": "before"}, "onset_on"),
    ({"kind": "crs", "inputs": {f"k{i}": 1 for i in range(30)}}, "inputs"),
])
def test_implausible_adverse_events_are_refused(people, referral, values, field):
    _infused(people, referral)
    values = {"onset_on": timezone.now().date(), **values}
    if values["onset_on"] == "before":
        values["onset_on"] = referral.infused_at.date() - dt.timedelta(days=2)
    with pytest.raises(ValidationError) as refused:
        adverse_event_record(actor=people["physician.mad"], referral=referral, **values)
    assert field in refused.value.message_dict
    assert not AdverseEvent.objects.exists()


# --- the daily job and the work queue ----------------------------------------------------------------

def test_daily_job_plans_marks_missed_and_reminds(people, referral):
    """PAT-LTFU: the daily job plans the schedule of an infused referral without visits, marks missed a
    visit whose window has closed (recorded by the system), counts the overdue ones, and the navigator
    sees the visits due in the work queue."""
    referral.referred_at = timezone.now() - dt.timedelta(days=60)
    referral.infused_at = timezone.now() - dt.timedelta(days=16)
    referral.save(update_fields=["referred_at", "infused_at"])
    summary = followup_daily(slot=timezone.now().isoformat())
    assert summary["schedules_planned"] == 1
    # Day 7 (± 1) closed a week ago: missed; Day 14 (± 2) is two days late: overdue, still open.
    assert _visit(referral, "Day 7").status == VisitStatus.MISSED
    assert summary["visits_missed"] == {"MAD": 1} and summary["visits_overdue"] == {"MAD": 1}
    assert summary["reminders"] == {"MAD": 1}  # Day 28, in twelve days
    assert Event.objects.get(event_type="patients.visit_missed").actor_id is None
    due = list(visits_due(people["navigator.mad"]).values_list("label", flat=True))
    assert due == ["Day 14", "Day 28"]
    assert not visits_due(people["physician.lis"]).exists()
    assert not visits_due(people["operator.mad"]).exists()
    states = {v.label: v.state for v in timelines(people["navigator.mad"], referral.patient)[0].visits}
    assert states["Day 7"] == "missed" and states["Day 14"] == "overdue" and states["Day 28"] == "planned"
    again = followup_daily(slot=timezone.now().isoformat())
    assert again["schedules_planned"] == 0


def test_daily_job_reminds_of_each_visit_due_and_overdue_once(people, referral,
                                                             django_capture_on_commit_callbacks):
    """PAT-LTFU: the daily run tells those who record follow-up at the treating hospital (its navigators and
    physicians) of each visit that became due within 7 days and of each that became overdue — a
    notification (and an e-mail) naming the patient by pseudonym only, linking the visit — once per visit
    and state: a second run tells no one; a visit later overdue is told once more. Another hospital, the
    manufacturing roles and the Control Site are not told, and a visit closed by a death is never told."""
    from django.core import mail

    from pocare.patients.models import VisitReminder

    referral.referred_at = timezone.now() - dt.timedelta(days=60)
    referral.infused_at = timezone.now() - dt.timedelta(days=16)
    referral.save(update_fields=["referred_at", "infused_at"])
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        summary = followup_daily(slot=timezone.now().isoformat())
    # Day 14 (± 2) is two days late: overdue; Day 28 is in twelve days: not yet within 7.
    assert summary["visits_reminded"] == {"overdue": 1}
    told = Notification.objects.filter(subject__startswith="Follow-up overdue:")
    recipients = set(told.values_list("recipient__username", flat=True))
    assert {"navigator.mad", "physician.mad"} <= recipients and summary["people_reminded"] == len(recipients)
    assert not recipients & {"operator.mad", "qa", "qp", "navigator.lis", "physician.lis"}
    note = told.first()
    pseudonym = referral.patient.pseudonym
    assert note.subject.startswith(f"Follow-up overdue: {pseudonym}, Day 14") and "MAD" in note.subject
    assert note.url.endswith(f"#visit-{_visit(referral, 'Day 14').pk}") and pseudonym in note.url
    assert mail.outbox and mail.outbox[0].subject == f"POCare: {note.subject}"
    again = followup_daily(slot=timezone.now().isoformat())
    assert again["people_reminded"] == 0 and again["visits_reminded"] == {} and told.count() == len(recipients)
    assert Event.objects.filter(event_type="patients.visit_reminded").count() == 1
    # Six days later Day 28 is due within 7 days: told once, as due.
    later = (timezone.now() + dt.timedelta(days=6)).isoformat()
    assert followup_daily(slot=later)["visits_reminded"] == {"due": 1}
    assert followup_daily(slot=later)["visits_reminded"] == {}
    assert VisitReminder.objects.filter(visit=_visit(referral, "Day 28"), state="due").count() == 1
    # The patient dies: the closed visits are never told.
    adverse_event_record(actor=people["physician.mad"], referral=referral, kind="other", term="Sepsis",
                         onset_on=timezone.localdate(), inputs={"grade": 5}, serious=True)
    assert followup_daily(slot=(timezone.now() + dt.timedelta(days=90)).isoformat())["visits_reminded"] == {}


# --- the pages ---------------------------------------------------------------------------------------

def test_timeline_and_forms_record_a_visit_and_a_graded_crs(people, referral, client, login):
    """PAT-GRADE PAT-LTFU: the physician records the day-7 visit and a CRS with 39.2 °C and one vasopressor
    through the pages; the timeline shows CRS grade 3 with its reasons. The grade preview renders the same
    grade from the inputs typed so far, storing nothing."""
    _infused(people, referral, days_ago=7)
    pseudonym = referral.patient.pseudonym
    day7 = _visit(referral, "Day 7")
    login("physician.mad")
    page = client.get(f"/patients/{pseudonym}/follow-up/")
    assert page.status_code == 200 and "Day 7" in page.content.decode() and "Year 15" in page.content.decode()
    done_at = timezone.localtime(timezone.now() - dt.timedelta(hours=1), referral.patient.treating_site.tz)
    response = client.post(f"/patients/{pseudonym}/follow-up/visits/{day7.pk}/", {
        "action": "record", "mode": "in_person", "done_at": done_at.strftime("%Y-%m-%dT%H:%M"), "alive": "yes",
        "response": "PR", "new_malignancy": "no", "persistence": "detected", "reason": "Day-7 visit"})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert _visit(referral, "Day 7").status == VisitStatus.DONE
    url = f"/patients/{pseudonym}/follow-up/{referral.pk}/adverse-events/new/"
    fields = {"kind": "crs", "visit": day7.pk, "onset_on": timezone.now().date().isoformat(), "temperature_c": "39.2",
              "hypotension": "on", "vasopressors": "1", "oxygen_device": "none", "reason": "CRS at day 5"}
    preview = client.get(url, {**fields, "preview": "1"}, headers={"HX-Request": "true"})
    assert preview.status_code == 200 and 'data-grade="3"' in preview.content.decode()
    assert "<html" not in preview.content.decode() and not AdverseEvent.objects.exists()
    response = client.post(url, fields)
    assert response.status_code == 302, response.content.decode()[:3000]
    page = client.get(f"/patients/{pseudonym}/follow-up/").content.decode()
    assert "CRS grade 3" in page and "Temperature 39.2 °C is a fever" in page and "one vasopressor is grade 3" in page


def test_pages_refuse_implausible_input_and_other_hospitals(people, referral, client, login):
    """PAT-LTFU PAT-GRADE: a temperature of 50 °C is refused on its field, nothing stored; another hospital's
    physician does not find the patient; Control Site QA sees the timeline but records nothing."""
    _infused(people, referral, days_ago=7)
    pseudonym = referral.patient.pseudonym
    url = f"/patients/{pseudonym}/follow-up/{referral.pk}/adverse-events/new/"
    login("physician.mad")
    response = client.post(url, {"kind": "crs", "onset_on": timezone.now().date().isoformat(),
                                 "temperature_c": "50", "oxygen_device": "none", "reason": "x"})
    assert response.status_code == 400 and "between 30 and 45" in response.content.decode()
    assert not AdverseEvent.objects.exists()
    client.logout()
    login("physician.lis")
    assert client.get(f"/patients/{pseudonym}/follow-up/").status_code == 404
    assert client.get(url).status_code == 404
    client.logout()
    login("qa")
    assert client.get(f"/patients/{pseudonym}/follow-up/").status_code == 200
    assert client.get(url).status_code == 403


def test_visit_page_ids_are_unique(people, referral, client, login):
    """The visit page holds the visit form and the "missed" form, each with a reason: ids of their own."""
    from tests.test_unique_ids import duplicate_ids

    _infused(people, referral, days_ago=7)
    login("navigator.mad")
    page = client.get(f"/patients/{referral.patient.pseudonym}/follow-up/visits/{_visit(referral, 'Day 7').pk}/")
    assert page.status_code == 200 and not duplicate_ids(page.content.decode())
    response = client.post(f"/patients/{referral.patient.pseudonym}/follow-up/visits/{_visit(referral, 'Day 7').pk}/",
                           {"action": "miss", "reason": "Patient moved abroad"})
    assert response.status_code == 302 and _visit(referral, "Day 7").status == VisitStatus.MISSED
