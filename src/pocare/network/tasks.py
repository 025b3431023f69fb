"""The network's work that runs as a job (docs/jobs.md): the annual report's PDF."""

from __future__ import annotations

from django.template.loader import render_to_string

from pocare.accounts.models import User
from pocare.jobs.files import JobFile
from pocare.jobs.tasks import Unrecoverable, task
from pocare.network import selectors, services


@task(max_tries=3, label="Annual report (PDF)")
def annual_report_pdf_work(*, actor_id: int, year: int, product_id: int | None) -> JobFile:
    """The annual report's PDF for the person who asked (their permission checked again now); its
    generation is recorded as the HTML report's is. Fails at once, saying why, when this server cannot
    make PDFs (WeasyPrint needs Pango from the system)."""
    try:
        import weasyprint  # late: WeasyPrint needs Pango from the system
    except (ImportError, OSError) as exc:
        raise Unrecoverable(f"PDF output is unavailable on this server ({exc}). The HTML report works; "
                            "print it to PDF from the browser, or ask the administrator to install Pango.") from exc
    actor = User.objects.get(pk=actor_id)
    product = selectors.products().get(pk=product_id) if product_id is not None else None
    report = services.annual_report_generate(actor=actor, year=year, product=product, fmt="pdf")
    html = render_to_string("network/annual_report_pdf.html", {"report": report, "control": selectors.control_site()})
    pdf = weasyprint.HTML(string=html, base_url=None).write_pdf()
    slug = product.code if product else "network"
    summary = {"year": year, "product": slug, "event": report.event.label if report.event else ""}
    return JobFile(content=bytes(pdf or b""), download_name=f"pocare-annual-report-{report.year}-{slug}.pdf",
                   content_type="application/pdf", summary=summary)
