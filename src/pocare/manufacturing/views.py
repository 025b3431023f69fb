"""The batch record pages: batches, one batch (timeline, steps with their data and signatures,
custody chain, QC panel, device charts), review by exception, the step being executed, corrections,
QC results and material lots. Views parse input and call services; selectors decide what is seen."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.forms import Form
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from pocare.accounts import selectors as access
from pocare.accounts.decorators import request_actor, requires
from pocare.accounts.roles import Perm
from pocare.core.forms import apply_validation_error
from pocare.core.listing import render_list
from pocare.ledger.signing import SigningRefused, signing_needs_user_id
from pocare.manufacturing import derived, forms, selectors, services
from pocare.manufacturing.filters import BATCH_COLUMNS, LOT_COLUMNS, BatchFilter, LotFilter
from pocare.manufacturing.models import Batch, LotStatus, QcResult, StepValue


def _batch(request: HttpRequest, reference: str) -> Batch:
    try:
        return selectors.batch_for(request.user, reference)
    except Batch.DoesNotExist:
        raise Http404("No such batch.") from None


def _show_error(form: Form, exc: ValidationError, mapper: Any = None) -> None:
    """A service's refusal on the form: on the field it names where the form has one."""
    if mapper is not None and hasattr(exc, "error_dict"):
        for key, errors in exc.message_dict.items():
            target = mapper(key)
            for message in errors:
                form.add_error(target if target in form.fields else None, message)
        return
    apply_validation_error(form, exc)


@requires(Perm.BATCH_VIEW)
@require_GET
def batches(request: HttpRequest) -> HttpResponseBase:
    """Batches at the person's sites: searched, filtered, sorted, paged, exported (pocare.core.listing)."""
    # Each row joins its master-file version for the product's code; the version's document and
    # content (some 20 KB each) are not shown, and fetching and parsing them 50 times cost more than the
    # page's own query (issue 15).
    rows = selectors.batches_visible(request.user).defer("masterfile_version__document", "masterfile_version__content")
    return render_list(request, "manufacturing/batches.html", filterset_class=BatchFilter,
                       queryset=rows, columns=BATCH_COLUMNS, name="batches",
                       context={
                           "startable": selectors.orders_ready_to_start(request.user),
                           "may_execute": access.has_perm(request.user, Perm.BATCH_EXECUTE)
                           and not access.is_read_only(request.user),
                       })


@requires(Perm.BATCH_VIEW)
@require_GET
def batch_detail(request: HttpRequest, reference: str) -> HttpResponse:
    batch = _batch(request, reference)
    page = selectors.batch_page(batch)
    return render(request, "manufacturing/batch.html", {
        "page": page, "batch": batch, "site": batch.site, "version": batch.masterfile_version,
        "timeline": selectors.timeline(page),
        "may_execute": access.has_perm(request.user, Perm.BATCH_EXECUTE, site_id=batch.site_id)
        and not access.is_read_only(request.user),
        "may_qc": access.has_perm(request.user, Perm.QC_RECORD, site_id=batch.site_id)
        and not access.is_read_only(request.user),
    })


@requires(Perm.BATCH_VIEW)
@require_GET
def batch_review(request: HttpRequest, reference: str) -> HttpResponse:
    """Review by exception: only what needs the reviewer's eyes, each linked to its record."""
    batch = _batch(request, reference)
    page = selectors.batch_page(batch)
    return render(request, "manufacturing/review.html", {"page": page, "batch": batch})


