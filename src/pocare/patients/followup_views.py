"""The follow-up pages (PAT-LTFU, PAT-GRADE): the patient's timeline, a visit's form, and the adverse-event
form with the grade computed as it is typed (htmx: the same view renders the grade fragment). Views parse
input and call the services; patients are named by pseudonym only."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from pocare.accounts.decorators import request_actor, requires
from pocare.accounts.roles import Perm
from pocare.core.forms import apply_validation_error
from pocare.ledger.signing import SigningRefused, signing_needs_user_id
from pocare.patients import followup, followup_selectors
from pocare.patients.followup_forms import (
    AdverseEventCorrectForm,
    AdverseEventForm,
    MissForm,
    VisitCorrectForm,
    VisitForm,
    yes_no,
)
from pocare.patients.models import AdverseEventKind, Patient, Referral, VisitStatus


def _recordable(request: HttpRequest, pseudonym: str) -> Patient:
    """The patient if the person records follow-up at the patient's hospital; 404 otherwise."""
    patient = followup_selectors.patient_for(request.user, pseudonym)
    if not followup_selectors.may_record(request.user, patient):
        raise Http404("No such patient of yours.")
    return patient


@requires(Perm.PATIENTS_VIEW)
@require_http_methods(["GET"])
def followup_timeline(request: HttpRequest, pseudonym: str) -> HttpResponse:
    """The patient's follow-up: each infused referral's visits (overdue and missed flagged) and adverse
    events with their grade and its reasons."""
    patient = followup_selectors.patient_for(request.user, pseudonym)
    return render(request, "patients/followup.html", {
        "patient": patient, "timelines": followup_selectors.timelines(request.user, patient),
        "may_record": followup_selectors.may_record(request.user, patient),
        "may_correct": followup_selectors.may_correct(request.user, patient)})


@requires(Perm.FOLLOWUP_RECORD)
@require_http_methods(["GET", "POST"])
def followup_visit(request: HttpRequest, pseudonym: str, pk: int) -> HttpResponseBase:
    """Record a planned visit as done (``action=record``) or missed (``action=miss``); the treating
    physician corrects a visit recorded as done (``action=correct``), with the reason and a signature."""
    patient = _recordable(request, pseudonym)
    visit = followup_selectors.visit_for(request.user, patient, pk)
    tz = patient.treating_site.tz
    action = request.POST.get("action", "record") if request.method == "POST" else ""
    done = visit.status == VisitStatus.DONE
    may_correct = done and followup_selectors.may_correct(request.user, patient)
    if action == "correct" and not may_correct:
        if not done:
            raise Http404("Only a visit recorded as done is corrected.")
        raise PermissionDenied("The treating hospital's physician corrects a recorded visit.")
    with timezone.override(tz):
        form: VisitForm | None = None
        if done and may_correct:
            initial = {"mode": visit.mode, "done_at": visit.done_at, "alive": "yes" if visit.alive else "no",
                       "response": visit.response, "persistence": visit.persistence,
                       "new_malignancy": {True: "yes", False: "no"}.get(visit.new_malignancy, ""),  # type: ignore[arg-type]
                       "malignancy_description": visit.malignancy_description, "reason": ""}
            form = VisitCorrectForm(request.POST if action == "correct" else None, initial=initial,
                                    ask_user_id=signing_needs_user_id(request))
        elif not done:
            form = VisitForm(request.POST if action == "record" else None,
                             initial={"mode": visit.mode or "in_person", "alive": "yes"})
        miss_form = MissForm(request.POST if action == "miss" else None, auto_id="id_miss_%s")
        if action in ("record", "correct") and form is not None and form.is_valid():
            data = form.cleaned_data
            values = {"mode": data["mode"], "done_at": data["done_at"], "alive": data["alive"],
                      "response": data["response"], "new_malignancy": yes_no(data["new_malignancy"]),
                      "malignancy_description": data["malignancy_description"], "persistence": data["persistence"],
                      "reason": data["reason"]}
            try:
                if isinstance(form, VisitCorrectForm):
                    followup.visit_correct(actor=request_actor(request), visit=visit,
                                           credentials=form.credentials(request.session), **values)
                    said = _("%(label)s corrected and signed; the values replaced are kept beside it.")
                else:
                    followup.visit_record(actor=request_actor(request), visit=visit, **values)
                    said = _("%(label)s recorded.")
            except SigningRefused as exc:
                if isinstance(form, VisitCorrectForm):
                    form.show_refusal(exc)
            except ValidationError as exc:
                apply_validation_error(form, exc)
            else:
                messages.success(request, said % {"label": _(visit.label)})
                return redirect(reverse("patients:followup", args=[patient.pseudonym]) + f"#visit-{visit.pk}")
        elif action == "miss" and miss_form.is_valid():
            try:
                followup.visit_miss(actor=request_actor(request), visit=visit, reason=miss_form.cleaned_data["reason"])
            except ValidationError as exc:
                apply_validation_error(miss_form, exc)
            else:
                messages.success(request, _("%(label)s marked missed.") % {"label": _(visit.label)})
                return redirect("patients:followup", pseudonym=patient.pseudonym)
    visit.state = followup_selectors.visit_state(visit, timezone.localdate(timezone=tz))  # type: ignore[attr-defined]
    return render(request, "patients/followup_visit.html",
                  {"patient": patient, "visit": visit, "form": form, "miss_form": miss_form,
                   "may_correct": may_correct, "corrections": followup_selectors.corrections_of(visit),
                   "adverse_events": visit.adverse_events.order_by("onset_on", "pk")},
                  status=400 if request.method == "POST" else 200)


