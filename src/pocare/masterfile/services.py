"""Every change to products, master-file versions and change requests (POC-1, POC-4, POC-5, Q9-RISK).

A version moves draft → in review → approved → effective → superseded. Its author signs it
(*authored*) to submit it, a different person from Control Site QA signs it *reviewed*, and the
QP — a third person — signs it *approved*; Control Site QA then makes it effective (signed
*approved*, "made effective"), which supersedes the version before it. Once a product has an
approved master file, every further version comes through a change request, which carries the
risk class, the sites affected, the training and the comparability evidence the change needs,
and follows the lifecycle of the version it proposes.

Each function re-authenticates the signer *outside* its transaction (a wrong password is recorded
even though nothing else is), then changes state, writes its ledger events and the signature in
one transaction. Master-file events go to the Control Site's chain: the Control Site holds and
updates the master file (POC-5).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from pocare.accounts import selectors as access
from pocare.accounts.models import User
from pocare.accounts.roles import Perm
from pocare.accounts.services import require_perm
from pocare.core import yamlsafe
from pocare.jobs.services import job_enqueue
from pocare.ledger.canonical import content_hash
from pocare.ledger.models import Meaning
from pocare.ledger.services import event_record
from pocare.ledger.signing import SigningCredentials, signature_apply, signing_authenticate
from pocare.masterfile import schema
from pocare.masterfile.diff import diff_content
from pocare.masterfile.events import MasterFileEvent
from pocare.masterfile.models import (
    VERSION_TRANSITIONS,
    ChangeRequest,
    ChangeStatus,
    MasterFileVersion,
    Product,
    ProductKind,
    RiskClass,
    VersionStatus,
)
from pocare.network.models import Site, SiteKind

#: Versions that are (or were) approved: after the first of these, changes need a change request.
RELEASED_STATUSES = (VersionStatus.APPROVED, VersionStatus.EFFECTIVE, VersionStatus.SUPERSEDED)


class DocumentInvalid(ValidationError):
    """A master-file document that does not validate. ``problems`` keeps each problem with its
    line and field path; the message of the ``document`` field lists them as text."""

    def __init__(self, error: schema.DocumentError) -> None:
        self.problems = error.problems
        super().__init__({"document": [str(p) for p in error.problems]})


# --- helpers ------------------------------------------------------------------------------------


def control_site() -> Site | None:
    """The Control Site, whose chain holds the master file's events (None before it is registered)."""
    return Site.objects.filter(kind=SiteKind.CONTROL).order_by("pk").first()


def _reason(reason: str) -> str:
    if not reason or not reason.strip():
        raise ValidationError({"reason": "A reason is required: say why (it is recorded in the audit trail)."})
    return reason.strip()


def _transition(version: MasterFileVersion, to: VersionStatus) -> None:
    if to not in VERSION_TRANSITIONS[version.status]:
        label = VersionStatus(version.status).label.lower()
        raise ValidationError({"status": f"{version} is {label}; it cannot become {to.label.lower()}."})


def _locked(version: MasterFileVersion, expected: VersionStatus) -> MasterFileVersion:
    """The version's row, locked for this transaction, still in the status that was checked."""
    fresh = MasterFileVersion.objects.select_for_update().get(pk=version.pk)
    if fresh.status != expected:
        raise ValidationError({"status": f"{fresh} changed meanwhile: it is now {fresh.get_status_display()}."})
    return fresh


def _name(user: User | None) -> str:
    return (user.printed_name or user.username) if user is not None else "nobody"


def parse(document: str, *, product: Product | None = None) -> schema.MasterFileDocument:
    """Validate a document against the schema and the network (site annexes name known sites) and,
    when ``product`` is given, check it describes that product. Raises :class:`DocumentInvalid`."""
    known = Site.objects.exclude(kind=SiteKind.CONTROL).values_list("code", flat=True)
    try:
        doc = schema.parse_document(document, known_sites=list(known))
    except schema.DocumentError as exc:
        raise DocumentInvalid(exc) from None
    if product is not None:
        problems = []
        if doc.product.code != product.code:
            problems.append(("code", f"{doc.product.code!r} is not this product's code; use {product.code!r}"))
        if doc.product.kind != product.kind:
            problems.append(("kind", f"{product.code} is {product.kind}; a new version cannot change that"))
        if problems:
            locator = schema._Locator(_compose(document))
            raise DocumentInvalid(schema.DocumentError([
                schema.Problem(locator.find(("product", field))[0], f"product.{field}", message)
                for field, message in problems
            ]))
    return doc


