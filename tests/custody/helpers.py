"""Set-up for the custody tests, through the same services people use: an order made at MAD (the
master file effective there) and treated at MAD, accepted, with a collection."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.utils import timezone

from pocare.accounts.models import User
from pocare.custody import services
from pocare.custody.models import Collection, HandoffKind, TherapyOrder
from pocare.network.models import Site


def user(username: str) -> User:
    return User.objects.get(username=username)


def site(code: str) -> Site:
    return Site.objects.get(code=code)


def effective_at(code: str = "MAD") -> Any:
    """The demo product's master file v1, effective at ``code`` (authorized, operator trained)."""
    from pocare.masterfile.selectors import effective_version
    from tests.masterfile.helpers import authorize, effective_v1, train

    version = effective_v1()
    if effective_version(site=site(code), product=version.product) is None:
        authorize(code)
        train(version, code)
    return version


def order(code: str = "MAD", treating: str | None = None, *, recipient: str = "PT-0001") -> TherapyOrder:
    """A requested order made at ``code``, ordered by the treating site's physician."""
    version = effective_at(code)
    treating = treating or code
    return services.therapy_order_create(
        actor=user(f"physician.{treating.lower()}"), site=site(code), treating_site=site(treating),
        product=version.product, recipient_id=recipient, recipient_weight_kg=Decimal("72.5"),
        indication="r/r LBCL", reason="Referral after second relapse")


def accepted(code: str = "MAD", treating: str | None = None, **kwargs: Any) -> TherapyOrder:
    o = order(code, treating, **kwargs)
    return services.therapy_order_accept(actor=user(f"manager.{code.lower()}"), order=o, reason="Slot available")


def collect(o: TherapyOrder, *, ended: dt.datetime | None = None) -> Collection:
    ended = ended or timezone.now() - dt.timedelta(hours=1)
    return services.collection_record(
        actor=user(f"physician.{o.treating_site.code.lower()}"), order=o,
        collection_started_at=ended - dt.timedelta(hours=4), collection_ended_at=ended,
        volume_ml=Decimal("250"), donor_tests={"HIV": "negative", "HBsAg": "negative"}, reason="Apheresis done")


def scan(o: TherapyOrder, kind: str, identifier: str, collection: Collection | None = None, **kwargs: Any) -> Any:
    """Record a hand-off at the place where it happens, by the person who would do it there."""
    where = o.site if kind in services.AT_MANUFACTURING_SITE else o.treating_site
    who = f"operator.{where.code.lower()}" if where == o.site else f"physician.{where.code.lower()}"
    return services.handoff_record(actor=user(kwargs.pop("who", who)), order=o, kind=kind,
                                   presented_identifier=identifier, site=kwargs.pop("site", where),
                                   location=kwargs.pop("location", "Apheresis unit"), collection=collection, **kwargs)


def to_manufacture(o: TherapyOrder, c: Collection) -> None:
    """The bag's hand-offs up to the start of manufacture, each scan its DIN."""
    for kind in (HandoffKind.COLLECTION, HandoffKind.DISPATCH_TO_SITE, HandoffKind.RECEIPT_AT_SITE,
                 HandoffKind.MANUFACTURE_START):
        scan(o, kind, c.din_printed, c)


def completed_batch(o: TherapyOrder, c: Collection) -> Any:
    """A completed batch row for the order, kept on purpose as a row no service could make (no step
    done, no start hand-off): the custody tests record every hand-off by scan, and only need the row
    the dispatch check reads. tests/release/helpers.py makes real ones through the services (the
    whole process, about 5 s a batch)."""
    from pocare.manufacturing.models import Batch, BatchStatus
    from pocare.masterfile.selectors import effective_version
    from pocare.network.models import ManufacturingUnit
    from pocare.network.services import unit_register

    unit = ManufacturingUnit.objects.filter(site=o.site).first() or unit_register(
        actor=user("qa"), site=o.site, device_type="clinimacs_prodigy", serial=f"CUST-{o.site.code}",
        calibration_due=timezone.now().date() + dt.timedelta(days=90),
        maintenance_due=timezone.now().date() + dt.timedelta(days=90), reason="test")
    now = timezone.now()
    return Batch.objects.create(
        reference=f"{o.site.code}-T-{o.pk:04d}", order=o, collection=c, site=o.site, unit=unit,
        masterfile_version=effective_version(site=o.site, product=o.product), status=BatchStatus.COMPLETED,
        started_by=user(f"operator.{o.site.code.lower()}"), started_at=now - dt.timedelta(days=9), ended_at=now)


def certify(batch: Any) -> Any:
    """The QP's certification row the dispatch check reads, kept on purpose as a row no service could
    make (empty checklist, made-up hash): tests/release makes real ones through
    ``pocare.release.services.batch_certify``; the custody tests only need the row."""
    from pocare.release.models import Certification, Decision

    return Certification.objects.create(batch=batch, decision=Decision.RELEASED, reason="test", checklist={},
                                        checklist_hash="0" * 64, qp=user("qp"), decided_at=timezone.now())
