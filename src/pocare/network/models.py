"""The Control Site and the POCare sites of the network."""

from __future__ import annotations

import zoneinfo
from typing import ClassVar

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models


def validate_time_zone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(
            f"{value!r} is not an IANA time zone; use a name such as 'Europe/Madrid'."
        ) from exc


class SiteKind(models.TextChoices):
    CONTROL = "control", "Control Site"
    HOSPITAL = "hospital", "Hospital POCare site"
    MOBILE = "mobile", "Mobile unit"


class SiteStatus(models.TextChoices):
    PROPOSED = "proposed", "Proposed"
    ONBOARDING = "onboarding", "Onboarding"
    QUALIFICATION = "qualification", "Qualification"
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"
    CLOSED = "closed", "Closed"


class Site(models.Model):
    """A place of the network: the Control Site or a POCare manufacturing site.

    ``code`` names the site's ledger chain and appears in event labels (``BCN#57``);
    ``facility_id`` is its ISBT 128 facility identification number (a letter and four
    characters) used in DINs.
    """

    code = models.CharField(
        max_length=8,
        unique=True,
        validators=[RegexValidator(r"^[A-Z][A-Z0-9]{1,7}$", "2–8 capital letters or digits, starting with a letter.")],
    )
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=SiteKind.choices)
    status = models.CharField(max_length=15, choices=SiteStatus.choices, default=SiteStatus.PROPOSED)
    facility_id = models.CharField(
        max_length=5,
        unique=True,
        validators=[RegexValidator(r"^[A-Z][A-Z0-9]{4}$", "A letter followed by four letters or digits.")],
        help_text="ISBT 128 facility identification number.",
    )
    city = models.CharField(max_length=100)
    country = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2")
    address = models.CharField(max_length=300, blank=True)
    latitude = models.DecimalField(
        max_digits=8, decimal_places=5, validators=[MinValueValidator(-90), MaxValueValidator(90)]
    )
    longitude = models.DecimalField(
        max_digits=8, decimal_places=5, validators=[MinValueValidator(-180), MaxValueValidator(180)]
    )
    time_zone = models.CharField(max_length=64, validators=[validate_time_zone])
    created_at = models.DateTimeField()

    class Meta:
        db_table = "network_site"
        ordering = ["kind", "code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)

    @property
    def is_control(self) -> bool:
        return self.kind == SiteKind.CONTROL


#: The lifecycle a site moves through (POC-3, POC-4). Each move is made by Control Site QA with
#: an electronic signature and a reason; see services.site_transition.
SITE_TRANSITIONS: dict[str, frozenset[str]] = {
    SiteStatus.PROPOSED: frozenset({SiteStatus.ONBOARDING, SiteStatus.CLOSED}),
    SiteStatus.ONBOARDING: frozenset({SiteStatus.QUALIFICATION, SiteStatus.CLOSED}),
    SiteStatus.QUALIFICATION: frozenset({SiteStatus.ACTIVE, SiteStatus.ONBOARDING, SiteStatus.CLOSED}),
    SiteStatus.ACTIVE: frozenset({SiteStatus.SUSPENDED, SiteStatus.CLOSED}),
    SiteStatus.SUSPENDED: frozenset({SiteStatus.ACTIVE, SiteStatus.CLOSED}),
    SiteStatus.CLOSED: frozenset(),
}


class SiteTransition(models.Model):
    """One move of a site through its lifecycle, signed by Control Site QA (meaning: approved)."""

    #: What ``signed_content`` follows, prefetched when many signatures are checked at once.
    signed_content_related: ClassVar[tuple[str, ...]] = ("site",)

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="transitions")
    from_status = models.CharField(max_length=15, choices=SiteStatus.choices)
    to_status = models.CharField(max_length=15, choices=SiteStatus.choices)
    reason = models.TextField()
    evidence = models.JSONField(default=dict, help_text="What the transition relied on (checklist, runs).")
    actor = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()

    class Meta:
        db_table = "network_sitetransition"
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.site.code}: {self.from_status} → {self.to_status}"

    def signed_content(self) -> dict[str, object]:
        return {"site": self.site.code, "from": self.from_status, "to": self.to_status,
                "reason": self.reason, "evidence": self.evidence, "actor_id": self.actor_id, "at": self.at}