def _compose(document: str) -> Any:
    return yamlsafe.load(document)[0]


def _version_create(*, actor: User, product: Product, document: str, doc: schema.MasterFileDocument,
                    summary: str, reason: str, change_request: ChangeRequest | None = None) -> MasterFileVersion:
    """Create the next draft version of ``product`` (inside the caller's transaction)."""
    Product.objects.select_for_update().get(pk=product.pk)  # numbers are handed out one at a time
    number = (product.versions.aggregate(n=Max("number"))["n"] or 0) + 1
    content = schema.document_content(doc)
    version = MasterFileVersion.objects.create(
        product=product, number=number, status=VersionStatus.DRAFT, document=document, content=content,
        content_hash=content_hash(content), summary=summary, change_request=change_request, author=actor,
        created_at=timezone.now(),
    )
    event_record(
        actor=actor, event_type=MasterFileEvent.VERSION_DRAFTED, obj=version, site=control_site(), reason=reason,
        new={"product": product.code, "number": number, "content_hash": version.content_hash,
             "summary": summary, "change_request": change_request.reference if change_request else None,
             "steps": len(schema.iter_steps(content)),
             "attributes": len(content["specification"]["attributes"])},
    )
    return version


# --- products and versions ----------------------------------------------------------------------


def product_create(*, actor: User, code: str, name: str, indication: str, kind: str, reason: str) -> Product:
    """Register a product that will be made in the network under its own master file."""
    require_perm(actor, Perm.MASTERFILE_AUTHOR)
    reason = _reason(reason)
    code, name, indication = code.strip(), name.strip(), indication.strip()
    errors: dict[str, str] = {}
    try:
        schema._identifier(code)
    except ValueError as exc:
        errors["code"] = str(exc)
    if not name:
        errors["name"] = "Give the product's name."
    if not indication:
        errors["indication"] = "Give the indication."
    if kind not in ProductKind.values:
        errors["kind"] = f"{kind!r} is not allowed; use one of: {', '.join(ProductKind.values)}."
    if not errors and Product.objects.filter(code=code).exists():
        errors["code"] = f"A product {code} exists already."
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        product = Product.objects.create(code=code, name=name, indication=indication, kind=kind,
                                         created_at=timezone.now())
        event_record(actor=actor, event_type=MasterFileEvent.PRODUCT_CREATED, obj=product, site=control_site(),
                     reason=reason, new={"code": code, "name": name, "indication": indication, "kind": kind})
    return product


def version_draft(*, actor: User, product: Product, document: str, summary: str, reason: str) -> MasterFileVersion:
    """Draft a new version of a product's master file from its YAML document.

    The document is validated first; an invalid one creates nothing. Once the product has an
    approved version, new versions come only through :func:`change_request_raise`.
    """
    require_perm(actor, Perm.MASTERFILE_AUTHOR)
    reason = _reason(reason)
    if product.versions.filter(status__in=RELEASED_STATUSES).exists():
        raise ValidationError({"document": f"{product.code} has an approved master file; raise a change request "
                                           "to propose the next version."})
    doc = parse(document, product=product)
    with transaction.atomic():
        return _version_create(actor=actor, product=product, document=document, doc=doc,
                               summary=summary.strip() or "First version", reason=reason)


def _require_author(actor: User, version: MasterFileVersion) -> None:
    cr = version.change_request
    # Control Site QA authors any version; a site manager authors the version of a change they
    # raised for their own site.
    may_author = access.has_perm(actor, Perm.MASTERFILE_AUTHOR) or (
        cr is not None and all(access.has_perm(actor, Perm.CHANGE_RAISE, site_id=s.pk) for s in cr.sites.all())
    )
    if access.is_read_only(actor) or not may_author:
        raise PermissionDenied(f"{actor.username} may not submit master-file versions.")
    if actor.pk != version.author_id:
        raise ValidationError({"signer": f"Only the author of {version}, {_name(version.author)}, signs it as "
                                         "authored."})


