"""The quality pages: deviations (list with filters, one deviation with its classification history,
investigation, CAPA, impact and signed closure, and a form for each action the person may do),
escalation rules, notifications, quality signals and deviation trends. Views parse input and call
services; selectors decide what is seen."""

from __future__ import annotations

from typing import Any

from django import forms as django_forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, F, Window
from django.db.models.functions import RowNumber
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from pocare.accounts import selectors as access
from pocare.accounts.decorators import request_actor, requires, signed_in
from pocare.accounts.roles import Perm
from pocare.core.forms import apply_validation_error
from pocare.core.listing import render_list
from pocare.ledger.signing import SigningRefused, signing_needs_user_id
from pocare.masterfile.selectors import change_requests_visible
from pocare.quality import evidence, forms, risk, selectors, services
from pocare.quality.filters import DEVIATION_COLUMNS, NOTIFICATION_COLUMNS, DeviationFilter, NotificationFilter
from pocare.quality.models import (
    CapaAction,
    Deviation,
    DeviationClass,
    DeviationStatus,
    EscalationRule,
    QualitySignal,
    SignalStatus,
)
from pocare.quality.trends import deviation_trends, months_back


def _may(request: HttpRequest, perm: Perm, site_id: int | None = None) -> bool:
    return access.has_perm(request.user, perm, site_id=site_id) and not access.is_read_only(request.user)


@requires(Perm.DEVIATION_VIEW)
@require_GET
def deviations(request: HttpRequest) -> HttpResponseBase:
    """Deviations at the sites the person may see, newest first; overdue ones highlighted."""
    now = timezone.now()
    visible = selectors.deviations_visible(request.user)
    return render_list(request, "quality/deviations.html", filterset_class=DeviationFilter, queryset=visible,
                       columns=DEVIATION_COLUMNS, name="deviations",
                       decorate=lambda rows: [(d, selectors.is_overdue(d, now)) for d in rows],
                       context={"overdue_total": visible.filter(selectors.overdue_q(now)).count()})


def _deviation(request: HttpRequest, reference: str) -> Deviation:
    try:
        return selectors.deviation_for(request.user, reference)
    except Deviation.DoesNotExist:
        raise Http404("No such deviation.") from None


def _capa_form(user: Any, deviation: Deviation, data: Any = None) -> forms.CapaForm:
    """The CAPA form; its change requests are those the person may see (their sites' only)."""
    owners = [(str(u.pk), f"{u.printed_name} ({u.username})") for u in services.capa_owner_choices(deviation)]
    crs = change_requests_visible(user).order_by("-raised_at")
    if deviation.product_id:
        crs = crs.filter(product_id=deviation.product_id)
    return forms.CapaForm(data, owners=owners, change_requests=[(str(c.pk), f"{c.reference} — {c.title}")
                                                                for c in crs[:100]], auto_id="id_capa_%s")


_ACTIONS = ("classify", "investigate", "capa_add", "capa_done", "effectiveness", "impact", "close")


