"""The master-file dossier (DMMF, POC-3, POC-5, P11-10b): the Control Site, the sites with their
status and units, the process, the specification, the site annexes, the change history and every
signature — one human-readable document, as HTML and as PDF.

Reads only; recording the export is :func:`pocare.masterfile.services.dossier_export`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.template.loader import render_to_string
from django.utils import timezone

from pocare.accounts.models import Membership
from pocare.accounts.roles import Role
from pocare.jobs.tasks import Unrecoverable
from pocare.masterfile.models import ChangeRequest, MasterFileVersion, Product, VersionStatus
from pocare.masterfile.selectors import effective_versions_by_site, signatures_with_status
from pocare.network.models import Site, SiteAuthorization, SiteKind


class DossierUnavailable(Unrecoverable):
    """The PDF engine (WeasyPrint and its system libraries) cannot run here; the message says so. As a
    job's failure it is final: another try on the same server would fail alike."""


def dossier_version(product: Product, number: int | None = None) -> MasterFileVersion | None:
    """The version a dossier describes: ``number`` if given, else the effective one, else the newest."""
    versions = product.versions.select_related("change_request", "author", "reviewer", "approver")
    if number is not None:
        return versions.filter(number=number).first()
    return versions.filter(status=VersionStatus.EFFECTIVE).first() or versions.order_by("-number").first()


def dossier_context(*, product: Product, version: MasterFileVersion | None, exported_by: Any,
                    exported_at: dt.datetime | None = None) -> dict[str, Any]:
    """Everything the dossier shows, read at one moment."""
    version = version or dossier_version(product)
    at = exported_at or timezone.now()
    control = Site.objects.filter(kind=SiteKind.CONTROL).order_by("pk").first()
    control_people = list(
        Membership.objects.filter(site=control, role__in=[Role.QP, Role.CONTROL_QA], revoked_at=None)
        .select_related("user").order_by("role", "user__printed_name")
    ) if control else []
    sites = list(Site.objects.exclude(kind=SiteKind.CONTROL).prefetch_related("units").order_by("code"))
    authorizations: dict[int, list[SiteAuthorization]] = {}
    for grant in SiteAuthorization.objects.filter(product=product).select_related("granted_by").order_by("valid_from"):
        authorizations.setdefault(grant.site_id, []).append(grant)
    _, rows = effective_versions_by_site(product, at=at)
    effective_at_site = {row.site.pk: row.effective for row in rows}
    versions = list(product.versions.select_related("change_request", "author", "reviewer", "approver")
                    .order_by("number"))
    changes = list(ChangeRequest.objects.filter(product=product).select_related("base_version", "raised_by")
                   .prefetch_related("sites").order_by("raised_at"))
    signed: list[tuple[Any, list[Any]]] = [(v, signatures_with_status(v)) for v in versions]
    signed += [(c, signatures_with_status(c)) for c in changes]
    all_signatures = [s for _, sigs in signed for s in sigs]
    return {
        "product": product,
        "version": version,
        "content": version.content if version else {},
        "control": control,
        "control_people": control_people,
        "sites": [
            {"site": s, "units": list(s.units.all()), "authorizations": authorizations.get(s.pk, []),
             "effective": effective_at_site.get(s.pk)}
            for s in sites
        ],
        "versions": versions,
        "changes": changes,
        "signed": signed,
        "invalid_signatures": sum(1 for _, valid, _ in all_signatures if not valid),
        "signature_count": len(all_signatures),
        "exported_by": exported_by,
        "exported_at": at,
    }


def render_html(context: dict[str, Any]) -> str:
    """The dossier as a standalone HTML document (styles inline, no external resources)."""
    return render_to_string("masterfile/dossier.html", context)


def render_pdf(html: str) -> bytes:
    """The dossier as PDF through WeasyPrint. Raises :class:`DossierUnavailable` when WeasyPrint or
    its system libraries (Pango, HarfBuzz) cannot be loaded."""
    weasyprint = pdf_engine_check()
    pdf = weasyprint.HTML(string=html, base_url=None).write_pdf()
    if not pdf:
        raise DossierUnavailable("The PDF engine produced no document.")
    return bytes(pdf)


def pdf_engine_check() -> Any:
    """The WeasyPrint module, or :class:`DossierUnavailable` (the request asks before queueing a PDF)."""
    try:
        import weasyprint  # late: WeasyPrint needs Pango from the system; only the PDF answers 503 without it
    except (ImportError, OSError) as exc:
        raise DossierUnavailable(
            "The PDF engine cannot run on this server (WeasyPrint could not load its system libraries: "
            f"{exc}). The HTML dossier is available; ask the administrator to install Pango."
        ) from exc
    return weasyprint
