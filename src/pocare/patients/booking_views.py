"""The booking pages: a patient's chain of slots (proposals, book, move, cancel) and a hospital's
slot calendar (open slots). Views parse the request and call :mod:`pocare.patients.booking`; each
POST names its action and gives a reason, and a refusal comes back as a 400 with the page."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods

from pocare.accounts import selectors as access
from pocare.accounts.decorators import request_actor, requires
from pocare.accounts.roles import Perm
from pocare.core.times import site_time
from pocare.network.models import Site, SiteKind
from pocare.patients import booking as svc
from pocare.patients.models import BookingStatus, Patient, Referral, SlotKind, Stage

_PSEUDONYM = re.compile(r"^PX-[0-9A-Z]{4}-[0-9A-Z]{4}$")
_CODE = re.compile(r"^[A-Z][A-Z0-9]{1,7}$")


def _patient(request: HttpRequest, pseudonym: str) -> Patient:
    """The patient, when the person sees the treating hospital's patients; 404 otherwise."""
    if not _PSEUDONYM.match(pseudonym):
        raise Http404("No such patient.")
    patient = Patient.objects.select_related("treating_site").filter(pseudonym=pseudonym).first()
    if patient is None or not access.has_perm(request.user, Perm.PATIENTS_VIEW, site_id=patient.treating_site_id):
        raise Http404("No such patient.")
    return patient


def _after(request: HttpRequest) -> dt.datetime | None:
    raw = request.GET.get("after", "")[:10]
    if not raw:
        return None
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError:
        raise ValidationError({"after": _("Give the date as YYYY-MM-DD.")}) from None
    today = timezone.now().date()
    if not today <= day <= today + svc.HORIZON:
        raise ValidationError({"after": _("Give a date from today to a year ahead.")})
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def _booking_context(
    request: HttpRequest, patient: Patient, referral: Referral | None, errors: dict[str, list[str]]
) -> dict[str, Any]:
    bookings = svc.bookings_of(user=request.user, referral=referral) if referral else []
    active = next((b for b in bookings if b.status == BookingStatus.ACTIVE), None)
    proposals: list[svc.Proposal] = []
    may_book = referral is not None and svc.may_book(request.user, referral)
    after = None
    try:
        after = _after(request)
    except ValidationError as exc:
        errors = {**errors, **exc.message_dict}
    if may_book and referral is not None and referral.stage in (Stage.CONSENTED, Stage.BOOKED):
        proposals = svc.chain_propose(user=request.user, referral=referral, after=after, moving=active)
    return {
        "patient": patient,
        "referral": referral,
        "bookings": bookings,
        "active": active,
        "proposals": proposals[:20],
        "may_book": may_book,
        "errors": errors,
        "after": after.date().isoformat() if after else "",
    }


