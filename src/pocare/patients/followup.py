"""Follow-up after infusion (PAT-LTFU) and graded adverse events (PAT-GRADE): the services.

The schedule comes from the product's master-file version (``follow_up`` in its content: label, day
after infusion, window in days either side, mode), or :data:`DEFAULT_SCHEDULE` when the version has
none — the 15-year schedule for an integrating vector (FDA LTFU guidance, Jan 2020; CIBMTR form 4100:
day 100, 6 months, then yearly) after the early toxicity visits. Where the schedule plans a visit by
phone or questionnaire (the later years), it may be done so; an examination planned in person is
recorded in person.

CRS and ICANS are graded by :mod:`pocare.patients.grading` from the recorded inputs; the grade and its
reasons are stored beside the inputs, never typed. A serious adverse event, or one of grade 3 or more,
raises a quality signal for Control Site QA and the QP (pharmacovigilance), naming the pseudonym only.

Each service is keyword-only, runs in one transaction, checks the actor's permission at the treating
hospital and writes its ledger event on that hospital's chain. Unattended work (the daily follow-up
job) passes ``actor=None`` and is recorded under the system name :data:`SYSTEM`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from pocare.accounts.roles import Perm
from pocare.accounts.services import require_perm
from pocare.core import bounds
from pocare.core.checks import text_checked
from pocare.ledger.models import Meaning
from pocare.ledger.services import event_record, reason_required
from pocare.ledger.signing import SigningCredentials, signature_apply, signing_authenticate
from pocare.patients import grading
from pocare.patients.events import PatientEvent
from pocare.patients.models import (
    ANSWERS,
    QUESTIONS,
    AdverseEvent,
    AdverseEventKind,
    FollowUpCorrection,
    Persistence,
    Referral,
    ReminderState,
    Response,
    Visit,
    VisitMode,
    VisitReminder,
    VisitStatus,
)
from pocare.quality.services import notice_send, safety_signal_raise

if TYPE_CHECKING:
    from pocare.accounts.models import User
    from pocare.masterfile.models import MasterFileVersion

#: The name unattended follow-up work is recorded under in the ledger.
SYSTEM = "follow-up-scheduler"

#: Allowed clock skew between a device recording ``done_at`` and the server.
CLOCK_SKEW = dt.timedelta(minutes=5)

#: The schedule used when the product's master file states none: days 7, 14, 28 and 100, month 6, then
#: yearly to year 15; examinations in person for five years, then yearly contact by questionnaire.
DEFAULT_SCHEDULE: tuple[dict[str, Any], ...] = (
    {"label": gettext_noop("Day 7"), "day": 7, "window_days": 1, "mode": VisitMode.IN_PERSON.value},
    {"label": gettext_noop("Day 14"), "day": 14, "window_days": 2, "mode": VisitMode.IN_PERSON.value},
    {"label": gettext_noop("Day 28"), "day": 28, "window_days": 4, "mode": VisitMode.IN_PERSON.value},
    {"label": gettext_noop("Day 100"), "day": 100, "window_days": 10, "mode": VisitMode.IN_PERSON.value},
    {"label": gettext_noop("Month 6"), "day": 180, "window_days": 30, "mode": VisitMode.IN_PERSON.value},
    *({"label": label, "day": 365 * year, "window_days": 45 if year == 1 else 60,
       "mode": (VisitMode.IN_PERSON if year <= 5 else VisitMode.QUESTIONNAIRE).value}
      for year, label in enumerate((
          gettext_noop("Year 1"), gettext_noop("Year 2"), gettext_noop("Year 3"), gettext_noop("Year 4"),
          gettext_noop("Year 5"), gettext_noop("Year 6"), gettext_noop("Year 7"), gettext_noop("Year 8"),
          gettext_noop("Year 9"), gettext_noop("Year 10"), gettext_noop("Year 11"), gettext_noop("Year 12"),
          gettext_noop("Year 13"), gettext_noop("Year 14"), gettext_noop("Year 15")), start=1)),
)

DETAIL_MAX = 1000

#: Modes a visit planned in a mode may be done in.
_ALLOWED_MODES: dict[str, set[str]] = {
    VisitMode.IN_PERSON.value: {VisitMode.IN_PERSON.value},
    VisitMode.PHONE.value: set(VisitMode.values),
    VisitMode.QUESTIONNAIRE.value: set(VisitMode.values),
}


def _record(actor: User | None, event_type: str, obj: Any, referral: Referral, reason: str,
            old: Mapping[str, Any] | None = None, new: Mapping[str, Any] | None = None) -> None:
    event_record(actor=actor, system="" if actor is not None else SYSTEM, event_type=event_type, obj=obj,
                 site=referral.patient.treating_site, object_repr=f"{obj} ({referral.patient.pseudonym})",
                 reason=reason, old=old, new=new)


def _check_actor(actor: User | None, referral: Referral, *, system_allowed: bool = False) -> None:
    if actor is None:
        if not system_allowed:
            raise ValidationError({"actor": "A person records this."})
        return
    require_perm(actor, Perm.FOLLOWUP_RECORD, site=referral.patient.treating_site)


def _aware(value: Any, field: str, what: str) -> dt.datetime:
    if not isinstance(value, dt.datetime) or timezone.is_naive(value):
        raise ValidationError({field: f"Give the {what} as a date and time with its time zone."})
    if problem := bounds.datetime_problem(value):
        raise ValidationError({field: f"The {what}: {problem}."})
    return value


def _choice(value: Any, field: str, choices: type[Any], *, required: bool = False) -> str:
    value = "" if value is None else value
    if value == "" and not required:
        return ""
    if value not in choices.values:
        raise ValidationError({field: f"Choose one of {', '.join(choices.values)}."})
    return str(value)


def _yes_no(value: Any, field: str, what: str, *, required: bool = False) -> bool | None:
    if value is None or value == "":
        if required:
            raise ValidationError({field: f"Say whether {what}."})
        return None
    if not isinstance(value, bool):
        raise ValidationError({field: f"Answer yes or no: {what}?"})
    return value


# --- the schedule -------------------------------------------------------------------------------------


def followup_version(referral: Referral, at: dt.datetime) -> MasterFileVersion | None:
    """The master-file version whose schedule a referral follows: the one its batch was made under, or
    else the product's newest version effective in the network at ``at`` (or, made effective since, the
    newest effective one)."""
    order = referral.order
    batch = getattr(order, "batch", None) if order is not None else None
    if batch is not None:
        made_under: MasterFileVersion = batch.masterfile_version
        return made_under
    effective = referral.product.versions.filter(effective_at__isnull=False).order_by("-effective_at", "-number")
    version: MasterFileVersion | None = effective.filter(effective_at__lte=at).first() or effective.first()
    return version


def followup_schedule(version: MasterFileVersion | None) -> tuple[list[dict[str, Any]], str]:
    """The version's follow-up time points and where they come from (for the page and the ledger)."""
    planned = ((version.content or {}).get("follow_up") if version is not None else None) or []
    if planned:
        return [dict(p) for p in planned], f"master file {version.product.code} v{version.number}"  # type: ignore[union-attr]
    return [dict(p) for p in DEFAULT_SCHEDULE], "POCare's default 15-year schedule (the master file states none)"


