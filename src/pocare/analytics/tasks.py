"""The scheduled checks, as jobs (``pocare.jobs.schedule`` names them by dotted path): the comparability
monitor nightly, and the daily look for what is overdue or expiring across the network. Analytics
reads every app below it, so the daily check that spans them lives here."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from django.db.models import Exists, OuterRef
from django.template.loader import render_to_string
from django.utils import timezone

from pocare.accounts.models import User
from pocare.analytics.services import comparability_monitor_run, product_quality_review_generate
from pocare.jobs.files import JobFile
from pocare.jobs.tasks import Unrecoverable, task
from pocare.manufacturing.models import LotStatus, MaterialLot
from pocare.masterfile.models import Product
from pocare.network.models import ManufacturingUnit, UnitStatus
from pocare.quality.models import CapaAction, Deviation
from pocare.quality.selectors import overdue_q
from pocare.training.models import PersonQualification
from pocare.training.selectors import EXPIRING_WITHIN

#: How far ahead the daily check looks for lots and unit calibrations running out.
LOOK_AHEAD = dt.timedelta(days=30)


def _slot_time(slot: str) -> dt.datetime:
    """The scheduled slot's moment (the check judges as of its slot, even when it runs late)."""
    if not slot:
        return timezone.now()
    at = dt.datetime.fromisoformat(slot)
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


@task(max_tries=3, label="Comparability monitor (nightly)")
def comparability_monitor(*, slot: str = "") -> dict[str, Any]:
    """The nightly comparability monitor (``pocare comparability run``): rules, equivalence, signals."""
    run = comparability_monitor_run(now=_slot_time(slot))
    return {"slot": slot, "summary": run.line(), "signals_raised": len(run.raised)}


def _by_site(rows: Any) -> dict[str, int]:
    return dict(sorted(Counter(rows).items()))


@task(max_tries=3, label="Daily checks: overdue and expiring")
def daily_checks(*, slot: str = "") -> dict[str, Any]:
    """Count, per site, the deviations past their investigation due date, the CAPA actions past their
    due date, the qualifications running out within 30 days that no later grant renews, the released
    material lots expired or expiring, and the qualified units whose calibration is due or overdue.
    The people who act on them see each in their work queues; this job is the network's daily record."""
    now = _slot_time(slot)
    today, ahead = now.date(), (now + LOOK_AHEAD).date()
    renewed = PersonQualification.objects.filter(person=OuterRef("person"), qualification=OuterRef("qualification"),
                                                 revoked_at__isnull=True, valid_until__gt=OuterRef("valid_until"))
    return {
        "slot": slot,
        "deviations_overdue": _by_site(Deviation.objects.filter(overdue_q(now)).values_list("site__code", flat=True)),
        "capa_overdue": _by_site(CapaAction.objects.filter(done_at__isnull=True, due_on__lt=today)
                                 .values_list("deviation__site__code", flat=True)),
        "qualifications_expiring": PersonQualification.objects.filter(
            revoked_at__isnull=True, valid_from__lte=now, valid_until__gt=now,
            valid_until__lte=now + EXPIRING_WITHIN).filter(~Exists(renewed)).count(),
        "lots_expired": _by_site(MaterialLot.objects.filter(status=LotStatus.RELEASED, expiry_date__lt=today)
                                 .values_list("site__code", flat=True)),
        "lots_expiring": _by_site(MaterialLot.objects.filter(status=LotStatus.RELEASED, expiry_date__gte=today,
                                                             expiry_date__lte=ahead)
                                  .values_list("site__code", flat=True)),
        "units_calibration_due": _by_site(ManufacturingUnit.objects.filter(status=UnitStatus.QUALIFIED,
                                                                           calibration_due__lte=ahead)
                                          .values_list("site__code", flat=True)),
    }


@task(max_tries=3, label="Product quality review (PDF)")
def product_quality_review_pdf_work(*, actor_id: int, product_id: int, start: str, end: str) -> JobFile:
    """The PDF of the product quality review, for the person who asked (their permission checked again
    now); its generation is recorded as the HTML review's is. Fails at once, saying why, when this
    server cannot make PDFs (WeasyPrint needs Pango from the system)."""
    try:
        import weasyprint  # late: WeasyPrint needs Pango from the system
    except (ImportError, OSError) as exc:
        raise Unrecoverable(f"PDF output is unavailable on this server ({exc}). The HTML review works; "
                            "print it to PDF from the browser, or ask the administrator to install Pango.") from exc
    actor = User.objects.get(pk=actor_id)
    product = Product.objects.get(pk=product_id)
    review = product_quality_review_generate(actor=actor, product=product, start=dt.datetime.fromisoformat(start),
                                             end=dt.datetime.fromisoformat(end), fmt="pdf")
    html = render_to_string("analytics/review_pdf.html", {"review": review})
    pdf = weasyprint.HTML(string=html, base_url=None).write_pdf()
    name = f"pocare-pqr-{product.code}-{review.start:%Y%m%d}-{review.last_day:%Y%m%d}.pdf"
    return JobFile(content=bytes(pdf or b""), download_name=name, content_type="application/pdf",
                   summary={"product": product.code, "event": review.event.label})
