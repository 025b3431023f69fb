"""Every change to qualifications, curricula and training records (P11-10i, P11-50, DI-ALCOA).

Each service is one transaction that writes its ledger event on the chain of the site the
training happened at (qualifications and curricula, which belong to the whole network, go to
the network chain). A training record is signed twice: by the trainer when recording it
(meaning *verified*) and by the trainee (meaning *performed*); it counts only once both have
signed, and only then is a qualification granted.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from pocare.accounts import selectors as access
from pocare.accounts.models import User
from pocare.accounts.roles import Perm, Role
from pocare.ledger.models import Meaning
from pocare.ledger.services import event_record
from pocare.ledger.signing import SigningCredentials, signature_apply, signing_authenticate
from pocare.masterfile import schema
from pocare.network.models import Site
from pocare.training.events import TrainingEvent
from pocare.training.models import (
    CurriculumItem,
    PersonQualification,
    Qualification,
    TrainingKind,
    TrainingRecord,
    TrainingStatus,
)

#: Master-file versions people may be trained on: approved (before it becomes effective at a
#: site, which is what the training is for), effective, or superseded in the network while a
#: site not yet trained on its successor still works to it. Never drafts or versions in review.
TRAINABLE_VERSION_STATUSES = ("approved", "effective", "superseded")
_TWO_PLACES = Decimal("0.01")


# --- authority ----------------------------------------------------------------------------------


def is_training_admin(user: Any) -> bool:
    """Control Site QA: defines qualifications and curricula, revokes qualifications, and
    records training anywhere in the network."""
    return access.holds_network_wide(user, Perm.TRAINING_RECORD) and not access.is_read_only(user)


def may_record_training(user: Any, site: Site) -> bool:
    """Control Site QA network-wide; a site manager at their own site."""
    return not access.is_read_only(user) and access.has_perm(user, Perm.TRAINING_RECORD, site_id=site.pk)


def _require_admin(actor: User, what: str) -> None:
    if not is_training_admin(actor):
        raise PermissionDenied(f"Only Control Site QA may {what}.")


def _require_reason(reason: str) -> str:
    if not reason or not reason.strip():
        raise ValidationError({"reason": "A reason is required for this change."})
    return reason.strip()


# --- qualifications and curricula ----------------------------------------------------------------


def qualification_define(
    *,
    actor: User,
    code: str,
    name: str,
    validity_months: int,
    reason: str,
    description: str = "",
    pass_mark: Decimal | None = None,
) -> Qualification:
    """Define something people can be qualified for, with how long a qualification lasts before
    requalification and, if it is assessed, the pass mark (Control Site QA)."""
    _require_admin(actor, "define qualifications")
    reason = _require_reason(reason)
    code = (code or "").strip().lower()
    if Qualification.objects.filter(code=code).exists():
        raise ValidationError({"code": f"A qualification with the code {code!r} already exists."})
    if not isinstance(validity_months, int) or not 1 <= validity_months <= 120:
        raise ValidationError({"validity_months": "The validity is a whole number of months from 1 to 120."})
    qualification = Qualification(
        code=code, name=(name or "").strip(), description=(description or "").strip(),
        validity_months=validity_months, pass_mark=_percent(pass_mark, "pass_mark"),
    )
    qualification.full_clean()
    with transaction.atomic():
        qualification.save()
        event_record(
            actor=actor, event_type=TrainingEvent.QUALIFICATION_DEFINED, obj=qualification, reason=reason,
            new={"code": qualification.code, "name": qualification.name,
                 "validity_months": qualification.validity_months, "pass_mark": qualification.pass_mark,
                 "description": qualification.description},
        )
    return qualification


def curriculum_item_add(*, actor: User, role: str, qualification: Qualification, reason: str) -> CurriculumItem:
    """Require a qualification of everyone holding ``role`` (Control Site QA)."""
    _require_admin(actor, "change curricula")
    reason = _require_reason(reason)
    if role not in Role.values:
        raise ValidationError({"role": f"{role!r} is not a role; choose one of {', '.join(Role.values)}."})
    if CurriculumItem.objects.filter(role=role, qualification=qualification).exists():
        raise ValidationError({"qualification": f"{qualification.name} is already in the "
                                                f"{Role(role).label} curriculum."})
    with transaction.atomic():
        item = CurriculumItem.objects.create(role=role, qualification=qualification)
        event_record(
            actor=actor, event_type=TrainingEvent.CURRICULUM_CHANGED, obj=item, reason=reason,
            old={"role": role, "qualification": qualification.code, "required": False},
            new={"role": role, "qualification": qualification.code, "required": True},
        )
    return item


def curriculum_item_remove(*, actor: User, item: CurriculumItem, reason: str) -> None:
    """Stop requiring a qualification of a role (Control Site QA). The item is ended, not deleted:
    what a role required on any past day stays answerable."""
    _require_admin(actor, "change curricula")
    reason = _require_reason(reason)
    if item.removed_at is not None:
        raise ValidationError({"item": "This curriculum item was already removed."})
    with transaction.atomic():
        role, code, item_id, label = item.role, item.qualification.code, item.pk, str(item)
        item.removed_at, item.removed_by = timezone.now(), actor
        item.save(update_fields=["removed_at", "removed_by"])
        event_record(
            actor=actor, event_type=TrainingEvent.CURRICULUM_CHANGED, reason=reason,
            object_type="training.CurriculumItem", object_id=str(item_id), object_repr=label,
            old={"role": role, "qualification": code, "required": True},
            new={"role": role, "qualification": code, "required": False},
        )


# --- training records ---------------------------------------------------------------------------


def _percent(value: Any, field: str) -> Decimal | None:
    """A percentage with two decimals (as the database keeps it, so signatures hash the same)."""
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise ValidationError({field: f"{value!r} is not a number; give a percentage from 0 to 100."}) from exc
    if not number.is_finite() or not Decimal(0) <= number <= Decimal(100):
        raise ValidationError({field: f"{value} is outside 0–100; give a percentage from 0 to 100."})
    return number.quantize(_TWO_PLACES)


def _version_step_ids(version: Any) -> list[str]:
    return [str(s) for s in schema.step_ids(version.content or {})]


def _active_site_roles(person: User, site: Site | None = None) -> list[Any]:
    now = timezone.now()
    return [m for m in person.memberships.all() if m.is_active_at(now) and (site is None or m.site_id == site.pk)]


def training_record(
    *,
    actor: User,
    trainee: User,
    site: Site,
    kind: str,
    title: str,
    trained_on: dt.date,
    credentials: SigningCredentials,
    qualification: Qualification | None = None,
    masterfile_version: Any = None,
    steps: Iterable[str] = (),
    score: Decimal | None = None,
    pass_mark: Decimal | None = None,
    passed: bool | None = None,
    notes: str = "",
    reason: str = "",
) -> TrainingRecord:
    """The trainer records a training event of ``trainee`` at ``site`` and signs it (meaning:
    verified). It waits for the trainee's signature before it counts.

    Kinds: a course; an assessment (``score`` against the pass mark decides ``passed``); training
    on a master-file version (``masterfile_version`` and the step ids covered); a simulation
    drill; a cross-site rotation (recorded at the host site); a requalification.
    """
    if not may_record_training(actor, site):
        raise PermissionDenied(f"{actor.username} may not record training at {site.code}.")
    record = _record_validate(
        actor=actor, trainee=trainee, site=site, kind=kind, title=title, trained_on=trained_on,
        qualification=qualification, masterfile_version=masterfile_version, steps=steps, score=score,
        pass_mark=pass_mark, passed=passed, notes=notes,
    )
    # Re-authenticate outside the transaction: a wrong password is recorded even though nothing else is.
    proof = signing_authenticate(actor=actor, credentials=credentials)
    with transaction.atomic():
        record.created_at = timezone.now()
        record.save()
        record.refresh_from_db()  # sign exactly what the database holds (decimals, dates)
        event_record(
            actor=actor, event_type=TrainingEvent.RECORDED, obj=record, site=site, reason=reason.strip(),
            new={**record.signed_content(), "status": record.status},
        )
        signature_apply(proof=proof, record=record, meaning=Meaning.VERIFIED, site=site, reason=reason.strip())
    return record


def _record_validate(
    *,
    actor: User,
    trainee: User,
    site: Site,
    kind: str,
    title: str,
    trained_on: dt.date,
    qualification: Qualification | None,
    masterfile_version: Any,
    steps: Iterable[str],
    score: Any,
    pass_mark: Any,
    passed: bool | None,
    notes: str,
) -> TrainingRecord:
    """Check a training record before anything is written; every refusal names its field."""
    if kind not in TrainingKind.values:
        raise ValidationError({"kind": f"{kind!r} is not a kind of training; choose one of "
                                       f"{', '.join(TrainingKind.values)}."})
    if trainee.pk == actor.pk:
        raise ValidationError({"trainee": "Trainer and trainee must be two different people: "
                                          "nobody records their own training."})
    if not trainee.is_active:
        raise ValidationError({"trainee": f"{trainee} is deactivated; training cannot be recorded for them."})
    home_roles = _active_site_roles(trainee, site)
    if kind == TrainingKind.ROTATION:
        if not _active_site_roles(trainee):
            raise ValidationError({"trainee": f"{trainee} holds no active role anywhere in the network."})
        if home_roles:
            raise ValidationError({"site": f"A cross-site rotation is recorded at the host site; {trainee} "
                                           f"already works at {site.code}. Choose the site they rotated to."})
    elif not home_roles:
        raise ValidationError({"trainee": f"{trainee} holds no active role at {site.code}. Training is recorded "
                                          "at the trainee's own site (a cross-site rotation at the host site)."})
    title = (title or "").strip()
    if not title:
        raise ValidationError({"title": "Give the training a title (what was trained)."})
    if not isinstance(trained_on, dt.date) or isinstance(trained_on, dt.datetime):
        raise ValidationError({"trained_on": "Give the date of the training (YYYY-MM-DD)."})
    local_today = timezone.now().astimezone(site.tz).date()
    if trained_on > local_today:
        raise ValidationError({"trained_on": f"{trained_on} is in the future at {site.code} (today is "
                                             f"{local_today}); record training once it happened."})

    score_value = _percent(score, "score")
    mark = _percent(pass_mark, "pass_mark")
    if mark is None and qualification is not None and score_value is not None:
        mark = qualification.pass_mark
    if kind == TrainingKind.ASSESSMENT and score_value is None:
        raise ValidationError({"score": "An assessment needs the score the trainee reached (0–100 %)."})
    if score_value is not None and mark is None:
        raise ValidationError({"pass_mark": "A score needs a pass mark to be judged against: give the pass mark, "
                                            "or choose a qualification that has one."})
    if score_value is not None and mark is not None:
        outcome = score_value >= mark
        if passed is not None and passed != outcome:
            raise ValidationError({"passed": f"A score of {score_value} % against a pass mark of {mark} % "
                                             f"{'passes' if outcome else 'fails'}; the outcome follows the score."})
        passed = outcome
    elif mark is not None:
        raise ValidationError({"score": "A pass mark was given without a score."})
    if passed is None:
        passed = True

    step_ids = [str(s).strip() for s in steps if str(s).strip()]
    if kind == TrainingKind.VERSION:
        if masterfile_version is None:
            raise ValidationError({"masterfile_version": "Version training names the master-file version trained on."})
        if masterfile_version.status not in TRAINABLE_VERSION_STATUSES:
            raise ValidationError({"masterfile_version": (
                f"{masterfile_version} is {masterfile_version.status}; training is recorded on approved, "
                "effective or superseded versions.")})
        if not step_ids:
            raise ValidationError({"steps": "Name the master-file steps the training covered."})
        known = _version_step_ids(masterfile_version)
        unknown = [s for s in step_ids if s not in known]
        if unknown:
            verb = "is" if len(unknown) == 1 else "are"
            raise ValidationError({"steps": f"{', '.join(unknown)} {verb} not a step of {masterfile_version}; "
                                            f"its steps are {', '.join(known)}."})
        if len(set(step_ids)) != len(step_ids):
            raise ValidationError({"steps": "Each step is named once."})
    else:
        if masterfile_version is not None:
            raise ValidationError({"masterfile_version": "Only version training names a master-file version."})
        if step_ids:
            raise ValidationError({"steps": "Only version training names master-file steps."})
    if kind == TrainingKind.REQUALIFICATION:
        if qualification is None:
            raise ValidationError({"qualification": "A requalification names the qualification it renews."})
        if not PersonQualification.objects.filter(person=trainee, qualification=qualification).exists():
            raise ValidationError({"qualification": f"{trainee} never held {qualification.name}; record a course "
                                                    "or assessment for a first qualification."})
    return TrainingRecord(
        trainee=trainee, trainer=actor, site=site, kind=kind, title=title, qualification=qualification,
        masterfile_version=masterfile_version, steps=step_ids, score=score_value, pass_mark=mark,
        passed=passed, trained_on=trained_on, notes=(notes or "").strip(), status=TrainingStatus.AWAITING_TRAINEE,
    )


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` later (the month's last day when it is shorter)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return day.replace(year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1]))


def _site_midnight(day: dt.date, site: Site) -> dt.datetime:
    """The start of ``day`` at the site, as a UTC datetime."""
    return dt.datetime.combine(day, dt.time.min, tzinfo=site.tz).astimezone(dt.UTC)


def training_acknowledge(
    *, actor: User, record: TrainingRecord, credentials: SigningCredentials, reason: str = ""
) -> TrainingRecord:
    """The trainee signs their training record (meaning: performed), which completes it. A
    passed record that carries a qualification grants it, valid from the day of the training
    for the qualification's validity; earlier grants stay as they were (requalification adds a
    row, it never overwrites one)."""
    if record.trainee_id != actor.pk:
        raise PermissionDenied("Only the trainee signs their own training record.")
    if record.status != TrainingStatus.AWAITING_TRAINEE:
        raise ValidationError({"record": "This training record is already signed by the trainee."})
    proof = signing_authenticate(actor=actor, credentials=credentials)
    with transaction.atomic():
        locked = (TrainingRecord.objects.select_for_update(of=("self",)).select_related("site", "qualification")
                  .get(pk=record.pk))
        if locked.status != TrainingStatus.AWAITING_TRAINEE:  # signed meanwhile in another window
            raise ValidationError({"record": "This training record is already signed by the trainee."})
        locked.status = TrainingStatus.COMPLETE
        locked.completed_at = timezone.now()
        locked.save(update_fields=["status", "completed_at"])
        event_record(
            actor=actor, event_type=TrainingEvent.ACKNOWLEDGED, obj=locked, site=locked.site, reason=reason.strip(),
            old={"status": TrainingStatus.AWAITING_TRAINEE},
            new={"status": locked.status, "completed_at": locked.completed_at},
        )
        signature_apply(proof=proof, record=locked, meaning=Meaning.PERFORMED, site=locked.site,
                        reason=reason.strip())
        if locked.passed and locked.qualification is not None:
            _qualification_grant(actor=actor, record=locked)
    record.status, record.completed_at = locked.status, locked.completed_at
    return locked


def _qualification_grant(*, actor: User, record: TrainingRecord) -> PersonQualification:
    qualification = record.qualification
    assert qualification is not None
    valid_from = _site_midnight(record.trained_on, record.site)
    valid_until = _site_midnight(add_months(record.trained_on, qualification.validity_months), record.site)
    previous = (
        PersonQualification.objects.filter(person_id=record.trainee_id, qualification=qualification,
                                           revoked_at=None)
        .order_by("-valid_until").first()
    )
    granted = PersonQualification.objects.create(
        person_id=record.trainee_id, qualification=qualification, valid_from=valid_from,
        valid_until=valid_until, record=record,
    )
    event_record(
        actor=actor, event_type=TrainingEvent.QUALIFIED, obj=granted, site=record.site,
        reason=f"{record.get_kind_display()} {record.title!r} on {record.trained_on} completed",
        old={"valid_until": previous.valid_until if previous else None},
        new={"person": record.trainee_id, "qualification": qualification.code, "valid_from": valid_from,
             "valid_until": valid_until, "record": record.pk},
    )
    return granted


def qualification_revoke(*, actor: User, person: User, qualification: Qualification, reason: str) -> int:
    """Withdraw a person's qualification at once (Control Site QA), e.g. after a deviation
    traced to how a step was done. Every grant still running or still to come is marked revoked;
    the rows stay. Returns how many grants were revoked. Requalifying grants it again."""
    _require_admin(actor, "revoke qualifications")
    reason = _require_reason(reason)
    now = timezone.now()
    with transaction.atomic():
        grants = list(
            PersonQualification.objects.select_for_update(of=("self",))
            .filter(person=person, qualification=qualification, revoked_at=None, valid_until__gt=now)
            .select_related("record__site")
        )
        if not grants:
            raise ValidationError({"qualification": f"{person} holds no current {qualification.name} to revoke."})
        for grant in grants:
            grant.revoked_at, grant.revoked_by, grant.revocation_reason = now, actor, reason
            grant.save(update_fields=["revoked_at", "revoked_by", "revocation_reason"])
            event_record(
                actor=actor, event_type=TrainingEvent.QUALIFICATION_REVOKED, obj=grant, site=grant.record.site,
                reason=reason, old={"revoked_at": None, "valid_until": grant.valid_until},
                new={"revoked_at": now, "person": person.pk, "qualification": qualification.code},
            )
    return len(grants)
