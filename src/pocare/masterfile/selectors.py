"""Reads of the master file, scoped to the viewer, and the question every batch asks: which
master-file version is effective at this site now (POC-1, DESIGN rule 5)?

Control Site roles see every version and change request. Site people see the versions that are
(or were) approved — the law they work under — and the drafts of change requests that concern
their site; another site's change requests do not exist for them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from pocare.accounts import selectors as access
from pocare.accounts.roles import Perm
from pocare.ledger.models import Signature
from pocare.ledger.signing import signatures_for
from pocare.ledger.verify import signature_status
from pocare.masterfile import schema
from pocare.masterfile.models import ChangeRequest, ChangeStatus, MasterFileVersion, Product, VersionStatus
from pocare.masterfile.questions import TRAINING_GAPS
from pocare.network.models import Site, SiteKind
from pocare.network.selectors import site_authorizations, site_authorized_for

RELEASED = (VersionStatus.APPROVED, VersionStatus.EFFECTIVE, VersionStatus.SUPERSEDED)
IN_FORCE = (VersionStatus.EFFECTIVE, VersionStatus.SUPERSEDED)


# --- scoped reads ------------------------------------------------------------------------------------


def products_visible(user: Any) -> QuerySet[Product]:
    """Every product, for people who may read the master file."""
    if not access.has_perm(user, Perm.MASTERFILE_VIEW):
        return Product.objects.none()
    return Product.objects.all()


def versions_visible(user: Any) -> QuerySet[MasterFileVersion]:
    """Versions the person may read: all for the Control Site; for site people, the approved ones
    and the proposals of change requests that concern their sites."""
    if not access.has_perm(user, Perm.MASTERFILE_VIEW):
        return MasterFileVersion.objects.none()
    qs = MasterFileVersion.objects.select_related(
        "product", "change_request", "author", "reviewer", "approver"
    )
    site_ids = access.sites_with_perm(user, Perm.MASTERFILE_VIEW)
    if site_ids is None:
        return qs
    concerning = ChangeRequest.objects.filter(sites__in=site_ids).values("pk")
    return qs.filter(Q(status__in=RELEASED) | Q(change_request__in=concerning))


def version_for(user: Any, pk: int) -> MasterFileVersion:
    """One version the person may read (``MasterFileVersion.DoesNotExist`` otherwise)."""
    return versions_visible(user).get(pk=pk)


def change_requests_visible(user: Any) -> QuerySet[ChangeRequest]:
    """Change requests the person may read: all for the Control Site; for site people, those that
    concern a site where they hold MASTERFILE_VIEW."""
    if not access.has_perm(user, Perm.MASTERFILE_VIEW):
        return ChangeRequest.objects.none()
    qs = ChangeRequest.objects.select_related("product", "base_version", "raised_by", "version").prefetch_related(
        "sites")
    site_ids = access.sites_with_perm(user, Perm.MASTERFILE_VIEW)
    if site_ids is None:
        return qs
    concerning = ChangeRequest.objects.filter(sites__in=site_ids).values("pk")
    return qs.filter(pk__in=concerning)


def change_request_for(user: Any, pk: int) -> ChangeRequest:
    """One change request the person may read (``ChangeRequest.DoesNotExist`` otherwise)."""
    return change_requests_visible(user).get(pk=pk)


def proposed_version(cr: ChangeRequest) -> MasterFileVersion | None:
    """The version a change request proposes."""
    return MasterFileVersion.objects.select_related("product").filter(change_request=cr).first()


def signatures_with_status(record: Any) -> list[tuple[Signature, bool, str]]:
    """Every signature on ``record``, oldest first, each with whether it is still valid and why not."""
    return [(s, *signature_status(s)) for s in signatures_for(record).select_related("event")]


# --- training and the effective version -------------------------------------------------------------------


def required_training_steps(version: MasterFileVersion) -> list[str]:
    """The steps operators must be trained on before ``version`` is effective at their site: the
    steps its change request adds or changes, or every step of a first version."""
    if version.change_request_id is not None:
        assert version.change_request is not None
        return [str(s) for s in version.change_request.training_steps]
    return schema.step_ids(version.content)


#: A question about one site and one version at one moment (the training question's cases).
VersionCase = tuple[Site, MasterFileVersion, dt.datetime]


def training_gaps_many(cases: Sequence[VersionCase]) -> list[list[tuple[Any, list[str]]]]:
    """For each (site, version, moment), the people not yet trained on the version, as the apps
    above answer ``masterfile.questions.TRAINING_GAPS`` — asked once for every case."""
    if not cases:
        return []
    answers = TRAINING_GAPS.ask(cases=list(cases))
    return [[gap for answer in answers for gap in answer[i]] for i in range(len(cases))]


def effective_version(*, site: Site, product: Product, at: dt.datetime | None = None) -> MasterFileVersion | None:
    """The master-file version of ``product`` effective at ``site`` at ``at`` (default: now).

    It is the newest version made effective in the network by then (effective or since
    superseded) that the site is authorized for and that every active operator of the site is
    trained on. A site whose operators are not yet trained on a new version keeps the previous
    one; ``None`` means the site may not manufacture the product.
    """
    return effective_versions([(site, product, at)])[0]


def effective_versions(cases: Sequence[tuple[Site, Product, dt.datetime | None]]) -> list[MasterFileVersion | None]:
    """:func:`effective_version` of each (site, product, moment or None for now), in a fixed number
    of queries however many there are: the versions in force, the sites' authorizations and the
    training question are each read once (the release queue, the training matrix)."""
    now = timezone.now()
    whens = [at or now for _, _, at in cases]
    in_force: dict[int, list[MasterFileVersion]] = {p.pk: [] for _, p, _ in cases}
    if in_force:
        for v in (MasterFileVersion.objects.filter(product_id__in=list(in_force), status__in=IN_FORCE)
                  .select_related("change_request", "product").defer("document").order_by("-number")):
            in_force[v.product_id].append(v)  # (the YAML source is not needed to decide: 40 KB a version)
    grants = site_authorizations({(site.pk, product.pk) for site, product, _ in cases})
    candidates = [[v for v in in_force[product.pk] if v.effective_at is not None and v.effective_at <= when
                   and site_authorized_for(site, v, when, grants=grants[(site.pk, product.pk)])[0]]
                  for (site, product, _), when in zip(cases, whens, strict=True)]
    asked = [(site, v, when) for (site, _, _), when, versions in zip(cases, whens, candidates, strict=True)
             for v in versions]
    untrained = iter(training_gaps_many(asked))
    out: list[MasterFileVersion | None] = []
    for versions in candidates:
        trained = [v for v in versions if not next(untrained)]  # consumes every case's gaps, in order
        out.append(trained[0] if trained else None)
    return out


@dataclass
class SiteVersionCell:
    """What one version is at one site: effective there, an earlier one it left behind, waiting for
    training, not authorized, or approved but not yet effective in the network."""

    version: MasterFileVersion
    state: str  # effective | earlier | training | unauthorized | pending
    detail: str = ""
    gaps: list[tuple[Any, list[str]]] = field(default_factory=list)

    @property
    def label(self) -> str:
        return {
            "effective": "effective here",
            "earlier": "superseded here",
            "training": "waiting for training",
            "unauthorized": "not authorized",
            "pending": "ready when made effective",
            "pending_training": "approved; training pending",
            "not_in_force": "not in force",
        }[self.state]


@dataclass
class SiteVersions:
    """A site's row of the sites × versions table."""

    site: Site
    effective: MasterFileVersion | None
    cells: list[SiteVersionCell]


