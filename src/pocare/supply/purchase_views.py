"""Purchase request pages (docs/supply.md, "Purchase requests"): the requests of the sites a person sees,
raised from the reorder page; one request with its approval (signed), order, receipt or cancellation.
Another site's request is a 404."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from pocare.accounts import selectors as access
from pocare.accounts.decorators import request_actor, requires
from pocare.accounts.roles import Perm
from pocare.accounts.selectors import sites_with_perm
from pocare.core.forms import apply_validation_error
from pocare.ledger.signing import SigningRefused, signing_needs_user_id
from pocare.manufacturing.models import MaterialLot
from pocare.network.models import Site
from pocare.supply import purchases, selectors, services
from pocare.supply.forms import (
    PurchaseApproveForm,
    PurchaseCancelForm,
    PurchaseDeliveryForm,
    PurchaseOrderForm,
    PurchaseReceiveForm,
    PurchaseRequestForm,
)
from pocare.supply.models import QUALIFIED, PurchaseRequest, PurchaseStatus, StockLocation, Supplier

#: Requests listed, newest first.
REQUESTS_SHOWN = 200


def _proposed(value: Any) -> Decimal | None:
    try:
        number = Decimal(str(value or "").strip()[:20]) if str(value or "").strip() else None
    except InvalidOperation:
        return None
    return number if number is not None and number.is_finite() and number >= 0 else None


@requires(Perm.SUPPLY_VIEW, write=Perm.MATERIALS_MANAGE)
@require_http_methods(["GET", "POST"])
def purchase_list(request: HttpRequest) -> HttpResponseBase:
    """The purchase requests of the person's sites, open first; POST raises one (from the reorder page)."""
    managed = set() if access.is_read_only(request.user) else sites_with_perm(request.user, Perm.MATERIALS_MANAGE)
    sites = Site.objects.filter(pk__in=Site.objects.filter(stock_locations__isnull=False).values("pk")).order_by("code")
    if managed is not None:
        sites = sites.filter(pk__in=managed)
    materials = services.bill_of_materials()
    initial: dict[str, Any] = {k: request.GET[k] for k in ("material_code", "quantity", "proposed") if k in request.GET}
    if (code := request.GET.get("site")) and (found := sites.filter(code=code).first()):
        initial["site"] = found.pk
    form = PurchaseRequestForm(request.POST or None, sites=sites, materials=materials, initial=initial,
                               suppliers=Supplier.objects.filter(status__in=QUALIFIED))
    status = 200
    if request.method == "POST":
        status = 400
        try:
            if not sites.exists():
                raise PermissionDenied("You manage no site's stock.")
            if form.is_valid():
                d = form.cleaned_data
                raised = purchases.purchase_request(actor=request_actor(request), site=d["site"],
                                                    material_code=d["material_code"], supplier=d["supplier"],
                                                    quantity=d["quantity"], reason=d["reason"],
                                                    proposed=_proposed(d["proposed"]))
                messages.success(request, f"{raised.reference} raised; it awaits the approval of the site's manager "
                                          "or QA.")
                return redirect("supply:purchase", raised.reference)
        except ValidationError as exc:
            apply_validation_error(form, exc)
    rows = sorted(purchases.requests_visible(request.user)[:REQUESTS_SHOWN], key=lambda r: (not r.is_open,))
    return render(request, "supply/purchases.html", {"requests": rows, "form": form, "may_raise": sites.exists(),
                                                     "shown": REQUESTS_SHOWN}, status=status)


#: The actions of a request's page.
ACTIONS = ("approve", "order", "deliver", "receive", "cancel")


