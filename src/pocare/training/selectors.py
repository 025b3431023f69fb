"""Reads of training, scoped to the viewer: a site's people see their site's records and
people, the Control Site sees the network (P11-10i: the system can show who is trained)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from pocare.accounts import selectors as access
from pocare.accounts.models import Membership, User
from pocare.accounts.roles import Perm, Role
from pocare.masterfile import schema
from pocare.masterfile.models import MasterFileVersion, VersionStatus
from pocare.masterfile.selectors import required_training_steps
from pocare.network.models import Site
from pocare.training.models import (
    CurriculumItem,
    PersonQualification,
    Qualification,
    TrainingKind,
    TrainingRecord,
    TrainingStatus,
)

#: A qualification that runs out within this many days is shown as expiring.
EXPIRING_WITHIN = dt.timedelta(days=30)


def grant_valid_at(grant: PersonQualification, at: dt.datetime) -> bool:
    """A grant counts at ``at`` when it is within its validity, not revoked by then, and its
    training record had been signed by the trainee by then."""
    record = grant.record
    return (
        grant.valid_from <= at < grant.valid_until
        and (grant.revoked_at is None or at < grant.revoked_at)
        and record.status == TrainingStatus.COMPLETE
        and record.completed_at is not None
        and record.completed_at <= at
    )


def membership_in_force(m: Membership, at: dt.datetime) -> bool:
    """Whether a role was held at ``at`` (granted, not yet expired, not yet revoked)."""
    return (m.granted_at <= at and (m.valid_until is None or at < m.valid_until)
            and (m.revoked_at is None or at < m.revoked_at))


def _visible(user: Any) -> set[int] | None:
    """The sites whose training the person may see: where they hold TRAINING_VIEW (None: all)."""
    return access.sites_with_perm(user, Perm.TRAINING_VIEW)


def sites_for_training(user: Any) -> QuerySet[Site]:
    """The sites whose training the viewer may see."""
    if not access.has_perm(user, Perm.TRAINING_VIEW):
        return Site.objects.none()
    site_ids = _visible(user)
    qs = Site.objects.order_by("kind", "code")
    return qs if site_ids is None else qs.filter(pk__in=site_ids)


def people_visible(user: Any) -> QuerySet[User]:
    """People whose training the viewer may see: everyone for the Control Site, the people who
    hold or held a role at the viewer's sites otherwise."""
    if not access.has_perm(user, Perm.TRAINING_VIEW):
        return User.objects.none()
    site_ids = _visible(user)
    qs = User.objects.all()
    if site_ids is not None:
        qs = qs.filter(pk__in=Membership.objects.filter(site_id__in=site_ids).values("user_id"))
    return qs.order_by("printed_name", "username")


def records_visible(user: Any) -> QuerySet[TrainingRecord]:
    """Training records the viewer may see: those held at their sites, and those of their sites'
    people held elsewhere (a rotation is recorded at the host site, yet is the trainee's too)."""
    if not access.has_perm(user, Perm.TRAINING_VIEW):
        return TrainingRecord.objects.none()
    qs = TrainingRecord.objects.select_related("trainee", "trainer", "site", "qualification",
                                               "masterfile_version__product")
    site_ids = _visible(user)
    if site_ids is None:
        return qs
    members = Membership.objects.filter(site_id__in=site_ids).values("user_id")
    return qs.filter(Q(site_id__in=site_ids) | Q(trainee_id__in=members))


def records_awaiting_signature(user: Any) -> QuerySet[TrainingRecord]:
    """The person's own training records that wait for their signature (meaning: performed)."""
    if not getattr(user, "is_authenticated", False):
        return TrainingRecord.objects.none()
    return records_visible(user).filter(trainee=user, status=TrainingStatus.AWAITING_TRAINEE).order_by("trained_on")