def effective_versions_by_site(product: Product, *, sites: QuerySet[Site] | None = None,
                               at: dt.datetime | None = None) -> tuple[list[MasterFileVersion], list[SiteVersions]]:
    """The sites × versions table of a product: the versions that are or were in force (and an
    approved one on its way), and for each manufacturing site which one is effective there and why
    the newer ones are not (authorization, operators not yet trained)."""
    return effective_versions_by_site_many([product], sites=sites, at=at)[product.pk]


def effective_versions_by_site_many(products: Sequence[Product], *, sites: QuerySet[Site] | None = None,
                                    at: dt.datetime | None = None,
                                    ) -> dict[int, tuple[list[MasterFileVersion], list[SiteVersions]]]:
    """:func:`effective_versions_by_site` of each product, by product id, in a fixed number of
    queries however many products, sites and versions: the versions, the sites, their
    authorizations and the training question are each read once (issue 15, pages that do not grow)."""
    when = at or timezone.now()
    by_product: dict[int, list[MasterFileVersion]] = {p.pk: [] for p in products}
    if not by_product:
        return {}
    for v in (MasterFileVersion.objects.filter(product_id__in=list(by_product), status__in=RELEASED)
              .select_related("change_request", "product").defer("document").order_by("-number")):
        by_product[v.product_id].append(v)  # (the YAML source is not shown: 40 KB a version)
    site_list = list((sites if sites is not None else Site.objects.all()).exclude(kind=SiteKind.CONTROL)
                     .order_by("code"))
    grants = site_authorizations({(site.pk, pk) for site in site_list for pk in by_product})
    authorized = {(site.pk, v.pk): site_authorized_for(site, v, when, grants=grants[(site.pk, v.product_id)])
                  for site in site_list for versions in by_product.values() for v in versions}
    asked = [(site, v, when) for site in site_list for versions in by_product.values() for v in versions
             if authorized[(site.pk, v.pk)][0]]
    gaps_of = {(site.pk, v.pk): gaps for (site, v, _), gaps in zip(asked, training_gaps_many(asked), strict=True)}
    out: dict[int, tuple[list[MasterFileVersion], list[SiteVersions]]] = {}
    for product_pk, versions in by_product.items():
        rows: list[SiteVersions] = []
        for site in site_list:
            cells: list[SiteVersionCell] = []
            effective: MasterFileVersion | None = None
            for version in versions:
                in_force = (version.status in IN_FORCE and version.effective_at is not None
                            and version.effective_at <= when)
                ok, why = authorized[(site.pk, version.pk)]
                if not ok:
                    cells.append(SiteVersionCell(version, "unauthorized", why))
                    continue
                gaps = gaps_of[(site.pk, version.pk)]
                if not in_force:
                    state = "pending_training" if gaps else "pending"
                    cells.append(SiteVersionCell(version, state, _gap_text(gaps), gaps))
                elif gaps:
                    cells.append(SiteVersionCell(version, "training", _gap_text(gaps), gaps))
                elif effective is None:
                    effective = version
                    cells.append(SiteVersionCell(version, "effective"))
                else:
                    cells.append(SiteVersionCell(version, "earlier"))
            rows.append(SiteVersions(site, effective, cells))
        out[product_pk] = (versions, rows)
    return out


