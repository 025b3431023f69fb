"""Changes to the network: sites and their lifecycle, readiness evidence, manufacturing units, site
authorizations, and the generated annual report (POC-3, POC-4, POC-6).

Each function is one transaction writing its ledger event on the site's chain. Signed changes
re-authenticate the signer first, outside the transaction (see ``pocare.ledger.signing``).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from pocare.accounts import selectors as access
from pocare.accounts.models import User
from pocare.accounts.roles import Perm
from pocare.accounts.services import require_perm
from pocare.jobs.services import job_enqueue
from pocare.ledger.canonical import content_hash
from pocare.ledger.models import Meaning
from pocare.ledger.services import event_record, reason_required, record_changes
from pocare.ledger.signing import SigningCredentials, signature_apply, signing_authenticate
from pocare.network import selectors
from pocare.network.events import NetworkEvent
from pocare.network.models import (
    SITE_TRANSITIONS,
    DeviceType,
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
from pocare.network.report import annual_report_build

if TYPE_CHECKING:
    from pocare.masterfile.models import Product
    from pocare.network.report import AnnualReport


def site_register(
    *,
    actor: User | None,
    code: str,
    name: str,
    kind: SiteKind,
    facility_id: str,
    city: str,
    country: str,
    latitude: Decimal,
    longitude: Decimal,
    time_zone: str,
    reason: str,
    address: str = "",
    status: SiteStatus = SiteStatus.PROPOSED,
) -> Site:
    """Register a site in the network. Its ledger chain starts with this event."""
    if actor is not None:
        require_perm(actor, Perm.ACCOUNTS_MANAGE)
    site = Site(
        code=code, name=name, kind=kind, facility_id=facility_id, city=city, country=country,
        address=address, latitude=latitude, longitude=longitude, time_zone=time_zone,
        status=status, created_at=timezone.now(),
    )
    site.full_clean()
    with transaction.atomic():
        site.save()
        event_record(
            actor=actor,
            system="bootstrap",
            event_type=NetworkEvent.SITE_REGISTERED,
            obj=site,
            site=site,
            reason=reason,
            new={
                "code": code, "name": name, "kind": str(kind), "status": str(status),
                "facility_id": facility_id, "city": city, "country": country,
                "latitude": latitude, "longitude": longitude, "time_zone": time_zone,
            },
        )
    return site


# --- shared checks ------------------------------------------------------------------------------


def _choice(value: Any, choices: type[Any], field: str, what: str) -> str:
    allowed = [c.value for c in choices]
    if str(value) not in allowed:
        raise ValidationError({field: f"{value!r} is not a {what}; use one of: {', '.join(allowed)}."})
    return str(value)


def _not_closed(site: Site) -> None:
    if site.status == SiteStatus.CLOSED:
        raise ValidationError({"site": f"{site.name} is closed: nothing new is recorded for it."})


def _lock(site: Site) -> Site:
    """Re-read the site under a row lock so that two concurrent changes cannot both pass a check."""
    locked = Site.objects.select_for_update().get(pk=site.pk)
    site.status = locked.status
    return locked


# --- lifecycle ------------------------------------------------------------------------------------


def _transition_check(site: Site, to_status: str) -> selectors.QualificationEvidence | None:
    """Refuse a move the lifecycle does not allow; for qualification → active, return the
    evidence it rests on (or refuse, listing exactly what is missing)."""
    if site.is_control and to_status in (SiteStatus.SUSPENDED, SiteStatus.CLOSED):
        raise ValidationError({"to_status": (
            f"{site.name} is the Control Site: it holds the master file and the QP and cannot be "
            "suspended or closed.")})
    allowed = SITE_TRANSITIONS.get(site.status, frozenset())
    if to_status not in allowed:
        current = SiteStatus(site.status).label.lower()
        if not allowed:
            raise ValidationError({"to_status": f"{site.name} is {current}: a closed site stays closed."})
        names = ", ".join(SiteStatus(s).label.lower() for s in SiteStatus if s in allowed)
        raise ValidationError({"to_status": (
            f"A site that is {current} can move to {names}; not to {SiteStatus(to_status).label.lower()}.")})
    if site.status == SiteStatus.QUALIFICATION and to_status == SiteStatus.ACTIVE:
        evidence = selectors.qualification_evidence(site)
        if not evidence.complete:
            raise ValidationError({"evidence": (
                f"{site.name} cannot become active yet. Missing: " + "; ".join(evidence.missing) + ".")})
        return evidence
    return None


def site_transition(
    *, actor: User, site: Site, to_status: str, reason: str, credentials: SigningCredentials
) -> SiteTransition:
    """Move a site through its lifecycle (POC-3, POC-4), signed by Control Site QA (meaning:
    approved). Leaving qualification needs the full readiness checklist and at least
    ``REQUIRED_PASSED_RUNS`` passed performance runs; the evidence used is kept on the transition."""
    require_perm(actor, Perm.SITES_GOVERN)
    to_status = _choice(to_status, SiteStatus, "to_status", "site status")
    reason = reason_required(reason)
    _transition_check(site, to_status)
    proof = signing_authenticate(actor=actor, credentials=credentials)
    with transaction.atomic():
        _lock(site)
        evidence = _transition_check(site, to_status)  # again, under the lock
        from_status = site.status
        record = SiteTransition.objects.create(
            site=site, from_status=from_status, to_status=to_status, reason=reason,
            evidence=evidence.as_record() if evidence else {}, actor=actor, at=timezone.now(),
        )
        site.status = to_status
        site.save(update_fields=["status"])
        event_record(
            actor=actor, event_type=NetworkEvent.SITE_TRANSITIONED, obj=site, site=site, reason=reason,
            old={"status": from_status},
            new={"status": to_status, "transition_id": record.pk, "evidence": record.evidence},
        )
        signature_apply(proof=proof, record=record, meaning=Meaning.APPROVED, site=site, reason=reason)
    return record


def site_readiness_record(*, actor: User, site: Site, item: str, evidence: str, reason: str) -> ReadinessCheck:
    """Record the evidence that one readiness item is done at a site (Control Site QA, or the
    site's own manager). A later record of the same item stands beside the earlier one."""
    require_perm(actor, Perm.UNITS_MANAGE, site=site)
    item = _choice(item, ReadinessItem, "item", "readiness item")
    evidence = (evidence or "").strip()
    if not evidence:
        raise ValidationError({"evidence": "Name the document or describe the evidence."})
    reason = reason_required(reason)
    _not_closed(site)
    with transaction.atomic():
        check = ReadinessCheck.objects.create(site=site, item=item, evidence=evidence, recorded_by=actor,
                                              recorded_at=timezone.now())
        event_record(actor=actor, event_type=NetworkEvent.READINESS_RECORDED, obj=check, site=site,
                     reason=reason, new={"item": item, "evidence": evidence})
    return check


def performance_run_record(
    *, actor: User, site: Site, reference: str, performed_on: dt.date, outcome: str, reason: str, notes: str = ""
) -> PerformanceRun:
    """Record a process performance qualification run at a site and its outcome (Control Site QA,
    or the site's own manager)."""
    require_perm(actor, Perm.UNITS_MANAGE, site=site)
    reference = (reference or "").strip()
    if not reference:
        raise ValidationError({"reference": "Give the run or report number."})
    outcome = _choice(outcome, RunOutcome, "outcome", "run outcome")
    if not isinstance(performed_on, dt.date):
        raise ValidationError({"performed_on": "Give the date the run was performed (YYYY-MM-DD)."})
    if performed_on > selectors.site_today(site):
        raise ValidationError({"performed_on": f"{performed_on.isoformat()} is in the future at {site.name}."})
    reason = reason_required(reason)
    _not_closed(site)
    if PerformanceRun.objects.filter(site=site, reference=reference).exists():
        raise ValidationError({"reference": f"Run {reference} is already recorded at {site.code}."})
    with transaction.atomic():
        run = PerformanceRun.objects.create(site=site, reference=reference, performed_on=performed_on,
                                            outcome=outcome, notes=(notes or "").strip(), recorded_by=actor,
                                            recorded_at=timezone.now())
        event_record(actor=actor, event_type=NetworkEvent.PERFORMANCE_RUN_RECORDED, obj=run, site=site,
                     reason=reason, new={"reference": reference, "performed_on": performed_on, "outcome": outcome,
                                         "notes": run.notes})
    return run


# --- manufacturing units ----------------------------------------------------------------------------


def _due_date(value: Any, field: str) -> dt.date:
    if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
        raise ValidationError({field: "Give a date (YYYY-MM-DD)."})
    return value


def unit_register(
    *,
    actor: User,
    site: Site,
    device_type: str,
    serial: str,
    calibration_due: dt.date,
    maintenance_due: dt.date,
    reason: str,
    model: str = "",
) -> ManufacturingUnit:
    """Register a manufacturing unit at a site once its installation and operational
    qualification are done (Control Site QA, or the site's own manager).

    Due dates in the past are accepted — the record states the facts — and make the unit unusable
    until it is requalified.
    """
    require_perm(actor, Perm.UNITS_MANAGE, site=site)
    device_type = _choice(device_type, DeviceType, "device_type", "device type")
    serial = (serial or "").strip()
    if not serial:
        raise ValidationError({"serial": "Give the unit's serial number."})
    if len(serial) > 100:
        raise ValidationError({"serial": "At most 100 characters."})
    calibration_due = _due_date(calibration_due, "calibration_due")
    maintenance_due = _due_date(maintenance_due, "maintenance_due")
    reason = reason_required(reason)
    _not_closed(site)
    if ManufacturingUnit.objects.filter(serial=serial).exists():
        raise ValidationError({"serial": f"A unit with serial {serial} is already registered in the network."})
    now = timezone.now()
    with transaction.atomic():
        unit = ManufacturingUnit.objects.create(
            site=site, device_type=device_type, model=(model or "").strip()[:100], serial=serial,
            status=UnitStatus.QUALIFIED, calibration_due=calibration_due, maintenance_due=maintenance_due,
            qualified_at=now, created_at=now,
        )
        event_record(actor=actor, event_type=NetworkEvent.UNIT_REGISTERED, obj=unit, site=site, reason=reason,
                     new=record_changes(unit, ["device_type", "model", "serial", "status", "calibration_due",
                                               "maintenance_due"]))
    return unit


def unit_requalify(
    *, actor: User, unit: ManufacturingUnit, calibration_due: dt.date, maintenance_due: dt.date, reason: str
) -> ManufacturingUnit:
    """Record that a unit was calibrated, maintained and requalified: new due dates, qualified now.
    This is the only way back into use for an overdue or out-of-service unit."""
    site = unit.site
    require_perm(actor, Perm.UNITS_MANAGE, site=site)
    calibration_due = _due_date(calibration_due, "calibration_due")
    maintenance_due = _due_date(maintenance_due, "maintenance_due")
    today = selectors.site_today(site)
    for field_name, value in (("calibration_due", calibration_due), ("maintenance_due", maintenance_due)):
        if value <= today:
            raise ValidationError({field_name: (
                f"The next due date must be after today at {site.code} ({today.isoformat()}).")})
    reason = reason_required(reason)
    fields = ["status", "calibration_due", "maintenance_due", "qualified_at"]
    with transaction.atomic():
        unit = ManufacturingUnit.objects.select_for_update(of=("self",)).select_related("site").get(pk=unit.pk)
        if unit.status == UnitStatus.RETIRED:
            raise ValidationError({"status": f"{unit} is retired: a retired unit is never used again."})
        old = record_changes(unit, fields)
        unit.status = UnitStatus.QUALIFIED
        unit.calibration_due, unit.maintenance_due = calibration_due, maintenance_due
        unit.qualified_at = timezone.now()
        unit.save(update_fields=fields)
        event_record(actor=actor, event_type=NetworkEvent.UNIT_REQUALIFIED, obj=unit, site=site, reason=reason,
                     old=old, new=record_changes(unit, fields))
    return unit


def unit_status_change(*, actor: User, unit: ManufacturingUnit, status: str, reason: str) -> ManufacturingUnit:
    """Take a unit out of service or retire it, with the reason. Back into service goes only through
    :func:`unit_requalify`; retirement is final."""
    site = unit.site
    require_perm(actor, Perm.UNITS_MANAGE, site=site)
    status = _choice(status, UnitStatus, "status", "unit status")
    if status == UnitStatus.QUALIFIED:
        raise ValidationError({"status": "A unit returns to service only by being requalified (new due dates)."})
    reason = reason_required(reason)
    with transaction.atomic():
        unit = ManufacturingUnit.objects.select_for_update(of=("self",)).select_related("site").get(pk=unit.pk)
        if unit.status == UnitStatus.RETIRED:
            raise ValidationError({"status": f"{unit} is retired: a retired unit is never used again."})
        if unit.status == status:
            raise ValidationError({"status": f"{unit} is already {UnitStatus(status).label.lower()}."})
        old = unit.status
        unit.status = status
        unit.save(update_fields=["status"])
        event_record(actor=actor, event_type=NetworkEvent.UNIT_STATUS_CHANGED, obj=unit, site=site, reason=reason,
                     old={"status": old}, new={"status": status})
    return unit


# --- site authorizations ------------------------------------------------------------------------------


def site_authorize(
    *,
    actor: User,
    site: Site,
    product: Product,
    from_version: int,
    valid_from: dt.datetime | None,
    conditions: str,
    reason: str,
    credentials: SigningCredentials,
) -> SiteAuthorization:
    """Authorize a site to manufacture a product under its master file from a version on, from a
    moment, under stated conditions (POC-1), signed by Control Site QA (meaning: approved)."""
    require_perm(actor, Perm.SITES_GOVERN)
    if not isinstance(from_version, int) or isinstance(from_version, bool) or from_version < 1:
        raise ValidationError({"from_version": "Give a master-file version number (1 or more)."})
    numbers = sorted(product.versions.values_list("number", flat=True))  # the reverse of MasterFileVersion.product
    if from_version not in numbers:
        have = ", ".join(str(n) for n in numbers) or "none yet"
        raise ValidationError({"from_version": (
            f"{product.code} has no master-file version {from_version} (versions: {have}).")})
    now = timezone.now()
    valid_from = valid_from or now
    if timezone.is_naive(valid_from):
        raise ValidationError({"valid_from": "Give the moment with its time zone."})
    if valid_from < now - dt.timedelta(minutes=5):
        raise ValidationError({"valid_from": "An authorization cannot start in the past."})
    reason = reason_required(reason)
    conditions = (conditions or "").strip()
    _authorize_check(site, product)
    proof = signing_authenticate(actor=actor, credentials=credentials)
    with transaction.atomic():
        _lock(site)
        _authorize_check(site, product)
        grant = SiteAuthorization.objects.create(
            site=site, product=product, from_version=from_version, valid_from=valid_from, conditions=conditions,
            granted_by=actor, granted_at=timezone.now(),
        )
        event_record(actor=actor, event_type=NetworkEvent.SITE_AUTHORIZED, obj=grant, site=site, reason=reason,
                     new={"product": product.code, "from_version": from_version, "valid_from": valid_from,
                          "conditions": conditions})
        signature_apply(proof=proof, record=grant, meaning=Meaning.APPROVED, site=site, reason=reason)
    return grant


def _authorize_check(site: Site, product: Product) -> None:
    _not_closed(site)
    if site.is_control:
        raise ValidationError({"site": "The Control Site holds the master file; POCare sites are authorized under it."})
    current = SiteAuthorization.objects.filter(site=site, product=product, revoked_at=None).first()
    if current is not None:
        raise ValidationError({"site": (
            f"{site.name} already holds an authorization for {product.code} from version {current.from_version}; "
            "revoke it before granting another.")})


def site_authorization_revoke(*, actor: User, authorization: SiteAuthorization, reason: str) -> SiteAuthorization:
    """Revoke a site authorization at once (Control Site QA). The grant, its signature and the
    revocation all stay on record."""
    require_perm(actor, Perm.SITES_GOVERN)
    reason = reason_required(reason)
    site = authorization.site
    with transaction.atomic():
        grant = SiteAuthorization.objects.select_for_update().get(pk=authorization.pk)
        if grant.revoked_at is not None:
            raise ValidationError({"authorization": "This authorization is already revoked."})
        grant.revoked_at, grant.revoked_by = timezone.now(), actor
        grant.save(update_fields=["revoked_at", "revoked_by"])
        event_record(actor=actor, event_type=NetworkEvent.AUTHORIZATION_REVOKED, obj=grant, site=site,
                     reason=reason, old={"revoked_at": None},
                     new={"revoked_at": grant.revoked_at, "product": grant.product.code,
                          "from_version": grant.from_version})
    authorization.revoked_at, authorization.revoked_by = grant.revoked_at, grant.revoked_by
    return authorization


# --- annual report ----------------------------------------------------------------------------------


ANNUAL_REPORT_PDF_TASK = "pocare.network.tasks.annual_report_pdf_work"


def annual_report_pdf_request(*, actor: User, year: int, product: Product | None) -> Any:
    """Queue the annual report's PDF as a job of ``actor``'s, in the caller's transaction. The job
    generates the report (recording it as the HTML report is: ``network.annual_report_generated``,
    format pdf) and keeps the PDF for download from its page."""
    if not access.has_perm(actor, Perm.REPORTS_VIEW):
        raise PermissionDenied(f"{actor.username} may not generate the annual report.")
    with transaction.atomic():
        return job_enqueue(task=ANNUAL_REPORT_PDF_TASK,
                           kwargs={"actor_id": actor.pk, "year": year, "product_id": product.pk if product else None},
                           actor=actor, label=f"Annual report {year}, {product.code if product else 'network'} (PDF)")


def annual_report_generate(*, actor: User, year: int, product: Product | None, fmt: str) -> AnnualReport:
    """Generate the annual report on the master file (POC-4) from the records, and record that
    it was generated, by whom, in which format and the hash of what it said."""
    if not access.has_perm(actor, Perm.REPORTS_VIEW):
        raise PermissionDenied(f"{actor.username} may not generate the annual report.")
    if fmt not in ("html", "pdf"):
        raise ValidationError({"format": "Use html or pdf."})
    report = annual_report_build(year=year, product=product)
    control = selectors.control_site()
    with transaction.atomic():
        report.event = event_record(
            actor=actor, event_type=NetworkEvent.ANNUAL_REPORT_GENERATED, site=control,
            object_type="network.AnnualReport", object_id=f"{year}:{product.code if product else '-'}",
            object_repr=report.title,
            new={"year": year, "product": product.code if product else None, "format": fmt,
                 "content_hash": content_hash(report.summary())},
        )
    return report
