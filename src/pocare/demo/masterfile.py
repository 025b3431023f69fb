"""The demo master file: an autologous anti-CD19 CAR-T (POC-CAR19) made on an automated closed
system, version 1 effective and a change request that produced version 2 — all through the
services, with real signatures by three different people (author Marc Vidal, reviewer Montserrat
Puig, approving QP Jordi Ferrer).

Idempotent: what exists is left as it is, and a lifecycle interrupted half-way is carried on.
The documents are ``documents/cd19-cart-v1.yaml`` and ``cd19-cart-v2.yaml`` beside this module.
"""

from __future__ import annotations

from pathlib import Path

from pocare.accounts.models import User
from pocare.ledger.signing import SigningCredentials
from pocare.masterfile import services
from pocare.masterfile.models import ChangeRequest, ChangeStatus, MasterFileVersion, Product, VersionStatus
from pocare.network.models import Site

DOCUMENTS = Path(__file__).resolve().parent / "documents"
PRODUCT_CODE = "CD19-CART"
CHANGE_TITLE = "Extend the expansion window to day 12 and raise the day-5 CAR+ in-process limit"
AUTHOR, REVIEWER, QP, QA = "qa2", "qa", "qp", "qa"


def _person(username: str) -> User:
    return User.objects.get(username=username)


def _creds(username: str, password: str) -> SigningCredentials:
    return SigningCredentials(username=username, password=password)


def _carry_through(version: MasterFileVersion, *, password: str) -> MasterFileVersion:
    """Take a version from wherever it is to effective: authored, reviewed, approved, made effective."""
    if version.status == VersionStatus.DRAFT:
        version = services.version_submit(actor=version.author, version=version,
                                          credentials=_creds(version.author.username, password),
                                          reason="Demo: submitted for review")
    if version.status == VersionStatus.IN_REVIEW and version.reviewer_id is None:
        version = services.version_review(actor=_person(REVIEWER), version=version,
                                          credentials=_creds(REVIEWER, password),
                                          reason="Demo: process, specification and annexes checked against the "
                                                 "development report")
    if version.status == VersionStatus.IN_REVIEW:
        version = services.version_approve(actor=_person(QP), version=version, credentials=_creds(QP, password),
                                           reason="Demo: approved by the Qualified Person")
    if version.status == VersionStatus.APPROVED:
        version = services.version_make_effective(actor=_person(QA), version=version,
                                                  credentials=_creds(QA, password),
                                                  reason="Demo: effective in the network")
    return version


def load_product_and_v1(*, password: str) -> MasterFileVersion:
    """The product CD19-CART and its master file v1, effective (creating whatever is missing)."""
    author = _person(AUTHOR)
    product = Product.objects.filter(code=PRODUCT_CODE).first() or services.product_create(
        actor=author, code=PRODUCT_CODE, name="POC-CAR19",
        indication="Relapsed/refractory CD19+ large B-cell lymphoma and B-cell acute lymphoblastic leukaemia",
        kind="autologous", reason="Demo: the network's first product",
    )
    v1 = product.versions.filter(number=1).first() or services.version_draft(
        actor=author, product=product, document=(DOCUMENTS / "cd19-cart-v1.yaml").read_text(encoding="utf-8"),
        summary="First version: process on CliniMACS Prodigy, ARI-0001 release specification, Munich annex "
                "for the Lonza Cocoon",
        reason="Demo: first master file of POC-CAR19",
    )
    if v1.status in (VersionStatus.EFFECTIVE, VersionStatus.SUPERSEDED):
        return v1
    return _carry_through(v1, password=password)


def load_change_v2(*, password: str) -> ChangeRequest:
    """A medium-risk change request for MAD and LIS that produced v2, approved and effective.

    Operators at a site work under v2 only once trained on the changed steps (``ipc-day5``,
    ``expansion-harvest-decision``, ``harvest`` whose time window grew); until then their site keeps v1.
    """
    v1 = load_product_and_v1(password=password)
    product = v1.product
    cr = ChangeRequest.objects.filter(product=product, title=CHANGE_TITLE).first()
    if cr is None:
        cr = services.change_request_raise(
            actor=_person(AUTHOR), product=product, title=CHANGE_TITLE,
            description=(
                "Slow-expanding cultures currently end at day 10 below the dose, and some reach day 5 with "
                "5–8 % CAR+ cells only to fail the 20 % release limit. Allow harvest up to day 12 (published "
                "range 8–12 days) and raise the day-5 CAR+ in-process limit to 8 % so that such cultures are "
                "found, and investigated, earlier."
            ),
            severity=3, probability=2, detectability=2,
            sites=list(Site.objects.filter(code__in=["MAD", "LIS"]).order_by("code")),
            comparability_evidence=(
                "Three engineering runs harvested at day 12 against the day 8–10 reference lots: viability, CD3+, "
                "CAR+, VCN and potency within the quality ranges (mean ± 3 σR); exhaustion markers (PD-1, LAG-3) "
                "characterised."
            ),
            document=(DOCUMENTS / "cd19-cart-v2.yaml").read_text(encoding="utf-8"),
            reason="Demo: change requested after the first year's product quality review",
        )
    if cr.status not in (ChangeStatus.IMPLEMENTED, ChangeStatus.REJECTED):
        version = MasterFileVersion.objects.get(change_request=cr)
        _carry_through(version, password=password)
        cr.refresh_from_db()
    return cr
