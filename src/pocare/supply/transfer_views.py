"""Transfer pages (docs/supply.md, "Transfers between sites"): the transfers from and to the sites a person
sees, with the dispatch form; one transfer with its logger upload and its receipt. Another site's transfer
is a 404 unless that site sends or receives it."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Sum
from django.http import Http404, HttpRequest
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from pocare.accounts import selectors as access
from pocare.accounts.decorators import request_actor, requires
from pocare.accounts.roles import Perm
from pocare.accounts.selectors import sites_with_perm
from pocare.core.forms import apply_validation_error
from pocare.ledger.signing import SigningRefused, signing_needs_user_id
from pocare.manufacturing.models import LotStatus, MaterialLot
from pocare.supply import transfers
from pocare.supply.forms import DispatchForm, DispositionForm, ReadingsForm, TransferReceiveForm
from pocare.supply.models import StockLocation, StockMovement

#: Transfers listed, newest first.
TRANSFERS_SHOWN = 200


def _managed_sites(request: HttpRequest) -> set[int] | None:
    if access.is_read_only(request.user):
        return set()
    return sites_with_perm(request.user, Perm.MATERIALS_MANAGE)


def _dispatch_form(request: HttpRequest) -> DispatchForm:
    sites = _managed_sites(request)
    sources = StockLocation.objects.select_related("site").order_by("site__code", "code")
    lots = (MaterialLot.objects.filter(status=LotStatus.RELEASED, expiry_date__gte=timezone.now().date(),
                                       pk__in=StockMovement.objects.values("lot_id"))
            .select_related("site").order_by("site__code", "material_code", "expiry_date"))
    if sites is not None:
        sources, lots = sources.filter(site_id__in=sites), lots.filter(site_id__in=sites)
    destinations = StockLocation.objects.select_related("site").order_by("site__code", "code")
    initial = {}
    if (wanted := request.GET.get("lot", "")).isdigit():
        initial["lot"] = wanted
    return DispatchForm(request.POST or None, sources=sources, lots=lots, destinations=destinations,
                        initial=initial)


@requires(Perm.SUPPLY_VIEW, write=Perm.MATERIALS_MANAGE)
@require_http_methods(["GET", "POST"])
def transfer_list(request: HttpRequest) -> HttpResponseBase:
    """The transfers from and to the person's sites, in transit first; POST dispatches one."""
    form = _dispatch_form(request)
    may_dispatch = form.fields["source"].queryset.exists()  # type: ignore[attr-defined]
    status = 200
    if request.method == "POST":
        status = 400
        try:
            if not may_dispatch:
                raise PermissionDenied("You manage no site's stock.")
            if form.is_valid():
                d = form.cleaned_data
                sent = transfers.transfer_dispatch(
                    actor=request_actor(request), source=d["source"], destination=d["destination"], lot=d["lot"],
                    quantity=d["quantity"], logger_id=d["logger_id"], carrier=d["carrier"], seal=d["seal"],
                    reason=d["reason"])
                messages.success(request, f"{sent.reference}: {sent.quantity.normalize():f} {sent.unit} of "
                                          f"{sent.source_lot} dispatched to {sent.destination.site.code}; in transit.")
                return redirect("supply:transfer", sent.reference)
        except ValidationError as exc:
            apply_validation_error(form, exc)
    found = transfers.transfers_visible(request.user)
    rows = sorted(found[:TRANSFERS_SHOWN], key=lambda t: (not t.in_transit,))
    in_transit = found.filter(status="in_transit").values("unit").annotate(total=Sum("quantity")).order_by("unit")
    return render(request, "supply/transfers.html", {"transfers": rows, "form": form, "may_dispatch": may_dispatch,
                                                     "shown": TRANSFERS_SHOWN, "in_transit": in_transit},
                  status=status)


