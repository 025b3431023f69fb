"""The pages of a shipment's logged temperatures: every reading with its correction beside it, and
the form that corrects one or marks it invalid (CH4-9). Views parse and call services; kept apart
from views.py so the order pages stay as they are."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from pocare.accounts.decorators import request_actor, requires
from pocare.accounts.roles import Perm
from pocare.core.forms import apply_validation_error
from pocare.custody import selectors, services
from pocare.custody.models import TemperatureReading
from pocare.ledger.forms import ReadingCorrectionForm
from pocare.ledger.signing import SigningRefused, signing_needs_user_id

READINGS_PER_PAGE = 200


@requires(Perm.CUSTODY_VIEW)
@require_GET
def shipment_readings(request: HttpRequest, pk: int) -> HttpResponse:
    """Every logged temperature of a shipment, a page at a time, with the corrections."""
    shipment = get_object_or_404(selectors.shipments_visible(request.user), pk=pk)
    page = Paginator(selectors.readings_of(shipment), READINGS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "custody/readings.html", {
        "shipment": shipment, "order": shipment.order, "page": page,
        "corrections": selectors.corrections_of(shipment),
        "may_correct": selectors.may_record(request.user, shipment.order)})


@requires(Perm.CUSTODY_VIEW, write=Perm.CUSTODY_RECORD)
@require_http_methods(["GET", "POST"])
def temperature_correct(request: HttpRequest, pk: int) -> HttpResponse:
    """Correct a logged temperature, or mark it invalid: the original stays, the correction beside it."""
    reading: TemperatureReading = get_object_or_404(
        TemperatureReading.objects.select_related("shipment__order__site", "upload"), pk=pk,
        # A correction is looked up among the shipments the person may record at (404 elsewhere).
        shipment__in=selectors.shipments_visible(
            request.user, Perm.CUSTODY_RECORD if request.method == "POST" else Perm.CUSTODY_VIEW))
    form = ReadingCorrectionForm(request.POST or None,
                                 ask_user_id=signing_needs_user_id(request))
    if request.method == "POST" and form.is_valid():
        try:
            services.temperature_correct(
                actor=request_actor(request), reading=reading,
                celsius=None if form.cleaned_data["invalid"] else form.cleaned_data["value"],
                reason=form.cleaned_data["reason"], credentials=form.credentials(request.session))
        except SigningRefused as exc:
            form.show_refusal(exc)
        except ValidationError as exc:
            apply_validation_error(form, exc)
        else:
            messages.success(request, "Correction recorded and signed; the original reading is kept beside it.")
            return redirect(reverse("custody:shipment_readings", args=[reading.shipment_id]))
    return render(request, "custody/correct_reading.html", {"reading": reading, "shipment": reading.shipment,
                                                            "order": reading.shipment.order, "form": form},
                  status=400 if request.method == "POST" else 200)
