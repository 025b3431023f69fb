"""Fixtures of the network tests: a product with master-file versions, fresh sites in any
lifecycle status, and signing credentials of the personas."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from pocare.ledger.signing import SigningCredentials
from pocare.network import services
from pocare.network.models import ReadinessItem, RunOutcome, Site, SiteKind, SiteStatus
from tests.conftest import PASSWORD

_numbers = itertools.count(1)


def creds(user: Any, password: str = PASSWORD) -> SigningCredentials:
    """Both signature components, as outside a continuous session."""
    return SigningCredentials(username=user.username, password=password)


@pytest.fixture
def product(people):  # type: ignore[no-untyped-def]
    """Product CART19 with master-file versions 1 and 2, made as the masterfile services make them:
    v1 drafted, reviewed, approved and made effective, then v2 by a change request (v1 superseded).
    The documents are the demo's, renamed to CART19."""
    from pocare.masterfile import services as mf
    from pocare.masterfile.models import MasterFileVersion
    from tests.masterfile.helpers import V1_TEXT, V2_TEXT, carry_to_approved, make_effective

    code = "CART19"
    qa = people["qa"]
    product = mf.product_create(actor=qa, code=code, name="Autologous anti-CD19 CAR-T", indication="r/r B-ALL",
                                kind="autologous", reason="test set-up")
    v1 = mf.version_draft(actor=qa, product=product, document=_renamed(V1_TEXT, code), summary="v1",
                          reason="test set-up")
    make_effective(carry_to_approved(v1))
    cr = mf.change_request_raise(
        actor=qa, product=product, title="Extend expansion to day 12", description="Slow cultures.", severity=2,
        probability=2, detectability=2, sites=list(Site.objects.filter(code__in=("MAD", "LIS"))),
        comparability_evidence="Engineering runs", document=_renamed(V2_TEXT, code), reason="test set-up")
    make_effective(carry_to_approved(MasterFileVersion.objects.get(change_request=cr)))
    return product


def _renamed(document: str, code: str) -> str:
    return document.replace("code: CD19-CART", f"code: {code}", 1)


@pytest.fixture
def new_site(db):  # type: ignore[no-untyped-def]
    """Register a fresh hospital site directly in ``status`` (as the demo does for its sites)."""

    def _new(status: str = SiteStatus.PROPOSED, code: str | None = None) -> Site:
        n = next(_numbers)
        return services.site_register(
            actor=None, code=code or f"T{n:03d}", name=f"Test site {n}", kind=SiteKind.HOSPITAL,
            facility_id=f"T{n:04d}", city="Valencia", country="ES", latitude=Decimal("39.47"),
            longitude=Decimal("-0.376"), time_zone="Europe/Madrid", status=SiteStatus(status), reason="test",
        )

    return _new


def complete_evidence(site: Site, actor: Any, *, runs: int = 3, skip: tuple[str, ...] = ()) -> None:
    """Record every readiness item (but ``skip``) and ``runs`` passed performance runs."""
    for item in ReadinessItem:
        if item.value not in skip:
            services.site_readiness_record(actor=actor, site=site, item=item, evidence=f"REP-{item.value}",
                                           reason="test")
    today = timezone.now().date()
    for i in range(runs):
        services.performance_run_record(actor=actor, site=site, reference=f"PPQ-{site.code}-{i + 1}",
                                        performed_on=today, outcome=RunOutcome.PASSED, reason="test")
