"""How the generated permission test (tests/test_permission_matrix.py) names release objects at a
site: a completed batch there with a QP decision.

Kept on purpose as rows no service could make: the batch (started through the services) is marked
completed with its steps undone, the certification has an empty checklist and a made-up hash, and
the OOS release names no attribute out of specification. The matrix checks who may open these
pages, not the release flow (tests/release/test_release.py drives that through the services); a
certified batch made through the services runs the whole process (about 5 s) and the matrix names
one in each of its ~190 release cases."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.utils import timezone


def _certified(site: str) -> dict[str, Any]:
    from pocare.accounts.models import User
    from pocare.manufacturing.models import Batch
    from pocare.release.models import Certification, Decision
    from tests.manufacturing.matrix import device_batch

    batch = Batch.objects.filter(site__code=site, certification__isnull=False).first()
    if batch is None:
        batch = device_batch(site)
        Batch.objects.filter(pk=batch.pk).update(status="completed", ended_at=timezone.now())
        Certification.objects.create(batch=batch, decision=Decision.RELEASED, reason="matrix", checklist={},
                                     checklist_hash="0" * 64, qp=User.objects.get(username="qp"),
                                     decided_at=timezone.now())
    return {"reference": batch.reference}


def _oos(site: str) -> dict[str, Any]:
    from pocare.accounts.models import User
    from pocare.manufacturing.models import Batch
    from pocare.release.models import OosRelease

    ref = _certified(site)
    oos = OosRelease.objects.filter(batch__reference=ref["reference"]).first() or OosRelease.objects.create(
        batch=Batch.objects.get(reference=ref["reference"]), attributes=[], clinical_justification="matrix",
        requested_by=User.objects.get(username=f"physician.{site.lower()}"), requested_at=timezone.now())
    return {**ref, "pk": oos.pk}


OBJECTS: dict[str, Callable[[str], dict[str, Any]]] = {
    "release:batch": _certified,
    "release:exceptions_review": _certified,
    "release:qc_review": _certified,
    "release:decide": _certified,
    "release:certificate": _certified,
    "release:oos_request": _certified,
    "release:oos_evaluate": _oos,
    "release:oos_accept": _oos,
    "release:oos_notify": _oos,
    "api-release-checklist": _certified,
    "api-release-qc-review": _certified,
    "api-release-certify": _certified,
    "api-release-reject": _certified,
    "release:bundle": _certified,
    "api-batch-bundle": _certified,
}
