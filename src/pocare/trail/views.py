"""The audit trail browser, exports, verification and signed reviews (A11-9, P11-10e)."""

from __future__ import annotations

import csv
import io
import json

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from pocare.accounts import selectors as access
from pocare.accounts.decorators import request_actor, requires
from pocare.accounts.roles import Perm
from pocare.core.forms import apply_validation_error
from pocare.core.listing import csv_cell, render_list
from pocare.core.scope import scoped_chain
from pocare.ledger.models import NETWORK_CHAIN, Signature
from pocare.ledger.review import review_pending, site_chains
from pocare.ledger.signing import SigningRefused, signatures_for, signing_needs_user_id
from pocare.ledger.verify import signature_status, verify_all
from pocare.trail import selectors
from pocare.trail.filters import REVIEW_COLUMNS, EventFilter, ReviewFilter
from pocare.trail.forms import ReviewForm
from pocare.trail.services import EXPORT_COLUMNS, trail_export, trail_review_sign, trail_verified

MAX_EXPORT = 100_000


def _filtered(request: HttpRequest) -> EventFilter:
    data = request.GET.copy()
    if not data.get("chain") and (chain := scoped_chain(request)):
        data["chain"] = chain
    return EventFilter(data, queryset=selectors.events_visible(request.user).order_by("-id"))


@requires(Perm.LEDGER_VIEW)
@require_GET
def trail(request: HttpRequest) -> HttpResponse:
    """The audit trail browser; with HTMX, only the result table is re-rendered."""
    filterset = _filtered(request)
    if not filterset.is_valid():
        return render(request, "trail/trail.html", {"filter": filterset, "page": None}, status=400)
    page = Paginator(filterset.qs.select_related("actor"), 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    template = "trail/_trail_table.html" if request.headers.get("HX-Request") else "trail/trail.html"
    response = render(request, template, {"filter": filterset, "page": page, "query": query.urlencode(),
                                          "can_export": access.has_perm(request.user, Perm.LEDGER_EXPORT)})
    patch_vary_headers(response, ["HX-Request"])  # one URL, two renderings: caches must tell them apart
    return response


@requires(Perm.LEDGER_EXPORT, recorded_read=True)
@require_POST
def trail_export_view(request: HttpRequest, fmt: str) -> HttpResponse:
    """CSV or JSON of the filtered trail (the filters in the query string); the export itself becomes
    a ledger event, so it is a POST: a link followed from elsewhere writes nothing."""
    filterset = _filtered(request)
    if not filterset.is_valid():
        return HttpResponse(f"Invalid filter: {filterset.errors.as_text()}", status=400, content_type="text/plain")
    events = filterset.qs.order_by("chain", "seq")
    if events.count() > MAX_EXPORT:
        return HttpResponse(f"More than {MAX_EXPORT:,} events: narrow the filter.", status=400,
                            content_type="text/plain")
    rows, event = trail_export(actor=request_actor(request), events=events, fmt=fmt,
                               filters={k: v for k, v in request.GET.items() if v})
    stamp = event.occurred_at.strftime("%Y%m%dT%H%M%SZ")
    if fmt == "json":
        body = json.dumps({"exported_by": event.actor_printed_name, "export_event": event.label,
                           "events": rows}, ensure_ascii=False, indent=1)
        response = HttpResponse(body, content_type="application/json")
    else:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS)
        writer.writeheader()
        # A spreadsheet must show a reason typed as "=HYPERLINK(...)", never run it; the JSON keeps it exact.
        writer.writerows({k: csv_cell(v) for k, v in row.items()} for row in rows)
        response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="pocare-audit-{stamp}.{fmt}"'
    return response


@requires(Perm.LEDGER_VIEW)
@require_GET
def event_detail(request: HttpRequest, pk: int) -> HttpResponse:
    event = get_object_or_404(selectors.events_visible(request.user), pk=pk)
    signature = Signature.objects.filter(event=event).first()
    related = selectors.events_visible(request.user).filter(
        object_type=event.object_type, object_id=event.object_id
    ).exclude(pk=event.pk).order_by("-id")[:20] if event.object_id else []
    return render(request, "trail/event.html", {
        "event": event, "signature": signature,
        "signature_status": signature_status(signature) if signature else None,
        "related": related,
    })


@requires(Perm.LEDGER_VERIFY, recorded_read=True)
@require_http_methods(["GET", "POST"])
def verify(request: HttpRequest) -> HttpResponse:
    """Re-check the hash chains the person may see and every signature on them (POST).

    A read, like an export, so inspectors may run it; that it was run is recorded, so running it
    is a POST and the GET only shows the button.
    """
    report = None
    if request.method == "POST":
        chains = selectors.visible_chains(request.user, Perm.LEDGER_VERIFY)
        report = verify_all(chains=chains)
        trail_verified(actor=request_actor(request), events=report.events, chains=len(report.chains),
                       broken=[c.broken_event for c in report.chains if not c.ok],
                       invalid_signatures=[p.signature_id for p in report.signature_problems])
    return render(request, "trail/verify.html", {"report": report})


@requires(Perm.LEDGER_VIEW, write=Perm.LEDGER_REVIEW)
@require_http_methods(["GET", "POST"])
def reviews(request: HttpRequest) -> HttpResponseBase:
    """Signed audit-trail reviews, and the form to sign the next one."""
    user = request.user
    chains = selectors.visible_chains(user)
    if chains is None:
        scope = scoped_chain(request)
        chains = [scope] if scope else [NETWORK_CHAIN, *site_chains()]
    pending = []
    for chain in chains:
        lanes = [r for r in review_pending(chain) if r.count]
        if lanes:
            pending.append({"chain": chain, "lanes": lanes, "count": sum(r.count for r in lanes)})
    initial_chain = request.GET.get("chain") or scoped_chain(request) or (pending[0]["chain"] if pending else "")
    form = ReviewForm(request.POST or None, chains=chains, initial={"chain": initial_chain},
                      ask_user_id=signing_needs_user_id(request))
    if request.method == "POST" and form.is_valid():
        try:
            review = trail_review_sign(
                actor=request_actor(request), chain=form.cleaned_data["chain"], comment=form.cleaned_data["comment"],
                credentials=form.credentials(request.session),
            )
        except SigningRefused as exc:
            form.show_refusal(exc)
        except ValidationError as exc:
            apply_validation_error(form, exc)
        else:
            messages.success(request, f"Review of {review.range_label} signed.")
            return redirect("trail:review", pk=review.pk)
    return render_list(request, "trail/reviews.html", filterset_class=ReviewFilter,
                       queryset=selectors.reviews_visible(user), columns=REVIEW_COLUMNS, name="audit-reviews",
                       status=400 if form.errors else 200, context={
                           "form": form, "pending": pending,
                           "can_review": access.has_perm(user, Perm.LEDGER_REVIEW) and not access.is_read_only(user),
                       })


@requires(Perm.LEDGER_VIEW)
@require_GET
def review_detail(request: HttpRequest, pk: int) -> HttpResponse:
    review = get_object_or_404(selectors.reviews_visible(request.user), pk=pk)
    signatures = [(s, *signature_status(s)) for s in signatures_for(review)]
    return render(request, "trail/review.html", {"review": review, "signatures": signatures})