class ReadinessItem(models.TextChoices):
    """The readiness checklist a site completes before qualification ends (POC-3, POC-4)."""

    FACILITY = "facility", "Facility and cleanroom/closed-system area qualified"
    EQUIPMENT = "equipment", "Manufacturing units installed and qualified (IQ/OQ)"
    STAFF = "staff", "Operators and QC analysts trained on the effective master file"
    PROCEDURES = "procedures", "Local procedures aligned with the master file"
    MONITORING = "monitoring", "Environmental and process monitoring in place"
    SUPPLY = "supply", "Materials supply and storage qualified"
    IT = "it", "POCare access, devices and data feeds validated"


class ReadinessCheck(models.Model):
    """Evidence that one readiness item is done at a site."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="readiness")
    item = models.CharField(max_length=20, choices=ReadinessItem.choices)
    evidence = models.TextField(help_text="Document reference or description of the evidence.")
    recorded_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField()

    class Meta:
        db_table = "network_readinesscheck"
        ordering = ["site", "item", "recorded_at"]

    def __str__(self) -> str:
        return f"{self.site.code}: {self.get_item_display()}"


class RunOutcome(models.TextChoices):
    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"


class PerformanceRun(models.Model):
    """A process performance qualification run at a site (engineering or PPQ batch)."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="performance_runs")
    reference = models.CharField(max_length=100, help_text="Run or report number.")
    performed_on = models.DateField()
    outcome = models.CharField(max_length=10, choices=RunOutcome.choices)
    notes = models.TextField(blank=True)
    recorded_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField()

    class Meta:
        db_table = "network_performancerun"
        ordering = ["site", "performed_on"]

    def __str__(self) -> str:
        return f"{self.site.code} {self.reference} ({self.outcome})"


class DeviceType(models.TextChoices):
    PRODIGY = "clinimacs_prodigy", "CliniMACS Prodigy"
    COCOON = "lonza_cocoon", "Lonza Cocoon"
    OTHER = "other", "Other closed system"


class UnitStatus(models.TextChoices):
    QUALIFIED = "qualified", "Qualified"
    OUT_OF_SERVICE = "out_of_service", "Out of service"
    RETIRED = "retired", "Retired"


class ManufacturingUnit(models.Model):
    """A manufacturing device at a site (one patient batch at a time). Overdue calibration or
    maintenance makes it unusable until it is requalified."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="units")
    device_type = models.CharField(max_length=30, choices=DeviceType.choices)
    model = models.CharField(max_length=100, blank=True)
    serial = models.CharField(max_length=100, unique=True)
    status = models.CharField(max_length=20, choices=UnitStatus.choices, default=UnitStatus.QUALIFIED)
    calibration_due = models.DateField()
    maintenance_due = models.DateField()
    qualified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "network_manufacturingunit"
        ordering = ["site", "serial"]

    def __str__(self) -> str:
        return f"{self.get_device_type_display()} {self.serial}"


class SiteAuthorization(models.Model):
    """Which master file a site may manufacture under: a product from a given version on, from a
    date, under stated conditions, until revoked."""

    #: What ``signed_content`` follows, prefetched when many signatures are checked at once.
    signed_content_related: ClassVar[tuple[str, ...]] = ("site", "product")

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="authorizations")
    product = models.ForeignKey("masterfile.Product", on_delete=models.PROTECT, related_name="authorizations")
    from_version = models.PositiveIntegerField(help_text="First master-file version number authorized.")
    valid_from = models.DateTimeField()
    conditions = models.TextField(blank=True)
    granted_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    granted_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        db_table = "network_siteauthorization"
        ordering = ["site", "product", "-valid_from"]

    def __str__(self) -> str:
        return f"{self.site.code} authorized for {self.product} v{self.from_version}+"

    def signed_content(self) -> dict[str, object]:
        return {"site": self.site.code, "product": self.product.code, "from_version": self.from_version,
                "valid_from": self.valid_from, "conditions": self.conditions, "granted_by": self.granted_by_id}