def _ae_form(request: HttpRequest, referral: Referral, data: object = None) -> AdverseEventForm:
    visits = [(v.pk, f"{v.label} ({v.due_on:%Y-%m-%d})") for v in referral.visits.order_by("day")]
    return AdverseEventForm(data, visits=visits, initial={"oxygen_device": "none", "consciousness": "alert",
                                                          "seizure": "none", "motor": "none", "raised_icp": "none"})


def _groups(form: AdverseEventForm) -> list[tuple[str, list[object]]]:
    """The form's fields by what they describe, for the page's fieldsets."""
    return [(_("Event"), [form[n] for n in ("kind", "visit", "onset_on", "term", "serious")]),
            (_("CRS: fever, hypotension, hypoxia"), [form[n] for n in form.CRS]),
            (_("ICANS: ICE score and neurological findings"), [form[n] for n in form.ICANS]),
            (_("Another event"), [form["ctcae_grade"]])]


def _grade_errors(form: AdverseEventForm, exc: ValidationError) -> None:
    renamed = {("ctcae_grade" if field == "grade" else field): errors for field, errors in exc.message_dict.items()}
    apply_validation_error(form, ValidationError(renamed))


@requires(Perm.FOLLOWUP_RECORD)
@require_http_methods(["GET", "POST"])
def adverse_event_new(request: HttpRequest, pseudonym: str, referral: int) -> HttpResponseBase:
    """Record an adverse event of an infused referral. With ``HX-Request`` and ``preview`` (GET), only the
    computed grade and its reasons are rendered from the inputs typed so far; nothing is stored."""
    patient = _recordable(request, pseudonym)
    found = patient.referrals.filter(pk=referral, infused_at__isnull=False).select_related("product").first()
    if found is None:
        raise Http404("No infused referral of this patient.")
    tz = patient.treating_site.tz
    if request.method == "GET" and "preview" in request.GET:
        form = _ae_form(request, found, request.GET)
        for name in ("reason", "onset_on"):  # the preview grades; what it does not need may still be empty
            form.fields[name].required = False
        grade = None
        if form.is_valid():
            try:
                grade = followup.adverse_event_grade(form.cleaned_data["kind"], form.inputs())
            except ValidationError as exc:
                _grade_errors(form, exc)
        template = "patients/_grade.html" if request.headers.get("HX-Request") else "patients/adverse_event.html"
        return render(request, template, {"patient": patient, "referral": found, "form": form, "grade": grade,
                                          "groups": _groups(form)})
    form = _ae_form(request, found, request.POST if request.method == "POST" else None)
    with timezone.override(tz):
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            visit = found.visits.filter(pk=data["visit"]).first() if data["visit"] else None
            try:
                event = followup.adverse_event_record(
                    actor=request_actor(request), referral=found, visit=visit, kind=data["kind"], term=data["term"],
                    onset_on=data["onset_on"], inputs=form.inputs(), serious=data["serious"], reason=data["reason"])
            except ValidationError as exc:
                _grade_errors(form, exc)
            else:
                messages.success(request, _("%(term)s recorded: grade %(grade)s.") % {"term": event.term,
                                                                                     "grade": event.grade})
                return redirect(reverse("patients:followup", args=[patient.pseudonym]) + f"#adverse-event-{event.pk}")
    grade = None
    if request.method == "POST" and form.is_valid():  # refused: show the grade of what was typed, if any
        try:
            grade = followup.adverse_event_grade(form.cleaned_data["kind"], form.inputs())
        except ValidationError:
            grade = None
    return render(request, "patients/adverse_event.html",
                  {"patient": patient, "referral": found, "form": form, "grade": grade, "groups": _groups(form)},
                  status=400 if request.method == "POST" else 200)


