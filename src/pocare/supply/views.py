"""Supply pages: the stock of the sites the person may see, the trace of a lot or a patient, and
recalls (docs/supply.md). Views parse input and call selectors and services; selectors decide what
is seen."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest
from django.http.response import HttpResponseBase, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from pocare.accounts import selectors as access
from pocare.accounts.decorators import request_actor, requires
from pocare.accounts.roles import Perm
from pocare.accounts.selectors import sites_with_perm
from pocare.core.forms import apply_validation_error
from pocare.core.listing import Column, csv_rows
from pocare.ledger.signing import SigningRefused, signing_needs_user_id
from pocare.manufacturing.models import Batch, BatchStatus, LotStatus, MaterialLot
from pocare.network.selectors import site_today
from pocare.supply import recall as recalls
from pocare.supply import reorder, selectors, services
from pocare.supply.forms import (
    CountForm,
    DecideForm,
    DestroyForm,
    ExpireForm,
    IssueForm,
    RecallCloseForm,
    RecallOpenForm,
    ReceiveForm,
    ReturnForm,
    TraceForm,
    TransferForm,
)
from pocare.supply.models import QUALIFIED, StockLocation, StockMovement, Supplier


def _managed_locations(request: HttpRequest, site_id: int | None = None) -> Any:
    """The locations at the sites where the person manages materials (of one site with ``site_id``)."""
    if access.is_read_only(request.user):
        return StockLocation.objects.none()
    sites = sites_with_perm(request.user, Perm.MATERIALS_MANAGE)
    found = StockLocation.objects.select_related("site").order_by("site__code", "kind", "code")
    if sites is not None:
        found = found.filter(site_id__in=sites)
    return found if site_id is None else found.filter(site_id=site_id)


@requires(Perm.SUPPLY_VIEW, write=Perm.MATERIALS_MANAGE)
@require_http_methods(["GET", "POST"])
def stock(request: HttpRequest) -> HttpResponseBase:
    """Stock by site, location, material and lot: the sum of the movements, in one query. The site's
    materials people receive a delivery here (``services.stock_receive``: the lot in quarantine)."""
    locations = _managed_locations(request)
    materials = services.bill_of_materials()
    receive = ReceiveForm(request.POST or None, locations=locations, materials=materials,
                          suppliers=Supplier.objects.filter(status__in=QUALIFIED))
    status = 200
    if request.method == "POST":
        status = 400
        try:
            if not locations.exists():
                raise PermissionDenied("You manage no site's stock.")
            if receive.is_valid():
                data = receive.cleaned_data
                received = services.stock_receive(actor=request_actor(request), location=data["location"],
                                             supplier=data["supplier"], material_code=data["material_code"],
                                             lot_number=data["lot_number"], expiry_date=data["expiry_date"],
                                             quantity=data["quantity"], reason=data["reason"],
                                             unit=materials[data["material_code"]]["unit"])
                messages.success(request, f"Received {selectors.amount(received.quantity)} {received.unit} of "
                                          f"{received.lot} into {received.location.site.code} "
                                          f"{received.location.code}; in quarantine until released.")
                return redirect("supply:lot", received.lot_id)
        except ValidationError as exc:
            apply_validation_error(receive, exc)
    rows = selectors.stock_levels(user=request.user, by_lot=True, by_location=True)
    held = recalls.open_recalls()
    for row in rows:
        found = held.get((row["material_code"], row["lot_number"]))
        row["recall"] = found.reference if found is not None else ""
    return render(request, "supply/stock.html", {"rows": rows, "today": timezone.now().date(), "receive": receive,
                                                 "may_receive": locations.exists()}, status=status)


#: The actions of a lot's stock card: the form, and the service it calls with the form's data.
LOT_ACTIONS = ("decide", "count", "transfer", "issue", "return", "destroy", "expire")


@requires(Perm.SUPPLY_VIEW, write=Perm.MATERIALS_MANAGE)
@require_http_methods(["GET", "POST"])
def lot_card(request: HttpRequest, pk: int) -> HttpResponseBase:
    """A lot's stock card: its stock at each location and every movement (who, when, why, for which
    batch); the site's materials people release or reject it (signed), count it (signed), transfer,
    destroy or write it off here."""
    sites = sites_with_perm(request.user, Perm.SUPPLY_VIEW)
    lots = MaterialLot.objects.select_related("site")
    lot = get_object_or_404(lots if sites is None else lots.filter(site_id__in=sites), pk=pk)
    locations = _managed_locations(request, lot.site_id)
    may_manage = locations.exists()
    ask = signing_needs_user_id(request)
    action = request.POST.get("action") if request.method == "POST" else None
    data = request.POST if action else None
    forms_ = {
        "decide": DecideForm(data if action == "decide" else None, ask_user_id=ask, prefix="decide"),
        "count": CountForm(data if action == "count" else None, locations=locations, ask_user_id=ask,
                           prefix="count"),
        "transfer": TransferForm(data if action == "transfer" else None, locations=locations, prefix="transfer"),
        "issue": IssueForm(data if action == "issue" else None, locations=locations, prefix="issue",
                           batches=Batch.objects.filter(site_id=lot.site_id, status=BatchStatus.IN_PROGRESS)
                           .order_by("reference")),
        "return": ReturnForm(data if action == "return" else None, locations=locations, prefix="return",
                             batches=Batch.objects.filter(pk__in=StockMovement.objects.filter(
                                 lot=lot, batch__isnull=False).values("batch_id")).order_by("-started_at")),
        "destroy": DestroyForm(data if action == "destroy" else None, locations=locations, prefix="destroy"),
        "expire": ExpireForm(data if action == "expire" else None, locations=locations, prefix="expire"),
    }  # each its own prefix: one page, several forms, no two fields with one id
    status = 200
    if request.method == "POST":
        status = 400
        form = forms_.get(action or "")
        try:
            if form is None:
                raise ValidationError({"action": f"Choose one of {', '.join(LOT_ACTIONS)}."})
            if not may_manage:
                raise PermissionDenied(f"You do not manage the materials of {lot.site.code}.")
            if form.is_valid():
                done = _lot_action(request, lot, action or "", form)
                messages.success(request, done)
                return redirect("supply:lot", lot.pk)
        except SigningRefused as exc:
            assert isinstance(form, DecideForm | CountForm)
            form.show_refusal(exc)
        except ValidationError as exc:
            if form is None:
                return render(request, "core/refused.html", {"status": 400, "field": "action",
                                                              "message": exc.messages[0]}, status=400)
            apply_validation_error(form, exc)
    movements = (StockMovement.objects.filter(lot=lot).select_related("location", "batch", "actor")
                 .order_by("-occurred_at", "-pk")[:MOVEMENTS_SHOWN])
    by_location = selectors.lot_stock_by_location(lot)
    where = {loc.pk: loc for loc in StockLocation.objects.filter(pk__in=list(by_location))}
    return render(request, "supply/lot.html", {
        "lot": lot, "movements": movements, "shown": MOVEMENTS_SHOWN,
        "stock": [(where[pk], q) for pk, q in sorted(by_location.items()) if q],
        "recall": recalls.lot_recall(lot), "forms": forms_ if may_manage else None,
        "expired": lot.expiry_date < site_today(lot.site), "quarantine": lot.status == LotStatus.QUARANTINE,
        "unit": selectors.lot_unit(lot) or "", "action": action or ""}, status=status)


#: Movements listed on a stock card, newest first (the ledger holds them all).
MOVEMENTS_SHOWN = 100


def _lot_action(request: HttpRequest, lot: MaterialLot, action: str, form: Any) -> str:
    """Do one action of the stock card; the message that says what was done."""
    actor, d = request_actor(request), form.cleaned_data
    if action == "decide":
        services.stock_lot_decide(actor=actor, lot=lot, decision=d["decision"], reason=d["reason"],
                                  credentials=form.credentials(request.session))
        lot.refresh_from_db()
        return f"{lot} {lot.get_status_display().lower()} (signed)."
    if action == "count":
        row = services.stock_adjust(actor=actor, location=d["location"], lot=lot, counted=d["counted"],
                                    reason=d["reason"], credentials=form.credentials(request.session))
        return f"Count recorded at {d['location'].code}: adjusted by {selectors.amount(row.quantity)} (signed)."
    if action == "transfer":
        services.stock_transfer(actor=actor, source=d["source"], destination=d["destination"], lot=lot,
                                quantity=d["quantity"], reason=d["reason"])
        return f"Transferred {d['quantity']} from {d['source'].code} to {d['destination'].code}."
    if action in ("issue", "return"):
        move = services.stock_issue if action == "issue" else services.stock_return
        row = move(actor=actor, location=d["location"], lot=lot, quantity=d["quantity"], batch=d["batch"],
                   reason=d["reason"])
        done = f"Issued to {d['batch']} from" if action == "issue" else f"Returned from {d['batch']} to"
        return f"{done} {d['location'].code}: {selectors.amount(abs(row.quantity))} {row.unit}."
    if action == "destroy":
        row = services.stock_destroy(actor=actor, location=d["location"], lot=lot, quantity=d["quantity"],
                                     reason=d["reason"])
        return f"Destroyed {selectors.amount(-row.quantity)} {row.unit} at {d['location'].code}."
    row = services.stock_expire(actor=actor, location=d["location"], lot=lot, reason=d["reason"])
    return f"Written off {selectors.amount(-row.quantity)} {row.unit} at {d['location'].code} (expired)."


#: The columns of a trace's export: one row per use of a lot at a step, with where its product went.
TRACE_COLUMNS = [Column(h, a) for h, a in (
    ("material", "material_code"), ("lot_number", "lot_number"), ("supplier", "supplier"),
    ("lot_site", "lot_site"), ("expiry_date", "expiry_date"), ("batch", "batch"), ("batch_site", "batch_site"),
    ("step", "step_id"), ("quantity", "quantity"), ("used_at", "used_at"), ("stage", "stage"),
    ("certification", "certification"), ("dispatched_at", "dispatched_at"), ("infused_at", "infused_at"),
    ("patient_pseudonym", "recipient"), ("coi", "coi"), ("treating_site", "treating_site"),
    ("open_recall", "recall"))]


def _may_recall(request: HttpRequest) -> bool:
    return access.has_perm(request.user, Perm.RECALL) and not access.is_read_only(request.user)


@requires(Perm.SUPPLY_VIEW)
@require_GET
def trace(request: HttpRequest) -> HttpResponseBase:
    """A lot forward to every batch, product and patient it reached, or a patient back to every lot in
    contact with their cells (SUP-RECALL, ATMP-TRACE); ``export=csv`` gives the same rows as CSV. From a
    lot's trace, Control Site QA opens its recall (the trace is what the recall will hold)."""
    form = TraceForm(request.GET or None, materials=services.bill_of_materials())
    found = None
    status = 200
    if form.asked:
        if form.is_valid():
            data = form.cleaned_data
            found = (recalls.patient_trace(identifier=data["patient"], user=request.user) if data["patient"] else
                     recalls.lot_trace(material_code=data["material_code"], lot_number=data["lot_number"],
                                       user=request.user))
            if request.GET.get("export") == "csv":
                name = (data["patient"] or f"{data['material_code']}-{data['lot_number']}")
                response = StreamingHttpResponse(csv_rows(TRACE_COLUMNS, found.reached),
                                                 content_type="text/csv; charset=utf-8")
                safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:60]
                response["Content-Disposition"] = f'attachment; filename="pocare-trace-{safe}.csv"'
                return response
        else:
            status = 400
    open_form = None
    if found is not None and found.lots and _may_recall(request) and not any(r.is_open for r in found.recalls):
        open_form = RecallOpenForm(initial={"material_code": form.cleaned_data["material_code"],
                                            "lot_number": form.cleaned_data["lot_number"]},
                                   ask_user_id=signing_needs_user_id(request))
    return render(request, "supply/trace.html", {"form": form, "trace": found, "open_form": open_form,
                                                 "query": request.GET.urlencode()}, status=status)


