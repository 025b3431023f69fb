"""Changes to the network's sites. Site lifecycle transitions come with the governance issue."""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from pocare.accounts.models import User
from pocare.accounts.roles import Perm
from pocare.accounts.services import require_perm
from pocare.ledger.services import event_record
from pocare.network.events import NetworkEvent
from pocare.network.models import Site, SiteKind, SiteStatus


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
