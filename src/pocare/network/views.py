"""The network pages: every site the person may see; a site's lifecycle, readiness, units and
authorizations; a unit; the annual report on the master file. Views parse and call services."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.forms import Form
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from pocare.accounts.decorators import request_actor, requires
from pocare.accounts.roles import Perm
from pocare.core.forms import apply_validation_error
from pocare.core.listing import render_list
from pocare.ledger.models import Signature, chains_with_lanes
from pocare.ledger.signing import SigningRefused, signing_needs_user_id
from pocare.ledger.verify import signature_statuses
from pocare.network import selectors, services
from pocare.network.charts import lifecycle_svg
from pocare.network.filters import SITE_COLUMNS, UNIT_COLUMNS, SiteFilter, UnitFilter
from pocare.network.forms import (
    AnnualReportForm,
    AuthorizeForm,
    PerformanceRunForm,
    ReadinessForm,
    RevokeForm,
    TransitionForm,
    UnitRegisterForm,
    UnitRequalifyForm,
    UnitStatusForm,
)
from pocare.network.models import ManufacturingUnit, Site, SiteStatus, UnitStatus
from pocare.trail.selectors import events_visible

#: The site and unit pages hold several forms with a field of the same name (a reason, a password):
#: each form's fields get ids of their own, so every label names the field of its own form.
_IDS = {name: f"id_{name}_%s" for name in ("readiness", "run", "unit", "authorize", "revoke", "requalify", "status")}


@requires(Perm.NETWORK_VIEW)
@require_GET
def sites(request: HttpRequest) -> HttpResponseBase:
    """Every site the person may see, with its status, local time, usable units and authorizations."""
    return render_list(request, "network/sites.html", filterset_class=SiteFilter,
                       queryset=selectors.sites_overview(request.user), columns=SITE_COLUMNS, name="sites",
                       context={"year": timezone.now().year}, decorate=_with_local_time_and_usable_units)


def _with_local_time_and_usable_units(page: list[Site]) -> list[tuple[Site, dt.datetime, int]]:
    """Each site of the page with the time there now and how many of its units may be used now (one
    query for the page's units)."""
    now = timezone.now()
    usable: dict[int, int] = {}
    in_use = ManufacturingUnit.objects.filter(site__in=page).exclude(status=UnitStatus.RETIRED).select_related("site")
    for unit in in_use:
        usable[unit.site_id] = usable.get(unit.site_id, 0) + selectors.unit_usable(unit, now)[0]
    return [(site, now.astimezone(site.tz), usable.get(site.pk, 0)) for site in page]


@requires(Perm.NETWORK_VIEW)
@require_GET
def units(request: HttpRequest) -> HttpResponseBase:
    """Every manufacturing unit at the sites the person may see, whether it may be used now and why not."""
    return render_list(request, "network/units.html", filterset_class=UnitFilter,
                       queryset=selectors.units_visible(request.user), columns=UNIT_COLUMNS, name="units",
                       decorate=_with_usability)


def _with_usability(page: list[ManufacturingUnit]) -> list[tuple[ManufacturingUnit, str, str, tuple[bool, str]]]:
    """Each unit of the page with its calibration and maintenance due states (at its site's date)
    and whether it may be used now, as the site page shows them."""
    now = timezone.now()
    rows = []
    for unit in page:
        today = selectors.site_today(unit.site, now)
        rows.append((unit, selectors.unit_due_state(unit.calibration_due, today),
                     selectors.unit_due_state(unit.maintenance_due, today), selectors.unit_usable(unit, now)))
    return rows


# --- the site page ---------------------------------------------------------------------------------


def _products() -> list[tuple[str, str]]:
    return [(p.code, str(p)) for p in selectors.products()]


def _with_signatures(records: list[Any]) -> list[tuple[Any, list[tuple[Signature, bool, str]]]]:
    """Each record with its signatures and whether each still holds, in two queries however many
    records (one for the signatures, one for the records they bind: ``signature_statuses``), not
    two a record (issue 15, pages that do not grow)."""
    if not records:
        return []
    label = records[0]._meta.label
    by_record: dict[str, list[Signature]] = {str(r.pk): [] for r in records}
    for sig in Signature.objects.filter(record_type=label, record_id__in=list(by_record)):
        by_record[sig.record_id].append(sig)
    statuses = signature_statuses([sig for sigs in by_record.values() for sig in sigs])
    return [(r, [(sig, *statuses[sig.pk]) for sig in by_record[str(r.pk)]]) for r in records]


def _site_page(request: HttpRequest, site: Site, *, status: int = 200, **bound: Any) -> HttpResponse:
    """The site page, with any bound form (after a refused POST) in place of the empty one."""
    user = request.user
    ask = signing_needs_user_id(request)
    evidence = selectors.qualification_evidence(site)
    status_now, since, _ = selectors.site_status_at(site)
    can_start, why_not = selectors.site_can_start_batch(site)
    today = selectors.site_today(site)
    units = [(u, selectors.unit_due_state(u.calibration_due, today), selectors.unit_due_state(u.maintenance_due, today),
              selectors.unit_usable(u)) for u in selectors.units_visible(user).filter(site=site).order_by("serial")]
    transitions = _with_signatures(list(selectors.transitions_visible(user).filter(site=site).order_by("-at", "-pk")))
    authorizations = _with_signatures(list(selectors.authorizations_visible(user).filter(site=site)
                                           .order_by("-granted_at")))
    next_forms = []
    posted = bound.get("transition_form")
    for to in selectors.next_statuses(site):
        form = posted if posted is not None and posted.data.get("to_status") == to else \
            TransitionForm(initial={"to_status": to}, ask_user_id=ask, auto_id=f"id_t_{to}_%s")
        next_forms.append((to, SiteStatus(to).label, form))
    memberships = site.memberships.filter(revoked_at=None).select_related("user").order_by("role")
    events = events_visible(user).filter(chain__in=chains_with_lanes([site.code])).order_by("-id")[:15]
    context = {
        "site": site, "memberships": memberships, "events": events, "local_now": timezone.now().astimezone(site.tz),
        "status_since": since, "can_start": can_start, "why_not": why_not,
        "lifecycle_svg": mark_safe(lifecycle_svg(status_now, {to for to, _, _ in next_forms})),  # noqa: S308 (escaped)
        # Sites that joined already active (the demo's, or before POCare) have no readiness records.
        "registered_active": not any(t.to_status == SiteStatus.ACTIVE for t, _ in transitions)
        and site.status in (SiteStatus.ACTIVE, SiteStatus.SUSPENDED, SiteStatus.CLOSED),
        "evidence": evidence, "required_runs": selectors.REQUIRED_PASSED_RUNS,
        "next_forms": next_forms, "transitions": transitions, "authorizations": authorizations,
        "units": units, "due_soon_days": selectors.DUE_SOON_DAYS, "today": today,
        "may_govern": selectors.may_govern(user), "may_manage": selectors.may_manage_units(user, site),
        "readiness_form": bound.get("readiness_form") or ReadinessForm(auto_id=_IDS["readiness"]),
        "run_form": bound.get("run_form") or PerformanceRunForm(auto_id=_IDS["run"]),
        "unit_form": bound.get("unit_form") or UnitRegisterForm(auto_id=_IDS["unit"]),
        "authorize_form": bound.get("authorize_form") or AuthorizeForm(
            products=_products(), ask_user_id=ask, initial={"from_version": 1}, auto_id=_IDS["authorize"]),
        "revoke_form": bound.get("revoke_form") or RevokeForm(auto_id=_IDS["revoke"]),
        "revoke_pk": bound.get("revoke_pk"),
    }
    return render(request, "network/site.html", context, status=status)


def _visible_site(request: HttpRequest, code: str, perm: Perm = Perm.NETWORK_VIEW) -> Site:
    """The site, if the person holds ``perm`` there (404 otherwise)."""
    return get_object_or_404(selectors.sites_visible(request.user, perm), code=code)


@requires(Perm.NETWORK_VIEW)
@require_GET
def site_detail(request: HttpRequest, code: str) -> HttpResponse:
    return _site_page(request, _visible_site(request, code))


@requires(Perm.NETWORK_VIEW, write=Perm.SITES_GOVERN)
@require_POST
def site_transition(request: HttpRequest, code: str) -> HttpResponse:
    """Move the site to its next lifecycle status (signed)."""
    site = _visible_site(request, code, Perm.SITES_GOVERN)
    form = TransitionForm(request.POST, ask_user_id=signing_needs_user_id(request),
                          auto_id=f"id_t_{request.POST.get('to_status', '')}_%s")
    if form.is_valid():
        try:
            services.site_transition(actor=request_actor(request), site=site, to_status=form.cleaned_data["to_status"],
                                     reason=form.cleaned_data["reason"], credentials=form.credentials(request.session))
        except SigningRefused as exc:
            form.show_refusal(exc)
        except ValidationError as exc:
            apply_validation_error(form, exc)
        else:
            messages.success(request, f"{site.name} is now {SiteStatus(site.status).label.lower()}; "
                                      "the signed transition is in the audit trail.")
            return redirect(reverse("network:site", args=[site.code]) + "#lifecycle")
    return _site_page(request, site, status=400, transition_form=form)


def _record_at_site(
    request: HttpRequest, code: str, *, form: Form, form_name: str, record: Callable[..., Any],
    done: Callable[[Any], str], anchor: str,
) -> HttpResponse:
    """POST handler shared by the site page's record forms: parse, call the service, say what
    happened, or show the page again with the form's errors (status 400)."""
    site = _visible_site(request, code, Perm.UNITS_MANAGE)
    if form.is_valid():
        try:
            result = record(actor=request_actor(request), site=site, **form.cleaned_data)
        except ValidationError as exc:
            apply_validation_error(form, exc)
        else:
            messages.success(request, done(result))
            return redirect(reverse("network:site", args=[site.code]) + anchor)
    return _site_page(request, site, status=400, **{form_name: form})


@requires(Perm.NETWORK_VIEW, write=Perm.UNITS_MANAGE)
@require_POST
def site_readiness(request: HttpRequest, code: str) -> HttpResponse:
    """Record evidence for one readiness item."""
    form = ReadinessForm(request.POST, auto_id=_IDS["readiness"])
    return _record_at_site(request, code, form=form, form_name="readiness_form",
                           record=services.site_readiness_record, done=lambda _: "Readiness evidence recorded.",
                           anchor="#readiness")


@requires(Perm.NETWORK_VIEW, write=Perm.UNITS_MANAGE)
@require_POST
def site_run(request: HttpRequest, code: str) -> HttpResponse:
    """Record a process performance qualification run."""
    form = PerformanceRunForm(request.POST, auto_id=_IDS["run"])
    return _record_at_site(request, code, form=form, form_name="run_form",
                           record=services.performance_run_record, done=lambda _: "Performance run recorded.",
                           anchor="#readiness")


@requires(Perm.NETWORK_VIEW, write=Perm.UNITS_MANAGE)
@require_POST
def unit_register(request: HttpRequest, code: str) -> HttpResponse:
    """Register a manufacturing unit at the site."""
    form = UnitRegisterForm(request.POST, auto_id=_IDS["unit"])
    return _record_at_site(request, code, form=form, form_name="unit_form",
                           record=services.unit_register, done=lambda unit: f"{unit} registered.", anchor="#units")


def _valid_from(site: Site, day: dt.date | None) -> dt.datetime | None:
    """A date at the site as the moment it starts there; today (or nothing) means now."""
    if day is None or day == selectors.site_today(site):
        return None
    return dt.datetime.combine(day, dt.time.min, tzinfo=site.tz)


@requires(Perm.NETWORK_VIEW, write=Perm.SITES_GOVERN)
@require_POST
def site_authorize(request: HttpRequest, code: str) -> HttpResponse:
    """Authorize the site for a product's master file (signed)."""
    site = _visible_site(request, code, Perm.SITES_GOVERN)
    form = AuthorizeForm(request.POST, products=_products(), ask_user_id=signing_needs_user_id(request),
                         auto_id=_IDS["authorize"])
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.site_authorize(
                actor=request_actor(request), site=site, product=selectors.products().get(code=data["product"]),
                from_version=data["from_version"], valid_from=_valid_from(site, data["valid_from"]),
                conditions=data["conditions"], reason=data["reason"], credentials=form.credentials(request.session))
        except SigningRefused as exc:
            form.show_refusal(exc)
        except ValidationError as exc:
            apply_validation_error(form, exc)
        else:
            messages.success(request, f"{site.name} is authorized; the signed authorization is in the audit trail.")
            return redirect(reverse("network:site", args=[site.code]) + "#authorizations")
    return _site_page(request, site, status=400, authorize_form=form)


@requires(Perm.NETWORK_VIEW, write=Perm.SITES_GOVERN)
@require_POST
def authorization_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    """Revoke a site authorization, with the reason."""
    grant = get_object_or_404(selectors.authorizations_visible(request.user), pk=pk)
    form = RevokeForm(request.POST, auto_id=_IDS["revoke"])
    if form.is_valid():
        try:
            services.site_authorization_revoke(actor=request_actor(request), authorization=grant,
                                               reason=form.cleaned_data["reason"])
        except ValidationError as exc:
            apply_validation_error(form, exc)
        else:
            messages.success(request, f"The authorization of {grant.site.name} for {grant.product.code} is revoked.")
            return redirect(reverse("network:site", args=[grant.site.code]) + "#authorizations")
    return _site_page(request, grant.site, status=400, revoke_form=form, revoke_pk=grant.pk)


# --- a unit ---------------------------------------------------------------------------------------


@requires(Perm.NETWORK_VIEW, write=Perm.UNITS_MANAGE)
@require_http_methods(["GET", "POST"])
def unit_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A manufacturing unit: whether it may be used, its due dates, its history; requalify it or
    take it out of service."""
    unit: ManufacturingUnit = get_object_or_404(selectors.units_visible(
        request.user, Perm.UNITS_MANAGE if request.method == "POST" else Perm.NETWORK_VIEW), pk=pk)
    action = request.POST.get("action", "")
    requalify_form = UnitRequalifyForm(request.POST if action == "requalify" else None, auto_id=_IDS["requalify"])
    status_form = UnitStatusForm(request.POST if action == "status" else None, auto_id=_IDS["status"])
    if request.method == "POST":
        form: Form = requalify_form if action == "requalify" else status_form
        if action not in ("requalify", "status"):
            # bound, so that it can carry the error
            status_form = form = UnitStatusForm(request.POST, auto_id=_IDS["status"])
            form.is_valid()
            form.add_error(None, "action: use requalify or status.")
        elif form.is_valid():
            try:
                if action == "requalify":
                    services.unit_requalify(actor=request_actor(request), unit=unit, **form.cleaned_data)
                else:
                    services.unit_status_change(actor=request_actor(request), unit=unit, **form.cleaned_data)
            except ValidationError as exc:
                apply_validation_error(form, exc)
            else:
                messages.success(request, "Done; the change is in the audit trail.")
                return redirect("network:unit", pk=unit.pk)
    today = selectors.site_today(unit.site)
    events = events_visible(request.user).filter(
        object_type="network.ManufacturingUnit", object_id=str(unit.pk)).order_by("-id")
    return render(request, "network/unit.html", {
        "unit": unit, "site": unit.site, "usable": selectors.unit_usable(unit), "today": today,
        "calibration_state": selectors.unit_due_state(unit.calibration_due, today),
        "maintenance_state": selectors.unit_due_state(unit.maintenance_due, today),
        "requalify_form": requalify_form, "status_form": status_form, "events": events,
        "may_manage": selectors.may_manage_units(request.user, unit.site), "due_soon_days": selectors.DUE_SOON_DAYS,
    }, status=400 if request.method == "POST" else 200)


# --- the annual report ------------------------------------------------------------------------------


@requires(Perm.REPORTS_VIEW, recorded_read=True)
@require_http_methods(["GET", "POST"])
def annual_report(request: HttpRequest) -> HttpResponse:
    """The annual report on the master file (POC-4): the GET shows the choice (``?year=`` preselects
    one); generating it — ``year``, ``product``, ``format`` (``pdf`` for the PDF) — is recorded in
    the ledger, so it is a POST (GET never writes)."""
    products = _products()
    data = request.POST.copy() if request.method == "POST" else None
    if data is not None and "product" not in data and len(products) == 1:
        data["product"] = products[0][0]
    year = request.GET.get("year", "")
    form = AnnualReportForm(data, products=products,
                            initial={"year": int(year) if year.isdigit() else timezone.now().year,
                                     "product": products[0][0] if products else ""})
    if not form.is_bound:
        return render(request, "network/annual_report.html", {"form": form, "report": None})
    if not form.is_valid():
        return render(request, "network/annual_report.html", {"form": form, "report": None}, status=400)
    code = form.cleaned_data["product"]
    product = selectors.products().get(code=code) if code else None
    fmt = form.cleaned_data["format"] or "html"
    if fmt == "pdf":
        try:
            import weasyprint  # noqa: F401  # late: a cheap check here answers 503 before anything is queued
        except (ImportError, OSError) as exc:  # WeasyPrint needs Pango and friends from the system
            return HttpResponse(f"PDF output is unavailable on this server ({exc}). The HTML report works; "
                                "print it to PDF from the browser.", status=503, content_type="text/plain")
    if fmt == "pdf":  # a job makes the PDF; its page follows it and offers the download
        job = services.annual_report_pdf_request(actor=request_actor(request), year=form.cleaned_data["year"],
                                                 product=product)
        return redirect("jobs:job", pk=job.pk)
    report = services.annual_report_generate(actor=request_actor(request), year=form.cleaned_data["year"],
                                             product=product, fmt=fmt)
    context = {"form": form, "report": report, "control": selectors.control_site()}
    return render(request, "network/annual_report.html", context)
