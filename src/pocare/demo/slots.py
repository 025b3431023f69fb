"""The hospitals' clinic slots of the demo: each active site's navigator opens a daily apheresis
slot (08:00–11:00 UTC) and a daily infusion slot (13:00–15:00 UTC) for the next 90 days, through the
booking service, so that a navigator finds proposals on a patient's booking page. Reloading opens
only the days not yet open."""

from __future__ import annotations

import datetime as dt

from pocare.accounts.models import User
from pocare.network.models import Site, SiteKind, SiteStatus
from pocare.patients.booking import slots_open
from pocare.patients.models import SlotKind

DAYS = 90


def load(*, now: dt.datetime) -> int:
    """Open the slots; the number of slots opened."""
    tomorrow = now.astimezone(dt.UTC).date() + dt.timedelta(days=1)
    opened = 0
    for site in Site.objects.filter(status=SiteStatus.ACTIVE).exclude(kind=SiteKind.CONTROL).order_by("code"):
        navigator = User.objects.filter(username=f"navigator.{site.code.lower()}").first()
        if navigator is None:
            continue
        for kind, hour, minutes in ((SlotKind.APHERESIS, 8, 180), (SlotKind.INFUSION, 13, 120)):
            first = dt.datetime.combine(tomorrow, dt.time(hour), tzinfo=dt.UTC)
            opened += len(slots_open(actor=navigator, site=site, kind=kind, starts=first,
                                     ends=first + dt.timedelta(days=DAYS - 1), every=24 * 60, duration=minutes,
                                     reason="Clinic capacity of the demo hospital"))
    return opened