@requires(Perm.BATCH_VIEW, write=Perm.BATCH_EXECUTE)
@require_http_methods(["GET", "POST"])
def batch_start(request: HttpRequest, order: int) -> HttpResponse:
    """Start the batch of an accepted therapy order: choose the unit, scan the starting material, sign."""
    therapy_order = get_object_or_404(selectors.orders_ready_to_start(request.user, include_started=True), pk=order)
    units_checked = selectors.units_for(therapy_order)  # once: the choices, the list and the POST
    units = [(str(u.pk), f"{u} — {'usable' if ok else why}") for u, ok, why in units_checked]
    form = forms.BatchStartForm(request.POST or None, units=units, ask_user_id=signing_needs_user_id(request))
    if request.method == "POST" and form.is_valid():
        unit = next((u for u, _, _ in units_checked if str(u.pk) == form.cleaned_data["unit"]), None)
        try:
            if unit is None:
                raise ValidationError({"unit": "Choose a unit of this site."})
            batch = services.batch_start(actor=request_actor(request), order=therapy_order, unit=unit,
                                         presented_identifier=form.cleaned_data["presented_identifier"],
                                         credentials=form.credentials(request.session),
                                         reason=form.cleaned_data["reason"])
        except SigningRefused as exc:
            form.show_refusal(exc)
        except ValidationError as exc:
            _show_error(form, exc, lambda k: {"batch": None}.get(k, k))
        else:
            messages.success(request, f"Batch {batch.reference} started on {batch.unit} against "
                                      f"{batch.masterfile_version}.")
            return redirect("manufacturing:batch", batch.reference)
    return render(request, "manufacturing/start.html",
                  {"order": therapy_order, "form": form, "units": units_checked},
                  status=400 if request.method == "POST" else 200)


def _step_context(request: HttpRequest, batch: Batch, step_id: str, **forms_: Any) -> dict[str, Any]:
    page = selectors.batch_page(batch)
    view = next((s for s in page.steps if s.spec["id"] == step_id), None)
    if view is None:
        raise Http404("No such step in this batch's master file.")
    gate = services.step_problems(person=request_actor(request), batch=batch, step=view.spec, at=timezone.now(),
                                  verifying=view.status == "awaiting_verification") \
        if access.has_perm(request.user, Perm.BATCH_EXECUTE, site_id=batch.site_id) else []
    ask = signing_needs_user_id(request)
    lots = selectors.lot_choices(batch, view.spec)
    window_now = services.step_window(batch, view.spec, timezone.now()) if view.is_next else None
    found = derived.derived_values(batch, view.spec, timezone.now()) if view.is_next else {}
    derived_now = [(p, found[p["id"]]) for p in view.spec.get("parameters", []) if p["id"] in found]
    return {
        "batch": batch, "page": page, "step": view, "site": batch.site, "gate_problems": gate,
        "window_now": window_now, "derived_now": derived_now,
        "record_form": forms_.get("record_form") or forms.StepRecordForm(
            step=view.spec, lots=lots, proposed=selectors.lots_proposed(batch, view.spec) if view.is_next else None,
            ask_user_id=ask),
        "verify_form": forms_.get("verify_form") or forms.StepVerifyForm(ask_user_id=ask),
        "skip_form": forms_.get("skip_form") or forms.StepSkipForm(ask_user_id=ask),
        "may_execute": access.has_perm(request.user, Perm.BATCH_EXECUTE, site_id=batch.site_id)
        and not access.is_read_only(request.user),
    }