@requires(Perm.DEVIATION_VIEW, write=Perm.DEVIATION_INVESTIGATE)
@require_http_methods(["GET", "POST"])
def deviation_detail(request: HttpRequest, reference: str) -> HttpResponse:
    """One deviation, and the forms of the actions the person may do on it."""
    deviation = _deviation(request, reference)
    ask = signing_needs_user_id(request)
    action = request.POST.get("action", "") if request.method == "POST" else ""
    data = request.POST if request.method == "POST" else None
    # Several forms share field names (rationale, user id, password): each gets ids of its own.
    bound: dict[str, Any] = {
        "classify": forms.ClassifyForm(data if action == "classify" else None, auto_id="id_classify_%s"),
        "investigate": forms.InvestigationForm(data if action == "investigate" else None, auto_id="id_investigate_%s"),
        "capa_add": _capa_form(request.user, deviation, data if action == "capa_add" else None),
        "capa_done": forms.CapaDoneForm(data if action == "capa_done" else None, auto_id="id_capa_done_%s"),
        "effectiveness": forms.EffectivenessForm(data if action == "effectiveness" else None,
                                                 auto_id="id_effectiveness_%s"),
        "impact": forms.ImpactForm(data if action == "impact" else None, ask_user_id=ask, auto_id="id_impact_%s"),
        "close": forms.CloseForm(data if action == "close" else None, ask_user_id=ask, auto_id="id_close_%s"),
    }
    status = 200
    if request.method == "POST":
        status = 400
        if action not in _ACTIONS:
            messages.error(request, f"Unknown action; use one of: {', '.join(_ACTIONS)}.")
        else:
            done = _perform(request, deviation, action, bound[action])
            if done is not None:
                messages.success(request, done)
                return redirect(reverse("quality:deviation", args=[deviation.reference]) + f"#{action}")
    page = selectors.deviation_page(deviation, timezone.now())
    site_id = deviation.site_id
    is_open = deviation.status == DeviationStatus.OPEN
    may_investigate = _may(request, Perm.DEVIATION_INVESTIGATE, site_id)
    may_close = _may(request, Perm.DEVIATION_CLOSE, site_id)
    latest = page.classifications[-1] if page.classifications else None
    return render(request, "quality/deviation.html", {
        "d": deviation, "page": page, "site": deviation.site, "forms": bound, "action": action,
        "may_investigate": may_investigate and is_open, "may_close": may_close and is_open,
        "may_check": may_investigate, "problems": services.closure_problems(deviation) if is_open else [],
        "latest": latest, "latest_words": risk.Assessment(latest.severity, latest.occurrence,
                                                          latest.detectability).words() if latest else {},
        "rpn": risk.rpn(latest.severity, latest.occurrence, latest.detectability) if latest else None,
        "categories": services.ROOT_CAUSE_CATEGORIES,
    }, status=status)


def _action_of(request: HttpRequest, deviation: Deviation) -> CapaAction:
    pk = request.POST.get("capa", "")
    if not pk.isdigit():
        raise ValidationError({"capa": "Choose the CAPA action."})
    return get_object_or_404(CapaAction, pk=int(pk), deviation=deviation)


def _perform(request: HttpRequest, deviation: Deviation, action: str, form: django_forms.Form) -> str | None:
    """Run one action's service from its bound form; the success message, or None (errors on the form)."""
    if not form.is_valid():
        return None
    actor, data = request_actor(request), form.cleaned_data
    try:
        if action == "classify":
            row = services.deviation_classify(actor=actor, deviation=deviation, severity=data["severity"],
                                              occurrence=data["occurrence"], detectability=data["detectability"],
                                              rationale=data["rationale"])
            return f"{deviation.reference} classified {row.get_result_display().lower()}."
        if action == "investigate":
            services.investigation_record(actor=actor, deviation=deviation, findings=data["findings"],
                                          root_cause=data["root_cause"],
                                          root_cause_category=data["root_cause_category"], reason=data["reason"])
            return "Investigation recorded."
        if action == "capa_add":
            owner = services.capa_owner_choices(deviation).filter(pk=int(data["owner"])).first() \
                if data["owner"].isdigit() else None
            if owner is None:
                raise ValidationError({"owner": "Choose the owner."})
            cr = change_requests_visible(actor).filter(pk=int(data["change_request"])).first() \
                if data["change_request"].isdigit() else None
            if data["change_request"] and cr is None:
                raise ValidationError({"change_request": f"No change request #{data['change_request']} that you "
                                                         "may see."})
            services.capa_action_add(actor=actor, deviation=deviation, kind=data["kind"],
                                     description=data["description"], owner=owner, due_on=data["due_on"],
                                     change_request=cr, effectiveness_due_on=data["effectiveness_due_on"])
            return "CAPA action added."
        if action == "capa_done":
            services.capa_action_done(actor=actor, action=_action_of(request, deviation), note=data["note"])
            return "CAPA action recorded as done."
        if action == "effectiveness":
            services.capa_effectiveness_check(actor=actor, action=_action_of(request, deviation),
                                              effective=data["effective"], note=data["note"])
            return "Effectiveness check recorded."
        assert isinstance(form, forms.ImpactForm | forms.CloseForm)
        if action == "impact":
            services.deviation_impact_assess(actor=actor, deviation=deviation, impact=data["impact"],
                                             rationale=data["rationale"],
                                             credentials=form.credentials(request.session))
            return "Impact assessed and signed."
        services.deviation_close(actor=actor, deviation=deviation, summary=data["summary"],
                                 credentials=form.credentials(request.session))
        return f"{deviation.reference} closed and signed."
    except SigningRefused as exc:
        assert isinstance(form, forms.ImpactForm | forms.CloseForm)
        form.show_refusal(exc)
    except PermissionDenied as exc:
        form.add_error(None, str(exc) or "You may not do this.")
    except ValidationError as exc:
        apply_validation_error(form, exc)
    return None


