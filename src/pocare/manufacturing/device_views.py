"""The batch record's device panel: a live chart per monitored parameter and the alarm list with
acknowledgement (A11-ALARM). One view renders the whole page or, for HTMX, only the fragment that
the batch page polls (``hx-get`` with ``hx-trigger="load, every 15s"``)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from pocare.accounts import selectors as access
from pocare.accounts.decorators import request_actor, requires
from pocare.accounts.roles import Perm
from pocare.core.forms import apply_validation_error
from pocare.ledger.forms import ReadingCorrectionForm
from pocare.ledger.signing import SigningRefused, signing_needs_user_id
from pocare.manufacturing import devices
from pocare.manufacturing.charts import parameter_chart_svg
from pocare.manufacturing.models import Batch, DeviceReading
from pocare.manufacturing.selectors import batches_visible

PANEL = "manufacturing/device/_panel.html"
PAGE = "manufacturing/device/batch_device.html"
READINGS_PER_PAGE = 200


class AcknowledgeForm(forms.Form):
    comment = forms.CharField(
        max_length=2000, widget=forms.Textarea(attrs={"rows": 2}), label="Comment",
        help_text="What you checked or did. Kept with your name and the time in the audit trail.")
    raise_deviation = forms.BooleanField(required=False, label="Raise a deviation for this alarm")


def _ack_form(alarm_pk: int, data: Any = None) -> AcknowledgeForm:
    return AcknowledgeForm(data, auto_id=f"id_ack{alarm_pk}_%s")


def _is_htmx(request: HttpRequest) -> bool:
    return bool(request.headers.get("HX-Request"))


def _render(request: HttpRequest, batch: Batch, *, status: int = 200, bound: dict[int, AcknowledgeForm] | None = None,
            notice: str = "") -> HttpResponse:
    """The panel (HTMX) or the page around it, with any bound form in place of its empty one."""
    user = request.user
    site = batch.site
    parameters = devices.monitoring_of(batch)
    by_id = {p.id: p for p in parameters}
    series = devices.series_of(batch, by_id)
    alarms = list(devices.alarms_of(user, batch))
    labels = {a.pk: f"A{n}" for n, a in enumerate(sorted(alarms, key=lambda a: (a.raised_at, a.pk)), 1)}
    charts = []
    for p in parameters:
        points = series[p.id]
        marks = [(a.raised_at, labels[a.pk], a.acknowledged_at is not None) for a in alarms if a.parameter_id == p.id]
        svg = parameter_chart_svg(points, alarm_min=p.alarm_min, alarm_max=p.alarm_max, name=p.name, unit=p.unit,
                                  alarms=marks, tz=site.tz)
        charts.append({"parameter": p, "svg": mark_safe(svg),  # noqa: S308 (every text in it is escaped)
                       "readings": len(points), "outside": sum(1 for pt in points if pt[2])})
    may_ack = access.has_perm(user, Perm.ALARM_ACK, site_id=site.pk) and not access.is_read_only(user)
    bound = bound or {}
    rows = [{"alarm": a, "label": labels[a.pk], "parameter": by_id.get(a.parameter_id),
             "form": (bound.get(a.pk) or _ack_form(a.pk)) if may_ack and a.acknowledged_at is None else None}
            for a in alarms]
    context = {
        "batch": batch, "site": site, "charts": charts, "alarms": rows, "may_ack": may_ack,
        "open_alarms": sum(1 for a in alarms if a.acknowledged_at is None), "now": timezone.now(),
        "notice": notice, "panel": PANEL, "invalid": devices.invalid_readings_of(batch),
    }
    response = render(request, PANEL if _is_htmx(request) else PAGE, context, status=status)
    patch_vary_headers(response, ["HX-Request"])  # one URL, two renderings: caches must tell them apart
    return response


def _visible_batch(request: HttpRequest, reference: str) -> Batch:
    batch: Batch = get_object_or_404(batches_visible(request.user), reference=reference)
    return batch


@requires(Perm.BATCH_VIEW, write=Perm.ALARM_ACK)
@require_GET
def batch_device(request: HttpRequest, reference: str) -> HttpResponse:
    """Device data and alarms of a batch: the live charts and the alarm list."""
    return _render(request, _visible_batch(request, reference))


@requires(Perm.BATCH_VIEW, write=Perm.ALARM_ACK)
@require_POST
def alarm_acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    """Acknowledge an alarm with a comment, optionally raising a deviation."""
    alarm = get_object_or_404(devices.alarms_visible(request.user), pk=pk)
    batch = _visible_batch(request, alarm.batch.reference)
    form = _ack_form(alarm.pk, request.POST)
    if form.is_valid():
        try:
            alarm = devices.alarm_acknowledge(actor=request_actor(request), alarm=alarm, **form.cleaned_data)
        except ValidationError as exc:
            apply_validation_error(form, exc)
        else:
            done = (f"Alarm on {alarm.parameter_id} acknowledged; recorded in the audit trail"
                    + (f"; deviation {alarm.deviation.reference} opened." if alarm.deviation else "."))
            if _is_htmx(request):
                return _render(request, batch, notice=done)
            messages.success(request, done)
            return redirect(reverse("manufacturing:batch_device", args=[batch.reference]))
    # HTMX swaps a 422 into the panel (the form says so in hx-on::before-swap); a plain POST gets a 400.
    return _render(request, batch, status=422 if _is_htmx(request) else 400, bound={alarm.pk: form})


@requires(Perm.BATCH_VIEW)
@require_GET
def batch_readings(request: HttpRequest, reference: str) -> HttpResponse:
    """Every device reading of a batch, a page at a time, each with its correction beside it."""
    batch = _visible_batch(request, reference)
    parameters = devices.monitoring_of(batch)
    chosen = request.GET.get("parameter", "")
    readings = devices.readings_of(request.user, batch, parameter=chosen if chosen in {p.id for p in parameters}
                                   else None)
    page = Paginator(readings, READINGS_PER_PAGE).get_page(request.GET.get("page"))
    may_correct = access.has_perm(request.user, Perm.BATCH_EXECUTE, site_id=batch.site_id) \
        and not access.is_read_only(request.user)
    by_id = {p.id: p for p in parameters}
    return render(request, "manufacturing/device/readings.html", {
        "batch": batch, "site": batch.site, "parameters": parameters, "chosen": chosen, "page": page,
        "rows": [(r, by_id.get(r.parameter_id)) for r in page], "may_correct": may_correct,
        "corrections": [(c, by_id.get(c.reading.parameter_id)) for c in devices.corrections_of(request.user, batch)]})


@requires(Perm.BATCH_VIEW, write=Perm.BATCH_EXECUTE)
@require_http_methods(["GET", "POST"])
def reading_correct(request: HttpRequest, pk: int) -> HttpResponse:
    """Correct a device reading, or mark it invalid: the original stays, the correction beside it."""
    reading: DeviceReading = get_object_or_404(
        DeviceReading.objects.select_related("batch__site", "push"), pk=pk,
        batch__in=batches_visible(request.user))
    form = ReadingCorrectionForm(request.POST or None,
                                 ask_user_id=signing_needs_user_id(request))
    if request.method == "POST" and form.is_valid():
        try:
            devices.reading_correct(actor=request_actor(request), reading=reading,
                                    value=None if form.cleaned_data["invalid"] else form.cleaned_data["value"],
                                    reason=form.cleaned_data["reason"], credentials=form.credentials(request.session))
        except SigningRefused as exc:
            form.show_refusal(exc)
        except ValidationError as exc:
            apply_validation_error(form, exc)
        else:
            messages.success(request, "Correction recorded and signed; the original reading is kept beside it.")
            return redirect(reverse("manufacturing:batch_readings", args=[reading.batch.reference])
                            + f"?parameter={reading.parameter_id}")
    parameter = {p.id: p for p in devices.monitoring_of(reading.batch)}.get(reading.parameter_id)
    return render(request, "manufacturing/device/correct_reading.html",
                  {"reading": reading, "batch": reading.batch, "parameter": parameter, "form": form},
                  status=400 if request.method == "POST" else 200)
