"""Demo data of the network's governance: manufacturing units at every site, each active hospital
site authorized for the demo product, and one site part-way through its lifecycle (Porto).

Everything goes through the services, signed where the services sign, so the demo's audit trail
is a real one. Each loader is idempotent: what exists is left as it is. ``pocare.demo.loader`` calls
these after the network and its people are loaded.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from pocare.accounts.models import Membership, User
from pocare.accounts.roles import Role
from pocare.ledger.signing import SigningCredentials
from pocare.masterfile.models import Product
from pocare.network import selectors, services
from pocare.network.models import (
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
)


@dataclass(frozen=True)
class DemoUnit:
    device_type: DeviceType
    model: str
    serial: str
    calibration_in_days: int  # due date relative to the site's date when loaded
    maintenance_in_days: int


_PRODIGY = "CliniMACS Prodigy (TCT process software)"
_COCOON = "Cocoon Platform"

#: Two units per site: CliniMACS Prodigy at most sites, Lonza Cocoon at Munich. Serials are
#: fictitious but shaped like the manufacturers'. One unit is due within 30 days (Lisbon) and one
#: is overdue and so unusable until requalified (Milan).
UNITS: dict[str, list[DemoUnit]] = {
    "MAD": [DemoUnit(DeviceType.PRODIGY, _PRODIGY, "PRD-21-04573", 142, 201),
            DemoUnit(DeviceType.PRODIGY, _PRODIGY, "PRD-22-05118", 96, 163)],
    "LIS": [DemoUnit(DeviceType.PRODIGY, _PRODIGY, "PRD-21-04611", 19, 88),
            DemoUnit(DeviceType.PRODIGY, _PRODIGY, "PRD-23-06034", 171, 240)],
    "MUC": [DemoUnit(DeviceType.COCOON, _COCOON, "CCN-0312-DE", 120, 185),
            DemoUnit(DeviceType.COCOON, _COCOON, "CCN-0327-DE", 77, 150)],
    "GRO": [DemoUnit(DeviceType.PRODIGY, _PRODIGY, "PRD-22-05240", 133, 212),
            DemoUnit(DeviceType.PRODIGY, _PRODIGY, "PRD-22-05241", 58, 131)],
    "MIL": [DemoUnit(DeviceType.PRODIGY, _PRODIGY, "PRD-20-03987", -9, 44),
            DemoUnit(DeviceType.PRODIGY, _PRODIGY, "PRD-23-06102", 155, 226)],
    "DUB": [DemoUnit(DeviceType.PRODIGY, _PRODIGY, "PRD-21-04702", 110, 174),
            DemoUnit(DeviceType.PRODIGY, _PRODIGY, "PRD-23-06219", 64, 139)],
    "OPO": [DemoUnit(DeviceType.PRODIGY, _PRODIGY, "PRD-24-06877", 180, 250)],
}

PORTO = {
    "code": "OPO", "name": "Porto POCare site", "kind": SiteKind.HOSPITAL, "facility_id": "P1007",
    "city": "Porto", "country": "PT", "latitude": Decimal("41.14961"), "longitude": Decimal("-8.61099"),
    "time_zone": "Europe/Lisbon", "address": "Cell therapy unit, university hospital",
}
#: Porto's checklist so far: four of the seven items, and two of the three runs.
PORTO_READINESS = {
    ReadinessItem.FACILITY: "Closed-system room qualification report QR-OPO-2026-004",
    ReadinessItem.EQUIPMENT: "IQ/OQ of CliniMACS Prodigy PRD-24-06877, report EQ-OPO-2026-011",
    ReadinessItem.PROCEDURES: "Local SOP set OPO-SOP-001…014 aligned with master file v1 (gap assessment GA-OPO-02)",
    ReadinessItem.SUPPLY: "Supplier qualification and storage mapping SM-OPO-2026-003",
}
PORTO_RUNS = [("PPQ-OPO-001", 40, "Healthy-donor run; all CQAs within specification"),
              ("PPQ-OPO-002", 26, "Healthy-donor run; all CQAs within specification")]


def _control_qa() -> User:
    membership = (Membership.objects.filter(role=Role.CONTROL_QA, revoked_at=None, site__kind=SiteKind.CONTROL)
                  .select_related("user").order_by("user_id").first())
    if membership is None:
        raise RuntimeError("Load the demo network (pocare.demo.people.load_people) before the network governance demo.")
    return membership.user


def _unit_actor(site: Site) -> User:
    """The site's own manager registers its units; Control Site QA where the site has none yet."""
    membership = (Membership.objects.filter(role=Role.SITE_MANAGER, site=site, revoked_at=None)
                  .select_related("user").order_by("user_id").first())
    return membership.user if membership is not None else _control_qa()


