"""Costs pages (COST-BATCH): the cost model's versions with their signatures, and the cost of a batch
line by line, each line linked to the record it comes from. Views parse input and call selectors;
selectors decide what is seen (``costs.view`` at the batch's site; another site's batch is a 404)."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from pocare.accounts import selectors as access
from pocare.accounts.decorators import request_actor, requires
from pocare.accounts.roles import Perm
from pocare.core.charts.bars import Bar, bars_svg
from pocare.core.forms import apply_validation_error
from pocare.core.listing import csv_cell
from pocare.costs import anchors, compute, patient, report, rollup, selectors, services, tasks
from pocare.costs.forms import ModelApproveForm, ModelDraftForm, ReportForm, ReportSignForm
from pocare.costs.models import CostModel, CostReport
from pocare.custody.models import Collection, Handoff
from pocare.ledger.signing import SigningRefused, signing_needs_user_id
from pocare.manufacturing.models import Batch
from pocare.network.models import Site
from pocare.patients.models import Patient
from pocare.patients.selectors import patients_visible


def _links(cost: selectors.BatchCost) -> dict[tuple[str, int], str]:
    """The page of each source record: the step on the batch record, the lot's stock card, the QC
    result, the order's shipments, the batch, its certification, the cost model's version."""
    records, ref = cost.records, cost.batch.reference
    out = {("manufacturing.StepExecution", s.pk): reverse("manufacturing:step", args=[ref, s.step_id])
           for s in records.steps}
    out |= {("manufacturing.MaterialUse", u.pk): reverse("supply:lot", args=[u.lot_pk])
            for u in records.materials if u.lot_pk is not None}
    out |= {("manufacturing.QcResult", r.pk): reverse("manufacturing:qc_result", args=[ref, r.attribute_id])
            for r in records.qc}
    out |= {("custody.Shipment", s.pk): reverse("custody:order", args=[s.order_pk]) + "#shipments"
            for s in records.shipments}
    out[("manufacturing.Batch", records.pk)] = reverse("manufacturing:batch", args=[ref])
    if records.certification_pk is not None:
        out[("release.Certification", records.certification_pk)] = reverse("release:batch", args=[ref])
    out[("costs.CostModel", cost.model.pk)] = reverse("costs:models") + f"#v{cost.model.number}"
    return out


def _model_asked(request: HttpRequest) -> CostModel | None:
    """``?model=N``: price with version N (approved now or before) instead of the one in force."""
    asked = request.GET.get("model", "").strip()
    if not asked:
        return None
    if not asked.isdigit() or len(asked) > 9:
        raise Http404("No such cost model.")
    found = CostModel.objects.filter(number=int(asked), status__in=selectors.IN_FORCE).first()
    if found is None:
        raise Http404("No such cost model.")
    return found


@requires(Perm.COSTS_VIEW)
@require_GET
def batch_cost(request: HttpRequest, reference: str) -> HttpResponse:
    """The cost of one batch by category, with subtotals and the total; each line names its record."""
    try:
        batch = selectors.batch_for(request.user, reference)
    except Batch.DoesNotExist:
        raise Http404("No such batch.") from None
    cost = selectors.batch_cost(batch, _model_asked(request))
    context: dict[str, Any] = {"batch": batch, "cost": cost,
                               "versions": selectors.models_listed().filter(status__in=selectors.IN_FORCE),
                               "pseudonym": patients_visible(request.user).filter(referrals__order_id=batch.order_id)
                               .values_list("pseudonym", flat=True).first()}
    if cost is not None:
        links = _links(cost)
        context["groups"] = [(key, label, subtotal, [(line, links.get((line.source.label, line.source.pk), ""))
                                                     for line in lines])
                             for key, label, subtotal, lines in cost.sheet.subtotals()]
        context["categories"] = compute.CATEGORIES
    return render(request, "costs/batch.html", context)


@requires(Perm.COSTS_VIEW, write=Perm.COSTS_MANAGE)
@require_http_methods(["GET", "POST"])
def model_list(request: HttpRequest) -> HttpResponseBase:
    """The cost model's versions, newest first: status, effective day, who drafted and approved, the
    approval signature (with whether it still holds) and the content. Control Site QA drafts a new version
    here (POST ``action=draft``) and approves a draft with a signature (``action=approve``)."""
    manage = access.has_perm(request.user, Perm.COSTS_MANAGE)
    draft_form: ModelDraftForm | None = None
    approve_form: ModelApproveForm | None = None
    approving: int | None = None
    status = 200
    if request.method == "POST":
        status = 400
        action = request.POST.get("action")
        if action == "draft":
            draft_form = ModelDraftForm(request.POST)
            if draft_form.is_valid():
                data = draft_form.cleaned_data
                try:
                    found = services.cost_model_draft(actor=request_actor(request), content=data["content"],
                                                      reason=data["reason"], effective_from=data["effective_from"])
                    messages.success(request, f"Version {found.number} is drafted; it prices nothing until approved.")
                    return redirect(reverse("costs:models") + f"#v{found.number}")
                except ValidationError as exc:
                    apply_validation_error(draft_form, exc)
        elif action == "approve":
            approve_form = ModelApproveForm(request.POST, ask_user_id=signing_needs_user_id(request))
            number = request.POST.get("number", "")
            target = CostModel.objects.filter(number=int(number)).first() if number.isdigit() and len(number) < 9 \
                else None
            if target is None:
                return HttpResponse("number: no such version of the cost model.", status=400, content_type="text/plain")
            approving = target.number
            try:
                if approve_form.is_valid():
                    services.cost_model_approve(actor=request_actor(request), model=target,
                                                reason=approve_form.cleaned_data["reason"],
                                                credentials=approve_form.credentials(request.session))
                    messages.success(request, f"Version {target.number} is approved and signed.")
                    return redirect(reverse("costs:models") + f"#v{target.number}")
            except SigningRefused as exc:
                approve_form.show_refusal(exc)
            except ValidationError as exc:
                apply_validation_error(approve_form, exc)
        else:
            return HttpResponse("action: choose draft or approve.", status=400, content_type="text/plain")
    models = list(selectors.models_listed())
    signatures = selectors.signatures_of(models)
    for model in models:
        model.content_text = json.dumps(model.content, indent=2, sort_keys=True)  # type: ignore[attr-defined]
    in_force = next((m for m in models if m.status == "approved"), None)
    lots = selectors.lots_received_priced(in_force) if manage else []
    if manage and draft_form is None:
        content = in_force.content if in_force else {"currency": "EUR"}
        initial: dict[str, Any] = {"effective_from": timezone.now().date()}
        if request.GET.get("draft") == "invoices":
            content, added = selectors.content_with_invoice_prices(content, lots)
            initial["reason"] = f"Lot prices from the invoices of {added} lot{'' if added == 1 else 's'} received"
            messages.info(request, f"The draft below prices {added} lot{'' if added == 1 else 's'} at "
                                   f"{'its' if added == 1 else 'their'} invoice price: check it, then save it.")
        draft_form = ModelDraftForm(initial={**initial, "content": json.dumps(content, indent=2, sort_keys=True)})
    if manage and approve_form is None:
        approve_form = ModelApproveForm(ask_user_id=signing_needs_user_id(request))
    drafts = [m.number for m in models if m.status == "draft"]
    return render(request, "costs/models.html", {"rows": [(m, signatures[m.pk]) for m in models],
                                                 "newest_draft": max(drafts) if drafts else None,
                                                 "draft_form": draft_form if manage else None,
                                                 "approve_form": approve_form if manage else None,
                                                 "approving": approving, "lots": lots,
                                                 "lots_differing": sum(1 for p in lots if p.differs),
                                                 "in_force": in_force,
                                                 "lots_days": selectors.LOTS_RECEIVED_DAYS}, status=status)


# --- the cost report of a site and period -------------------------------------------------------------


def _report_sites(request: HttpRequest) -> tuple[list[tuple[str, str]], bool]:
    """The sites the person reads costs at (code, label), and whether they may read the whole network."""
    held = access.sites_with_perm(request.user, Perm.COSTS_VIEW)
    found = Site.objects.order_by("code")
    if held is not None:
        found = found.filter(pk__in=held)
    return [(s.code, f"{s.code} — {s.name}") for s in found], held is None


def _site_named(code: str) -> Site | None:
    return Site.objects.filter(code=code).first() if code else None


def _report_context(figures: dict[str, Any]) -> dict[str, Any]:
    keys = rollup.CATEGORY_KEYS
    labels = dict(compute.CATEGORIES)
    totals = [(labels[k], Decimal(figures["totals"][k])) for k in keys]
    total = Decimal(figures["total"])
    comparisons = report.comparison(figures)
    chart = ""
    if comparisons:
        ours = Decimal(figures["per_treated"])
        bars = [Bar("This report", float(ours), "ok", f"€{ours:,.0f} per patient treated")]
        bars += [Bar(c.anchor.label, float(c.anchor.eur_high), "muted",
                     f"€{c.anchor.eur_high:,.0f}") for c in comparisons]
        chart = bars_svg(bars, title="Manufacturing cost per patient treated against the published figures",
                         width=760)
    return {"figures": figures, "category_labels": [labels[k] for k in keys],
            "totals": [(label, amount, (amount / total * 100) if total else Decimal(0)) for label, amount in totals],
            "months": [(m, [Decimal(m["amounts"][k]) for k in keys]) for m in figures["months"]],
            "rows": figures["rows"][:ROWS_SHOWN], "rows_hidden": max(0, len(figures["rows"]) - ROWS_SHOWN),
            "comparisons": comparisons, "anchor_chart": chart, "to_eur": anchors.TO_EUR}


#: The batches a report page lists (all of them are in the CSV).
ROWS_SHOWN = 300


def _csv(figures: dict[str, Any], name: str) -> HttpResponse:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in report.csv_rows(figures):
        writer.writerow([csv_cell(cell) for cell in row])
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    return response


def _report_name(site: str | None, start: str, end: str) -> str:
    return f"pocare-cost-report-{site or 'network'}-{start}-{end}"


@requires(Perm.COSTS_VIEW)
@require_GET
def report_page(request: HttpRequest) -> HttpResponse:
    """Compute the cost report of a site (or the network) for a period from the records — totals by category
    and month, every batch, the cost per patient treated against the published anchors — as a page or
    CSV (``export=csv``); Control Site QA may sign it. Below, the reports signed before."""
    sites, network = _report_sites(request)
    form = ReportForm(request.GET or None, sites=sites, network=network)
    context: dict[str, Any] = {"form": form, "signed": selectors.reports_listed(request.user)[:50]}
    status = 200
    if form.is_bound:
        if form.is_valid():
            data = form.cleaned_data
            site = _site_named(data["site"])
            batches = report.batches_in(selectors.batches_visible(request.user), site, data["start"], data["end"])
            figures = report.figures_for(batches, site=site, start=data["start"], end=data["end"])
            if request.GET.get("export") == "csv":
                return _csv(figures, _report_name(figures["site"], figures["start"], figures["end"]))
            context |= _report_context(figures)
            if access.has_perm(request.user, Perm.COSTS_MANAGE) and figures["batches"]:
                context["sign_form"] = ReportSignForm(
                    initial={"site": data["site"], "start": data["start"], "end": data["end"]},
                    ask_user_id=signing_needs_user_id(request))
            context["csv_query"] = request.GET.urlencode() + "&export=csv"
        else:
            status = 400
    return render(request, "costs/report.html", context, status=status)


@requires(Perm.COSTS_MANAGE)
@require_POST
def report_sign(request: HttpRequest) -> HttpResponseBase:
    """Sign the cost report of a site and period (Control Site QA): the figures are computed again from the
    records in the signing transaction and stored with the signature."""
    form = ReportSignForm(request.POST, ask_user_id=signing_needs_user_id(request))
    try:
        if form.is_valid():
            data = form.cleaned_data
            site = _site_named(data["site"])
            if data["site"] and site is None:
                raise ValidationError({"site": "No such site."})
            found = services.cost_report_sign(actor=request_actor(request), site=site, start=data["start"],
                                              end=data["end"], reason=data["reason"],
                                              credentials=form.credentials(request.session))
            messages.success(request, f"The {found} is signed.")
            return redirect("costs:report", found.pk)
    except SigningRefused as exc:
        form.show_refusal(exc)
    except ValidationError as exc:
        apply_validation_error(form, exc)
    return render(request, "costs/report_refused.html", {"form": form}, status=400)


@requires(Perm.COSTS_VIEW, recorded_read=True)
@require_http_methods(["GET", "POST"])
def report_detail(request: HttpRequest, pk: int) -> HttpResponseBase:
    """A signed cost report: its figures as signed, the signature and whether it holds, and the last check of
    the figures against the records; POST ``format=csv|pdf`` downloads it (a ledger event), POST ``check`` queues
    a new check (a job: the figures of up to 5,000 batches are not computed again on every reading)."""
    found = selectors.reports_visible(request.user).filter(pk=pk).first()
    if found is None:
        raise Http404("No such cost report.")
    figures = found.figures
    if request.method == "POST" and "check" in request.POST:
        job = tasks.cost_report_check_request(actor=request_actor(request), cost_report=found)
        return redirect("jobs:job", pk=job.pk)  # the figures are computed again there; the result shows here too
    if request.method == "POST":
        fmt = request.POST.get("format")
        if fmt not in ("csv", "pdf"):
            return HttpResponse("format: choose csv or pdf, or check.", status=400, content_type="text/plain")
        name = _report_name(figures["site"], figures["start"], figures["end"])
        if fmt == "pdf":
            try:
                import weasyprint  # lint: allow - WeasyPrint needs Pango from the system; only the PDF answers 503
            except (ImportError, OSError) as exc:
                return HttpResponse(f"PDF output is unavailable on this server ({exc}). Download the CSV, or print "
                                    "the page from the browser.", status=503, content_type="text/plain")
        services.cost_report_exported(actor=request_actor(request), cost_report=found, fmt=fmt)
        if fmt == "csv":
            return _csv(figures, name)
        html = render_to_string("costs/report_print.html", _detail_context(found), request=request)
        response = HttpResponse(weasyprint.HTML(string=html, base_url=request.build_absolute_uri("/")).write_pdf(),
                                content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{name}.pdf"'
        return response
    return render(request, "costs/report_detail.html", _detail_context(found))


def _detail_context(found: CostReport) -> dict[str, Any]:
    """The report as signed, its signatures, and the last check against the records (``costs.report_checked``;
    none yet: the figures were the records' when signed)."""
    checked = selectors.last_check(found)
    return _report_context(found.figures) | {
        "report": found, "signatures": selectors.signatures_of([found])[found.pk],
        "checked": checked, "check": checked.new if checked else None}


# --- the cost of one patient treated ----------------------------------------------------------------------


def _clinical_links(cost: patient.PatientCost) -> dict[tuple[str, int], str]:
    """The page of each clinical record: the order's custody page (its collections, its timeline of
    hand-offs with the infusion). A visit has no page of its own outside the treating hospital's."""
    wanted = {(line.source.label, line.source.pk) for line in cost.clinical}
    orders = {("custody.Collection", pk): order for pk, order in Collection.objects.filter(
        pk__in=[pk for label, pk in wanted if label == "custody.Collection"]).values_list("pk", "order_id")}
    orders |= {("custody.Handoff", pk): order for pk, order in Handoff.objects.filter(
        pk__in=[pk for label, pk in wanted if label == "custody.Handoff"]).values_list("pk", "order_id")}
    anchor = {"custody.Collection": "#collections", "custody.Handoff": "#timeline"}
    return {key: reverse("custody:order", args=[order]) + anchor[key[0]] for key, order in orders.items()}


@requires(Perm.COSTS_VIEW)
@require_GET
def patient_cost(request: HttpRequest, pseudonym: str) -> HttpResponse:
    """The cost of one patient treated: every batch made for them, failed ones included, and their clinical
    episode, each line linked to its record (COST-BATCH). Pseudonym only: no identifying data."""
    try:
        found = patient.patient_for(request.user, pseudonym[:40])
    except Patient.DoesNotExist:
        raise Http404("No such patient, or not one whose costs you read.") from None
    cost = patient.patient_cost(found)
    links = _clinical_links(cost)
    return render(request, "costs/patient.html", {
        "patient": found, "cost": cost, "show_pseudonym": patient.may_see_pseudonym(request.user, found),
        "clinical": [(line, links.get((line.source.label, line.source.pk), ""),
                      cost.when.get((line.source.label, line.source.pk))) for line in cost.clinical]})
