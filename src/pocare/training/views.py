"""Training pages: the matrix, a person's training, recording and signing training records,
qualifications and curricula, and the gate check (P11-10i, P11-50)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from pocare.accounts import selectors as access
from pocare.accounts.decorators import request_actor, requires
from pocare.accounts.roles import Perm
from pocare.core.forms import apply_validation_error
from pocare.core.listing import render_list
from pocare.core.scope import scoped_chain
from pocare.ledger.signing import SigningRefused, signatures_for, signing_needs_user_id
from pocare.ledger.verify import signature_status
from pocare.masterfile import selectors as masterfile
from pocare.masterfile.models import MasterFileVersion
from pocare.masterfile.selectors import required_training_steps, versions_visible
from pocare.network.models import Site
from pocare.training import selectors, services
from pocare.training.filters import RECORD_COLUMNS, RecordFilter
from pocare.training.forms import (
    AcknowledgeForm,
    CurriculumForm,
    CurriculumRemoveForm,
    GateForm,
    QualificationForm,
    RecordForm,
    RevokeForm,
)
from pocare.training.gate import person_gate_summary, step_gate
from pocare.training.models import CurriculumItem, TrainingRecord, TrainingStatus


def _signatures(record: Any) -> list[tuple[Any, bool, str]]:
    return [(s, *signature_status(s)) for s in signatures_for(record).select_related("event")]


def _recording_sites(user: Any) -> Any:
    """The sites where the person may record training (as the trainer)."""
    allowed = [s.pk for s in selectors.sites_for_training(user) if services.may_record_training(user, s)]
    return Site.objects.filter(pk__in=allowed).order_by("kind", "code")


# --- the matrix ---------------------------------------------------------------------------------


@requires(Perm.TRAINING_VIEW)
@require_GET
def matrix(request: HttpRequest) -> HttpResponse:
    """People × qualifications for one site or the whole network; expiring within 30 days stands out."""
    sites = selectors.sites_for_training(request.user)
    code = request.GET.get("site")
    if code is None:
        code = scoped_chain(request) if access.holds_network_wide(request.user, Perm.TRAINING_VIEW) else ""
        if not code and sites.count() == 1:
            code = sites.first().code  # type: ignore[union-attr]
    site = None
    if code:
        site = sites.filter(code=code).first() if "\x00" not in code else None
        if site is None:
            raise Http404("No such site among those you may see.")
    table = selectors.training_matrix(request.user, site=site)
    return render(request, "training/matrix.html", {
        "matrix": table, "site": site, "sites": sites,
        "network_user": access.holds_network_wide(request.user, Perm.TRAINING_VIEW),
        "version_status": _version_status(sites if site is None else [site]),
        "awaiting": selectors.records_awaiting_signature(request.user).count(),
        "can_record": bool(_recording_sites(request.user).exists()),
    })


def _version_status(sites: Any) -> list[dict[str, Any]]:
    """Per product: the newest approved or effective version and, per site, the version in effect
    there and who still needs training on the newest one."""
    newest: dict[int, Any] = {}
    for v in MasterFileVersion.objects.filter(status__in=("approved", "effective")).select_related("product") \
            .order_by("product_id", "-number"):
        newest.setdefault(v.product_id, v)
    now = timezone.now()
    cells = [(version, site) for version in newest.values() for site in sites if not getattr(site, "is_control", False)]
    # Each question asked once for every product × site: the page costs the same however many there are.
    effective = masterfile.effective_versions([(site, version.product, now) for version, site in cells])
    gaps = selectors.versions_training_gaps(cases=[(site, version, now) for version, site in cells])
    out: dict[int, dict[str, Any]] = {v.pk: {"version": v, "rows": []} for v in newest.values()}
    for (version, site), in_effect, missing in zip(cells, effective, gaps, strict=True):
        out[version.pk]["rows"].append({"site": site, "effective": in_effect, "gaps": missing})
    return list(out.values())


# --- a person's training ------------------------------------------------------------------------


@requires(Perm.TRAINING_VIEW, write=Perm.TRAINING_RECORD)
@require_http_methods(["GET", "POST"])
def person(request: HttpRequest, pk: int) -> HttpResponse:
    """A person's training records with their signatures, and their qualifications with validity.
    Control Site QA can revoke a qualification here."""
    trainee = get_object_or_404(selectors.people_visible(request.user), pk=pk)
    form = RevokeForm(request.POST or None)
    if request.method == "POST":
        if not services.is_training_admin(request.user):
            raise PermissionDenied("Only Control Site QA may revoke qualifications.")
        if form.is_valid():
            try:
                n = services.qualification_revoke(actor=request_actor(request), person=trainee,
                                                  qualification=form.cleaned_data["qualification"],
                                                  reason=form.cleaned_data["reason"])
            except ValidationError as exc:
                apply_validation_error(form, exc)
            else:
                messages.success(request, f"Qualification revoked ({n} grant{'s' if n != 1 else ''}); "
                                          "the change is in the audit trail.")
                return redirect("training:person", pk=trainee.pk)
    now = timezone.now()
    records = selectors.records_visible(request.user).filter(trainee=trainee)
    grants = (trainee.qualifications.select_related("qualification", "record__site", "revoked_by")
              .order_by("qualification__code", "-valid_until"))
    current = {g.pk for g in selectors.qualifications_of(trainee, now)}
    rows = []
    for g in grants:
        if g.pk in current:
            state = "expiring" if g.valid_until - now <= selectors.EXPIRING_WITHIN else "valid"
        elif g.revoked_at is not None and g.revoked_at <= now:
            state = "revoked"
        elif g.valid_until <= now:
            state = "renewed" if any(o.pk in current and o.qualification_id == g.qualification_id for o in grants) \
                else "expired"
        elif g.record.status != TrainingStatus.COMPLETE:
            state = "unsigned"
        else:
            state = "future"
        rows.append((g, state))
    roles = [m for m in trainee.memberships.select_related("site") if selectors.membership_in_force(m, now)]
    return render(request, "training/person.html", {
        "person": trainee, "records": records, "grants": rows, "roles": roles, "form": form,
        "can_revoke": services.is_training_admin(request.user),
        "revocable": sorted({g.qualification for g, state in rows if state in ("valid", "expiring", "future")},
                            key=lambda q: q.code),
    }, status=400 if form.errors else 200)


# --- the records ----------------------------------------------------------------------------------


@requires(Perm.TRAINING_VIEW)
@require_GET
def records(request: HttpRequest) -> HttpResponseBase:
    """Every training record the person may see (their sites' and their sites' people's), newest first."""
    return render_list(request, "training/records.html", filterset_class=RecordFilter,
                       queryset=selectors.records_visible(request.user), columns=RECORD_COLUMNS,
                       name="training-records", context={"can_record": _recording_sites(request.user).exists()})


# --- recording and signing ----------------------------------------------------------------------


@requires(Perm.TRAINING_RECORD)
@require_http_methods(["GET", "POST"])
def record_new(request: HttpRequest) -> HttpResponse:
    """The trainer records a training event and signs it (meaning: verified)."""
    sites = _recording_sites(request.user)
    initial: dict[str, Any] = {"trained_on": timezone.now().date(), "passed": True}
    for key in ("trainee", "kind", "qualification", "site"):
        if request.GET.get(key):
            initial[key] = request.GET[key]
    if "site" not in initial and sites.count() == 1:
        initial["site"] = sites.first().code
    form = RecordForm(request.POST or None, sites=sites, initial=initial, ask_user_id=signing_needs_user_id(request))
    if request.method == "POST" and form.is_valid():
        try:
            record = services.training_record(actor=request_actor(request),
                                              credentials=form.credentials(request.session), **form.service_kwargs())
        except SigningRefused as exc:
            form.show_refusal(exc)
        except ValidationError as exc:
            apply_validation_error(form, exc)
        else:
            messages.success(request, f"Training recorded and signed by you; it now waits for "
                                      f"{record.trainee}'s signature.")
            return redirect("training:record", pk=record.pk)
    people = selectors.people_visible(request.user).filter(is_active=True)
    return render(request, "training/record_form.html", {"form": form, "people": people,
                                                         "version_steps": _version_steps()},
                  status=400 if form.errors else 200)


def _version_steps() -> list[tuple[Any, list[str]]]:
    """Each trainable version with the steps operators must be trained on before it is effective."""
    versions = MasterFileVersion.objects.filter(status__in=services.TRAINABLE_VERSION_STATUSES) \
        .select_related("product", "change_request").order_by("product__code", "-number")
    return [(v, required_training_steps(v)) for v in versions]


@requires(Perm.TRAINING_VIEW)
@require_http_methods(["GET", "POST"])
def record_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A training record with both signatures; its trainee signs it here."""
    record = get_object_or_404(selectors.records_visible(request.user), pk=pk)
    is_trainee = record.trainee_id == request.user.pk and record.status == TrainingStatus.AWAITING_TRAINEE
    if request.method == "POST" and not is_trainee:
        raise PermissionDenied("Only the trainee signs their own training record, once.")
    form = AcknowledgeForm(request.POST or None, initial={"record": record.pk},
                           ask_user_id=signing_needs_user_id(request))
    if request.method == "POST" and form.is_valid() and _acknowledge(request, form, record):
        return redirect("training:record", pk=record.pk)
    return render(request, "training/record.html", {
        "record": record, "signatures": _signatures(record), "form": form, "may_sign": is_trainee,
        "grants": record.qualifications_granted.select_related("qualification"),
    }, status=400 if form.errors else 200)


def _acknowledge(request: HttpRequest, form: AcknowledgeForm, record: TrainingRecord) -> bool:
    try:
        services.training_acknowledge(actor=request_actor(request), record=record,
                                      credentials=form.credentials(request.session))
    except SigningRefused as exc:
        form.show_refusal(exc)
    except PermissionDenied as exc:
        form.add_error(None, str(exc))
    except ValidationError as exc:
        apply_validation_error(form, exc)
    else:
        messages.success(request, f"You signed “{record.title}”; the training record is complete.")
        return True
    return False


@requires(Perm.TRAINING_VIEW)
@require_http_methods(["GET", "POST"])
def to_sign(request: HttpRequest) -> HttpResponse:
    """The training records that wait for my signature, each with its sign form."""
    pending = list(selectors.records_awaiting_signature(request.user))
    ask = signing_needs_user_id(request)
    failed: AcknowledgeForm | None = None
    if request.method == "POST":
        posted = request.POST.get("record", "")
        form = AcknowledgeForm(request.POST, ask_user_id=ask, auto_id=f"id_%s_{posted if posted.isdigit() else 'x'}")
        if form.is_valid():
            record = next((r for r in pending if r.pk == form.cleaned_data["record"]), None)
            if record is None:
                form.add_error(None, "record: this training record is not waiting for your signature.")
            elif _acknowledge(request, form, record):
                return redirect("training:to_sign")
        failed = form
    forms = [(r, failed if failed is not None and str(failed.data.get("record")) == str(r.pk)
              else AcknowledgeForm(initial={"record": r.pk}, ask_user_id=ask, auto_id=f"id_%s_{r.pk}"))
             for r in pending]
    return render(request, "training/to_sign.html", {
        "forms": forms, "error_form": failed if failed is not None and failed.errors and not any(
            f is failed for _, f in forms) else None,
    }, status=400 if failed is not None and failed.errors else 200)


# --- qualifications and curricula ---------------------------------------------------------------


@requires(Perm.TRAINING_VIEW, write=Perm.TRAINING_RECORD)
@require_http_methods(["GET", "POST"])
def qualifications(request: HttpRequest) -> HttpResponse:
    """Qualifications and the per-role curricula; Control Site QA defines and changes them."""
    action = request.POST.get("action", "") if request.method == "POST" else ""
    # Three forms with a reason each (two with a role and a qualification): ids of their own.
    define = QualificationForm(request.POST if action == "define" else None, auto_id="id_define_%s")
    add = CurriculumForm(request.POST if action == "curriculum_add" else None, auto_id="id_add_%s")
    remove = CurriculumRemoveForm(request.POST if action == "curriculum_remove" else None, auto_id="id_remove_%s")
    if request.method == "POST":
        if not services.is_training_admin(request.user):
            raise PermissionDenied("Only Control Site QA may change qualifications and curricula.")
        form = {"define": define, "curriculum_add": add, "curriculum_remove": remove}.get(action)
        if form is None:
            raise Http404("Unknown action")
        if form.is_valid():
            data, actor = form.cleaned_data, request_actor(request)
            try:
                if action == "define":
                    q = services.qualification_define(actor=actor, **data)
                    messages.success(request, f"Qualification {q.code} defined.")
                elif action == "curriculum_add":
                    services.curriculum_item_add(actor=actor, **data)
                    messages.success(request, "Curriculum changed.")
                else:
                    services.curriculum_item_remove(actor=actor, **data)
                    messages.success(request, "Curriculum changed.")
            except ValidationError as exc:
                apply_validation_error(form, exc)
            else:
                return redirect("training:qualifications")
    items = CurriculumItem.objects.select_related("qualification").order_by("role", "qualification__code")
    by_role: dict[str, list[CurriculumItem]] = {}
    for item in items:
        by_role.setdefault(item.get_role_display(), []).append(item)
    errors = bool(define.errors or add.errors or remove.errors)
    return render(request, "training/qualifications.html", {
        "qualifications": selectors.qualifications_visible(request.user), "curricula": by_role,
        "define": define, "add": add, "remove": remove, "action": action,
        "can_manage": services.is_training_admin(request.user),
    }, status=400 if errors else 200)


# --- the gate -----------------------------------------------------------------------------------


@requires(Perm.TRAINING_VIEW)
@require_GET
def gate(request: HttpRequest) -> HttpResponse:
    """Ask the gate: may this person perform (or verify) a step at a site, now or at a past moment,
    and if not, why not."""
    people = selectors.people_visible(request.user)
    sites = selectors.sites_for_training(request.user).exclude(kind="control")
    asked = bool(request.GET)
    form = GateForm(request.GET if asked else None, people=people, sites=sites,
                    versions=versions_visible(request.user))
    decision = summary = None
    if asked and form.is_valid():
        data = form.cleaned_data
        site: Site = data["site"]
        if data["step"]:
            decision = step_gate(person=data["person"], version=data["version"], step_id=data["step"], site=site,
                                 at=data["at"], verifying=data["verifying"])
        summary = person_gate_summary(data["person"], site, data["version"], data["at"], verifying=data["verifying"])
    return render(request, "training/gate.html", {"form": form, "decision": decision, "summary": summary,
                                                  "asked": asked},
                  status=400 if asked and form.errors else 200)
