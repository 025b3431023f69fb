"""The master-file pages: products and each site's effective version, versions with their
signatures and the signing action the viewer may take, diffs, change requests, and the dossier."""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from pocare.accounts import selectors as access
from pocare.accounts.decorators import request_actor, requires
from pocare.accounts.roles import Perm
from pocare.core.forms import apply_validation_error
from pocare.core.listing import render_list
from pocare.ledger.signing import SigningRefused, signing_needs_user_id
from pocare.masterfile import selectors, services
from pocare.masterfile.diff import diff_content
from pocare.masterfile.dossier import DossierUnavailable, dossier_version
from pocare.masterfile.filters import CHANGE_COLUMNS, ChangeRequestFilter
from pocare.masterfile.forms import ChangeRequestForm, DiffForm, SignActionForm
from pocare.masterfile.models import ChangeRequest, ChangeStatus, MasterFileVersion, VersionStatus
from pocare.network.models import SiteKind
from pocare.network.selectors import sites_visible

Service = Callable[..., Any]

SERVICES: dict[str, Service] = {
    "submit": services.version_submit,
    "review": services.version_review,
    "return": services.version_return,
    "approve": services.version_approve,
    "effective": services.version_make_effective,
}
SUCCESS = {
    "submit": "{v} signed as authored and submitted for review.",
    "review": "{v} signed as reviewed; it now waits for the QP's approval.",
    "return": "{v} returned to its author as a draft.",
    "approve": "{v} approved. Control Site QA can now make it effective.",
    "effective": "{v} is effective. Each site changes over once its operators are trained on what changed.",
}



@requires(Perm.MASTERFILE_VIEW)
@require_GET
def masterfile_list(request: HttpRequest) -> HttpResponse:
    """Every product with its versions and the sites × versions table of what is effective where."""
    user = request.user
    # Every product's table, versions and open changes in a fixed number of queries (issue 15).
    listed = list(selectors.products_visible(user))
    tables = selectors.effective_versions_by_site_many(listed, sites=sites_visible(user))
    own: dict[int, list[MasterFileVersion]] = {p.pk: [] for p in listed}
    for version in (selectors.versions_visible(user).filter(product__in=listed)
                    .select_related("product", "change_request", "author", "reviewer", "approver")
                    .defer("document").order_by("-number")):
        own[version.product_id].append(version)
    open_changes = dict(selectors.change_requests_visible(user).filter(product__in=listed)
                        .exclude(status__in=[ChangeStatus.IMPLEMENTED, ChangeStatus.REJECTED])
                        .order_by().values("product_id").annotate(n=Count("pk")).values_list("product_id", "n"))
    products = [{
        "product": product,
        "versions": list(pairwise([*own[product.pk], None])),  # (version, the one before it); none for a new product
        "released": tables[product.pk][0],
        "rows": tables[product.pk][1],
        "open_changes": open_changes.get(product.pk, 0),
    } for product in listed]
    return render(request, "masterfile/list.html", {
        "products": products,
        "can_raise": access.has_perm(user, Perm.CHANGE_RAISE) and not access.is_read_only(user),
        "can_export": access.has_perm(user, Perm.REPORTS_VIEW),
    })


def _detail(request: HttpRequest, version: MasterFileVersion, *, posted: dict[str, SignActionForm] | None = None,
            status: int = 200) -> HttpResponse:
    user = request.user
    ask = signing_needs_user_id(request)
    posted = posted or {}
    actions = [
        (action, posted.get(action.name) or SignActionForm(prefix=action.name, irreversible=action.irreversible,
                                                           ask_user_id=ask))
        for action in selectors.version_actions(user, version)
    ]
    # A form that failed for an action no longer offered (e.g. state changed) is still shown with its error.
    for name, form in posted.items():
        if name not in {a.name for a, _ in actions}:
            actions.append((selectors.ACTIONS[name], form))
    previous = (selectors.versions_visible(user).filter(product=version.product, number__lt=version.number)
                .order_by("-number").first())
    cr = version.change_request
    return render(request, "masterfile/version.html", {
        "version": version,
        "content": version.content,
        "signatures": selectors.signatures_with_status(version),
        "actions": actions,
        "waiting_for": selectors.waiting_for(version),
        "previous": previous,
        "change_request": cr,
        "cr_sites": list(cr.sites.all()) if cr else [],
        "required_training": selectors.required_training_steps(version),
    }, status=status)