@requires(Perm.SUPPLY_VIEW, write=Perm.RECALL)
@require_http_methods(["GET", "POST"])
def recall_list(request: HttpRequest) -> HttpResponseBase:
    """The recalls, open first; POST opens one (from a lot's trace), signed."""
    form = RecallOpenForm(request.POST or None, ask_user_id=signing_needs_user_id(request))
    if request.method == "POST":
        try:
            if form.is_valid():
                data = form.cleaned_data
                opened = recalls.recall_open(actor=request_actor(request), material_code=data["material_code"],
                                             lot_number=data["lot_number"], reason=data["reason"],
                                             credentials=form.credentials(request.session))
                messages.success(request, f"{opened.reference}: {opened.material_code} lot {opened.lot_number} "
                                          "is recalled and held; QA, the QP, the sites and the hospitals are told.")
                return redirect("supply:recall", opened.reference)
        except SigningRefused as exc:
            form.show_refusal(exc)
        except ValidationError as exc:
            apply_validation_error(form, exc)
        trace_form = TraceForm({"material_code": form.data.get("material_code", ""),
                                "lot_number": form.data.get("lot_number", "")},
                               materials=services.bill_of_materials())
        found = None
        if trace_form.is_valid() and trace_form.asked:
            data = trace_form.cleaned_data
            found = recalls.lot_trace(material_code=data["material_code"], lot_number=data["lot_number"],
                                      user=request.user)
        return render(request, "supply/trace.html", {"form": trace_form, "trace": found, "open_form": form},
                      status=400)
    rows = sorted(recalls.recalls_visible(request.user).select_related("opened_by", "closed_by"),
                  key=lambda r: (not r.is_open,))
    return render(request, "supply/recalls.html", {"recalls": rows})


