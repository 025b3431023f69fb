"""The gate (P11-10i, P11-10g, POC-1): may this person perform — or verify — this step of this
master-file version at this site at this moment, and if not, why not?

Every capability that executes or verifies a step asks :func:`step_gate` at the moment of the
step. The answer is a :class:`GateDecision`: allowed or not, with one human-readable reason per
thing missing, each saying what is missing and since or until when. Nothing here writes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from pocare.accounts.models import Membership, User
from pocare.accounts.roles import Role
from pocare.masterfile import schema
from pocare.masterfile.selectors import effective_version, required_training_steps
from pocare.network.models import Site, SiteStatus, SiteTransition
from pocare.network.selectors import site_authorized_for
from pocare.training.models import PersonQualification, Qualification, TrainingKind, TrainingRecord, TrainingStatus
from pocare.training.selectors import grant_valid_at, membership_in_force, version_training_gaps

#: Roles that may perform a step, and that may verify one as the second person. QC analysts
#: perform the in-process QC steps; the step's qualification decides which steps anyone may do.
PERFORM_ROLES = frozenset({Role.OPERATOR, Role.QC_ANALYST})
VERIFY_ROLES = frozenset({Role.OPERATOR, Role.SITE_MANAGER})


@dataclass(frozen=True)
class GateDecision:
    """The gate's answer. ``reasons`` is empty when ``allowed``; ``until`` is when an allowed
    decision runs out on its own (the first expiry of a qualification or role it relies on)."""

    allowed: bool
    reasons: list[str] = field(default_factory=list)
    at: dt.datetime | None = None
    until: dt.datetime | None = None


@dataclass(frozen=True)
class StepGate:
    """One step of a version with the gate's decision for one person, for the UI."""

    unit_operation: str
    step_id: str
    name: str
    qualification: str
    second_person_verification: bool
    decision: GateDecision
    #: The reasons that hold for every step (person, role, site, version) and those of this step.
    common_reasons: list[str] = field(default_factory=list)
    step_reasons: list[str] = field(default_factory=list)