def qualifications_expiring(user: Any, now: dt.datetime) -> QuerySet[PersonQualification]:
    """Qualifications in force that run out within :data:`EXPIRING_WITHIN` and no later grant
    renews: the person's own, and (for a trainer: site manager, Control Site QA) those of the people
    at the sites where they record training. Soonest first."""
    if not getattr(user, "is_authenticated", False):
        return PersonQualification.objects.none()
    renewed = PersonQualification.objects.filter(person=OuterRef("person"), qualification=OuterRef("qualification"),
                                                 revoked_at__isnull=True, valid_until__gt=OuterRef("valid_until"))
    qs = (PersonQualification.objects.filter(revoked_at__isnull=True, valid_from__lte=now, valid_until__gt=now,
                                             valid_until__lte=now + EXPIRING_WITHIN)
          .filter(~Exists(renewed)).select_related("person", "qualification").order_by("valid_until", "pk"))
    if not access.has_perm(user, Perm.TRAINING_RECORD) or access.is_read_only(user):
        return qs.filter(person=user)
    site_ids = access.sites_with_perm(user, Perm.TRAINING_RECORD)
    if site_ids is None:
        return qs
    return qs.filter(Q(person=user) | Q(person__in=Membership.objects.filter(site_id__in=site_ids).values("user_id")))


def qualifications_visible(user: Any) -> QuerySet[Qualification]:
    """Qualifications belong to the whole network: anyone who may see training sees them all."""
    if not access.has_perm(user, Perm.TRAINING_VIEW):
        return Qualification.objects.none()
    return Qualification.objects.prefetch_related("curriculum").order_by("code")


def curriculum() -> dict[str, list[Qualification]]:
    """Role → the qualifications it requires."""
    out: dict[str, list[Qualification]] = {}
    for item in CurriculumItem.objects.select_related("qualification").order_by("role", "qualification__code"):
        out.setdefault(item.role, []).append(item.qualification)
    return out


def qualifications_of(person: User, at: dt.datetime | None = None) -> list[PersonQualification]:
    """The person's qualifications in force at ``at`` (default: now), latest expiry first."""
    at = at or timezone.now()
    rows = PersonQualification.objects.filter(person=person).select_related("qualification", "record")
    return sorted((g for g in rows if grant_valid_at(g, at)), key=lambda g: g.valid_until, reverse=True)


def version_training_gaps(*, site: Site, version: Any, at: dt.datetime | None = None) -> list[tuple[User, list[str]]]:
    """For each active operator at ``site``, the steps of ``version`` they are not yet trained on.

    Training is cumulative: every step changed by this version *or by any earlier version*
    (``masterfile.selectors.required_training_steps`` of each) and still in this version must be
    covered by a complete, passed version-training record on a version at least as new as that
    step's latest change (and not newer than ``version``). So a site that never trained on v2
    cannot reach v3 by training only v3's changes. Operators with no gap are left out: an empty
    list means the site is trained on the version.
    """
    return versions_training_gaps(cases=[(site, version, at or timezone.now())])[0]


def versions_training_gaps(*, cases: list[tuple[Site, Any, dt.datetime]]) -> list[list[tuple[User, list[str]]]]:
    """:func:`version_training_gaps` of each (site, version, moment), in three queries however many
    cases: the products' versions, the sites' operators and their version-training records are read
    once (training's answer to ``masterfile.questions.TRAINING_GAPS``)."""
    if not cases:
        return []
    products = {version.product_id for _, version, _ in cases}
    versions: dict[int, list[MasterFileVersion]] = {p: [] for p in products}
    loaded: dict[int, MasterFileVersion] = {}
    for v in MasterFileVersion.objects.filter(
            Q(status__in=[VersionStatus.EFFECTIVE, VersionStatus.SUPERSEDED]) | Q(pk__in={c[1].pk for c in cases}),
            product_id__in=products).select_related("change_request").defer("document"):  # never the YAML
        loaded[v.pk] = v  # the case's own version too, with its change request, not one query each
        if v.status in (VersionStatus.EFFECTIVE, VersionStatus.SUPERSEDED):
            versions[v.product_id].append(v)
    memberships: dict[int, list[Membership]] = {site.pk: [] for site, _, _ in cases}
    for m in Membership.objects.filter(site_id__in=list(memberships), role=Role.OPERATOR).select_related("user"):
        memberships[m.site_id].append(m)
    records: dict[int, list[tuple[list[Any], int, int, dt.datetime | None]]] = {}
    operator_ids = {m.user_id for ms in memberships.values() for m in ms}
    rows = TrainingRecord.objects.filter(
        trainee_id__in=operator_ids, kind=TrainingKind.VERSION, masterfile_version__product_id__in=products,
        passed=True, status=TrainingStatus.COMPLETE)
    for trainee_id, steps, number, product_id, completed_at in rows.values_list(
            "trainee_id", "steps", "masterfile_version__number", "masterfile_version__product_id", "completed_at"):
        records.setdefault(trainee_id, []).append((steps, number, product_id, completed_at))
    return [_gaps(loaded.get(version.pk, version), at, versions[version.product_id], memberships[site.pk], records)
            for site, version, at in cases]


