"""Reads of the network, scoped to what the viewer may see, and the pure checks other capabilities
ask before they act: may this site start a batch, may this unit be used, is this site authorized
for this master-file version — each answering ``(yes or no, why)``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db.models import Count, Prefetch, Q, QuerySet
from django.utils import timezone

from pocare.accounts import selectors as access
from pocare.accounts.roles import Perm
from pocare.ledger.canonical import format_timestamp
from pocare.network.models import (
    SITE_TRANSITIONS,
    ManufacturingUnit,
    PerformanceRun,
    ReadinessCheck,
    ReadinessItem,
    RunOutcome,
    Site,
    SiteAuthorization,
    SiteKind,
    SiteStatus,
    SiteTransition,
    UnitStatus,
)

if TYPE_CHECKING:
    from pocare.masterfile.models import MasterFileVersion

#: Process performance qualification (PPQ) conventionally rests on three consecutive successful
#: runs (EU GMP Annex 15 §5.21 speaks of "a minimum of three consecutive batches"; FDA's 2011
#: process validation guidance leaves the number to the manufacturer, and three remains the common
#: choice). A site leaves qualification only with at least this many passed runs on record.
REQUIRED_PASSED_RUNS = 3

#: Due dates this close (in days) are shown as "due soon" so that requalification is planned.
DUE_SOON_DAYS = 30

Check = tuple[bool, str]


# --- scoped reads -----------------------------------------------------------------------------


def sites_visible(user: Any, perm: Perm = Perm.NETWORK_VIEW) -> QuerySet[Site]:
    """Every site for Control Site roles; otherwise the sites where the person holds a role (each
    site role carries NETWORK_VIEW) — or, given ``perm``, where they hold that permission."""
    if not access.has_perm(user, perm):
        return Site.objects.none()
    site_ids = access.sites_with_perm(user, perm)
    qs = Site.objects.all()
    return qs if site_ids is None else qs.filter(pk__in=site_ids)


def sites_overview(user: Any) -> QuerySet[Site]:
    """Sites with the number of people holding an active role there, their units (not retired) and
    their authorizations in force, for the network page."""
    return sites_visible(user).annotate(
        people=Count("memberships", filter=Q(memberships__revoked_at=None), distinct=True),
        units_total=Count("units", filter=~Q(units__status=UnitStatus.RETIRED), distinct=True),
    ).prefetch_related(Prefetch(
        "authorizations", queryset=SiteAuthorization.objects.filter(revoked_at=None).select_related("product"),
        to_attr="authorizations_in_force",
    ))


def units_visible(user: Any, perm: Perm = Perm.NETWORK_VIEW) -> QuerySet[ManufacturingUnit]:
    """Manufacturing units at the sites the person may see (or where they hold ``perm``)."""
    return ManufacturingUnit.objects.filter(site__in=sites_visible(user, perm)).select_related("site")


def transitions_visible(user: Any) -> QuerySet[SiteTransition]:
    """Lifecycle transitions of the sites the person may see, oldest first."""
    return SiteTransition.objects.filter(site__in=sites_visible(user)).select_related("site", "actor")


def authorizations_visible(user: Any) -> QuerySet[SiteAuthorization]:
    """Site authorizations of the sites the person may see."""
    return SiteAuthorization.objects.filter(site__in=sites_visible(user)).select_related(
        "site", "product", "granted_by", "revoked_by"
    )


def may_manage_units(user: Any, site: Site) -> bool:
    """Control Site QA anywhere; a site manager at their own site (never a read-only role)."""
    return access.has_perm(user, Perm.UNITS_MANAGE, site_id=site.pk) and not access.is_read_only(user)


def may_govern(user: Any) -> bool:
    """Control Site QA: site lifecycle and site authorizations."""
    return access.has_perm(user, Perm.SITES_GOVERN) and not access.is_read_only(user)


# --- qualification evidence -----------------------------------------------------------------------


@dataclass
class QualificationEvidence:
    """What a site has on record toward ending qualification, and what is still missing."""

    checks: dict[str, ReadinessCheck] = field(default_factory=dict)  # item -> latest check
    runs: list[PerformanceRun] = field(default_factory=list)
    passed_runs: list[PerformanceRun] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.missing

    def checklist(self) -> list[tuple[str, str, ReadinessCheck | None]]:
        """Every readiness item (value, label) with its latest check, or ``None`` if missing."""
        return [(item.value, item.label, self.checks.get(item.value)) for item in ReadinessItem]

    def as_record(self) -> dict[str, Any]:
        """The evidence as stored on the transition that relied on it."""
        return {
            "readiness": [
                {"item": c.item, "check_id": c.pk, "evidence": c.evidence,
                 "recorded_by": c.recorded_by.username, "recorded_at": format_timestamp(c.recorded_at)}
                for c in self.checks.values()
            ],
            "performance_runs": [
                {"run_id": r.pk, "reference": r.reference, "performed_on": r.performed_on.isoformat(),
                 "outcome": r.outcome}
                for r in self.passed_runs
            ],
            "required_passed_runs": REQUIRED_PASSED_RUNS,
        }


def qualification_evidence(site: Site) -> QualificationEvidence:
    """The readiness checklist and process performance runs of ``site``, with what is missing."""
    result = QualificationEvidence()
    for check in ReadinessCheck.objects.filter(site=site).select_related("recorded_by").order_by("recorded_at", "pk"):
        result.checks[check.item] = check  # the latest check of each item counts
    result.runs = list(PerformanceRun.objects.filter(site=site).select_related("recorded_by")
                       .order_by("performed_on", "pk"))
    result.passed_runs = [r for r in result.runs if r.outcome == RunOutcome.PASSED]
    for item in ReadinessItem:
        if item.value not in result.checks:
            result.missing.append(f"readiness item “{item.label}” has no recorded evidence")
    passed = len(result.passed_runs)
    if passed < REQUIRED_PASSED_RUNS:
        result.missing.append(
            f"{REQUIRED_PASSED_RUNS - passed} more passed process performance run"
            f"{'s' if REQUIRED_PASSED_RUNS - passed != 1 else ''} ({passed} of {REQUIRED_PASSED_RUNS} on record)"
        )
    return result


def next_statuses(site: Site) -> list[SiteStatus]:
    """The statuses the site may move to from its current one, in lifecycle order."""
    allowed = SITE_TRANSITIONS.get(site.status, frozenset())
    if site.is_control:
        allowed = allowed - {SiteStatus.SUSPENDED, SiteStatus.CLOSED}
    return [s for s in SiteStatus if s in allowed]


# --- the checks other capabilities ask ---------------------------------------------------------


def _local(when: dt.datetime, site: Site) -> str:
    return when.astimezone(site.tz).strftime("%Y-%m-%d %H:%M %Z")


def site_transitions(sites: Iterable[Site]) -> dict[int, list[SiteTransition]]:
    """Every lifecycle transition of each site, oldest first, by site id: one query for a page of
    checks at past moments (the release queue asks it of every batch's site)."""
    out: dict[int, list[SiteTransition]] = {s.pk: [] for s in sites}
    for t in SiteTransition.objects.filter(site_id__in=list(out)).order_by("at", "pk"):
        out[t.site_id].append(t)
    return out


def site_status_at(site: Site, at: dt.datetime | None = None, *, transitions: list[SiteTransition] | None = None,
                   ) -> tuple[str, dt.datetime | None, SiteTransition | None]:
    """The site's status at ``at`` (now by default), since when, and the transition that made it.

    ``since`` is ``None`` when the site was not registered yet at ``at``. ``transitions``: the
    site's, oldest first, when the caller loaded them for many sites (:func:`site_transitions`).
    """
    if at is None:
        last = site.transitions.filter(to_status=site.status).order_by("-at", "-pk").first()
        return site.status, (last.at if last else site.created_at), last
    if at < site.created_at:
        return "", None, None
    if transitions is None:
        transitions = site_transitions([site])[site.pk]
    before = [t for t in transitions if t.at <= at]
    if before:
        return before[-1].to_status, before[-1].at, before[-1]
    initial = transitions[0].from_status if transitions else site.status
    return initial, site.created_at, None


def site_can_start_batch(site: Site, at: dt.datetime | None = None, *,
                         transitions: list[SiteTransition] | None = None) -> Check:
    """Only an active site starts a batch (POC-3); otherwise say since when and why not
    (``transitions`` as :func:`site_status_at` takes them)."""
    status, since, transition = site_status_at(site, at, transitions=transitions)
    if since is None:
        return False, f"{site.name} was not registered in the network yet."
    if status == SiteStatus.ACTIVE:
        return True, ""
    label = SiteStatus(status).label.lower()
    why = f": {transition.reason}" if transition is not None and transition.reason else ""
    if status in (SiteStatus.PROPOSED, SiteStatus.ONBOARDING, SiteStatus.QUALIFICATION):
        phrase = "in qualification" if status == SiteStatus.QUALIFICATION else label
        return False, (f"{site.name} is {phrase} since {_local(since, site)}{why} — a site manufactures "
                       "only once Control Site QA has made it active.")
    return False, f"{site.name} is {label} since {_local(since, site)}{why}"


def unit_due_state(due: dt.date, today: dt.date) -> str:
    """``overdue`` (past its due date), ``soon`` (within DUE_SOON_DAYS) or ``ok``."""
    if due < today:
        return "overdue"
    if due <= today + dt.timedelta(days=DUE_SOON_DAYS):
        return "soon"
    return "ok"


def site_today(site: Site, at: dt.datetime | None = None) -> dt.date:
    """The calendar date at the site (its own time zone) at ``at`` or now."""
    return (at or timezone.now()).astimezone(site.tz).date()


def unit_usable(unit: ManufacturingUnit, at: dt.datetime | None = None, *, site: Site | None = None) -> Check:
    """May this unit be used now (or at ``at``), at ``site`` when given? Overdue calibration or
    maintenance makes a unit unusable until it is requalified.

    The unit's status is its current one (status changes are dated in the audit trail).
    """
    if site is not None and unit.site_id != site.pk:
        return False, f"{unit} belongs to {unit.site.name} ({unit.site.code}), not to {site.name} ({site.code})."
    if unit.status != UnitStatus.QUALIFIED:
        return False, f"{unit} is {UnitStatus(unit.status).label.lower()}."
    today = site_today(unit.site, at)
    overdue = []
    if unit.calibration_due < today:
        overdue.append(f"calibration was due {unit.calibration_due.isoformat()}")
    if unit.maintenance_due < today:
        overdue.append(f"maintenance was due {unit.maintenance_due.isoformat()}")
    if overdue:
        return False, f"{unit} is overdue ({'; '.join(overdue)}): it may not be used until requalified."
    return True, ""


def site_authorizations(pairs: Iterable[tuple[int, int]]) -> dict[tuple[int, int], list[SiteAuthorization]]:
    """Every authorization of each (site id, product id), newest first: one query for many checks."""
    wanted = set(pairs)
    out: dict[tuple[int, int], list[SiteAuthorization]] = {pair: [] for pair in wanted}
    if not wanted:
        return out
    rows = SiteAuthorization.objects.filter(site_id__in={s for s, _ in wanted}, product_id__in={p for _, p in wanted})
    for g in rows.order_by("-valid_from", "-pk"):
        if (g.site_id, g.product_id) in out:
            out[(g.site_id, g.product_id)].append(g)
    return out


def site_authorized_for(site: Site, version: MasterFileVersion, at: dt.datetime | None = None, *,
                        grants: list[SiteAuthorization] | None = None) -> Check:
    """May ``site`` manufacture under this master-file version now (or at ``at``)?

    Yes when an authorization for the version's product covers the version number, has started
    and was not revoked by then. The site's own status is checked by :func:`site_can_start_batch`.
    ``grants``: the site's authorizations for the product, newest first, when the caller loaded them
    for many checks (:func:`site_authorizations`).
    """
    when = at or timezone.now()
    product = version.product
    if grants is None:
        grants = site_authorizations([(site.pk, version.product_id)])[(site.pk, version.product_id)]
    if not grants:
        return False, f"{site.name} holds no authorization for {product}."
    in_force = [g for g in grants if g.valid_from <= when and (g.revoked_at is None or g.revoked_at > when)]
    covering = [g for g in in_force if g.from_version <= version.number]
    if covering:
        return True, ""
    if in_force:
        lowest = min(g.from_version for g in in_force)
        return False, (f"{site.name} is authorized for {product.code} from version {lowest} on, "
                       f"not for version {version.number}.")
    future = [g for g in grants if g.valid_from > when and g.revoked_at is None]
    if future:
        return False, f"{site.name}'s authorization for {product.code} starts {_local(future[-1].valid_from, site)}."
    revoked = max((g for g in grants if g.revoked_at is not None), key=lambda g: g.revoked_at or when)
    assert revoked.revoked_at is not None
    return False, f"{site.name}'s authorization for {product.code} was revoked {_local(revoked.revoked_at, site)}."


# --- small reads for forms and reports ----------------------------------------------------------


def products() -> QuerySet[Any]:
    """Products a site may be authorized for (the master file is network-wide, not site-scoped).

    The product model is reached through ``SiteAuthorization.product``, the relation the network
    declares to the master file above it (docs/architecture.md, "Relations that point up")."""
    product_model = SiteAuthorization._meta.get_field("product").related_model
    assert isinstance(product_model, type)
    return product_model._default_manager.order_by("code")


def control_site() -> Site | None:
    """The Control Site (it holds the master file); ``None`` before the network is set up."""
    return Site.objects.filter(kind=SiteKind.CONTROL).order_by("pk").first()