def _day(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _date(when: dt.datetime, site: Site | None = None) -> str:
    """A validity boundary as people say it: the date at the site (they start at local midnight)."""
    tz = site.tz if site is not None else dt.UTC
    local = when.astimezone(tz)
    if local.time() == dt.time.min:
        return f"{local:%Y-%m-%d}" + ("" if site is None else f" ({site.code} time)")
    return _day(when)


def iter_version_steps(version: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """(unit operation name, step) for every step of a version, in process order."""
    content = version.content or {}
    names = {uo.get("id"): uo.get("name") or uo.get("id")
             for uo in content.get("process", {}).get("unit_operations", [])}
    for step in schema.iter_steps(content):
        yield str(names.get(step.get("unit_operation"), step.get("unit_operation", ""))), step


def find_step(version: Any, step_id: str) -> dict[str, Any] | None:
    """The step ``step_id`` of a version, or None."""
    return schema.step(version.content or {}, step_id)


def _step_qualifications(step: dict[str, Any]) -> list[str]:
    value = step.get("qualification") or []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _earliest(a: dt.datetime | None, b: dt.datetime | None) -> dt.datetime | None:
    return b if a is None else a if b is None else min(a, b)


def site_status_at(site: Site, at: dt.datetime) -> tuple[str, dt.datetime | None]:
    """The site's lifecycle status at ``at`` and since when (replayed from its transitions)."""
    transitions = list(SiteTransition.objects.filter(site=site).order_by("at", "id"))
    before = [t for t in transitions if t.at <= at]
    if before:
        return before[-1].to_status, before[-1].at
    if transitions:  # ``at`` is before the first recorded move
        return transitions[0].from_status, None
    return site.status, None


class _Gate:
    """What the gate knows about one person, site and version at one moment; asked per step."""

    def __init__(self, *, person: User, version: Any, site: Site, at: dt.datetime | None, verifying: bool) -> None:
        at = at or timezone.now()
        if timezone.is_naive(at):
            raise ValueError("the gate needs an aware datetime (UTC)")
        self.person, self.version, self.site, self.at, self.verifying = person, version, site, at, verifying
        self.name = person.printed_name or person.username
        self.reasons: list[str] = []
        self.until: dt.datetime | None = None
        self._check_person()
        self._check_role()
        self._check_site()
        self._check_version()
        self._load_training()

    # -- the checks that do not depend on the step --

    def _limit(self, when: dt.datetime | None) -> None:
        """Whatever holds for every step runs out at ``when`` at the latest."""
        self.until = _earliest(self.until, when)

    def _check_person(self) -> None:
        p, at = self.person, self.at
        if not p.is_active and (p.deactivated_at is None or p.deactivated_at <= at):
            since = f" since {_day(p.deactivated_at)}" if p.deactivated_at else ""
            self.reasons.append(f"{self.name}'s account is deactivated{since}.")
        if p.locked_at is not None and p.locked_at <= at:
            self.reasons.append(f"{self.name}'s account is locked since {_day(p.locked_at)} after failed "
                                "attempts; Control Site QA can unlock it.")

    def _check_role(self) -> None:
        roles = VERIFY_ROLES if self.verifying else PERFORM_ROLES
        labels = (str(Role(r).label) for r in roles)
        wanted = " or ".join(sorted((lab if lab[:2].isupper() else lab.lower() for lab in labels), key=str.lower))
        here = list(Membership.objects.filter(user=self.person, site=self.site, role__in=roles))
        current = [m for m in here if membership_in_force(m, self.at)]
        if current:
            ends = [min(x for x in (m.valid_until, m.revoked_at) if x) if (m.valid_until or m.revoked_at) else None
                    for m in current]
            if None not in ends:  # every role they hold here runs out: the decision does too
                self._limit(max(e for e in ends if e is not None))
            return
        need = (f"verifying a step needs the {wanted} role there" if self.verifying
                else f"performing a step needs the {wanted} role there")
        detail = ""
        ended = [m for m in here if (m.revoked_at and m.revoked_at <= self.at)
                 or (m.valid_until and m.valid_until <= self.at)]
        future = [m for m in here if m.granted_at > self.at and m.revoked_at is None]
        if ended:
            last = max(ended, key=lambda m: min(x for x in (m.revoked_at, m.valid_until) if x))
            end = min(x for x in (last.revoked_at, last.valid_until) if x)
            detail = f" (their {last.get_role_display().lower()} role there ended on {_day(end)})"
        elif future:
            detail = f" (their role there starts on {_day(min(m.granted_at for m in future))})"
        self.reasons.append(f"{self.name} holds no active {wanted} role at {self.site.code}{detail}; {need}.")

    def _check_site(self) -> None:
        status, since = site_status_at(self.site, self.at)
        if status != SiteStatus.ACTIVE:
            label = SiteStatus(status).label.lower() if status in SiteStatus.values else status
            when = f" since {_day(since)}" if since else ""
            self.reasons.append(f"{self.site.code} is {label}{when}; steps are done only at active sites.")

    def _check_version(self) -> None:
        v = self.version
        effective = effective_version(site=self.site, product=v.product, at=self.at)
        if effective is None:
            self.reasons.append(f"No {v.product.code} master-file version is effective at {self.site.code}, so "
                                f"{v} cannot be used there{self._why_not_effective()}.")
        elif effective.pk != v.pk:
            if effective.number < v.number:
                extra = f"; it stays on v{effective.number}{self._why_not_effective()}"
            else:
                extra = f", which replaced v{v.number}"
            self.reasons.append(f"{v} is not the effective version at {self.site.code}: the site works to "
                                f"v{effective.number}{extra}.")

    def _why_not_effective(self) -> str:
        """Why the asked-for version is not in effect at the site: authorization, the version's own
        status, or the operators not yet trained on what it changed."""
        v, at = self.version, self.at
        authorized, why = site_authorized_for(self.site, v, at)
        if not authorized:
            return f" ({why.rstrip('.')})"
        if v.status not in ("effective", "superseded") or v.effective_at is None or v.effective_at > at:
            return f" (v{v.number} is {v.get_status_display().lower()}, not yet in force in the network)"
        gaps = version_training_gaps(site=self.site, version=v, at=at)
        if gaps:
            people = "; ".join(f"{p.printed_name or p.username}: {', '.join(steps)}" for p, steps in gaps)
            return f" until its operators are trained on the steps v{v.number} changed (not yet trained — {people})"
        return ""

    def _load_training(self) -> None:
        at = self.at
        self.grants: dict[str, list[PersonQualification]] = {}
        rows = PersonQualification.objects.filter(person=self.person).select_related("qualification", "record",
                                                                                    "record__site")
        for g in rows:
            self.grants.setdefault(g.qualification.code, []).append(g)
        self.required_steps = {str(s) for s in required_training_steps(self.version)}
        self.trained_steps: set[str] = set()
        self.pending_steps: set[str] = set()
        if self.required_steps:
            records = TrainingRecord.objects.filter(
                trainee=self.person, kind=TrainingKind.VERSION, masterfile_version=self.version, passed=True,
            )
            for r in records:
                if r.status == TrainingStatus.COMPLETE and r.completed_at is not None and r.completed_at <= at:
                    self.trained_steps.update(str(s) for s in r.steps)
                else:
                    self.pending_steps.update(str(s) for s in r.steps)

    # -- per step --

    def _qualification_reasons(self, code: str, step_label: str) -> tuple[list[str], dt.datetime | None]:
        """Why the person does not hold ``code`` now, or ([], until when they do)."""
        at = self.at
        rows = self.grants.get(code, [])
        valid = [g for g in rows if grant_valid_at(g, at)]
        if valid:
            return [], max(g.valid_until for g in valid)
        qualification = rows[0].qualification if rows else Qualification.objects.filter(code=code).first()
        what = f"{qualification.name} ({code})" if qualification else f"'{code}'"
        revoked = [g for g in rows if g.revoked_at is not None and g.revoked_at <= at and g.valid_from <= at]
        expired = [g for g in rows if g.valid_until <= at and (g.revoked_at is None or g.revoked_at > g.valid_until)]
        future = [g for g in rows if g.valid_from > at and (g.revoked_at is None or g.revoked_at > at)]
        if revoked and (not expired or max(g.revoked_at for g in revoked if g.revoked_at)
                        >= max(g.valid_until for g in expired)):
            g = max(revoked, key=lambda g: g.revoked_at or at)
            why = f": {g.revocation_reason}" if g.revocation_reason else ""
            return [f"{self.name}'s qualification {what}, needed for {step_label}, was revoked on "
                    f"{_day(g.revoked_at or at)}{why}; requalification is needed."], None
        if expired:
            g = max(expired, key=lambda g: g.valid_until)
            return [f"{self.name}'s qualification {what}, needed for {step_label}, expired on "
                    f"{_date(g.valid_until, g.record.site)}; requalification is needed."], None
        if future:
            g = min(future, key=lambda g: g.valid_from)
            return [f"{self.name}'s qualification {what}, needed for {step_label}, is valid only from "
                    f"{_date(g.valid_from, g.record.site)}."], None
        unsigned = [g for g in rows if g.valid_from <= at < g.valid_until and g.record.completed_at
                    and g.record.completed_at > at]
        if unsigned:
            return [f"{self.name}'s qualification {what}, needed for {step_label}, was granted only on "
                    f"{_day(unsigned[0].record.completed_at or at)}, when the trainee signed the training."], None
        return [f"{self.name} does not hold the qualification {what} that {step_label} needs."], None

    def decide(self, step_id: str) -> GateDecision:
        reasons = list(self.reasons)
        step = find_step(self.version, step_id)
        if step is None:
            reasons.append(f"There is no step '{step_id}' in {self.version}.")
            return GateDecision(False, reasons, self.at, None)
        label = f"step '{step_id}' ({step.get('name', step_id)})"
        until = self.until
        for code in _step_qualifications(step):
            missing, valid_until = self._qualification_reasons(code, label)
            reasons.extend(missing)
            until = _earliest(until, valid_until)
        if step_id in self.required_steps and step_id not in self.trained_steps:
            if step_id in self.pending_steps:
                reasons.append(f"{self.name}'s training on {label} of {self.version} is recorded but not yet "
                               "signed by them, so it does not count yet.")
            else:
                reasons.append(f"{self.name} is not trained on {label} of {self.version}: no complete, passed "
                               "version-training record covers it.")
        if reasons:
            return GateDecision(False, reasons, self.at, None)
        return GateDecision(True, [], self.at, until)


def step_gate(
    *,
    person: User,
    version: Any,
    step_id: str,
    site: Site,
    at: dt.datetime | None = None,
    verifying: bool = False,
) -> GateDecision:
    """May ``person`` perform (or, with ``verifying``, verify as second person) ``step_id`` of the
    master-file ``version`` at ``site`` at ``at`` (default: now)?

    Checked at that moment: the person's account is active and not locked; they hold an operator
    role at the site (to verify: operator or site manager); the site is active; ``version`` is
    the site's effective version; the step exists in it; the person holds the step's
    qualification, valid then and granted by a training record both signatories signed; and,
    when the version requires training on the step, a complete, passed version-training record
    of theirs covers it.
    """
    return _Gate(person=person, version=version, site=site, at=at, verifying=verifying).decide(step_id)


def person_gate_summary(
    person: User, site: Site, version: Any, at: dt.datetime | None = None, *, verifying: bool = False
) -> list[StepGate]:
    """The gate's decision for every step of ``version``: which steps the person may do now."""
    gate = _Gate(person=person, version=version, site=site, at=at, verifying=verifying)
    out = []
    for unit, step in iter_version_steps(version):
        decision = gate.decide(str(step.get("id")))
        out.append(StepGate(
            unit_operation=unit, step_id=str(step.get("id")), name=str(step.get("name", "")),
            qualification=", ".join(_step_qualifications(step)),
            second_person_verification=bool(step.get("second_person_verification")),
            decision=decision, common_reasons=list(gate.reasons),
            step_reasons=decision.reasons[len(gate.reasons):],
        ))
    return out