def followup_schedule_create(*, referral: Referral, infused_at: dt.datetime, actor: User | None = None,
                             reason: str = "Follow-up schedule planned after infusion") -> list[Visit]:
    """Plan the referral's follow-up visits from day 0 ``infused_at`` (PAT-LTFU). Idempotent: a referral
    with visits keeps them (and gets them back). Records ``infused_at`` on the referral when the pathway
    has not yet; a different infusion time recorded there is refused. ``actor=None`` is the daily job."""
    _check_actor(actor, referral, system_allowed=True)
    infused_at = _aware(infused_at, "infused_at", "infusion time")
    if infused_at > timezone.now() + CLOCK_SKEW:
        raise ValidationError({"infused_at": "The infusion time is in the future; plan follow-up after infusion."})
    if infused_at < referral.referred_at:
        raise ValidationError({"infused_at": "The infusion time is before the referral."})
    reason = reason_required(reason)
    with transaction.atomic():
        referral = Referral.objects.select_for_update().select_related("patient__treating_site", "product").get(
            pk=referral.pk)
        existing = list(referral.visits.order_by("day"))
        if existing:
            return existing
        if referral.infused_at is not None and referral.infused_at != infused_at:
            raise ValidationError({"infused_at": "The referral records another infusion time "
                                                 f"({referral.infused_at:%Y-%m-%d %H:%M} UTC)."})
        version = followup_version(referral, infused_at)
        points, source = followup_schedule(version)
        day0 = infused_at.astimezone(referral.patient.treating_site.tz).date()
        visits = [Visit(referral=referral, label=p["label"], day=p["day"], window_days=p.get("window_days", 0),
                        due_on=day0 + dt.timedelta(days=p["day"]), mode=p.get("mode", VisitMode.IN_PERSON),
                        status=VisitStatus.PLANNED) for p in points]
        try:
            with transaction.atomic():
                for visit in visits:
                    visit.save()
        except IntegrityError:  # planned meanwhile by another worker: theirs stand
            return list(referral.visits.order_by("day"))
        old_infused = referral.infused_at
        if old_infused is None:
            referral.infused_at = infused_at
            referral.save(update_fields=["infused_at"])
        _record(actor, PatientEvent.VISITS_PLANNED, referral, referral, reason,
                old={"infused_at": old_infused},
                new={"infused_at": infused_at, "source": source, "visits": [[v.label, v.due_on] for v in visits]})
    return visits