def version_submit(*, actor: User, version: MasterFileVersion, credentials: SigningCredentials,
                   reason: str) -> MasterFileVersion:
    """The author signs the draft (meaning: authored) and submits it for review."""
    _require_author(actor, version)
    reason = _reason(reason)
    _transition(version, VersionStatus.IN_REVIEW)
    cr = version.change_request
    if cr is not None and cr.status == ChangeStatus.REJECTED:
        raise ValidationError({"status": f"{cr.reference} was rejected; its version cannot be submitted."})
    proof = signing_authenticate(actor=actor, credentials=credentials)
    with transaction.atomic():
        version = _locked(version, VersionStatus.DRAFT)
        version.status, version.reviewer, version.approver = VersionStatus.IN_REVIEW, None, None
        version.save(update_fields=["status", "reviewer", "approver"])
        site = control_site()
        event_record(actor=actor, event_type=MasterFileEvent.VERSION_SUBMITTED, obj=version, site=site,
                     reason=reason, old={"status": VersionStatus.DRAFT}, new={"status": version.status})
        if version.change_request is not None:
            _change_status(actor, version.change_request, ChangeStatus.SUBMITTED, MasterFileEvent.CHANGE_SUBMITTED,
                           reason)
        signature_apply(proof=proof, record=version, meaning=Meaning.AUTHORED, site=site, reason=reason)
    return version


def version_review(*, actor: User, version: MasterFileVersion, credentials: SigningCredentials,
                   reason: str) -> MasterFileVersion:
    """Control Site QA, another person than the author, signs the version as reviewed."""
    require_perm(actor, Perm.MASTERFILE_REVIEW)
    reason = _reason(reason)
    if version.status != VersionStatus.IN_REVIEW:
        raise ValidationError({"status": f"{version} is {version.get_status_display().lower()}; only a version "
                                         "in review can be reviewed."})
    if version.reviewer_id is not None:
        raise ValidationError({"status": f"{version} was already reviewed by {_name(version.reviewer)}."})
    if actor.pk == version.author_id:
        raise ValidationError({"signer": f"You authored {version}; the reviewer must be another person "
                                         "(author, reviewer and approving QP are three different people)."})
    proof = signing_authenticate(actor=actor, credentials=credentials)
    with transaction.atomic():
        version = _locked(version, VersionStatus.IN_REVIEW)
        if version.reviewer_id is not None:
            raise ValidationError({"status": f"{version} was reviewed meanwhile by {_name(version.reviewer)}."})
        version.reviewer = actor
        version.save(update_fields=["reviewer"])
        site = control_site()
        event_record(actor=actor, event_type=MasterFileEvent.VERSION_REVIEWED, obj=version, site=site,
                     reason=reason, new={"reviewer": actor.username})
        signature_apply(proof=proof, record=version, meaning=Meaning.REVIEWED, site=site, reason=reason)
    return version


def version_return(*, actor: User, version: MasterFileVersion, credentials: SigningCredentials,
                   reason: str) -> MasterFileVersion:
    """The reviewer (or the QP) sends a version in review back to its author as a draft, saying why
    (signed with meaning: rejected)."""
    if access.is_read_only(actor) or not (
        access.has_perm(actor, Perm.MASTERFILE_REVIEW) or access.has_perm(actor, Perm.MASTERFILE_APPROVE)
    ):
        raise PermissionDenied(f"{actor.username} may not return master-file versions.")
    reason = _reason(reason)
    _transition(version, VersionStatus.DRAFT)
    if actor.pk == version.author_id:
        raise ValidationError({"signer": "The author cannot return their own version; ask the reviewer."})
    proof = signing_authenticate(actor=actor, credentials=credentials)
    with transaction.atomic():
        version = _locked(version, VersionStatus.IN_REVIEW)
        old_reviewer = version.reviewer.username if version.reviewer else None
        version.status, version.reviewer = VersionStatus.DRAFT, None
        version.save(update_fields=["status", "reviewer"])
        site = control_site()
        event_record(actor=actor, event_type=MasterFileEvent.VERSION_RETURNED, obj=version, site=site, reason=reason,
                     old={"status": VersionStatus.IN_REVIEW, "reviewer": old_reviewer},
                     new={"status": VersionStatus.DRAFT, "reviewer": None})
        if version.change_request is not None and version.change_request.status == ChangeStatus.SUBMITTED:
            _change_status(actor, version.change_request, ChangeStatus.DRAFT, MasterFileEvent.CHANGE_RETURNED,
                           f"returned to draft: {reason}")
        signature_apply(proof=proof, record=version, meaning=Meaning.REJECTED, site=site,
                        reason=f"returned to draft: {reason}")
    return version


