"""The filters of the site and unit lists, shared by the pages and the API (pocare.core.listing)."""

from __future__ import annotations

import django_filters

from pocare.core.listing import Column, ListFilterSet, SortFilter, date_range
from pocare.network.models import DeviceType, ManufacturingUnit, Site, SiteKind, SiteStatus, UnitStatus


class SiteFilter(ListFilterSet):
    search_fields = ("code", "name", "city", "country", "facility_id")
    search_help = "Code, name, city, country or facility id"
    default_sort = ("kind", "code")  # the Control Site first, then the sites by code
    site = django_filters.CharFilter(field_name="code", lookup_expr="iexact", label="Site",
                                     help_text="Site code, e.g. MAD")
    kind = django_filters.ChoiceFilter(choices=SiteKind.choices, empty_label="Any")
    status = django_filters.ChoiceFilter(choices=SiteStatus.choices, empty_label="Any")
    sort = SortFilter(fields=(("code", "code"), ("name", "name"), ("kind", "kind"), ("status", "status"),
                              ("city", "city"), ("units_total", "units"), ("people", "people")))

    class Meta:
        model = Site
        fields: list[str] = []


def _authorized_for(site: Site) -> str:
    return "; ".join(f"{a.product.code} from v{a.from_version}" for a in getattr(site, "authorizations_in_force", []))


SITE_COLUMNS = (
    Column("code", "code"), Column("name", "name"), Column("kind", "kind"), Column("status", "status"),
    Column("city", "city"), Column("country", "country"), Column("time_zone", "time_zone"),
    Column("facility_id", "facility_id"), Column("units_not_retired", "units_total"),
    Column("authorized_for", _authorized_for), Column("people_with_a_role", "people"),
)


class UnitFilter(ListFilterSet):
    search_fields = ("serial", "model", "device_type", "site__code", "site__name")
    search_help = "Serial, model, device or site"
    default_sort = ("site__code", "serial")
    site = django_filters.CharFilter(field_name="site__code", lookup_expr="iexact", label="Site",
                                     help_text="Site code, e.g. MAD")
    status = django_filters.ChoiceFilter(choices=UnitStatus.choices, empty_label="Any")
    device_type = django_filters.ChoiceFilter(choices=DeviceType.choices, empty_label="Any", label="Device")
    calibration_from, calibration_until = date_range("calibration_due", "Calibration due", dates=True)
    sort = SortFilter(fields=(("serial", "serial"), ("site__code", "site"), ("device_type", "device"),
                              ("status", "status"), ("calibration_due", "calibration"),
                              ("maintenance_due", "maintenance")))

    class Meta:
        model = ManufacturingUnit
        fields: list[str] = []


UNIT_COLUMNS = (
    Column("serial", "serial"), Column("site", "site.code"), Column("device_type", "device_type"),
    Column("model", "model"), Column("status", "status"), Column("calibration_due", "calibration_due"),
    Column("maintenance_due", "maintenance_due"), Column("qualified_at_utc", "qualified_at"),
    Column("registered_at_utc", "created_at"),
)