@requires(Perm.BATCH_VIEW, write=Perm.BATCH_EXECUTE)
@require_http_methods(["GET", "POST"])
def step(request: HttpRequest, reference: str, step_id: str) -> HttpResponse:
    """The step being executed: start it, record its values and lots and sign, verify, or skip."""
    batch = _batch(request, reference)
    if request.method == "GET":
        return render(request, "manufacturing/step.html", _step_context(request, batch, step_id))
    action = request.POST.get("action", "")
    actor = request_actor(request)
    anchor = reverse("manufacturing:batch", args=[batch.reference]) + f"#step-{step_id}"
    bound: dict[str, Any] = {}
    form: Any = None
    try:
        if action == "start":
            services.step_start(actor=actor, batch=batch, step_id=step_id)
            messages.success(request, f"Step {step_id} started.")
            return redirect("manufacturing:step", batch.reference, step_id)
        if action == "record":
            spec = services.step_definition(batch, step_id)
            form = forms.StepRecordForm(request.POST, step=spec, lots=selectors.lot_choices(batch, spec),
                                        proposed=selectors.lots_proposed(batch, spec),
                                        ask_user_id=signing_needs_user_id(request))
            bound["record_form"] = form
            if form.is_valid():
                outcome = services.step_record(actor=actor, batch=batch, step_id=step_id, values=form.values(),
                                               materials=form.materials(), notes=form.cleaned_data["notes"],
                                               deviation=form.cleaned_data["deviation"],
                                               credentials=form.credentials(request.session))
                for d in outcome.deviations:
                    messages.warning(request, f"Deviation {d.reference} opened: {d.title}.")
                messages.success(request, f"Step {step_id} recorded and signed"
                                          + (" — it now awaits second-person verification."
                                             if outcome.step.status == "awaiting_verification" else "."))
                return redirect(anchor)
        elif action == "verify":
            form = forms.StepVerifyForm(request.POST, ask_user_id=signing_needs_user_id(request))
            bound["verify_form"] = form
            if form.is_valid():
                services.step_verify(actor=actor, batch=batch, step_id=step_id, comment=form.cleaned_data["comment"],
                                     credentials=form.credentials(request.session))
                messages.success(request, f"Step {step_id} verified and signed.")
                return redirect(anchor)
        elif action == "skip":
            form = forms.StepSkipForm(request.POST, ask_user_id=signing_needs_user_id(request))
            bound["skip_form"] = form
            if form.is_valid():
                services.step_skip(actor=actor, batch=batch, step_id=step_id, reason=form.cleaned_data["reason"],
                                   credentials=form.credentials(request.session))
                messages.success(request, f"Step {step_id} skipped as not applicable.")
                return redirect(anchor)
        else:
            raise ValidationError({"action": "Choose start, record, verify or skip."})
    except SigningRefused as exc:
        form.show_refusal(exc)
    except ValidationError as exc:
        target = bound.get("record_form") or bound.get("verify_form") or bound.get("skip_form")
        if target is None:
            for message in exc.messages:
                messages.error(request, message)
            return redirect("manufacturing:step", batch.reference, step_id)
        mapper = target.field_for if isinstance(target, forms.StepRecordForm) else (lambda k: k)
        _show_error(target, exc, lambda k: {"step": None, "batch": None}.get(k, mapper(k) or k))
    return render(request, "manufacturing/step.html", _step_context(request, batch, step_id, **bound), status=400)


@requires(Perm.BATCH_VIEW, write=Perm.BATCH_EXECUTE)
@require_http_methods(["GET", "POST"])
def value_correct(request: HttpRequest, pk: int) -> HttpResponse:
    """Correct a recorded value: the original stays, the correction is recorded beside it."""
    value = get_object_or_404(StepValue.objects.select_related("step__batch"), pk=pk,
                              step__batch__in=selectors.batches_visible(request.user))
    batch = value.step.batch
    form = forms.CorrectionForm(request.POST or None, ask_user_id=signing_needs_user_id(request))
    if request.method == "POST" and form.is_valid():
        try:
            services.value_correct(actor=request_actor(request), value=value, new_value=form.cleaned_data["new_value"],
                                   reason=form.cleaned_data["reason"], credentials=form.credentials(request.session))
        except SigningRefused as exc:
            form.show_refusal(exc)
        except ValidationError as exc:
            _show_error(form, exc, lambda k: {"value": None}.get(k, k))
        else:
            messages.success(request, "Correction recorded and signed; the original entry is kept beside it.")
            return redirect(reverse("manufacturing:batch", args=[batch.reference]) + f"#step-{value.step.step_id}")
    return render(request, "manufacturing/correct.html", {"value": value, "batch": batch, "form": form},
                  status=400 if request.method == "POST" else 200)