def _gaps(version: Any, at: dt.datetime, history: list[MasterFileVersion], memberships: list[Membership],
          records: dict[int, list[tuple[list[Any], int, int, dt.datetime | None]]]) -> list[tuple[User, list[str]]]:
    """One case of :func:`versions_training_gaps`, from the rows loaded for all."""
    present = schema.step_ids(version.content)
    latest_change: dict[str, int] = {}
    for v in [*(h for h in history if h.number < version.number), version]:
        for step_id in required_training_steps(v):
            if step_id in present:
                latest_change[str(step_id)] = max(latest_change.get(str(step_id), 0), v.number)
    if not latest_change:
        return []
    operators = _operators_at(memberships, at)
    gaps = []
    for person in operators:
        done: dict[str, int] = {}
        for steps, number, product_id, completed_at in records.get(person.pk, []):
            if (product_id != version.product_id or number > version.number or completed_at is None
                    or completed_at > at):
                continue
            for step_id in steps:
                done[str(step_id)] = max(done.get(str(step_id), 0), number)
        missing = [s for s in present if s in latest_change and done.get(s, 0) < latest_change[s]]
        if missing:
            gaps.append((person, missing))
    return gaps


def _operators_at(memberships: list[Membership], at: dt.datetime) -> list[User]:
    """The active operators among a site's operator memberships at ``at``, by user name."""
    people: dict[int, User] = {}
    for m in memberships:
        u = m.user
        if membership_in_force(m, at) and (u.is_active or (u.deactivated_at is not None and u.deactivated_at > at)):
            people[u.pk] = u
    return sorted(people.values(), key=lambda u: u.username)


# --- the training matrix ------------------------------------------------------------------------


class CellState:
    VALID = "valid"
    EXPIRING = "expiring"
    EXPIRED = "expired"
    REVOKED = "revoked"
    MISSING = "missing"
    NOT_REQUIRED = ""


@dataclass(frozen=True)
class MatrixCell:
    """One person × qualification: whether it is required of them and where they stand."""

    qualification: Qualification
    state: str
    required: bool
    valid_until: dt.datetime | None = None
    days_left: int | None = None

    @property
    def text(self) -> str:
        until = f"{self.valid_until:%Y-%m-%d}" if self.valid_until else ""
        return {
            CellState.VALID: f"valid until {until}",
            CellState.EXPIRING: f"expires {until} ({self.days_left} d)",
            CellState.EXPIRED: f"expired {until}",
            CellState.REVOKED: "revoked",
            CellState.MISSING: "missing",
        }.get(self.state, "not required")

    @property
    def needs_attention(self) -> bool:
        return self.state in (CellState.EXPIRING, CellState.EXPIRED, CellState.REVOKED, CellState.MISSING)


@dataclass(frozen=True)
class MatrixRow:
    person: User
    site: Site
    roles: list[str]
    cells: list[MatrixCell]

    @property
    def complete(self) -> bool:
        """Holds every qualification their roles require, none of them expiring soon."""
        return not any(c.needs_attention for c in self.cells if c.required or c.state == CellState.EXPIRING)


