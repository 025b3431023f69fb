"""The pathway pages (docs/patients.md): the navigator's page (each patient at the hospital, their
stage, next date and what is late), the physician's page (their referrals and what each waits for),
the referral form, a patient's page by pseudonym, and the forms that move a referral along —
eligibility, consent, withdrawal (confirmed), lost — and the consent documents. Views parse and
call services; every read is scoped to the hospitals where the person holds the permission."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from pocare.accounts.decorators import request_actor, requires
from pocare.accounts.roles import Perm
from pocare.accounts.selectors import has_perm, sites_with_perm
from pocare.core.forms import apply_validation_error
from pocare.core.listing import render_list
from pocare.masterfile import schema
from pocare.network.models import Site, SiteKind
from pocare.network.selectors import products
from pocare.patients import selectors, services
from pocare.patients.filters import REFERRAL_COLUMNS, ReferralFilter
from pocare.patients.forms import (
    ConsentDocumentForm,
    ConsentForm,
    EligibilityForm,
    LostForm,
    ReferralForm,
    SupportForm,
    WithdrawForm,
)
from pocare.patients.identity import Identity
from pocare.patients.models import ENDED_STAGES, ConsentDocument, Language, Referral, Stage


def _may(request: HttpRequest, perm: Perm, site: Site) -> bool:
    return has_perm(request.user, perm, site_id=site.pk) and not request.user.is_anonymous


def _local(value: dt.datetime, site: Site) -> dt.datetime:
    """A datetime-local field's value is the wall-clock time at ``site``."""
    return value.replace(tzinfo=None).replace(tzinfo=site.tz)


# --- the lists ---------------------------------------------------------------------------------------


@requires(Perm.PATIENTS_VIEW)
@require_GET
def navigator(request: HttpRequest) -> HttpResponseBase:
    """Each patient at the person's hospitals: stage, next date, what is late, support arranged."""
    return render_list(
        request,
        "patients/navigator.html",
        filterset_class=ReferralFilter,
        queryset=selectors.referrals_visible(request.user),
        columns=REFERRAL_COLUMNS,
        name="referrals",
        decorate=selectors.pathway_rows,
        context={"may_refer": bool(_refer_sites(request))},
    )


@requires(Perm.PATIENTS_VIEW)
@require_GET
def physician(request: HttpRequest) -> HttpResponseBase:
    """The person's own referrals and what each waits for."""
    return render_list(
        request,
        "patients/physician.html",
        filterset_class=ReferralFilter,
        queryset=selectors.referrals_visible(request.user).filter(referred_by=request_actor(request)),
        columns=REFERRAL_COLUMNS,
        name="my-referrals",
        decorate=selectors.pathway_rows,
        context={"may_refer": bool(_refer_sites(request))},
    )


# --- referral ----------------------------------------------------------------------------------------


def _refer_sites(request: HttpRequest) -> list[Site]:
    sites = sites_with_perm(request.user, Perm.PATIENTS_REFER)
    found = Site.objects.exclude(kind=SiteKind.CONTROL).order_by("code")
    return list(found if sites is None else found.filter(pk__in=sites)) if sites != set() else []