@requires(Perm.FOLLOWUP_CORRECT)
@require_http_methods(["GET", "POST"])
def adverse_event_correct(request: HttpRequest, pseudonym: str, pk: int) -> HttpResponseBase:
    """The treating physician corrects a recorded adverse event's inputs, with the reason and a signature;
    the grade is computed again (the preview shows it as the inputs are typed, like recording)."""
    patient = followup_selectors.patient_for(request.user, pseudonym)
    if not followup_selectors.may_correct(request.user, patient):
        raise Http404("No such patient of yours.")
    event = followup_selectors.adverse_event_for(request.user, patient, pk)
    initial = {**{k: v for k, v in event.inputs.items() if k != "grade"}, "serious": event.serious,
               "term": event.term,
               "ctcae_grade": event.inputs.get("grade", "") if event.kind == AdverseEventKind.OTHER else ""}
    posted = request.POST if request.method == "POST" else (request.GET if "preview" in request.GET else None)
    form = AdverseEventCorrectForm(posted, kind=event.kind, initial=initial,
                                   ask_user_id=signing_needs_user_id(request))
    grade = None
    if request.method == "GET" and "preview" in request.GET:
        for name in ("reason", "password", "username"):  # the preview grades; the rest may still be empty
            if name in form.fields:
                form.fields[name].required = False
        if form.is_valid():
            try:
                grade = followup.adverse_event_grade(event.kind, form.inputs())
            except ValidationError as exc:
                _grade_errors(form, exc)
        if request.headers.get("HX-Request"):
            return render(request, "patients/_grade.html", {"form": form, "grade": grade})
    elif request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            followup.adverse_event_correct(actor=request_actor(request), event=event, inputs=form.inputs(),
                                           serious=data["serious"], term=data["term"], reason=data["reason"],
                                           credentials=form.credentials(request.session))
        except SigningRefused as exc:
            form.show_refusal(exc)
        except ValidationError as exc:
            _grade_errors(form, exc)
        else:
            event.refresh_from_db()
            messages.success(request, _("%(term)s corrected and signed: grade %(grade)s.") % {
                "term": event.term, "grade": event.grade})
            return redirect(reverse("patients:followup", args=[patient.pseudonym]) + f"#adverse-event-{event.pk}")
    if grade is None and form.is_bound and form.is_valid():
        try:
            grade = followup.adverse_event_grade(event.kind, form.inputs())
        except ValidationError:
            grade = None
    groups = [(_("Event"), [form[n] for n in ("term", "serious")])]
    if event.kind == AdverseEventKind.CRS:
        groups.append((_("CRS: fever, hypotension, hypoxia"), [form[n] for n in form.CRS]))
    elif event.kind == AdverseEventKind.ICANS:
        groups.append((_("ICANS: ICE score and neurological findings"), [form[n] for n in form.ICANS]))
    else:
        groups.append((_("Another event"), [form["ctcae_grade"]]))
    return render(request, "patients/adverse_event_correct.html",
                  {"patient": patient, "event": event, "form": form, "grade": grade, "groups": groups,
                   "corrections": followup_selectors.corrections_of(event)},
                  status=400 if request.method == "POST" else 200)
