"""The materials page (docs/supply.md, "Materials and approved suppliers"): each material of the bill with
its storage conditions and its approved suppliers — their qualification and lead time. Everyone who sees
stock reads it; Control Site QA changes it here: a storage range, a new supplier registered, a supplier
approved for a material or (dis)qualified (each signed), a lead time. Every change is a service with its
ledger event."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from pocare.accounts import selectors as access
from pocare.accounts.decorators import request_actor, requires
from pocare.accounts.roles import Perm
from pocare.core.forms import apply_validation_error
from pocare.ledger.signing import SigningRefused, signing_needs_user_id
from pocare.supply import services
from pocare.supply.forms import (
    LeadTimeForm,
    StorageForm,
    SupplierApproveForm,
    SupplierQualifyForm,
    SupplierRegisterForm,
)
from pocare.supply.models import QUALIFIED, ApprovedSupplier, MaterialStorage, Supplier, SupplierStatus

#: The actions of the page, each a form of its own (prefixed by its name).
ACTIONS = ("storage", "register", "approve", "qualify", "lead_time")


@requires(Perm.SUPPLY_VIEW, write=Perm.SUPPLIERS_QUALIFY)
@require_http_methods(["GET", "POST"])
def materials(request: HttpRequest) -> HttpResponseBase:
    """Materials with storage and approved suppliers; QA's changes are posted here, one action at a time."""
    bill = services.bill_of_materials()
    action = request.POST.get("action") if request.method == "POST" else None
    ask_user_id = signing_needs_user_id(request)
    approvals = ApprovedSupplier.objects.select_related("supplier", "approved_by").order_by(
        "material_code", "supplier__name"
    )

    def bound(name: str) -> Any:
        return request.POST if action == name else None

    forms_: dict[str, Any] = {
        "storage": StorageForm(bound("storage"), materials=bill, prefix="storage"),
        "register": SupplierRegisterForm(
            bound("register"), prefix="register", ask_user_id=ask_user_id, statuses=SupplierStatus.choices
        ),
        "approve": SupplierApproveForm(
            bound("approve"),
            prefix="approve",
            ask_user_id=ask_user_id,
            materials=bill,
            suppliers=Supplier.objects.filter(status__in=QUALIFIED),
        ),
        "qualify": SupplierQualifyForm(
            bound("qualify"),
            prefix="qualify",
            ask_user_id=ask_user_id,
            suppliers=Supplier.objects.all(),
            statuses=SupplierStatus.choices,
        ),
        "lead_time": LeadTimeForm(bound("lead_time"), prefix="lead_time", approvals=approvals),
    }
    status = 200
    if request.method == "POST":
        status = 400
        form = forms_.get(action or "")
        if form is None:
            return render(
                request,
                "core/refused.html",
                {"status": 400, "field": "action", "message": f"Choose one of {', '.join(ACTIONS)}."},
                status=400,
            )
        try:
            if form.is_valid():
                messages.success(request, _do(request, action or "", form))
                return redirect("supply:materials")
        except SigningRefused as exc:
            form.show_refusal(exc)
        except ValidationError as exc:
            apply_validation_error(form, exc)
    by_material: dict[str, list[ApprovedSupplier]] = defaultdict(list)
    for approval in approvals:
        by_material[approval.material_code].append(approval)
    storage = {s.material_code: s for s in MaterialStorage.objects.all()}
    codes = sorted(set(bill) | set(by_material) | set(storage))
    rows = [
        {
            "code": code,
            "name": bill.get(code, {}).get("name", "—"),
            "unit": bill.get(code, {}).get("unit", ""),
            "storage": storage.get(code),
            "approvals": by_material.get(code, []),
        }
        for code in codes
    ]
    manages = not access.is_read_only(request.user) and access.has_perm(request.user, Perm.SUPPLIERS_QUALIFY)
    return render(
        request,
        "supply/materials.html",
        {
            "rows": rows,
            "suppliers": Supplier.objects.select_related("status_changed_by"),
            "forms": forms_,
            "manages": manages,
        },
        status=status,
    )


def _do(request: HttpRequest, action: str, form: Any) -> str:
    actor, d = request_actor(request), form.cleaned_data
    if action == "storage":
        kept = services.material_storage_set(
            actor=actor,
            material_code=d["material_code"],
            min_celsius=d["min_celsius"],
            max_celsius=d["max_celsius"],
            condition=d["condition"],
            reason=d["reason"],
        )
        return f"{kept.material_code} is kept at {kept.range_text} ({kept.condition})."
    if action == "register":
        supplier = services.supplier_register(
            actor=actor,
            name=d["name"],
            status=d["status"],
            reason=d["reason"],
            credentials=form.credentials(request.session),
        )
        return f"{supplier} is registered, {supplier.get_status_display().lower()} (signed)."
    if action == "approve":
        approval = services.supplier_approve_for(
            actor=actor,
            supplier=d["supplier"],
            material_code=d["material_code"],
            lead_time_days=d["lead_time_days"],
            reason=d["reason"],
            credentials=form.credentials(request.session),
        )
        return f"{approval.supplier} approved for {approval.material_code} (signed)."
    if action == "qualify":
        supplier = services.supplier_qualify(
            actor=actor,
            supplier=d["supplier"],
            status=d["status"],
            reason=d["reason"],
            credentials=form.credentials(request.session),
        )
        return f"{supplier} is now {supplier.get_status_display().lower()} (signed)."
    approval = services.supplier_lead_time_set(
        actor=actor, approval=d["approval"], lead_time_days=d["lead_time_days"], reason=d["reason"]
    )
    return f"{approval.supplier}'s lead time for {approval.material_code} is {approval.lead_time_days} days."