def version_approve(*, actor: User, version: MasterFileVersion, credentials: SigningCredentials,
                    reason: str) -> MasterFileVersion:
    """The QP, a third person, signs the reviewed version as approved (and so its change request)."""
    require_perm(actor, Perm.MASTERFILE_APPROVE)
    reason = _reason(reason)
    _transition(version, VersionStatus.APPROVED)
    if version.reviewer_id is None:
        raise ValidationError({"status": f"{version} has not been reviewed yet; the QP approves after the review."})
    if actor.pk in (version.author_id, version.reviewer_id):
        role = "authored" if actor.pk == version.author_id else "reviewed"
        raise ValidationError({"signer": f"You {role} {version}; the approving QP must be a third person "
                                         "(author, reviewer and approving QP are three different people)."})
    proof = signing_authenticate(actor=actor, credentials=credentials)
    with transaction.atomic():
        version = _locked(version, VersionStatus.IN_REVIEW)
        if version.reviewer_id is None or actor.pk in (version.author_id, version.reviewer_id):
            raise ValidationError({"signer": f"{version} changed meanwhile; reload it."})
        version.status, version.approver = VersionStatus.APPROVED, actor
        version.save(update_fields=["status", "approver"])
        site = control_site()
        event_record(actor=actor, event_type=MasterFileEvent.VERSION_APPROVED, obj=version, site=site, reason=reason,
                     old={"status": VersionStatus.IN_REVIEW},
                     new={"status": version.status, "author": version.author.username,
                          "reviewer": version.reviewer.username if version.reviewer else None,
                          "approver": actor.username})
        if version.change_request is not None:
            _change_status(actor, version.change_request, ChangeStatus.APPROVED, MasterFileEvent.CHANGE_APPROVED,
                           reason, decided=True)
        signature_apply(proof=proof, record=version, meaning=Meaning.APPROVED, site=site, reason=reason)
    return version


def version_make_effective(*, actor: User, version: MasterFileVersion, credentials: SigningCredentials,
                           reason: str) -> MasterFileVersion:
    """Control Site QA makes an approved version effective in the network (signed: approved, "made
    effective"); the version effective until now becomes superseded.

    A site changes to the new version only once its operators are trained on what changed
    (:func:`pocare.masterfile.selectors.effective_version`); until then it keeps the one before.
    """
    require_perm(actor, Perm.MASTERFILE_AUTHOR)
    reason = _reason(reason)
    _transition(version, VersionStatus.EFFECTIVE)
    current = version.product.versions.filter(status=VersionStatus.EFFECTIVE).first()
    cr = version.change_request
    if cr is not None and current is not None and cr.base_version_id != current.pk:
        raise ValidationError({"status": f"{cr.reference} changes v{cr.base_version.number}, but {current} is "
                                         "effective now; raise the change again on the effective version."})
    proof = signing_authenticate(actor=actor, credentials=credentials)
    with transaction.atomic():
        version = _locked(version, VersionStatus.APPROVED)
        Product.objects.select_for_update().get(pk=version.product_id)
        now = timezone.now()
        site = control_site()
        for previous in version.product.versions.filter(status=VersionStatus.EFFECTIVE).exclude(pk=version.pk):
            previous.status, previous.superseded_at = VersionStatus.SUPERSEDED, now
            previous.save(update_fields=["status", "superseded_at"])
            event_record(actor=actor, event_type=MasterFileEvent.VERSION_SUPERSEDED, obj=previous, site=site,
                         reason=f"superseded by v{version.number}: {reason}",
                         old={"status": VersionStatus.EFFECTIVE},
                         new={"status": VersionStatus.SUPERSEDED, "superseded_at": now, "by": version.number})
        version.status, version.effective_at = VersionStatus.EFFECTIVE, now
        version.save(update_fields=["status", "effective_at"])
        event_record(actor=actor, event_type=MasterFileEvent.VERSION_EFFECTIVE, obj=version, site=site, reason=reason,
                     old={"status": VersionStatus.APPROVED},
                     new={"status": VersionStatus.EFFECTIVE, "effective_at": now})
        if version.change_request is not None:
            _change_status(actor, version.change_request, ChangeStatus.IMPLEMENTED,
                           MasterFileEvent.CHANGE_IMPLEMENTED, reason)
        signature_apply(proof=proof, record=version, meaning=Meaning.APPROVED, site=site,
                        reason=f"made effective: {reason}")
    return version


