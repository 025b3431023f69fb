"""The planner's pages: start a site-selection or twin study (a form with sensible defaults), the
list of runs, and a run page that polls its progress with htmx while running and shows the tables,
the SVG map and the plots when done. Views parse input and call services; reads via selectors."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_http_methods

from pocare.accounts.decorators import requires
from pocare.accounts.roles import Perm
from pocare.core.charts import Bar, bars_svg
from pocare.core.listing import render_list
from pocare.planning import live, report, selectors, services, twin
from pocare.planning.filters import RUN_COLUMNS, RunFilter
from pocare.planning.forms import PlanForm, TwinForm
from pocare.planning.models import RunKind, RunStatus
from pocare.supply import reorder


@requires(Perm.PLANNING_VIEW)
@require_GET
def runs(request: HttpRequest) -> HttpResponseBase:
    """Every planning run, newest first."""
    # The results and reports stay in the database: the list shows none of them.
    runs = selectors.runs_visible(request.user).defer("parameters", "result", "report_html")
    return render_list(request, "planning/runs.html", filterset_class=RunFilter, queryset=runs,
                       columns=RUN_COLUMNS, name="planning-runs",
                       context={"may_start": selectors.may_start(request.user)})


def _network_sites() -> list[dict[str, Any]]:
    return [s for s in live.observed()["sites"] if s["units"] > 0]


def _start(request: HttpRequest, form: Any, kind: str, parameters: dict[str, Any], template: str) -> HttpResponse:
    try:
        run = services.planning_run_start(actor=request.user, kind=kind, parameters=parameters,
                                          reason=request.POST.get("reason", ""))
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, messages)
        return render(request, template, {"form": form, "may_start": True}, status=400)
    return redirect("planning:run", pk=run.pk)


@requires(Perm.PLANNING_VIEW, write=Perm.PLANNING_RUN)
@require_http_methods(["GET", "POST"])
def plan_new(request: HttpRequest) -> HttpResponse:
    """Start a site-selection study (POST), or the form (GET)."""
    if request.method != "POST":
        return render(request, "planning/plan_new.html", {"form": PlanForm(), "may_start": selectors.may_start(
            request.user), "network": _network_sites()})
    if not selectors.may_start(request.user):
        raise PermissionDenied("Only the network planner or Control Site QA may start planning runs.")
    form = PlanForm(request.POST)
    if not form.is_valid():
        return render(request, "planning/plan_new.html", {"form": form, "may_start": True}, status=400)
    return _start(request, form, RunKind.PLAN, form.parameters(_network_sites()), "planning/plan_new.html")


@requires(Perm.PLANNING_VIEW, write=Perm.PLANNING_RUN)
@require_http_methods(["GET", "POST"])
def twin_new(request: HttpRequest) -> HttpResponse:
    """Start a digital-twin study (POST), or the form (GET)."""
    if request.method != "POST":
        return render(request, "planning/twin_new.html", {"form": TwinForm(suppliers=live.suppliers()[1]),
                                                          "may_start": selectors.may_start(request.user)})
    if not selectors.may_start(request.user):
        raise PermissionDenied("Only the network planner or Control Site QA may start planning runs.")
    form = TwinForm(request.POST)
    if not form.is_valid():
        return render(request, "planning/twin_new.html", {"form": form, "may_start": True}, status=400)
    network = None
    if form.cleaned_data["source"] == "live":
        try:
            config, used = live.twin_network(request.user, referrals_per_year=form.cleaned_data["referrals_per_year"])
        except ValueError as exc:
            form.add_error("referrals_per_year" if str(exc).startswith("referrals") else "source", str(exc))
            return render(request, "planning/twin_new.html", {"form": form, "may_start": True}, status=400)
        network = twin.config_to_dict(config)
        return _start(request, form, RunKind.TWIN, {**form.parameters(network), "demand": used["demand"]},
                      "planning/twin_new.html")
    return _start(request, form, RunKind.TWIN, form.parameters(network), "planning/twin_new.html")


#: Fewer weeks of autarky than a supplier's usual lead time and a week of safety: the region would
#: run out before an order placed today arrives (red); fewer than twice that: amber.
AUTARKY_SHORT_WEEKS = reorder.LEAD_TIME_WEEKS + reorder.SAFETY_WEEKS


@requires(Perm.PLANNING_VIEW)
@require_GET
def autarky(request: HttpRequest) -> HttpResponse:
    """Weeks of autarky per region: how long each region makes batches on the stock it holds."""
    regions = selectors.autarky_regions(request.user)
    bars = [Bar(r.name, float(r.weeks),
                "bad" if r.weeks < AUTARKY_SHORT_WEEKS else "warn" if r.weeks < 2 * AUTARKY_SHORT_WEEKS else "ok",
                f"{r.weeks} weeks ({r.limiting.material_code})" if r.limiting else "")
            for r in regions if r.weeks is not None]
    chart = mark_safe(bars_svg(bars, title="Weeks of autarky per region", width=640)) if bars else ""  # noqa: S308
    return render(request, "planning/autarky.html", {"regions": regions, "chart": chart,
                                                     "short": AUTARKY_SHORT_WEEKS})


@requires(Perm.PLANNING_VIEW)
@require_GET
def run(request: HttpRequest, pk: int) -> HttpResponse:
    """One run: progress while it runs (the fragment polls itself), the report when done."""
    found = selectors.run_for(request.user, pk)
    if found is None:
        raise Http404("No such planning run.")
    context = {"run": found, "running": found.status in (RunStatus.QUEUED, RunStatus.RUNNING),
               "body": mark_safe(report.body(found.result)) if found.result else ""}  # noqa: S308 - our own HTML
    template = "planning/_run.html" if request.headers.get("HX-Request") else "planning/run.html"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


@requires(Perm.PLANNING_VIEW)
@require_GET
def run_report(request: HttpRequest, pk: int) -> HttpResponse:
    """The run's standalone HTML report, as a download."""
    found = selectors.run_for(request.user, pk)
    if found is None or not found.report_html:
        raise Http404("No report for this run (yet).")
    response = HttpResponse(found.report_html, content_type="text/html; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="pocare-{found.kind}-run-{found.pk}.html"'
    return response
