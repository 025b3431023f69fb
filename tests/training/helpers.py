"""Set-up for the training tests, through the real services: a product of our own with two
master-file versions (v2 changes the expansion steps), qualifications, and training records."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.utils import timezone

from pocare.accounts.models import User
from pocare.ledger.signing import SigningCredentials
from pocare.masterfile import schema
from pocare.masterfile.models import MasterFileVersion, Product
from pocare.network.models import Site
from pocare.training import services
from pocare.training.models import Qualification, TrainingKind, TrainingRecord
from tests.conftest import PASSWORD

DOCUMENTS = Path(__file__).resolve().parents[2] / "src" / "pocare" / "demo" / "documents"
PRODUCT = "TR-CART"

QUALIFICATIONS = {
    "gmp-basics": 24, "aseptic-processing": 12, "prodigy-operation": 12, "cell-counting": 12,
    "cryopreservation": 24, "qc-flow-cytometry": 12,
}


def creds(user: User) -> SigningCredentials:
    return SigningCredentials(username=user.username, password=PASSWORD)


def user(username: str) -> User:
    return User.objects.get(username=username)


def newcomer(username: str, printed_name: str, role: str = "operator") -> User:
    """A person new to the network (no demo training), with ``role`` at the site their user id
    ends with (``trainee.mad`` → MAD): so tests do not depend on what the demo trained."""
    from pocare.accounts.roles import Role
    from pocare.accounts.services import membership_grant, user_create

    found = User.objects.filter(username=username).first()
    if found is not None:
        return found
    person = user_create(actor=None, username=username, printed_name=printed_name,
                         email=f"{username}@test.invalid", reason="test", initial_password=PASSWORD)
    membership_grant(actor=None, user=person, role=Role(role), site=site(username.rsplit(".", 1)[-1].upper()),
                     reason="test")
    return person


def site_trained(version: MasterFileVersion, code: str) -> None:
    """Train every operator of the site who still lacks steps of ``version`` on them (so the
    version can be effective there, whatever else the database holds)."""
    from pocare.training.selectors import version_training_gaps

    for person, steps in version_training_gaps(site=site(code), version=version):
        train_version(person.username, version, steps)


def site(code: str) -> Site:
    return Site.objects.get(code=code)


def qualification(code: str, *, pass_mark: Decimal | None = None) -> Qualification:
    """The qualification ``code`` (defined by Control Site QA if the demo did not)."""
    found = Qualification.objects.filter(code=code).first()
    if found is None:
        found = services.qualification_define(actor=user("qa"), code=code, name=code.replace("-", " ").title(),
                                              validity_months=QUALIFICATIONS.get(code, 12), pass_mark=pass_mark,
                                              reason="test set-up")
    return found


def document(number: int) -> str:
    text = (DOCUMENTS / f"cd19-cart-v{number}.yaml").read_text(encoding="utf-8")
    return text.replace("code: CD19-CART", f"code: {PRODUCT}", 1)


@dataclass
class Versions:
    product: Product
    v1: MasterFileVersion
    v2: MasterFileVersion

    @property
    def changed(self) -> list[str]:
        """The steps v2 changes (the training it needs)."""
        from pocare.masterfile.selectors import required_training_steps

        return required_training_steps(self.v2)

    def steps(self, version: MasterFileVersion) -> list[dict[str, Any]]:
        return schema.iter_steps(version.content)


def make_versions(*, sites: tuple[str, ...] = ("MAD", "LIS"), v2: bool = True) -> Versions:
    """Product TR-CART: v1 effective in the network and authorized at ``sites``; v2 (a change of
    the expansion steps) approved and made effective in the network too."""
    from pocare.masterfile import services as mf
    from pocare.network.services import site_authorize

    qa, qa2, qp = user("qa"), user("qa2"), user("qp")
    product = mf.product_create(actor=qa, code=PRODUCT, name="Test CAR-T", indication="Test indication",
                                kind="autologous", reason="test set-up")
    one = mf.version_draft(actor=qa, product=product, document=document(1), summary="First", reason="test")
    one = mf.version_submit(actor=qa, version=one, credentials=creds(qa), reason="test")
    one = mf.version_review(actor=qa2, version=one, credentials=creds(qa2), reason="test")
    one = mf.version_approve(actor=qp, version=one, credentials=creds(qp), reason="test")
    for code in sites:
        site_authorize(actor=qa, site=site(code), product=product, from_version=1, valid_from=None, conditions="",
                       reason="test", credentials=creds(qa))
    one = mf.version_make_effective(actor=qa, version=one, credentials=creds(qa), reason="test")
    two = one
    if v2:
        cr = mf.change_request_raise(
            actor=qa, product=product, title="Longer expansion", description="Harvest up to day 12.", severity=2,
            probability=2, detectability=2, sites=[site(c) for c in sites], comparability_evidence="Runs",
            document=document(2), reason="test")
        two = MasterFileVersion.objects.get(change_request=cr)
        cr = mf.change_request_submit(actor=qa, change_request=cr, credentials=creds(qa), reason="test")
        two.refresh_from_db()
        two = mf.version_review(actor=qa2, version=two, credentials=creds(qa2), reason="test")
        cr = mf.change_request_approve(actor=qp, change_request=cr, credentials=creds(qp), reason="test")
        two.refresh_from_db()
        two = mf.version_make_effective(actor=qa, version=two, credentials=creds(qa), reason="test")
        one.refresh_from_db()
    return Versions(product, one, two)


def train(
    trainee: str,
    *,
    trainer: str | None = None,
    site_code: str | None = None,
    kind: str = TrainingKind.COURSE,
    title: str = "Training",
    qualification_code: str | None = None,
    days_ago: int = 10,
    sign: bool = True,
    **extra: Any,
) -> TrainingRecord:
    """Record (trainer signs) and, unless ``sign`` is False, acknowledge (trainee signs) a training."""
    code = site_code or trainee.rsplit(".", 1)[-1].upper()
    trainer_user = user(trainer or f"manager.{code.lower()}")
    trainee_user = user(trainee)
    record = services.training_record(
        actor=trainer_user, trainee=trainee_user, site=site(code), kind=kind, title=title,
        trained_on=timezone.now().date() - dt.timedelta(days=days_ago),
        qualification=qualification(qualification_code) if qualification_code else None,
        credentials=creds(trainer_user), **extra,
    )
    if sign:
        record = services.training_acknowledge(actor=trainee_user, record=record, credentials=creds(trainee_user))
    return record


def qualify_operator(username: str, version: MasterFileVersion, *, days_ago: int = 10,
                     skip: tuple[str, ...] = ()) -> None:
    """Give an operator every qualification the version's steps name, and version training on it."""
    codes = sorted({s["qualification"] for s in schema.iter_steps(version.content)})
    for code in codes:
        if code not in skip:
            train(username, title=f"{code} course", qualification_code=code, days_ago=days_ago)
    train_version(username, version)


def train_version(username: str, version: MasterFileVersion, steps: list[str] | None = None, *,
                  sign: bool = True, trainer: str | None = None) -> TrainingRecord:
    from pocare.masterfile.selectors import required_training_steps

    return train(username, kind=TrainingKind.VERSION, title=f"v{version.number} training",
                 masterfile_version=version, steps=steps if steps is not None else required_training_steps(version),
                 days_ago=1, sign=sign, trainer=trainer)
