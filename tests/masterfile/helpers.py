"""Set-up for the master-file tests, through the same services people use."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from pocare.accounts.models import User
from pocare.demo.masterfile import DOCUMENTS, load_product_and_v1
from pocare.ledger.signing import SigningCredentials
from pocare.masterfile import services
from pocare.masterfile.models import ChangeRequest, MasterFileVersion, Product
from pocare.network.models import Site
from tests.conftest import PASSWORD

V1_TEXT = (DOCUMENTS / "cd19-cart-v1.yaml").read_text(encoding="utf-8")
V2_TEXT = (DOCUMENTS / "cd19-cart-v2.yaml").read_text(encoding="utf-8")


def user(username: str) -> User:
    return User.objects.get(username=username)


def creds(username: str) -> SigningCredentials:
    return SigningCredentials(username=username, password=PASSWORD)


def product() -> Product:
    """The demo product, created by Control Site QA (qa2), without any version."""
    return Product.objects.filter(code="CD19-CART").first() or services.product_create(
        actor=user("qa2"), code="CD19-CART", name="POC-CAR19", indication="r/r LBCL", kind="autologous",
        reason="test")


def draft_v1() -> MasterFileVersion:
    """A first version drafted by qa2 (not yet submitted)."""
    return services.version_draft(actor=user("qa2"), product=product(), document=V1_TEXT, summary="v1",
                                  reason="test")


def effective_v1() -> MasterFileVersion:
    """v1 effective: authored by qa2, reviewed by qa, approved by qp, made effective by qa."""
    return load_product_and_v1(password=PASSWORD)


def raise_change(*, actor: str = "qa2", sites: tuple[str, ...] = ("MAD", "LIS"), document: str = V2_TEXT,
                 severity: int = 3, probability: int = 2, detectability: int = 2, **extra: Any) -> ChangeRequest:
    """A change request on the effective v1 proposing ``document`` (v2 by default)."""
    effective_v1()
    values: dict[str, Any] = {
        "title": "Extend expansion to day 12", "description": "Slow cultures need two more days.",
        "comparability_evidence": "Three engineering runs at day 12 within the quality ranges.",
        "reason": "test", **extra,
    }
    return services.change_request_raise(
        actor=user(actor), product=product(), severity=severity, probability=probability,
        detectability=detectability, sites=list(Site.objects.filter(code__in=sites)), document=document, **values)


def carry_to_approved(version: MasterFileVersion) -> MasterFileVersion:
    """Submit (its author), review (qa), approve (qp)."""
    author = version.author.username
    version = services.version_submit(actor=version.author, version=version, credentials=creds(author),
                                      reason="submit")
    reviewer = "qa" if author != "qa" else "qa2"
    version = services.version_review(actor=user(reviewer), version=version, credentials=creds(reviewer),
                                      reason="reviewed")
    return services.version_approve(actor=user("qp"), version=version, credentials=creds("qp"), reason="approved")


def make_effective(version: MasterFileVersion) -> MasterFileVersion:
    return services.version_make_effective(actor=user("qa"), version=version, credentials=creds("qa"),
                                           reason="effective")


def authorize(site_code: str, from_version: int = 1) -> None:
    """Control Site QA authorizes the site for the product from a version on (network service)."""
    from pocare.network.services import site_authorize

    site_authorize(actor=user("qa"), site=Site.objects.get(code=site_code), product=product(),
                   from_version=from_version, valid_from=None, conditions="", reason="test",
                   credentials=creds("qa"))


def train(version: MasterFileVersion, site_code: str, steps: list[str] | None = None,
          trained_on: dt.date | None = None) -> None:
    """The site manager trains the site's operator on ``steps`` of ``version`` (all required ones by
    default), and the operator signs (training services)."""
    from pocare.masterfile.selectors import required_training_steps
    from pocare.training.models import TrainingKind
    from pocare.training.services import training_acknowledge, training_record

    s = site_code.lower()
    manager, operator = user(f"manager.{s}"), user(f"operator.{s}")
    record = training_record(
        actor=manager, trainee=operator, site=Site.objects.get(code=site_code), kind=TrainingKind.VERSION,
        title=f"v{version.number}", trained_on=trained_on or timezone.now().date(), masterfile_version=version,
        steps=steps if steps is not None else required_training_steps(version), credentials=creds(manager.username))
    training_acknowledge(actor=operator, record=record, credentials=creds(operator.username))
