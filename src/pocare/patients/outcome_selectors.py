"""Reads for the network's outcomes (docs/patients.md "Outcomes"): the per-referral records that
:mod:`pocare.patients.outcomes` computes its figures from, in four queries whatever their number
(referrals with their patient; the first apheresis of each referral's order; the day-100 visits;
the highest CRS and ICANS grades), and the referrals per site that the planning twin takes its
demand from.

The records are pseudonymous (no identity, no pseudonym even: a number per patient) and leave this
module only as suppressed aggregates: a reader holding OUTCOMES_VIEW sees the network's figures and
the rows of the sites where they hold it (PAT-PRIVACY).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import Count, Max, Min

from pocare.accounts.roles import Perm
from pocare.accounts.selectors import sites_with_perm
from pocare.custody.models import Collection
from pocare.network.models import Site
from pocare.patients.models import AdverseEvent, AdverseEventKind, Referral, VisitStatus
from pocare.patients.models import Visit as FollowUpVisit
from pocare.patients.outcomes import Outcomes, Record, outcomes

#: The follow-up time point the response is read at (CIBMTR's day 100).
RESPONSE_DAY = 100


def outcome_sites(user: Any) -> list[str] | None:
    """The codes of the sites whose own rows ``user`` may see (``None``: every site); refused
    without OUTCOMES_VIEW anywhere."""
    held = sites_with_perm(user, Perm.OUTCOMES_VIEW)
    if held is None:
        return None
    if not held:
        raise PermissionDenied("This needs the permission patients.outcomes.")
    return sorted(Site.objects.filter(pk__in=held).values_list("code", flat=True))


def outcomes_visible(user: Any, *, start: dt.datetime, end: dt.datetime) -> Outcomes:
    """The outcomes of the referrals made in ``[start, end)`` as ``user`` may see them: the network's
    figures and the rows of the sites where they hold OUTCOMES_VIEW, suppressed (PAT-PRIVACY)."""
    visible = outcome_sites(user)
    return outcomes(outcome_records(start=start, end=end), visible=visible)


def outcome_records(*, start: dt.datetime, end: dt.datetime) -> list[Record]:
    """One record per referral made in ``[start, end)`` at every site: the input of the outcomes,
    never shown as such — only :func:`outcomes_visible`'s suppressed aggregates are. Four queries,
    whatever the number of referrals."""
    referrals = Referral.objects.filter(referred_at__gte=start, referred_at__lt=end)
    rows = list(referrals.values_list(
        "pk", "patient_id", "patient__treating_site__code", "referred_at", "stage", "lost_reason", "infused_at",
        "order_id", "patient__region", "patient__travel_minutes", "patient__deprivation_quintile"))
    collected = dict(Collection.objects.filter(order__referral__in=referrals).values("order_id")
                     .annotate(first=Min("collection_ended_at")).values_list("order_id", "first"))
    responses = dict(FollowUpVisit.objects.filter(referral__in=referrals, day=RESPONSE_DAY, status=VisitStatus.DONE)
                     .values_list("referral_id", "response"))
    grades: dict[tuple[int, str], int] = {
        (referral_id, kind): grade for referral_id, kind, grade in
        AdverseEvent.objects.filter(referral__in=referrals, kind__in=[AdverseEventKind.CRS, AdverseEventKind.ICANS])
        .values("referral_id", "kind").annotate(top=Max("grade")).values_list("referral_id", "kind", "top")}
    return [Record(patient=patient_id, referral=pk, site=site, referred_at=referred_at, stage=stage,
                   lost_reason=lost_reason, infused_at=infused_at,
                   collected_at=collected.get(order_id) if order_id else None,
                   region=region, travel_minutes=travel, deprivation_quintile=quintile,
                   response_day100=responses.get(pk, ""),
                   max_crs_grade=grades.get((pk, AdverseEventKind.CRS)),
                   max_icans_grade=grades.get((pk, AdverseEventKind.ICANS)))
            for (pk, patient_id, site, referred_at, stage, lost_reason, infused_at, order_id, region, travel,
                 quintile) in rows]


def referrals_per_site(*, start: dt.datetime, end: dt.datetime) -> dict[str, int]:
    """Referrals made in ``[start, end]`` per manufacturing site: the order's site once the
    referral has an order, else the treating hospital (at a point-of-care network, where it is made).
    The planning twin's observed demand (issue 15)."""
    counts: dict[str, int] = {}
    for ordered_at, treating, n in (Referral.objects.filter(referred_at__gte=start, referred_at__lte=end)
                                    .values("order__site__code", "patient__treating_site__code")
                                    .annotate(n=Count("pk"))
                                    .values_list("order__site__code", "patient__treating_site__code", "n")):
        code = ordered_at or treating
        counts[code] = counts.get(code, 0) + n
    return counts
