"""The comparability pages (REQUIREMENTS.md POC-2, CMP-SITE, CMP-STAT): the network matrix (sites ×
attributes, per master-file version: equivalent / not shown / trend alarm), one site's charts
(control chart with flagged points, EWMA, CUSUM, capability histogram, site-versus-network
interval plot, Hotelling's T²), and the product quality review (HTML or PDF). Views parse input;
selectors read; the pure modules compute; printing the review is a service with its ledger event."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from pocare.accounts.decorators import requires
from pocare.accounts.models import User
from pocare.accounts.roles import Perm
from pocare.analytics import comparability as cmp
from pocare.analytics import pages, report, selectors, services
from pocare.analytics.forms import ReviewForm
from pocare.masterfile.models import MasterFileVersion
from pocare.quality.models import QualitySignal, SignalStatus


class BadInput(Exception):
    """A query parameter a person can get wrong: the field and what is allowed."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


def _version(request: HttpRequest, known: list[MasterFileVersion] | None = None) -> MasterFileVersion | None:
    """The ``?version=`` asked for (of ``known``, the versions the person may see, when given)."""
    raw = request.GET.get("version", "")
    if raw and known is not None:
        version = next((v for v in known if str(v.pk) == raw.strip()), None)
    else:
        version = selectors.version_for(request.user, raw or None)
    if raw and version is None:
        allowed = ", ".join(f"{v.pk} ({v.product.code} v{v.number})"
                            for v in (known if known is not None else selectors.versions(request.user)))
        raise BadInput("version", f"{raw!r} is not a master-file version with batches; use one of: "
                                  f"{allowed or 'none yet'}.")
    return version


def _bad(request: HttpRequest, template: str, exc: BadInput, context: dict[str, Any] | None = None) -> HttpResponse:
    return render(request, template, {**(context or {}), "error": exc, "versions": selectors.versions(request.user)},
                  status=400)


@requires(Perm.ANALYTICS_VIEW)
@require_GET
def comparability(request: HttpRequest) -> HttpResponse:
    """The network matrix for one master-file version (``?version=``; default: the one with most lots),
    as the comparability monitor last computed and stored it: nothing is recomputed on a request."""
    all_versions = list(selectors.versions(request.user))
    try:
        version = _version(request, all_versions)
    except BadInput as exc:
        return _bad(request, "analytics/comparability.html", exc)
    context: dict[str, Any] = {"versions": all_versions, "version": version, "matrix": None, "qualitative": []}
    if version is not None:
        matrix = selectors.stored_matrix(request.user, version)
        context["matrix"] = matrix
        context["qualitative"] = [s for s in selectors.attribute_specs(version) if not s.numeric]
        context["signals"] = QualitySignal.objects.filter(product=version.product, status=SignalStatus.OPEN,
                                                          site__in=[r["site"] for r in matrix.rows]
                                                          ).select_related("site")[:50]
    context["policy"] = {"recent": cmp.RECENT_LOTS, "baseline": cmp.BASELINE_LOTS, "signal_rules": cmp.SIGNAL_RULES,
                         "min_lots": cmp.MIN_TEST_LOTS,
                         "labels": {k.replace("-", "_"): v for k, v in cmp.STATUS_LABELS.items()}}
    context["control_tz"] = selectors.control_time_zone()
    return _render(request, "analytics/comparability.html", context)


def _render(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    return render(request, template, context, status=status)


@requires(Perm.ANALYTICS_VIEW)
@require_GET
def site_charts(request: HttpRequest, code: str) -> HttpResponse:
    """One site's charts for a version (``?version=``), every numeric attribute or ``?attribute=``, as
    the comparability monitor last computed and stored them (with that time): nothing is recomputed
    on a request, so the page costs the same with ten lots or ten thousand."""
    site = selectors.sites_visible(request.user).filter(code=code).first()
    if site is None:
        raise Http404("No such site.")
    try:
        version = _version(request)
    except BadInput as exc:
        return _bad(request, "analytics/site.html", exc, {"site": site})
    context: dict[str, Any] = {"site": site, "version": version, "versions": selectors.versions(request.user),
                               "sections": [], "attribute": request.GET.get("attribute", ""),
                               "control_tz": selectors.control_time_zone()}
    if version is not None:
        numeric = [s for s in selectors.attribute_specs(version) if s.numeric]
        chosen = context["attribute"]
        if chosen and chosen not in {s.id for s in numeric}:
            wrong = BadInput("attribute", f"{chosen!r} is not a numeric attribute of {version}; use one of: "
                                          f"{', '.join(s.id for s in numeric)}.")
            return _bad(request, "analytics/site.html", wrong, context)
        context["numeric"] = numeric
        stored = selectors.stored_site(version, site)
        context["computed_at"] = stored.computed_at
        for section in stored.sections:
            spec = section["spec"]
            if chosen and spec["id"] != chosen:
                continue
            context["sections"].append({
                "spec": spec, "view": section["view"], "anova": section["anova"],
                **pages.draw_charts(spec, site.code, section["charts"], last=pages.CHART_LOTS),
                "intervals": pages.stored_interval_plot(section["intervals"], name=spec["name"], unit=spec["unit"],
                                                        highlight=site.code)})
        if not chosen and stored.t2 is not None:
            context["t2"] = pages.draw_t2(stored.t2, site.code, last=pages.CHART_LOTS)
    return _render(request, "analytics/site.html", context)


@requires(Perm.ANALYTICS_VIEW, recorded_read=True)
@require_http_methods(["GET", "POST"])
def review(request: HttpRequest) -> HttpResponse:
    """The product quality review: the GET shows the choice; generating it for ``product``, ``start``
    and ``end`` (``format=pdf`` for the PDF) is recorded in the ledger, so it is a POST (GET never
    writes)."""
    products = report.products_with_batches()
    data = request.POST.copy() if request.method == "POST" else None
    if data is not None and "product" not in data and len(products) == 1:
        data["product"] = products[0][0]
    today = timezone.now().date()
    form = ReviewForm(data, products=products,
                      initial={"product": products[0][0] if products else "",
                               "start": today.replace(year=today.year - 1), "end": today})
    if not form.is_bound:
        return _render(request, "analytics/review.html", {"form": form, "review": None})
    if not form.is_valid():
        return _render(request, "analytics/review.html", {"form": form, "review": None}, status=400)
    fmt = form.cleaned_data["format"] or "html"
    if fmt == "pdf":
        try:
            import weasyprint  # noqa: F401  # late: a cheap check here answers 503 before anything is queued
        except (ImportError, OSError) as exc:  # WeasyPrint needs Pango from the system
            return HttpResponse(f"PDF output is unavailable on this server ({exc}). The HTML review works; "
                                "print it to PDF from the browser.", status=503, content_type="text/plain")
    start = dt.datetime.combine(form.cleaned_data["start"], dt.time(), tzinfo=dt.UTC)
    end = dt.datetime.combine(form.cleaned_data["end"] + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    assert isinstance(request.user, User)
    if fmt == "pdf":  # a job makes the PDF; its page follows it and offers the download
        job = services.product_quality_review_pdf_request(actor=request.user, product=form.chosen_product,
                                                         start=start, end=end)
        return redirect("jobs:job", pk=job.pk)
    pqr = services.product_quality_review_generate(actor=request.user, product=form.chosen_product, start=start,
                                                   end=end, fmt=fmt)
    context = {"form": form, "review": pqr}
    return _render(request, "analytics/review.html", context)