@requires(Perm.DEVIATION_VIEW, write=Perm.DEVIATION_CLOSE)
@require_http_methods(["GET", "POST"])
def rules(request: HttpRequest) -> HttpResponse:
    """The escalation rules in force per class, with their history; Control Site QA sets them."""
    form = forms.EscalationRuleForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                rule = services.escalation_rule_set(actor=request_actor(request), **form.cleaned_data)
            except PermissionDenied as exc:
                form.add_error(None, str(exc))
            except ValidationError as exc:
                apply_validation_error(form, exc)
            else:
                messages.success(request, f"Rule for {rule.get_deviation_class_display().lower()} deviations set.")
                return redirect("quality:rules")
    in_force = {c: services.escalation_rule_in_force(c) for c in DeviationClass.values}
    return render(request, "quality/rules.html", {
        "in_force": [(DeviationClass(c).label, r) for c, r in in_force.items()],
        "history": EscalationRule.objects.select_related("created_by").order_by("deviation_class", "-created_at"),
        "form": form, "may_set": _may(request, Perm.DEVIATION_CLOSE) and access.holds_network_wide(request.user,
                                                                                   Perm.DEVIATION_CLOSE),
        "defaults": services.DEFAULT_INVESTIGATION_DAYS, "scales": risk.SCALES,
    }, status=status)


@signed_in
@require_http_methods(["GET", "POST"])
def notifications(request: HttpRequest) -> HttpResponseBase:
    """The person's own notifications; opening one marks it read."""
    if request.method == "POST":
        pk = request.POST.get("notification", "")
        target = get_object_or_404(selectors.notifications_for(request.user), pk=int(pk)) if pk.isdigit() else None
        items = [target] if target is not None else list(selectors.notifications_for(request.user)
                                                         .filter(read_at=None))
        for n in items:
            services.notification_read(actor=request_actor(request), notification=n)
        if target is not None and target.url and request.POST.get("open") == "1":
            return redirect(target.url)
        return redirect("quality:notifications")
    return render_list(request, "quality/notifications.html", filterset_class=NotificationFilter,
                       queryset=selectors.notifications_for(request.user), columns=NOTIFICATION_COLUMNS,
                       name="notifications")


#: Open deviations offered in each signal's picker: the page has a form per open signal, and a site
#: with hundreds of open deviations made it 1.2 MB and 2 s at 11,030 batches (benchmarks/pages_at_scale.py).
DEVIATION_CHOICES = 25