# --- visits ------------------------------------------------------------------------------------------


def questionnaire_checked(data: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """A questionnaire's answers: each of :data:`QUESTIONS` answered yes, no or unknown, with details of at
    most :data:`DETAIL_MAX` characters; a ValidationError naming each question otherwise."""
    if not isinstance(data, Mapping):
        raise ValidationError({"answers": "Give the answers as an object: question → answer and details."})
    answers: dict[str, dict[str, str]] = {}
    errors: dict[str, str] = {}
    for q in QUESTIONS:
        given = data.get(q)
        answer, detail = ((given.get("answer"), given.get("detail", "")) if isinstance(given, Mapping)
                          else (given, data.get(f"{q}_detail", "")))
        detail = str(detail or "").strip()
        if answer not in ANSWERS:
            errors[q] = f"Answer {', '.join(ANSWERS)}."
        elif len(detail) > DETAIL_MAX:
            errors[f"{q}_detail"] = f"The details have at most {DETAIL_MAX} characters."
        elif problem := bounds.text_problem(detail):
            errors[f"{q}_detail"] = f"The details: {problem}."
        else:
            answers[q] = {"answer": str(answer), "detail": detail}
    if unknown := set(data) - set(QUESTIONS) - {f"{q}_detail" for q in QUESTIONS}:
        errors["answers"] = f"Not a question of the questionnaire: {sorted(unknown)[0][:40]!r}."
    if errors:
        raise ValidationError(errors)
    return answers


#: The questions whose "yes" reports what may be an adverse event, recorded (and graded) on its own.
ADVERSE_QUESTIONS = ("hospital_stays", "infections", "neurological")


def questionnaire_visit(referral_visits: Any, today: dt.date) -> Visit | None:
    """The planned visit a questionnaire answered ``today`` is recorded as: the earliest planned one, if
    the schedule lets it be done by questionnaire and its window has opened; else None."""
    visit: Visit | None = referral_visits.filter(status=VisitStatus.PLANNED).order_by("due_on", "pk").first()
    if visit is None or visit.mode == VisitMode.IN_PERSON or today < visit.due_on - dt.timedelta(
            days=visit.window_days):
        return None
    return visit


def questionnaire_record(*, actor: User, visit: Visit, answers: Mapping[str, Any], done_at: dt.datetime,
                         reason: str = "Follow-up questionnaire answered") -> Visit:
    """Record a questionnaire's answers as its planned visit (PAT-LTFU): survival and a new malignancy read
    from the answers, every answer kept on the visit. Whether the patient is alive must be known."""
    checked = questionnaire_checked(answers)
    alive = checked["alive"]["answer"]
    if alive == "unknown":
        raise ValidationError({"alive": "To record the visit, say whether the patient is alive."})
    cancer = checked["new_cancer"]
    return visit_record(actor=actor, visit=visit, mode=VisitMode.QUESTIONNAIRE, done_at=done_at, alive=alive == "yes",
                        response=Response.NE, new_malignancy={"yes": True, "no": False}.get(cancer["answer"]),
                        malignancy_description=cancer["detail"] if cancer["answer"] == "yes" else "",
                        answers=checked, reason=reason)


def _schedule_move(actor: User | None, referral: Referral, *, status: str, to: str, event: str, why: str) -> None:
    """Move the referral's visits of ``status`` to ``to`` with one ledger ``event`` (inside the caller's
    transaction): the planned visits close when the patient died (neither due nor missed), and the closed
    ones are planned again when that death was recorded in error."""
    visits = list(referral.visits.select_for_update().filter(status=status).order_by("day"))
    if not visits:
        return
    Visit.objects.filter(pk__in=[v.pk for v in visits]).update(status=to)
    _record(actor, event, referral, referral, why, old={"status": status},
            new={"status": to, "visits": [v.label for v in visits]})


def _close_schedule(actor: User | None, referral: Referral, why: str) -> None:
    _schedule_move(actor, referral, status=VisitStatus.PLANNED, to=VisitStatus.CLOSED,
                   event=PatientEvent.VISITS_CLOSED, why=why)


def _previous_day(visit: Visit) -> int:
    previous = (Visit.objects.filter(referral_id=visit.referral_id, day__lt=visit.day).order_by("-day")
                .values_list("day", flat=True).first())
    return previous or 0


def _visit_values(visit: Visit, *, mode: str, done_at: dt.datetime, alive: bool, response: str,
                  new_malignancy: bool | None, malignancy_description: str, persistence: str,
                  answers: Mapping[str, Any] | None) -> dict[str, Any]:
    """The checked values of a visit done (recorded or corrected); a ValidationError naming the field."""
    referral = visit.referral
    mode = _choice(mode, "mode", VisitMode, required=True)
    planned_mode = visit.mode if visit.status == VisitStatus.PLANNED else _planned_mode(visit)
    if mode not in _ALLOWED_MODES.get(planned_mode or VisitMode.IN_PERSON, {VisitMode.IN_PERSON.value}):
        raise ValidationError({"mode": f"{visit.label} is an examination in person; by phone or questionnaire "
                                       "only where the schedule plans it (the later years)."})
    done_at = _aware(done_at, "done_at", "time of the visit")
    if done_at > timezone.now() + CLOCK_SKEW:
        raise ValidationError({"done_at": "The visit's time is in the future; record a visit once it is done."})
    if referral.infused_at is not None and done_at < referral.infused_at:
        raise ValidationError({"done_at": "The visit's time is before the infusion "
                                          f"({referral.infused_at:%Y-%m-%d %H:%M} UTC)."})
    opens = visit.record_opens_on(_previous_day(visit))
    if done_at.astimezone(referral.patient.treating_site.tz).date() < opens:
        raise ValidationError({"done_at": f"{visit.label} is due on {visit.due_on:%Y-%m-%d}: a visit before "
                                          f"{opens:%Y-%m-%d} belongs to an earlier time point."})
    alive_ = _yes_no(alive, "alive", "the patient is alive", required=True)
    response = _choice(response, "response", Response)
    new_malignancy_ = _yes_no(new_malignancy, "new_malignancy", "a new malignancy was found")
    malignancy_description = text_checked(malignancy_description, "malignancy_description", "description of the new "
                                          "malignancy", 2000, required=bool(new_malignancy_))
    if malignancy_description and not new_malignancy_:
        raise ValidationError({"malignancy_description": "Describe a new malignancy only when one was found."})
    persistence = _choice(persistence, "persistence", Persistence)
    if mode == VisitMode.QUESTIONNAIRE and response not in ("", Response.NE):
        raise ValidationError({"response": "A questionnaire cannot evaluate the response; record NE "
                                           "(not evaluated) or leave it empty."})
    answers_ = questionnaire_checked(answers) if answers else {}
    if answers_ and mode == VisitMode.IN_PERSON:
        raise ValidationError({"answers": "A questionnaire's answers belong to a visit by questionnaire or phone."})
    return {"mode": mode, "done_at": done_at, "alive": alive_, "response": response,
            "new_malignancy": new_malignancy_, "malignancy_description": malignancy_description,
            "persistence": persistence, "answers": answers_}


def _planned_mode(visit: Visit) -> str:
    """How the schedule planned a visit already done (its recorded mode replaced the plan): in person for
    the examinations of the first five years, as the schedule it was planned from says."""
    version = followup_version(visit.referral, visit.referral.infused_at or timezone.now())
    points, _source = followup_schedule(version)
    return next((str(p.get("mode", VisitMode.IN_PERSON)) for p in points if p.get("day") == visit.day),
                VisitMode.IN_PERSON.value)


def visit_record(*, actor: User, visit: Visit, mode: str, done_at: dt.datetime, alive: bool,
                 response: str = "", new_malignancy: bool | None = None, malignancy_description: str = "",
                 persistence: str = "", answers: Mapping[str, Any] | None = None,
                 reason: str = "Follow-up visit recorded") -> Visit:
    """Record a planned follow-up visit as done (PAT-LTFU): survival, response, new malignancies and
    product persistence, and a questionnaire's answers. ``done_at`` is neither in the future nor before
    the infusion; a visit planned in person is recorded in person. A patient recorded as not alive closes
    the rest of the schedule."""
    _check_actor(actor, visit.referral)
    fields = _visit_values(visit, mode=mode, done_at=done_at, alive=alive, response=response,
                           new_malignancy=new_malignancy, malignancy_description=malignancy_description,
                           persistence=persistence, answers=answers)
    reason = reason_required(reason)
    with transaction.atomic():
        visit = Visit.objects.select_for_update().select_related("referral__patient__treating_site").get(pk=visit.pk)
        if visit.status != VisitStatus.PLANNED:
            raise ValidationError({"visit": f"{visit.label} is {visit.get_status_display().lower()} already."})
        old = {"status": visit.status, "mode": visit.mode}
        for name, value in fields.items():
            setattr(visit, name, value)
        visit.status = VisitStatus.DONE
        visit.recorded_by = actor
        visit.save()
        _record(actor, PatientEvent.VISIT_RECORDED, visit, visit.referral, reason, old=old,
                new={"status": visit.status, **fields})
        if fields["alive"] is False:
            _close_schedule(actor, visit.referral, f"The patient died: recorded at {visit.label} "
                                                   f"({fields['done_at']:%Y-%m-%d}).")
    return visit


def _json_ready(values: Mapping[str, Any]) -> dict[str, Any]:
    """Values as a correction row keeps them (dates and times as ISO text)."""
    return {k: (v.isoformat() if isinstance(v, dt.date | dt.datetime) else v) for k, v in values.items()}


def _check_corrector(actor: User, referral: Referral) -> None:
    """Only the treating hospital's physician corrects a recorded visit or adverse event (PAT-LTFU)."""
    require_perm(actor, Perm.FOLLOWUP_CORRECT, site=referral.patient.treating_site)


def _correction_reason(reason: str) -> str:
    return reason_required(text_checked(reason, "reason", "reason for the correction", 2000, required=True))


def visit_correct(*, actor: User, visit: Visit, mode: str, done_at: dt.datetime, alive: bool, response: str = "",
                  new_malignancy: bool | None = None, malignancy_description: str = "", persistence: str = "",
                  reason: str, credentials: SigningCredentials) -> FollowUpCorrection:
    """Correct a visit already recorded (ALCOA): the treating hospital's physician, with the reason and their
    signature (password). The values replaced are kept on a :class:`FollowUpCorrection` beside the visit
    (shown on the follow-up page) and in the ledger. The same checks as recording it; a questionnaire's
    answers stay as given. Corrected to "not alive", the visits still planned close; corrected back to
    "alive" (the death was recorded in error), the visits this record closed are planned again."""
    _check_corrector(actor, visit.referral)
    reason = _correction_reason(reason)
    if visit.status != VisitStatus.DONE:
        raise ValidationError({"visit": f"{visit.label} is {visit.get_status_display().lower()}: only a visit "
                                        "recorded as done is corrected."})
    fields = _visit_values(visit, mode=mode, done_at=done_at, alive=alive, response=response,
                           new_malignancy=new_malignancy, malignancy_description=malignancy_description,
                           persistence=persistence, answers=visit.answers or None)
    if not any(getattr(visit, name) != value for name, value in fields.items()):
        raise ValidationError({"visit": "Nothing changed: the values are those recorded."})
    proof = signing_authenticate(actor=actor, credentials=credentials)
    with transaction.atomic():
        visit = Visit.objects.select_for_update().select_related("referral__patient__treating_site",
                                                                 "referral__product").get(pk=visit.pk)
        if visit.status != VisitStatus.DONE:
            raise ValidationError({"visit": f"{visit.label} is {visit.get_status_display().lower()}: only a visit "
                                            "recorded as done is corrected."})
        old = {name: getattr(visit, name) for name in fields}
        changed = {name: value for name, value in fields.items() if old[name] != value}
        if not changed:
            raise ValidationError({"visit": "Nothing changed: the values are those recorded (corrected meanwhile?)."})
        for name, value in changed.items():
            setattr(visit, name, value)
        visit.save(update_fields=list(changed))
        correction = FollowUpCorrection.objects.create(
            visit=visit, old=_json_ready({name: old[name] for name in changed}), new=_json_ready(changed),
            reason=reason, corrected_by=actor, corrected_at=timezone.now())
        _record(actor, PatientEvent.VISIT_CORRECTED, visit, visit.referral, reason,
                old={name: old[name] for name in changed}, new={**changed, "correction": correction.pk})
        signature_apply(proof=proof, record=correction, meaning=Meaning.AUTHORED,
                        site=visit.referral.patient.treating_site, reason=reason)
        if changed.get("alive") is False:
            _close_schedule(actor, visit.referral, f"The patient died: corrected at {visit.label} "
                                                   f"({fields['done_at']:%Y-%m-%d}). {reason}")
        elif changed.get("alive") is True and old["alive"] is False:
            _schedule_move(actor, visit.referral, status=VisitStatus.CLOSED, to=VisitStatus.PLANNED,
                           event=PatientEvent.VISITS_REOPENED, why=f"Recorded in error as died at {visit.label}: "
                                                                   f"{reason}")
    return correction


def visit_miss(*, actor: User | None, visit: Visit, reason: str) -> Visit:
    """Mark a planned visit missed, with why (the navigator, or the daily job once its window has
    passed: ``actor=None``). A missed visit stays on the timeline, flagged."""
    referral = visit.referral
    _check_actor(actor, referral, system_allowed=True)
    reason = reason_required(text_checked(reason, "reason", "reason", 2000, required=True))
    with transaction.atomic():
        visit = Visit.objects.select_for_update().select_related("referral__patient__treating_site").get(pk=visit.pk)
        if visit.status != VisitStatus.PLANNED:
            raise ValidationError({"visit": f"{visit.label} is {visit.get_status_display().lower()} already."})
        visit.status = VisitStatus.MISSED
        visit.recorded_by = actor
        visit.save(update_fields=["status", "recorded_by"])
        _record(actor, PatientEvent.VISIT_MISSED, visit, visit.referral, reason,
                old={"status": VisitStatus.PLANNED}, new={"status": VisitStatus.MISSED, "due_on": visit.due_on})
    return visit


#: A planned visit is reminded to its hospital's navigators and physicians this many days before its day.
NOTICE_DAYS = 7


def visit_remind(*, visit: Visit, state: str, url: str, now: dt.datetime | None = None) -> VisitReminder | None:
    """Tell the treating hospital's navigators and physicians (those who record follow-up there) that a
    planned visit is due within :data:`NOTICE_DAYS` days or overdue: a notification in POCare (and an
    e-mail), naming the patient by pseudonym only. Once per visit and state: a second call (the daily job
    run again) tells no one and returns None. The daily job's work (``actor=None``)."""
    state = _choice(state, "state", ReminderState, required=True)
    now = now or timezone.now()
    with transaction.atomic():
        visit = Visit.objects.select_for_update().select_related("referral__patient__treating_site").get(pk=visit.pk)
        if visit.status != VisitStatus.PLANNED or visit.reminders.filter(state=state).exists():
            return None
        referral = visit.referral
        site = referral.patient.treating_site
        pseudonym = referral.patient.pseudonym
        if state == ReminderState.OVERDUE:
            closes = visit.due_on + dt.timedelta(days=visit.window_days)
            subject = f"Follow-up overdue: {pseudonym}, {visit.label} (due {visit.due_on:%Y-%m-%d}) at {site.code}"
            body = (f"The {visit.label} visit of patient {pseudonym} was due on {visit.due_on:%Y-%m-%d}. Its window "
                    f"closes on {closes:%Y-%m-%d}: record the visit, or mark it missed with the reason, before then.")
        else:
            subject = f"Follow-up due: {pseudonym}, {visit.label} on {visit.due_on:%Y-%m-%d} at {site.code}"
            body = (f"The {visit.label} visit of patient {pseudonym} is due on {visit.due_on:%Y-%m-%d} "
                    f"(± {visit.window_days} days, {visit.get_mode_display().lower()}).")
        reminder = VisitReminder.objects.create(visit=visit, state=state, sent_at=now)
        told = notice_send(subject=subject, body=body, url=url, site_perms=[(site, Perm.FOLLOWUP_RECORD)])
        reminder.recipients = len(told)
        reminder.save(update_fields=["recipients"])
        _record(None, PatientEvent.VISIT_REMINDED, visit, referral, f"Follow-up visit {state}: reminded",
                new={"state": state, "due_on": visit.due_on, "recipients": sorted(n.recipient.username for n in told)})
    return reminder


# --- adverse events ----------------------------------------------------------------------------------

#: Inputs an adverse event may carry (the grading's and, for other events, the CTCAE grade).
_MAX_INPUTS = 24


def adverse_event_grade(kind: str, inputs: Mapping[str, Any]) -> grading.Grade:
    """The grade of an adverse event of ``kind`` from ``inputs`` (CRS and ICANS by ASTCT; others the
    CTCAE grade given in ``inputs["grade"]``); a ValidationError naming the input otherwise."""
    kind = _choice(kind, "kind", AdverseEventKind, required=True)
    if not isinstance(inputs, Mapping) or len(inputs) > _MAX_INPUTS:
        raise ValidationError({"inputs": f"Give the inputs as an object of at most {_MAX_INPUTS} fields."})
    try:
        if kind == AdverseEventKind.CRS:
            return grading.crs_grade(inputs)
        if kind == AdverseEventKind.ICANS:
            return grading.icans_grade(inputs)
        return grading.ctcae_grade(inputs.get("grade"))
    except grading.GradingInputError as exc:
        raise ValidationError({exc.field: exc.message[:1].upper() + exc.message[1:]}) from None


def adverse_event_record(*, actor: User, referral: Referral, visit: Visit | None = None, kind: str, term: str = "",
                         onset_on: dt.date, inputs: Mapping[str, Any], serious: bool = False,
                         reason: str = "Adverse event recorded") -> AdverseEvent:
    """Record an adverse event after infusion (PAT-GRADE). CRS and ICANS are graded from ``inputs`` by
    the ASTCT consensus and the grade is stored with its reasons; another event takes its CTCAE term
    and grade (``inputs["grade"]``, 1–5). A serious event, or grade 3 or more, raises a quality signal
    for Control Site QA and the QP under the patient's pseudonym."""
    _check_actor(actor, referral)
    if visit is not None and visit.referral_id != referral.pk:
        raise ValidationError({"visit": "The visit belongs to another referral."})
    result = adverse_event_grade(kind, inputs)
    term = text_checked(term, "term", "term (CTCAE)", 200, required=kind == AdverseEventKind.OTHER)
    if not term:
        term = AdverseEventKind(kind).label
    if isinstance(onset_on, dt.datetime) or not isinstance(onset_on, dt.date):
        raise ValidationError({"onset_on": "Give the onset as a date (YYYY-MM-DD)."})
    if problem := bounds.datetime_problem(onset_on):
        raise ValidationError({"onset_on": f"The onset date: {problem}."})
    site = referral.patient.treating_site
    if onset_on > timezone.now().astimezone(site.tz).date():
        raise ValidationError({"onset_on": "The onset is in the future."})
    if referral.infused_at is None:
        raise ValidationError({"referral": "The referral has no infusion recorded; adverse events after infusion "
                                           "are recorded once the patient is infused."})
    if onset_on < referral.infused_at.astimezone(site.tz).date():
        raise ValidationError({"onset_on": "The onset is before the infusion "
                                           f"({referral.infused_at.astimezone(site.tz):%Y-%m-%d})."})
    serious_ = _yes_no(serious, "serious", "the event is serious") or False
    reason = reason_required(reason)
    with transaction.atomic():
        event = AdverseEvent.objects.create(
            referral=referral, visit=visit, kind=kind, term=term, onset_on=onset_on, inputs=dict(result.inputs),
            grade=result.grade, reasons=list(result.reasons), serious=serious_, recorded_by=actor,
            recorded_at=timezone.now())
        _record(actor, PatientEvent.ADVERSE_EVENT_RECORDED, event, referral, reason,
                new={"kind": kind, "term": term, "onset_on": onset_on, "inputs": dict(result.inputs),
                     "grade": result.grade, "reasons": list(result.reasons), "serious": serious_,
                     "visit": visit.label if visit is not None else None})
        if result.grade == 5:  # death (CTCAE grade 5; ASTCT has none beyond 4)
            _close_schedule(actor, referral, f"The patient died: {term}, grade 5, onset {onset_on:%Y-%m-%d}.")
        if serious_ or result.grade >= 3:
            _safety_signal(actor, event, fingerprint=f"adverse-event-{event.pk}")
    return event


def _safety_signal(actor: User, event: AdverseEvent, *, fingerprint: str, corrected: bool = False) -> None:
    """Raise the quality signal of a serious adverse event or one of grade 3 or more, for Control Site QA
    and the QP (pharmacovigilance), naming the pseudonym only."""
    referral = event.referral
    site = referral.patient.treating_site
    why = "serious" if event.serious else f"grade {event.grade}"
    safety_signal_raise(
        actor=actor, site=site, product=referral.product,
        rule="serious-adverse-event" if event.serious else f"{event.kind}-grade-{event.grade}",
        summary=f"{event.term}, grade {event.grade} ({why}){', on correction' if corrected else ''}, onset "
                f"{event.onset_on:%Y-%m-%d}, in patient {referral.patient.pseudonym} treated at {site.code} with "
                f"{referral.product.code}.",
        evidence={"pseudonym": referral.patient.pseudonym, "referral": referral.pk, "kind": event.kind,
                  "grade": event.grade, "serious": event.serious, "reasons": list(event.reasons),
                  "corrected": corrected},
        fingerprint=fingerprint)


def adverse_event_correct(*, actor: User, event: AdverseEvent, inputs: Mapping[str, Any], serious: bool,
                          term: str = "", reason: str, credentials: SigningCredentials) -> FollowUpCorrection:
    """Correct a recorded adverse event's inputs (and whether it is serious, and the term of another event):
    the treating hospital's physician, with the reason and their signature. The grade and its reasons are
    computed again from the corrected inputs, never typed (PAT-GRADE); the values replaced are kept on a
    :class:`FollowUpCorrection` and in the ledger. A correction that makes the event serious or of grade 3
    or more where it was neither raises the quality signal as a new event would; grade 5 closes the
    visits still planned."""
    referral = event.referral
    _check_corrector(actor, referral)
    reason = _correction_reason(reason)
    result = adverse_event_grade(event.kind, inputs)
    term = text_checked(term, "term", "term (CTCAE)", 200, required=event.kind == AdverseEventKind.OTHER)
    if not term:
        term = AdverseEventKind(event.kind).label
    serious_ = _yes_no(serious, "serious", "the event is serious") or False
    new = {"inputs": dict(result.inputs), "grade": result.grade, "reasons": list(result.reasons),
           "serious": serious_, "term": term}
    if all(getattr(event, name) == value for name, value in new.items()):
        raise ValidationError({"inputs": "Nothing changed: the inputs are those recorded."})
    proof = signing_authenticate(actor=actor, credentials=credentials)
    with transaction.atomic():
        event = AdverseEvent.objects.select_for_update().select_related(
            "referral__patient__treating_site", "referral__product").get(pk=event.pk)
        old = {name: getattr(event, name) for name in new}
        changed = {name: value for name, value in new.items() if old[name] != value}
        if not changed:
            raise ValidationError({"inputs": "Nothing changed: the inputs are those recorded (corrected meanwhile?)."})
        for name, value in changed.items():
            setattr(event, name, value)
        event.save(update_fields=list(changed))
        correction = FollowUpCorrection.objects.create(
            adverse_event=event, old={name: old[name] for name in changed}, new=changed, reason=reason,
            corrected_by=actor, corrected_at=timezone.now())
        _record(actor, PatientEvent.ADVERSE_EVENT_CORRECTED, event, event.referral, reason,
                old={name: old[name] for name in changed}, new={**changed, "correction": correction.pk})
        signature_apply(proof=proof, record=correction, meaning=Meaning.AUTHORED,
                        site=event.referral.patient.treating_site, reason=reason)
        if event.grade == 5 and old["grade"] != 5:
            _close_schedule(actor, event.referral, f"The patient died: {event.term}, grade 5 on correction, onset "
                                                   f"{event.onset_on:%Y-%m-%d}. {reason}")
        signalled_before = old["serious"] or old["grade"] >= 3
        if (event.serious or event.grade >= 3) and not signalled_before:
            _safety_signal(actor, event, fingerprint=f"adverse-event-{event.pk}-correction-{correction.pk}",
                           corrected=True)
    return correction
