"""Downloads of the patient-facing documents (docs/patients.md): each in the patient's language (or
``?language=en|es|pt``), as a page (``?format=html``, the default) or a PDF (``?format=pdf``). They
carry the pseudonym only, so reading one is not a recorded reading of identifying data; GET writes
nothing. The questionnaire also has a web form the navigator fills in with the patient."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.views.decorators.http import require_GET, require_http_methods

from pocare.accounts.decorators import requires
from pocare.accounts.roles import Perm
from pocare.core import bounds
from pocare.patients import documents, selectors
from pocare.patients.models import Patient


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


#: Bounds of the web questionnaire's answers.
_ANSWERS = ("yes", "no", "unknown")
_DETAIL_MAX = 1000


def questionnaire_answers(data: dict[str, str]) -> dict[str, dict[str, str]]:
    """The questionnaire's answers, each yes/no/unknown with optional details, checked and bounded;
    ValidationError naming the question otherwise."""
    answers: dict[str, dict[str, str]] = {}
    errors: dict[str, str] = {}
    for q in documents.QUESTIONS:
        answer = str(data.get(q, ""))
        detail = str(data.get(f"{q}_detail", "")).strip()
        if answer not in _ANSWERS:
            errors[q] = f"Answer {', '.join(_ANSWERS)}."
        elif len(detail) > _DETAIL_MAX or (problem := bounds.text_problem(detail)):
            errors[f"{q}_detail"] = (f"The details have at most {_DETAIL_MAX} characters." if len(detail) > _DETAIL_MAX
                                     else f"The details: {problem}.")
        else:
            answers[q] = {"answer": answer, "detail": detail}
    if errors:
        raise ValidationError(errors)
    return answers


@requires(Perm.PATIENTS_VIEW, write=Perm.FOLLOWUP_RECORD)
@require_http_methods(["GET", "POST"])
def questionnaire(request: HttpRequest, pseudonym: str) -> HttpResponse:
    """The follow-up questionnaire as a web form (GET), in the patient's language; POST checks the
    answers and reads them back. Storing them as a questionnaire visit is the follow-up pages' work
    (docs/patients.md); nothing is written here."""
    patient = _patient(request, pseudonym)
    extra: dict[str, Any] = {"web_form": True, "errors": {}, "answers": {}}
    status = 200
    if request.method == "POST":
        posted = {k: str(v)[: _DETAIL_MAX + 1] for k, v in request.POST.items() if k != "csrfmiddlewaretoken"}
        try:
            extra["answers"] = questionnaire_answers(posted)
            extra["checked"] = True
        except ValidationError as exc:
            extra["errors"], status = exc.message_dict, 400
            extra["answers"] = {q: {"answer": posted.get(q, ""), "detail": posted.get(f"{q}_detail", "")[:_DETAIL_MAX]}
                                for q in documents.QUESTIONS}
    extra["csrf_token"] = get_token(request)
    return HttpResponse(documents.document_html("questionnaire", patient, **extra), status=status)