@dataclass(frozen=True)
class TrainingMatrix:
    """People × qualifications at ``at``: curriculum-required and held qualifications, per site."""

    at: dt.datetime
    site: Site | None
    qualifications: list[Qualification]
    rows: list[MatrixRow]

    def count(self, state: str) -> int:
        return sum(1 for r in self.rows for c in r.cells if c.state == state and (c.required or state != "missing"))

    @property
    def expiring(self) -> int:
        return self.count(CellState.EXPIRING)

    @property
    def expired(self) -> int:
        return self.count(CellState.EXPIRED)

    @property
    def missing(self) -> int:
        return self.count(CellState.MISSING)

    @property
    def sites(self) -> list[tuple[Site, list[MatrixRow]]]:
        grouped: dict[int, tuple[Site, list[MatrixRow]]] = {}
        for row in self.rows:
            grouped.setdefault(row.site.pk, (row.site, []))[1].append(row)
        return list(grouped.values())


def _cell(q: Qualification, grants: list[PersonQualification], required: bool, at: dt.datetime) -> MatrixCell:
    valid = [g for g in grants if grant_valid_at(g, at)]
    if valid:
        until = max(g.valid_until for g in valid)
        if until - at <= EXPIRING_WITHIN:
            return MatrixCell(q, CellState.EXPIRING, required, until, max(0, (until - at).days))
        return MatrixCell(q, CellState.VALID, required, until)
    past = [g for g in grants if g.valid_from <= at]
    if past:
        last = max(past, key=lambda g: g.valid_until)
        if last.revoked_at is not None and last.revoked_at <= at and last.revoked_at < last.valid_until:
            return MatrixCell(q, CellState.REVOKED, required, last.valid_until)
        if last.valid_until <= at:
            return MatrixCell(q, CellState.EXPIRED, required, last.valid_until)
    return MatrixCell(q, CellState.MISSING if required else CellState.NOT_REQUIRED, required)


def training_matrix(user: Any, site: Site | None = None, at: dt.datetime | None = None) -> TrainingMatrix:
    """The training matrix the viewer may see: one row per person and site (roles held there at
    ``at``), one column per qualification required by those roles' curricula or held by them."""
    at = at or timezone.now()
    sites = sites_for_training(user)
    if site is not None:
        sites = sites.filter(pk=site.pk)
    required_by_role = curriculum()
    memberships = (Membership.objects.filter(site__in=sites, user__is_active=True)
                   .select_related("user", "site").order_by("site__kind", "site__code", "user__printed_name"))
    people: dict[tuple[int, int], tuple[User, Site, list[str]]] = {}
    for m in memberships:
        if membership_in_force(m, at):
            people.setdefault((m.site_id, m.user_id), (m.user, m.site, []))[2].append(m.role)
    grants: dict[int, dict[int, list[PersonQualification]]] = {}
    for g in PersonQualification.objects.filter(person_id__in={uid for _, uid in people}).select_related("record"):
        grants.setdefault(g.person_id, {}).setdefault(g.qualification_id, []).append(g)
    rows_spec = []
    columns: dict[int, Qualification] = {}
    for person, row_site, roles in people.values():
        needed = {q.pk: q for r in roles for q in required_by_role.get(r, [])}
        held = grants.get(person.pk, {})
        if not needed and not held:
            continue  # nothing is asked of this role and they hold nothing: not part of the matrix
        columns.update(needed)
        rows_spec.append((person, row_site, roles, needed))
    for q in Qualification.objects.filter(pk__in={qid for p, _, _, _ in rows_spec for qid in grants.get(p.pk, {})}):
        columns[q.pk] = q
    ordered = sorted(columns.values(), key=lambda q: q.code)
    rows = [
        MatrixRow(
            person=person, site=row_site, roles=[Role(r).label for r in roles],
            cells=[_cell(q, grants.get(person.pk, {}).get(q.pk, []), q.pk in needed, at) for q in ordered],
        )
        for person, row_site, roles, needed in rows_spec
    ]
    return TrainingMatrix(at=at, site=site, qualifications=ordered, rows=rows)