def _open_deviations(user: Any, site_ids: set[int], *, whole_site: int | None = None,
                     ) -> tuple[dict[int, list[Deviation]], dict[int, int]]:
    """What a signal may be linked to: the :data:`DEVIATION_CHOICES` open deviations opened last at
    each of ``site_ids`` that the person may see (every one at ``whole_site``, the site of a posted
    form), and how many are open at each — three queries however many are open."""
    open_here = selectors.deviations_visible(user).filter(site_id__in=site_ids, status=DeviationStatus.OPEN)
    counts = dict(open_here.order_by().values("site_id").annotate(n=Count("pk")).values_list("site_id", "n"))
    light = open_here.select_related(None).only("pk", "reference", "title", "site_id", "opened_at")
    latest = light.annotate(rank=Window(RowNumber(), partition_by=[F("site_id")],
                                        order_by=[F("opened_at").desc(), F("pk").desc()]))
    offered: dict[int, list[Deviation]] = {}
    first = latest.filter(rank__lte=DEVIATION_CHOICES)
    if whole_site is not None:
        first = first.exclude(site_id=whole_site)
        offered[whole_site] = list(light.filter(site_id=whole_site).order_by("-opened_at", "-pk"))
    for d in first.order_by("-opened_at", "-pk"):
        offered.setdefault(d.site_id, []).append(d)
    return offered, counts


def _resolve_form(request: HttpRequest, signal: QualitySignal, posted: QualitySignal | None,
                  offered: list[Deviation], open_count: int, ask: bool) -> forms.SignalResolveForm:
    """The resolution form of one open signal: the posted one checks against every open deviation of
    its site, the others offer the :data:`DEVIATION_CHOICES` opened last."""
    bound = posted is not None and signal.pk == posted.pk
    return forms.SignalResolveForm(request.POST if bound else None,
                                   deviations=offered if bound else offered[:DEVIATION_CHOICES],
                                   open_count=open_count, ask_user_id=ask, auto_id=f"id_signal{signal.pk}_%s")


def _signal_resolve(request: HttpRequest, signal: QualitySignal, form: forms.SignalResolveForm) -> bool:
    """Resolve ``signal`` from the posted ``form``; False with the reasons on the form."""
    if not form.is_valid():
        return False
    data = form.cleaned_data
    try:
        deviation = selectors.deviations_visible(request.user).filter(reference=data["deviation"]).first() \
            if data["deviation"] else None
        change = change_requests_visible(request.user).filter(
            reference=data["change_request"].strip()).first() if data["change_request"] else None
        if data["change_request"] and change is None:
            raise ValidationError({"change_request": f"No change request {data['change_request']}."})
        services.signal_resolve(actor=request_actor(request), signal=signal, outcome=data["outcome"],
                                deviation=deviation, change_request=change, decision=data["decision"],
                                reason=data["reason"], credentials=form.credentials(request.session))
    except SigningRefused as exc:
        form.show_refusal(exc)
    except PermissionDenied as exc:
        form.add_error(None, str(exc))
    except ValidationError as exc:
        apply_validation_error(form, exc)
    else:
        return True
    return False


def _signal_groups(rows: list[QualitySignal], forms_by_pk: dict[int, forms.SignalResolveForm]) -> list[dict[str, Any]]:
    """Signals grouped by site and attribute, each with its evidence in words and a small chart."""
    groups: dict[tuple[int, str], dict[str, Any]] = {}
    for s in rows:
        ev = s.evidence if isinstance(s.evidence, dict) else {}
        attribute, unit = str(ev.get("attribute_name") or s.attribute_id), str(ev.get("unit") or "")
        name = str(ev.get("rule_name") or "")
        group = groups.setdefault((s.site_id, s.attribute_id), {"site": s.site, "attribute": attribute, "unit": unit,
                                                                "signals": [], "open": 0})
        group["open"] += s.status == SignalStatus.OPEN
        group["signals"].append({
            "signal": s, "form": forms_by_pk.get(s.pk),
            "sentence": evidence.sentence(site=s.site.name, attribute=attribute, unit=unit, rule=s.rule,
                                          rule_name=name, evidence=ev),
            "chart": evidence.chart_svg(title=f"{s.site.code} {attribute}: {s.rule}", rule=s.rule, evidence=ev)})
    return sorted(groups.values(), key=lambda g: (-g["open"], g["site"].code, g["attribute"]))


#: Signals on one page of the signals view: the open ones first, newest first.
SIGNALS_SHOWN = 60


