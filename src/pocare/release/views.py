"""The release pages: the QP's queue, the release view of one batch (checklist with evidence, changed
data, stages and signatures, and the forms of each stage and of the OOS workflow) and the release
certificate. Views parse input and call services; selectors decide what is seen."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.forms import Form
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from pocare.accounts import selectors as access
from pocare.accounts.decorators import request_actor, requires
from pocare.accounts.roles import Perm, Role
from pocare.core.forms import apply_validation_error
from pocare.core.listing import render_list
from pocare.ledger.signing import SigningRefused, signing_needs_user_id
from pocare.manufacturing.models import Batch
from pocare.release import certificate, forms, selectors, services
from pocare.release.filters import QUEUE_COLUMNS, QueueFilter
from pocare.release.models import Certification, OosRelease, OosStatus


def _batch(request: HttpRequest, reference: str, perm: Perm = Perm.RELEASE_VIEW) -> Batch:
    """The batch, if the person holds ``perm`` at one of its sites (404 otherwise)."""
    try:
        return selectors.release_batch_for(request.user, reference, perm)
    except Batch.DoesNotExist:
        raise Http404("No such batch.") from None


@requires(Perm.RELEASE_VIEW)
@require_GET
def queue(request: HttpRequest) -> HttpResponseBase:
    """Completed batches awaiting release, oldest first, each with what blocks it."""
    return render_list(request, "release/queue.html", filterset_class=QueueFilter,
                       queryset=selectors.queue_batches(request.user), columns=QUEUE_COLUMNS,
                       name="release-queue", decorate=selectors.queue_rows)


def _may(request: HttpRequest, perm: Perm, batch: Batch) -> bool:
    return access.has_perm(request.user, perm, site_id=batch.site_id) and not access.is_read_only(request.user)


def _context(request: HttpRequest, batch: Batch, bound: dict[str, Form] | None = None) -> dict[str, Any]:
    bound = bound or {}
    ask = signing_needs_user_id(request)
    page = selectors.release_page(batch)
    roles = access.roles_of(request.user)
    physician = (access.has_perm(request.user, Perm.OOS_REQUEST, site_id=batch.order.treating_site_id)
                 or access.has_perm(request.user, Perm.OOS_REQUEST, site_id=batch.site_id))
    return {
        "batch": batch, "page": page, "checklist": page.checklist, "site": batch.site,
        "version": batch.masterfile_version,
        "exceptions_form_bound": bound.get("exceptions"),
        "qc_form": bound.get("qc") or forms.CommentSignForm(ask_user_id=ask, prefix="qc"),
        "decision_form": bound.get("decide") or forms.DecisionForm(ask_user_id=ask),
        "oos_request_form": bound.get("oos_request") or forms.OosRequestForm(ask_user_id=ask),
        "oos_evaluate_form": bound.get("oos_evaluate") or forms.OosEvaluateForm(ask_user_id=ask),
        "oos_accept_form": bound.get("oos_accept") or forms.OosAcceptForm(ask_user_id=ask),
        "oos_notify_form": bound.get("oos_notify") or forms.OosNotifyForm(),
        "may_review_exceptions": _may(request, Perm.EXCEPTIONS_REVIEW, batch),
        "may_qc_review": _may(request, Perm.RELEASE_QC_REVIEW, batch),
        "may_certify": Role.QP in roles and _may(request, Perm.RELEASE_CERTIFY, batch),
        "may_request_oos": physician and not access.is_read_only(request.user),
        "may_notify": bool(roles & {Role.QP, Role.CONTROL_QA}) and not access.is_read_only(request.user),
        "open_oos": next((o for o in page.oos if o.oos.status != OosStatus.DECLINED), None),
    }


@requires(Perm.RELEASE_VIEW)
@require_GET
def batch(request: HttpRequest, reference: str) -> HttpResponse:
    """The release view of one batch."""
    return render(request, "release/batch.html", _context(request, _batch(request, reference)))


def _act(request: HttpRequest, batch: Batch, key: str, form: Form, call: Any, done: str,
         back: str | None = None) -> HttpResponse:
    """Run one signed action of the release view: the service, or the page again with the refusal on
    the form (400)."""
    if form.is_valid():
        try:
            call(form)
        except SigningRefused as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        except ValidationError as exc:
            apply_validation_error(form, exc)
        except PermissionDenied:
            raise
        else:
            messages.success(request, done)
            return redirect(back) if back else redirect("release:batch", batch.reference)
    return render(request, "release/batch.html", _context(request, batch, {key: form}), status=400)


@requires(Perm.RELEASE_VIEW, write=Perm.EXCEPTIONS_REVIEW)
@require_POST
def exceptions_review(request: HttpRequest, reference: str) -> HttpResponse:
    """Sign the review by exception, from the review page or the release page: back to the page it
    was sent from when signed; a refusal is shown on the release page with the form."""
    b = _batch(request, reference, Perm.EXCEPTIONS_REVIEW)
    form = forms.CommentSignForm(request.POST, ask_user_id=signing_needs_user_id(request), prefix="exc")
    back = request.POST.get("next", "")
    local = back.startswith("/") and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()})
    return _act(request, b, "exceptions", form, lambda f: services.exceptions_review_sign(
        actor=request_actor(request), batch=b, comment=f.cleaned_data["comment"],
        credentials=f.credentials(request.session)), "Review by exception signed.", back if local else None)


@requires(Perm.RELEASE_VIEW, write=Perm.RELEASE_QC_REVIEW)
@require_POST
def qc_review(request: HttpRequest, reference: str) -> HttpResponse:
    b = _batch(request, reference, Perm.RELEASE_QC_REVIEW)
    form = forms.CommentSignForm(request.POST, ask_user_id=signing_needs_user_id(request), prefix="qc")
    return _act(request, b, "qc", form, lambda f: services.qc_review_sign(
        actor=request_actor(request), batch=b, comment=f.cleaned_data["comment"],
        credentials=f.credentials(request.session)), "Stage 1 signed: the site's QC review.")


@requires(Perm.RELEASE_VIEW, write=Perm.RELEASE_CERTIFY)
@require_POST
def decide(request: HttpRequest, reference: str) -> HttpResponse:
    """The QP certifies or rejects (stage 2), after confirming."""
    b = _batch(request, reference, Perm.RELEASE_CERTIFY)
    form = forms.DecisionForm(request.POST, ask_user_id=signing_needs_user_id(request))

    def call(f: Form) -> None:
        service = services.batch_certify if f.cleaned_data["decision"] == "certify" else services.batch_reject
        service(actor=request_actor(request), batch=b, reason=f.cleaned_data["reason"],
                credentials=f.credentials(request.session))  # type: ignore[attr-defined]

    verdict = "certified for release" if request.POST.get("decision") == "certify" else "rejected"
    return _act(request, b, "decide", form, call, f"{b.reference} {verdict} and signed.")


def _oos(batch: Batch, pk: int) -> OosRelease:
    return get_object_or_404(OosRelease, pk=pk, batch=batch)


@requires(Perm.RELEASE_VIEW, write=Perm.OOS_REQUEST)
@require_POST
def oos_request(request: HttpRequest, reference: str) -> HttpResponse:
    b = _batch(request, reference, Perm.OOS_REQUEST)
    form = forms.OosRequestForm(request.POST, ask_user_id=signing_needs_user_id(request))
    return _act(request, b, "oos_request", form, lambda f: services.oos_request(
        actor=request_actor(request), batch=b, clinical_justification=f.cleaned_data["clinical_justification"],
        credentials=f.credentials(request.session)), "Out-of-specification release requested and signed.")


@requires(Perm.RELEASE_VIEW, write=Perm.RELEASE_CERTIFY)
@require_POST
def oos_evaluate(request: HttpRequest, reference: str, pk: int) -> HttpResponse:
    b = _batch(request, reference, Perm.RELEASE_CERTIFY)
    oos = _oos(b, pk)
    form = forms.OosEvaluateForm(request.POST, ask_user_id=signing_needs_user_id(request))
    return _act(request, b, "oos_evaluate", form, lambda f: services.oos_evaluate(
        actor=request_actor(request), oos=oos, risk_evaluation=f.cleaned_data["risk_evaluation"],
        credentials=f.credentials(request.session)), "Risk evaluation signed.")


@requires(Perm.RELEASE_VIEW, write=Perm.OOS_REQUEST)
@require_POST
def oos_accept(request: HttpRequest, reference: str, pk: int) -> HttpResponse:
    b = _batch(request, reference, Perm.OOS_REQUEST)
    oos = _oos(b, pk)
    form = forms.OosAcceptForm(request.POST, ask_user_id=signing_needs_user_id(request))
    return _act(request, b, "oos_accept", form, lambda f: services.oos_accept(
        actor=request_actor(request), oos=oos, statement=f.cleaned_data["statement"],
        credentials=f.credentials(request.session)), "Acceptance of the out-of-specification product signed.")


@requires(Perm.RELEASE_VIEW, write=Perm.RELEASE_VIEW)
@require_POST
def oos_notify(request: HttpRequest, reference: str, pk: int) -> HttpResponse:
    """The QP or Control Site QA records a notice to the sponsor or the authority (the service
    refuses everyone else)."""
    b = _batch(request, reference)
    oos = _oos(b, pk)
    form = forms.OosNotifyForm(request.POST)
    return _act(request, b, "oos_notify", form, lambda f: services.oos_notify(
        actor=request_actor(request), oos=oos, recipient=f.cleaned_data["recipient"],
        reference=f.cleaned_data["reference"]), "Notification recorded.")


@requires(Perm.RELEASE_VIEW, recorded_read=True)
@require_POST
def certificate_download(request: HttpRequest, reference: str) -> HttpResponse:
    """The release certificate of a decided batch: PDF, or ``format=html``. Printing is recorded, so
    it is a POST (GET never writes)."""
    b = _batch(request, reference)
    cert = Certification.objects.filter(batch=b).select_related("qp", "oos_release").first()
    if cert is None:
        raise Http404("The batch is not certified or rejected yet: there is no certificate.")
    fmt = "html" if request.POST.get("format") == "html" else "pdf"
    if fmt == "pdf":
        try:
            import weasyprint  # late: WeasyPrint needs Pango from the system; only the PDF answers 503 without it
        except (ImportError, OSError) as exc:  # WeasyPrint needs Pango and friends from the system
            return HttpResponse(f"PDF output is unavailable on this server ({exc}). Download the HTML and print it "
                                "from the browser.", status=503, content_type="text/plain")
    context = certificate.certificate_context(cert)
    services.certificate_printed(actor=request_actor(request), certification=cert, fmt=fmt)
    html = render_to_string("release/certificate.html", context, request=request)
    if fmt == "html":
        return HttpResponse(html)
    pdf = weasyprint.HTML(string=html, base_url=request.build_absolute_uri("/")).write_pdf()
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="release-certificate-{b.reference}.pdf"'
    return response
