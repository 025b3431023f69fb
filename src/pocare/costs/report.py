"""The cost report of a site (or the network) for a period (COST-BATCH): every batch that ended in the
period priced by its own records (``rollup.batch_totals``), summed by category and by month, the cost
per released product, and the comparison with the published anchors (``anchors``).

The figures are plain JSON (amounts as decimal text), so that a signed report keeps exactly what was
signed (``models.CostReport.figures`` and its SHA-256) and the page, the CSV and the PDF all read the
same figures. :func:`figures_for` computes them; :func:`figures_hash` is what the signature binds.

Period: the days are UTC days, ``start`` to ``end`` inclusive; a batch belongs to the period in which
it ended (completed or aborted). Batches still in progress are not in a report.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from pocare.costs import anchors, compute, rollup
from pocare.ledger.canonical import content_hash
from pocare.manufacturing.models import Batch, BatchStatus
from pocare.network.models import Site

#: The longest period a report covers, and the earliest day it may start.
MAX_DAYS = 366 * 10
EARLIEST = dt.date(2000, 1, 1)
#: The most batches a report lists (and a signature binds); a larger one is asked for per site or shorter.
MAX_BATCHES = 5_000
RELEASED = "released"


def period_bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The period's moments: from ``start`` 00:00 UTC up to (not including) the day after ``end``."""
    return (dt.datetime.combine(start, dt.time(), tzinfo=dt.UTC),
            dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC))


def batches_in(scope: QuerySet[Batch], site: Site | None, start: dt.date, end: dt.date) -> QuerySet[Batch]:
    """The batches of ``scope`` (those the person may read) at ``site`` (any, for ``None``) that ended in
    the period."""
    since, until = period_bounds(start, end)
    found = scope.filter(status__in=[BatchStatus.COMPLETED, BatchStatus.ABORTED], ended_at__gte=since,
                         ended_at__lt=until)
    return found.filter(site=site) if site is not None else found


def _text(value: Decimal) -> str:
    return f"{value.quantize(compute.CENT)}"


def figures_for(batches: QuerySet[Batch], *, site: Site | None, start: dt.date, end: dt.date) -> dict[str, Any]:
    """The report's figures for the batches (already scoped to the site and period)."""
    totals = rollup.batch_totals(batches)
    keys = rollup.CATEGORY_KEYS
    by_category = dict.fromkeys(keys, Decimal(0))
    months: dict[str, dict[str, Any]] = defaultdict(lambda: {"batches": 0, "amounts": dict.fromkeys(keys, Decimal(0))})
    rows = []
    for t in sorted(totals, key=lambda t: (t.ended_at or t.started_at, t.reference)):
        month = months[(t.ended_at or t.started_at).astimezone(dt.UTC).strftime("%Y-%m")]
        month["batches"] += 1
        for key in keys:
            by_category[key] += t.amounts[key]
            month["amounts"][key] += t.amounts[key]
        rows.append({"reference": t.reference, "site": t.site_code, "status": t.status, "decision": t.decision or "",
                     "ended": (t.ended_at or t.started_at).astimezone(dt.UTC).strftime("%Y-%m-%d"),
                     "model": t.model_number, "amounts": {k: _text(t.amounts[k]) for k in keys},
                     "total": _text(t.total), "unpriced": t.unpriced})
    total = sum(by_category.values(), Decimal(0))
    released = sum(1 for t in totals if t.decision == RELEASED)
    per_released = (total / released).quantize(compute.CENT) if released else None
    return {
        "site": site.code if site is not None else None,
        "site_name": site.name if site is not None else "The whole network",
        "start": start.isoformat(), "end": end.isoformat(),
        "batches": len(totals),
        "completed": sum(1 for t in totals if t.status == BatchStatus.COMPLETED),
        "aborted": sum(1 for t in totals if t.status == BatchStatus.ABORTED),
        "released": released,
        "rejected": sum(1 for t in totals if t.decision == "rejected"),
        "unpriced_lines": sum(t.unpriced for t in totals),
        "without_model": sum(1 for t in totals if t.model_number is None),
        "models": sorted({t.model_number for t in totals if t.model_number is not None}),
        "totals": {k: _text(v) for k, v in by_category.items()},
        "total": _text(total),
        "per_batch": _text(total / len(totals)) if totals else None,
        "per_released": _text(per_released) if per_released is not None else None,
        "months": [{"month": m, "batches": v["batches"], "amounts": {k: _text(a) for k, a in v["amounts"].items()},
                    "total": _text(sum(v["amounts"].values(), Decimal(0)))} for m, v in sorted(months.items())],
        "rows": rows,
    }


def figures_hash(figures: dict[str, Any]) -> str:
    return content_hash(figures)


def comparison(figures: dict[str, Any]) -> list[anchors.Comparison]:
    per = figures.get("per_released")
    return anchors.compare(Decimal(per) if per else None)


def csv_rows(figures: dict[str, Any]) -> list[list[str]]:
    """The report as rows: one a batch (its amount by category), then the totals."""
    keys = rollup.CATEGORY_KEYS
    head = ["batch", "site", "ended (UTC)", "status", "QP decision", "cost model", *keys, "total (EUR)",
            "unpriced lines"]
    out = [head]
    for r in figures["rows"]:
        out.append([r["reference"], r["site"], r["ended"], r["status"], r["decision"],
                    str(r["model"] or ""), *(r["amounts"][k] for k in keys), r["total"], str(r["unpriced"])])
    out.append(["TOTAL", figures["site"] or "network", f"{figures['start']}..{figures['end']}", "", "", "",
                *(figures["totals"][k] for k in keys), figures["total"], str(figures["unpriced_lines"])])
    return out


def period_checked(start: dt.date, end: dt.date, *, today: dt.date) -> None:
    """Refuse a period no report covers, naming the field: ``ValidationError``."""
    if not EARLIEST <= start <= today:
        raise ValidationError({"start": f"The first day must be from {EARLIEST} to today ({today})."})
    if not start <= end <= today:
        raise ValidationError({"end": f"The last day must be from the first day ({start}) to today ({today})."})
    if (end - start).days + 1 > MAX_DAYS:
        raise ValidationError({"end": f"A report covers at most {MAX_DAYS:,} days; choose a shorter period."})