@requires(Perm.SUPPLY_VIEW, write=Perm.RECALL)
@require_http_methods(["GET", "POST"])
def recall_detail(request: HttpRequest, reference: str) -> HttpResponseBase:
    """One recall: why, who signed it, what it holds now (its lot's trace); POST closes it, signed."""
    found = (recalls.recalls_visible(request.user).select_related("opened_by", "closed_by")
             .filter(reference=reference).first())
    if found is None:
        raise Http404("No such recall.")
    form = RecallCloseForm(request.POST or None, ask_user_id=signing_needs_user_id(request))
    status = 200
    if request.method == "POST":
        status = 400
        try:
            if form.is_valid():
                recalls.recall_close(actor=request_actor(request), recall=found, outcome=form.cleaned_data["outcome"],
                                     credentials=form.credentials(request.session))
                messages.success(request, f"{found.reference} is closed; its holds are lifted.")
                return redirect("supply:recall", found.reference)
        except SigningRefused as exc:
            form.show_refusal(exc)
        except ValidationError as exc:
            apply_validation_error(form, exc)
    found_trace = recalls.lot_trace(material_code=found.material_code, lot_number=found.lot_number,
                                    user=request.user)
    return render(request, "supply/recall.html", {
        "recall": found, "trace": found_trace, "close_form": form if found.is_open and _may_recall(request) else None,
        "query": f"material_code={found.material_code}&lot_number={found.lot_number}"}, status=status)


@requires(Perm.SUPPLY_VIEW)
@require_GET
def reorder_page(request: HttpRequest) -> HttpResponseBase:
    """What each site will need and when to order it: reorder points and maximum levels computed from the
    booked schedule and the consumption history (``supply.reorder``), short positions first."""
    return render(request, "supply/reorder.html", {
        "needs": reorder.needs(user=request.user), "horizon": reorder.HORIZON_WEEKS,
        "history": reorder.HISTORY_WEEKS, "lead": reorder.LEAD_TIME_WEEKS, "safety": reorder.SAFETY_WEEKS,
        "may_request": _managed_locations(request).exists()})