@requires(Perm.MASTERFILE_VIEW)
@require_GET
def version_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One version: its process and specification, its signatures, and what the viewer may sign."""
    version = get_object_or_404(selectors.versions_visible(request.user), pk=pk)
    return _detail(request, version)


def _require_reviewer_or_qp(user: Any) -> None:
    """Returning a version and rejecting a change are for the reviewers (Control Site QA) and the QP."""
    if not (access.has_perm(user, Perm.MASTERFILE_REVIEW) or access.has_perm(user, Perm.MASTERFILE_APPROVE)):
        raise PermissionDenied("Only Control Site QA or the QP may do this.")


def _act(request: HttpRequest, pk: int, name: str) -> HttpResponse:
    """Run one signed lifecycle step from the version page's form; on refusal show the page again."""
    if name == "return":
        _require_reviewer_or_qp(request.user)
    version = get_object_or_404(selectors.versions_visible(request.user), pk=pk)
    action = selectors.ACTIONS[name]
    form = SignActionForm(request.POST, prefix=name, irreversible=action.irreversible,
                          ask_user_id=signing_needs_user_id(request))
    if form.is_valid():
        try:
            done = SERVICES[name](actor=request_actor(request), version=version,
                                  credentials=form.credentials(request.session), reason=form.cleaned_data["reason"])
        except SigningRefused as exc:
            form.show_refusal(exc)
        except ValidationError as exc:
            apply_validation_error(form, exc)
        else:
            messages.success(request, SUCCESS[name].format(v=done))
            return redirect("masterfile:version", pk=done.pk)
    version.refresh_from_db()
    return _detail(request, version, posted={name: form}, status=400)


@requires(Perm.MASTERFILE_VIEW, write=Perm.CHANGE_RAISE)
@require_http_methods(["POST"])
def version_submit(request: HttpRequest, pk: int) -> HttpResponse:
    """The author signs the draft as authored and submits it (Control Site QA; a site manager for
    the change they raised)."""
    return _act(request, pk, "submit")


@requires(Perm.MASTERFILE_VIEW, write=Perm.MASTERFILE_REVIEW)
@require_http_methods(["POST"])
def version_review(request: HttpRequest, pk: int) -> HttpResponse:
    """Control Site QA, not the author, signs the version as reviewed."""
    return _act(request, pk, "review")


@requires(Perm.MASTERFILE_VIEW)
@require_http_methods(["POST"])
def version_return(request: HttpRequest, pk: int) -> HttpResponse:
    """The reviewer or the QP returns the version to its author (the service checks who may)."""
    return _act(request, pk, "return")


@requires(Perm.MASTERFILE_VIEW, write=Perm.MASTERFILE_APPROVE)
@require_http_methods(["POST"])
def version_approve(request: HttpRequest, pk: int) -> HttpResponse:
    """The QP, a third person, approves the reviewed version."""
    return _act(request, pk, "approve")


@requires(Perm.MASTERFILE_VIEW, write=Perm.MASTERFILE_AUTHOR)
@require_http_methods(["POST"])
def version_effective(request: HttpRequest, pk: int) -> HttpResponse:
    """Control Site QA makes the approved version effective."""
    return _act(request, pk, "effective")


