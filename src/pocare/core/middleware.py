"""Refuses, before any view runs, request values no field may hold: NUL and lone surrogates, numbers
with more than 30 digits or outside a double's range, query values over 2,000 characters, and
bodies over the size limit. Dates are the forms' own fields' job (:mod:`pocare.core.fields`), so
their error shows beside the field; JSON bodies are checked by
:class:`pocare.core.parsers.BoundedJSONParser`."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.http.multipartparser import MultiPartParserError
from django.template.loader import render_to_string

from pocare.core import bounds


def _first_problem(data: QueryDict, max_chars: int | None = None) -> tuple[str, str] | None:
    for key, values in data.lists():
        problem = bounds.text_problem(key)
        if problem:
            return bounds.preview(key), problem
        for value in values:
            if max_chars is not None and len(value) > max_chars:
                return key, f"{len(value):,} characters is too long for a query value; at most {max_chars:,}"
            problem = bounds.form_value_problem(value)
            if problem:
                return key, problem
    return None


def refusal(request: HttpRequest, field: str, message: str, status: int = 400) -> HttpResponse:
    """The 4xx answer: JSON under /api/ (``{field: [message]}`` as DRF writes field errors, ``{"detail":
    message}`` for the request as a whole), an OperationOutcome under /fhir/ (docs/fhir.md), a page naming
    the field otherwise."""
    if request.path.startswith("/fhir/"):
        issue = {"severity": "error", "code": "too-long" if status == 413 else "invalid", "diagnostics": message,
                 "expression": [field]}
        return JsonResponse({"resourceType": "OperationOutcome", "issue": [issue]}, status=status,
                            content_type="application/fhir+json")
    if request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", ""):
        return JsonResponse({field: message if field == "detail" else [message]}, status=status)
    html = render_to_string("core/refused.html", {"field": field, "message": message, "status": status})
    return HttpResponse(html, status=status)


class InputBoundsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        problem = bounds.text_problem(request.path)
        if problem:
            return refusal(request, "path", problem)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if limit is not None and length > limit and request.content_type != "multipart/form-data":
            return refusal(request, "detail", f"The request body is larger than allowed: at most {limit:,} bytes.", 413)
        found = _first_problem(request.GET, bounds.MAX_QUERY_VALUE_CHARS)
        if found is None and request.method == "POST" and request.content_type in (
            "application/x-www-form-urlencoded", "multipart/form-data"):
            try:
                found = _first_problem(request.POST)
            except RequestDataTooBig:
                return refusal(request, "detail", f"The request body is larger than allowed: at most "
                                                  f"{limit or 0:,} bytes outside file uploads.", 413)
            except MultiPartParserError as exc:
                return refusal(request, "detail", f"The form data could not be read: {exc}")
            except TooManyFieldsSent:
                return refusal(request, "detail", "The request has more fields than allowed (at most 1,000).")
        if found is not None:
            return refusal(request, *found)
        return self.get_response(request)