def _register_units(site: Site, today: dt.date | None = None) -> None:
    """The site's units, their calibration and maintenance due counted from ``today`` (default: the
    site's date by the clock)."""
    today = today or selectors.site_today(site)
    actor = _unit_actor(site)
    for spec in UNITS.get(site.code, []):
        if ManufacturingUnit.objects.filter(serial=spec.serial).exists():
            continue
        services.unit_register(
            actor=actor, site=site, device_type=spec.device_type, model=spec.model, serial=spec.serial,
            calibration_due=today + dt.timedelta(days=spec.calibration_in_days),
            maintenance_due=today + dt.timedelta(days=spec.maintenance_in_days),
            reason="Demo: unit installed and qualified (IQ/OQ complete)",
        )


def load_units(today: dt.date | None = None, *, extra_per_site: int = 0) -> None:
    """Two manufacturing units at every demo site present (Porto's are loaded with Porto), due
    counted from ``today`` (default: each site's date by the clock); and ``extra_per_site`` more of
    each site's first model, so that the history can be grown to a network of any size
    (``benchmarks/pages_at_scale.py``) without inventing sites the demo's pages do not know."""
    for site in Site.objects.exclude(kind=SiteKind.CONTROL).exclude(status=SiteStatus.CLOSED).order_by("code"):
        _register_units(site, today)
        _register_extra_units(site, today, extra_per_site)


def _register_extra_units(site: Site, today: dt.date | None, count: int) -> None:
    """``count`` more units like the site's first, serials suffixed ``-01``, ``-02`` …, due in five
    and seven months (the history's batches run on every unit that is not due)."""
    if count <= 0 or not UNITS.get(site.code):
        return
    base, today, actor = UNITS[site.code][0], today or selectors.site_today(site), _unit_actor(site)
    for n in range(1, count + 1):
        serial = f"{base.serial}-{n:02d}"
        if not ManufacturingUnit.objects.filter(serial=serial).exists():
            services.unit_register(
                actor=actor, site=site, device_type=base.device_type, model=base.model, serial=serial,
                calibration_due=today + dt.timedelta(days=150), maintenance_due=today + dt.timedelta(days=210),
                reason="Demo: unit installed and qualified (IQ/OQ complete)",
            )


def load_porto(*, password: str) -> Site:
    """Porto: proposed → onboarding → qualification, with part of its readiness checklist and two
    passed runs — so making it active is refused, with the reasons."""
    qa = _control_qa()

    def creds() -> SigningCredentials:
        return SigningCredentials(username=qa.username, password=password)

    site = Site.objects.filter(code=PORTO["code"]).first()
    if site is None:
        site = services.site_register(actor=None, status=SiteStatus.PROPOSED,
                                      reason="Demo: proposed site for northern Portugal (planning study 2026)",
                                      **PORTO)  # type: ignore[arg-type]
    if site.status == SiteStatus.PROPOSED:
        services.site_transition(actor=qa, site=site, to_status=SiteStatus.ONBOARDING, credentials=creds(),
                                 reason="Demo: hospital agreement signed; onboarding plan ONB-OPO-01 approved")
    if site.status == SiteStatus.ONBOARDING:
        services.site_transition(actor=qa, site=site, to_status=SiteStatus.QUALIFICATION, credentials=creds(),
                                 reason="Demo: facility handed over; qualification protocol QP-OPO-01 approved")
    done = set(ReadinessCheck.objects.filter(site=site).values_list("item", flat=True))
    for item, evidence in PORTO_READINESS.items():
        if item.value not in done:
            services.site_readiness_record(actor=qa, site=site, item=item, evidence=evidence,
                                           reason="Demo: evidence reviewed by Control Site QA")
    today = selectors.site_today(site)
    for reference, days_ago, notes in PORTO_RUNS:
        if not PerformanceRun.objects.filter(site=site, reference=reference).exists():
            services.performance_run_record(actor=qa, site=site, reference=reference,
                                            performed_on=today - dt.timedelta(days=days_ago),
                                            outcome=RunOutcome.PASSED, notes=notes,
                                            reason="Demo: PPQ run report approved")
    _register_units(site)
    return site


def load_authorizations(*, product: Product, password: str) -> list[SiteAuthorization]:
    """Control Site QA authorizes every active hospital site for ``product`` from version 1, signed."""
    qa = _control_qa()
    granted = []
    for site in Site.objects.filter(kind=SiteKind.HOSPITAL, status=SiteStatus.ACTIVE).order_by("code"):
        if SiteAuthorization.objects.filter(site=site, product=product, revoked_at=None).exists():
            continue
        granted.append(services.site_authorize(
            actor=qa, site=site, product=product, from_version=1, valid_from=None,
            conditions="Manufacture only on the site's qualified closed-system units; every batch certified by "
                       "the Control Site QP.",
            reason="Demo: site qualified for the product under master file version 1",
            credentials=SigningCredentials(username=qa.username, password=password),
        ))
    return granted


def load(*, password: str, product: Product | None = None) -> None:
    """All of the above: units, Porto, and (when the product is there) the authorizations."""
    load_units()
    load_porto(password=password)
    if product is not None:
        load_authorizations(product=product, password=password)
