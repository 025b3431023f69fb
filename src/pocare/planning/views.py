"""The planner's pages: start a site-selection or twin study (a form with sensible defaults), the
list of runs, and a run page that polls its progress with htmx while running and shows the tables,
the SVG map and the plots when done. Views parse input and call services; reads via selectors."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_http_methods

from pocare.accounts import selectors as access
from pocare.accounts.decorators import requires
from pocare.accounts.roles import Perm
from pocare.core.charts import Bar, bars_svg
from pocare.core.listing import Column, csv_rows, render_list
from pocare.costs import anchors
from pocare.planning import business, live, plots, report, selectors, services, twin
from pocare.planning.filters import RUN_COLUMNS, RunFilter
from pocare.planning.forms import BusinessCaseForm, PlanForm, TwinForm
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
               "body": mark_safe(report.body(found.result)) if found.result else "",  # noqa: S308 - our own HTML
               **_priced(request, found.result)}
    template = "planning/_run.html" if request.headers.get("HX-Request") else "planning/run.html"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _priced(request: HttpRequest, result: dict[str, Any] | None) -> dict[str, Any]:
    """A finished twin study's scenarios priced on the cost model in force, for those who read costs
    (docs/business-case.md): the centralized scenario next to the baseline on the one model."""
    if not result or result.get("kind") != "twin" or not access.has_perm(request.user, Perm.COSTS_VIEW):
        return {}
    site = selectors.business_sites(request.user).first()
    if site is None:
        return {}
    inputs = selectors.business_inputs(site)
    if inputs.model is None or inputs.version is None:
        return {}
    return {"priced": business.run_prices(result, inputs.model.content, inputs.version.content,
                                          device_type=inputs.device_type), "priced_model": inputs.model}


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


#: The business case's CSV: one row per volume.
CASE_COLUMNS = (
    Column("patients_per_year", "patients"), Column("batches", lambda y: y.batches.quantize(Decimal("0.01"))),
    Column("devices", "devices"), Column("units", "units"), Column("capital_eur", "capital"),
    Column("fixed_eur", "fixed"), Column("variable_eur", "variable"), Column("total_eur", "total"),
    Column("per_patient_eur", "per_patient"),
)


@requires(Perm.COSTS_VIEW)
@require_GET
def business_case(request: HttpRequest) -> HttpResponseBase:
    """A site's business case on the signed cost model: cost per patient against patients a year, the
    break-even against the centralized price, every input with its source or marked estimate, and the
    twin's decentralized and centralized networks priced on the same model; ``export=csv`` gives the table."""
    sites = {s.code: s for s in selectors.business_sites(request.user)}
    form = BusinessCaseForm(request.GET or None, sites=list(sites))
    context: dict[str, Any] = {"form": form, "anchors": [(a, anchors.TO_EUR[a.currency]) for a in anchors.ANCHORS]}
    if form.is_bound and not form.is_valid():
        return render(request, "planning/business_case.html", context, status=400)
    asked = form.values()
    if not sites:
        return render(request, "planning/business_case.html", context)
    site = sites[asked["site"] or next(iter(sites))]
    inputs = selectors.business_inputs(site)
    context["inputs"] = inputs
    if inputs.model is None or inputs.version is None:
        return render(request, "planning/business_case.html", context)
    failure = asked["failure_rate"]
    if failure is None:
        failure = business.failure_rate_observed(inputs.batches, inputs.aborted)
    days = asked["process_days"] or inputs.process_days or business.DEFAULT_PROCESS_DAYS
    content, master = inputs.model.content, inputs.version.content
    found = business.site_case(content, master, site_code=site.code, device_type=inputs.device_type,
                               patients_max=int(asked["patients_max"]), failure_rate=failure, process_days=days,
                               max_wait_days=float(asked["max_wait_days"]), version_pk=inputs.version.pk,
                               model_pk=inputs.model.pk)
    case = found.case
    if request.GET.get("export") == "csv":
        response = StreamingHttpResponse(csv_rows(CASE_COLUMNS, case.years), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = (f'attachment; filename="pocare-business-case-{site.code}-'
                                           f'model-v{inputs.model.number}.csv"')
        return response
    scenarios = business.twin_comparison(content, master, sites=int(asked["twin_sites"]),
                                         patients_per_site=float(asked["twin_patients"]),
                                         device_type=inputs.device_type)
    chart = plots.cost_per_patient(
        [(y.patients, float(y.per_patient)) for y in case.years],
        title=f"{site.code}: cost per patient against patients a year (cost model v{inputs.model.number})",
        centralized=float(case.centralized_price) if case.centralized_price is not None else None,
        anchors=business.chart_anchors(),
        break_even=case.break_even)
    shown = sorted({1, 2, 5, 10, 18, 20, 30, 40, 50, 75, 100, 150, 200, 300, 400, 500, case.break_even or 1}
                   & {y.patients for y in case.years})
    context |= {"site": site, "found": found, "case": case, "chart": mark_safe(chart),  # noqa: S308 - our SVG
                "rows": [y for y in case.years if y.patients in shown], "failure": failure, "days": days,
                "scenarios": scenarios, "csv_query": _with_csv(request)}
    return render(request, "planning/business_case.html", context)


def _with_csv(request: HttpRequest) -> str:
    query = request.GET.copy()
    query["export"] = "csv"
    return query.urlencode()
