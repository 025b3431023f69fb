"""Downloads of the patient-facing documents (docs/patients.md): each in the patient's language (or
``?language=en|es|pt``), as a page (``?format=html``, the default) or a PDF (``?format=pdf``). They
carry the pseudonym only, so reading one is not a recorded reading of identifying data; GET writes
nothing. The questionnaire also has a web form the navigator fills in with the patient, and records as
the visit due by questionnaire."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.middleware.csrf import get_token
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from pocare.accounts.decorators import request_actor, requires
from pocare.accounts.roles import Perm
from pocare.patients import documents, followup, selectors
from pocare.patients.models import QUESTION_LABELS, QUESTIONS, Patient, Visit


def _patient(request: HttpRequest, pseudonym: str) -> Patient:
    patient = selectors.patient_visible(request.user, pseudonym)
    if patient is None:
        raise Http404("No patient of that pseudonym at a hospital whose patients you may see.")
    return patient


def _bad(message: str) -> HttpResponse:
    return HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")


@requires(Perm.PATIENTS_VIEW)
@require_GET
def document(request: HttpRequest, pseudonym: str, kind: str) -> HttpResponse:
    """One patient document: ``?format=html`` (default) or ``pdf``; ``?language=`` to print it in
    another of the patient's languages (not the consent, which is the text as signed)."""
    patient = _patient(request, pseudonym)
    fmt = request.GET.get("format", "html")
    if fmt not in ("html", "pdf"):
        return _bad("format: choose html or pdf.")
    try:
        language = documents.language_chosen(request.GET.get("language"), patient)
    except ValueError as exc:
        return _bad(str(exc))
    html = documents.document_html(kind, patient, language=None if kind == "consent" else language)
    if fmt == "html":
        return HttpResponse(html)
    try:
        body = documents.pdf(html)
    except (ImportError, OSError) as exc:
        return HttpResponse(f"PDF output is unavailable on this server ({exc}). Open the page and print it "
                            "from the browser.", status=503, content_type="text/plain")
    response = HttpResponse(body, content_type="application/pdf")
    response["Content-Disposition"] = (f'attachment; filename="{documents.KINDS[kind].filename}-'
                                       f'{patient.pseudonym}.pdf"')
    return response


@requires(Perm.PATIENTS_VIEW, write=Perm.FOLLOWUP_RECORD)
@require_http_methods(["GET", "POST"])
def questionnaire(request: HttpRequest, pseudonym: str) -> HttpResponseBase:
    """The follow-up questionnaire as a web form, in the patient's language, filled in by the navigator with
    the patient. POST checks the answers and reads them back; with ``record`` and ``confirm`` (ticked once
    the answers were read back), they are recorded as the planned visit due by questionnaire (its window
    open) and the follow-up page opens, reminding to record as adverse events what the answers report."""
    patient = _patient(request, pseudonym)
    today = timezone.localdate(timezone=patient.treating_site.tz)
    due = followup.questionnaire_visit(Visit.objects.filter(referral__patient=patient), today)
    extra: dict[str, Any] = {"web_form": True, "errors": {}, "recordable": due}
    status = 200
    if request.method == "POST":
        posted = {k: str(v)[: followup.DETAIL_MAX + 1] for k, v in request.POST.items()
                  if k not in ("csrfmiddlewaretoken", "record", "confirm")}
        try:
            answers = followup.questionnaire_checked(posted)
            if "record" in request.POST:
                if due is None:
                    raise ValidationError({"record": "No follow-up visit of this patient is due by questionnaire "
                                                     "now (a visit in person, or none whose window is open)."})
                if request.POST.get("confirm") != "1":  # the answers read back first: recording is final
                    raise ValidationError({"confirm": "Check the answers, read them back to the patient and tick "
                                                      "the confirmation before recording them."})
                followup.questionnaire_record(actor=request_actor(request), visit=due, answers=answers,
                                              done_at=timezone.now())
                messages.success(request, _("%(label)s recorded from the questionnaire.") % {"label": _(due.label)})
                if reported := [q for q in followup.ADVERSE_QUESTIONS if answers[q]["answer"] == "yes"]:
                    messages.warning(request, _("The answers report %(what)s: record each event as an adverse "
                                                "event, so that it is graded (and reaches Control Site QA and the "
                                                "QP if serious).") % {
                        "what": ", ".join(_(QUESTION_LABELS[q]).lower() for q in reported)})
                return redirect(reverse("patients:followup", args=[patient.pseudonym]) + f"#visit-{due.pk}")
            extra["checked"] = True
        except ValidationError as exc:
            extra["errors"], status = exc.message_dict, 400
            extra["checked"] = set(exc.message_dict) == {"confirm"}  # complete answers: offer the tick again
        extra["questions"] = [{"name": q, "answer": posted.get(q, ""),
                               "detail": posted.get(f"{q}_detail", "")[: followup.DETAIL_MAX]}
                              for q in QUESTIONS]
    extra["csrf_token"] = get_token(request)
    return HttpResponse(documents.document_html("questionnaire", patient, **extra), status=status)