def _gap_text(gaps: list[tuple[Any, list[str]]]) -> str:
    if not gaps:
        return ""
    people = "; ".join(f"{getattr(p, 'printed_name', '') or p} ({', '.join(steps)})" for p, steps in gaps)
    return f"{len(gaps)} operator{'s' if len(gaps) != 1 else ''} not trained: {people}"


# --- what a person may do with a version ------------------------------------------------------------


@dataclass(frozen=True)
class VersionAction:
    """A signing action the viewer may take on a version, as the detail page offers it."""

    name: str  # submit | review | return | approve | effective
    label: str
    meaning: str
    url_name: str
    irreversible: bool
    explanation: str


ACTIONS = {
    "submit": VersionAction("submit", "Sign as author and submit for review", "Authored", "masterfile:version_submit",
                            False, "You sign that you authored this version and send it to Control Site QA for "
                                   "review."),
    "review": VersionAction("review", "Sign as reviewed", "Reviewed", "masterfile:version_review", False,
                            "You sign that you reviewed this version; the QP approves it next."),
    "return": VersionAction("return", "Return to the author", "Rejected", "masterfile:version_return", False,
                            "The version goes back to draft; say what the author must resolve."),
    "approve": VersionAction("approve", "Approve as QP", "Approved", "masterfile:version_approve", True,
                             "You approve this version as Qualified Person. It cannot be undone; the version can "
                             "then be made effective."),
    "effective": VersionAction("effective", "Make effective", "Approved (made effective)",
                               "masterfile:version_effective", True,
                               "The version becomes effective in the network now and the one before is superseded. "
                               "Each site changes over once its operators are trained on what changed."),
}