# --- change control ------------------------------------------------------------------------------


def risk_class(severity: int, probability: int, detectability: int) -> RiskClass:
    """ICH Q9(R1) risk class of a change from three 1–5 scores (Q9-RISK).

    The risk priority number is RPN = severity × probability × detectability (1–125). A change is
    **high** risk when its severity is 4 or 5 (serious harm counts however unlikely) or RPN ≥ 40,
    **medium** when RPN ≥ 12, and **low** otherwise. The formality of the change follows the
    class: medium and high changes must state the comparability evidence they require.
    """
    rpn = severity * probability * detectability
    if severity >= 4 or rpn >= 40:
        return RiskClass.HIGH
    if rpn >= 12:
        return RiskClass.MEDIUM
    return RiskClass.LOW


def _score(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValidationError({name: f"{value!r} is not a score; give a whole number from 1 to 5."})
    try:
        number = int(value)
    except ValueError:
        raise ValidationError({name: f"{value!r} is not a score; give a whole number from 1 to 5."}) from None
    if not 1 <= number <= 5:
        raise ValidationError({name: f"{number} is outside the scale; give a whole number from 1 to 5."})
    return number


def _next_reference(now: Any) -> str:
    prefix = f"CR-{now.year}-"
    last = (ChangeRequest.objects.filter(reference__startswith=prefix).order_by("-reference")
            .values_list("reference", flat=True).first())
    number = int(last.rsplit("-", 1)[1]) + 1 if last else 1
    return f"{prefix}{number:04d}"


def change_request_raise(
    *,
    actor: User,
    product: Product,
    title: str,
    description: str,
    severity: int,
    probability: int,
    detectability: int,
    sites: Iterable[Site],
    comparability_evidence: str,
    document: str,
    reason: str,
) -> ChangeRequest:
    """Raise a change to a product's effective master file, proposing the next version's document.

    The risk class follows :func:`risk_class`; the training it needs is every step the proposed
    document adds or changes compared with the effective version. Site people may raise changes
    for their own sites only. Creates the change request and its draft version together.
    """
    sites = list(sites)
    if access.is_read_only(actor) or not access.has_perm(actor, Perm.CHANGE_RAISE):
        raise PermissionDenied(f"{actor.username} may not raise change requests.")
    reason = _reason(reason)
    errors: dict[str, str] = {}
    if not title.strip():
        errors["title"] = "Give the change a title."
    if not description.strip():
        errors["description"] = "Describe what changes and why."
    if not sites:
        errors["sites"] = "Name at least one site the change affects."
    elif any(s.kind == SiteKind.CONTROL for s in sites):
        errors["sites"] = "Name the manufacturing sites affected, not the Control Site."
    elif not all(access.has_perm(actor, Perm.CHANGE_RAISE, site_id=s.pk) for s in sites):
        errors["sites"] = "You may raise changes only for your own site."
    if errors:
        raise ValidationError(errors)
    scores = {name: _score(name, value) for name, value in
              (("severity", severity), ("probability", probability), ("detectability", detectability))}
    klass = risk_class(scores["severity"], scores["probability"], scores["detectability"])
    if klass != RiskClass.LOW and not comparability_evidence.strip():
        raise ValidationError({"comparability_evidence": f"A {klass.label.lower()}-risk change must state the "
                                                         "comparability evidence it requires (CMP-SITE)."})
    base = product.versions.filter(status=VersionStatus.EFFECTIVE).first()
    if base is None:
        raise ValidationError({"product": f"{product.code} has no effective master file yet; a change request "
                                          "changes the effective version."})
    doc = parse(document, product=product)
    content = schema.document_content(doc)
    changes = diff_content(base.content, content)
    if changes.empty:
        raise ValidationError({"document": f"The proposed document is the same as {base}; change something."})
    with transaction.atomic():
        # References are numbered network-wide per year: raising a change waits for any other one.
        list(Product.objects.select_for_update().order_by("pk").values_list("pk", flat=True))
        now = timezone.now()
        cr = ChangeRequest.objects.create(
            product=product, reference=_next_reference(now), title=title.strip(), description=description.strip(),
            base_version=base, risk_class=klass, training_steps=changes.changed_step_ids,
            comparability_evidence=comparability_evidence.strip(), status=ChangeStatus.DRAFT, raised_by=actor,
            raised_at=now, **scores,
        )
        cr.sites.set(sites)
        event_record(
            actor=actor, event_type=MasterFileEvent.CHANGE_RAISED, obj=cr, site=control_site(), reason=reason,
            new={"reference": cr.reference, "title": cr.title, "product": product.code, "base_version": base.number,
                 **scores, "risk_priority": cr.risk_priority, "risk_class": klass,
                 "sites": sorted(s.code for s in sites), "training_steps": cr.training_steps,
                 "comparability_evidence": cr.comparability_evidence, "changes": changes.counts()},
        )
        _version_create(actor=actor, product=product, document=document, doc=doc, summary=cr.title,
                        reason=f"{cr.reference}: {reason}", change_request=cr)
    return cr


def _change_status(actor: User, cr: ChangeRequest, to: ChangeStatus, event_type: MasterFileEvent, reason: str,
                   *, decided: bool = False) -> None:
    old = cr.status
    cr.status = to
    fields = ["status"]
    if decided:
        cr.decided_at = timezone.now()
        fields.append("decided_at")
    cr.save(update_fields=fields)
    event_record(actor=actor, event_type=event_type, obj=cr, site=control_site(), reason=reason,
                 old={"status": old}, new={"status": to, **({"decided_at": cr.decided_at} if decided else {})})


def _proposed(cr: ChangeRequest) -> MasterFileVersion:
    version = MasterFileVersion.objects.select_related("product", "change_request").filter(change_request=cr).first()
    if version is None:
        raise ValidationError({"change_request": f"{cr.reference} proposes no version."})
    return version


def change_request_submit(*, actor: User, change_request: ChangeRequest, credentials: SigningCredentials,
                          reason: str) -> ChangeRequest:
    """The raiser signs the proposed version as authored; the change request goes for review."""
    version_submit(actor=actor, version=_proposed(change_request), credentials=credentials, reason=reason)
    change_request.refresh_from_db()
    return change_request


def change_request_approve(*, actor: User, change_request: ChangeRequest, credentials: SigningCredentials,
                           reason: str) -> ChangeRequest:
    """The QP approves the change request by approving its reviewed version."""
    version_approve(actor=actor, version=_proposed(change_request), credentials=credentials, reason=reason)
    change_request.refresh_from_db()
    return change_request


def change_request_reject(*, actor: User, change_request: ChangeRequest, credentials: SigningCredentials,
                          reason: str) -> ChangeRequest:
    """Control Site QA or the QP rejects a change request that is not yet approved (signed: rejected).
    Its version goes back to draft and can never be submitted again."""
    if access.is_read_only(actor) or not (
        access.has_perm(actor, Perm.MASTERFILE_REVIEW) or access.has_perm(actor, Perm.MASTERFILE_APPROVE)
    ):
        raise PermissionDenied(f"{actor.username} may not reject change requests.")
    reason = _reason(reason)
    if change_request.status not in (ChangeStatus.DRAFT, ChangeStatus.SUBMITTED):
        raise ValidationError({"status": f"{change_request.reference} is {change_request.get_status_display().lower()}"
                                         "; only a draft or submitted change request can be rejected."})
    proof = signing_authenticate(actor=actor, credentials=credentials)
    with transaction.atomic():
        cr = ChangeRequest.objects.select_for_update().get(pk=change_request.pk)
        if cr.status not in (ChangeStatus.DRAFT, ChangeStatus.SUBMITTED):
            raise ValidationError({"status": f"{cr.reference} changed meanwhile: it is {cr.get_status_display()}."})
        site = control_site()
        version = MasterFileVersion.objects.select_for_update().filter(change_request=cr).first()
        if version is not None and version.status == VersionStatus.IN_REVIEW:
            version.status, version.reviewer = VersionStatus.DRAFT, None
            version.save(update_fields=["status", "reviewer"])
            event_record(actor=actor, event_type=MasterFileEvent.VERSION_RETURNED, obj=version, site=site,
                         reason=f"{cr.reference} rejected: {reason}",
                         old={"status": VersionStatus.IN_REVIEW}, new={"status": VersionStatus.DRAFT})
        _change_status(actor, cr, ChangeStatus.REJECTED, MasterFileEvent.CHANGE_REJECTED, reason, decided=True)
        signature_apply(proof=proof, record=cr, meaning=Meaning.REJECTED, site=site, reason=reason)
    return cr


# --- the dossier -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DossierExport:
    """An exported dossier: the file, its name and type, and the ledger event that recorded it."""

    content: bytes
    filename: str
    content_type: str
    event_label: str


DOSSIER_TASK = "pocare.masterfile.tasks.dossier_export_work"


def dossier_export_request(*, actor: User, product: Product, fmt: str, version: MasterFileVersion | None = None
                           ) -> Any:
    """Queue the export of ``product``'s dossier (HTML or PDF) as a job of ``actor``'s, in the caller's
    transaction. The job makes the file and records the export (``masterfile.dossier_exported``, as
    before); the job's page offers it. :class:`~pocare.masterfile.dossier.DossierUnavailable` at once
    for a PDF when this server cannot make PDFs."""
    from pocare.masterfile import dossier as dossier  # late: the dossier reads through the selectors

    if not access.has_perm(actor, Perm.REPORTS_VIEW):
        raise PermissionDenied(f"{actor.username} may not export master-file dossiers.")
    if fmt not in ("html", "pdf"):
        raise ValidationError({"format": f"{fmt!r} is not an export format; use html or pdf."})
    if fmt == "pdf":
        dossier.pdf_engine_check()
    shown = f", version {version.number}" if version is not None else ""
    with transaction.atomic():
        return job_enqueue(task=DOSSIER_TASK, kwargs={"actor_id": actor.pk, "product_id": product.pk, "fmt": fmt,
                                                      "version_id": version.pk if version is not None else None},
                           actor=actor, label=f"Master-file dossier of {product.code}{shown} ({fmt.upper()})")


def dossier_export(*, actor: User, product: Product, fmt: str, version: MasterFileVersion | None = None
                   ) -> DossierExport:
    """Export the master-file dossier (DMMF) of ``product`` as HTML or PDF, and record the export —
    with the SHA-256 of the file, so a copy can later be matched to the audit trail (P11-10b).

    Raises :class:`pocare.masterfile.dossier.DossierUnavailable` when the PDF engine cannot run.
    """
    from pocare.masterfile import dossier as dossier  # late: the dossier reads through the selectors

    if not access.has_perm(actor, Perm.REPORTS_VIEW):
        raise PermissionDenied(f"{actor.username} may not export master-file dossiers.")
    if fmt not in ("html", "pdf"):
        raise ValidationError({"format": f"{fmt!r} is not an export format; use html or pdf."})
    exported_at = timezone.now()
    context = dossier.dossier_context(product=product, version=version, exported_by=actor, exported_at=exported_at)
    html = dossier.render_html(context)
    body = dossier.render_pdf(html) if fmt == "pdf" else html.encode("utf-8")
    digest = hashlib.sha256(body).hexdigest()
    shown = context["version"]
    with transaction.atomic():
        event = event_record(
            actor=actor, event_type=MasterFileEvent.DOSSIER_EXPORTED, obj=product, site=control_site(),
            new={"format": fmt, "version": shown.number if shown else None, "sha256": digest, "bytes": len(body),
                 "exported_at": exported_at},
        )
    stamp = exported_at.strftime("%Y%m%dT%H%M%SZ")
    return DossierExport(
        content=body, filename=f"pocare-dmmf-{product.code}-{stamp}.{fmt}",
        content_type="application/pdf" if fmt == "pdf" else "text/html; charset=utf-8", event_label=event.label,
    )