@requires(Perm.BATCH_VIEW, write=Perm.QC_RECORD)
@require_http_methods(["GET", "POST"])
def qc_result(request: HttpRequest, reference: str, attribute_id: str) -> HttpResponse:
    """Enter the QC result of one attribute (or correct the current one)."""
    batch = _batch(request, reference)
    attribute = next((a for a in services.specification(batch) if a["id"] == attribute_id), None)
    if attribute is None:
        raise Http404("No such attribute in this batch's specification.")
    current = QcResult.objects.filter(batch=batch, attribute_id=attribute_id, correction__isnull=True) \
        .order_by("-entered_at").first()
    form = forms.QcResultForm(request.POST or None, ask_user_id=signing_needs_user_id(request))
    if request.method == "POST" and form.is_valid():
        try:
            if current is None:
                services.qc_result_record(actor=request_actor(request), batch=batch, attribute_id=attribute_id,
                                          value=form.cleaned_data["value"], tested_at=form.cleaned_data["tested_at"],
                                          credentials=form.credentials(request.session))
            else:
                services.qc_result_correct(actor=request_actor(request), result=current,
                                           value=form.cleaned_data["value"], reason=form.cleaned_data["reason"],
                                           credentials=form.credentials(request.session))
        except SigningRefused as exc:
            form.show_refusal(exc)
        except ValidationError as exc:
            _show_error(form, exc, lambda k: {"attribute": None, "result": None}.get(k, k))
        else:
            messages.success(request, f"{attribute['name']}: result recorded and signed.")
            return redirect(reverse("manufacturing:batch", args=[batch.reference]) + f"#qc-{attribute_id}")
    return render(request, "manufacturing/qc_result.html",
                  {"batch": batch, "attribute": attribute, "current": current, "form": form},
                  status=400 if request.method == "POST" else 200)


@requires(Perm.BATCH_VIEW, write=Perm.MATERIALS_MANAGE)
@require_http_methods(["GET", "POST"])
def lots(request: HttpRequest) -> HttpResponseBase:
    """Material lots at the person's sites: receive a lot (quarantine), release or reject it (signed)."""
    actor = request_actor(request)
    visible = selectors.lots_visible(request.user)
    sites = [m.site for m in access.active_memberships(actor) if access.has_perm(actor, Perm.MATERIALS_MANAGE,
                                                                                 site_id=m.site_id)]
    receive = forms.LotReceiveForm(request.POST if request.POST.get("action") == "receive" else None)
    decide = forms.LotDecideForm(request.POST if request.POST.get("action") == "decide" else None,
                                 ask_user_id=signing_needs_user_id(request))
    status = 200
    if request.method == "POST":
        status = 400
        try:
            if request.POST.get("action") == "receive" and receive.is_valid():
                if not sites:
                    raise ValidationError({"material_code": "You manage no site's materials."})
                data = receive.cleaned_data
                lot = services.lot_receive(actor=actor, site=sites[0], **data)
                messages.success(request, f"{lot} received at {lot.site.code}; it is in quarantine until released.")
                return redirect("manufacturing:lots")
            if request.POST.get("action") == "decide" and decide.is_valid():
                lot = get_object_or_404(visible, pk=request.POST.get("lot"))
                services.lot_decide(actor=actor, lot=lot, decision=decide.cleaned_data["decision"],
                                    reason=decide.cleaned_data["reason"],
                                    credentials=decide.credentials(request.session))
                messages.success(request, f"{lot} {lot.get_status_display().lower()}.")
                return redirect("manufacturing:lots")
        except SigningRefused as exc:
            decide.show_refusal(exc)
        except ValidationError as exc:
            apply_validation_error(receive if request.POST.get("action") == "receive" else decide, exc)
    return render_list(request, "manufacturing/lots.html", filterset_class=LotFilter, queryset=visible,
                       columns=LOT_COLUMNS, name="lots", status=status, context={
                           "receive": receive, "decide": decide, "today": timezone.now().date(),
                           "quarantine": LotStatus.QUARANTINE,
                           "may_manage": bool(sites) and not access.is_read_only(actor),
                           "decide_pk": request.POST.get("lot", ""),
                       })