@requires(Perm.PATIENTS_VIEW, write=Perm.PATIENTS_BOOK)
@require_http_methods(["GET", "POST"])
def booking_page(request: HttpRequest, pseudonym: str) -> HttpResponseBase:
    """A patient's chain of slots (GET); book, move or cancel it (POST: ``action``, ``proposal``, ``reason``)."""
    patient = _patient(request, pseudonym)
    referral = (
        Referral.objects.filter(patient=patient)
        .select_related("patient__treating_site", "product", "order")
        .order_by("-referred_at", "-pk")
        .first()
    )
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        if referral is None:
            raise Http404("This patient has no referral.")
        action = request.POST.get("action", "")
        reason = request.POST.get("reason", "")[:1000]
        try:
            if action == "book":
                proposal = svc.proposal_from_token(
                    user=request.user, referral=referral, token=request.POST.get("proposal", "")
                )
                done = _("Booked")
                booking = svc.chain_book(
                    actor=request_actor(request), referral=referral, proposal=proposal, reason=reason
                )
            elif action in ("rebook", "cancel"):
                active = (
                    referral.bookings.filter(status=BookingStatus.ACTIVE).select_related("manufacturing_site").first()
                )
                if active is None:
                    raise ValidationError({"booking": _("This patient has no active booking.")})
                if action == "cancel":
                    booking = svc.booking_cancel(actor=request_actor(request), booking=active, reason=reason)
                    done = _("Cancelled; the slots are free again")
                else:
                    proposal = svc.proposal_from_token(
                        user=request.user, referral=referral, token=request.POST.get("proposal", "")
                    )
                    booking = svc.chain_rebook(
                        actor=request_actor(request), booking=active, proposal=proposal, reason=reason
                    )
                    if booking.manufacturing_site_id == active.manufacturing_site_id:
                        done = _("Moved")
                    else:
                        done = _("Moved to %(new)s, its therapy order at %(old)s cancelled and a new one made") % {
                            "new": booking.manufacturing_site.code,
                            "old": active.manufacturing_site.code,
                        }
            else:
                raise ValidationError({"action": _("Use book, rebook or cancel.")})
        except ValidationError as exc:
            errors = exc.message_dict
        else:
            aph, inf = booking.apheresis_slot, booking.infusion_slot
            messages.success(
                request,
                _("%(done)s: apheresis %(apheresis)s at %(aph_site)s, infusion %(infusion)s at %(inf_site)s.")
                % {
                    "done": done,
                    "apheresis": site_time(aph.starts_at, aph.site),
                    "aph_site": aph.site.code,
                    "infusion": site_time(inf.starts_at, inf.site),
                    "inf_site": inf.site.code,
                },
            )
            return redirect("patients:booking", pseudonym=patient.pseudonym)
    context = _booking_context(request, patient, referral, errors)
    return render(request, "patients/booking.html", context, status=400 if context["errors"] else 200)


def _site(request: HttpRequest, code: str) -> Site:
    site = Site.objects.filter(code=code).exclude(kind=SiteKind.CONTROL).first() if _CODE.match(code) else None
    if site is None or not access.has_perm(request.user, Perm.PATIENTS_VIEW, site_id=site.pk):
        raise Http404("No such hospital of yours.")
    return site


def _when(value: str, field: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(value.strip()[:20])
    except ValueError:
        raise ValidationError({field: _("Give the date and time as YYYY-MM-DD HH:MM.")}) from None
    return moment.replace(tzinfo=dt.UTC) if timezone.is_naive(moment) else moment


@requires(Perm.PATIENTS_VIEW, write=Perm.PATIENTS_BOOK)
@require_http_methods(["GET", "POST"])
def slots_page(request: HttpRequest, code: str) -> HttpResponse:
    """The hospital's apheresis and infusion slots over four weeks (GET); open slots (POST, UTC times)."""
    site = _site(request, code)
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        try:
            opened = svc.slots_open(
                actor=request_actor(request),
                site=site,
                kind=request.POST.get("kind", ""),
                starts=_when(request.POST.get("starts", ""), "starts"),
                ends=_when(request.POST.get("ends", ""), "ends"),
                every=request.POST.get("every", "")[:12],
                duration=request.POST.get("duration", "")[:12],
                reason=request.POST.get("reason", "")[:1000],
            )
        except ValidationError as exc:
            errors = exc.message_dict
        else:
            messages.success(
                request, ngettext("%(n)d slot opened.", "%(n)d slots opened.", len(opened)) % {"n": len(opened)}
            )
            return redirect("patients:slots", code=site.code)
    start = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    slots = svc.slots_of(user=request.user, site=site, starts=start)
    may_open = access.has_perm(request.user, Perm.PATIENTS_BOOK, site_id=site.pk) and not access.is_read_only(
        request.user
    )
    return render(
        request,
        "patients/slots.html",
        {
            "site": site,
            "slots": slots,
            "kinds": SlotKind.choices,
            "may_open": may_open,
            "errors": errors,
            "post": request.POST if errors else {},
            "max_slots": svc.MAX_SLOTS,
        },
        status=400 if errors else 200,
    )