@requires(Perm.DEVIATION_VIEW, write=Perm.DEVIATION_CLOSE)
@require_http_methods(["GET", "POST"])
def signals(request: HttpRequest) -> HttpResponse:
    """Quality signals of the comparability monitor, grouped by site and attribute; Control Site QA
    resolves each with a signature, linking an open deviation of the site chosen from a list, a change
    request or a documented decision. A refused form shows on its own signal only."""
    visible = selectors.signals_visible(request.user)
    state = request.GET.get("status", "")
    chosen = visible.filter(status=state) if state in SignalStatus.values else visible
    # Open first ("open" sorts before "resolved"), newest first; a page of them, each with its chart.
    rows = list(chosen.order_by("status", "-raised_at", "-pk")[:SIGNALS_SHOWN])
    total = chosen.count() if len(rows) == SIGNALS_SHOWN else len(rows)
    may_resolve = _may(request, Perm.DEVIATION_CLOSE)
    posted = wanted = None  # the signal POSTed to be resolved; the one whose form is shown (posted or opened)
    if request.method == "POST":
        pk = request.POST.get("signal", "")
        posted = wanted = get_object_or_404(visible, pk=int(pk)) if pk.isdigit() and len(pk) <= 18 else None
        if posted is None:
            return _signals_refused(request, "signal: choose the signal to resolve.")
    elif raw := request.GET.get("resolve", ""):  # "Resolve and sign…" on a row opens that signal's form
        wanted = (visible.filter(pk=int(raw), status=SignalStatus.OPEN).first()
                  if raw.isdigit() and len(raw) <= 18 and may_resolve else None)
        if wanted is None:
            return _signals_refused(request, "resolve: choose an open signal of the list (Control Site QA).")
    if wanted is not None and wanted.pk not in {s.pk for s in rows}:
        rows.insert(0, wanted)
    # Only the signal being resolved carries its signed form (with its site's open deviations): a form per
    # open signal was most of the page's time (benchmarks/README.md, "after sessions 12–14").
    resolving = wanted if wanted is not None and wanted.status == SignalStatus.OPEN and may_resolve else None
    deviations, open_counts = _open_deviations(request.user, {resolving.site_id} if resolving else set(),
                                               whole_site=posted.site_id if posted is not None else None)
    ask = signing_needs_user_id(request)
    forms_by_pk = ({resolving.pk: _resolve_form(request, resolving, posted, deviations.get(resolving.site_id, []),
                                                open_counts.get(resolving.site_id, 0), ask)}
                   if resolving is not None else {})
    if posted is not None and posted.pk in forms_by_pk and _signal_resolve(request, posted, forms_by_pk[posted.pk]):
        messages.success(request, f"Signal {posted.site.code} {posted.attribute_id} ({posted.rule}) resolved "
                                  f"and signed.")
        return redirect("quality:signals")
    return render(request, "quality/signals.html", {
        "groups": _signal_groups(rows, forms_by_pk), "status": state, "statuses": SignalStatus.choices,
        "shown": len(rows), "total": total,
        "may_resolve": may_resolve, "resolving": wanted.pk if wanted is not None else None,
    }, status=400 if posted is not None else 200)


def _signals_refused(request: HttpRequest, refused: str) -> HttpResponse:
    return render(request, "quality/signals.html", {"refused": refused, "groups": [],
                                                    "statuses": SignalStatus.choices}, status=400)


@requires(Perm.DEVIATION_VIEW)
@require_GET
def trends(request: HttpRequest) -> HttpResponse:
    """Deviations by site, kind, class, step and month over the last ``months`` months (default 18)."""
    raw = request.GET.get("months", "18")
    months = int(raw) if raw.isdigit() and 1 <= int(raw) <= 120 else 18
    now = timezone.now()
    data = deviation_trends(selectors.deviations_visible(request.user), start=months_back(now, months), end=now)
    return render(request, "quality/trends.html", {"t": data, "charts": data.charts(), "months": months})
