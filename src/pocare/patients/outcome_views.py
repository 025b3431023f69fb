"""The network's outcomes page and its CSV (docs/patients.md "Outcomes"): the figures of
:mod:`pocare.patients.outcomes` for the referrals of a period, per site the reader may see and for
the network, small numbers suppressed identically on the page and in the CSV (PAT-PRIVACY)."""

from __future__ import annotations

import csv
import datetime as dt
from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET

from pocare.accounts.decorators import requires
from pocare.accounts.roles import Perm
from pocare.core.fields import IsoDateField
from pocare.patients import outcomes as figures
from pocare.patients.models import LostReason
from pocare.patients.outcome_selectors import outcomes_visible

#: The default period: referrals of the last two years (day-100 response needs time to come in).
DEFAULT_DAYS = 730


class PeriodForm(forms.Form):
    """The referrals' period, ``from`` and ``to`` inclusive (dates in UTC)."""

    start = IsoDateField(label=gettext_lazy("Referred from"), required=False)
    end = IsoDateField(label=gettext_lazy("Referred to"), required=False)

    def clean(self) -> dict[str, Any]:
        data: dict[str, Any] = super().clean() or {}
        today = timezone.now().date()
        end = data.get("end") or today
        start = data.get("start") or end - dt.timedelta(days=DEFAULT_DAYS)
        if start > end:
            raise forms.ValidationError({"start": _("The period starts on or before its end.")})
        if end > today + dt.timedelta(days=1):
            raise forms.ValidationError({"end": _("The period ends today at the latest.")})
        data["start"], data["end"] = start, end
        return data


def _period(request: HttpRequest) -> tuple[PeriodForm, dt.date, dt.date] | tuple[PeriodForm, None, None]:
    form = PeriodForm({"start": request.GET.get("start", ""), "end": request.GET.get("end", "")})
    if not form.is_valid():
        return form, None, None
    return form, form.cleaned_data["start"], form.cleaned_data["end"]


def _compute(request: HttpRequest, start: dt.date, end: dt.date) -> figures.Outcomes:
    begin = dt.datetime.combine(start, dt.time.min, tzinfo=dt.UTC)
    stop = dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)
    return outcomes_visible(request.user, start=begin, end=stop)


def _charts(result: figures.Outcomes) -> dict[str, str]:
    rows = [*result.sites, result.network]
    network = _("Network")

    def label(row: figures.Row) -> str:
        return network if row.group == figures.NETWORK else row.group

    too_few = _("fewer than 5 patients")
    unpublished = _("not published (small numbers)")
    return {
        "r2i": figures.time_chart([(label(r), r.referral_to_infusion) for r in rows],
                                  title=_("Referral to infusion, median days"), none_text=too_few),
        "v2v": figures.time_chart([(label(r), r.vein_to_vein) for r in rows],
                                  title=_("Vein to vein (apheresis to infusion), median days"), none_text=too_few),
        "treated": figures.rate_chart([(label(r), r.treated_share) for r in rows],
                                      title=_("Referred patients treated, per cent"), none_text=unpublished),
        "response": figures.rate_chart([(label(r), r.response) for r in rows],
                                       title=_("Complete or partial response at day 100, per cent"),
                                       none_text=unpublished, fill="ok"),
        "crs": figures.rate_chart([(label(r), r.crs3_rate) for r in rows], title=_("CRS grade 3 or more, per cent"),
                                  none_text=unpublished, fill="warn"),
        "icans": figures.rate_chart([(label(r), r.icans3_rate) for r in rows],
                                    title=_("ICANS grade 3 or more, per cent"), none_text=unpublished, fill="warn"),
        "quintiles": figures.count_chart([(q.group, q.referred) for q in result.quintiles],
                                         title=_("Patients referred by deprivation quintile (1 least deprived)")),
    }


@requires(Perm.OUTCOMES_VIEW)
@require_GET
def outcomes(request: HttpRequest) -> HttpResponse:
    """Outcomes per site and for the network over the referrals of a period (default: two years)."""
    form, start, end = _period(request)
    if start is None or end is None:
        return render(request, "patients/outcomes.html", {"form": form}, status=400)
    result = _compute(request, start, end)
    labels = dict(LostReason.choices)
    rows = [(_("Network") if r.group == figures.NETWORK else r.group, r) for r in [*result.sites, result.network]]
    return render(request, "patients/outcomes.html", {
        "form": form, "start": start, "end": end, "o": result, "rows": rows, "charts": _charts(result),
        "lost_header": [_(labels[reason]) for reason in figures.LOST_REASONS],
        "lost_rows": [(label, [r.lost_by_reason[reason] for reason in figures.LOST_REASONS]) for label, r in rows],
        "query": f"start={start.isoformat()}&end={end.isoformat()}",
    })


@requires(Perm.OUTCOMES_VIEW)
@require_GET
def outcomes_csv(request: HttpRequest) -> HttpResponse:
    """The page's figures as CSV, one a row, suppressed identically."""
    form, start, end = _period(request)
    if start is None or end is None:
        errors = "; ".join(f"{field}: {' '.join(str(m) for m in msgs)}" for field, msgs in form.errors.items())
        return HttpResponse(errors, status=400, content_type="text/plain; charset=utf-8")
    result = _compute(request, start, end)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="pocare-outcomes-{start}-{end}.csv"'
    writer = csv.writer(response)
    header, *rows = figures.csv_rows(result)
    writer.writerow(("period_start", "period_end", *header))
    writer.writerows((start.isoformat(), end.isoformat(), *row) for row in rows)
    return response