@requires(Perm.SUPPLY_VIEW, write=Perm.MATERIALS_MANAGE)
@require_http_methods(["GET", "POST"])
def transfer_detail(request: HttpRequest, reference: str) -> HttpResponseBase:
    """One transfer: what, from where to where, its custody and logger; the logger's CSV and the
    receipt (the destination's materials manager) are posted here."""
    transfer = transfers.transfers_visible(request.user).filter(reference=reference).first()
    if transfer is None:
        raise Http404("No such transfer.")
    action = request.POST.get("action") if request.method == "POST" else None
    upload = ReadingsForm(request.POST if action == "upload" else None,
                          request.FILES if action == "upload" else None, prefix="upload")
    receive = TransferReceiveForm(request.POST if action == "receive" else None, prefix="receive")
    status = 200
    if request.method == "POST":
        status = 400
        form: Any = {"upload": upload, "receive": receive}.get(action or "")
        try:
            if form is None:
                raise ValidationError({"action": "Choose upload or receive."})
            if form.is_valid():
                actor = request_actor(request)
                if action == "upload":
                    raw = form.cleaned_data["csv_file"].read(transfers.MAX_CSV_BYTES + 1)
                    try:
                        text = raw.decode("utf-8")
                    except UnicodeDecodeError:
                        raise ValidationError({"csv_file": "The file is not UTF-8 text."}) from None
                    stored = transfers.transfer_readings_upload(actor=actor, transfer=transfer, csv_text=text)
                    messages.success(request, f"{stored} reading(s) stored for logger {transfer.logger_id}.")
                else:
                    d = form.cleaned_data
                    done = transfers.transfer_receive(actor=actor, transfer=transfer,
                                                      handed_over_by=d["handed_over_by"],
                                                      seal_intact=d["seal_intact"], arrived_at=d["arrived_at"],
                                                      reason=d["reason"])
                    lot = done.destination_lot
                    messages.success(request, f"{done.reference} received at {done.destination.site.code}: {lot} "
                                              f"is {lot.get_status_display().lower() if lot else '—'}"
                                              + (f"; deviation {done.deviation.reference} opened."
                                                 if done.deviation else "."))
                return redirect("supply:transfer", transfer.reference)
        except ValidationError as exc:
            if form is None:
                return render(request, "core/refused.html", {"status": 400, "field": "action",
                                                              "message": exc.messages[0]}, status=400)
            apply_validation_error(form, exc)
    readings = list(transfer.readings.order_by("at").values_list("at", "celsius", "in_limits"))
    managed = _managed_sites(request)

    def may(site_id: int) -> bool:
        return managed is None or site_id in managed

    return render(request, "supply/transfer.html", {
        "t": transfer, "readings": readings[:20] + readings[-20:] if len(readings) > 40 else readings,
        "count": len(readings), "outside": sum(1 for r in readings if not r[2]),
        "may_upload": transfer.in_transit and (may(transfer.source.site_id) or may(transfer.destination.site_id)),
        "may_receive": transfer.in_transit and may(transfer.destination.site_id),
        "may_dispose": transfer.held and _may_dispose(request, transfer),
        "upload": upload, "receive": receive}, status=status)


def _may_dispose(request: HttpRequest, transfer: Any) -> bool:
    return not access.is_read_only(request.user) and access.has_perm(request.user, Perm.DEVIATION_CLOSE,
                                                                     site_id=transfer.destination.site_id)


@requires(Perm.SUPPLY_VIEW, write=Perm.DEVIATION_CLOSE)
@require_http_methods(["GET", "POST"])
def transfer_disposition(request: HttpRequest, reference: str) -> HttpResponseBase:
    """QA's decision on the stock held on a transfer (release back to use, or reject and destroy), signed:
    the page says what is held and why, and asks to confirm before the decision, which is final."""
    transfer = transfers.transfers_visible(request.user).filter(reference=reference).first()
    if transfer is None:
        raise Http404("No such transfer.")
    form = DispositionForm(request.POST or None, ask_user_id=signing_needs_user_id(request))
    status = 200
    if request.method == "POST":
        status = 400
        try:
            if form.is_valid():
                done = transfers.transfer_disposition(actor=request_actor(request), transfer=transfer,
                                                      decision=form.cleaned_data["decision"],
                                                      reason=form.cleaned_data["reason"],
                                                      credentials=form.credentials(request.session))
                messages.success(request, f"{done.reference}: {done.get_disposition_display().lower()} (signed).")
                return redirect("supply:transfer", done.reference)
        except SigningRefused as exc:
            form.show_refusal(exc)
        except ValidationError as exc:
            apply_validation_error(form, exc)
    return render(request, "supply/transfer_disposition.html", {
        "t": transfer, "form": form, "may_dispose": transfer.held and _may_dispose(request, transfer)},
        status=status)