@requires(Perm.MASTERFILE_VIEW)
@require_GET
def version_document(request: HttpRequest, pk: int) -> HttpResponse:
    """The version's YAML source, as authored."""
    version = get_object_or_404(selectors.versions_visible(request.user), pk=pk)
    response = HttpResponse(version.document, content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'inline; filename="{version.product.code}-v{version.number}.yaml"'
    return response


@requires(Perm.MASTERFILE_VIEW)
@require_GET
def version_diff(request: HttpRequest) -> HttpResponse:
    """A readable diff between any two versions the viewer may read (``?a=<id>&b=<id>``)."""
    visible = selectors.versions_visible(request.user).order_by("product__code", "-number")
    choices = [(str(v.pk), f"{v.product.code} v{v.number} ({v.get_status_display().lower()})") for v in visible]
    if "a" not in request.GET and "b" not in request.GET:
        latest = list(visible[:2])
        initial = {"b": str(latest[0].pk), "a": str(latest[1].pk)} if len(latest) == 2 else {}
        return render(request, "masterfile/diff.html", {"form": DiffForm(initial=initial, versions=choices)})
    form = DiffForm(request.GET, versions=choices)
    if not form.is_valid():
        return render(request, "masterfile/diff.html", {"form": form}, status=400)
    a = visible.get(pk=form.cleaned_data["a"])
    b = visible.get(pk=form.cleaned_data["b"])
    if a.product_id != b.product_id:
        form.add_error("b", f"Compare two versions of the same product ({a.product.code} and {b.product.code} differ).")
        return render(request, "masterfile/diff.html", {"form": form}, status=400)
    return render(request, "masterfile/diff.html", {
        "form": form, "a": a, "b": b, "diff": diff_content(a.content, b.content),
    })


@requires(Perm.MASTERFILE_VIEW)
@require_GET
def changes(request: HttpRequest) -> HttpResponseBase:
    """Change requests the viewer may read, newest first."""
    user = request.user
    return render_list(request, "masterfile/changes.html", filterset_class=ChangeRequestFilter,
                       queryset=selectors.change_requests_visible(user), columns=CHANGE_COLUMNS, name="changes",
                       context={"can_raise": access.has_perm(user, Perm.CHANGE_RAISE)
                                and not access.is_read_only(user)})


def _may_reject(user: Any, cr: ChangeRequest) -> bool:
    return (not access.is_read_only(user) and cr.status in (ChangeStatus.DRAFT, ChangeStatus.SUBMITTED)
            and (access.has_perm(user, Perm.MASTERFILE_REVIEW) or access.has_perm(user, Perm.MASTERFILE_APPROVE)))


def _change_page(request: HttpRequest, cr: ChangeRequest, *, reject_form: SignActionForm | None = None,
                 status: int = 200) -> HttpResponse:
    version = selectors.proposed_version(cr)
    user = request.user
    can_reject = _may_reject(user, cr)
    if can_reject and reject_form is None:
        reject_form = SignActionForm(prefix="reject", irreversible=True,
                                     ask_user_id=signing_needs_user_id(request))
    return render(request, "masterfile/change.html", {
        "cr": cr,
        "version": version,
        "sites": list(cr.sites.all()),
        "diff": diff_content(cr.base_version.content, version.content) if version else None,
        "signatures": selectors.signatures_with_status(cr),
        "version_signatures": selectors.signatures_with_status(version) if version else [],
        "waiting_for": selectors.waiting_for(version) if version else "",
        "actions": selectors.version_actions(user, version) if version else [],
        "reject_form": reject_form if (can_reject or reject_form is not None) else None,
    }, status=status)


@requires(Perm.MASTERFILE_VIEW)
@require_GET
def change_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One change request: what changes, its risk, sites, training, evidence, diff and signatures."""
    cr = get_object_or_404(selectors.change_requests_visible(request.user), pk=pk)
    return _change_page(request, cr)


@requires(Perm.MASTERFILE_VIEW)
@require_http_methods(["POST"])
def change_reject(request: HttpRequest, pk: int) -> HttpResponse:
    """Control Site QA or the QP rejects a change request (signed; the service checks again)."""
    _require_reviewer_or_qp(request.user)
    cr = get_object_or_404(selectors.change_requests_visible(request.user), pk=pk)
    form = SignActionForm(request.POST, prefix="reject", irreversible=True,
                          ask_user_id=signing_needs_user_id(request))
    if form.is_valid():
        try:
            services.change_request_reject(actor=request_actor(request), change_request=cr,
                                           credentials=form.credentials(request.session),
                                           reason=form.cleaned_data["reason"])
        except SigningRefused as exc:
            form.show_refusal(exc)
        except ValidationError as exc:
            apply_validation_error(form, exc)
        else:
            messages.success(request, f"{cr.reference} rejected.")
            return redirect("masterfile:change", pk=cr.pk)
    cr.refresh_from_db()
    return _change_page(request, cr, reject_form=form, status=400)


@requires(Perm.CHANGE_RAISE)
@require_http_methods(["GET", "POST"])
def change_raise(request: HttpRequest) -> HttpResponse:
    """Raise a change request with the proposed document; schema errors are shown with their lines."""
    user = request.user
    # The products with an effective version, in one query however many (issue 15).
    effective = MasterFileVersion.objects.filter(status=VersionStatus.EFFECTIVE).values("product_id")
    products = list(selectors.products_visible(user).filter(pk__in=effective))
    sites = [s for s in sites_visible(user).exclude(kind=SiteKind.CONTROL).order_by("code")
             if access.has_perm(user, Perm.CHANGE_RAISE, site_id=s.pk)]
    product_choices = [(p.code, f"{p.name} ({p.code})") for p in products]
    site_choices = [(s.code, f"{s.code} — {s.name}") for s in sites]
    problems: list[Any] = []
    if request.method == "POST":
        form = ChangeRequestForm(request.POST, products=product_choices, sites=site_choices)
        if form.is_valid():
            data = form.cleaned_data
            chosen = next(p for p in products if p.code == data["product"])
            try:
                cr = services.change_request_raise(
                    actor=request_actor(request), product=chosen, title=data["title"], description=data["description"],
                    severity=int(data["severity"]), probability=int(data["probability"]),
                    detectability=int(data["detectability"]), sites=[s for s in sites if s.code in data["sites"]],
                    comparability_evidence=data["comparability_evidence"], document=data["document"],
                    reason=data["reason"],
                )
            except services.DocumentInvalid as exc:
                problems = list(exc.problems)
                plural = "s" if len(problems) != 1 else ""
                form.add_error("document", f"The document has {len(problems)} problem{plural}; see the list below "
                                           "the field.")
            except ValidationError as exc:
                apply_validation_error(form, exc)
            else:
                messages.success(request, f"{cr.reference} raised ({cr.get_risk_class_display().lower()} risk). "
                                          "Sign the proposed version as its author to submit it for review.")
                return redirect("masterfile:change", pk=cr.pk)
        status = 400
    else:
        code = request.GET.get("product") or (products[0].code if products else "")
        product = next((p for p in products if p.code == code), None)
        base = product.versions.filter(status=VersionStatus.EFFECTIVE).first() if product else None
        form = ChangeRequestForm(initial={"product": code, "document": base.document if base else ""},
                                 products=product_choices, sites=site_choices)
        status = 200
    return render(request, "masterfile/change_raise.html", {
        "form": form, "problems": problems, "has_products": bool(products),
    }, status=status)


def _export(request: HttpRequest, code: str, fmt: str) -> HttpResponse:
    product = get_object_or_404(selectors.products_visible(request.user), code=code)
    version = None
    number = request.POST.get("version") or request.GET.get("version")
    if number and (not number.isdigit() or (version := dossier_version(product, int(number))) is None):
        return HttpResponse(f"version: {product.code} has no version {number!r}.", status=400,
                                content_type="text/plain; charset=utf-8")
    try:
        job = services.dossier_export_request(actor=request_actor(request), product=product, fmt=fmt,
                                              version=version)
    except DossierUnavailable as exc:
        return HttpResponse(str(exc), status=503, content_type="text/plain; charset=utf-8")
    return redirect("jobs:job", pk=job.pk)  # a job makes the file; its page offers the download


@requires(Perm.REPORTS_VIEW, recorded_read=True)
@require_POST
def dossier(request: HttpRequest, code: str) -> HttpResponse:
    """Queue the master-file dossier (DMMF) as a printable HTML document (a job makes it; its page
    offers the download); the export is recorded, so it is a POST (GET never writes)."""
    return _export(request, code, "html")


@requires(Perm.REPORTS_VIEW, recorded_read=True)
@require_POST
def dossier_pdf(request: HttpRequest, code: str) -> HttpResponse:
    """Queue the master-file dossier as PDF (a job makes it); 503 with a clear message when the PDF
    engine cannot run here."""
    return _export(request, code, "pdf")
