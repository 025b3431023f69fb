"""The identity panel of a patient (PAT-PRIVACY): for the treating hospital's physician and navigator
only. GET shows the pseudonym and what may be done, never the data; "Show identifying data" is a POST
because each reading is a ledger event. Correction and erasure on request (GDPR Art. 17) go through
the services, with a reason. Views parse input and call services."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from pocare.accounts.decorators import request_actor, requires
from pocare.accounts.roles import Perm
from pocare.patients import selectors, services
from pocare.patients.identity import Identity
from pocare.patients.models import Patient

#: Bounds of what the panel's form sends (the service checks the plausibility of each field).
_MAX = {"name": 200, "birth_date": 10, "contact": 200, "address": 400, "reason": 1000}


def _patient(request: HttpRequest, pseudonym: str) -> Patient:
    patient = selectors.patient_visible(request.user, pseudonym, Perm.PATIENTS_IDENTIFY)
    if patient is None:
        raise Http404("No patient of that pseudonym at a hospital where you may identify patients.")
    return patient


def _posted(request: HttpRequest, field: str) -> str:
    return request.POST.get(field, "")[: _MAX[field] + 1]  # one more: the service says what is allowed


def _panel(request: HttpRequest, patient: Patient, *, status: int = 200, **context: Any) -> HttpResponse:
    return render(request, "patients/identity.html", {"patient": patient, "errors": {}, **context}, status=status)


@requires(Perm.PATIENTS_IDENTIFY, recorded_read=True)
@require_http_methods(["GET", "POST"])
def identity(request: HttpRequest, pseudonym: str) -> HttpResponseBase:
    """GET: the panel, without the data. POST ``action=show``: the data, recorded as viewed;
    ``action=change`` with the fields and a reason: the correction (the event names the fields)."""
    patient = _patient(request, pseudonym)
    if request.method != "POST":
        return _panel(request, patient)
    action = request.POST.get("action", "")
    try:
        if action == "show":
            shown = services.patient_identity_view(actor=request_actor(request), patient=patient)
            return _panel(request, patient, identity=shown)
        if action == "change":
            posted = Identity(**{f: _posted(request, f) for f in services.IDENTITY_FIELDS})
            changed = services.patient_identity_change(actor=request_actor(request), patient=patient,
                                                       identity=posted, reason=_posted(request, "reason"))
            messages.success(request, f"Changed: {', '.join(changed)}." if changed else "Nothing was changed.")
            return redirect("patients:identity", pseudonym=patient.pseudonym)
    except ValidationError as exc:
        # The form comes back with what was typed, so the person corrects it (no new reading recorded).
        typed = Identity(**{f: _posted(request, f)[: _MAX[f]] for f in services.IDENTITY_FIELDS})
        return _panel(request, patient, identity=typed if action == "change" else None,
                      errors=exc.message_dict, status=400)
    return _panel(request, patient, errors={"action": [f"{action[:20]!r} is not an action; use show or change."]},
                  status=400)


@requires(Perm.PATIENTS_IDENTIFY)
@require_http_methods(["GET", "POST"])
def identity_erase(request: HttpRequest, pseudonym: str) -> HttpResponseBase:
    """GET: what erasure does, and the confirmation (the pseudonym typed again and the reason).
    POST: the erasure."""
    patient = _patient(request, pseudonym)
    if request.method != "POST":
        return render(request, "patients/identity_erase.html", {"patient": patient, "errors": {}})
    errors: dict[str, list[str]] = {}
    if request.POST.get("confirm", "")[:21].strip().upper() != patient.pseudonym:
        errors["confirm"] = [f"Type the pseudonym {patient.pseudonym} to confirm the erasure."]
    else:
        try:
            services.patient_identity_erase(actor=request_actor(request), patient=patient,
                                            reason=_posted(request, "reason"))
        except ValidationError as exc:
            errors = exc.message_dict
    if errors:
        return render(request, "patients/identity_erase.html", {"patient": patient, "errors": errors,
                                                                "reason": _posted(request, "reason")[:1000]},
                      status=400)
    messages.success(request, f"{patient.pseudonym}'s identifying data are erased; the pseudonym and its "
                              "records stay.")
    return redirect("patients:identity", pseudonym=patient.pseudonym)
