"""How the generated permission test (tests/test_permission_matrix.py) names one network object at a
given site, for each network URL that takes one."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from django.utils import timezone


def _unit(site: str) -> dict[str, Any]:
    from pocare.accounts.models import User
    from pocare.network import services
    from pocare.network.models import ManufacturingUnit, Site

    unit = ManufacturingUnit.objects.filter(site__code=site).first()
    if unit is None:
        today = timezone.now().date()
        unit = services.unit_register(
            actor=User.objects.get(username="qa"), site=Site.objects.get(code=site), device_type="clinimacs_prodigy",
            serial=f"MATRIX-{site}", calibration_due=today + dt.timedelta(days=90),
            maintenance_due=today + dt.timedelta(days=120), reason="matrix",
        )
    return {"pk": unit.pk}


def _authorization(site: str) -> dict[str, Any]:
    """The site's authorization, granted by QA for the demo product (master file v1 made effective
    through the masterfile services) when the site holds none."""
    from pocare.accounts.models import User
    from pocare.network.models import Site, SiteAuthorization
    from pocare.network.services import site_authorize
    from tests.masterfile.helpers import effective_v1
    from tests.network.conftest import creds

    grant = SiteAuthorization.objects.filter(site__code=site).first()
    if grant is None:
        qa = User.objects.get(username="qa")
        grant = site_authorize(actor=qa, site=Site.objects.get(code=site), product=effective_v1().product,
                               from_version=1, valid_from=None, conditions="", reason="matrix", credentials=creds(qa))
    return {"pk": grant.pk}


def _site(site: str) -> dict[str, Any]:
    return {"code": site}


OBJECTS: dict[str, Callable[[str], dict[str, Any]]] = {
    "network:unit": _unit,
    "network:authorization_revoke": _authorization,
    "network:site_transition": _site,
    "network:site_readiness": _site,
    "network:site_run": _site,
    "network:unit_register": _site,
    "network:site_authorize": _site,
    "api-site-units": _site,
    "api-site-transitions": _site,
    "api-unit-requalify": _unit,
}