@requires(Perm.SUPPLY_VIEW)
@require_http_methods(["GET", "POST"])
def purchase_detail(request: HttpRequest, reference: str) -> HttpResponseBase:
    """One request: what, for whom, from whom, each step and who took it; its next step is posted here."""
    found = purchases.requests_visible(request.user).filter(reference=reference).first()
    if found is None:
        raise Http404("No such purchase request.")
    action = request.POST.get("action") if request.method == "POST" else None
    data = request.POST if action else None
    lots = MaterialLot.objects.filter(site_id=found.site_id, material_code=found.material_code).order_by("-received_at")
    forms_: dict[str, Any] = {
        "approve": PurchaseApproveForm(data if action == "approve" else None, prefix="approve",
                                       ask_user_id=signing_needs_user_id(request)),
        "order": PurchaseOrderForm(data if action == "order" else None, prefix="order"),
        "deliver": PurchaseDeliveryForm(data if action == "deliver" else None, prefix="deliver",
                                        locations=StockLocation.objects.filter(site_id=found.site_id)
                                        .order_by("kind", "code")),
        "receive": PurchaseReceiveForm(data if action == "receive" else None, lots=lots, prefix="receive"),
        "cancel": PurchaseCancelForm(data if action == "cancel" else None, prefix="cancel"),
    }
    status = 200
    if request.method == "POST":
        status = 400
        form = forms_.get(action or "")
        try:
            if form is None:
                raise ValidationError({"action": f"Choose one of {', '.join(ACTIONS)}."})
            if form.is_valid():
                messages.success(request, _do(request, found, action or "", form))
                return redirect("supply:purchase", found.reference)
        except SigningRefused as exc:
            forms_["approve"].show_refusal(exc)
        except ValidationError as exc:
            if form is None:
                return render(request, "core/refused.html", {"status": 400, "field": "action",
                                                              "message": exc.messages[0]}, status=400)
            apply_validation_error(form, exc)
    user, site_id = request.user, found.site_id
    writes = not access.is_read_only(user)
    manages = writes and access.has_perm(user, Perm.MATERIALS_MANAGE, site_id=site_id)
    approves = writes and access.has_perm(user, Perm.PURCHASE_APPROVE, site_id=site_id)
    shown = {"approve": approves and found.status == PurchaseStatus.REQUESTED,
             "order": manages and found.status == PurchaseStatus.APPROVED,
             "deliver": manages and found.status == PurchaseStatus.ORDERED,
             "receive": manages and found.status == PurchaseStatus.ORDERED,
             "cancel": (manages or approves) and found.is_open}
    deliveries = list(found.deliveries.select_related("lot", "received_by", "movement__location"))
    received = sum((d.quantity for d in deliveries), Decimal(0))
    return render(request, "supply/purchase.html", {
        "r": found, "forms": forms_, "shown": shown, "lots": found.lots.all(), "deliveries": deliveries,
        "received": received, "outstanding": found.quantity - received if found.status != PurchaseStatus.CANCELLED
        else Decimal(0)}, status=status)


def _do(request: HttpRequest, found: PurchaseRequest, action: str, form: Any) -> str:
    actor, d = request_actor(request), form.cleaned_data
    if action == "approve":
        purchases.purchase_approve(actor=actor, request=found, reason=d["reason"],
                                   credentials=form.credentials(request.session))
        return f"{found.reference} approved (signed)."
    if action == "order":
        purchases.purchase_order(actor=actor, request=found, order_number=d["order_number"])
        return f"{found.reference} ordered ({d['order_number']})."
    if action == "deliver":
        delivery = purchases.purchase_delivery(actor=actor, request=found, location=d["location"],
                                               lot_number=d["lot_number"], expiry_date=d["expiry_date"],
                                               quantity=d["quantity"], unit_price=d["unit_price"],
                                               reason=d["reason"])
        found.refresh_from_db()
        left = found.quantity - purchases.delivered(found)
        return (f"{selectors.amount(delivery.quantity)} {found.unit} received into quarantine as "
                f"{delivery.lot}; " + (f"{selectors.amount(left)} {found.unit} outstanding." if left
                                       else f"{found.reference} is received in full."))
    if action == "receive":
        purchases.purchase_receive(actor=actor, request=found, lots=list(d["lots"]), reason=d["reason"])
        return f"{found.reference} received."
    purchases.purchase_cancel(actor=actor, request=found, reason=d["reason"])
    return f"{found.reference} cancelled."
