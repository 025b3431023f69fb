"""The audit trail browser, exports, verification and signed reviews (A11-9, P11-10e)."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Page, Paginator
from django.db import transaction
from django.db.models import BigIntegerField, ExpressionWrapper, F, QuerySet, Sum
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from pocare.accounts import selectors as access
from pocare.accounts.decorators import request_actor, requires
from pocare.accounts.roles import Perm
from pocare.core.forms import apply_validation_error
from pocare.core.listing import render_list
from pocare.core.scope import scoped_chain
from pocare.ledger.models import NETWORK_CHAIN, ChainHead, Event, Signature, chains_with_lanes, site_chain
from pocare.ledger.review import reviews_pending, site_chains
from pocare.ledger.signing import SigningRefused, signatures_for, signing_needs_user_id
from pocare.ledger.verify import signature_status
from pocare.trail import selectors
from pocare.trail.filters import REVIEW_COLUMNS, EventFilter, ReviewFilter
from pocare.trail.forms import ReviewForm
from pocare.trail.services import trail_review_sign
from pocare.trail.tasks import MAX_EXPORT, trail_export_request, trail_verify_request

COUNT_CAP = 10_000  # a filtered count stops here: the page says "more than 10,000" instead of scanning


class TrailPaginator(Paginator):  # type: ignore[type-arg]  # Django's stubs: generic over the list
    """Counts the trail without scanning it.

    Unfiltered (but for the site), the count is the sum of the chains' heads: each chain numbers
    its events from 1 without gaps (`pocare audit verify` proves it). Filtered, counting stops at
    ``COUNT_CAP`` (``capped`` then says so), which bounds the cost of a page at any trail size.
    """

    def __init__(self, object_list: QuerySet[Event], per_page: int, *, chains: list[str] | None,
                 filtered: bool) -> None:
        super().__init__(object_list, per_page)
        self.events, self.chains, self.filtered, self.capped = object_list, chains, filtered, False

    @cached_property
    def count(self) -> int:
        if not self.filtered:
            heads = ChainHead.objects.all()
            if self.chains is not None:
                heads = heads.filter(chain__in=self.chains)
            return int(heads.aggregate(n=Sum("seq"))["n"] or 0)
        n = self.events[: COUNT_CAP + 1].count()
        self.capped = n > COUNT_CAP
        return min(n, COUNT_CAP)

    def reading_order(self) -> QuerySet[Event]:
        """The events in the order to read a page of them, newest first. When at most COUNT_CAP
        match a filter, they are read through the filter's own index and sorted, rather than by
        walking the whole trail newest first until a page matches (which the planner would pick for
        ORDER BY id, and which reads every event when the matches are few)."""
        if self.filtered and not self.capped and self.count:
            return self.events.order_by(ExpressionWrapper(F("id") + 0, output_field=BigIntegerField()).desc())
        return self.events

    def page(self, number: Any) -> Page:  # type: ignore[type-arg]
        self.object_list = self.reading_order()
        return super().page(number)


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
    paginator = TrailPaginator(filterset.qs.select_related("actor"), 50, chains=_counted_chains(request, filterset),
                               filtered=_narrowed(filterset))
    page = paginator.get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    template = "trail/_trail_table.html" if request.headers.get("HX-Request") else "trail/trail.html"
    response = render(request, template, {"filter": filterset, "page": page, "query": query.urlencode(),
                                          "can_export": access.has_perm(request.user, Perm.LEDGER_EXPORT)})
    patch_vary_headers(response, ["HX-Request"])  # one URL, two renderings: caches must tell them apart
    return response


def _narrowed(filterset: EventFilter) -> bool:
    """Whether a filter other than the site narrows the trail."""
    return any(value not in (None, "") for name, value in filterset.form.cleaned_data.items() if name != "chain")


def _counted_chains(request: HttpRequest, filterset: EventFilter) -> list[str] | None:
    """The chains (lanes included) the trail shows: the site filter within what the person may read."""
    chains = selectors.visible_chains(request.user)
    visible = None if chains is None else set(chains_with_lanes(chains))
    if chosen := filterset.form.cleaned_data.get("chain"):
        lanes = {chosen} if chosen != site_chain(chosen) else set(chains_with_lanes([chosen]))
        return sorted(lanes if visible is None else lanes & visible)
    return None if visible is None else sorted(visible)


@requires(Perm.LEDGER_EXPORT, recorded_read=True)
@require_POST
def trail_export_view(request: HttpRequest, fmt: str) -> HttpResponse:
    """Queue the CSV or JSON of the filtered trail (the filters in the query string, checked here: a
    bad one is a 400 naming it, and nothing is queued); a job makes the file and records the export,
    and its page offers the download. A POST: a link followed from elsewhere writes nothing."""
    filterset = _filtered(request)
    if not filterset.is_valid():
        return HttpResponse(f"Invalid filter: {filterset.errors.as_text()}", status=400, content_type="text/plain")
    events = filterset.qs.order_by("chain", "seq")
    if events.count() > MAX_EXPORT:
        return HttpResponse(f"More than {MAX_EXPORT:,} events: narrow the filter.", status=400,
                            content_type="text/plain")
    with transaction.atomic():  # the job is queued in this request's transaction
        job = trail_export_request(actor=request_actor(request), fmt=fmt,
                                   filters={k: v for k, v in filterset.data.items() if v})
    return redirect("jobs:job", pk=job.pk)  # a job makes the file; its page offers the download


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
    """Re-check the hash chains the person may see and every signature on them: a POST queues the
    check as a job of theirs and goes to its page, where the report appears when it is done.

    A read, like an export, so inspectors may run it; that it was run is recorded, so running it
    is a POST and the GET only shows the button, the person's last result and any acknowledged loss.
    """
    if request.method == "POST":
        with transaction.atomic():  # the job is queued in this request's transaction
            job = trail_verify_request(actor=request_actor(request))
        return redirect("jobs:job", pk=job.pk)
    chains = selectors.visible_chains(request.user, Perm.LEDGER_VERIFY)
    # Shown on every visit, not only after a run: an acknowledged loss never goes quiet.
    losses = selectors.restore_losses_acknowledged(chains)
    return render(request, "trail/verify.html", {"losses": losses, "last": selectors.last_verification(request.user)})


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
    for chain, ranges in reviews_pending(chains).items():
        lanes = [r for r in ranges if r.count]
        if lanes:
            pending.append({"chain": chain, "lanes": lanes, "count": sum(r.count for r in lanes)})
    initial_chain = request.GET.get("chain") or scoped_chain(request) or (pending[0]["chain"] if pending else "")
    form = ReviewForm(request.POST or None, chains=chains, initial={"chain": initial_chain}, auto_id="review_%s",
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
