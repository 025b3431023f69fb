"""The Control Site and the POCare sites of the network."""

from __future__ import annotations

import zoneinfo

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