@requires(Perm.PATIENTS_VIEW, write=Perm.PATIENTS_REFER)
@require_http_methods(["GET", "POST"])
def refer(request: HttpRequest) -> HttpResponse:
    """The referral form: the patient is registered under a new pseudonym and referred, together."""
    sites = _refer_sites(request)
    form = ReferralForm(
        request.POST if request.method == "POST" else None,
        sites=[(s.code, f"{s.code} — {s.name}") for s in sites],
        products=[(p.code, str(p)) for p in products()],
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            referral = services.patient_refer(
                actor=request_actor(request),
                treating_site=next(s for s in sites if s.code == data["treating_site"]),
                identity=Identity(
                    name=data["name"],
                    birth_date=data["birth_date"].isoformat(),
                    contact=data["contact"],
                    address=data["address"],
                ),
                product=products().get(code=data["product"]),
                indication=data["indication"],
                weight_kg=data["weight_kg"],
                language=data["language"],
                region=data["region"],
                travel_minutes=data["travel_minutes"],
                deprivation_quintile=data["deprivation_quintile"],
                reason=data["reason"],
            )
        except ValidationError as exc:
            apply_validation_error(form, exc)
        else:
            messages.success(request, _("Patient %(pseudonym)s referred.") % {"pseudonym": referral.patient.pseudonym})
            return redirect("patients:patient", pseudonym=referral.patient.pseudonym)
    return render(
        request, "patients/refer.html", {"form": form, "sites": sites}, status=400 if request.method == "POST" else 200
    )


# --- a patient ---------------------------------------------------------------------------------------


def _patient_page(
    request: HttpRequest, pseudonym: str, *, status: int = 200, support_form: SupportForm | None = None
) -> HttpResponse:
    patient = selectors.patient_for(request.user, pseudonym)
    site = patient.treating_site
    referrals = []
    for referral in selectors.referrals_visible(request.user).filter(patient=patient).order_by("-referred_at"):
        assessment = referral.eligibility.select_related("masterfile_version").order_by("-assessed_at").first()
        criteria = schema.eligibility_criteria(assessment.masterfile_version.content) if assessment else []
        shown = selectors.stage_of(referral)
        referrals.append(
            {
                "referral": referral,
                "stage": shown,
                "stage_label": Stage(shown).label,
                "timeline": selectors.timeline(referral),
                "assessment": assessment,
                "answers": [(c, assessment.answers.get(c["id"])) for c in criteria] if assessment else [],
                "consent": selectors.consent_current(referral),
                "ended": shown in ENDED_STAGES,
                "waits_for": selectors.WAITS_FOR.get(shown, ""),
                "may_assess": referral.stage == Stage.REFERRED,
                "may_consent": referral.stage == Stage.ELIGIBLE,
                "may_withdraw": referral.consents.filter(withdrawn_at=None).exists()
                and referral.stage != Stage.WITHDRAWN,
                "may_lose": referral.stage not in ENDED_STAGES
                and selectors.stage_rank(shown) < selectors.stage_rank(Stage.INFUSED),
            }
        )
    context = {
        "patient": patient,
        "referrals": referrals,
        "language": Language(patient.language).label,
        "may_refer": _may(request, Perm.PATIENTS_REFER, site),
        "may_identify": _may(request, Perm.PATIENTS_IDENTIFY, site),
        "may_support": _may(request, Perm.PATIENTS_BOOK, site),
        "support_form": support_form or SupportForm(initial={"support": patient.support}),
    }
    return render(request, "patients/patient.html", context, status=status)


@requires(Perm.PATIENTS_VIEW)
@require_GET
def patient(request: HttpRequest, pseudonym: str) -> HttpResponse:
    """A patient's pathway under their pseudonym: each stage with its date, eligibility, consent in
    version and language, the order's chain of identity."""
    return _patient_page(request, pseudonym)


@requires(Perm.PATIENTS_VIEW, write=Perm.PATIENTS_BOOK)
@require_POST
def support(request: HttpRequest, pseudonym: str) -> HttpResponse:
    """The navigator notes the travel and accommodation support arranged."""
    found = selectors.patient_for(request.user, pseudonym)
    form = SupportForm(request.POST)
    if form.is_valid():
        try:
            services.patient_support_set(
                actor=request_actor(request),
                patient=found,
                support=form.cleaned_data["support"],
                reason=form.cleaned_data["reason"],
            )
        except ValidationError as exc:
            apply_validation_error(form, exc)
        else:
            messages.success(request, _("Support noted."))
            return redirect("patients:patient", pseudonym=found.pseudonym)
    return _patient_page(request, pseudonym, status=400, support_form=form)


# --- moving a referral along ---------------------------------------------------------------------------


def _referral_form_page(
    request: HttpRequest, referral: Referral, template: str, form: Any, **extra: Any
) -> HttpResponse:
    """The form page again: 200 for a GET, 400 after a POST that was refused (invalid or by the service)."""
    return render(
        request,
        template,
        {
            "referral": referral,
            "patient": referral.patient,
            "form": form,
            "stage_label": Stage(selectors.stage_of(referral)).label,
            "may_act": _may(request, Perm.PATIENTS_REFER, referral.patient.treating_site),
            **extra,
        },
        status=400 if request.method == "POST" else 200,
    )


def _referral_asked(request: HttpRequest, pk: int) -> Referral:
    """The referral of a form page: seen with PATIENTS_VIEW, changed (POST) only with PATIENTS_REFER at
    the treating hospital; 404 otherwise."""
    perm = Perm.PATIENTS_REFER if request.method == "POST" else Perm.PATIENTS_VIEW
    return selectors.referral_for(request.user, pk, perm)


def _posted(
    request: HttpRequest, referral: Referral, form: Any, act: Callable[[dict[str, Any]], str]
) -> HttpResponse | None:
    """A valid POST: ``act`` calls the service with the form's cleaned data and returns what to tell the
    person, who goes back to the patient's page. ``None`` (render the form page again) for a GET, an
    invalid form, or the service's refusal, which is then shown on the form."""
    if request.method != "POST" or not form.is_valid():
        return None
    try:
        message = act(form.cleaned_data)
    except ValidationError as exc:
        apply_validation_error(form, exc)
        return None
    messages.success(request, message)
    return redirect("patients:patient", pseudonym=referral.patient.pseudonym)


@requires(Perm.PATIENTS_VIEW, write=Perm.PATIENTS_REFER)
@require_http_methods(["GET", "POST"])
def eligibility(request: HttpRequest, pk: int) -> HttpResponse:
    """The product's eligibility checklist, from the master-file version in effect for the referral."""
    referral = _referral_asked(request, pk)
    version = services.eligibility_version(referral)
    criteria = schema.eligibility_criteria(version.content) if version else []
    form = EligibilityForm(request.POST if request.method == "POST" else None, criteria=criteria)

    def assess(data: dict[str, Any]) -> str:
        assessment = services.eligibility_assess(
            actor=request_actor(request), referral=referral, answers=form.answers(), reason=data["reason"]
        )
        return _("Eligible.") if assessment.eligible else _("Not eligible.")

    return _posted(request, referral, form, assess) or _referral_form_page(
        request, referral, "patients/eligibility.html", form, version=version, open=referral.stage == Stage.REFERRED
    )


def _documents(referral: Referral) -> list[tuple[int, str]]:
    return [
        (d.pk, f"{d.code} v{d.version} — {d.get_language_display()} — {d.title}")
        for d in selectors.consent_documents_in_force(referral)
    ]


@requires(Perm.PATIENTS_VIEW, write=Perm.PATIENTS_REFER)
@require_http_methods(["GET", "POST"])
def consent(request: HttpRequest, pk: int) -> HttpResponse:
    """Record the patient's signed consent: the document version and language signed (PAT-CONSENT)."""
    referral = _referral_asked(request, pk)
    choices = _documents(referral)
    form = ConsentForm(request.POST if request.method == "POST" else None, documents=choices)

    def sign(data: dict[str, Any]) -> str:
        document = ConsentDocument.objects.filter(pk=data["document"], product=referral.product).first()
        if document is None:
            raise ValidationError({"document": _("Choose a consent document of this product.")})
        services.consent_sign(
            actor=request_actor(request),
            referral=referral,
            document=document,
            signed_at=_local(data["signed_at"], referral.patient.treating_site),
            language_reason=data["language_reason"],
            reason=data["reason"],
        )
        return _("Consent recorded.")

    return _posted(request, referral, form, sign) or _referral_form_page(
        request,
        referral,
        "patients/consent.html",
        form,
        open=referral.stage == Stage.ELIGIBLE,
        has_documents=bool(choices),
        language=Language(referral.patient.language).label,
    )


@requires(Perm.PATIENTS_VIEW, write=Perm.PATIENTS_REFER)
@require_http_methods(["GET", "POST"])
def withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    """The patient withdraws consent, confirmed: the referral ends and the material is held."""
    referral = _referral_asked(request, pk)
    form = WithdrawForm(request.POST if request.method == "POST" else None)

    def withdraw_consent(data: dict[str, Any]) -> str:
        services.consent_withdraw(actor=request_actor(request), referral=referral, reason=data["reason"])
        return _("Consent withdrawn; the patient's material is on hold.")

    return _posted(request, referral, form, withdraw_consent) or _referral_form_page(
        request,
        referral,
        "patients/withdraw.html",
        form,
        consent=selectors.consent_current(referral),
        open=referral.consents.filter(withdrawn_at=None).exists() and referral.stage != Stage.WITHDRAWN,
    )


@requires(Perm.PATIENTS_VIEW, write=Perm.PATIENTS_REFER)
@require_http_methods(["GET", "POST"])
def lost(request: HttpRequest, pk: int) -> HttpResponse:
    """The patient was lost before treatment, and why."""
    referral = _referral_asked(request, pk)
    form = LostForm(request.POST if request.method == "POST" else None)

    def lose(data: dict[str, Any]) -> str:
        services.referral_lose(
            actor=request_actor(request), referral=referral, lost_reason=data["lost_reason"], reason=data["reason"]
        )
        return _("Recorded as lost before treatment.")

    return _posted(request, referral, form, lose) or _referral_form_page(
        request, referral, "patients/lost.html", form, open=referral.stage not in ENDED_STAGES
    )


# --- consent documents ---------------------------------------------------------------------------------


@requires(Perm.PATIENTS_VIEW, write=Perm.MASTERFILE_AUTHOR)
@require_http_methods(["GET", "POST"])
def documents(request: HttpRequest) -> HttpResponse:
    """The consent documents in every version and language; Control Site QA issues the next version."""
    form = ConsentDocumentForm(
        request.POST if request.method == "POST" else None, products=[(p.code, str(p)) for p in products()]
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            document = services.consent_document_issue(
                actor=request_actor(request),
                product=products().get(code=data["product"]),
                code=data["code"],
                language=data["language"],
                title=data["title"],
                body=data["body"],
                reason=data["reason"],
            )
        except ValidationError as exc:
            apply_validation_error(form, exc)
        else:
            messages.success(request, _("%(document)s issued.") % {"document": document})
            return redirect("patients:documents")
    control = Site.objects.filter(kind=SiteKind.CONTROL).first()
    return render(
        request,
        "patients/documents.html",
        {
            "form": form,
            "documents": ConsentDocument.objects.select_related("product").order_by("code", "language", "-version")[
                :200
            ],
            "may_issue": control is not None and _may(request, Perm.MASTERFILE_AUTHOR, control),
        },
        status=400 if request.method == "POST" else 200,
    )