def version_actions(user: Any, version: MasterFileVersion) -> list[VersionAction]:
    """The signing actions ``user`` may take on ``version`` now (the services check again)."""
    if access.is_read_only(user) or not getattr(user, "is_authenticated", False):
        return []
    out = []
    cr = version.change_request
    may = access.has_perm
    if version.status == VersionStatus.DRAFT and user.pk == version.author_id and (
        cr is None or cr.status != ChangeStatus.REJECTED
    ) and (may(user, Perm.MASTERFILE_AUTHOR) or (cr is not None and may(user, Perm.CHANGE_RAISE))):
        out.append(ACTIONS["submit"])
    if version.status == VersionStatus.IN_REVIEW and user.pk != version.author_id:
        if version.reviewer_id is None and may(user, Perm.MASTERFILE_REVIEW):
            out.append(ACTIONS["review"])
        if version.reviewer_id is not None and may(user, Perm.MASTERFILE_APPROVE) and user.pk != version.reviewer_id:
            out.append(ACTIONS["approve"])
        if may(user, Perm.MASTERFILE_REVIEW) or may(user, Perm.MASTERFILE_APPROVE):
            out.append(ACTIONS["return"])
    if version.status == VersionStatus.APPROVED and may(user, Perm.MASTERFILE_AUTHOR):
        out.append(ACTIONS["effective"])
    return out


def waiting_for(version: MasterFileVersion) -> str:
    """Whose signature the version waits for, in words."""
    author = version.author.printed_name or version.author.username
    cr = version.change_request
    if cr is not None and cr.status == ChangeStatus.REJECTED:
        return f"{cr.reference} was rejected; this version will not go further."
    if version.status == VersionStatus.DRAFT:
        return f"Waiting for the author, {author}, to sign it as authored and submit it."
    if version.status == VersionStatus.IN_REVIEW and version.reviewer_id is None:
        return f"Waiting for review by Control Site QA (someone other than {author})."
    if version.status == VersionStatus.IN_REVIEW:
        return "Reviewed; waiting for the QP's approval (a third person, neither author nor reviewer)."
    if version.status == VersionStatus.APPROVED:
        return "Approved; waiting for Control Site QA to make it effective."
    return ""


def product_changes(
    *, product: Product, start: dt.datetime, end: dt.datetime
) -> tuple[list[ChangeRequest], list[ChangeRequest]]:
    """The master file's answer to the network's ``PRODUCT_CHANGES``: change requests of ``product``
    raised in ``[start, end)``, and those approved or implemented in it (the annual report, POC-1)."""
    changes = ChangeRequest.objects.filter(product=product).select_related("raised_by").order_by("raised_at")
    raised = list(changes.filter(raised_at__gte=start, raised_at__lt=end))
    approved = list(changes.filter(decided_at__gte=start, decided_at__lt=end,
                                   status__in=[ChangeStatus.APPROVED, ChangeStatus.IMPLEMENTED]))
    return raised, approved
