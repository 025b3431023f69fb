"""Deviation trends (Q10-PQS monitoring, management review): counts by site, kind, class, step
and month, with server-drawn SVG bar charts — for the trends page and for any report (the
annual report, the product quality review) that wants them: call :func:`deviation_trends` on a
queryset the reader may see, then :meth:`DeviationTrends.charts`."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

from django.db.models import QuerySet

from pocare.core.charts import bar_chart_svg
from pocare.quality.models import Deviation, DeviationClass, DeviationKind

_CLASS_COLOUR = {DeviationClass.CRITICAL: "bad", DeviationClass.MAJOR: "warn", DeviationClass.MINOR: "info",
                 "": "muted"}


@dataclass
class DeviationTrends:
    """Counts of deviations opened in ``[start, end)``, by dimension (label → count, in display order)."""

    start: dt.datetime
    end: dt.datetime
    total: int = 0
    by_site: dict[str, int] = field(default_factory=dict)
    by_kind: dict[str, int] = field(default_factory=dict)
    by_class: dict[str, int] = field(default_factory=dict)
    by_step: dict[str, int] = field(default_factory=dict)
    by_month: dict[str, int] = field(default_factory=dict)
    open_count: int = 0
    overdue: int = 0

    def charts(self) -> dict[str, str]:
        """An SVG bar chart per dimension (inline in a page or a WeasyPrint PDF)."""
        unit = ""  # the titles say what is counted; the numbers stay inside the chart's width
        return {
            "site": bar_chart_svg([(k, v, "info") for k, v in self.by_site.items()], title="Deviations by site",
                                  unit=unit),
            "kind": bar_chart_svg([(k, v, "info") for k, v in self.by_kind.items()], title="Deviations by kind",
                                  unit=unit),
            "class": bar_chart_svg([(DeviationClass(k).label if k else "Not classified", v, _CLASS_COLOUR[k])
                                    for k, v in self.by_class.items()], title="Deviations by class", unit=unit),
            "step": bar_chart_svg([(k, v, "warn") for k, v in self.by_step.items()] or [("none", 0, "muted")],
                                  title="Deviations by master-file step", unit=unit),
            "month": bar_chart_svg([(k, v, "info") for k, v in self.by_month.items()],
                                   title="Deviations opened by month (UTC)", unit=unit, bar_height=14),
        }


def months_back(now: dt.datetime, months: int) -> dt.datetime:
    """The first instant (UTC) of the month ``months - 1`` months before ``now``'s month."""
    index = now.year * 12 + now.month - 1 - (months - 1)
    return dt.datetime(index // 12, index % 12 + 1, 1, tzinfo=dt.UTC)


def _months(start: dt.datetime, end: dt.datetime) -> list[str]:
    out, year, month = [], start.year, start.month
    while (year, month) <= (end.year, end.month):
        out.append(f"{year}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def deviation_trends(qs: QuerySet[Deviation], *, start: dt.datetime, end: dt.datetime) -> DeviationTrends:
    """Count the deviations of ``qs`` opened in ``[start, end)`` (UTC). Every month of the period is
    listed, with zero where nothing was opened, so a quiet month shows as quiet."""
    rows = list(qs.filter(opened_at__gte=start, opened_at__lt=end)
                .values_list("site__code", "kind", "classification", "step_id", "opened_at", "status", "due_at"))
    trends = DeviationTrends(start=start, end=end, total=len(rows))
    sites = Counter(r[0] for r in rows)
    trends.by_site = dict(sorted(sites.items()))
    kinds = Counter(r[1] for r in rows)
    trends.by_kind = {DeviationKind(k).label.split(" (")[0]: kinds[k] for k in DeviationKind.values if kinds[k]}
    classes = Counter(r[2] for r in rows)
    trends.by_class = {k: classes[k] for k in [*DeviationClass.values, ""] if classes[k]}
    trends.by_step = dict(Counter(r[3] for r in rows if r[3]).most_common(12))
    months = Counter(f"{r[4].astimezone(dt.UTC):%Y-%m}" for r in rows)
    trends.by_month = {m: months[m] for m in _months(start, end - dt.timedelta(microseconds=1))}
    trends.open_count = sum(1 for r in rows if r[5] == "open")
    trends.overdue = sum(1 for r in rows if r[5] == "open" and r[6] is not None and r[6] < end)
    return trends
